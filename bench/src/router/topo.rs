//! The topology of `dpbench router` and the three subjects on it.
//!
//! ```text
//!   ns gen            ns rtr                       ns sink
//!   g0 (198.51.100.2) ── r0 (198.51.100.1)   r1 (203.0.113.1) ── s0 (203.0.113.2)
//! ```
//!
//! Namespaces are named `dpb-<pid>-{gen,rtr,sink}` and removed by their Drop guards
//! (also on a panic, and on Ctrl-C, which ends the run early). The sink program stays on
//! `s0` for the whole invocation; each subject puts its programs or its process on the
//! router namespace and takes them away again when it is dropped.
// kill(2) to stop the dataplane with SIGTERM.
#![allow(unsafe_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use libbpf_rs::Link;

use super::bpf::BenchBpf;
use crate::drivers::Netns;

/// Generator side address.
pub const GEN_IP: [u8; 4] = [198, 51, 100, 2];
/// The router's address on the generator side.
pub const R0_IP: [u8; 4] = [198, 51, 100, 1];
/// The router's address on the sink side.
pub const R1_IP: [u8; 4] = [203, 0, 113, 1];
/// The sink's address: the destination of every frame unless routes are varied.
pub const SINK_IP: [u8; 4] = [203, 0, 113, 2];
/// Generator side IPv6 address (2001:db8:1::2).
pub const GEN_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
/// The sink's IPv6 address (2001:db8:2::2).
pub const SINK_IP6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn dotted(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

fn mac_text(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs `f` on a thread that has entered `ns` (links and descriptors it makes stay
/// valid after the thread ends).
pub fn in_ns<T: Send>(
    ns: &Netns,
    f: impl FnOnce() -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            ns.enter()?;
            f()
        })
        .join()
        .map_err(|_| "a namespace helper thread panicked".to_string())?
    })
}

fn ifindex_in(ns: &Netns, dev: &str) -> Result<u32, String> {
    let out = ns.ip(&format!("-o link show dev {dev}"))?;
    out.split(':')
        .next()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("no interface index of {dev} in {out:?}"))
}

/// The three namespaces, two veth pairs, and the sink program on `s0`.
pub struct Topology {
    /// The generator's namespace (`g0`).
    pub gen: Netns,
    /// The router's namespace (`r0`, `r1`).
    pub rtr: Netns,
    /// The sink's namespace (`s0`).
    pub sink: Netns,
    /// MAC addresses.
    pub g0_mac: [u8; 6],
    /// MAC of `r0`.
    pub r0_mac: [u8; 6],
    /// MAC of `r1`.
    pub r1_mac: [u8; 6],
    /// MAC of `s0`.
    pub s0_mac: [u8; 6],
    /// Interface index of `g0` in `gen`.
    pub g0_index: u32,
    /// Interface index of `r0` in `rtr`.
    pub r0_index: u32,
    /// Interface index of `r1` in `rtr`.
    pub r1_index: u32,
    _sink_link: Link,
}

impl Topology {
    /// Makes the namespaces and links and attaches the sink.
    pub fn new(bpf: &BenchBpf) -> Result<Topology, String> {
        let gen = Netns::new("gen")?;
        let rtr = Netns::new("rtr")?;
        let sink = Netns::new("sink")?;
        gen.ip(&format!(
            "link add g0 type veth peer name r0 netns {}",
            rtr.name
        ))?;
        rtr.ip(&format!(
            "link add r1 type veth peer name s0 netns {}",
            sink.name
        ))?;
        for (ns, dev, addr, addr6) in [
            (&gen, "g0", "198.51.100.2/24", "2001:db8:1::2/64"),
            (&rtr, "r0", "198.51.100.1/24", "2001:db8:1::1/64"),
            (&rtr, "r1", "203.0.113.1/24", "2001:db8:2::1/64"),
            (&sink, "s0", "203.0.113.2/24", "2001:db8:2::2/64"),
        ] {
            ns.ip(&format!("link set {dev} addrgenmode none"))?;
            ns.ip(&format!("addr add {addr} dev {dev}"))?;
            ns.ip(&format!("addr add {addr6} dev {dev} nodad"))?;
            ns.ip(&format!("link set {dev} up"))?;
        }
        for (ns, dev) in [(&gen, "g0"), (&rtr, "r0"), (&rtr, "r1"), (&sink, "s0")] {
            ns.wait_up(dev)?;
        }
        let s0_mac = sink.mac("s0")?;
        // Linux's static neighbor for the sink (used only while Linux forwards).
        rtr.ip(&format!(
            "neigh replace {} lladdr {} dev r1 nud permanent",
            dotted(SINK_IP),
            mac_text(s0_mac)
        ))?;
        rtr.ip(&format!(
            "-6 neigh replace 2001:db8:2::2 lladdr {} dev r1 nud permanent",
            mac_text(s0_mac)
        ))?;
        let s0_index = ifindex_in(&sink, "s0")?;
        let sink_link = in_ns(&sink, || bpf.attach("xdp_sink", s0_index))?;
        Ok(Topology {
            g0_mac: gen.mac("g0")?,
            r0_mac: rtr.mac("r0")?,
            r1_mac: rtr.mac("r1")?,
            s0_mac,
            g0_index: ifindex_in(&gen, "g0")?,
            r0_index: ifindex_in(&rtr, "r0")?,
            r1_index: ifindex_in(&rtr, "r1")?,
            gen,
            rtr,
            sink,
            _sink_link: sink_link,
        })
    }

    fn sh_in_rtr(&self, script: &str) -> Result<(), String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.rtr.name, "sh", "-c", script])
            .output()
            .map_err(|e| format!("running ip netns exec: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// The `dataplane run` configuration for the topology: AF_XDP take-all on `r0` and
/// `r1`, a static neighbor for the sink, `routes` extra /28 routes from 10.0.0.0 via
/// the sink, workers on `cores`, busy-polling.
pub fn dataplane_toml(s0_mac: [u8; 6], cores: &[usize], routes: u32) -> String {
    let mut s =
        String::from("name = \"dpbench-router\"\nforwarding = true\nlog-level = \"warn\"\n\n");
    for (name, v4, v6) in [
        ("r0", "198.51.100.1/24", "2001:db8:1::1/64"),
        ("r1", "203.0.113.1/24", "2001:db8:2::1/64"),
    ] {
        s += &format!(
            "[[ports]]\nname = \"{name}\"\ndriver = \"afxdp\"\ninterface = \"{name}\"\nqueues = 1\nsteering = \"all\"\nipv4 = [\"{v4}\"]\nipv6 = [\"{v6}\"]\n\n"
        );
    }
    for i in 0..routes {
        let a = (10u32 << 24) + i * 16;
        s += &format!(
            "[[routes]]\nprefix = \"{}/28\"\nvia = \"{}\"\n",
            dotted(a.to_be_bytes()),
            dotted(SINK_IP)
        );
    }
    s += &format!(
        "\n[[neighbors]]\nport = \"r1\"\naddress = \"{}\"\nmac = \"{mac}\"\n\n[[neighbors]]\nport = \"r1\"\naddress = \"2001:db8:2::2\"\nmac = \"{mac}\"\n\n[workers]\ncores = {cores:?}\nidle = \"busy-poll\"\n",
        dotted(SINK_IP),
        mac = mac_text(s0_mac)
    );
    s
}

/// The autogroup line of a process (`/autogroup-N nice K`).
fn autogroup(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/autogroup")).unwrap_or_default()
}

/// Raises the scheduling weight of the autogroup (session) of `pid` to nice -20, once
/// that process has its own session (`setsid`): with autogroups, CPU time is shared
/// between sessions first, so a thread's own nice value counts only inside its session.
pub fn boost_autogroup(pid: u32) -> Result<(), String> {
    let me = autogroup("self");
    let name = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    if pid != std::process::id() {
        while name(&autogroup(&pid.to_string())) == name(&me) {
            if Instant::now() > deadline {
                return Err(format!(
                    "raising priority (skip with --no-boost): process {pid} did not get a session of its own"
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let path = format!("/proc/{pid}/autogroup");
    std::fs::write(&path, "-20")
        .map_err(|e| format!("raising priority (skip with --no-boost): writing {path}: {e}"))
}

/// `ip -batch` lines adding the `routes` /28s from 10.0.0.0 via the sink (the same
/// routes as [`dataplane_toml`]'s).
pub fn linux_routes(routes: u32) -> String {
    (0..routes)
        .map(|i| {
            let a = (10u32 << 24) + i * 16;
            format!(
                "route add {}/28 via {}\n",
                dotted(a.to_be_bytes()),
                dotted(SINK_IP)
            )
        })
        .collect()
}

/// Which router is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `dataplane run` on AF_XDP.
    Dataplane,
    /// Linux kernel forwarding.
    Linux,
    /// The XDP-native reference forwarder.
    XdpRef,
}

impl Subject {
    /// The name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Dataplane => "dataplane",
            Subject::Linux => "linux",
            Subject::XdpRef => "xdp_ref",
        }
    }
}

/// A subject set up on the router namespace; taken down when dropped.
pub struct Running<'t> {
    topo: &'t Topology,
    subject: Subject,
    link: Option<Link>,
    child: Option<Child>,
    files: Vec<std::path::PathBuf>,
    /// Linux got the extra routes (removed again at teardown).
    routes: bool,
}

/// How a subject is started.
pub struct SubjectSetup<'a> {
    /// The dataplane binary.
    pub dataplane_bin: &'a std::path::Path,
    /// The subject's cores (the dataplane's workers; Linux's RPS mask).
    pub cores: &'a [usize],
    /// Extra routes for the dataplane.
    pub routes: u32,
    /// Run the dataplane at nice -20, so that other processes on a shared machine
    /// time-slice its polling worker less.
    pub boost: bool,
}

fn cpu_mask(cores: &[usize]) -> String {
    let m = cores.iter().fold(0u128, |m, &c| m | (1u128 << c.min(127)));
    format!("{m:x}")
}

impl<'t> Running<'t> {
    /// Sets `subject` up on the router namespace.
    pub fn start(
        topo: &'t Topology,
        bpf: &BenchBpf,
        subject: Subject,
        setup: &SubjectSetup<'_>,
    ) -> Result<Running<'t>, String> {
        let mut r = Running {
            topo,
            subject,
            link: None,
            child: None,
            files: Vec::new(),
            routes: false,
        };
        match subject {
            Subject::XdpRef => {
                bpf.set_fwd(topo.r1_index, topo.r1_mac, topo.s0_mac)?;
                r.link = Some(in_ns(&topo.rtr, || bpf.attach("xdp_fwd", topo.r0_index))?);
            }
            Subject::Linux => {
                // A redirect into a veth arrives only where the peer has an XDP program.
                r.link = Some(in_ns(&topo.rtr, || bpf.attach("xdp_pass", topo.r0_index))?);
                // The veth's receive work runs on the generator's core; RPS moves the
                // forwarding to the subject's cores (on the generator's own core it starves).
                topo.sh_in_rtr(&format!(
                    "for q in /sys/class/net/r0/queues/rx-*; do echo {} > $q/rps_cpus; done; sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
                    cpu_mask(setup.cores)
                ))?;
                if setup.routes > 0 {
                    // The same /28s as the dataplane's, loaded in one `ip -batch`.
                    let path = std::env::temp_dir().join(format!("{}-routes", topo.rtr.name));
                    std::fs::write(&path, linux_routes(setup.routes))
                        .map_err(|e| format!("writing {}: {e}", path.display()))?;
                    r.files.push(path.clone());
                    r.routes = true;
                    topo.rtr.ip(&format!("-batch {}", path.display()))?;
                }
            }
            Subject::Dataplane => r.start_dataplane(setup)?,
        }
        Ok(r)
    }

    fn start_dataplane(&mut self, setup: &SubjectSetup<'_>) -> Result<(), String> {
        let topo = self.topo;
        let base = std::env::temp_dir().join(format!("{}-dataplane", topo.rtr.name));
        let conf = base.with_extension("toml");
        let out = base.with_extension("out");
        let errf = base.with_extension("err");
        self.files = vec![conf.clone(), out.clone(), errf.clone()];
        std::fs::write(
            &conf,
            dataplane_toml(topo.s0_mac, setup.cores, setup.routes),
        )
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
        let file = |p: &std::path::Path| {
            std::fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))
        };
        let mut cmd = Command::new("ip");
        // SAFETY: the closure runs in the forked child before exec and only calls
        // prctl(2), which is async-signal-safe. It asks for SIGTERM when this thread
        // (the main thread, which drops every Running) dies, so a killed dpbench does
        // not leave a router running (Drop guards cover everything short of SIGKILL).
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .args(["netns", "exec", &topo.rtr.name])
            .args(if setup.boost {
                // Its own session, so its own autogroup, which boost_autogroup raises.
                &["setsid", "nice", "-n", "-20"][..]
            } else {
                &[][..]
            })
            .arg(setup.dataplane_bin)
            .args(["run", "--config"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(file(&out)?)
            .stderr(file(&errf)?)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", setup.dataplane_bin.display()))?;
        let pid = child.id();
        self.child = Some(child);
        if setup.boost {
            boost_autogroup(pid)?;
        }
        // Ready once both ports carry its XDP program (plus a moment for the sockets).
        let deadline = Instant::now() + Duration::from_secs(20 + u64::from(setup.routes / 200));
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    let err = std::fs::read_to_string(&errf).unwrap_or_default();
                    return Err(format!(
                        "dataplane run exited ({status}): {}",
                        err.lines().last().unwrap_or("").trim()
                    ));
                }
            }
            let xdp = |dev: &str| {
                topo.rtr
                    .ip(&format!("link show dev {dev}"))
                    .is_ok_and(|s| s.contains("xdp"))
            };
            if xdp("r0") && xdp("r1") {
                break;
            }
            if Instant::now() > deadline {
                return Err("dataplane run: no XDP program on r0 and r1 in time".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(())
    }

    /// Time on a CPU and time runnable but waiting (ns) of each thread of the dataplane
    /// process, by thread id; empty for the other subjects.
    pub fn thread_times(&self) -> Vec<(u32, u64, u64)> {
        let Some(c) = &self.child else {
            return Vec::new();
        };
        let dir = format!("/proc/{}/task", c.id());
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        tasks
            .filter_map(|t| {
                let t = t.ok()?;
                let tid: u32 = t.file_name().to_str()?.parse().ok()?;
                let text = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
                let (run, wait) = super::stats::schedstat(&text)?;
                Some((tid, run, wait))
            })
            .collect()
    }

    /// Stops the subject; for the dataplane, returns its final report (stdout).
    pub fn stop(mut self) -> Result<String, String> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<String, String> {
        self.link = None;
        let mut report = String::new();
        match self.subject {
            Subject::Linux => {
                let _ = self.topo.sh_in_rtr(
                    "sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0; for q in /sys/class/net/r0/queues/rx-*; do echo 0 > $q/rps_cpus; done",
                );
                if std::mem::take(&mut self.routes) {
                    let _ = self.topo.rtr.ip("route flush root 10.0.0.0/8");
                }
            }
            Subject::Dataplane => {
                if let Some(mut c) = self.child.take() {
                    // SAFETY: kill(2) on the pid of our own child, which has not been reaped.
                    unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
                    let deadline = Instant::now() + Duration::from_secs(10);
                    let status = loop {
                        match c.try_wait() {
                            Ok(Some(s)) => break Some(s),
                            Ok(None) if Instant::now() < deadline => {
                                std::thread::sleep(Duration::from_millis(20))
                            }
                            _ => {
                                let _ = c.kill();
                                let _ = c.wait();
                                break None;
                            }
                        }
                    };
                    if let Some(out) = self.files.get(1) {
                        if let Ok(mut f) = std::fs::File::open(out) {
                            let _ = f.read_to_string(&mut report);
                        }
                    }
                    if status.is_none_or(|s| !s.success()) {
                        let err = self
                            .files
                            .get(2)
                            .and_then(|p| std::fs::read_to_string(p).ok())
                            .unwrap_or_default();
                        return Err(format!(
                            "dataplane run did not stop cleanly ({status:?}): {}",
                            err.trim()
                        ));
                    }
                }
                // A fresh AF_XDP bind right after a close may get EBUSY.
                std::thread::sleep(Duration::from_millis(200));
            }
            Subject::XdpRef => {}
        }
        for f in self.files.drain(..) {
            let _ = std::fs::remove_file(f);
        }
        Ok(report)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_text() {
        assert_eq!(cpu_mask(&[1]), "2");
        assert_eq!(cpu_mask(&[0, 1]), "3");
        assert_eq!(cpu_mask(&[4]), "10");
        assert_eq!(mac_text([2, 0xab, 0, 0, 0, 1]), "02:ab:00:00:00:01");
        assert_eq!(dotted([10, 0, 1, 16]), "10.0.1.16");
    }

    #[test]
    fn dataplane_config_has_ports_neighbor_routes_and_cores() {
        let t = dataplane_toml([2, 0, 0, 0, 0, 9], &[0, 1], 2);
        assert_eq!(t.matches("[[ports]]").count(), 2);
        assert!(t.contains("driver = \"afxdp\""));
        assert!(t.contains("address = \"203.0.113.2\"\nmac = \"02:00:00:00:00:09\""));
        assert!(t.contains("address = \"2001:db8:2::2\"\nmac = \"02:00:00:00:00:09\""));
        assert!(t.contains("prefix = \"10.0.0.0/28\""));
        assert!(t.contains("prefix = \"10.0.0.16/28\""));
        assert!(!t.contains("10.0.0.32/28"));
        assert!(t.contains("cores = [0, 1]"));
        assert_eq!(
            dataplane_toml([0; 6], &[1], 0)
                .matches("[[routes]]")
                .count(),
            0
        );
        assert_eq!(
            linux_routes(2),
            "route add 10.0.0.0/28 via 203.0.113.2\nroute add 10.0.0.16/28 via 203.0.113.2\n"
        );
    }
}
