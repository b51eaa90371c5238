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
    // An old duplicate: also an ACK, no data, counted as a duplicate.
    let out = recv(&mut t, &c, &seg(TcpControl::None, 5001, Some(1001), b"abc"));
    assert_eq!(out.drop, Some(DropReason::TcpDuplicate));
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
/// the first (RFC 6675 §5): the first hole is lost (IsLost: more than two segments
/// SACKed above it) and goes at once (step 4.3); the second is not deemed lost, and
/// goes by NextSeg rule 3 since there is no new data and cwnd - pipe leaves room.
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

/// ESTABLISHED with SACK (and optionally NewReno), ISS 1000, IRS 5000, a 64 KiB window
/// from the peer, no timestamps: segments carry 1460 bytes.
fn sack_cfg(sack: bool) -> TcpConfig {
    TcpConfig {
        sack,
        tx_buffer: 65536,
        congestion: super::CongestionControl::NewReno,
        ..cfg()
    }
}

fn established_sack(c: &TcpConfig) -> Tcb {
    let mut t = Tcb::connect(c, local(), remote(), Seq(1000), 0, 1460);
    sent(&mut t, c);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.sack_permitted = c.sack;
    syn_ack.max_seg_size = Some(1460);
    syn_ack.window_len = 65535;
    recv(&mut t, c, &syn_ack);
    sent(&mut t, c);
    assert_eq!(t.sack(), c.sack);
    t
}

/// Sequence number of segment `i` of the data (1460 bytes each, from 1001).
fn s(i: u32) -> u32 {
    1001 + 1460 * i
}

/// An ACK of `ack` from the peer with SACK blocks `[first, last)` in segment numbers.
fn sack_ack(ack: u32, blocks: &[(u32, u32)]) -> TcpRepr<'static> {
    let mut a = seg(TcpControl::None, 5001, Some(ack), &[]);
    a.window_len = 65535;
    for (i, &(f, l)) in blocks.iter().enumerate() {
        a.sack_ranges[i] = Some((s(f), s(l)));
    }
    a
}

/// Data segments (by segment number) the connection sends now.
fn data_out(t: &mut Tcb, c: &TcpConfig) -> Vec<u32> {
    std::iter::from_fn(|| t.next_segment(NOW, c))
        .filter(|o| o.data_len > 0)
        .map(|o| (o.repr.seq_number - 1001) / 1460)
        .collect()
}

/// RFC 6675 §5 step 4 and (B)/(C): recovery starts on the third duplicate ACK (one that
/// SACKs new data, §2) with cwnd = ssthresh = FlightSize / 2 (no inflation) and only
/// the first segment sent again; then `pipe` (SetPipe, §4) decides, ACK by ACK: nothing
/// goes while pipe >= cwnd, then one new segment per ACK that takes one out of the
/// network.
#[test]
fn sack_recovery_pipe_limits_sending_rfc6675_5() {
    let c = sack_cfg(true);
    let mut t = established_sack(&c);
    t.send(&[7u8; 20 * 1460]);
    assert_eq!(data_out(&mut t, &c), (0..10).collect::<Vec<_>>(), "IW 10");
    // Segment 0 is lost; 1, 2, ... arrive, each answered with a growing SACK block.
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 2)]));
    assert!(!t.in_recovery());
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0], "no window left");
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 3)]));
    assert!(!t.in_recovery());
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0]);
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 4)]));
    assert!(t.in_recovery(), "DupThresh duplicate ACKs");
    assert_eq!(
        t.cwnd(),
        5 * 1460,
        "ssthresh = cwnd = FlightSize / 2 (step 4.2)"
    );
    // pipe: segment 0 sent again (at or below HighRxt), segments 4-9 not SACKed and not
    // lost (nothing above them is SACKed).
    assert_eq!(t.pipe(), 7 * 1460);
    assert_eq!(data_out(&mut t, &c), [0], "step 4.3: HighACK + 1 only");
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 5)]));
    assert_eq!(t.pipe(), 6 * 1460);
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0], "pipe above cwnd");
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 6)]));
    assert_eq!(t.pipe(), 5 * 1460);
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0], "cwnd - pipe < SMSS");
    for (k, new) in (7..=10).zip(10..) {
        recv(&mut t, &c, &sack_ack(s(0), &[(1, k)]));
        assert_eq!(t.pipe(), 4 * 1460, "ACK {k}: one segment left the network");
        assert_eq!(data_out(&mut t, &c), [new], "rule 2: one new segment");
        assert_eq!(t.pipe(), 5 * 1460, "C.4: pipe grows by what was sent");
        assert_eq!(t.cwnd(), 5 * 1460, "no inflation during recovery");
    }
    // The retransmission arrives: the ACK covers RecoveryPoint (segment 10's start) and
    // ends recovery (A).
    recv(&mut t, &c, &sack_ack(s(10), &[]));
    assert!(!t.in_recovery());
    assert_eq!(t.cwnd(), 5 * 1460);
}

/// Several losses in one window (segments 1, 4 and 7 of ten): each hole is sent again
/// once IsLost holds for it (more than DupThresh - 1 segments SACKed above, RFC 6675 §4
/// NextSeg rule 1), before new data (rule 2), each exactly once, and the whole window
/// is recovered within the ACKs of one round trip, without the timer.
#[test]
fn sack_recovery_resends_each_lost_hole_once_rfc6675_nextseg_rule_1() {
    let c = sack_cfg(true);
    let mut t = established_sack(&c);
    t.send(&[7u8; 20 * 1460]);
    assert_eq!(data_out(&mut t, &c).len(), 10);
    let mut resent = Vec::new();
    // The receiver's ACK for each arriving segment: 0, 2, 3, 5, 6, 8, 9.
    let acks: [(u32, &[(u32, u32)]); 7] = [
        (1, &[]),
        (1, &[(2, 3)]),
        (1, &[(2, 4)]),
        (1, &[(5, 6), (2, 4)]),
        (1, &[(5, 7), (2, 4)]),
        (1, &[(8, 9), (5, 7), (2, 4)]),
        (1, &[(8, 10), (5, 7), (2, 4)]),
    ];
    let mut new = Vec::new();
    for (i, (ack, blocks)) in acks.iter().enumerate() {
        recv(&mut t, &c, &sack_ack(s(*ack), blocks));
        for q in data_out(&mut t, &c) {
            if q < 10 {
                resent.push(q);
            } else {
                new.push(q);
            }
        }
        if i == 3 {
            assert!(t.in_recovery(), "third SACK-new duplicate ACK");
            assert_eq!(resent, [1], "step 4.3");
        }
    }
    assert_eq!(
        resent,
        [1, 4],
        "hole 7 has one segment SACKed above it: not lost yet"
    );
    // New data that went meanwhile arrives and is SACKed: hole 7 is now lost.
    let mut k = 10;
    while resent.len() < 3 {
        assert!(k < 14, "hole 7 never sent again");
        k += 1;
        recv(&mut t, &c, &sack_ack(s(1), &[(8, k), (5, 7), (2, 4)]));
        for q in data_out(&mut t, &c) {
            if q < 10 {
                resent.push(q);
            } else {
                new.push(q);
            }
        }
    }
    assert_eq!(resent, [1, 4, 7], "each lost segment once, in order");
    // The retransmissions arrive: partial ACKs, then the ACK past RecoveryPoint.
    recv(&mut t, &c, &sack_ack(s(4), &[(8, k), (5, 7)]));
    assert!(t.in_recovery(), "partial ACK");
    recv(&mut t, &c, &sack_ack(s(7), &[(8, k)]));
    // The ACK of everything sent (10 and 11 went before recovery, on the first ACK).
    let top = 10 + new.len() as u32;
    assert!(top > k);
    recv(&mut t, &c, &sack_ack(s(top), &[]));
    assert!(!t.in_recovery());
    assert!(
        data_out(&mut t, &c).iter().all(|&q| q >= top),
        "nothing old sent again"
    );
}

/// NextSeg rule 4 (RFC 6675 §4): with the last segment of the data lost too and nothing
/// new to send, one rescue retransmission of the highest unSACKed segment goes as soon
/// as pipe allows, once per recovery: the tail is not left to the timer.
#[test]
fn sack_recovery_rescue_retransmission_rfc6675_nextseg_rule_4() {
    let c = sack_cfg(true);
    let mut t = established_sack(&c);
    t.send(&[7u8; 10 * 1460]);
    assert_eq!(data_out(&mut t, &c).len(), 10);
    // Segments 0 and 9 are lost.
    let mut out = Vec::new();
    for k in 2..=9 {
        recv(&mut t, &c, &sack_ack(s(0), &[(1, k)]));
        out.push(data_out(&mut t, &c));
    }
    assert!(t.in_recovery());
    assert_eq!(out[2], [0], "recovery: segment 0 again");
    // After segment 0 again, pipe (two segments: the retransmission and 9, not deemed
    // lost) falls below cwnd once 7 is SACKed: rules 1-3 have nothing, so rule 4 sends
    // 9, the highest unSACKed segment.
    assert_eq!(
        out,
        [
            vec![],
            vec![],
            vec![0],
            vec![],
            vec![],
            vec![9],
            vec![],
            vec![]
        ]
    );
    // More duplicates: no second rescue.
    recv(&mut t, &c, &sack_ack(s(0), &[(1, 9)]));
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0]);
    // Both arrive: done.
    recv(&mut t, &c, &sack_ack(s(9), &[]));
    assert!(t.in_recovery(), "partial");
    recv(&mut t, &c, &sack_ack(s(10), &[]));
    assert!(!t.in_recovery());
    assert_eq!(t.send_queued(), 0);
}

/// Without SACK, NewReno (RFC 6582 §3.2): the third duplicate ACK retransmits the first
/// segment with cwnd = ssthresh + 3 * SMSS (step 2-3), each further duplicate inflates
/// cwnd by one segment (step 3), a partial ACK retransmits the next unacknowledged
/// segment and deflates cwnd by what it acknowledged, plus one segment (step 4), the
/// full ACK ends recovery with cwnd = min(ssthresh, FlightSize + SMSS) (step 3 of
/// §3.2's full acknowledgment).
#[test]
fn newreno_without_sack_partial_ack_resends_next_hole_rfc6582_3_2() {
    let c = sack_cfg(false);
    let mut t = established_sack(&c);
    t.send(&[7u8; 20 * 1460]);
    assert_eq!(data_out(&mut t, &c).len(), 10);
    // Segments 0 and 5 are lost: 1-4 and 6-9 make eight duplicate ACKs.
    let dup = sack_ack(s(0), &[]);
    recv(&mut t, &c, &dup);
    recv(&mut t, &c, &dup);
    assert_eq!(data_out(&mut t, &c), [] as [u32; 0]);
    recv(&mut t, &c, &dup);
    assert!(t.in_recovery());
    assert_eq!(t.cwnd(), 5 * 1460 + 3 * 1460);
    assert_eq!(data_out(&mut t, &c), [0]);
    for _ in 0..5 {
        recv(&mut t, &c, &dup);
    }
    assert_eq!(t.cwnd(), 13 * 1460, "one segment per further duplicate");
    assert_eq!(
        data_out(&mut t, &c),
        [10, 11, 12],
        "inflated cwnd lets new data go"
    );
    // Segment 0 arrives: a partial ACK up to the second hole.
    recv(&mut t, &c, &sack_ack(s(5), &[]));
    assert!(t.in_recovery());
    assert_eq!(t.cwnd(), 13 * 1460 - 5 * 1460 + 1460);
    assert_eq!(
        data_out(&mut t, &c),
        [5, 13],
        "the next hole, then what cwnd allows"
    );
    recv(&mut t, &c, &sack_ack(s(13), &[]));
    assert!(
        !t.in_recovery(),
        "full ACK (past RecoveryPoint, segment 10)"
    );
    assert_eq!(t.cwnd(), 2 * 1460, "min(ssthresh, FlightSize + SMSS)");
}

/// After a timeout moved SND.NXT back, a pure ACK carries SND.MAX (within the peer's
/// window): the peer may already hold data past SND.NXT, and an ACK below its RCV.NXT
/// would be dropped unread (RFC 9293 §3.10.7.4).
#[test]
fn pure_ack_after_timeout_carries_snd_max_rfc9293_3_10_7_4() {
    let c = cfg();
    let mut t = established(&c);
    t.send(&[1u8; 3000]);
    let first: Vec<u32> = sent(&mut t, &c).iter().map(|s| s.seq_number).collect();
    assert_eq!(first, [1001, 2461], "the window (4096) holds two segments");
    let later = NOW + Duration::from_secs(2);
    t.on_timer(later, &c);
    let again = sent(&mut t, &c);
    assert_eq!(
        (again.len(), again[0].seq_number),
        (1, 1001),
        "one segment again"
    );
    // Data from the peer: our ACK goes alone (cwnd is one segment, in flight).
    recv(&mut t, &c, &seg(TcpControl::Psh, 5001, Some(1001), b"hi"));
    let ack = sent(&mut t, &c);
    assert_eq!(ack.len(), 1);
    assert_eq!(ack[0].ack_number, Some(5003));
    assert_eq!(ack[0].seq_number, 3921, "SND.MAX, not the rewound SND.NXT");
}

/// PAWS (RFC 7323 §5.3) drops segments with an older timestamp, but not a duplicate ACK
/// merely reordered behind a later one (same ACK, same window, no data, at RCV.NXT,
/// within an RTO): its SACK blocks still reach the scoreboard (as Linux's
/// `tcp_disordered_ack`).
#[test]
fn paws_lets_a_reordered_duplicate_ack_through_rfc7323_5_3() {
    let c = TcpConfig {
        timestamps: true,
        sack: true,
        tx_buffer: 65536,
        ..cfg()
    };
    let mut t = Tcb::connect(&c, local(), remote(), Seq(1000), 0, 1460);
    sent(&mut t, &c);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.sack_permitted = true;
    syn_ack.max_seg_size = Some(1460);
    syn_ack.window_len = 65535;
    syn_ack.timestamp = Some((500, 1));
    recv(&mut t, &c, &syn_ack);
    sent(&mut t, &c);
    t.send(&[3u8; 5 * 1448]);
    assert_eq!(sent(&mut t, &c).len(), 5);
    let ack = |tsval: u32, window: u16, sack: Option<(u32, u32)>| {
        let mut a = seg(TcpControl::None, 5001, Some(1001), &[]);
        a.window_len = window;
        a.timestamp = Some((tsval, 10_000));
        a.sack_ranges[0] = sack;
        a
    };
    // The later duplicate ACK arrives first (TSval 510), then the earlier one (509).
    let b1 = (1001 + 1448, 1001 + 2 * 1448);
    let b2 = (1001 + 1448, 1001 + 3 * 1448);
    assert_eq!(recv(&mut t, &c, &ack(510, 65535, Some(b2))).drop, None);
    assert_eq!(recv(&mut t, &c, &ack(509, 65535, Some(b1))).drop, None);
    // Still dropped: older data, and an older ACK that would change the window.
    let mut data = seg(TcpControl::Psh, 5001, Some(1001), b"x");
    data.timestamp = Some((509, 10_000));
    assert_eq!(recv(&mut t, &c, &data).drop, Some(DropReason::TcpPaws));
    assert_eq!(
        recv(&mut t, &c, &ack(509, 1000, None)).drop,
        Some(DropReason::TcpPaws)
    );
    assert_eq!(t.recv_queued(), 0);
}

/// Karn's rule with timestamps (RFC 6298 §5, RFC 7323 §4.3): after a timeout, an ACK
/// echoing a timestamp from before it (the receiver answers a retransmitted duplicate
/// with its older TS.Recent) gives no round-trip sample, which would count the whole
/// timeout; the first echo of a later segment does.
#[test]
fn no_rtt_sample_from_an_echo_older_than_the_timeout_rfc6298_5() {
    let c = TcpConfig {
        timestamps: true,
        ..cfg()
    };
    let mut t = Tcb::connect(&c, local(), remote(), Seq(1000), 0, 1460);
    sent(&mut t, &c);
    let mut syn_ack = seg(TcpControl::Syn, 5000, Some(1001), &[]);
    syn_ack.max_seg_size = Some(1460);
    syn_ack.timestamp = Some((500, 1));
    recv(&mut t, &c, &syn_ack);
    sent(&mut t, &c);
    t.send(&[3u8; 2 * 1448]);
    let first = sent(&mut t, &c);
    assert_eq!(first.len(), 2);
    let ts0 = first[0].timestamp.unwrap().0;
    // The ACKs are lost; the timer fires (the RTO backs off) and the first segment goes
    // again.
    let rto0 = t.rto();
    let rto_at = NOW + rto0;
    t.on_timer(rto_at, &c);
    let backed_off = t.rto();
    assert_eq!(backed_off.as_nanos(), 2 * rto0.as_nanos());
    let again = t.next_segment(rto_at, &c).unwrap().repr;
    assert_eq!(again.seq_number, 1001);
    // The receiver had both: its ACK echoes the original's timestamp.
    let mut ack = seg(TcpControl::None, 5001, Some(1001 + 1448), &[]);
    ack.timestamp = Some((600, ts0));
    let later = rto_at + Duration::from_millis(2);
    t.input(later, &c, &ack, &mut Shared::default());
    assert_eq!(t.rto(), backed_off, "no sample of RTO + 2 ms");
    // An echo of a segment sent after the timeout is a sample again.
    t.send(&[3u8; 1448]);
    let next = t.next_segment(later, &c).unwrap().repr;
    let mut ack = seg(TcpControl::None, 5001, Some(next.seq_number + 1448), &[]);
    ack.timestamp = Some((601, next.timestamp.unwrap().0));
    t.input(
        later + Duration::from_millis(3),
        &c,
        &ack,
        &mut Shared::default(),
    );
    assert_eq!(t.rto(), c.min_rto, "a 3 ms sample: the floor");
}
