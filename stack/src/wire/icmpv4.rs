//! ICMP for IPv4 (RFC 792), with the Path MTU field of RFC 1191.
//!
//! [`Icmpv4Packet`] is a view over an ICMP message (the IPv4 payload): once
//! [`Icmpv4Packet::new_checked`] has returned `Ok`, **no getter can panic**, whatever the
//! bytes. [`Icmpv4Repr`] parses and emits the messages this stack answers or sends: echo,
//! destination unreachable, time exceeded and parameter problem; others come out as
//! [`Icmpv4Repr::Other`].

use crate::wire::{checksum, enum_with_unknown, Error, Result};

enum_with_unknown! {
    /// ICMPv4 message types (RFC 792; RFC 1256 for router discovery).
    pub enum Icmpv4Message(u8) {
        /// Echo reply.
        EchoReply = 0,
        /// Destination unreachable.
        DstUnreachable = 3,
        /// Source quench (deprecated by RFC 6633).
        SourceQuench = 4,
        /// Redirect.
        Redirect = 5,
        /// Echo request.
        EchoRequest = 8,
        /// Router advertisement (RFC 1256).
        RouterAdvert = 9,
        /// Router solicitation (RFC 1256).
        RouterSolicit = 10,
        /// Time exceeded.
        TimeExceeded = 11,
        /// Parameter problem.
        ParamProblem = 12,
        /// Timestamp request.
        Timestamp = 13,
        /// Timestamp reply.
        TimestampReply = 14,
    }
}

impl Icmpv4Message {
    /// True for the error messages (destination unreachable, source quench, redirect,
    /// time exceeded, parameter problem): a node never answers one of these with an ICMP
    /// error (RFC 1812 §4.3.2.7, RFC 1122 §3.2.2).
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Icmpv4Message::DstUnreachable
                | Icmpv4Message::SourceQuench
                | Icmpv4Message::Redirect
                | Icmpv4Message::TimeExceeded
                | Icmpv4Message::ParamProblem
        )
    }
}

enum_with_unknown! {
    /// Codes of Destination Unreachable (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
    pub enum Icmpv4DstUnreachable(u8) {
        /// Network unreachable.
        NetUnreachable = 0,
        /// Host unreachable.
        HostUnreachable = 1,
        /// Protocol unreachable.
        ProtoUnreachable = 2,
        /// Port unreachable.
        PortUnreachable = 3,
        /// Fragmentation needed and DF set; the message carries the next-hop MTU
        /// (RFC 1191 §4).
        FragRequired = 4,
        /// Source route failed.
        SrcRouteFailed = 5,
        /// Destination network unknown.
        DstNetUnknown = 6,
        /// Destination host unknown.
        DstHostUnknown = 7,
        /// Source host isolated.
        SrcHostIsolated = 8,
        /// Network administratively prohibited.
        NetProhibited = 9,
        /// Host administratively prohibited.
        HostProhibited = 10,
        /// Network unreachable for type of service.
        NetUnreachToS = 11,
        /// Host unreachable for type of service.
        HostUnreachToS = 12,
        /// Communication administratively prohibited (RFC 1812).
        CommProhibited = 13,
        /// Host precedence violation (RFC 1812).
        HostPrecedViol = 14,
        /// Precedence cutoff in effect (RFC 1812).
        PrecedCutoff = 15,
    }
}

enum_with_unknown! {
    /// Codes of Time Exceeded (RFC 792).
    pub enum Icmpv4TimeExceeded(u8) {
        /// Time to live exceeded in transit.
        TtlExpired = 0,
        /// Fragment reassembly time exceeded.
        FragExpired = 1,
    }
}

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The four bytes after the checksum, whose meaning depends on the type.
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Next-hop MTU of Destination Unreachable, code 4 (RFC 1191 §4).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Pointer of Parameter Problem (RFC 792).
    pub const POINTER: usize = 4;
    pub const HEADER_END: usize = 8;
}

/// The most bytes of the offending datagram a router quotes in an ICMP error, so that the
/// whole IPv4 datagram carrying the error fits 576 bytes (RFC 1812 §4.3.2.3):
/// 576 - 20 (IPv4 header) - 8 (ICMP header).
pub const MAX_ERROR_QUOTE: usize = 548;

/// The fewest bytes of the offending datagram an error must quote to be parsed: its
/// IPv4 header without options. (RFC 1122 §3.2.2 asks senders for the header and 8 bytes
/// more; a datagram may be shorter than that.)
pub const MIN_ERROR_QUOTE: usize = 20;

/// A view of an ICMPv4 message in a buffer: exactly the message, as the checksum covers
/// the whole buffer.
///
/// After [`Icmpv4Packet::new_checked`] no getter panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// The length of the header: type, code, checksum and four type-specific bytes.
    pub const HEADER_LEN: usize = field::HEADER_END;

    /// Wraps `buffer` without checking it; for emitting into a buffer the caller sized.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps `buffer` and checks that it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
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

    fn read_u16(&self, at: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> Icmpv4Message {
        Icmpv4Message::from(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        self.read_u16(field::CHECKSUM.start)
    }

    /// The identifier of an echo request or reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        self.read_u16(field::ECHO_IDENT.start)
    }

    /// The sequence number of an echo request or reply.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        self.read_u16(field::ECHO_SEQNO.start)
    }

    /// The next-hop MTU of a Destination Unreachable, Fragmentation Needed (RFC 1191 §4);
    /// zero from routers that predate RFC 1191.
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        self.read_u16(field::NEXT_HOP_MTU.start)
    }

    /// The pointer of a Parameter Problem: the offset of the offending byte in the quoted
    /// datagram (RFC 792).
    #[inline]
    pub fn param_problem_ptr(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The four type-specific bytes after the checksum, as one big-endian word (the
    /// gateway address of a Redirect, for instance).
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// True when the checksum over the whole buffer verifies (RFC 792).
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.buffer.as_ref()) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv4Packet<&'a T> {
    /// The bytes after the 8-byte header: echo data, or the quoted datagram of an error.
    #[inline]
    pub fn data(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::HEADER_END..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn write_u16(&mut self, at: usize, value: u16) {
        self.buffer.as_mut()[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, kind: Icmpv4Message) {
        self.buffer.as_mut()[field::TYPE] = kind.into();
    }

    /// Sets the message code.
    #[inline]
    pub fn set_msg_code(&mut self, code: u8) {
        self.buffer.as_mut()[field::CODE] = code;
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        self.write_u16(field::CHECKSUM.start, value);
    }

    /// Sets the identifier of an echo request or reply.
    #[inline]
    pub fn set_echo_ident(&mut self, ident: u16) {
        self.write_u16(field::ECHO_IDENT.start, ident);
    }

    /// Sets the sequence number of an echo request or reply.
    #[inline]
    pub fn set_echo_seq_no(&mut self, seq_no: u16) {
        self.write_u16(field::ECHO_SEQNO.start, seq_no);
    }

    /// Sets the next-hop MTU (bytes 6..8; bytes 4..6 are left alone and should be zero).
    #[inline]
    pub fn set_next_hop_mtu(&mut self, mtu: u16) {
        self.write_u16(field::NEXT_HOP_MTU.start, mtu);
    }

    /// Sets the pointer of a Parameter Problem (byte 4; bytes 5..8 are left alone and
    /// should be zero).
    #[inline]
    pub fn set_param_problem_ptr(&mut self, pointer: u8) {
        self.buffer.as_mut()[field::POINTER] = pointer;
    }

    /// Sets the four type-specific bytes after the checksum.
    #[inline]
    pub fn set_rest_of_header(&mut self, value: u32) {
        self.buffer.as_mut()[field::REST].copy_from_slice(&value.to_be_bytes());
    }

    /// Computes the checksum over the whole buffer and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let sum = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(sum);
    }

    /// The bytes after the 8-byte header, mutable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_END..]
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv4Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed ICMPv4 message.
///
/// `data` of an error message is the quoted offending datagram: its IPv4 header and at
/// least the first 8 bytes of its payload (RFC 1122 §3.2.2; RFC 1812 §4.3.2.3 lets a
/// router quote up to [`MAX_ERROR_QUOTE`] bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, returned unchanged in the reply.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data of the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// The code.
        reason: Icmpv4DstUnreachable,
        /// Next-hop MTU (RFC 1191 §4); meaningful for `FragRequired`, zero otherwise.
        next_hop_mtu: u16,
        /// The quoted datagram.
        data: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// The code.
        reason: Icmpv4TimeExceeded,
        /// The quoted datagram.
        data: &'a [u8],
    },
    /// Parameter problem (type 12).
    ParamProblem {
        /// The code (0: the pointer indicates the error).
        code: u8,
        /// Offset of the offending byte in the quoted datagram.
        pointer: u8,
        /// The quoted datagram.
        data: &'a [u8],
    },
    /// Any other message, kept as raw fields.
    Other {
        /// The message type.
        msg_type: Icmpv4Message,
        /// The code.
        code: u8,
        /// The four type-specific bytes after the checksum.
        rest_of_header: u32,
        /// The bytes after the 8-byte header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message and verifies its checksum (`BadChecksum`).
    ///
    /// Echo messages are accepted whatever their code (RFC 792 sets it to zero; like
    /// common stacks, the receiver does not check). Error messages must quote at least
    /// [`MIN_ERROR_QUOTE`] bytes (`Truncated`).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv4Packet<&'a T>) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data = packet.data();
        let msg_type = packet.msg_type();
        if msg_type.is_error() && data.len() < MIN_ERROR_QUOTE {
            return Err(Error::Truncated);
        }
        Ok(match msg_type {
            Icmpv4Message::EchoRequest => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Icmpv4Message::EchoReply => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Icmpv4Message::DstUnreachable => Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::from(packet.msg_code()),
                next_hop_mtu: packet.next_hop_mtu(),
                data,
            },
            Icmpv4Message::TimeExceeded => Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::from(packet.msg_code()),
                data,
            },
            Icmpv4Message::ParamProblem => Icmpv4Repr::ParamProblem {
                code: packet.msg_code(),
                pointer: packet.param_problem_ptr(),
                data,
            },
            msg_type => Icmpv4Repr::Other {
                msg_type,
                code: packet.msg_code(),
                rest_of_header: packet.rest_of_header(),
                data,
            },
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv4Message {
        match self {
            Icmpv4Repr::EchoRequest { .. } => Icmpv4Message::EchoRequest,
            Icmpv4Repr::EchoReply { .. } => Icmpv4Message::EchoReply,
            Icmpv4Repr::DstUnreachable { .. } => Icmpv4Message::DstUnreachable,
            Icmpv4Repr::TimeExceeded { .. } => Icmpv4Message::TimeExceeded,
            Icmpv4Repr::ParamProblem { .. } => Icmpv4Message::ParamProblem,
            Icmpv4Repr::Other { msg_type, .. } => *msg_type,
        }
    }

    fn data(&self) -> &'a [u8] {
        match *self {
            Icmpv4Repr::EchoRequest { data, .. }
            | Icmpv4Repr::EchoReply { data, .. }
            | Icmpv4Repr::DstUnreachable { data, .. }
            | Icmpv4Repr::TimeExceeded { data, .. }
            | Icmpv4Repr::ParamProblem { data, .. }
            | Icmpv4Repr::Other { data, .. } => data,
        }
    }

    /// The length of the emitted message: 8 bytes of header and the data.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_END + self.data().len()
    }

    /// Writes the message into `packet`, copies the data and fills the checksum.
    ///
    /// The buffer must be exactly [`Icmpv4Repr::buffer_len`] bytes long: the checksum
    /// covers all of it.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`Icmpv4Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv4Packet<T>) {
        packet.set_msg_type(self.msg_type());
        match *self {
            Icmpv4Repr::EchoRequest { ident, seq_no, .. }
            | Icmpv4Repr::EchoReply { ident, seq_no, .. } => {
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                ..
            } => {
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(u32::from(next_hop_mtu));
            }
            Icmpv4Repr::TimeExceeded { reason, .. } => {
                packet.set_msg_code(reason.into());
                packet.set_rest_of_header(0);
            }
            Icmpv4Repr::ParamProblem { code, pointer, .. } => {
                packet.set_msg_code(code);
                packet.set_rest_of_header(u32::from(pointer) << 24);
            }
            Icmpv4Repr::Other {
                code,
                rest_of_header,
                ..
            } => {
                packet.set_msg_code(code);
                packet.set_rest_of_header(rest_of_header);
            }
        }
        let data = self.data();
        packet.data_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ping -c 1 -s 56` from iputils: ident 0x1a2b, sequence 1, a 16-byte timestamp,
    // then the pattern 0x10, 0x11, ...
    static ECHO_REQUEST: [u8; 64] = [
        0x08, 0x00, 0xc3, 0x8d, 0x1a, 0x2b, 0x00, 0x01, 0x5c, 0x6a, 0x1f, 0x67, 0x00, 0x00, 0x00,
        0x00, 0xd3, 0xa1, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    // The reply to it.
    static ECHO_REPLY: [u8; 64] = [
        0x00, 0x00, 0xcb, 0x8d, 0x1a, 0x2b, 0x00, 0x01, 0x5c, 0x6a, 0x1f, 0x67, 0x00, 0x00, 0x00,
        0x00, 0xd3, 0xa1, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
        0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
        0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33,
        0x34, 0x35, 0x36, 0x37,
    ];

    // Fragmentation needed, next-hop MTU 1400, quoting a 1500-byte TCP segment with DF
    // from 192.0.2.10 to 198.51.100.20:443 (IPv4 header and 8 bytes of TCP).
    static FRAG_NEEDED: [u8; 36] = [
        0x03, 0x04, 0x9c, 0x68, 0x00, 0x00, 0x05, 0x78, 0x45, 0x00, 0x05, 0xdc, 0x3c, 0x1d, 0x40,
        0x00, 0x3f, 0x06, 0x0d, 0xad, 0xc0, 0x00, 0x02, 0x0a, 0xc6, 0x33, 0x64, 0x14, 0xc0, 0x00,
        0x01, 0xbb, 0x8d, 0x3e, 0x0c, 0x21,
    ];

    // TTL exceeded in transit, quoting a traceroute UDP probe (TTL 1) to
    // 203.0.113.7:33434.
    static TTL_EXPIRED: [u8; 36] = [
        0x0b, 0x00, 0x75, 0xee, 0x00, 0x00, 0x00, 0x00, 0x45, 0x00, 0x00, 0x34, 0x7a, 0x11, 0x00,
        0x00, 0x01, 0x11, 0x41, 0x96, 0xc0, 0x00, 0x02, 0x0a, 0xcb, 0x00, 0x71, 0x07, 0xa0, 0x28,
        0x82, 0x9a, 0x00, 0x20, 0x5c, 0x2e,
    ];

    fn echo_data() -> &'static [u8] {
        &ECHO_REQUEST[8..]
    }

    fn emitted(repr: &Icmpv4Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]));
        buf
    }

    #[test]
    fn message_classes() {
        for t in [3u8, 4, 5, 11, 12] {
            assert!(Icmpv4Message::from(t).is_error(), "type {t}");
        }
        for t in [0u8, 8, 9, 10, 13, 14, 42] {
            assert!(!Icmpv4Message::from(t).is_error(), "type {t}");
        }
        assert_eq!(
            Icmpv4DstUnreachable::from(4),
            Icmpv4DstUnreachable::FragRequired
        );
        assert_eq!(u8::from(Icmpv4DstUnreachable::PrecedCutoff), 15);
        assert_eq!(Icmpv4TimeExceeded::from(1), Icmpv4TimeExceeded::FragExpired);
    }

    #[test]
    fn echo_request_read_fields() {
        let p = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xc38d);
        assert_eq!(p.echo_ident(), 0x1a2b);
        assert_eq!(p.echo_seq_no(), 1);
        assert_eq!(p.data(), echo_data());
        assert!(p.verify_checksum());
    }

    #[test]
    fn echo_request_write_fields() {
        let mut buf = [0xa5u8; 64];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(0x1a2b);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(echo_data());
        p.fill_checksum();
        assert_eq!(buf, ECHO_REQUEST);
    }

    #[test]
    fn echo_request_parse() {
        let p = Icmpv4Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Ok(Icmpv4Repr::EchoRequest {
                ident: 0x1a2b,
                seq_no: 1,
                data: echo_data()
            })
        );
    }

    #[test]
    fn echo_request_emit() {
        let repr = Icmpv4Repr::EchoRequest {
            ident: 0x1a2b,
            seq_no: 1,
            data: echo_data(),
        };
        assert_eq!(emitted(&repr), ECHO_REQUEST);
    }

    #[test]
    fn echo_reply_read_fields() {
        let p = Icmpv4Packet::new_checked(&ECHO_REPLY[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::EchoReply);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xcb8d);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x1a2b, 1));
        assert_eq!(p.data(), echo_data());
        assert!(p.verify_checksum());
    }

    #[test]
    fn echo_reply_write_fields() {
        let mut buf = [0xa5u8; 64];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::EchoReply);
        p.set_msg_code(0);
        p.set_echo_ident(0x1a2b);
        p.set_echo_seq_no(1);
        p.data_mut().copy_from_slice(echo_data());
        p.fill_checksum();
        assert_eq!(buf, ECHO_REPLY);
    }

    #[test]
    fn echo_reply_parse() {
        let p = Icmpv4Packet::new_checked(&ECHO_REPLY[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Ok(Icmpv4Repr::EchoReply {
                ident: 0x1a2b,
                seq_no: 1,
                data: echo_data()
            })
        );
    }

    #[test]
    fn echo_reply_emit() {
        let repr = Icmpv4Repr::EchoReply {
            ident: 0x1a2b,
            seq_no: 1,
            data: echo_data(),
        };
        assert_eq!(emitted(&repr), ECHO_REPLY);
    }

    #[test]
    fn frag_needed_read_fields() {
        let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::DstUnreachable);
        assert_eq!(
            Icmpv4DstUnreachable::from(p.msg_code()),
            Icmpv4DstUnreachable::FragRequired
        );
        assert_eq!(p.checksum(), 0x9c68);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.data(), &FRAG_NEEDED[8..]);
        assert_eq!(p.data()[0], 0x45);
        assert!(p.verify_checksum());
    }

    #[test]
    fn frag_needed_write_fields() {
        let mut buf = [0xa5u8; 36];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::DstUnreachable);
        p.set_msg_code(Icmpv4DstUnreachable::FragRequired.into());
        p.set_rest_of_header(0);
        p.set_next_hop_mtu(1400);
        p.data_mut().copy_from_slice(&FRAG_NEEDED[8..]);
        p.fill_checksum();
        assert_eq!(buf, FRAG_NEEDED);
    }

    #[test]
    fn frag_needed_parse() {
        let p = Icmpv4Packet::new_checked(&FRAG_NEEDED[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Ok(Icmpv4Repr::DstUnreachable {
                reason: Icmpv4DstUnreachable::FragRequired,
                next_hop_mtu: 1400,
                data: &FRAG_NEEDED[8..],
            })
        );
    }

    #[test]
    fn frag_needed_emit() {
        let repr = Icmpv4Repr::DstUnreachable {
            reason: Icmpv4DstUnreachable::FragRequired,
            next_hop_mtu: 1400,
            data: &FRAG_NEEDED[8..],
        };
        assert_eq!(emitted(&repr), FRAG_NEEDED);
    }

    #[test]
    fn ttl_expired_read_fields() {
        let p = Icmpv4Packet::new_checked(&TTL_EXPIRED[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv4Message::TimeExceeded);
        assert_eq!(
            Icmpv4TimeExceeded::from(p.msg_code()),
            Icmpv4TimeExceeded::TtlExpired
        );
        assert_eq!(p.checksum(), 0x75ee);
        assert_eq!(p.rest_of_header(), 0);
        assert_eq!(p.data(), &TTL_EXPIRED[8..]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn ttl_expired_write_fields() {
        let mut buf = [0xa5u8; 36];
        let mut p = Icmpv4Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv4Message::TimeExceeded);
        p.set_msg_code(Icmpv4TimeExceeded::TtlExpired.into());
        p.set_rest_of_header(0);
        p.data_mut().copy_from_slice(&TTL_EXPIRED[8..]);
        p.fill_checksum();
        assert_eq!(buf, TTL_EXPIRED);
    }

    #[test]
    fn ttl_expired_parse() {
        let p = Icmpv4Packet::new_checked(&TTL_EXPIRED[..]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&p),
            Ok(Icmpv4Repr::TimeExceeded {
                reason: Icmpv4TimeExceeded::TtlExpired,
                data: &TTL_EXPIRED[8..],
            })
        );
    }

    #[test]
    fn ttl_expired_emit() {
        let repr = Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            data: &TTL_EXPIRED[8..],
        };
        assert_eq!(emitted(&repr), TTL_EXPIRED);
    }

    #[test]
    fn param_problem_and_other_round_trip() {
        let reprs = [
            Icmpv4Repr::ParamProblem {
                code: 0,
                pointer: 20,
                data: &TTL_EXPIRED[8..],
            },
            Icmpv4Repr::Other {
                msg_type: Icmpv4Message::Redirect,
                code: 1,
                rest_of_header: 0xc000_0201,
                data: &TTL_EXPIRED[8..],
            },
            Icmpv4Repr::Other {
                msg_type: Icmpv4Message::Timestamp,
                code: 0,
                rest_of_header: 0x0001_0002,
                data: &[0; 12],
            },
        ];
        for repr in reprs {
            let buf = emitted(&repr);
            let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
            assert_eq!(Icmpv4Repr::parse(&p), Ok(repr));
        }
        let repr = Icmpv4Repr::ParamProblem {
            code: 0,
            pointer: 20,
            data: &TTL_EXPIRED[8..],
        };
        assert_eq!(emitted(&repr)[4..8], [20, 0, 0, 0]);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for fixture in [&ECHO_REQUEST[..], &ECHO_REPLY, &FRAG_NEEDED, &TTL_EXPIRED] {
            for len in 0..fixture.len() {
                let Ok(p) = Icmpv4Packet::new_checked(&fixture[..len]) else {
                    assert!(len < 8);
                    continue;
                };
                // A shorter message no longer matches its checksum.
                assert!(Icmpv4Repr::parse(&p).is_err(), "len {len}");
            }
        }
    }

    #[test]
    fn short_quote_is_truncated() {
        // A valid checksum over an error that quotes less than an IPv4 header.
        let repr = Icmpv4Repr::TimeExceeded {
            reason: Icmpv4TimeExceeded::TtlExpired,
            data: &TTL_EXPIRED[8..27],
        };
        let buf = emitted(&repr);
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&p), Err(Error::Truncated));
    }

    #[test]
    fn bad_checksum_is_detected() {
        for fixture in [&ECHO_REQUEST[..], &ECHO_REPLY, &FRAG_NEEDED, &TTL_EXPIRED] {
            for at in [2, 5, fixture.len() - 1] {
                let mut buf = fixture.to_vec();
                buf[at] ^= 0x01;
                let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
                assert!(!p.verify_checksum());
                assert_eq!(Icmpv4Repr::parse(&p), Err(Error::BadChecksum));
            }
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
                let mut bytes = bytes;
                if let Ok(p) = Icmpv4Packet::new_checked(&bytes[..]) {
                    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident());
                    let _ = (p.echo_seq_no(), p.next_hop_mtu(), p.param_problem_ptr());
                    let _ = (p.rest_of_header(), p.data(), p.verify_checksum());
                    let _ = Icmpv4Repr::parse(&p);
                } else {
                    prop_assert!(bytes.len() < 8);
                    return Ok(());
                }
                // With a valid checksum, parse goes past the check; what it accepts
                // emits back to the same bytes, but for echo codes and unused fields.
                Icmpv4Packet::new_unchecked(&mut bytes[..]).fill_checksum();
                let p = Icmpv4Packet::new_checked(&bytes[..]).unwrap();
                if let Ok(repr) = Icmpv4Repr::parse(&p) {
                    prop_assert_eq!(repr.buffer_len(), bytes.len());
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]));
                    prop_assert_eq!(&out[8..], &bytes[8..]);
                }
            }
        }
    }
}
