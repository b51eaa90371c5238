//! `dataplane`: the dataplane's command-line entry point.
//!
//! Subcommands: `demo` (stack instances wired in memory), `check` (validate a
//! configuration file without starting anything) and `run` (the router or host on real
//! interfaces, see [`runtime`], with its control plane in [`control`]) and `sim` (a
//! topology file in the laboratory, see [`simcmd`]).

use clap::{Parser, Subcommand};

mod attach;
mod config;
mod control;
mod demo;
mod metrics;
mod runtime;
mod simcmd;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A network stack as a library: router, host stack and laboratory.
#[derive(Parser)]
#[command(name = "dataplane", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Wire three stack instances (host, router, host) together in memory and show them
    /// resolving neighbors, pinging, forwarding and reporting ICMP errors.
    Demo,
    /// Load and validate a configuration file exactly as `run` would, without starting
    /// anything or needing privileges; print a summary, or the one-line error (exit 2).
    Check {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
    /// Open the configured ports and run one pinned stack shard per worker core until
    /// SIGINT or SIGTERM, then print each port's counters. While it runs, `dpctl` talks
    /// to it on its control socket; with `[sockets]`, applications attach (dpsock).
    /// Startup failures (a missing interface, missing privileges) are one line on
    /// stderr and exit status 1.
    Run {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: std::path::PathBuf,
        /// Serve Prometheus text metrics at http://ADDR/metrics (overrides the file's
        /// `metrics`), e.g. 127.0.0.1:9100.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Run a topology file (configs/topologies/*.toml) in the laboratory on a virtual
    /// clock and print the summary: flows, drops by reason per node, links, time.
    Sim {
        /// The topology file.
        file: std::path::PathBuf,
        /// The seed of every random choice (overrides the file's).
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated time to run, like 10s or 500ms (overrides the file's; without
        /// either, run until idle).
        #[arg(long, value_name = "DURATION")]
        until: Option<String>,
        /// Write one pcap file per link, with simulated timestamps, into DIR.
        #[arg(long, value_name = "DIR")]
        pcap: Option<std::path::PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => match demo::Demo::new() {
            Ok(mut d) => {
                print!("{}", d.run());
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dataplane demo: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Check { config } => {
            match config::Config::load(&config).and_then(|c| c.check().map(|_| c)) {
                Ok(c) => {
                    print!("{}", c.summary());
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dataplane check: {e}");
                    std::process::ExitCode::from(2)
                }
            }
        }
        Command::Run { config, metrics } => run(&config, runtime::RunOptions { metrics }),
        Command::Sim {
            file,
            seed,
            until,
            pcap,
        } => simcmd::run(&file, &simcmd::SimOptions { seed, until, pcap }),
    }
}

/// `dataplane run`: load, install the signal handlers, run, print the counters.
fn run(path: &std::path::Path, options: runtime::RunOptions) -> std::process::ExitCode {
    let config = match config::Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dataplane run: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(config.log_level);
    // Installed before any driver opens, kept until the process ends.
    let shutdown = match drivers::Shutdown::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dataplane run: cannot install the SIGINT/SIGTERM handlers: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime::run(&config, &options, &shutdown) {
        Ok(report) => {
            if let Some(sig) = report.signal {
                eprintln!("dataplane: stopped by signal {sig}");
            }
            print!("{}", report.render());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dataplane run: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Structured logs on stderr at the configured level; `RUST_LOG` overrides it.
fn init_logging(level: config::LogLevel) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.name()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
