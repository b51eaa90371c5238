//! AF_XDP sockets: zero-copy frames between the kernel and the stack.
//!
//! One UMEM per interface, registered over the memory of the stack's [`FramePool`]
//! ([`AfXdp::pool`]): received frames are UMEM chunks handed out as [`Frame`]s without a
//! copy, and dropping them returns the chunk to the pool's free list, from which the
//! driver refills the fill rings. Frames of the same pool are transmitted without a
//! copy; frames of another pool are copied into a UMEM chunk first.
//!
//! One socket per queue, sharing the UMEM (each queue has its own fill and completion
//! ring). Our XDP program (crate `bpf`) steers frames of each queue to its socket, in
//! take-all or host mode, attached in native mode where the driver allows it and in
//! generic mode otherwise; sockets bind zero-copy where the driver allows it and in copy
//! mode otherwise. [`AfXdp::xdp_mode`] and [`AfXdp::zero_copy`] report what is in use.
//!
//! The rings go through libxdp (`libxdp-sys`, the C library `xsk-rs` wraps) directly:
//! xsk-rs's `Umem` owns its own mapping and hands out descriptors at fixed addresses,
//! while here the frame pool owns the memory and names frames by offset.
//!
//! Pitfalls handled (seen on veth): the fill ring may look full until the kernel releases
//! entries, so the driver produces what fits and keeps the rest in the pool; a TX
//! descriptor always carries the frame's length; copy-mode TX only happens inside
//! `sendto` wake-ups (about 32 frames each), so transmit kicks until the ring drains or
//! stops moving; a bind right after a close may get EBUSY and is retried.
//!
//! Frames inside the kernel's rings when the driver is dropped do not return to the pool.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bpf::XdpProgram;
pub use bpf::{AttachMode, Mode, QueueCounters};
use libxdp_sys as xdp;
use stack::mem::FrameMemory;
use stack::{Frame, FramePool, PoolConfig};

use crate::sys::{self, errno};
use crate::{Driver, DriverError, DriverStats, LinkInfo};

/// Most frames put into the TX ring per step.
const TX_BATCH: usize = 64;

const NEEDS: &str = "CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF";

/// How to open an AF_XDP driver.
#[derive(Debug, Clone)]
pub struct AfXdpConfig {
    /// Interface name.
    pub name: String,
    /// Queues to open, `0..queues` (1 by default).
    pub queues: u16,
    /// Frames in the UMEM, shared by all queues (4096 by default).
    pub frames: u32,
    /// Frame size (2048 or 4096) and headroom of the pool carved from the UMEM.
    pub pool: PoolConfig,
    /// Entries of each ring (fill, completion, RX, TX), a power of two (2048 by default).
    pub ring_size: u32,
    /// Steering mode of the XDP program.
    pub mode: Mode,
    /// Our addresses, steered to AF_XDP in [`Mode::Host`].
    pub addresses: Vec<IpAddr>,
    /// Force an XDP attach mode; `None` tries native, then generic.
    pub attach: Option<AttachMode>,
    /// Force copy mode (`Some(false)`) or zero-copy (`Some(true)`); `None` tries
    /// zero-copy, then copy.
    pub zero_copy: Option<bool>,
}

impl AfXdpConfig {
    /// Defaults for `name`: one queue, 4096 frames of 2048 bytes, take-all mode.
    pub fn new(name: impl Into<String>) -> Self {
        AfXdpConfig {
            name: name.into(),
            queues: 1,
            frames: 4096,
            pool: PoolConfig::default(),
            ring_size: 2048,
            mode: Mode::TakeAll,
            addresses: Vec::new(),
            attach: None,
            zero_copy: None,
        }
    }

    /// Opens `queues` queues.
    pub fn with_queues(mut self, queues: u16) -> Self {
        self.queues = queues;
        self
    }

    /// Host mode with our addresses.
    pub fn host(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.mode = Mode::Host;
        self.addresses = addresses.into_iter().collect();
        self
    }

    /// Forces an XDP attach mode.
    pub fn with_attach(mut self, mode: AttachMode) -> Self {
        self.attach = Some(mode);
        self
    }

    /// Sets the number of UMEM frames.
    pub fn with_frames(mut self, frames: u32) -> Self {
        self.frames = frames;
        self
    }
}

/// Anonymous shared mapping that backs the UMEM and the pool.
struct UmemMemory {
    ptr: *mut u8,
    len: usize,
}

impl UmemMemory {
    fn new(len: usize) -> std::io::Result<UmemMemory> {
        // SAFETY: anonymous mapping, no address hint; the result is checked.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(UmemMemory { ptr: p.cast(), len })
    }
}

// SAFETY: the mapping is owned by this value alone and unmapped only in Drop.
unsafe impl Send for UmemMemory {}
// SAFETY: as above; the pool hands each chunk to one owner at a time.
unsafe impl Sync for UmemMemory {}

// SAFETY: the mapping stays at `ptr` for `len` bytes until drop; nothing else in the
// process references it; the kernel writes only chunks the driver gave it through
// `Frame::into_raw` (fill and TX rings).
unsafe impl FrameMemory for UmemMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for UmemMemory {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; the UMEM registration pins its own
        // references to the pages, so unmapping after the sockets closed is sound.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// One queue's socket and rings. The ring structs are boxed: libxdp keeps pointers to
/// the fill and completion rings until the socket is deleted.
struct Queue {
    xsk: *mut xdp::xsk_socket,
    fd: RawFd,
    rx: Box<xdp::xsk_ring_cons>,
    tx: Box<xdp::xsk_ring_prod>,
    fill: Box<xdp::xsk_ring_prod>,
    comp: Box<xdp::xsk_ring_cons>,
    /// Frames in the fill ring or being received into.
    in_fill: u32,
    /// Frames in the TX ring or not yet completed.
    in_tx: u32,
    /// Most frames this queue keeps in its fill ring.
    fill_target: u32,
}

/// The AF_XDP driver of one interface.
pub struct AfXdp {
    name: String,
    link: LinkInfo,
    pool: FramePool,
    umem: *mut xdp::xsk_umem,
    // Ring structs given to xsk_umem__create, until queue 0's socket takes them: libxdp
    // keeps pointers to them (and unmaps other structs' rings when a bind fails), so
    // the first socket must be created with these very structs.
    umem_rings: Option<(Box<xdp::xsk_ring_prod>, Box<xdp::xsk_ring_cons>)>,
    queues: Vec<Queue>,
    prog: Option<XdpProgram>,
    xdp_mode: AttachMode,
    zero_copy: bool,
    stats: DriverStats,
    shift: u32,
    descs: Vec<xdp::xdp_desc>,
    copies: Vec<Frame>,
}

// SAFETY: the raw pointers name the UMEM and sockets this driver alone owns; libxdp and
// libbpf keep no thread-local state about them, so the driver may move between threads
// (it is used from one thread at a time: every method takes `&mut self` or reads only).
unsafe impl Send for AfXdp {}

fn bad(name: &str, why: String) -> DriverError {
    DriverError::BadConfig {
        iface: name.to_string(),
        why,
    }
}

fn neg_errno(rc: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(-rc)
}

impl AfXdp {
    /// Opens `config.queues` AF_XDP sockets on `config.name` over a new UMEM, loads and
    /// attaches our XDP program. Needs root (or CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF).
    pub fn open(config: &AfXdpConfig) -> Result<AfXdp, DriverError> {
        let name = config.name.as_str();
        let k = sys::kernel_link(name, NEEDS)?;
        let fs = config.pool.frame_size;
        if fs != 2048 && fs != 4096 {
            return Err(bad(
                name,
                format!("AF_XDP frame size {fs} is not supported (use 2048 or 4096)"),
            ));
        }
        let xdp_headroom = xdp::XDP_PACKET_HEADROOM;
        if config.pool.headroom < xdp_headroom {
            return Err(bad(
                name,
                format!(
                    "AF_XDP needs a headroom of at least {xdp_headroom} (the kernel's XDP headroom), got {}",
                    config.pool.headroom
                ),
            ));
        }
        if !config.ring_size.is_power_of_two() || config.ring_size < 64 {
            return Err(bad(
                name,
                format!(
                    "ring size {} is not a power of two of at least 64",
                    config.ring_size
                ),
            ));
        }
        if config.queues == 0 || u32::from(config.queues) > bpf::MAX_QUEUES {
            return Err(bad(
                name,
                format!(
                    "{} queues asked for (use 1..={})",
                    config.queues,
                    bpf::MAX_QUEUES
                ),
            ));
        }
        let queues_in_kernel = rx_queues(name)?;
        if config.queues > queues_in_kernel {
            return Err(DriverError::NoSuchQueue {
                iface: name.to_string(),
                queue: config.queues - 1,
                queues: queues_in_kernel,
            });
        }
        let per_queue = config.frames / (2 * u32::from(config.queues));
        if per_queue < 64 {
            return Err(bad(
                name,
                format!(
                    "{} UMEM frames are too few for {} queues (use at least {})",
                    config.frames,
                    config.queues,
                    128 * u32::from(config.queues)
                ),
            ));
        }

        let len = config.frames as usize * fs as usize;
        let mem = UmemMemory::new(len)
            .map_err(|e| DriverError::from_io(name, "mapping the UMEM", NEEDS, e))?;
        let pool = FramePool::new(mem, config.pool).map_err(|e| bad(name, e.to_string()))?;
        sys::check_frame_room(name, &pool, k.mtu)?;
        let (area, area_len) = pool.region();

        let mut fill0 = Box::new(zeroed_prod());
        let mut comp0 = Box::new(zeroed_cons());
        let ucfg = xdp::xsk_umem_config {
            fill_size: config.ring_size,
            comp_size: config.ring_size,
            frame_size: fs,
            frame_headroom: config.pool.headroom - xdp_headroom,
            flags: 0,
        };
        let mut umem = ptr::null_mut();
        // SAFETY: `area` is the pool's mapping, page aligned, `area_len` bytes, and it
        // outlives the UMEM (the driver holds the pool and deletes the UMEM in Drop);
        // the ring structs are boxed and kept in the driver.
        let rc = unsafe {
            xdp::xsk_umem__create(
                &mut umem,
                area.cast(),
                area_len as u64,
                &mut *fill0,
                &mut *comp0,
                &ucfg,
            )
        };
        if rc != 0 {
            return Err(DriverError::from_io(
                name,
                "registering the UMEM",
                NEEDS,
                neg_errno(rc),
            ));
        }
        let mut drv = AfXdp {
            name: name.to_string(),
            link: LinkInfo {
                name: name.to_string(),
                mac: k.mac,
                mtu: k.mtu,
                queues: config.queues,
            },
            shift: fs.trailing_zeros(),
            pool,
            umem,
            umem_rings: Some((fill0, comp0)),
            queues: Vec::new(),
            prog: None,
            xdp_mode: AttachMode::Generic,
            zero_copy: false,
            stats: DriverStats::default(),
            descs: Vec::with_capacity(TX_BATCH),
            copies: Vec::with_capacity(TX_BATCH),
        };

        // The program first (sockets are steered to only once they are in its map).
        let map_err = |e: bpf::BpfError| {
            if e.permission_denied() {
                DriverError::PermissionDenied {
                    iface: name.to_string(),
                    op: "loading the XDP program",
                    needs: NEEDS,
                    source: std::io::Error::from_raw_os_error(libc::EPERM),
                }
            } else {
                bad(name, e.to_string())
            }
        };
        let mut prog = XdpProgram::load().map_err(map_err)?;
        prog.set_mode(config.mode).map_err(map_err)?;
        for a in &config.addresses {
            prog.add_address(*a).map_err(map_err)?;
        }

        let cname = CString::new(name).map_err(|_| bad(name, "name contains NUL".into()))?;
        for q in 0..config.queues {
            let queue = drv.bind(&cname, q, config, per_queue)?;
            prog.set_socket(u32::from(q), queue.fd).map_err(map_err)?;
            drv.queues.push(queue);
        }
        // Fill rings before the program steers anything, so no early frame is dropped.
        for q in 0..drv.queues.len() {
            drv.refill(q);
        }
        drv.xdp_mode = prog
            .attach(k.index as u32, config.attach)
            .map_err(map_err)?;
        drv.prog = Some(prog);
        Ok(drv)
    }

    fn bind(
        &mut self,
        cname: &CString,
        q: u16,
        config: &AfXdpConfig,
        fill_target: u32,
    ) -> Result<Queue, DriverError> {
        let name = config.name.as_str();
        let mut rx = Box::new(zeroed_cons());
        let mut tx = Box::new(zeroed_prod());
        let (mut fill, mut comp) = match self.umem_rings.take() {
            Some(rings) => rings,
            None => (Box::new(zeroed_prod()), Box::new(zeroed_cons())),
        };
        let tries: &[bool] = match config.zero_copy {
            Some(true) => &[true],
            Some(false) => &[false],
            None => &[true, false],
        };
        let mut last = 0;
        for &zc in tries {
            let deadline = Instant::now() + Duration::from_secs(2);
            loop {
                let scfg = xdp::xsk_socket_config {
                    rx_size: config.ring_size,
                    tx_size: config.ring_size,
                    __bindgen_anon_1: xdp::xsk_socket_config__bindgen_ty_1 {
                        libxdp_flags: xdp::XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                    },
                    xdp_flags: 0,
                    bind_flags: (xdp::XDP_USE_NEED_WAKEUP
                        | if zc { xdp::XDP_ZEROCOPY } else { xdp::XDP_COPY })
                        as u16,
                };
                let mut xsk = ptr::null_mut();
                // SAFETY: the UMEM lives in `self`; the ring structs are boxed and move
                // into the Queue, which lives until the socket is deleted; `cname` is a
                // valid C string for the call.
                let rc = unsafe {
                    xdp::xsk_socket__create_shared(
                        &mut xsk,
                        cname.as_ptr(),
                        u32::from(q),
                        self.umem,
                        &mut *rx,
                        &mut *tx,
                        &mut *fill,
                        &mut *comp,
                        &scfg,
                    )
                };
                if rc == 0 {
                    // SAFETY: `xsk` is the socket just created.
                    let fd = unsafe { xdp::xsk_socket__fd(xsk) };
                    if q == 0 {
                        self.zero_copy = socket_zero_copy(fd);
                    }
                    return Ok(Queue {
                        xsk,
                        fd,
                        rx,
                        tx,
                        fill,
                        comp,
                        in_fill: 0,
                        in_tx: 0,
                        fill_target: fill_target.min(config.ring_size),
                    });
                }
                last = -rc;
                if last == libc::EBUSY && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                break;
            }
        }
        if q == 0 {
            // The UMEM still points at them.
            self.umem_rings = Some((fill, comp));
        }
        let e = std::io::Error::from_raw_os_error(last);
        Err(match last {
            libc::EINVAL if q > 0 => DriverError::NoSuchQueue {
                iface: name.to_string(),
                queue: q,
                queues: q,
            },
            _ => DriverError::from_io(name, "binding the AF_XDP socket", NEEDS, e),
        })
    }

    /// The frame pool carved from the UMEM: give it to the stack so that its frames
    /// are transmitted without a copy.
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// How the XDP program is attached.
    pub fn xdp_mode(&self) -> AttachMode {
        self.xdp_mode
    }

    /// True when the sockets are bound zero-copy, false in copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// What the XDP program did on `queue`, summed over CPUs.
    pub fn xdp_counters(&self, queue: u16) -> Result<bpf::QueueCounters, DriverError> {
        match &self.prog {
            Some(p) => p
                .counters(u32::from(queue))
                .map_err(|e| bad(&self.name, e.to_string())),
            None => Ok(bpf::QueueCounters::default()),
        }
    }

    fn queue_index(&self, queue: u16) -> Result<usize, DriverError> {
        if usize::from(queue) < self.queues.len() {
            Ok(usize::from(queue))
        } else {
            Err(DriverError::NoSuchQueue {
                iface: self.name.clone(),
                queue,
                queues: self.queues.len() as u16,
            })
        }
    }

    /// Gives the kernel fresh frames from the pool, as many as fit the fill ring and
    /// the queue's share of the pool.
    fn refill(&mut self, qi: usize) {
        let q = &mut self.queues[qi];
        let want = q.fill_target.saturating_sub(q.in_fill);
        if want == 0 {
            return;
        }
        // SAFETY: the fill ring belongs to this queue's live socket.
        let room = unsafe { xdp::xsk_prod_nb_free(&mut *q.fill, want) }.min(want);
        if room == 0 {
            return;
        }
        let mut idx = 0u32;
        // SAFETY: as above; `room` entries are free, so reserving them succeeds.
        let got = unsafe { xdp::xsk_ring_prod__reserve(&mut *q.fill, room, &mut idx) };
        let mut n = 0;
        while n < got {
            let Some(frame) = self.pool.alloc() else {
                self.stats.rx_pool_empty += 1;
                break;
            };
            let raw = frame.into_raw();
            // SAFETY: `idx + n` is within the reserved entries.
            unsafe {
                *xdp::xsk_ring_prod__fill_addr(&mut *q.fill, idx.wrapping_add(n)) =
                    u64::from(raw.index) << self.shift;
            }
            n += 1;
        }
        if n < got {
            // Give back the reserved entries we could not fill.
            q.fill.cached_prod = q.fill.cached_prod.wrapping_sub(got - n);
        }
        if n > 0 {
            // SAFETY: `n` entries were written.
            unsafe { xdp::xsk_ring_prod__submit(&mut *q.fill, n) };
            q.in_fill += n;
        }
        // SAFETY: the ring is live.
        if unsafe { xdp::xsk_ring_prod__needs_wakeup(&*q.fill) } != 0 {
            // SAFETY: recvfrom with no buffer only wakes the kernel's RX processing.
            unsafe {
                libc::recvfrom(
                    q.fd,
                    ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    ptr::null_mut(),
                    ptr::null_mut(),
                )
            };
        }
    }

    /// Returns completed TX frames to the pool.
    fn reap(&mut self, qi: usize) {
        let q = &mut self.queues[qi];
        let mut idx = 0u32;
        // SAFETY: the completion ring belongs to this queue's live socket.
        let n = unsafe { xdp::xsk_ring_cons__peek(&mut *q.comp, q.in_tx.max(1), &mut idx) };
        for i in 0..n {
            // SAFETY: `idx + i` is among the entries peeked.
            let addr = unsafe { *xdp::xsk_ring_cons__comp_addr(&*q.comp, idx.wrapping_add(i)) };
            // SAFETY: the address is one the driver put in the TX ring from a frame it
            // gave up with `into_raw`; the kernel is done with it and returns it once.
            drop(unsafe { self.pool.from_offset(addr, 0) });
        }
        if n > 0 {
            // SAFETY: `n` entries were peeked.
            unsafe { xdp::xsk_ring_cons__release(&mut *q.comp, n) };
            q.in_tx -= n.min(q.in_tx);
        }
    }

    fn kick_tx(&mut self, qi: usize) -> Result<(), DriverError> {
        let q = &self.queues[qi];
        // Copy mode transmits only inside sendto, a batch at a time: kick until the
        // kernel has consumed the ring or stops making progress.
        for _ in 0..64 {
            // SAFETY: the ring's consumer pointer is valid while the socket lives.
            let cons = unsafe { (*(q.tx.consumer as *const AtomicU32)).load(Ordering::Acquire) };
            if cons == q.tx.cached_prod {
                break;
            }
            // SAFETY: the ring is live; needs_wakeup reads its flags.
            let need = unsafe { xdp::xsk_ring_prod__needs_wakeup(&*q.tx) } != 0;
            if !need && self.zero_copy {
                break;
            }
            // SAFETY: sendto with no buffer only wakes the kernel's TX processing.
            let rc =
                unsafe { libc::sendto(q.fd, ptr::null(), 0, libc::MSG_DONTWAIT, ptr::null(), 0) };
            if rc < 0 {
                let e = errno();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) | Some(libc::EBUSY) | Some(libc::ENOBUFS) => {}
                    _ => return Err(DriverError::from_io(&self.name, "transmitting", NEEDS, e)),
                }
            }
        }
        Ok(())
    }

    fn socket_stats(&self) -> (u64, u64) {
        let mut rx_dropped = 0;
        let mut tx_invalid = 0;
        for q in &self.queues {
            let mut s: xdp::xdp_statistics =
                // SAFETY: plain old data; all zeroes is valid.
                unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<xdp::xdp_statistics>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into `s`.
            let rc = unsafe {
                libc::getsockopt(
                    q.fd,
                    libc::SOL_XDP,
                    xdp::XDP_STATISTICS as i32,
                    (&mut s as *mut xdp::xdp_statistics).cast(),
                    &mut len,
                )
            };
            if rc == 0 {
                rx_dropped += s.rx_dropped + s.rx_ring_full;
                tx_invalid += s.tx_invalid_descs;
            }
        }
        (rx_dropped, tx_invalid)
    }
}

fn zeroed_prod() -> xdp::xsk_ring_prod {
    xdp::xsk_ring_prod {
        cached_prod: 0,
        cached_cons: 0,
        mask: 0,
        size: 0,
        producer: ptr::null_mut(),
        consumer: ptr::null_mut(),
        ring: ptr::null_mut(),
        flags: ptr::null_mut(),
    }
}

fn zeroed_cons() -> xdp::xsk_ring_cons {
    xdp::xsk_ring_cons {
        cached_prod: 0,
        cached_cons: 0,
        mask: 0,
        size: 0,
        producer: ptr::null_mut(),
        consumer: ptr::null_mut(),
        ring: ptr::null_mut(),
        flags: ptr::null_mut(),
    }
}

/// True when the socket is bound zero-copy (XDP_OPTIONS).
fn socket_zero_copy(fd: RawFd) -> bool {
    let mut opts = xdp::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<xdp::xdp_options>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `opts`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            xdp::XDP_OPTIONS as i32,
            (&mut opts as *mut xdp::xdp_options).cast(),
            &mut len,
        )
    };
    rc == 0 && opts.flags & xdp::XDP_OPTIONS_ZEROCOPY != 0
}

/// Receive queues of `name` (ETHTOOL_GCHANNELS: combined plus RX-only channels), or 1
/// where the driver does not report channels.
fn rx_queues(name: &str) -> Result<u16, DriverError> {
    #[repr(C)]
    #[derive(Default)]
    struct EthtoolChannels {
        cmd: u32,
        max_rx: u32,
        max_tx: u32,
        max_other: u32,
        max_combined: u32,
        rx_count: u32,
        tx_count: u32,
        other_count: u32,
        combined_count: u32,
    }
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ch = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..Default::default()
    };
    let mut req = sys::ifreq_named(name)?;
    req.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
    // SAFETY: plain socket(2) call; the result is checked and closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(DriverError::from_io(
            name,
            "opening a socket for ethtool",
            NEEDS,
            errno(),
        ));
    }
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at `ch`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL as _, &mut req) };
    let e = errno();
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return match e.raw_os_error() {
            Some(libc::EOPNOTSUPP) => Ok(1),
            _ => Err(DriverError::from_io(
                name,
                "reading the channel count (ethtool)",
                NEEDS,
                e,
            )),
        };
    }
    Ok(((ch.combined_count + ch.rx_count).max(1)).min(u32::from(u16::MAX)) as u16)
}

impl Driver for AfXdp {
    fn recv(&mut self, queue: u16, out: &mut Vec<Frame>, max: usize) -> Result<usize, DriverError> {
        let qi = self.queue_index(queue)?;
        let mut idx = 0u32;
        let q = &mut self.queues[qi];
        let max = max.min(u32::MAX as usize) as u32;
        // SAFETY: the RX ring belongs to this queue's live socket.
        let n = unsafe { xdp::xsk_ring_cons__peek(&mut *q.rx, max, &mut idx) };
        for i in 0..n {
            // SAFETY: `idx + i` is among the entries peeked.
            let d = unsafe { *xdp::xsk_ring_cons__rx_desc(&*q.rx, idx.wrapping_add(i)) };
            // SAFETY: the kernel received into a chunk the driver gave it through the
            // fill ring (with `into_raw`), and hands each back once.
            match unsafe { self.pool.from_offset(d.addr, d.len) } {
                Some(f) => {
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += u64::from(d.len);
                    out.push(f);
                }
                None => self.stats.rx_errors += 1,
            }
        }
        if n > 0 {
            // SAFETY: `n` entries were peeked.
            unsafe { xdp::xsk_ring_cons__release(&mut *q.rx, n) };
            q.in_fill -= n.min(q.in_fill);
        }
        self.refill(qi);
        Ok(n as usize)
    }

    fn send(&mut self, queue: u16, frames: &mut Vec<Frame>) -> Result<usize, DriverError> {
        let qi = self.queue_index(queue)?;
        self.reap(qi);
        let room_bytes = (self.pool.frame_size() - self.pool.headroom()) as usize;
        let mut sent = 0;
        while !frames.is_empty() {
            let want = frames.len().min(TX_BATCH) as u32;
            // SAFETY: the TX ring belongs to this queue's live socket.
            let room = unsafe { xdp::xsk_prod_nb_free(&mut *self.queues[qi].tx, want) }.min(want);
            if room == 0 {
                break;
            }
            // Decide how many frames to take: frames of another pool need a UMEM chunk,
            // copied now; stop when the pool is empty.
            self.copies.clear();
            let mut taken = 0;
            for f in frames.iter().take(room as usize) {
                if !self.pool.owns(f) && f.len() <= room_bytes {
                    let Some(mut g) = self.pool.alloc() else {
                        break;
                    };
                    if g.append(f.len())
                        .map(|d| d.copy_from_slice(f.data()))
                        .is_err()
                    {
                        break;
                    }
                    self.copies.push(g);
                }
                taken += 1;
            }
            self.descs.clear();
            let mut copies = self.copies.drain(..);
            for f in frames.drain(..taken) {
                let f = if self.pool.owns(&f) {
                    f
                } else if f.len() > room_bytes {
                    self.stats.tx_errors += 1;
                    continue;
                } else {
                    match copies.next() {
                        Some(g) => g,
                        None => continue,
                    }
                };
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += f.len() as u64;
                // Each descriptor carries its frame's own length: a reused chunk's
                // earlier length is never assumed.
                self.descs.push(xdp::xdp_desc {
                    addr: f.offset(),
                    len: f.len() as u32,
                    options: 0,
                });
                // The kernel owns the chunk until it completes; `reap` takes it back.
                let _ = f.into_raw();
            }
            drop(copies);
            sent += taken;
            let n = self.descs.len() as u32;
            if n > 0 {
                let q = &mut self.queues[qi];
                let mut idx = 0u32;
                // SAFETY: `n <= room` entries are free, so the reservation succeeds.
                let got = unsafe { xdp::xsk_ring_prod__reserve(&mut *q.tx, n, &mut idx) };
                debug_assert_eq!(got, n);
                for (i, d) in self.descs.iter().enumerate() {
                    // SAFETY: `idx + i` is within the reserved entries.
                    unsafe {
                        *xdp::xsk_ring_prod__tx_desc(&mut *q.tx, idx.wrapping_add(i as u32)) = *d
                    };
                }
                // SAFETY: `n` entries were written.
                unsafe { xdp::xsk_ring_prod__submit(&mut *q.tx, n) };
                q.in_tx += n;
            }
            if taken < room as usize {
                break;
            }
            self.kick_tx(qi)?;
            self.reap(qi);
        }
        self.kick_tx(qi)?;
        self.reap(qi);
        Ok(sent)
    }

    fn link(&self) -> LinkInfo {
        self.link.clone()
    }

    fn poll_fd(&self, queue: u16) -> Option<RawFd> {
        self.queues.get(usize::from(queue)).map(|q| q.fd)
    }

    fn stats(&self) -> DriverStats {
        let mut s = self.stats;
        let (rx_dropped, tx_invalid) = self.socket_stats();
        s.rx_dropped += rx_dropped;
        s.tx_errors += tx_invalid;
        s
    }
}

impl Drop for AfXdp {
    fn drop(&mut self) {
        if let Some(p) = &self.prog {
            for q in 0..self.queues.len() {
                let _ = p.clear_socket(q as u32);
            }
        }
        // Detach first so that no frame is steered to a closing socket.
        self.prog = None;
        for q in self.queues.drain(..) {
            // SAFETY: created by xsk_socket__create_shared and deleted once; its ring
            // structs are still alive (dropped after this call).
            unsafe { xdp::xsk_socket__delete(q.xsk) };
        }
        // SAFETY: every socket of the UMEM is deleted; deleted once.
        unsafe { xdp::xsk_umem__delete(self.umem) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked_before_anything_is_opened() {
        let e = AfXdp::open(&AfXdpConfig::new("nosuch9")).err().unwrap();
        assert!(matches!(e, DriverError::NoSuchDevice { .. }), "{e}");
        // The loopback device is not Ethernet: refused with what to use instead.
        let e = AfXdp::open(&AfXdpConfig::new("lo")).err().unwrap();
        assert!(matches!(e, DriverError::BadConfig { .. }), "{e}");
        assert_eq!(e.iface(), "lo");
        let c = AfXdpConfig::new("eth0").with_queues(2).with_frames(8192);
        assert_eq!((c.queues, c.frames, c.mode), (2, 8192, Mode::TakeAll));
        let c = c.host(["192.0.2.1".parse().unwrap()]);
        assert_eq!((c.mode, c.addresses.len()), (Mode::Host, 1));
    }
}
