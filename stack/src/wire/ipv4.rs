//! IPv4 headers (RFC 791).
//!
//! [`Ipv4Packet`] is a view for both the forwarding path, which rewrites in place
//! ([`Ipv4Packet::decrement_hop_limit`] updates the checksum incrementally, RFC 1624), and
//! local delivery, which parses an [`Ipv4Repr`].
//!
//! **Panics:** after `new_checked` (or `check_len`) succeeds, no getter of [`Ipv4Packet`]
//! can panic, whatever the header holds. Setters, and getters on a view made with
//! `new_unchecked` over a buffer too short for the header or for the lengths the header
//! states, panic on out-of-bounds access.
//!
//! `check_len` checks lengths only; the version, checksum, TTL and fragment fields are
//! the caller's to judge (RFC 1812 §5.2.2 for a router), or [`Ipv4Repr::parse`]'s.

use core::net::Ipv4Addr;

use super::{checksum, Error, IpProtocol, Result};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The largest header: a 4-bit IHL of 15 words.
pub const MAX_HEADER_LEN: usize = 60;

mod field {
    use core::ops::Range;

    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

// Flags and fragment offset word (RFC 791 §3.1).
const FLAG_RESERVED: u16 = 0x8000;
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A view over an IPv4 packet: header, options and payload.
///
/// The buffer may run past `total_len()` (Ethernet pads short frames); [`payload`]
/// stops at `total_len()`.
///
/// [`payload`]: Ipv4Packet::payload
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps `buffer` without checking it (for emitting into a sized buffer).
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths the header states against each other and the buffer
    /// (RFC 791 §3.1, IHL and Total Length).
    ///
    /// Errors: [`Error::Truncated`] when the buffer is shorter than 20 bytes or than
    /// `total_len()`; [`Error::BadHeaderLen`] when the IHL is below 5 words;
    /// [`Error::BadLength`] when `total_len()` is smaller than the header.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let header_len = usize::from(self.header_len());
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        let total_len = usize::from(self.total_len());
        if total_len < header_len {
            return Err(Error::BadLength);
        }
        if data.len() < total_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes, options included (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// The differentiated services code point (RFC 2474).
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The explicit congestion notification codepoint (RFC 3168 §5).
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length in bytes: header, options and payload.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The identification field.
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::IDENT])
    }

    #[inline]
    fn flags_offset(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FLG_OFF])
    }

    /// The reserved flag bit, which must be zero (RFC 791 §3.1).
    #[inline]
    pub fn reserved_flag(&self) -> bool {
        self.flags_offset() & FLAG_RESERVED != 0
    }

    /// The don't-fragment flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// The more-fragments flag.
    #[inline]
    pub fn more_frags(&self) -> bool {
        self.flags_offset() & FLAG_MF != 0
    }

    /// The fragment offset in bytes (the field counts 8-byte units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) << 3
    }

    /// True when this is a fragment: MF set or a nonzero offset (RFC 791 §3.2).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// The time-to-live field.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol field.
    #[inline]
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SRC_ADDR])
    }

    /// The destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::DST_ADDR])
    }

    /// The options: the bytes between the fixed header and `header_len()`.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// True when the header checksum verifies over `header_len()` bytes (RFC 791 §3.1,
    /// RFC 1071).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        let header = &self.buffer.as_ref()[..usize::from(self.header_len())];
        checksum::checksum(header) == 0
    }

    /// The payload: bytes `header_len()..total_len()`, without any link-layer padding.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &self.buffer.as_ref()[range]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets the version field; only the low 4 bits of `version` are used.
    #[inline]
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (version << 4);
    }

    /// Sets the header length in bytes; it is stored in 4-byte words, so `len` should
    /// be a multiple of 4 between 20 and 60.
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ((len / 4) & 0x0f);
    }

    /// Sets the DSCP; only the low 6 bits of `dscp` are used.
    #[inline]
    pub fn set_dscp(&mut self, dscp: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (dscp << 2);
    }

    /// Sets the ECN codepoint; only the low 2 bits of `ecn` are used.
    #[inline]
    pub fn set_ecn(&mut self, ecn: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (ecn & 0x03);
    }

    /// Sets the total length.
    #[inline]
    pub fn set_total_len(&mut self, len: u16) {
        put16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the identification field.
    #[inline]
    pub fn set_ident(&mut self, ident: u16) {
        put16(&mut self.buffer.as_mut()[field::IDENT], ident);
    }

    #[inline]
    fn set_flags_offset(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::FLG_OFF], value);
    }

    #[inline]
    fn set_flag(&mut self, flag: u16, on: bool) {
        let raw = self.flags_offset();
        self.set_flags_offset(if on { raw | flag } else { raw & !flag });
    }

    /// Clears all three flag bits, keeping the fragment offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let raw = self.flags_offset();
        self.set_flags_offset(raw & OFFSET_MASK);
    }

    /// Sets the reserved flag bit.
    #[inline]
    pub fn set_reserved_flag(&mut self, value: bool) {
        self.set_flag(FLAG_RESERVED, value);
    }

    /// Sets the don't-fragment flag.
    #[inline]
    pub fn set_dont_frag(&mut self, value: bool) {
        self.set_flag(FLAG_DF, value);
    }

    /// Sets the more-fragments flag.
    #[inline]
    pub fn set_more_frags(&mut self, value: bool) {
        self.set_flag(FLAG_MF, value);
    }

    /// Sets the fragment offset in bytes, keeping the flags. The field counts 8-byte
    /// units, so the low 3 bits of `offset` are dropped (RFC 791 §3.1).
    #[inline]
    pub fn set_frag_offset(&mut self, offset: u16) {
        let raw = self.flags_offset();
        self.set_flags_offset((raw & !OFFSET_MASK) | (offset >> 3));
    }

    /// Sets the time-to-live field.
    #[inline]
    pub fn set_hop_limit(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol field.
    #[inline]
    pub fn set_next_header(&mut self, protocol: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol.into();
    }

    /// Sets the header checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the source address.
    #[inline]
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    #[inline]
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes the header checksum over `header_len()` bytes and stores it.
    #[inline]
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(&self.buffer.as_ref()[..usize::from(self.header_len())]);
        self.set_checksum(value);
    }

    /// Decrements the TTL and updates the checksum incrementally (RFC 1624 §3, eqn. 3),
    /// without reading the rest of the header: the forwarding fast path
    /// (RFC 1812 §5.3.1 for the TTL, §5.2.2 for the checksum update).
    ///
    /// A TTL of 0 is left alone: the caller must have checked `hop_limit() > 1`
    /// (and sent Time Exceeded otherwise) before forwarding.
    #[inline]
    pub fn decrement_hop_limit(&mut self) {
        let data = self.buffer.as_mut();
        let ttl = data[field::TTL];
        if ttl == 0 {
            return;
        }
        // TTL and protocol share one 16-bit word of the checksum.
        let old = u16::from_be_bytes([ttl, data[field::PROTOCOL]]);
        let new = old - 0x0100;
        data[field::TTL] = ttl - 1;
        let hc = be16(&data[field::CHECKSUM]);
        put16(&mut data[field::CHECKSUM], checksum::update16(hc, old, new));
    }

    /// The options, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload (`header_len()..total_len()`), mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let range = usize::from(self.header_len())..usize::from(self.total_len());
        &mut self.buffer.as_mut()[range]
    }
}

/// The parsed form of an IPv4 header for traffic that ends here.
///
/// It describes a whole datagram: [`Ipv4Repr::parse`] refuses fragments, which go to
/// reassembly through [`Ipv4Packet`] instead. Options are skipped on parse and never
/// emitted; DSCP and ECN are emitted as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// The source address.
    pub src_addr: Ipv4Addr,
    /// The destination address.
    pub dst_addr: Ipv4Addr,
    /// The protocol of the payload.
    pub next_header: IpProtocol,
    /// The payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// The time-to-live.
    pub hop_limit: u8,
    /// The don't-fragment flag.
    pub dont_frag: bool,
    /// The identification field.
    pub ident: u16,
}

impl Ipv4Repr {
    /// Parses the header of `packet`.
    ///
    /// Errors: those of [`Ipv4Packet::check_len`]; [`Error::BadVersion`] when the version
    /// is not 4; [`Error::BadChecksum`] when the header checksum does not verify;
    /// [`Error::Unsupported`] for a fragment (MF set or nonzero offset).
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::BadVersion);
        }
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: usize::from(packet.total_len() - u16::from(packet.header_len())),
            hop_limit: packet.hop_limit(),
            dont_frag: packet.dont_frag(),
            ident: packet.ident(),
        })
    }

    /// The length of the header this emits: [`HEADER_LEN`] (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with the checksum filled into `packet`, whose buffer must
    /// be at least 20 bytes; the payload is the caller's to write (`payload_mut()` once
    /// the buffer holds `20 + payload_len` bytes).
    ///
    /// `payload_len` must be at most 65515 so the total length fits its field.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        debug_assert!(self.payload_len <= usize::from(u16::MAX) - HEADER_LEN);
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN as u8);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_flags_offset(if self.dont_frag { FLAG_DF } else { 0 });
        packet.set_hop_limit(self.hop_limit);
        packet.set_next_header(self.next_header);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A DNS query for example.com, 192.0.2.10 -> 198.51.100.53: IPv4 header (DF, TTL 64,
    // UDP, checksum 0x31fb), then the UDP header and DNS message.
    const PACKET: [u8; 57] = [
        0x45, 0x00, 0x00, 0x39, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x31, 0xfb, 0xc0, 0x00, 0x02,
        0x0a, 0xc6, 0x33, 0x64, 0x35, // IPv4
        0xcf, 0x08, 0x00, 0x35, 0x00, 0x25, 0x38, 0x2b, // UDP
        0x3c, 0x5a, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x65, 0x78,
        0x61, 0x6d, 0x70, 0x6c, 0x65, 0x03, 0x63, 0x6f, 0x6d, 0x00, 0x00, 0x01, 0x00, 0x01,
    ];

    // An IGMPv2 report for 239.1.2.3 with a Router Alert option (RFC 2113): IHL 6,
    // DSCP CS6, TTL 1.
    const WITH_OPTIONS: [u8; 32] = [
        0x46, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x40, 0x00, 0x01, 0x02, 0x31, 0x09, 0xc0, 0x00, 0x02,
        0x0a, 0xef, 0x01, 0x02, 0x03, // IPv4
        0x94, 0x04, 0x00, 0x00, // Router Alert
        0x16, 0x00, 0xf8, 0xfa, 0xef, 0x01, 0x02, 0x03, // IGMP
    ];

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 53);

    fn repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Udp,
            payload_len: 37,
            hop_limit: 64,
            dont_frag: true,
            ident: 0x1c46,
        }
    }

    #[test]
    fn read_fields() {
        let packet = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!(packet.dscp(), 0);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.total_len(), 57);
        assert_eq!(packet.ident(), 0x1c46);
        assert!(!packet.reserved_flag());
        assert!(packet.dont_frag());
        assert!(!packet.more_frags());
        assert_eq!(packet.frag_offset(), 0);
        assert!(!packet.is_fragment());
        assert_eq!(packet.hop_limit(), 64);
        assert_eq!(packet.next_header(), IpProtocol::Udp);
        assert_eq!(packet.checksum(), 0x31fb);
        assert_eq!(packet.src_addr(), SRC);
        assert_eq!(packet.dst_addr(), DST);
        assert_eq!(packet.options(), &[] as &[u8]);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &PACKET[20..]);
        assert_eq!(packet.into_payload(), &PACKET[20..]);
    }

    #[test]
    fn write_fields() {
        let mut buf = [0xa5u8; 57];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_dscp(0);
        packet.set_ecn(0);
        packet.set_total_len(57);
        packet.set_ident(0x1c46);
        packet.clear_flags();
        packet.set_frag_offset(0);
        packet.set_dont_frag(true);
        packet.set_more_frags(false);
        packet.set_hop_limit(64);
        packet.set_next_header(IpProtocol::Udp);
        packet.set_src_addr(SRC);
        packet.set_dst_addr(DST);
        packet.fill_checksum();
        packet.payload_mut().copy_from_slice(&PACKET[20..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn parse_repr() {
        let packet = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(Ipv4Repr::parse(&packet), Ok(repr()));
    }

    #[test]
    fn emit_repr() {
        let repr = repr();
        assert_eq!(repr.buffer_len(), 20);
        let mut buf = [0xa5u8; 57];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        repr.emit(&mut packet);
        packet.payload_mut().copy_from_slice(&PACKET[20..]);
        assert_eq!(buf, PACKET);
    }

    #[test]
    fn header_with_options() {
        let packet = Ipv4Packet::new_checked(&WITH_OPTIONS[..]).unwrap();
        assert_eq!(packet.header_len(), 24);
        assert_eq!(packet.dscp(), 48);
        assert_eq!(packet.ecn(), 0);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.next_header(), IpProtocol::Unknown(2));
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert!(packet.verify_checksum());
        assert_eq!(packet.payload(), &WITH_OPTIONS[24..]);
        let repr = Ipv4Repr::parse(&packet).unwrap();
        assert_eq!(repr.payload_len, 8);
        assert_eq!(repr.dst_addr, Ipv4Addr::new(239, 1, 2, 3));

        // Writing it back through the setters, options included.
        let mut buf = [0xa5u8; 32];
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.set_version(4);
        packet.set_header_len(24);
        packet.set_dscp(48);
        packet.set_ecn(0);
        packet.set_total_len(32);
        packet.set_ident(0);
        packet.set_flags_offset(0);
        packet.set_dont_frag(true);
        packet.set_hop_limit(1);
        packet.set_next_header(IpProtocol::Unknown(2));
        packet.set_src_addr(SRC);
        packet.set_dst_addr(Ipv4Addr::new(239, 1, 2, 3));
        packet
            .options_mut()
            .copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        packet.payload_mut().copy_from_slice(&WITH_OPTIONS[24..]);
        packet.fill_checksum();
        assert_eq!(buf, WITH_OPTIONS);

        // A corrupted option byte breaks the checksum: it covers the options too.
        let mut buf = WITH_OPTIONS;
        buf[21] = 0x05;
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&packet), Err(Error::BadChecksum));
    }

    #[test]
    fn padding_after_total_len_is_not_payload() {
        let mut buf = [0u8; 46];
        buf[..32].copy_from_slice(&WITH_OPTIONS);
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(packet.payload(), &WITH_OPTIONS[24..]);
        assert_eq!(Ipv4Repr::parse(&packet).unwrap().payload_len, 8);
    }

    #[test]
    fn fragment_flags_and_offsets() {
        let mut buf = PACKET;
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.clear_flags();
        assert!(!packet.dont_frag() && !packet.more_frags() && !packet.is_fragment());

        // First fragment: MF, offset 0.
        packet.set_more_frags(true);
        assert!(packet.more_frags() && packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);

        // Middle fragment: MF, offset 1480.
        packet.set_frag_offset(1480);
        assert_eq!(packet.frag_offset(), 1480);
        assert_eq!(&packet.into_inner()[6..8], &[0x20, 0xb9]);

        // Last fragment: offset only.
        let mut packet = Ipv4Packet::new_unchecked(&mut buf[..]);
        packet.set_more_frags(false);
        assert!(!packet.more_frags());
        assert!(packet.is_fragment());
        assert_eq!(packet.frag_offset(), 1480);

        // Flags survive offset changes and the reverse.
        packet.set_dont_frag(true);
        packet.set_reserved_flag(true);
        packet.set_frag_offset(65528);
        assert!(packet.dont_frag() && packet.reserved_flag());
        assert_eq!(packet.frag_offset(), 65528);
        packet.clear_flags();
        assert!(!packet.dont_frag() && !packet.reserved_flag());
        assert_eq!(packet.frag_offset(), 65528);

        // Offsets are in 8-byte units: the low bits are dropped.
        packet.set_frag_offset(1487);
        assert_eq!(packet.frag_offset(), 1480);

        // A Repr is for whole datagrams.
        packet.set_frag_offset(0);
        packet.set_more_frags(true);
        packet.fill_checksum();
        assert_eq!(Ipv4Repr::parse(&packet), Err(Error::Unsupported));
        packet.set_more_frags(false);
        packet.fill_checksum();
        assert!(Ipv4Repr::parse(&packet).is_ok());
    }

    #[test]
    fn decrement_hop_limit_keeps_checksum_valid() {
        for fixture in [&PACKET[..], &WITH_OPTIONS[..]] {
            let mut buf = fixture.to_vec();
            let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
            packet.set_hop_limit(255);
            packet.fill_checksum();
            for ttl in (1..=255u8).rev() {
                assert_eq!(packet.hop_limit(), ttl);
                packet.decrement_hop_limit();
                assert_eq!(packet.hop_limit(), ttl - 1);
                assert!(packet.verify_checksum(), "ttl {ttl}");
                let incremental = packet.checksum();
                packet.fill_checksum();
                assert_eq!(packet.checksum(), incremental, "ttl {ttl}");
            }
            // TTL 0 stays 0: the caller drops before decrementing.
            let before = packet.checksum();
            packet.decrement_hop_limit();
            assert_eq!((packet.hop_limit(), packet.checksum()), (0, before));
        }
    }

    #[test]
    fn decrement_hop_limit_from_the_fixture() {
        let mut buf = PACKET;
        let mut packet = Ipv4Packet::new_checked(&mut buf[..]).unwrap();
        packet.decrement_hop_limit();
        assert_eq!(packet.hop_limit(), 63);
        assert_eq!(packet.checksum(), 0x32fb);
        assert!(packet.verify_checksum());
    }

    #[test]
    fn check_len_errors() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                Ipv4Packet::new_checked(&PACKET[..len]).err(),
                Some(Error::Truncated)
            );
            assert_eq!(
                Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&PACKET[..len])),
                Err(Error::Truncated)
            );
        }
        // Cut inside the payload: shorter than total_len.
        for len in HEADER_LEN..PACKET.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&PACKET[..len]).err(),
                Some(Error::Truncated)
            );
        }
        // Cut inside the options.
        for len in HEADER_LEN..WITH_OPTIONS.len() {
            assert_eq!(
                Ipv4Packet::new_checked(&WITH_OPTIONS[..len]).err(),
                Some(Error::Truncated)
            );
        }
        // IHL below 5.
        for ihl in 0..5u8 {
            let mut buf = PACKET;
            buf[0] = 0x40 | ihl;
            assert_eq!(
                Ipv4Packet::new_checked(&buf[..]).err(),
                Some(Error::BadHeaderLen)
            );
        }
        // IHL 15 (60 bytes) runs past a 57-byte total length.
        let mut buf = PACKET;
        buf[0] = 0x4f;
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::BadLength)
        );
        // Total length shorter than the header.
        let mut buf = WITH_OPTIONS;
        buf[2..4].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::BadLength)
        );
        buf[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).unwrap().payload(),
            &[] as &[u8]
        );
        // Total length beyond the buffer.
        let mut buf = PACKET;
        buf[2..4].copy_from_slice(&58u16.to_be_bytes());
        assert_eq!(
            Ipv4Packet::new_checked(&buf[..]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn parse_errors() {
        let mut buf = PACKET;
        buf[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::BadVersion)
        );
        let mut buf = PACKET;
        buf[11] ^= 0x01;
        let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
        assert!(!packet.verify_checksum());
        assert_eq!(Ipv4Repr::parse(&packet), Err(Error::BadChecksum));
        let mut buf = PACKET;
        buf[15] = 0x0b; // source changed, checksum stale
        assert_eq!(
            Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()),
            Err(Error::BadChecksum)
        );
    }

    fn any_repr() -> impl Strategy<Value = Ipv4Repr> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            0..=1480usize,
            any::<u8>(),
            any::<bool>(),
            any::<u16>(),
        )
            .prop_map(|(s, d, p, len, ttl, df, ident)| Ipv4Repr {
                src_addr: Ipv4Addr::from(s),
                dst_addr: Ipv4Addr::from(d),
                next_header: IpProtocol::from(p),
                payload_len: len,
                hop_limit: ttl,
                dont_frag: df,
                ident,
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(packet) = Ipv4Packet::new_checked(&data[..]) {
                let _ = (packet.version(), packet.header_len(), packet.dscp(), packet.ecn());
                let _ = (packet.total_len(), packet.ident(), packet.dont_frag(), packet.more_frags());
                let _ = (packet.frag_offset(), packet.is_fragment(), packet.hop_limit());
                let _ = (packet.next_header(), packet.checksum(), packet.src_addr(), packet.dst_addr());
                let _ = (packet.options(), packet.verify_checksum(), packet.payload());
                let _ = packet.reserved_flag();
                if let Ok(repr) = Ipv4Repr::parse(&packet) {
                    prop_assert_eq!(repr.payload_len, packet.payload().len());
                }
            }
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&data[..]));
        }

        #[test]
        fn arbitrary_headers_check_and_decrement(mut data in proptest::collection::vec(any::<u8>(), 20..80)) {
            // Make the lengths consistent so most cases get past check_len.
            let ihl = 5 + (data[0] % 11);
            data[0] = 0x40 | ihl;
            let hl = usize::from(ihl) * 4;
            if data.len() >= hl {
                let total = data.len() as u16;
                data[2..4].copy_from_slice(&total.to_be_bytes());
                let mut packet = Ipv4Packet::new_checked(&mut data[..]).unwrap();
                packet.fill_checksum();
                prop_assert!(packet.verify_checksum());
                if packet.hop_limit() > 0 {
                    packet.decrement_hop_limit();
                    prop_assert!(packet.verify_checksum());
                }
            }
        }

        #[test]
        fn repr_round_trips(repr in any_repr()) {
            let mut buf = vec![0xa5u8; HEADER_LEN + repr.payload_len];
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
            let packet = Ipv4Packet::new_checked(&buf[..]).unwrap();
            prop_assert_eq!(Ipv4Repr::parse(&packet), Ok(repr));
        }
    }
}
