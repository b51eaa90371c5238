//! ARP packets for IPv4 over Ethernet (RFC 826).
//!
//! RFC 826 defines ARP for any hardware and protocol address sizes; this stack only
//! speaks Ethernet/IPv4. [`ArpPacket::check_len`] therefore refuses anything else with
//! [`Error::Unsupported`] (hardware type 1, protocol type `0x0800`, hardware length 6,
//! protocol length 4) and then requires the 28 bytes those lengths imply, so the address
//! getters can use fixed offsets.
//!
//! **Panics:** after `new_checked` (or `check_len`) succeeds, no getter of [`ArpPacket`]
//! can panic. Setters, and getters on a view made with `new_unchecked` over a buffer
//! shorter than [`PACKET_LEN`], panic on out-of-bounds access.
//!
//! A buffer may be longer than 28 bytes (the Ethernet minimum frame size pads ARP to 46
//! bytes of payload); the extra bytes are ignored.

use core::net::Ipv4Addr;

use super::{enum_with_unknown, Error, EthernetAddress, Result};

/// The ARP hardware type of Ethernet (RFC 826; IANA "Hardware Types").
pub const HARDWARE_ETHERNET: u16 = 1;

/// The ARP protocol type of IPv4 (its EtherType).
pub const PROTOCOL_IPV4: u16 = 0x0800;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

enum_with_unknown! {
    /// The ARP operation code (RFC 826; IANA "Operation Codes").
    pub enum ArpOperation(u16) {
        /// A request: who has `target_protocol_addr`?
        Request = 1,
        /// A reply: `source_protocol_addr` is at `source_hardware_addr`.
        Reply = 2,
    }
}

mod field {
    use core::ops::Range;

    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    // Fixed offsets for hardware length 6 and protocol length 4 (checked by `check_len`).
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of the fixed part, before the addresses.
const FIXED_LEN: usize = 8;

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

/// A view over an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps `buffer` without checking it (for emitting into a buffer of [`PACKET_LEN`]).
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer is a whole Ethernet/IPv4 ARP packet.
    ///
    /// Errors: [`Error::Truncated`] when shorter than the 8-byte fixed part or than the
    /// `8 + 2 * (hlen + plen)` bytes the length fields imply; [`Error::Unsupported`] when
    /// the hardware or protocol type or length is not Ethernet/IPv4.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < FIXED_LEN {
            return Err(Error::Truncated);
        }
        if be16(&data[field::HTYPE]) != HARDWARE_ETHERNET
            || be16(&data[field::PTYPE]) != PROTOCOL_IPV4
            || data[field::HLEN] != 6
            || data[field::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        let needed =
            FIXED_LEN + 2 * (usize::from(data[field::HLEN]) + usize::from(data[field::PLEN]));
        if data.len() < needed {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The hardware type (1 for Ethernet).
    #[inline]
    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }

    /// The protocol type (`0x0800` for IPv4).
    #[inline]
    pub fn protocol_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PTYPE])
    }

    /// The hardware address length in bytes.
    #[inline]
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// The protocol address length in bytes.
    #[inline]
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// The operation.
    #[inline]
    pub fn operation(&self) -> ArpOperation {
        ArpOperation::from(be16(&self.buffer.as_ref()[field::OPER]))
    }

    /// The sender's hardware address.
    #[inline]
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SHA])
    }

    /// The sender's protocol address.
    #[inline]
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SPA])
    }

    /// The target's hardware address (ignored in a request).
    #[inline]
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::THA])
    }

    /// The target's protocol address.
    #[inline]
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets the hardware type.
    #[inline]
    pub fn set_hardware_type(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::HTYPE], value);
    }

    /// Sets the protocol type.
    #[inline]
    pub fn set_protocol_type(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::PTYPE], value);
    }

    /// Sets the hardware address length.
    #[inline]
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HLEN] = value;
    }

    /// Sets the protocol address length.
    #[inline]
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PLEN] = value;
    }

    /// Sets the operation.
    #[inline]
    pub fn set_operation(&mut self, value: ArpOperation) {
        put16(&mut self.buffer.as_mut()[field::OPER], value.into());
    }

    /// Sets the sender's hardware address.
    #[inline]
    pub fn set_source_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(addr.as_bytes());
    }

    /// Sets the sender's protocol address.
    #[inline]
    pub fn set_source_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&addr.octets());
    }

    /// Sets the target's hardware address.
    #[inline]
    pub fn set_target_hardware_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(addr.as_bytes());
    }

    /// Sets the target's protocol address.
    #[inline]
    pub fn set_target_protocol_addr(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&addr.octets());
    }
}

/// The parsed form of an Ethernet/IPv4 ARP packet.
///
/// The operation is kept as read: an [`ArpOperation::Unknown`] opcode (RARP, InARP) is
/// not a parse error, and the ARP handler decides what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// The operation.
    pub operation: ArpOperation,
    /// The sender's hardware address.
    pub source_hardware_addr: EthernetAddress,
    /// The sender's protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// The target's hardware address.
    pub target_hardware_addr: EthernetAddress,
    /// The target's protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Reads `packet`, failing as [`ArpPacket::check_len`] does.
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// The length of the packet this emits: [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the whole packet into `packet`, which must be at least [`PACKET_LEN`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(PROTOCOL_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // "Who has 192.0.2.1? Tell 192.0.2.10", from 02:42:ac:11:00:02.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, // Ethernet
        0x08, 0x00, // IPv4
        0x06, 0x04, // lengths
        0x00, 0x01, // request
        0x02, 0x42, 0xac, 0x11, 0x00, 0x02, // sender MAC
        0xc0, 0x00, 0x02, 0x0a, // sender IP
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC (unknown)
        0xc0, 0x00, 0x02, 0x01, // target IP
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]),
            source_protocol_addr: Ipv4Addr::new(192, 0, 2, 10),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
        }
    }

    #[test]
    fn read_fields() {
        let packet = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!(packet.hardware_len(), 6);
        assert_eq!(packet.protocol_len(), 4);
        assert_eq!(packet.operation(), ArpOperation::Request);
        assert_eq!(
            packet.source_hardware_addr(),
            EthernetAddress([0x02, 0x42, 0xac, 0x11, 0x00, 0x02])
        );
        assert_eq!(packet.source_protocol_addr(), Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(packet.target_hardware_addr(), EthernetAddress([0; 6]));
        assert_eq!(packet.target_protocol_addr(), Ipv4Addr::new(192, 0, 2, 1));
    }

    #[test]
    fn write_fields() {
        let mut buf = [0xa5u8; 28];
        let mut packet = ArpPacket::new_unchecked(&mut buf[..]);
        packet.set_hardware_type(1);
        packet.set_protocol_type(0x0800);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(ArpOperation::Request);
        packet.set_source_hardware_addr(EthernetAddress([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]));
        packet.set_source_protocol_addr(Ipv4Addr::new(192, 0, 2, 10));
        packet.set_target_hardware_addr(EthernetAddress([0; 6]));
        packet.set_target_protocol_addr(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn parse_repr() {
        let packet = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(request_repr()));
    }

    #[test]
    fn emit_repr() {
        let repr = request_repr();
        assert_eq!(repr.buffer_len(), 28);
        let mut buf = [0xa5u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn reply_round_trips() {
        let repr = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            source_protocol_addr: Ipv4Addr::new(192, 0, 2, 1),
            target_hardware_addr: EthernetAddress([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]),
            target_protocol_addr: Ipv4Addr::new(192, 0, 2, 10),
        };
        let mut buf = [0u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(&buf[6..8], &[0x00, 0x02]);
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()),
            Ok(repr)
        );
    }

    #[test]
    fn padded_packet_is_accepted() {
        // As received in a minimum-size Ethernet frame: 18 bytes of trailing padding.
        let mut buf = [0u8; 46];
        buf[..28].copy_from_slice(&REQUEST);
        let packet = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(request_repr()));
    }

    #[test]
    fn unknown_operation_is_kept() {
        let mut buf = REQUEST;
        buf[7] = 3; // RARP request
        let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
        assert_eq!(repr.operation, ArpOperation::Unknown(3));
    }

    #[test]
    fn truncated_packets_are_refused() {
        for len in 0..PACKET_LEN {
            assert_eq!(
                ArpPacket::new_checked(&REQUEST[..len]).err(),
                Some(Error::Truncated),
                "len {len}"
            );
            assert_eq!(
                ArpRepr::parse(&ArpPacket::new_unchecked(&REQUEST[..len])),
                Err(Error::Truncated)
            );
        }
    }

    #[test]
    fn other_hardware_or_protocol_is_unsupported() {
        let cases: [(usize, u8); 5] = [
            (1, 6),    // hardware type IEEE 802
            (2, 0x86), // protocol type 0x86dd
            (3, 0x06), // protocol type 0x0806
            (4, 8),    // hardware length 8
            (5, 16),   // protocol length 16
        ];
        for (at, value) in cases {
            let mut buf = REQUEST;
            buf[at] = value;
            assert_eq!(
                ArpPacket::new_checked(&buf[..]).err(),
                Some(Error::Unsupported),
                "{at}"
            );
            // The type check comes before the length check.
            assert_eq!(
                ArpPacket::new_checked(&buf[..8]).err(),
                Some(Error::Unsupported),
                "{at}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..48)) {
            if let Ok(packet) = ArpPacket::new_checked(&data[..]) {
                let _ = (packet.hardware_type(), packet.protocol_type());
                let _ = (packet.hardware_len(), packet.protocol_len(), packet.operation());
                let _ = (packet.source_hardware_addr(), packet.source_protocol_addr());
                let _ = (packet.target_hardware_addr(), packet.target_protocol_addr());
            }
            let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&data[..]));
        }

        #[test]
        fn arbitrary_addresses_round_trip(
            op in any::<u16>(),
            sha in any::<[u8; 6]>(),
            spa in any::<u32>(),
            tha in any::<[u8; 6]>(),
            tpa in any::<u32>(),
        ) {
            let mut buf = REQUEST;
            buf[6..8].copy_from_slice(&op.to_be_bytes());
            buf[8..14].copy_from_slice(&sha);
            buf[14..18].copy_from_slice(&spa.to_be_bytes());
            buf[18..24].copy_from_slice(&tha);
            buf[24..28].copy_from_slice(&tpa.to_be_bytes());
            let repr = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()).unwrap();
            let mut out = [0xa5u8; 28];
            repr.emit(&mut ArpPacket::new_unchecked(&mut out[..]));
            prop_assert_eq!(out, buf);
        }
    }
}
