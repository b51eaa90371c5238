//! Orderly teardown on SIGINT and SIGTERM.
//!
//! A process that owns drivers installs one [`Shutdown`] at start, then polls
//! [`Shutdown::requested`] in its loop (or blocks in [`Shutdown::wait`] /
//! [`Shutdown::wait_timeout`], or adds [`Shutdown`]'s descriptor to its own `poll`
//! set). When a signal is requested the owner leaves its loop and drops its drivers,
//! which is what tears them down: the AF_XDP driver detaches its XDP program (through
//! `bpf::XdpProgram`'s `Drop`) and closes its sockets and UMEM, the others close their
//! descriptors. The signal handler itself only sets a flag and writes a byte to a
//! socket pair (async-signal-safe; through the `signal-hook` crate), so no teardown
//! runs in signal context.
//!
//! A second SIGINT or SIGTERM, after the first, ends the process at once with status
//! 128 + signal number, for when the orderly path hangs; nothing is then dropped.
//!
//! What this cannot cover: a process that ends without dropping its drivers
//! (SIGKILL, `std::process::exit`, an abort). Sockets and the UMEM go with the
//! process, but the XDP program is attached through netlink (`bpf_xdp_attach`, not a
//! BPF link), so the interface keeps it until someone detaches it
//! (`ip link set dev DEV xdp off`) or the interface goes away; see
//! `drivers/tests/teardown.rs`.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::{flag, low_level::pipe};

/// The signals that request a shutdown.
pub const SIGNALS: [i32; 2] = [SIGINT, SIGTERM];

/// A request to shut down, set by SIGINT or SIGTERM.
///
/// Install it once per process, before opening drivers, and keep it for the life of
/// the process: the handlers stay registered after it is dropped (`signal-hook` cannot
/// restore the default action), so dropping it early would leave both signals caught
/// with nobody looking.
#[derive(Debug)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
    signal: Arc<AtomicUsize>,
    wake: UnixStream,
}

impl Shutdown {
    /// Registers the handlers for SIGINT and SIGTERM. Fails only when a handler cannot
    /// be installed or the wake-up socket pair cannot be made.
    pub fn install() -> io::Result<Shutdown> {
        let flag = Arc::new(AtomicBool::new(false));
        let signal = Arc::new(AtomicUsize::new(0));
        let (wake, notify) = UnixStream::pair()?;
        for sig in SIGNALS {
            // Registered first, so it sees the flag as it was before this signal: only
            // a second signal ends the process.
            flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&flag))?;
            flag::register_usize(sig, Arc::clone(&signal), sig as usize)?;
            flag::register(sig, Arc::clone(&flag))?;
            pipe::register(sig, notify.try_clone()?)?;
        }
        Ok(Shutdown { flag, signal, wake })
    }

    /// Whether SIGINT or SIGTERM has arrived: the caller should drop its drivers and
    /// return.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Requests a shutdown from inside the process (no signal): [`Shutdown::requested`]
    /// turns true; sleepers see it at their next wake-up.
    pub fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// The signal that requested the shutdown (the last one, if several came).
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    /// Blocks until a shutdown is requested.
    pub fn wait(&self) {
        while !self.wait_timeout(Duration::from_secs(3600)) {}
    }

    /// Blocks until a shutdown is requested or `timeout` passes; returns
    /// [`Shutdown::requested`].
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 16];
        loop {
            if self.requested() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // A signal after the check above still writes its byte, so this read
            // returns: no wake-up is lost. Errors (a timeout, EINTR) just loop.
            let _ = self.wake.set_read_timeout(Some(left));
            let _ = (&self.wake).read(&mut buf);
        }
    }
}

/// The read end of the wake-up socket pair: readable once a signal has arrived, for a
/// caller that sleeps in its own `poll`/`epoll` over driver descriptors. Do not read
/// from it elsewhere; [`Shutdown::requested`] is the answer either way.
impl AsFd for Shutdown {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only test in this binary that raises a signal: handlers are process-wide.
    #[test]
    fn a_signal_sets_the_request_and_wakes_a_waiter() {
        let s = Shutdown::install().unwrap();
        assert!(!s.requested());
        assert_eq!(s.signal(), None);
        assert!(!s.wait_timeout(Duration::from_millis(20)));
        let waiter = std::thread::scope(|sc| {
            let t = sc.spawn(|| {
                let start = Instant::now();
                (s.wait_timeout(Duration::from_secs(10)), start.elapsed())
            });
            std::thread::sleep(Duration::from_millis(20));
            signal_hook::low_level::raise(SIGINT).unwrap();
            t.join().unwrap()
        });
        assert!(waiter.0, "not woken");
        assert!(
            waiter.1 < Duration::from_secs(5),
            "woken late: {:?}",
            waiter.1
        );
        assert!(s.requested());
        assert_eq!(s.signal(), Some(SIGINT));
        s.wait();
    }
}
