//! TAP devices: Ethernet frames between the kernel and this process through
//! `/dev/net/tun`.
//!
//! [`Tap::open`] attaches to (or creates) a TAP interface with `IFF_TAP | IFF_NO_PI`,
//! one non-blocking file descriptor per queue (`IFF_MULTI_QUEUE` when more than one is
//! asked). A TAP interface has two sides: the kernel's (the interface the kernel routes
//! through, with its own MAC) and ours (whatever writes and reads the descriptor, like
//! the far end of a cable). So [`LinkInfo::mac`] is the MAC *our* stack should use: the
//! configured one, or by default the kernel's MAC with its last byte inverted and the
//! locally administered bit set; [`Tap::kernel_mac`] is the kernel side's.
//!
//! Receive reads each frame straight into a pool frame (one copy, kernel to frame; a
//! one-byte spill buffer behind it detects frames longer than a pool frame, which are
//! dropped and counted in [`DriverStats::rx_errors`]);
//! transmit writes from the frame's data. A batch loops until the descriptor has nothing
//! more (`EAGAIN`) or `max` frames arrived. An interface created here (not persistent)
//! disappears when the last descriptor closes, that is when the [`Tap`] drops.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use stack::wire::EthernetAddress;
use stack::{Frame, FramePool};

use crate::sys::{self, errno, would_block};
use crate::{Driver, DriverError, DriverStats, LinkInfo};

const NEEDS: &str = "CAP_NET_ADMIN";

/// Most queues a TAP interface may have (the kernel's `MAX_TAP_QUEUES`).
pub const MAX_QUEUES: u16 = 256;

/// How to open a TAP interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapConfig {
    /// Interface name (created when it does not exist).
    pub name: String,
    /// Queues, each with its own descriptor (1 by default).
    pub queues: u16,
    /// MAC of our side; `None` derives one from the kernel's MAC.
    pub mac: Option<EthernetAddress>,
}

impl TapConfig {
    /// One queue, derived MAC.
    pub fn new(name: impl Into<String>) -> Self {
        TapConfig {
            name: name.into(),
            queues: 1,
            mac: None,
        }
    }

    /// Sets the queue count.
    pub fn with_queues(mut self, queues: u16) -> Self {
        self.queues = queues;
        self
    }

    /// Sets our side's MAC.
    pub fn with_mac(mut self, mac: EthernetAddress) -> Self {
        self.mac = Some(mac);
        self
    }
}

/// An open TAP interface.
pub struct Tap {
    name: String,
    fds: Vec<OwnedFd>,
    pool: FramePool,
    mac: EthernetAddress,
    kernel_mac: EthernetAddress,
    mtu: u16,
    stats: DriverStats,
}

impl Tap {
    /// Opens `config.name` as a TAP interface with frames from `pool`.
    ///
    /// Errors: a bad name or queue count, a pool whose frames cannot hold an MTU-sized
    /// frame, no `/dev/net/tun`, no privilege (`CAP_NET_ADMIN`), or an existing
    /// interface of another kind (or with another queue mode).
    pub fn open(config: &TapConfig, pool: FramePool) -> Result<Tap, DriverError> {
        let name = config.name.as_str();
        let mut req = sys::ifreq_named(name)?;
        if config.queues == 0 || config.queues > MAX_QUEUES {
            return Err(DriverError::BadConfig {
                iface: name.to_string(),
                why: format!("{} queues asked (use 1 to {MAX_QUEUES})", config.queues),
            });
        }
        let mut flags = libc::IFF_TAP | libc::IFF_NO_PI;
        if config.queues > 1 {
            flags |= libc::IFF_MULTI_QUEUE;
        }
        req.ifr_ifru.ifru_flags = flags as libc::c_short;
        let path = c"/dev/net/tun";
        let mut fds = Vec::with_capacity(usize::from(config.queues));
        for _ in 0..config.queues {
            // SAFETY: open(2) with a NUL-terminated path; the result is checked.
            let fd = unsafe {
                libc::open(
                    path.as_ptr(),
                    libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                let e = errno();
                if e.raw_os_error() == Some(libc::ENOENT) {
                    return Err(DriverError::BadConfig {
                        iface: name.to_string(),
                        why:
                            "opening /dev/net/tun: no such file (load the tun module: modprobe tun)"
                                .into(),
                    });
                }
                return Err(DriverError::from_io(name, "opening /dev/net/tun", NEEDS, e));
            }
            // SAFETY: `fd` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut r = req;
            // SAFETY: TUNSETIFF reads the name and flags and may write the name back into
            // this ifreq, which lives for the call.
            let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut r) };
            if rc < 0 {
                let e = errno();
                return Err(match e.raw_os_error() {
                    Some(libc::EINVAL) | Some(libc::EBUSY) => DriverError::BadConfig {
                        iface: name.to_string(),
                        why: format!(
                            "attaching as TAP (TUNSETIFF): {e} (the name is taken by another kind of interface, one in use, or one with another queue mode: pick another name or delete it)"
                        ),
                    },
                    _ => DriverError::from_io(name, "attaching as TAP (TUNSETIFF)", NEEDS, e),
                });
            }
            fds.push(fd);
        }
        let k = sys::kernel_link(name, NEEDS)?;
        sys::check_frame_room(name, &pool, k.mtu)?;
        let mac = config.mac.unwrap_or_else(|| {
            let mut m = k.mac.0;
            m[0] = (m[0] | 0x02) & !0x01;
            m[5] ^= 0xff;
            EthernetAddress(m)
        });
        Ok(Tap {
            name: name.to_string(),
            fds,
            pool,
            mac,
            kernel_mac: k.mac,
            mtu: k.mtu,
            stats: DriverStats::default(),
        })
    }

    /// The MAC of the kernel's side of the interface.
    pub fn kernel_mac(&self) -> EthernetAddress {
        self.kernel_mac
    }

    /// The pool receive takes frames from.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    fn fd(&self, queue: u16) -> Result<RawFd, DriverError> {
        match self.fds.get(usize::from(queue)) {
            Some(fd) => Ok(fd.as_raw_fd()),
            None => Err(DriverError::NoSuchQueue {
                iface: self.name.clone(),
                queue,
                queues: self.fds.len() as u16,
            }),
        }
    }
}

impl Driver for Tap {
    fn recv(&mut self, queue: u16, out: &mut Vec<Frame>, max: usize) -> Result<usize, DriverError> {
        let fd = self.fd(queue)?;
        let mut n = 0;
        while n < max {
            let Some(mut frame) = self.pool.alloc() else {
                self.stats.rx_pool_empty += 1;
                break;
            };
            let cap = frame.capacity();
            // Cannot fail: the length is the capacity.
            let _ = frame.set_len(cap);
            let buf = frame.data_mut();
            // A frame longer than the pool frame spills into `overflow`, so the length
            // read tells a truncated frame from one that fits exactly.
            let mut overflow = [0u8; 1];
            let iov = [
                libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                },
                libc::iovec {
                    iov_base: overflow.as_mut_ptr().cast(),
                    iov_len: overflow.len(),
                },
            ];
            // SAFETY: both iovecs point at memory valid for writes of their lengths: the
            // data of `frame`, which this call owns, and `overflow` on this stack.
            let r = unsafe { libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int) };
            if r < 0 {
                let e = errno();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    _ => {
                        self.stats.rx_errors += 1;
                        return Err(DriverError::from_io(
                            &self.name,
                            "reading a frame",
                            NEEDS,
                            e,
                        ));
                    }
                }
            }
            let len = r as usize;
            // Past `cap`: the frame did not fit (it spilled into `overflow`, or the tun
            // driver reported its whole length): truncated, dropped and counted.
            if len > cap || len == 0 {
                self.stats.rx_errors += 1;
                continue;
            }
            // Cannot fail: len <= cap.
            let _ = frame.set_len(len);
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += len as u64;
            out.push(frame);
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, queue: u16, frames: &mut Vec<Frame>) -> Result<usize, DriverError> {
        let fd = self.fd(queue)?;
        let mut done = 0;
        let mut failure = None;
        while done < frames.len() {
            let data = frames[done].data();
            // SAFETY: `data` is valid for reads of `data.len()` bytes.
            let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
            if r >= 0 {
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += data.len() as u64;
                done += 1;
                continue;
            }
            let e = errno();
            if would_block(&e) {
                break;
            }
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINVAL) | Some(libc::EMSGSIZE) | Some(libc::EFAULT) => {
                    // The kernel refused this frame (too short or too long): drop it.
                    self.stats.tx_errors += 1;
                    done += 1;
                }
                Some(libc::EIO) => {
                    // The tun driver's answer while the interface is down.
                    failure = Some(DriverError::LinkDown {
                        iface: self.name.clone(),
                        op: "writing a frame",
                        source: e,
                    });
                    break;
                }
                _ => {
                    self.stats.tx_errors += 1;
                    failure = Some(DriverError::from_io(
                        &self.name,
                        "writing a frame",
                        NEEDS,
                        e,
                    ));
                    break;
                }
            }
        }
        frames.drain(..done);
        match failure {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }

    fn link(&self) -> LinkInfo {
        LinkInfo {
            name: self.name.clone(),
            mac: self.mac,
            mtu: self.mtu,
            queues: self.fds.len() as u16,
        }
    }

    fn poll_fd(&self, queue: u16) -> Option<RawFd> {
        self.fds.get(usize::from(queue)).map(|fd| fd.as_raw_fd())
    }

    fn stats(&self) -> DriverStats {
        self.stats
    }
}
