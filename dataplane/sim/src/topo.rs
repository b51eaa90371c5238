//! Topology files: nodes, links with their properties and addresses, routes,
//! applications and scripted events, in TOML.
//!
//! ```toml
//! [sim]
//! seed = 1            # the CLI's --seed overrides it
//! until = "10s"       # the CLI's --until overrides it; without either, run until idle
//! step-budget = 1000000   # events a run may process (200 million by default)
//! pool-frames = 512   # frames of 2 KiB per node (prefaulted when the node is made)
//!
//! [[node]]
//! name = "h1"
//! kind = "host"       # or "router"
//!
//! [[link]]
//! a = "h1"
//! b = "r1"
//! a-addrs = ["10.0.1.2/24", "2001:db8:1::2/64"]
//! b-addrs = ["10.0.1.1/24", "2001:db8:1::1/64"]
//! bandwidth = "10Mbit"
//! delay = "2ms"
//! queue = 100
//! loss = 0.01         # or gilbert-elliott = { p-gb = 0.01, p-bg = 0.2, loss-bad = 1.0 }
//!
//! [[route]]
//! node = "h1"
//! prefix = "0.0.0.0/0"
//! via = "10.0.1.1"    # or unreachable = true, or blackhole = true
//!
//! [[ping]]
//! from = "h1"
//! to = "10.0.2.2"
//! interval = "100ms"
//! count = 50
//!
//! [[udp]]
//! from = "h1"
//! to = "10.0.2.2:9000"  # a sink is bound there; [2001:db8::2]:9000 for IPv6
//! rate = "1Mbit"        # of payload; or interval = "10ms"
//! size = 1000           # payload bytes (20 to 1400)
//! stop = "8s"
//!
//! [[tcp]]
//! from = "h1"
//! to = "10.0.2.2:5001"  # a listener is opened there; [2001:db8::2]:5001 for IPv6
//! bytes = 1000000       # sent, then the client shuts down; the server verifies them
//! start = "1s"
//!
//! [[event]]
//! at = "2s"
//! action = "link-down"  # link-up, node-stop, node-start, route-add, route-remove
//! link = "r1-r2"
//! ```
//!
//! Validation happens here, once: every error names the file, the line and the key
//! (`chain.toml:14: link[1].bandwidth: "10Mbt": unknown unit ...`), the way the router's
//! configuration does (`dataplane/src/config.rs`); errors the stacks raise while the
//! topology is built name the line of the item that caused them.

use crate::tomlpos::{key_at, Lines};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use stack::{Duration, Instant, IpCidr, IpPrefix, RouteTarget};
use toml::Spanned;

use crate::app::{AppConfig, PingConfig, TcpFlowConfig, UdpFlowConfig, UDP_HEADER};
use crate::link::{LinkConfig, Loss};
use crate::world::{Action, NodeKind, Sim, SimError, MAX_POOL_FRAMES};

/// Why a topology was refused: the file, the line, the key and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    /// The file name (or the origin given to [`Topology::from_str`]).
    pub origin: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The key as a path (`link[1].bandwidth`), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TopologyError {
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

impl std::error::Error for TopologyError {}

/// The most bytes one TCP flow of a topology file may send (1 TiB).
pub const MAX_TCP_BYTES: u64 = 1 << 40;

// ---- raw serde structs ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTopology {
    sim: Option<RawSim>,
    #[serde(default)]
    node: Vec<RawNode>,
    #[serde(default)]
    link: Vec<RawLink>,
    #[serde(default)]
    route: Vec<RawRoute>,
    #[serde(default)]
    ping: Vec<RawPing>,
    #[serde(default)]
    udp: Vec<RawUdp>,
    #[serde(default)]
    tcp: Vec<RawTcp>,
    #[serde(default)]
    event: Vec<RawEvent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawUdp {
    name: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<String>,
    start: Option<Spanned<String>>,
    stop: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    size: Option<Spanned<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTcp {
    name: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<String>,
    start: Option<Spanned<String>>,
    bytes: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSim {
    seed: Option<u64>,
    until: Option<Spanned<String>>,
    step_budget: Option<Spanned<u64>>,
    pool_frames: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawNode {
    name: Spanned<String>,
    kind: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGe {
    p_gb: Spanned<f64>,
    p_bg: Spanned<f64>,
    loss_good: Option<Spanned<f64>>,
    loss_bad: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLink {
    name: Option<Spanned<String>>,
    a: Spanned<String>,
    b: Spanned<String>,
    #[serde(default)]
    a_addrs: Vec<Spanned<String>>,
    #[serde(default)]
    b_addrs: Vec<Spanned<String>>,
    bandwidth: Option<Spanned<String>>,
    delay: Option<Spanned<String>>,
    queue: Option<Spanned<usize>>,
    loss: Option<Spanned<f64>>,
    gilbert_elliott: Option<Spanned<RawGe>>,
    reorder: Option<Spanned<f64>>,
    reorder_delay: Option<Spanned<String>>,
    duplicate: Option<Spanned<f64>>,
    corrupt: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRoute {
    node: Spanned<String>,
    prefix: Spanned<String>,
    via: Option<Spanned<String>>,
    blackhole: Option<Spanned<bool>>,
    unreachable: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPing {
    name: Option<Spanned<String>>,
    from: Spanned<String>,
    to: Spanned<String>,
    start: Option<Spanned<String>>,
    interval: Option<Spanned<String>>,
    count: Option<Spanned<u64>>,
    size: Option<Spanned<usize>>,
    ttl: Option<Spanned<u8>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEvent {
    at: Spanned<String>,
    action: Spanned<String>,
    link: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    via: Option<Spanned<String>>,
    unreachable: Option<Spanned<bool>>,
    blackhole: Option<Spanned<bool>>,
}

// ---- validated topology ----

/// A validated node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeItem {
    name: String,
    kind: NodeKind,
    line: usize,
}

/// A validated link.
#[derive(Debug, Clone, PartialEq)]
struct LinkItem {
    name: String,
    a: usize,
    b: usize,
    a_addrs: Vec<IpCidr>,
    b_addrs: Vec<IpCidr>,
    config: LinkConfig,
    line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteItem {
    node: usize,
    prefix: IpPrefix,
    target: RouteTarget,
    line: usize,
    key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AppItem {
    name: String,
    node: usize,
    config: AppConfig,
    line: usize,
}

/// What a scripted event does, with names resolved to indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EventAction {
    LinkDown(usize),
    LinkUp(usize),
    NodeStop(usize),
    NodeStart(usize),
    RouteAdd(usize, IpPrefix, RouteTarget),
    RouteRemove(usize, IpPrefix),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct EventItem {
    at: Instant,
    action: EventAction,
    label: String,
}

/// A validated topology, ready to be built into a [`Sim`].
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Where it came from.
    pub origin: String,
    /// The seed from the file (1 when absent).
    pub seed: u64,
    /// How long to run, from the file.
    pub until: Option<Duration>,
    /// The step budget from the file.
    pub step_budget: Option<u64>,
    /// Frames per node pool, from the file.
    pub pool_frames: Option<u32>,
    nodes: Vec<NodeItem>,
    links: Vec<LinkItem>,
    routes: Vec<RouteItem>,
    apps: Vec<AppItem>,
    events: Vec<EventItem>,
}

/// Error construction with line numbers from byte offsets.
struct Ctx<'a> {
    origin: &'a str,
    text: &'a str,
    lines: Lines,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.lines.line_of(offset)
    }

    fn at<T>(
        &self,
        v: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> TopologyError {
        TopologyError {
            origin: self.origin.to_string(),
            line: Some(self.line_of(v.span().start)),
            key: Some(key.into()),
            message: message.into(),
        }
    }

    /// A TOML syntax or type error: its line, and the key guessed from the text there.
    fn toml_error(&self, e: &toml::de::Error) -> TopologyError {
        let message = e.message().trim().to_string();
        let (line, key) = match e.span() {
            Some(span) => (
                Some(self.line_of(span.start)),
                key_at(self.text, span.start).filter(|k| !k.is_empty()),
            ),
            None => (None, None),
        };
        TopologyError {
            origin: self.origin.to_string(),
            line,
            key,
            message,
        }
    }
}

/// Parses a duration: a decimal number and a unit (`ns`, `us`, `ms`, `s`), like `2.5ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let scale: u64 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "" if num == "0" => 1,
        "" => return Err(format!("{s:?}: a duration needs a unit (ns, us, ms, s)")),
        u => return Err(format!("{s:?}: unknown unit {u:?} (ns, us, ms, s)")),
    };
    decimal(num, scale)
        .map(Duration::from_nanos)
        .ok_or_else(|| format!("{s:?}: not a duration like \"10ms\" or \"1.5s\""))
}

/// Parses a bandwidth: a decimal number and a unit (`bit`, `kbit`, `Mbit`, `Gbit`, or
/// the same with `bps`), or `"0"`/`"inf"` for no serialization delay.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s == "0" || s == "inf" {
        return Ok(0);
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let scale: u64 = match unit.trim() {
        "bit" | "bps" => 1,
        "kbit" | "kbps" => 1_000,
        "Mbit" | "Mbps" => 1_000_000,
        "Gbit" | "Gbps" => 1_000_000_000,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (bit, kbit, Mbit, Gbit, or \"inf\")"
            ))
        }
    };
    match decimal(num, scale) {
        Some(0) | None => Err(format!("{s:?}: not a bandwidth like \"10Mbit\"")),
        Some(v) => Ok(v),
    }
}

/// `num` (digits with at most one decimal point) times `scale`, exactly.
fn decimal(num: &str, scale: u64) -> Option<u64> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut v = int.checked_mul(scale)?;
    let mut unit = scale;
    for c in frac.chars() {
        let d = u64::from(c.to_digit(10)?);
        unit /= 10;
        v = v.checked_add(d.checked_mul(unit)?)?;
    }
    Some(v)
}

fn parse_cidr(s: &str) -> Result<IpCidr, String> {
    s.parse::<IpCidr>().map_err(|e| format!("{s:?}: {e}"))
}

impl Topology {
    /// Reads and validates a topology file.
    pub fn load(path: &Path) -> Result<Topology, TopologyError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| TopologyError {
            origin: origin.clone(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Topology::from_str(&text, &origin)
    }

    /// Validates topology text; `origin` names it in errors.
    pub fn from_str(text: &str, origin: &str) -> Result<Topology, TopologyError> {
        let cx = Ctx {
            origin,
            text,
            lines: Lines::new(text),
        };
        let raw: RawTopology = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;

        let mut topo = Topology {
            origin: origin.to_string(),
            seed: 1,
            until: None,
            step_budget: None,
            pool_frames: None,
            nodes: Vec::new(),
            links: Vec::new(),
            routes: Vec::new(),
            apps: Vec::new(),
            events: Vec::new(),
        };
        if let Some(s) = &raw.sim {
            topo.seed = s.seed.unwrap_or(1);
            if let Some(u) = &s.until {
                topo.until =
                    Some(parse_duration(u.get_ref()).map_err(|m| cx.at(u, "sim.until", m))?);
            }
            if let Some(b) = &s.step_budget {
                if *b.get_ref() == 0 {
                    return Err(cx.at(b, "sim.step-budget", "must be at least 1"));
                }
                topo.step_budget = Some(*b.get_ref());
            }
            if let Some(p) = &s.pool_frames {
                if !(16..=MAX_POOL_FRAMES).contains(p.get_ref()) {
                    return Err(cx.at(
                        p,
                        "sim.pool-frames",
                        format!("{}: 16 to {MAX_POOL_FRAMES} frames", p.get_ref()),
                    ));
                }
                topo.pool_frames = Some(*p.get_ref());
            }
        }

        // Nodes.
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        for (i, n) in raw.node.iter().enumerate() {
            let k = format!("node[{i}]");
            let name = n.name.get_ref().clone();
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '/') {
                return Err(cx.at(
                    &n.name,
                    format!("{k}.name"),
                    format!("{name:?}: a node name is a non-empty word without '/'"),
                ));
            }
            if by_name.insert(name.clone(), i).is_some() {
                return Err(cx.at(
                    &n.name,
                    format!("{k}.name"),
                    format!("node {name:?} is defined twice"),
                ));
            }
            let kind = match n.kind.get_ref().as_str() {
                "host" => NodeKind::Host,
                "router" => NodeKind::Router,
                other => {
                    return Err(cx.at(
                        &n.kind,
                        format!("{k}.kind"),
                        format!("{other:?}: a node is a \"host\" or a \"router\""),
                    ))
                }
            };
            topo.nodes.push(NodeItem {
                name,
                kind,
                line: cx.line_of(n.name.span().start),
            });
        }
        let node = |s: &Spanned<String>, key: String| -> Result<usize, TopologyError> {
            by_name
                .get(s.get_ref())
                .copied()
                .ok_or_else(|| cx.at(s, key, format!("no node named {:?}", s.get_ref())))
        };
        let prob = |v: &Option<Spanned<f64>>, key: String| -> Result<f64, TopologyError> {
            match v {
                None => Ok(0.0),
                Some(p) if (0.0..=1.0).contains(p.get_ref()) => Ok(*p.get_ref()),
                Some(p) => Err(cx.at(
                    p,
                    key,
                    format!("{}: a probability is between 0 and 1", p.get_ref()),
                )),
            }
        };

        // Links.
        let mut link_names: BTreeMap<String, usize> = BTreeMap::new();
        for (i, l) in raw.link.iter().enumerate() {
            let k = format!("link[{i}]");
            let a = node(&l.a, format!("{k}.a"))?;
            let b = node(&l.b, format!("{k}.b"))?;
            if a == b {
                return Err(cx.at(&l.b, format!("{k}.b"), "a link joins two different nodes"));
            }
            let name = match &l.name {
                Some(n) => n.get_ref().clone(),
                None => format!("{}-{}", l.a.get_ref(), l.b.get_ref()),
            };
            if link_names.insert(name.clone(), i).is_some() {
                let at = l.name.as_ref().unwrap_or(&l.a);
                return Err(cx.at(
                    at,
                    format!("{k}.name"),
                    format!("link {name:?} is defined twice (give one a name = \"...\")"),
                ));
            }
            let addrs = |v: &[Spanned<String>], key: &str| -> Result<Vec<IpCidr>, TopologyError> {
                v.iter()
                    .enumerate()
                    .map(|(j, s)| {
                        parse_cidr(s.get_ref()).map_err(|m| cx.at(s, format!("{k}.{key}[{j}]"), m))
                    })
                    .collect()
            };
            let mut config = LinkConfig::default();
            if let Some(bw) = &l.bandwidth {
                config.bandwidth_bps = parse_bandwidth(bw.get_ref())
                    .map_err(|m| cx.at(bw, format!("{k}.bandwidth"), m))?;
            }
            if let Some(d) = &l.delay {
                config.delay =
                    parse_duration(d.get_ref()).map_err(|m| cx.at(d, format!("{k}.delay"), m))?;
            }
            if let Some(q) = &l.queue {
                config.queue_limit = *q.get_ref();
            }
            let loss = prob(&l.loss, format!("{k}.loss"))?;
            config.loss = match (&l.gilbert_elliott, &l.loss) {
                (Some(ge), Some(_)) => {
                    return Err(cx.at(
                        ge,
                        format!("{k}.gilbert-elliott"),
                        "give either loss or gilbert-elliott, not both",
                    ))
                }
                (Some(ge), None) => {
                    let g = ge.get_ref();
                    let kk = format!("{k}.gilbert-elliott");
                    Loss::GilbertElliott {
                        p_gb: prob(&Some(g.p_gb.clone()), format!("{kk}.p-gb"))?,
                        p_bg: prob(&Some(g.p_bg.clone()), format!("{kk}.p-bg"))?,
                        loss_good: prob(&g.loss_good, format!("{kk}.loss-good"))?,
                        loss_bad: match &g.loss_bad {
                            None => 1.0,
                            v => prob(v, format!("{kk}.loss-bad"))?,
                        },
                    }
                }
                (None, Some(_)) if loss > 0.0 => Loss::Random(loss),
                _ => Loss::None,
            };
            config.reorder = prob(&l.reorder, format!("{k}.reorder"))?;
            if let Some(d) = &l.reorder_delay {
                config.reorder_delay = parse_duration(d.get_ref())
                    .map_err(|m| cx.at(d, format!("{k}.reorder-delay"), m))?;
            }
            config.duplicate = prob(&l.duplicate, format!("{k}.duplicate"))?;
            config.corrupt = prob(&l.corrupt, format!("{k}.corrupt"))?;
            topo.links.push(LinkItem {
                name,
                a,
                b,
                a_addrs: addrs(&l.a_addrs, "a-addrs")?,
                b_addrs: addrs(&l.b_addrs, "b-addrs")?,
                config,
                line: cx.line_of(l.a.span().start),
            });
        }

        let target = |via: &Option<Spanned<String>>,
                      blackhole: &Option<Spanned<bool>>,
                      unreachable: &Option<Spanned<bool>>,
                      at: &Spanned<String>,
                      k: &str|
         -> Result<RouteTarget, TopologyError> {
            let bh = blackhole.as_ref().is_some_and(|b| *b.get_ref());
            let un = unreachable.as_ref().is_some_and(|b| *b.get_ref());
            match (via, bh, un) {
                (Some(v), false, false) => v
                    .get_ref()
                    .parse::<IpAddr>()
                    .map(RouteTarget::Via)
                    .map_err(|_| {
                        cx.at(
                            v,
                            format!("{k}.via"),
                            format!("{:?}: not an IP address", v.get_ref()),
                        )
                    }),
                (None, true, false) => Ok(RouteTarget::Blackhole),
                (None, false, true) => Ok(RouteTarget::Unreachable),
                _ => Err(cx.at(
                    at,
                    k.to_string(),
                    "a route needs exactly one of via, blackhole = true, unreachable = true",
                )),
            }
        };
        let prefix = |p: &Spanned<String>, k: &str| -> Result<IpPrefix, TopologyError> {
            p.get_ref()
                .parse::<IpPrefix>()
                .map_err(|e| cx.at(p, format!("{k}.prefix"), format!("{:?}: {e}", p.get_ref())))
        };

        // Routes.
        for (i, r) in raw.route.iter().enumerate() {
            let k = format!("route[{i}]");
            topo.routes.push(RouteItem {
                node: node(&r.node, format!("{k}.node"))?,
                prefix: prefix(&r.prefix, &k)?,
                target: target(&r.via, &r.blackhole, &r.unreachable, &r.prefix, &k)?,
                line: cx.line_of(r.node.span().start),
                key: k,
            });
        }

        // Applications.
        for (i, p) in raw.ping.iter().enumerate() {
            let k = format!("ping[{i}]");
            let from = node(&p.from, format!("{k}.from"))?;
            let dst: IpAddr = p.to.get_ref().parse().map_err(|_| {
                cx.at(
                    &p.to,
                    format!("{k}.to"),
                    format!("{:?}: not an IP address", p.to.get_ref()),
                )
            })?;
            let dur = |v: &Option<Spanned<String>>, key: &str, default: Duration| match v {
                None => Ok(default),
                Some(s) => {
                    parse_duration(s.get_ref()).map_err(|m| cx.at(s, format!("{k}.{key}"), m))
                }
            };
            let interval = dur(&p.interval, "interval", Duration::from_secs(1))?;
            if interval == Duration::ZERO {
                let at = p.interval.as_ref().unwrap_or(&p.to);
                return Err(cx.at(at, format!("{k}.interval"), "must be longer than 0"));
            }
            let size = p.size.as_ref().map_or(56, |s| *s.get_ref());
            if let Some(s) = &p.size {
                if size > 1400 {
                    return Err(cx.at(s, format!("{k}.size"), "at most 1400 bytes"));
                }
            }
            if let Some(t) = &p.ttl {
                if *t.get_ref() == 0 {
                    return Err(cx.at(t, format!("{k}.ttl"), "must be at least 1"));
                }
            }
            let start = dur(&p.start, "start", Duration::ZERO)?;
            topo.apps.push(AppItem {
                name: p
                    .name
                    .as_ref()
                    .map_or_else(|| format!("ping{i}"), |n| n.get_ref().clone()),
                node: from,
                config: AppConfig::Ping(PingConfig {
                    dst,
                    start: Instant::ZERO + start,
                    interval,
                    count: p.count.as_ref().map(|c| *c.get_ref()),
                    size,
                    ttl: p.ttl.as_ref().map(|t| *t.get_ref()),
                }),
                line: cx.line_of(p.from.span().start),
            });
        }

        for (i, u) in raw.udp.iter().enumerate() {
            let k = format!("udp[{i}]");
            let from = node(&u.from, format!("{k}.from"))?;
            let dst: std::net::SocketAddr = u.to.get_ref().parse().map_err(|_| {
                cx.at(
                    &u.to,
                    format!("{k}.to"),
                    format!(
                        "{:?}: not an address and port (10.0.0.1:9000, [2001:db8::1]:9000)",
                        u.to.get_ref()
                    ),
                )
            })?;
            if dst.port() == 0 {
                return Err(cx.at(&u.to, format!("{k}.to"), "the port must not be 0"));
            }
            let size = u.size.as_ref().map_or(1000, |s| *s.get_ref());
            if let Some(s) = &u.size {
                if !(UDP_HEADER..=1400).contains(&size) {
                    return Err(cx.at(
                        s,
                        format!("{k}.size"),
                        format!("{size}: a flow datagram has {UDP_HEADER} to 1400 bytes"),
                    ));
                }
            }
            let dur = |v: &Spanned<String>, key: &str| {
                parse_duration(v.get_ref()).map_err(|m| cx.at(v, format!("{k}.{key}"), m))
            };
            let interval = match (&u.rate, &u.interval) {
                (Some(r), None) => {
                    let bps = parse_bandwidth(r.get_ref())
                        .map_err(|m| cx.at(r, format!("{k}.rate"), m))?;
                    if bps == 0 {
                        return Err(cx.at(r, format!("{k}.rate"), "a flow needs a finite rate"));
                    }
                    UdpFlowConfig::interval_for_rate(bps, size)
                }
                (None, Some(i)) => {
                    let d = dur(i, "interval")?;
                    if d == Duration::ZERO {
                        return Err(cx.at(i, format!("{k}.interval"), "must be longer than 0"));
                    }
                    d
                }
                _ => {
                    return Err(cx.at(
                        &u.from,
                        k.clone(),
                        "a flow needs exactly one of rate = \"1Mbit\" or interval = \"10ms\"",
                    ))
                }
            };
            let start = match &u.start {
                Some(v) => dur(v, "start")?,
                None => Duration::ZERO,
            };
            let stop = match &u.stop {
                Some(v) => Some(Instant::ZERO + dur(v, "stop")?),
                None => None,
            };
            topo.apps.push(AppItem {
                name: u
                    .name
                    .as_ref()
                    .map_or_else(|| format!("udp{i}"), |n| n.get_ref().clone()),
                node: from,
                config: AppConfig::Udp(UdpFlowConfig {
                    dst,
                    start: Instant::ZERO + start,
                    stop,
                    interval,
                    size,
                }),
                line: cx.line_of(u.from.span().start),
            });
        }

        for (i, t) in raw.tcp.iter().enumerate() {
            let k = format!("tcp[{i}]");
            let from = node(&t.from, format!("{k}.from"))?;
            let dst: std::net::SocketAddr = t.to.get_ref().parse().map_err(|_| {
                cx.at(
                    &t.to,
                    format!("{k}.to"),
                    format!(
                        "{:?}: not an address and port (10.0.0.1:5001, [2001:db8::1]:5001)",
                        t.to.get_ref()
                    ),
                )
            })?;
            if dst.port() == 0 {
                return Err(cx.at(&t.to, format!("{k}.to"), "the port must not be 0"));
            }
            let bytes = *t.bytes.get_ref();
            if !(1..=MAX_TCP_BYTES).contains(&bytes) {
                return Err(cx.at(
                    &t.bytes,
                    format!("{k}.bytes"),
                    format!("{bytes}: a flow sends 1 to {MAX_TCP_BYTES} bytes"),
                ));
            }
            let start = match &t.start {
                Some(v) => {
                    parse_duration(v.get_ref()).map_err(|m| cx.at(v, format!("{k}.start"), m))?
                }
                None => Duration::ZERO,
            };
            topo.apps.push(AppItem {
                name: t
                    .name
                    .as_ref()
                    .map_or_else(|| format!("tcp{i}"), |n| n.get_ref().clone()),
                node: from,
                config: AppConfig::Tcp(TcpFlowConfig {
                    dst,
                    start: Instant::ZERO + start,
                    bytes,
                }),
                line: cx.line_of(t.from.span().start),
            });
        }

        // Scripted events.
        for (i, e) in raw.event.iter().enumerate() {
            let k = format!("event[{i}]");
            let at =
                parse_duration(e.at.get_ref()).map_err(|m| cx.at(&e.at, format!("{k}.at"), m))?;
            let need = |v: &Option<Spanned<String>>,
                        key: &str|
             -> Result<Spanned<String>, TopologyError> {
                v.clone().ok_or_else(|| {
                    cx.at(
                        &e.action,
                        format!("{k}.{key}"),
                        format!("action {:?} needs {key} = \"...\"", e.action.get_ref()),
                    )
                })
            };
            let link = |v: &Spanned<String>| -> Result<usize, TopologyError> {
                link_names.get(v.get_ref()).copied().ok_or_else(|| {
                    cx.at(
                        v,
                        format!("{k}.link"),
                        format!("no link named {:?}", v.get_ref()),
                    )
                })
            };
            let action = match e.action.get_ref().as_str() {
                "link-down" => EventAction::LinkDown(link(&need(&e.link, "link")?)?),
                "link-up" => EventAction::LinkUp(link(&need(&e.link, "link")?)?),
                "node-stop" => EventAction::NodeStop(node(&need(&e.node, "node")?, format!("{k}.node"))?),
                "node-start" => {
                    EventAction::NodeStart(node(&need(&e.node, "node")?, format!("{k}.node"))?)
                }
                "route-add" => {
                    let n = node(&need(&e.node, "node")?, format!("{k}.node"))?;
                    let p = need(&e.prefix, "prefix")?;
                    EventAction::RouteAdd(
                        n,
                        prefix(&p, &k)?,
                        target(&e.via, &e.blackhole, &e.unreachable, &p, &k)?,
                    )
                }
                "route-remove" => {
                    let n = node(&need(&e.node, "node")?, format!("{k}.node"))?;
                    EventAction::RouteRemove(n, prefix(&need(&e.prefix, "prefix")?, &k)?)
                }
                other => {
                    return Err(cx.at(
                        &e.action,
                        format!("{k}.action"),
                        format!(
                            "{other:?}: one of link-down, link-up, node-stop, node-start, route-add, route-remove"
                        ),
                    ))
                }
            };
            topo.events.push(EventItem {
                at: Instant::ZERO + at,
                action,
                label: format!(
                    "{origin}:{}: {k} ({})",
                    cx.line_of(e.at.span().start),
                    e.action.get_ref()
                ),
            });
        }
        Ok(topo)
    }

    /// Names of the nodes, in file order.
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.name.as_str())
    }

    fn err(&self, line: usize, key: String, e: SimError) -> TopologyError {
        TopologyError {
            origin: self.origin.clone(),
            line: Some(line),
            key: Some(key),
            message: e.to_string(),
        }
    }

    /// Builds the simulation with `seed` (the file's when `None`): nodes, links, routes,
    /// applications and scheduled events. Errors the stacks raise name the item's line.
    pub fn build(&self, seed: Option<u64>) -> Result<Sim, TopologyError> {
        let mut sim = Sim::new(seed.unwrap_or(self.seed));
        if let Some(b) = self.step_budget {
            sim.set_step_budget(b);
        }
        if let Some(p) = self.pool_frames {
            sim.set_pool_frames(p);
        }
        let mut ids = Vec::with_capacity(self.nodes.len());
        for (i, n) in self.nodes.iter().enumerate() {
            ids.push(
                sim.add_node(&n.name, n.kind)
                    .map_err(|e| self.err(n.line, format!("node[{i}]"), e))?,
            );
        }
        let mut links = Vec::with_capacity(self.links.len());
        for (i, l) in self.links.iter().enumerate() {
            let id = sim
                .connect(ids[l.a], &l.a_addrs, ids[l.b], &l.b_addrs, l.config.clone())
                .map_err(|e| self.err(l.line, format!("link[{i}]"), e))?;
            sim.set_link_name(id, &l.name);
            links.push(id);
        }
        for r in &self.routes {
            sim.add_route(ids[r.node], r.prefix, r.target)
                .map_err(|e| self.err(r.line, r.key.clone(), e))?;
        }
        for (i, a) in self.apps.iter().enumerate() {
            sim.add_app(ids[a.node], &a.name, a.config.clone())
                .map_err(|e| self.err(a.line, format!("app[{i}]"), e))?;
        }
        for e in &self.events {
            let action = match e.action {
                EventAction::LinkDown(l) => Action::LinkDown(links[l]),
                EventAction::LinkUp(l) => Action::LinkUp(links[l]),
                EventAction::NodeStop(n) => Action::NodeStop(ids[n]),
                EventAction::NodeStart(n) => Action::NodeStart(ids[n]),
                EventAction::RouteAdd(n, prefix, target) => Action::RouteAdd {
                    node: ids[n],
                    prefix,
                    target,
                },
                EventAction::RouteRemove(n, prefix) => Action::RouteRemove {
                    node: ids[n],
                    prefix,
                },
            };
            sim.schedule(e.at, action, e.label.clone());
        }
        Ok(sim)
    }
}
