//! `dataplane`: the dataplane's command-line entry point.
//!
//! Subcommands today: `demo` (stack instances wired in memory) and `check` (validate a
//! configuration file without starting anything). The router daemon (`run --config`)
//! and the simulator (`sim`) arrive with later issues.

use clap::{Parser, Subcommand};

mod config;
mod demo;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A network stack as a library: router, host stack and laboratory.
#[derive(Parser)]
#[command(name = "dataplane", version, about)]
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
    }
}
