//! The shared region between an application and the daemon: its rings and its buffer
//! area.
//!
//! One memfd per attached application, mapped by both sides:
//!
//! ```text
//! 0      header page: magic, version, shards, entries per ring, entry size, the
//!        buffer area's place, per-shard flags and UDP send counters
//! 4096   shard 0: request ring (application -> daemon), completion ring (daemon -> application)
//!        shard 1: ...
//! ...    UDP send slots: UDP_TX_SLOTS slots of DGRAM_MAX bytes per shard
//! ...    the buffer area (page aligned): payload, handed out by the daemon
//! ```
//!
//! A ring is single-producer single-consumer: a control block (the consumer's `head` and
//! the producer's `tail` on cache lines of their own) and a power-of-two array of fixed
//! [`ENTRY_SIZE`]-byte entries, each a 64-byte header and up to [`DATA_MAX`] bytes of
//! inline data (buffer descriptors, never payload). The producer writes an entry, then
//! publishes it by storing `tail` (release); the consumer reads `tail` (acquire), copies
//! the entry out, then frees it by storing `head` (release).
//!
//! Payload lives in the buffer area, never in entries:
//! - UDP sends: the client writes the datagram into its next send slot of the shard and
//!   queues [`op::UDP_SEND`] naming it (offset and length); the daemon builds the frame
//!   reading the slot in place, then counts the slot free in the header
//!   ([`Region::udp_tx_done`]).
//! - UDP receives: the daemon gives each socket, on each shard, a receive extent of the
//!   area (a 64-byte control word, then slots); it writes a datagram from the frame into
//!   the next slot and announces it with [`op::UDP_RECV`] (offset, length, and the
//!   control word's offset in `arg`); the client copies it out and counts it consumed in
//!   the control word.
//! - TCP: each connection's send and receive buffers (the stack's byte rings) are
//!   extents of the area ([`Extent`]). The client writes into the send ring's free part
//!   and posts [`op::TCP_SEND`] with the count; the stack segments straight from it. The
//!   stack writes received payload from frames into the receive ring; the daemon
//!   announces bytes with [`op::TCP_DATA`], and the client reads them in place and posts
//!   [`op::TCP_CONSUME`]. Positions are stream offsets modulo the ring's size.
//!
//! Copies of payload, per direction (the daemon never makes one of its own):
//!
//! | path | std-like call | borrow-style call |
//! |---|---|---|
//! | UDP send | `send_to`: caller → slot, slot → frame (2) | `send_with`: slot → frame (1) |
//! | UDP receive | `recv_from`: frame → slot, slot → caller (2) | `recv_with`: frame → slot (1) |
//! | TCP send | `write`: caller → ring, ring → frame (2) | `write_with`: ring → frame (1) |
//! | TCP receive | `read`: frame → ring, ring → caller (2) | `read_with`: frame → ring (1) |
//!
//! (Version 1 carried payload inline in ring entries: 4 to 5 copies per direction.) A
//! TCP retransmission reads the send ring again; the frame copies themselves are the
//! stack's, as with any stack that builds frames in its own packet memory.
//!
//! Either side may be hostile. Everything read from the rings is copied into a private
//! [`Entry`] first and then validated: an inline length beyond [`DATA_MAX`] is cut, a
//! `tail` more than a ring ahead of `head` is refused ([`Ring::pop`] reports the ring
//! broken), and a consumer never takes more than one ring's worth per call. Offsets and
//! lengths naming the buffer area are checked against the area (and, by the daemon,
//! against its own private indices: it never trusts a count or index read from shared
//! memory). An application that scribbles over its own region or area can only garble
//! its own traffic.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// "DPSOCK" and the layout version.
pub const MAGIC: u64 = 0x4450_534f_434b_0000;
/// The protocol version; a client of another version is refused at attach.
pub const VERSION: u32 = 2;
/// Bytes of inline data an entry carries (descriptors; payload is in the buffer area).
pub const DATA_MAX: usize = 64;
/// Bytes of a datagram slot: the largest datagram.
pub const DGRAM_MAX: usize = 2048;
/// UDP send slots per shard.
pub const UDP_TX_SLOTS: u32 = 64;
/// UDP receive slots a socket gets on each shard unless SO_RCVBUF says otherwise.
pub const UDP_RX_SLOTS: u32 = 32;
/// Bytes of a TCP connection's receive ring unless SO_RCVBUF says otherwise (never
/// less than the stack's own buffer size).
pub const TCP_BUFFER: usize = 256 * 1024;
/// Bytes of a TCP connection's send ring unless SO_SNDBUF says otherwise: twice the
/// stack's buffer, so that the application can write the next window's bytes while
/// the last ones wait for their acknowledgement.
pub const TCP_SEND_BUFFER: usize = 512 * 1024;
/// The largest buffer area.
pub const AREA_MAX: usize = 1 << 32;
/// Bytes of an entry header.
pub const HEADER: usize = 64;
/// Bytes of an entry.
pub const ENTRY_SIZE: usize = HEADER + DATA_MAX;
/// Entries per ring.
pub const ENTRIES: u32 = 256;
/// Bytes of the header page.
const PAGE: usize = 4096;
/// Bytes of a ring's control block.
const CONTROL: usize = 128;

/// Bytes of one ring.
pub const fn ring_bytes(entries: u32) -> usize {
    CONTROL + entries as usize * ENTRY_SIZE
}

/// Bytes of the rings and UDP send slots of `shards` shards, with the header page.
pub const fn fixed_bytes(shards: u32, entries: u32) -> usize {
    let n = PAGE + shards as usize * (2 * ring_bytes(entries) + UDP_TX_SLOTS as usize * DGRAM_MAX);
    n.div_ceil(PAGE) * PAGE
}

/// Bytes of a region for `shards` shards and a buffer area of `area` bytes.
pub const fn region_bytes(shards: u32, entries: u32, area: usize) -> usize {
    fixed_bytes(shards, entries) + area
}

/// Header offsets.
const H_AREA_OFF: usize = 40;
const H_AREA_LEN: usize = 48;
const H_UDP_DONE: usize = 512;

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
    /// Creates a region for `shards` shards with a buffer area of `area` bytes (rounded
    /// up to whole pages) (the daemon side) and writes its header.
    pub fn create(name: &str, shards: u32, area: usize) -> Result<Region, ShmError> {
        if shards == 0 || shards > 64 {
            return Err(ShmError(format!("{shards} shards: 1 to 64 are supported")));
        }
        if area > AREA_MAX {
            return Err(ShmError(format!("a buffer area of {area} bytes")));
        }
        let area = area.div_ceil(PAGE) * PAGE;
        let cname = std::ffi::CString::new(name).map_err(|_| ShmError("bad name".into()))?;
        // SAFETY: memfd_create with a valid C string and flags; the result is checked.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(os_err("memfd_create"));
        }
        // SAFETY: fd is a fresh descriptor we own.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        // Sparse: pages are only backed once touched.
        let len = region_bytes(shards, ENTRIES, area);
        file.set_len(len as u64)
            .map_err(|e| ShmError(format!("sizing the region: {e}")))?;
        let r = Region::map(file)?;
        r.header_u64(0).store(MAGIC, Ordering::Relaxed);
        r.header_u32(8).store(VERSION, Ordering::Relaxed);
        r.header_u32(12).store(shards, Ordering::Relaxed);
        r.header_u32(16).store(ENTRIES, Ordering::Relaxed);
        r.header_u32(20).store(ENTRY_SIZE as u32, Ordering::Relaxed);
        r.header_u64(H_AREA_OFF)
            .store(fixed_bytes(shards, ENTRIES) as u64, Ordering::Relaxed);
        r.header_u64(H_AREA_LEN)
            .store(area as u64, Ordering::Relaxed);
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
        let (off, len) = r.area();
        if shards == 0
            || shards > 64
            || entries != ENTRIES
            || r.header_u32(20).load(Ordering::Relaxed) != ENTRY_SIZE as u32
            || off != fixed_bytes(shards, entries)
            || r.len < region_bytes(shards, entries, len)
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
        if !(PAGE..=(AREA_MAX + (64 << 20))).contains(&len) {
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

    /// The buffer area: its offset in the region and its length.
    pub fn area(&self) -> (usize, usize) {
        let off = self.header_u64(H_AREA_OFF).load(Ordering::Relaxed) as usize;
        let len = self.header_u64(H_AREA_LEN).load(Ordering::Relaxed) as usize;
        (off, len)
    }

    /// Where payload may be: the UDP send slots and the buffer area.
    fn payload_range(&self) -> std::ops::Range<usize> {
        let start = PAGE + self.shards() as usize * 2 * ring_bytes(ENTRIES);
        start.min(self.len)..self.len
    }

    /// Offset of UDP send slot `i` (modulo [`UDP_TX_SLOTS`]) of `shard`.
    pub fn udp_tx_slot(&self, shard: u32, i: u32) -> usize {
        PAGE + self.shards() as usize * 2 * ring_bytes(ENTRIES)
            + (shard as usize * UDP_TX_SLOTS as usize + (i % UDP_TX_SLOTS) as usize) * DGRAM_MAX
    }

    /// Shard `shard`'s count of UDP sends it has taken from the request ring (written
    /// by the daemon only; a send slot is free again once counted).
    pub fn udp_tx_done(&self, shard: u32) -> Option<&AtomicU32> {
        (shard < self.shards()).then(|| self.header_u32(H_UDP_DONE + 4 * shard as usize))
    }

    /// `len` bytes of payload memory at `off`, if they lie inside the UDP send slots or
    /// the buffer area.
    ///
    /// The other side may write these bytes at any time: what is read from them is
    /// payload, never trusted for anything else.
    pub fn payload(&self, off: usize, len: usize) -> Option<&[u8]> {
        let r = self.payload_range();
        let end = off.checked_add(len)?;
        if off < r.start || end > r.end {
            return None;
        }
        // SAFETY: inside the mapping (checked); plain bytes with no invalid values.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(off), len) })
    }

    /// Like [`Region::payload`], to write. Shared memory: by the protocol only one
    /// side writes a given part of the buffer area at a time, and a side that breaks
    /// the protocol only garbles payload.
    #[allow(clippy::mut_from_ref)]
    pub fn payload_mut(&self, off: usize, len: usize) -> Option<&mut [u8]> {
        let r = self.payload_range();
        let end = off.checked_add(len)?;
        if off < r.start || end > r.end {
            return None;
        }
        // SAFETY: inside the mapping (checked); plain bytes. The memory is shared with
        // the other process, which the protocol keeps off these bytes while we hold
        // them; if it does not, only payload is garbled.
        Some(unsafe { std::slice::from_raw_parts_mut(self.base.add(off), len) })
    }

    /// A counter in payload memory at `off` (4-aligned), if inside it.
    pub fn payload_u32(&self, off: usize) -> Option<&AtomicU32> {
        let r = self.payload_range();
        if off < r.start || off.checked_add(4)? > r.end || !off.is_multiple_of(4) {
            return None;
        }
        // SAFETY: inside the mapping and 4-aligned (checked).
        Some(unsafe { &*self.base.add(off).cast::<AtomicU32>() })
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

/// Hands out extents of a region's buffer area (first fit over 64-byte units), up to the
/// area's size: the application's buffer-memory quota.
#[derive(Debug)]
pub struct Allocator {
    /// Free extents (offset, length), sorted, never adjacent.
    free: Vec<(usize, usize)>,
    used: usize,
}

/// Allocation unit.
const UNIT: usize = 64;

impl Allocator {
    /// An allocator for the area at `off` of `len` bytes.
    pub fn new(off: usize, len: usize) -> Allocator {
        Allocator {
            free: if len > 0 {
                vec![(off, len)]
            } else {
                Vec::new()
            },
            used: 0,
        }
    }

    /// Bytes handed out.
    pub fn used(&self) -> usize {
        self.used
    }

    fn take(&mut self, len: usize) -> Option<usize> {
        let len = len.max(1).checked_next_multiple_of(UNIT)?;
        let i = self.free.iter().position(|&(_, l)| l >= len)?;
        let (off, l) = self.free[i];
        if l == len {
            self.free.remove(i);
        } else {
            self.free[i] = (off + len, l - len);
        }
        self.used += len;
        Some(off)
    }

    fn give(&mut self, off: usize, len: usize) {
        let len = len.max(1).next_multiple_of(UNIT);
        self.used = self.used.saturating_sub(len);
        let i = self.free.partition_point(|&(o, _)| o < off);
        self.free.insert(i, (off, len));
        if i + 1 < self.free.len() && self.free[i].0 + self.free[i].1 == self.free[i + 1].0 {
            self.free[i].1 += self.free[i + 1].1;
            self.free.remove(i + 1);
        }
        if i > 0 && self.free[i - 1].0 + self.free[i - 1].1 == self.free[i].0 {
            self.free[i - 1].1 += self.free[i].1;
            self.free.remove(i);
        }
    }
}

/// An application's region with its area allocator, shared by the shards serving it.
#[derive(Clone)]
pub struct Area {
    region: Arc<Region>,
    alloc: Arc<Mutex<Allocator>>,
}

impl Area {
    /// The allocator of `region`'s buffer area.
    pub fn new(region: Arc<Region>) -> Area {
        let (off, len) = region.area();
        Area {
            region,
            alloc: Arc::new(Mutex::new(Allocator::new(off, len))),
        }
    }

    /// The region.
    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// Bytes handed out.
    pub fn used(&self) -> usize {
        self.alloc.lock().map_or(0, |a| a.used())
    }

    /// An extent of `len` bytes; `None` when the area (the quota) has no room.
    pub fn alloc(&self, len: usize) -> Option<Extent> {
        let off = self.alloc.lock().ok()?.take(len)?;
        let ptr = match self.region.payload_mut(off, len) {
            Some(b) => b.as_mut_ptr(),
            None => {
                if let Ok(mut a) = self.alloc.lock() {
                    a.give(off, len);
                }
                return None;
            }
        };
        Some(Extent {
            ptr,
            region: self.region.clone(),
            lease: Arc::new(Lease {
                alloc: self.alloc.clone(),
                off,
                len,
            }),
        })
    }
}

/// What keeps an extent allocated: freed when the last holder lets go.
#[derive(Debug)]
struct Lease {
    alloc: Arc<Mutex<Allocator>>,
    off: usize,
    len: usize,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Ok(mut a) = self.alloc.lock() {
            a.give(self.off, self.len);
        }
    }
}

/// A part of the buffer area, with the region mapped while it lives. The part goes
/// back to the area when the extent and every [`Hold`] on it are gone.
pub struct Extent {
    /// The first byte (inside the region, which `region` keeps mapped).
    ptr: *mut u8,
    region: Arc<Region>,
    lease: Arc<Lease>,
}

// SAFETY: `ptr` points into the shared mapping that `region` keeps alive; the extent is
// plain shared memory like the region itself.
unsafe impl Send for Extent {}
// SAFETY: shared references only read bytes.
unsafe impl Sync for Extent {}

impl std::fmt::Debug for Extent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Extent({}+{})", self.lease.off, self.lease.len)
    }
}

/// Keeps an extent allocated (not usable for anything else) without access to it.
#[derive(Debug, Clone)]
pub struct Hold(#[allow(dead_code)] Arc<Lease>);

impl Extent {
    /// The offset in the region.
    pub fn offset(&self) -> usize {
        self.lease.off
    }

    /// Bytes.
    pub fn len(&self) -> usize {
        self.lease.len
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.lease.len == 0
    }

    /// A hold that keeps the extent allocated after this handle is dropped.
    pub fn hold(&self) -> Hold {
        Hold(self.lease.clone())
    }

    /// The bytes (shared with the application: payload only).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes at `ptr` lie inside the mapping (checked at allocation),
        // which `region` keeps mapped.
        unsafe { std::slice::from_raw_parts(self.ptr, self.lease.len) }
    }

    /// The bytes, to write.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`; by the protocol the application keeps off the part
        // this side writes, and if it does not, only its own payload is garbled.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.lease.len) }
    }

    /// The region.
    pub fn region(&self) -> &Region {
        &self.region
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

    /// Producer: whether a push would fit now.
    pub fn has_room(&self) -> bool {
        let tail = self.tail().load(Ordering::Relaxed);
        let head = self.head().load(Ordering::Acquire);
        tail.wrapping_sub(head) < ENTRIES
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
/// @2, `len` u32 @4 (inline data), `seq` u64 @8, `sock` u32 @16, `result` i32 @20,
/// `addr` 16 bytes @24, `arg` u64 @40, `buf` offset u64 @48 and length u32 @56.
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

    /// A payload reference into the buffer area: (offset in the region, length).
    /// Unchecked: validate before use ([`Region::payload`]).
    pub fn buf(&self) -> (u64, u32) {
        (self.u64_at(48), self.u32_at(56))
    }

    /// Sets the payload reference.
    pub fn set_buf(&mut self, off: u64, len: u32) {
        self.set_u64(48, off);
        self.set_u32(56, len);
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
    /// Send the datagram in the UDP send slot `buf` from `sock` to `addr`; answered
    /// only on failure. Counted in [`Region::udp_tx_done`](super::Region::udp_tx_done)
    /// either way.
    pub const UDP_SEND: u8 = 3;
    /// Close `sock`.
    pub const CLOSE: u8 = 4;
    /// Daemon → application, unsolicited: a datagram for `sock` from `addr` in `buf`;
    /// `arg` is the offset of the receive extent's control word, a `u32` count of
    /// datagrams the client has consumed (it adds one per datagram taken).
    pub const UDP_RECV: u8 = 5;
    /// Daemon → application: the socket reported an ICMP error (result: -errno).
    pub const SOCK_ERROR: u8 = 6;
    /// Listen for TCP on `addr` (a port is required), backlog in `arg`; completes
    /// with `sock`.
    pub const TCP_LISTEN: u8 = 7;
    /// Open a TCP connection to `addr`; `arg`: the send ring's size in bytes in the
    /// high 32 bits, the receive ring's in the low (0: the default). Completes with
    /// `sock`, the local `addr` and the rings ([`Rings`](super::Rings) inline) once
    /// the SYN is out; [`TCP_CONNECTED`] follows.
    pub const TCP_CONNECT: u8 = 8;
    /// `arg` bytes were written into the send ring after those sent before: send them.
    /// Answered only on failure (more than the free space: `ENOBUFS`).
    pub const TCP_SEND: u8 = 9;
    /// Send FIN on `sock` after the queued bytes (half-close).
    pub const TCP_SHUTDOWN: u8 = 10;
    /// Daemon → application: listener `sock` accepted connection `arg` from `addr`;
    /// its rings inline ([`Rings`](super::Rings)).
    pub const TCP_ACCEPTED: u8 = 11;
    /// Daemon → application: connection `sock` is established (result 0) or failed
    /// (-errno).
    pub const TCP_CONNECTED: u8 = 12;
    /// Daemon → application: `arg` more bytes are readable in `sock`'s receive ring.
    pub const TCP_DATA: u8 = 13;
    /// Daemon → application: the peer finished sending on `sock` (end of stream).
    pub const TCP_EOF: u8 = 14;
    /// Daemon → application: `arg` more bytes of the send ring were acknowledged by
    /// the peer: their room is free again.
    pub const TCP_SENT: u8 = 15;
    /// Daemon → application: connection `sock` failed (result -errno: reset, timeout).
    pub const TCP_CLOSED: u8 = 16;
    /// Set option `arg >> 32` to `arg & 0xffff_ffff` on `sock` ([`opt`]).
    pub const SETOPT: u8 = 17;
    /// The client read `arg` bytes from `sock`'s receive ring: their room is free.
    /// Answered only on failure (more than was announced: `EINVAL`).
    pub const TCP_CONSUME: u8 = 18;
}

/// A TCP connection's rings in the buffer area, carried inline by the entries that
/// create connections: offsets in the region and sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rings {
    /// The send ring's offset.
    pub tx_off: u64,
    /// The send ring's size.
    pub tx_len: u64,
    /// The receive ring's offset.
    pub rx_off: u64,
    /// The receive ring's size.
    pub rx_len: u64,
}

impl Rings {
    /// Writes them as the entry's inline data.
    pub fn put(&self, e: &mut Entry) {
        let mut b = [0u8; 32];
        for (i, v) in [self.tx_off, self.tx_len, self.rx_off, self.rx_len]
            .iter()
            .enumerate()
        {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        e.set_data(&b);
    }

    /// Reads them from the entry's inline data (unchecked: validate with
    /// [`Region::payload`]).
    pub fn get(e: &Entry) -> Option<Rings> {
        let d = e.data();
        if d.len() < 32 {
            return None;
        }
        let at = |i: usize| u64::from_le_bytes(d[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(Rings {
            tx_off: at(0),
            tx_len: at(1),
            rx_off: at(2),
            rx_len: at(3),
        })
    }
}

/// Socket options of [`op::SETOPT`].
pub mod opt {
    /// TCP: Nagle off (1) or on (0).
    pub const TCP_NODELAY: u32 = 1;
    /// UDP: receive slots (and the stack's queue) in bytes, whole 2 KiB datagrams, at
    /// least 1. TCP listener: the receive ring of connections it accepts afterwards.
    pub const SO_RCVBUF: u32 = 2;
    /// TCP: keepalive idle time in seconds (0: off).
    pub const SO_KEEPALIVE: u32 = 3;
    /// TCP listener: the send ring of connections it accepts afterwards.
    pub const SO_SNDBUF: u32 = 4;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_a_ring() {
        let r = Region::create("test", 2, 1 << 20).unwrap();
        let ring = r.requests(1).unwrap();
        assert!(ring.is_empty());
        let mut e = Entry::new(op::UDP_SEND, 42);
        e.set_sock(7);
        e.set_addr("[2001:db8::1]:9".parse().unwrap());
        e.set_data(b"payload");
        e.set_buf(8192, 100);
        assert!(ring.push(&e));
        let mut out = Entry::default();
        assert_eq!(ring.pop(&mut out), Ok(true));
        assert_eq!((out.op(), out.seq(), out.sock()), (op::UDP_SEND, 42, 7));
        assert_eq!(out.addr(), Some("[2001:db8::1]:9".parse().unwrap()));
        assert_eq!(out.data(), b"payload");
        assert_eq!(out.buf(), (8192, 100));
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
        let r = Region::create("test", 1, 1 << 20).unwrap();
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
        let r = Region::create("test", 1, 1 << 20).unwrap();
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
            let r = Region::create("fuzz", 1, 0).unwrap();
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
    fn the_area_hands_out_extents_up_to_its_size_and_takes_them_back() {
        let r = Arc::new(Region::create("test", 1, 64 << 10).unwrap());
        let (off, len) = r.area();
        assert_eq!(len, 64 << 10);
        let area = Area::new(r.clone());
        let mut a = area.alloc(40 << 10).unwrap();
        assert_eq!(a.offset(), off);
        assert!(area.alloc(30 << 10).is_none(), "over the quota");
        let b = area.alloc(100).unwrap();
        assert_eq!(
            (b.offset(), area.used()),
            (off + (40 << 10), (40 << 10) + 128)
        );
        a.bytes_mut()[..3].copy_from_slice(b"abc");
        assert_eq!(r.payload(off, 3), Some(&b"abc"[..]));
        assert!(r.payload(off + len - 2, 3).is_none());
        assert!(r.payload(usize::MAX, 3).is_none());
        assert!(r.payload(0, 3).is_none(), "the header is not payload");
        let hold = a.hold();
        drop(a);
        assert!(area.alloc(30 << 10).is_none(), "still held");
        drop(hold);
        drop(b);
        assert_eq!(area.used(), 0);
        assert_eq!(area.alloc(64 << 10).map(|e| e.offset()), Some(off));
    }

    #[test]
    fn a_region_of_another_version_is_refused() {
        let r = Region::create("test", 1, 1 << 20).unwrap();
        r.header_u32(8).store(VERSION + 1, Ordering::Relaxed);
        let e = Region::open(r.file().try_clone().unwrap()).err().unwrap();
        assert!(e.0.contains("version"), "{e}");
        r.header_u64(0).store(0, Ordering::Relaxed);
        assert!(Region::open(r.file().try_clone().unwrap()).is_err());
    }
}
