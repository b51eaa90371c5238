//! IPv6 (RFC 8200): the fixed header, extension headers and their options, and a walker
//! over the extension header chain for traffic that ends here.
//!
//! [`Ipv6Packet`], [`Ipv6ExtHeader`] and [`Ipv6FragmentHeader`] are views over a buffer:
//! once `new_checked` has returned `Ok`, **no getter of that view can panic**, whatever the
//! bytes. The forwarding path uses [`Ipv6Packet`] directly (hop limit rewrite in place, no
//! checksum to fix in IPv6); [`Ipv6Repr`] is for packets that end or start here.
//!
//! [`walk_ext_headers`] finds the upper-layer header behind the extension headers of a
//! packet delivered locally and reports what the caller must act upon: fragmentation, a
//! hop-by-hop header, an option that asks for the packet to be discarded, a routing header
//! with segments left.

use core::net::Ipv6Addr;

use crate::wire::{Error, IpProtocol, Result};

mod field {
    use core::ops::Range;

    /// Version (4 bits), traffic class (8 bits), flow label (20 bits).
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;

    /// Extension headers (RFC 8200 §4.3-§4.6): next header, then a length.
    pub const EXT_NXT_HDR: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// Routing header (RFC 8200 §4.4).
    pub const ROUTING_TYPE: usize = 2;
    pub const SEGMENTS_LEFT: usize = 3;
    /// Fragment header (RFC 8200 §4.5).
    pub const FRAG_OFF_M: Range<usize> = 2..4;
    pub const FRAG_IDENT: Range<usize> = 4..8;
}

fn read_u16(b: &[u8], r: core::ops::Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

fn read_u32(b: &[u8], r: core::ops::Range<usize>) -> u32 {
    u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

fn read_addr(b: &[u8], r: core::ops::Range<usize>) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(&b[r]);
    Ipv6Addr::from(o)
}

/// A view of an IPv6 packet (fixed header and payload) in a buffer.
///
/// After [`Ipv6Packet::new_checked`] no getter panics. The buffer may be longer than the
/// packet (Ethernet padding); [`Ipv6Packet::payload`] stops at the payload length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// The length of the fixed header (RFC 8200 §3).
    pub const HEADER_LEN: usize = 40;

    /// Wraps `buffer` without checking it; for emitting into a buffer the caller sized.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` and checks that the header and the payload it announces fit.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the fixed header and `payload_len` bytes after it.
    ///
    /// A payload length of zero with a Jumbo Payload option (RFC 2675) is not supported:
    /// such a packet reads as having an empty payload.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        if Self::HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (6 for IPv6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW.start] >> 4
    }

    /// The traffic class (DSCP and ECN, RFC 8200 §7).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        let w = read_u32(self.buffer.as_ref(), field::VER_TC_FLOW);
        (w >> 20) as u8
    }

    /// The 20-bit flow label (RFC 8200 §6).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// The payload length: the bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The type of the header after the fixed header.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::NXT_HDR])
    }

    /// The hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::SRC_ADDR)
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        read_addr(self.buffer.as_ref(), field::DST_ADDR)
    }

    /// The packet length, fixed header included (`40 + payload_len`).
    #[inline]
    pub fn total_len(&self) -> usize {
        Self::HEADER_LEN + usize::from(self.payload_len())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The payload: `payload_len` bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &self.buffer.as_ref()[Self::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Sets the version field.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_TC_FLOW.start];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the traffic class.
    #[inline]
    pub fn set_traffic_class(&mut self, tc: u8) {
        let b = self.buffer.as_mut();
        b[0] = (b[0] & 0xf0) | (tc >> 4);
        b[1] = (b[1] & 0x0f) | (tc << 4);
    }

    /// Sets the flow label (the low 20 bits of `label`).
    #[inline]
    pub fn set_flow_label(&mut self, label: u32) {
        let b = self.buffer.as_mut();
        b[1] = (b[1] & 0xf0) | ((label >> 16) as u8 & 0x0f);
        b[2] = (label >> 8) as u8;
        b[3] = label as u8;
    }

    /// Sets the payload length.
    #[inline]
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, next: IpProtocol) {
        self.buffer.as_mut()[field::NXT_HDR] = next.into();
    }

    /// Sets the hop limit.
    #[inline]
    pub fn set_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = hop_limit;
    }

    /// Decrements the hop limit in place, stopping at zero. IPv6 has no header checksum,
    /// so nothing else changes. The caller checks `hop_limit() > 1` first and answers a
    /// packet that would reach zero with Time Exceeded instead (RFC 8200 §3, RFC 4443 §3.3).
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        let b = &mut self.buffer.as_mut()[field::HOP_LIMIT];
        *b = b.saturating_sub(1);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload, mutable (`payload_len` bytes after the fixed header).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = Self::HEADER_LEN + usize::from(self.payload_len());
        &mut self.buffer.as_mut()[Self::HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Ipv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fixed IPv6 header of a packet that ends or starts here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// The header after the fixed header.
    pub next_header: IpProtocol,
    /// Bytes after the fixed header.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Parses the fixed header; the version must be 6 (RFC 8200 §3).
    ///
    /// Traffic class and flow label are not kept: [`Ipv6Repr::emit`] writes them as zero.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Ipv6Packet<&T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.payload_len()),
            hop_limit: packet.hop_limit(),
        })
    }

    /// The length of the emitted header (40).
    pub const fn buffer_len(&self) -> usize {
        Ipv6Packet::<&[u8]>::HEADER_LEN
    }

    /// Writes the fixed header into the first 40 bytes of `packet`, with traffic class
    /// and flow label zero. `payload_len` must fit in 16 bits (no jumbograms): larger
    /// values are written as `u16::MAX`.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than 40 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        packet.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
        packet.set_payload_len(u16::try_from(self.payload_len).unwrap_or(u16::MAX));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

/// A view of a Hop-by-Hop Options, Routing or Destination Options header
/// (RFC 8200 §4.3, §4.4, §4.6): next header, length in 8-octet units not counting the
/// first 8 octets, then data.
///
/// After [`Ipv6ExtHeader::new_checked`] no getter panics. The buffer may continue past the
/// header; [`Ipv6ExtHeader::header_len`] says where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6ExtHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6ExtHeader<T> {
    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6ExtHeader { buffer }
    }

    /// Wraps `buffer` and checks that the whole header fits.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the two fixed bytes and `header_len` bytes in all.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < 2 || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The type of the header that follows.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::EXT_NXT_HDR])
    }

    /// The raw Hdr Ext Len field (8-octet units beyond the first 8 octets).
    #[inline]
    pub fn hdr_ext_len(&self) -> u8 {
        self.buffer.as_ref()[field::EXT_LEN]
    }

    /// The header length in bytes: `(hdr_ext_len + 1) * 8`, between 8 and 2048.
    #[inline]
    pub fn header_len(&self) -> usize {
        (usize::from(self.hdr_ext_len()) + 1) * 8
    }

    /// The Routing Type of a Routing header (RFC 8200 §4.4).
    #[inline]
    pub fn routing_type(&self) -> u8 {
        self.buffer.as_ref()[field::ROUTING_TYPE]
    }

    /// The Segments Left field of a Routing header (RFC 8200 §4.4).
    #[inline]
    pub fn segments_left(&self) -> u8 {
        self.buffer.as_ref()[field::SEGMENTS_LEFT]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6ExtHeader<&'a T> {
    /// The bytes after the first two, up to `header_len`: the options of a Hop-by-Hop or
    /// Destination Options header, the type-specific data of a Routing header.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[2..self.header_len()]
    }

    /// The options of a Hop-by-Hop or Destination Options header.
    #[inline]
    pub fn options(&self) -> Ipv6OptionsIter<'a> {
        Ipv6OptionsIter::new(self.data())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6ExtHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, next: IpProtocol) {
        self.buffer.as_mut()[field::EXT_NXT_HDR] = next.into();
    }

    /// Sets the raw Hdr Ext Len field (8-octet units beyond the first 8 octets).
    #[inline]
    pub fn set_hdr_ext_len(&mut self, len: u8) {
        self.buffer.as_mut()[field::EXT_LEN] = len;
    }

    /// Sets the Routing Type of a Routing header.
    #[inline]
    pub fn set_routing_type(&mut self, kind: u8) {
        self.buffer.as_mut()[field::ROUTING_TYPE] = kind;
    }

    /// Sets the Segments Left field of a Routing header.
    #[inline]
    pub fn set_segments_left(&mut self, left: u8) {
        self.buffer.as_mut()[field::SEGMENTS_LEFT] = left;
    }

    /// The data after the first two bytes, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[2..end]
    }
}

/// A view of a Fragment header (RFC 8200 §4.5), always 8 bytes.
///
/// After [`Ipv6FragmentHeader::new_checked`] no getter panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6FragmentHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6FragmentHeader<T> {
    /// The length of a Fragment header.
    pub const HEADER_LEN: usize = 8;

    /// Wraps `buffer` without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6FragmentHeader { buffer }
    }

    /// Wraps `buffer` and checks that it holds 8 bytes.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The type of the header that follows (in the first fragment) or that the
    /// reassembled payload starts with.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::EXT_NXT_HDR])
    }

    /// The fragment offset in bytes (the 13-bit field counts 8-octet units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::FRAG_OFF_M) & 0xfff8
    }

    /// The M flag: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FRAG_OFF_M) & 1 != 0
    }

    /// The identification.
    #[inline]
    pub fn ident(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::FRAG_IDENT)
    }

    /// True for an atomic fragment (offset 0, no more fragments; RFC 6946): the whole
    /// packet, to be processed without reassembly.
    #[inline]
    pub fn is_atomic(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FRAG_OFF_M) & 0xfff9 == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6FragmentHeader<T> {
    /// Sets the next header.
    #[inline]
    pub fn set_next_header(&mut self, next: IpProtocol) {
        self.buffer.as_mut()[field::EXT_NXT_HDR] = next.into();
    }

    /// Zeroes the two reserved fields (RFC 8200 §4.5: zero on transmission).
    #[inline]
    pub fn clear_reserved(&mut self) {
        let b = self.buffer.as_mut();
        b[1] = 0;
        b[3] &= 0xf9;
    }

    /// Sets the fragment offset in bytes; the low three bits of `offset` are dropped (an
    /// offset is a multiple of 8).
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        let b = self.buffer.as_mut();
        let old = read_u16(b, field::FRAG_OFF_M);
        let new = (offset & 0xfff8) | (old & 0x0007);
        b[field::FRAG_OFF_M].copy_from_slice(&new.to_be_bytes());
    }

    /// Sets the M flag.
    #[inline]
    pub fn set_more_frags(&mut self, more: bool) {
        let b = self.buffer.as_mut();
        b[field::FRAG_OFF_M.end - 1] = (b[field::FRAG_OFF_M.end - 1] & !1) | u8::from(more);
    }

    /// Sets the identification.
    #[inline]
    pub fn set_ident(&mut self, ident: u32) {
        self.buffer.as_mut()[field::FRAG_IDENT].copy_from_slice(&ident.to_be_bytes());
    }
}

/// What a node must do with a packet holding an option it does not recognise: the two
/// high-order bits of the option type (RFC 8200 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6OptionFailureAction {
    /// `00`: skip the option and go on processing the header.
    Skip,
    /// `01`: discard the packet.
    Discard,
    /// `10`: discard the packet and, whatever the destination address, send an ICMP
    /// Parameter Problem, code 2, pointing at the option type.
    DiscardSendAll,
    /// `11`: discard the packet and, only when the destination address was not a
    /// multicast address, send an ICMP Parameter Problem, code 2, pointing at the option
    /// type.
    DiscardSendUnicast,
}

impl Ipv6OptionFailureAction {
    /// The action encoded in the two high-order bits of option type `kind`.
    #[inline]
    pub const fn from_option_type(kind: u8) -> Self {
        match kind >> 6 {
            0 => Ipv6OptionFailureAction::Skip,
            1 => Ipv6OptionFailureAction::Discard,
            2 => Ipv6OptionFailureAction::DiscardSendAll,
            _ => Ipv6OptionFailureAction::DiscardSendUnicast,
        }
    }
}

/// An option of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv6Option<'a> {
    /// Pad1 (type 0): a single byte of padding, without length or data.
    Pad1,
    /// PadN (type 1) with this many bytes of data (normally zeros, not checked).
    PadN(u8),
    /// Any other option: its type and its data.
    Unknown {
        /// The option type.
        kind: u8,
        /// The option data.
        data: &'a [u8],
    },
}

impl Ipv6Option<'_> {
    /// Option type of Pad1.
    pub const PAD1: u8 = 0;
    /// Option type of PadN.
    pub const PADN: u8 = 1;

    /// The option type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Ipv6Option::Pad1 => Self::PAD1,
            Ipv6Option::PadN(_) => Self::PADN,
            Ipv6Option::Unknown { kind, .. } => *kind,
        }
    }

    /// What to do with the packet if this option is not recognised (RFC 8200 §4.2).
    pub fn failure_action(&self) -> Ipv6OptionFailureAction {
        Ipv6OptionFailureAction::from_option_type(self.kind())
    }
}

/// An iterator over the type-length-value options of a Hop-by-Hop or Destination Options
/// header (the header's [`Ipv6ExtHeader::data`]).
///
/// Yields `Err(Error::BadOption)` for an option that runs past the end of the data, and
/// stops after the first error.
#[derive(Debug, Clone)]
pub struct Ipv6OptionsIter<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Ipv6OptionsIter<'a> {
    /// An iterator over the options in `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        Ipv6OptionsIter {
            data,
            pos: 0,
            failed: false,
        }
    }

    /// The offset in `data` of the option the next call to `next` returns.
    pub const fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Ipv6OptionsIter<'a> {
    type Item = Result<Ipv6Option<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let kind = rest[0];
        if kind == Ipv6Option::PAD1 {
            self.pos += 1;
            return Some(Ok(Ipv6Option::Pad1));
        }
        let Some(&len) = rest.get(1) else {
            self.failed = true;
            return Some(Err(Error::BadOption));
        };
        let end = 2 + usize::from(len);
        let Some(data) = rest.get(2..end) else {
            self.failed = true;
            return Some(Err(Error::BadOption));
        };
        self.pos += end;
        Some(Ok(if kind == Ipv6Option::PADN {
            Ipv6Option::PadN(len)
        } else {
            Ipv6Option::Unknown { kind, data }
        }))
    }
}

/// Where a fragment sits in its original packet (from a Fragment header, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentInfo {
    /// Offset of the fragment's data in the fragmentable part, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification, shared by all fragments of a packet.
    pub ident: u32,
}

/// A Routing header with Segments Left above zero (RFC 8200 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RoutingInfo {
    /// Offset of the Routing header within the walked payload.
    pub offset: usize,
    /// The Routing Type.
    pub routing_type: u8,
    /// The Segments Left field (never zero here).
    pub segments_left: u8,
}

impl RoutingInfo {
    /// The offset of the Routing Type field within the walked payload: what an ICMP
    /// Parameter Problem, code 0, points at when the type is not recognised (RFC 8200
    /// §4.4), once the 40 bytes of the fixed header are added.
    pub const fn routing_type_offset(&self) -> usize {
        self.offset + field::ROUTING_TYPE
    }
}

/// What [`walk_ext_headers`] found in an extension header chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtChain {
    /// The protocol of the header where the walk stopped: an upper-layer protocol (TCP,
    /// UDP, ICMPv6, No Next Header, ESP or unknown), or, when the walk stopped early (see
    /// `fragment`, `unknown_option`, `routing`), the Next Header of the last header read.
    pub upper: IpProtocol,
    /// Offset of that header within the walked payload.
    pub upper_offset: usize,
    /// The Fragment header, if any. When the packet is a fragment that is not atomic
    /// (offset or M flag nonzero), the walk stops after the Fragment header: what follows
    /// is fragment data, and the caller walks the reassembled payload again from `upper`.
    pub fragment: Option<FragmentInfo>,
    /// True when the chain starts with a Hop-by-Hop Options header.
    pub hop_by_hop: bool,
    /// The first option, in a Hop-by-Hop or Destination Options header, whose type says
    /// to discard the packet when not recognised (RFC 8200 §4.2): its offset within the
    /// walked payload (add 40 for an ICMP Parameter Problem pointer) and the action. The
    /// walk stops after the header holding it; the packet must be discarded.
    pub unknown_option: Option<(usize, Ipv6OptionFailureAction)>,
    /// A Routing header with Segments Left above zero, where the walk stopped: this node
    /// is an intermediate hop of a source route (RFC 8200 §4.4). Routing headers with no
    /// segments left are skipped and not reported.
    pub routing: Option<RoutingInfo>,
}

/// The most extension headers [`walk_ext_headers`] reads before giving up.
pub const MAX_EXT_HEADERS: usize = 16;

/// Walks the extension headers at the start of `payload` (the payload of an IPv6 packet
/// whose Next Header is `first`) to the upper-layer header, for a packet delivered to
/// this node.
///
/// Reads Hop-by-Hop Options, Routing, Fragment, Destination Options and Authentication
/// headers (RFC 8200 §4.1, RFC 4302 §2.2) in order and stops at any other protocol.
///
/// Errors:
/// - `Truncated` when a header runs past the end of `payload`;
/// - `BadOption` for a Hop-by-Hop header that is not first (RFC 8200 §4.3), an option
///   that runs past the end of its header, or more than [`MAX_EXT_HEADERS`] headers.
///
/// The walk also stops early, with `Ok`, at an option that asks for the packet to be
/// discarded (`unknown_option`), a non-atomic fragment (`fragment`) and a Routing header
/// with segments left (`routing`): processing in order (RFC 8200 §4.1) would not go past
/// them.
pub fn walk_ext_headers(first: IpProtocol, payload: &[u8]) -> Result<ExtChain> {
    let mut chain = ExtChain {
        upper: first,
        upper_offset: 0,
        fragment: None,
        hop_by_hop: false,
        unknown_option: None,
        routing: None,
    };
    let mut count = 0;
    loop {
        let offset = chain.upper_offset;
        let rest = payload.get(offset..).ok_or(Error::Truncated)?;
        match chain.upper {
            IpProtocol::HopByHop | IpProtocol::Ipv6Opts | IpProtocol::Ipv6Route => {}
            IpProtocol::Ipv6Frag | IpProtocol::Ah => {}
            _ => return Ok(chain),
        }
        if count == MAX_EXT_HEADERS {
            return Err(Error::BadOption);
        }
        count += 1;
        match chain.upper {
            IpProtocol::HopByHop | IpProtocol::Ipv6Opts => {
                if chain.upper == IpProtocol::HopByHop {
                    // RFC 8200 §4.1: only immediately after the IPv6 header.
                    if count != 1 {
                        return Err(Error::BadOption);
                    }
                    chain.hop_by_hop = true;
                }
                let header = Ipv6ExtHeader::new_checked(rest)?;
                chain.upper = header.next_header();
                chain.upper_offset = offset + header.header_len();
                let mut options = header.options();
                while let (at, Some(option)) = (options.offset(), options.next()) {
                    let action = option?.failure_action();
                    if action != Ipv6OptionFailureAction::Skip {
                        chain.unknown_option = Some((offset + 2 + at, action));
                        return Ok(chain);
                    }
                }
            }
            IpProtocol::Ipv6Route => {
                let header = Ipv6ExtHeader::new_checked(rest)?;
                chain.upper = header.next_header();
                chain.upper_offset = offset + header.header_len();
                if header.segments_left() != 0 {
                    chain.routing = Some(RoutingInfo {
                        offset,
                        routing_type: header.routing_type(),
                        segments_left: header.segments_left(),
                    });
                    return Ok(chain);
                }
            }
            IpProtocol::Ipv6Frag => {
                let header = Ipv6FragmentHeader::new_checked(rest)?;
                chain.upper = header.next_header();
                chain.upper_offset = offset + Ipv6FragmentHeader::<&[u8]>::HEADER_LEN;
                chain.fragment = Some(FragmentInfo {
                    offset: header.frag_offset(),
                    more: header.more_frags(),
                    ident: header.ident(),
                });
                if !header.is_atomic() {
                    return Ok(chain);
                }
            }
            _ => {
                // Authentication Header: Payload Len counts 4-octet units minus 2
                // (RFC 4302 §2.2).
                let len = rest.get(1).ok_or(Error::Truncated)?;
                let header_len = (usize::from(*len) + 2) * 4;
                if rest.len() < header_len {
                    return Err(Error::Truncated);
                }
                chain.upper = IpProtocol::from(rest[0]);
                chain.upper_offset = offset + header_len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A DNS query over UDP, traffic class 0xb8 (DSCP EF), flow label 0x5f0b3, hop limit 64.
    static PACKET: [u8; 52] = [
        0x6b, 0x85, 0xf0, 0xb3, 0x00, 0x0c, 0x11, 0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xd4, 0x31, 0x00, 0x35, 0x00,
        0x0c, 0x32, 0x5d, 0xde, 0xad, 0xbe, 0xef,
    ];

    // The payload of a first fragment: Hop-by-Hop (Router Alert, PadN), Destination
    // Options (PadN), Fragment (offset 0, M, ident 0x12345678), then the UDP header.
    static CHAIN: [u8; 36] = [
        0x3c, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00, // Hop-by-Hop
        0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // Destination Options
        0x11, 0x00, 0x00, 0x01, 0x12, 0x34, 0x56, 0x78, // Fragment
        0xd4, 0x31, 0x00, 0x35, 0x05, 0xb4, 0x8a, 0x7c, // UDP
        0x00, 0x01, 0x02, 0x03,
    ];

    use Ipv6OptionFailureAction as Action;

    /// Experimental option types (RFC 4727) with each failure action.
    const ACTIONS: [(u8, Action); 4] = [
        (0x1e, Action::Skip),
        (0x5e, Action::Discard),
        (0x9e, Action::DiscardSendAll),
        (0xde, Action::DiscardSendUnicast),
    ];

    fn walk(first: IpProtocol, payload: &[u8]) -> Result<ExtChain> {
        walk_ext_headers(first, payload)
    }

    fn frag(offset: u16, more: bool, ident: u32) -> FragmentInfo {
        FragmentInfo {
            offset,
            more,
            ident,
        }
    }

    fn src() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }

    fn dst() -> Ipv6Addr {
        "2001:db8::2".parse().unwrap()
    }

    fn repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: src(),
            dst_addr: dst(),
            next_header: IpProtocol::Udp,
            payload_len: 12,
            hop_limit: 64,
        }
    }

    #[test]
    fn header_read_fields() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x5f0b3);
        assert_eq!(p.payload_len(), 12);
        assert_eq!(p.total_len(), 52);
        assert_eq!(p.next_header(), IpProtocol::Udp);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), src());
        assert_eq!(p.dst_addr(), dst());
        assert_eq!(p.payload(), &PACKET[40..]);
    }

    #[test]
    fn header_write_fields() {
        let mut buf = [0xa5u8; 52];
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.set_version(6);
        p.set_traffic_class(0xb8);
        p.set_flow_label(0x5f0b3);
        p.set_payload_len(12);
        p.set_next_header(IpProtocol::Udp);
        p.set_hop_limit(64);
        p.set_src_addr(src());
        p.set_dst_addr(dst());
        p.payload_mut().copy_from_slice(&PACKET[40..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn header_parse() {
        let p = Ipv6Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p), Ok(repr()));
    }

    #[test]
    fn header_emit() {
        let r = repr();
        let mut buf = [0xa5u8; 52];
        assert_eq!(r.buffer_len(), 40);
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        r.emit(&mut p);
        p.set_traffic_class(0xb8);
        p.set_flow_label(0x5f0b3);
        p.payload_mut().copy_from_slice(&PACKET[40..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn parse_rejects_wrong_version() {
        let mut buf = PACKET;
        buf[0] = 0x4b;
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&p), Err(Error::BadVersion));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for len in 0..PACKET.len() {
            let err = Ipv6Packet::new_checked(&PACKET[..len]).err();
            assert_eq!(err, Some(Error::Truncated));
        }
        // Ethernet padding after the payload is allowed and not part of the payload.
        let mut padded = [0u8; 60];
        padded[..52].copy_from_slice(&PACKET);
        let p = Ipv6Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload().len(), 12);
    }

    #[test]
    fn decrement_hop_limit_stops_at_zero() {
        let mut buf = PACKET;
        let mut p = Ipv6Packet::new_unchecked(&mut buf[..]);
        p.decrement_hop_limit();
        assert_eq!(p.hop_limit(), 63);
        p.set_hop_limit(0);
        p.decrement_hop_limit();
        assert_eq!(p.hop_limit(), 0);
        assert_eq!(buf[..7], PACKET[..7]);
    }

    #[test]
    fn ext_header_read_and_write() {
        let h = Ipv6ExtHeader::new_checked(&CHAIN[..]).unwrap();
        assert_eq!(h.next_header(), IpProtocol::Ipv6Opts);
        assert_eq!(h.hdr_ext_len(), 0);
        assert_eq!(h.header_len(), 8);
        assert_eq!(h.data(), &CHAIN[2..8]);
        let router_alert = Ipv6Option::Unknown {
            kind: 5,
            data: &[0, 0],
        };
        let options: Vec<_> = h.options().collect();
        assert_eq!(options, [Ok(router_alert), Ok(Ipv6Option::PadN(0))]);

        let mut buf = [0xa5u8; 8];
        let mut w = Ipv6ExtHeader::new_unchecked(&mut buf[..]);
        w.set_next_header(IpProtocol::Ipv6Opts);
        w.set_hdr_ext_len(0);
        w.data_mut().copy_from_slice(&CHAIN[2..8]);
        assert_eq!(buf, CHAIN[..8]);
    }

    #[test]
    fn ext_header_length_is_checked() {
        let mut buf = [0u8; 16];
        buf[1] = 1; // 16 bytes
        assert!(Ipv6ExtHeader::new_checked(&buf[..]).is_ok());
        for len in 0..16 {
            let err = Ipv6ExtHeader::new_checked(&buf[..len]).err();
            assert_eq!(err, Some(Error::Truncated));
        }
    }

    #[test]
    fn routing_header_fields() {
        // Segment Routing header (type 4) with one segment left.
        let mut buf = [0xa5u8; 8];
        let mut w = Ipv6ExtHeader::new_unchecked(&mut buf[..]);
        w.set_next_header(IpProtocol::Tcp);
        w.set_hdr_ext_len(0);
        w.set_routing_type(4);
        w.set_segments_left(1);
        let h = Ipv6ExtHeader::new_checked(&buf[..]).unwrap();
        assert_eq!((h.routing_type(), h.segments_left()), (4, 1));
        assert_eq!(buf[..4], [0x06, 0x00, 0x04, 0x01]);
    }

    #[test]
    fn fragment_header_read_and_write() {
        let h = Ipv6FragmentHeader::new_checked(&CHAIN[16..24]).unwrap();
        assert_eq!(h.next_header(), IpProtocol::Udp);
        assert_eq!(h.frag_offset(), 0);
        assert!(h.more_frags());
        assert!(!h.is_atomic());
        assert_eq!(h.ident(), 0x1234_5678);

        let mut buf = [0xa5u8; 8];
        let mut w = Ipv6FragmentHeader::new_unchecked(&mut buf[..]);
        w.set_next_header(IpProtocol::Udp);
        w.clear_reserved();
        w.set_frag_offset(1448);
        w.set_more_frags(false);
        w.set_ident(0x1234_5678);
        assert_eq!(buf, [0x11, 0x00, 0x05, 0xa8, 0x12, 0x34, 0x56, 0x78]);
        let h = Ipv6FragmentHeader::new_checked(&buf[..]).unwrap();
        assert_eq!((h.frag_offset(), h.more_frags()), (1448, false));
        for len in 0..8 {
            assert!(Ipv6FragmentHeader::new_checked(&buf[..len]).is_err());
        }
    }

    #[test]
    fn options_iter() {
        let data = [0x00, 0x01, 0x02, 0x00, 0x00, 0x9e, 0x01, 0x2a];
        let options: Vec<_> = Ipv6OptionsIter::new(&data).map(Result::unwrap).collect();
        let unknown = Ipv6Option::Unknown {
            kind: 0x9e,
            data: &[0x2a],
        };
        assert_eq!(options, [Ipv6Option::Pad1, Ipv6Option::PadN(2), unknown]);
        assert_eq!(unknown.failure_action(), Action::DiscardSendAll);
        assert_eq!(Ipv6Option::PadN(2).kind(), 1);
    }

    #[test]
    fn options_iter_reports_overrun() {
        let mut it = Ipv6OptionsIter::new(&[0x01, 0x05, 0x00]);
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
        let mut it = Ipv6OptionsIter::new(&[0x00, 0x05]);
        assert_eq!(it.next(), Some(Ok(Ipv6Option::Pad1)));
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
    }

    #[test]
    fn failure_action_from_high_bits() {
        for (kind, action) in ACTIONS {
            assert_eq!(Action::from_option_type(kind), action);
        }
    }

    #[test]
    fn walk_hbh_destopts_fragment_udp() {
        let chain = walk_ext_headers(IpProtocol::HopByHop, &CHAIN).unwrap();
        let fragment = Some(frag(0, true, 0x1234_5678));
        let (upper, upper_offset) = (IpProtocol::Udp, 24);
        let (hop_by_hop, unknown_option, routing) = (true, None, None);
        let expected = ExtChain {
            upper,
            upper_offset,
            fragment,
            hop_by_hop,
            unknown_option,
            routing,
        };
        assert_eq!(chain, expected);
    }

    #[test]
    fn walk_without_extension_headers() {
        let chain = walk_ext_headers(IpProtocol::Tcp, &[]).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Tcp, 0));
        assert!(!chain.hop_by_hop && chain.fragment.is_none());
        let chain = walk_ext_headers(IpProtocol::Ipv6NoNxt, &[]).unwrap();
        assert_eq!(chain.upper, IpProtocol::Ipv6NoNxt);
    }

    #[test]
    fn walk_atomic_fragment_goes_on() {
        // Fragment (atomic) then Destination Options then ICMPv6.
        let payload = [
            0x3c, 0x00, 0x00, 0x00, 0xab, 0xcd, 0xef, 0x01, // atomic fragment
            0x3a, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // Destination Options
            0x80, 0x00,
        ];
        let chain = walk_ext_headers(IpProtocol::Ipv6Frag, &payload).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Icmpv6, 16));
        assert_eq!(chain.fragment, Some(frag(0, false, 0xabcd_ef01)));
    }

    #[test]
    fn walk_stops_at_later_fragment() {
        // Offset 1448, no more fragments: what follows is data, not a header.
        let payload = [0x3c, 0x00, 0x05, 0xa8, 0x00, 0x00, 0x00, 0x07, 0xff, 0xff];
        let chain = walk_ext_headers(IpProtocol::Ipv6Frag, &payload).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Ipv6Opts, 8));
        assert_eq!(chain.fragment, Some(frag(1448, false, 7)));
    }

    #[test]
    fn walk_rejects_hop_by_hop_not_first() {
        let mut payload = CHAIN;
        payload[0] = 0x00; // Hop-by-Hop says the next header is Hop-by-Hop again
        assert_eq!(walk(IpProtocol::HopByHop, &payload), Err(Error::BadOption));
        let payload = [0, 0, 1, 4, 0, 0, 0, 0];
        assert_eq!(walk(IpProtocol::Ipv6Opts, &payload), Err(Error::BadOption));
    }

    #[test]
    fn walk_truncated_chain() {
        for len in 0..24 {
            let chain = walk(IpProtocol::HopByHop, &CHAIN[..len]);
            assert_eq!(chain, Err(Error::Truncated), "len {len}");
        }
        for len in 24..CHAIN.len() {
            assert!(walk_ext_headers(IpProtocol::HopByHop, &CHAIN[..len]).is_ok());
        }
    }

    #[test]
    fn walk_bounds_the_chain() {
        let mut payload = [0u8; 8 * (MAX_EXT_HEADERS + 1)];
        for h in payload.chunks_mut(8) {
            h.copy_from_slice(&[60, 0, 1, 4, 0, 0, 0, 0]);
        }
        // Sixteen Destination Options headers then UDP are accepted.
        payload[8 * (MAX_EXT_HEADERS - 1)] = 17;
        let chain = walk_ext_headers(IpProtocol::Ipv6Opts, &payload).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Udp, 128));
        // Seventeen are not.
        payload[8 * (MAX_EXT_HEADERS - 1)] = 60;
        payload[8 * MAX_EXT_HEADERS] = 17;
        assert_eq!(walk(IpProtocol::Ipv6Opts, &payload), Err(Error::BadOption));
    }

    #[test]
    fn walk_reports_unknown_option_by_action() {
        for (kind, action) in ACTIONS {
            // Hop-by-Hop: PadN(0), then the option with 2 bytes of data; then UDP.
            let payload = [0x11, 0x00, 0x01, 0x00, kind, 0x02, 0x00, 0x00];
            let chain = walk_ext_headers(IpProtocol::HopByHop, &payload).unwrap();
            assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Udp, 8));
            if action == Action::Skip {
                assert_eq!(chain.unknown_option, None);
            } else {
                assert_eq!(chain.unknown_option, Some((4, action)));
            }
        }
        // In a Destination Options header after the Hop-by-Hop one, the offset counts
        // from the start of the walked payload.
        let mut payload = CHAIN;
        payload[10] = 0x9e;
        let chain = walk_ext_headers(IpProtocol::HopByHop, &payload).unwrap();
        assert_eq!(chain.unknown_option, Some((10, Action::DiscardSendAll)));
        assert_eq!(
            (chain.upper, chain.upper_offset),
            (IpProtocol::Ipv6Frag, 16)
        );
        assert_eq!(chain.fragment, None);
    }

    #[test]
    fn walk_rejects_option_overrun() {
        let payload = [0x11, 0x00, 0x01, 0x00, 0x05, 0x03, 0x00, 0x00];
        assert_eq!(walk(IpProtocol::HopByHop, &payload), Err(Error::BadOption));
    }

    #[test]
    fn walk_routing_headers() {
        // Segments left 0: skipped (RFC 8200 §4.4).
        let payload = [0x06, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00];
        let chain = walk_ext_headers(IpProtocol::Ipv6Route, &payload).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Tcp, 8));
        assert_eq!(chain.routing, None);
        // Segments left 2: reported, walk stops.
        let payload = [0x06, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00];
        let chain = walk_ext_headers(IpProtocol::Ipv6Route, &payload).unwrap();
        let routing = chain.routing.unwrap();
        let (offset, routing_type, segments_left) = (0, 4, 2);
        assert_eq!(
            routing,
            RoutingInfo {
                offset,
                routing_type,
                segments_left
            }
        );
        assert_eq!(routing.routing_type_offset(), 2);
    }

    #[test]
    fn walk_authentication_header() {
        // AH with Payload Len 4: (4 + 2) * 4 = 24 bytes, then TCP.
        let mut payload = [0u8; 28];
        payload[0] = 6;
        payload[1] = 4;
        let chain = walk_ext_headers(IpProtocol::Ah, &payload).unwrap();
        assert_eq!((chain.upper, chain.upper_offset), (IpProtocol::Tcp, 24));
        assert_eq!(walk(IpProtocol::Ah, &payload[..23]), Err(Error::Truncated));
        assert_eq!(walk(IpProtocol::Ah, &payload[..1]), Err(Error::Truncated));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
                if let Ok(p) = Ipv6Packet::new_checked(&bytes[..]) {
                    let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len());
                    let _ = (p.next_header(), p.hop_limit(), p.src_addr(), p.dst_addr());
                    let _ = (p.payload(), p.total_len());
                    let _ = Ipv6Repr::parse(&p);
                }
                if let Ok(h) = Ipv6ExtHeader::new_checked(&bytes[..]) {
                    let _ = (h.next_header(), h.header_len(), h.data(), h.routing_type(), h.segments_left());
                    for o in h.options() {
                        let _ = o.map(|o| o.failure_action());
                    }
                }
                if let Ok(h) = Ipv6FragmentHeader::new_checked(&bytes[..]) {
                    let _ = (h.next_header(), h.frag_offset(), h.more_frags(), h.ident(), h.is_atomic());
                }
            }

            #[test]
            fn walk_never_panics(first in any::<u8>(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
                if let Ok(chain) = walk_ext_headers(IpProtocol::from(first), &bytes) {
                    prop_assert!(chain.upper_offset <= bytes.len());
                    if let Some((at, _)) = chain.unknown_option {
                        prop_assert!(at < bytes.len());
                    }
                }
            }
        }
    }
}
