//! Property test: whatever TCP segments arrive (any flags together, any sequence and
//! acknowledgment numbers near the window or not, options of random bytes, payloads,
//! bad checksums, segments cut short), the stack does not panic, keeps its socket table
//! bounded, and its timers go on running.

mod common;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::{mac, Net};
use proptest::prelude::*;
use stack::wire::ethernet::{EthernetFrame, EthernetRepr};
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::tcp::TcpPacket;
use stack::wire::{EtherType, IpProtocol};
use stack::{Duration, PortId, StackConfig, TcpState};

const A4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

#[derive(Debug, Clone)]
struct Seg {
    src_port: u8,
    dst_port: u8,
    flags: u8,
    seq: (bool, i32, u32),
    ack: (bool, i32, u32),
    window: u16,
    options: Vec<u8>,
    payload_len: usize,
    good_checksum: bool,
    cut: Option<usize>,
}

fn seg() -> impl Strategy<Value = Seg> {
    (
        (0u8..4, 0u8..3, any::<u8>()),
        (any::<bool>(), -70_000i32..70_000, any::<u32>()),
        (any::<bool>(), -70_000i32..70_000, any::<u32>()),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=40),
        0usize..1500,
        prop::bool::weighted(0.8),
        prop::option::weighted(0.1, 0usize..80),
    )
        .prop_map(
            |((src_port, dst_port, flags), seq, ack, window, options, payload_len, good, cut)| {
                Seg {
                    src_port,
                    dst_port,
                    flags,
                    seq,
                    ack,
                    window,
                    options,
                    payload_len,
                    good_checksum: good,
                    cut,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_segments_never_panic(segs in prop::collection::vec(seg(), 1..48)) {
        let mut net = Net::new();
        net.add(StackConfig::host("a"));
        net.add(StackConfig::host("b"));
        let pa = net.port(0, &["10.0.0.1/24"], &[]);
        let pb = net.port(1, &["10.0.0.2/24"], &[]);
        net.link((0, pa), (1, pb));
        let server = SocketAddr::new(IpAddr::V4(B4), 80);
        let l = net.nodes[1].tcp_listen(server, 4).unwrap();
        let c = net.nodes[0].tcp_connect(net.now, server, None).unwrap();
        net.run(20);
        let s = net.nodes[1].tcp_accept(l).unwrap();
        let cport = net.nodes[0].tcp_connection(c).unwrap().endpoints().0.port();
        let now = net.now;
        net.nodes[0].tcp_send(now, c, &[1u8; 3000]).unwrap();
        net.nodes[1].tcp_send(now, s, &[2u8; 3000]).unwrap();
        for g in &segs {
            let Some(t) = net.nodes[1].tcp_connection(s) else { break };
            let (_, snd_nxt, rcv_nxt, _) = t.sequence_space();
            let seq = if g.seq.0 { rcv_nxt.wrapping_add(g.seq.1 as u32) } else { g.seq.2 };
            let ack = if g.ack.0 { snd_nxt.wrapping_add(g.ack.1 as u32) } else { g.ack.2 };
            let src_port = [cport, cport, 4321, 0][usize::from(g.src_port)];
            let dst_port = [80, 81, 0][usize::from(g.dst_port)];
            let opt_len = g.options.len() & !3;
            let tcp_len = 20 + opt_len + g.payload_len;
            let mut bytes = vec![0u8; tcp_len];
            {
                let mut p = TcpPacket::new_unchecked(&mut bytes[..]);
                p.set_src_port(src_port);
                p.set_dst_port(dst_port);
                p.set_seq_number(seq);
                p.set_ack_number(ack);
                p.set_window_len(g.window);
            }
            bytes[12] = (((20 + opt_len) / 4) as u8) << 4;
            bytes[13] = g.flags;
            bytes[20..20 + opt_len].copy_from_slice(&g.options[..opt_len]);
            if g.good_checksum {
                TcpPacket::new_unchecked(&mut bytes[..]).fill_checksum(IpAddr::V4(A4), IpAddr::V4(B4));
            }
            if let Some(cut) = g.cut {
                bytes.truncate(cut.min(bytes.len()));
            }
            let ip = Ipv4Repr {
                src_addr: A4,
                dst_addr: B4,
                next_header: IpProtocol::Tcp,
                payload_len: bytes.len(),
                hop_limit: 64,
                dont_frag: true,
                ident: 9,
            };
            let mut f = net.nodes[1].pool().alloc().unwrap();
            let d = f.append(14 + ip.buffer_len() + bytes.len()).unwrap();
            EthernetRepr { src_addr: mac(0, 0), dst_addr: mac(1, 0), ethertype: EtherType::Ipv4 }
                .emit(&mut EthernetFrame::new_unchecked(&mut *d));
            let mut p = Ipv4Packet::new_unchecked(&mut d[14..]);
            ip.emit(&mut p);
            p.payload_mut().copy_from_slice(&bytes);
            let mut batch = vec![f];
            let now = net.now;
            net.nodes[1].receive_batch(now, PortId(0), &mut batch);
            net.run(2);
        }
        net.advance(Duration::from_secs(3));
        let mut buf = [0u8; 4096];
        let _ = net.nodes[1].tcp_recv(s, &mut buf);
        let _ = net.nodes[0].tcp_recv(c, &mut buf);
        prop_assert!(net.nodes[1].tcp_socket_count() <= 1 + 4 + 1);
        // Whatever happened, closing everything leaves nothing behind once TIME-WAIT ends.
        let now = net.now;
        let _ = net.nodes[1].tcp_close(now, s);
        let _ = net.nodes[1].tcp_close(now, l);
        let _ = net.nodes[0].tcp_abort(now, c);
        net.advance(Duration::from_secs(130));
        prop_assert_eq!(net.nodes[1].tcp_socket_count(), 0);
        prop_assert!(net.nodes[1].tcp_state(s).is_none() || net.nodes[1].tcp_state(s) == Some(TcpState::Closed));
    }
}
