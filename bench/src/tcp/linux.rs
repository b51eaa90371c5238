//! The Linux reference: std sockets over a veth pair between two namespaces (loopback
//! when namespaces cannot be made), client and server threads pinned to cores, with
//! TCP_NODELAY.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::drivers::{pin, Netns};

use super::pair::MSG;

/// Where the Linux figures were taken.
pub(crate) struct Link {
    /// Client and server namespaces (none: loopback in ours).
    ns: Option<(Netns, Netns)>,
    server: String,
}

impl Link {
    /// A veth pair between two new namespaces, else loopback.
    pub(crate) fn new() -> Link {
        match veth() {
            Ok(ns) => Link {
                ns: Some(ns),
                server: "10.201.0.2".into(),
            },
            Err(e) => {
                eprintln!("tcp: no veth pair ({e}); the Linux figures use loopback");
                Link {
                    ns: None,
                    server: "127.0.0.1".into(),
                }
            }
        }
    }

    /// "veth" or "loopback".
    pub(crate) fn kind(&self) -> &'static str {
        if self.ns.is_some() {
            "veth"
        } else {
            "loopback"
        }
    }

    fn spawn<T: Send + 'static>(
        &self,
        server_side: bool,
        core: usize,
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> JoinHandle<Result<T, String>> {
        let ns = self.ns.as_ref().map(|(c, s)| {
            let n = if server_side { s } else { c };
            n.name.clone()
        });
        std::thread::spawn(move || {
            if let Some(name) = ns {
                let n = Netns { name };
                let r = n.enter();
                // Not ours to delete: the link owns the namespace.
                std::mem::forget(n);
                r?;
            }
            pin(core);
            f()
        })
    }

    /// Runs a server (`serve` on each accepted connection until `stop` says) and the
    /// client; the client's result.
    fn run<T: Send + 'static>(
        &self,
        port: u16,
        serve: fn(TcpStream) -> std::io::Result<()>,
        client: impl FnOnce(SocketAddr) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        let ip = self.server.clone();
        let server = self.spawn(true, 1, move || {
            let l = TcpListener::bind((ip.as_str(), port)).map_err(|e| format!("bind: {e}"))?;
            let _ = tx.send(l.local_addr().map_err(|e| e.to_string()));
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let _ = c.set_nodelay(true);
                let mut hdr = [0u8; 1];
                // A connection sending one byte 0xff then closing stops the server.
                if c.peek(&mut hdr).is_ok_and(|n| n == 1) && hdr[0] == 0xff {
                    return Ok(());
                }
                let _ = serve(c);
            }
            Ok(())
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the Linux server did not start".to_string())??;
        let r = self.spawn(false, 0, move || client(addr)).join();
        // Stop the server.
        let stop = self.spawn(false, 0, move || {
            let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
            s.write_all(&[0xff]).map_err(|e| e.to_string())
        });
        let _ = stop.join();
        let _ = server.join();
        r.map_err(|_| "the Linux client panicked".to_string())?
    }

    /// Request/response transactions over one connection for about `secs`:
    /// (transactions, seconds).
    pub(crate) fn rr(&self, secs: f64) -> Result<(u64, f64), String> {
        self.run(5102, echo, move |addr| {
            let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            let req = [0x11u8; MSG];
            let mut buf = [0u8; MSG];
            let mut one = |s: &mut TcpStream| -> Result<(), String> {
                s.write_all(&req).map_err(|e| format!("write: {e}"))?;
                s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))
            };
            for _ in 0..1000 {
                one(&mut s)?;
            }
            let t0 = Instant::now();
            let mut n = 0u64;
            while t0.elapsed().as_secs_f64() < secs {
                for _ in 0..256 {
                    one(&mut s)?;
                }
                n += 256;
            }
            Ok((n, t0.elapsed().as_secs_f64()))
        })
    }

    /// New connections per second for about `secs` (at most `max`): connect, request,
    /// response, close (the client first). (connections, seconds).
    pub(crate) fn cps(&self, secs: f64, max: usize) -> Result<(u64, f64), String> {
        self.run(5103, echo, move |addr| {
            let req = [0x11u8; MSG];
            let mut buf = [0u8; MSG];
            let t0 = Instant::now();
            let mut n = 0u64;
            while (n as usize) < max && t0.elapsed().as_secs_f64() < secs {
                let mut s = match TcpStream::connect(addr) {
                    Ok(s) => s,
                    // Ephemeral ports exhausted by TIME-WAIT: stop there.
                    Err(e) if n > 0 && e.kind() == std::io::ErrorKind::AddrNotAvailable => break,
                    Err(e) => return Err(format!("connect: {e}")),
                };
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.write_all(&req).map_err(|e| format!("write: {e}"))?;
                s.read_exact(&mut buf).map_err(|e| format!("read: {e}"))?;
                drop(s);
                n += 1;
            }
            Ok((n, t0.elapsed().as_secs_f64()))
        })
    }
}

/// Answers each 64-byte request with 64 bytes until the end of the stream.
fn echo(mut c: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; MSG];
    let resp = [0x22u8; MSG];
    loop {
        match c.read_exact(&mut buf) {
            Ok(()) => c.write_all(&resp)?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Two namespaces joined by a veth pair: client 10.201.0.1, server 10.201.0.2.
fn veth() -> Result<(Netns, Netns), String> {
    let c = Netns::new("tc")?;
    let s = Netns::new("ts")?;
    crate::drivers::ip(&[
        "link", "add", "tc0", "netns", &c.name, "type", "veth", "peer", "name", "ts0", "netns",
        &s.name,
    ])?;
    c.ip("addr add 10.201.0.1/24 dev tc0")?;
    s.ip("addr add 10.201.0.2/24 dev ts0")?;
    c.ip("link set tc0 up")?;
    s.ip("link set ts0 up")?;
    c.wait_up("tc0")?;
    s.wait_up("ts0")?;
    Ok((c, s))
}
