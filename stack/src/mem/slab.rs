//! A fixed-capacity slab for fixed-size objects, with generation-checked handles.
//!
//! `insert` and `remove` are O(1) (a free list threaded through vacant slots). The slab
//! never grows past the capacity given at construction, so after construction it never
//! allocates. A [`SlabHandle`] carries the slot's generation: once the object is
//! removed, the handle stops resolving, even if the slot is reused, so handles cannot
//! dangle.

use core::fmt;
use core::marker::PhantomData;

/// A handle to an object in a [`Slab`]; stale handles resolve to `None`.
pub struct SlabHandle<T> {
    index: u32,
    generation: u32,
    _marker: PhantomData<fn() -> T>,
}

impl<T> SlabHandle<T> {
    /// The slot index (stable while the object lives).
    pub fn index(&self) -> u32 {
        self.index
    }
}

impl<T> Clone for SlabHandle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SlabHandle<T> {}
impl<T> PartialEq for SlabHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.generation == other.generation
    }
}
impl<T> Eq for SlabHandle<T> {}
impl<T> core::hash::Hash for SlabHandle<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.index.hash(state);
        self.generation.hash(state);
    }
}
impl<T> fmt::Debug for SlabHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlabHandle({}v{})", self.index, self.generation)
    }
}

enum Slot<T> {
    Occupied { generation: u32, value: T },
    Vacant { generation: u32, next_free: u32 },
}

const NONE: u32 = u32::MAX;

/// A fixed-capacity slab of `T`.
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    capacity: usize,
    free_head: u32,
    len: usize,
}

impl<T> Slab<T> {
    /// A slab for at most `capacity` objects (at most `u32::MAX - 1`), allocated now.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.min(NONE as usize - 1);
        Slab {
            slots: Vec::with_capacity(capacity),
            capacity,
            free_head: NONE,
            len: 0,
        }
    }

    /// Number of live objects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no object lives.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most objects the slab holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Stores `value`; gives it back when the slab is full.
    pub fn insert(&mut self, value: T) -> Result<SlabHandle<T>, T> {
        if self.free_head != NONE {
            let index = self.free_head;
            let slot = &mut self.slots[index as usize];
            let generation = match *slot {
                Slot::Vacant {
                    generation,
                    next_free,
                } => {
                    self.free_head = next_free;
                    generation
                }
                // The free list only links vacant slots.
                Slot::Occupied { .. } => unreachable!("free list points at an occupied slot"),
            };
            *slot = Slot::Occupied { generation, value };
            self.len += 1;
            return Ok(SlabHandle {
                index,
                generation,
                _marker: PhantomData,
            });
        }
        if self.slots.len() >= self.capacity {
            return Err(value);
        }
        let index = self.slots.len() as u32;
        // Within the capacity reserved at construction: no reallocation.
        self.slots.push(Slot::Occupied {
            generation: 0,
            value,
        });
        self.len += 1;
        Ok(SlabHandle {
            index,
            generation: 0,
            _marker: PhantomData,
        })
    }

    /// Removes and returns the object, or `None` for a stale handle.
    pub fn remove(&mut self, handle: SlabHandle<T>) -> Option<T> {
        let slot = self.slots.get_mut(handle.index as usize)?;
        match slot {
            Slot::Occupied { generation, .. } if *generation == handle.generation => {
                let next = Slot::Vacant {
                    generation: generation.wrapping_add(1),
                    next_free: self.free_head,
                };
                let old = core::mem::replace(slot, next);
                self.free_head = handle.index;
                self.len -= 1;
                match old {
                    Slot::Occupied { value, .. } => Some(value),
                    Slot::Vacant { .. } => None,
                }
            }
            _ => None,
        }
    }

    /// The object, or `None` for a stale handle.
    #[inline]
    pub fn get(&self, handle: SlabHandle<T>) -> Option<&T> {
        match self.slots.get(handle.index as usize)? {
            Slot::Occupied { generation, value } if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    /// The object, mutably, or `None` for a stale handle.
    #[inline]
    pub fn get_mut(&mut self, handle: SlabHandle<T>) -> Option<&mut T> {
        match self.slots.get_mut(handle.index as usize)? {
            Slot::Occupied { generation, value } if *generation == handle.generation => Some(value),
            _ => None,
        }
    }

    /// True while `handle` resolves.
    pub fn contains(&self, handle: SlabHandle<T>) -> bool {
        self.get(handle).is_some()
    }

    /// The handles of all live objects, in slot order.
    pub fn handles(&self) -> impl Iterator<Item = SlabHandle<T>> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Occupied { generation, .. } => Some(SlabHandle {
                index: i as u32,
                generation: *generation,
                _marker: PhantomData,
            }),
            Slot::Vacant { .. } => None,
        })
    }

    /// All live objects with their handles, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (SlabHandle<T>, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Occupied { generation, value } => Some((
                SlabHandle {
                    index: i as u32,
                    generation: *generation,
                    _marker: PhantomData,
                },
                value,
            )),
            Slot::Vacant { .. } => None,
        })
    }

    /// The handle of the live object in slot `index`, if any.
    pub fn handle_at(&self, index: u32) -> Option<SlabHandle<T>> {
        match self.slots.get(index as usize)? {
            Slot::Occupied { generation, .. } => Some(SlabHandle {
                index,
                generation: *generation,
                _marker: PhantomData,
            }),
            Slot::Vacant { .. } => None,
        }
    }

    /// Number of slots ever used (an upper bound for slot indexes).
    pub fn slots_used(&self) -> u32 {
        self.slots.len() as u32
    }
}

impl<T> fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slab")
            .field("len", &self.len)
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut s = Slab::with_capacity(2);
        let a = s.insert("a").unwrap();
        let b = s.insert("b").unwrap();
        assert_eq!(s.insert("c"), Err("c"));
        assert_eq!(s.get(a), Some(&"a"));
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 1);
        *s.get_mut(b).unwrap() = "B";
        assert_eq!(s.get(b), Some(&"B"));
    }

    #[test]
    fn stale_handles_do_not_resolve_after_reuse() {
        let mut s = Slab::with_capacity(1);
        let a = s.insert(1u32).unwrap();
        s.remove(a);
        let b = s.insert(2u32).unwrap();
        assert_eq!(a.index(), b.index());
        assert_ne!(a, b);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get_mut(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(b), Some(&2));
    }

    #[test]
    fn free_list_is_lifo_and_iteration_skips_vacant() {
        let mut s = Slab::with_capacity(8);
        let hs: Vec<_> = (0..8).map(|i| s.insert(i).unwrap()).collect();
        s.remove(hs[2]);
        s.remove(hs[5]);
        assert_eq!(
            s.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![0, 1, 3, 4, 6, 7]
        );
        assert_eq!(s.insert(50).unwrap().index(), 5);
        assert_eq!(s.insert(20).unwrap().index(), 2);
        assert!(s.insert(99).is_err());
        assert_eq!(s.handles().count(), 8);
        assert_eq!(s.handle_at(5).and_then(|h| s.get(h)), Some(&50));
    }

    #[test]
    fn never_reallocates_after_construction() {
        let mut s = Slab::with_capacity(1000);
        let ptr = s.slots.as_ptr();
        let hs: Vec<_> = (0..1000).map(|i| s.insert(i).unwrap()).collect();
        for h in hs {
            s.remove(h);
        }
        for i in 0..1000 {
            s.insert(i).unwrap();
        }
        assert_eq!(ptr, s.slots.as_ptr());
    }
}
