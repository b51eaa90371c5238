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
    let apps = apps_path(t);
    // Removed by the router on a clean stop; by this guard when a test ends otherwise.
    let guard = TempFile(apps.clone());
    let tables = format!(
        "\n[sockets]\npath = {:?}\nmax-sockets = {max_sockets}\n",
        apps.display().to_string()
    );
    let toml = router_toml_with("afpacket", "", &tables).replace("cores = [0]", "cores = [0, 1]");
    let mut router = Router::start_with(&t.r, "afpacket", &toml);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !apps.exists() {
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
    let e = s4
        .recv_from(&mut buf)
        .expect_err("an error once the daemon is gone");
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
        let mut e = Entry::new((rnd() % 8) as u8, rnd());
        e.set_sock((rnd() % 8) as u32);
        if rnd() % 2 == 0 {
            e.set_addr(SocketAddr::from(([203, 0, 113, 2], (rnd() % 65536) as u16)));
        }
        let n = (rnd() % 3000) as usize;
        e.set_data(&vec![0xa5; n]);
        if rnd() % 3 == 0 {
            e.set_arg(rnd());
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

/// The C ABI: `examples/udp_echo.c` compiled against `dpsock.h` and `libdpsock.so`
/// answers the Linux host.
#[test]
fn a_c_application_uses_the_c_abi() {
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
    let bin = std::env::temp_dir().join(format!("dpsock-udp-echo-{}", std::process::id()));
    let _bin = TempFile(bin.clone());
    let out = Command::new("cc")
        .args(["-Wall", "-Werror", "-I"])
        .arg(src.join("include"))
        .arg(src.join("examples/udp_echo.c"))
        .arg("-L")
        .arg(&libdir)
        .args(["-ldpsock", "-o"])
        .arg(&bin)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let t = Topology::new(false);
    let (mut router, apps, _guard) = start(&t, 64);
    let mut app = Command::new(&bin)
        .arg(&apps)
        .arg("7777")
        .env("LD_LIBRARY_PATH", &libdir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(app.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready 7777");
    let got = echo_client(&t.h1, "198.51.100.1:7777".parse().unwrap(), 5);
    assert_eq!(got, 5);
    assert!(
        app.try_wait().unwrap().is_none(),
        "the C echo server keeps serving"
    );
    app.kill().unwrap();
    app.wait().unwrap();
    router.assert_running();
}
