//! The control plane of `dataplane run`: the Unix control socket that `dpctl` talks to,
//! the rate sampler, and (optionally) Prometheus metrics.
//!
//! It runs on the thread that called [`crate::runtime::run`], never on a worker core.
//! It keeps its own [`Stack`] as the master copy of the interface configuration and
//! the routes: a route change is validated and applied there, then the table is
//! published to the shards ([`crate::runtime::RoutePublisher`]). Everything else is a
//! closure queued on the shards' command queues, answered over a channel.
//!
//! # Protocol
//! One request per connection: a line of words (as `dpctl` sends them), answered by
//! `ok` or `error: <why>` on the first line, then the body, then the connection closes.
//! The socket is created with the process's umask (root's: only root may connect).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::IpAddr;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use drivers::{Capture, Shutdown};
use stack::neighbor::NeighborState;
use stack::route::{NextHop, RouteOrigin};
use stack::wire::EthernetAddress;
use stack::{DropReason, IpPrefix, PortId, RouteTarget, Stack};

use crate::config::Config;
use crate::runtime::shard::{Shard, ShardStats};
use crate::runtime::{port_totals, PortInfo, PortReport, RunOptions, Shared};

/// How long a request may take to arrive, and a shard to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How often the rates are sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Packet and byte rates per port, from the last two samples.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    /// Per port: received packets per second.
    pub rx_pps: Vec<f64>,
    /// Per port: transmitted packets per second.
    pub tx_pps: Vec<f64>,
    last: Option<(Instant, Vec<(u64, u64)>)>,
}

impl Rates {
    fn sample(&mut self, totals: &[PortReport]) {
        let now = Instant::now();
        let cur: Vec<(u64, u64)> = totals
            .iter()
            .map(|p| (p.stack.rx_packets, p.stack.tx_packets))
            .collect();
        if let Some((t, prev)) = &self.last {
            let dt = now.duration_since(*t).as_secs_f64();
            if dt > 0.0 {
                let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
                self.rx_pps = cur.iter().zip(prev).map(|(c, p)| rate(c.0, p.0)).collect();
                self.tx_pps = cur.iter().zip(prev).map(|(c, p)| rate(c.1, p.1)).collect();
            }
        }
        self.last = Some((now, cur));
    }
}

/// What the control socket, the sampler and the metrics endpoint share.
#[derive(Clone)]
pub struct StatsSource {
    shared: Arc<Shared>,
    names: Vec<String>,
    rates: Arc<Mutex<Rates>>,
}

impl StatsSource {
    /// Runs `f` on every shard, between two of its rounds, and returns the answers in
    /// shard order.
    pub fn on_each_shard<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Shard) -> T + Clone + Send + 'static,
    ) -> Result<Vec<T>, String> {
        on_each_shard(&self.shared, f)
    }

    /// A snapshot of every shard.
    pub fn collect(&self) -> Result<Vec<ShardStats>, String> {
        self.on_each_shard(|s| s.stats())
    }

    /// Per-port totals of a snapshot.
    pub fn totals(&self, shards: &[ShardStats]) -> Vec<PortReport> {
        port_totals(&self.names, shards)
    }

    /// The latest rates.
    pub fn rates(&self) -> Rates {
        self.rates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn on_each_shard<T: Send + 'static>(
    shared: &Shared,
    f: impl Fn(&mut Shard) -> T + Clone + Send + 'static,
) -> Result<Vec<T>, String> {
    let (tx, rx) = mpsc::channel();
    for (i, link) in shared.shards.iter().enumerate() {
        let (tx, f) = (tx.clone(), f.clone());
        let cmd: crate::runtime::shard::Command = Box::new(move |s: &mut Shard| {
            let _ = tx.send((s.id, f(s)));
        });
        if link.commands.push(cmd).is_err() {
            return Err(format!("shard {i} is not taking commands (queue full)"));
        }
        link.notify();
    }
    drop(tx);
    let deadline = Instant::now() + TIMEOUT;
    let mut out: Vec<(usize, T)> = Vec::with_capacity(shared.shards.len());
    while out.len() < shared.shards.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => out.push(v),
            Err(_) => return Err("a shard did not answer in time".to_string()),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// The control plane's state.
pub struct Control {
    name: String,
    stack: Stack,
    ports: Vec<PortInfo>,
    source: StatsSource,
    listener: Option<UnixListener>,
    socket_path: PathBuf,
    started: Instant,
    workers: Vec<Option<usize>>,
    metrics: Option<crate::metrics::Metrics>,
    attach: Option<crate::attach::AttachServer>,
}

impl Control {
    /// Binds the control socket (replacing a stale one, refusing a live one) and the
    /// metrics endpoint.
    pub fn new(
        config: &Config,
        options: &RunOptions,
        stack: Stack,
        shared: Arc<Shared>,
        ports: Vec<PortInfo>,
    ) -> Result<Control, String> {
        let path = config.control_socket.clone();
        let listener = bind(&path)?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("control socket {}: {e}", path.display()))?;
        let names = ports.iter().map(|p| p.name.clone()).collect();
        let source = StatsSource {
            shared,
            names,
            rates: Arc::new(Mutex::new(Rates::default())),
        };
        let metrics = match options.metrics.or(config.metrics) {
            Some(addr) => Some(crate::metrics::Metrics::start(addr, source.clone())?),
            None => None,
        };
        let attach = match &config.sockets {
            Some(k) => Some(crate::attach::AttachServer::bind(k)?),
            None => None,
        };
        let mut workers = config
            .workers
            .cores
            .iter()
            .map(|&c| Some(c))
            .collect::<Vec<_>>();
        if workers.is_empty() {
            workers.push(None);
        }
        Ok(Control {
            name: config.name.clone(),
            stack,
            ports,
            source,
            listener: Some(listener),
            socket_path: path,
            started: Instant::now(),
            workers,
            metrics,
            attach,
        })
    }

    /// Serves requests until a shutdown is requested, sampling rates once a second.
    pub fn serve(&mut self, shutdown: &Shutdown) {
        let mut next_sample = Instant::now();
        while !shutdown.requested() {
            if Instant::now() >= next_sample {
                next_sample += SAMPLE_EVERY;
                if let Ok(s) = self.source.collect() {
                    let totals = self.source.totals(&s);
                    self.source
                        .rates
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .sample(&totals);
                }
            }
            if let Some(a) = &mut self.attach {
                a.poll(&self.source.shared);
            }
            let accepted = self.listener.as_ref().map(|l| l.accept());
            match accepted {
                Some(Ok((stream, _))) => self.handle(stream),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Removes the socket file and stops the metrics endpoint.
    pub fn close(&mut self) {
        if self.listener.take().is_some() {
            let _ = std::fs::remove_file(&self.socket_path);
        }
        if let Some(m) = self.metrics.take() {
            m.stop();
        }
        if let Some(mut a) = self.attach.take() {
            a.close();
        }
    }

    fn handle(&mut self, stream: UnixStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(TIMEOUT));
        let mut line = String::new();
        let mut reader = BufReader::new((&stream).take(4096));
        let reply = match reader.read_line(&mut line) {
            Ok(_) => {
                let words: Vec<&str> = line.split_whitespace().collect();
                tracing::debug!(request = %line.trim(), "control request");
                self.execute(&words)
            }
            Err(e) => Err(format!("cannot read the request: {e}")),
        };
        let text = match reply {
            Ok(body) => format!("ok\n{body}"),
            Err(e) => {
                tracing::info!(request = %line.trim(), error = %e, "control request refused");
                format!("error: {e}\n")
            }
        };
        let mut stream = stream;
        let _ = stream.write_all(text.as_bytes());
    }

    /// Runs one request; the body of the answer or the error.
    pub fn execute(&mut self, words: &[&str]) -> Result<String, String> {
        match words {
            ["show", "ports"] => Ok(self.show_ports()),
            ["show", "routes"] => Ok(self.show_routes()),
            ["show", "neighbors"] => self.show_neighbors(),
            ["show", "stats"] => self.show_stats(false),
            ["show", "stats", "json"] => self.show_stats(true),
            ["route", "add", rest @ ..] => self.route_add(rest),
            ["route", "del", prefix] => self.route_del(prefix),
            ["neighbor", "add", addr, "lladdr", mac, "dev", port] => {
                self.neighbor_add(addr, mac, port)
            }
            ["neighbor", "del", addr, "dev", port] => self.neighbor_del(addr, port),
            ["neighbor", "flush"] => self.neighbor_flush(),
            ["capture", "start", port, file] => self.capture_start(port, file),
            ["capture", "stop", port] => self.capture_stop(port),
            [] => Err("empty request".to_string()),
            _ => Err(format!(
                "unknown request `{}` (see dpctl --help)",
                words.join(" ")
            )),
        }
    }

    fn port(&self, name: &str) -> Result<usize, String> {
        self.ports
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
                format!("no port named {name:?} (ports: {})", known.join(", "))
            })
    }

    fn port_name(&self, id: PortId) -> &str {
        self.ports
            .get(usize::from(id.0))
            .map_or("?", |p| p.name.as_str())
    }

    fn show_ports(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} up {}s, {} worker(s) on cores {}",
            self.name,
            self.started.elapsed().as_secs(),
            self.workers.len(),
            self.workers
                .iter()
                .map(|c| c.map_or("any".to_string(), |c| c.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        );
        if let Some(a) = &self.attach {
            let _ = writeln!(s, "applications attached: {}", a.attached());
        }
        let _ = writeln!(
            s,
            "{:<12} {:<9} {:<12} {:<17} {:>5} {:>6} {:>6} {:>5}  addresses",
            "port", "driver", "interface", "mac", "mtu", "link", "queues", "shard"
        );
        for p in &self.ports {
            let _ = writeln!(
                s,
                "{:<12} {:<9} {:<12} {:<17} {:>5} {:>6} {:>6} {:>5}  {}",
                p.name,
                p.driver.name(),
                p.interface,
                p.mac.to_string(),
                p.mtu,
                p.link_mtu,
                p.queues,
                p.owner,
                p.addresses.join(" ")
            );
        }
        s
    }

    fn show_routes(&self) -> String {
        let mut routes: Vec<_> = self.stack.routes().iter().collect();
        routes.sort_by_key(|r| r.prefix);
        let mut s = String::new();
        for r in routes {
            let hop = match r.next_hop {
                NextHop::Local => "local".to_string(),
                NextHop::Connected { port } => format!("dev {}", self.port_name(port)),
                NextHop::Gateway { port, via } => {
                    format!("via {via} dev {}", self.port_name(port))
                }
                NextHop::Blackhole => "blackhole".to_string(),
                NextHop::Unreachable => "unreachable".to_string(),
            };
            let _ = writeln!(s, "{} {hop} proto {}", r.prefix, r.origin.name());
        }
        s
    }

    fn show_neighbors(&self) -> Result<String, String> {
        let per_shard = self
            .source
            .on_each_shard(|s| s.stack.neighbors().collect::<Vec<_>>())?;
        let mut s = String::new();
        for (shard, list) in per_shard.iter().enumerate() {
            let mut list = list.clone();
            list.sort_by_key(|n| (n.port.0, n.addr));
            for n in list {
                let mac = if n.state == NeighborState::Incomplete {
                    "-".to_string()
                } else {
                    n.mac.to_string()
                };
                let _ = writeln!(
                    s,
                    "{} dev {} lladdr {mac} {} shard {shard}",
                    n.addr,
                    self.port_name(n.port),
                    n.state.name()
                );
            }
        }
        Ok(s)
    }

    fn show_stats(&self, json: bool) -> Result<String, String> {
        let shards = self.source.collect()?;
        let totals = self.source.totals(&shards);
        let rates = self.source.rates();
        if json {
            return Ok(stats_json(&totals, &shards, &rates).to_string() + "\n");
        }
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<12} {:>12} {:>14} {:>12} {:>14} {:>12} {:>10} {:>10} {:>8} {:>8}",
            "port",
            "rx-packets",
            "rx-bytes",
            "tx-packets",
            "tx-bytes",
            "forwarded",
            "delivered",
            "drops",
            "rx-Mpps",
            "tx-Mpps"
        );
        for (i, p) in totals.iter().enumerate() {
            let c = &p.stack;
            let _ = writeln!(
                s,
                "{:<12} {:>12} {:>14} {:>12} {:>14} {:>12} {:>10} {:>10} {:>8.3} {:>8.3}",
                p.name,
                c.rx_packets,
                c.rx_bytes,
                c.tx_packets,
                c.tx_bytes,
                c.forwarded,
                c.delivered,
                c.total_drops(),
                rates.rx_pps.get(i).copied().unwrap_or(0.0) / 1e6,
                rates.tx_pps.get(i).copied().unwrap_or(0.0) / 1e6,
            );
        }
        let _ = writeln!(s, "drops by reason:");
        let mut any = false;
        for p in &totals {
            for (r, n) in p.stack.nonzero_drops() {
                any = true;
                let _ = writeln!(s, "  {:<12} {:<28} {n}", p.name, r.name());
            }
            let d = &p.driver;
            for (what, n) in [
                ("driver-rx-dropped", d.rx_dropped),
                ("driver-tx-dropped", d.tx_dropped),
                ("driver-rx-pool-empty", d.rx_pool_empty),
                ("tx-unsent", p.tx_unsent),
                ("driver-errors", p.errors),
            ] {
                if n > 0 {
                    any = true;
                    let _ = writeln!(s, "  {:<12} {what:<28} {n}", p.name);
                }
            }
        }
        if !any {
            let _ = writeln!(s, "  none");
        }
        let _ = writeln!(s, "shards:");
        for sh in &shards {
            let rx: u64 = sh.ports.iter().map(|p| p.stack.rx_packets).sum();
            let tx: u64 = sh.ports.iter().map(|p| p.stack.tx_packets).sum();
            let h = &sh.handoff;
            let _ = writeln!(
                s,
                "  shard {} core {}: rx {rx} tx {tx}; handoff rx-out {} rx-in {} rx-full {} tx-out {} tx-in {} tx-full {}; snoop {} lost {}; pool-empty {}; apps {} sockets {}",
                sh.shard,
                sh.core.map_or("any".to_string(), |c| c.to_string()),
                h.rx_out,
                h.rx_in,
                h.rx_full,
                h.tx_out,
                h.tx_in,
                h.tx_full,
                h.snoop_out,
                h.snoop_lost,
                sh.pool_alloc_failures,
                sh.apps.0,
                sh.apps.1
            );
        }
        Ok(s)
    }

    fn route_add(&mut self, rest: &[&str]) -> Result<String, String> {
        let usage =
            "usage: route add PREFIX (via GATEWAY [dev PORT] | dev PORT | blackhole | unreachable)";
        let (prefix, spec) = rest.split_first().ok_or(usage)?;
        let prefix: IpPrefix = prefix
            .parse()
            .map_err(|e| format!("prefix {prefix:?}: {e}"))?;
        let target = match spec {
            ["via", gw] => RouteTarget::Via(parse_addr(gw)?),
            ["via", gw, "dev", port] => {
                RouteTarget::ViaPort(parse_addr(gw)?, PortId(self.port(port)? as u16))
            }
            ["dev", port] => RouteTarget::Port(PortId(self.port(port)? as u16)),
            ["blackhole"] => RouteTarget::Blackhole,
            ["unreachable"] => RouteTarget::Unreachable,
            _ => return Err(usage.to_string()),
        };
        if let Some(r) = self.stack.routes().get(prefix) {
            if r.origin != RouteOrigin::Static {
                return Err(format!(
                    "{prefix} is a {} route of an interface address; it cannot be replaced",
                    r.origin.name()
                ));
            }
        }
        self.stack
            .add_route(prefix, target)
            .map_err(|e| format!("route {prefix}: {e}"))?;
        self.stack.routes_arc();
        self.source.shared.routes.publish(self.stack.routes_arc());
        tracing::info!(%prefix, "route added");
        Ok(String::new())
    }

    fn route_del(&mut self, prefix: &str) -> Result<String, String> {
        let prefix: IpPrefix = prefix
            .parse()
            .map_err(|e| format!("prefix {prefix:?}: {e}"))?;
        match self.stack.routes().get(prefix) {
            None => return Err(format!("no route for {prefix}")),
            Some(r) if r.origin != RouteOrigin::Static => {
                return Err(format!(
                    "{prefix} is a {} route of an interface address; it cannot be removed",
                    r.origin.name()
                ))
            }
            Some(_) => {}
        }
        self.stack
            .remove_route(prefix)
            .map_err(|e| format!("route {prefix}: {e}"))?;
        self.source.shared.routes.publish(self.stack.routes_arc());
        tracing::info!(%prefix, "route removed");
        Ok(String::new())
    }

    fn neighbor_add(&mut self, addr: &str, mac: &str, port: &str) -> Result<String, String> {
        let addr = parse_addr(addr)?;
        let mac: EthernetAddress = mac
            .parse()
            .map_err(|_| format!("lladdr {mac:?} is not a MAC address"))?;
        if !mac.is_unicast() {
            return Err(format!("lladdr {mac} is not a unicast MAC address"));
        }
        let port = PortId(self.port(port)? as u16);
        // Validated on the control plane's stack first: the same answer every shard
        // would give.
        self.stack
            .add_static_neighbor(port, addr, mac)
            .map_err(|e| format!("neighbor {addr}: {e}"))?;
        let results = self.source.on_each_shard(move |s| {
            s.stack
                .add_static_neighbor(port, addr, mac)
                .map_err(|e| e.to_string())
        })?;
        results
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(String::new()), |e| Err(format!("neighbor {addr}: {e}")))
    }

    fn neighbor_del(&mut self, addr: &str, port: &str) -> Result<String, String> {
        let addr = parse_addr(addr)?;
        let port = PortId(self.port(port)? as u16);
        self.stack.remove_neighbor(port, addr);
        let found = self
            .source
            .on_each_shard(move |s| s.stack.remove_neighbor(port, addr))?;
        if found.iter().any(|f| *f) {
            Ok(String::new())
        } else {
            Err(format!("no neighbor {addr} on {}", self.port_name(port)))
        }
    }

    fn neighbor_flush(&mut self) -> Result<String, String> {
        self.stack.flush_neighbors();
        self.source.on_each_shard(|s| s.stack.flush_neighbors())?;
        Ok(String::new())
    }

    fn capture_start(&mut self, port: &str, file: &str) -> Result<String, String> {
        let index = self.port(port)?;
        let path = PathBuf::from(file);
        let cap =
            Capture::create(&path, drivers::pcap::DEFAULT_SNAPLEN).map_err(|e| e.to_string())?;
        let owner = self.ports[index].owner;
        let slot = Arc::new(Mutex::new(Some((path.clone(), cap))));
        let results = self.source.on_each_shard(move |s| {
            if s.id != owner {
                return Ok(());
            }
            let Some(o) = s.owned_slot(index) else {
                return Err("the port's owner does not hold it".to_string());
            };
            if let Some((p, _)) = &s.owned[o].capture {
                return Err(format!("a capture is already running into {}", p.display()));
            }
            let taken = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            s.owned[o].capture = taken;
            Ok(())
        })?;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            let _ = std::fs::remove_file(&path);
            return Err(format!("capture on {port}: {e}"));
        }
        tracing::info!(port, file, "capture started");
        Ok(format!("capturing {port} into {file}\n"))
    }

    fn capture_stop(&mut self, port: &str) -> Result<String, String> {
        let index = self.port(port)?;
        let owner = self.ports[index].owner;
        let results = self.source.on_each_shard(move |s| {
            if s.id != owner {
                return None;
            }
            let o = s.owned_slot(index)?;
            let (path, mut cap) = s.owned[o].capture.take()?;
            let flushed = cap.flush().map_err(|e| e.to_string());
            Some(flushed.map(|()| (path, cap.packets())))
        })?;
        match results.into_iter().flatten().next() {
            None => Err(format!("no capture is running on {port}")),
            Some(Err(e)) => Err(format!("capture on {port}: {e}")),
            Some(Ok((path, packets))) => {
                tracing::info!(port, packets, "capture stopped");
                Ok(format!(
                    "{packets} packets captured on {port} into {}\n",
                    path.display()
                ))
            }
        }
    }

    /// Starts the captures the configuration asks for.
    pub fn start_configured_captures(&mut self, config: &Config) -> Result<(), String> {
        for (port, path) in &config.capture {
            let name = config.ports[*port].name.clone();
            self.capture_start(&name, &path.to_string_lossy())
                .map_err(|e| format!("{}: capture: {e}", config.origin))?;
        }
        Ok(())
    }
}

fn parse_addr(s: &str) -> Result<IpAddr, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
}

/// Binds the control socket; a stale file (nobody listening) is replaced, a live one is
/// an error.
fn bind(path: &std::path::Path) -> Result<UnixListener, String> {
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!(
                "control socket {}: another dataplane is listening there (set control-socket to another path)",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    UnixListener::bind(path).map_err(|e| format!("control socket {}: {e}", path.display()))
}

/// The stats as one JSON object: per port totals (with drops by reason and rates) and
/// per shard counters.
pub fn stats_json(
    totals: &[PortReport],
    shards: &[ShardStats],
    rates: &Rates,
) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let ports: Vec<Value> = totals
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let c = &p.stack;
            let mut drops = Map::new();
            for (r, n) in c.nonzero_drops() {
                drops.insert(r.name().to_string(), Value::from(n));
            }
            let d = &p.driver;
            json!({
                "name": p.name,
                "rx_packets": c.rx_packets,
                "rx_bytes": c.rx_bytes,
                "tx_packets": c.tx_packets,
                "tx_bytes": c.tx_bytes,
                "forwarded": c.forwarded,
                "delivered": c.delivered,
                "icmp_errors_sent": c.icmp_errors_sent,
                "icmp_rate_limited": c.icmp_rate_limited,
                "drops": c.total_drops(),
                "drops_by_reason": drops,
                "rx_mpps": rates.rx_pps.get(i).copied().unwrap_or(0.0) / 1e6,
                "tx_mpps": rates.tx_pps.get(i).copied().unwrap_or(0.0) / 1e6,
                "driver": {
                    "rx_packets": d.rx_packets,
                    "tx_packets": d.tx_packets,
                    "rx_errors": d.rx_errors,
                    "tx_errors": d.tx_errors,
                    "rx_dropped": d.rx_dropped,
                    "tx_dropped": d.tx_dropped,
                    "rx_pool_empty": d.rx_pool_empty,
                },
                "tx_unsent": p.tx_unsent,
                "driver_errors": p.errors,
            })
        })
        .collect();
    let shards: Vec<Value> = shards
        .iter()
        .map(|s| {
            json!({
                "shard": s.shard,
                "core": s.core,
                "rx_packets": s.ports.iter().map(|p| p.stack.rx_packets).sum::<u64>(),
                "tx_packets": s.ports.iter().map(|p| p.stack.tx_packets).sum::<u64>(),
                "handoff": s.handoff,
                "pool_alloc_failures": s.pool_alloc_failures,
                "rounds": s.rounds,
                "apps": s.apps.0,
                "app_sockets": s.apps.1,
            })
        })
        .collect();
    json!({ "ports": ports, "shards": shards })
}

/// Every drop reason's name, for metrics that list them all.
pub fn drop_reasons() -> impl Iterator<Item = DropReason> {
    DropReason::ALL.iter().copied()
}
