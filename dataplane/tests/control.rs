//! The control plane of a running router, as root: `dpctl` over the control socket and
//! the Prometheus endpoint, on the h1 — r — h2 topology of `common/` with two workers.
//!
//! Checked: `show ports/routes/neighbors/stats` describe the router; the per-port
//! counters of `show stats --json` agree with traffic counted at the Linux receiver
//! (every datagram h2 received was forwarded once out of r-h2, and nothing else was);
//! the shards' counters add up to the ports'; a route added with `dpctl route add` takes
//! effect without a restart and goes away with `route del`; static neighbors are added
//! on every shard and deleted; a capture writes a pcap file with the frames; refused
//! requests exit 1 with the reason; the metrics endpoint serves the same counters; on
//! SIGTERM the socket file is removed.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// `dpctl --socket SOCK args...`: exit code, stdout, stderr.
fn dpctl(sock: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dpctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("run dpctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `dpctl` that must succeed; its stdout.
fn ok(sock: &Path, args: &[&str]) -> String {
    let (code, out, err) = dpctl(sock, args);
    assert_eq!(code, 0, "dpctl {args:?}: {err}");
    out
}

/// Waits until the router answers on its control socket.
fn wait_for_control(router: &mut Router, sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        router.assert_running();
        if dpctl(sock, &["show", "ports"]).0 == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the control socket {} never answered", sock.display());
}

/// A UDP sink in `ns` on `addr`, counting datagrams until `stop`.
fn sink(
    ns: &Netns,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    let name = ns.name().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let ns = Netns { name: name.clone() };
        ns.enter();
        std::mem::forget(ns);
        let s = UdpSocket::bind(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if s.recv_from(&mut buf).is_ok() {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    rx.recv().unwrap();
    h
}

/// From `ns`, `n` datagrams to `to` from `flows` source ports, paced.
fn blast(ns: &Netns, to: SocketAddr, n: u32, flows: u16) {
    let name = ns.name().to_string();
    std::thread::spawn(move || {
        let ns = Netns { name: name.clone() };
        ns.enter();
        std::mem::forget(ns);
        let socks: Vec<UdpSocket> = (0..flows)
            .map(|_| UdpSocket::bind("0.0.0.0:0").unwrap())
            .collect();
        for i in 0..n {
            socks[i as usize % socks.len()]
                .send_to(format!("datagram {i}").as_bytes(), to)
                .unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
    })
    .join()
    .unwrap();
}

/// GET /metrics from inside `ns`.
fn scrape(ns: &Netns, addr: &str) -> String {
    let name = ns.name().to_string();
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let ns = Netns { name: name.clone() };
        ns.enter();
        std::mem::forget(ns);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match std::net::TcpStream::connect(&addr) {
                Ok(mut s) => {
                    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut body = String::new();
                    s.read_to_string(&mut body).unwrap();
                    return body;
                }
                Err(e) if Instant::now() > deadline => panic!("metrics at {addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    })
    .join()
    .unwrap()
}

fn metric(text: &str, line_start: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_start)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no metric {line_start} in:\n{text}"))
}

/// UDP datagrams that reached `ns`'s UDP layer so far (/proc/net/snmp: delivered,
/// to no port, in error — buffer overflows included).
fn udp_arrivals(ns: &Netns) -> u64 {
    let snmp = ns.exec(&["cat", "/proc/net/snmp"]);
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
    let field = |n: &str| -> u64 {
        names
            .split_whitespace()
            .position(|x| x == n)
            .and_then(|i| values.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Udp {n} in /proc/net/snmp:\n{snmp}"))
    };
    field("InDatagrams") + field("NoPorts") + field("InErrors")
}

fn port_json<'a>(stats: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    stats["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no port {name} in {stats}"))
}

fn stats(sock: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(sock, &["show", "stats", "--json"])).expect("stats JSON")
}

#[test]
fn dpctl_shows_and_changes_a_running_router_with_two_workers() {
    if !is_root() {
        eprintln!("skipped: needs root (namespaces, raw sockets)");
        return;
    }
    let t = Topology::new(false);
    let sock = control_socket(&t.r, "afpacket");
    let metrics = "127.0.0.1:9188";
    let toml = router_toml("afpacket")
        .replace("cores = [0]", "cores = [0, 1]")
        .replace(
            "forwarding = true\n",
            &format!("forwarding = true\nmetrics = \"{metrics}\"\n"),
        );
    let mut router = Router::start_with(&t.r, "afpacket", &toml);
    wait_for_control(&mut router, &sock);

    // show ports: both ports, one per shard.
    let ports = ok(&sock, &["show", "ports"]);
    assert!(ports.contains("2 worker(s) on cores 0,1"), "{ports}");
    for (name, shard) in [("r-h1", 0), ("r-h2", 1)] {
        let line = ports
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{ports}"));
        assert!(line.contains("afpacket"), "{line}");
        assert!(
            line.split_whitespace().nth(7) == Some(&shard.to_string()),
            "{line}"
        );
    }
    let routes = ok(&sock, &["show", "routes"]);
    assert!(
        routes.contains("198.51.100.0/24 dev r-h1 proto connected"),
        "{routes}"
    );
    assert!(
        routes.contains("10.0.0.0/8 unreachable proto static"),
        "{routes}"
    );

    // Traffic counted at h2 agrees with the router's counters.
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let to: SocketAddr = "203.0.113.2:9999".parse().unwrap();
    let sinker = sink(&t.h2, to, stop.clone(), got.clone());
    // The first datagrams wait for ARP; a warm-up settles neighbors on both shards.
    blast(&t.h1, to, 16, 16);
    std::thread::sleep(Duration::from_millis(300));
    let before = stats(&sock);
    let f0 = port_json(&before, "r-h2")["forwarded"].as_u64().unwrap();
    let (g0, u0) = (got.load(Ordering::Relaxed), udp_arrivals(&t.h2));
    blast(&t.h1, to, 400, 16);
    // Every datagram forwarded out of r-h2 arrived at h2's UDP layer (counted there
    // whether or not the sink kept up) and nothing else was forwarded: the two counts
    // meet once the last datagrams are through.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (after, forwarded, arrived) = loop {
        let after = stats(&sock);
        let forwarded = port_json(&after, "r-h2")["forwarded"].as_u64().unwrap() - f0;
        let arrived = udp_arrivals(&t.h2) - u0;
        if forwarded == arrived || Instant::now() > deadline {
            break (after, forwarded, arrived);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(forwarded, arrived, "forwarded out of r-h2 vs arrived at h2");
    assert!(arrived >= 200, "only {arrived} of 400 datagrams arrived");
    let received = got.load(Ordering::Relaxed) - g0;
    assert!(
        received > 0 && received <= arrived,
        "the sink read {received}"
    );
    // What r-h1's socket received, or the kernel dropped before it for want of room
    // (a loaded machine), covers what h1 sent.
    let p1 = port_json(&after, "r-h1");
    let rx = p1["rx_packets"].as_u64().unwrap() + p1["driver"]["rx_dropped"].as_u64().unwrap();
    assert!(rx >= 416, "r-h1 rx {rx}: {p1}");
    // The shards' counters add up to the ports', and both shards worked.
    let shards = after["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    let shard_rx: u64 = shards
        .iter()
        .map(|s| s["rx_packets"].as_u64().unwrap())
        .sum();
    let port_rx: u64 = after["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rx_packets"].as_u64().unwrap())
        .sum();
    assert_eq!(shard_rx, port_rx);
    for s in shards {
        assert!(s["rx_packets"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["handoff"]["rx_full"], 0, "{s}");
    }
    let handed: u64 = shards
        .iter()
        .map(|s| s["handoff"]["rx_out"].as_u64().unwrap())
        .sum();
    assert!(
        handed > 0,
        "16 flows over 2 shards: some must cross: {after}"
    );
    let text = ok(&sock, &["show", "stats"]);
    assert!(text.contains("shard 1 core 1"), "{text}");

    // The metrics endpoint serves the same counters.
    let m = scrape(&t.r, metrics);
    assert!(m.starts_with("HTTP/1.1 200 OK"), "{m}");
    let fwd = metric(&m, "dataplane_forwarded_total{port=\"r-h2\"} ");
    assert!(fwd >= f0 + forwarded, "metrics forwarded {fwd}");
    assert!(m.contains("dataplane_drops_total{port=\"r-h1\",reason=\"no_route\"}"));

    // A route added at run time takes effect without a restart.
    t.h2.ip("addr add 192.0.2.2/24 dev veth0");
    let far: SocketAddr = "192.0.2.2:9999".parse().unwrap();
    assert_eq!(
        icmp_error(&t.h1, far, None),
        Some(libc::ENETUNREACH),
        "no route yet: ICMP net unreachable"
    );
    ok(
        &sock,
        &["route", "add", "192.0.2.0/24", "via", "203.0.113.2"],
    );
    assert!(ok(&sock, &["show", "routes"])
        .contains("192.0.2.0/24 via 203.0.113.2 dev r-h2 proto static"));
    let sink2 = Arc::new(AtomicU64::new(0));
    let far_sink = sink(&t.h2, far, stop.clone(), sink2.clone());
    blast(&t.h1, far, 20, 4);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        sink2.load(Ordering::Relaxed) >= 18,
        "via the new route: {}",
        sink2.load(Ordering::Relaxed)
    );
    ok(&sock, &["route", "del", "192.0.2.0/24"]);
    assert_eq!(
        icmp_error(&t.h1, far, None),
        Some(libc::ENETUNREACH),
        "route gone"
    );

    // Refused requests: exit 1 and the reason.
    let (code, _, err) = dpctl(&sock, &["route", "del", "198.51.100.0/24"]);
    assert_eq!(code, 1);
    assert!(err.contains("connected route"), "{err}");
    let (code, _, err) = dpctl(&sock, &["route", "add", "192.0.2.0/24", "via", "10.9.9.9"]);
    assert_eq!(code, 1);
    assert!(err.contains("not on a connected network"), "{err}");
    let (code, _, err) = dpctl(&sock, &["capture", "stop", "r-h1"]);
    assert_eq!(code, 1);
    assert!(err.contains("no capture"), "{err}");

    // Neighbors: a static entry on every shard, then gone.
    ok(
        &sock,
        &[
            "neighbor",
            "add",
            "203.0.113.77",
            "lladdr",
            "02:00:00:00:00:77",
            "dev",
            "r-h2",
        ],
    );
    let n = ok(&sock, &["show", "neighbors"]);
    let statics = n
        .lines()
        .filter(|l| l.starts_with("203.0.113.77 dev r-h2 lladdr 02:00:00:00:00:77 permanent"))
        .count();
    assert_eq!(statics, 2, "one per shard:\n{n}");
    assert!(
        n.contains("203.0.113.2 dev r-h2 lladdr"),
        "h2 resolved:\n{n}"
    );
    ok(&sock, &["neighbor", "del", "203.0.113.77", "dev", "r-h2"]);
    assert!(!ok(&sock, &["show", "neighbors"]).contains("203.0.113.77"));

    // Capture: frames of r-h1 into a pcap file.
    let pcap = std::env::temp_dir().join(format!("{}-r-h1.pcap", t.r.name()));
    let _guard = TempFile(pcap.clone());
    ok(&sock, &["capture", "start", "r-h1", pcap.to_str().unwrap()]);
    blast(&t.h1, to, 10, 1);
    std::thread::sleep(Duration::from_millis(200));
    let msg = ok(&sock, &["capture", "stop", "r-h1"]);
    let captured: u64 = msg.split_whitespace().next().unwrap().parse().unwrap();
    assert!(captured >= 10, "{msg}");
    let bytes = std::fs::read(&pcap).unwrap();
    let magic = u32::from_le_bytes(bytes[..4].try_into().unwrap());
    assert!(
        [0xa1b2_c3d4, 0xa1b2_3c4d].contains(&magic),
        "pcap magic (µs or ns): {magic:#x}"
    );
    assert!(bytes.len() > 24 + 10 * (16 + 42));

    stop.store(true, Ordering::Relaxed);
    sinker.join().unwrap();
    far_sink.join().unwrap();
    let (status, out, _) = router.stop();
    assert!(status.success());
    assert!(out.contains("shard 1 (core 1)"), "{out}");
    assert!(!sock.exists(), "the control socket is removed on exit");
}

#[test]
fn a_second_router_on_the_same_control_socket_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let sock = control_socket(&t.r, "afpacket");
    let mut first = Router::start(&t.r, "afpacket");
    wait_for_control(&mut first, &sock);
    let toml = format!(
        "control-socket = {:?}\n{}",
        sock.display().to_string(),
        router_toml("afpacket")
    );
    let (code, err) = run_once(&t.r, &[], &toml);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("another dataplane is listening"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    first.assert_running();
}

/// `workers.realtime-priority`: the worker threads run under SCHED_FIFO at that priority;
/// where this machine refuses real-time scheduling, `dataplane run` refuses to start
/// with one line naming the key.
#[test]
fn workers_run_under_sched_fifo_when_asked() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let toml = router_toml("afpacket").replace(
        "empty-polls = 100\n",
        "empty-polls = 100\nrealtime-priority = 3\n",
    );
    assert!(toml.contains("realtime-priority = 3"));
    // Whether this process (root, the router's cgroup) may use SCHED_FIFO at all.
    #[allow(unsafe_code)]
    let allowed = std::thread::spawn(|| {
        let p = libc::sched_param { sched_priority: 3 };
        // SAFETY: sched_setscheduler(2) on this short-lived thread only.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) == 0 }
    })
    .join()
    .unwrap();
    if !allowed {
        let (code, err) = run_once(&t.r, &[], &toml);
        assert_ne!(code, Some(0), "{err}");
        assert!(err.contains("workers.realtime-priority"), "{err}");
        return;
    }
    let mut router = Router::start_with(&t.r, "afpacket", &toml);
    let pid = router.pid();
    let mut seen = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        // Fields after the command's closing parenthesis start at field 3 (proc(5)):
        // rt_priority is field 40, policy field 41.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect())
            .unwrap_or_default();
        let (prio, policy) = (rest.get(37).copied(), rest.get(38).copied());
        if comm.trim() == "dp-worker-0" {
            assert_eq!(policy, Some("1"), "worker policy (1 = SCHED_FIFO): {stat}");
            assert_eq!(prio, Some("3"), "worker priority: {stat}");
            seen = true;
        } else if !comm.is_empty() {
            assert_eq!(
                policy,
                Some("0"),
                "{} stays SCHED_OTHER: {stat}",
                comm.trim()
            );
        }
    }
    assert!(seen, "no dp-worker-0 thread in /proc/{pid}/task");
    router.assert_running();
    let (status, _, _) = router.stop();
    assert!(status.success());
}
