//! The frame pool: fixed-size frames with headroom, carved from caller-provided memory.
//!
//! A pool splits one region of memory (a [`HeapMemory`] slab, or later an AF_XDP UMEM)
//! into `frame_size` chunks. A [`Frame`] is an owned handle to one chunk, with a data
//! window that starts `headroom` bytes in so headers can be prepended without a copy.
//! Dropping a frame returns its chunk to the pool's free list; handing it to a device
//! goes through [`Frame::into_raw`] and back through [`FramePool::from_raw`].
//!
//! The free list is a lock-free LIFO stack of frame indices (a tagged Treiber stack) so
//! that a frame may be freed on a different core than the one that allocated it (frames
//! move between shards), and so that the frame allocated next is the one freed last,
//! still in cache: with a FIFO the frames cycle through the whole pool (megabytes) and
//! every frame written misses the cache. Exhaustion returns `None` and is counted; the
//! pool never allocates after construction.
#![allow(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::alloc::{self, Layout};
use std::sync::Arc;

/// Memory that backs a frame pool.
///
/// # Safety
///
/// `as_ptr()` must return the same pointer for the life of the value, valid for reads
/// and writes of `len()` bytes, and nothing else in the process may create references to
/// that memory while the pool lives (the kernel writing an AF_XDP UMEM is fine: it only
/// writes frames the pool has handed out through [`Frame::into_raw`]).
pub unsafe trait FrameMemory: Send + Sync + 'static {
    /// Start of the region.
    fn as_ptr(&self) -> *mut u8;
    /// Length of the region in bytes.
    fn len(&self) -> usize;
    /// True for an empty region.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Page-aligned, zeroed heap memory for a pool that no device shares.
pub struct HeapMemory {
    ptr: *mut u8,
    layout: Layout,
}

impl HeapMemory {
    /// Allocates `len` zeroed bytes aligned to 4096.
    pub fn new(len: usize) -> Result<Self, PoolError> {
        let layout = Layout::from_size_align(len.max(1), 4096).map_err(|_| PoolError::TooLarge)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(PoolError::OutOfMemory);
        }
        Ok(HeapMemory { ptr, layout })
    }
}

// SAFETY: the pointer is owned exclusively by this value and freed only in Drop.
unsafe impl Send for HeapMemory {}
// SAFETY: as above; access is mediated by the pool, which hands each chunk to one owner.
unsafe impl Sync for HeapMemory {}

// SAFETY: the allocation lives until drop and is not otherwise referenced.
unsafe impl FrameMemory for HeapMemory {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
    fn len(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for HeapMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::dealloc(self.ptr, self.layout) }
    }
}

/// Frame size and headroom of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes per frame, a power of two from 512 to 32768 (2048 by default).
    pub frame_size: u32,
    /// Bytes kept free before the data of a fresh frame (256 by default, at least 128).
    pub headroom: u32,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            frame_size: 2048,
            headroom: 256,
        }
    }
}

/// Why a pool could not be made, or a frame operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// `frame_size` is not a power of two in 512..=32768.
    BadFrameSize(u32),
    /// `headroom` is under 128 or leaves less than 256 bytes of frame.
    BadHeadroom(u32),
    /// The region holds no frame, or more than `u32::MAX` frames.
    BadRegion,
    /// The requested memory cannot be laid out.
    TooLarge,
    /// The allocator refused the region.
    OutOfMemory,
    /// Not enough headroom or tailroom for the operation.
    NoRoom,
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::BadFrameSize(s) => {
                write!(
                    f,
                    "frame size {s} is not a power of two between 512 and 32768"
                )
            }
            PoolError::BadHeadroom(h) => {
                write!(
                    f,
                    "headroom {h} must be at least 128 and leave 256 bytes of frame"
                )
            }
            PoolError::BadRegion => f.write_str("memory region holds no whole frame"),
            PoolError::TooLarge => f.write_str("pool memory too large"),
            PoolError::OutOfMemory => f.write_str("out of memory for the pool"),
            PoolError::NoRoom => f.write_str("not enough room in the frame"),
        }
    }
}

impl std::error::Error for PoolError {}

struct PoolInner {
    memory: Box<dyn FrameMemory>,
    base: *mut u8,
    frame_size: u32,
    shift: u32,
    headroom: u32,
    frames: u32,
    free: FreeList,
    alloc_failures: AtomicU64,
}

/// No frame: the end of the free list.
const NIL: u32 = u32::MAX;

/// The free frames: a lock-free LIFO stack of indices linked through `next`. `head` holds
/// the top index in its low 32 bits and a tag in its high 32 bits that every change
/// increments, so that a pop that read `next` of a top that was popped and pushed back
/// meanwhile (ABA) fails its compare-exchange and retries.
struct FreeList {
    head: AtomicU64,
    next: Box<[AtomicU32]>,
}

impl FreeList {
    /// Every index in `0..n` free, lowest on top.
    fn full(n: u32) -> Self {
        let next = (0..n)
            .map(|i| AtomicU32::new(if i + 1 < n { i + 1 } else { NIL }))
            .collect();
        FreeList {
            head: AtomicU64::new(if n > 0 { 0 } else { u64::from(NIL) }),
            next,
        }
    }

    #[inline]
    fn pop(&self) -> Option<u32> {
        let mut h = self.head.load(Ordering::Acquire);
        loop {
            let top = h as u32;
            let next = self.next.get(top as usize)?.load(Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(next);
            match self
                .head
                .compare_exchange_weak(h, new, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(top),
                Err(cur) => h = cur,
            }
        }
    }

    /// Pushes `index`, which must not be in the list (a frame's owner frees it once).
    #[inline]
    fn push(&self, index: u32) {
        let Some(slot) = self.next.get(index as usize) else {
            return;
        };
        let mut h = self.head.load(Ordering::Relaxed);
        loop {
            slot.store(h as u32, Ordering::Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(index);
            match self
                .head
                .compare_exchange_weak(h, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
        }
    }

    /// Indices in the list now (exact when no other thread changes it meanwhile).
    fn len(&self) -> usize {
        let mut n = 0;
        let mut i = self.head.load(Ordering::Acquire) as u32;
        while let Some(slot) = self.next.get(i as usize) {
            n += 1;
            if n >= self.next.len() {
                break;
            }
            i = slot.load(Ordering::Relaxed);
        }
        n
    }
}

// SAFETY: `base` points into `memory`, which is Send + Sync; each chunk is accessed only
// through the unique Frame that owns it.
unsafe impl Send for PoolInner {}
// SAFETY: as above.
unsafe impl Sync for PoolInner {}

/// A pool of fixed-size frames; cloning gives another handle to the same pool.
#[derive(Clone)]
pub struct FramePool {
    inner: Arc<PoolInner>,
}

impl FramePool {
    /// A pool over `memory`; every whole frame in the region starts free.
    pub fn new(memory: impl FrameMemory, config: PoolConfig) -> Result<Self, PoolError> {
        let fs = config.frame_size;
        if !fs.is_power_of_two() || !(512..=32768).contains(&fs) {
            return Err(PoolError::BadFrameSize(fs));
        }
        if config.headroom < 128 || config.headroom + 256 > fs {
            return Err(PoolError::BadHeadroom(config.headroom));
        }
        let frames = memory.len() / fs as usize;
        if frames == 0 || frames > u32::MAX as usize {
            return Err(PoolError::BadRegion);
        }
        let free = FreeList::full(frames as u32);
        let base = memory.as_ptr();
        Ok(FramePool {
            inner: Arc::new(PoolInner {
                memory: Box::new(memory),
                base,
                frame_size: fs,
                shift: fs.trailing_zeros(),
                headroom: config.headroom,
                frames: frames as u32,
                free,
                alloc_failures: AtomicU64::new(0),
            }),
        })
    }

    /// A pool of `frames` frames on the heap.
    pub fn with_frames(frames: u32, config: PoolConfig) -> Result<Self, PoolError> {
        let len = (frames as usize)
            .checked_mul(config.frame_size as usize)
            .ok_or(PoolError::TooLarge)?;
        FramePool::new(HeapMemory::new(len)?, config)
    }

    /// Takes a free frame with an empty data window after the headroom, or `None` (and a
    /// counted failure) when the pool is exhausted.
    #[inline]
    pub fn alloc(&self) -> Option<Frame> {
        match self.inner.free.pop() {
            Some(index) => Some(Frame {
                pool: self.inner.clone(),
                index,
                head: self.inner.headroom as u16,
                len: 0,
            }),
            None => {
                self.inner.alloc_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Reclaims a frame that left the pool through [`Frame::into_raw`].
    ///
    /// # Safety
    ///
    /// `raw` must come from `into_raw` on a frame of this pool, and be reclaimed at most
    /// once; otherwise two handles would own the same memory.
    pub unsafe fn from_raw(&self, raw: RawFrame) -> Frame {
        Frame {
            pool: self.inner.clone(),
            index: raw.index,
            head: raw.head as u16,
            len: raw.len as u16,
        }
    }

    /// Reclaims the frame whose chunk contains byte `offset` of the region, with its data
    /// window at `offset` and `len` bytes long (how an AF_XDP descriptor names a frame),
    /// or `None` when the window does not fit the chunk.
    ///
    /// # Safety
    ///
    /// As [`FramePool::from_raw`]: the chunk must currently be owned by no `Frame`.
    pub unsafe fn from_offset(&self, offset: u64, len: u32) -> Option<Frame> {
        let index = (offset >> self.inner.shift) as u32;
        let head = (offset & u64::from(self.inner.frame_size - 1)) as u32;
        if index >= self.inner.frames || head.checked_add(len)? > self.inner.frame_size {
            return None;
        }
        Some(Frame {
            pool: self.inner.clone(),
            index,
            head: head as u16,
            len: len as u16,
        })
    }

    /// Total frames in the pool.
    pub fn capacity(&self) -> u32 {
        self.inner.frames
    }

    /// Frames free now.
    pub fn available(&self) -> usize {
        self.inner.free.len()
    }

    /// Allocations refused because the pool was empty, since creation.
    pub fn alloc_failures(&self) -> u64 {
        self.inner.alloc_failures.load(Ordering::Relaxed)
    }

    /// Bytes per frame.
    pub fn frame_size(&self) -> u32 {
        self.inner.frame_size
    }

    /// Headroom of a fresh frame.
    pub fn headroom(&self) -> u32 {
        self.inner.headroom
    }

    /// Start and length of the backing region (for registering it as a UMEM).
    pub fn region(&self) -> (*mut u8, usize) {
        (self.inner.base, self.inner.memory.len())
    }

    /// True when `frame` belongs to this pool.
    pub fn owns(&self, frame: &Frame) -> bool {
        Arc::ptr_eq(&self.inner, &frame.pool)
    }
}

impl fmt::Debug for FramePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FramePool")
            .field("frames", &self.inner.frames)
            .field("available", &self.available())
            .field("frame_size", &self.inner.frame_size)
            .finish()
    }
}

/// A frame outside Rust's ownership (in a device ring); see [`Frame::into_raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFrame {
    /// Chunk index in the pool.
    pub index: u32,
    /// Start of the data within the chunk.
    pub head: u32,
    /// Length of the data.
    pub len: u32,
}

/// An owned frame: a window of data inside one chunk of a pool.
///
/// 16 bytes, so that moving a frame between stages is one vector register: the receive
/// path moves every frame several times per batch.
pub struct Frame {
    pool: Arc<PoolInner>,
    index: u32,
    head: u16,
    len: u16,
}

impl Frame {
    #[inline]
    fn chunk_ptr(&self) -> *mut u8 {
        // SAFETY (of the arithmetic): index < frames, so the chunk lies inside the region.
        self.pool
            .base
            .wrapping_add((self.index as usize) << self.pool.shift)
    }

    /// The data.
    #[inline]
    pub fn data(&self) -> &[u8] {
        // SAFETY: this Frame is the only owner of its chunk (the free list and other frames
        // never name the same index while it lives), head + len <= frame_size is kept by
        // every method, and the region outlives `self` through the Arc.
        unsafe {
            core::slice::from_raw_parts(self.chunk_ptr().add(self.head as usize), self.len as usize)
        }
    }

    /// The data, mutably.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data`; `&mut self` makes this the only live reference.
        unsafe {
            core::slice::from_raw_parts_mut(
                self.chunk_ptr().add(self.head as usize),
                self.len as usize,
            )
        }
    }

    /// The whole chunk, mutably (for filling a frame before setting its window).
    #[inline]
    pub fn chunk_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `data_mut`, over the whole chunk this frame owns.
        unsafe { core::slice::from_raw_parts_mut(self.chunk_ptr(), self.pool.frame_size as usize) }
    }

    /// Length of the data.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the data is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes free before the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head as usize
    }

    /// Bytes free after the data.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.pool.frame_size as usize - self.head as usize - self.len as usize
    }

    /// Most data the frame can hold with its current start.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.pool.frame_size as usize - self.head as usize
    }

    /// Grows the data by `n` bytes at the front and returns them.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8], PoolError> {
        if n > self.head as usize {
            return Err(PoolError::NoRoom);
        }
        self.head -= n as u16;
        self.len += n as u16;
        Ok(&mut self.data_mut()[..n])
    }

    /// Drops `n` bytes from the front of the data.
    #[inline]
    pub fn advance(&mut self, n: usize) -> Result<(), PoolError> {
        if n > self.len as usize {
            return Err(PoolError::NoRoom);
        }
        self.head += n as u16;
        self.len -= n as u16;
        Ok(())
    }

    /// Grows the data by `n` bytes at the end and returns them.
    #[inline]
    pub fn append(&mut self, n: usize) -> Result<&mut [u8], PoolError> {
        if n > self.tailroom() {
            return Err(PoolError::NoRoom);
        }
        let old = self.len as usize;
        self.len += n as u16;
        Ok(&mut self.data_mut()[old..])
    }

    /// Sets the data length (growing exposes what the chunk held before).
    #[inline]
    pub fn set_len(&mut self, len: usize) -> Result<(), PoolError> {
        if len > self.capacity() {
            return Err(PoolError::NoRoom);
        }
        self.len = len as u16;
        Ok(())
    }

    /// Shortens the data to `len` bytes (no-op when already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        if len < self.len as usize {
            self.len = len as u16;
        }
    }

    /// Empties the data and restores the pool's headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.head = self.pool.headroom as u16;
        self.len = 0;
    }

    /// Offset of the data's first byte within the pool's region (an AF_XDP address).
    #[inline]
    pub fn offset(&self) -> u64 {
        ((self.index as u64) << self.pool.shift) + u64::from(self.head)
    }

    /// Chunk index in the pool.
    #[inline]
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Gives up ownership without returning the chunk to the pool (a device now owns
    /// it); [`FramePool::from_raw`] takes it back.
    pub fn into_raw(self) -> RawFrame {
        let raw = RawFrame {
            index: self.index,
            head: u32::from(self.head),
            len: u32::from(self.len),
        };
        // Dropping only the Arc: the chunk stays out of the free list.
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used again, so the Arc is dropped exactly once.
        unsafe { drop(core::ptr::read(&this.pool)) };
        raw
    }
}

impl Drop for Frame {
    #[inline]
    fn drop(&mut self) {
        // This index is not in the list: this frame owned it.
        self.pool.free.push(self.index);
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("index", &self.index)
            .field("head", &self.head)
            .field("len", &self.len)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(frames: u32) -> FramePool {
        FramePool::with_frames(frames, PoolConfig::default()).unwrap()
    }

    #[test]
    fn frame_handle_is_sixteen_bytes() {
        assert_eq!(core::mem::size_of::<Frame>(), 16);
        assert_eq!(core::mem::size_of::<Option<Frame>>(), 16);
    }

    #[test]
    fn config_is_validated() {
        let c = |frame_size, headroom| PoolConfig {
            frame_size,
            headroom,
        };
        assert_eq!(
            FramePool::with_frames(4, c(1000, 256)).unwrap_err(),
            PoolError::BadFrameSize(1000)
        );
        assert_eq!(
            FramePool::with_frames(4, c(2048, 64)).unwrap_err(),
            PoolError::BadHeadroom(64)
        );
        assert_eq!(
            FramePool::with_frames(4, c(512, 384)).unwrap_err(),
            PoolError::BadHeadroom(384)
        );
        assert_eq!(
            FramePool::new(HeapMemory::new(1000).unwrap(), PoolConfig::default()).unwrap_err(),
            PoolError::BadRegion
        );
    }

    #[test]
    fn exhaustion_is_counted_and_drop_returns_frames() {
        let p = pool(3);
        let frames: Vec<Frame> = (0..3).map(|_| p.alloc().unwrap()).collect();
        assert_eq!(p.available(), 0);
        assert!(p.alloc().is_none());
        assert!(p.alloc().is_none());
        assert_eq!(p.alloc_failures(), 2);
        drop(frames);
        assert_eq!(p.available(), 3);
        assert!(p.alloc().is_some());
    }

    #[test]
    fn frames_do_not_alias() {
        let p = pool(8);
        let mut frames: Vec<Frame> = (0..8).map(|_| p.alloc().unwrap()).collect();
        for (i, f) in frames.iter_mut().enumerate() {
            f.append(100).unwrap().fill(i as u8);
        }
        for (i, f) in frames.iter().enumerate() {
            assert!(f.data().iter().all(|b| *b == i as u8));
        }
        let mut idx: Vec<u32> = frames.iter().map(|f| f.index()).collect();
        idx.sort_unstable();
        idx.dedup();
        assert_eq!(idx.len(), 8);
    }

    #[test]
    fn headroom_prepend_advance_append() {
        let p = pool(1);
        let mut f = p.alloc().unwrap();
        assert_eq!(f.headroom(), 256);
        assert_eq!(f.tailroom(), 2048 - 256);
        f.append(4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
        f.prepend(2).unwrap().copy_from_slice(&[9, 9]);
        assert_eq!(f.data(), &[9, 9, 1, 2, 3, 4]);
        f.advance(3).unwrap();
        assert_eq!(f.data(), &[2, 3, 4]);
        assert_eq!(f.prepend(10_000), Err(PoolError::NoRoom));
        assert_eq!(f.append(10_000).map(|_| ()), Err(PoolError::NoRoom));
        assert_eq!(f.advance(4), Err(PoolError::NoRoom));
        assert_eq!(f.set_len(5000), Err(PoolError::NoRoom));
        f.truncate(1);
        assert_eq!(f.data(), &[2]);
        f.reset();
        assert_eq!((f.len(), f.headroom()), (0, 256));
    }

    #[test]
    fn raw_round_trip_keeps_frame_out_of_pool() {
        let p = pool(2);
        let mut f = p.alloc().unwrap();
        f.append(3).unwrap().copy_from_slice(b"abc");
        let off = f.offset();
        let raw = f.into_raw();
        assert_eq!(p.available(), 1);
        // SAFETY: `raw` came from this pool and is reclaimed once.
        let f = unsafe { p.from_raw(raw) };
        assert_eq!(f.data(), b"abc");
        assert_eq!(f.offset(), off);
        let raw = f.into_raw();
        // SAFETY: as above.
        let g = unsafe { p.from_offset(off, raw.len) }.unwrap();
        assert_eq!(g.data(), b"abc");
        drop(g);
        assert_eq!(p.available(), 2);
        // SAFETY: out-of-range offsets are refused before any frame is made.
        assert!(unsafe { p.from_offset(1 << 40, 1) }.is_none());
    }

    #[test]
    fn frames_outlive_pool_handle_and_cross_threads() {
        let p = pool(4);
        let mut f = p.alloc().unwrap();
        f.append(1).unwrap()[0] = 7;
        let p2 = p.clone();
        drop(p);
        let t = std::thread::spawn(move || {
            assert_eq!(f.data(), &[7]);
            drop(f);
        });
        t.join().unwrap();
        assert_eq!(p2.available(), 4);
    }

    #[test]
    fn the_frame_freed_last_is_allocated_first() {
        let p = pool(8);
        let (a, b) = (p.alloc().unwrap(), p.alloc().unwrap());
        assert_eq!((a.index(), b.index()), (0, 1));
        drop(b);
        drop(a);
        assert_eq!(p.alloc().unwrap().index(), 0);
        let (x, y) = (p.alloc().unwrap(), p.alloc().unwrap());
        assert_eq!((x.index(), y.index()), (0, 1));
        assert_eq!(p.available(), 6);
    }

    #[test]
    fn threads_allocating_and_freeing_at_once_lose_and_duplicate_nothing() {
        let p = pool(64);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let mut held = Vec::new();
                    for i in 0..20_000u32 {
                        if (i + t) % 3 != 0 {
                            if let Some(mut f) = p.alloc() {
                                // Each holder marks its frame; a frame handed out twice
                                // would show another mark.
                                f.append(4)
                                    .unwrap()
                                    .copy_from_slice(&(t * 1_000_000 + i).to_be_bytes());
                                held.push((f, t * 1_000_000 + i));
                            }
                        } else if let Some((f, mark)) = held.pop() {
                            assert_eq!(f.data(), &mark.to_be_bytes());
                        }
                    }
                    for (f, mark) in held {
                        assert_eq!(f.data(), &mark.to_be_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(p.available(), 64);
        let all: std::collections::BTreeSet<u32> = (0..64)
            .map(|_| p.alloc().unwrap().into_raw().index)
            .collect();
        assert_eq!(all.len(), 64);
        assert!(p.alloc().is_none());
    }
}
