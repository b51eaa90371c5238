//! The report of a run: per application what was sent, delivered and lost with delay
//! statistics (for a TCP flow: bytes delivered intact, setup and completion time,
//! goodput), per node the drops by reason, per link what its impairments did, and the
//! simulated time and events processed.
//!
//! [`Summary::render`] is deterministic (same topology and seed, same text); the wall
//! time of a run is the caller's to print beside it, since it is the one figure that
//! differs between two runs.

use std::fmt::Write as _;

use stack::DropReason;

use crate::app::{fmt_duration, AppState};
use crate::link::DirStats;
use crate::world::{fmt_instant, NodeKind, Sim};
use crate::LinkId;

/// Drops of one node by reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDrops {
    /// The node's name.
    pub node: String,
    /// Non-zero drop counters, in counter order.
    pub drops: Vec<(DropReason, u64)>,
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The text of [`Summary::render`].
    text: String,
    /// Drops per node (nodes without drops left out).
    pub drops: Vec<NodeDrops>,
}

impl Summary {
    /// Collects the summary of `sim` as it stands.
    pub fn of(sim: &Sim) -> Summary {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "simulated time {}, {} events processed, seed {}",
            fmt_instant(sim.now()),
            sim.events_processed(),
            sim.seed()
        );
        let hosts = sim
            .node_ids()
            .filter(|&n| sim.node_kind(n) == Some(NodeKind::Host))
            .count();
        let _ = writeln!(
            out,
            "{} nodes ({hosts} hosts, {} routers), {} links, {} applications",
            sim.node_ids().count(),
            sim.node_ids().count() - hosts,
            sim.link_count(),
            sim.apps().len()
        );
        if !sim.apps().is_empty() {
            out.push_str("\nflows\n");
        }
        for app in sim.apps() {
            let node = sim.node_name(app.node).unwrap_or("?");
            match &app.state {
                AppState::Ping(p) => {
                    let s = p.stats();
                    let _ = writeln!(
                        out,
                        "  {:<16} ping {node} -> {}: sent {} delivered {} lost {} errors {} dup {} send-failures {}  rtt min/avg/max {}",
                        app.name,
                        p.config().dst,
                        s.sent,
                        s.received,
                        s.lost(),
                        s.errors,
                        s.duplicates,
                        s.send_failures,
                        s.rtt
                    );
                    for e in s.error_log.iter().take(8) {
                        let _ = writeln!(
                            out,
                            "  {:<16}   seq {} at {}: {:?} from {}",
                            "",
                            e.seq,
                            fmt_instant(e.at),
                            e.kind,
                            e.from
                        );
                    }
                    if s.error_log.len() > 8 {
                        let _ = writeln!(out, "  {:<16}   ({} more errors)", "", s.errors - 8);
                    }
                }
                AppState::Udp(u) => {
                    let s = u.stats();
                    let c = u.config();
                    let _ = writeln!(
                        out,
                        "  {:<16} udp  {node} -> {}: sent {} delivered {} lost {} dup {} reordered {} icmp-errors {} send-failures {}  one-way delay min/avg/max {}",
                        app.name,
                        c.dst,
                        s.sent,
                        s.delivered,
                        s.lost(),
                        s.duplicated,
                        s.reordered,
                        s.icmp_errors,
                        s.send_failures,
                        s.delay
                    );
                }
                AppState::Tcp(t) => {
                    let s = t.stats();
                    let opt =
                        |d: Option<stack::Duration>| d.map_or_else(|| "-".into(), fmt_duration);
                    let _ = writeln!(
                        out,
                        "  {:<16} tcp  {node} -> {}: bytes {} sent {} delivered {} corrupted {} {}  setup {} completion {} goodput {}",
                        app.name,
                        t.config().dst,
                        t.config().bytes,
                        s.sent,
                        s.delivered,
                        s.corrupted,
                        if t.is_complete() { "complete" } else { "incomplete" },
                        opt(t.setup_time()),
                        opt(t.completion_time()),
                        t.goodput_bps().map_or_else(|| "-".into(), fmt_rate)
                    );
                    if let Some(e) = &s.error {
                        let _ = writeln!(out, "  {:<16}   error: {e}", "");
                    }
                }
            }
        }
        let mut drops = Vec::new();
        for id in sim.node_ids() {
            let Some(stack) = sim.stack(id) else { continue };
            let c = stack.counters();
            let nz: Vec<_> = c.nonzero_drops().collect();
            if !nz.is_empty() {
                drops.push(NodeDrops {
                    node: sim.node_name(id).unwrap_or("?").to_string(),
                    drops: nz,
                });
            }
        }
        out.push_str("\ndrops by node\n");
        if drops.is_empty() {
            out.push_str("  none\n");
        }
        for d in &drops {
            let list: Vec<String> = d
                .drops
                .iter()
                .map(|(r, n)| format!("{} {n}", r.name()))
                .collect();
            let _ = writeln!(out, "  {:<16} {}", d.node, list.join(", "));
        }
        out.push_str("\nlinks (both directions)\n");
        for i in 0..sim.link_count() {
            let id = LinkId(i as u32);
            let Some([ab, ba]) = sim.link_stats(id) else {
                continue;
            };
            let mut t = DirStats::default();
            t.accumulate(&ab);
            t.accumulate(&ba);
            let _ = writeln!(
                out,
                "  {:<16} frames {} delivered {} queue-drops {} down-drops {} lost {} reordered {} duplicated {} corrupted {} max-queue {}",
                sim.link_name(id).unwrap_or("?"),
                t.transmitted,
                t.delivered,
                t.queue_drops,
                t.down_drops,
                t.lost,
                t.reordered,
                t.duplicated,
                t.corrupted,
                t.max_queue
            );
        }
        Summary { text: out, drops }
    }

    /// The summary as text.
    pub fn render(&self) -> &str {
        &self.text
    }
}

/// A rate in bits per second as megabits with three decimals ("9.851Mbit/s").
pub fn fmt_rate(bps: u64) -> String {
    format!("{}.{:03}Mbit/s", bps / 1_000_000, bps / 1_000 % 1_000)
}

/// A wall-clock duration as seconds with milliseconds.
pub fn fmt_wall(d: std::time::Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}
