//! A ring buffer of bytes: the send and receive buffers of a connection.
//!
//! Allocated once at connection setup; nothing here allocates afterwards. Besides queue
//! operations it reads at an offset into the unread bytes (retransmission) and writes
//! at an offset into the free space (out-of-order data, committed later).
//!
//! The bytes live on the heap, or in storage the caller supplies ([`RingStorage`]: the
//! dataplane puts an application's connection buffers in memory it shares with the
//! application, so the application writes and reads them in place). The ring's indices
//! are always its own: storage only holds bytes.

/// Bytes a ring may live in instead of its own heap allocation.
///
/// Whoever implements this for memory shared with another party (another process)
/// takes care that the party only touches the ring's free part (send side) or held
/// part (receive side) it was told about; the ring never trusts anything read from the
/// storage beyond the bytes themselves.
pub trait RingStorage: Send + std::fmt::Debug {
    /// The bytes (the ring's capacity is their length; it must not change).
    fn bytes(&self) -> &[u8];
    /// The bytes, to write.
    fn bytes_mut(&mut self) -> &mut [u8];
}

/// Where a ring's bytes are.
#[derive(Debug)]
enum Buf {
    Heap(Box<[u8]>),
    External(Box<dyn RingStorage>),
}

impl Default for Buf {
    fn default() -> Self {
        Buf::Heap(Box::default())
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Heap(b) => b,
            Buf::External(s) => s.bytes(),
        }
    }
}

impl std::ops::DerefMut for Buf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Heap(b) => b,
            Buf::External(s) => s.bytes_mut(),
        }
    }
}

/// A fixed-capacity byte ring.
#[derive(Debug, Default)]
pub struct RingBuffer {
    buf: Buf,
    head: usize,
    len: usize,
}

impl RingBuffer {
    /// A ring of `capacity` bytes (zero: none allocated).
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            buf: Buf::Heap(vec![0; capacity].into_boxed_slice()),
            head: 0,
            len: 0,
        }
    }

    /// An empty ring in `storage` (its capacity is the storage's length).
    pub fn with_storage(storage: Box<dyn RingStorage>) -> Self {
        RingBuffer {
            buf: Buf::External(storage),
            head: 0,
            len: 0,
        }
    }

    /// Moves the ring into `storage`: every byte of the old storage (held bytes and
    /// bytes written ahead of them) is copied so that the front lands at offset 0, so
    /// afterwards the byte at stream position `p` (counted from the front at the move)
    /// lies at offset `p % capacity`. Refused, handing `storage` back, when it is
    /// smaller than the current capacity.
    pub fn move_to_storage(
        &mut self,
        mut storage: Box<dyn RingStorage>,
    ) -> Result<(), Box<dyn RingStorage>> {
        let cap = self.buf.len();
        if storage.bytes().len() < cap {
            return Err(storage);
        }
        {
            let dst = storage.bytes_mut();
            let (a, b) = (&self.buf[self.head..], &self.buf[..self.head]);
            dst[..a.len()].copy_from_slice(a);
            dst[a.len()..a.len() + b.len()].copy_from_slice(b);
        }
        self.buf = Buf::External(storage);
        self.head = 0;
        Ok(())
    }

    /// Offset of the front (the oldest held byte) in the storage.
    #[inline]
    pub fn head_offset(&self) -> usize {
        self.head
    }

    /// Bytes held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no byte is held.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Free bytes.
    #[inline]
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    #[inline]
    fn wrap(&self, i: usize) -> usize {
        let cap = self.buf.len();
        if i >= cap {
            i - cap
        } else {
            i
        }
    }

    /// Appends what fits of `data`; returns the bytes taken.
    pub fn enqueue(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.len += n;
        n
    }

    /// Writes `data` into the free space `offset` bytes past the held bytes, without
    /// making it readable; returns how many bytes fit.
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let free = self.free();
        if offset >= free {
            return 0;
        }
        let n = data.len().min(free - offset);
        let cap = self.buf.len();
        let start = self.wrap(self.head + self.len + offset);
        let first = n.min(cap - start);
        self.buf[start..start + first].copy_from_slice(&data[..first]);
        self.buf[..n - first].copy_from_slice(&data[first..n]);
        n
    }

    /// Makes `n` bytes written by [`write_at`](Self::write_at) at offset 0 readable.
    pub fn commit(&mut self, n: usize) {
        debug_assert!(n <= self.free());
        self.len += n.min(self.free());
    }

    /// Removes up to `out.len()` bytes into `out`; returns how many.
    pub fn dequeue(&mut self, out: &mut [u8]) -> usize {
        let (a, b) = self.get(0, out.len());
        let (na, nb) = (a.len(), b.len());
        out[..na].copy_from_slice(a);
        out[na..na + nb].copy_from_slice(b);
        self.discard(na + nb);
        na + nb
    }

    /// Drops up to `n` bytes from the front.
    pub fn discard(&mut self, n: usize) {
        let n = n.min(self.len);
        self.head = self.wrap(self.head + n);
        // No rewind to 0 when empty: bytes written ahead of the tail must stay put.
        self.len -= n;
    }

    /// Up to `len` held bytes starting `offset` bytes from the front, as two slices.
    pub fn get(&self, offset: usize, len: usize) -> (&[u8], &[u8]) {
        if offset >= self.len {
            return (&[], &[]);
        }
        let n = len.min(self.len - offset);
        let cap = self.buf.len();
        let start = self.wrap(self.head + offset);
        let first = n.min(cap - start);
        (&self.buf[start..start + first], &self.buf[..n - first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_and_writes_ahead() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.enqueue(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.dequeue(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.enqueue(b"ghijklmn"), 6);
        assert_eq!(r.len(), 8);
        let (a, b) = r.get(1, 10);
        assert_eq!([a, b].concat(), b"fghijkl");
        let mut all = [0u8; 8];
        assert_eq!(r.dequeue(&mut all), 8);
        assert_eq!(&all, b"efghijkl");
        // Out-of-order write then commit.
        assert_eq!(r.write_at(3, b"xyz"), 3);
        assert_eq!(r.write_at(0, b"uvw"), 3);
        r.commit(6);
        let mut out = [0u8; 6];
        r.dequeue(&mut out);
        assert_eq!(&out, b"uvwxyz");
        assert_eq!(r.write_at(8, b"a"), 0);
    }

    #[derive(Debug)]
    struct Outside(Vec<u8>);

    impl RingStorage for Outside {
        fn bytes(&self) -> &[u8] {
            &self.0
        }
        fn bytes_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
    }

    #[test]
    fn moves_into_caller_storage_front_first() {
        let mut r = RingBuffer::new(8);
        r.enqueue(b"abcdef");
        let mut out = [0u8; 5];
        r.dequeue(&mut out);
        r.enqueue(b"ghij"); // wraps: held "fghij"
        assert_eq!(r.write_at(1, b"Z"), 1); // ahead of the tail
        assert!(r.move_to_storage(Box::new(Outside(vec![0; 4]))).is_err());
        assert!(r.move_to_storage(Box::new(Outside(vec![0; 16]))).is_ok());
        assert_eq!((r.capacity(), r.head_offset(), r.len()), (16, 0, 5));
        let (a, b) = r.get(0, 16);
        assert_eq!([a, b].concat(), b"fghij");
        assert_eq!(r.write_at(0, b"Y"), 1);
        r.commit(2);
        let mut all = [0u8; 7];
        assert_eq!(r.dequeue(&mut all), 7);
        assert_eq!(&all, b"fghijYZ");
        let mut s = RingBuffer::with_storage(Box::new(Outside(vec![0; 4])));
        assert_eq!(s.enqueue(b"hello"), 4);
    }

    #[test]
    fn bytes_written_ahead_survive_emptying() {
        let mut r = RingBuffer::new(8);
        r.enqueue(b"abc");
        assert_eq!(r.write_at(2, b"xy"), 2);
        let mut out = [0u8; 3];
        r.dequeue(&mut out);
        assert!(r.is_empty());
        assert_eq!(r.write_at(0, b"12"), 2);
        r.commit(4);
        let mut out = [0u8; 4];
        r.dequeue(&mut out);
        assert_eq!(&out, b"12xy");
    }
}
