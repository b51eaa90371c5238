//! `dataplane`: the dataplane's command-line entry point.
//!
//! Subcommands today: `demo` (stack instances wired in memory). The router daemon
//! (`run --config`), `check`, and the simulator (`sim`) arrive with later issues.

use clap::{Parser, Subcommand};

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
    }
}
