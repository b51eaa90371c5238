//! `drivers`: moving frames between the world and the stack.
//!
//! Drivers know frames, not protocols. Each moves bursts of [`stack::Frame`]s: receive
//! into a `Vec` the caller reuses, transmit from one. Today there is the in-memory link
//! ([`memlink`]) used by tests, the demo and, later, the simulator; AF_XDP, TAP,
//! AF_PACKET and pcap capture arrive with issue 3.

pub mod memlink;

pub use memlink::{MemLink, MemLinkStats};
