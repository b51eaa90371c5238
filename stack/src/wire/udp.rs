//! UDP datagrams (RFC 768) over IPv4 and IPv6.
//!
//! The checksum covers a pseudo-header of the IP addresses (RFC 768; RFC 8200 §8.1 for
//! IPv6), so the checksum methods take the addresses. Over IPv4 a checksum of zero means
//! "none" and verifies; over IPv6 it is invalid (RFC 8200 §8.1). A computed checksum of
//! zero is sent as `0xffff` (RFC 768).
//!
//! **Panics:** after `new_checked` (or `check_len`) succeeds, no getter of [`UdpPacket`]
//! can panic. Setters, and getters on a view made with `new_unchecked` over a buffer too
//! short for the header or its length field, panic on out-of-bounds access.

use core::net::IpAddr;

use super::{checksum, Error, IpProtocol, Result};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// The folded (not complemented) pseudo-header sum for a transport segment of `length`
/// bytes: RFC 768 / RFC 9293 §3.1 for IPv4, RFC 8200 §8.1 for IPv6.
///
/// Returns `None` when `src` and `dst` are of different families: such a segment has
/// no valid checksum.
#[inline]
pub(crate) fn pseudo_header(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    length: u32,
) -> Option<u16> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(checksum::pseudo_header_v4(s, d, protocol.into(), length))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(checksum::pseudo_header_v6(s, d, protocol.into(), length))
        }
        _ => None,
    }
}

/// The pseudo-header sum used when filling a checksum. Mixed families are a caller bug
/// (asserted in debug builds); in release both addresses are taken as IPv6 (IPv4-mapped),
/// which gives a checksum that `verify_checksum` will refuse.
#[inline]
pub(crate) fn pseudo_header_for_fill(
    src: IpAddr,
    dst: IpAddr,
    protocol: IpProtocol,
    length: u32,
) -> u16 {
    debug_assert_eq!(
        src.is_ipv4(),
        dst.is_ipv4(),
        "pseudo-header addresses of mixed families"
    );
    pseudo_header(src, dst, protocol, length).unwrap_or_else(|| {
        let v6 = |a: IpAddr| match a {
            IpAddr::V4(a) => a.to_ipv6_mapped(),
            IpAddr::V6(a) => a,
        };
        checksum::pseudo_header_v6(v6(src), v6(dst), protocol.into(), length)
    })
}

/// A view over a UDP datagram: header and payload.
///
/// The buffer may run past the length field (it is usually the IP payload, which
/// should match); [`payload`](UdpPacket::payload) and the checksum stop at `len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps `buffer` without checking it (for emitting into a sized buffer).
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the header and the length field (RFC 768).
    ///
    /// Errors: [`Error::Truncated`] when the buffer is shorter than 8 bytes or than the
    /// length field; [`Error::BadLength`] when the length field is below 8 (this includes
    /// the zero length of an IPv6 jumbogram, RFC 2675, which is not supported).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if data.len() < len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// The destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// The length field: header plus payload, in bytes.
    #[inline]
    #[allow(clippy::len_without_is_empty)] // a wire field, not a container length
    pub fn len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload: bytes `8..len()`.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum verifies for a datagram from `src` to `dst`.
    ///
    /// A zero checksum verifies over IPv4 (the sender computed none, RFC 768) and fails
    /// over IPv6 (RFC 8200 §8.1). Addresses of mixed families never verify.
    #[inline]
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4() && dst.is_ipv4();
        }
        let len = self.len();
        let Some(pseudo) = pseudo_header(src, dst, IpProtocol::Udp, u32::from(len)) else {
            return false;
        };
        let data = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
        checksum::combine(&[pseudo, data]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let end = usize::from(self.len());
        &self.buffer.as_ref()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    #[inline]
    pub fn set_src_port(&mut self, port: u16) {
        put16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    #[inline]
    pub fn set_dst_port(&mut self, port: u16) {
        put16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the length field.
    #[inline]
    pub fn set_len(&mut self, len: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Computes the checksum over the pseudo-header and `len()` bytes, and stores it; a
    /// computed zero is stored as `0xffff` (RFC 768). `src` and `dst` must be of one
    /// family.
    #[inline]
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let len = self.len();
        let pseudo = pseudo_header_for_fill(src, dst, IpProtocol::Udp, u32::from(len));
        let data = checksum::data(&self.buffer.as_ref()[..usize::from(len)]);
        let value = !checksum::combine(&[pseudo, data]);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }

    /// The payload (`8..len()`), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// The parsed form of a UDP header. The payload stays in the packet
/// ([`UdpPacket::payload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses `packet`, a datagram from `src` to `dst`.
    ///
    /// Errors: those of [`UdpPacket::check_len`]; [`Error::BadChecksum`] when the checksum
    /// does not verify (a zero checksum is accepted over IPv4 only).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<UdpRepr> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// The length of the header: [`HEADER_LEN`].
    pub const fn header_len(&self) -> usize {
        HEADER_LEN
    }

    /// The length of a datagram with `payload_len` bytes of payload.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        HEADER_LEN + payload_len
    }

    /// Writes a datagram of `payload_len` bytes of payload into `packet`: the header,
    /// then the payload by calling `emit_payload` on the `payload_len`-byte payload slice
    /// (so the caller can build it in place), then the checksum over both.
    ///
    /// The buffer must hold at least `8 + payload_len` bytes, and `8 + payload_len` must
    /// fit the 16-bit length field. See [`emit_with_payload`](Self::emit_with_payload)
    /// for a payload that already exists as a slice.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
        payload_len: usize,
        emit_payload: impl FnOnce(&mut [u8]),
    ) {
        debug_assert!(payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len((HEADER_LEN + payload_len) as u16);
        emit_payload(packet.payload_mut());
        packet.fill_checksum(src, dst);
    }

    /// [`emit`](Self::emit) with the payload copied from `payload`.
    pub fn emit_with_payload<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
        payload: &[u8],
    ) {
        self.emit(packet, src, dst, payload.len(), |buf| {
            buf.copy_from_slice(payload)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    // A DNS query for example.com, 192.0.2.10:53000 -> 198.51.100.53:53, checksum 0x382b.
    const DATAGRAM: [u8; 37] = [
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0x38, 0x2b, // UDP
        0x3c, 0x5a, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00,
        0x01, // DNS
    ];

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 53));
    const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
    const DST6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x53));

    fn payload() -> &'static [u8] {
        &DATAGRAM[8..]
    }

    #[test]
    fn read_fields() {
        let packet = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(packet.src_port(), 53000);
        assert_eq!(packet.dst_port(), 53);
        assert_eq!(packet.len(), 37);
        assert_eq!(packet.checksum(), 0x382b);
        assert_eq!(packet.payload(), payload());
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(DST, Ipv4Addr::new(192, 0, 2, 11).into()));
        assert!(!packet.verify_checksum(SRC6, DST6));
        assert_eq!(packet.into_payload(), payload());
    }

    #[test]
    fn write_fields() {
        let mut buf = [0xa5u8; 37];
        let mut packet = UdpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(53000);
        packet.set_dst_port(53);
        packet.set_len(37);
        packet.payload_mut().copy_from_slice(payload());
        packet.fill_checksum(SRC, DST);
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn parse_repr() {
        let packet = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(
            UdpRepr::parse(&packet, SRC, DST),
            Ok(UdpRepr {
                src_port: 53000,
                dst_port: 53
            })
        );
    }

    #[test]
    fn emit_repr() {
        let repr = UdpRepr {
            src_port: 53000,
            dst_port: 53,
        };
        assert_eq!(repr.header_len(), 8);
        assert_eq!(repr.buffer_len(29), 37);
        let mut buf = [0xa5u8; 37];
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            SRC,
            DST,
            29,
            |p| p.copy_from_slice(payload()),
        );
        assert_eq!(buf, DATAGRAM);
        let mut buf = [0xa5u8; 37];
        repr.emit_with_payload(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            SRC,
            DST,
            payload(),
        );
        assert_eq!(buf, DATAGRAM);
    }

    #[test]
    fn ipv6_checksum() {
        let repr = UdpRepr {
            src_port: 546,
            dst_port: 547,
        };
        let mut buf = [0xa5u8; 37];
        repr.emit_with_payload(
            &mut UdpPacket::new_unchecked(&mut buf[..]),
            SRC6,
            DST6,
            payload(),
        );
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(packet.verify_checksum(SRC6, DST6));
        assert!(!packet.verify_checksum(SRC, DST));
        assert_eq!(UdpRepr::parse(&packet, SRC6, DST6), Ok(repr));
        assert_eq!(
            UdpRepr::parse(&packet, DST6, SRC6),
            Ok(repr),
            "the sum is symmetric"
        );
        let other: IpAddr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x54).into();
        assert_eq!(
            UdpRepr::parse(&packet, SRC6, other),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn zero_checksum_is_none_over_ipv4_and_invalid_over_ipv6() {
        let mut buf = DATAGRAM;
        buf[6..8].copy_from_slice(&[0, 0]);
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert!(packet.verify_checksum(SRC, DST));
        assert_eq!(
            UdpRepr::parse(&packet, SRC, DST),
            Ok(UdpRepr {
                src_port: 53000,
                dst_port: 53
            })
        );
        assert!(!packet.verify_checksum(SRC6, DST6));
        assert_eq!(UdpRepr::parse(&packet, SRC6, DST6), Err(Error::BadChecksum));
    }

    #[test]
    fn mixed_families_never_verify() {
        let packet = UdpPacket::new_checked(&DATAGRAM[..]).unwrap();
        assert!(!packet.verify_checksum(SRC, DST6));
        assert!(!packet.verify_checksum(SRC6, DST));
        let mut buf = DATAGRAM;
        buf[6..8].copy_from_slice(&[0, 0]);
        assert!(!UdpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(SRC, DST6));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        for (src, dst) in [(SRC, DST), (SRC6, DST6)] {
            // Choose the last payload word so that the checksum computes to zero.
            let mut buf = [0u8; 12];
            buf[..8].copy_from_slice(&[0x30, 0x39, 0x00, 0x07, 0x00, 0x0c, 0x00, 0x00]);
            let pseudo = pseudo_header(src, dst, IpProtocol::Udp, 12).unwrap();
            let sum = checksum::combine(&[pseudo, checksum::data(&buf)]);
            buf[10..12].copy_from_slice(&(!sum).to_be_bytes());
            let mut packet = UdpPacket::new_checked(&mut buf[..]).unwrap();
            packet.fill_checksum(src, dst);
            assert_eq!(packet.checksum(), 0xffff);
            assert!(packet.verify_checksum(src, dst));
        }
    }

    #[test]
    fn trailing_bytes_beyond_len_are_ignored() {
        let mut buf = [0u8; 46];
        buf[..37].copy_from_slice(&DATAGRAM);
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.payload(), payload());
        assert!(packet.verify_checksum(SRC, DST));
    }

    #[test]
    fn check_len_errors() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]).err(),
                Some(Error::Truncated)
            );
            assert_eq!(
                UdpRepr::parse(&UdpPacket::new_unchecked(&DATAGRAM[..len]), SRC, DST),
                Err(Error::Truncated)
            );
        }
        for len in HEADER_LEN..DATAGRAM.len() {
            assert_eq!(
                UdpPacket::new_checked(&DATAGRAM[..len]).err(),
                Some(Error::Truncated)
            );
        }
        for bad in 0..8u16 {
            let mut buf = DATAGRAM;
            buf[4..6].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(
                UdpPacket::new_checked(&buf[..]).err(),
                Some(Error::BadLength)
            );
        }
        let mut buf = DATAGRAM;
        buf[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).unwrap().payload(),
            &[] as &[u8]
        );
        buf[4..6].copy_from_slice(&38u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&buf[..]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn bad_checksum_is_refused() {
        let mut buf = DATAGRAM;
        buf[20] ^= 0x20; // a payload byte
        let packet = UdpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(UdpRepr::parse(&packet, SRC, DST), Err(Error::BadChecksum));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(packet) = UdpPacket::new_checked(&data[..]) {
                let _ = (packet.src_port(), packet.dst_port(), packet.len(), packet.checksum());
                let _ = packet.payload();
                let _ = (packet.verify_checksum(SRC, DST), packet.verify_checksum(SRC6, DST6));
                let _ = UdpRepr::parse(&packet, SRC6, DST6);
            }
            let _ = UdpRepr::parse(&UdpPacket::new_unchecked(&data[..]), SRC, DST);
        }

        #[test]
        fn repr_round_trips(
            sp in any::<u16>(),
            dp in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            v6 in any::<bool>(),
        ) {
            let (src, dst) = if v6 { (SRC6, DST6) } else { (SRC, DST) };
            let repr = UdpRepr { src_port: sp, dst_port: dp };
            let mut buf = vec![0xa5u8; repr.buffer_len(payload.len())];
            repr.emit_with_payload(&mut UdpPacket::new_unchecked(&mut buf[..]), src, dst, &payload);
            let packet = UdpPacket::new_checked(&buf[..]).unwrap();
            prop_assert_ne!(packet.checksum(), 0);
            prop_assert_eq!(UdpRepr::parse(&packet, src, dst), Ok(repr));
            prop_assert_eq!(packet.payload(), &payload[..]);
        }
    }
}
