//! Helpers for tests against the Linux kernel: network namespaces made and removed by
//! each test, threads that run inside them, and a `Stack` driven through a driver.
//!
//! Every namespace is named `dpt-<pid>-<n>` and deleted by a Drop guard, so cleanup
//! also happens when a test panics. No address is ever configured in the root namespace.
#![allow(dead_code, unsafe_code)]

pub mod bulk;

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use drivers::{Capture, Driver};
use stack::wire::EthernetAddress;
use stack::{
    EchoRequest, Event, Frame, FramePool, InterfaceConfig, PoolConfig, PortId, Stack, StackConfig,
};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` with `args`; panics with its output when it fails.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace that lives as long as this value.
pub struct Netns {
    /// Its name under /var/run/netns.
    pub name: String,
}

impl Netns {
    /// Creates `dpt-<pid>-<n>` with its loopback up.
    pub fn new() -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("dpt-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip("link set lo up");
        ns
    }

    /// Runs `ip -n NAME <args>` (arguments split on spaces).
    pub fn ip(&self, args: &str) -> String {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend(args.split_whitespace());
        ip(&v)
    }

    /// Moves the calling thread into this namespace (setns changes only the caller).
    pub fn enter(&self) {
        let path = format!("/var/run/netns/{}", self.name);
        let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns(2) on a descriptor that stays open for the call.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
    }

    /// Runs `f` on a new thread inside this namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                self.enter();
                f()
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Waits (up to 5 s) until `dev` is operationally up (state `UP`, or `UNKNOWN` with
    /// the carrier on, as TAP devices report). Linux activates a device's
    /// queueing discipline only then (from its link-watch work, up to a second after
    /// `ip link set up`); before, frames sent on it are dropped while the send reports
    /// success.
    pub fn wait_up(&self, dev: &str) {
        let deadline = StdInstant::now() + StdDuration::from_secs(5);
        loop {
            let out = self.ip(&format!("-br link show dev {dev}"));
            let state = out.split_whitespace().nth(1);
            let carrier = out.contains("LOWER_UP");
            if state == Some("UP") || (state == Some("UNKNOWN") && carrier) {
                return;
            }
            assert!(
                StdInstant::now() < deadline,
                "{dev} not up after 5 s: {out}"
            );
            std::thread::sleep(StdDuration::from_millis(10));
        }
    }

    /// MAC address of `dev` in this namespace.
    pub fn mac(&self, dev: &str) -> EthernetAddress {
        let out = self.ip(&format!("-br link show dev {dev}"));
        let text = out.split_whitespace().nth(2).expect("ip -br link: address");
        let mut m = [0u8; 6];
        for (b, part) in m.iter_mut().zip(text.split(':')) {
            *b = u8::from_str_radix(part, 16).expect("hex byte");
        }
        EthernetAddress(m)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Our side and the kernel's side of a veth pair, each in its own namespace: `dp0` in
/// `ours` (no kernel addresses: IPv6 address generation off, so the kernel there never
/// answers for our stack), `k0` in `kernel` with 192.0.2.2/24 and 2001:db8::2/64 (no
/// DAD, usable at once). Both up.
pub struct VethPair {
    /// Where our driver runs.
    pub ours: Netns,
    /// Where the Linux stack answers.
    pub kernel: Netns,
}

impl VethPair {
    /// Builds the pair.
    pub fn new() -> VethPair {
        let ours = Netns::new();
        let kernel = Netns::new();
        ours.ip(&format!(
            "link add dp0 type veth peer name k0 netns {}",
            kernel.name
        ));
        ours.ip("link set dp0 addrgenmode none");
        ours.ip("link set dp0 up");
        kernel.ip("addr add 192.0.2.2/24 dev k0");
        kernel.ip("addr add 2001:db8::2/64 dev k0 nodad");
        kernel.ip("link set k0 up");
        ours.wait_up("dp0");
        kernel.wait_up("k0");
        VethPair { ours, kernel }
    }
}

/// A pool of 1024 default frames.
pub fn pool() -> FramePool {
    FramePool::with_frames(1024, PoolConfig::default()).unwrap()
}

/// Our stack behind a driver, on the wall clock.
pub struct Host<D: Driver> {
    /// The stack.
    pub stack: Stack,
    /// The driver.
    pub drv: D,
    /// When set, every frame received and sent is recorded, as a runtime would.
    pub capture: Option<Capture<Vec<u8>>>,
    start: StdInstant,
    rx: Vec<Frame>,
    tx: Vec<Frame>,
}

impl<D: Driver> Host<D> {
    /// A host stack with one port on `drv` (its MAC and MTU) and the given addresses.
    pub fn new(drv: D, pool: FramePool, v4: &str, v6: &str) -> Self {
        let link = drv.link();
        let mut stack = Stack::new(StackConfig::host("ours"), pool, 7);
        stack
            .add_port(
                InterfaceConfig::new(link.name.clone(), link.mac)
                    .with_mtu(link.mtu)
                    .with_ipv4(v4.parse().unwrap())
                    .with_ipv6(v6.parse().unwrap()),
            )
            .unwrap();
        Host {
            stack,
            drv,
            capture: None,
            start: StdInstant::now(),
            rx: Vec::new(),
            tx: Vec::new(),
        }
    }

    fn now(&self) -> stack::Instant {
        stack::Instant::from_nanos(self.start.elapsed().as_nanos() as u64)
    }

    /// One round: receive on every queue into the stack, run timers, transmit on queue 0.
    pub fn pump(&mut self) {
        let now = self.now();
        for q in 0..self.drv.link().queues {
            while self.drv.recv(q, &mut self.rx, 64).unwrap() > 0 {
                if let Some(c) = self.capture.as_mut() {
                    c.capture_batch(&self.rx, now).unwrap();
                }
                self.stack.receive_batch(now, PortId(0), &mut self.rx);
            }
        }
        self.stack.poll(now);
        self.stack.drain_tx(PortId(0), &mut self.tx, usize::MAX);
        if let Some(c) = self.capture.as_mut() {
            c.capture_batch(&self.tx, now).unwrap();
        }
        self.drv.send(0, &mut self.tx).unwrap();
        assert!(self.tx.is_empty(), "the device took every frame");
    }

    /// Pings `dst` from our stack and waits up to 5 s for the reply; returns the
    /// replier's address and sequence number.
    pub fn ping(&mut self, dst: &str, seq: u16) -> (IpAddr, u16) {
        let dst: IpAddr = dst.parse().unwrap();
        let now = self.now();
        self.stack
            .send_echo_request(
                now,
                EchoRequest {
                    dst,
                    ident: 0x5150,
                    seq,
                    data_len: 200,
                    ttl: None,
                },
            )
            .unwrap();
        let deadline = StdInstant::now() + StdDuration::from_secs(5);
        while StdInstant::now() < deadline {
            self.pump();
            while let Some(ev) = self.stack.pop_event() {
                if let Event::EchoReply { from, seq, .. } = ev {
                    return (from, seq);
                }
            }
            std::thread::sleep(StdDuration::from_micros(200));
        }
        panic!(
            "no echo reply from {dst} within 5 s; driver {:?}, stack {:?}",
            self.drv.stats(),
            self.stack.counters()
        );
    }
}
