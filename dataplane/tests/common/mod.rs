//! Helpers shared by the integration tests that run `dataplane` between Linux hosts in
//! network namespaces (`e2e.rs`, and later tests of the control plane): namespaces and
//! the h1 — r — h2 topology, the router's configuration, starting and stopping
//! `dataplane run`, commands, UDP/TCP/ICMP probes from inside a namespace, the final
//! counters' parsing.
//!
//! Each test binary uses only some of them.
#![allow(dead_code)]
#![allow(unsafe_code)] // setns(2) into the host namespaces, setsockopt(2) for IP_RECVERR

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a command; panics with its output when it fails.
pub fn sh(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace that lives as long as this value.
pub struct Netns {
    /// The name `ip netns` knows it by (unique to this process and call).
    pub name: String,
}

impl Netns {
    pub fn new(role: &str) -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("dpe2e-{}-{n}-{role}", std::process::id());
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// The namespace's name, for `ip netns exec NAME ...`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME <args>` (split on spaces).
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend(args.split_whitespace());
        sh("ip", &v)
    }

    /// `ip netns exec NAME <args>`.
    pub fn exec(&self, args: &[&str]) -> String {
        let mut v = vec!["netns", "exec", self.name.as_str()];
        v.extend(args);
        sh("ip", &v)
    }

    /// Moves the calling thread into this namespace.
    pub fn enter(&self) {
        let path = format!("/var/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns(2) on a descriptor that stays open for the call; it changes
        // only the calling thread's network namespace.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
    }

    /// Waits up to 5 s until `dev` is operationally up.
    pub fn wait_up(&self, dev: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.ip(&format!("-br link show dev {dev}"));
            if out.split_whitespace().nth(1) == Some("UP") {
                return;
            }
            assert!(Instant::now() < deadline, "{dev} not up after 5 s: {out}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Netns {
    /// Waits up to 5 s until `dev` is up, or `UNKNOWN` with the carrier on (TAP).
    pub fn wait_up_or_unknown(&self, dev: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = self.ip(&format!("-br link show dev {dev}"));
            let state = out.split_whitespace().nth(1);
            if state == Some("UP") || (state == Some("UNKNOWN") && out.contains("LOWER_UP")) {
                return;
            }
            assert!(Instant::now() < deadline, "{dev} not up after 5 s: {out}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// h1, r, h2 wired and addressed; the router's ports are `r-h1` and `r-h2`.
pub struct Topology {
    /// The host on 198.51.100.0/24 and 2001:db8:1::/64 (interface `veth0`).
    pub h1: Netns,
    /// The router's namespace: no kernel addresses; ports `r-h1` and `r-h2`.
    pub r: Netns,
    /// The host on 203.0.113.0/24 and 2001:db8:2::/64 (interface `veth0`).
    pub h2: Netns,
}

impl Topology {
    /// With `tap`, the router's ports are TAP devices that `dataplane` makes; the veths
    /// then end in r as `v-h1`/`v-h2`, each in a bridge (`b-h1`/`b-h2`) that
    /// [`Topology::attach_taps`] joins the TAP device to once it exists.
    pub fn new(tap: bool) -> Topology {
        let (h1, r, h2) = (Netns::new("h1"), Netns::new("r"), Netns::new("h2"));
        for (h, port, v4, v6, gw4, gw6) in [
            (
                &h1,
                "r-h1",
                "198.51.100.2/24",
                "2001:db8:1::2/64",
                "198.51.100.1",
                "2001:db8:1::1",
            ),
            (
                &h2,
                "r-h2",
                "203.0.113.2/24",
                "2001:db8:2::2/64",
                "203.0.113.1",
                "2001:db8:2::1",
            ),
        ] {
            let port = if tap {
                port.replacen("r-", "v-", 1)
            } else {
                port.to_string()
            };
            r.ip(&format!(
                "link add {port} type veth peer name veth0 netns {}",
                h.name
            ));
            if tap {
                let br = port.replacen("v-", "b-", 1);
                r.ip(&format!("link add {br} type bridge"));
                r.ip(&format!("link set {br} addrgenmode none"));
                r.ip(&format!("link set {port} master {br}"));
                r.ip(&format!("link set {br} up"));
            }
            r.ip(&format!("link set {port} addrgenmode none"));
            r.ip(&format!("link set {port} up"));
            h.ip(&format!("addr add {v4} dev veth0"));
            h.ip(&format!("addr add {v6} dev veth0 nodad"));
            h.ip("link set veth0 up");
            h.ip(&format!("route add default via {gw4}"));
            h.ip(&format!("-6 route add default via {gw6}"));
            // The veth would hand us frames with partial checksums (TX offload).
            h.exec(&["ethtool", "-K", "veth0", "tx", "off"]);
        }
        let ports = if tap {
            ["v-h1", "v-h2"]
        } else {
            ["r-h1", "r-h2"]
        };
        for port in ports {
            r.exec(&["ethtool", "-K", port, "tx", "off"]);
            r.wait_up(port);
        }
        h1.wait_up("veth0");
        h2.wait_up("veth0");
        Topology { h1, r, h2 }
    }

    /// Waits (up to 5 s) for the router's TAP devices and puts each in its bridge, up.
    pub fn attach_taps(&self) {
        for (tap, br) in [("r-h1", "b-h1"), ("r-h2", "b-h2")] {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !self.ip_ok(&format!("link show dev {tap}")) {
                assert!(
                    Instant::now() < deadline,
                    "{tap} not made by dataplane in 5 s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            self.r.ip(&format!("link set {tap} addrgenmode none"));
            self.r.ip(&format!("link set {tap} master {br}"));
            self.r.ip(&format!("link set {tap} up"));
            self.r.wait_up_or_unknown(tap);
            self.r.wait_up(br);
        }
    }

    /// The router namespace's name.
    pub fn router_ns(&self) -> &str {
        &self.r.name
    }

    /// Whether `ip -n R <args>` succeeds.
    pub fn ip_ok(&self, args: &str) -> bool {
        Command::new("ip")
            .args(["-n", &self.r.name])
            .args(args.split_whitespace())
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

/// Routes that make the router answer with ICMP destination unreachable.
pub const UNREACHABLE: &str = "[[routes]]\nprefix = \"10.0.0.0/8\"\nunreachable = true\n\n[[routes]]\nprefix = \"2001:db8:99::/48\"\nunreachable = true\n\n";

/// The router's configuration for `driver`.
pub fn router_toml(driver: &str) -> String {
    router_toml_with(driver, "", "")
}

/// The router's configuration for `driver`, with `keys` (top-level keys such as
/// `control-socket = "..."`, each line ending in a newline) placed before the first
/// table, and `tables` (whole tables such as `[[routes]]`) appended at the end.
pub fn router_toml_with(driver: &str, keys: &str, tables: &str) -> String {
    let steering = if driver == "afxdp" {
        "steering = \"all\"\n"
    } else {
        ""
    };
    let port = |name: &str, v4: &str, v6: &str| {
        format!(
            "[[ports]]\nname = \"{name}\"\ndriver = \"{driver}\"\n{steering}ipv4 = [\"{v4}\"]\nipv6 = [\"{v6}\"]\n\n"
        )
    };
    format!(
        "name = \"router\"\nforwarding = true\n{keys}\n{}{}{UNREACHABLE}[workers]\ncores = [0]\nidle = \"poll-then-sleep\"\nempty-polls = 100\n{tables}",
        port("r-h1", "198.51.100.1/24", "2001:db8:1::1/64"),
        port("r-h2", "203.0.113.1/24", "2001:db8:2::1/64"),
    )
}

/// `dataplane run` inside the router namespace; killed if still running when dropped.
pub struct Router {
    child: Option<Child>,
    _config: TempFile,
    /// The control socket this helper chose, removed when the router is killed.
    _socket: Option<TempFile>,
}

/// A file removed when this value goes.
pub struct TempFile(pub std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Router {
    pub fn start(r: &Netns, driver: &str) -> Router {
        Router::start_with(r, driver, &router_toml(driver))
    }

    /// Starts it on [`router_toml`] with `tables` (whole TOML tables) appended.
    pub fn start_appending(r: &Netns, driver: &str, tables: &str) -> Router {
        Router::start_with(r, driver, &router_toml_with(driver, "", tables))
    }

    /// Starts it on the configuration `toml`.
    pub fn start_with(r: &Netns, driver: &str, toml: &str) -> Router {
        let path = std::env::temp_dir().join(format!("{}-{driver}.toml", r.name));
        // Each router its own control socket (tests run side by side), unless the
        // configuration names one.
        let (toml, socket) = if toml.contains("control-socket") {
            (toml.to_string(), None)
        } else {
            let sock = control_socket(r, driver);
            let t = format!("control-socket = {:?}\n{toml}", sock.display().to_string());
            (t, Some(TempFile(sock)))
        };
        std::fs::write(&path, toml).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &r.name])
            .arg(env!("CARGO_BIN_EXE_dataplane"))
            .args(["run", "--config"])
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dataplane run");
        let mut router = Router {
            child: Some(child),
            _config: TempFile(path),
            _socket: socket,
        };
        // Ready when its control socket answers: the drivers are open and the workers
        // run by then (under load, opening AF_XDP takes seconds; traffic sent earlier
        // would be lost).
        if let Some(sock) = router._socket.as_ref().map(|t| t.0.clone()) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if router.child.as_mut().unwrap().try_wait().unwrap().is_some() {
                    break;
                }
                if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        router
    }

    /// The process id of the `ip netns exec` that became `dataplane run`.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the router is running").id()
    }

    /// Panics with the router's stderr if it has already exited.
    pub fn assert_running(&mut self) {
        let child = self.child.as_mut().unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("dataplane run exited early ({status}): {err}");
        }
    }

    /// SIGTERM, then the exit status, stdout and stderr (within 10 s).
    pub fn stop(&mut self) -> (std::process::ExitStatus, String, String) {
        let mut child = self.child.take().unwrap();
        sh("kill", &["-TERM", &child.id().to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("dataplane run did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        (status, out, err)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A UDP echo server in `ns` on `addr` until `stop`.
pub fn echo_server(
    ns: &Netns,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let path = format!("/var/run/netns/{}", ns.name);
    let ns = Netns {
        name: ns.name.clone(),
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        ns.enter();
        // Not ours to delete: the topology owns the namespace.
        std::mem::forget(ns);
        let sock = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("bind {addr} in {path}: {e}"));
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
        }
    });
    ready_rx.recv().expect("echo server started");
    h
}

/// From inside `ns`, sends `count` datagrams to `to` one at a time and waits for each
/// echo (retrying a lost one, up to 10 s in all); returns how many came back intact.
pub fn echo_client(ns: &Netns, to: SocketAddr, count: u32) -> u32 {
    let ns = Netns {
        name: ns.name.clone(),
    };
    std::thread::spawn(move || {
        ns.enter();
        std::mem::forget(ns);
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(bind).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut ok = 0;
        let mut buf = [0u8; 2048];
        for i in 0..count {
            let msg = format!("datagram {i} to {to}: {}", "x".repeat(i as usize * 10));
            // Sent again only after a timeout; a late echo of an earlier datagram is
            // skipped, not answered with a resend (which would double the traffic).
            'send: while Instant::now() < deadline {
                sock.send_to(msg.as_bytes(), to).unwrap();
                while let Ok((n, from)) = sock.recv_from(&mut buf) {
                    if from == to && &buf[..n] == msg.as_bytes() {
                        ok += 1;
                        break 'send;
                    }
                }
            }
        }
        ok
    })
    .join()
    .unwrap()
}

/// From inside `ns`, sends to `to` on a connected UDP socket, with the TTL / hop limit
/// `hops` when given, until an ICMP error from the router (destination unreachable, or
/// time exceeded) comes back as the socket's error; returns that errno, or `None` after
/// 5 s.
pub fn icmp_error(ns: &Netns, to: SocketAddr, hops: Option<u32>) -> Option<i32> {
    let ns = Netns {
        name: ns.name.clone(),
    };
    std::thread::spawn(move || {
        ns.enter();
        std::mem::forget(ns);
        let bind: SocketAddr = if to.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let sock = UdpSocket::bind(bind).unwrap();
        // Linux reports ICMP net/host unreachable (non-fatal in RFC 1122 §4.2.3.9's
        // sense) to a UDP socket only with IP_RECVERR / IPV6_RECVERR.
        if to.is_ipv4() {
            setsockopt_int(&sock, libc::IPPROTO_IP, libc::IP_RECVERR, 1);
        } else {
            setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1);
        }
        match (hops, to.is_ipv4()) {
            (Some(h), true) => sock.set_ttl(h).unwrap(),
            (Some(h), false) => {
                setsockopt_int(&sock, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, h as i32)
            }
            (None, _) => {}
        }
        sock.connect(to).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 64];
        while Instant::now() < deadline {
            if let Err(e) = sock.send(b"anyone?") {
                return e.raw_os_error();
            }
            match sock.recv(&mut buf) {
                Err(e) if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return e.raw_os_error();
                }
                _ => {}
            }
        }
        None
    })
    .join()
    .unwrap()
}

/// setsockopt(2) with an int value; panics on failure.
pub fn setsockopt_int(sock: &UdpSocket, level: i32, opt: i32, value: libc::c_int) {
    // SAFETY: setsockopt(2) on an open socket with a pointer to a live c_int and its
    // size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt({level}, {opt}): {}",
        std::io::Error::last_os_error()
    );
}

/// Moves `len` bytes of a pattern over TCP from `from` to `server` (listening in
/// `to`); returns how many bytes arrived intact.
pub fn tcp_bulk(from: &Netns, to: &Netns, server: SocketAddr, len: usize) -> usize {
    let pattern = |i: usize| (i % 251) as u8;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let to = Netns {
        name: to.name.clone(),
    };
    let receiver = std::thread::spawn(move || {
        to.enter();
        std::mem::forget(to);
        let l = std::net::TcpListener::bind(server).unwrap();
        ready_tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = vec![0u8; 65536];
        let (mut got, mut intact) = (0usize, true);
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    intact &= buf[..n]
                        .iter()
                        .enumerate()
                        .all(|(i, &b)| b == pattern(got + i));
                    got += n;
                }
            }
        }
        if intact {
            got
        } else {
            0
        }
    });
    ready_rx.recv().unwrap();
    let from = Netns {
        name: from.name.clone(),
    };
    std::thread::spawn(move || {
        from.enter();
        std::mem::forget(from);
        let mut s = std::net::TcpStream::connect_timeout(&server, Duration::from_secs(5))
            .expect("connect through the router");
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        let data: Vec<u8> = (0..len).map(pattern).collect();
        std::io::Write::write_all(&mut s, &data).expect("send the bulk data");
        s.shutdown(std::net::Shutdown::Write).unwrap();
    })
    .join()
    .unwrap();
    receiver.join().unwrap()
}

/// The `NAME N` figures of the final counters' first line of each port, by port.
pub fn counter(report: &str, name: &str) -> Vec<(String, u64)> {
    let key = format!(" {name} ");
    report
        .lines()
        .filter_map(|l| {
            let port = l.strip_prefix("port ")?.split(':').next()?.to_string();
            let n = l.split(&key).nth(1)?.split(',').next()?.parse().ok()?;
            Some((port, n))
        })
        .collect()
}

/// The control socket [`Router::start_with`] gives the router of namespace `r`.
pub fn control_socket(r: &Netns, driver: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{}-{driver}.sock", r.name))
}

/// `dataplane run` on `toml` inside `ns`, behind `wrapper` (a command and its
/// arguments that run the rest, or nothing); returns its exit code and stderr.
pub fn run_once(ns: &Netns, wrapper: &[&str], toml: &str) -> (Option<i32>, String) {
    let path = std::env::temp_dir().join(format!("{}-once.toml", ns.name));
    std::fs::write(&path, toml).unwrap();
    let _f = TempFile(path.clone());
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.name])
        .args(wrapper)
        .arg(env!("CARGO_BIN_EXE_dataplane"))
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("{err}");
    (out.status.code(), err)
}

/// CPU time (user + system) of process `pid` so far, from /proc (clock ticks of 10 ms).
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    Duration::from_millis((f[0] + f[1]) * 10)
}

/// The kernel's own tools, run inside a namespace.
impl Netns {
    /// Runs `prog args` inside this namespace under `timeout 60` (so that a broken path
    /// cannot hang the test); returns whether it exited 0, and its stdout and stderr
    /// together. Panics, naming the Debian package, when `prog` is not installed.
    pub fn tool(&self, prog: &str, args: &[&str]) -> (bool, String) {
        require_tool(prog);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "timeout", "60", prog])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("run {prog} in {}: {e}", self.name));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// Panics with the Debian package to install when `prog` is not on the PATH.
pub fn require_tool(prog: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false);
    let package = match prog {
        "ping" => "iputils-ping",
        "tracepath" => "iputils-tracepath",
        "iperf3" => "iperf3",
        "python3" => "python3",
        "ethtool" => "ethtool",
        _ => "?",
    };
    assert!(
        found,
        "{prog} not found: install the Debian package {package} (scripts/deps.sh does, as root)"
    );
}

/// An `iperf3 -s -1` server in a namespace, killed if still running when dropped.
pub struct Iperf3Server {
    child: Child,
}

impl Iperf3Server {
    /// Starts it in `ns` on `addr`, port 5201, and waits (up to 5 s) until it listens.
    pub fn start(ns: &Netns, addr: &str) -> Iperf3Server {
        require_tool("iperf3");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "iperf3", "-s", "-1", "-B", addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 -s");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ns.exec(&["ss", "-Hltn", "sport = :5201"]).contains("5201") {
            assert!(Instant::now() < deadline, "iperf3 -s not listening in 5 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Iperf3Server { child }
    }
}

impl Drop for Iperf3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// From `iperf3 -J` output: the `bytes` of the final `sum_sent` and `sum_received`
/// objects, and the sender's `retransmits`; `None` for what is missing.
pub fn iperf3_totals(json: &str) -> (Option<u64>, Option<u64>, Option<u64>) {
    // The number after `"field":` in the object that follows `"key":` (the final
    // totals' objects are flat, so the first such field is theirs).
    let field = |key: &str, field: &str| -> Option<u64> {
        let obj = &json[json.find(&format!("\"{key}\":"))?..];
        let obj = &obj[..obj.find('}')?];
        let v = obj.split(&format!("\"{field}\":")).nth(1)?;
        let v = v.trim_start();
        let end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        v[..end].parse().ok()
    };
    (
        field("sum_sent", "bytes"),
        field("sum_received", "bytes"),
        field("sum_sent", "retransmits"),
    )
}

/// The largest TCP send (`tcp_wmem`) or receive (`tcp_rmem`) buffer in `ns`, in bytes.
pub fn tcp_buffer_max(ns: &Netns, which: &str) -> u64 {
    ns.exec(&["cat", &format!("/proc/sys/net/ipv4/{which}")])
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("net.ipv4.{which} in {}", ns.name))
}
