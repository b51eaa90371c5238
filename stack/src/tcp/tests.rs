//! State-machine tests of one connection, driven segment by segment: helper
//! constructors (`syn_sent`, `established`) and small helpers to feed a segment and
//! collect what the connection sends.

use core::net::SocketAddr;

use super::seq::Seq;
use super::tcb::{Outcome, Shared, Tcb};
use super::{Socket, TcpConfig, TcpState};
use crate::counters::DropReason;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{TcpControl, TcpRepr};

const NOW: Instant = Instant::from_secs(10);

fn local() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}

fn remote() -> SocketAddr {
    "10.0.0.2:80".parse().unwrap()
}

/// No options and immediate ACKs, so that segments are easy to predict.
fn cfg() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        window_scale: false,
        delayed_ack: Duration::ZERO,
        rx_buffer: 4096,
        tx_buffer: 4096,
        ..TcpConfig::default()
    }
}

fn seg(control: TcpControl, seq: u32, ack: Option<u32>, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: 80,
        dst_port: 40000,
        control,
        seq_number: seq,
        ack_number: ack,
        window_len: 4096,
        window_scale: None,
        max_seg_size: None,
        sack_permitted: false,
        sack_ranges: [None; 3],
        timestamp: None,
        payload,
    }
}

fn recv(t: &mut Tcb, cfg: &TcpConfig, s: &TcpRepr<'_>) -> Outcome {
    t.input(NOW, cfg, s, &mut Shared::default())
}

/// Everything the connection wants to send now.
fn sent(t: &mut Tcb, cfg: &TcpConfig) -> Vec<TcpRepr<'static>> {
    std::iter::from_fn(|| t.next_segment(NOW, cfg).map(|s| s.repr)).collect()
}

/// ISS 1000, the SYN sent.
fn syn_sent(cfg: &TcpConfig) -> Tcb {
    let mut t = Tcb::connect(cfg, local(), remote(), Seq(1000), 0, 1460);
    let syn = sent(&mut t, cfg);
    assert_eq!(syn.len(), 1);
    assert_eq!(syn[0].control, TcpControl::Syn);
    assert_eq!(syn[0].seq_number, 1000);
    t
}

/// ESTABLISHED with SND.NXT = 1001, RCV.NXT = 5001.
fn established(cfg: &TcpConfig) -> Tcb {
    let mut t = syn_sent(cfg);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.max_seg_size = Some(1460);
    recv(&mut t, cfg, &syn_ack);
    assert_eq!(t.state(), TcpState::Established);
    let ack = sent(&mut t, cfg);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].ack_number, Some(5001));
    t
}

#[test]
fn syn_sent_answers_a_bad_ack_with_a_reset_rfc9293_3_10_7_3() {
    let c = cfg();
    let mut t = syn_sent(&c);
    let out = recv(&mut t, &c, &seg(TcpControl::None, 77, Some(5), &[]));
    let rst = out.reset.expect("reset");
    assert_eq!((rst.control, rst.seq_number), (TcpControl::Rst, 5));
    assert_eq!(t.state(), TcpState::SynSent);
    // A RST without an ACK is ignored in SYN-SENT; one with an acceptable ACK refuses.
    let out = recv(&mut t, &c, &seg(TcpControl::Rst, 77, None, &[]));
    assert_eq!(out.drop, Some(DropReason::TcpUnexpected));
    assert_eq!(t.state(), TcpState::SynSent);
    recv(&mut t, &c, &seg(TcpControl::Rst, 0, Some(1001), &[]));
    assert_eq!(t.state(), TcpState::Closed);
    assert_eq!(t.error(), Some(super::TcpError::Refused));
}

#[test]
fn acceptability_test_and_ack_for_out_of_window_rfc9293_3_10_7_4() {
    let c = cfg();
    let mut t = established(&c);
    // In window: taken and acknowledged.
    assert!(
        recv(&mut t, &c, &seg(TcpControl::Psh, 5001, Some(1001), b"abc"))
            .drop
            .is_none()
    );
    assert_eq!(sent(&mut t, &c)[0].ack_number, Some(5004));
    // Past the window (4096 bytes): dropped, answered with an ACK of RCV.NXT.
    let far = 5004 + 5000;
    let out = recv(&mut t, &c, &seg(TcpControl::None, far, Some(1001), b"x"));
    assert_eq!(out.drop, Some(DropReason::TcpOutOfWindow));
    let acks = sent(&mut t, &c);
    assert_eq!((acks.len(), acks[0].ack_number), (1, Some(5004)));
    // An old duplicate: also an ACK, no data.
    let out = recv(&mut t, &c, &seg(TcpControl::None, 5001, Some(1001), b"abc"));
    assert_eq!(out.drop, Some(DropReason::TcpOutOfWindow));
    assert_eq!(sent(&mut t, &c).len(), 1);
    assert_eq!(t.recv_queued(), 3);
}

#[test]
fn ack_for_unsent_data_is_dropped_with_an_ack_rfc5961_5_2() {
    let c = cfg();
    let mut t = established(&c);
    let out = recv(&mut t, &c, &seg(TcpControl::Psh, 5001, Some(9999), b"abc"));
    assert_eq!(out.drop, Some(DropReason::TcpBadAck));
    assert_eq!(
        t.recv_queued(),
        0,
        "the data of such a segment is not taken"
    );
    assert_eq!(sent(&mut t, &c).len(), 1, "challenge ACK");
}

#[test]
fn in_window_rst_draws_a_challenge_ack_exact_one_resets_rfc5961_3_2() {
    let c = cfg();
    let mut t = established(&c);
    let out = recv(&mut t, &c, &seg(TcpControl::Rst, 5010, None, &[]));
    assert_eq!(out.drop, Some(DropReason::TcpChallengeAck));
    let ack = sent(&mut t, &c);
    assert_eq!((ack[0].seq_number, ack[0].ack_number), (1001, Some(5001)));
    assert_eq!(t.state(), TcpState::Established);
    recv(&mut t, &c, &seg(TcpControl::Rst, 5001, None, &[]));
    assert_eq!(t.state(), TcpState::Closed);
}

#[test]
fn fin_then_close_passes_close_wait_and_last_ack_rfc9293_3_6() {
    let c = cfg();
    let mut t = established(&c);
    recv(&mut t, &c, &seg(TcpControl::Fin, 5001, Some(1001), b"bye"));
    assert_eq!(t.state(), TcpState::CloseWait);
    assert!(t.fin_received());
    assert_eq!(sent(&mut t, &c)[0].ack_number, Some(5005));
    t.shutdown();
    assert_eq!(t.state(), TcpState::LastAck);
    let fin = sent(&mut t, &c);
    assert_eq!((fin[0].control, fin[0].seq_number), (TcpControl::Fin, 1001));
    recv(&mut t, &c, &seg(TcpControl::None, 5005, Some(1002), &[]));
    assert_eq!(t.state(), TcpState::Closed);
}

#[test]
fn out_of_order_data_is_sacked_and_reassembled_rfc2018() {
    let c = TcpConfig {
        sack: true,
        ..cfg()
    };
    let mut t = Tcb::connect(&c, local(), remote(), Seq(1000), 0, 1460);
    sent(&mut t, &c);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.sack_permitted = true;
    recv(&mut t, &c, &syn_ack);
    sent(&mut t, &c);
    assert!(t.sack());
    recv(
        &mut t,
        &c,
        &seg(TcpControl::None, 5011, Some(1001), b"klmno"),
    );
    let ack = sent(&mut t, &c);
    assert_eq!(ack[0].ack_number, Some(5001));
    assert_eq!(ack[0].sack_ranges[0], Some((5011, 5016)));
    recv(
        &mut t,
        &c,
        &seg(TcpControl::None, 5001, Some(1001), b"abcdefghij"),
    );
    let ack = sent(&mut t, &c);
    assert_eq!(ack[0].ack_number, Some(5016));
    assert_eq!(ack[0].sack_ranges[0], None);
    let mut buf = [0u8; 32];
    let n = t.recv(&mut buf);
    assert_eq!(&buf[..n], b"abcdefghijklmno");
}

#[test]
fn send_respects_peer_window_and_mss_rfc9293_3_8_6() {
    let c = cfg();
    let mut t = established(&c);
    let mut small = seg(TcpControl::None, 5001, Some(1001), &[]);
    small.window_len = 1000;
    recv(&mut t, &c, &small);
    t.send(&[1u8; 3000]);
    let lens: Vec<usize> = std::iter::from_fn(|| t.next_segment(NOW, &c))
        .map(|s| s.data_len)
        .collect();
    assert_eq!(lens, [1000], "one window's worth");
    assert_eq!(t.in_flight(), 1000);
    // The window opens to 4096: MSS-sized segments.
    let mut wide = seg(TcpControl::None, 5001, Some(2001), &[]);
    wide.window_len = 4096;
    recv(&mut t, &c, &wide);
    let lens: Vec<usize> = std::iter::from_fn(|| t.next_segment(NOW, &c))
        .map(|s| s.data_len)
        .collect();
    // A full segment; the 540-byte rest waits for its ACK (Nagle, RFC 9293 §3.7.4).
    assert_eq!(lens, [1460]);
    recv(&mut t, &c, &seg(TcpControl::None, 5001, Some(3461), &[]));
    let lens: Vec<usize> = std::iter::from_fn(|| t.next_segment(NOW, &c))
        .map(|s| s.data_len)
        .collect();
    assert_eq!(lens, [540]);
}

#[test]
fn socket_slot_is_small() {
    assert!(core::mem::size_of::<Socket>() <= 2048);
}

/// With SACK, fast recovery sends again every hole the peer's blocks reveal, not only
/// the first (RFC 6675 §5, in the simplified form of `sack_retransmit`).
#[test]
fn fast_recovery_resends_every_sacked_hole_rfc6675() {
    let c = TcpConfig {
        sack: true,
        tx_buffer: 16384,
        ..cfg()
    };
    let mut t = Tcb::connect(&c, local(), remote(), Seq(1000), 0, 1460);
    sent(&mut t, &c);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.sack_permitted = true;
    syn_ack.max_seg_size = Some(1460);
    syn_ack.window_len = 65535;
    recv(&mut t, &c, &syn_ack);
    sent(&mut t, &c);
    t.send(&[9u8; 5 * 1460]);
    let first: Vec<u32> = sent(&mut t, &c).iter().map(|s| s.seq_number).collect();
    assert_eq!(first, [1001, 2461, 3921, 5381, 6841]);
    // Segments 1001 and 3921 are lost; the others arrive: duplicate ACKs with SACK
    // blocks.
    let mut dup = seg(TcpControl::None, 5001, Some(1001), &[]);
    dup.window_len = 65535;
    dup.sack_ranges[0] = Some((5381, 8301));
    dup.sack_ranges[1] = Some((2461, 3921));
    let mut resent = Vec::new();
    for _ in 0..3 {
        recv(&mut t, &c, &dup);
        resent.extend(sent(&mut t, &c).iter().map(|s| s.seq_number));
    }
    assert!(t.in_recovery());
    assert_eq!(
        resent,
        [1001, 3921],
        "both holes, on the third duplicate ACK"
    );
}

/// ICMP errors (RFC 5927 §4.1, RFC 1122 §4.2.3.9): ignored unless they quote a sequence
/// number in flight; a hard error refuses a connection in SYN-SENT; "too big" lowers
/// the MSS and sends again.
#[test]
fn icmp_errors_checked_against_sequence_space_rfc5927() {
    let c = cfg();
    let mut t = syn_sent(&c);
    assert!(!t.icmp_error(999, true, None), "not in flight");
    assert_eq!(t.state(), TcpState::SynSent);
    assert!(t.icmp_error(1000, true, None));
    assert_eq!(t.error(), Some(super::TcpError::Refused));

    let mut t = established(&c);
    t.send(&[1u8; 3000]);
    let first: Vec<usize> = std::iter::from_fn(|| t.next_segment(NOW, &c))
        .map(|s| s.data_len)
        .collect();
    assert_eq!(first, [1460, 1460]);
    assert!(
        !t.icmp_error(1001, false, Some(1500)),
        "no smaller than now"
    );
    assert!(t.icmp_error(1001, false, Some(1000)));
    assert_eq!(t.mss(), 960);
    let again: Vec<usize> = std::iter::from_fn(|| t.next_segment(NOW, &c))
        .map(|s| s.data_len)
        .collect();
    assert_eq!(again[0], 960);
}
