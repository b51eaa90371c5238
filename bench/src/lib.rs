//! Library of the bench crate.
pub mod lpm;
pub mod tables;
