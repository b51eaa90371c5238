//! AF_PACKET against the Linux stack on a veth pair, our side and the kernel's side in
//! two namespaces: our stack pings the kernel (IPv4 with ARP, IPv6 with NDP), and
//! 10,000 UDP datagrams cross in each direction, none lost, duplicated or altered. The
//! ping exchange is also mirrored to a pcap capture and read back.
//!
//! Checksum offload: the kernel's own UDP frames on veth carry a partial checksum (TX
//! offload stays on; ethtool is not available to turn it off), so the kernel-to-us test
//! checks the IPv4 header checksum, lengths and every payload byte, but not the UDP
//! checksum. In the other direction the kernel validates our checksums itself: a
//! datagram with a bad one would never reach the socket.

mod common;

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{pool, Host, VethPair};
use drivers::{AfPacket, AfPacketConfig, Capture, Driver};
use pcap_file::pcap::PcapReader;
use stack::wire::ethernet::EthernetFrame;
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::udp::{UdpPacket, UdpRepr};
use stack::wire::{EtherType, EthernetAddress, IpProtocol};
use stack::Frame;

const N: usize = 10_000;
/// Datagrams in flight at most, so neither side's socket buffer overflows.
const WINDOW: usize = 128;
const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The payload of datagram `seq`: the sequence number, then bytes derived from it,
/// 24 to 120 bytes in all.
fn payload(seq: u32) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    let extra = 20 + (seq as usize % 97);
    p.extend((0..extra).map(|i| (seq as u8).wrapping_add((i as u8).wrapping_mul(7))));
    p
}

/// Checks a received payload; returns its sequence number.
fn check_payload(p: &[u8]) -> usize {
    assert!(p.len() >= 4, "short payload");
    let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    assert!((seq as usize) < N, "sequence {seq} out of range");
    assert_eq!(p, &payload(seq)[..], "payload of datagram {seq}");
    seq as usize
}

/// An Ethernet + IPv4 + UDP frame from us to the kernel carrying datagram `seq`.
fn udp_frame(f: &mut Frame, src: EthernetAddress, dst: EthernetAddress, seq: u32) {
    let data = payload(seq);
    let udp_len = 8 + data.len();
    let buf = f.append(14 + 20 + udp_len).unwrap();
    buf[0..6].copy_from_slice(&dst.0);
    buf[6..12].copy_from_slice(&src.0);
    buf[12..14].copy_from_slice(&u16::from(EtherType::Ipv4).to_be_bytes());
    Ipv4Repr {
        src_addr: OUR_IP,
        dst_addr: KERNEL_IP,
        next_header: IpProtocol::Udp,
        payload_len: udp_len,
        hop_limit: 64,
        dont_frag: true,
        ident: seq as u16,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..34]));
    UdpRepr {
        src_port: 4000,
        dst_port: 5000,
    }
    .emit_with_payload(
        &mut UdpPacket::new_unchecked(&mut buf[34..]),
        IpAddr::V4(OUR_IP),
        IpAddr::V4(KERNEL_IP),
        &data,
    );
}

#[test]
fn our_stack_pings_the_kernel_through_af_packet_v4_and_v6() {
    let pair = VethPair::new();
    let kernel_mac = pair.kernel.mac("k0");
    pair.ours.run(|| {
        let drv = AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap();
        let link = drv.link();
        assert_eq!(
            (link.name.as_str(), link.mtu, link.queues),
            ("dp0", 1500, 1)
        );
        assert_eq!(
            link.mac,
            pair.ours.mac("dp0"),
            "SIOCGIFHWADDR agrees with ip"
        );
        let p = drv.pool().clone();
        let mut h = Host::new(drv, p, "192.0.2.1/24", "2001:db8::1/64");
        h.capture = Some(Capture::new(Vec::new(), 128).unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(h.ping("192.0.2.2", 1), (ip("192.0.2.2"), 1));
        assert_eq!(h.ping("2001:db8::2", 2), (ip("2001:db8::2"), 2));
        assert_eq!(h.ping("192.0.2.2", 3), (ip("192.0.2.2"), 3));
        let learned: Vec<_> = h.stack.neighbors().map(|n| n.mac).collect();
        assert!(learned.iter().all(|m| *m == kernel_mac), "{learned:?}");
        let s = h.drv.stats();
        assert_eq!((s.rx_errors, s.tx_errors, s.rx_dropped), (0, 0, 0), "{s:?}");
        // The capture holds every frame both ways: ARP from each side, echo requests
        // from us and replies from the kernel, in time order.
        let cap = h.capture.take().unwrap();
        assert_eq!(cap.packets(), s.rx_packets + s.tx_packets);
        let bytes = cap.into_inner().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let (mut arp, mut echo, mut last) = ([0; 2], [0; 2], Duration::ZERO);
        let our_mac = h.drv.link().mac;
        while let Some(p) = r.next_raw_packet() {
            let p = p.unwrap();
            let ts = Duration::new(p.ts_sec.into(), p.ts_frac);
            assert!(ts >= last, "timestamps in order");
            last = ts;
            let d = &p.data;
            let from_us = d[6..12] == our_mac.0;
            let dir = usize::from(!from_us);
            match u16::from_be_bytes([d[12], d[13]]) {
                0x0806 => arp[dir] += 1,
                0x0800 if d[23] == 1 && d[34] == if from_us { 8 } else { 0 } => echo[dir] += 1,
                _ => {}
            }
        }
        assert!(arp[0] >= 1 && arp[1] >= 1, "ARP both ways: {arp:?}");
        assert_eq!(echo, [2, 2], "IPv4 echo requests out, replies in");
    });
}

#[test]
fn ten_thousand_datagrams_from_our_driver_reach_a_kernel_socket_intact() {
    let pair = VethPair::new();
    let kernel_mac = pair.kernel.mac("k0");
    let received = AtomicUsize::new(0);
    let ready = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            pair.kernel.enter();
            let sock = UdpSocket::bind((KERNEL_IP, 5000)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            ready.store(true, Ordering::Release);
            let mut seen = vec![false; N];
            let mut buf = [0u8; 2048];
            let mut count = 0;
            while count < N {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    break;
                };
                assert_eq!(from, (OUR_IP, 4000).into());
                let seq = check_payload(&buf[..n]);
                assert!(!seen[seq], "datagram {seq} arrived twice");
                seen[seq] = true;
                count += 1;
                received.store(count, Ordering::Release);
            }
            count
        });
        let sender = s.spawn(|| {
            pair.ours.enter();
            let mut drv = AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap();
            let our_mac = drv.link().mac;
            while !ready.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let (mut seq, mut batch, mut rx) = (0usize, Vec::new(), Vec::new());
            while seq < N || !batch.is_empty() {
                assert!(Instant::now() < deadline, "sending stalled at {seq}");
                let window_end = received.load(Ordering::Acquire) + WINDOW;
                while seq < N && batch.len() < 64 && seq < window_end {
                    let mut f = drv.pool().alloc().unwrap();
                    udp_frame(&mut f, our_mac, kernel_mac, seq as u32);
                    batch.push(f);
                    seq += 1;
                }
                drv.send(0, &mut batch).unwrap();
                if !batch.is_empty() || seq >= window_end {
                    std::thread::sleep(Duration::from_micros(20));
                }
                // Our own transmissions never come back on receive.
                drv.recv(0, &mut rx, 64).unwrap();
                for f in rx.drain(..) {
                    assert_ne!(&f.data()[6..12], &our_mac.0, "saw our own frame");
                }
            }
            drv.stats()
        });
        let stats = sender.join().unwrap();
        let count = receiver.join().unwrap();
        assert_eq!(count, N, "datagrams received by the kernel socket");
        assert_eq!(stats.tx_packets, N as u64);
        assert_eq!(stats.tx_errors, 0);
    });
}

#[test]
fn ten_thousand_datagrams_from_a_kernel_socket_reach_our_driver_intact() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let received = AtomicUsize::new(0);
    let ready = AtomicBool::new(false);
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            pair.ours.enter();
            let cfg = AfPacketConfig::new("dp0").with_rcvbuf(4 << 20);
            let mut drv = AfPacket::open(&cfg, pool()).unwrap();
            let fd = drv.poll_fd(0).unwrap();
            ready.store(true, Ordering::Release);
            let mut seen = vec![false; N];
            let mut rx = Vec::new();
            let mut count = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while count < N && Instant::now() < deadline {
                if drv.recv(0, &mut rx, 64).unwrap() == 0 {
                    // Sleep on the driver's descriptor until frames arrive.
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: poll(2) on one pollfd that lives on this stack.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::poll(&mut pfd, 1, 100)
                    };
                    continue;
                }
                for f in rx.drain(..) {
                    let eth = EthernetFrame::new_checked(f.data()).unwrap();
                    if eth.ethertype() != EtherType::Ipv4 {
                        continue; // the kernel's IPv6 chatter (RS, MLD, DAD)
                    }
                    assert_eq!(eth.dst_addr(), our_mac);
                    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                    assert!(ip.verify_checksum(), "IPv4 header checksum");
                    assert_eq!((ip.src_addr(), ip.dst_addr()), (KERNEL_IP, OUR_IP));
                    assert_eq!(ip.next_header(), IpProtocol::Udp);
                    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                    assert_eq!(udp.dst_port(), 4000);
                    let seq = check_payload(udp.payload());
                    assert!(!seen[seq], "datagram {seq} arrived twice");
                    seen[seq] = true;
                    count += 1;
                }
                received.store(count, Ordering::Release);
            }
            (count, drv.stats())
        });
        let sender = s.spawn(|| {
            pair.kernel.enter();
            let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
            while !ready.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut seq = 0;
            while seq < N && Instant::now() < deadline {
                if seq >= received.load(Ordering::Acquire) + WINDOW {
                    std::thread::sleep(Duration::from_micros(20));
                    continue;
                }
                sock.send_to(&payload(seq as u32), (OUR_IP, 4000)).unwrap();
                seq += 1;
            }
        });
        sender.join().unwrap();
        let (count, stats) = receiver.join().unwrap();
        assert_eq!(count, N, "datagrams received by our driver");
        assert_eq!((stats.rx_errors, stats.rx_dropped), (0, 0), "{stats:?}");
        assert!(stats.rx_packets >= N as u64);
    });
}

#[test]
fn an_empty_pool_pauses_receive_and_frames_wait_in_the_kernel() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let small = stack::FramePool::with_frames(16, stack::PoolConfig::default()).unwrap();
    let mut drv = pair
        .ours
        .run(|| AfPacket::open(&AfPacketConfig::new("dp0"), small.clone()).unwrap());
    let held: Vec<Frame> = (0..16).map(|_| small.alloc().unwrap()).collect();
    pair.kernel.run(|| {
        let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
        for seq in 0..5u32 {
            sock.send_to(&payload(seq), (OUR_IP, 4000)).unwrap();
        }
    });
    let mut rx = Vec::new();
    assert_eq!(drv.recv(0, &mut rx, 64).unwrap(), 0);
    assert!(drv.stats().rx_pool_empty >= 1);
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seqs = Vec::new();
    while seqs.len() < 5 && Instant::now() < deadline {
        drv.recv(0, &mut rx, 64).unwrap();
        for f in rx.drain(..) {
            let eth = EthernetFrame::new_checked(f.data()).unwrap();
            if eth.ethertype() == EtherType::Ipv4 {
                let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
                let udp = UdpPacket::new_checked(ip.payload()).unwrap();
                seqs.push(check_payload(udp.payload()));
            }
        }
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
}
