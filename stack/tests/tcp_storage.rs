//! A connection's buffers in caller storage ([`Stack::tcp_move_buffers`]): data goes on
//! across the move, bytes committed in place are sent, bytes read in place are
//! consumed; and a listener may come back on a port whose connections are in TIME-WAIT
//! (what SO_REUSEADDR allows on Linux).

mod common;

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::Net;
use stack::tcp::ring::RingStorage;
use stack::{SocketError, StackConfig, TcpConfig, TcpHandle, TcpState};

const B4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(ip), port)
}

fn pair() -> Net {
    let mut net = Net::new();
    for name in ["a", "b"] {
        let mut cfg = StackConfig::host(name);
        cfg.tcp = TcpConfig::default();
        net.add(cfg);
    }
    let pa = net.port(0, &["10.0.0.1/24"], &["2001:db8::1/64"]);
    let pb = net.port(1, &["10.0.0.2/24"], &["2001:db8::2/64"]);
    net.link((0, pa), (1, pb));
    net
}

fn connected(net: &mut Net, port: u16) -> (TcpHandle, TcpHandle, TcpHandle) {
    let l = net.nodes[1].tcp_listen(sa(B4, port), 8).unwrap();
    let now = net.now;
    let c = net.nodes[0].tcp_connect(now, sa(B4, port), None).unwrap();
    net.run(50);
    let s = net.nodes[1].tcp_accept(l).expect("accepted");
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::Established));
    (l, c, s)
}

#[derive(Debug)]
struct Outside(Vec<u8>);

impl RingStorage for Outside {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

fn outside(len: usize) -> Box<dyn RingStorage> {
    Box::new(Outside(vec![0; len]))
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

/// Reads everything `h` on node `n` has now.
fn drain(net: &mut Net, n: usize, h: TcpHandle) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match net.nodes[n].tcp_recv(h, &mut buf) {
            Ok(0) | Err(SocketError::WouldBlock) => return got,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn buffers_move_into_caller_storage_and_the_stream_goes_on() {
    let mut net = pair();
    let (_l, c, s) = connected(&mut net, 80);
    // Bytes wait in b's receive buffer while it moves.
    let first = pattern(5000, 1);
    let now = net.now;
    assert_eq!(net.nodes[0].tcp_send(now, c, &first), Ok(5000));
    net.run(20);
    let (tc, rc) = net.nodes[1].tcp_connection(s).unwrap().buffer_capacities();
    // Smaller storage is refused and nothing moves.
    assert!(net.nodes[1]
        .tcp_move_buffers(s, outside(tc / 2), outside(rc))
        .is_err());
    assert!(net.nodes[1]
        .tcp_move_buffers(s, outside(tc + 1000), outside(rc + 3000))
        .is_ok());
    assert_eq!(
        net.nodes[1].tcp_connection(s).unwrap().buffer_capacities(),
        (tc + 1000, rc + 3000)
    );
    assert!(net.nodes[1].tcp_connection(s).unwrap().recv_available() > 0);
    // Both directions carry more than the buffers hold, wrapping in the storage.
    let down = pattern(3 * rc, 2);
    let mut got = drain(&mut net, 1, s);
    let mut sent = 0;
    for _ in 0..100_000 {
        if got.len() >= first.len() + down.len() {
            break;
        }
        if sent < down.len() {
            let now = net.now;
            sent += net.nodes[0].tcp_send(now, c, &down[sent..]).unwrap();
        }
        net.run(1);
        got.extend(drain(&mut net, 1, s));
    }
    assert!(
        got == [first, down].concat(),
        "stream intact across the move"
    );

    // In place: bytes "written" into the send storage (zeros here) and committed go
    // out; bytes read in place are consumed without a copy.
    let now = net.now;
    assert_eq!(net.nodes[1].tcp_send_committed(now, s, 1500), Ok(1500));
    let mut out = Vec::new();
    for _ in 0..500 {
        net.run(1);
        out.extend(drain(&mut net, 0, c));
    }
    assert!(out == vec![0u8; 1500], "{} bytes", out.len());
    let now = net.now;
    net.nodes[0].tcp_send(now, c, b"abcdef").unwrap();
    net.run(20);
    assert_eq!(net.nodes[1].tcp_recv_consume(s, 4), Ok(4));
    assert_eq!(
        net.nodes[1].tcp_recv_consume(s, 100),
        Ok(2),
        "only what is there"
    );
    assert_eq!(net.nodes[1].tcp_stream_end(s), None);
    net.nodes[0].tcp_shutdown(net.now, c).unwrap();
    net.run(20);
    assert_eq!(net.nodes[1].tcp_stream_end(s), Some(Ok(())));
    // More than the free room is cut to it.
    let free = tc + 1000;
    let now = net.now;
    assert_eq!(net.nodes[1].tcp_send_committed(now, s, free + 5), Ok(free));
}

#[test]
fn a_listener_comes_back_on_a_port_with_time_wait_connections() {
    let mut net = pair();
    let (l, c, s) = connected(&mut net, 8080);
    // b closes first: its side of the connection on port 8080 ends in TIME-WAIT.
    let now = net.now;
    net.nodes[1].tcp_close(now, s).unwrap();
    net.run(20);
    net.nodes[0].tcp_close(net.now, c).unwrap();
    net.run(20);
    assert_eq!(net.nodes[1].tcp_state(s), Some(TcpState::TimeWait));
    net.nodes[1].tcp_close(net.now, l).unwrap();
    // Listening again on the port is allowed, and a new connection is served.
    let (_l2, c2, s2) = connected(&mut net, 8080);
    assert_eq!(net.nodes[0].tcp_state(c2), Some(TcpState::Established));
    assert_ne!(s2, s);
}
