//! Shared-memory sockets of the dataplane.
//!
//! An application attaches to the daemon (`dataplane run` with a `[sockets]` section)
//! over a Unix socket; the daemon checks its credentials and passes it a shared memory
//! region (a memfd) holding, per worker shard, a request ring and a completion ring
//! ([`shm`]). Socket calls become ring entries; the shards serve them between rounds of
//! their poll loops, so no system call sits on the data path of either side.
//!
//! - [`shm`]: the region layout, the single-producer single-consumer rings and the entry
//!   format, shared by the daemon and the client.
//! - [`client`]: the Rust client: [`client::Client::attach`], [`client::UdpSocket`],
//!   [`client::TcpListener`], [`client::TcpStream`] (blocking, mirroring `std::net`),
//!   and [`client::Poller`] (readiness of many sockets, like `epoll`).
//! - [`capi`]: the C ABI over the client (`dpsock.h`).

pub mod capi;
pub mod client;
pub mod shm;
pub mod sys;

pub use client::{Client, Event, Interest, Poller, Source, TcpListener, TcpStream, UdpSocket};

/// The attach handshake's greeting: `DPSOCK <version>\n`.
pub fn hello() -> String {
    format!("DPSOCK {}\n", shm::VERSION)
}
