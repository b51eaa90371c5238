//! `Stack::take_tx_ready`: the ports that had frames queued, each once, so that a caller
//! with many idle ports need not ask every one.

mod common;

use common::Net;
use stack::{EchoRequest, Instant, PortId, StackConfig};

#[test]
fn take_tx_ready_lists_each_port_with_queued_frames_once() {
    let mut net = Net::new();
    let r = net.add(StackConfig::router("r"));
    let ports: Vec<PortId> = (0..8)
        .map(|i| net.port(r, &[&format!("10.0.{i}.1/24")], &[]))
        .collect();
    let s = &mut net.nodes[r];
    let mut ready = Vec::new();
    s.take_tx_ready(&mut ready);
    assert!(ready.is_empty());
    // Two pings to hosts behind port 5 and one behind port 2: ARP requests queued there.
    for (dst, seq) in [("10.0.5.9", 1), ("10.0.5.8", 2), ("10.0.2.9", 3)] {
        let req = EchoRequest {
            dst: dst.parse().unwrap(),
            ident: 1,
            seq,
            data_len: 8,
            ttl: None,
        };
        s.send_echo_request(Instant::from_secs(1), req).unwrap();
    }
    s.take_tx_ready(&mut ready);
    assert_eq!(ready, vec![ports[5], ports[2]]);
    // Listed once until taken; taken means listed again on the next frame only.
    ready.clear();
    s.take_tx_ready(&mut ready);
    assert!(ready.is_empty());
    let mut out = Vec::new();
    assert_eq!(s.drain_tx(ports[5], &mut out, usize::MAX), 2);
    assert_eq!(s.drain_tx(ports[2], &mut out, usize::MAX), 1);
    let req = EchoRequest {
        dst: "10.0.7.9".parse().unwrap(),
        ident: 1,
        seq: 4,
        data_len: 8,
        ttl: None,
    };
    s.send_echo_request(Instant::from_secs(2), req).unwrap();
    s.take_tx_ready(&mut ready);
    assert_eq!(ready, vec![ports[7]]);
}
