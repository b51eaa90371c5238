//! The router's TOML configuration: parsed once, validated at the edge.
//!
//! [`Config::load`] reads a file into raw serde structs (unknown keys refused), then
//! validates every value into the stack's own types ([`Ipv4Cidr`], [`IpPrefix`],
//! [`EthernetAddress`], ...). Each error names the file, the line, the key and what is
//! wrong, for example
//! `configs/router.toml:14: ports[1].ipv4[0]: "203.0.113.1/33": prefix length 33 is longer than 32`.
//!
//! [`Config::build_stack`] then applies ports, routes and neighbors to a [`Stack`] exactly
//! as `dataplane run` does, so `dataplane check` refuses what `run` would refuse.
//!
//! Left to run time: whether an interface exists, whether a worker core exists on this
//! machine, and the privileges a driver needs.

use sim::tomlpos::{key_at, Lines as LineIndex};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use stack::wire::EthernetAddress;
use stack::{
    FramePool, InterfaceConfig, IpPrefix, Ipv4Cidr, Ipv6Cidr, PoolConfig, PortId, RouteTarget,
    Stack, StackConfig, TcpConfig,
};
use toml::Spanned;

/// Why a configuration was refused: the file, the line, the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file name (or the origin name given to [`Config::from_str`]).
    pub origin: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The key, as a path (`ports[1].ipv4[0]`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Which driver a port uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// AF_XDP sockets behind an XDP steering program.
    AfXdp,
    /// An AF_PACKET socket.
    AfPacket,
    /// A TAP device.
    Tap,
    /// An in-memory link (no kernel interface; for tests and the simulator).
    Memory,
}

impl DriverKind {
    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            DriverKind::AfXdp => "afxdp",
            DriverKind::AfPacket => "afpacket",
            DriverKind::Tap => "tap",
            DriverKind::Memory => "memory",
        }
    }
}

/// Which frames the XDP program of an AF_XDP port hands to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Steering {
    /// Every frame (router ports).
    All,
    /// Only traffic for our addresses; the rest goes to the kernel.
    Host,
}

impl Steering {
    /// The XDP program mode.
    pub fn mode(self) -> drivers::afxdp::Mode {
        match self {
            Steering::All => drivers::afxdp::Mode::TakeAll,
            Steering::Host => drivers::afxdp::Mode::Host,
        }
    }

    /// The name used in the file.
    pub fn name(self) -> &'static str {
        match self {
            Steering::All => "all",
            Steering::Host => "host",
        }
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational messages (the default).
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name used in the file (and by `tracing` filters).
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// What a worker does when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Poll without pause (lowest latency, one full core per worker).
    BusyPoll,
    /// Poll, and after this many empty polls in a row sleep on the driver's descriptor.
    PollThenSleep {
        /// Empty polls before sleeping (at least 1).
        empty_polls: u32,
    },
}

/// One port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// Our name for the port (unique).
    pub name: String,
    /// The driver.
    pub driver: DriverKind,
    /// The kernel interface (the port name unless given).
    pub interface: String,
    /// Receive/transmit queues to open (at least 1).
    pub queues: u16,
    /// MTU.
    pub mtu: u16,
    /// A MAC override; `None` takes the interface's own MAC at run time.
    pub mac: Option<EthernetAddress>,
    /// XDP steering (AF_XDP only).
    pub steering: Steering,
    /// IPv4 addresses with their subnet length.
    pub ipv4: Vec<Ipv4Cidr>,
    /// IPv6 addresses with their subnet length.
    pub ipv6: Vec<Ipv6Cidr>,
}

impl PortConfig {
    /// The stack's interface configuration, with `mac` where the file gives none.
    pub fn interface_config(&self, mac: EthernetAddress) -> InterfaceConfig {
        let mut c = InterfaceConfig::new(self.name.clone(), self.mac.unwrap_or(mac));
        c.mtu = self.mtu;
        c.ipv4 = self.ipv4.clone();
        c.ipv6 = self.ipv6.clone();
        c
    }

    /// The port's own addresses (both families), steered to us in host mode.
    pub fn addresses(&self) -> Vec<IpAddr> {
        let v4 = self.ipv4.iter().map(|c| IpAddr::V4(c.addr()));
        let v6 = self.ipv6.iter().map(|c| IpAddr::V6(c.addr()));
        v4.chain(v6).collect()
    }
}

/// Where a static route goes; ports are indexes into [`Config::ports`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteSpec {
    /// Through a gateway on whichever port's network holds it.
    Via(IpAddr),
    /// Through a gateway on a named port.
    ViaDev(IpAddr, usize),
    /// Directly out of a port.
    Dev(usize),
    /// Discard silently.
    Blackhole,
    /// Discard with ICMP unreachable.
    Unreachable,
}

/// One static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// The destination.
    pub prefix: IpPrefix,
    /// Where it goes.
    pub target: RouteSpec,
}

/// One static neighbor entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborEntry {
    /// Index into [`Config::ports`].
    pub port: usize,
    /// The neighbor's address.
    pub addr: IpAddr,
    /// Its MAC.
    pub mac: EthernetAddress,
}

/// Worker threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    /// One worker per core, pinned to it (never empty, no duplicates). Whether the cores
    /// exist on this machine is checked at run time, not here.
    pub cores: Vec<usize>,
    /// What an idle worker does.
    pub idle: IdlePolicy,
    /// SCHED_FIFO priority (1–99) for the worker threads, so that other threads on
    /// their cores do not time-slice them (`None`: the normal scheduler).
    pub realtime_priority: Option<u8>,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where it came from (file name).
    pub origin: String,
    /// The stack's name.
    pub name: String,
    /// Whether to forward between ports (a router) or not (a host).
    pub forwarding: bool,
    /// Ports, in file order (port `i` becomes `PortId(i)`).
    pub ports: Vec<PortConfig>,
    /// Static routes.
    pub routes: Vec<RouteConfig>,
    /// Static neighbors.
    pub neighbors: Vec<NeighborEntry>,
    /// Workers.
    pub workers: Workers,
    /// Capture files by port index.
    pub capture: Vec<(usize, PathBuf)>,
    /// The control socket.
    pub control_socket: PathBuf,
    /// Log level.
    pub log_level: LogLevel,
    /// Prometheus metrics listener, if any.
    pub metrics: Option<SocketAddr>,
    /// Shared-memory sockets for applications, if offered.
    pub sockets: Option<SocketsConfig>,
    /// TCP parameters of every shard's stack (the `[tcp]` section).
    pub tcp: TcpConfig,
    /// Line of each port, route and neighbor, for errors found when building the stack.
    lines: Lines,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Lines {
    ports: Vec<usize>,
    routes: Vec<usize>,
    neighbors: Vec<usize>,
}

/// The default control socket path.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/dataplane.sock";

/// Where applications attach when `[sockets]` gives no `path`.
pub const DEFAULT_SOCKETS_PATH: &str = "/run/dataplane-apps.sock";

/// The `[sockets]` section: shared-memory sockets for applications.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketsConfig {
    /// The Unix socket applications attach to.
    pub path: PathBuf,
    /// User ids allowed to attach (any, when empty and `allow_groups` is empty).
    pub allow_users: Vec<u32>,
    /// Group ids allowed to attach.
    pub allow_groups: Vec<u32>,
    /// Sockets one application may hold per shard.
    pub max_sockets: u32,
    /// Bytes of an application's buffer area: its quota of buffer memory (receive
    /// slots, connections' send and receive rings), on all shards together.
    pub buffer_memory: usize,
}

impl SocketsConfig {
    /// Whether a peer with `uid`/`gid` may attach (root always may).
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        uid == 0
            || (self.allow_users.is_empty() && self.allow_groups.is_empty())
            || self.allow_users.contains(&uid)
            || self.allow_groups.contains(&gid)
    }
}

// ---- raw serde structs ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawConfig {
    name: Option<String>,
    forwarding: Option<bool>,
    log_level: Option<LogLevel>,
    control_socket: Option<String>,
    metrics: Option<Spanned<String>>,
    #[serde(default)]
    ports: Vec<RawPort>,
    #[serde(default)]
    routes: Vec<RawRoute>,
    #[serde(default)]
    neighbors: Vec<RawNeighbor>,
    workers: Option<RawWorkers>,
    #[serde(default)]
    capture: BTreeMap<Spanned<String>, String>,
    sockets: Option<Spanned<RawSockets>>,
    tcp: Option<RawTcp>,
}

/// `[tcp]`: every key optional, defaults from [`TcpConfig::default`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTcp {
    max_sockets: Option<Spanned<u64>>,
    rx_buffer: Option<Spanned<u64>>,
    tx_buffer: Option<Spanned<u64>>,
    time_wait_ms: Option<Spanned<u64>>,
    initial_rto_ms: Option<Spanned<u64>>,
    min_rto_ms: Option<Spanned<u64>>,
    max_rto_ms: Option<Spanned<u64>>,
    max_retries: Option<Spanned<u64>>,
    syn_retries: Option<Spanned<u64>>,
    delayed_ack_ms: Option<Spanned<u64>>,
    congestion: Option<Spanned<String>>,
    nodelay: Option<bool>,
    window_scale: Option<bool>,
    timestamps: Option<bool>,
    sack: Option<bool>,
    keepalive_s: Option<Spanned<u64>>,
    keepalive_interval_s: Option<Spanned<u64>>,
    keepalive_probes: Option<Spanned<u64>>,
    challenge_ack_limit: Option<Spanned<u64>>,
    syn_cookies: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSockets {
    path: Option<String>,
    #[serde(default)]
    allow_users: Vec<u32>,
    #[serde(default)]
    allow_groups: Vec<u32>,
    max_sockets: Option<u32>,
    buffer_memory_mib: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPort {
    name: Spanned<String>,
    driver: DriverKind,
    interface: Option<String>,
    queues: Option<Spanned<u16>>,
    mtu: Option<u16>,
    mac: Option<Spanned<String>>,
    steering: Option<Spanned<Steering>>,
    #[serde(default)]
    ipv4: Vec<Spanned<String>>,
    #[serde(default)]
    ipv6: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    prefix: Spanned<String>,
    via: Option<Spanned<String>>,
    dev: Option<Spanned<String>>,
    blackhole: Option<Spanned<bool>>,
    unreachable: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNeighbor {
    port: Spanned<String>,
    address: Spanned<String>,
    mac: Spanned<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum IdleKind {
    BusyPoll,
    PollThenSleep,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawWorkers {
    cores: Spanned<Vec<usize>>,
    idle: Option<Spanned<IdleKind>>,
    empty_polls: Option<Spanned<u32>>,
    realtime_priority: Option<Spanned<u32>>,
}

/// The `[tcp]` section, validated: each error names its key and line.
fn tcp_config(cx: &Ctx<'_>, r: &RawTcp) -> Result<TcpConfig, ConfigError> {
    use stack::Duration;
    let mut t = TcpConfig::default();
    // A value within `lo..=hi`, or an error naming `tcp.KEY`.
    let num = |v: &Option<Spanned<u64>>, key: &str, lo: u64, hi: u64, default: u64| match v {
        None => Ok(default),
        Some(v) if (lo..=hi).contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(cx.at(
            v,
            format!("tcp.{key}"),
            format!("{} is out of range {lo}..={hi}", v.get_ref()),
        )),
    };
    let ms = |d: Duration| d.as_nanos() / 1_000_000;
    t.max_sockets = num(
        &r.max_sockets,
        "max-sockets",
        1,
        1 << 24,
        t.max_sockets as u64,
    )? as usize;
    // Window scaling reaches 1 GiB (RFC 7323 §2.3).
    t.rx_buffer = num(&r.rx_buffer, "rx-buffer", 1024, 1 << 30, t.rx_buffer as u64)? as usize;
    t.tx_buffer = num(&r.tx_buffer, "tx-buffer", 1024, 1 << 30, t.tx_buffer as u64)? as usize;
    t.time_wait = Duration::from_millis(num(
        &r.time_wait_ms,
        "time-wait-ms",
        0,
        600_000,
        ms(t.time_wait),
    )?);
    t.initial_rto = Duration::from_millis(num(
        &r.initial_rto_ms,
        "initial-rto-ms",
        1,
        60_000,
        ms(t.initial_rto),
    )?);
    t.min_rto = Duration::from_millis(num(&r.min_rto_ms, "min-rto-ms", 1, 60_000, ms(t.min_rto))?);
    t.max_rto = Duration::from_millis(num(
        &r.max_rto_ms,
        "max-rto-ms",
        1,
        3_600_000,
        ms(t.max_rto),
    )?);
    for (v, key) in [
        (&r.initial_rto_ms, "initial-rto-ms"),
        (&r.min_rto_ms, "min-rto-ms"),
        (&r.max_rto_ms, "max-rto-ms"),
    ] {
        if t.min_rto > t.initial_rto || t.initial_rto > t.max_rto {
            let message = format!(
                "min-rto-ms {} <= initial-rto-ms {} <= max-rto-ms {} does not hold",
                ms(t.min_rto),
                ms(t.initial_rto),
                ms(t.max_rto)
            );
            return Err(match v {
                Some(v) => cx.at(v, format!("tcp.{key}"), message),
                None => continue,
            });
        }
    }
    t.max_retries = num(&r.max_retries, "max-retries", 1, 255, t.max_retries.into())? as u8;
    t.syn_retries = num(&r.syn_retries, "syn-retries", 1, 255, t.syn_retries.into())? as u8;
    // RFC 9293 §3.8.6.3: an ACK is not delayed by 0.5 s or more.
    t.delayed_ack = Duration::from_millis(num(
        &r.delayed_ack_ms,
        "delayed-ack-ms",
        0,
        499,
        ms(t.delayed_ack),
    )?);
    if let Some(c) = &r.congestion {
        t.congestion = match c.get_ref().as_str() {
            "cubic" => stack::tcp::CongestionControl::Cubic,
            "newreno" => stack::tcp::CongestionControl::NewReno,
            other => {
                return Err(cx.at(
                    c,
                    "tcp.congestion",
                    format!("{other:?}: not \"cubic\" or \"newreno\""),
                ))
            }
        };
    }
    t.nodelay = r.nodelay.unwrap_or(t.nodelay);
    t.window_scale = r.window_scale.unwrap_or(t.window_scale);
    t.timestamps = r.timestamps.unwrap_or(t.timestamps);
    t.sack = r.sack.unwrap_or(t.sack);
    t.syn_cookies = r.syn_cookies.unwrap_or(t.syn_cookies);
    // 0: no keepalives (RFC 9293 §3.8.4: off unless asked for).
    let idle = num(&r.keepalive_s, "keepalive-s", 0, 86_400 * 7, 0)?;
    t.keepalive = (idle > 0).then(|| Duration::from_secs(idle));
    t.keepalive_interval = Duration::from_secs(num(
        &r.keepalive_interval_s,
        "keepalive-interval-s",
        1,
        86_400,
        t.keepalive_interval.as_nanos() / 1_000_000_000,
    )?);
    t.keepalive_probes = num(
        &r.keepalive_probes,
        "keepalive-probes",
        1,
        255,
        t.keepalive_probes.into(),
    )? as u8;
    t.challenge_ack_limit = num(
        &r.challenge_ack_limit,
        "challenge-ack-limit",
        1,
        1 << 24,
        t.challenge_ack_limit.into(),
    )? as u32;
    Ok(t)
}

/// Error construction with line numbers from byte offsets.
struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    lines: LineIndex,
}

impl<'a> Ctx<'a> {
    fn new(origin: &'a str, text: &'a str) -> Ctx<'a> {
        Ctx {
            origin,
            text,
            lines: LineIndex::new(text),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.lines.line_of(offset)
    }

    fn err(&self, span: std::ops::Range<usize>, key: String, message: String) -> ConfigError {
        ConfigError {
            origin: self.origin.to_string(),
            line: Some(self.line_of(span.start)),
            key: Some(key),
            message,
        }
    }

    fn at<T>(
        &self,
        v: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.err(v.span(), key.into(), message.into())
    }

    /// A TOML syntax or type error: its line, and the key guessed from the text there.
    fn toml_error(&self, e: &toml::de::Error) -> ConfigError {
        let message = e.message().trim().to_string();
        match e.span() {
            Some(span) => {
                let key = key_at(self.text, span.start).filter(|k| !k.is_empty());
                ConfigError {
                    origin: self.origin.to_string(),
                    line: Some(self.line_of(span.start)),
                    key,
                    message,
                }
            }
            None => ConfigError {
                origin: self.origin.to_string(),
                line: None,
                key: None,
                message,
            },
        }
    }
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::from_str(&text, &origin)
    }

    /// Validates configuration text; `origin` names it in errors.
    pub fn from_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cx = Ctx::new(origin, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
        let mut lines = Lines::default();

        // Ports.
        let mut ports: Vec<PortConfig> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut seen_addr: HashMap<IpAddr, String> = HashMap::new();
        for (i, p) in raw.ports.iter().enumerate() {
            let k = format!("ports[{i}]");
            let name = p.name.get_ref().clone();
            lines.ports.push(cx.line_of(p.name.span().start));
            if name.is_empty() {
                return Err(cx.at(&p.name, format!("{k}.name"), "a port needs a name"));
            }
            if by_name.insert(name.clone(), i).is_some() {
                return Err(cx.at(
                    &p.name,
                    format!("{k}.name"),
                    format!("port {name:?} is defined twice"),
                ));
            }
            let queues = p.queues.as_ref().map_or(1, |q| *q.get_ref());
            if let Some(q) = &p.queues {
                if queues == 0 {
                    return Err(cx.at(q, format!("{k}.queues"), "at least 1 queue is needed"));
                }
                if p.driver == DriverKind::Memory && queues != 1 {
                    return Err(cx.at(
                        q,
                        format!("{k}.queues"),
                        "a memory port has exactly 1 queue",
                    ));
                }
            }
            let mac = match &p.mac {
                None => None,
                Some(m) => {
                    let mac: EthernetAddress = m.get_ref().parse().map_err(|_| {
                        cx.at(
                            m,
                            format!("{k}.mac"),
                            format!("{:?}: not a MAC address (xx:xx:xx:xx:xx:xx)", m.get_ref()),
                        )
                    })?;
                    if !mac.is_unicast() {
                        return Err(cx.at(
                            m,
                            format!("{k}.mac"),
                            format!("{mac} is not a unicast MAC address"),
                        ));
                    }
                    Some(mac)
                }
            };
            let steering = match &p.steering {
                None => Steering::All,
                Some(s) => {
                    if p.driver != DriverKind::AfXdp {
                        return Err(cx.at(
                            s,
                            format!("{k}.steering"),
                            format!(
                                "steering applies to the afxdp driver only, not {}",
                                p.driver.name()
                            ),
                        ));
                    }
                    *s.get_ref()
                }
            };
            let mut ipv4 = Vec::new();
            for (j, a) in p.ipv4.iter().enumerate() {
                let c: Ipv4Cidr = a.get_ref().parse().map_err(|e| {
                    cx.at(
                        a,
                        format!("{k}.ipv4[{j}]"),
                        format!("{:?}: {e}", a.get_ref()),
                    )
                })?;
                if let Some(other) = seen_addr.insert(IpAddr::V4(c.addr()), name.clone()) {
                    return Err(cx.at(
                        a,
                        format!("{k}.ipv4[{j}]"),
                        format!("{} is already an address of port {other}", c.addr()),
                    ));
                }
                ipv4.push(c);
            }
            let mut ipv6 = Vec::new();
            for (j, a) in p.ipv6.iter().enumerate() {
                let c: Ipv6Cidr = a.get_ref().parse().map_err(|e| {
                    cx.at(
                        a,
                        format!("{k}.ipv6[{j}]"),
                        format!("{:?}: {e}", a.get_ref()),
                    )
                })?;
                if let Some(other) = seen_addr.insert(IpAddr::V6(c.addr()), name.clone()) {
                    return Err(cx.at(
                        a,
                        format!("{k}.ipv6[{j}]"),
                        format!("{} is already an address of port {other}", c.addr()),
                    ));
                }
                ipv6.push(c);
            }
            ports.push(PortConfig {
                interface: p.interface.clone().unwrap_or_else(|| name.clone()),
                name,
                driver: p.driver,
                queues,
                mtu: p.mtu.unwrap_or(1500),
                mac,
                steering,
                ipv4,
                ipv6,
            });
        }

        let port_index = |s: &Spanned<String>, key: String| -> Result<usize, ConfigError> {
            by_name
                .get(s.get_ref())
                .copied()
                .ok_or_else(|| cx.at(s, key, format!("no port named {:?}", s.get_ref())))
        };
        let on_link = |addr: IpAddr, only: Option<usize>| -> bool {
            ports.iter().enumerate().any(|(i, p)| {
                only.is_none_or(|o| o == i)
                    && match addr {
                        IpAddr::V4(a) => p.ipv4.iter().any(|c| c.network().contains(a)),
                        IpAddr::V6(a) => {
                            stack::addr::v6::is_link_local(a)
                                || p.ipv6.iter().any(|c| c.network().contains(a))
                        }
                    }
            })
        };

        // Routes.
        let mut routes = Vec::new();
        for (i, r) in raw.routes.iter().enumerate() {
            let k = format!("routes[{i}]");
            lines.routes.push(cx.line_of(r.prefix.span().start));
            let prefix: IpPrefix = r.prefix.get_ref().parse().map_err(|e| {
                cx.at(
                    &r.prefix,
                    format!("{k}.prefix"),
                    format!("{:?}: {e}", r.prefix.get_ref()),
                )
            })?;
            let is_v4 = matches!(prefix, IpPrefix::V4(_));
            let discard = [(&r.blackhole, "blackhole"), (&r.unreachable, "unreachable")]
                .into_iter()
                .filter_map(|(v, n)| v.as_ref().filter(|b| *b.get_ref()).map(|b| (b, n)))
                .collect::<Vec<_>>();
            if let Some((b, n)) = discard.first() {
                if discard.len() > 1 || r.via.is_some() || r.dev.is_some() {
                    return Err(cx.at(
                        *b,
                        format!("{k}.{n}"),
                        format!("{n} excludes via, dev and the other discard kind"),
                    ));
                }
            }
            let dev = match &r.dev {
                Some(d) => Some(port_index(d, format!("{k}.dev"))?),
                None => None,
            };
            let target = match (&r.via, dev) {
                (Some(v), dev) => {
                    let gw: IpAddr = v.get_ref().parse().map_err(|_| {
                        cx.at(
                            v,
                            format!("{k}.via"),
                            format!("{:?}: not an IP address", v.get_ref()),
                        )
                    })?;
                    if gw.is_ipv4() != is_v4 {
                        return Err(cx.at(
                            v,
                            format!("{k}.via"),
                            format!("gateway {gw} is not of the family of {prefix}"),
                        ));
                    }
                    let link_local =
                        matches!(gw, IpAddr::V6(a) if stack::addr::v6::is_link_local(a));
                    if link_local && dev.is_none() {
                        return Err(cx.at(
                            v,
                            format!("{k}.via"),
                            format!("link-local gateway {gw} needs dev = PORT"),
                        ));
                    }
                    if !on_link(gw, dev) {
                        let where_ = match dev {
                            Some(d) => format!("port {}", ports[d].name),
                            None => "any port".to_string(),
                        };
                        return Err(cx.at(
                            v,
                            format!("{k}.via"),
                            format!("gateway {gw} is not on a connected network of {where_}"),
                        ));
                    }
                    match dev {
                        Some(d) => RouteSpec::ViaDev(gw, d),
                        None => RouteSpec::Via(gw),
                    }
                }
                (None, Some(d)) => RouteSpec::Dev(d),
                (None, None) => match discard.first() {
                    Some((_, "blackhole")) => RouteSpec::Blackhole,
                    Some(_) => RouteSpec::Unreachable,
                    None => {
                        return Err(cx.at(
                            &r.prefix,
                            k,
                            "a route needs via, dev, blackhole = true or unreachable = true"
                                .to_string(),
                        ))
                    }
                },
            };
            routes.push(RouteConfig { prefix, target });
        }

        // Neighbors.
        let mut neighbors = Vec::new();
        for (i, n) in raw.neighbors.iter().enumerate() {
            let k = format!("neighbors[{i}]");
            lines.neighbors.push(cx.line_of(n.port.span().start));
            let port = port_index(&n.port, format!("{k}.port"))?;
            let addr: IpAddr = n.address.get_ref().parse().map_err(|_| {
                cx.at(
                    &n.address,
                    format!("{k}.address"),
                    format!("{:?}: not an IP address", n.address.get_ref()),
                )
            })?;
            let mac: EthernetAddress = n.mac.get_ref().parse().map_err(|_| {
                cx.at(
                    &n.mac,
                    format!("{k}.mac"),
                    format!(
                        "{:?}: not a MAC address (xx:xx:xx:xx:xx:xx)",
                        n.mac.get_ref()
                    ),
                )
            })?;
            if !mac.is_unicast() {
                return Err(cx.at(
                    &n.mac,
                    format!("{k}.mac"),
                    format!("{mac} is not a unicast MAC address"),
                ));
            }
            neighbors.push(NeighborEntry { port, addr, mac });
        }

        // Workers.
        let workers = match &raw.workers {
            None => Workers {
                cores: vec![0],
                idle: IdlePolicy::BusyPoll,
                realtime_priority: None,
            },
            Some(w) => {
                let cores = w.cores.get_ref().clone();
                if cores.is_empty() {
                    return Err(cx.at(
                        &w.cores,
                        "workers.cores",
                        "at least one worker core is needed",
                    ));
                }
                let mut sorted = cores.clone();
                sorted.sort_unstable();
                if let Some(d) = sorted.windows(2).find(|p| p[0] == p[1]) {
                    return Err(cx.at(
                        &w.cores,
                        "workers.cores",
                        format!("core {} is listed twice", d[0]),
                    ));
                }
                let idle = match (w.idle.as_ref().map(|i| *i.get_ref()), &w.empty_polls) {
                    (None | Some(IdleKind::BusyPoll), Some(e)) => {
                        return Err(cx.at(
                            e,
                            "workers.empty-polls",
                            "empty-polls applies to idle = \"poll-then-sleep\" only",
                        ))
                    }
                    (None | Some(IdleKind::BusyPoll), None) => IdlePolicy::BusyPoll,
                    (Some(IdleKind::PollThenSleep), e) => {
                        let n = e.as_ref().map_or(1000, |e| *e.get_ref());
                        if n == 0 {
                            if let Some(e) = e {
                                return Err(cx.at(e, "workers.empty-polls", "must be at least 1"));
                            }
                        }
                        IdlePolicy::PollThenSleep { empty_polls: n }
                    }
                };
                let realtime_priority = match &w.realtime_priority {
                    None => None,
                    Some(p) if (1..=99).contains(p.get_ref()) => Some(*p.get_ref() as u8),
                    Some(p) => {
                        return Err(cx.at(
                            p,
                            "workers.realtime-priority",
                            format!("{} is not a SCHED_FIFO priority (1-99)", p.get_ref()),
                        ))
                    }
                };
                Workers {
                    cores,
                    idle,
                    realtime_priority,
                }
            }
        };

        // Capture.
        let mut capture = Vec::new();
        for (port, path) in &raw.capture {
            let i = port_index(port, format!("capture.{}", port.get_ref()))?;
            capture.push((i, PathBuf::from(path)));
        }

        let metrics = match &raw.metrics {
            None => None,
            Some(m) => Some(m.get_ref().parse::<SocketAddr>().map_err(|_| {
                cx.at(
                    m,
                    "metrics",
                    format!("{:?}: not an ADDRESS:PORT to listen on", m.get_ref()),
                )
            })?),
        };

        let sockets = match &raw.sockets {
            None => None,
            Some(sp) => {
                let r = sp.get_ref();
                let max_sockets = r.max_sockets.unwrap_or(1024);
                if max_sockets == 0 {
                    return Err(cx.at(sp, "sockets.max-sockets", "must be at least 1"));
                }
                let mib = r.buffer_memory_mib.unwrap_or(128);
                if !(1..=4096).contains(&mib) {
                    return Err(cx.at(
                        sp,
                        "sockets.buffer-memory-mib",
                        "must be 1 to 4096 (MiB per application)",
                    ));
                }
                Some(SocketsConfig {
                    path: PathBuf::from(
                        r.path
                            .clone()
                            .unwrap_or_else(|| DEFAULT_SOCKETS_PATH.to_string()),
                    ),
                    allow_users: r.allow_users.clone(),
                    allow_groups: r.allow_groups.clone(),
                    max_sockets,
                    buffer_memory: (mib as usize) << 20,
                })
            }
        };

        let tcp = match &raw.tcp {
            None => TcpConfig::default(),
            Some(t) => tcp_config(&cx, t)?,
        };

        Ok(Config {
            origin: origin.to_string(),
            name: raw.name.unwrap_or_else(|| "dataplane".to_string()),
            forwarding: raw.forwarding.unwrap_or(true),
            ports,
            routes,
            neighbors,
            workers,
            capture,
            control_socket: PathBuf::from(
                raw.control_socket
                    .unwrap_or_else(|| DEFAULT_CONTROL_SOCKET.to_string()),
            ),
            log_level: raw.log_level.unwrap_or(LogLevel::Info),
            metrics,
            sockets,
            tcp,
            lines,
        })
    }

    /// The stack's configuration: a router when forwarding, a host otherwise.
    pub fn stack_config(&self) -> StackConfig {
        let mut c = if self.forwarding {
            StackConfig::router(self.name.clone())
        } else {
            StackConfig::host(self.name.clone())
        };
        c.tcp = self.tcp.clone();
        c
    }

    /// The stack's interface configuration of each port; `mac_of` supplies the MAC of a
    /// port without a `mac` override (the interface's own, at run time).
    pub fn interface_configs(
        &self,
        mut mac_of: impl FnMut(usize, &PortConfig) -> EthernetAddress,
    ) -> Vec<InterfaceConfig> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| p.interface_config(mac_of(i, p)))
            .collect()
    }

    /// The static routes in the stack's terms (port `i` is `PortId(i)`).
    pub fn routes(&self) -> Vec<(IpPrefix, RouteTarget)> {
        let id = |i: usize| PortId(i as u16);
        self.routes
            .iter()
            .map(|r| {
                let t = match r.target {
                    RouteSpec::Via(gw) => RouteTarget::Via(gw),
                    RouteSpec::ViaDev(gw, d) => RouteTarget::ViaPort(gw, id(d)),
                    RouteSpec::Dev(d) => RouteTarget::Port(id(d)),
                    RouteSpec::Blackhole => RouteTarget::Blackhole,
                    RouteSpec::Unreachable => RouteTarget::Unreachable,
                };
                (r.prefix, t)
            })
            .collect()
    }

    fn build_err(&self, line: Option<usize>, key: String, message: String) -> ConfigError {
        ConfigError {
            origin: self.origin.clone(),
            line,
            key: Some(key),
            message,
        }
    }

    /// Builds the stack `run` uses: its configuration, then every port, route and static
    /// neighbor, in file order. Errors name the key of the item the stack refused.
    pub fn build_stack(
        &self,
        pool: FramePool,
        seed: u64,
        mac_of: impl FnMut(usize, &PortConfig) -> EthernetAddress,
    ) -> Result<Stack, ConfigError> {
        let mut stack = Stack::new(self.stack_config(), pool, seed);
        for (i, iface) in self.interface_configs(mac_of).into_iter().enumerate() {
            stack.add_port(iface).map_err(|e| {
                self.build_err(
                    self.lines.ports.get(i).copied(),
                    format!("ports[{i}]"),
                    e.to_string(),
                )
            })?;
        }
        for (i, (prefix, target)) in self.routes().into_iter().enumerate() {
            stack.add_route(prefix, target).map_err(|e| {
                self.build_err(
                    self.lines.routes.get(i).copied(),
                    format!("routes[{i}]"),
                    e.to_string(),
                )
            })?;
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            stack
                .add_static_neighbor(PortId(n.port as u16), n.addr, n.mac)
                .map_err(|e| {
                    self.build_err(
                        self.lines.neighbors.get(i).copied(),
                        format!("neighbors[{i}]"),
                        e.to_string(),
                    )
                })?;
        }
        Ok(stack)
    }

    /// Validates the whole configuration as `run` would, without touching the system:
    /// builds the stack on a small heap pool, with a placeholder MAC
    /// (`02:00:00:00:00:NN`) for ports that take theirs from the interface.
    pub fn check(&self) -> Result<Stack, ConfigError> {
        let pool = FramePool::with_frames(256, PoolConfig::default()).map_err(|e| ConfigError {
            origin: self.origin.clone(),
            line: None,
            key: None,
            message: format!("cannot allocate a frame pool: {e}"),
        })?;
        self.build_stack(pool, 0, |i, _| {
            EthernetAddress([0x02, 0, 0, 0, (i >> 8) as u8, i as u8 + 1])
        })
    }

    /// A short human summary: ports, addresses, routes, neighbors, workers.
    pub fn summary(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: ok ({}, {})",
            self.origin,
            self.name,
            if self.forwarding { "router" } else { "host" }
        );
        let _ = writeln!(s, "ports:");
        for p in &self.ports {
            let mac = p.mac.map_or("interface MAC".to_string(), |m| m.to_string());
            let _ = write!(
                s,
                "  {:<10} {:<8} if {} queues {} mtu {} mac {}",
                p.name,
                p.driver.name(),
                p.interface,
                p.queues,
                p.mtu,
                mac
            );
            if p.driver == DriverKind::AfXdp {
                let _ = write!(s, " steering {}", p.steering.name());
            }
            let _ = writeln!(s);
            for c in &p.ipv4 {
                let _ = writeln!(s, "             {c}");
            }
            for c in &p.ipv6 {
                let _ = writeln!(s, "             {c}");
            }
        }
        let _ = writeln!(s, "routes:");
        if self.routes.is_empty() {
            let _ = writeln!(s, "  (connected only)");
        }
        for r in &self.routes {
            let t = match r.target {
                RouteSpec::Via(gw) => format!("via {gw}"),
                RouteSpec::ViaDev(gw, d) => format!("via {gw} dev {}", self.ports[d].name),
                RouteSpec::Dev(d) => format!("dev {}", self.ports[d].name),
                RouteSpec::Blackhole => "blackhole".to_string(),
                RouteSpec::Unreachable => "unreachable".to_string(),
            };
            let _ = writeln!(s, "  {} {t}", r.prefix);
        }
        if !self.neighbors.is_empty() {
            let _ = writeln!(s, "neighbors:");
            for n in &self.neighbors {
                let _ = writeln!(
                    s,
                    "  {} lladdr {} dev {}",
                    n.addr, n.mac, self.ports[n.port].name
                );
            }
        }
        let idle = match self.workers.idle {
            IdlePolicy::BusyPoll => "busy-poll".to_string(),
            IdlePolicy::PollThenSleep { empty_polls } => {
                format!("poll-then-sleep after {empty_polls} empty polls")
            }
        };
        let rt = match self.workers.realtime_priority {
            Some(p) => format!(", SCHED_FIFO priority {p}"),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "workers: cores {:?}, idle {idle}{rt}",
            self.workers.cores
        );
        for (p, path) in &self.capture {
            let _ = writeln!(s, "capture: {} -> {}", self.ports[*p].name, path.display());
        }
        let _ = writeln!(s, "control socket: {}", self.control_socket.display());
        let _ = writeln!(s, "log level: {}", self.log_level.name());
        if let Some(k) = &self.sockets {
            let _ = writeln!(
                s,
                "sockets: {} (max {} per application and shard)",
                k.path.display(),
                k.max_sockets
            );
        }
        let t = &self.tcp;
        let _ = writeln!(
            s,
            "tcp: {} sockets per shard, buffers rx {} / tx {} bytes, {:?}, time-wait {:?}, delayed ack {:?}, keepalive {}",
            t.max_sockets,
            t.rx_buffer,
            t.tx_buffer,
            t.congestion,
            t.time_wait,
            t.delayed_ack,
            match t.keepalive {
                Some(k) => format!("after {k:?} idle"),
                None => "off".to_string(),
            }
        );
        match self.metrics {
            Some(m) => {
                let _ = writeln!(s, "metrics: http://{m}/metrics");
            }
            None => {
                let _ = writeln!(s, "metrics: off");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;
