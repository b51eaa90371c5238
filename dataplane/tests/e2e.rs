//! End to end, as root: Linux hosts h1 and h2 routed through `dataplane run` in a
//! namespace of its own.
//!
//! ```text
//! h1 (198.51.100.2/24, 2001:db8:1::2/64) veth0 -- r-h1 [r: dataplane] r-h2 -- veth0 h2 (203.0.113.2/24, 2001:db8:2::2/64)
//! ```
//!
//! The hosts are the kernel's own stack; the router namespace has no kernel addresses
//! (IPv6 address generation off, forwarding off), so a datagram that crosses can only
//! have crossed through us. Checked on AF_PACKET, AF_XDP and TAP (the TAP device bridged
//! to the veth inside r), over IPv4 and IPv6: UDP echoes from h1 to h2; ICMP destination
//! unreachable from the router for a prefix it declares unreachable and ICMP time
//! exceeded for a TTL / hop limit of 1 (a traceroute's first probe), both seen by h1's
//! socket; 4 MiB over TCP from h1 to h2, intact; exit status 0 on SIGTERM with per-port
//! counters that match the traffic; no XDP program left on the router's ports. On a
//! router of its own per driver, the kernel's own tools from h1: `ping` over IPv4 and
//! IPv6 (every echo answered, TTL / hop limit 63), `tracepath` over both (the router's
//! h1-side address as hop 1, h2 reached at hop 2) and an `iperf3` TCP transfer to h2
//! for 2 s (the data arrived and crossed the router). And the startup errors: a missing
//! interface, missing privileges (root with no capabilities) and a worker core the
//! machine lacks each give one line and exit status 1. The main job's live part,
//! `scripts/topology.sh`, runs on the debug binary: it shows what it should and removes
//! its namespaces, also on Ctrl-C.
//!
//! Each test makes its namespaces with unique names and removes them by a Drop guard,
//! also when it fails. Without root the tests that need it say so and pass. The
//! namespaces, the topology, the router process and the probes are in `common/`, shared
//! with other tests that run `dataplane` between Linux hosts.

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn routes_h1_to_h2(driver: &str) {
    if !is_root() {
        eprintln!("skipped: the end-to-end test needs root (namespaces, raw sockets)");
        return;
    }
    let t = Topology::new(driver == "tap");
    let mut router = Router::start(&t.r, driver);
    if driver == "tap" {
        t.attach_taps();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let v4: SocketAddr = "203.0.113.2:7007".parse().unwrap();
    let v6: SocketAddr = "[2001:db8:2::2]:7007".parse().unwrap();
    let servers = [
        echo_server(&t.h2, v4, stop.clone()),
        echo_server(&t.h2, v6, stop.clone()),
    ];
    router.assert_running();
    let got4 = echo_client(&t.h1, v4, 20);
    router.assert_running();
    let got6 = echo_client(&t.h1, v6, 20);
    let unreach4 = icmp_error(&t.h1, "10.1.2.3:7".parse().unwrap(), None);
    let unreach6 = icmp_error(&t.h1, "[2001:db8:99::1]:7".parse().unwrap(), None);
    // A traceroute's first probe: TTL / hop limit 1 expires at the router.
    let expired4 = icmp_error(&t.h1, v4, Some(1));
    let expired6 = icmp_error(&t.h1, v6, Some(1));
    let bulk = 4 << 20;
    let tcp4 = tcp_bulk(&t.h1, &t.h2, "203.0.113.2:7008".parse().unwrap(), bulk);
    let tcp6 = tcp_bulk(&t.h1, &t.h2, "[2001:db8:2::2]:7008".parse().unwrap(), bulk);
    stop.store(true, Ordering::Relaxed);
    for s in servers {
        s.join().unwrap();
    }
    let (status, out, err) = router.stop();
    eprintln!("dataplane run ({driver}) stderr:\n{err}stdout:\n{out}");
    eprintln!(
        "unreachable errno: v4 {unreach4:?}, v6 {unreach6:?}; \
         time exceeded errno: v4 {expired4:?}, v6 {expired6:?}"
    );
    assert_eq!(
        (got4, got6),
        (20, 20),
        "router stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(status.success(), "{status}: {err}\n{out}");
    // Linux's mapping: ICMP net/host unreachable → ENETUNREACH/EHOSTUNREACH; ICMPv6
    // no route → ENETUNREACH, address unreachable → EHOSTUNREACH, reject route or
    // administratively prohibited → EACCES.
    let want4 = [Some(libc::ENETUNREACH), Some(libc::EHOSTUNREACH)];
    let want6 = [
        Some(libc::ENETUNREACH),
        Some(libc::EHOSTUNREACH),
        Some(libc::EACCES),
    ];
    assert!(
        want4.contains(&unreach4) && want6.contains(&unreach6),
        "ICMP unreachable from the router: v4 {unreach4:?}, v6 {unreach6:?}\n{out}"
    );
    // Linux maps time exceeded to EHOSTUNREACH (both families).
    assert_eq!(
        (expired4, expired6),
        (Some(libc::EHOSTUNREACH), Some(libc::EHOSTUNREACH)),
        "time exceeded from the router\n{out}"
    );
    assert!(out.contains("ttl_expired="), "{out}");
    let icmp = counter(&out, "icmp-errors");
    assert!(icmp.len() == 2 && icmp[0].1 >= 4, "{out}");
    assert_eq!(
        (tcp4, tcp6),
        (bulk, bulk),
        "TCP bytes intact through the router\n{out}"
    );
    // Nothing left attached: the XDP program went with the driver.
    for port in ["r-h1", "r-h2"].iter().filter(|_| driver == "afxdp") {
        let link = t.r.ip(&format!("link show dev {port}"));
        assert!(
            !link.contains("xdp"),
            "{port} after the router stopped: {link}"
        );
    }
    let fwd = counter(&out, "forwarded");
    assert_eq!(fwd.len(), 2, "a counters line per port:\n{out}");
    // The 40 echoes out of r-h1 (a few more where a datagram was sent again after one
    // was lost while the router resolved h2) and the TCP acknowledgements; the 40
    // datagrams and the TCP data out of r-h2.
    let tcp_segments = (2 * bulk / 1500) as u64;
    let (to_h1, to_h2) = (fwd[0].1, fwd[1].1);
    assert!(to_h1 >= 40, "r-h1 forwarded {to_h1}:\n{out}");
    assert!(to_h2 >= 40 + tcp_segments, "r-h2 forwarded {to_h2}:\n{out}");
    assert!(out.contains("drops:"), "{out}");
}

/// The kernel's own tools from h1 across the router on `driver` (see [`Tools::check`]).
fn linux_tools_through_router(driver: &str) {
    if !is_root() {
        eprintln!("skipped: the end-to-end test needs root (namespaces, raw sockets)");
        return;
    }
    let t = Topology::new(driver == "tap");
    let mut router = Router::start(&t.r, driver);
    if driver == "tap" {
        t.attach_taps();
    }
    router.assert_running();
    let tools = linux_tools(&t);
    let (status, out, err) = router.stop();
    eprintln!("dataplane run ({driver}) stderr:\n{err}stdout:\n{out}");
    assert!(status.success(), "{status}: {err}\n{out}");
    tools.check(&t, &out);
    // tracepath's probes with TTL / hop limit 1, answered by us: at least one per family.
    let expired: u64 = out
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("ttl_expired=")?.parse::<u64>().ok())
        .sum();
    assert!(expired >= 2, "ttl_expired {expired}:\n{out}");
    // The iperf3 data crossed: r-h2 forwarded at least what h2 counted, in full frames.
    let (_, received, _) = iperf3_totals(&tools.iperf3);
    let fwd = counter(&out, "forwarded");
    assert_eq!(fwd.len(), 2, "a counters line per port:\n{out}");
    assert!(
        fwd[1].1 >= received.unwrap() / 1500,
        "r-h2 forwarded {} for {received:?} bytes:\n{out}",
        fwd[1].1
    );
}

/// What the kernel's own tools in h1 showed across the router.
struct Tools {
    ping4: String,
    ping6: String,
    trace4: String,
    trace6: String,
    iperf3: String,
}

/// From h1: `ping` to h2 over IPv4 and IPv6, `tracepath` to h2 over both, and an
/// `iperf3` TCP transfer from h1 to h2 for 2 s.
fn linux_tools(t: &Topology) -> Tools {
    let ping = |to: &str| {
        t.h1.tool("ping", &["-c", "3", "-i", "0.2", "-W", "2", to])
            .1
    };
    let trace = |to: &str| t.h1.tool("tracepath", &["-n", "-m", "5", to]).1;
    let (ping4, ping6) = (ping("203.0.113.2"), ping("2001:db8:2::2"));
    let (trace4, trace6) = (trace("203.0.113.2"), trace("2001:db8:2::2"));
    let iperf3 = {
        let _server = Iperf3Server::start(&t.h2, "203.0.113.2");
        t.h1.tool("iperf3", &["-c", "203.0.113.2", "-t", "2", "-J"])
            .1
    };
    eprintln!("{ping4}\n{ping6}\n{trace4}\n{trace6}");
    Tools {
        ping4,
        ping6,
        trace4,
        trace6,
        iperf3,
    }
}

impl Tools {
    /// Every echo answered, each reply with TTL / hop limit 63 (h2's 64 less our
    /// hop); the router's h1-side address as tracepath's hop 1 (our ICMP time
    /// exceeded) and h2 reached at hop 2; iperf3's bytes arrived. `out`: the router's
    /// report, for the messages.
    fn check(&self, t: &Topology, out: &str) {
        for (ping, to) in [(&self.ping4, "203.0.113.2"), (&self.ping6, "2001:db8:2::2")] {
            assert!(
                ping.contains("3 packets transmitted, 3 received, 0% packet loss"),
                "ping {to} from h1:\n{ping}\nrouter:\n{out}"
            );
            let replies: Vec<&str> = ping
                .lines()
                .filter(|l| l.contains(&format!("bytes from {to}")))
                .collect();
            // iputils prints the IPv6 hop limit as `ttl=` (older versions `hlim=`).
            assert!(
                replies.len() == 3
                    && replies
                        .iter()
                        .all(|l| l.contains(" ttl=63 ") || l.contains(" hlim=63 ")),
                "ping {to} from h1: three replies with TTL / hop limit 63:\n{ping}"
            );
        }
        for (trace, router, to) in [
            (&self.trace4, "198.51.100.1", "203.0.113.2"),
            (&self.trace6, "2001:db8:1::1", "2001:db8:2::2"),
        ] {
            let hops = tracepath_hops(trace);
            let first: Vec<_> = hops.iter().filter(|h| h.0 == 1).collect();
            assert!(
                !first.is_empty() && first.iter().all(|h| h.1 == router && !h.2),
                "tracepath {to} from h1: hop 1 must be the router ({router}):\n{trace}\nrouter:\n{out}"
            );
            assert_eq!(
                hops.last(),
                Some(&(2, to.to_string(), true)),
                "tracepath {to} from h1: h2 reached at hop 2:\n{trace}"
            );
        }
        let (sent, received, retransmits) = iperf3_totals(&self.iperf3);
        let (sent, received) = (
            sent.unwrap_or_else(|| panic!("iperf3 -J without sum_sent:\n{}", self.iperf3)),
            received.unwrap_or_else(|| panic!("iperf3 -J without sum_received:\n{}", self.iperf3)),
        );
        eprintln!(
            "iperf3 h1 -> h2: sent {sent} bytes, received {received}, retransmits {retransmits:?}"
        );
        // iperf3's server stops counting when the client's end-of-test message arrives
        // on the control connection, which can overtake data still in h1's send buffer
        // or h2's receive buffer (seen on a bare veth pair too: 4122214400 sent,
        // 4121710904 received): received can fall short of sent by at most what those
        // buffers hold. That TCP delivers every byte intact is `tcp_bulk`'s check.
        let in_buffers = tcp_buffer_max(&t.h1, "tcp_wmem") + tcp_buffer_max(&t.h2, "tcp_rmem");
        assert!(
            sent > 0 && received > 0 && received <= sent && sent - received <= in_buffers,
            "iperf3 h1 -> h2: sent {sent}, received {received} (buffers {in_buffers}):\n{}\nrouter:\n{out}",
            self.iperf3
        );
    }
}

/// tracepath's hop lines (`N:  ADDRESS  TIME [reached]`, not the `N?:` probes of the
/// path MTU): hop number, address, whether the destination was reached.
fn tracepath_hops(out: &str) -> Vec<(u32, String, bool)> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let hop = words.next()?.strip_suffix(':')?.parse().ok()?;
            let addr = words.next()?.to_string();
            Some((hop, addr, l.contains("reached")))
        })
        .collect()
}

#[test]
fn afpacket_router_routes_between_linux_hosts() {
    routes_h1_to_h2("afpacket");
}

#[test]
fn tap_router_routes_between_linux_hosts() {
    routes_h1_to_h2("tap");
}

#[test]
fn afxdp_router_routes_between_linux_hosts() {
    routes_h1_to_h2("afxdp");
}

#[test]
fn afpacket_router_carries_ping_tracepath_and_iperf3() {
    linux_tools_through_router("afpacket");
}

#[test]
fn tap_router_carries_ping_tracepath_and_iperf3() {
    linux_tools_through_router("tap");
}

#[test]
fn afxdp_router_carries_ping_tracepath_and_iperf3() {
    linux_tools_through_router("afxdp");
}

#[test]
fn run_with_a_missing_interface_fails_with_one_line() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let r = Netns::new("r");
    let (code, err) = run_once(&r, &[], &router_toml("afpacket"));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("r-h1") && err.contains("no such device"),
        "{err}"
    );
}

#[test]
fn run_without_privileges_fails_with_one_line_naming_them() {
    if !is_root() {
        eprintln!("skipped: needs root to make the namespace");
        return;
    }
    let r = Netns::new("r");
    r.ip("link add r-h1 type veth peer name r-h2");
    r.ip("link set r-h1 up");
    r.ip("link set r-h2 up");
    // Root without capabilities: setpriv (util-linux) empties the bounding set, so
    // the exec'd dataplane has none.
    let no_caps = [
        "setpriv",
        "--bounding-set",
        "-all",
        "--inh-caps",
        "-all",
        "--",
    ];
    for (driver, needs) in [("afpacket", "CAP_NET_RAW"), ("afxdp", "CAP_BPF")] {
        let (code, err) = run_once(&r, &no_caps, &router_toml(driver));
        assert_eq!(code, Some(1), "{driver}: {err}");
        assert_eq!(err.lines().count(), 1, "{driver}: {err}");
        assert!(
            err.contains("permission denied") && err.contains(needs),
            "{driver}: {err}"
        );
    }
}

#[test]
fn run_with_a_core_this_machine_lacks_fails_with_one_line() {
    let path = std::env::temp_dir().join(format!("dpe2e-{}-cores.toml", std::process::id()));
    let toml = router_toml("afpacket").replace("cores = [0]", "cores = [65535]");
    std::fs::write(&path, toml).unwrap();
    let _f = TempFile(path.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("workers.cores") && err.contains("65535"),
        "{err}"
    );
}

/// The parsers of the tools' output, on output captured from them here.
#[test]
fn tracepath_and_iperf3_output_parse() {
    let trace = " 1?: [LOCALHOST]                      pmtu 1500\n 1:  198.51.100.1                                          0.161ms \n 1:  198.51.100.1                                          0.065ms \n 2:  203.0.113.2                                           0.075ms reached\n     Resume: pmtu 1500 hops 2 back 2 \n";
    let hop = |n, a: &str, r| (n, a.to_string(), r);
    assert_eq!(
        tracepath_hops(trace),
        [
            hop(1, "198.51.100.1", false),
            hop(1, "198.51.100.1", false),
            hop(2, "203.0.113.2", true)
        ]
    );
    let json = "{\"end\": {\"streams\": [{\"sender\": {\"bytes\":\t1}}],\n\t\t\"sum_sent\":\t{\n\t\t\t\"start\":\t0,\n\t\t\t\"bytes\":\t4122214400,\n\t\t\t\"retransmits\":\t15640,\n\t\t\t\"sender\":\ttrue\n\t\t},\n\t\t\"sum_received\":\t{\n\t\t\t\"bytes\":\t4121710904,\n\t\t\t\"sender\":\ttrue\n\t\t}}}";
    assert_eq!(
        iperf3_totals(json),
        (Some(4122214400), Some(4121710904), Some(15640))
    );
    assert_eq!(iperf3_totals("iperf3: error"), (None, None, None));
}

/// The helpers' configurations, as other tests extend them, are what `run` accepts: top-level
/// keys land before the first table and appended tables after the last.
#[test]
fn router_configs_with_extra_keys_and_tables_pass_check() {
    for driver in ["afxdp", "afpacket", "tap"] {
        let toml = router_toml_with(
            driver,
            "log-level = \"debug\"\n",
            "\n[[routes]]\nprefix = \"192.0.2.0/24\"\nvia = \"203.0.113.2\"\n",
        );
        let path =
            std::env::temp_dir().join(format!("dpe2e-{}-check-{driver}.toml", std::process::id()));
        std::fs::write(&path, &toml).unwrap();
        let _f = TempFile(path.clone());
        let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{driver}: {}\n{toml}",
            String::from_utf8_lossy(&out.stderr)
        );
        for want in [
            "log level: debug",
            "192.0.2.0/24 via 203.0.113.2",
            "10.0.0.0/8 unreachable",
            "2001:db8:99::/48 unreachable",
            "198.51.100.1/24",
            "2001:db8:2::1/64",
            "idle poll-then-sleep",
        ] {
            assert!(
                summary.contains(want),
                "{driver}: no {want:?} in\n{summary}"
            );
        }
        let ports = summary
            .lines()
            .filter(|l| l.starts_with("  r-h") && l.split_whitespace().nth(1) == Some(driver))
            .count();
        assert_eq!(ports, 2, "{driver}: two ports on it in\n{summary}");
    }
}

/// An idle router (after some traffic): with `busy-poll` the worker spins (about a
/// core); with `poll-then-sleep` it sleeps in poll(2) and uses a small fraction of one.
#[test]
fn idle_router_sleeps_with_poll_then_sleep() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let mut used = Vec::new();
    for idle in ["busy-poll", "poll-then-sleep"] {
        let toml = router_toml("afpacket").replace(
            "idle = \"poll-then-sleep\"\nempty-polls = 100",
            &format!(
                "idle = \"{idle}\"{}",
                if idle == "busy-poll" {
                    ""
                } else {
                    "\nempty-polls = 100"
                }
            ),
        );
        assert!(toml.contains(idle), "{toml}");
        let mut router = Router::start_with(&t.r, "afpacket", &toml);
        // Some traffic first, so that the router holds neighbor entries (and their
        // timers) while it idles.
        let stop = Arc::new(AtomicBool::new(false));
        let v4: SocketAddr = "203.0.113.2:7009".parse().unwrap();
        let v6: SocketAddr = "[2001:db8:2::2]:7009".parse().unwrap();
        let servers = [
            echo_server(&t.h2, v4, stop.clone()),
            echo_server(&t.h2, v6, stop.clone()),
        ];
        assert_eq!(echo_client(&t.h1, v4, 2) + echo_client(&t.h1, v6, 2), 4);
        stop.store(true, Ordering::Relaxed);
        for s in servers {
            s.join().unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        router.assert_running();
        let pid = router.pid();
        let before = cpu_time(pid);
        std::thread::sleep(Duration::from_secs(1));
        let cpu = cpu_time(pid) - before;
        let (status, _, err) = router.stop();
        assert!(status.success(), "{err}");
        eprintln!("idle = {idle}: {} ms of CPU in 1 s", cpu.as_millis());
        used.push(cpu);
    }
    assert!(
        used[1] < Duration::from_millis(300),
        "poll-then-sleep used {:?} of CPU in 1 s idle (busy-poll: {:?})",
        used[1],
        used[0]
    );
}

/// `scripts/topology.sh` (the main job's live part) on the debug binary, as a process
/// group of its own, with its output read line by line; returns the child, its pid and
/// a channel of its stdout and stderr lines.
fn topology_script(seconds: &str) -> (std::process::Child, u32, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/topology.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_dataplane"),
            "--seconds",
            seconds,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start scripts/topology.sh");
    let (tx, rx) = std::sync::mpsc::channel();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let err = std::io::BufReader::new(child.stderr.take().unwrap());
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        out.lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });
    std::thread::spawn(move || {
        err.lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx2.send(l)))
    });
    let pid = child.id();
    (child, pid, rx)
}

/// The namespaces named after the script's pid that still exist.
fn script_namespaces(pid: u32) -> Vec<String> {
    sh("ip", &["netns", "list"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("dprun-{pid}-")))
        .map(str::to_string)
        .collect()
}

/// The pid of `dataplane run` that the script reports starting.
fn script_router_pid(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|l| {
        l.strip_prefix("dataplane run (pid ")?
            .split(')')
            .next()?
            .parse()
            .ok()
    })
}

/// The main job's live part shows ping over IPv4 and IPv6, tracepath with the router as
/// hop 1, our throughput beside Linux forwarding's, the router's counters, and removes
/// its namespaces.
#[test]
fn main_job_script_shows_the_router_at_work_and_cleans_up() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (mut child, pid, rx) = topology_script("1");
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<String> = rx.try_iter().collect();
    let text = lines.join("\n");
    eprintln!("{text}");
    assert!(status.success(), "{status}:\n{text}");
    assert_eq!(
        text.matches("3 packets transmitted, 3 received, 0% packet loss")
            .count(),
        2,
        "{text}"
    );
    assert!(
        text.contains("dataplane run (pid ") && text.contains(" on afxdp in namespace "),
        "{text}"
    );
    for hop1 in ["198.51.100.1", "2001:db8:1::1"] {
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()[..].starts_with(&["1:", hop1])),
            "{hop1} as hop 1:\n{text}"
        );
    }
    assert_eq!(text.matches("reached").count(), 2, "{text}");
    let summary = lines
        .iter()
        .find_map(|l| l.strip_prefix("throughput h1 -> h2: dataplane (afxdp) "))
        .unwrap_or_else(|| panic!("no throughput summary:\n{text}"));
    let rates: Vec<f64> = summary
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(
        rates.len() == 2 && rates.iter().all(|&r| r > 0.0),
        "ours and Linux's rates in {summary:?}"
    );
    assert!(text.contains("dataplane: stopped by signal 15"), "{text}");
    assert_eq!(counter(&text, "forwarded").len(), 2, "{text}");
    assert_eq!(script_namespaces(pid), Vec::<String>::new());
}

/// Ctrl-C (SIGINT to the script's process group) while it measures: the router stops,
/// the namespaces go.
#[test]
fn main_job_script_cleans_up_on_ctrl_c() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let (mut child, pid, rx) = topology_script("30");
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(60)) {
        let measuring = l.starts_with("== throughput");
        lines.push(l);
        if measuring {
            break;
        }
    }
    let text = lines.join("\n");
    assert!(
        text.contains("== throughput") && script_namespaces(pid).len() == 3,
        "{text}"
    );
    let router = script_router_pid(&lines).unwrap_or_else(|| panic!("router pid:\n{text}"));
    // Interrupt the measurement itself: wait until the iperf3 client runs (a signal
    // that lands between two commands of the script is a different, racier case).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let found = Command::new("pgrep")
            .args(["-g", &pid.to_string(), "-f", "iperf3 -c"])
            .output()
            .is_ok_and(|o| o.status.success());
        if found {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // What a terminal's Ctrl-C does: SIGINT to the whole foreground process group.
    sh("kill", &["-INT", "--", &format!("-{pid}")]);
    let status = child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    lines.extend(rx.try_iter());
    let text = lines.join("\n");
    eprintln!("{text}");
    assert!(!status.success(), "{status}:\n{text}");
    assert!(text.contains("topology: interrupted"), "{text}");
    assert!(text.contains("dataplane: stopped by signal 15"), "{text}");
    assert!(
        !std::path::Path::new(&format!("/proc/{router}")).exists(),
        "dataplane run {router} still running:\n{text}"
    );
    assert_eq!(script_namespaces(pid), Vec::<String>::new());
}
