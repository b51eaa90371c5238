//! `sim`: the network laboratory.
//!
//! Many [`stack::Stack`] instances in one process, joined by simulated point-to-point
//! links (bandwidth, propagation delay, a drop-tail queue, random and Gilbert–Elliott
//! loss, reordering, duplication, corruption), on a virtual clock, driven by one event
//! queue and one seed: the same topology and seed give the same run, frame for frame.
//!
//! - [`Sim`] (in [`world`]): build a topology in code, schedule [`Action`]s (link
//!   down/up, route add/remove, node stop/start), run until a time or until idle, and
//!   inspect counters, events and captured frames.
//! - [`link`]: link properties and impairments.
//! - [`app`]: applications on the nodes: ping, constant-rate UDP flows and TCP flows
//!   (a bulk transfer whose bytes the receiving side verifies).
//! - [`topo`]: topology files (TOML); errors name the file, the line and the key.
//! - [`summary`]: the report of a run.
//! - [`scenarios`]: a chain of routers and a dumbbell, built in code.
#![deny(unsafe_code)]

pub mod app;
pub mod link;
pub mod scenarios;
pub mod summary;
pub mod tomlpos;
pub mod topo;
pub mod world;

pub use app::{
    App, AppConfig, AppState, DelayStats, PingConfig, PingStats, TcpFlow, TcpFlowConfig,
    TcpFlowStats, UdpFlowConfig, UdpFlowStats,
};
pub use link::{DirStats, LinkConfig, Loss};
pub use summary::Summary;
pub use topo::{Topology, TopologyError};
pub use world::{Action, CapturedFrame, HookVerdict, LinkEnd, LinkHook, NodeKind, Sim, SimError};

/// A node of a simulation (ids are dense, in order of creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// A link of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// An application of a simulation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub u32);
