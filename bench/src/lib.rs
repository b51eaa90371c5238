//! Library of the bench crate.
pub mod drivers;
pub mod forward;
pub mod lpm;
pub mod sim;
pub mod tables;
pub mod tcp;
