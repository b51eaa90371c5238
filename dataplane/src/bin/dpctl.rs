//! `dpctl`: the control CLI of a running `dataplane run`, in the style of `ip`.
//!
//! It sends one request line over the daemon's Unix control socket and prints the
//! answer; a refused request prints the daemon's reason on stderr and exits 1, a daemon
//! that cannot be reached exits 2.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// Control a running dataplane: show its ports, routes, neighbors and counters, change
/// routes and neighbors, capture packets.
#[derive(Parser)]
#[command(name = "dpctl", version)]
struct Cli {
    /// The daemon's control socket (its configuration's `control-socket`).
    #[arg(
        long,
        short,
        env = "DATAPLANE_SOCKET",
        default_value = "/run/dataplane.sock"
    )]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show state: ports, routes, neighbors or stats.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Add or delete a static route; it takes effect on every worker without a restart.
    Route {
        #[command(subcommand)]
        op: Route,
    },
    /// Add, delete or flush neighbor (ARP/NDP) entries on every worker.
    Neighbor {
        #[command(subcommand)]
        op: Neighbor,
    },
    /// Capture a port's received and sent frames to a pcap file.
    Capture {
        #[command(subcommand)]
        op: Capture,
    },
}

#[derive(Subcommand)]
enum Show {
    /// Ports: driver, interface, MAC, MTU, queues, owning worker, addresses.
    Ports,
    /// The route table (connected, local and static routes).
    Routes,
    /// Each worker's neighbor entries and their states.
    Neighbors,
    /// Per port and per worker: packets, bytes, drops by reason, current Mpps.
    Stats {
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Route {
    /// `route add PREFIX via GATEWAY [dev PORT]`, `route add PREFIX dev PORT`,
    /// `route add PREFIX blackhole` or `route add PREFIX unreachable`.
    Add {
        /// The destination, e.g. 192.0.2.0/24 or 2001:db8:99::/48.
        prefix: String,
        /// Where it goes: `via GATEWAY [dev PORT]`, `dev PORT`, `blackhole`,
        /// `unreachable`.
        #[arg(required = true, num_args = 1.., allow_hyphen_values = true)]
        target: Vec<String>,
    },
    /// `route del PREFIX`: removes a static route.
    Del {
        /// The destination prefix of the route.
        prefix: String,
    },
}

#[derive(Subcommand)]
enum Neighbor {
    /// `neighbor add ADDRESS lladdr MAC dev PORT`: a static entry.
    Add {
        /// The neighbor's IPv4 or IPv6 address.
        address: String,
        /// `lladdr MAC dev PORT`.
        #[arg(required = true, num_args = 4)]
        rest: Vec<String>,
    },
    /// `neighbor del ADDRESS dev PORT`.
    Del {
        /// The neighbor's address.
        address: String,
        /// `dev PORT`.
        #[arg(required = true, num_args = 2)]
        rest: Vec<String>,
    },
    /// Removes every entry, static ones included.
    Flush,
}

#[derive(Subcommand)]
enum Capture {
    /// `capture start PORT FILE`: write the port's frames to FILE (pcap).
    Start {
        /// The port's name.
        port: String,
        /// The pcap file (relative paths are taken from the current directory).
        file: PathBuf,
    },
    /// `capture stop PORT`: close the capture and print how many frames it holds.
    Stop {
        /// The port's name.
        port: String,
    },
}

/// The request line for a command.
fn request(cmd: &Command) -> Result<String, String> {
    let mut w: Vec<String> = Vec::new();
    let mut push = |s: &str| w.push(s.to_string());
    match cmd {
        Command::Show { what } => {
            push("show");
            match what {
                Show::Ports => push("ports"),
                Show::Routes => push("routes"),
                Show::Neighbors => push("neighbors"),
                Show::Stats { json } => {
                    push("stats");
                    if *json {
                        push("json");
                    }
                }
            }
        }
        Command::Route { op } => {
            push("route");
            match op {
                Route::Add { prefix, target } => {
                    push("add");
                    push(prefix);
                    target.iter().for_each(|t| push(t));
                }
                Route::Del { prefix } => {
                    push("del");
                    push(prefix);
                }
            }
        }
        Command::Neighbor { op } => {
            push("neighbor");
            match op {
                Neighbor::Add { address, rest } => {
                    push("add");
                    push(address);
                    rest.iter().for_each(|t| push(t));
                }
                Neighbor::Del { address, rest } => {
                    push("del");
                    push(address);
                    rest.iter().for_each(|t| push(t));
                }
                Neighbor::Flush => push("flush"),
            }
        }
        Command::Capture { op } => {
            push("capture");
            match op {
                Capture::Start { port, file } => {
                    push("start");
                    push(port);
                    let abs = std::path::absolute(file)
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                    let s = abs.to_str().ok_or("the file name is not UTF-8")?;
                    push(s);
                }
                Capture::Stop { port } => {
                    push("stop");
                    push(port);
                }
            }
        }
    }
    if let Some(bad) = w
        .iter()
        .find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(format!(
            "{bad:?}: arguments may not be empty or contain spaces"
        ));
    }
    Ok(w.join(" "))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let line = match request(&cli.command) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("dpctl: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stream = match UnixStream::connect(&cli.socket) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "dpctl: cannot reach the dataplane at {}: {e} (is `dataplane run` running? --socket sets the path)",
                cli.socket.display()
            );
            return ExitCode::from(2);
        }
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut answer = String::new();
    let sent = stream
        .write_all(format!("{line}\n").as_bytes())
        .and_then(|()| stream.shutdown(std::net::Shutdown::Write))
        .and_then(|()| stream.read_to_string(&mut answer).map(|_| ()));
    if let Err(e) = sent {
        eprintln!("dpctl: {}: {e}", cli.socket.display());
        return ExitCode::from(2);
    }
    match answer.split_once('\n') {
        Some(("ok", body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Some((err, _)) if err.starts_with("error: ") => {
            eprintln!("dpctl: {}", &err["error: ".len()..]);
            ExitCode::FAILURE
        }
        _ => {
            eprintln!("dpctl: unexpected answer from the dataplane: {answer:?}");
            ExitCode::from(2)
        }
    }
}
