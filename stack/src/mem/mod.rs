//! Packet memory: the frame pool (the SLIB equivalent) and a slab for fixed-size objects.
//!
//! The frame pool is the one place in `stack` with `unsafe` code: frames are windows into
//! one region of memory that the caller provides (a heap slab, or an AF_XDP UMEM that
//! the kernel also writes). Each block states why it is sound.

pub mod pool;
pub mod slab;

pub use pool::{Frame, FrameMemory, FramePool, HeapMemory, PoolConfig, PoolError, RawFrame};
pub use slab::{Slab, SlabHandle};
