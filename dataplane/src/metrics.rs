//! Prometheus text metrics (`--metrics 127.0.0.1:PORT`): a small HTTP server on its own
//! thread answering `GET /metrics` with the counters of every port and shard, in the
//! text exposition format (version 0.0.4). Every scrape takes a fresh snapshot from the
//! shards (a command each, between two rounds); nothing is kept in between.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::control::StatsSource;
use crate::runtime::shard::ShardStats;
use crate::runtime::PortReport;

/// A running metrics endpoint.
pub struct Metrics {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Metrics {
    /// Binds `addr` and serves it from a new thread.
    pub fn start(addr: SocketAddr, source: StatsSource) -> Result<Metrics, String> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| format!("metrics: cannot listen on {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("metrics: {addr}: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("dp-metrics".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((s, _)) => serve(s, &source),
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
            .map_err(|e| format!("metrics: cannot start its thread: {e}"))?;
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
        Ok(Metrics {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, source: &StatsSource) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, body) = if !request.starts_with("GET ") {
        ("405 Method Not Allowed", "only GET\n".to_string())
    } else if path != "/metrics" && path != "/" {
        ("404 Not Found", "try /metrics\n".to_string())
    } else {
        match source.collect() {
            Ok(shards) => ("200 OK", render(&source.totals(&shards), &shards)),
            Err(e) => ("503 Service Unavailable", format!("{e}\n")),
        }
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// The exposition text of a snapshot.
pub fn render(ports: &[PortReport], shards: &[ShardStats]) -> String {
    let mut s = String::new();
    let counter = |s: &mut String, name: &str, help: &str| {
        let _ = writeln!(
            s,
            "# HELP dataplane_{name} {help}\n# TYPE dataplane_{name} counter"
        );
    };
    type Get = fn(&PortReport) -> u64;
    let port_metrics: [(&str, &str, Get); 11] = [
        ("rx_packets_total", "Frames received by the stack.", |p| {
            p.stack.rx_packets
        }),
        ("rx_bytes_total", "Bytes received by the stack.", |p| {
            p.stack.rx_bytes
        }),
        ("tx_packets_total", "Frames queued for transmission.", |p| {
            p.stack.tx_packets
        }),
        ("tx_bytes_total", "Bytes queued for transmission.", |p| {
            p.stack.tx_bytes
        }),
        (
            "forwarded_total",
            "Packets forwarded out of the port.",
            |p| p.stack.forwarded,
        ),
        ("delivered_total", "Packets delivered locally.", |p| {
            p.stack.delivered
        }),
        ("icmp_errors_total", "ICMP errors sent.", |p| {
            p.stack.icmp_errors_sent
        }),
        (
            "driver_rx_packets_total",
            "Frames the driver received.",
            |p| p.driver.rx_packets,
        ),
        ("driver_tx_packets_total", "Frames the driver sent.", |p| {
            p.driver.tx_packets
        }),
        (
            "driver_rx_dropped_total",
            "Frames the kernel dropped before us.",
            |p| p.driver.rx_dropped,
        ),
        ("tx_unsent_total", "Frames the driver did not take.", |p| {
            p.tx_unsent
        }),
    ];
    for (name, help, get) in port_metrics {
        counter(&mut s, name, help);
        for p in ports {
            let _ = writeln!(s, "dataplane_{name}{{port=\"{}\"}} {}", p.name, get(p));
        }
    }
    counter(
        &mut s,
        "drops_total",
        "Frames dropped by the stack, by reason.",
    );
    for p in ports {
        for r in crate::control::drop_reasons() {
            let _ = writeln!(
                s,
                "dataplane_drops_total{{port=\"{}\",reason=\"{}\"}} {}",
                p.name,
                r.name(),
                p.stack.drops_for(r)
            );
        }
    }
    type GetShard = fn(&ShardStats) -> u64;
    let shard_metrics: [(&str, &str, GetShard); 5] = [
        (
            "shard_rx_packets_total",
            "Frames a shard's stack received.",
            |s| s.ports.iter().map(|p| p.stack.rx_packets).sum(),
        ),
        (
            "shard_handoff_out_total",
            "Frames a shard handed to another shard.",
            |s| s.handoff.rx_out,
        ),
        (
            "shard_handoff_full_total",
            "Frames dropped on full hand-off queues.",
            |s| s.handoff.rx_full + s.handoff.tx_full,
        ),
        (
            "shard_pool_empty_total",
            "Frames a shard's pool could not supply.",
            |s| s.pool_alloc_failures,
        ),
        (
            "shard_rounds_total",
            "Rounds of a shard's poll loop.",
            |s| s.rounds,
        ),
    ];
    for (name, help, get) in shard_metrics {
        counter(&mut s, name, help);
        for sh in shards {
            let _ = writeln!(s, "dataplane_{name}{{shard=\"{}\"}} {}", sh.shard, get(sh));
        }
    }
    s
}
