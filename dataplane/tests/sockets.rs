//! Shared-memory sockets, as root: applications attach to a running two-worker
//! `dataplane run` (the h1 — r — h2 topology of `common/`) and use UDP through it.
//!
//! Checked: an echo server application (`dp-echo`, another process) answers the Linux
//! host h1 on the router's own address; this test, as a client application, exchanges
//! datagrams with a Linux echo server on h2 over IPv4 and IPv6 and sees ICMP port
//! unreachable as `ConnectionRefused`; an application killed with SIGKILL has its
//! sockets closed (its port answers port unreachable again) while others go on; a
//! client of another protocol version is refused with a clear error; an application
//! that scribbles over its own rings harms nobody else; the per-application socket
//! quota holds; when the daemon stops, a client's next call fails with
//! `ConnectionAborted` instead of hanging.

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dpsock::shm::{Entry, Region};
use dpsock::{Client, UdpSocket};

fn apps_path(t: &Topology) -> PathBuf {
    std::env::temp_dir().join(format!("{}-apps.sock", t.r.name()))
}

fn start(t: &Topology, max_sockets: u32) -> (Router, PathBuf, TempFile) {
    start_with(t, "afpacket", max_sockets, "")
}

/// [`start`] on `driver` (a TAP topology for "tap") with extra TOML tables.
fn start_with(
    t: &Topology,
    driver: &str,
    max_sockets: u32,
    extra: &str,
) -> (Router, PathBuf, TempFile) {
    let apps = apps_path(t);
    // Removed by the router on a clean stop; by this guard when a test ends otherwise.
    let _ = std::fs::remove_file(&apps);
    let guard = TempFile(apps.clone());
    let tables = format!(
        "\n[sockets]\npath = {:?}\nmax-sockets = {max_sockets}\n{extra}",
        apps.display().to_string()
    );
    let toml = router_toml_with(driver, "", &tables).replace("cores = [0]", "cores = [0, 1]");
    let mut router = Router::start_with(&t.r, driver, &toml);
    if driver == "tap" {
        t.attach_taps();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // Ready when it accepts (a file left by an earlier run under a reused name does not).
    while UnixStream::connect(&apps).is_err() {
        router.assert_running();
        assert!(
            Instant::now() < deadline,
            "the attach socket never appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (router, apps, guard)
}

/// `dp-echo server ADDR` attached at `apps`; returns once it is bound.
fn echo_app(apps: &Path, addr: &str) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dp-echo"))
        .arg("--attach")
        .arg(apps)
        .args(["server", addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start dp-echo");
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready "), "dp-echo said {line:?}");
    c
}

/// Sends `msg` from `sock` to `to` until the same bytes come back from `to`.
fn exchange(sock: &mut UdpSocket, to: SocketAddr, msg: &[u8]) {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        sock.send_to(msg, to).unwrap();
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            if from == to && &buf[..n] == msg {
                return;
            }
        }
    }
    panic!("no echo from {to}");
}

#[test]
fn applications_use_udp_through_shared_memory_and_are_cleaned_up() {
    if !is_root() {
        eprintln!("skipped: needs root (namespaces, raw sockets)");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);

    // An application serving the Linux host on the router's own address.
    let mut server = echo_app(&apps, "0.0.0.0:7");
    let got = echo_client(&t.h1, "198.51.100.1:7".parse().unwrap(), 20);
    assert_eq!(got, 20, "dp-echo answered h1 through the router's stack");

    // This test as a client application, towards a Linux echo server on h2.
    let stop = Arc::new(AtomicBool::new(false));
    let v4: SocketAddr = "203.0.113.2:7007".parse().unwrap();
    let v6: SocketAddr = "[2001:db8:2::2]:7007".parse().unwrap();
    let linux = [
        echo_server(&t.h2, v4, stop.clone()),
        echo_server(&t.h2, v6, stop.clone()),
    ];
    let client = Client::attach(&apps).expect("attach");
    assert_eq!(client.shards(), 2);
    client.nop().unwrap();
    let mut s4 = UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
    let mut s6 = UdpSocket::bind(&client, "[::]:0".parse().unwrap()).unwrap();
    for i in 0..10 {
        exchange(&mut s4, v4, format!("v4 datagram {i}").as_bytes());
        exchange(&mut s6, v6, format!("v6 datagram {i}").as_bytes());
    }
    // A closed port: ICMP port unreachable reaches the socket's error.
    s4.send_to(b"anyone?", "203.0.113.2:9".parse().unwrap())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let err = loop {
        if let Some(e) = s4.take_error().unwrap() {
            break e;
        }
        assert!(Instant::now() < deadline, "no port unreachable");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    // Binding what another application holds is refused.
    let e = UdpSocket::bind(&client, "0.0.0.0:7".parse().unwrap())
        .err()
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::EADDRINUSE), "{e}");

    // SIGKILL the echo application: its socket closes, port 7 is closed again.
    server.kill().unwrap();
    server.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if icmp_error(&t.h1, "198.51.100.1:7".parse().unwrap(), None) == Some(libc::ECONNREFUSED) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "port 7 still open after the application died"
        );
    }
    // ... and this client goes on.
    exchange(&mut s4, v4, b"still here");
    // Its port can be bound again.
    drop(UdpSocket::bind(&client, "0.0.0.0:7".parse().unwrap()).unwrap());

    stop.store(true, Ordering::Relaxed);
    for h in linux {
        h.join().unwrap();
    }
    // The daemon stops: the next call fails instead of hanging.
    let (status, _, _) = router.stop();
    assert!(status.success());
    s4.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    // Late echoes still queued on our side come first; then the error.
    let e = loop {
        match s4.recv_from(&mut buf) {
            Ok(_) => continue,
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::ConnectionAborted, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(!apps.exists(), "the attach socket is removed on exit");
}

#[test]
fn bad_clients_are_refused_or_contained() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 4);

    // Another protocol version: a clear refusal.
    let s = UnixStream::connect(&apps).unwrap();
    (&s).write_all(b"DPSOCK 99\n").unwrap();
    let mut answer = String::new();
    (&s).read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("ERR version mismatch"), "{answer}");

    // The quota: 4 sockets per application and shard.
    let good = Client::attach(&apps).unwrap();
    let socks: Vec<UdpSocket> = (0..4)
        .map(|_| UdpSocket::bind(&good, "0.0.0.0:0".parse().unwrap()).unwrap())
        .collect();
    let e = UdpSocket::bind(&good, "0.0.0.0:0".parse().unwrap())
        .err()
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
    drop(socks);

    // A hostile application: attach by hand, then write garbage over its rings —
    // random entries with valid indices, then random bytes everywhere.
    let s = UnixStream::connect(&apps).unwrap();
    (&s).write_all(dpsock::hello().as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let (_, fds) = dpsock::sys::recv_with_fds(&s, &mut buf).unwrap();
    let region = Region::open(std::fs::File::from(fds.into_iter().next().unwrap())).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5000 {
        let shard = (rnd() % 2) as u32;
        let mut e = Entry::new((rnd() % 20) as u8, rnd());
        e.set_sock((rnd() % 8) as u32);
        if rnd() % 2 == 0 {
            e.set_addr(SocketAddr::from(([203, 0, 113, 2], (rnd() % 65536) as u16)));
        }
        let n = (rnd() % 3000) as usize;
        e.set_data(&vec![0xa5; n]);
        if rnd() % 3 == 0 {
            e.set_arg(if rnd() % 2 == 0 {
                rnd()
            } else {
                rnd() % 100_000
            });
        }
        // Payload references: anywhere, or inside the buffer area.
        let (area, area_len) = region.area();
        match rnd() % 3 {
            0 => e.set_buf(rnd(), rnd() as u32),
            1 => e.set_buf(
                (area + (rnd() as usize % area_len)) as u64,
                (rnd() % 4096) as u32,
            ),
            _ => {}
        }
        let r = region.requests(shard).unwrap();
        while !r.push(&e) {
            std::thread::sleep(Duration::from_micros(100));
            // Drain our completions so the daemon keeps serving us.
            let mut c = Entry::default();
            while region.completions(shard).unwrap().pop(&mut c) == Ok(true) {}
        }
    }
    // Random bytes over this hostile application's own mapping,
    // which the daemon must treat as untrusted.
    let raw = region.file().try_clone().unwrap();
    let len = raw.metadata().unwrap().len() as usize;
    let mut junk = vec![0u8; len - 4096];
    for b in junk.iter_mut() {
        *b = rnd() as u8;
    }
    use std::os::unix::fs::FileExt;
    raw.write_all_at(&junk, 4096).unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // The daemon and the well-behaved client are unharmed.
    router.assert_running();
    let stop = Arc::new(AtomicBool::new(false));
    let v4: SocketAddr = "203.0.113.2:7007".parse().unwrap();
    let h = echo_server(&t.h2, v4, stop.clone());
    let mut s4 = UdpSocket::bind(&good, "0.0.0.0:0".parse().unwrap()).unwrap();
    exchange(&mut s4, v4, b"unharmed");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    drop(s);
    let (status, _, _) = router.stop();
    assert!(status.success());
}

/// The C ABI: `examples/udp_echo.c` and `examples/tcp_echo.c`, compiled against
/// `dpsock.h` and `libdpsock.so`, answer the Linux host.
#[test]
fn c_applications_use_the_c_abi() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    // This test runs as target/debug/deps/sockets-HASH; cargo leaves libdpsock.so in
    // deps/ (and copies it up to target/debug on a plain build).
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let libdir = [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|d| d.join("libdpsock.so").exists())
        .unwrap_or_else(|| {
            panic!(
                "libdpsock.so is built neither in {} nor above",
                deps.display()
            )
        })
        .to_path_buf();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sock");
    let build = |name: &str| {
        let bin = std::env::temp_dir().join(format!("dpsock-{name}-{}", std::process::id()));
        let out = Command::new("cc")
            .args(["-Wall", "-Werror", "-I"])
            .arg(src.join("include"))
            .arg(src.join(format!("examples/{name}.c")))
            .arg("-L")
            .arg(&libdir)
            .args(["-ldpsock", "-o"])
            .arg(&bin)
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "cc {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        TempFile(bin)
    };
    let (udp_bin, tcp_bin) = (build("udp_echo"), build("tcp_echo"));

    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);
    let spawn = |bin: &TempFile, port: &str| {
        let mut app = Command::new(&bin.0)
            .arg(&apps)
            .arg(port)
            .env("LD_LIBRARY_PATH", &libdir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(app.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("ready {port}"));
        app
    };
    let mut udp = spawn(&udp_bin, "7777");
    let got = echo_client(&t.h1, "198.51.100.1:7777".parse().unwrap(), 5);
    assert_eq!(got, 5);
    assert!(
        udp.try_wait().unwrap().is_none(),
        "the C UDP echo server keeps serving"
    );

    let tcp = spawn(&tcp_bin, "7778");
    const LEN: usize = 300_000;
    let ok = in_ns(&t.h1, || {
        let mut s = std::net::TcpStream::connect("198.51.100.1:7778").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let data = pattern(LEN, 3);
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            back
        });
        s.write_all(&data).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        reader.join().unwrap() == data
    })
    .join()
    .unwrap();
    assert!(ok, "the C TCP echo server sent the 300 kB back intact");
    for mut app in [udp, tcp] {
        app.kill().unwrap();
        app.wait().unwrap();
    }
    router.assert_running();
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: &Netns,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let name = ns.name().to_string();
    std::thread::spawn(move || {
        let ns = Netns { name };
        ns.enter();
        std::mem::forget(ns);
        f()
    })
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

/// TCP through shared memory both ways with Linux: a dpsock server that a Linux client
/// sends 2 MB to and gets them back, and a dpsock client that downloads 2 MB from a
/// Linux server; bytes compared.
#[test]
fn applications_use_tcp_through_shared_memory() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);
    let client = Client::attach(&apps).unwrap();
    const LEN: usize = 2 << 20;

    // Our echo server on the router's address; Linux h1 is the client.
    let listener = dpsock::TcpListener::bind(&client, "0.0.0.0:8080".parse().unwrap()).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            s.write_all(&buf[..n]).unwrap();
            total += n;
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        s.flush().unwrap();
        (total, peer)
    });
    let linux_client = in_ns(&t.h1, || {
        let mut s = std::net::TcpStream::connect("198.51.100.1:8080").unwrap();
        // Generous: once, with the machine heavily loaded, this echo stalled for more
        // than 20 s (noted for the TCP work; not reproduced since).
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let data = pattern(LEN, 1);
        let mut r = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            back
        });
        s.write_all(&data).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let back = reader.join().unwrap();
        back == data
    });
    assert!(
        linux_client.join().unwrap(),
        "h1 got its 2 MB back intact through our stack"
    );
    let (total, peer) = server.join().unwrap();
    assert_eq!(total, LEN);
    assert_eq!(peer.ip().to_string(), "198.51.100.2");

    // Our client downloading from a Linux server on h2, over IPv4 and IPv6.
    for (bind, to) in [
        ("203.0.113.2:9090", "203.0.113.2:9090"),
        ("[2001:db8:2::2]:9091", "[2001:db8:2::2]:9091"),
    ] {
        let (tx, rx) = std::sync::mpsc::channel();
        let linux_server = in_ns(&t.h2, move || {
            let l = std::net::TcpListener::bind(bind).unwrap();
            tx.send(()).unwrap();
            let (mut s, _) = l.accept().unwrap();
            s.write_all(&pattern(LEN, 7)).unwrap();
        });
        rx.recv().unwrap();
        let mut s = dpsock::TcpStream::connect(&client, to.parse().unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), LEN, "{to}");
        assert!(got == pattern(LEN, 7), "{to}: bytes differ");
        linux_server.join().unwrap();
    }
    // A refused connection is an error, not a hang.
    let e = dpsock::TcpStream::connect(&client, "203.0.113.2:1".parse().unwrap())
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    router.assert_running();
}

/// `dp-httpd` (an application on our TCP) serves a 50 MB file that Linux `curl` on h1
/// downloads from the router's own stack, on AF_PACKET, AF_XDP and TAP; the bytes
/// match.
#[test]
fn curl_downloads_from_an_http_server_on_our_tcp_afpacket() {
    curl_downloads("afpacket");
}

#[test]
fn curl_downloads_from_an_http_server_on_our_tcp_afxdp() {
    curl_downloads("afxdp");
}

#[test]
fn curl_downloads_from_an_http_server_on_our_tcp_tap() {
    curl_downloads("tap");
}

fn curl_downloads(driver: &str) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    require_tool("curl");
    let t = Topology::new(driver == "tap");
    let pcap = std::env::temp_dir().join(format!("{}-r-h1.pcap", t.r.name()));
    let _pcap = TempFile(pcap.clone());
    let capture = format!("\n[capture]\nr-h1 = {:?}\n", pcap.display().to_string());
    let (mut router, apps, _guard) = start_with(&t, driver, 64, &capture);
    let dir = std::env::temp_dir().join(format!("{}-www", t.r.name()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _dir = Dir(dir.clone());
    const LEN: usize = 50 << 20;
    let body = pattern(LEN, 42);
    std::fs::write(dir.join("big.bin"), &body).unwrap();
    let mut httpd = Command::new(env!("CARGO_BIN_EXE_dp-httpd"))
        .arg("--attach")
        .arg(&apps)
        .arg("0.0.0.0:8080")
        .arg(&dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(httpd.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("ready"), "{line}");
    let out = dir.join("got.bin");
    let (ok, text) = t.h1.tool(
        "curl",
        &[
            "-sS",
            "--max-time",
            "50",
            "-o",
            out.to_str().unwrap(),
            "-w",
            "%{http_code} %{size_download}",
            "http://198.51.100.1:8080/big.bin",
        ],
    );
    assert!(ok, "curl: {text}");
    assert_eq!(text.trim(), format!("200 {LEN}"), "{text}");
    assert!(
        std::fs::read(&out).unwrap() == body,
        "downloaded bytes differ"
    );
    let (ok, text) = t.h1.tool(
        "curl",
        &[
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://198.51.100.1:8080/../etc/passwd",
        ],
    );
    assert!(ok, "{text}");
    assert_eq!(text.trim(), "404", "no escape from the root");
    httpd.kill().unwrap();
    httpd.wait().unwrap();
    let (status, _, _) = router.stop();
    assert!(status.success());
    // Our SYN-ACK to curl's SYN (RFC 9293 §3.10.7.2): MSS, window scale (RFC 7323 §2),
    // SACK permitted (RFC 2018 §2) and timestamps (RFC 7323 §3) agreed with Linux.
    let syn_acks = syn_ack_options(&std::fs::read(&pcap).unwrap(), 8080);
    assert!(!syn_acks.is_empty(), "no SYN-ACK from port 8080 captured");
    for kinds in syn_acks {
        for (k, what) in [
            (2u8, "MSS"),
            (3, "window scale"),
            (4, "SACK permitted"),
            (8, "timestamps"),
        ] {
            assert!(
                kinds.contains(&k),
                "{what} missing from our SYN-ACK: {kinds:?}"
            );
        }
    }
}

/// The TCP option kinds of every IPv4 SYN-ACK from source port `port` in a pcap file.
fn syn_ack_options(pcap: &[u8], port: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        let f = &pcap[off + 16..(off + 16 + incl).min(pcap.len())];
        off += 16 + incl;
        if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[23] != 6 {
            continue;
        }
        let ihl = usize::from(f[14] & 0x0f) * 4;
        let tcp = &f[14 + ihl..];
        if tcp.len() < 20 || u16::from_be_bytes([tcp[0], tcp[1]]) != port || tcp[13] & 0x12 != 0x12
        {
            continue;
        }
        let hl = usize::from(tcp[12] >> 4) * 4;
        let mut kinds = Vec::new();
        let mut o = &tcp[20..hl.min(tcp.len())];
        while let Some((&k, rest)) = o.split_first() {
            match k {
                0 => break,
                1 => o = rest,
                _ => {
                    kinds.push(k);
                    let l = usize::from(*rest.first().unwrap_or(&2)).max(2);
                    o = o.get(l..).unwrap_or(&[]);
                }
            }
        }
        out.push(kinds);
    }
    out
}

/// One poller over a UDP socket, a TCP listener and a connection: each is reported
/// ready exactly when it has something; options reach the daemon.
#[test]
fn a_poller_reports_readiness_of_many_sockets() {
    use dpsock::{Interest, Poller};
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);
    let client = Client::attach(&apps).unwrap();
    let udp = UdpSocket::bind(&client, "0.0.0.0:5353".parse().unwrap()).unwrap();
    udp.set_recv_buffer_size(64 * 1024).unwrap();
    let listener = dpsock::TcpListener::bind(&client, "0.0.0.0:8081".parse().unwrap()).unwrap();
    let mut poller = Poller::new(&client);
    poller.register(&udp, 1, Interest::READABLE).unwrap();
    poller.register(&listener, 2, Interest::READABLE).unwrap();
    let mut events = Vec::new();
    assert_eq!(
        poller
            .wait(&mut events, Some(Duration::from_millis(100)))
            .unwrap(),
        0,
        "nothing yet"
    );
    // A datagram from h1: the UDP socket only.
    in_ns(&t.h1, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        s.send_to(b"ping", "198.51.100.1:5353").unwrap();
    })
    .join()
    .unwrap();
    poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].token, events[0].readable), (1, true));
    let mut buf = [0u8; 16];
    assert_eq!(udp.recv_from(&mut buf).unwrap().0, 4);
    // A connection from h1: the listener; then the accepted stream, once h1 writes.
    let h1 = in_ns(&t.h1, || {
        let mut s = std::net::TcpStream::connect("198.51.100.1:8081").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        s.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        s.read_exact(&mut back).unwrap();
        back
    });
    poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(events.iter().map(|e| e.token).collect::<Vec<_>>(), vec![2]);
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_nodelay(true).unwrap();
    conn.set_keepalive(Some(Duration::from_secs(30))).unwrap();
    poller.register(&conn, 3, Interest::BOTH).unwrap();
    poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        events.iter().any(|e| e.token == 3 && e.writable),
        "{events:?}"
    );
    poller.register(&conn, 3, Interest::READABLE).unwrap();
    poller
        .wait(&mut events, Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        events.iter().any(|e| e.token == 3 && e.readable),
        "{events:?}"
    );
    let mut got = [0u8; 5];
    conn.read_exact(&mut got).unwrap();
    conn.write_all(&got).unwrap();
    conn.flush().unwrap();
    assert_eq!(&h1.join().unwrap(), b"hello");
    router.assert_running();
}

/// `dp-bulk send` (an application) to a Linux receiver on h2: it reports a rate, and
/// the receiver got exactly the bytes it reports sent.
#[test]
fn dp_bulk_sends_to_a_linux_receiver_and_reports_its_rate() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);
    let (tx, rx) = std::sync::mpsc::channel();
    let receiver = in_ns(&t.h2, move || {
        let l = std::net::TcpListener::bind("203.0.113.2:5001").unwrap();
        tx.send(()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break total;
            }
            total += n as u64;
        }
    });
    rx.recv().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dp-bulk"))
        .arg("--attach")
        .arg(&apps)
        .args(["send", "203.0.113.2:5001", "--seconds", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: u64 = text
        .strip_prefix("sent ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {text:?}"));
    assert!(text.contains("Gbit/s"), "{text}");
    assert!(sent > 0);
    assert_eq!(
        receiver.join().unwrap(),
        sent,
        "the receiver got every byte sent"
    );
    router.assert_running();
}

/// Our client downloads from a Linux server: `dp-get` (an application on our TCP) fetches
/// a 50 MB file from `python3 -m http.server` on h2, over IPv4 on AF_XDP and over IPv6 on
/// TAP; the bytes match.
#[test]
fn our_client_downloads_from_a_linux_http_server_afxdp() {
    our_client_downloads("afxdp", "203.0.113.2");
}

#[test]
fn our_client_downloads_from_a_linux_http_server_tap_ipv6() {
    our_client_downloads("tap", "2001:db8:2::2");
}

fn our_client_downloads(driver: &str, server: &str) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    require_tool("python3");
    let t = Topology::new(driver == "tap");
    let (mut router, apps, _guard) = start_with(&t, driver, 64, "");
    let dir = std::env::temp_dir().join(format!("{}-srv", t.r.name()));
    std::fs::create_dir_all(dir.join("www")).unwrap();
    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _dir = Dir(dir.clone());
    const LEN: usize = 50 << 20;
    let body = pattern(LEN, 7);
    std::fs::write(dir.join("www/big.bin"), &body).unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        Command::new("ip")
            .args(["netns", "exec", t.h2.name(), "python3", "-m", "http.server"])
            .args(["--bind", server, "--directory"])
            .arg(dir.join("www"))
            .arg("8000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t
        .h2
        .exec(&["ss", "-Hltn", "sport = :8000"])
        .contains("8000")
    {
        assert!(
            Instant::now() < deadline,
            "http.server not listening in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = if server.contains(':') {
        format!("http://[{server}]:8000/big.bin")
    } else {
        format!("http://{server}:8000/big.bin")
    };
    let got = dir.join("got.bin");
    let out = Command::new(env!("CARGO_BIN_EXE_dp-get"))
        .arg("--attach")
        .arg(&apps)
        .arg("-o")
        .arg(&got)
        .arg(&url)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "dp-get {url}: {err}");
    assert!(err.starts_with(&format!("200 {LEN} ")), "{err}");
    assert!(
        std::fs::read(&got).unwrap() == body,
        "downloaded bytes differ"
    );
    // A missing file is a 404 and a failure.
    let out = Command::new(env!("CARGO_BIN_EXE_dp-get"))
        .arg("--attach")
        .arg(&apps)
        .arg("-o")
        .arg(dir.join("none.bin"))
        .arg(url.replace("big.bin", "none.bin"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success());
    assert!(err.starts_with("404 "), "{err}");
    router.assert_running();
}

/// The borrow-style calls lend the shared buffer area itself (the only copy is the
/// one between it and frames), ring sizes follow SO_SNDBUF/SO_RCVBUF, and the
/// application's buffer-memory quota is an error (`ENOBUFS`), not a crash.
#[test]
fn sockets_lend_the_buffer_area_within_the_quota() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = Topology::new(false);
    let (mut router, apps, _guard) = start_with(&t, "afpacket", 64, "buffer-memory-mib = 4\n");
    let client = Client::attach(&apps).unwrap();

    // UDP written into a send slot and read from a receive slot in place.
    let stop = Arc::new(AtomicBool::new(false));
    let v4: SocketAddr = "203.0.113.2:7010".parse().unwrap();
    let h = echo_server(&t.h2, v4, stop.clone());
    let mut s = UdpSocket::bind(&client, "0.0.0.0:0".parse().unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut echoed = false;
    for _ in 0..20 {
        let n = s
            .send_with(v4, |slot| {
                slot[..5].copy_from_slice(b"lent!");
                5
            })
            .unwrap();
        assert_eq!(n, 5);
        while let Ok((d, from)) = s.recv_with(|d, from| (d.to_vec(), from)) {
            echoed |= d == b"lent!" && from == v4;
        }
        if echoed {
            break;
        }
    }
    assert!(echoed, "no echo of the datagram written in place");
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();

    // TCP: a Linux echo server on h2; we write into the send ring and read from the
    // receive ring in place, with rings of our own sizes.
    let (tx, rx) = std::sync::mpsc::channel();
    let linux_server = in_ns(&t.h2, move || {
        let l = std::net::TcpListener::bind("203.0.113.2:9095").unwrap();
        tx.send(()).unwrap();
        let (s, _) = l.accept().unwrap();
        let (mut r, mut w) = (s.try_clone().unwrap(), s);
        std::io::copy(&mut r, &mut w).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    rx.recv().unwrap();
    let to: SocketAddr = "203.0.113.2:9095".parse().unwrap();
    let mut c = dpsock::TcpStream::connect_with_buffers(&client, to, 1 << 20, 512 << 10).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let data = pattern(300_000, 3);
    let reader = {
        let mut sent = 0;
        let mut back = Vec::new();
        while sent < data.len() {
            sent += c
                .write_with(|room| {
                    let n = room.len().min(data.len() - sent);
                    room[..n].copy_from_slice(&data[sent..sent + n]);
                    n
                })
                .unwrap();
            // Read what came back so far without waiting for more than is there.
            while back.len() + 65536 < sent {
                c.read_with(|b| {
                    back.extend_from_slice(b);
                    b.len()
                })
                .unwrap();
            }
        }
        c.shutdown(std::net::Shutdown::Write).unwrap();
        loop {
            let n = c
                .read_with(|b| {
                    back.extend_from_slice(b);
                    b.len()
                })
                .unwrap();
            if n == 0 {
                break;
            }
        }
        back
    };
    assert!(reader == data, "echo through the lent rings differs");
    linux_server.join().unwrap();

    // The quota (4 MiB): rings that do not fit are refused, and so are options
    // asking for more than the whole area.
    let e = dpsock::TcpStream::connect_with_buffers(&client, to, 3 << 20, 3 << 20)
        .err()
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "{e}");
    let l = dpsock::TcpListener::bind(&client, "0.0.0.0:8081".parse().unwrap()).unwrap();
    let e = l.set_recv_buffer_size(8 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "{e}");
    l.set_send_buffer_size(1 << 20).unwrap();
    let e = s.set_recv_buffer_size(16 << 20).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOBUFS), "{e}");
    // Smaller receive slots are fine, and the socket still works.
    s.set_recv_buffer_size(8192).unwrap();
    drop(c);
    router.assert_running();
    let (status, _, _) = router.stop();
    assert!(status.success());
}
