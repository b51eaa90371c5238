//! `dpbench router`: our router (`dataplane run` on AF_XDP) beside Linux kernel
//! forwarding and an XDP-native reference forwarder, on one veth topology
//! ([`topo`]), with one generator and one sink ([`bpf`]).
//!
//! The generator is an XDP program run by `BPF_PROG_TEST_RUN` in live-frames mode on the
//! generator's core: it writes a sequence number and `bpf_ktime_get_ns()` into every
//! frame, varies the UDP ports per frame, and redirects into `g0`; paced in the kernel
//! for fixed rates. The sink is an XDP program on `s0` that counts frames and, for
//! latency runs, pushes (sequence, sent, received) records to a ring buffer, read on the
//! generator's core into a loss/reorder/duplicate account ([`stats::SeqTracker`]) and an
//! HDR histogram. Each subject is pinned to the same cores (`--subject-cores`).
//!
//! Each measurement: set the subject up, start the generator, warm up, count at the sink
//! over `--duration` seconds, stop, take the subject down. Runs of the subjects are
//! interleaved; the medians and ranges over `--runs` are reported, as a Markdown table,
//! one JSON file under `bench/results/`, and the same JSON as the last line of output.
// clock_gettime(2) for CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
#![allow(unsafe_code)]

pub mod afpgen;
pub mod bpf;
pub mod plot;
pub mod report;
pub mod stats;
pub mod topo;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Map, Value};

use crate::drivers::{pin, ratio, round3, INTERRUPTED};
use bpf::{BenchBpf, GenConfig, Record};
use stats::{Latency, SeqTracker, Spread};
use topo::{Running, Subject, SubjectSetup, Topology};

/// Options of `dpbench router`.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterArgs {
    /// Frame size on the wire (with the FCS) of the max-rate and latency scenarios.
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Seconds each measurement counts, after the warm-up.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of traffic before counting starts.
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// Runs of each measurement (medians and ranges are reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The subject's cores, comma separated (dataplane workers, Linux RPS, where the
    /// reference's egress work lands).
    #[arg(long, default_value = "1")]
    pub subject_cores: String,
    /// The generator's (and the record reader's) core.
    #[arg(long, default_value_t = 0)]
    pub gen_core: usize,
    /// Subjects to measure, comma separated: dataplane, linux, xdp_ref.
    #[arg(long, default_value = "dataplane,linux,xdp_ref")]
    pub subjects: String,
    /// Also measure the maximum rate at every size of `--sizes`.
    #[arg(long)]
    pub sweep: bool,
    /// Sizes of the sweep.
    #[arg(long, default_value = "64,128,256,512,1024,1500")]
    pub sizes: String,
    /// Loads of the latency runs in percent of Linux's maximum rate, comma separated
    /// (empty: none).
    #[arg(long, default_value = "50")]
    pub latency: String,
    /// Route table sizes for the dataplane, comma separated (e.g. 1,1000,100000;
    /// `full` is refused as too slow to load from TOML); destinations cycle over them.
    #[arg(long)]
    pub routes: Option<String>,
    /// Also measure worker scaling: the dataplane on `--subject-cores` and on
    /// `--scaling-cores`.
    #[arg(long)]
    pub scaling: bool,
    /// The cores of the scaling run with more workers.
    #[arg(long, default_value = "0,1")]
    pub scaling_cores: String,
    /// Every scenario: sweep, latency at 10,50,90 %, routes 1,1000,100000, scaling.
    #[arg(long)]
    pub all: bool,
    /// IPv6 traffic (2001:db8:1::2 to 2001:db8:2::2) instead of IPv4; frames of at
    /// least 82 bytes (`--size 128`), and no `--routes` (its routes are IPv4).
    #[arg(long)]
    pub ipv6: bool,
    /// The generator: `live` (an XDP program in live-frames mode; falls back to
    /// `afpacket` when the kernel refuses it) or `afpacket` (AF_PACKET `sendmmsg`, about
    /// 0.7 Mpps here: maximum rates are then the generator's).
    #[arg(long, default_value = "live")]
    pub generator: String,
    /// Leave the dataplane, the generator and the record reader at normal priority.
    /// By default they run at nice -20, their autogroups (sessions) too: on a machine
    /// shared with other work, normal-priority threads are time-sliced with it (the
    /// paced generator falls short, the polling worker waits for its core most of the
    /// time), while Linux's forwarding (softirq) and the XDP reference are not.
    /// (Not SCHED_FIFO: RT throttling would pause a polling thread 50 ms every second.)
    #[arg(long)]
    pub no_boost: bool,
    /// Where the JSON file goes (default: bench/results).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// The `dataplane` binary (default: beside dpbench, i.e. target/release/dataplane).
    #[arg(long)]
    pub dataplane: Option<PathBuf>,
}

/// The validated options.
#[derive(Debug, Clone)]
struct Plan {
    size: usize,
    duration: f64,
    warmup: f64,
    runs: usize,
    subject_cores: Vec<usize>,
    gen_core: usize,
    subjects: Vec<Subject>,
    sizes: Vec<usize>,
    latency: Vec<f64>,
    routes: Vec<u32>,
    /// Route table sizes not measured, with the reason.
    routes_skipped: Vec<(String, String)>,
    scaling: Option<Vec<usize>>,
    boost: bool,
    generator: GenKind,
    ipv6: bool,
}

/// Which generator runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenKind {
    /// The XDP program in live-frames mode.
    Live,
    /// AF_PACKET `sendmmsg` ([`afpgen`]).
    AfPacket,
}

fn parse_cores(option: &str, text: &str, ncores: usize) -> Result<Vec<usize>, String> {
    let v = stats::parse_list(option, text, |s| {
        let c: usize = s.parse().map_err(|e| format!("not a core number ({e})"))?;
        if c >= ncores {
            return Err(format!(
                "this machine has cores 0..{}",
                ncores.saturating_sub(1)
            ));
        }
        Ok(c)
    })?;
    let mut d = v.clone();
    d.sort_unstable();
    d.dedup();
    if d.len() != v.len() {
        return Err(format!("{option}: {text:?} names a core twice"));
    }
    Ok(v)
}

fn plan(a: &RouterArgs, ncores: usize) -> Result<Plan, String> {
    if !(a.duration.is_finite() && a.duration > 0.0 && a.duration <= 600.0) {
        return Err(format!(
            "--duration {}: give seconds in (0, 600]",
            a.duration
        ));
    }
    if !(a.warmup.is_finite() && (0.0..=60.0).contains(&a.warmup)) {
        return Err(format!("--warmup {}: give seconds in [0, 60]", a.warmup));
    }
    if !(1..=100).contains(&a.runs) {
        return Err(format!("--runs {}: give 1 to 100", a.runs));
    }
    let size_ok = |s: &str| -> Result<usize, String> {
        let n: usize = s.parse().map_err(|e| format!("not a size ({e})"))?;
        if !(stats::MIN_SIZE..=stats::MAX_SIZE).contains(&n) {
            return Err(format!(
                "sizes are bytes on the wire with the FCS, {}..={}",
                stats::MIN_SIZE,
                stats::MAX_SIZE
            ));
        }
        Ok(n)
    };
    let size_ok = |s: &str| -> Result<usize, String> {
        let n = size_ok(s)?;
        if a.ipv6 && n < stats::MIN_SIZE6 {
            return Err(format!(
                "with --ipv6 frames need at least {} bytes on the wire",
                stats::MIN_SIZE6
            ));
        }
        Ok(n)
    };
    let size = size_ok(&a.size.to_string()).map_err(|e| format!("--size {}: {e}", a.size))?;
    let subject_cores = parse_cores("--subject-cores", &a.subject_cores, ncores)?;
    if a.gen_core >= ncores {
        return Err(format!(
            "--gen-core {}: this machine has cores 0..{}",
            a.gen_core,
            ncores.saturating_sub(1)
        ));
    }
    if subject_cores.contains(&a.gen_core) {
        return Err(format!(
            "--gen-core {} is also a subject core ({}): the generator must not share the subject's core",
            a.gen_core, a.subject_cores
        ));
    }
    let subjects = stats::parse_list("--subjects", &a.subjects, |s| match s {
        "dataplane" => Ok(Subject::Dataplane),
        "linux" => Ok(Subject::Linux),
        "xdp_ref" => Ok(Subject::XdpRef),
        _ => Err("subjects are dataplane, linux, xdp_ref".into()),
    })?;
    let sizes = if a.sweep || a.all {
        stats::parse_list("--sizes", &a.sizes, size_ok)?
    } else {
        Vec::new()
    };
    let lat_text = if a.all && a.latency == "50" {
        "10,50,90"
    } else {
        a.latency.as_str()
    };
    let latency = if lat_text.trim().is_empty() {
        Vec::new()
    } else {
        stats::parse_list("--latency", lat_text, |s| {
            let p: f64 = s.parse().map_err(|e| format!("not a percentage ({e})"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err("a load is a percentage in (0, 100]".into());
            }
            Ok(p)
        })?
    };
    if !latency.is_empty() && !subjects.contains(&Subject::Linux) {
        return Err("--latency: loads are percentages of Linux's maximum rate, so --subjects must include linux (or give --latency \"\")".into());
    }
    let routes_text = match (&a.routes, a.all) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => Some("1,1000,10000".to_string()),
        (None, false) => None,
    };
    let mut routes = Vec::new();
    let mut routes_skipped = Vec::new();
    if let Some(t) = routes_text {
        for r in stats::parse_list("--routes", &t, |s| {
            if s == "full" {
                return Ok(None);
            }
            let n: u32 = s.parse().map_err(|e| format!("not a route count ({e})"))?;
            if !(1..=1_000_000).contains(&n) {
                return Err("give 1 to 1000000 routes".into());
            }
            Ok(Some(n))
        })? {
            match r {
                Some(n) => routes.push(n),
                None => routes_skipped.push(("full".to_string(), FULL_SKIPPED.to_string())),
            }
        }
        if a.all && a.routes.is_none() {
            routes_skipped.push(("100000".to_string(), SLOW_LOAD.to_string()));
            routes_skipped.push(("full".to_string(), FULL_SKIPPED.to_string()));
        }
    }
    if a.ipv6 && !routes.is_empty() {
        return Err(
            "--routes: the route table scenario uses IPv4 routes; leave out --ipv6 (or --routes)"
                .into(),
        );
    }
    let scaling = if a.scaling || a.all {
        Some(parse_cores("--scaling-cores", &a.scaling_cores, ncores)?)
    } else {
        None
    };
    Ok(Plan {
        size,
        duration: a.duration,
        warmup: a.warmup,
        runs: a.runs,
        subject_cores,
        gen_core: a.gen_core,
        subjects,
        sizes,
        latency,
        routes,
        routes_skipped,
        scaling,
        boost: !a.no_boost,
        ipv6: a.ipv6,
        generator: match a.generator.as_str() {
            "live" => GenKind::Live,
            "afpacket" => GenKind::AfPacket,
            g => return Err(format!("--generator {g:?}: give live or afpacket")),
        },
    })
}

/// Why `--all` leaves out 100000 routes.
const SLOW_LOAD: &str = "dataplane run takes 1.5-3 minutes to load 100000 [[routes]] from TOML (Config::load finds each route's line by counting newlines from the start of the file: quadratic), so --all stops at 10000; --routes 100000 measures it anyway";

/// Why the full table is not measured.
const FULL_SKIPPED: &str = "a full table (950k routes) as [[routes]] in TOML is far too slow to load (see 100000); the lookup cost on the full table is in `dpbench fastpath`";

/// CLOCK_MONOTONIC in nanoseconds (the clock of `bpf_ktime_get_ns`).
fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes into a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// What one measurement found.
#[derive(Debug, Clone, Default)]
struct Sample {
    /// Frames per second the sink counted.
    rx_pps: f64,
    /// Frames per second the generator sent.
    gen_pps: f64,
    /// Latency, loss and order (recording runs only).
    latency: Option<LatencySample>,
    /// Where the time of the first subject core went, in percent: user, system, irq
    /// (hard + soft), idle, steal.
    subject_cpu: Option<[f64; 5]>,
    /// The same for the generator's core.
    gen_cpu: Option<[f64; 5]>,
    /// Shares of the dataplane's threads (percent of a core, largest first): on a CPU,
    /// and runnable but waiting for one.
    thread_cpu: Option<(Vec<f64>, Vec<f64>)>,
}

/// Sets the calling thread's nice value to -20.
fn boost_thread() -> Result<(), String> {
    // SAFETY: gettid and setpriority have no memory preconditions; on Linux
    // PRIO_PROCESS with a thread id sets that thread's nice value.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, -20)
    };
    if rc != 0 {
        return Err(format!(
            "raising priority (skip with --no-boost): setpriority(-20): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// The 1-minute load average.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn proc_stat() -> String {
    std::fs::read_to_string("/proc/stat").unwrap_or_default()
}

#[derive(Debug, Clone, Default)]
struct LatencySample {
    lat: Latency,
    sent: u64,
    received: u64,
    lost: u64,
    reordered: u64,
    duplicates: u64,
    lost_records: u64,
}

/// Builds the loss/order account over every record and the histogram over the records
/// sent inside `[from_ns, to_ns]`.
fn account(records: &[Record], sent: u64, from_ns: u64, to_ns: u64) -> LatencySample {
    let mut t = SeqTracker::default();
    let mut h = stats::histogram();
    for r in records {
        t.record(r.seq);
        if (from_ns..=to_ns).contains(&r.sent_ns) {
            let _ = h.record(r.recv_ns.saturating_sub(r.sent_ns).max(1));
        }
    }
    LatencySample {
        lat: stats::summarise(&h),
        sent,
        received: t.received,
        lost: t.lost(sent),
        reordered: t.reordered,
        duplicates: t.duplicates,
        lost_records: 0,
    }
}

/// One traffic pattern.
struct Traffic {
    frame: Vec<u8>,
    /// Frames per second; `None`: as fast as possible.
    pps: Option<f64>,
    /// Destinations to cycle through (routes scenario): count, first, step.
    dsts: Option<(u32, u32, u32)>,
    record: bool,
}

struct Bench<'a> {
    plan: &'a Plan,
    /// The generator in use (the plan's, or `afpacket` after a failed probe).
    gen: GenKind,
    bpf: &'a BenchBpf,
    topo: &'a Topology,
    bin: PathBuf,
    pb: ProgressBar,
    last_report: String,
}

impl Bench<'_> {
    /// Prints a line above the progress bar, or plainly when the bar is hidden (output
    /// not a terminal).
    fn say(&self, line: String) {
        if self.pb.is_hidden() {
            println!("{line}");
        } else {
            self.pb.println(line);
        }
    }

    /// The frame of `size` bytes to `dst` (IPv4), or to the sink over IPv6 with `--ipv6`.
    fn frame(&self, size: usize, dst: [u8; 4]) -> Result<Vec<u8>, String> {
        let (r0, g0) = (self.topo.r0_mac, self.topo.g0_mac);
        if self.plan.ipv6 {
            stats::udp6_frame(size, r0, g0, topo::GEN_IP6, topo::SINK_IP6)
        } else {
            stats::udp_frame(size, r0, g0, topo::GEN_IP, dst)
        }
    }

    fn measure(
        &mut self,
        subject: Subject,
        cores: &[usize],
        routes: u32,
        traffic: &Traffic,
    ) -> Result<Sample, String> {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        let (bpf, topo, plan) = (self.bpf, self.topo, self.plan);
        let setup = SubjectSetup {
            dataplane_bin: &self.bin,
            cores,
            routes,
            boost: plan.boost,
        };
        let running = Running::start(topo, bpf, subject, &setup)?;
        let (ndst, dst_base, dst_step) = traffic.dsts.unwrap_or((0, 0, 0));
        bpf.set_record(traffic.record)?;
        bpf.set_gen(&GenConfig {
            interval_ns: traffic
                .pps
                .map(stats::interval_ns)
                .transpose()?
                .unwrap_or(0),
            ifindex: topo.g0_index,
            ndst,
            dst_base,
            dst_step,
            frame: traffic.frame.clone(),
        })?;
        let start_counts = bpf.sink_counts()?;
        let stop_gen = AtomicBool::new(false);
        let afp_sent = AtomicU64::new(0);
        let kind = self.gen;
        if kind == GenKind::AfPacket && traffic.dsts.is_some() {
            return Err("cycling destinations (--routes) needs the live-frames generator".into());
        }
        let gen_sent = || -> Result<u64, String> {
            match kind {
                GenKind::Live => bpf.gen_sent(),
                GenKind::AfPacket => Ok(afp_sent.load(Ordering::Relaxed)),
            }
        };
        let stopper = &bpf::GenStopper::new();
        let stop_rec = AtomicBool::new(false);
        let mut records: Vec<Record> = Vec::new();
        let pb = &self.pb;
        let result = std::thread::scope(|s| -> Result<(Sample, u64, u64), String> {
            let gen = s.spawn(|| {
                if plan.boost {
                    boost_thread()?;
                }
                stopper.register();
                topo.gen.enter()?;
                pin(plan.gen_core);
                match kind {
                    GenKind::Live => bpf.run_gen(&traffic.frame, &stop_gen),
                    GenKind::AfPacket => afpgen::run(
                        "g0",
                        &traffic.frame,
                        traffic
                            .pps
                            .map(stats::interval_ns)
                            .transpose()?
                            .unwrap_or(0),
                        &afp_sent,
                        &stop_gen,
                        mono_ns,
                    ),
                }
            });
            let reader = traffic.record.then(|| {
                let (records, stop_rec) = (&mut records, &stop_rec);
                s.spawn(move || {
                    if plan.boost {
                        boost_thread()?;
                    }
                    pin(plan.gen_core);
                    bpf.collect_records(records, stop_rec)
                })
            });
            let wait = |secs: f64| {
                let until = Instant::now() + Duration::from_secs_f64(secs);
                while Instant::now() < until
                    && !gen.is_finished()
                    && !INTERRUPTED.load(Ordering::Relaxed)
                {
                    std::thread::sleep(Duration::from_millis(20));
                    pb.tick();
                }
            };
            let snapshot = || -> Result<_, String> {
                Ok((
                    bpf.sink_counts()?,
                    gen_sent()?,
                    Instant::now(),
                    mono_ns(),
                    proc_stat(),
                    running.thread_times(),
                ))
            };
            let timed = (|| {
                wait(plan.warmup);
                let a = snapshot()?;
                wait(plan.duration);
                Ok::<_, String>((a, snapshot()?))
            })();
            // Stop the generator and the reader whatever happened.
            stop_gen.store(true, Ordering::SeqCst);
            while !gen.is_finished() {
                stopper.interrupt();
                std::thread::sleep(Duration::from_millis(5));
            }
            let calls = gen.join();
            // Frames in flight arrive within a moment.
            std::thread::sleep(Duration::from_millis(100));
            stop_rec.store(true, Ordering::SeqCst);
            if let Some(r) = reader {
                r.join()
                    .map_err(|_| "the record reader panicked".to_string())??;
            }
            let calls = calls.map_err(|_| "the generator thread panicked".to_string())??;
            let ((c0, g0, t0, m0, p0, th0), (c1, g1, t1, m1, p1, th1)) = timed?;
            let cpu = |core: usize| {
                stats::CoreTimes::parse(&p0, core)
                    .zip(stats::CoreTimes::parse(&p1, core))
                    .and_then(|(a, b)| a.shares(&b))
            };
            if INTERRUPTED.load(Ordering::Relaxed) {
                return Err("interrupted".into());
            }
            if calls == 0 {
                return Err("the generator made no BPF_PROG_TEST_RUN call".into());
            }
            let secs = (t1 - t0).as_secs_f64();
            Ok((
                Sample {
                    rx_pps: (c1.packets - c0.packets) as f64 / secs,
                    gen_pps: (g1 - g0) as f64 / secs,
                    latency: None,
                    subject_cpu: cores.first().and_then(|&c| cpu(c)),
                    thread_cpu: (subject == Subject::Dataplane).then(|| {
                        let pick = |v: &[(u32, u64, u64)], wait: bool| {
                            v.iter()
                                .map(|&(t, r, w)| (t, if wait { w } else { r }))
                                .collect::<Vec<_>>()
                        };
                        let ns = secs * 1e9;
                        (
                            stats::thread_shares(&pick(&th0, false), &pick(&th1, false), ns),
                            stats::thread_shares(&pick(&th0, true), &pick(&th1, true), ns),
                        )
                    }),
                    gen_cpu: cpu(plan.gen_core),
                },
                m0,
                m1,
            ))
        });
        let report = running.stop();
        let (mut sample, m0, m1) = result?;
        if subject == Subject::Dataplane {
            self.last_report = report?;
        }
        if traffic.record {
            let end = bpf.sink_counts()?;
            let mut l = account(&records, gen_sent()?, m0, m1);
            l.lost_records = end.lost_records - start_counts.lost_records;
            sample.latency = Some(l);
        }
        bpf.set_record(false)?;
        self.pb.inc(1);
        Ok(sample)
    }

    /// `plan.runs` interleaved rounds over `subjects` (each with its cores and routes).
    fn rounds(
        &mut self,
        what: &str,
        subjects: &[(Subject, Vec<usize>, u32)],
        traffic: &dyn Fn(Subject) -> Result<Traffic, String>,
    ) -> Vec<Result<Vec<Sample>, String>> {
        let mut out: Vec<Result<Vec<Sample>, String>> = vec![Ok(Vec::new()); subjects.len()];
        for run in 0..self.plan.runs {
            for (k, (subj, cores, routes)) in subjects.iter().enumerate() {
                if INTERRUPTED.load(Ordering::Relaxed) {
                    out[k] = Err("interrupted".into());
                    continue;
                }
                // A subject that failed once is not tried again in later runs.
                if out[k].is_err() {
                    self.pb.inc(1);
                    continue;
                }
                self.pb.set_message(format!(
                    "{what}: {} (cores {cores:?}) run {}/{}",
                    subj.name(),
                    run + 1,
                    self.plan.runs
                ));
                let r = traffic(*subj).and_then(|t| self.measure(*subj, cores, *routes, &t));
                match r {
                    Ok(s) => {
                        let lat = s.latency.as_ref().map_or(String::new(), |l| {
                            format!(
                                "  p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} us, lost {} of {}, reordered {}",
                                l.lat.p50_us, l.lat.p99_us, l.lat.p999_us, l.lat.max_us, l.lost, l.sent, l.reordered
                            )
                        });
                        self.say(format!(
                            "  {what:<22} {:<9} run {}  {:>7.3} Mpps (generator {:.3}){lat}",
                            subj.name(),
                            run + 1,
                            s.rx_pps / 1e6,
                            s.gen_pps / 1e6
                        ));
                        if let Ok(v) = &mut out[k] {
                            v.push(s);
                        }
                    }
                    Err(e) => {
                        self.say(format!("  {what:<22} {:<9} failed: {e}", subj.name()));
                        out[k] = Err(e);
                    }
                }
            }
        }
        out
    }
}

fn mpps(v: &[Sample], f: impl Fn(&Sample) -> f64) -> Option<Spread> {
    Spread::of(&v.iter().map(|s| f(s) / 1e6).collect::<Vec<_>>())
}

fn spread_json(s: Option<Spread>) -> Value {
    match s {
        Some(s) => json!({"median": round3(s.median), "min": round3(s.min), "max": round3(s.max)}),
        None => Value::Null,
    }
}

/// Per run, the dataplane's busy threads: percent of a core on a CPU, and runnable but
/// waiting for one (time taken by other work on a shared core).
fn thread_json(v: &[Sample]) -> Value {
    json!(v
        .iter()
        .map(|x| x
            .thread_cpu
            .as_ref()
            .map(|(run, wait)| json!({"on_cpu": run, "runnable_waiting": wait})))
        .collect::<Vec<_>>())
}

/// Medians over runs of a core's time shares.
fn cpu_json(v: &[Sample], f: fn(&Sample) -> Option<[f64; 5]>) -> Value {
    let all: Vec<[f64; 5]> = v.iter().filter_map(f).collect();
    let med = |i: usize| crate::drivers::median(&all.iter().map(|a| a[i]).collect::<Vec<_>>());
    json!({"user": med(0), "system": med(1), "irq": med(2), "idle": med(3), "steal": med(4)})
}

fn fmt_opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// Latency figures over runs: the median of each percentile and the sum of the counts.
fn latency_json(v: &[Sample], offered_pps: f64) -> (Value, Option<f64>) {
    let ls: Vec<&LatencySample> = v.iter().filter_map(|s| s.latency.as_ref()).collect();
    let med = |f: &dyn Fn(&LatencySample) -> f64| {
        crate::drivers::median(&ls.iter().map(|l| f(l)).collect::<Vec<_>>())
    };
    let p99 = med(&|l| l.lat.p99_us);
    let sum = |f: &dyn Fn(&LatencySample) -> u64| ls.iter().map(|l| f(l)).sum::<u64>();
    let sent = sum(&|l| l.sent);
    let lost = sum(&|l| l.lost);
    (
        json!({
            "offered_mpps": round3(offered_pps / 1e6),
            "generator_mpps": spread_json(mpps(v, |s| s.gen_pps)),
            "delivered_mpps": spread_json(mpps(v, |s| s.rx_pps)),
            "p50_us": med(&|l| l.lat.p50_us),
            "p90_us": med(&|l| l.lat.p90_us),
            "p99_us": p99,
            "p99_us_range": Spread::of(&ls.iter().map(|l| l.lat.p99_us).collect::<Vec<_>>()).map(|s| vec![s.min, s.max]),
            "p999_us": med(&|l| l.lat.p999_us),
            "max_us": ls.iter().map(|l| l.lat.max_us).fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x)))),
            "mean_us": med(&|l| l.lat.mean_us),
            "sent": sent,
            "received": sum(&|l| l.received),
            "lost": lost,
            "loss_pct": if sent > 0 { (lost as f64 / sent as f64 * 1e5).round() / 1e3 } else { 0.0 },
            "reordered": sum(&|l| l.reordered),
            "duplicates": sum(&|l| l.duplicates),
            "records_lost_by_ring": sum(&|l| l.lost_records),
            "histogram_frames": sum(&|l| l.lat.count),
            "thread_cpu_pct_per_run": thread_json(v),
        }),
        p99,
    )
}

fn dataplane_bin(a: &RouterArgs) -> Result<PathBuf, String> {
    let p = match &a.dataplane {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| format!("locating dpbench: {e}"))?
            .with_file_name("dataplane"),
    };
    if !p.is_file() {
        return Err(format!(
            "no dataplane binary at {} (build it with `cargo build --release -p dataplane`, or give --dataplane PATH)",
            p.display()
        ));
    }
    Ok(p)
}

/// Runs the planned scenarios; prints progress, Markdown tables and the results file's
/// name; returns the summary for the JSON line.
pub fn run(args: &RouterArgs) -> Result<Map<String, Value>, String> {
    let ncores = core_affinity::get_core_ids().map_or(1, |c| c.len());
    let plan = plan(args, ncores)?;
    crate::drivers::install_signal_handlers();
    let uses_dataplane = plan.subjects.contains(&Subject::Dataplane)
        || !plan.routes.is_empty()
        || plan.scaling.is_some();
    let bin = if uses_dataplane {
        dataplane_bin(args)?
    } else {
        PathBuf::new()
    };
    let load_before = loadavg();
    if plan.boost {
        // The generator and the record reader are threads of this process.
        topo::boost_autogroup(std::process::id())?;
    }
    let bpf = BenchBpf::load()?;
    let topo = Topology::new(&bpf)?;
    let mut fallback: Option<String> = None;
    let gen = match plan.generator {
        GenKind::AfPacket => GenKind::AfPacket,
        GenKind::Live => {
            let frame =
                stats::udp_frame(64, topo.r0_mac, topo.g0_mac, topo::GEN_IP, topo::SINK_IP)?;
            bpf.set_gen(&GenConfig {
                interval_ns: 0,
                ifindex: topo.g0_index,
                ndst: 0,
                dst_base: 0,
                dst_step: 0,
                frame: frame.clone(),
            })?;
            match topo::in_ns(&topo.gen, || bpf.probe_live(&frame)) {
                Ok(()) => GenKind::Live,
                Err(e) => {
                    println!(
                        "live frames unavailable ({e}): falling back to the AF_PACKET generator"
                    );
                    fallback = Some(e);
                    GenKind::AfPacket
                }
            }
        }
    };
    let gen_name = match gen {
        GenKind::Live => "xdp-live-frames",
        GenKind::AfPacket => "afpacket-sendmmsg",
    };
    println!(
        "router on veth: generator {gen_name} on core {}, subjects on cores {:?}, {} runs x {} s (+{} s warm-up), {ncores} cores, load average {}",
        plan.gen_core,
        plan.subject_cores,
        plan.runs,
        plan.duration,
        plan.warmup,
        fmt_opt(load_before, 2)
    );
    let n_subj = plan.subjects.len();
    let lat_subj = plan
        .subjects
        .iter()
        .filter(|s| **s != Subject::XdpRef)
        .count();
    let total = plan.runs
        * (n_subj
            + plan.sizes.len() * n_subj
            + plan.latency.len() * lat_subj
            + plan.routes.len() * (1 + usize::from(plan.subjects.contains(&Subject::Linux)))
            + plan.scaling.as_ref().map_or(0, |_| 2));
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut b = Bench {
        plan: &plan,
        gen,
        bpf: &bpf,
        topo: &topo,
        bin,
        pb,
        last_report: String::new(),
    };
    let cores = plan.subject_cores.clone();
    let subj: Vec<(Subject, Vec<usize>, u32)> = plan
        .subjects
        .iter()
        .map(|s| (*s, cores.clone(), 0))
        .collect();
    let mut out = Map::new();

    // 1. Maximum rate at --size.
    let frame = b.frame(plan.size, topo::SINK_IP)?;
    let max_rate = b.rounds(&format!("max rate {}B", plan.size), &subj, &|_| {
        Ok(Traffic {
            frame: frame.clone(),
            pps: None,
            dsts: None,
            record: false,
        })
    });
    let mut med = std::collections::HashMap::new();
    for ((s, _, _), r) in subj.iter().zip(&max_rate) {
        let v = r
            .as_ref()
            .map_err(|e| format!("{} at {} bytes: {e}", s.name(), plan.size))?;
        let rx = mpps(v, |x| x.rx_pps);
        let gen = mpps(v, |x| x.gen_pps);
        med.insert(*s, rx.map(|x| x.median));
        out.insert(
            format!("{}_mpps", s.name()),
            json!(rx.map(|x| round3(x.median))),
        );
        out.insert(
            format!("{}_mpps_range", s.name()),
            json!(rx.map(|x| vec![round3(x.min), round3(x.max)])),
        );
        out.insert(
            format!("{}_generator_mpps", s.name()),
            json!(gen.map(|x| round3(x.median))),
        );
        let loss: Vec<f64> = v
            .iter()
            .map(|x| {
                if x.gen_pps > 0.0 {
                    (1.0 - x.rx_pps / x.gen_pps) * 100.0
                } else {
                    0.0
                }
            })
            .collect();
        let subject_cpu: fn(&Sample) -> Option<[f64; 5]> = |x| x.subject_cpu;
        let gen_cpu: fn(&Sample) -> Option<[f64; 5]> = |x| x.gen_cpu;
        out.insert(
            format!("{}_subject_core_cpu_pct", s.name()),
            cpu_json(v, subject_cpu),
        );
        out.insert(
            format!("{}_gen_core_cpu_pct", s.name()),
            cpu_json(v, gen_cpu),
        );
        if *s == Subject::Dataplane {
            out.insert("dataplane_thread_cpu_pct_per_run".into(), thread_json(v));
        }
        out.insert(
            format!("{}_loss_pct_at_max", s.name()),
            json!(crate::drivers::median(&loss).map(|x| (x * 10.0).round() / 10.0)),
        );
    }
    let get = |s: Subject| med.get(&s).copied().flatten();
    let dp = get(Subject::Dataplane);
    let ratio_to = |other: Subject| dp.zip(get(other)).and_then(|(a, b)| ratio(a, b));
    // The contract's keys are there even for subjects not measured (null).
    for s in [Subject::Dataplane, Subject::Linux, Subject::XdpRef] {
        out.entry(format!("{}_mpps", s.name()))
            .or_insert(Value::Null);
    }
    out.insert("ratio_vs_linux".into(), json!(ratio_to(Subject::Linux)));
    out.insert("ratio_vs_xdp_ref".into(), json!(ratio_to(Subject::XdpRef)));

    // 2. Size sweep.
    let mut sweep_rows = Vec::new();
    for &size in &plan.sizes {
        let frame = b.frame(size, topo::SINK_IP)?;
        let r = b.rounds(&format!("sweep {size}B"), &subj, &|_| {
            Ok(Traffic {
                frame: frame.clone(),
                pps: None,
                dsts: None,
                record: false,
            })
        });
        let mut row = Map::new();
        row.insert("size".into(), json!(size));
        for ((s, _, _), r) in subj.iter().zip(&r) {
            match r {
                Ok(v) => {
                    row.insert(
                        format!("{}_mpps", s.name()),
                        spread_json(mpps(v, |x| x.rx_pps)),
                    );
                    row.insert(
                        format!("{}_gbps", s.name()),
                        json!(mpps(v, |x| x.rx_pps)
                            .map(|m| round3(m.median * size as f64 * 8.0 / 1e3))),
                    );
                }
                Err(e) => {
                    row.insert(format!("{}_error", s.name()), json!(e));
                }
            }
        }
        sweep_rows.push(Value::Object(row));
    }

    // 3. Latency at fixed loads, in percent of Linux's maximum.
    let mut lat_rows = Vec::new();
    let lat_subj: Vec<(Subject, Vec<usize>, u32)> = subj
        .iter()
        .filter(|(s, _, _)| *s != Subject::XdpRef)
        .cloned()
        .collect();
    if let (false, Some(linux_max)) = (plan.latency.is_empty(), get(Subject::Linux)) {
        for &pct in &plan.latency {
            let pps = linux_max * 1e6 * pct / 100.0;
            let r = b.rounds(
                &format!("latency {pct}% ({:.3} Mpps)", pps / 1e6),
                &lat_subj,
                &|_| {
                    Ok(Traffic {
                        frame: frame.clone(),
                        pps: Some(pps),
                        dsts: None,
                        record: true,
                    })
                },
            );
            let mut row = Map::new();
            row.insert("load_pct".into(), json!(pct));
            for ((s, _, _), r) in lat_subj.iter().zip(&r) {
                match r {
                    Ok(v) => {
                        let (j, p99) = latency_json(v, pps);
                        if pct == 50.0 {
                            out.insert(format!("{}_p99_us_at_50pct", s.name()), json!(p99));
                        }
                        row.insert(s.name().into(), j);
                    }
                    Err(e) => {
                        row.insert(s.name().into(), json!({"error": e}));
                    }
                }
            }
            lat_rows.push(Value::Object(row));
        }
    }
    for s in [Subject::Dataplane, Subject::Linux] {
        out.entry(format!("{}_p99_us_at_50pct", s.name()))
            .or_insert(Value::Null);
    }

    // 4. Route table size (dataplane, and Linux with the same routes when measured):
    // destinations cycle over the routes.
    let mut route_rows = Vec::new();
    let route_subj: Vec<Subject> = [Subject::Dataplane, Subject::Linux]
        .into_iter()
        .filter(|s| *s == Subject::Dataplane || plan.subjects.contains(s))
        .collect();
    for &n in &plan.routes {
        let first = (10u32 << 24) + 1;
        let frame = b.frame(plan.size, first.to_be_bytes())?;
        let with: Vec<(Subject, Vec<usize>, u32)> =
            route_subj.iter().map(|s| (*s, cores.clone(), n)).collect();
        let r = b.rounds(&format!("routes {n}"), &with, &|_| {
            Ok(Traffic {
                frame: frame.clone(),
                pps: None,
                dsts: Some((n, first, 16)),
                record: false,
            })
        });
        let mut row = Map::new();
        row.insert("routes".into(), json!(n));
        for (s, r) in route_subj.iter().zip(&r) {
            match r {
                Ok(v) => row.insert(
                    format!("{}_mpps", s.name()),
                    spread_json(mpps(v, |x| x.rx_pps)),
                ),
                Err(e) => row.insert(format!("{}_error", s.name()), json!(e)),
            };
        }
        route_rows.push(Value::Object(row));
    }
    for (n, why) in &plan.routes_skipped {
        route_rows.push(json!({"routes": n, "skipped": why}));
    }

    // 5. Worker scaling.
    let mut scaling_rows = Vec::new();
    if let Some(more) = &plan.scaling {
        let r = b.rounds(
            "scaling",
            &[
                (Subject::Dataplane, cores.clone(), 0),
                (Subject::Dataplane, more.clone(), 0),
            ],
            &|_| {
                Ok(Traffic {
                    frame: frame.clone(),
                    pps: None,
                    dsts: None,
                    record: false,
                })
            },
        );
        for (c, r) in [cores.clone(), more.clone()].iter().zip(&r) {
            scaling_rows.push(match r {
                Ok(v) => json!({
                    "cores": c,
                    "workers": c.len(),
                    "dataplane_mpps": spread_json(mpps(v, |x| x.rx_pps)),
                    "shares_generator_core": c.contains(&plan.gen_core),
                    "thread_cpu_pct_per_run": thread_json(v),
                }),
                Err(e) => json!({"cores": c, "workers": c.len(), "error": e}),
            });
        }
    }
    b.pb.finish_and_clear();
    let last_report = std::mem::take(&mut b.last_report);
    drop(b);
    drop(topo);

    out.insert("generator".into(), json!(gen_name));
    if let Some(e) = fallback {
        out.insert("generator_fallback_reason".into(), json!(e));
    }
    out.insert(
        "dataplane_sched".into(),
        json!(if plan.boost {
            "nice -20 (own autogroup)"
        } else {
            "nice 0"
        }),
    );
    // Other work on the machine skews every figure: the load average says how much.
    out.insert(
        "loadavg_before_after".into(),
        json!([load_before, loadavg()]),
    );
    out.insert("sink".into(), json!("xdp-count+ringbuf"));
    out.insert("size".into(), json!(plan.size));
    out.insert("duration_s".into(), json!(plan.duration));
    out.insert("warmup_s".into(), json!(plan.warmup));
    out.insert("runs".into(), json!(plan.runs));
    out.insert("gen_core".into(), json!(plan.gen_core));
    out.insert("subject_cores".into(), json!(plan.subject_cores));
    out.insert("cores".into(), json!(ncores));
    out.insert("ip_version".into(), json!(if plan.ipv6 { 6 } else { 4 }));
    out.insert(
        "traffic".into(),
        json!(if plan.ipv6 {
            "IPv6/UDP 2001:db8:1::2 -> 2001:db8:2::2, ports varied per frame, UDP checksum 0"
        } else {
            "IPv4/UDP 198.51.100.2 -> 203.0.113.2, ports varied per frame"
        }),
    );
    if !sweep_rows.is_empty() {
        out.insert("sweep".into(), Value::Array(sweep_rows));
    }
    if !lat_rows.is_empty() {
        out.insert("latency".into(), Value::Array(lat_rows));
    }
    if !route_rows.is_empty() {
        out.insert("routes".into(), Value::Array(route_rows));
    }
    if !scaling_rows.is_empty() {
        out.insert("scaling".into(), Value::Array(scaling_rows));
    }
    if !last_report.is_empty() {
        out.insert("dataplane_last_report".into(), json!(last_report));
    }
    out.insert(
        "subjects".into(),
        json!(plan.subjects.iter().map(|s| s.name()).collect::<Vec<_>>()),
    );
    out.insert(
        "command".into(),
        json!(format!(
            "dpbench {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        )),
    );
    print!("\n{}", report::markdown(&out));
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let stamp = stats::utc_stamp(secs);
    out.insert("timestamp".into(), json!(stamp));
    let dir = args
        .results_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"));
    let file = dir.join(format!("router-{stamp}.json"));
    let text =
        serde_json::to_string_pretty(&Value::Object(out.clone())).map_err(|e| e.to_string())?;
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, text + "\n")) {
        Ok(()) => println!("\nresults: {}", file.display()),
        Err(e) => eprintln!("could not write {}: {e}", file.display()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: RouterArgs,
    }

    fn args(v: &[&str]) -> RouterArgs {
        let mut all = vec!["t"];
        all.extend_from_slice(v);
        T::parse_from(all).a
    }

    #[test]
    fn the_contract_options_plan_three_subjects_and_latency_at_half_load() {
        let p = plan(&args(&["--size", "64", "--duration", "5"]), 2).unwrap();
        assert_eq!(
            p.subjects,
            vec![Subject::Dataplane, Subject::Linux, Subject::XdpRef]
        );
        assert_eq!(p.latency, vec![50.0]);
        assert_eq!((p.size, p.runs, p.gen_core), (64, 3, 0));
        assert_eq!(p.subject_cores, vec![1]);
        assert!(p.sizes.is_empty() && p.routes.is_empty() && p.scaling.is_none());
        assert!(p.boost);
        assert!(!plan(&args(&["--no-boost"]), 2).unwrap().boost);
        let all = plan(&args(&["--all", "--routes", "1,full"]), 2).unwrap();
        assert_eq!(all.sizes, vec![64, 128, 256, 512, 1024, 1500]);
        assert_eq!(all.latency, vec![10.0, 50.0, 90.0]);
        assert_eq!(all.routes, vec![1]);
        assert_eq!(all.routes_skipped.len(), 1);
        assert_eq!(all.routes_skipped[0].0, "full");
        let all = plan(&args(&["--all"]), 2).unwrap();
        assert_eq!(all.routes, vec![1, 1000, 10000]);
        assert_eq!(all.routes_skipped.len(), 2);
        assert_eq!(all.scaling, Some(vec![0, 1]));
    }

    #[test]
    fn malformed_options_are_refused_with_the_option_named() {
        let err = |v: &[&str]| plan(&args(v), 2).unwrap_err();
        assert!(err(&["--size", "40"]).contains("--size 40"));
        assert!(err(&["--duration", "0"]).contains("--duration"));
        assert!(err(&["--runs", "0"]).contains("--runs"));
        assert!(err(&["--subject-cores", "2"]).contains("--subject-cores"));
        assert!(err(&["--subject-cores", "1,1"]).contains("twice"));
        assert!(err(&["--gen-core", "1"]).contains("also a subject core"));
        assert!(err(&["--subjects", "bird"]).contains("--subjects"));
        assert!(err(&["--latency", "0"]).contains("--latency"));
        assert!(err(&["--subjects", "dataplane"]).contains("must include linux"));
        assert!(err(&["--sweep", "--sizes", "64,9000"]).contains("--sizes"));
        assert!(err(&["--routes", "0"]).contains("--routes"));
        assert!(plan(&args(&["--subjects", "dataplane", "--latency", ""]), 2).is_ok());
        assert!(err(&["--ipv6"]).contains("--size 64"));
        assert!(err(&["--ipv6", "--size", "128", "--routes", "1"]).contains("--routes"));
        assert!(plan(&args(&["--ipv6", "--size", "128"]), 2).unwrap().ipv6);
    }

    #[test]
    fn accounting_over_records_splits_window_and_loss() {
        let rec = |seq, sent_ns, lat| Record {
            seq,
            sent_ns,
            recv_ns: sent_ns + lat,
        };
        // Sent 0..6: 4 lost, 3 duplicated, 2 after 5 (reordered), 0 sent before the
        // window (counted for loss, not in the histogram).
        let r = [
            rec(0, 50, 1_000_000),
            rec(1, 100, 10_000),
            rec(3, 300, 20_000),
            rec(3, 300, 20_000),
            rec(5, 500, 30_000),
            rec(2, 200, 40_000),
        ];
        let l = account(&r, 6, 100, 1000);
        assert_eq!(l.received, 6);
        assert_eq!(l.lost, 1);
        assert_eq!(l.duplicates, 1);
        assert_eq!(l.reordered, 1);
        assert_eq!(l.sent, 6);
        assert_eq!(l.lat.count, 5);
        assert!((l.lat.max_us - 40.0).abs() < 0.1, "{l:?}");
        assert!((l.lat.p50_us - 20.0).abs() < 0.1, "{l:?}");
    }

    /// A short real run of the two kernel subjects (root only; the dataplane binary is
    /// not built by `cargo test`): the topology comes up, both forward, the contract's
    /// keys are in the JSON, the results file is written, and nothing is left behind.
    #[test]
    fn a_short_run_of_linux_and_the_xdp_reference_forwards_and_cleans_up() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let dir = std::env::temp_dir().join(format!("dpb-results-{}", std::process::id()));
        let mut a = args(&[
            "--subjects",
            "linux,xdp_ref",
            "--runs",
            "1",
            "--duration",
            "0.3",
            "--warmup",
            "0.1",
            "--no-boost",
        ]);
        a.results_dir = Some(dir.clone());
        let out = run(&a).unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(files.len(), 1, "one results file");
        for k in [
            "dataplane_mpps",
            "linux_mpps",
            "xdp_ref_mpps",
            "ratio_vs_linux",
            "ratio_vs_xdp_ref",
            "dataplane_p99_us_at_50pct",
            "linux_p99_us_at_50pct",
        ] {
            assert!(out.contains_key(k), "{k} missing");
        }
        assert_eq!(out["dataplane_mpps"], Value::Null, "not measured");
        assert!(
            out["linux_mpps"].as_f64().unwrap() > 0.0,
            "Linux forwarded nothing"
        );
        assert!(
            out["xdp_ref_mpps"].as_f64().unwrap() > 0.0,
            "the reference forwarded nothing"
        );
        let lat = &out["latency"][0]["linux"];
        assert!(lat["received"].as_u64().unwrap() > 0, "{lat}");
        assert_eq!(lat["duplicates"], 0);
        let pid = std::process::id();
        let left = std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap();
        assert!(
            !String::from_utf8_lossy(&left.stdout).contains(&format!("dpb-{pid}-")),
            "namespaces left behind"
        );
    }
}
