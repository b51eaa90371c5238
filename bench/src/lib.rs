//! Library of the bench crate.
pub mod drivers;
pub mod forward;
pub mod lpm;
pub mod router;
pub mod sim;
pub mod sockets;
pub mod tables;
pub mod tcp;
