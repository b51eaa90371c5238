//! The family-independent Poptrie engine behind [`Lpm4`](super::Lpm4) and
//! [`Lpm6`](super::Lpm6): the lookup structure (direct array, nodes, leaves), the RIB it
//! is built from, the bulk build and the incremental update. See the parent module for
//! the design.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

/// Flag in a direct-array entry: the low 31 bits are a leaf code, not a node index.
pub(super) const LEAF: u32 = 1 << 31;
/// Leaf codes from here up index the escape table instead of holding `value + 1`.
pub(super) const ESC: u32 = 1 << 30;
/// Lookups interleaved by [`Table::lookup_batch`].
const LANES: usize = 32;
/// Bits of the key consumed by one internal node.
const STRIDE: u32 = 6;
/// A full rebuild (instead of per-slot rebuilds) for a prefix this short or shorter.
const SHORT_REBUILD_ALL: u32 = 3;
/// Compaction never runs while the arrays hold fewer dead entries than this.
const MIN_GARBAGE: usize = 4096;

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
    fn masked(self, len: u8) -> Self;
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
    fn masked(self, len: u8) -> Self {
        self & crate::addr::Ipv4Prefix::mask_bits(len)
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
    fn masked(self, len: u8) -> Self {
        self & crate::addr::Ipv6Prefix::mask_bits(len)
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
fn upto(v: u32) -> u64 {
    u64::MAX >> (63 - v)
}

/// One route in a subtree build: address, length, leaf code.
type Item<K> = (K, u8, u32);

/// A reference-counted escape-table entry for a value too large to inline in a leaf.
#[derive(Clone, Copy, Debug)]
struct Escape {
    id: u32,
    refs: u32,
}

/// A Poptrie and the RIB it is built from.
#[derive(Clone)]
pub(super) struct Table<K: Key> {
    // Lookup structure (FIB). `dir` is empty until the first route arrives.
    dir: Vec<u32>,
    nodes: Vec<Node>,
    leaves: Vec<u32>,
    esc: Vec<u32>,
    // RIB: the routes by (address, length), and per direct slot the longest route of at
    // most `DIRECT` bits that covers it (code 0: none).
    routes: BTreeMap<(K, u8), u32>,
    cover_code: Vec<u32>,
    cover_len: Vec<u8>,
    esc_ids: FxHashMap<u32, Escape>,
    esc_free: Vec<u32>,
    dead_nodes: usize,
    dead_leaves: usize,
    /// Full rebuilds after the bulk build (compactions and very short routes).
    rebuilds: u64,
    scratch: Vec<Item<K>>,
}

impl<K: Key> Default for Table<K> {
    fn default() -> Self {
        Self {
            dir: Vec::new(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            esc: Vec::new(),
            routes: BTreeMap::new(),
            cover_code: Vec::new(),
            cover_len: Vec::new(),
            esc_ids: FxHashMap::default(),
            esc_free: Vec::new(),
            dead_nodes: 0,
            dead_leaves: 0,
            rebuilds: 0,
            scratch: Vec::new(),
        }
    }
}

impl<K: Key> Table<K> {
    // ---- lookup ------------------------------------------------------------------------

    /// The leaf code of the longest match for `key` (0: no route).
    #[inline(always)]
    pub(super) fn lookup_code(&self, key: K) -> u32 {
        let Some(&d) = self.dir.get(key.slot()) else {
            return 0;
        };
        if d & LEAF != 0 {
            return d & !LEAF;
        }
        let mut idx = d as usize;
        let mut off = K::DIRECT;
        loop {
            let n = self.nodes[idx];
            let v = key.chunk(off);
            let m = upto(v);
            if (n.vector >> v) & 1 == 0 {
                let i = n.base0 as usize + (n.leafvec & m).count_ones() as usize - 1;
                return self.leaves[i];
            }
            idx = n.base1 as usize + (n.vector & m).count_ones() as usize - 1;
            off += STRIDE;
        }
    }

    /// The value a leaf code stands for.
    #[inline(always)]
    pub(super) fn decode(&self, code: u32) -> Option<u32> {
        if code < ESC {
            code.checked_sub(1)
        } else {
            self.esc.get((code - ESC) as usize).copied()
        }
    }

    /// Longest-prefix match of `addrs[i]` into `out[i]`, [`LANES`] lookups at a time in
    /// lockstep, one trie level per pass, so that their cache misses overlap.
    ///
    /// Each pass walks a list of the lanes still inside the trie; whether a lane goes on
    /// to a child or stops at a leaf is recorded by appending it to one of two lists
    /// (branch-free), so a data-dependent branch misprediction cannot squash the loads of
    /// the other lanes. Leaves are then read in a separate loop.
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
        if self.dir.is_empty() {
            out[..addrs.len()].fill(None);
            return;
        }
        for (a, o) in addrs.chunks(LANES).zip(out.chunks_mut(LANES)) {
            let mut keys = [K::default(); LANES];
            // Per lane: a direct entry, then a node index, then a leaf index, then
            // `LEAF | code` once resolved.
            let mut st = [0u32; LANES];
            let mut walk = [0u8; LANES];
            let mut leaf = [0u8; LANES];
            for (i, &x) in a.iter().enumerate() {
                keys[i] = to_key(x);
                st[i] = self.dir[keys[i].slot()];
            }
            let mut nwalk = 0;
            for (i, &d) in st.iter().enumerate().take(a.len()) {
                walk[nwalk] = i as u8;
                nwalk += usize::from(d & LEAF == 0);
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
                    let child = n
                        .base1
                        .wrapping_add((n.vector & m).count_ones())
                        .wrapping_sub(1);
                    let li = n
                        .base0
                        .wrapping_add((n.leafvec & m).count_ones())
                        .wrapping_sub(1);
                    st[i] = if down { child } else { li };
                    walk[next] = i as u8;
                    next += usize::from(down);
                    leaf[nleaf] = i as u8;
                    nleaf += usize::from(!down);
                }
                for &i in &leaf[..nleaf] {
                    let i = usize::from(i);
                    st[i] = LEAF | self.leaves[st[i] as usize];
                }
                nwalk = next;
                off += STRIDE;
            }
            for (slot, &s) in o.iter_mut().zip(&st[..a.len()]) {
                *slot = self.decode(s & !LEAF);
            }
        }
    }

    // ---- RIB queries -----------------------------------------------------------------

    pub(super) fn len(&self) -> usize {
        self.routes.len()
    }

    pub(super) fn get(&self, key: K, len: u8) -> Option<u32> {
        self.routes.get(&(key, len)).copied()
    }

    pub(super) fn routes(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.routes.iter().map(|(&(k, l), &v)| (k, l, v))
    }

    /// Bytes of the lookup structure (direct array, nodes, leaves, escape table).
    pub(super) fn memory_bytes(&self) -> usize {
        self.dir.capacity() * 4
            + self.nodes.capacity() * core::mem::size_of::<Node>()
            + self.leaves.capacity() * 4
            + self.esc.capacity() * 4
    }

    /// Estimated bytes of the RIB: the route map (B-tree nodes about two-thirds full),
    /// the per-slot covers and the escape index.
    pub(super) fn rib_memory_bytes(&self) -> usize {
        let entry = core::mem::size_of::<(K, u8)>() + 4;
        self.routes.len() * entry * 3 / 2
            + self.cover_code.capacity() * 4
            + self.cover_len.capacity()
            + self.esc_ids.capacity() * (4 + core::mem::size_of::<Escape>() + 1)
            + self.esc_free.capacity() * 4
            + self.scratch.capacity() * core::mem::size_of::<Item<K>>()
    }

    /// Node and leaf counts, dead ones among them, and full rebuilds (for `Debug`).
    pub(super) fn stats(&self) -> [u64; 5] {
        [
            self.nodes.len() as u64,
            self.leaves.len() as u64,
            self.dead_nodes as u64,
            self.dead_leaves as u64,
            self.rebuilds,
        ]
    }

    // ---- leaf codes ----------------------------------------------------------------------

    /// The leaf code of a stored value.
    fn code_of(esc_ids: &FxHashMap<u32, Escape>, value: u32) -> u32 {
        if value < ESC - 1 {
            value + 1
        } else {
            // Every stored value above the inline range holds an escape entry.
            esc_ids.get(&value).map_or(0, |e| ESC + e.id)
        }
    }

    /// Counts one more route holding `value`.
    fn acquire(&mut self, value: u32) {
        if value < ESC - 1 {
            return;
        }
        if let Some(e) = self.esc_ids.get_mut(&value) {
            e.refs += 1;
            return;
        }
        let id = match self.esc_free.pop() {
            Some(id) => {
                self.esc[id as usize] = value;
                id
            }
            None => {
                self.esc.push(value);
                (self.esc.len() - 1) as u32
            }
        };
        self.esc_ids.insert(value, Escape { id, refs: 1 });
    }

    /// Counts one route fewer holding `value`.
    fn release(&mut self, value: u32) {
        if value < ESC - 1 {
            return;
        }
        if let Some(e) = self.esc_ids.get_mut(&value) {
            e.refs -= 1;
            if e.refs == 0 {
                self.esc_free.push(e.id);
                self.esc_ids.remove(&value);
            }
        }
    }

    // ---- updates -------------------------------------------------------------------------

    fn ensure_dir(&mut self) {
        if self.dir.is_empty() {
            let n = 1usize << K::DIRECT;
            self.dir = vec![LEAF; n];
            self.cover_code = vec![0; n];
            self.cover_len = vec![0; n];
        }
    }

    /// Adds or replaces a route; `key` has no bits beyond `len`.
    pub(super) fn insert(&mut self, key: K, len: u8, value: u32) -> Option<u32> {
        self.ensure_dir();
        let old = self.routes.insert((key, len), value);
        if old == Some(value) {
            return old;
        }
        if let Some(o) = old {
            self.release(o);
        }
        self.acquire(value);
        self.changed(key, len);
        old
    }

    /// Removes a route, returning its value.
    pub(super) fn remove(&mut self, key: K, len: u8) -> Option<u32> {
        let old = self.routes.remove(&(key, len))?;
        self.release(old);
        self.changed(key, len);
        Some(old)
    }

    /// Brings the lookup structure in line with the RIB after the route `key/len` was
    /// added, changed or removed there.
    fn changed(&mut self, key: K, len: u8) {
        let l = u32::from(len);
        if l > K::DIRECT {
            self.rebuild_slot(key.slot());
        } else if l <= SHORT_REBUILD_ALL {
            self.rebuilds += 1;
            self.rebuild_all();
        } else {
            // Each slot in the route's range takes the route, unless a longer short route
            // covers it; on removal the slots it covered fall back to the next shorter one.
            let present = self
                .routes
                .get(&(key, len))
                .map(|&v| Self::code_of(&self.esc_ids, v));
            let parent = match present {
                Some(_) => (0, 0),
                None => self.cover_above(key, len),
            };
            let first = key.slot();
            for s in first..first + (1usize << (K::DIRECT - l)) {
                let cur = (self.cover_code[s], self.cover_len[s]);
                let new = match present {
                    Some(code) if cur.0 == 0 || cur.1 <= len => (code, len),
                    None if cur.0 != 0 && cur.1 == len => parent,
                    _ => continue,
                };
                if new == cur {
                    continue;
                }
                (self.cover_code[s], self.cover_len[s]) = new;
                if self.dir[s] & LEAF != 0 {
                    self.dir[s] = LEAF | new.0;
                } else {
                    self.rebuild_slot(s);
                }
            }
        }
        self.maybe_compact();
    }

    /// The longest route strictly shorter than `len` that covers `key`: (code, length), or
    /// (0, 0) when none does.
    fn cover_above(&self, key: K, len: u8) -> (u32, u8) {
        for l in (0..len).rev() {
            let k = key.masked(l);
            if let Some(&v) = self.routes.get(&(k, l)) {
                return (Self::code_of(&self.esc_ids, v), l);
            }
        }
        (0, 0)
    }

    /// Rebuilds the subtree of one direct slot from the RIB, appending it to the arrays
    /// and leaving the old one as garbage.
    fn rebuild_slot(&mut self, slot: usize) {
        let old = self.dir[slot];
        if old & LEAF == 0 {
            let (n, l) = subtree_size(&self.nodes, old as usize);
            self.dead_nodes += n;
            self.dead_leaves += l;
        }
        self.scratch.clear();
        let lo = K::slot_base(slot);
        for (&(k, len), &v) in self.routes.range((lo, 0)..) {
            if k.slot() != slot {
                break;
            }
            if u32::from(len) > K::DIRECT {
                self.scratch.push((k, len, Self::code_of(&self.esc_ids, v)));
            }
        }
        self.dir[slot] = if self.scratch.is_empty() {
            LEAF | self.cover_code[slot]
        } else {
            build_subtree(
                &mut self.nodes,
                &mut self.leaves,
                &self.scratch,
                self.cover_code[slot],
            )
        };
    }

    fn maybe_compact(&mut self) {
        let nodes_over = self.dead_nodes > MIN_GARBAGE && 2 * self.dead_nodes > self.nodes.len();
        let leaves_over =
            self.dead_leaves > MIN_GARBAGE && 2 * self.dead_leaves > self.leaves.len();
        if nodes_over || leaves_over {
            self.rebuilds += 1;
            self.rebuild_all();
        }
    }

    /// Adds many routes at once, then builds the lookup structure in one pass.
    pub(super) fn extend(&mut self, items: impl IntoIterator<Item = (K, u8, u32)>) {
        let mut v: Vec<((K, u8), u32)> =
            items.into_iter().map(|(k, l, val)| ((k, l), val)).collect();
        if v.is_empty() {
            return;
        }
        self.ensure_dir();
        if v.len() < 64 && !self.routes.is_empty() {
            for ((k, l), val) in v {
                self.insert(k, l, val);
            }
            return;
        }
        // Stable sort, then keep the last value of each prefix, as repeated inserts would.
        v.sort_by_key(|a| a.0);
        let mut w = 0;
        for r in 0..v.len() {
            if w > 0 && v[w - 1].0 == v[r].0 {
                v[w - 1].1 = v[r].1;
            } else {
                v[w] = v[r];
                w += 1;
            }
        }
        v.truncate(w);
        if self.routes.is_empty() {
            for &(_, val) in &v {
                self.acquire(val);
            }
            self.routes = v.into_iter().collect();
        } else {
            for ((k, l), val) in v {
                if let Some(o) = self.routes.insert((k, l), val) {
                    self.release(o);
                }
                self.acquire(val);
            }
        }
        self.rebuild_all();
    }

    /// Rebuilds the whole lookup structure from the RIB (bulk build and compaction).
    fn rebuild_all(&mut self) {
        self.ensure_dir();
        let live_nodes = self.nodes.len() - self.dead_nodes;
        let live_leaves = self.leaves.len() - self.dead_leaves;
        self.nodes = Vec::with_capacity(live_nodes);
        self.leaves = Vec::with_capacity(live_leaves);
        self.dead_nodes = 0;
        self.dead_leaves = 0;
        // Covers: in (address, length) order a route comes after every route containing
        // it, so painting in that order leaves the longest cover in each slot.
        self.cover_code.fill(0);
        self.cover_len.fill(0);
        for (&(k, len), &v) in &self.routes {
            let l = u32::from(len);
            if l <= K::DIRECT {
                let first = k.slot();
                let count = 1usize << (K::DIRECT - l);
                self.cover_code[first..first + count].fill(Self::code_of(&self.esc_ids, v));
                self.cover_len[first..first + count].fill(len);
            }
        }
        for (d, &c) in self.dir.iter_mut().zip(&self.cover_code) {
            *d = LEAF | c;
        }
        // Subtrees: the longer routes of one slot are contiguous in the map.
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        let mut cur = usize::MAX;
        for (&(k, len), &v) in &self.routes {
            if u32::from(len) <= K::DIRECT {
                continue;
            }
            let s = k.slot();
            if s != cur && !scratch.is_empty() {
                self.dir[cur] = build_subtree(
                    &mut self.nodes,
                    &mut self.leaves,
                    &scratch,
                    self.cover_code[cur],
                );
                scratch.clear();
            }
            cur = s;
            scratch.push((k, len, Self::code_of(&self.esc_ids, v)));
        }
        if !scratch.is_empty() {
            self.dir[cur] = build_subtree(
                &mut self.nodes,
                &mut self.leaves,
                &scratch,
                self.cover_code[cur],
            );
        }
        scratch.clear();
        self.scratch = scratch;
    }
}

/// Builds the subtree for one slot's longer routes (sorted by address, then length) under
/// the default `default`, returning the direct-array entry that points to its root.
fn build_subtree<K: Key>(
    nodes: &mut Vec<Node>,
    leaves: &mut Vec<u32>,
    items: &[Item<K>],
    default: u32,
) -> u32 {
    let root = nodes.len();
    nodes.push(Node::default());
    build_node(nodes, leaves, root, items, K::DIRECT, default);
    u32::try_from(root).expect("more than 2^31 Poptrie nodes")
}

/// Fills node `at`, which resolves bits `off..off + 6` of `items` (routes sharing the bits
/// above `off`, sorted by address then length) under the inherited leaf `default`.
fn build_node<K: Key>(
    nodes: &mut Vec<Node>,
    leaves: &mut Vec<u32>,
    at: usize,
    items: &[Item<K>],
    off: u32,
    default: u32,
) {
    // Expand the routes ending in this stride over its 64 chunk values; a route comes
    // after those containing it, so the longest match is painted last.
    let mut paint = [default; 64];
    let mut vector = 0u64;
    for &(k, len, code) in items {
        let len = u32::from(len);
        if len <= off {
            continue;
        }
        let c = k.chunk(off) as usize;
        if len <= off + STRIDE {
            let span = 1usize << (off + STRIDE - len);
            paint[c..c + span].fill(code);
        } else {
            vector |= 1 << c;
        }
    }
    // Leaves: one per run of equal values among the chunk values without a child.
    let base0 = leaves.len();
    let mut leafvec = 0u64;
    let mut prev = None;
    for (v, &code) in paint.iter().enumerate() {
        if (vector >> v) & 1 == 0 && prev != Some(code) {
            leafvec |= 1 << v;
            leaves.push(code);
            prev = Some(code);
        }
    }
    let base1 = nodes.len();
    nodes.resize(base1 + vector.count_ones() as usize, Node::default());
    nodes[at] = Node {
        vector,
        leafvec,
        base0: u32::try_from(base0).expect("more than 2^32 Poptrie leaves"),
        base1: u32::try_from(base1).expect("more than 2^31 Poptrie nodes"),
    };
    // Children in chunk order; the routes under one chunk value are contiguous.
    let mut child = base1;
    let mut i = 0;
    while i < items.len() {
        let c = items[i].0.chunk(off);
        let run = items[i..]
            .iter()
            .take_while(|it| it.0.chunk(off) == c)
            .count();
        if (vector >> c) & 1 != 0 {
            build_node(
                nodes,
                leaves,
                child,
                &items[i..i + run],
                off + STRIDE,
                paint[c as usize],
            );
            child += 1;
        }
        i += run;
    }
}

/// Nodes and leaves of the subtree rooted at `root` (for garbage accounting).
fn subtree_size(nodes: &[Node], root: usize) -> (usize, usize) {
    let n = nodes[root];
    let mut size = (1, n.leafvec.count_ones() as usize);
    for c in 0..n.vector.count_ones() as usize {
        let (a, b) = subtree_size(nodes, n.base1 as usize + c);
        size.0 += a;
        size.1 += b;
    }
    size
}
