//! AF_PACKET: raw Ethernet frames on any Linux interface, the universal fallback.
//!
//! One `socket(AF_PACKET, SOCK_RAW)` bound to the interface index with protocol
//! `ETH_P_ALL` (made with protocol 0 and bound afterwards, so that no frame of another
//! interface slips in before the bind), non-blocking. Receive and transmit are batched
//! with `recvmmsg` / `sendmmsg`, each message's single `iovec` pointing straight into a
//! pool frame: one copy per frame (kernel to frame, frame to kernel), one system call per
//! batch of up to [`BATCH`] frames.
//!
//! Not done here: TPACKET_V3 memory-mapped rings (they would save the per-frame copy and
//! most system calls; `recvmmsg`/`sendmmsg` is enough for a fallback). Frames the kernel
//! sends *out* of the interface are ignored: `PACKET_IGNORE_OUTGOING` is set where the
//! kernel has it (4.20+) and the packet type of every received frame is checked as well,
//! so the driver never sees its own transmissions. VLAN tags that the kernel stripped on
//! receive (VLAN offload) are not reinserted. A frame larger than a pool frame (for
//! example a GRO/GSO aggregate) is truncated by the kernel; it is dropped and counted in
//! [`DriverStats::rx_errors`]. Frames the kernel dropped because the socket buffer was
//! full are read with `PACKET_STATISTICS` and counted in [`DriverStats::rx_dropped`].
#![allow(unsafe_code)]

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use stack::wire::EthernetAddress;
use stack::{Frame, FramePool};

use crate::sys::{self, errno, would_block};
use crate::{Driver, DriverError, DriverStats, LinkInfo};

const NEEDS: &str = "CAP_NET_RAW";

/// Most frames one `recvmmsg` / `sendmmsg` moves.
pub const BATCH: usize = 64;

/// How to open an AF_PACKET socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Interface name.
    pub name: String,
    /// Socket receive buffer in bytes (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`);
    /// `None` keeps the system default.
    pub rcvbuf: Option<usize>,
    /// Socket send buffer in bytes, likewise.
    pub sndbuf: Option<usize>,
}

impl AfPacketConfig {
    /// System default buffers.
    pub fn new(name: impl Into<String>) -> Self {
        AfPacketConfig {
            name: name.into(),
            rcvbuf: None,
            sndbuf: None,
        }
    }

    /// Sets the receive buffer size.
    pub fn with_rcvbuf(mut self, bytes: usize) -> Self {
        self.rcvbuf = Some(bytes);
        self
    }

    /// Sets the send buffer size.
    pub fn with_sndbuf(mut self, bytes: usize) -> Self {
        self.sndbuf = Some(bytes);
        self
    }
}

/// An AF_PACKET socket bound to one interface (one queue).
pub struct AfPacket {
    name: String,
    fd: OwnedFd,
    pool: FramePool,
    mac: EthernetAddress,
    mtu: u16,
    ifindex: i32,
    stats: DriverStats,
    /// Kernel drops read so far (`PACKET_STATISTICS` resets on every read).
    kernel_drops: Cell<u64>,
    /// Frames of the receive batch in flight (kept to avoid an allocation per call).
    scratch: Vec<Frame>,
}

fn set_int_opt(fd: RawFd, level: i32, opt: i32, value: i32) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads an int from a live stack variable.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

impl AfPacket {
    /// Opens a socket on `config.name` with frames from `pool`.
    ///
    /// Errors: a bad or missing interface (the error names it), a pool whose frames
    /// cannot hold an MTU-sized frame, no privilege (`CAP_NET_RAW`).
    pub fn open(config: &AfPacketConfig, pool: FramePool) -> Result<AfPacket, DriverError> {
        let name = config.name.as_str();
        // Link facts first: a missing interface is reported as such even without
        // privileges.
        let k = sys::kernel_link(name, NEEDS)?;
        sys::check_frame_room(name, &pool, k.mtu)?;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            return Err(DriverError::from_io(
                name,
                "opening an AF_PACKET socket",
                NEEDS,
                errno(),
            ));
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        // Best effort: kernels before 4.20 lack it, and receive checks the packet type.
        let _ = set_int_opt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1);
        for (size, force, plain, what) in [
            (
                config.rcvbuf,
                libc::SO_RCVBUFFORCE,
                libc::SO_RCVBUF,
                "setting SO_RCVBUF",
            ),
            (
                config.sndbuf,
                libc::SO_SNDBUFFORCE,
                libc::SO_SNDBUF,
                "setting SO_SNDBUF",
            ),
        ] {
            if let Some(bytes) = size {
                let v = i32::try_from(bytes).unwrap_or(i32::MAX);
                if set_int_opt(raw, libc::SOL_SOCKET, force, v).is_err() {
                    set_int_opt(raw, libc::SOL_SOCKET, plain, v)
                        .map_err(|e| DriverError::from_io(name, what, NEEDS, e))?;
                }
            }
        }
        // SAFETY: sockaddr_ll is plain old data; all zeroes is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = k.index;
        // SAFETY: bind(2) reads a sockaddr_ll of the given size from the stack.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(DriverError::from_io(
                name,
                "binding the AF_PACKET socket",
                NEEDS,
                errno(),
            ));
        }
        Ok(AfPacket {
            name: name.to_string(),
            fd,
            pool,
            mac: k.mac,
            mtu: k.mtu,
            ifindex: k.index,
            stats: DriverStats::default(),
            kernel_drops: Cell::new(0),
            scratch: Vec::with_capacity(BATCH),
        })
    }

    /// The kernel's index of the interface.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }

    /// The pool receive takes frames from.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    fn check_queue(&self, queue: u16) -> Result<(), DriverError> {
        if queue == 0 {
            Ok(())
        } else {
            Err(DriverError::NoSuchQueue {
                iface: self.name.clone(),
                queue,
                queues: 1,
            })
        }
    }

    /// Adds the kernel's drop count since the last read to `kernel_drops`.
    fn read_kernel_drops(&self) {
        // SAFETY: tpacket_stats is plain old data.
        let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: getsockopt(2) writes at most `len` bytes into `st`, on this stack.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.kernel_drops
                .set(self.kernel_drops.get() + u64::from(st.tp_drops));
        }
    }
}

impl Driver for AfPacket {
    fn recv(&mut self, queue: u16, out: &mut Vec<Frame>, max: usize) -> Result<usize, DriverError> {
        self.check_queue(queue)?;
        let fd = self.fd.as_raw_fd();
        let mut n = 0;
        let mut frames = std::mem::take(&mut self.scratch);
        // SAFETY: iovec is plain old data; a null pointer with length 0 is valid, and
        // every entry used is filled below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_ll is plain old data; all zeroes is a valid value.
        let mut addrs: [libc::sockaddr_ll; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: mmsghdr is plain old data; every entry used is filled below.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        while n < max {
            let want = (max - n).min(BATCH);
            frames.clear();
            while frames.len() < want {
                match self.pool.alloc() {
                    Some(mut f) => {
                        let cap = f.capacity();
                        // Cannot fail: the length is the capacity.
                        let _ = f.set_len(cap);
                        frames.push(f);
                    }
                    None => {
                        self.stats.rx_pool_empty += 1;
                        break;
                    }
                }
            }
            let k = frames.len();
            if k == 0 {
                break;
            }
            for i in 0..k {
                let buf = frames[i].data_mut();
                iovs[i] = libc::iovec {
                    iov_base: buf.as_mut_ptr().cast(),
                    iov_len: buf.len(),
                };
                let hdr = &mut msgs[i].msg_hdr;
                hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
                hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                hdr.msg_iov = &mut iovs[i];
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
                msgs[i].msg_len = 0;
            }
            // SAFETY: the first `k` headers point at live iovecs and addresses on this
            // stack, and each iovec at the data of a frame in `frames`, which outlives
            // the call and is not otherwise borrowed.
            let r = unsafe {
                libc::recvmmsg(
                    fd,
                    msgs.as_mut_ptr(),
                    k as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r < 0 {
                let e = errno();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    _ => {
                        self.stats.rx_errors += 1;
                        frames.clear();
                        self.scratch = frames;
                        return Err(DriverError::from_io(
                            &self.name,
                            "receiving frames",
                            NEEDS,
                            e,
                        ));
                    }
                }
            }
            let got = r as usize;
            for (i, mut f) in frames.drain(..got).enumerate() {
                let len = msgs[i].msg_len as usize;
                if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || len == 0 {
                    self.stats.rx_errors += 1;
                    continue;
                }
                if addrs[i].sll_pkttype == libc::PACKET_OUTGOING {
                    continue;
                }
                // Cannot fail: the kernel wrote at most the capacity.
                let _ = f.set_len(len);
                self.stats.rx_packets += 1;
                self.stats.rx_bytes += len as u64;
                out.push(f);
                n += 1;
            }
            if got < k {
                break;
            }
        }
        // Frames the kernel did not fill go back to the pool.
        frames.clear();
        self.scratch = frames;
        Ok(n)
    }

    fn send(&mut self, queue: u16, frames: &mut Vec<Frame>) -> Result<usize, DriverError> {
        self.check_queue(queue)?;
        let fd = self.fd.as_raw_fd();
        // SAFETY: iovec is plain old data; every entry used is filled below.
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: mmsghdr is plain old data (null control pointers, zero lengths); every
        // entry used is filled below.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut done = 0;
        let mut failure = None;
        while done < frames.len() {
            let k = (frames.len() - done).min(BATCH);
            for i in 0..k {
                let data = frames[done + i].data();
                iovs[i] = libc::iovec {
                    iov_base: data.as_ptr() as *mut libc::c_void,
                    iov_len: data.len(),
                };
                let hdr = &mut msgs[i].msg_hdr;
                // No address: the socket's binding names the interface.
                hdr.msg_name = std::ptr::null_mut();
                hdr.msg_namelen = 0;
                hdr.msg_iov = &mut iovs[i];
                hdr.msg_iovlen = 1;
                msgs[i].msg_len = 0;
            }
            // SAFETY: the first `k` headers point at live iovecs, each at the data of a
            // frame in `frames`; the kernel only reads through them.
            let r = unsafe {
                libc::sendmmsg(fd, msgs.as_mut_ptr(), k as libc::c_uint, libc::MSG_DONTWAIT)
            };
            if r >= 0 {
                for f in &frames[done..done + r as usize] {
                    self.stats.tx_packets += 1;
                    self.stats.tx_bytes += f.len() as u64;
                }
                done += r as usize;
                if r == 0 {
                    break;
                }
                // When fewer than `k` went, the next call reports why the rest stopped.
                continue;
            }
            let e = errno();
            if would_block(&e) {
                break;
            }
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EMSGSIZE) | Some(libc::EINVAL) => {
                    // The first frame was refused (too long or too short): drop it.
                    self.stats.tx_errors += 1;
                    done += 1;
                }
                _ => {
                    self.stats.tx_errors += 1;
                    failure = Some(DriverError::from_io(&self.name, "sending frames", NEEDS, e));
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
            queues: 1,
        }
    }

    fn poll_fd(&self, queue: u16) -> Option<RawFd> {
        (queue == 0).then(|| self.fd.as_raw_fd())
    }

    fn stats(&self) -> DriverStats {
        self.read_kernel_drops();
        DriverStats {
            rx_dropped: self.kernel_drops.get(),
            ..self.stats
        }
    }
}
