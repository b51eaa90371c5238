//! Ethernet II frames and IEEE 802.1Q / 802.1ad VLAN tags.
//!
//! [`EthernetFrame`] is a view over an Ethernet II (DIX) header: destination, source,
//! EtherType (IEEE 802.3 clause 3.2.6, type interpretation). [`VlanHeader`] is a view over
//! the four bytes of an IEEE 802.1Q tag that follow its TPID: the TCI and the inner
//! EtherType. [`parse_l2`] is the per-packet fast path: it walks the header and up to two
//! stacked tags in one pass and says where the L3 header starts.
//!
//! **Panics:** after `new_checked` (or `check_len`) succeeds, no getter of a view in this
//! module can panic. Setters, and any accessor on a view made with `new_unchecked` over a
//! too-short buffer, panic on out-of-bounds access; size the buffer with
//! [`EthernetRepr::buffer_len`] / [`HEADER_LEN`] when emitting.
//!
//! Buffers never hold the frame check sequence: NICs strip it on receive and append it
//! on transmit.

use super::{Error, EtherType, EthernetAddress, Result};

/// Length of an untagged Ethernet II header: two addresses and the EtherType.
pub const HEADER_LEN: usize = 14;

/// Length of the part of an 802.1Q tag that follows the TPID (TCI and inner EtherType).
pub const VLAN_HEADER_LEN: usize = 4;

/// The most stacked VLAN tags [`parse_l2`] accepts (802.1ad S-tag plus 802.1Q C-tag).
pub const MAX_VLAN_TAGS: usize = 2;

/// The TPID of an IEEE 802.1Q customer tag.
pub const TPID_8021Q: u16 = 0x8100;

/// The TPID of an IEEE 802.1ad service tag (QinQ outer tag).
pub const TPID_8021AD: u16 = 0x88a8;

/// Mask of the VLAN identifier in a TCI (IEEE 802.1Q §9.6).
pub const VID_MASK: u16 = 0x0fff;

mod field {
    use core::ops::{Range, RangeFrom};

    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const PAYLOAD: RangeFrom<usize> = 14..;

    // Offsets inside a VLAN tag body (after the TPID).
    pub const VLAN_TCI: Range<usize> = 0..2;
    pub const VLAN_ETHERTYPE: Range<usize> = 2..4;
    pub const VLAN_PAYLOAD: RangeFrom<usize> = 4..;
}

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

/// A view over an Ethernet II frame (header and payload, no FCS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Length of the header, as [`HEADER_LEN`].
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Wraps `buffer` without checking its length (for emitting into a sized buffer).
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Fails with [`Error::Truncated`] when the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::DESTINATION])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SOURCE])
    }

    /// The outer EtherType field (for a tagged frame, the TPID; see [`parse_l2`]).
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buffer.as_ref()[field::ETHERTYPE]))
    }

    /// Everything after the 14-byte header (for a tagged frame, the tag comes first).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(addr.as_bytes());
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(addr.as_bytes());
    }

    /// Sets the outer EtherType field.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        put16(
            &mut self.buffer.as_mut()[field::ETHERTYPE],
            ethertype.into(),
        );
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }
}

/// A view over the body of an IEEE 802.1Q tag: the 2-byte TCI and the 2-byte EtherType
/// that follow the TPID (`0x8100` or `0x88a8`), then the payload.
///
/// TCI layout (IEEE 802.1Q §9.6): PCP (3 bits), DEI (1 bit), VID (12 bits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanHeader<T> {
    /// Length of the tag body, as [`VLAN_HEADER_LEN`].
    pub const HEADER_LEN: usize = VLAN_HEADER_LEN;

    /// Wraps `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanHeader { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole tag body.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Fails with [`Error::Truncated`] when the buffer is shorter than [`VLAN_HEADER_LEN`].
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < VLAN_HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole tag control information field.
    #[inline]
    pub fn tci(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::VLAN_TCI])
    }

    /// The priority code point (0..=7).
    #[inline]
    pub fn pcp(&self) -> u8 {
        (self.tci() >> 13) as u8
    }

    /// The drop eligible indicator.
    #[inline]
    pub fn dei(&self) -> bool {
        self.tci() & 0x1000 != 0
    }

    /// The VLAN identifier (0..=4095; 0 means a priority-tagged frame, IEEE 802.1Q §9.6).
    #[inline]
    pub fn vlan_id(&self) -> u16 {
        self.tci() & VID_MASK
    }

    /// The EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(be16(&self.buffer.as_ref()[field::VLAN_ETHERTYPE]))
    }

    /// Everything after the tag body.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::VLAN_PAYLOAD]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VlanHeader<T> {
    /// Sets the whole tag control information field.
    #[inline]
    pub fn set_tci(&mut self, tci: u16) {
        put16(&mut self.buffer.as_mut()[field::VLAN_TCI], tci);
    }

    /// Sets the priority code point; only the low 3 bits of `pcp` are used.
    #[inline]
    pub fn set_pcp(&mut self, pcp: u8) {
        let tci = (self.tci() & 0x1fff) | (u16::from(pcp & 0x7) << 13);
        self.set_tci(tci);
    }

    /// Sets the drop eligible indicator.
    #[inline]
    pub fn set_dei(&mut self, dei: bool) {
        let tci = (self.tci() & !0x1000) | if dei { 0x1000 } else { 0 };
        self.set_tci(tci);
    }

    /// Sets the VLAN identifier; only the low 12 bits of `vlan_id` are used.
    #[inline]
    pub fn set_vlan_id(&mut self, vlan_id: u16) {
        let tci = (self.tci() & !VID_MASK) | (vlan_id & VID_MASK);
        self.set_tci(tci);
    }

    /// Sets the EtherType of what follows the tag.
    #[inline]
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        put16(
            &mut self.buffer.as_mut()[field::VLAN_ETHERTYPE],
            ethertype.into(),
        );
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::VLAN_PAYLOAD]
    }
}

/// What the link layer of a received frame says, as found by [`parse_l2`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct L2Info {
    /// The destination address.
    pub dst: EthernetAddress,
    /// The source address.
    pub src: EthernetAddress,
    /// The VID of the outermost tag, if the frame is tagged (`Some(0)` for a
    /// priority-tagged frame).
    pub vlan_id: Option<u16>,
    /// The innermost EtherType: the protocol of the L3 header.
    pub ethertype: EtherType,
    /// Where the L3 header starts in the frame (14, 18 or 22).
    pub payload_offset: usize,
}

/// Parses the Ethernet II header of `frame` and at most [`MAX_VLAN_TAGS`] stacked tags
/// (TPID `0x8100` or `0x88a8`, in any order).
///
/// Errors: [`Error::Truncated`] when the header or a tag is cut short;
/// [`Error::Unsupported`] for a third stacked tag. An IEEE 802.3 length field (a value
/// below `0x0600`) is not an error: it comes back as `EtherType::Unknown(len)` for the
/// caller to drop as an unknown protocol.
#[inline]
pub fn parse_l2(frame: &[u8]) -> Result<L2Info> {
    if frame.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let dst = EthernetAddress::from_bytes(&frame[field::DESTINATION]);
    let src = EthernetAddress::from_bytes(&frame[field::SOURCE]);
    let mut ethertype = be16(&frame[field::ETHERTYPE]);
    let mut offset = HEADER_LEN;
    let mut vlan_id = None;
    let mut tags = 0;
    while ethertype == TPID_8021Q || ethertype == TPID_8021AD {
        if tags == MAX_VLAN_TAGS {
            return Err(Error::Unsupported);
        }
        let Some(tag) = frame.get(offset..offset + VLAN_HEADER_LEN) else {
            return Err(Error::Truncated);
        };
        if vlan_id.is_none() {
            vlan_id = Some(be16(&tag[field::VLAN_TCI]) & VID_MASK);
        }
        ethertype = be16(&tag[field::VLAN_ETHERTYPE]);
        offset += VLAN_HEADER_LEN;
        tags += 1;
    }
    Ok(L2Info {
        dst,
        src,
        vlan_id,
        ethertype: EtherType::from(ethertype),
        payload_offset: offset,
    })
}

/// The parsed form of an untagged Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// The source address.
    pub src_addr: EthernetAddress,
    /// The destination address.
    pub dst_addr: EthernetAddress,
    /// The EtherType field.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Reads the header of `frame`; fails only when it is truncated.
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<EthernetRepr> {
        frame.check_len()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            ethertype: frame.ethertype(),
        })
    }

    /// The length of the header this emits: [`HEADER_LEN`].
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `frame`, which must be at least [`HEADER_LEN`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut EthernetFrame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        frame.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DST: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const SRC: EthernetAddress = EthernetAddress([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);

    // An untagged frame carrying the first bytes of an IPv4 header.
    const FRAME: [u8; 22] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // destination
        0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // source
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00, // payload
    ];

    // The same frame with an 802.1Q tag: PCP 5, DEI 0, VID 100.
    const TAGGED: [u8; 26] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02, //
        0x81, 0x00, 0xa0, 0x64, // 802.1Q, TCI
        0x08, 0x00, // IPv4
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00,
    ];

    // QinQ: an 802.1ad S-tag (VID 200, DEI set) around an 802.1Q C-tag (VID 100) around IPv6.
    const DOUBLE_TAGGED: [u8; 30] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x42, 0xac, 0x11, 0x00, 0x02, //
        0x88, 0xa8, 0x10, 0xc8, // 802.1ad, TCI
        0x81, 0x00, 0x00, 0x64, // 802.1Q, TCI
        0x86, 0xdd, // IPv6
        0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x3a, 0x40,
    ];

    #[test]
    fn read_fields() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.dst_addr(), DST);
        assert_eq!(frame.src_addr(), SRC);
        assert_eq!(frame.ethertype(), EtherType::Ipv4);
        assert_eq!(frame.payload(), &FRAME[14..]);
        assert_eq!(frame.into_payload(), &FRAME[14..]);
    }

    #[test]
    fn write_fields() {
        let mut buf = [0xa5u8; 22];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        frame.set_dst_addr(DST);
        frame.set_src_addr(SRC);
        frame.set_ethertype(EtherType::Ipv4);
        frame.payload_mut().copy_from_slice(&FRAME[14..]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn parse_repr() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        let repr = EthernetRepr::parse(&frame).unwrap();
        assert_eq!(
            repr,
            EthernetRepr {
                src_addr: SRC,
                dst_addr: DST,
                ethertype: EtherType::Ipv4
            }
        );
    }

    #[test]
    fn emit_repr() {
        let repr = EthernetRepr {
            src_addr: SRC,
            dst_addr: DST,
            ethertype: EtherType::Ipv4,
        };
        assert_eq!(repr.buffer_len(), 14);
        let mut buf = [0xa5u8; 22];
        let mut frame = EthernetFrame::new_unchecked(&mut buf[..]);
        repr.emit(&mut frame);
        frame.payload_mut().copy_from_slice(&FRAME[14..]);
        assert_eq!(buf, FRAME);
    }

    #[test]
    fn truncated_headers_are_refused() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..len]).err(),
                Some(Error::Truncated)
            );
            assert_eq!(parse_l2(&FRAME[..len]).err(), Some(Error::Truncated));
            let frame = EthernetFrame::new_unchecked(&FRAME[..len]);
            assert_eq!(EthernetRepr::parse(&frame).err(), Some(Error::Truncated));
        }
        assert!(EthernetFrame::new_checked(&FRAME[..HEADER_LEN]).is_ok());
        for len in 0..VLAN_HEADER_LEN {
            assert_eq!(
                VlanHeader::new_checked(&TAGGED[14..14 + len]).err(),
                Some(Error::Truncated)
            );
        }
    }

    #[test]
    fn parse_l2_untagged() {
        let info = parse_l2(&FRAME).unwrap();
        assert_eq!(
            info,
            L2Info {
                dst: DST,
                src: SRC,
                vlan_id: None,
                ethertype: EtherType::Ipv4,
                payload_offset: 14
            }
        );
    }

    #[test]
    fn parse_l2_single_tag() {
        let info = parse_l2(&TAGGED).unwrap();
        assert_eq!(info.vlan_id, Some(100));
        assert_eq!(info.ethertype, EtherType::Ipv4);
        assert_eq!(info.payload_offset, 18);
        assert_eq!(info.dst, DST);
        assert_eq!(info.src, SRC);
        assert_eq!(&TAGGED[info.payload_offset..], &FRAME[14..]);
        // The outer field of the frame view is the TPID.
        let frame = EthernetFrame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::Vlan);
    }

    #[test]
    fn parse_l2_double_tag() {
        let info = parse_l2(&DOUBLE_TAGGED).unwrap();
        assert_eq!(info.vlan_id, Some(200), "the outermost VID");
        assert_eq!(info.ethertype, EtherType::Ipv6);
        assert_eq!(info.payload_offset, 22);
        let frame = EthernetFrame::new_checked(&DOUBLE_TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), EtherType::QinQ);
        let outer = VlanHeader::new_checked(frame.payload()).unwrap();
        assert_eq!((outer.vlan_id(), outer.dei(), outer.pcp()), (200, true, 0));
        assert_eq!(outer.ethertype(), EtherType::Vlan);
        let inner = VlanHeader::new_checked(outer.payload()).unwrap();
        assert_eq!((inner.vlan_id(), inner.dei(), inner.pcp()), (100, false, 0));
        assert_eq!(inner.ethertype(), EtherType::Ipv6);
        assert_eq!(inner.payload(), &DOUBLE_TAGGED[22..]);
    }

    #[test]
    fn parse_l2_truncated_tags() {
        // Cut inside the first and inside the second tag.
        for len in 14..18 {
            assert_eq!(parse_l2(&TAGGED[..len]), Err(Error::Truncated), "len {len}");
        }
        for len in 14..22 {
            assert_eq!(
                parse_l2(&DOUBLE_TAGGED[..len]),
                Err(Error::Truncated),
                "len {len}"
            );
        }
        // A tag with nothing after it is a valid (empty) L3 payload.
        assert_eq!(parse_l2(&TAGGED[..18]).unwrap().payload_offset, 18);
    }

    #[test]
    fn parse_l2_refuses_a_third_tag() {
        let mut frame = DOUBLE_TAGGED;
        frame[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(parse_l2(&frame), Err(Error::Unsupported));
    }

    #[test]
    fn parse_l2_reports_8023_length_as_unknown() {
        let mut frame = FRAME;
        frame[12..14].copy_from_slice(&[0x00, 0x08]);
        assert_eq!(parse_l2(&frame).unwrap().ethertype, EtherType::Unknown(8));
    }

    #[test]
    fn vlan_read_fields() {
        let tag = VlanHeader::new_checked(&TAGGED[14..]).unwrap();
        assert_eq!(tag.tci(), 0xa064);
        assert_eq!(tag.pcp(), 5);
        assert!(!tag.dei());
        assert_eq!(tag.vlan_id(), 100);
        assert_eq!(tag.ethertype(), EtherType::Ipv4);
        assert_eq!(tag.payload(), &FRAME[14..]);
    }

    #[test]
    fn vlan_write_fields() {
        let mut buf = [0xa5u8; 12];
        let mut tag = VlanHeader::new_unchecked(&mut buf[..]);
        tag.set_tci(0);
        tag.set_pcp(5);
        tag.set_dei(true);
        tag.set_vlan_id(100);
        tag.set_dei(false);
        tag.set_ethertype(EtherType::Ipv4);
        tag.payload_mut().copy_from_slice(&FRAME[14..]);
        assert_eq!(&buf[..], &TAGGED[14..]);

        // Setters mask out-of-range values and leave the other subfields alone.
        let mut tag = VlanHeader::new_unchecked([0u8; 4]);
        tag.set_vlan_id(0xffff);
        assert_eq!(tag.tci(), 0x0fff);
        tag.set_pcp(0xff);
        assert_eq!(tag.tci(), 0xefff);
        tag.set_dei(true);
        assert_eq!(tag.tci(), 0xffff);
        tag.set_vlan_id(7);
        assert_eq!((tag.pcp(), tag.dei(), tag.vlan_id()), (7, true, 7));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(frame) = EthernetFrame::new_checked(&data[..]) {
                let _ = (frame.dst_addr(), frame.src_addr(), frame.ethertype(), frame.payload());
                let repr = EthernetRepr::parse(&frame).unwrap();
                prop_assert_eq!(repr.ethertype, frame.ethertype());
            }
            if let Ok(tag) = VlanHeader::new_checked(&data[..]) {
                let _ = (tag.tci(), tag.pcp(), tag.dei(), tag.vlan_id(), tag.ethertype());
                let _ = tag.payload();
            }
            if let Ok(info) = parse_l2(&data) {
                prop_assert!(info.payload_offset <= data.len());
                prop_assert!(matches!(info.payload_offset, 14 | 18 | 22));
            }
        }

        #[test]
        fn repr_round_trips(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(), ty in any::<u16>()) {
            let repr = EthernetRepr {
                dst_addr: EthernetAddress(dst),
                src_addr: EthernetAddress(src),
                ethertype: EtherType::from(ty),
            };
            let mut buf = [0xa5u8; HEADER_LEN];
            repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
            prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()), Ok(repr));
        }
    }
}
