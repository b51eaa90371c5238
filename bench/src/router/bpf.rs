//! The XDP programs of `dpbench router` (`bench/bpf/router.bpf.c`, compiled by
//! `build.rs` and embedded) and their loader: the live-frames generator, the XDP-native
//! reference forwarder, a pass-through, and the counting/recording sink.
//!
//! One loaded object serves a whole invocation; the maps are shared by every run, so
//! each run resets what it reads. Map values are written and read as bytes in the
//! layouts of the C structs, kept beside each accessor.
// The generator calls libbpf's `bpf_prog_test_run_opts` directly (live-frames flags).
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use libbpf_rs::{Link, MapCore, MapFlags, Object, ObjectBuilder};

/// The compiled programs (an ELF object for libbpf).
pub const OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/router.bpf.o"));

/// Live-frames runs per `BPF_PROG_TEST_RUN` call of the generator: as many as the
/// kernel takes, since [`GenStopper`] interrupts a call with a signal. (Short calls
/// would cost a page-pool setup each and, paced, lose time between calls.)
const REPEAT: i32 = i32::MAX;

extern "C" fn on_usr1(_: libc::c_int) {}

/// Stops a generator thread inside `BPF_PROG_TEST_RUN`: the kernel checks for pending
/// signals between batches and returns `EINTR`.
pub struct GenStopper {
    thread: std::sync::atomic::AtomicU64,
    ready: AtomicBool,
}

impl Default for GenStopper {
    fn default() -> Self {
        Self::new()
    }
}

impl GenStopper {
    /// A stopper with no thread registered yet; installs a do-nothing SIGUSR1 handler
    /// (so the signal interrupts instead of killing).
    pub fn new() -> GenStopper {
        // SAFETY: the handler does nothing, which is async-signal-safe; without
        // SA_RESTART the interrupted call returns EINTR.
        unsafe { libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t) };
        GenStopper {
            thread: std::sync::atomic::AtomicU64::new(0),
            ready: AtomicBool::new(false),
        }
    }

    /// Registers the calling thread as the one to interrupt.
    pub fn register(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.thread.store(me as u64, Ordering::SeqCst);
        self.ready.store(true, Ordering::SeqCst);
    }

    /// Sends SIGUSR1 to the registered thread (nothing when none registered); call
    /// repeatedly until the thread has ended, as a signal may land between calls.
    pub fn interrupt(&self) {
        if self.ready.load(Ordering::SeqCst) {
            // SAFETY: the thread was registered and is joined only after the caller
            // stops interrupting it, so the pthread_t is live.
            unsafe {
                libc::pthread_kill(
                    self.thread.load(Ordering::SeqCst) as libc::pthread_t,
                    libc::SIGUSR1,
                )
            };
        }
    }
}

/// What the generator sends (`struct gen_cfg`).
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Pacing interval; 0 sends as fast as the core allows.
    pub interval_ns: u64,
    /// The interface frames are redirected into (in the generator's namespace).
    pub ifindex: u32,
    /// Destinations to cycle through (0 or 1: the template's own).
    pub ndst: u32,
    /// The first destination, as a host-order integer.
    pub dst_base: u32,
    /// The step between destinations.
    pub dst_step: u32,
    /// The frame itself; its first 42 (IPv4) or 62 (IPv6) bytes are the header
    /// template.
    pub frame: Vec<u8>,
}

impl GenConfig {
    fn bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(96);
        let hdr_len = super::stats::header_len(&self.frame);
        v.extend_from_slice(&self.interval_ns.to_ne_bytes());
        v.extend_from_slice(&self.ifindex.to_ne_bytes());
        v.extend_from_slice(&self.ndst.to_ne_bytes());
        v.extend_from_slice(&self.dst_base.to_ne_bytes());
        v.extend_from_slice(&self.dst_step.to_ne_bytes());
        v.extend_from_slice(&(hdr_len as u32).to_ne_bytes());
        v.extend_from_slice(&0u32.to_ne_bytes());
        let mut hdr = [0u8; 64];
        let n = hdr_len.min(self.frame.len());
        hdr[..n].copy_from_slice(&self.frame[..n]);
        v.extend_from_slice(&hdr);
        v
    }
}

/// What the sink counted (`struct sink_counts`), summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounts {
    /// IPv4/UDP frames.
    pub packets: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Other frames.
    pub other: u64,
    /// Records pushed to the ring buffer.
    pub recorded: u64,
    /// Records the ring buffer had no room for.
    pub lost_records: u64,
}

/// One frame's record from the sink (`struct record`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// The generator's sequence number.
    pub seq: u64,
    /// When the generator wrote it (CLOCK_MONOTONIC, ns).
    pub sent_ns: u64,
    /// When the sink saw it (CLOCK_MONOTONIC, ns).
    pub recv_ns: u64,
}

impl Record {
    /// Decodes a ring-buffer record; `None` when it is too short.
    pub fn parse(b: &[u8]) -> Option<Record> {
        let w = |i: usize| {
            b.get(i * 8..i * 8 + 8)
                .map(|s| u64::from_ne_bytes(s.try_into().unwrap_or([0; 8])))
        };
        Some(Record {
            seq: w(0)?,
            sent_ns: w(1)?,
            recv_ns: w(2)?,
        })
    }
}

fn err(op: &str, e: impl std::fmt::Display) -> String {
    format!("router XDP programs: {op}: {e}")
}

/// The loaded object.
pub struct BenchBpf {
    obj: Object,
}

impl BenchBpf {
    /// Loads [`OBJECT`] into the kernel (needs CAP_BPF).
    pub fn load() -> Result<BenchBpf, String> {
        let open = ObjectBuilder::default()
            .open_memory(OBJECT)
            .map_err(|e| err("opening the object", e))?;
        let obj = open.load().map_err(|e| err("loading (run as root)", e))?;
        Ok(BenchBpf { obj })
    }

    fn with_map<T>(
        &self,
        name: &str,
        f: impl FnOnce(&libbpf_rs::Map<'_>) -> libbpf_rs::Result<T>,
    ) -> Result<T, String> {
        let map = self
            .obj
            .maps()
            .find(|m| m.name() == name)
            .ok_or_else(|| err("finding a map", name))?;
        f(&map).map_err(|e| err(name, e))
    }

    fn put(&self, name: &str, value: &[u8]) -> Result<(), String> {
        self.with_map(name, |m| {
            m.update(&0u32.to_ne_bytes(), value, MapFlags::ANY)
        })
    }

    fn get(&self, name: &str) -> Result<Vec<u8>, String> {
        self.with_map(name, |m| m.lookup(&0u32.to_ne_bytes(), MapFlags::ANY))?
            .ok_or_else(|| err(name, "no entry 0"))
    }

    /// Attaches program `prog` (`xdp_fwd`, `xdp_pass` or `xdp_sink`) to `ifindex` as a
    /// BPF link, in the calling thread's network namespace; detached when the link drops.
    pub fn attach(&self, prog: &str, ifindex: u32) -> Result<Link, String> {
        let p = self
            .obj
            .progs_mut()
            .find(|p| p.name() == prog)
            .ok_or_else(|| err("finding a program", prog))?;
        p.attach_xdp(ifindex as i32)
            .map_err(|e| err(&format!("attaching {prog} to interface {ifindex}"), e))
    }

    /// Sets what the generator sends and restarts its sequence numbers and pacing.
    pub fn set_gen(&self, cfg: &GenConfig) -> Result<(), String> {
        self.put("gen_cfg", &cfg.bytes())?;
        self.put("gen_state", &[0u8; 24])
    }

    /// Frames the generator has sent since [`BenchBpf::set_gen`] (its next sequence
    /// number).
    pub fn gen_sent(&self) -> Result<u64, String> {
        let v = self.get("gen_state")?;
        Ok(u64::from_ne_bytes(
            v.get(0..8)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| err("gen_state", "short value"))?,
        ))
    }

    /// The reference forwarder's static next hop: out of `ifindex`, from `src` to `dst`.
    pub fn set_fwd(&self, ifindex: u32, src: [u8; 6], dst: [u8; 6]) -> Result<(), String> {
        let mut v = Vec::with_capacity(20);
        v.extend_from_slice(&ifindex.to_ne_bytes());
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(&[0; 4]);
        self.put("fwd_cfg", &v)
    }

    /// Whether the sink pushes a record per frame to the ring buffer.
    pub fn set_record(&self, on: bool) -> Result<(), String> {
        self.put("sink_record", &u32::from(on).to_ne_bytes())
    }

    /// What the sink counted so far, summed over CPUs.
    pub fn sink_counts(&self) -> Result<SinkCounts, String> {
        let per_cpu = self
            .with_map("sink_counts", |m| {
                m.lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            })?
            .unwrap_or_default();
        let mut s = SinkCounts::default();
        for v in per_cpu {
            let w = |i: usize| {
                v.get(i * 8..i * 8 + 8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                    .unwrap_or(0)
            };
            s.packets += w(0);
            s.bytes += w(1);
            s.other += w(2);
            s.recorded += w(3);
            s.lost_records += w(4);
        }
        Ok(s)
    }

    /// One `BPF_PROG_TEST_RUN` of the generator in live-frames mode, `repeat` runs;
    /// the raw return code (negative errno).
    fn test_run(&self, frame: &[u8], repeat: i32) -> Result<i32, String> {
        let p = self
            .obj
            .progs()
            .find(|p| p.name() == "xdp_gen")
            .ok_or_else(|| err("finding a program", "xdp_gen"))?;
        let fd = p.as_fd().as_raw_fd();
        // SAFETY: an all-zero `bpf_test_run_opts` is its "no options" value (integers
        // and null pointers).
        let mut opts: libbpf_rs::libbpf_sys::bpf_test_run_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_test_run_opts>() as _;
        opts.data_in = frame.as_ptr().cast();
        opts.data_size_in = frame.len() as u32;
        opts.repeat = repeat;
        opts.flags = libbpf_rs::libbpf_sys::BPF_F_TEST_XDP_LIVE_FRAMES;
        // SAFETY: `fd` is the loaded program's descriptor, owned by `self.obj` for the
        // whole call; `opts` points at `frame`, which outlives the call and which the
        // kernel only reads (it copies it into its own pages).
        Ok(unsafe { libbpf_rs::libbpf_sys::bpf_prog_test_run_opts(fd, &mut opts) })
    }

    /// Whether live frames work here: one run of the generator (configured with
    /// [`BenchBpf::set_gen`]; its frame goes wherever that says).
    pub fn probe_live(&self, frame: &[u8]) -> Result<(), String> {
        let rc = self.test_run(frame, 1)?;
        if rc < 0 {
            return Err(err(
                "BPF_PROG_TEST_RUN in live-frames mode",
                std::io::Error::from_raw_os_error(-rc),
            ));
        }
        Ok(())
    }

    /// Runs the generator in live-frames mode on the calling thread (which must be in
    /// the generator's namespace, pinned to its core) until `stop`; returns the
    /// `BPF_PROG_TEST_RUN` calls made.
    pub fn run_gen(&self, frame: &[u8], stop: &AtomicBool) -> Result<u64, String> {
        let mut calls = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let rc = self.test_run(frame, REPEAT)?;
            if rc < 0 && rc != -libc::EINTR {
                return Err(err(
                    "BPF_PROG_TEST_RUN in live-frames mode",
                    std::io::Error::from_raw_os_error(-rc),
                ));
            }
            calls += 1;
        }
        Ok(calls)
    }

    /// Reads the sink's records into `out` until `stop`, then drains what is left.
    pub fn collect_records(&self, out: &mut Vec<Record>, stop: &AtomicBool) -> Result<(), String> {
        let cell = std::cell::RefCell::new(out);
        let map = self
            .obj
            .maps()
            .find(|m| m.name() == "records")
            .ok_or_else(|| err("finding a map", "records"))?;
        let mut b = libbpf_rs::RingBufferBuilder::new();
        b.add(&map, |data: &[u8]| {
            if let Some(r) = Record::parse(data) {
                cell.borrow_mut().push(r);
            }
            0
        })
        .map_err(|e| err("records ring buffer", e))?;
        let rb = b.build().map_err(|e| err("records ring buffer", e))?;
        loop {
            let done = stop.load(Ordering::Relaxed);
            rb.consume().map_err(|e| err("reading records", e))?;
            if done {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_a_bpf_elf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
    }

    #[test]
    fn gen_config_layout_matches_the_c_struct() {
        let c = GenConfig {
            interval_ns: 1000,
            ifindex: 7,
            ndst: 3,
            dst_base: 0x0a00_0001,
            dst_step: 16,
            frame: (0..60).collect(),
        };
        let b = c.bytes();
        assert_eq!(b.len(), 96);
        assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 1000);
        assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 16);
        assert_eq!(
            u32::from_ne_bytes(b[24..28].try_into().unwrap()),
            42,
            "IPv4 header"
        );
        assert_eq!(b[32], 0);
        assert_eq!(b[32 + 41], 41, "42 header bytes copied");
        assert_eq!(b[32 + 42], 0, "nothing past the header");
        let mut six = c.clone();
        six.frame = super::super::stats::udp6_frame(128, [1; 6], [2; 6], [3; 16], [4; 16]).unwrap();
        let b = six.bytes();
        assert_eq!(
            u32::from_ne_bytes(b[24..28].try_into().unwrap()),
            62,
            "IPv6 header"
        );
        assert_eq!(&b[32..32 + 62], &six.frame[..62]);
    }

    #[test]
    fn records_parse() {
        let mut b = Vec::new();
        for v in [5u64, 100, 250] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(
            Record::parse(&b),
            Some(Record {
                seq: 5,
                sent_ns: 100,
                recv_ns: 250
            })
        );
        assert_eq!(Record::parse(&b[..20]), None);
    }
    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn map_values_match_the_kernel_layouts() {
        if !is_root() {
            return;
        }
        let b = BenchBpf::load().expect("load");
        b.set_gen(&GenConfig {
            interval_ns: 0,
            ifindex: 1,
            ndst: 0,
            dst_base: 0,
            dst_step: 0,
            frame: vec![0; 60],
        })
        .unwrap();
        b.set_fwd(1, [2; 6], [4; 6]).unwrap();
        b.set_record(true).unwrap();
        assert_eq!(b.gen_sent().unwrap(), 0);
        assert_eq!(b.sink_counts().unwrap(), SinkCounts::default());
    }

    /// The generator through a veth pair into the sink: every frame sent is counted and
    /// recorded once, in order, with its sequence number.
    #[test]
    fn generator_frames_reach_the_sink_numbered() {
        if !is_root() {
            return;
        }
        use crate::drivers::Netns;
        let (a, z) = (Netns::new("ta").unwrap(), Netns::new("tz").unwrap());
        a.ip(&format!(
            "link add a0 type veth peer name z0 netns {}",
            z.name
        ))
        .unwrap();
        a.ip("link set a0 up").unwrap();
        z.ip("link set z0 up").unwrap();
        a.wait_up("a0").unwrap();
        z.wait_up("z0").unwrap();
        let b = BenchBpf::load().unwrap();
        let z_index = super::super::topo::in_ns(&z, || crate::drivers::ifindex("z0")).unwrap();
        let _sink = super::super::topo::in_ns(&z, || b.attach("xdp_sink", z_index)).unwrap();
        let a_index = super::super::topo::in_ns(&a, || crate::drivers::ifindex("a0")).unwrap();
        let frame = super::super::stats::udp_frame(
            64,
            z.mac("z0").unwrap(),
            a.mac("a0").unwrap(),
            [198, 51, 100, 2],
            [203, 0, 113, 2],
        )
        .unwrap();
        b.set_record(true).unwrap();
        b.set_gen(&GenConfig {
            interval_ns: 100_000, // 10 kpps
            ifindex: a_index,
            ndst: 0,
            dst_base: 0,
            dst_step: 0,
            frame: frame.clone(),
        })
        .unwrap();
        let stop = AtomicBool::new(false);
        let stop_rec = AtomicBool::new(false);
        let stopper = GenStopper::new();
        let mut records = Vec::new();
        std::thread::scope(|s| {
            let g = s.spawn(|| {
                stopper.register();
                a.enter().unwrap();
                b.run_gen(&frame, &stop)
            });
            let r = s.spawn(|| b.collect_records(&mut records, &stop_rec));
            std::thread::sleep(std::time::Duration::from_millis(200));
            stop.store(true, Ordering::SeqCst);
            while !g.is_finished() {
                stopper.interrupt();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            assert!(g.join().unwrap().unwrap() >= 1);
            std::thread::sleep(std::time::Duration::from_millis(100));
            stop_rec.store(true, Ordering::SeqCst);
            r.join().unwrap().unwrap();
        });
        let sent = b.gen_sent().unwrap();
        let c = b.sink_counts().unwrap();
        assert!(sent > 0);
        assert_eq!(c.packets, sent, "{c:?}");
        assert_eq!(c.bytes, sent * 60);
        assert_eq!(c.recorded, sent);
        assert_eq!(records.len() as u64, sent);
        let mut t = super::super::stats::SeqTracker::default();
        for r in &records {
            assert!(r.recv_ns >= r.sent_ns);
            t.record(r.seq);
        }
        assert_eq!((t.lost(sent), t.duplicates, t.reordered), (0, 0, 0));
    }
}
