//! `dpbench sockets`: the shared-memory socket API measured, beside Linux sockets on the
//! same veth path.
//!
//! Two namespaces joined by a veth pair: `dpb-<pid>-sd` holds `dataplane run` as a host
//! stack on AF_XDP (`d0`, busy-polling on the last core) with `[sockets]`; `dpb-<pid>-sp`
//! holds the peer, the Linux kernel's own sockets on `p0` (a UDP echo server and a TCP
//! sink). This process is the application: it attaches, then measures
//! - the ring round trip: a no-op request to a shard and its completion;
//! - a 64-byte UDP echo with the peer, through the dataplane;
//! - one TCP connection's bulk throughput to the peer's sink (with `write`, then with
//!   the application writing in the send ring itself, `write_with`).
//!
//! Then `dataplane` stops, `d0` gets the same address in the kernel, and the same echo
//! and bulk run between Linux sockets over the same veth pair: the reference. The
//! application and the peer share the first core; the daemon has the last.
//! Percentiles are exact (sorted samples). The namespaces go with the run, also on error.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::drivers::{pin, round3, Netns};

/// Options of `dpbench sockets`.
#[derive(Debug, Clone, clap::Args)]
pub struct SocketsArgs {
    /// Round trips per latency measurement.
    #[arg(long, default_value_t = 20_000)]
    pub count: usize,
    /// Seconds of each bulk transfer.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// The dataplane binary (built with `cargo build --release -p dataplane`).
    #[arg(long, default_value = "target/release/dataplane")]
    pub binary: PathBuf,
}

const OURS: &str = "198.51.100.1";
const PEER: &str = "198.51.100.2";

/// Latency percentiles of `v` (sorted in place), in the unit of the samples.
pub fn percentiles(v: &mut [u64]) -> (u64, u64, u64) {
    if v.is_empty() {
        return (0, 0, 0);
    }
    v.sort_unstable();
    let at = |p: f64| v[((v.len() as f64 * p) as usize).min(v.len() - 1)];
    (at(0.5), at(0.99), v[v.len() - 1])
}

struct Daemon {
    child: Option<Child>,
    files: Vec<PathBuf>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn in_ns<T: Send + 'static>(
    ns: &Netns,
    core: usize,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> std::thread::JoinHandle<Result<T, String>> {
    let ns = Netns {
        name: ns.name.clone(),
    };
    std::thread::spawn(move || {
        ns.enter()?;
        // Not ours to delete: the caller's value owns the namespace.
        std::mem::forget(ns);
        pin(core);
        f()
    })
}

/// A UDP echo server and a TCP sink in the peer namespace, until `stop`.
fn peer_servers(
    sp: &Netns,
    stop: Arc<AtomicBool>,
) -> Result<Vec<std::thread::JoinHandle<Result<(), String>>>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let s1 = stop.clone();
    let tx1 = tx.clone();
    let echo = in_ns(sp, 0, move || {
        let s = UdpSocket::bind((PEER, 7)).map_err(|e| format!("echo bind: {e}"))?;
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .map_err(|e| e.to_string())?;
        let _ = tx1.send(());
        let mut buf = [0u8; 2048];
        while !s1.load(Ordering::Relaxed) {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(&buf[..n], from);
            }
        }
        Ok(())
    });
    let sink = in_ns(sp, 0, move || {
        let l = TcpListener::bind((PEER, 5001)).map_err(|e| format!("sink bind: {e}"))?;
        l.set_nonblocking(true).map_err(|e| e.to_string())?;
        let _ = tx.send(());
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((mut c, _)) => {
                    // Each connection on its own thread: one that is slow to finish
                    // does not hold up the next measurement's.
                    let _ = c.set_nonblocking(false);
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 1 << 20];
                        while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        Ok(())
    });
    for _ in 0..2 {
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the peer's servers did not start".to_string())?;
    }
    Ok(vec![echo, sink])
}

/// Echo round trips (µs × 1000 = ns samples) with `send`/`recv` closures.
fn echo_rtts(
    count: usize,
    mut send: impl FnMut(&[u8]) -> Result<(), String>,
    mut recv: impl FnMut(&mut [u8]) -> Result<Option<usize>, String>,
) -> Result<(Vec<u64>, usize), String> {
    let mut samples = Vec::with_capacity(count);
    let mut lost = 0;
    let mut buf = [0u8; 2048];
    for i in 0..count {
        let mut msg = [0u8; 64];
        msg[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let t = Instant::now();
        send(&msg)?;
        loop {
            match recv(&mut buf)? {
                Some(n) if n == 64 && buf[..8] == msg[..8] => {
                    samples.push(t.elapsed().as_nanos() as u64);
                    break;
                }
                Some(_) => continue,
                None => {
                    lost += 1;
                    break;
                }
            }
        }
    }
    Ok((samples, lost))
}

/// Bytes written in `seconds` through `w`, as Gbit/s.
fn bulk(seconds: f64, mut w: impl FnMut(&[u8]) -> Result<usize, String>) -> Result<f64, String> {
    let chunk = vec![0x5au8; 64 * 1024];
    let t = Instant::now();
    let mut bytes = 0u64;
    while t.elapsed().as_secs_f64() < seconds {
        bytes += w(&chunk)? as u64;
    }
    Ok(bytes as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9)
}

/// Runs the scenario; the figures for the last-line JSON.
pub fn run(args: &SocketsArgs) -> Result<Map<String, Value>, String> {
    if !args.binary.exists() {
        return Err(format!(
            "{} not found: build it first with `cargo build --release -p dataplane`, or pass --binary",
            args.binary.display()
        ));
    }
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len()).max(1);
    let daemon_core = cores - 1;
    let sd = Netns::new("sd")?;
    let sp = Netns::new("sp")?;
    crate::drivers::ip(&[
        "link", "add", "d0", "netns", &sd.name, "type", "veth", "peer", "name", "p0", "netns",
        &sp.name,
    ])?;
    sp.ip(&format!("addr add {PEER}/24 dev p0"))?;
    for (ns, dev) in [(&sd, "d0"), (&sp, "p0")] {
        ns.ip(&format!("link set {dev} up"))?;
    }
    sd.wait_up("d0")?;
    sp.wait_up("p0")?;
    // The peer's frames carry full checksums (no TX offload to a device that skips them).
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &sp.name, "ethtool", "-K", "p0", "tx", "off",
        ])
        .output();
    let peer_mac = sp.mac("p0")?;
    let mac = peer_mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    let tmp = std::env::temp_dir();
    let (apps, ctl, cfg) = (
        tmp.join(format!("{}-apps.sock", sd.name)),
        tmp.join(format!("{}-ctl.sock", sd.name)),
        tmp.join(format!("{}.toml", sd.name)),
    );
    let toml = format!(
        "name = \"host\"\nforwarding = false\ncontrol-socket = {:?}\nlog-level = \"warn\"\n\n\
         [[ports]]\nname = \"d0\"\ndriver = \"afxdp\"\nsteering = \"all\"\nipv4 = [\"{OURS}/24\"]\n\n\
         [[neighbors]]\nport = \"d0\"\naddress = \"{PEER}\"\nmac = \"{mac}\"\n\n\
         [sockets]\npath = {:?}\n\n[workers]\ncores = [{daemon_core}]\nidle = \"busy-poll\"\n",
        ctl.display().to_string(),
        apps.display().to_string()
    );
    std::fs::write(&cfg, toml).map_err(|e| format!("{}: {e}", cfg.display()))?;
    let child = Command::new("ip")
        .args(["netns", "exec", &sd.name])
        .arg(&args.binary)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", args.binary.display()))?;
    let mut daemon = Daemon {
        child: Some(child),
        files: vec![cfg, apps.clone(), ctl],
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        if let Ok(c) = dpsock::Client::attach(&apps) {
            break c;
        }
        if Instant::now() > deadline {
            return Err("the dataplane did not offer its sockets within 20 s".into());
        }
        if let Some(Ok(Some(st))) = daemon.child.as_mut().map(|c| c.try_wait()) {
            return Err(format!("dataplane run exited: {st}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stop = Arc::new(AtomicBool::new(false));
    let servers = peer_servers(&sp, stop.clone())?;
    pin(0);
    let mut out = Map::new();
    println!(
        "shared-memory sockets: application and Linux peer on core 0, dataplane (AF_XDP, busy-poll) on core {daemon_core}"
    );

    // Ring round trip.
    for _ in 0..1000 {
        client.nop().map_err(|e| format!("nop: {e}"))?;
    }
    let mut ring = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let t = Instant::now();
        client.nop().map_err(|e| format!("nop: {e}"))?;
        ring.push(t.elapsed().as_nanos() as u64);
    }
    let (p50, p99, max) = percentiles(&mut ring);
    println!("  ring round trip (no-op):   p50 {p50} ns  p99 {p99} ns  max {max} ns");
    out.insert("ring_rtt_p50_ns".into(), Value::from(p50));
    out.insert("ring_rtt_p99_ns".into(), Value::from(p99));

    // UDP echo through the dataplane.
    let peer: SocketAddr = format!("{PEER}:7").parse().map_err(|e| format!("{e}"))?;
    let mut s = dpsock::UdpSocket::bind(&client, "0.0.0.0:0".parse().map_err(|e| format!("{e}"))?)
        .map_err(|e| format!("bind: {e}"))?;
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let s = std::cell::RefCell::new(s);
    let (mut ours, lost) = echo_rtts(
        args.count,
        |m| {
            s.borrow()
                .send_to(m, peer)
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
        |b| match s.borrow().recv_from(b) {
            Ok((n, _)) => Ok(Some(n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.to_string()),
        },
    )?;
    let (e50, e99, _) = percentiles(&mut ours);
    println!(
        "  UDP echo 64 B, dataplane:  p50 {:.1} us  p99 {:.1} us  ({lost} lost)",
        e50 as f64 / 1e3,
        e99 as f64 / 1e3
    );
    out.insert(
        "echo_rtt_p50_us".into(),
        Value::from(round3(e50 as f64 / 1e3)),
    );
    out.insert(
        "echo_rtt_p99_us".into(),
        Value::from(round3(e99 as f64 / 1e3)),
    );
    out.insert("echo_lost".into(), Value::from(lost));

    // Bulk TCP through the dataplane.
    let sink: SocketAddr = format!("{PEER}:5001").parse().map_err(|e| format!("{e}"))?;
    let mut conn =
        dpsock::TcpStream::connect(&client, sink).map_err(|e| format!("connect: {e}"))?;
    let ours_gbps = bulk(args.seconds, |c| conn.write(c).map_err(|e| e.to_string()))?;
    let _ = conn.flush();
    drop(conn);
    println!("  TCP bulk, dataplane:       {ours_gbps:.2} Gbit/s");
    out.insert("bulk_gbps".into(), Value::from(round3(ours_gbps)));
    // The same with the application producing its bytes in the send ring itself
    // (`write_with`): no copy on our side of the shared memory.
    let mut conn =
        dpsock::TcpStream::connect(&client, sink).map_err(|e| format!("connect: {e}"))?;
    let lent_gbps = bulk(args.seconds, |c| {
        conn.write_with(|room| {
            let n = room.len().min(c.len());
            room[..n].fill(0x5a);
            n
        })
        .map_err(|e| e.to_string())
    })?;
    let _ = conn.flush();
    drop(conn);
    println!("  TCP bulk, in place:        {lent_gbps:.2} Gbit/s (write_with)");
    out.insert("bulk_lent_gbps".into(), Value::from(round3(lent_gbps)));
    drop(s);
    drop(client);

    // The reference: Linux sockets in sd over the same veth.
    if let Some(mut c) = daemon.child.take() {
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .output();
        let _ = c.wait();
    }
    sd.ip(&format!("addr add {OURS}/24 dev d0"))?;
    let _ = Command::new("ip")
        .args([
            "netns", "exec", &sd.name, "ethtool", "-K", "d0", "tx", "off",
        ])
        .output();
    let count = args.count;
    let seconds = args.seconds;
    let linux = in_ns(&sd, 0, move || {
        let u = UdpSocket::bind((OURS, 0)).map_err(|e| e.to_string())?;
        u.set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(|e| e.to_string())?;
        let (mut rtt, lost) = echo_rtts(
            count,
            |m| u.send_to(m, peer).map(|_| ()).map_err(|e| e.to_string()),
            |b| match u.recv_from(b) {
                Ok((n, _)) => Ok(Some(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    Ok(None)
                }
                Err(e) => Err(e.to_string()),
            },
        )?;
        let mut t = TcpStream::connect(sink).map_err(|e| format!("linux connect: {e}"))?;
        let g = bulk(seconds, |c| t.write(c).map_err(|e| e.to_string()))?;
        Ok((percentiles(&mut rtt), lost, g))
    })
    .join()
    .map_err(|_| "the Linux reference thread panicked".to_string())??;
    let ((l50, l99, _), llost, lgbps) = linux;
    println!(
        "  UDP echo 64 B, Linux:      p50 {:.1} us  p99 {:.1} us  ({llost} lost)",
        l50 as f64 / 1e3,
        l99 as f64 / 1e3
    );
    println!("  TCP bulk, Linux:           {lgbps:.2} Gbit/s (kernel sockets on the same veth, TX checksum offload off)");
    out.insert(
        "linux_echo_rtt_p50_us".into(),
        Value::from(round3(l50 as f64 / 1e3)),
    );
    out.insert(
        "linux_echo_rtt_p99_us".into(),
        Value::from(round3(l99 as f64 / 1e3)),
    );
    out.insert("linux_bulk_gbps".into(), Value::from(round3(lgbps)));
    out.insert(
        "echo_p50_ratio_vs_linux".into(),
        Value::from(round3(e50 as f64 / l50.max(1) as f64)),
    );
    stop.store(true, Ordering::Relaxed);
    for h in servers {
        let _ = h.join();
    }
    drop(daemon);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_exact() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(percentiles(&mut v), (51, 100, 100));
        assert_eq!(percentiles(&mut []), (0, 0, 0));
        let mut one = vec![7];
        assert_eq!(percentiles(&mut one), (7, 7, 7));
    }
}
