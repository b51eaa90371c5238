//! `stack`: the dataplane's protocol stack as a sans-I/O library.
//!
//! No threads, no system calls, no clock and no random source of its own: the caller
//! passes `now`, randomness and frames in, and drains frames to transmit out. Many
//! instances live in one process without sharing state.
//!
//! Modules:
//! - [`time`]: the injected clock's types.
//! - [`wire`]: typed zero-copy header views and emitters.

pub mod addr;
pub mod counters;
pub mod flow;
pub mod iface;
pub mod mem;
pub mod neighbor;
pub mod ratelimit;
pub mod route;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod wire;

pub use addr::{IpCidr, IpPrefix, Ipv4Cidr, Ipv4Prefix, Ipv6Cidr, Ipv6Prefix};
pub use counters::{DropReason, PortCounters};
pub use iface::{InterfaceConfig, PortId};
pub use mem::{Frame, FramePool, PoolConfig};
pub use stack::{EchoRequest, Event, RouteTarget, SocketError, Stack, StackConfig, UdpHandle};
pub use tcp::{Readiness, TcpConfig, TcpHandle, TcpState};
pub use time::{Duration, Instant};
