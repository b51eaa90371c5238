//! `dpbench drivers`: receive and transmit rates of each driver on a veth pair (and a
//! TAP), 64-byte frames, beside kernel-only references on the same pair.
//!
//! Two namespaces, `dpb-<pid>-g` (the generator's end `g0`) and `dpb-<pid>-d` (the
//! driver's end `d0`), joined by a veth pair, plus `dpb-<pid>-t` for the TAP; all are
//! removed by Drop guards, also on a panic or Ctrl-C (which stops the run early). The
//! generator is an AF_PACKET socket sending 64 pre-built frames per `sendmmsg` (a UDP
//! port varied per frame), pinned to the first core; whoever receives is pinned to the
//! second. Every scenario is measured `runs` times for `seconds`, interleaved, and the
//! median reported with its range.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bpf::{AttachMode, Mode, XdpProgram};
use drivers::{AfPacket, AfPacketConfig, AfXdp, AfXdpConfig, Driver, Tap, TapConfig};
use serde_json::{Map, Value};
use stack::{Frame, FramePool, PoolConfig};

/// Bytes of each frame without the FCS (64 on the wire).
pub const FRAME_LEN: usize = 60;
/// Frames per `sendmmsg` call of the generator, and distinct UDP ports.
pub const GEN_BATCH: usize = 64;

/// Options of `dpbench drivers`.
#[derive(Debug, Clone, clap::Args)]
pub struct DriversArgs {
    /// Runs of each scenario (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
}

/// Set by SIGINT/SIGTERM: the run stops and the namespaces are removed.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub(crate) fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

/// The Ethernet + IPv4 + UDP frame number `i` (UDP destination port 9000 + i, so that
/// GRO never merges consecutive frames), 192.0.2.1 to 192.0.2.2, 18 zero bytes of payload,
/// UDP checksum 0 (none, valid for IPv4).
pub fn frame(dst: [u8; 6], src: [u8; 6], i: u16) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((FRAME_LEN - 14) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 2]);
    let sum = ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&4000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9000u16.wrapping_add(i).to_be_bytes());
    udp[4..6].copy_from_slice(&((FRAME_LEN - 34) as u16).to_be_bytes());
    f
}

/// The Internet checksum of an IPv4 header whose checksum field is zero (or, over a
/// header with its checksum in place, zero when it is right).
pub fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Median of `v` (mean of the middle two for an even count); `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return None;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// `a / b` rounded to three decimals; `None` when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b * 1000.0).round() / 1000.0)
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(crate) fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace removed when this value is dropped.
pub struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn new(tag: &str) -> Result<Netns, String> {
        let name = format!("dpb-{}-{tag}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip("link set lo up")?;
        Ok(ns)
    }

    pub(crate) fn ip(&self, args: &str) -> Result<String, String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend(args.split_whitespace());
        ip(&v)
    }

    /// Moves the calling thread into this namespace.
    pub(crate) fn enter(&self) -> Result<(), String> {
        let path = format!("/var/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        // SAFETY: setns(2) on a descriptor that stays open for the call.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
        }
        Ok(())
    }

    pub(crate) fn wait_up(&self, dev: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.ip(&format!("-br link show dev {dev}"))?;
            let state = out.split_whitespace().nth(1);
            if state == Some("UP") || (state == Some("UNKNOWN") && out.contains("LOWER_UP")) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("{dev} not up after 5 s: {out}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn mac(&self, dev: &str) -> Result<[u8; 6], String> {
        let out = self.ip(&format!("-br link show dev {dev}"))?;
        let text = out.split_whitespace().nth(2).unwrap_or("");
        let mut m = [0u8; 6];
        let parts: Vec<&str> = text.split(':').collect();
        if parts.len() != 6 {
            return Err(format!("no MAC address of {dev} in {out:?}"));
        }
        for (b, p) in m.iter_mut().zip(parts) {
            *b = u8::from_str_radix(p, 16).map_err(|e| format!("MAC of {dev}: {e}"))?;
        }
        Ok(m)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

pub(crate) fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if let Some(id) = ids.get(core % ids.len().max(1)) {
            core_affinity::set_for_current(*id);
        }
    }
}

pub(crate) fn ifindex(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: if_nametoindex(3) reads a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(format!(
            "no interface {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(i)
}

/// An AF_PACKET raw socket bound to `name` (in the caller's namespace); `protocol` 0
/// sends only, `ETH_P_ALL` also receives.
pub(crate) fn packet_socket(name: &str, protocol: u16) -> Result<OwnedFd, String> {
    let index = ifindex(name)?;
    let proto = protocol.to_be();
    // SAFETY: plain socket(2); the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        return Err(format!(
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: bind(2) with a sockaddr_ll of the stated size.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        return Err(format!(
            "binding to {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(fd)
}

/// Sends `frames` in `sendmmsg` batches on `fd` until `stop`; returns the frames the
/// kernel accepted.
fn blast(fd: &OwnedFd, frames: &[[u8; FRAME_LEN]], stop: &AtomicBool) -> u64 {
    let mut iov: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ptr() as *mut libc::c_void,
            iov_len: f.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let mut sent = 0u64;
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `msgs` points into `iov`, which points into `frames`; all outlive the
        // call, and the kernel only reads the frames.
        let n = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                msgs.len() as u32,
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            sent += n as u64;
        } else {
            std::hint::spin_loop();
        }
    }
    sent
}

/// The two phases every party of a scenario passes: the receiving side sets up first,
/// then the sending side, then both run together while the main thread times them.
struct Gate {
    setup: Barrier,
    start: Barrier,
    stop: AtomicBool,
}

/// One side of a scenario: sets up (in its namespace, on its core), calls `go` once
/// ready, runs until `stop`, and returns what it counted.
type Side<'a> = Box<dyn FnOnce(&dyn Fn(), &AtomicBool) -> Result<u64, String> + Send + 'a>;

struct Outcome {
    /// What the receiving side counted, per second.
    rx_pps: f64,
    /// What the sending side counted, per second.
    tx_pps: f64,
}

/// Runs `rx` in `rx_ns` on core 1 and `tx` in `tx_ns` on core 0 for `seconds`.
fn run_pair(
    seconds: f64,
    rx_ns: &Netns,
    rx: Side<'_>,
    tx_ns: &Netns,
    tx: Side<'_>,
) -> Result<Outcome, String> {
    let gate = Gate {
        setup: Barrier::new(2),
        start: Barrier::new(3),
        stop: AtomicBool::new(false),
    };
    let gate = &gate;
    std::thread::scope(|s| {
        let rx_h = s.spawn(move || {
            pin(1);
            let called = std::cell::Cell::new(false);
            let go = || {
                if !called.replace(true) {
                    gate.setup.wait();
                    gate.start.wait();
                }
            };
            let r = rx_ns.enter().and_then(|()| rx(&go, &gate.stop));
            go();
            r
        });
        let tx_h = s.spawn(move || {
            pin(0);
            let entered = tx_ns.enter();
            gate.setup.wait();
            let called = std::cell::Cell::new(false);
            let go = || {
                if !called.replace(true) {
                    gate.start.wait();
                }
            };
            let r = entered.and_then(|()| tx(&go, &gate.stop));
            go();
            r
        });
        gate.start.wait();
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs_f64(seconds);
        while Instant::now() < until && !INTERRUPTED.load(Ordering::Relaxed) {
            if rx_h.is_finished() || tx_h.is_finished() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        gate.stop.store(true, Ordering::SeqCst);
        let elapsed = t0.elapsed().as_secs_f64();
        let rx = rx_h
            .join()
            .map_err(|_| "receiving side panicked".to_string())?;
        let tx = tx_h
            .join()
            .map_err(|_| "sending side panicked".to_string())?;
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err("interrupted".into());
        }
        Ok(Outcome {
            rx_pps: rx? as f64 / elapsed,
            tx_pps: tx? as f64 / elapsed,
        })
    })
}

/// A generator side: an AF_PACKET socket on `dev` sending `frames`.
fn generator<'a>(dev: &'a str, frames: &'a [[u8; FRAME_LEN]]) -> Side<'a> {
    Box::new(move |go, stop| {
        let fd = packet_socket(dev, 0)?;
        go();
        Ok(blast(&fd, frames, stop))
    })
}

/// A counting side: our XDP program in drop mode on `dev`; counts what it dropped.
fn xdp_drop_counter(dev: &str) -> Side<'_> {
    Box::new(move |go, stop| {
        let mut prog = XdpProgram::load().map_err(|e| e.to_string())?;
        prog.set_mode(Mode::Drop).map_err(|e| e.to_string())?;
        prog.attach(ifindex(dev)?, Some(AttachMode::Native))
            .map_err(|e| e.to_string())?;
        let count = |p: &XdpProgram| -> u64 {
            (0..4)
                .filter_map(|q| p.counters(q).ok())
                .map(|c| c.dropped)
                .sum()
        };
        go();
        let c0 = count(&prog);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Frames still in flight land within a moment.
        std::thread::sleep(Duration::from_millis(20));
        Ok(count(&prog) - c0)
    })
}

/// Receives with `drv` on queue 0 until `stop`, busy-polling; counts frames.
fn drain<D: Driver>(drv: &mut D, stop: &AtomicBool) -> Result<u64, String> {
    let mut rx: Vec<Frame> = Vec::with_capacity(64);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += drv.recv(0, &mut rx, 64).map_err(|e| e.to_string())? as u64;
        rx.clear();
    }
    Ok(n)
}

/// Sends 64-byte frames from `pool` through `drv` on queue 0 until `stop`; returns the
/// frames it took.
fn fill<D: Driver>(
    drv: &mut D,
    pool: &FramePool,
    frames: &[[u8; FRAME_LEN]],
    stop: &AtomicBool,
) -> Result<u64, String> {
    let mut batch: Vec<Frame> = Vec::with_capacity(64);
    let (mut n, mut i) = (0u64, 0usize);
    while !stop.load(Ordering::Relaxed) {
        while batch.len() < 64 {
            let Some(mut f) = pool.alloc() else { break };
            f.append(FRAME_LEN)
                .map_err(|e| format!("{e:?}"))?
                .copy_from_slice(&frames[i % frames.len()]);
            i += 1;
            batch.push(f);
        }
        n += drv.send(0, &mut batch).map_err(|e| e.to_string())? as u64;
    }
    Ok(n)
}

/// Opens AF_XDP on `name`, retrying a few times (a bind right after a close may get
/// EBUSY).
fn open_afxdp(name: &str) -> Result<AfXdp, String> {
    let mut last = String::new();
    for _ in 0..10 {
        match AfXdp::open(&AfXdpConfig::new(name)) {
            Ok(d) => return Ok(d),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last)
}

fn plain_pool() -> Result<FramePool, String> {
    FramePool::with_frames(4096, PoolConfig::default()).map_err(|e| format!("{e:?}"))
}

/// The scenarios, in the order each run measures them.
const SCENARIOS: [&str; 7] = [
    "xdp_drop_ref",
    "linux_raw_rx",
    "afxdp_rx",
    "afpacket_rx",
    "tap_rx",
    "afxdp_tx",
    "afpacket_tx",
];

/// Facts the AF_XDP driver reported when opened.
#[derive(Default)]
struct XdpFacts {
    mode: Option<AttachMode>,
    zero_copy: Option<bool>,
    /// Frames the XDP program redirected to the socket during the last `afxdp_rx` run
    /// (delivered or dropped by the kernel for want of ring room).
    redirected: u64,
}

struct Setup {
    gen: Netns,
    dut: Netns,
    tap: Netns,
    g_mac: [u8; 6],
    d_mac: [u8; 6],
}

fn setup() -> Result<Setup, String> {
    let gen = Netns::new("g")?;
    let dut = Netns::new("d")?;
    let tap = Netns::new("t")?;
    gen.ip(&format!(
        "link add g0 type veth peer name d0 netns {}",
        dut.name
    ))?;
    gen.ip("link set g0 addrgenmode none")?;
    dut.ip("link set d0 addrgenmode none")?;
    gen.ip("link set g0 up")?;
    dut.ip("link set d0 up")?;
    gen.wait_up("g0")?;
    dut.wait_up("d0")?;
    let g_mac = gen.mac("g0")?;
    let d_mac = dut.mac("d0")?;
    Ok(Setup {
        gen,
        dut,
        tap,
        g_mac,
        d_mac,
    })
}

/// One measurement of `scenario`: (measured pps, generator pps or the driver's own
/// count for TX scenarios).
fn measure(
    s: &Setup,
    scenario: &str,
    seconds: f64,
    facts: &mut XdpFacts,
) -> Result<(f64, f64), String> {
    let to_dut: Vec<[u8; FRAME_LEN]> = (0..GEN_BATCH as u16)
        .map(|i| frame(s.d_mac, s.g_mac, i))
        .collect();
    let to_gen: Vec<[u8; FRAME_LEN]> = (0..GEN_BATCH as u16)
        .map(|i| frame(s.g_mac, s.d_mac, i))
        .collect();
    let gen = generator("g0", &to_dut);
    let facts_cell = std::sync::Mutex::new(std::mem::take(facts));
    let out = match scenario {
        "xdp_drop_ref" => run_pair(seconds, &s.dut, xdp_drop_counter("d0"), &s.gen, gen)?,
        "linux_raw_rx" => {
            let rx: Side<'_> = Box::new(|go, stop| {
                let fd = packet_socket("d0", libc::ETH_P_ALL as u16)?;
                let tv = libc::timeval {
                    tv_sec: 0,
                    tv_usec: 100_000,
                };
                // SAFETY: setsockopt(2) with a timeval of the stated size.
                unsafe {
                    libc::setsockopt(
                        fd.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_RCVTIMEO,
                        (&tv as *const libc::timeval).cast(),
                        std::mem::size_of::<libc::timeval>() as u32,
                    )
                };
                go();
                let mut buf = [0u8; 2048];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // SAFETY: recv(2) into a buffer of the stated length.
                    let r = unsafe {
                        libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0)
                    };
                    if r > 0 {
                        n += 1;
                    }
                }
                Ok(n)
            });
            run_pair(seconds, &s.dut, rx, &s.gen, gen)?
        }
        "afxdp_rx" => {
            let rx: Side<'_> = Box::new(|go, stop| {
                let mut drv = open_afxdp("d0")?;
                if let Ok(mut f) = facts_cell.lock() {
                    f.mode = Some(drv.xdp_mode());
                    f.zero_copy = Some(drv.zero_copy());
                }
                let redirected = |d: &AfXdp| d.xdp_counters(0).map_or(0, |c| c.redirected);
                go();
                let r0 = redirected(&drv);
                let n = drain(&mut drv, stop)?;
                if let Ok(mut f) = facts_cell.lock() {
                    f.redirected = redirected(&drv).saturating_sub(r0);
                }
                Ok(n)
            });
            run_pair(seconds, &s.dut, rx, &s.gen, gen)?
        }
        "afpacket_rx" => {
            let rx: Side<'_> = Box::new(|go, stop| {
                let cfg = AfPacketConfig::new("d0").with_rcvbuf(4 << 20);
                let mut drv = AfPacket::open(&cfg, plain_pool()?).map_err(|e| e.to_string())?;
                go();
                drain(&mut drv, stop)
            });
            run_pair(seconds, &s.dut, rx, &s.gen, gen)?
        }
        "tap_rx" => {
            let tap_ns = &s.tap;
            let rx: Side<'_> = Box::new(move |go, stop| {
                let mut drv = Tap::open(&TapConfig::new("dpbt0"), plain_pool()?)
                    .map_err(|e| e.to_string())?;
                tap_ns.ip("link set dpbt0 addrgenmode none")?;
                tap_ns.ip("link set dpbt0 up")?;
                tap_ns.wait_up("dpbt0")?;
                go();
                drain(&mut drv, stop)
            });
            let tap_gen = generator("dpbt0", &to_dut);
            run_pair(seconds, &s.tap, rx, &s.tap, tap_gen)?
        }
        "afxdp_tx" | "afpacket_tx" => {
            let xdp = scenario == "afxdp_tx";
            let frames = &to_gen;
            let tx: Side<'_> = Box::new(move |go, stop| {
                if xdp {
                    let mut drv = open_afxdp("d0")?;
                    let pool = drv.pool().clone();
                    go();
                    fill(&mut drv, &pool, frames, stop)
                } else {
                    let cfg = AfPacketConfig::new("d0").with_sndbuf(4 << 20);
                    let pool = plain_pool()?;
                    let mut drv = AfPacket::open(&cfg, pool.clone()).map_err(|e| e.to_string())?;
                    go();
                    fill(&mut drv, &pool, frames, stop)
                }
            });
            run_pair(seconds, &s.gen, xdp_drop_counter("g0"), &s.dut, tx)?
        }
        other => return Err(format!("unknown scenario {other}")),
    };
    *facts = facts_cell.into_inner().unwrap_or_default();
    Ok((out.rx_pps, out.tx_pps))
}

/// Runs every scenario `args.runs` times; prints progress and a table; returns the
/// summary for the JSON line.
pub fn run(args: &DriversArgs) -> Result<Map<String, Value>, String> {
    install_signal_handlers();
    let runs = args.runs.max(1);
    let cores = core_affinity::get_core_ids().map_or(0, |c| c.len());
    println!(
        "drivers on veth: {FRAME_LEN}-byte frames (64 on the wire), {runs} runs x {} s per scenario, generator AF_PACKET sendmmsg x{GEN_BATCH} on core 0, receiver on core 1 ({cores} cores)",
        args.seconds
    );
    let s = setup()?;
    let mut facts = XdpFacts::default();
    let mut got: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); SCENARIOS.len()];
    let mut redirected = Vec::new();
    for r in 0..runs {
        for (k, name) in SCENARIOS.iter().enumerate() {
            let (m, g) = measure(&s, name, args.seconds, &mut facts)
                .map_err(|e| format!("{name}, run {}: {e}", r + 1))?;
            let other = if name.ends_with("_tx") {
                "driver sent"
            } else {
                "generator"
            };
            println!(
                "  run {}/{runs}  {name:<13} {:>6.3} Mpps   ({other} {:.3} Mpps)",
                r + 1,
                m / 1e6,
                g / 1e6
            );
            if *name == "afxdp_rx" {
                let pps = facts.redirected as f64 / args.seconds / 1e6;
                println!(
                    "                        (XDP program redirected {pps:.3} Mpps to the socket)"
                );
                redirected.push(pps);
            }
            got[k].0.push(m / 1e6);
            got[k].1.push(g / 1e6);
        }
    }
    drop(s);

    let mut out = Map::new();
    let mut med = std::collections::HashMap::new();
    println!("\nmedians over {runs} runs (range), Mpps:");
    for (k, name) in SCENARIOS.iter().enumerate() {
        let (m, g) = &got[k];
        let mm = median(m).unwrap_or(0.0);
        let gm = median(g).unwrap_or(0.0);
        let lo = m.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = m.iter().copied().fold(0.0, f64::max);
        let other = if name.ends_with("_tx") {
            "driver sent"
        } else {
            "generator"
        };
        println!("  {name:<13} {mm:>6.3} ({lo:.3}-{hi:.3})   {other} {gm:.3}");
        med.insert(*name, mm);
        out.insert(format!("{name}_mpps"), Value::from(round3(mm)));
        out.insert(
            format!("{name}_range"),
            Value::from(vec![round3(lo), round3(hi)]),
        );
        let gkey = if name.ends_with("_tx") {
            format!("{name}_driver_sent_mpps")
        } else {
            format!("{name}_generator_mpps")
        };
        out.insert(gkey, Value::from(round3(gm)));
    }
    let red = median(&redirected).unwrap_or(0.0);
    println!("  afxdp_rx: the XDP program redirected {red:.3} (frames beyond what the driver received were lost at a full RX ring)");
    out.insert("afxdp_rx_redirected_mpps".into(), Value::from(round3(red)));
    let (drop_ref, raw_ref) = (med["xdp_drop_ref"], med["linux_raw_rx"]);
    println!("\nratios to the kernel-only references:");
    for name in [
        "afxdp_rx",
        "afpacket_rx",
        "tap_rx",
        "afxdp_tx",
        "afpacket_tx",
    ] {
        let (a, b) = (ratio(med[name], drop_ref), ratio(med[name], raw_ref));
        println!(
            "  {name:<13} {:>6} of xdp_drop_ref, {:>6} of linux_raw_rx",
            a.map_or("-".into(), |x| format!("{x:.3}")),
            b.map_or("-".into(), |x| format!("{x:.3}"))
        );
        out.insert(format!("{name}_vs_xdp_drop"), Value::from(a));
        out.insert(format!("{name}_vs_linux_raw"), Value::from(b));
    }
    let mode = match facts.mode {
        Some(AttachMode::Native) => "native",
        Some(AttachMode::Generic) => "generic",
        None => "unknown",
    };
    println!(
        "AF_XDP: XDP {mode} mode, {}",
        match facts.zero_copy {
            Some(true) => "zero-copy",
            Some(false) => "copy mode",
            None => "zero-copy unknown",
        }
    );
    out.insert("xdp_mode".into(), Value::from(mode));
    out.insert("zero_copy".into(), Value::from(facts.zero_copy));
    out.insert("runs".into(), Value::from(runs));
    out.insert("seconds".into(), Value::from(args.seconds));
    out.insert("frame_len".into(), Value::from(FRAME_LEN + 4));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_valid_ipv4_udp_with_distinct_ports() {
        let a = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 0);
        let b = frame([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2], 1);
        assert_eq!(a.len() + 4, 64);
        assert_eq!(&a[12..14], &[0x08, 0x00]);
        assert_eq!(ipv4_checksum(&a[14..34]), 0, "header checksum verifies");
        assert_eq!(u16::from_be_bytes([a[16], a[17]]), 46);
        assert_eq!(u16::from_be_bytes([a[38], a[39]]), 26);
        assert_ne!(&a[36..38], &b[36..38], "destination ports differ");
        let ip = stack::wire::ipv4::Ipv4Packet::new_checked(&a[14..]).unwrap();
        assert!(ip.verify_checksum());
    }

    #[test]
    fn median_and_ratio() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(ratio(1.0, 4.0), Some(0.25));
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
