//! The one interface every driver offers: batched receive and transmit of [`Frame`]s,
//! link facts, a file descriptor to sleep on, and counters.

use std::os::fd::RawFd;

use stack::wire::EthernetAddress;
use stack::Frame;

use crate::DriverError;

/// Facts about the link a driver serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface name (as the kernel knows it, or a label for in-memory links).
    pub name: String,
    /// The MAC address the stack should use on this link.
    pub mac: EthernetAddress,
    /// IP MTU in bytes (the Ethernet payload, without the 14-byte header).
    pub mtu: u16,
    /// Number of queues; valid queue indices are `0..queues`.
    pub queues: u16,
}

/// Counters of one driver, summed over its queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DriverStats {
    /// Frames received and handed to the caller.
    pub rx_packets: u64,
    /// Bytes in those frames (Ethernet header included, no FCS).
    pub rx_bytes: u64,
    /// Frames handed to the device for transmission.
    pub tx_packets: u64,
    /// Bytes in those frames.
    pub tx_bytes: u64,
    /// Receive errors: frames truncated because they did not fit a pool frame, and
    /// failed reads other than "nothing to read".
    pub rx_errors: u64,
    /// Transmit errors: frames the device refused (too long, malformed) and dropped.
    pub tx_errors: u64,
    /// Frames lost on receive: dropped by the kernel because the socket buffer was full
    /// (where the device reports it), or dropped by an in-memory link.
    pub rx_dropped: u64,
    /// Frames lost on transmit without an error (an in-memory link's loss hook or full
    /// queue).
    pub tx_dropped: u64,
    /// Receive batches cut short because the frame pool was empty (frames stay in the
    /// kernel until the caller returns frames to the pool).
    pub rx_pool_empty: u64,
}

/// A source and sink of Ethernet frames, in bursts.
///
/// All calls are non-blocking. A caller that finds nothing to do sleeps on
/// [`Driver::poll_fd`] (readable: frames to receive; writable: room to transmit).
pub trait Driver {
    /// Moves up to `max` received frames of `queue` into `out` (appending), taking the
    /// frames from the driver's pool; returns how many. Zero means nothing is waiting
    /// (or the pool is empty, which [`DriverStats::rx_pool_empty`] counts).
    fn recv(&mut self, queue: u16, out: &mut Vec<Frame>, max: usize) -> Result<usize, DriverError>;

    /// Transmits frames from the front of `frames` on `queue` until the device is full;
    /// returns how many left the Vec. Sent frames are consumed (their memory goes back
    /// to its pool); frames the device refused as invalid are dropped and counted in
    /// [`DriverStats::tx_errors`] (they are among those consumed); the frames not yet
    /// tried stay in `frames`, in order, for the caller to retry or drop.
    ///
    /// On an error, the frames consumed before it are gone and the rest stay.
    fn send(&mut self, queue: u16, frames: &mut Vec<Frame>) -> Result<usize, DriverError>;

    /// Link facts: name, MAC, MTU, queue count.
    fn link(&self) -> LinkInfo;

    /// A file descriptor to wait on for `queue` (poll/epoll), or `None` when the driver
    /// has none (in-memory links) or the queue does not exist.
    fn poll_fd(&self, queue: u16) -> Option<RawFd>;

    /// Counters since the driver was made.
    fn stats(&self) -> DriverStats;
}
