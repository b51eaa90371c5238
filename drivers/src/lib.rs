//! `drivers`: moving frames between the world and the stack.
//!
//! Drivers know frames, not protocols. Each moves bursts of [`stack::Frame`]s through
//! one batched interface, [`Driver`]: receive into a `Vec` the caller reuses (frames come
//! from the driver's own pool), transmit from one, link facts, a descriptor to sleep on,
//! counters. Failures are [`DriverError`]s that name the interface and say what to do.
//!
//! - [`memlink`]: in-memory links for tests, the demo and the simulator;
//! - [`tap`]: TAP devices through `/dev/net/tun`;
//! - [`afpacket`]: AF_PACKET sockets, on any Linux interface;
//! - [`afxdp`]: AF_XDP sockets with our XDP program (crate `bpf`), zero copy into the
//!   stack's frame pool;
//! - [`pcap`]: mirroring frames to pcap files;
//! - [`shutdown`]: SIGINT/SIGTERM turned into an orderly drop of the drivers.

pub mod afpacket;
pub mod afxdp;
pub mod driver;
pub mod error;
pub mod memlink;
pub mod pcap;
pub mod shutdown;
mod sys;
pub mod tap;

pub use afpacket::{AfPacket, AfPacketConfig};
pub use afxdp::{AfXdp, AfXdpConfig};
pub use driver::{Driver, DriverStats, LinkInfo};
pub use error::DriverError;
pub use memlink::{MemLink, MemLinkStats};
pub use pcap::{Capture, CaptureError, Timestamp};
pub use shutdown::Shutdown;
pub use tap::{Tap, TapConfig};
