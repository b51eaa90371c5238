//! `dpbench sim`: the laboratory's speed on one core.
//!
//! 1. The dumbbell of the ns-3 DCE comparison: 100 hosts left and 100 right of two
//!    routers, 5 Mbit/s access links, every left host sending a constant-rate UDP flow
//!    to the right host of the same index for 64 simulated seconds. The default rate
//!    (1 Mbit/s of 1000-byte datagrams per host, 20% of each access link) offers about
//!    104 Mbit/s on the wire to the 100 Mbit/s bottleneck, so its drop-tail queue works.
//! 2. A 1,000-node topology (a dumbbell of 499 + 499 hosts, its bottleneck scaled to
//!    the hosts) with the same flows for a shorter time, reporting simulated events per
//!    second.
//!
//! 3. With `--tcp-hosts N`, a TCP dumbbell: N left hosts each transfer `--tcp-bytes`
//!    bytes to the right host of the same index over the same links, every byte
//!    verified; it reports the flows completed, the aggregate goodput and events per
//!    second.
//!
//! Each prints a few lines and adds its figures to the JSON summary. Figures, not tests:
//! nothing here asserts a time.

use std::time::Instant as WallInstant;

use serde_json::{Map, Value};
use sim::scenarios::{dumbbell, Dumbbell};
use sim::{AppConfig, LinkConfig, Sim, SimError, Summary, TcpFlowConfig, UdpFlowConfig};
use stack::{Duration, Instant};

/// Options of `dpbench sim`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// The seed of both runs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Hosts on each side of the dumbbell.
    #[arg(long, default_value_t = 100)]
    pub hosts: usize,
    /// Simulated seconds of traffic in the dumbbell.
    #[arg(long, default_value_t = 64)]
    pub seconds: u64,
    /// Payload bit rate of each flow, in kbit/s.
    #[arg(long, default_value_t = 1000)]
    pub rate_kbit: u64,
    /// Payload bytes per datagram.
    #[arg(long, default_value_t = 1000)]
    pub size: usize,
    /// Bottleneck bandwidth, in Mbit/s.
    #[arg(long, default_value_t = 100)]
    pub bottleneck_mbit: u64,
    /// Simulated seconds of the 1,000-node run.
    #[arg(long, default_value_t = 10)]
    pub nodes_1000_seconds: u64,
    /// Runs of the dumbbell (the median by CPU time is reported).
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Skip the 1,000-node run.
    #[arg(long)]
    pub skip_nodes_1000: bool,
    /// Print the dumbbell's full summary.
    #[arg(long)]
    pub verbose: bool,
    /// Hosts on each side of the TCP dumbbell (0: no TCP run).
    #[arg(long, default_value_t = 0)]
    pub tcp_hosts: usize,
    /// Bytes each TCP flow transfers.
    #[arg(long, default_value_t = 1_000_000)]
    pub tcp_bytes: u64,
}

/// CPU seconds this thread has used (user + system), from `/proc/thread-self/stat`
/// (clock ticks of 10 ms); `None` where it cannot be read. On a shared machine this is
/// the figure to compare: wall time also counts the time other processes held the core.
pub fn thread_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The figures of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunFigures {
    /// Nodes in the topology.
    pub nodes: usize,
    /// Wall seconds of the run (building excluded).
    pub wall_s: f64,
    /// CPU seconds of the run (building excluded), when known.
    pub cpu_s: Option<f64>,
    /// Wall seconds to build the topology.
    pub build_s: f64,
    /// Simulated seconds.
    pub sim_s: f64,
    /// Events processed.
    pub events: u64,
    /// Datagrams sent, delivered.
    pub sent: u64,
    /// Datagrams delivered.
    pub delivered: u64,
}

/// Builds a dumbbell of `side` + `side` hosts with one flow per left host, runs it for
/// `seconds` (flows stop then; the run goes on one more second for the last datagrams).
pub fn run_dumbbell(
    args: &SimArgs,
    side: usize,
    seconds: u64,
) -> Result<(RunFigures, Sim), SimError> {
    let built = WallInstant::now();
    let mut lab = Sim::new(args.seed);
    // Small pools: a host has at most its access queue and a few frames in flight.
    lab.set_pool_frames(256);
    let access = LinkConfig {
        bandwidth_bps: 5_000_000,
        delay: Duration::from_millis(1),
        queue_limit: 100,
        ..LinkConfig::default()
    };
    // The bottleneck scales with the hosts, so that both runs load it alike.
    let core = LinkConfig {
        bandwidth_bps: args.bottleneck_mbit * 1_000_000 * side as u64 / args.hosts.max(1) as u64,
        delay: Duration::from_millis(10),
        queue_limit: 1000,
        ..LinkConfig::default()
    };
    let d: Dumbbell = dumbbell(&mut lab, side, side, &access, &core)?;
    let interval = UdpFlowConfig::interval_for_rate(args.rate_kbit * 1000, args.size);
    for (i, &h) in d.left.iter().enumerate() {
        // Starts spread over the first interval, so that flows do not beat in phase.
        let offset = interval.as_nanos() * i as u64 / side.max(1) as u64;
        lab.add_app(
            h,
            &format!("udp{i}"),
            AppConfig::Udp(UdpFlowConfig {
                dst: std::net::SocketAddr::new(Dumbbell::right_addr(i), 5001),
                start: Instant::from_nanos(offset),
                stop: Some(Instant::from_secs(seconds)),
                interval,
                size: args.size,
            }),
        )?;
    }
    let build_s = built.elapsed().as_secs_f64();
    let cpu0 = thread_cpu_s();
    let started = WallInstant::now();
    lab.run_until(Instant::from_secs(seconds + 1))?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_s().zip(cpu0).map(|(b, a)| b - a);
    let (mut sent, mut delivered) = (0, 0);
    for a in lab.apps() {
        if let Some(u) = a.as_udp() {
            sent += u.stats().sent;
            delivered += u.stats().delivered;
        }
    }
    let figures = RunFigures {
        nodes: lab.node_ids().count(),
        wall_s,
        cpu_s,
        build_s,
        sim_s: lab.now().as_nanos() as f64 / 1e9,
        events: lab.events_processed(),
        sent,
        delivered,
    };
    Ok((figures, lab))
}

/// The TCP dumbbell: `args.tcp_hosts` flows of `args.tcp_bytes` across the dumbbell's
/// links (its bottleneck scaled to the hosts), run until idle; adds its figures to `out`.
fn run_tcp_dumbbell(args: &SimArgs, out: &mut Map<String, Value>) -> Result<(), SimError> {
    let side = args.tcp_hosts;
    let mut lab = Sim::new(args.seed);
    lab.set_pool_frames(512);
    let access = LinkConfig {
        bandwidth_bps: 5_000_000,
        delay: Duration::from_millis(1),
        queue_limit: 100,
        ..LinkConfig::default()
    };
    let core = LinkConfig {
        bandwidth_bps: args.bottleneck_mbit * 1_000_000 * side as u64 / args.hosts.max(1) as u64,
        delay: Duration::from_millis(10),
        queue_limit: 1000,
        ..LinkConfig::default()
    };
    let d: Dumbbell = dumbbell(&mut lab, side, side, &access, &core)?;
    for (i, &h) in d.left.iter().enumerate() {
        lab.add_app(
            h,
            &format!("tcp{i}"),
            AppConfig::Tcp(TcpFlowConfig {
                dst: std::net::SocketAddr::new(Dumbbell::right_addr(i), 5001),
                start: Instant::from_millis(i as u64),
                bytes: args.tcp_bytes,
            }),
        )?;
    }
    let cpu0 = thread_cpu_s();
    let started = WallInstant::now();
    lab.run_until_idle()?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = thread_cpu_s().zip(cpu0).map(|(b, a)| b - a);
    let (mut complete, mut delivered, mut last) = (0u64, 0u64, Instant::ZERO);
    for a in lab.apps() {
        if let Some(t) = a.as_tcp() {
            delivered += t.stats().delivered;
            if let Some(at) = t.stats().completed_at {
                complete += 1;
                last = last.max(at);
            }
        }
    }
    let last_s = last.as_nanos() as f64 / 1e9;
    let goodput = delivered as f64 * 8.0 / last_s.max(1e-9);
    let events = lab.events_processed();
    println!(
        "  {:<10} {:>5} nodes  {complete}/{side} flows of {} B complete, the last at {last_s:.3} simulated s  {:.2} Mbit/s goodput in all  {wall_s:.3} wall s ({} CPU s)  {events} events  {:.2} M events/s",
        "tcp",
        lab.node_ids().count(),
        args.tcp_bytes,
        goodput / 1e6,
        cpu_s.map_or("?".to_string(), |c| format!("{c:.2}")),
        events as f64 / wall_s / 1e6,
    );
    if args.verbose {
        print!("{}", Summary::of(&lab).render());
    }
    out.insert("tcp_dumbbell_flows".into(), Value::from(side));
    out.insert("tcp_dumbbell_flows_complete".into(), Value::from(complete));
    out.insert(
        "tcp_dumbbell_bytes_delivered".into(),
        Value::from(delivered),
    );
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    out.insert(
        "tcp_dumbbell_last_completion_s".into(),
        Value::from(round(last_s)),
    );
    out.insert(
        "tcp_dumbbell_goodput_bps".into(),
        Value::from(goodput.round()),
    );
    out.insert("tcp_dumbbell_wall_s".into(), Value::from(round(wall_s)));
    out.insert("tcp_dumbbell_events".into(), Value::from(events));
    Ok(())
}

fn report(label: &str, f: &RunFigures) {
    println!(
        "  {label:<10} {:>5} nodes  {:>6.1} simulated s  {:>6.3} wall s ({} CPU s; built in {:.1} s)  {:>9} events  {:>5.2} M events/s  {:>6.1}x real time  datagrams sent {} delivered {} ({:.2}% lost)",
        f.nodes,
        f.sim_s,
        f.wall_s,
        f.cpu_s.map_or("?".to_string(), |c| format!("{c:.2}")),
        f.build_s,
        f.events,
        f.events as f64 / f.wall_s / 1e6,
        f.sim_s / f.wall_s,
        f.sent,
        f.delivered,
        100.0 * (f.sent - f.delivered.min(f.sent)) as f64 / f.sent.max(1) as f64
    );
}

/// Runs both measurements; returns the JSON figures.
pub fn run(args: &SimArgs) -> Result<Map<String, Value>, SimError> {
    let mut out = Map::new();
    println!(
        "sim: dumbbell {} + {} hosts, 2 routers, 5 Mbit/s access, {} Mbit/s bottleneck, UDP {} kbit/s x {} B per left host, {} simulated s, seed {} (one core)",
        args.hosts, args.hosts, args.bottleneck_mbit, args.rate_kbit, args.size, args.seconds, args.seed
    );
    // Several runs (same seed, same events): the median by CPU time is reported, with
    // the range of CPU and wall seconds.
    let mut runs = Vec::new();
    for _ in 0..args.runs.max(1) {
        let (f, lab) = run_dumbbell(args, args.hosts, args.seconds)?;
        report("dumbbell", &f);
        if args.verbose && runs.is_empty() {
            print!("{}", Summary::of(&lab).render());
        }
        drop(lab);
        runs.push(f);
    }
    let round = |x: f64, d: f64| (x * d).round() / d;
    let walls: Vec<f64> = runs.iter().map(|r| r.wall_s).collect();
    let cpus: Vec<f64> = runs.iter().filter_map(|r| r.cpu_s).collect();
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        Value::from(vec![round(lo, 100.0), round(hi, 100.0)])
    };
    out.insert("dumbbell_runs".into(), Value::from(runs.len()));
    out.insert("dumbbell_wall_s_range".into(), range(&walls));
    if !cpus.is_empty() {
        out.insert("dumbbell_cpu_s_range".into(), range(&cpus));
    }
    runs.sort_by(|a, b| {
        a.cpu_s
            .unwrap_or(a.wall_s)
            .total_cmp(&b.cpu_s.unwrap_or(b.wall_s))
    });
    let f = runs[runs.len() / 2];
    out.insert(
        "dumbbell_wall_s".into(),
        Value::from(round(f.wall_s, 1000.0)),
    );
    out.insert("dumbbell_sim_s".into(), Value::from(round(f.sim_s, 1000.0)));
    if let Some(c) = f.cpu_s {
        out.insert("dumbbell_cpu_s".into(), Value::from(round(c, 100.0)));
        out.insert(
            "dumbbell_events_per_cpu_s".into(),
            Value::from((f.events as f64 / c).round()),
        );
    }
    out.insert(
        "dumbbell_build_s".into(),
        Value::from(round(f.build_s, 100.0)),
    );
    out.insert("dumbbell_datagrams_sent".into(), Value::from(f.sent));
    out.insert(
        "dumbbell_datagrams_delivered".into(),
        Value::from(f.delivered),
    );
    out.insert("dumbbell_events".into(), Value::from(f.events));
    out.insert(
        "dumbbell_events_per_s".into(),
        Value::from((f.events as f64 / f.wall_s).round()),
    );
    out.insert(
        "dumbbell_speedup_vs_ns3_dce_27s".into(),
        Value::from(round(27.0 / f.wall_s, 10.0)),
    );
    if args.tcp_hosts > 0 {
        run_tcp_dumbbell(args, &mut out)?;
    }

    if args.skip_nodes_1000 {
        return Ok(out);
    }
    let side = 499;
    let (g, lab) = run_dumbbell(args, side, args.nodes_1000_seconds)?;
    report("1000-node", &g);
    drop(lab);
    out.insert(
        "nodes_1000_wall_s".into(),
        Value::from(round(g.wall_s, 1000.0)),
    );
    out.insert(
        "nodes_1000_sim_s".into(),
        Value::from(round(g.sim_s, 1000.0)),
    );
    out.insert("nodes_1000_events".into(), Value::from(g.events));
    if let Some(c) = g.cpu_s {
        out.insert("nodes_1000_cpu_s".into(), Value::from(round(c, 100.0)));
        out.insert(
            "events_per_cpu_s".into(),
            Value::from((g.events as f64 / c).round()),
        );
    }
    out.insert(
        "nodes_1000_build_s".into(),
        Value::from(round(g.build_s, 100.0)),
    );
    out.insert(
        "events_per_s".into(),
        Value::from((g.events as f64 / g.wall_s).round()),
    );
    Ok(out)
}
