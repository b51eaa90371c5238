//! `dp-get`: an HTTP/1.1 client on the dataplane's shared-memory TCP sockets (an example
//! application of `dpsock`; the tests download from a Linux `python3 -m http.server`
//! with it).
//!
//! ```text
//! dp-get [--attach PATH] [-o FILE] http://ADDR:PORT/PATH
//! ```
//!
//! The URL names an address, not a host name (there is no resolver). The body goes to
//! FILE (or stdout); a line `STATUS BYTES SECONDS GBIT/S` goes to stderr. Exits 0 for a
//! 2xx response whose body arrived whole (as long as `Content-Length` says, or up to
//! the server's close when it says nothing), 1 otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use dpsock::{Client, TcpStream};

/// Downloads one URL over the dataplane's TCP.
#[derive(Parser)]
#[command(name = "dp-get", version)]
struct Cli {
    /// The daemon's attach socket (its configuration's `sockets.path`).
    #[arg(
        long,
        default_value = "/run/dataplane-apps.sock",
        env = "DATAPLANE_APPS"
    )]
    attach: PathBuf,
    /// Where to write the body (default: stdout).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Seconds without a byte from the server before giving up.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// `http://ADDR:PORT/PATH`, e.g. `http://[2001:db8::1]:8000/file`.
    url: String,
}

/// The address and the request target of an `http://` URL.
fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = authority
        .parse::<SocketAddr>()
        .or_else(|_| {
            // No port: 80.
            let host = authority.trim_start_matches('[').trim_end_matches(']');
            host.parse::<std::net::IpAddr>()
                .map(|ip| SocketAddr::new(ip, 80))
        })
        .map_err(|_| format!("{url}: `{authority}` is not ADDR[:PORT] (no host names)"))?;
    Ok((addr, path.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dp-get: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<bool, String> {
    let (addr, target) = parse_url(&cli.url)?;
    let client = Client::attach(&cli.attach).map_err(|e| format!("attach: {e}"))?;
    let start = Instant::now();
    let mut conn = TcpStream::connect(&client, addr).map_err(|e| format!("{addr}: {e}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(cli.timeout.max(1))))
        .map_err(|e| e.to_string())?;
    let host = match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    write!(
        conn,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: dp-get\r\nConnection: close\r\n\r\n"
    )
    .and_then(|_| conn.flush())
    .map_err(|e| format!("send request: {e}"))?;

    let mut reader = BufReader::with_capacity(256 * 1024, conn);
    let mut status_line = String::new();
    reader
        .read_line(&mut status_line)
        .map_err(|e| format!("read status: {e}"))?;
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP response: {:?}", status_line.trim_end()))?;
    let mut length: Option<u64> = None;
    loop {
        let mut line = String::new();
        if reader
            .read_line(&mut line)
            .map_err(|e| format!("read headers: {e}"))?
            == 0
        {
            return Err("connection closed in the headers".into());
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("bad Content-Length: {value:?}"))?,
                );
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && !value.trim().eq_ignore_ascii_case("identity")
            {
                return Err(format!("Transfer-Encoding {} not supported", value.trim()));
            }
        }
    }
    let mut out: Box<dyn Write> = match &cli.output {
        Some(p) => Box::new(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut got = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let want = match length {
            Some(l) if got >= l => break,
            Some(l) => buf.len().min((l - got) as usize),
            None => buf.len(),
        };
        let n = reader
            .read(&mut buf[..want])
            .map_err(|e| format!("read body after {got} bytes: {e}"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| format!("write body: {e}"))?;
        got += n as u64;
    }
    out.flush().map_err(|e| format!("write body: {e}"))?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{status} {got} {secs:.3} {:.3}",
        got as f64 * 8.0 / secs / 1e9
    );
    let whole = length.is_none_or(|l| l == got);
    if !whole {
        eprintln!(
            "dp-get: body cut short: {got} of {} bytes",
            length.unwrap_or(0)
        );
    }
    Ok((200..300).contains(&status) && whole)
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        let (a, p) = parse_url("http://203.0.113.2:8000/big.bin").unwrap();
        assert_eq!(a.to_string(), "203.0.113.2:8000");
        assert_eq!(p, "/big.bin");
        let (a, p) = parse_url("http://[2001:db8:2::2]:8000").unwrap();
        assert_eq!(a.to_string(), "[2001:db8:2::2]:8000");
        assert_eq!(p, "/");
        let (a, _) = parse_url("http://192.0.2.1/x").unwrap();
        assert_eq!(a.port(), 80);
        assert!(parse_url("https://192.0.2.1/").is_err());
        assert!(parse_url("http://example.org/").is_err());
    }
}
