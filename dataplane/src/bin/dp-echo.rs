//! `dp-echo`: a UDP echo server and client on the dataplane's shared-memory sockets
//! (an example application of `dpsock`, also run by the tests).
//!
//! ```text
//! dp-echo [--attach PATH] server ADDR                 echo every datagram back to its sender
//! dp-echo [--attach PATH] client ADDR DEST [COUNT]    send COUNT datagrams, wait for each echo,
//!                                                     print round-trip percentiles
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use dpsock::{Client, UdpSocket};

/// UDP echo over the dataplane's shared-memory sockets.
#[derive(Parser)]
#[command(name = "dp-echo", version)]
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
    /// Echo every datagram back to its sender.
    Server {
        /// Address to bind, e.g. 0.0.0.0:7.
        addr: SocketAddr,
    },
    /// Send datagrams to DEST and wait for each echo.
    Client {
        /// Address to bind (port 0: any).
        addr: SocketAddr,
        /// The echo server.
        dest: SocketAddr,
        /// Datagrams to send.
        #[arg(default_value_t = 10)]
        count: u32,
        /// Payload bytes.
        #[arg(long, default_value_t = 64)]
        size: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match Client::attach(&cli.attach) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dp-echo: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match cli.mode {
        Mode::Server { addr } => server(&client, addr),
        Mode::Client {
            addr,
            dest,
            count,
            size,
        } => run_client(&client, addr, dest, count, size),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dp-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn server(client: &Client, addr: SocketAddr) -> std::io::Result<()> {
    let sock = UdpSocket::bind(client, addr)?;
    println!("ready {}", sock.local_addr()?);
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        sock.send_to(&buf[..n.min(buf.len())], from)?;
    }
}

fn run_client(
    client: &Client,
    addr: SocketAddr,
    dest: SocketAddr,
    count: u32,
    size: usize,
) -> std::io::Result<()> {
    let mut sock = UdpSocket::bind(client, addr)?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut rtts = Vec::with_capacity(count as usize);
    let mut buf = [0u8; 2048];
    let mut lost = 0;
    for i in 0..count {
        let mut msg = vec![b'x'; size.max(8)];
        msg[..4].copy_from_slice(&i.to_be_bytes());
        let t = Instant::now();
        sock.send_to(&msg, dest)?;
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, from)) if from == dest && buf[..n] == msg[..] => {
                    rtts.push(t.elapsed());
                    break;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    lost += 1;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    rtts.sort();
    let pct = |p: f64| {
        rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    println!(
        "{} echoed of {count}, {lost} lost; rtt p50 {:.1} us p99 {:.1} us max {:.1} us",
        rtts.len(),
        pct(0.5),
        pct(0.99),
        rtts.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
    );
    if rtts.is_empty() && count > 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no echo came back",
        ));
    }
    Ok(())
}
