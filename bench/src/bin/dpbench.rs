//! `dpbench`: the dataplane's benchmark scenarios.
//!
//! `dpbench fastpath` measures the fast path: route lookup (`bench::lpm`; ours against the
//! reference crates on a synthetic full table) and, as it is added, forwarding. It prints
//! readable tables and, as the last line, one JSON object with every figure.

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
}

/// Options of `dpbench fastpath`.
#[derive(Debug, clap::Args)]
struct FastpathArgs {
    #[command(flatten)]
    lpm: bench::lpm::LpmArgs,
    /// Skip the LPM measurement.
    #[arg(long)]
    skip_lpm: bool,
}

fn fastpath(args: &FastpathArgs) -> Map<String, Value> {
    let mut summary = Map::new();
    if !args.skip_lpm {
        summary.extend(bench::lpm::run(&args.lpm));
    }
    summary
}

fn main() {
    let cli = Cli::parse();
    let summary = match cli.cmd {
        Cmd::Fastpath(a) => fastpath(&a),
    };
    println!("{}", Value::Object(summary));
}
