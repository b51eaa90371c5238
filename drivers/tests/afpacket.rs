//! AF_PACKET against the Linux stack on a veth pair, our side and the kernel's side in
//! two namespaces: our stack pings the kernel (IPv4 with ARP, IPv6 with NDP), and
//! 10,000 UDP datagrams cross in each direction, none lost, duplicated or altered (see
//! `common/bulk.rs`, which also says what is checked given checksum offload). The ping
//! exchange is also mirrored to a pcap capture and read back.

mod common;

use std::net::{IpAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::bulk::{self, datagram_from_kernel, payload, KERNEL_IP, OUR_IP};
use common::{pool, Host, VethPair};
use drivers::{AfPacket, AfPacketConfig, Capture, Driver};
use pcap_file::pcap::PcapReader;
use stack::Frame;

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
    let drv = pair
        .ours
        .run(|| AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap());
    bulk::to_kernel(&pair.kernel, drv, kernel_mac);
}

#[test]
fn ten_thousand_datagrams_from_a_kernel_socket_reach_our_driver_intact() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let cfg = AfPacketConfig::new("dp0").with_rcvbuf(4 << 20);
    let drv = pair.ours.run(|| AfPacket::open(&cfg, pool()).unwrap());
    bulk::from_kernel(&pair.kernel, drv);
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
        seqs.extend(
            rx.drain(..)
                .filter_map(|f| datagram_from_kernel(f.data(), our_mac)),
        );
    }
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
}

#[test]
fn a_frame_larger_than_a_pool_frame_is_counted_and_dropped() {
    let pair = VethPair::new();
    let our_mac = pair.ours.mac("dp0");
    pair.kernel.ip(&format!(
        "neigh add 192.0.2.1 lladdr {our_mac} dev k0 nud permanent"
    ));
    let mut drv = pair
        .ours
        .run(|| AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap());
    // Raise the MTU past what a 2048-byte pool frame holds after opening.
    pair.ours.ip("link set dp0 mtu 4000");
    pair.kernel.ip("link set k0 mtu 4000");
    pair.kernel.run(|| {
        let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
        let mut big = payload(0);
        big.resize(3000, 0xee);
        sock.send_to(&big, (OUR_IP, 4000)).unwrap();
        sock.send_to(&payload(1), (OUR_IP, 4000)).unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut rx, mut seqs) = (Vec::new(), Vec::new());
    while seqs.is_empty() && Instant::now() < deadline {
        drv.recv(0, &mut rx, 64).unwrap();
        seqs.extend(
            rx.drain(..)
                .filter_map(|f| datagram_from_kernel(f.data(), our_mac)),
        );
    }
    assert_eq!(
        seqs,
        vec![1],
        "the small datagram arrives, the large one does not"
    );
    assert_eq!(drv.stats().rx_errors, 1);
}
