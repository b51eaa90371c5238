//! The shared region between an application and the daemon, and its rings.
//!
//! One memfd per attached application, mapped by both sides:
//!
//! ```text
//! 0      header page: magic, version, shards, entries per ring, entry size
//! 4096   shard 0: request ring (application -> daemon), completion ring (daemon -> application)
//!        shard 1: ...
//! ```
//!
//! A ring is single-producer single-consumer: a control block (the consumer's `head` and
//! the producer's `tail` on cache lines of their own) and a power-of-two array of fixed
//! [`ENTRY_SIZE`]-byte entries, each a 64-byte header and up to [`DATA_MAX`] bytes of
//! payload. The producer writes an entry, then publishes it by storing `tail` (release);
//! the consumer reads `tail` (acquire), copies the entry out, then frees it by storing
//! `head` (release).
//!
//! Either side may be hostile. Everything read from the region is copied into a private
//! [`Entry`] first and then validated: a payload length beyond [`DATA_MAX`] is cut, a
//! `tail` more than a ring ahead of `head` is refused ([`Ring::pop`] reports the ring
//! broken), and a consumer never takes more than one ring's worth per call. A peer that
//! scribbles over its own region can only garble its own traffic.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// "DPSOCK" and the layout version.
pub const MAGIC: u64 = 0x4450_534f_434b_0000;
/// The protocol version; a client of another version is refused at attach.
pub const VERSION: u32 = 1;
/// Bytes of payload an entry carries.
pub const DATA_MAX: usize = 2048;
/// Bytes of an entry header.
pub const HEADER: usize = 64;
/// Bytes of an entry.
pub const ENTRY_SIZE: usize = HEADER + DATA_MAX;
/// Entries per ring.
pub const ENTRIES: u32 = 256;
/// Bytes a client may have sent on a TCP connection that the daemon has not yet moved
/// into the stack ([`op::TCP_SENT`] returns them); the daemon refuses more.
pub const TCP_CREDIT: usize = 256 * 1024;
/// Bytes of the header page.
const PAGE: usize = 4096;
/// Bytes of a ring's control block.
const CONTROL: usize = 128;

/// Bytes of one ring.
pub const fn ring_bytes(entries: u32) -> usize {
    CONTROL + entries as usize * ENTRY_SIZE
}

/// Bytes of a region for `shards` shards.
pub const fn region_bytes(shards: u32, entries: u32) -> usize {
    PAGE + shards as usize * 2 * ring_bytes(entries)
}

/// Why a region could not be made or mapped.
#[derive(Debug)]
pub struct ShmError(pub String);

impl std::fmt::Display for ShmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ShmError {}

fn os_err(what: &str) -> ShmError {
    ShmError(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// A mapped region.
pub struct Region {
    base: *mut u8,
    len: usize,
    file: File,
}

// SAFETY: the region is plain shared memory; every access goes through atomics (the
// ring indices) or byte copies of entries a side owns by the ring protocol, and a
// hostile peer can only corrupt bytes, which are validated after copying.
unsafe impl Send for Region {}
// SAFETY: as above; shared references only read or use atomics.
unsafe impl Sync for Region {}

impl Region {
    /// Creates a region for `shards` shards (the daemon side) and writes its header.
    pub fn create(name: &str, shards: u32) -> Result<Region, ShmError> {
        if shards == 0 || shards > 64 {
            return Err(ShmError(format!("{shards} shards: 1 to 64 are supported")));
        }
        let cname = std::ffi::CString::new(name).map_err(|_| ShmError("bad name".into()))?;
        // SAFETY: memfd_create with a valid C string and flags; the result is checked.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_err("memfd_create"));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let len = region_bytes(shards, ENTRIES);
        file.set_len(len as u64)
            .map_err(|e| ShmError(format!("sizing the region: {e}")))?;
        let r = Region::map(file)?;
        r.header_u64(0).store(MAGIC, Ordering::Relaxed);
        r.header_u32(8).store(VERSION, Ordering::Relaxed);
        r.header_u32(12).store(shards, Ordering::Relaxed);
        r.header_u32(16).store(ENTRIES, Ordering::Relaxed);
        r.header_u32(20).store(ENTRY_SIZE as u32, Ordering::Relaxed);
        Ok(r)
    }

    /// Maps a region received from the daemon (the client side) and checks its header.
    pub fn open(file: File) -> Result<Region, ShmError> {
        let r = Region::map(file)?;
        if r.len < PAGE || r.header_u64(0).load(Ordering::Relaxed) != MAGIC {
            return Err(ShmError("not a dataplane socket region".into()));
        }
        let v = r.header_u32(8).load(Ordering::Relaxed);
        if v != VERSION {
            return Err(ShmError(format!(
                "the daemon's region has version {v}, this client speaks {VERSION}"
            )));
        }
        let (shards, entries) = (r.shards(), r.header_u32(16).load(Ordering::Relaxed));
        if shards == 0
            || shards > 64
            || entries != ENTRIES
            || r.header_u32(20).load(Ordering::Relaxed) != ENTRY_SIZE as u32
            || r.len < region_bytes(shards, entries)
        {
            return Err(ShmError(
                "the region's layout does not match this client".into(),
            ));
        }
        Ok(r)
    }

    fn map(file: File) -> Result<Region, ShmError> {
        let len = file
            .metadata()
            .map_err(|e| ShmError(format!("region size: {e}")))?
            .len() as usize;
        if !(PAGE..=(1 << 30)).contains(&len) {
            return Err(ShmError(format!("region of {len} bytes")));
        }
        // SAFETY: a shared read-write mapping of the whole file, checked for failure;
        // unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_err("mmap"));
        }
        Ok(Region {
            base: p.cast(),
            len,
            file,
        })
    }

    /// The memfd, to pass to the client.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Shards (pairs of rings).
    pub fn shards(&self) -> u32 {
        self.header_u32(12).load(Ordering::Relaxed).min(64)
    }

    fn header_u32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off + 4 <= PAGE && off.is_multiple_of(4));
        // SAFETY: inside the mapped header page, 4-aligned (the mapping is page-aligned).
        unsafe { &*self.base.add(off).cast::<AtomicU32>() }
    }

    fn header_u64(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= PAGE && off.is_multiple_of(8));
        // SAFETY: inside the mapped header page, 8-aligned.
        unsafe { &*self.base.add(off).cast::<AtomicU64>() }
    }

    /// Shard `shard`'s "asleep" flag: the daemon raises it before its shard sleeps, and
    /// a client that queues a request then wakes the shard through its wake-up
    /// descriptor (passed at attach).
    pub fn asleep(&self, shard: u32) -> Option<&AtomicU32> {
        (shard < self.shards()).then(|| self.header_u32(64 + 4 * shard as usize))
    }

    /// The application's "asleep" flag: a client raises it before it sleeps on its
    /// wake-up descriptor (passed at attach), and a shard that queues a completion
    /// then writes to that descriptor.
    pub fn client_asleep(&self) -> &AtomicU32 {
        self.header_u32(32)
    }

    /// The request ring (application → daemon) of `shard`.
    pub fn requests(&self, shard: u32) -> Option<Ring<'_>> {
        self.ring(shard, 0)
    }

    /// The completion ring (daemon → application) of `shard`.
    pub fn completions(&self, shard: u32) -> Option<Ring<'_>> {
        self.ring(shard, 1)
    }

    fn ring(&self, shard: u32, which: usize) -> Option<Ring<'_>> {
        if shard >= self.shards() {
            return None;
        }
        let off = PAGE + (shard as usize * 2 + which) * ring_bytes(ENTRIES);
        if off + ring_bytes(ENTRIES) > self.len {
            return None;
        }
        Some(Ring {
            // SAFETY: `off + ring_bytes` is inside the mapping (checked above).
            base: unsafe { self.base.add(off) },
            _region: self,
        })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// One ring of a region.
pub struct Ring<'a> {
    base: *mut u8,
    _region: &'a Region,
}

/// The consumer found the ring's indices inconsistent (a hostile or broken peer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Broken;

impl Ring<'_> {
    fn head(&self) -> &AtomicU32 {
        // SAFETY: the control block's first cache line, inside the ring.
        unsafe { &*self.base.cast::<AtomicU32>() }
    }

    fn tail(&self) -> &AtomicU32 {
        // SAFETY: the control block's second cache line, inside the ring.
        unsafe { &*self.base.add(64).cast::<AtomicU32>() }
    }

    fn slot(&self, index: u32) -> *mut u8 {
        let i = (index & (ENTRIES - 1)) as usize;
        // SAFETY: i < ENTRIES, so the entry lies inside the ring.
        unsafe { self.base.add(CONTROL + i * ENTRY_SIZE) }
    }

    /// Entries waiting (as the consumer sees them), or `Broken`.
    pub fn len(&self) -> Result<u32, Broken> {
        let n = self
            .tail()
            .load(Ordering::Acquire)
            .wrapping_sub(self.head().load(Ordering::Relaxed));
        if n > ENTRIES {
            Err(Broken)
        } else {
            Ok(n)
        }
    }

    /// Whether nothing waits (a broken ring counts as not empty, so the consumer looks).
    pub fn is_empty(&self) -> bool {
        self.len() == Ok(0)
    }

    /// Producer: writes `entry` (its header and `entry.len()` bytes of payload) and
    /// publishes it; false when the ring is full.
    pub fn push(&self, entry: &Entry) -> bool {
        let tail = self.tail().load(Ordering::Relaxed);
        let head = self.head().load(Ordering::Acquire);
        if tail.wrapping_sub(head) >= ENTRIES {
            return false;
        }
        let n = HEADER + entry.len();
        // SAFETY: the slot is ENTRY_SIZE bytes inside the mapping and n <= ENTRY_SIZE;
        // by the ring protocol the consumer does not read it until `tail` moves.
        unsafe { std::ptr::copy_nonoverlapping(entry.bytes.as_ptr(), self.slot(tail), n) };
        self.tail().store(tail.wrapping_add(1), Ordering::Release);
        true
    }

    /// Consumer: copies the next entry into `out`; `Ok(false)` when empty, `Err` when
    /// the indices are inconsistent.
    pub fn pop(&self, out: &mut Entry) -> Result<bool, Broken> {
        let head = self.head().load(Ordering::Relaxed);
        let tail = self.tail().load(Ordering::Acquire);
        let n = tail.wrapping_sub(head);
        if n == 0 {
            return Ok(false);
        }
        if n > ENTRIES {
            return Err(Broken);
        }
        // SAFETY: the slot is ENTRY_SIZE bytes inside the mapping; copied whole, then
        // validated from the private copy only.
        unsafe {
            std::ptr::copy_nonoverlapping(self.slot(head), out.bytes.as_mut_ptr(), ENTRY_SIZE)
        };
        self.head().store(head.wrapping_add(1), Ordering::Release);
        Ok(true)
    }
}

/// A private copy of an entry: a 64-byte header and the payload.
///
/// Header layout (little endian): `op` u8 @0, `family` u8 @1 (4, 6 or 0), `port` u16
/// @2, `len` u32 @4, `seq` u64 @8, `sock` u32 @16, `result` i32 @20, `addr` 16 bytes
/// @24, `arg` u64 @40.
#[derive(Clone)]
pub struct Entry {
    bytes: Box<[u8; ENTRY_SIZE]>,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            bytes: Box::new([0; ENTRY_SIZE]),
        }
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("op", &self.op())
            .field("seq", &self.seq())
            .field("sock", &self.sock())
            .field("result", &self.result())
            .field("addr", &self.addr())
            .field("len", &self.len())
            .finish()
    }
}

impl Entry {
    /// A zeroed entry with `op` and `seq`.
    pub fn new(op: u8, seq: u64) -> Entry {
        let mut e = Entry::default();
        e.bytes[0] = op;
        e.set_u64(8, seq);
        e
    }

    /// Clears the header and payload length (for reuse).
    pub fn reset(&mut self, op: u8, seq: u64) {
        self.bytes[..HEADER].fill(0);
        self.bytes[0] = op;
        self.set_u64(8, seq);
    }

    fn u32_at(&self, off: usize) -> u32 {
        u32::from_le_bytes(self.bytes[off..off + 4].try_into().unwrap_or([0; 4]))
    }

    fn set_u32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    fn set_u64(&mut self, off: usize, v: u64) {
        self.bytes[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    fn u64_at(&self, off: usize) -> u64 {
        u64::from_le_bytes(self.bytes[off..off + 8].try_into().unwrap_or([0; 8]))
    }

    /// The operation.
    pub fn op(&self) -> u8 {
        self.bytes[0]
    }

    /// The request's sequence number (echoed by its completion).
    pub fn seq(&self) -> u64 {
        self.u64_at(8)
    }

    /// The socket id.
    pub fn sock(&self) -> u32 {
        self.u32_at(16)
    }

    /// Sets the socket id.
    pub fn set_sock(&mut self, s: u32) {
        self.set_u32(16, s);
    }

    /// The result: 0 or more on success, a negative errno on failure.
    pub fn result(&self) -> i32 {
        self.u32_at(20) as i32
    }

    /// Sets the result.
    pub fn set_result(&mut self, r: i32) {
        self.set_u32(20, r as u32);
    }

    /// An extra argument.
    pub fn arg(&self) -> u64 {
        self.u64_at(40)
    }

    /// Sets the extra argument.
    pub fn set_arg(&mut self, a: u64) {
        self.set_u64(40, a);
    }

    /// The address, if the family byte names one.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        let port = u16::from_le_bytes([self.bytes[2], self.bytes[3]]);
        let a = &self.bytes[24..40];
        match self.bytes[1] {
            4 => Some(std::net::SocketAddr::from(([a[0], a[1], a[2], a[3]], port))),
            6 => {
                let o: [u8; 16] = a.try_into().ok()?;
                Some(std::net::SocketAddr::from((o, port)))
            }
            _ => None,
        }
    }

    /// Sets the address.
    pub fn set_addr(&mut self, addr: std::net::SocketAddr) {
        self.bytes[2..4].copy_from_slice(&addr.port().to_le_bytes());
        self.bytes[24..40].fill(0);
        match addr.ip() {
            std::net::IpAddr::V4(v4) => {
                self.bytes[1] = 4;
                self.bytes[24..28].copy_from_slice(&v4.octets());
            }
            std::net::IpAddr::V6(v6) => {
                self.bytes[1] = 6;
                self.bytes[24..40].copy_from_slice(&v6.octets());
            }
        }
    }

    /// Payload bytes, never more than [`DATA_MAX`] (a larger claimed length is cut).
    pub fn len(&self) -> usize {
        (self.u32_at(4) as usize).min(DATA_MAX)
    }

    /// Whether there is no payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.bytes[HEADER..HEADER + self.len()]
    }

    /// Sets the payload from `data` (cut to [`DATA_MAX`]); returns the bytes taken.
    pub fn set_data(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(DATA_MAX);
        self.bytes[HEADER..HEADER + n].copy_from_slice(&data[..n]);
        self.set_u32(4, n as u32);
        n
    }

    /// The payload buffer to fill in place, then [`Entry::set_len`].
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[HEADER..]
    }

    /// Sets the payload length (cut to [`DATA_MAX`]).
    pub fn set_len(&mut self, n: usize) {
        self.set_u32(4, n.min(DATA_MAX) as u32);
    }
}

/// Operations (the `op` byte).
pub mod op {
    /// Nothing; completed at once (ring round-trip measurements).
    pub const NOP: u8 = 1;
    /// Bind a UDP socket to `addr` (port 0: ephemeral); completes with `sock` and the
    /// bound `addr`.
    pub const UDP_BIND: u8 = 2;
    /// Send the payload from `sock` to `addr`; completes with the bytes sent.
    pub const UDP_SEND: u8 = 3;
    /// Close `sock`.
    pub const CLOSE: u8 = 4;
    /// Daemon → application, unsolicited: a datagram for `sock` from `addr`.
    pub const UDP_RECV: u8 = 5;
    /// Daemon → application: the socket reported an ICMP error (result: -errno).
    pub const SOCK_ERROR: u8 = 6;
    /// Listen for TCP on `addr` (a port is required), backlog in `arg`; completes
    /// with `sock`.
    pub const TCP_LISTEN: u8 = 7;
    /// Open a TCP connection to `addr`; completes with `sock` and the local `addr`
    /// once the SYN is out; [`TCP_CONNECTED`] follows.
    pub const TCP_CONNECT: u8 = 8;
    /// Queue the payload on connection `sock`; not answered (see [`TCP_SENT`]).
    pub const TCP_SEND: u8 = 9;
    /// Send FIN on `sock` after the queued bytes (half-close).
    pub const TCP_SHUTDOWN: u8 = 10;
    /// Daemon → application: listener `sock` accepted connection `arg` from `addr`.
    pub const TCP_ACCEPTED: u8 = 11;
    /// Daemon → application: connection `sock` is established (result 0) or failed
    /// (-errno).
    pub const TCP_CONNECTED: u8 = 12;
    /// Daemon → application: bytes received on `sock`.
    pub const TCP_DATA: u8 = 13;
    /// Daemon → application: the peer finished sending on `sock` (end of stream).
    pub const TCP_EOF: u8 = 14;
    /// Daemon → application: `arg` more bytes queued by `TCP_SEND` entered the
    /// stack's send buffer (the client's send credit comes back).
    pub const TCP_SENT: u8 = 15;
    /// Daemon → application: connection `sock` failed (result -errno: reset, timeout).
    pub const TCP_CLOSED: u8 = 16;
    /// Set option `arg >> 32` to `arg & 0xffff_ffff` on `sock` ([`opt`]).
    pub const SETOPT: u8 = 17;
}

/// Socket options of [`op::SETOPT`].
pub mod opt {
    /// TCP: Nagle off (1) or on (0).
    pub const TCP_NODELAY: u32 = 1;
    /// UDP: receive queue size in bytes (rounded to whole 2 KiB datagrams, at least 1).
    pub const SO_RCVBUF: u32 = 2;
    /// TCP: keepalive idle time in seconds (0: off).
    pub const SO_KEEPALIVE: u32 = 3;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_a_ring() {
        let r = Region::create("test", 2).unwrap();
        let ring = r.requests(1).unwrap();
        assert!(ring.is_empty());
        let mut e = Entry::new(op::UDP_SEND, 42);
        e.set_sock(7);
        e.set_addr("[2001:db8::1]:9".parse().unwrap());
        e.set_data(b"payload");
        assert!(ring.push(&e));
        let mut out = Entry::default();
        assert_eq!(ring.pop(&mut out), Ok(true));
        assert_eq!((out.op(), out.seq(), out.sock()), (op::UDP_SEND, 42, 7));
        assert_eq!(out.addr(), Some("[2001:db8::1]:9".parse().unwrap()));
        assert_eq!(out.data(), b"payload");
        assert_eq!(ring.pop(&mut out), Ok(false));
        // The other side maps the same memory.
        let other = Region::open(r.file().try_clone().unwrap()).unwrap();
        assert_eq!(other.shards(), 2);
        assert!(other.completions(2).is_none());
        let c = other.completions(0).unwrap();
        assert!(c.push(&Entry::new(op::NOP, 1)));
        assert_eq!(r.completions(0).unwrap().len(), Ok(1));
    }

    #[test]
    fn a_full_ring_refuses_and_wraps_around() {
        let r = Region::create("test", 1).unwrap();
        let ring = r.requests(0).unwrap();
        let mut out = Entry::default();
        for round in 0..3u64 {
            for i in 0..u64::from(ENTRIES) {
                assert!(ring.push(&Entry::new(op::NOP, round * 1000 + i)));
            }
            assert!(!ring.push(&Entry::new(op::NOP, 0)), "full");
            for i in 0..u64::from(ENTRIES) {
                assert_eq!(ring.pop(&mut out), Ok(true));
                assert_eq!(out.seq(), round * 1000 + i);
            }
        }
    }

    #[test]
    fn hostile_indices_and_lengths_are_refused_or_cut() {
        let r = Region::create("test", 1).unwrap();
        let ring = r.requests(0).unwrap();
        // A producer that claims a tail far ahead.
        ring.tail().store(ENTRIES * 5, Ordering::Release);
        let mut out = Entry::default();
        assert_eq!(ring.pop(&mut out), Err(Broken));
        assert_eq!(ring.len(), Err(Broken));
        ring.tail().store(1, Ordering::Release);
        // An entry claiming a huge payload is cut to DATA_MAX.
        // SAFETY: test-only write into the first slot of our own mapping.
        unsafe { std::ptr::write_bytes(ring.slot(0).add(4), 0xff, 4) };
        assert_eq!(ring.pop(&mut out), Ok(true));
        assert_eq!(out.len(), DATA_MAX);
        assert_eq!(out.addr(), None);
    }

    proptest::proptest! {
        /// Whatever bytes a hostile peer leaves in a slot, reading the entry never
        /// panics and never yields more than DATA_MAX bytes.
        #[test]
        fn any_slot_bytes_read_safely(bytes in proptest::collection::vec(proptest::num::u8::ANY, ENTRY_SIZE), head in 0u32..4, tail_ahead in 0u32..(2 * ENTRIES)) {
            let r = Region::create("fuzz", 1).unwrap();
            let ring = r.requests(0).unwrap();
            ring.head().store(head, Ordering::Relaxed);
            ring.tail().store(head.wrapping_add(tail_ahead), Ordering::Release);
            // SAFETY: test-only write of one entry's bytes into our own mapping.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ring.slot(head), ENTRY_SIZE) };
            let mut out = Entry::default();
            match ring.pop(&mut out) {
                Ok(true) => {
                    proptest::prop_assert!((1..=ENTRIES).contains(&tail_ahead));
                    proptest::prop_assert!(out.data().len() <= DATA_MAX);
                    let _ = (out.op(), out.seq(), out.sock(), out.result(), out.addr(), out.arg());
                }
                Ok(false) => proptest::prop_assert_eq!(tail_ahead, 0),
                Err(Broken) => proptest::prop_assert!(tail_ahead > ENTRIES),
            }
        }
    }

    #[test]
    fn a_region_of_another_version_is_refused() {
        let r = Region::create("test", 1).unwrap();
        r.header_u32(8).store(VERSION + 1, Ordering::Relaxed);
        let e = Region::open(r.file().try_clone().unwrap()).err().unwrap();
        assert!(e.0.contains("version"), "{e}");
        r.header_u64(0).store(0, Ordering::Relaxed);
        assert!(Region::open(r.file().try_clone().unwrap()).is_err());
    }
}
