//! 10,000 numbered UDP datagrams between a driver and a kernel socket, each way, with
//! a window of datagrams in flight so that no socket buffer overflows: any loss,
//! duplication or altered byte fails the test.
//!
//! Checksum offload: the kernel's own UDP frames on veth and TAP may carry a partial
//! checksum (TX offload stays on; ethtool is not available to turn it off), so frames
//! from the kernel are checked for the IPv4 header checksum, lengths and every payload
//! byte, not for the UDP checksum. Frames to the kernel are validated by the kernel: a
//! datagram with a bad checksum would never reach the socket.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drivers::{Driver, DriverStats};
use stack::wire::ethernet::EthernetFrame;
use stack::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use stack::wire::udp::{UdpPacket, UdpRepr};
use stack::wire::{EtherType, EthernetAddress, IpProtocol};
use stack::Frame;

use super::Netns;

/// Datagrams per test.
pub const N: usize = 10_000;
/// Datagrams in flight at most: few enough that the kernel socket's default receive
/// buffer holds them (copy-mode skbs are large) even when its reader is starved of CPU.
pub const WINDOW: usize = 32;
/// Our address.
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The kernel's address.
pub const KERNEL_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// The payload of datagram `seq`: the sequence number, then bytes derived from it,
/// 24 to 120 bytes in all.
pub fn payload(seq: u32) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    let extra = 20 + (seq as usize % 97);
    p.extend((0..extra).map(|i| (seq as u8).wrapping_add((i as u8).wrapping_mul(7))));
    p
}

/// Checks a received payload; returns its sequence number.
pub fn check_payload(p: &[u8]) -> usize {
    assert!(p.len() >= 4, "short payload");
    let seq = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
    assert!((seq as usize) < N, "sequence {seq} out of range");
    assert_eq!(p, &payload(seq)[..], "payload of datagram {seq}");
    seq as usize
}

/// Writes an Ethernet + IPv4 + UDP frame from us (port 4000) to the kernel (port
/// 5000) carrying datagram `seq` into `f`.
pub fn udp_frame(f: &mut Frame, src: EthernetAddress, dst: EthernetAddress, seq: u32) {
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

/// The sequence number of a datagram from the kernel to our port 4000 in `frame`, after
/// checking addresses, the IPv4 header checksum and the payload; `None` for other
/// traffic (the kernel's IPv6 chatter: router solicitations, MLD, DAD).
pub fn datagram_from_kernel(frame: &[u8], our_mac: EthernetAddress) -> Option<usize> {
    let eth = EthernetFrame::new_checked(frame).unwrap();
    if eth.ethertype() != EtherType::Ipv4 {
        return None;
    }
    assert_eq!(eth.dst_addr(), our_mac);
    let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
    assert!(ip.verify_checksum(), "IPv4 header checksum");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (KERNEL_IP, OUR_IP));
    assert_eq!(ip.next_header(), IpProtocol::Udp);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.dst_port(), 4000);
    Some(check_payload(udp.payload()))
}

/// Sends [`N`] datagrams through `drv` (opened already, in its namespace) to a UDP
/// socket bound in `kernel`; asserts all arrive once and intact; returns the driver's
/// counters.
pub fn to_kernel<D: Driver + Send>(
    kernel: &Netns,
    mut drv: D,
    kernel_mac: EthernetAddress,
) -> DriverStats {
    let (received, ready) = (&AtomicUsize::new(0), &AtomicBool::new(false));
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            kernel.enter();
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
        let sender = s.spawn(move || {
            let our_mac = drv.link().mac;
            while !ready.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            let (mut seq, mut batch, mut rx) = (0usize, Vec::new(), Vec::new());
            let pool = stack::FramePool::with_frames(256, stack::PoolConfig::default()).unwrap();
            while seq < N || !batch.is_empty() {
                assert!(Instant::now() < deadline, "sending stalled at {seq}");
                let window_end = received.load(Ordering::Acquire) + WINDOW;
                while seq < N && batch.len() < 64 && seq < window_end {
                    let mut f = pool.alloc().unwrap();
                    udp_frame(&mut f, our_mac, kernel_mac, seq as u32);
                    batch.push(f);
                    seq += 1;
                }
                drv.send(0, &mut batch).unwrap();
                if !batch.is_empty() || seq >= window_end {
                    std::thread::sleep(Duration::from_micros(20));
                }
                // Our own transmissions never come back on receive.
                for q in 0..drv.link().queues {
                    drv.recv(q, &mut rx, 64).unwrap();
                }
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
        stats
    })
}

/// Has a UDP socket in `kernel` send [`N`] datagrams to our address, port 4000 (the
/// kernel must know our MAC: a permanent neighbor entry), and receives them with `drv`
/// on all its queues, sleeping on its descriptors when idle; asserts all arrive once
/// and intact; returns the driver's counters.
pub fn from_kernel<D: Driver + Send>(kernel: &Netns, mut drv: D) -> DriverStats {
    let received = &AtomicUsize::new(0);
    std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let our_mac = drv.link().mac;
            let queues = drv.link().queues;
            let mut fds: Vec<libc::pollfd> = (0..queues)
                .map(|q| libc::pollfd {
                    fd: drv.poll_fd(q).unwrap(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let mut seen = vec![false; N];
            let mut rx = Vec::new();
            let mut count = 0;
            let deadline = Instant::now() + Duration::from_secs(10);
            while count < N && Instant::now() < deadline {
                let mut got = 0;
                for q in 0..queues {
                    got += drv.recv(q, &mut rx, 64).unwrap();
                }
                if got == 0 {
                    // SAFETY: poll(2) on pollfds that live in this Vec for the call.
                    #[allow(unsafe_code)]
                    unsafe {
                        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100)
                    };
                    continue;
                }
                for f in rx.drain(..) {
                    if let Some(seq) = datagram_from_kernel(f.data(), our_mac) {
                        assert!(!seen[seq], "datagram {seq} arrived twice");
                        seen[seq] = true;
                        count += 1;
                    }
                }
                received.store(count, Ordering::Release);
            }
            (count, drv.stats())
        });
        let sender = s.spawn(|| {
            kernel.enter();
            let sock = UdpSocket::bind((KERNEL_IP, 0)).unwrap();
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
        stats
    })
}
