//! `dp-httpd`: a small HTTP/1.1 static file server on the dataplane's shared-memory TCP
//! sockets (an example application of `dpsock`, run by the tests with Linux `curl` as
//! the client).
//!
//! ```text
//! dp-httpd [--attach PATH] ADDR ROOT      serve the files under ROOT (GET and HEAD)
//! ```
//!
//! One thread per connection; `Connection: close` after each response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use dpsock::{Client, TcpListener, TcpStream};

/// A static file server over the dataplane's TCP.
#[derive(Parser)]
#[command(name = "dp-httpd", version)]
struct Cli {
    /// The daemon's attach socket (its configuration's `sockets.path`).
    #[arg(
        long,
        default_value = "/run/dataplane-apps.sock",
        env = "DATAPLANE_APPS"
    )]
    attach: PathBuf,
    /// Address to listen on, e.g. 0.0.0.0:80.
    addr: SocketAddr,
    /// Directory to serve.
    root: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = match Client::attach(&cli.attach) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dp-httpd: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&client, cli.addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("dp-httpd: listen on {}: {e}", cli.addr);
            return ExitCode::FAILURE;
        }
    };
    println!("ready http://{}/", cli.addr);
    let _ = std::io::stdout().flush();
    loop {
        match listener.accept() {
            Ok((conn, peer)) => {
                let root = cli.root.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(conn, &root) {
                        eprintln!("dp-httpd: {peer}: {e}");
                    }
                });
            }
            Err(e) => {
                eprintln!("dp-httpd: accept: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// The file for a request path, never outside `root`.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let mut p = root.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => p.push(s),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if p.is_dir() {
        p.push("index.html");
    }
    p.is_file().then_some(p)
}

fn serve(conn: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Headers, up to the blank line.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut conn = reader.into_inner();
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head = method == "HEAD";
    if method != "GET" && !head {
        return respond(
            &mut conn,
            "405 Method Not Allowed",
            b"only GET and HEAD\n",
            false,
        );
    }
    let Some(file) = resolve(root, target) else {
        return respond(&mut conn, "404 Not Found", b"not found\n", head);
    };
    let mut f = std::fs::File::open(&file)?;
    let len = f.metadata()?.len();
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )?;
    if !head {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n])?;
        }
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Write)?;
    // Let the peer close first, so that our close is not a reset of unread data.
    let mut sink = [0u8; 512];
    while conn.read(&mut sink)? > 0 {}
    Ok(())
}

fn respond(conn: &mut TcpStream, status: &str, body: &[u8], head: bool) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if !head {
        conn.write_all(body)?;
    }
    conn.flush()?;
    conn.shutdown(std::net::Shutdown::Write)
}
