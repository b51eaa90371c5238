//! Teardown of the AF_XDP driver as a whole process sees it: a helper process
//! (`examples/afxdp_hold.rs`) opens the driver on `dp0` of a veth pair in its own
//! namespaces (see `common`), installs [`drivers::Shutdown`] and says `ready`; after
//! SIGTERM, and after SIGINT, it drops the driver and exits 0, and `ip link` shows no
//! XDP program left on the interface.
//!
//! SIGKILL gives the process no chance to drop anything. The sockets and the UMEM go
//! with it, and so does our XDP program: it is attached through a BPF link
//! (`bpf_link_create`), which the kernel releases with the process's descriptors. The
//! last test checks that nothing is left and that a new driver attaches at once.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::VethPair;

/// How long the helper may take to attach, and to exit after a signal.
const LIMIT: Duration = Duration::from_secs(10);

/// The helper binary: cargo builds examples next to `deps/`, where this test runs from.
fn helper_path() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let dir = me
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join("afxdp_hold");
    assert!(
        path.exists(),
        "{} missing: cargo test builds examples (cargo build --examples)",
        path.display()
    );
    path
}

/// The helper running in a namespace; killed (SIGKILL) and reaped on drop if still
/// running, so a failing test leaves no process behind.
struct Helper {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Helper {
    /// Starts the helper on `dp0` inside `netns` (with `ip netns exec`, which execs it,
    /// so the pid is the helper's) and waits for its `ready` line; panics if none comes.
    fn start(netns: &str) -> Helper {
        Helper::try_start(netns).unwrap_or_else(|e| panic!("{e}"))
    }

    /// As [`Helper::start`]; when no `ready` line comes, the helper's stderr.
    fn try_start(netns: &str) -> Result<Helper, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(helper_path())
            .arg("dp0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec afxdp_hold");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut h = Helper { child, lines };
        match h.lines.recv_timeout(LIMIT) {
            Ok(line) if line.starts_with("ready") => Ok(h),
            got => {
                let _ = h.child.kill();
                let st = h.child.wait();
                let mut err = String::new();
                if let Some(mut e) = h.child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                Err(format!(
                    "helper not ready within {LIMIT:?}: {got:?}, {st:?}; stderr: {err}"
                ))
            }
        }
    }

    /// Sends `signal` (a name for kill(1): TERM, INT, KILL).
    fn signal(&self, signal: &str) {
        let st = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{signal} failed: {st}");
    }

    /// Waits (up to [`LIMIT`]) for the helper to exit.
    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "helper still running after {LIMIT:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts the helper, checks the program is on `dp0`, sends `signal`, and checks the
/// helper exits 0 with no XDP program left.
fn orderly_on(signal: &str) {
    let pair = VethPair::new();
    let mut h = Helper::start(&pair.ours.name);
    let shown = pair.ours.ip("link show dev dp0");
    assert!(shown.contains("xdp"), "not attached while running: {shown}");
    h.signal(signal);
    let st = h.wait();
    assert!(st.success(), "helper after SIG{signal}: {st}");
    assert_eq!(
        h.lines
            .recv_timeout(LIMIT)
            .ok()
            .as_deref()
            .map(|l| l.starts_with("stopping")),
        Some(true),
        "helper did not report its orderly stop"
    );
    let shown = pair.ours.ip("link show dev dp0");
    assert!(
        !shown.contains("xdp"),
        "left behind after SIG{signal}: {shown}"
    );
}

#[test]
fn after_sigterm_the_helper_exits_zero_and_no_xdp_program_is_left() {
    orderly_on("TERM");
}

#[test]
fn after_sigint_the_helper_exits_zero_and_no_xdp_program_is_left() {
    orderly_on("INT");
}

/// SIGKILL gives the process no chance to drop anything; the XDP program is attached
/// through a BPF link, which the kernel releases with the process's descriptors, so
/// nothing stays on the interface and a new driver attaches at once.
#[test]
fn after_sigkill_no_xdp_program_is_left_and_a_new_driver_attaches() {
    let pair = VethPair::new();
    let mut h = Helper::start(&pair.ours.name);
    let shown = pair.ours.ip("link show dev dp0");
    assert!(shown.contains("xdp"), "not attached while running: {shown}");
    h.signal("KILL");
    let st = h.wait();
    assert!(!st.success(), "SIGKILL cannot end in success: {st}");
    let shown = pair.ours.ip("link show dev dp0");
    assert!(!shown.contains("xdp"), "left behind after SIGKILL: {shown}");
    let mut h = Helper::start(&pair.ours.name);
    h.signal("TERM");
    assert!(h.wait().success());
    let shown = pair.ours.ip("link show dev dp0");
    assert!(!shown.contains("xdp"), "left behind after SIGTERM: {shown}");
}
