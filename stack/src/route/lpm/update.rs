//! The RIB side of a [`Table`]: exact-match queries, the bulk build, and incremental
//! insert and remove (see the parent module for the strategy).

use super::engine::{upto, Key, Leaves, Node, Table, COMPACT, LEAF, STRIDE};

/// A full rebuild (instead of per-slot rebuilds) for a route this short or shorter.
const SHORT_REBUILD_ALL: u32 = 3;
/// Compaction never runs while the arrays hold fewer dead entries than this.
const MIN_GARBAGE: usize = 4096;
/// `extend` with fewer routes than this on a non-empty table inserts them one by one.
const SMALL_EXTEND: usize = 64;

/// One route in a subtree build: address, length, leaf code.
type Item<K> = (K, u8, u32);

/// The arrays a subtree build appends to.
struct Arena<'a> {
    nodes: &'a mut Vec<Node>,
    leaves: &'a mut Leaves,
    compact: &'a mut Vec<u64>,
    defaults: &'a mut Vec<u32>,
}

impl<K: Key> Table<K> {
    pub(super) fn len(&self) -> usize {
        self.routes.len()
    }

    pub(super) fn get(&self, key: K, len: u8) -> Option<u32> {
        self.routes.get(&(key, len)).copied()
    }

    pub(super) fn routes(&self) -> impl Iterator<Item = (K, u8, u32)> + '_ {
        self.routes.iter().map(|(&(k, l), &v)| (k, l, v))
    }

    fn code(&self, value: u32) -> u32 {
        self.values.code(value, self.leaves.is_wide())
    }

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
            self.values.release(o);
        }
        self.values.acquire(value);
        self.changed(key, len);
        old
    }

    /// Removes a route, returning its value.
    pub(super) fn remove(&mut self, key: K, len: u8) -> Option<u32> {
        let old = self.routes.remove(&(key, len))?;
        self.values.release(old);
        self.changed(key, len);
        Some(old)
    }

    /// Brings the lookup structure in line with the RIB after the route `key/len` was
    /// added, changed or removed there.
    fn changed(&mut self, key: K, len: u8) {
        let l = u32::from(len);
        if self.values.width() > self.leaves.width() {
            // Too many distinct values for the leaves: rebuild with wider ones.
            self.rebuild_all();
        } else if l > K::DIRECT {
            self.update_long(key, l);
        } else if l <= SHORT_REBUILD_ALL {
            self.rebuilds += 1;
            self.rebuild_all();
        } else {
            self.update_short(key, len);
        }
        self.maybe_compact();
    }

    /// A route of at most `DIRECT` bits changed: each slot in its range takes it, unless
    /// a longer short route covers the slot; on removal the slots it covered fall back
    /// to the next shorter route. Slots that are leaves are rewritten in place, slots
    /// with a subtree get it rebuilt under the new default.
    fn update_short(&mut self, key: K, len: u8) {
        let present = self.routes.get(&(key, len)).map(|&v| self.code(v));
        let parent = match present {
            Some(_) => (0, 0),
            None => self.cover_above(key, len),
        };
        let first = key.slot();
        for s in first..first + (1usize << (K::DIRECT - u32::from(len))) {
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

    /// The longest route strictly shorter than `len` that covers `key`: (code, length), or
    /// (0, 0) when none does.
    fn cover_above(&self, key: K, len: u8) -> (u32, u8) {
        for l in (0..len).rev() {
            if let Some(&v) = self.routes.get(&(key.masked(u32::from(l)), l)) {
                return (self.code(v), l);
            }
        }
        (0, 0)
    }

    /// A route longer than `DIRECT` bits changed. Walk its path to the deepest node on it:
    ///
    /// - if the route lies below a chunk of that node without a child (a new branch),
    ///   give the node the child: its children block is copied with the new child's
    ///   subtree built in, the siblings' subtrees kept as they are;
    /// - otherwise the route's last bits fall in that node's stride: rebuild the node's
    ///   subtree in place. If no route is left below it, drop it from its parent (and so
    ///   on up).
    ///
    /// A slot that is a leaf or a compact record, or whose root is reached, is rebuilt
    /// whole.
    fn update_long(&mut self, key: K, len: u32) {
        let slot = key.slot();
        let d = self.dir[slot];
        if d & (LEAF | COMPACT) != 0 {
            self.rebuild_slot(slot);
            return;
        }
        let mut path = [(0usize, 0u32); 24];
        let mut depth = 0;
        let (mut idx, mut off) = (d as usize, K::DIRECT);
        loop {
            path[depth] = (idx, off);
            depth += 1;
            if len <= off + STRIDE {
                break;
            }
            let n = self.nodes[idx];
            let c = key.chunk(off);
            if (n.vector >> c) & 1 == 0 {
                // A new branch (a removed route always has its branch).
                self.collect(key.masked(off + STRIDE), off + STRIDE);
                if !self.scratch.is_empty() {
                    self.attach_child(idx, off, c);
                    return;
                }
                break;
            }
            idx = n.base1 as usize + (n.vector & upto(c)).count_ones() as usize - 1;
            off += STRIDE;
        }
        while depth > 1 {
            depth -= 1;
            let (idx, off) = path[depth];
            if self.rebuild_node(idx, key.masked(off), off) {
                return;
            }
            // Nothing below `idx` any more: its parent drops it, and if nothing is left
            // below the parent either, the parent goes next.
            let (parent, poff) = path[depth - 1];
            self.detach_child(parent, key.chunk(poff));
            self.collect(key.masked(poff), poff);
            if !self.scratch.is_empty() {
                return;
            }
        }
        self.rebuild_slot(slot);
    }

    /// The leaf value of each chunk value of node `idx` without a child.
    fn slot_values(&self, idx: usize) -> [u32; 64] {
        let n = self.nodes[idx];
        let mut out = [0u32; 64];
        let mut leaf = n.base0 as usize;
        let mut first = true;
        for (v, o) in out.iter_mut().enumerate() {
            if (n.vector >> v) & 1 != 0 {
                continue;
            }
            if (n.leafvec >> v) & 1 != 0 {
                if !first {
                    leaf += 1;
                }
                first = false;
            }
            *o = self.leaves.get(leaf);
        }
        out
    }

    /// Gives node `idx` (at offset `off`) a child at chunk value `c`, built from the
    /// routes now in `scratch`; the other children keep their subtrees.
    fn attach_child(&mut self, idx: usize, off: u32, c: u32) {
        let mut values = self.slot_values(idx);
        let n = self.nodes[idx];
        let vector = n.vector | (1 << c);
        let rank = (vector & upto(c)).count_ones() as usize - 1;
        let base1 = self.nodes.len();
        for j in 0..vector.count_ones() as usize {
            let (node, default) = match j.cmp(&rank) {
                core::cmp::Ordering::Less => {
                    let o = n.base1 as usize + j;
                    (self.nodes[o], self.defaults[o])
                }
                core::cmp::Ordering::Equal => (Node::default(), values[c as usize]),
                core::cmp::Ordering::Greater => {
                    let o = n.base1 as usize + j - 1;
                    (self.nodes[o], self.defaults[o])
                }
            };
            self.nodes.push(node);
            self.defaults.push(default);
        }
        let default = values[c as usize];
        let mut arena = Arena {
            nodes: &mut self.nodes,
            leaves: &mut self.leaves,
            compact: &mut self.compact,
            defaults: &mut self.defaults,
        };
        build_node(
            &mut arena,
            base1 + rank,
            &self.scratch,
            off + STRIDE,
            default,
        );
        values[c as usize] = 0;
        self.dead_nodes += n.vector.count_ones() as usize;
        self.replace_node(idx, vector, &values, base1);
    }

    /// Drops the child of node `idx` at chunk value `c` with its subtree; the chunk value
    /// takes the leaf the child inherited.
    fn detach_child(&mut self, idx: usize, c: u32) {
        let mut values = self.slot_values(idx);
        let n = self.nodes[idx];
        if (n.vector >> c) & 1 == 0 {
            return;
        }
        let rank = (n.vector & upto(c)).count_ones() as usize - 1;
        let child = n.base1 as usize + rank;
        let (dn, dl) = subtree_size(&self.nodes, child);
        self.dead_nodes += dn + n.vector.count_ones() as usize - 1;
        self.dead_leaves += dl;
        values[c as usize] = self.defaults[child];
        let base1 = self.nodes.len();
        for j in (0..n.vector.count_ones() as usize).filter(|&j| j != rank) {
            let o = n.base1 as usize + j;
            let (node, default) = (self.nodes[o], self.defaults[o]);
            self.nodes.push(node);
            self.defaults.push(default);
        }
        self.replace_node(idx, n.vector & !(1 << c), &values, base1);
    }

    /// Rewrites node `idx` in place with a new child bitmap and first child, and new
    /// leaves for `values` (one per run among the chunk values without a child).
    fn replace_node(&mut self, idx: usize, vector: u64, values: &[u32; 64], base1: usize) {
        let old = self.nodes[idx];
        self.dead_leaves += old.leafvec.count_ones() as usize;
        let base0 = self.leaves.len();
        let mut leafvec = 0u64;
        let mut prev = None;
        for (v, &code) in values.iter().enumerate() {
            if (vector >> v) & 1 == 0 && prev != Some(code) {
                leafvec |= 1 << v;
                self.leaves.push(code);
                prev = Some(code);
            }
        }
        self.nodes[idx] = Node {
            vector,
            leafvec,
            base0: u32::try_from(base0).expect("more than 2^32 Poptrie leaves"),
            base1: u32::try_from(base1).expect("more than 2^32 Poptrie nodes"),
        };
    }

    /// Collects into `scratch` the routes longer than `off` bits under `base/off`.
    fn collect(&mut self, base: K, off: u32) {
        self.scratch.clear();
        for (&(k, len), &v) in self.routes.range((base, 0)..) {
            if k.masked(off) != base {
                break;
            }
            if u32::from(len) > off {
                let code = self.values.code(v, self.leaves.is_wide());
                self.scratch.push((k, len, code));
            }
        }
    }

    /// Rebuilds node `idx` (at offset `off`, covering `base/off`) in place from the RIB,
    /// leaving its old children and leaves as garbage. False, and nothing done, when no
    /// route lies below it any more (the parent must drop it).
    fn rebuild_node(&mut self, idx: usize, base: K, off: u32) -> bool {
        self.collect(base, off);
        if self.scratch.is_empty() {
            return false;
        }
        let (n, l) = subtree_size(&self.nodes, idx);
        self.dead_nodes += n - 1;
        self.dead_leaves += l;
        let default = self.defaults[idx];
        let mut arena = Arena {
            nodes: &mut self.nodes,
            leaves: &mut self.leaves,
            compact: &mut self.compact,
            defaults: &mut self.defaults,
        };
        build_node(&mut arena, idx, &self.scratch, off, default);
        true
    }

    /// Rebuilds the subtree of one direct slot from the RIB, appended to the arrays (the
    /// old one, if any, becomes garbage), or makes the slot a leaf when no route longer
    /// than `DIRECT` bits is left in it.
    fn rebuild_slot(&mut self, slot: usize) {
        let old = self.dir[slot];
        if old & LEAF == 0 {
            if old & COMPACT != 0 {
                let x = (old & !COMPACT) as usize;
                self.dead_compact += compact_words(self.compact[x], self.leaves.per_word());
            } else {
                let (n, l) = subtree_size(&self.nodes, old as usize);
                self.dead_nodes += n;
                self.dead_leaves += l;
            }
        }
        self.collect(K::slot_base(slot), K::DIRECT);
        self.dir[slot] = if self.scratch.is_empty() {
            LEAF | self.cover_code[slot]
        } else {
            let mut arena = Arena {
                nodes: &mut self.nodes,
                leaves: &mut self.leaves,
                compact: &mut self.compact,
                defaults: &mut self.defaults,
            };
            build_subtree(&mut arena, &self.scratch, K::DIRECT, self.cover_code[slot])
        };
    }

    fn maybe_compact(&mut self) {
        let nodes_over = self.dead_nodes > MIN_GARBAGE && 2 * self.dead_nodes > self.nodes.len();
        let leaves_over =
            self.dead_leaves > MIN_GARBAGE && 2 * self.dead_leaves > self.leaves.len();
        let compact_over =
            self.dead_compact > MIN_GARBAGE && 2 * self.dead_compact > self.compact.len();
        if nodes_over || leaves_over || compact_over {
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
        if v.len() < SMALL_EXTEND && !self.routes.is_empty() {
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
                self.values.acquire(val);
            }
            self.routes = v.into_iter().collect();
        } else {
            for ((k, l), val) in v {
                if let Some(o) = self.routes.insert((k, l), val) {
                    self.values.release(o);
                }
                self.values.acquire(val);
            }
        }
        self.rebuild_all();
    }

    /// Rebuilds the whole lookup structure from the RIB (bulk build and compaction), with
    /// narrow leaves when the values allow.
    fn rebuild_all(&mut self) {
        self.ensure_dir();
        let live_nodes = self.nodes.len() - self.dead_nodes;
        let live_leaves = self.leaves.len() - self.dead_leaves;
        let live_compact = self.compact.len() - self.dead_compact;
        self.nodes = Vec::with_capacity(live_nodes);
        self.defaults = Vec::with_capacity(live_nodes);
        self.leaves = Leaves::with_capacity(self.values.width(), live_leaves);
        self.compact = Vec::with_capacity(live_compact);
        self.dead_nodes = 0;
        self.dead_leaves = 0;
        self.dead_compact = 0;
        // Covers: in (address, length) order a route comes after every route containing
        // it, so painting in that order leaves the longest cover in each slot.
        self.cover_code.fill(0);
        self.cover_len.fill(0);
        let wide = self.leaves.is_wide();
        for (&(k, len), &v) in &self.routes {
            let l = u32::from(len);
            if l <= K::DIRECT {
                let first = k.slot();
                let count = 1usize << (K::DIRECT - l);
                self.cover_code[first..first + count].fill(self.values.code(v, wide));
                self.cover_len[first..first + count].fill(len);
            }
        }
        for (d, &c) in self.dir.iter_mut().zip(&self.cover_code) {
            *d = LEAF | c;
        }
        // Subtrees: the longer routes of one slot are contiguous in the map.
        let mut scratch = core::mem::take(&mut self.scratch);
        scratch.clear();
        let mut arena = Arena {
            nodes: &mut self.nodes,
            leaves: &mut self.leaves,
            compact: &mut self.compact,
            defaults: &mut self.defaults,
        };
        let mut cur = usize::MAX;
        for (&(k, len), &v) in &self.routes {
            if u32::from(len) <= K::DIRECT {
                continue;
            }
            let s = k.slot();
            if s != cur && !scratch.is_empty() {
                self.dir[cur] =
                    build_subtree(&mut arena, &scratch, K::DIRECT, self.cover_code[cur]);
                scratch.clear();
            }
            cur = s;
            scratch.push((k, len, self.values.code(v, wide)));
        }
        if !scratch.is_empty() {
            self.dir[cur] = build_subtree(&mut arena, &scratch, K::DIRECT, self.cover_code[cur]);
        }
        scratch.clear();
        self.scratch = scratch;
        // Keep an eighth spare for the subtrees updates append, no more.
        shrink_arrays(self, |len| len + len / 8);
    }
}

/// Builds the subtree of a direct slot for `items` (its routes longer than `off` bits,
/// sorted by address then length) under the inherited leaf `default`; returns the
/// direct entry: a compact record when the root has no children, else the root node.
fn build_subtree<K: Key>(a: &mut Arena<'_>, items: &[Item<K>], off: u32, default: u32) -> u32 {
    let (paint, vector) = paint(items, off, default);
    if vector == 0 {
        let x = a.compact.len();
        let per_word = a.leaves.per_word();
        a.compact.push(0);
        let mut leafvec = 0u64;
        let mut n = 0;
        for v in 0..64 {
            if v == 0 || paint[v] != paint[v - 1] {
                leafvec |= 1 << v;
                if n % per_word == 0 {
                    a.compact.push(0);
                }
                let shift = (n % per_word) * (64 / per_word);
                *a.compact.last_mut().expect("word pushed above") |= u64::from(paint[v]) << shift;
                n += 1;
            }
        }
        a.compact[x] = leafvec;
        let x = u32::try_from(x).ok().filter(|&x| x & (LEAF | COMPACT) == 0);
        return COMPACT | x.expect("more than 2^30 compact words");
    }
    let root = a.nodes.len();
    a.nodes.push(Node::default());
    a.defaults.push(default);
    fill_node(a, root, items, off, &paint, vector);
    u32::try_from(root)
        .ok()
        .filter(|&r| r & (LEAF | COMPACT) == 0)
        .expect("more than 2^30 Poptrie nodes")
}

/// The leaves of a node at offset `off` over `items` (routes sharing the bits above
/// `off`, sorted by address then length) under `default`, and its child bitmap.
fn paint<K: Key>(items: &[Item<K>], off: u32, default: u32) -> ([u32; 64], u64) {
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
    (paint, vector)
}

/// Fills node `at`, which resolves bits `off..off + 6` of `items` under the inherited
/// leaf `default`, appending its children and leaves.
fn build_node<K: Key>(a: &mut Arena<'_>, at: usize, items: &[Item<K>], off: u32, default: u32) {
    let (paint, vector) = paint(items, off, default);
    fill_node(a, at, items, off, &paint, vector);
}

/// [`build_node`] once the leaves and child bitmap are known.
fn fill_node<K: Key>(
    a: &mut Arena<'_>,
    at: usize,
    items: &[Item<K>],
    off: u32,
    paint: &[u32; 64],
    vector: u64,
) {
    // Leaves: one per run of equal values among the chunk values without a child.
    let base0 = a.leaves.len();
    let mut leafvec = 0u64;
    let mut prev = None;
    for (v, &code) in paint.iter().enumerate() {
        if (vector >> v) & 1 == 0 && prev != Some(code) {
            leafvec |= 1 << v;
            a.leaves.push(code);
            prev = Some(code);
        }
    }
    let base1 = a.nodes.len();
    let children = vector.count_ones() as usize;
    a.nodes.resize(base1 + children, Node::default());
    a.defaults.resize(base1 + children, 0);
    a.nodes[at] = Node {
        vector,
        leafvec,
        base0: u32::try_from(base0).expect("more than 2^32 Poptrie leaves"),
        base1: u32::try_from(base1).expect("more than 2^32 Poptrie nodes"),
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
            a.defaults[child] = paint[c as usize];
            build_node(
                a,
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

/// Shrinks the capacity of every lookup array to `cap(len)`.
fn shrink_arrays<K: Key>(t: &mut Table<K>, cap: impl Fn(usize) -> usize) {
    t.nodes.shrink_to(cap(t.nodes.len()));
    t.defaults.shrink_to(cap(t.defaults.len()));
    t.compact.shrink_to(cap(t.compact.len()));
    match &mut t.leaves {
        Leaves::Byte(v) => v.shrink_to(cap(v.len())),
        Leaves::Narrow(v) => v.shrink_to(cap(v.len())),
        Leaves::Wide(v) => v.shrink_to(cap(v.len())),
    }
}

/// Words of a compact record with this `leafvec`, `per_word` leaves to a word.
fn compact_words(leafvec: u64, per_word: usize) -> usize {
    1 + (leafvec.count_ones() as usize).div_ceil(per_word)
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
