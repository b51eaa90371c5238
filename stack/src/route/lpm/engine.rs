//! The family-independent Poptrie behind [`Lpm4`](super::Lpm4) and
//! [`Lpm6`](super::Lpm6): key access, the node layout and the lookup paths. The RIB and
//! the updates are in [`update`](super::update); see the parent module for the design.

use std::collections::BTreeMap;

use super::values::{Values, Width};

/// Flag in a direct-array entry: the low 31 bits are a leaf code.
pub(super) const LEAF: u32 = 1 << 31;
/// Flag in a direct-array entry (without [`LEAF`]): the low 30 bits index a compact
/// record in `Table::compact`; with neither flag, they index a node.
pub(super) const COMPACT: u32 = 1 << 30;
/// Bits of the key consumed by one internal node.
pub(super) const STRIDE: u32 = 6;
/// Lookups walked together by [`Table::lookup_batch`] (at most 256).
const LANES: usize = 64;

/// An address as an unsigned integer, most significant bit first.
pub(super) trait Key: Copy + Ord + Default + core::fmt::Debug {
    /// The address width in bits.
    const WIDTH: u32;
    /// The bits resolved by the direct-pointing array (the paper's `s`).
    const DIRECT: u32;
    /// The top [`Key::DIRECT`] bits: the direct-array slot.
    fn slot(self) -> usize;
    /// The [`STRIDE`] bits starting at bit `off` (0 = most significant), zero-padded past
    /// the end of the address.
    fn chunk(self, off: u32) -> u32;
    /// The first address of a direct-array slot.
    fn slot_base(slot: usize) -> Self;
    /// The key with the bits beyond the first `len` cleared.
    fn masked(self, len: u32) -> Self;
}

impl Key for u32 {
    const WIDTH: u32 = 32;
    const DIRECT: u32 = 18;
    #[inline(always)]
    fn slot(self) -> usize {
        (self >> (Self::WIDTH - Self::DIRECT)) as usize
    }
    #[inline(always)]
    fn chunk(self, off: u32) -> u32 {
        // Widen so that offsets up to 30 read zeros past bit 31.
        ((u64::from(self) << 32 << off) >> (64 - STRIDE)) as u32
    }
    fn slot_base(slot: usize) -> Self {
        (slot as u32) << (Self::WIDTH - Self::DIRECT)
    }
    fn masked(self, len: u32) -> Self {
        self & crate::addr::Ipv4Prefix::mask_bits(len as u8)
    }
}

impl Key for u128 {
    const WIDTH: u32 = 128;
    const DIRECT: u32 = 16;
    #[inline(always)]
    fn slot(self) -> usize {
        (self >> (Self::WIDTH - Self::DIRECT)) as usize
    }
    #[inline(always)]
    fn chunk(self, off: u32) -> u32 {
        // Offsets are at most 124 here, so the shift never overflows.
        ((self << off) >> (128 - STRIDE)) as u32
    }
    fn slot_base(slot: usize) -> Self {
        (slot as u128) << (Self::WIDTH - Self::DIRECT)
    }
    fn masked(self, len: u32) -> Self {
        self & crate::addr::Ipv6Prefix::mask_bits(len as u8)
    }
}

/// An internal node: the paper's `vector`, `leafvec`, `base0` and `base1` (24 bytes).
#[derive(Clone, Copy, Default, Debug)]
#[repr(C)]
pub(super) struct Node {
    /// Bit `v` set: chunk value `v` continues in a child node.
    pub(super) vector: u64,
    /// Bit `v` set: a run of equal leaves starts at chunk value `v` (leaf compression).
    pub(super) leafvec: u64,
    /// Index of this node's first leaf.
    pub(super) base0: u32,
    /// Index of this node's first child node.
    pub(super) base1: u32,
}

/// The mask of chunk values `0..=v`.
#[inline(always)]
pub(super) fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// A leaf type: how leaves pack into the 64-bit words of a compact record.
pub(super) trait Leaf: Copy + Into<u32> {
    /// Leaves per word.
    const PER_WORD: u32;
    /// Leaf `i` of the leaves packed from `words[0]` on.
    #[inline(always)]
    fn unpack(words: &[u64], i: u32) -> u32 {
        let bits = 64 / Self::PER_WORD;
        let w = words[(i / Self::PER_WORD) as usize];
        ((w >> ((i % Self::PER_WORD) * bits)) & (u64::MAX >> (64 - bits))) as u32
    }
}

impl Leaf for u8 {
    const PER_WORD: u32 = 8;
}

impl Leaf for u16 {
    const PER_WORD: u32 = 4;
}

impl Leaf for u32 {
    const PER_WORD: u32 = 2;
}

/// The leaf array, in the width the values allow (see [`values`](super::values)).
#[derive(Clone, Debug)]
pub(super) enum Leaves {
    /// `u8` ids.
    Byte(Vec<u8>),
    /// `u16` ids.
    Narrow(Vec<u16>),
    /// Values inline (`value + 1`) or escape codes.
    Wide(Vec<u32>),
}

impl Default for Leaves {
    fn default() -> Self {
        Leaves::Byte(Vec::new())
    }
}

impl Leaves {
    pub(super) fn with_capacity(width: Width, n: usize) -> Self {
        match width {
            Width::Byte => Leaves::Byte(Vec::with_capacity(n)),
            Width::Narrow => Leaves::Narrow(Vec::with_capacity(n)),
            Width::Wide => Leaves::Wide(Vec::with_capacity(n)),
        }
    }

    pub(super) fn width(&self) -> Width {
        match self {
            Leaves::Byte(_) => Width::Byte,
            Leaves::Narrow(_) => Width::Narrow,
            Leaves::Wide(_) => Width::Wide,
        }
    }

    pub(super) fn is_wide(&self) -> bool {
        matches!(self, Leaves::Wide(_))
    }

    /// Leaves to a word of a compact record.
    pub(super) fn per_word(&self) -> usize {
        match self {
            Leaves::Byte(_) => 8,
            Leaves::Narrow(_) => 4,
            Leaves::Wide(_) => 2,
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Leaves::Byte(v) => v.len(),
            Leaves::Narrow(v) => v.len(),
            Leaves::Wide(v) => v.len(),
        }
    }

    /// Leaf `i`.
    pub(super) fn get(&self, i: usize) -> u32 {
        match self {
            Leaves::Byte(v) => u32::from(v[i]),
            Leaves::Narrow(v) => u32::from(v[i]),
            Leaves::Wide(v) => v[i],
        }
    }

    /// Appends a leaf; the code always fits the width (see `Values::width`).
    pub(super) fn push(&mut self, code: u32) {
        match self {
            Leaves::Byte(v) => v.push(code as u8),
            Leaves::Narrow(v) => v.push(code as u16),
            Leaves::Wide(v) => v.push(code),
        }
    }

    pub(super) fn bytes(&self) -> usize {
        match self {
            Leaves::Byte(v) => v.capacity(),
            Leaves::Narrow(v) => v.capacity() * 2,
            Leaves::Wide(v) => v.capacity() * 4,
        }
    }
}

/// A Poptrie and the RIB it is built from.
#[derive(Clone, Default)]
pub(super) struct Table<K: Key> {
    // The lookup structure (FIB). `dir` is empty until the first route arrives.
    pub(super) dir: Vec<u32>,
    pub(super) nodes: Vec<Node>,
    pub(super) leaves: Leaves,
    /// Compact records of direct slots whose subtree is one node without children: the
    /// node's `leafvec`, then its leaves packed into words, so that the bitmap and the
    /// leaf are usually in one cache line.
    pub(super) compact: Vec<u64>,
    pub(super) values: Values,
    // The RIB and bookkeeping for updates.
    /// Routes by (address, length).
    pub(super) routes: BTreeMap<(K, u8), u32>,
    /// Per direct slot, the code and length of the longest route of at most `DIRECT`
    /// bits covering it (code 0: none).
    pub(super) cover_code: Vec<u32>,
    pub(super) cover_len: Vec<u8>,
    /// Per node, the leaf code it inherits from above (for rebuilding it alone).
    pub(super) defaults: Vec<u32>,
    pub(super) dead_nodes: usize,
    pub(super) dead_leaves: usize,
    pub(super) dead_compact: usize,
    /// Full rebuilds after the bulk build (compactions and very short routes).
    pub(super) rebuilds: u64,
    pub(super) scratch: Vec<(K, u8, u32)>,
}

impl<K: Key> Table<K> {
    /// The value of the longest route containing `key`.
    #[inline(always)]
    pub(super) fn lookup(&self, key: K) -> Option<u32> {
        match &self.leaves {
            Leaves::Byte(l) => self.values.narrow(self.code_in(l, key)),
            Leaves::Narrow(l) => self.values.narrow(self.code_in(l, key)),
            Leaves::Wide(l) => self.values.wide(self.code_in(l, key)),
        }
    }

    /// The leaf code of the longest match for `key` (0: no route).
    #[inline(always)]
    fn code_in<L: Leaf>(&self, leaves: &[L], key: K) -> u32 {
        let Some(&d) = self.dir.get(key.slot()) else {
            return 0;
        };
        if d & LEAF != 0 {
            return d & !LEAF;
        }
        if d & COMPACT != 0 {
            let x = (d & !COMPACT) as usize;
            let v = key.chunk(K::DIRECT);
            let i = (self.compact[x] & upto(v)).count_ones() - 1;
            return L::unpack(&self.compact[x + 1..], i);
        }
        let mut idx = d as usize;
        let mut off = K::DIRECT;
        loop {
            let n = self.nodes[idx];
            let v = key.chunk(off);
            let m = upto(v);
            if (n.vector >> v) & 1 == 0 {
                let i = n.base0 as usize + (n.leafvec & m).count_ones() as usize - 1;
                return leaves[i].into();
            }
            idx = n.base1 as usize + (n.vector & m).count_ones() as usize - 1;
            off += STRIDE;
        }
    }

    /// Longest-prefix match of `addrs[i]` into `out[i]`, [`LANES`] lookups in lockstep.
    pub(super) fn lookup_batch<A: Copy>(
        &self,
        addrs: &[A],
        out: &mut [Option<u32>],
        to_key: impl Fn(A) -> K,
    ) {
        assert!(
            out.len() >= addrs.len(),
            "lookup_batch: out is shorter than addrs"
        );
        match &self.leaves {
            Leaves::Byte(l) => self.batch_in(l, addrs, out, to_key, |c| self.values.narrow(c)),
            Leaves::Narrow(l) => self.batch_in(l, addrs, out, to_key, |c| self.values.narrow(c)),
            Leaves::Wide(l) => self.batch_in(l, addrs, out, to_key, |c| self.values.wide(c)),
        }
    }

    /// The batch lookup over one leaf width.
    ///
    /// Groups of [`LANES`] lookups walk the trie together, one level per pass: all their
    /// direct entries are read first, then the compact records, then the nodes of the
    /// lanes still in the trie and the leaves of those that stopped. Which lanes go on is recorded by appending them
    /// to a list (branch-free), so the loads of one pass are independent and their cache
    /// misses overlap, and no data-dependent branch misprediction throws the other
    /// lanes' loads away. (On the full table this beat a loop of single lookups by about
    /// 40 % for IPv4 and 80 % for IPv6; groups of 32-128 were alike, 16 and fewer slower;
    /// software prefetching of the next group's direct entries, or of nodes and leaves
    /// a stage ahead, gained nothing measurable, so the code needs no `unsafe`.)
    #[inline(always)]
    fn batch_in<L: Leaf, A: Copy>(
        &self,
        leaves: &[L],
        addrs: &[A],
        out: &mut [Option<u32>],
        to_key: impl Fn(A) -> K,
        decode: impl Fn(u32) -> Option<u32>,
    ) {
        if self.dir.is_empty() {
            out[..addrs.len()].fill(None);
            return;
        }
        for (a, o) in addrs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let mut keys = [K::default(); LANES];
            // Per lane: the direct entry, then a node index, then a leaf index, then
            // `LEAF | code` once resolved.
            let mut st = [0u32; LANES];
            let mut walk = [0u8; LANES];
            let mut leaf = [0u8; LANES];
            for (i, &x) in a.iter().enumerate() {
                keys[i] = to_key(x);
                st[i] = self.dir[keys[i].slot()];
            }
            // Lanes into a node go on walking; lanes into a compact record read its
            // bitmap and then their leaf, usually from the same cache line.
            let mut nwalk = 0;
            let mut ncomp = 0;
            let mut comp = [0u8; LANES];
            for (i, &d) in st.iter().enumerate().take(a.len()) {
                walk[nwalk] = i as u8;
                nwalk += usize::from(d & (LEAF | COMPACT) == 0);
                comp[ncomp] = i as u8;
                ncomp += usize::from(d & (LEAF | COMPACT) == COMPACT);
            }
            for &i in &comp[..ncomp] {
                let i = usize::from(i);
                let x = (st[i] & !COMPACT) as usize;
                let v = keys[i].chunk(K::DIRECT);
                let nth = (self.compact[x] & upto(v)).count_ones().wrapping_sub(1);
                st[i] = LEAF | L::unpack(&self.compact[x + 1..], nth);
            }
            let mut off = K::DIRECT;
            while nwalk > 0 {
                let mut next = 0;
                let mut nleaf = 0;
                for j in 0..nwalk {
                    let i = usize::from(walk[j]);
                    let n = self.nodes[st[i] as usize];
                    let v = keys[i].chunk(off);
                    let m = upto(v);
                    let down = (n.vector >> v) & 1 != 0;
                    // One popcount: of the child bitmap or of the leaf bitmap.
                    let (bits, base) = if down {
                        (n.vector, n.base1)
                    } else {
                        (n.leafvec, n.base0)
                    };
                    st[i] = base.wrapping_add((bits & m).count_ones()).wrapping_sub(1);
                    walk[next] = i as u8;
                    next += usize::from(down);
                    leaf[nleaf] = i as u8;
                    nleaf += usize::from(!down);
                }
                for &i in &leaf[..nleaf] {
                    let i = usize::from(i);
                    st[i] = LEAF | leaves[st[i] as usize].into();
                }
                nwalk = next;
                off += STRIDE;
            }
            for (slot, &s) in o.iter_mut().zip(&st[..a.len()]) {
                *slot = decode(s & !LEAF);
            }
        }
    }

    /// Bytes of the lookup structure: direct array, nodes, leaves, value table.
    pub(super) fn memory_bytes(&self) -> usize {
        self.dir.capacity() * 4
            + self.nodes.capacity() * core::mem::size_of::<Node>()
            + self.leaves.bytes()
            + self.compact.capacity() * 8
            + self.values.table_bytes()
    }

    /// Estimated bytes of the RIB: the route map (B-tree nodes about two-thirds full),
    /// the per-slot covers, the per-node defaults and the value index.
    pub(super) fn rib_memory_bytes(&self) -> usize {
        let entry = core::mem::size_of::<(K, u8)>() + 4;
        self.routes.len() * entry * 3 / 2
            + self.cover_code.capacity() * 4
            + self.cover_len.capacity()
            + self.defaults.capacity() * 4
            + self.values.index_bytes()
            + self.scratch.capacity() * core::mem::size_of::<(K, u8, u32)>()
    }

    /// Nodes, leaves, compact words, dead ones among them, and full rebuilds (for
    /// `Debug`).
    pub(super) fn stats(&self) -> [u64; 7] {
        [
            self.nodes.len() as u64,
            self.leaves.len() as u64,
            self.compact.len() as u64,
            self.dead_nodes as u64,
            self.dead_leaves as u64,
            self.dead_compact as u64,
            self.rebuilds,
        ]
    }
}
