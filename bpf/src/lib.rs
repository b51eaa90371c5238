//! `bpf`: the dataplane's XDP program (C source) and its loader (libbpf-rs).
//!
//! The program (`src/xdp.bpf.c`) steers frames to the AF_XDP socket of their receive
//! queue through an XSKMAP, in one of the [`Mode`]s chosen through a map, and counts what
//! it did per queue and CPU ([`QueueCounters`]).
//!
//! **Built from source by the build**: `build.rs` compiles the C source with clang
//! (`-O2 -g -target bpf`) into `$OUT_DIR` and [`XDP_OBJECT`] embeds the object with
//! `include_bytes!`. So the object always matches its source and no binary is kept in
//! the repository; the price is that building needs clang and the libbpf headers
//! (`libbpf-dev`), which `scripts/deps.sh` installs.
//!
//! [`XdpProgram`] loads the object, sets the mode and our addresses, puts sockets into
//! the XSKMAP, attaches to an interface in native (driver) mode or falls back to generic
//! (SKB) mode and reports which ([`AttachMode`]), reads the counters summed over CPUs,
//! and detaches on drop.
//!
//! The attachment is a BPF link (`bpf_link_create`, kernel 5.9+), not the legacy netlink
//! attach: the kernel detaches the program when the link's last descriptor closes, so
//! nothing stays on the interface when the process exits, however it exits (SIGKILL
//! included).
#![allow(unsafe_code)]

use std::fmt;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder, XdpFlags};

/// The compiled XDP program (an ELF object for libbpf).
pub const XDP_OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdp.bpf.o"));

/// Queues the XSKMAP and the counters have room for.
pub const MAX_QUEUES: u32 = 64;

/// Addresses the host-mode map has room for.
pub const MAX_ADDRESSES: u32 = 64;

/// What the program does with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every frame goes to the AF_XDP socket of its queue (router ports).
    TakeAll,
    /// Only IPv4/IPv6 packets to one of our addresses, ARP whose target is ours and
    /// ICMPv6 neighbour solicitations/advertisements for our addresses go to AF_XDP;
    /// everything else passes to the kernel.
    Host,
    /// Every frame is dropped (a kernel-only reference for benchmarks).
    Drop,
}

impl Mode {
    fn value(self) -> u32 {
        match self {
            Mode::TakeAll => 0,
            Mode::Host => 1,
            Mode::Drop => 2,
        }
    }
}

/// How the program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`xdpdrv`): before the kernel allocates a socket buffer.
    Native,
    /// Generic (`xdpgeneric`, SKB mode): after; works on every interface, slower, and on
    /// veth only queue 0 receives.
    Generic,
}

impl AttachMode {
    fn flags(self) -> XdpFlags {
        match self {
            AttachMode::Native => XdpFlags::DRV_MODE,
            AttachMode::Generic => XdpFlags::SKB_MODE,
        }
    }
}

impl fmt::Display for AttachMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        })
    }
}

/// What the program did on one queue, summed over CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueCounters {
    /// Frames redirected to the queue's AF_XDP socket (or the attempt: a full socket
    /// still drops them in the kernel).
    pub redirected: u64,
    /// Frames passed to the kernel.
    pub passed: u64,
    /// Frames dropped (in [`Mode::Drop`]).
    pub dropped: u64,
}

/// Why loading, configuring or attaching the program failed; one line naming the step.
#[derive(Debug)]
pub struct BpfError {
    /// What the loader was doing.
    pub op: String,
    /// The libbpf error.
    pub source: libbpf_rs::Error,
}

impl BpfError {
    fn new(op: impl Into<String>, source: libbpf_rs::Error) -> BpfError {
        BpfError {
            op: op.into(),
            source,
        }
    }
}

impl BpfError {
    /// True when the kernel refused for lack of privilege.
    pub fn permission_denied(&self) -> bool {
        self.source.kind() == libbpf_rs::ErrorKind::PermissionDenied
    }
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "XDP program: {}: {}", self.op, self.source)?;
        if self.source.kind() == libbpf_rs::ErrorKind::PermissionDenied {
            f.write_str(" (run as root or with CAP_BPF and CAP_NET_ADMIN)")?;
        }
        Ok(())
    }
}

impl std::error::Error for BpfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The 16-byte key of an address in the host-mode map: IPv6 as is, IPv4 mapped
/// (`::ffff:a.b.c.d`).
pub fn address_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The loaded program and its maps; attached to at most one interface; detached on drop.
pub struct XdpProgram {
    obj: Object,
    /// Interface, mode, and the BPF link that holds the attachment.
    attached: Option<(i32, AttachMode, OwnedFd)>,
}

impl fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpProgram")
            .field("attached", &self.attached)
            .finish()
    }
}

impl XdpProgram {
    /// Loads [`XDP_OBJECT`] into the kernel (needs CAP_BPF), in [`Mode::TakeAll`].
    pub fn load() -> Result<XdpProgram, BpfError> {
        let open = ObjectBuilder::default()
            .open_memory(XDP_OBJECT)
            .map_err(|e| BpfError::new("opening the object", e))?;
        let obj = open
            .load()
            .map_err(|e| BpfError::new("loading into the kernel", e))?;
        Ok(XdpProgram {
            obj,
            attached: None,
        })
    }

    fn with_map<T>(
        &self,
        name: &str,
        f: impl FnOnce(&libbpf_rs::Map<'_>) -> libbpf_rs::Result<T>,
    ) -> libbpf_rs::Result<T> {
        let map = self.obj.maps().find(|m| m.name() == name).ok_or_else(|| {
            libbpf_rs::Error::from(std::io::Error::other(format!("no map {name}")))
        })?;
        f(&map)
    }

    /// Chooses what the program does with frames.
    pub fn set_mode(&self, mode: Mode) -> Result<(), BpfError> {
        self.with_map("mode", |m| {
            m.update(
                &0u32.to_ne_bytes(),
                &mode.value().to_ne_bytes(),
                MapFlags::ANY,
            )
        })
        .map_err(|e| BpfError::new("setting the mode", e))
    }

    /// Adds one of our addresses (steered to AF_XDP in [`Mode::Host`]).
    pub fn add_address(&self, addr: IpAddr) -> Result<(), BpfError> {
        self.with_map("addrs", |m| {
            m.update(&address_key(addr), &[1u8], MapFlags::ANY)
        })
        .map_err(|e| BpfError::new(format!("adding address {addr}"), e))
    }

    /// Removes one of our addresses; removing an absent one is not an error.
    pub fn remove_address(&self, addr: IpAddr) -> Result<(), BpfError> {
        self.with_map("addrs", |m| match m.delete(&address_key(addr)) {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            r => r,
        })
        .map_err(|e| BpfError::new(format!("removing address {addr}"), e))
    }

    /// Steers frames of `queue` to the AF_XDP socket `fd`.
    pub fn set_socket(&self, queue: u32, fd: RawFd) -> Result<(), BpfError> {
        self.with_map("xsks", |m| {
            m.update(
                &queue.to_ne_bytes(),
                &(fd as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
        })
        .map_err(|e| BpfError::new(format!("adding the socket of queue {queue}"), e))
    }

    /// Stops steering frames of `queue` (they pass to the kernel).
    pub fn clear_socket(&self, queue: u32) -> Result<(), BpfError> {
        self.with_map("xsks", |m| match m.delete(&queue.to_ne_bytes()) {
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            r => r,
        })
        .map_err(|e| BpfError::new(format!("removing the socket of queue {queue}"), e))
    }

    /// What the program did on `queue`, summed over CPUs.
    pub fn counters(&self, queue: u32) -> Result<QueueCounters, BpfError> {
        let per_cpu = self
            .with_map("counters", |m| {
                m.lookup_percpu(&queue.to_ne_bytes(), MapFlags::ANY)
            })
            .map_err(|e| BpfError::new(format!("reading the counters of queue {queue}"), e))?;
        let mut sum = QueueCounters::default();
        for v in per_cpu.unwrap_or_default() {
            let word = |i: usize| {
                v.get(i * 8..i * 8 + 8)
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                    .unwrap_or(0)
            };
            sum.redirected += word(0);
            sum.passed += word(1);
            sum.dropped += word(2);
        }
        Ok(sum)
    }

    fn prog_fd(&self) -> Result<BorrowedFd<'_>, BpfError> {
        let prog = self.obj.progs().next().ok_or_else(|| {
            BpfError::new(
                "finding the program",
                libbpf_rs::Error::from(std::io::Error::other("no program in the object")),
            )
        })?;
        // SAFETY: the descriptor belongs to the program, which `self.obj` owns; the
        // borrow is tied to `&self`, so it cannot outlive the object.
        Ok(unsafe { BorrowedFd::borrow_raw(std::os::fd::AsRawFd::as_raw_fd(&prog.as_fd())) })
    }

    /// Attaches to interface `ifindex`: in `want` mode, or native falling back to
    /// generic when `want` is `None`; returns the mode in use. Fails when the program
    /// is already attached somewhere, or the interface has another XDP program.
    pub fn attach(
        &mut self,
        ifindex: u32,
        want: Option<AttachMode>,
    ) -> Result<AttachMode, BpfError> {
        if let Some((i, _, _)) = &self.attached {
            return Err(BpfError::new(
                format!("attaching to interface {ifindex}"),
                libbpf_rs::Error::from(std::io::Error::other(format!(
                    "already attached to interface {i}"
                ))),
            ));
        }
        let fd = self.prog_fd()?;
        let tries: &[AttachMode] = match want {
            Some(AttachMode::Native) => &[AttachMode::Native],
            Some(AttachMode::Generic) => &[AttachMode::Generic],
            None => &[AttachMode::Native, AttachMode::Generic],
        };
        let mut last = None;
        for &mode in tries {
            match link_xdp(fd, ifindex as i32, mode.flags().bits()) {
                Ok(link) => {
                    self.attached = Some((ifindex as i32, mode, link));
                    return Ok(mode);
                }
                Err(e) => {
                    last = Some(BpfError::new(
                        format!("attaching to interface {ifindex} in {mode} mode"),
                        libbpf_rs::Error::from(e),
                    ))
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            BpfError::new(
                "attaching",
                libbpf_rs::Error::from(std::io::Error::other("no mode")),
            )
        }))
    }

    /// The interface index and mode the program is attached with, if any.
    pub fn attached(&self) -> Option<(u32, AttachMode)> {
        self.attached.as_ref().map(|(i, m, _)| (*i as u32, *m))
    }

    /// Detaches from the interface (nothing when not attached).
    pub fn detach(&mut self) -> Result<(), BpfError> {
        // Closing the link's descriptor detaches the program.
        drop(self.attached.take());
        Ok(())
    }
}

/// Attaches `prog` to `ifindex` as an XDP BPF link with the given mode flags.
fn link_xdp(prog: BorrowedFd<'_>, ifindex: i32, flags: u32) -> std::io::Result<OwnedFd> {
    use libbpf_rs::libbpf_sys;
    // SAFETY: an all-zero `bpf_link_create_opts` is its documented "no options" value
    // (plain integers, a null pointer and a union of integers).
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.flags = flags;
    // SAFETY: `prog` is a live program descriptor and `opts` a valid, sized struct that
    // outlives the call.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(prog.as_raw_fd(), ifindex, libbpf_sys::BPF_XDP, &opts)
    };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: libbpf returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_a_bpf_elf() {
        assert_eq!(&XDP_OBJECT[..4], b"\x7fELF");
        // e_machine at offset 18: EM_BPF = 247.
        assert_eq!(u16::from_le_bytes([XDP_OBJECT[18], XDP_OBJECT[19]]), 247);
    }

    #[test]
    fn address_keys() {
        let k = address_key("192.0.2.1".parse().unwrap());
        assert_eq!(k[..10], [0; 10]);
        assert_eq!(k[10..12], [0xff, 0xff]);
        assert_eq!(k[12..], [192, 0, 2, 1]);
        let k = address_key("2001:db8::1".parse().unwrap());
        assert_eq!(k[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(k[15], 1);
    }

    #[test]
    fn loads_sets_mode_and_reads_counters() {
        // Needs CAP_BPF (CI runs as root); skip quietly otherwise.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let p = XdpProgram::load().expect("load");
        p.set_mode(Mode::Host).unwrap();
        p.add_address("192.0.2.1".parse().unwrap()).unwrap();
        p.remove_address("192.0.2.1".parse().unwrap()).unwrap();
        p.remove_address("192.0.2.9".parse().unwrap()).unwrap();
        assert_eq!(p.counters(0).unwrap(), QueueCounters::default());
        assert!(p.attached().is_none());
    }
}
