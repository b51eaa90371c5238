//! TCP between stacks on the in-memory net: handshakes, transfers, closes, resets,
//! RFC 5961 defences, loss recovery and a SYN flood. Every run is deterministic: time is
//! the net's virtual clock (1 ms per round) and impairments come from a seeded generator.

mod common;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::{mac, Impair, Net};
use stack::wire::ethernet::{EthernetFrame, EthernetRepr};
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::tcp::{TcpControl, TcpPacket, TcpRepr};
use stack::wire::{EtherType, IpProtocol};
use stack::{
    DropReason, Duration, Frame, PortId, SocketError, StackConfig, TcpConfig, TcpHandle, TcpState,
};

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// Two hosts, a (node 0) and b (node 1), on one link, IPv4 and IPv6.
fn pair_with(tcp: TcpConfig) -> Net {
    pair_in(Net::new(), tcp)
}

/// [`pair_with`] on a given (empty) net.
fn pair_in(mut net: Net, tcp: TcpConfig) -> Net {
    for name in ["a", "b"] {
        let mut cfg = StackConfig::host(name);
        cfg.tcp = tcp.clone();
        net.add(cfg);
    }
    let pa = net.port(0, &["10.0.0.1/24"], &["2001:db8::1/64"]);
    let pb = net.port(1, &["10.0.0.2/24"], &["2001:db8::2/64"]);
    net.link((0, pa), (1, pb));
    net
}

fn pair() -> Net {
    pair_with(TcpConfig::default())
}

/// Listens on b:80, connects from a, runs the handshake; returns (client, server).
fn connected(net: &mut Net) -> (TcpHandle, TcpHandle) {
    connected_to(net, sa(B4, 80))
}

fn connected_to(net: &mut Net, server: SocketAddr) -> (TcpHandle, TcpHandle) {
    let l = net.nodes[1].tcp_listen(server, 8).unwrap();
    let now = net.now;
    let c = net.nodes[0].tcp_connect(now, server, None).unwrap();
    net.run(50);
    let s = net.nodes[1].tcp_accept(l).expect("accepted");
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Established));
    (c, s)
}

/// Moves `data` from (node `from`, handle `tx`) to (node `to`, handle `rx`), one round
/// at a time; returns what arrived once `len` bytes are in.
fn pump(
    net: &mut Net,
    from: usize,
    tx: TcpHandle,
    to: usize,
    rx: TcpHandle,
    data: &[u8],
) -> Vec<u8> {
    let mut sent = 0;
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; 65536];
    for _ in 0..2_000_000 {
        if sent < data.len() {
            let now = net.now;
            sent += net.nodes[from].tcp_send(now, tx, &data[sent..]).unwrap();
        }
        net.run(1);
        loop {
            match net.nodes[to].tcp_recv(rx, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(SocketError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        if got.len() >= data.len() {
            return got;
        }
    }
    panic!("transfer stalled at {} of {} bytes", got.len(), data.len());
}

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// RFC 9293 §3.5 three-way handshake; RFC 7323 §2, §3 and RFC 2018 §2 options agreed;
/// MSS from the interface MTU (RFC 9293 §3.7.1).
#[test]
fn handshake_negotiates_mss_wscale_timestamps_sack_rfc9293_3_5() {
    let mut net = pair();
    let (c, s) = connected(&mut net);
    for (node, h) in [(0, c), (1, s)] {
        let t = net.nodes[node].tcp_connection(h).unwrap();
        assert_eq!(t.mss(), 1460);
        assert!(t.timestamps());
        assert!(t.sack());
        // 256 KiB buffers need a shift of 3 to fit 16 bits.
        assert_eq!(t.window_scale(), Some((3, 3)));
    }
    let (cl, cr) = net.nodes[0].tcp_connection(c).unwrap().endpoints();
    assert_eq!(cr, sa(B4, 80));
    assert_eq!(cl.ip(), IpAddr::V4(A4));
    assert!(cl.port() >= 49152, "ephemeral port {}", cl.port());
}

/// Options are on only when both sides offer them (RFC 7323 §2.2, §3.2; RFC 2018 §2).
#[test]
fn handshake_without_options_when_peer_offers_none_rfc7323() {
    let mut net = pair();
    let plain = TcpConfig {
        window_scale: false,
        timestamps: false,
        sack: false,
        ..TcpConfig::default()
    };
    net.nodes[0] = {
        let mut cfg = StackConfig::host("a");
        cfg.tcp = plain;
        let pool = stack::FramePool::with_frames(4096, stack::PoolConfig::default()).unwrap();
        let mut st = stack::Stack::new(cfg, pool, 7);
        let port =
            stack::InterfaceConfig::new("a0", mac(0, 0)).with_ipv4("10.0.0.1/24".parse().unwrap());
        st.add_port(port).unwrap();
        st
    };
    let (c, s) = connected(&mut net);
    for (node, h) in [(0, c), (1, s)] {
        let t = net.nodes[node].tcp_connection(h).unwrap();
        assert!(!t.timestamps() && !t.sack());
        assert_eq!(t.window_scale(), None);
        assert_eq!(t.mss(), 1460);
    }
    let data = pattern(300_000, 3);
    assert_eq!(pump(&mut net, 0, c, 1, s, &data), data);
}

/// Data both ways (RFC 9293 §3.8), then a half-close (§3.6): a's FIN ends b's reading,
/// b still sends, then closes; both reach CLOSED through TIME-WAIT on a.
#[test]
fn data_both_ways_then_half_close_rfc9293_3_6() {
    let mut net = pair();
    let (c, s) = connected(&mut net);
    let up = pattern(200_000, 1);
    let down = pattern(150_000, 2);
    assert_eq!(pump(&mut net, 0, c, 1, s, &up), up);
    assert_eq!(pump(&mut net, 1, s, 0, c, &down), down);

    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c).unwrap();
    net.run(50);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::FinWait2));
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::CloseWait));
    let mut buf = [0u8; 16];
    assert_eq!(net.nodes[1].tcp_recv(s, &mut buf), Ok(0), "EOF after FIN");
    assert!(net.nodes[1].tcp_readiness(s).unwrap().readable);
    // a may no longer send; b may.
    assert!(matches!(
        net.nodes[0].tcp_send(now, c, b"x"),
        Err(SocketError::InvalidState(TcpState::FinWait2))
    ));
    let tail = pattern(10_000, 5);
    assert_eq!(pump(&mut net, 1, s, 0, c, &tail), tail);
    let now = net.now;
    net.nodes[1].tcp_close(now, s).unwrap();
    net.run(50);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::TimeWait));
    assert_eq!(net.nodes[1].tcp_state(s), None, "closed and released");
    assert_eq!(net.nodes[0].tcp_recv(c, &mut buf), Ok(0));
}

/// TIME-WAIT lasts the configured 2 MSL, then CLOSED (RFC 9293 §3.6, §3.10.8).
#[test]
fn time_wait_expires_after_configured_duration_rfc9293_3_6() {
    let tcp = TcpConfig {
        time_wait: Duration::from_secs(2),
        ..TcpConfig::default()
    };
    let mut net = pair_with(tcp);
    let (c, s) = connected(&mut net);
    let now = net.now;
    net.nodes[0].tcp_close(now, c).unwrap();
    net.run(20);
    net.nodes[1].tcp_close(net.now, s).unwrap();
    net.run(20);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::TimeWait));
    assert_eq!(net.nodes[0].tcp_socket_count(), 1);
    net.advance(Duration::from_millis(1900));
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::TimeWait));
    net.advance(Duration::from_millis(200));
    assert_eq!(net.nodes[0].tcp_state(c), None);
    assert_eq!(net.nodes[0].tcp_socket_count(), 0);
}

/// Both sides connect to each other at once (RFC 9293 §3.5, figure 8).
#[test]
fn simultaneous_open_rfc9293_3_5_figure_8() {
    let mut net = pair();
    let now = net.now;
    let c = net.nodes[0]
        .tcp_connect(now, sa(B4, 5000), Some(sa(A4, 6000)))
        .unwrap();
    let s = net.nodes[1]
        .tcp_connect(now, sa(A4, 6000), Some(sa(B4, 5000)))
        .unwrap();
    net.run(100);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Established));
    let data = pattern(50_000, 9);
    assert_eq!(pump(&mut net, 1, s, 0, c, &data), data);
    assert_eq!(pump(&mut net, 0, c, 1, s, &data), data);
}

/// Both sides close at once: FIN-WAIT-1 → CLOSING → TIME-WAIT on both (RFC 9293 §3.6,
/// figure 13).
#[test]
fn simultaneous_close_rfc9293_3_6_figure_13() {
    let mut net = pair();
    let (c, s) = connected(&mut net);
    let now = net.now;
    net.nodes[0].tcp_shutdown(now, c).unwrap();
    net.nodes[1].tcp_shutdown(now, s).unwrap();
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::FinWait1));
    net.run(50);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::TimeWait));
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::TimeWait));
}

/// A SYN to a port nobody listens on is answered with RST,ACK (RFC 9293 §3.10.7.1); the
/// client's connection is refused.
#[test]
fn rst_for_closed_port_rfc9293_3_10_7_1() {
    let mut net = pair();
    let now = net.now;
    let c = net.nodes[0].tcp_connect(now, sa(B4, 81), None).unwrap();
    net.run(50);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut buf),
        Err(SocketError::Connection(stack::tcp::TcpError::Refused))
    );
    assert!(net.nodes[0].tcp_readiness(c).unwrap().closed);
    assert_eq!(net.nodes[1].drops(DropReason::TcpNoListener), 1);
    net.nodes[0].tcp_close(net.now, c).unwrap();
    assert_eq!(net.nodes[0].tcp_socket_count(), 0);
}

/// A frame from a's address and MAC to b, carrying `repr`.
fn forged(net: &Net, repr: &TcpRepr<'_>) -> Frame {
    let src = IpAddr::V4(A4);
    let dst = IpAddr::V4(B4);
    let ip = Ipv4Repr {
        src_addr: A4,
        dst_addr: B4,
        next_header: IpProtocol::Tcp,
        payload_len: repr.buffer_len(),
        hop_limit: 64,
        dont_frag: true,
        ident: 1,
    };
    let mut f = net.nodes[1].pool().alloc().unwrap();
    let len = 14 + ip.buffer_len() + repr.buffer_len();
    let d = f.append(len).unwrap();
    EthernetRepr {
        src_addr: mac(0, 0),
        dst_addr: mac(1, 0),
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut *d));
    let mut p = Ipv4Packet::new_unchecked(&mut d[14..]);
    ip.emit(&mut p);
    repr.emit(&mut TcpPacket::new_unchecked(p.payload_mut()), src, dst);
    f
}

fn seg(
    src_port: u16,
    control: TcpControl,
    seq: u32,
    ack: Option<u32>,
    payload: &[u8],
) -> TcpRepr<'_> {
    TcpRepr {
        src_port,
        dst_port: 80,
        control,
        seq_number: seq,
        ack_number: ack,
        window_len: 1000,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    }
}

/// Blind injection (RFC 5961): an in-window RST that is not exactly RCV.NXT, and a SYN,
/// draw a challenge ACK and change nothing; data outside the window is dropped with an
/// ACK (RFC 9293 §3.10.7.4), counted as out of window, or as a duplicate when it lies
/// just below RCV.NXT (where retransmissions of received data fall); only the exact RST
/// resets.
#[test]
fn blind_rst_syn_and_data_rejected_with_challenge_ack_rfc5961() {
    // Forged segments carry no timestamps.
    let tcp = TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    };
    let mut net = pair_with(tcp);
    let (c, s) = connected(&mut net);
    let cport = net.nodes[0].tcp_connection(c).unwrap().endpoints().0.port();
    let (una, nxt, rcv_nxt, _) = net.nodes[1].tcp_connection(s).unwrap().sequence_space();
    assert_eq!(una, nxt);
    let now = net.now;
    let tx_before = net.nodes[1].counters().tx_packets;
    let cases = [
        (
            seg(cport, TcpControl::Rst, rcv_nxt + 100, None, &[]),
            DropReason::TcpChallengeAck,
        ),
        (
            seg(cport, TcpControl::Syn, rcv_nxt + 5, None, &[]),
            DropReason::TcpChallengeAck,
        ),
        (
            seg(
                cport,
                TcpControl::None,
                rcv_nxt.wrapping_add(1_000_000),
                Some(nxt),
                b"evil",
            ),
            DropReason::TcpOutOfWindow,
        ),
        (
            seg(
                cport,
                TcpControl::None,
                rcv_nxt.wrapping_sub(1_000_000),
                Some(nxt),
                b"evil",
            ),
            DropReason::TcpOutOfWindow,
        ),
        // Below RCV.NXT within a buffer: an old duplicate, also answered and dropped.
        (
            seg(
                cport,
                TcpControl::None,
                rcv_nxt.wrapping_sub(70_000),
                Some(nxt),
                b"evil",
            ),
            DropReason::TcpDuplicate,
        ),
        (
            seg(
                cport,
                TcpControl::None,
                rcv_nxt,
                Some(nxt.wrapping_add(1_000_000)),
                b"evil",
            ),
            DropReason::TcpBadAck,
        ),
    ];
    for (i, (repr, reason)) in cases.iter().enumerate() {
        let mut batch = vec![forged(&net, repr)];
        net.nodes[1].receive_batch(now, PortId(0), &mut batch);
        assert_eq!(
            net.nodes[1].drops(*reason) as usize,
            cases[..=i].iter().filter(|c| c.1 == *reason).count(),
            "case {i}"
        );
        assert_eq!(
            net.nodes[1].tcp_state(s),
            Some(TcpState::Established),
            "case {i}"
        );
        assert_eq!(
            net.nodes[1].counters().tx_packets,
            tx_before + i as u64 + 1,
            "an ACK for case {i}"
        );
    }
    let mut buf = [0u8; 8];
    assert_eq!(
        net.nodes[1].tcp_recv(s, &mut buf),
        Err(SocketError::WouldBlock)
    );
    // The exact RST resets.
    let mut batch = vec![forged(
        &net,
        &seg(cport, TcpControl::Rst, rcv_nxt, None, &[]),
    )];
    net.nodes[1].receive_batch(now, PortId(0), &mut batch);
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Closed));
    assert_eq!(
        net.nodes[1].tcp_recv(s, &mut buf),
        Err(SocketError::Connection(stack::tcp::TcpError::Reset))
    );
}

/// A seeded byte stream, generated a chunk at a time (xorshift64, 8 bytes a step).
struct PatternStream {
    x: u64,
    left: usize,
}

impl PatternStream {
    fn new(seed: u64, len: usize) -> Self {
        PatternStream {
            x: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            left: len,
        }
    }

    /// Refills `chunk` with the next bytes (fewer at the end, none when done).
    fn fill(&mut self, chunk: &mut Vec<u8>) {
        let n = self.left.min(64 * 1024);
        chunk.clear();
        while chunk.len() < n {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            chunk.extend_from_slice(&self.x.to_le_bytes());
        }
        chunk.truncate(n);
        self.left -= n;
    }
}

/// A 64-bit hash of a byte stream, the same however the stream is cut into writes
/// (multiply-rotate over little-endian words; cheap enough for gigabytes).
#[derive(Default)]
struct StreamHash {
    h: u64,
    carry: [u8; 8],
    n: usize,
    len: u64,
}

impl StreamHash {
    fn mix(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn write(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.n > 0 {
            let k = (8 - self.n).min(data.len());
            self.carry[self.n..self.n + k].copy_from_slice(&data[..k]);
            self.n += k;
            data = &data[k..];
            if self.n < 8 {
                return;
            }
            self.mix(u64::from_le_bytes(self.carry));
            self.n = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.mix(u64::from_le_bytes(w.try_into().unwrap()));
        }
        let rest = words.remainder();
        self.carry[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.n].copy_from_slice(&self.carry[..self.n]);
        self.mix(u64::from_le_bytes(last));
        self.mix(self.len);
        self.h
    }
}

/// The transfer tests' hash: the same whatever the cuts, different for one byte changed.
#[test]
fn stream_hash_is_cut_invariant_and_sensitive() {
    let mut gen = PatternStream::new(5, 100_003);
    let mut data = Vec::new();
    gen.fill(&mut data);
    let whole = |d: &[u8]| {
        let mut h = StreamHash::default();
        h.write(d);
        h.finish()
    };
    let mut cut = StreamHash::default();
    let mut rest = &data[..];
    for k in [1, 7, 3, 8, 13, 1000, 4093] {
        cut.write(&rest[..k]);
        rest = &rest[k..];
    }
    cut.write(rest);
    assert_eq!(cut.finish(), whole(&data));
    let mut changed = data.clone();
    changed[50_000] ^= 1;
    assert_ne!(whole(&changed), whole(&data));
    assert_ne!(whole(&data[..data.len() - 1]), whole(&data));
}

/// Moves `len` bytes of the stream seeded `seed` from (node `from`, handle `tx`) to
/// (node `to`, handle `rx`), one round at a time, holding neither copy: each side
/// hashes what it sent or received. Returns (hash sent, hash received, bytes received).
fn stream(
    net: &mut Net,
    (from, tx): (usize, TcpHandle),
    (to, rx): (usize, TcpHandle),
    len: usize,
    seed: u64,
) -> (u64, u64, usize) {
    let mut gen = PatternStream::new(seed, len);
    let (mut sent_hash, mut got_hash) = (StreamHash::default(), StreamHash::default());
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut pos = 0;
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..2_000_000 {
        if pos == chunk.len() {
            gen.fill(&mut chunk);
            sent_hash.write(&chunk);
            pos = 0;
        }
        if pos < chunk.len() {
            let now = net.now;
            pos += net.nodes[from].tcp_send(now, tx, &chunk[pos..]).unwrap();
        }
        net.run(1);
        loop {
            match net.nodes[to].tcp_recv(rx, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got_hash.write(&buf[..n]);
                    got += n;
                }
                Err(SocketError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
        if got >= len {
            return (sent_hash.finish(), got_hash.finish(), got);
        }
    }
    panic!("transfer stalled at {got} of {len} bytes");
}

/// The issue's acceptance test: for 200 seeds, a 10 MB transfer in direction `dir` (0:
/// a to b, 1: b to a) under seeded loss (0–10 %), duplication (0–2 %) and reordering
/// (0–5 %) arrives byte-exact, compared by hash (RFC 6298 retransmission, RFC 6675 SACK
/// recovery, RFC 6582 NewReno, RFC 2018 SACK blocks and out-of-order reassembly). Odd
/// seeds use NewReno congestion control, every third seed runs without SACK. The seeds
/// are spread over the machine's cores.
fn lossy_transfers(dir: u64) {
    const SEEDS: u64 = 200;
    const LEN: usize = 10 << 20;
    let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)) as u64;
    let run_seed = |seed: u64, pools: &[stack::FramePool]| {
        let mut tcp = TcpConfig::default();
        if seed % 2 == 1 {
            tcp.congestion = stack::tcp::CongestionControl::NewReno;
        }
        if seed % 3 == 2 {
            tcp.sack = false;
        }
        let mut net = Net::new();
        net.pools = pools.to_vec();
        let mut net = pair_in(net, tcp);
        let (c, s) = connected(&mut net);
        let loss = (seed % 11) as f64 / 100.0;
        let dup = (seed % 3) as f64 / 100.0;
        let reorder = [0.0, 0.02, 0.05][(seed / 3 % 3) as usize];
        net.impair = Some(Impair::new(seed * 2 + dir, loss, dup, reorder));
        let (a, b) = ((0, c), (1, s));
        let (from, to) = if dir == 0 { (a, b) } else { (b, a) };
        let (sent, got, n) = stream(&mut net, from, to, LEN, seed * 2 + dir);
        assert_eq!(n, LEN, "seed {seed} dir {dir}: length");
        assert_eq!(sent, got, "seed {seed} dir {dir}: hash of the bytes");
        net.impaired
    };
    let start = std::time::Instant::now();
    let impaired = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || {
                    let mut sum = [0u64; 3];
                    // Each thread's two pools serve all its nets, one after the other.
                    let pools: Vec<_> = (0..2)
                        .map(|_| {
                            stack::FramePool::with_frames(4096, stack::PoolConfig::default())
                                .unwrap()
                        })
                        .collect();
                    for seed in (t..SEEDS).step_by(threads as usize) {
                        let i = run_seed(seed, &pools);
                        for k in 0..3 {
                            sum[k] += i[k];
                        }
                    }
                    sum
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .fold([0u64; 3], |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]])
    });
    eprintln!(
        "dir {dir}: {SEEDS} seeds x {} MiB in {:.1?} on {threads} threads; frames lost, \
         duplicated, reordered: {impaired:?}",
        LEN >> 20,
        start.elapsed()
    );
    assert!(
        impaired[0] > 70_000 && impaired[1] > 10_000 && impaired[2] > 30_000,
        "{impaired:?}"
    );
}

#[test]
fn lossy_10mb_transfers_a_to_b_arrive_byte_exact_for_200_seeds() {
    lossy_transfers(0);
}

#[test]
fn lossy_10mb_transfers_b_to_a_arrive_byte_exact_for_200_seeds() {
    lossy_transfers(1);
}

/// A 10 MB transfer over IPv6 with 5 % loss, duplication and reordering.
#[test]
fn large_transfer_ipv6_lossy() {
    let mut net = pair();
    let server: SocketAddr = "[2001:db8::2]:443".parse().unwrap();
    let (c, s) = connected_to(&mut net, server);
    net.impair = Some(Impair::new(77, 0.05, 0.01, 0.02));
    let data = pattern(10 << 20, 77);
    assert!(pump(&mut net, 0, c, 1, s, &data) == data);
    let [lost, duplicated, reordered] = net.impaired;
    assert!(
        lost > 300 && duplicated > 50 && reordered > 100,
        "{:?}",
        net.impaired
    );
    assert_eq!(net.nodes[0].tcp_connection(c).unwrap().mss(), 1440);
}

/// `(seq, payload length, flags byte)` of a TCP/IPv4 frame.
fn tcp_info(f: &Frame) -> Option<(u32, usize, u8)> {
    let d = f.data();
    if d.len() < 14 + 20 + 20 || d[12..14] != [0x08, 0x00] || d[23] != 6 {
        return None;
    }
    let ihl = usize::from(d[14] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[16], d[17]]));
    let t = &d[14 + ihl..14 + total];
    let hl = usize::from(t[12] >> 4) * 4;
    Some((
        u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        t.len() - hl,
        t[13],
    ))
}

/// One round of the net like `Net::run(1)`, passing each frame through `keep(from
/// node, frame)`.
fn step_filtered(net: &mut Net, keep: &mut impl FnMut(usize, &Frame) -> bool) {
    let mut buf = Vec::new();
    for i in 0..net.links.len() {
        let (a, b) = net.links[i];
        for (from, to) in [(a, b), (b, a)] {
            net.nodes[from.0].drain_tx(from.1, &mut buf, usize::MAX);
            buf.retain(|f| keep(from.0, f));
            if !buf.is_empty() {
                let now = net.now;
                net.nodes[to.0].receive_batch(now, to.1, &mut buf);
                buf.clear();
            }
        }
    }
    net.now += Duration::from_millis(1);
    let now = net.now;
    for n in &mut net.nodes {
        n.poll(now);
    }
}

/// RFC 6298 §5.5: each timeout doubles the RTO (from the 200 ms floor, §2.4 as
/// configured), up to the retry limit, after which the connection times out.
#[test]
fn retransmission_timer_backs_off_rfc6298_5_5() {
    let tcp = TcpConfig {
        max_retries: 5,
        ..TcpConfig::default()
    };
    let mut net = pair_with(tcp);
    let (c, _s) = connected(&mut net);
    let rto0 = net.nodes[0].tcp_connection(c).unwrap().rto();
    assert_eq!(rto0, Duration::from_millis(200), "RTT of 1-2 ms: the floor");
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &[7u8; 1000]).unwrap();
    let mut times = Vec::new();
    let mut rtos = Vec::new();
    for _ in 0..100_000 {
        let t = net.now;
        let mut seen = false;
        step_filtered(&mut net, &mut |from, f| {
            if from == 0 && tcp_info(f).is_some_and(|(_, len, _)| len == 1000) {
                seen = true;
                return false;
            }
            true
        });
        if seen {
            times.push(t.as_nanos() / 1_000_000);
            rtos.push(net.nodes[0].tcp_connection(c).unwrap().rto().as_millis());
        }
        if net.nodes[0].tcp_state(c) == Some(TcpState::Closed) {
            break;
        }
    }
    // The first send and five retransmissions, then the give-up.
    assert_eq!(times.len(), 6, "{times:?}");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, g) in gaps.iter().enumerate() {
        let want = 200u64 << i;
        assert!(
            g.abs_diff(want) <= 2,
            "gap {i}: {g} ms, want {want} ({gaps:?})"
        );
    }
    assert_eq!(rtos[1..], [400, 800, 1600, 3200, 6400]);
    let mut buf = [0u8; 4];
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut buf),
        Err(SocketError::Connection(stack::tcp::TcpError::TimedOut))
    );
}

/// RFC 5681 §3.2 / RFC 6582: one lost segment in a flight is sent again after three
/// duplicate ACKs, long before the retransmission timer (200 ms here) would fire.
#[test]
fn fast_retransmit_on_three_duplicate_acks_rfc5681_3_2() {
    for cc in [
        stack::tcp::CongestionControl::NewReno,
        stack::tcp::CongestionControl::Cubic,
    ] {
        let mut net = pair_with(TcpConfig {
            congestion: cc,
            ..TcpConfig::default()
        });
        let (c, s) = connected(&mut net);
        let data = pattern(100_000, 11);
        let now = net.now;
        assert_eq!(net.nodes[0].tcp_send(now, c, &data).unwrap(), data.len());
        let mut data_segs = 0;
        let mut lost: Option<(u32, u64)> = None;
        let mut resent_after = None;
        let mut recovery_seen = false;
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..1000 {
            let t = net.now.as_nanos() / 1_000_000;
            step_filtered(&mut net, &mut |from, f| {
                let Some((seq, len, _)) = tcp_info(f) else {
                    return true;
                };
                if from != 0 || len == 0 {
                    return true;
                }
                data_segs += 1;
                match lost {
                    None if data_segs == 3 => {
                        lost = Some((seq, t));
                        false
                    }
                    Some((l, at)) if l == seq && resent_after.is_none() => {
                        resent_after = Some(t - at);
                        true
                    }
                    _ => true,
                }
            });
            recovery_seen |= net.nodes[0].tcp_connection(c).unwrap().in_recovery();
            while let Ok(n) = net.nodes[1].tcp_recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() == data.len() {
                break;
            }
        }
        assert!(got == data, "{cc:?}: transfer incomplete");
        assert!(recovery_seen, "{cc:?}: fast recovery entered");
        let after = resent_after.expect("retransmitted");
        assert!(
            after < 50,
            "{cc:?}: resent after {after} ms, not by the timer"
        );
    }
}

/// A transfer a → b after a warm-up (so that the window is wide), with the first
/// transmissions of data segments `lost` (numbered from the first after the warm-up)
/// dropped. Returns, per lost segment, how many rounds (1 ms each, one round trip on
/// this net) after its loss it went again; how many data segments went more than once;
/// whether a's `pipe` ever exceeded cwnd by a segment or more during recovery, and
/// whether cwnd moved during recovery.
fn losses_in_one_window(sack: bool, lost: &[u32]) -> (Vec<u64>, usize, bool, bool) {
    let mut net = pair_with(TcpConfig {
        sack,
        congestion: stack::tcp::CongestionControl::NewReno,
        ..TcpConfig::default()
    });
    let (c, s) = connected(&mut net);
    let warm = pattern(300_000, 31);
    assert_eq!(pump(&mut net, 0, c, 1, s, &warm), warm);
    net.run(100);
    let base = net.nodes[0].tcp_connection(c).unwrap().sequence_space().1;
    let mss = 1448;
    // Enough that new data is always there to send (no rescue retransmission).
    let data = pattern(1_000_000, 32);
    let (mut sent, mut got) = (0, Vec::new());
    let mut seen = std::collections::HashMap::<u32, u64>::new();
    let mut dropped_at = std::collections::HashMap::<u32, u64>::new();
    let mut delays = vec![None; lost.len()];
    let mut twice = 0;
    let (mut over, mut cwnd_moved) = (false, false);
    let mut rec_cwnd = None;
    let mut buf = vec![0u8; 65536];
    for round in 0..2000u64 {
        if sent < data.len() {
            let now = net.now;
            sent += net.nodes[0].tcp_send(now, c, &data[sent..]).unwrap();
        }
        step_filtered(&mut net, &mut |from, f| {
            let Some((seq, len, _)) = tcp_info(f) else {
                return true;
            };
            if from != 0 || len == 0 {
                return true;
            }
            let idx = seq.wrapping_sub(base) / mss;
            if *seen.entry(seq).and_modify(|n| *n += 1).or_insert(1) > 1 {
                twice += 1;
                if let Some(i) = lost.iter().position(|&l| l == idx) {
                    delays[i].get_or_insert(round - dropped_at[&idx]);
                }
                return true;
            }
            if lost.contains(&idx) {
                dropped_at.insert(idx, round);
                return false;
            }
            true
        });
        let t = net.nodes[0].tcp_connection(c).unwrap();
        if t.in_recovery() {
            over |= t.pipe() >= t.cwnd() + u32::from(t.mss());
            cwnd_moved |= *rec_cwnd.get_or_insert(t.cwnd()) != t.cwnd();
        }
        while let Ok(n) = net.nodes[1].tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
    }
    assert!(got == data, "transfer incomplete: {} bytes", got.len());
    let delays = delays
        .into_iter()
        .map(|d| d.expect("every lost segment sent again"))
        .collect();
    (delays, twice, over, cwnd_moved)
}

/// RFC 6675 §5: several segments lost in one window are all sent again within about one
/// round trip of their loss (each once, only them), long before the retransmission
/// timer (200 ms), with `pipe` keeping what is in flight within cwnd (§5 (C)) and cwnd
/// left alone during recovery (no inflation). Without SACK, NewReno (RFC 6582 §3.2)
/// also avoids the timer but learns of one hole per round trip (partial ACKs).
#[test]
fn sack_recovers_several_losses_in_one_round_trip_rfc6675_5() {
    let lost = [20, 23, 26, 29, 35];
    let (delays, twice, over, cwnd_moved) = losses_in_one_window(true, &lost);
    eprintln!("SACK: lost segments sent again after {delays:?} rounds");
    assert!(delays.iter().all(|&d| d <= 2), "SACK: rounds {delays:?}");
    assert_eq!(twice, lost.len(), "only the lost segments went twice");
    assert!(!over, "pipe stayed within cwnd");
    assert!(!cwnd_moved, "cwnd constant during recovery");

    let (delays, twice, _, _) = losses_in_one_window(false, &lost);
    eprintln!("NewReno: lost segments sent again after {delays:?} rounds");
    assert_eq!(
        twice,
        lost.len(),
        "NewReno: only the lost segments went twice"
    );
    assert!(
        delays.iter().all(|&d| d < 50),
        "NewReno: no timeout: {delays:?}"
    );
    assert!(
        delays.iter().max() >= Some(&(lost.len() as u64)),
        "NewReno: one hole per round trip: {delays:?}"
    );
}

/// RFC 6675 §4 NextSeg rule 4: the last segments of a transfer lost along with an
/// earlier one are recovered by the rescue retransmission within a few round trips,
/// not by the retransmission timer (200 ms).
#[test]
fn sack_rescue_retransmission_recovers_lost_tail_rfc6675_4() {
    let mut net = pair_with(TcpConfig {
        congestion: stack::tcp::CongestionControl::NewReno,
        ..TcpConfig::default()
    });
    let (c, s) = connected(&mut net);
    net.run(100);
    let base = net.nodes[0].tcp_connection(c).unwrap().sequence_space().1;
    let data = pattern(10 * 1448, 33);
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, &data).unwrap(), data.len());
    let mut seen = std::collections::HashSet::new();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    let start = net.now;
    while got.len() < data.len() {
        assert!(
            net.now.saturating_since(start) < Duration::from_millis(100),
            "not recovered before the timer: {} bytes",
            got.len()
        );
        step_filtered(&mut net, &mut |from, f| {
            let Some((seq, len, _)) = tcp_info(f) else {
                return true;
            };
            let idx = seq.wrapping_sub(base) / 1448;
            // Segment 2 and the last two are lost the first time.
            !(from == 0 && len > 0 && [2, 8, 9].contains(&idx) && seen.insert(idx))
        });
        while let Ok(n) = net.nodes[1].tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert!(got == data);
    assert_eq!(seen.len(), 3);
}

/// RFC 9293 §3.8.6.1: against a zero window the sender probes, with backoff, and the
/// transfer resumes when the receiver reads.
#[test]
fn zero_window_probes_until_window_opens_rfc9293_3_8_6_1() {
    let mut net = pair_with(TcpConfig {
        rx_buffer: 8192,
        ..TcpConfig::default()
    });
    let (c, s) = connected(&mut net);
    let data = pattern(40_000, 4);
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, &data).unwrap(), data.len());
    let mut probes = Vec::new();
    for _ in 0..5000 {
        let t = net.now.as_nanos() / 1_000_000;
        step_filtered(&mut net, &mut |from, f| {
            if from == 0 && tcp_info(f).is_some_and(|(_, len, _)| len == 1) {
                probes.push(t);
            }
            true
        });
    }
    assert_eq!(net.nodes[0].tcp_connection(c).unwrap().send_window(), 0);
    assert!(probes.len() >= 3, "probes at {probes:?}");
    let gaps: Vec<u64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "backoff: {gaps:?}");
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Established));
    // Now read: the window opens and everything arrives.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    for _ in 0..20_000 {
        while let Ok(n) = net.nodes[1].tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
        net.run(1);
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
}

/// RFC 9293 §3.8.6.1 / RFC 1122 §4.2.2.17: after a long zero window (the probes backed
/// off to seconds), the receiver's window update resumes the transfer at once, from the
/// first unacknowledged byte: the probe byte the receiver refused is sent again rather
/// than skipped (a hole that a small window cannot fill by three duplicate ACKs would
/// wait for the backed-off timer), and the probes' backoff does not linger in the
/// retransmission timeout.
#[test]
fn window_update_after_long_zero_window_resumes_at_once_rfc9293_3_8_6_1() {
    let mut net = pair_with(TcpConfig {
        rx_buffer: 8192,
        ..TcpConfig::default()
    });
    let (c, s) = connected(&mut net);
    let data = pattern(40_000, 41);
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, &data).unwrap(), data.len());
    // b does not read: the window closes and a probes, backing off (0.2, 0.4, 0.8,
    // 1.6, 3.2 s...).
    for _ in 0..8000 {
        net.run(1);
    }
    assert_eq!(net.nodes[0].tcp_connection(c).unwrap().send_window(), 0);
    let rcv_nxt = |net: &Net| net.nodes[1].tcp_connection(s).unwrap().sequence_space().2;
    let before = rcv_nxt(&net);
    // b reads 3000 bytes: more than two segments, so a window update goes
    // (RFC 9293 §3.8.6.2.2).
    let mut buf = vec![0u8; 3000];
    assert_eq!(net.nodes[1].tcp_recv(s, &mut buf), Ok(3000));
    assert_eq!(buf, data[..3000]);
    let start = net.now;
    while rcv_nxt(&net).wrapping_sub(before) < 2 * 1448 {
        assert!(
            net.now.saturating_since(start) < Duration::from_millis(50),
            "stalled after the window update: {} new bytes in order",
            rcv_nxt(&net).wrapping_sub(before)
        );
        net.run(1);
    }
    let rto = net.nodes[0].tcp_connection(c).unwrap().rto();
    assert!(rto < Duration::from_secs(1), "RTO after probing: {rto:?}");
    // And the rest arrives intact.
    let mut got = buf;
    let mut buf = vec![0u8; 4096];
    for _ in 0..20_000 {
        while let Ok(n) = net.nodes[1].tcp_recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == data.len() {
            break;
        }
        net.run(1);
    }
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
}

/// Spoofed SYNs from 192.0.2.0/24 to b:80.
fn syn_flood(net: &mut Net, count: u32) {
    let now = net.now;
    let mut x = 12345u32;
    for i in 0..count {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let src = Ipv4Addr::new(192, 0, 2, (x >> 24) as u8 | 1);
        let mut repr = seg(1024 + (i % 60000) as u16, TcpControl::Syn, x, None, &[]);
        repr.max_seg_size = Some(1460);
        let mut f = forged(net, &repr);
        // Rewrite the source address (and the checksums) to the spoofed one.
        {
            let d = f.data_mut();
            let mut ip = Ipv4Packet::new_unchecked(&mut d[14..]);
            ip.set_src_addr(src);
            ip.fill_checksum();
            TcpPacket::new_unchecked(ip.payload_mut())
                .fill_checksum(IpAddr::V4(src), IpAddr::V4(B4));
        }
        let mut batch = vec![f];
        net.nodes[1].receive_batch(now, PortId(0), &mut batch);
    }
}

/// A SYN flood from spoofed sources (RFC 4987 §3.4, with SYN cookies off): the
/// listener's backlog bounds what it keeps (the oldest half-open connection makes
/// room), and a real client still gets in.
#[test]
fn syn_flood_keeps_memory_bounded_and_real_client_connects_rfc4987() {
    let mut net = pair_with(TcpConfig {
        syn_cookies: false,
        ..TcpConfig::default()
    });
    let l = net.nodes[1].tcp_listen(sa(B4, 80), 16).unwrap();
    for _ in 0..4 {
        syn_flood(&mut net, 500);
        assert!(net.nodes[1].tcp_socket_count() <= 1 + 16);
    }
    assert!(net.nodes[1].drops(DropReason::TcpSynQueueEvicted) >= 2000 - 16);
    net.run(10);
    let c = net.nodes[0].tcp_connect(net.now, sa(B4, 80), None).unwrap();
    net.run(20);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    let s = net.nodes[1]
        .tcp_accept(l)
        .expect("the real client is accepted");
    let data = pattern(10_000, 8);
    assert_eq!(pump(&mut net, 0, c, 1, s, &data), data);
    assert!(net.nodes[1].tcp_socket_count() <= 1 + 16 + 1);
}

/// `size_of` the control block: the goal is at most 2 KiB without buffers.
#[test]
fn control_block_is_small() {
    let size = core::mem::size_of::<stack::tcp::Tcb>();
    eprintln!("size_of::<Tcb>() = {size}");
    assert!(size <= 2048, "{size}");
}

/// Frames from node `from` seen in `rounds` rounds: (round, payload length, flags).
fn watch(net: &mut Net, from: usize, rounds: usize) -> Vec<(usize, usize, u8)> {
    let mut seen = Vec::new();
    for r in 0..rounds {
        step_filtered(net, &mut |f, frame| {
            if f == from {
                if let Some((_, len, flags)) = tcp_info(frame) {
                    seen.push((r, len, flags));
                }
            }
            true
        });
    }
    seen
}

/// RFC 9293 §3.8.6.3 / RFC 5681 §4.2: a lone segment is acknowledged after the delayed
/// ACK timeout (40 ms here), every second full segment at once.
#[test]
fn delayed_ack_waits_for_timeout_or_second_segment_rfc5681_4_2() {
    let mut net = pair();
    let (c, _s) = connected(&mut net);
    net.run(100);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &[1u8; 100]).unwrap();
    let acks = watch(&mut net, 1, 100);
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert!((38..=42).contains(&acks[0].0), "delayed ACK at {acks:?}");
    net.run(100);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, &[2u8; 2 * 1448]).unwrap();
    let acks = watch(&mut net, 1, 100);
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0].0, 0, "immediate ACK after two full segments");
}

/// Nagle (RFC 9293 §3.7.4): small writes while data is unacknowledged are held and
/// coalesced; with nodelay each goes at once.
#[test]
fn nagle_coalesces_small_writes_unless_nodelay_rfc9293_3_7_4() {
    for nodelay in [false, true] {
        let mut net = pair();
        let (c, _s) = connected(&mut net);
        net.run(100);
        net.nodes[0].tcp_set_nodelay(c, nodelay).unwrap();
        let now = net.now;
        for _ in 0..3 {
            net.nodes[0].tcp_send(now, c, &[3u8; 10]).unwrap();
        }
        let segs: Vec<usize> = watch(&mut net, 0, 100)
            .into_iter()
            .filter(|s| s.1 > 0)
            .map(|s| s.1)
            .collect();
        if nodelay {
            assert_eq!(segs, [10, 10, 10]);
        } else {
            assert_eq!(segs, [10, 20]);
        }
    }
}

/// Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after the idle time a probe goes out
/// and its answer keeps the connection; with the peer gone, the probes run out and the
/// connection times out.
#[test]
fn keepalive_probes_then_times_out_when_peer_is_gone_rfc1122_4_2_3_6() {
    let mut net = pair_with(TcpConfig {
        keepalive: Some(Duration::from_secs(10)),
        keepalive_interval: Duration::from_secs(1),
        keepalive_probes: 3,
        ..TcpConfig::default()
    });
    let (c, _s) = connected(&mut net);
    let probes = watch(&mut net, 0, 25_000);
    let zero: Vec<_> = probes.iter().filter(|p| p.1 == 0).collect();
    assert!(zero.len() >= 2, "a probe every idle period: {probes:?}");
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    // The peer goes away: nothing comes back.
    for _ in 0..20_000 {
        step_filtered(&mut net, &mut |from, _| from != 1);
    }
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Closed));
    let mut buf = [0u8; 1];
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut buf),
        Err(SocketError::Connection(stack::tcp::TcpError::TimedOut))
    );
}

/// Keepalives set on one connection (`Stack::tcp_set_keepalive`) with the stack's
/// default of none: probes, then the connection times out when the peer is gone.
#[test]
fn keepalive_per_connection_rfc1122_4_2_3_6() {
    let mut net = pair_with(TcpConfig {
        keepalive_interval: Duration::from_secs(1),
        keepalive_probes: 3,
        ..TcpConfig::default()
    });
    let (c, _s) = connected(&mut net);
    let quiet = watch(&mut net, 0, 15_000);
    assert!(
        quiet.iter().filter(|p| p.1 == 0).count() < 2,
        "no probes by default: {quiet:?}"
    );
    let now = net.now;
    net.nodes[0]
        .tcp_set_keepalive(now, c, Some(Duration::from_secs(5)))
        .unwrap();
    let probes = watch(&mut net, 0, 25_000);
    assert!(
        probes.iter().filter(|p| p.1 == 0).count() >= 2,
        "probes once set: {probes:?}"
    );
    for _ in 0..20_000 {
        step_filtered(&mut net, &mut |from, _| from != 1);
    }
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Closed));
}

/// SYN cookies (RFC 4987 §3.6): with the half-open queue full of spoofed SYNs, nothing
/// is evicted and nothing grows; the real client's handshake completes through a cookie
/// (MSS kept, no other option) and data flows both ways.
#[test]
fn syn_cookies_admit_real_client_under_flood_rfc4987_3_6() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(B4, 80), 8).unwrap();
    syn_flood(&mut net, 2000);
    assert_eq!(net.nodes[1].tcp_socket_count(), 1 + 8);
    assert_eq!(net.nodes[1].drops(DropReason::TcpSynQueueEvicted), 0);
    net.run(10);
    let c = net.nodes[0].tcp_connect(net.now, sa(B4, 80), None).unwrap();
    net.run(20);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    let s = net.nodes[1]
        .tcp_accept(l)
        .expect("accepted through a cookie");
    let t = net.nodes[1].tcp_connection(s).unwrap();
    assert_eq!(t.mss(), 1460);
    assert!(!t.timestamps() && !t.sack() && t.window_scale().is_none());
    let up = pattern(300_000, 12);
    assert_eq!(pump(&mut net, 0, c, 1, s, &up), up);
    let down = pattern(300_000, 13);
    assert_eq!(pump(&mut net, 1, s, 0, c, &down), down);
    // A forged ACK with a wrong cookie is refused with a reset.
    let before = net.nodes[1].drops(DropReason::TcpUnexpected);
    let mut batch = vec![forged(
        &net,
        &seg(5555, TcpControl::None, 1, Some(12345), &[]),
    )];
    let now = net.now;
    net.nodes[1].receive_batch(now, PortId(0), &mut batch);
    assert_eq!(net.nodes[1].drops(DropReason::TcpUnexpected), before + 1);
    assert_eq!(net.nodes[1].tcp_socket_count(), 1 + 8 + 1);
}

/// ABORT (RFC 9293 §3.10.5) sends a reset; the peer's connection fails with "reset"
/// (§3.10.7.4 second), and our handle is void at once.
#[test]
fn abort_sends_rst_and_peer_sees_reset_rfc9293_3_10_5() {
    let mut net = pair();
    let (c, s) = connected(&mut net);
    let now = net.now;
    net.nodes[0].tcp_abort(now, c).unwrap();
    assert_eq!(net.nodes[0].tcp_state(c), None);
    assert_eq!(net.nodes[0].tcp_socket_count(), 0);
    net.run(10);
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Closed));
    let mut buf = [0u8; 4];
    assert_eq!(
        net.nodes[1].tcp_recv(s, &mut buf),
        Err(SocketError::Connection(stack::tcp::TcpError::Reset))
    );
    assert!(matches!(
        net.nodes[1].tcp_send(net.now, s, b"x"),
        Err(SocketError::Connection(stack::tcp::TcpError::Reset))
    ));
}

/// Closing with unread data resets the connection instead of a FIN (RFC 1122
/// §4.2.2.13, RFC 2525 §2.17), so the peer knows its data was not read.
#[test]
fn close_with_unread_data_resets_rfc1122_4_2_2_13() {
    let mut net = pair();
    let (c, s) = connected(&mut net);
    let now = net.now;
    net.nodes[0].tcp_send(now, c, b"unread").unwrap();
    net.run(50);
    net.nodes[1].tcp_close(net.now, s).unwrap();
    net.run(10);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Closed));
    assert_eq!(
        net.nodes[0].tcp_connection(c).unwrap().error(),
        Some(stack::tcp::TcpError::Reset)
    );
}

/// Closing a listener resets the connections it had not handed out yet.
#[test]
fn closing_a_listener_resets_unaccepted_connections() {
    let mut net = pair();
    let l = net.nodes[1].tcp_listen(sa(B4, 80), 8).unwrap();
    let c = net.nodes[0].tcp_connect(net.now, sa(B4, 80), None).unwrap();
    net.run(20);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Established));
    net.nodes[1].tcp_close(net.now, l).unwrap();
    net.run(10);
    assert_eq!(net.nodes[1].tcp_socket_count(), 0);
    assert_eq!(net.nodes[0].tcp_state(c), Some(TcpState::Closed));
    // The port is free again, and a fresh SYN there is refused.
    let c2 = net.nodes[0].tcp_connect(net.now, sa(B4, 80), None).unwrap();
    net.run(10);
    assert_eq!(
        net.nodes[0].tcp_connection(c2).unwrap().error(),
        Some(stack::tcp::TcpError::Refused)
    );
}

/// Path MTU discovery (RFC 1191 §6.3): segments carry DF; a router on the path with a
/// smaller MTU answers "fragmentation needed", the MSS follows and the transfer goes on.
#[test]
fn path_mtu_discovery_lowers_mss_rfc1191() {
    use stack::{InterfaceConfig, RouteTarget};
    let mut net = Net::new();
    let a = net.add(StackConfig::host("a"));
    let r = net.add(StackConfig::router("r"));
    let b = net.add(StackConfig::host("b"));
    let pa = net.port(a, &["10.0.1.1/24"], &[]);
    let r1 = net.port(r, &["10.0.1.254/24"], &[]);
    let r2 = net.nodes[r]
        .add_port(
            InterfaceConfig::new("r-b", mac(1, 1))
                .with_mtu(1280)
                .with_ipv4("10.0.2.254/24".parse().unwrap()),
        )
        .unwrap();
    let pb = net.port(b, &["10.0.2.2/24"], &[]);
    net.link((a, pa), (r, r1));
    net.link((r, r2), (b, pb));
    net.nodes[a]
        .add_route(
            "10.0.2.0/24".parse().unwrap(),
            RouteTarget::Via("10.0.1.254".parse().unwrap()),
        )
        .unwrap();
    net.nodes[b]
        .add_route(
            "10.0.1.0/24".parse().unwrap(),
            RouteTarget::Via("10.0.2.254".parse().unwrap()),
        )
        .unwrap();
    let server = sa(Ipv4Addr::new(10, 0, 2, 2), 80);
    let l = net.nodes[b].tcp_listen(server, 4).unwrap();
    let c = net.nodes[a].tcp_connect(net.now, server, None).unwrap();
    net.run(50);
    let s = net.nodes[b].tcp_accept(l).expect("accepted");
    assert_eq!(net.nodes[a].tcp_connection(c).unwrap().mss(), 1460);
    let data = pattern(200_000, 21);
    assert_eq!(pump(&mut net, a, c, b, s, &data), data);
    assert_eq!(net.nodes[a].tcp_connection(c).unwrap().mss(), 1240);
    assert!(net.nodes[r].drops(DropReason::MtuExceeded) >= 1);
}

/// `tcp_recv` with an empty buffer reports a failed connection's error.
#[test]
fn recv_with_empty_buffer_reports_the_error() {
    let mut net = pair();
    let c = net.nodes[0].tcp_connect(net.now, sa(B4, 99), None).unwrap();
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut []),
        Err(SocketError::WouldBlock)
    );
    net.run(20);
    assert_eq!(
        net.nodes[0].tcp_recv(c, &mut []),
        Err(SocketError::Connection(stack::tcp::TcpError::Refused))
    );
}

/// ACK coalescing: in-order full segments that arrive in one receive batch are
/// acknowledged together when the batch ends, at least every 16 segments; segments in
/// batches of their own are still acknowledged every second one (RFC 5681 §4.2).
#[test]
fn one_receive_batch_is_acknowledged_together_at_least_every_16_segments() {
    let mut net = pair_with(TcpConfig {
        rx_buffer: 1 << 20,
        tx_buffer: 1 << 20,
        ..TcpConfig::default()
    });
    let (c, s) = connected(&mut net);
    // Grow the congestion window past 40 segments.
    let warm = pattern(512 * 1024, 7);
    assert_eq!(pump(&mut net, 0, c, 1, s, &warm), warm);
    net.run(100);
    let data = pattern(40 * 1448, 9);
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, &data).unwrap(), data.len());
    // Round 0: all 40 reach b in one batch and its ACKs go back in the same round:
    // after the 16th and the 32nd segment, and one at the end of the batch.
    let mut data_segs = 0;
    let mut acks = Vec::new();
    for r in 0..100 {
        step_filtered(&mut net, &mut |from, frame| {
            if let Some((_, len, flags)) = tcp_info(frame) {
                if from == 0 && len == 1448 {
                    data_segs += 1;
                } else if from == 1 {
                    acks.push((r, len, flags));
                }
            }
            true
        });
    }
    assert_eq!(data_segs, 40);
    assert_eq!(acks.len(), 3, "{acks:?}");
    assert!(acks.iter().all(|a| a.0 == 0 && a.1 == 0), "{acks:?}");
    let mut buf = vec![0u8; data.len()];
    let mut got = 0;
    while got < data.len() {
        match net.nodes[1].tcp_recv(s, &mut buf[got..]) {
            Ok(n) if n > 0 => got += n,
            other => panic!("recv: {other:?}"),
        }
    }
    assert_eq!(buf, data);
}
