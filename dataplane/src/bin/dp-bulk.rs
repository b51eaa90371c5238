//! `dp-bulk`: a TCP bulk sender and receiver on the dataplane's shared-memory sockets
//! that print their throughput (an example application of `dpsock`).
//!
//! ```text
//! dp-bulk [--attach PATH] send DEST [--seconds N]    write for N seconds, then close
//! dp-bulk [--attach PATH] recv ADDR                  accept one connection, read to its end
//! ```

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use dpsock::{Client, TcpListener, TcpStream};

/// TCP bulk transfer over the dataplane's shared-memory sockets.
#[derive(Parser)]
#[command(name = "dp-bulk", version)]
struct Cli {
    /// The daemon's attach socket (its configuration's `sockets.path`).
    #[arg(
        long,
        default_value = "/run/dataplane-apps.sock",
        env = "DATAPLANE_APPS"
    )]
    attach: PathBuf,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Connect to DEST and write for a while.
    Send {
        /// The receiver.
        dest: SocketAddr,
        /// Seconds to send.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// Accept one connection on ADDR and read it to its end.
    Recv {
        /// Address to listen on (a port is required).
        addr: SocketAddr,
    },
}

fn report(what: &str, bytes: u64, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!(
        "{what} {bytes} bytes in {s:.2} s: {:.3} Gbit/s",
        bytes as f64 * 8.0 / s.max(1e-9) / 1e9
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match Client::attach(&cli.attach) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dp-bulk: {e}");
            return ExitCode::from(2);
        }
    };
    let r: std::io::Result<()> = (|| match cli.mode {
        Mode::Send { dest, seconds } => {
            let mut s = TcpStream::connect(&client, dest)?;
            let chunk = vec![0x5au8; 64 * 1024];
            let t = Instant::now();
            let mut bytes = 0u64;
            while t.elapsed().as_secs_f64() < seconds {
                s.write_all(&chunk)?;
                bytes += chunk.len() as u64;
            }
            s.flush()?;
            s.shutdown(std::net::Shutdown::Write)?;
            report("sent", bytes, t);
            Ok(())
        }
        Mode::Recv { addr } => {
            let l = TcpListener::bind(&client, addr)?;
            println!("ready {addr}");
            let _ = std::io::stdout().flush();
            let (mut s, peer) = l.accept()?;
            let t = Instant::now();
            let mut buf = vec![0u8; 256 * 1024];
            let mut bytes = 0u64;
            loop {
                let n = s.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
            }
            report(&format!("received from {peer}"), bytes, t);
            Ok(())
        }
    })();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dp-bulk: {e}");
            ExitCode::FAILURE
        }
    }
}
