//! `dpbench`: the dataplane's benchmark scenarios.
//!
//! `dpbench fastpath` measures the fast path: route lookup (`bench::lpm`; ours against the
//! reference crates on a synthetic full table) and, as it is added, forwarding. It prints
//! readable tables and, as the last line, one JSON object with every figure.
//!
//! `dpbench drivers` measures each driver's receive and transmit rate on a veth pair in
//! namespaces it makes and removes (`bench::drivers`), beside kernel-only references.
//!
//! `dpbench sockets` measures the shared-memory socket API through a running
//! `dataplane run` beside Linux sockets on the same veth pair (`bench::sockets`).
//!
//! `dpbench router` measures `dataplane run` against Linux forwarding and an XDP-native
//! reference on one veth topology (`bench::router`); `dpbench report` writes the newest
//! result's tables into README.md.

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use bench::lpm::counting::Counting;

/// mimalloc, wrapped to count live heap bytes so that table sizes can be reported.
#[global_allocator]
static GLOBAL: Counting<mimalloc::MiMalloc> = Counting(mimalloc::MiMalloc);

/// Benchmarks of the dataplane.
#[derive(Debug, Parser)]
#[command(name = "dpbench", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The fast path: longest-prefix-match lookups on a full synthetic table.
    Fastpath(FastpathArgs),
    /// Driver receive and transmit rates on a veth pair (needs root), beside kernel-only
    /// references.
    Drivers(bench::drivers::DriversArgs),
    /// The laboratory: a 100 + 100 host dumbbell for 64 simulated seconds of UDP, and a
    /// 1,000-node topology (simulated events per second).
    Sim(bench::sim::SimArgs),
    /// Bulk TCP between two stacks in one process (in-memory frames, one core).
    Tcp(bench::tcp::TcpArgs),
    /// Shared-memory sockets (needs root): ring round trip, UDP echo and TCP bulk
    /// through `dataplane run`, beside Linux sockets on the same veth pair.
    Sockets(bench::sockets::SocketsArgs),
    /// Our router (`dataplane run`, AF_XDP) beside Linux forwarding and an XDP-native
    /// reference on one veth topology (needs root): maximum rates, sizes, latency at
    /// fixed loads, route table sizes, worker scaling.
    Router(bench::router::RouterArgs),
    /// Rewrite the router figures in README.md (between its dpbench markers) from the
    /// newest bench/results/router-*.json (or `--file`), with SVG charts.
    Report(ReportArgs),
}

/// Options of `dpbench report`.
#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// The results file (default: the newest bench/results/router-*.json).
    #[arg(long)]
    file: Option<std::path::PathBuf>,
}

/// Options of `dpbench fastpath`.
#[derive(Debug, clap::Args)]
struct FastpathArgs {
    #[command(flatten)]
    lpm: bench::lpm::LpmArgs,
    /// Skip the LPM measurement.
    #[arg(long)]
    skip_lpm: bool,
    /// Skip the forwarding measurement.
    #[arg(long)]
    skip_forward: bool,
    /// Packets per forwarding round.
    #[arg(long, default_value_t = 2_000_000)]
    forward_packets: usize,
}

/// Forwarding cost per packet on the full table and on a one-route table.
fn forward(args: &FastpathArgs) -> Map<String, Value> {
    let mut out = Map::new();
    let rounds = args.lpm.rounds.max(1);
    let full = bench::tables::synthetic_v4(args.lpm.routes_v4, 1);
    let one = vec![("0.0.0.0/0".parse().expect("default route"), 0u32)];
    println!(
        "\nforwarding: 64-byte IPv4/UDP, batches of {}, one core, {} packets x {rounds} rounds",
        bench::forward::BATCH,
        args.forward_packets
    );
    for (name, table) in [("full", &full), ("one_route", &one)] {
        match bench::forward::measure(table, &full, args.forward_packets, rounds, 7) {
            Ok(r) => {
                println!(
                    "  {name:<10} {:>8} routes  {:>6.1} ns/packet (best {:.1}, worst {:.1})  = {:.1} Mpps  (table load {:.0} ms)",
                    r.routes, r.ns_per_packet, r.best_ns_per_packet, r.worst_ns_per_packet, 1e3 / r.ns_per_packet, r.load_ms
                );
                let key = if name == "full" {
                    "forward_ns_per_packet".to_string()
                } else {
                    format!("forward_ns_per_packet_{name}")
                };
                out.insert(key, Value::from((r.ns_per_packet * 10.0).round() / 10.0));
                if name == "full" {
                    out.insert(
                        "forward_mpps".into(),
                        Value::from((1e4 / r.ns_per_packet).round() / 10.0),
                    );
                    out.insert(
                        "forward_ns_spread".into(),
                        Value::from(vec![r.best_ns_per_packet, r.worst_ns_per_packet]),
                    );
                    out.insert("forward_routes_v4".into(), Value::from(r.routes));
                }
            }
            Err(e) => {
                eprintln!("forwarding measurement failed: {e}");
                std::process::exit(1);
            }
        }
    }
    out
}

fn fastpath(args: &FastpathArgs) -> Map<String, Value> {
    let mut summary = Map::new();
    if !args.skip_lpm {
        summary.extend(bench::lpm::run(&args.lpm));
    }
    if !args.skip_forward {
        summary.extend(forward(args));
    }
    summary
}

fn main() {
    let cli = Cli::parse();
    let summary = match cli.cmd {
        Cmd::Fastpath(a) => fastpath(&a),
        Cmd::Sim(a) => match bench::sim::run(&a) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("sim benchmark failed: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Drivers(a) => match bench::drivers::run(&a) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("drivers benchmark failed: {e}");
                std::process::exit(1);
            }
        },
        Cmd::Tcp(a) => bench::tcp::run(&a).unwrap_or_else(|e| {
            eprintln!("tcp benchmark failed: {e}");
            std::process::exit(1);
        }),
        Cmd::Sockets(a) => bench::sockets::run(&a).unwrap_or_else(|e| {
            eprintln!("sockets benchmark failed: {e}");
            std::process::exit(1);
        }),
        Cmd::Report(a) => {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            match bench::router::report::run(
                &root.join("../README.md"),
                &root.join("results"),
                a.file.as_deref(),
            ) {
                Ok(f) => {
                    println!("README.md: router figures from {}", f.display());
                    return;
                }
                Err(e) => {
                    eprintln!("report failed: {e}");
                    std::process::exit(1);
                }
            }
        }
        Cmd::Router(a) => match bench::router::run(&a) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("router benchmark failed: {e}");
                std::process::exit(1);
            }
        },
    };
    println!("{}", Value::Object(summary));
}
