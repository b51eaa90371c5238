//! `dataplane demo`: three stack instances in one process, joined by in-memory links on
//! a virtual clock. Shows neighbor resolution (ARP and NDP), ping over IPv4 and IPv6,
//! forwarding across the router, traceroute through ICMP time exceeded, ICMP errors, and
//! the counters and tables an operator would look at.

use std::fmt::Write as _;
use std::net::IpAddr;

use drivers::MemLink;
use stack::route::NextHop;
use stack::stack::IcmpErrorKind;
use stack::wire::EthernetAddress;
use stack::{
    Duration, EchoRequest, Event, FramePool, Instant, InterfaceConfig, PoolConfig, PortId,
    RouteTarget, Stack, StackConfig,
};

/// One node: a stack and the link ends on its ports.
struct Node {
    stack: Stack,
    links: Vec<(PortId, MemLink)>,
}

/// The demo network.
pub struct Demo {
    nodes: Vec<Node>,
    now: Instant,
    rx: Vec<stack::Frame>,
    tx: Vec<stack::Frame>,
}

const STEP: Duration = Duration::from_micros(10);

fn addr(s: &str) -> IpAddr {
    s.parse().expect("demo address")
}

impl Demo {
    /// h1 — r — h2, dual stack.
    pub fn new() -> Result<Demo, Box<dyn std::error::Error>> {
        let mk =
            |name: &str, router: bool, seed: u64| -> Result<Stack, Box<dyn std::error::Error>> {
                let pool = FramePool::with_frames(4096, PoolConfig::default())?;
                let cfg = if router {
                    StackConfig::router(name)
                } else {
                    StackConfig::host(name)
                };
                Ok(Stack::new(cfg, pool, seed))
            };
        let mut h1 = mk("h1", false, 1)?;
        let mut r = mk("r", true, 2)?;
        let mut h2 = mk("h2", false, 3)?;
        let iface = |name: &str,
                     mac: u8,
                     v4: &str,
                     v6: &str|
         -> Result<InterfaceConfig, Box<dyn std::error::Error>> {
            Ok(
                InterfaceConfig::new(name, EthernetAddress([0x02, 0, 0, 0, 0, mac]))
                    .with_ipv4(v4.parse()?)
                    .with_ipv6(v6.parse()?),
            )
        };
        let h1p = h1.add_port(iface(
            "h1-eth0",
            0x11,
            "198.51.100.2/24",
            "2001:db8:1::2/64",
        )?)?;
        let r0 = r.add_port(iface(
            "r-eth0",
            0x21,
            "198.51.100.1/24",
            "2001:db8:1::1/64",
        )?)?;
        let r1 = r.add_port(iface("r-eth1", 0x22, "203.0.113.1/24", "2001:db8:2::1/64")?)?;
        let h2p = h2.add_port(iface(
            "h2-eth0",
            0x31,
            "203.0.113.2/24",
            "2001:db8:2::2/64",
        )?)?;
        h1.add_route("0.0.0.0/0".parse()?, RouteTarget::Via(addr("198.51.100.1")))?;
        h1.add_route("::/0".parse()?, RouteTarget::Via(addr("2001:db8:1::1")))?;
        h2.add_route("0.0.0.0/0".parse()?, RouteTarget::Via(addr("203.0.113.1")))?;
        h2.add_route("::/0".parse()?, RouteTarget::Via(addr("2001:db8:2::1")))?;
        let (a, b) = MemLink::pair(1024);
        let (c, d) = MemLink::pair(1024);
        Ok(Demo {
            nodes: vec![
                Node {
                    stack: h1,
                    links: vec![(h1p, a)],
                },
                Node {
                    stack: r,
                    links: vec![(r0, b), (r1, c)],
                },
                Node {
                    stack: h2,
                    links: vec![(h2p, d)],
                },
            ],
            now: Instant::from_secs(1),
            rx: Vec::with_capacity(64),
            tx: Vec::with_capacity(64),
        })
    }

    /// Runs the network until quiet (or `limit` of virtual time passes).
    fn settle(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.now < end {
            let mut moved = false;
            for node in &mut self.nodes {
                for (port, link) in &mut node.links {
                    while link.recv_batch(&mut self.rx, 64) > 0 {
                        moved = true;
                        node.stack.receive_batch(self.now, *port, &mut self.rx);
                    }
                }
                if node.stack.poll_at().is_some_and(|t| t <= self.now) {
                    node.stack.poll(self.now);
                }
                for (port, link) in &mut node.links {
                    node.stack.drain_tx(*port, &mut self.tx, usize::MAX);
                    moved |= !self.tx.is_empty();
                    link.send_batch(&mut self.tx);
                }
            }
            self.now += STEP;
            if !moved
                && self
                    .nodes
                    .iter()
                    .all(|n| n.links.iter().all(|(_, l)| l.rx_pending() == 0))
            {
                // Quiet: jump to the next timer, if one is due within the limit.
                let next = self.nodes.iter().filter_map(|n| n.stack.poll_at()).min();
                match next {
                    Some(t) if t < end && t > self.now => self.now = t,
                    _ => break,
                }
            }
        }
    }

    fn events(&mut self, node: usize) -> Vec<Event> {
        std::iter::from_fn(|| self.nodes[node].stack.pop_event()).collect()
    }

    /// Pings `dst` from node 0 `count` times; one line per reply.
    fn ping(&mut self, out: &mut String, dst: &str, count: u16) {
        let _ = writeln!(out, "h1$ ping -c {count} {dst}");
        let mut received = 0;
        for seq in 1..=count {
            let sent_at = self.now;
            let req = EchoRequest {
                dst: addr(dst),
                ident: 0x1d,
                seq,
                data_len: 56,
                ttl: None,
            };
            if let Err(e) = self.nodes[0].stack.send_echo_request(self.now, req) {
                let _ = writeln!(out, "  seq={seq}: not sent: {e}");
                continue;
            }
            self.settle(Duration::from_secs(5));
            for e in self.events(0) {
                match e {
                    Event::EchoReply {
                        at,
                        from,
                        seq,
                        len,
                        ttl,
                        ..
                    } => {
                        received += 1;
                        let _ = writeln!(
                            out,
                            "  {} bytes from {from}: icmp_seq={seq} ttl={ttl} time={:?} (virtual)",
                            len + 8,
                            at - sent_at
                        );
                    }
                    Event::IcmpError { from, kind, .. } => {
                        let _ = writeln!(out, "  from {from}: {}", describe(kind));
                    }
                }
            }
        }
        let _ = writeln!(out, "  {count} sent, {received} received\n");
    }

    /// A traceroute from node 0 to `dst` with echo requests of rising TTL.
    fn traceroute(&mut self, out: &mut String, dst: &str) {
        let _ = writeln!(out, "h1$ traceroute -I {dst}");
        for ttl in 1..=8u8 {
            let sent_at = self.now;
            let req = EchoRequest {
                dst: addr(dst),
                ident: 0x7e,
                seq: u16::from(ttl),
                data_len: 32,
                ttl: Some(ttl),
            };
            if self.nodes[0]
                .stack
                .send_echo_request(self.now, req)
                .is_err()
            {
                break;
            }
            self.settle(Duration::from_secs(5));
            let mut done = false;
            for e in self.events(0) {
                match e {
                    Event::IcmpError {
                        at,
                        from,
                        kind: IcmpErrorKind::TimeExceeded,
                        ..
                    } => {
                        let _ = writeln!(out, "  {ttl}  {from}  {:?}", at - sent_at);
                    }
                    Event::EchoReply { at, from, .. } => {
                        let _ = writeln!(out, "  {ttl}  {from}  {:?}", at - sent_at);
                        done = true;
                    }
                    Event::IcmpError { from, kind, .. } => {
                        let _ = writeln!(out, "  {ttl}  {from}  {}", describe(kind));
                        done = true;
                    }
                }
            }
            if done {
                break;
            }
        }
        out.push('\n');
    }

    fn tables(&self, out: &mut String, node: usize) {
        let s = &self.nodes[node].stack;
        let name = &s.config().name;
        let _ = writeln!(out, "{name}$ show neighbors");
        let mut ns: Vec<_> = s.neighbors().collect();
        ns.sort_by_key(|n| (n.port, n.addr));
        for n in ns {
            let port = &s.ports()[usize::from(n.port.0)].config().name;
            let _ = writeln!(
                out,
                "  {:<16} dev {port:<8} lladdr {}  {}",
                n.addr,
                n.mac,
                n.state.name()
            );
        }
        let _ = writeln!(out, "{name}$ show routes");
        let port_name = |p: PortId| s.ports()[usize::from(p.0)].config().name.clone();
        for r in s.routes().iter() {
            let via = match r.next_hop {
                NextHop::Local => "local".to_string(),
                NextHop::Connected { port } => format!("dev {}", port_name(port)),
                NextHop::Gateway { port, via } => format!("via {via} dev {}", port_name(port)),
                NextHop::Blackhole => "blackhole".to_string(),
                NextHop::Unreachable => "unreachable".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<20} {via:<28} proto {}",
                r.prefix.to_string(),
                r.origin.name()
            );
        }
        let _ = writeln!(out, "{name}$ show stats");
        for p in s.ports() {
            let c = p.counters();
            let _ = writeln!(
                out,
                "  {:<8} rx {:>4} pkts {:>6} B  tx {:>4} pkts {:>6} B  fwd {:>3}  local {:>3}  icmp-err {:>2}",
                p.config().name,
                c.rx_packets,
                c.rx_bytes,
                c.tx_packets,
                c.tx_bytes,
                c.forwarded,
                c.delivered,
                c.icmp_errors_sent
            );
            for (reason, n) in c.nonzero_drops() {
                let _ = writeln!(out, "           drop {:<28} {n}", reason.name());
            }
        }
        out.push('\n');
    }

    /// Runs the whole demo and returns its transcript.
    pub fn run(&mut self) -> String {
        let mut out = String::new();
        out.push_str(
            "dataplane demo: h1 (198.51.100.2, 2001:db8:1::2) -- r -- h2 (203.0.113.2, 2001:db8:2::2)\n\
             three stack instances in one process, in-memory links, virtual clock\n\n",
        );
        self.ping(&mut out, "203.0.113.2", 3);
        self.ping(&mut out, "2001:db8:2::2", 3);
        self.ping(&mut out, "198.51.100.1", 1);
        self.traceroute(&mut out, "203.0.113.2");
        self.traceroute(&mut out, "2001:db8:2::2");
        self.ping(&mut out, "192.0.2.1", 1);
        self.ping(&mut out, "203.0.113.99", 1);
        self.tables(&mut out, 1);
        out
    }
}

fn describe(kind: IcmpErrorKind) -> String {
    match kind {
        IcmpErrorKind::TimeExceeded => "time to live exceeded".into(),
        IcmpErrorKind::Unreachable(code) => format!("destination unreachable (code {code})"),
        IcmpErrorKind::TooBig(mtu) => format!("packet too big (mtu {mtu})"),
        IcmpErrorKind::ParamProblem => "parameter problem".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_transcript_shows_every_behaviour() {
        let out = Demo::new().unwrap().run();
        assert!(out.contains("3 sent, 3 received"), "{out}");
        assert!(out.contains("from 203.0.113.2: icmp_seq=1 ttl=63"), "{out}");
        assert!(
            out.contains("from 2001:db8:2::2: icmp_seq=3 ttl=63"),
            "{out}"
        );
        assert!(out.contains("  1  198.51.100.1"), "{out}");
        assert!(out.contains("  2  203.0.113.2"), "{out}");
        assert!(out.contains("  1  2001:db8:1::1"), "{out}");
        assert!(
            out.contains("from 198.51.100.1: destination unreachable (code 0)"),
            "{out}"
        );
        assert!(
            out.contains("from 198.51.100.1: destination unreachable (code 1)"),
            "{out}"
        );
        assert!(out.contains("lladdr 02:00:00:00:00:11"), "{out}");
        // Deterministic: the same run gives the same transcript.
        assert_eq!(out, Demo::new().unwrap().run());
    }
}
