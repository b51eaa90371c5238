//! The forwarding fast path measured: a batch of 64-byte IPv4 packets through a router
//! stack's receive path (Ethernet and RFC 1812 checks, batched route lookup, neighbor,
//! TTL and checksum rewrite, MAC rewrite, transmit queue), on one core.
//!
//! Only the stack's work is timed: `receive_batch` and `drain_tx`. Filling the frames
//! (what a NIC's DMA would do) and returning them to the pool (the driver's completion)
//! happen outside the timed region.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as WallClock;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stack::addr::Ipv4Prefix;
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::udp::UdpPacket;
use stack::wire::{EthernetAddress, IpProtocol};
use stack::{
    Frame, FramePool, InterfaceConfig, IpPrefix, PoolConfig, PortId, RouteTarget, Stack,
    StackConfig,
};

/// Packets per batch handed to the stack.
pub const BATCH: usize = 64;

const ROUTER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0x01, 0]);
const GATEWAYS: u32 = 16;

/// What one measurement found.
#[derive(Debug, Clone, Copy)]
pub struct ForwardResult {
    /// Median nanoseconds per packet over the rounds.
    pub ns_per_packet: f64,
    /// Fastest round.
    pub best_ns_per_packet: f64,
    /// Slowest round.
    pub worst_ns_per_packet: f64,
    /// Routes in the table.
    pub routes: usize,
    /// Milliseconds to load the table into the stack.
    pub load_ms: f64,
}

/// A router stack with two ports, `GATEWAYS` gateways behind port 1 (static neighbors),
/// and `table` routed through them.
pub fn router(table: &[(Ipv4Prefix, u32)]) -> Result<(Stack, PortId), Box<dyn std::error::Error>> {
    let pool = FramePool::with_frames(8192, PoolConfig::default())?;
    let mut r = Stack::new(StackConfig::router("bench"), pool, 42);
    let p0 =
        r.add_port(InterfaceConfig::new("in", ROUTER_MAC).with_ipv4("198.51.100.1/24".parse()?))?;
    let p1 = r.add_port(
        InterfaceConfig::new("out", EthernetAddress([0x02, 0, 0, 0, 0x01, 1]))
            .with_ipv4("203.0.113.1/24".parse()?),
    )?;
    for g in 0..GATEWAYS {
        let gw = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + g as u8));
        r.add_static_neighbor(p1, gw, EthernetAddress([0x02, 0, 0, 0, 0x02, g as u8]))?;
    }
    let routes = table.iter().map(|(p, v)| {
        let gw = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10 + (v % GATEWAYS) as u8));
        (IpPrefix::V4(*p), RouteTarget::Via(gw))
    });
    r.extend_routes(routes)?;
    Ok((r, p0))
}

/// A 64-byte Ethernet frame (60 bytes without FCS) carrying UDP to `dst`.
pub fn frame_bytes(dst: Ipv4Addr, sport: u16) -> [u8; 60] {
    let mut d = [0u8; 60];
    d[..6].copy_from_slice(&ROUTER_MAC.0);
    d[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0x09, 0x09]);
    d[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let repr = Ipv4Repr {
        src_addr: Ipv4Addr::new(198, 51, 100, 2),
        dst_addr: dst,
        next_header: IpProtocol::Udp,
        payload_len: 26,
        hop_limit: 64,
        dont_frag: true,
        ident: 0,
    };
    let mut ip = Ipv4Packet::new_unchecked(&mut d[14..]);
    repr.emit(&mut ip);
    let mut udp = UdpPacket::new_unchecked(ip.payload_mut());
    udp.set_src_port(sport);
    udp.set_dst_port(9);
    udp.set_len(26);
    udp.fill_checksum(IpAddr::V4(repr.src_addr), IpAddr::V4(dst));
    d
}

/// Destinations inside random routes of `table` (so every packet is forwarded).
pub fn destinations(table: &[(Ipv4Prefix, u32)], n: usize, seed: u64) -> Vec<Ipv4Addr> {
    let mut rng = SmallRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let (p, _) = table[rng.random_range(0..table.len())];
            let host = !Ipv4Prefix::mask_bits(p.len());
            Ipv4Addr::from(p.bits() | (rng.random::<u32>() & host))
        })
        .collect()
}

/// Times `packets` packets (rounded up to whole batches) through a router holding
/// `table`, `rounds` times, and reports the median. Destinations are drawn from the
/// routes of `traffic` (usually `table` itself).
pub fn measure(
    table: &[(Ipv4Prefix, u32)],
    traffic: &[(Ipv4Prefix, u32)],
    packets: usize,
    rounds: usize,
    seed: u64,
) -> Result<ForwardResult, Box<dyn std::error::Error>> {
    let t0 = WallClock::now();
    let (mut r, p0) = router(table)?;
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    let p1 = PortId(1);
    let pool = r.pool().clone();
    // Pre-built frames: a working set of 64k distinct flows.
    let dsts = destinations(traffic, 65_536, seed);
    let templates: Vec<[u8; 60]> = dsts
        .iter()
        .enumerate()
        .map(|(i, d)| frame_bytes(*d, i as u16))
        .collect();
    let mut rx: Vec<Frame> = Vec::with_capacity(BATCH);
    let mut tx: Vec<Frame> = Vec::with_capacity(BATCH * 2);
    let batches = packets.div_ceil(BATCH);
    let mut per_round = Vec::with_capacity(rounds);
    let mut next = 0usize;
    let now = stack::Instant::from_secs(1);
    for round in 0..=rounds {
        let mut timed = std::time::Duration::ZERO;
        let mut forwarded = 0usize;
        for _ in 0..batches {
            for _ in 0..BATCH {
                let mut f = pool.alloc().ok_or("frame pool exhausted")?;
                f.append(60)
                    .map_err(|e| e.to_string())?
                    .copy_from_slice(&templates[next]);
                next = (next + 1) % templates.len();
                rx.push(f);
            }
            let start = WallClock::now();
            r.receive_batch(now, p0, &mut rx);
            r.drain_tx(p1, &mut tx, usize::MAX);
            timed += start.elapsed();
            forwarded += tx.len();
            black_box(&tx);
            tx.clear();
        }
        if forwarded != batches * BATCH {
            return Err(format!(
                "only {forwarded} of {} packets forwarded: {:?}",
                batches * BATCH,
                r.counters()
            )
            .into());
        }
        if round > 0 {
            // Round 0 warms caches and the neighbor adjacency.
            per_round.push(timed.as_nanos() as f64 / forwarded as f64);
        }
    }
    per_round.sort_by(f64::total_cmp);
    Ok(ForwardResult {
        ns_per_packet: per_round[per_round.len() / 2],
        best_ns_per_packet: per_round[0],
        worst_ns_per_packet: per_round[per_round.len() - 1],
        routes: r.routes().len_v4(),
        load_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_packet_is_forwarded_and_timed() {
        let table = crate::tables::synthetic_v4(2_000, 7);
        let r = measure(&table, &table, 640, 3, 1).unwrap();
        assert_eq!(
            r.routes,
            table.len() + 4,
            "the table, two connected subnets, two local addresses"
        );
        assert!(r.ns_per_packet > 0.0 && r.best_ns_per_packet <= r.worst_ns_per_packet);
    }

    #[test]
    fn frames_are_valid_udp_to_the_router() {
        let d = frame_bytes(Ipv4Addr::new(192, 0, 2, 7), 99);
        let ip = Ipv4Packet::new_checked(&d[14..]).unwrap();
        assert!(ip.verify_checksum());
        assert_eq!(ip.dst_addr(), Ipv4Addr::new(192, 0, 2, 7));
        let udp = UdpPacket::new_checked(ip.payload()).unwrap();
        assert!(udp.verify_checksum(IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr())));
    }
}
