//! Leaf codes: how a route's `u32` value is stored in a leaf.
//!
//! Every distinct value is interned with a reference count (one per route holding it)
//! and gets a small id. With at most 255 distinct values leaves are `u8` ids, with at
//! most 65,535 `u16` ids, and a lookup ends with one read of the (small, hot) id table.
//! Past that leaves are *wide*: `u32` codes holding `value + 1` directly, and only
//! values of `2^30 - 1` and up go through the id table (escape codes). Code 0 is "no
//! route" in all three. Smaller leaves mean a smaller table and fewer cache misses; the
//! width is chosen at each full build and widened (by a full rebuild) when an insert
//! brings one distinct value too many.

use rustc_hash::FxHashMap;

/// Wide codes from here up are `ESC + id` (an interned value) instead of `value + 1`.
pub(super) const ESC: u32 = 1 << 30;

/// The width of the leaves, smallest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Width {
    /// `u8` ids.
    Byte,
    /// `u16` ids.
    Narrow,
    /// `u32` codes.
    Wide,
}

/// One interned value.
#[derive(Clone, Copy, Debug)]
struct Interned {
    id: u32,
    refs: u32,
}

/// The interned values of a table.
#[derive(Clone, Debug)]
pub(super) struct Values {
    ids: FxHashMap<u32, Interned>,
    /// Id to value; id 0 is "no route".
    vals: Vec<Option<u32>>,
    free: Vec<u32>,
}

impl Default for Values {
    fn default() -> Self {
        Self {
            ids: FxHashMap::default(),
            vals: vec![None],
            free: Vec::new(),
        }
    }
}

impl Values {
    /// The narrowest leaf that holds every id.
    pub(super) fn width(&self) -> Width {
        match self.vals.len() - 1 {
            0..=0xff => Width::Byte,
            0x100..=0xffff => Width::Narrow,
            _ => Width::Wide,
        }
    }

    /// Counts one more route holding `value`.
    pub(super) fn acquire(&mut self, value: u32) {
        if let Some(e) = self.ids.get_mut(&value) {
            e.refs += 1;
            return;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.vals[id as usize] = Some(value);
                id
            }
            None => {
                self.vals.push(Some(value));
                (self.vals.len() - 1) as u32
            }
        };
        self.ids.insert(value, Interned { id, refs: 1 });
    }

    /// Counts one route fewer holding `value`; its id is freed with the last one.
    pub(super) fn release(&mut self, value: u32) {
        if let Some(e) = self.ids.get_mut(&value) {
            e.refs -= 1;
            if e.refs == 0 {
                self.vals[e.id as usize] = None;
                self.free.push(e.id);
                self.ids.remove(&value);
            }
        }
    }

    /// The leaf code of a value held by some route.
    pub(super) fn code(&self, value: u32, wide: bool) -> u32 {
        let id = self.ids.get(&value).map_or(0, |e| e.id);
        if !wide {
            id
        } else if value < ESC - 1 {
            value + 1
        } else {
            ESC + id
        }
    }

    /// The value of a narrow code.
    #[inline(always)]
    pub(super) fn narrow(&self, code: u32) -> Option<u32> {
        self.vals.get(code as usize).copied().flatten()
    }

    /// The value of a wide code.
    #[inline(always)]
    pub(super) fn wide(&self, code: u32) -> Option<u32> {
        if code < ESC {
            code.checked_sub(1)
        } else {
            self.narrow(code - ESC)
        }
    }

    /// Bytes of the id table, which lookups read.
    pub(super) fn table_bytes(&self) -> usize {
        self.vals.capacity() * core::mem::size_of::<Option<u32>>()
    }

    /// Bytes of the interning index, which only updates use.
    pub(super) fn index_bytes(&self) -> usize {
        self.ids.capacity() * (4 + core::mem::size_of::<Interned>() + 1) + self.free.capacity() * 4
    }
}
