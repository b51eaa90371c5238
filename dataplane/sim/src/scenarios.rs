//! Topologies built in code: a chain of routers and a dumbbell, dual stack, with every
//! route in place. Tests and benchmarks start from these.

use stack::{IpCidr, IpPrefix, RouteTarget};

use crate::link::LinkConfig;
use crate::world::{NodeKind, Sim, SimError};
use crate::{LinkId, NodeId};

fn cidr(s: String) -> Result<IpCidr, SimError> {
    s.parse()
        .map_err(|e| SimError::Build(format!("address {s}: {e}")))
}

fn prefix(s: String) -> Result<IpPrefix, SimError> {
    s.parse()
        .map_err(|e| SimError::Build(format!("prefix {s}: {e}")))
}

fn via(s: String) -> Result<RouteTarget, SimError> {
    s.parse()
        .map(RouteTarget::Via)
        .map_err(|_| SimError::Build(format!("gateway {s}: not an address")))
}

/// `h1 — r1 — … — rN — h2`.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The left host.
    pub h1: NodeId,
    /// The right host.
    pub h2: NodeId,
    /// The routers, left to right.
    pub routers: Vec<NodeId>,
    /// The links, left to right (`links[0]` is h1–r1).
    pub links: Vec<LinkId>,
}

impl Chain {
    /// IPv4 address of the left (`a`) or right (`b`) end of link `i`: link `i` is
    /// `10.0.(i+1).0/24`, its left end `.1` and its right end `.2`.
    pub fn v4(i: usize, right: bool) -> std::net::IpAddr {
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(
            10,
            0,
            (i + 1) as u8,
            if right { 2 } else { 1 },
        ))
    }

    /// IPv6 address of an end of link `i`: `2001:db8:(i+1)::1` (left) or `::2` (right).
    pub fn v6(i: usize, right: bool) -> std::net::IpAddr {
        std::net::IpAddr::V6(std::net::Ipv6Addr::new(
            0x2001,
            0xdb8,
            (i + 1) as u16,
            0,
            0,
            0,
            0,
            if right { 2 } else { 1 },
        ))
    }
}

/// Builds a chain of `routers` routers (at most 250) between two hosts, every link with
/// `link`, routes both ways for IPv4 and IPv6.
pub fn chain(sim: &mut Sim, routers: usize, link: &LinkConfig) -> Result<Chain, SimError> {
    if routers == 0 || routers > 250 {
        return Err(SimError::Build("a chain has 1 to 250 routers".into()));
    }
    let h1 = sim.add_node("h1", NodeKind::Host)?;
    let mut rs = Vec::new();
    for k in 1..=routers {
        rs.push(sim.add_node(&format!("r{k}"), NodeKind::Router)?);
    }
    let h2 = sim.add_node("h2", NodeKind::Host)?;
    let mut nodes = vec![h1];
    nodes.extend(&rs);
    nodes.push(h2);
    let addrs = |i: usize, right: bool| -> Result<Vec<IpCidr>, SimError> {
        Ok(vec![
            cidr(format!("{}/24", Chain::v4(i, right)))?,
            cidr(format!("{}/64", Chain::v6(i, right)))?,
        ])
    };
    let mut links = Vec::new();
    for i in 0..=routers {
        links.push(sim.connect(
            nodes[i],
            &addrs(i, false)?,
            nodes[i + 1],
            &addrs(i, true)?,
            link.clone(),
        )?);
    }
    let (v4, v6) = ("0.0.0.0/0", "::/0");
    sim.add_route(h1, prefix(v4.into())?, via(Chain::v4(0, true).to_string())?)?;
    sim.add_route(h1, prefix(v6.into())?, via(Chain::v6(0, true).to_string())?)?;
    let (g4, g6) = (Chain::v4(routers, false), Chain::v6(routers, false));
    sim.add_route(h2, prefix(v4.into())?, via(g4.to_string())?)?;
    sim.add_route(h2, prefix(v6.into())?, via(g6.to_string())?)?;
    // Router k (1-based) is the right end of link k-1 and the left end of link k.
    for (idx, &r) in rs.iter().enumerate() {
        let k = idx + 1;
        for j in 0..=routers {
            if j + 1 == k || j == k {
                continue; // connected
            }
            let (g4, g6) = if j < k {
                (Chain::v4(k - 1, false), Chain::v6(k - 1, false))
            } else {
                (Chain::v4(k, true), Chain::v6(k, true))
            };
            sim.add_route(
                r,
                prefix(format!("10.0.{}.0/24", j + 1))?,
                via(g4.to_string())?,
            )?;
            sim.add_route(
                r,
                prefix(format!("2001:db8:{:x}::/64", j + 1))?,
                via(g6.to_string())?,
            )?;
        }
    }
    Ok(Chain {
        h1,
        h2,
        routers: rs,
        links,
    })
}

/// `left` hosts — `rl` — bottleneck — `rr` — `right` hosts.
#[derive(Debug, Clone)]
pub struct Dumbbell {
    /// Hosts on the left.
    pub left: Vec<NodeId>,
    /// Hosts on the right.
    pub right: Vec<NodeId>,
    /// The left router.
    pub rl: NodeId,
    /// The right router.
    pub rr: NodeId,
    /// The link between the routers.
    pub bottleneck: LinkId,
}

impl Dumbbell {
    /// IPv4 address of left host `i` (`10.1.x.y`, at most 16,000 hosts a side).
    pub fn left_addr(i: usize) -> std::net::IpAddr {
        host_addr(1, i)
    }

    /// IPv4 address of right host `i` (`10.2.x.y`).
    pub fn right_addr(i: usize) -> std::net::IpAddr {
        host_addr(2, i)
    }
}

/// Host `i` of side `side`: subnet `10.side.(i/64).(i%64*4)/30`, the host `.+2`, the
/// router `.+1`.
fn host_addr(side: u8, i: usize) -> std::net::IpAddr {
    let hi = (i / 64) as u8;
    let lo = ((i % 64) * 4) as u8;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, side, hi, lo + 2))
}

fn gw_addr(side: u8, i: usize) -> std::net::IpAddr {
    let hi = (i / 64) as u8;
    let lo = ((i % 64) * 4) as u8;
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, side, hi, lo + 1))
}

/// Builds a dumbbell (IPv4): `left` and `right` hosts (at most 16,000 each) on `access`
/// links, the two routers joined by `bottleneck`.
pub fn dumbbell(
    sim: &mut Sim,
    left: usize,
    right: usize,
    access: &LinkConfig,
    bottleneck: &LinkConfig,
) -> Result<Dumbbell, SimError> {
    if left > 16_000 || right > 16_000 {
        return Err(SimError::Build(
            "a dumbbell side has at most 16,000 hosts".into(),
        ));
    }
    let rl = sim.add_node("rl", NodeKind::Router)?;
    let rr = sim.add_node("rr", NodeKind::Router)?;
    let core = sim.connect(
        rl,
        &[cidr("10.0.0.1/30".into())?],
        rr,
        &[cidr("10.0.0.2/30".into())?],
        bottleneck.clone(),
    )?;
    sim.add_route(rl, prefix("10.2.0.0/16".into())?, via("10.0.0.2".into())?)?;
    sim.add_route(rr, prefix("10.1.0.0/16".into())?, via("10.0.0.1".into())?)?;
    let mut sides = [Vec::new(), Vec::new()];
    for (s, (count, router)) in [(left, rl), (right, rr)].into_iter().enumerate() {
        let side = s as u8 + 1;
        for i in 0..count {
            let name = format!("{}{i}", if s == 0 { "l" } else { "r" });
            let h = sim.add_node(&name, NodeKind::Host)?;
            sim.connect(
                h,
                &[cidr(format!("{}/30", host_addr(side, i)))?],
                router,
                &[cidr(format!("{}/30", gw_addr(side, i)))?],
                access.clone(),
            )?;
            sim.add_route(
                h,
                prefix("0.0.0.0/0".into())?,
                via(gw_addr(side, i).to_string())?,
            )?;
            sides[s].push(h);
        }
    }
    let [left, right] = sides;
    Ok(Dumbbell {
        left,
        right,
        rl,
        rr,
        bottleneck: core,
    })
}
