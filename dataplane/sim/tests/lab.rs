//! The laboratory's behaviour: resolution and forwarding across chains, ICMP errors from
//! the right hop, link failures, impairments at their configured rates, the step budget.
//! Every test is deterministic (fixed seeds) and asserts no wall-clock timing.

use std::net::IpAddr;

use sim::scenarios::{chain, Chain};
use sim::{
    Action, AppConfig, LinkConfig, Loss, NodeKind, PingConfig, Sim, SimError, Summary,
    TcpFlowConfig, UdpFlowConfig,
};
use stack::neighbor::NeighborState;
use stack::stack::IcmpErrorKind;
use stack::{DropReason, Duration, Event, Instant};

fn ping(dst: IpAddr, start_ms: u64, interval_ms: u64, count: u64) -> AppConfig {
    AppConfig::Ping(PingConfig {
        dst,
        start: Instant::from_millis(start_ms),
        interval: Duration::from_millis(interval_ms),
        count: Some(count),
        size: 56,
        ttl: None,
    })
}

fn ping_ttl(dst: IpAddr, start_ms: u64, ttl: u8) -> AppConfig {
    AppConfig::Ping(PingConfig {
        dst,
        start: Instant::from_millis(start_ms),
        interval: Duration::from_secs(1),
        count: Some(1),
        size: 32,
        ttl: Some(ttl),
    })
}

fn fast() -> LinkConfig {
    LinkConfig {
        bandwidth_bps: 100_000_000,
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    }
}

#[test]
fn arp_and_ndp_resolve_across_a_chain_of_five_routers() {
    let mut sim = Sim::new(7);
    let c = chain(&mut sim, 5, &fast()).unwrap();
    let v4 = sim
        .add_app(c.h1, "v4", ping(Chain::v4(5, true), 0, 100, 5))
        .unwrap();
    let v6 = sim
        .add_app(c.h1, "v6", ping(Chain::v6(5, true), 0, 100, 5))
        .unwrap();
    sim.run_until(Instant::from_secs(2)).unwrap();
    for app in [v4, v6] {
        let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
        assert_eq!(s.sent, 5, "{s:?}");
        assert_eq!(s.received, 5, "{s:?}");
        // Six links of 1 ms each way; the first RTT includes resolution at every hop.
        assert!(s.rtt.min >= Duration::from_millis(12), "{s:?}");
    }
    // Every router learned both neighbors for both families.
    for &r in &c.routers {
        let stack = sim.stack(r).unwrap();
        // Resolved: the MAC is known (reachable, or stale/delay when learned from the
        // other side's solicitation and then used).
        let reachable: Vec<_> = stack
            .neighbors()
            .filter(|n| !matches!(n.state, NeighborState::Incomplete | NeighborState::Failed))
            .collect();
        let v4n = reachable.iter().filter(|n| n.addr.is_ipv4()).count();
        let v6n = reachable.iter().filter(|n| n.addr.is_ipv6()).count();
        let all: Vec<_> = stack.neighbors().collect();
        assert_eq!((v4n, v6n), (2, 2), "{all:?}");
    }
    assert!(Summary::of(&sim).render().contains("v4"));
}

#[test]
fn ttl_expiry_is_reported_by_the_right_hop() {
    let mut sim = Sim::new(3);
    let c = chain(&mut sim, 5, &fast()).unwrap();
    let mut apps = Vec::new();
    for ttl in 1..=6u8 {
        let start = 1000 * u64::from(ttl);
        apps.push((
            ttl,
            sim.add_app(c.h1, "t4", ping_ttl(Chain::v4(5, true), start, ttl))
                .unwrap(),
            sim.add_app(c.h1, "t6", ping_ttl(Chain::v6(5, true), start, ttl))
                .unwrap(),
        ));
    }
    sim.run_until(Instant::from_secs(10)).unwrap();
    for (ttl, a4, a6) in apps {
        for (app, v6) in [(a4, false), (a6, true)] {
            let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
            if ttl <= 5 {
                // Router k answers from its address on the link towards h1 (link k-1).
                let k = usize::from(ttl);
                let hop = if v6 {
                    Chain::v6(k - 1, true)
                } else {
                    Chain::v4(k - 1, true)
                };
                assert_eq!(s.errors, 1, "ttl {ttl} v6 {v6}: {s:?}");
                let e = s.error_log[0];
                assert_eq!(e.kind, IcmpErrorKind::TimeExceeded, "ttl {ttl}: {e:?}");
                assert_eq!(e.from, hop, "ttl {ttl} v6 {v6}");
                assert_eq!(s.received, 0);
            } else {
                assert_eq!(s.received, 1, "ttl {ttl} v6 {v6}: {s:?}");
                assert_eq!(s.errors, 0);
            }
        }
    }
    // The expiries were counted at the routers.
    for &r in &c.routers {
        assert_eq!(sim.stack(r).unwrap().drops(DropReason::TtlExpired), 2);
    }
}

#[test]
fn link_down_fails_pings_with_unreachable_and_link_up_recovers() {
    let mut sim = Sim::new(11);
    let c = chain(&mut sim, 2, &fast()).unwrap();
    sim.record_events(c.h1);
    let app = sim
        .add_app(c.h1, "p", ping(Chain::v4(2, true), 0, 1000, 200))
        .unwrap();
    let last = c.links[2]; // r2 — h2
    sim.schedule(Instant::from_secs(10), Action::LinkDown(last), "cut");
    sim.schedule(Instant::from_secs(100), Action::LinkUp(last), "repair");
    sim.run_until(Instant::from_secs(205)).unwrap();
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    assert_eq!(s.sent, 200);
    // Lost while down: no reply.
    assert!(s.received < 200 - 60, "{s:?}");
    // r2 gave up resolving h2 and said so (ICMP host unreachable, code 1).
    let r2_addr = Chain::v4(1, true);
    assert!(
        s.error_log
            .iter()
            .any(|e| e.kind == IcmpErrorKind::Unreachable(1) && e.from == r2_addr),
        "{s:?}"
    );
    // Before the cut and after the repair, replies.
    let replied: Vec<u16> = sim
        .events(c.h1)
        .iter()
        .filter_map(|e| match e {
            Event::EchoReply { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert!(replied.contains(&5));
    assert!(
        !replied.iter().any(|&q| (20..95).contains(&q)),
        "{replied:?}"
    );
    assert!(
        replied.contains(&150) && replied.contains(&200),
        "{replied:?}"
    );
    let stats = sim.link_stats(last).unwrap();
    assert!(stats[0].down_drops + stats[1].down_drops > 0);
}

#[test]
fn random_loss_meets_its_rate_within_binomial_bounds() {
    let mut sim = Sim::new(2024);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let link = sim
        .connect(
            h1,
            &["192.0.2.1/24".parse().unwrap()],
            h2,
            &["192.0.2.2/24".parse().unwrap()],
            LinkConfig {
                loss: Loss::Random(0.05),
                ..fast()
            },
        )
        .unwrap();
    let app = sim
        .add_app(h1, "p", ping("192.0.2.2".parse().unwrap(), 0, 1, 10_000))
        .unwrap();
    sim.run_until(Instant::from_secs(15)).unwrap();
    for d in sim.link_stats(link).unwrap() {
        let n = d.transmitted as f64;
        let p = 0.05;
        let sigma = (n * p * (1.0 - p)).sqrt();
        assert!(n > 9_000.0, "{d:?}");
        // Five standard deviations: a correct model fails this about once in 1.7 million.
        assert!(
            (d.lost as f64 - n * p).abs() <= 5.0 * sigma,
            "lost {} of {n}, expected {} ± {}",
            d.lost,
            n * p,
            5.0 * sigma
        );
    }
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    // A round trip survives with 0.95², less what ARP retries cost.
    let ok = s.received as f64 / s.sent as f64;
    assert!((ok - 0.9025).abs() < 0.02, "{s:?}");
}

#[test]
fn gilbert_elliott_loss_is_bursty_at_its_mean_rate() {
    let mut sim = Sim::new(99);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let ge = Loss::GilbertElliott {
        p_gb: 0.01,
        p_bg: 0.19,
        loss_good: 0.0,
        loss_bad: 1.0,
    };
    let link = sim
        .connect(
            h1,
            &["192.0.2.1/24".parse().unwrap()],
            h2,
            &["192.0.2.2/24".parse().unwrap()],
            LinkConfig { loss: ge, ..fast() },
        )
        .unwrap();
    sim.record_link(link);
    sim.add_app(h1, "p", ping("192.0.2.2".parse().unwrap(), 0, 1, 20_000))
        .unwrap();
    sim.run_until(Instant::from_secs(25)).unwrap();
    let d = sim.link_stats(link).unwrap()[0];
    let rate = d.lost as f64 / d.transmitted as f64;
    assert!((rate - ge.mean_rate()).abs() < 0.015, "{rate} {d:?}");
    // Bursts: requests arrive in runs; the gaps between delivered sequence numbers
    // average about 1 / p_bg ≈ 5 lost in a row, far above independent loss (≈ 1.05).
    let seqs: Vec<u16> = sim
        .captured(link)
        .iter()
        .filter(|f| f.dir == 0 && f.data.len() > 40 && f.data[23] == 1 && f.data[34] == 8)
        .map(|f| u16::from_be_bytes([f.data[40], f.data[41]]))
        .collect();
    let gaps: Vec<u16> = seqs
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]) - 1)
        .filter(|&g| g > 0)
        .collect();
    let mean_gap = gaps.iter().map(|&g| f64::from(g)).sum::<f64>() / gaps.len() as f64;
    assert!(mean_gap > 3.0, "mean burst {mean_gap}");
}

#[test]
fn corruption_is_caught_by_checksums_and_counted() {
    let mut sim = Sim::new(5);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let link = sim
        .connect(
            h1,
            &[
                "192.0.2.1/24".parse().unwrap(),
                "2001:db8::1/64".parse().unwrap(),
            ],
            h2,
            &[
                "192.0.2.2/24".parse().unwrap(),
                "2001:db8::2/64".parse().unwrap(),
            ],
            LinkConfig {
                corrupt: 0.1,
                ..fast()
            },
        )
        .unwrap();
    let a4 = sim
        .add_app(h1, "p4", ping("192.0.2.2".parse().unwrap(), 0, 1, 2000))
        .unwrap();
    let a6 = sim
        .add_app(h1, "p6", ping("2001:db8::2".parse().unwrap(), 0, 1, 2000))
        .unwrap();
    sim.run_until(Instant::from_secs(5)).unwrap();
    let [ab, ba] = sim.link_stats(link).unwrap();
    let corrupted = ab.corrupted + ba.corrupted;
    assert!(corrupted > 500, "{ab:?} {ba:?}");
    let drops: u64 = [h1, h2]
        .iter()
        .map(|&n| sim.stack(n).unwrap().counters().total_drops())
        .sum();
    // Every corrupted frame was dropped, none accepted.
    assert_eq!(drops, corrupted);
    let checksum: u64 = [h1, h2]
        .iter()
        .map(|&n| {
            let s = sim.stack(n).unwrap();
            s.drops(DropReason::Ipv4BadChecksum) + s.drops(DropReason::IcmpMalformed)
        })
        .sum();
    let all: Vec<_> = [h1, h2]
        .iter()
        .flat_map(|&n| {
            sim.stack(n)
                .unwrap()
                .counters()
                .nonzero_drops()
                .collect::<Vec<_>>()
        })
        .collect();
    // Most flips break a checksum; the rest break a field that is checked before it (a
    // length or version in the IPv4 header, an IPv6 destination that is no longer ours).
    assert!(
        checksum * 10 >= corrupted * 8,
        "{checksum} of {corrupted}: {all:?}"
    );
    for (reason, _) in &all {
        assert!(
            matches!(
                reason,
                DropReason::Ipv4BadChecksum
                    | DropReason::IcmpMalformed
                    | DropReason::Ipv4Truncated
                    | DropReason::Ipv4BadVersion
                    | DropReason::Ipv4BadHeaderLen
                    | DropReason::Ipv6Truncated
                    | DropReason::Ipv6MartianSource
                    | DropReason::Ipv6MartianDestination
                    | DropReason::NotForwarding
            ),
            "{all:?}"
        );
    }
    for app in [a4, a6] {
        let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
        assert_eq!(s.received + s.lost(), s.sent);
        assert!(s.lost() > 0);
    }
}

#[test]
fn duplication_and_reordering_show_up_at_the_application() {
    let mut sim = Sim::new(8);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let link = sim
        .connect(
            h1,
            &["192.0.2.1/24".parse().unwrap()],
            h2,
            &["192.0.2.2/24".parse().unwrap()],
            LinkConfig {
                duplicate: 0.05,
                reorder: 0.05,
                reorder_delay: Duration::from_millis(3),
                ..fast()
            },
        )
        .unwrap();
    let app = sim
        .add_app(h1, "p", ping("192.0.2.2".parse().unwrap(), 0, 1, 1000))
        .unwrap();
    sim.run_until(Instant::from_secs(3)).unwrap();
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    assert_eq!(s.received, 1000, "{s:?}");
    assert!(s.duplicates > 50, "{s:?}");
    assert!(s.rtt.max >= Duration::from_millis(5), "{s:?}");
    let [ab, ba] = sim.link_stats(link).unwrap();
    assert!(ab.reordered > 0 && ba.duplicated > 0);
}

#[test]
fn a_run_that_never_converges_hits_the_step_budget() {
    let mut sim = Sim::new(1);
    let c = chain(&mut sim, 1, &fast()).unwrap();
    sim.add_app(
        c.h1,
        "forever",
        AppConfig::Ping(PingConfig {
            dst: Chain::v4(1, true),
            start: Instant::ZERO,
            interval: Duration::from_millis(10),
            count: None,
            size: 56,
            ttl: None,
        }),
    )
    .unwrap();
    sim.set_step_budget(50_000);
    let err = sim.run_until_idle().unwrap_err();
    match &err {
        SimError::StepBudget {
            budget,
            processed,
            queued,
            at,
        } => {
            assert_eq!((*budget, *processed), (50_000, 50_000));
            assert!(*queued > 0);
            assert!(*at > Instant::from_secs(1));
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("step budget of 50000 events exhausted"),
        "{msg}"
    );
    assert!(msg.contains("50000 events processed"), "{msg}");
    assert!(msg.contains("events queued"), "{msg}");
}

#[test]
fn a_finite_run_goes_idle() {
    let mut sim = Sim::new(1);
    let c = chain(&mut sim, 2, &fast()).unwrap();
    let app = sim
        .add_app(c.h1, "p", ping(Chain::v6(2, true), 0, 10, 10))
        .unwrap();
    sim.run_until_idle().unwrap();
    assert_eq!(sim.queued(), 0);
    assert_eq!(
        sim.app(app).unwrap().as_ping().unwrap().stats().received,
        10
    );
}

fn udp(dst: &str, start_ms: u64, stop_ms: u64, interval_us: u64) -> AppConfig {
    AppConfig::Udp(UdpFlowConfig {
        dst: dst.parse().unwrap(),
        start: Instant::from_millis(start_ms),
        stop: Some(Instant::from_millis(stop_ms)),
        interval: Duration::from_micros(interval_us),
        size: 500,
    })
}

#[test]
fn udp_flows_cross_a_chain_both_families_with_one_way_delay() {
    let mut sim = Sim::new(4);
    let c = chain(&mut sim, 3, &fast()).unwrap();
    // Resolve the path first; datagrams sent meanwhile could overflow a neighbor queue.
    sim.add_app(c.h1, "warm4", ping(Chain::v4(3, true), 0, 10, 1))
        .unwrap();
    sim.add_app(c.h2, "warm6", ping(Chain::v6(0, false), 0, 10, 1))
        .unwrap();
    let f4 = sim
        .add_app(c.h1, "u4", udp("10.0.4.2:9000", 100, 1100, 1000))
        .unwrap();
    let f6 = sim
        .add_app(c.h2, "u6", udp("[2001:db8:1::1]:7000", 100, 1100, 1000))
        .unwrap();
    sim.run_until(Instant::from_secs(2)).unwrap();
    for f in [f4, f6] {
        let s = sim.app(f).unwrap().as_udp().unwrap().stats().clone();
        assert_eq!(s.sent, 1000, "{s:?}");
        assert_eq!(s.delivered, 1000, "{s:?}");
        assert_eq!((s.lost(), s.duplicated, s.reordered), (0, 0, 0), "{s:?}");
        // Four hops of 1 ms plus serialization at 100 Mbit/s.
        assert!(s.delay.min > Duration::from_millis(4), "{s:?}");
        assert!(s.delay.mean() < Duration::from_millis(6), "{s:?}");
    }
    let text = Summary::of(&sim).render().to_string();
    assert!(
        text.contains("udp  h1 -> 10.0.4.2:9000: sent 1000 delivered 1000 lost 0"),
        "{text}"
    );
}

#[test]
fn udp_flow_counts_loss_duplicates_and_reordering() {
    let mut sim = Sim::new(12);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let link = sim
        .connect(
            h1,
            &["192.0.2.1/24".parse().unwrap()],
            h2,
            &["192.0.2.2/24".parse().unwrap()],
            LinkConfig {
                loss: Loss::Random(0.05),
                duplicate: 0.02,
                reorder: 0.02,
                reorder_delay: Duration::from_millis(2),
                ..fast()
            },
        )
        .unwrap();
    let f = sim
        .add_app(h1, "u", udp("192.0.2.2:5000", 0, 10_000, 1000))
        .unwrap();
    sim.run_until(Instant::from_secs(11)).unwrap();
    let s = sim.app(f).unwrap().as_udp().unwrap().stats().clone();
    assert_eq!(s.sent, 10_000);
    let d = sim.link_stats(link).unwrap()[0];
    // What the application counts agrees with what the link did.
    assert_eq!(s.lost(), d.lost, "{s:?} {d:?}");
    assert_eq!(s.duplicated, d.duplicated, "{s:?} {d:?}");
    assert!(s.reordered > 0 && s.reordered <= d.reordered, "{s:?} {d:?}");
    let n = d.transmitted as f64;
    let sigma = (n * 0.05 * 0.95).sqrt();
    assert!((d.lost as f64 - n * 0.05).abs() <= 5.0 * sigma, "{d:?}");
}

#[test]
fn udp_to_a_host_that_does_not_answer_reports_icmp_errors() {
    let mut sim = Sim::new(1);
    let c = chain(&mut sim, 1, &fast()).unwrap();
    // 10.0.2.99 is on r1's link to h2, but nobody has it: r1's ARP fails.
    let f = sim
        .add_app(c.h1, "u", udp("10.0.2.99:9000", 0, 10_000, 100_000))
        .unwrap();
    sim.run_until(Instant::from_secs(11)).unwrap();
    let s = sim.app(f).unwrap().as_udp().unwrap().stats().clone();
    assert_eq!(s.sent, 100);
    assert_eq!(s.delivered, 0);
    let r1 = c.routers[0];
    assert!(sim.stack(r1).unwrap().drops(DropReason::NeighborFailed) > 0);
    assert!(s.icmp_errors > 0, "{s:?}");
}

fn replies(sim: &Sim, node: sim::NodeId) -> Vec<u16> {
    sim.events(node)
        .iter()
        .filter_map(|e| match e {
            Event::EchoReply { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[test]
fn scripted_route_removal_gives_net_unreachable_and_route_add_recovers() {
    let mut sim = Sim::new(21);
    let c = chain(&mut sim, 2, &fast()).unwrap();
    sim.record_events(c.h1);
    let app = sim
        .add_app(c.h1, "p", ping(Chain::v4(2, true), 0, 1000, 30))
        .unwrap();
    let r1 = c.routers[0];
    let prefix: stack::IpPrefix = "10.0.3.0/24".parse().unwrap();
    sim.schedule(
        Instant::from_millis(9_500),
        Action::RouteRemove { node: r1, prefix },
        "remove",
    );
    sim.schedule(
        Instant::from_millis(19_500),
        Action::RouteAdd {
            node: r1,
            prefix,
            target: stack::RouteTarget::Via(Chain::v4(1, true)),
        },
        "add",
    );
    sim.run_until(Instant::from_secs(31)).unwrap();
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    // Seqs 11..=20 (sent at 10..19 s) meet no route at r1: ICMP net unreachable (code 0).
    assert_eq!(s.errors, 10, "{s:?}");
    assert!(s
        .error_log
        .iter()
        .all(|e| e.kind == IcmpErrorKind::Unreachable(0) && e.from == Chain::v4(0, true)));
    assert_eq!(s.received, 20, "{s:?}");
    let got = replies(&sim, c.h1);
    assert!(got.contains(&10) && got.contains(&21) && !got.contains(&15));
    assert_eq!(sim.stack(r1).unwrap().drops(DropReason::NoRoute), 10);
}

#[test]
fn a_stopped_node_drops_everything_and_recovers_when_started() {
    let mut sim = Sim::new(22);
    let c = chain(&mut sim, 3, &fast()).unwrap();
    sim.record_events(c.h1);
    let app = sim
        .add_app(c.h1, "p", ping(Chain::v6(3, true), 0, 1000, 30))
        .unwrap();
    let r2 = c.routers[1];
    sim.schedule(Instant::from_millis(9_500), Action::NodeStop(r2), "stop");
    sim.schedule(Instant::from_millis(19_500), Action::NodeStart(r2), "start");
    sim.run_until(Instant::from_secs(31)).unwrap();
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    assert!(sim.is_running(r2));
    assert!((18..=20).contains(&s.received), "{s:?}");
    let got = replies(&sim, c.h1);
    assert!(got.contains(&10), "{got:?}");
    assert!(!got.iter().any(|q| (11..=20).contains(q)), "{got:?}");
    assert!(got.contains(&25) && got.contains(&30), "{got:?}");
    assert!(sim.stack(r2).unwrap().drops(DropReason::PortDown) >= 10);
}

#[test]
fn a_failing_scripted_action_is_an_error_naming_it() {
    let mut sim = Sim::new(1);
    let c = chain(&mut sim, 1, &fast()).unwrap();
    sim.schedule(
        Instant::from_secs(1),
        Action::RouteRemove {
            node: c.routers[0],
            prefix: "192.0.2.0/24".parse().unwrap(),
        },
        "t.toml:9: event[0] (route-remove)",
    );
    let e = sim
        .run_until(Instant::from_secs(2))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("at 1.000000000s: t.toml:9: event[0] (route-remove): "),
        "{e}"
    );
}

#[test]
fn a_link_hook_drops_delays_and_rewrites_chosen_frames() {
    let mut sim = Sim::new(30);
    let h1 = sim.add_node("h1", NodeKind::Host).unwrap();
    let h2 = sim.add_node("h2", NodeKind::Host).unwrap();
    let link = sim
        .connect(
            h1,
            &["192.0.2.1/24".parse().unwrap()],
            h2,
            &["192.0.2.2/24".parse().unwrap()],
            fast(),
        )
        .unwrap();
    // Replies (h2 -> h1) with an odd sequence number are dropped; requests are held back
    // 50 ms; and replies to seq 2 get their TTL rewritten (which breaks the IPv4 header
    // checksum, so h1 drops it).
    sim.set_link_hook(
        link,
        Box::new(|_, dir, frame| {
            let d = frame.data_mut();
            let icmp = d.len() > 42 && d[12..14] == [0x08, 0x00] && d[23] == 1;
            if !icmp {
                return sim::HookVerdict::Pass;
            }
            let seq = u16::from_be_bytes([d[40], d[41]]);
            match (dir, d[34]) {
                (0, 8) => sim::HookVerdict::Delay(Duration::from_millis(50)),
                (1, 0) if seq % 2 == 1 => sim::HookVerdict::Drop,
                (1, 0) if seq == 2 => {
                    d[22] = 1;
                    sim::HookVerdict::Pass
                }
                _ => sim::HookVerdict::Pass,
            }
        }),
    );
    let app = sim
        .add_app(h1, "p", ping("192.0.2.2".parse().unwrap(), 0, 100, 10))
        .unwrap();
    sim.run_until(Instant::from_secs(3)).unwrap();
    let s = sim.app(app).unwrap().as_ping().unwrap().stats().clone();
    assert_eq!(s.received, 4, "{s:?}");
    assert!(s.rtt.min >= Duration::from_millis(52), "{s:?}");
    assert_eq!(sim.link_stats(link).unwrap()[1].hook_drops, 5);
    assert_eq!(sim.stack(h1).unwrap().drops(DropReason::Ipv4BadChecksum), 1);
}

#[test]
fn a_dumbbell_bottleneck_drops_at_its_queue_and_carries_its_capacity() {
    let mut sim = Sim::new(6);
    let access = LinkConfig {
        bandwidth_bps: 5_000_000,
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let core = LinkConfig {
        bandwidth_bps: 2_000_000,
        delay: Duration::from_millis(10),
        queue_limit: 20,
        ..LinkConfig::default()
    };
    let d = sim::scenarios::dumbbell(&mut sim, 4, 4, &access, &core).unwrap();
    let mut flows = Vec::new();
    for (i, &h) in d.left.iter().enumerate() {
        // 1 Mbit/s of payload each: 4 Mbit/s offered to a 2 Mbit/s bottleneck.
        let dst = std::net::SocketAddr::new(sim::scenarios::Dumbbell::right_addr(i), 5001);
        flows.push(
            sim.add_app(
                h,
                "u",
                AppConfig::Udp(UdpFlowConfig {
                    dst,
                    start: Instant::from_millis(i as u64),
                    stop: Some(Instant::from_secs(10)),
                    interval: UdpFlowConfig::interval_for_rate(1_000_000, 1000),
                    size: 1000,
                }),
            )
            .unwrap(),
        );
    }
    sim.run_until(Instant::from_secs(11)).unwrap();
    let delivered: u64 = flows
        .iter()
        .map(|&f| sim.app(f).unwrap().as_udp().unwrap().stats().delivered)
        .sum();
    let sent: u64 = flows
        .iter()
        .map(|&f| sim.app(f).unwrap().as_udp().unwrap().stats().sent)
        .sum();
    assert_eq!(sent, 4 * 1250);
    // 2 Mbit/s for about 10 s is about 2,400 frames of 1,042 bytes on the wire.
    assert!((2_300..=2_450).contains(&delivered), "{delivered}");
    let [ab, _] = sim.link_stats(d.bottleneck).unwrap();
    assert!(ab.queue_drops > 2_000, "{ab:?}");
    assert_eq!(ab.max_queue, 20);
    assert_eq!(ab.transmitted, ab.delivered);
}

fn tcp(dst: &str, start_ms: u64, bytes: u64) -> AppConfig {
    AppConfig::Tcp(TcpFlowConfig {
        dst: dst.parse().unwrap(),
        start: Instant::from_millis(start_ms),
        bytes,
    })
}

#[test]
fn tcp_flows_cross_a_chain_intact_both_families_and_close() {
    let mut sim = Sim::new(11);
    let c = chain(&mut sim, 3, &fast()).unwrap();
    let f4 = sim
        .add_app(c.h1, "t4", tcp("10.0.4.2:5001", 0, 1_000_000))
        .unwrap();
    let f6 = sim
        .add_app(c.h2, "t6", tcp("[2001:db8:1::1]:5002", 10, 300_000))
        .unwrap();
    sim.run_until_idle().unwrap();
    for (f, bytes) in [(f4, 1_000_000), (f6, 300_000)] {
        let t = sim.app(f).unwrap().as_tcp().unwrap();
        let s = t.stats();
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!(
            (s.sent, s.delivered, s.corrupted),
            (bytes, bytes, 0),
            "{s:?}"
        );
        assert!(t.is_complete(), "{s:?}");
        let (setup, done) = (t.setup_time().unwrap(), t.completion_time().unwrap());
        // One round trip of four 1 ms hops at least, and the transfer after it.
        assert!(setup >= Duration::from_millis(8), "{setup:?}");
        assert!(done > setup, "{done:?}");
        assert!(t.goodput_bps().unwrap() > 0);
    }
    // Both ends closed, TIME-WAIT included: nothing is left but the listeners.
    assert_eq!(sim.stack(c.h1).unwrap().tcp_socket_count(), 1);
    assert_eq!(sim.stack(c.h2).unwrap().tcp_socket_count(), 1);
    let text = Summary::of(&sim).render().to_string();
    assert!(
        text.contains("tcp  h1 -> 10.0.4.2:5001: bytes 1000000 sent 1000000 delivered 1000000 corrupted 0 complete"),
        "{text}"
    );
}

/// h1 — r1 — h2 on links that lose, reorder, duplicate and corrupt frames, with a
/// 1 MB TCP flow each way.
fn lossy_tcp(seed: u64) -> (Sim, [sim::AppId; 2]) {
    let mut sim = Sim::new(seed);
    let bad = LinkConfig {
        bandwidth_bps: 20_000_000,
        delay: Duration::from_millis(2),
        loss: Loss::Random(0.02),
        reorder: 0.02,
        reorder_delay: Duration::from_millis(3),
        duplicate: 0.01,
        corrupt: 0.005,
        ..LinkConfig::default()
    };
    let c = chain(&mut sim, 1, &bad).unwrap();
    let a = sim
        .add_app(c.h1, "up", tcp("10.0.2.2:5001", 0, 1_000_000))
        .unwrap();
    let b = sim
        .add_app(c.h2, "down", tcp("[2001:db8:1::1]:5001", 0, 1_000_000))
        .unwrap();
    sim.run_until_idle().unwrap();
    (sim, [a, b])
}

#[test]
fn tcp_recovers_from_loss_reordering_duplication_and_corruption() {
    let (sim, flows) = lossy_tcp(5);
    for f in flows {
        let t = sim.app(f).unwrap().as_tcp().unwrap();
        let s = t.stats();
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!((s.delivered, s.corrupted), (1_000_000, 0), "{s:?}");
        assert!(t.is_complete(), "{s:?}");
    }
    // The impairments did happen.
    let [ab, ba] = sim.link_stats(sim::LinkId(0)).unwrap();
    assert!(ab.lost + ba.lost > 0 && ab.reordered + ba.reordered > 0);
}

#[test]
fn tcp_runs_are_deterministic() {
    let s1 = Summary::of(&lossy_tcp(9).0).render().to_string();
    let s2 = Summary::of(&lossy_tcp(9).0).render().to_string();
    assert_eq!(s1, s2);
    assert!(s1.contains(" complete "), "{s1}");
    let s3 = Summary::of(&lossy_tcp(10).0).render().to_string();
    assert_ne!(s1, s3);
}

#[test]
fn tcp_to_an_address_nobody_owns_fails_and_says_why() {
    let mut sim = Sim::new(3);
    let c = chain(&mut sim, 1, &fast()).unwrap();
    // Nobody owns 10.0.9.9 (h1's default route leads to r1, which has no route): no
    // listener, and the handshake never completes.
    let lost = sim
        .add_app(c.h1, "nowhere", tcp("10.0.9.9:80", 0, 1000))
        .unwrap();
    sim.run_until_idle().unwrap();
    let t = sim.app(lost).unwrap().as_tcp().unwrap();
    assert!(!t.is_complete());
    assert_eq!(t.stats().connected_at, None);
    assert!(t.stats().error.is_some(), "{:?}", t.stats());
    let text = Summary::of(&sim).render().to_string();
    assert!(text.contains("incomplete"), "{text}");
    assert!(text.contains("error: "), "{text}");
}

#[test]
fn tcp_flows_share_a_bottleneck_and_a_listener_each_verified_as_its_own() {
    let mut sim = Sim::new(12);
    let access = LinkConfig {
        bandwidth_bps: 10_000_000,
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    };
    let core = LinkConfig {
        bandwidth_bps: 5_000_000,
        delay: Duration::from_millis(5),
        queue_limit: 30,
        ..LinkConfig::default()
    };
    let d = sim::scenarios::dumbbell(&mut sim, 3, 1, &access, &core).unwrap();
    let dst = format!("{}:5001", sim::scenarios::Dumbbell::right_addr(0));
    // Four flows to one listener, two of them from the same host.
    let mut flows = Vec::new();
    for (i, &h) in d.left.iter().chain(&d.left[..1]).enumerate() {
        let f = sim
            .add_app(h, &format!("t{i}"), tcp(&dst, i as u64, 200_000 + i as u64))
            .unwrap();
        flows.push((f, 200_000 + i as u64));
    }
    sim.run_until_idle().unwrap();
    for (f, bytes) in flows {
        let t = sim.app(f).unwrap().as_tcp().unwrap();
        let s = t.stats();
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!((s.delivered, s.corrupted), (bytes, 0), "{s:?}");
        assert!(t.is_complete(), "{s:?}");
    }
    // The bottleneck was shared: frames waited in its queue.
    let [ab, _] = sim.link_stats(d.bottleneck).unwrap();
    assert!(ab.max_queue > 1, "{ab:?}");
}
