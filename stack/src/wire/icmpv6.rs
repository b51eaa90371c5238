//! ICMP for IPv6 (RFC 4443); the Neighbor Discovery messages it carries are in
//! [`crate::wire::ndp`].
//!
//! [`Icmpv6Packet`] is a view over an ICMPv6 message (the upper-layer payload of an IPv6
//! packet), including the fixed fields of the Neighbor Discovery messages: once [`Icmpv6Packet::new_checked`] has returned `Ok`, **no getter can panic**,
//! whatever the bytes. The check makes sure the fields of the message's own type are
//! present; a getter for a field of another type reads as zero where the buffer is too
//! short for it, instead of panicking.
//!
//! [`Icmpv6Repr`] parses and emits the messages this stack answers or sends. The checksum
//! covers an IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1), so parsing and emitting
//! take the source and destination addresses.

use core::net::Ipv6Addr;

use crate::wire::ndp::NdiscRepr;
use crate::wire::{checksum, enum_with_unknown, Error, IpProtocol, Result};

enum_with_unknown! {
    /// ICMPv6 message types (RFC 4443 §2.1, RFC 4861 §4).
    pub enum Icmpv6Message(u8) {
        /// Destination unreachable (RFC 4443 §3.1).
        DstUnreachable = 1,
        /// Packet too big (RFC 4443 §3.2).
        PktTooBig = 2,
        /// Time exceeded (RFC 4443 §3.3).
        TimeExceeded = 3,
        /// Parameter problem (RFC 4443 §3.4).
        ParamProblem = 4,
        /// Echo request (RFC 4443 §4.1).
        EchoRequest = 128,
        /// Echo reply (RFC 4443 §4.2).
        EchoReply = 129,
        /// Router solicitation (RFC 4861 §4.1).
        RouterSolicit = 133,
        /// Router advertisement (RFC 4861 §4.2).
        RouterAdvert = 134,
        /// Neighbor solicitation (RFC 4861 §4.3).
        NeighborSolicit = 135,
        /// Neighbor advertisement (RFC 4861 §4.4).
        NeighborAdvert = 136,
        /// Redirect (RFC 4861 §4.5).
        Redirect = 137,
    }
}

impl Icmpv6Message {
    /// True for an error message: a type below 128 (RFC 4443 §2.1). A node never answers
    /// one with an ICMPv6 error (RFC 4443 §2.4 (e.1)); nor a Redirect (§2.4 (e.2)).
    pub fn is_error(&self) -> bool {
        u8::from(*self) < 128
    }

    /// True for a Neighbor Discovery message (types 133 to 137, RFC 4861 §4).
    pub fn is_ndisc(&self) -> bool {
        matches!(
            self,
            Icmpv6Message::RouterSolicit
                | Icmpv6Message::RouterAdvert
                | Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
                | Icmpv6Message::Redirect
        )
    }

    /// The shortest valid message of this type, in bytes: 4 for a type with no known
    /// body, 8 for the RFC 4443 types, the fixed part for Neighbor Discovery (RFC 4861 §4).
    pub fn min_len(&self) -> usize {
        match self {
            Icmpv6Message::RouterSolicit => 8,
            Icmpv6Message::RouterAdvert => 16,
            Icmpv6Message::NeighborSolicit | Icmpv6Message::NeighborAdvert => 24,
            Icmpv6Message::Redirect => 40,
            Icmpv6Message::Unknown(_) => field::BODY.start,
            _ => field::PAYLOAD_START,
        }
    }
}

enum_with_unknown! {
    /// Codes of Destination Unreachable (RFC 4443 §3.1).
    pub enum Icmpv6DstUnreachable(u8) {
        /// No route to destination.
        NoRoute = 0,
        /// Communication administratively prohibited.
        AdminProhibit = 1,
        /// Beyond scope of source address.
        BeyondScope = 2,
        /// Address unreachable.
        AddrUnreachable = 3,
        /// Port unreachable.
        PortUnreachable = 4,
        /// Source address failed ingress/egress policy.
        FailedPolicy = 5,
        /// Reject route to destination.
        RejectRoute = 6,
    }
}

enum_with_unknown! {
    /// Codes of Time Exceeded (RFC 4443 §3.3).
    pub enum Icmpv6TimeExceeded(u8) {
        /// Hop limit exceeded in transit.
        HopLimitExceeded = 0,
        /// Fragment reassembly time exceeded.
        FragReassemTimeExceeded = 1,
    }
}

enum_with_unknown! {
    /// Codes of Parameter Problem (RFC 4443 §3.4).
    pub enum Icmpv6ParamProblem(u8) {
        /// Erroneous header field encountered.
        ErroneousHdrField = 0,
        /// Unrecognized Next Header type encountered.
        UnrecognizedNxtHdr = 1,
        /// Unrecognized IPv6 option encountered.
        UnrecognizedOption = 2,
    }
}

mod field {
    use core::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// The 4-byte message body that starts every type of RFC 4443.
    pub const BODY: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const MTU: Range<usize> = 4..8;
    pub const POINTER: Range<usize> = 4..8;
    pub const PAYLOAD_START: usize = 8;

    // Router Advertisement (RFC 4861 §4.2).
    pub const CUR_HOP_LIMIT: usize = 4;
    pub const ROUTER_FLAGS: usize = 5;
    pub const ROUTER_LIFETIME: Range<usize> = 6..8;
    pub const REACHABLE_TIME: Range<usize> = 8..12;
    pub const RETRANS_TIME: Range<usize> = 12..16;
    // Neighbor Solicitation and Advertisement, Redirect (RFC 4861 §4.3-§4.5).
    pub const NEIGHBOR_FLAGS: usize = 4;
    pub const RESERVED: Range<usize> = 4..8;
    pub const TARGET_ADDR: Range<usize> = 8..24;
    pub const DEST_ADDR: Range<usize> = 24..40;
}

/// The most bytes of the invoking packet an error quotes, so that the error fits the
/// minimum IPv6 MTU (RFC 4443 §2.4 (c)): 1280 - 40 (IPv6 header) - 8 (ICMPv6 header).
pub const MAX_ERROR_QUOTE: usize = 1232;

/// The fewest bytes of the invoking packet an error must quote to be parsed: its IPv6
/// header.
pub const MIN_ERROR_QUOTE: usize = 40;

/// A view of an ICMPv6 message in a buffer: exactly the message, as the checksum covers
/// the whole buffer.
///
/// After [`Icmpv6Packet::new_checked`] no getter panics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// The length of the common header: type, code, checksum.
    pub const COMMON_HEADER_LEN: usize = field::BODY.start;
    /// The length of the header of the RFC 4443 messages: the common header and a 4-byte
    /// body (echo identifier and sequence number, MTU, pointer, or unused).
    pub const HEADER_LEN: usize = field::PAYLOAD_START;

    /// Wraps `buffer` without checking it; for emitting into a buffer the caller sized.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps `buffer` and checks its length against the message type.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 4-byte common header and the fixed part of the
    /// message type ([`Icmpv6Message::min_len`]): 8 bytes for the RFC 4443 types, 8 to 40
    /// for Neighbor Discovery.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < Self::COMMON_HEADER_LEN || len < self.msg_type().min_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Unwraps the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `N` bytes at `at`, or zeros where the buffer is too short (a field of another
    /// message type): this keeps every getter free of panics.
    #[inline]
    fn read<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(b) = self.buffer.as_ref().get(at..at + N) {
            out.copy_from_slice(b);
        }
        out
    }

    /// The message type (reads 0 on a buffer shorter than one byte, before `check_len`).
    #[inline]
    pub fn msg_type(&self) -> Icmpv6Message {
        Icmpv6Message::from(self.read::<1>(field::TYPE)[0])
    }

    /// The message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.read::<1>(field::CODE)[0]
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes(self.read(field::CHECKSUM.start))
    }

    /// The identifier of an echo request or reply.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        u16::from_be_bytes(self.read(field::ECHO_IDENT.start))
    }

    /// The sequence number of an echo request or reply.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        u16::from_be_bytes(self.read(field::ECHO_SEQNO.start))
    }

    /// The MTU of the next-hop link in a Packet Too Big (RFC 4443 §3.2).
    #[inline]
    pub fn pkt_too_big_mtu(&self) -> u32 {
        u32::from_be_bytes(self.read(field::MTU.start))
    }

    /// The pointer of a Parameter Problem: the offset of the error in the invoking packet
    /// (RFC 4443 §3.4).
    #[inline]
    pub fn param_problem_ptr(&self) -> u32 {
        u32::from_be_bytes(self.read(field::POINTER.start))
    }

    fn checksum_sum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        // An ICMPv6 message fits an IPv6 packet, far below 4 GiB; saturate regardless.
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let pseudo = checksum::pseudo_header_v6(*src, *dst, IpProtocol::Icmpv6.into(), len);
        checksum::combine(&[pseudo, checksum::data(data)])
    }

    /// True when the checksum over the pseudo-header and the whole buffer verifies
    /// (RFC 4443 §2.3).
    pub fn verify_checksum(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum_sum(src, dst) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv6Packet<&'a T> {
    /// The bytes after the 8-byte header: echo data, or the invoking packet quoted in an
    /// error (empty when the buffer is shorter).
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.buffer
            .as_ref()
            .get(field::PAYLOAD_START..)
            .unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets the message type.
    #[inline]
    pub fn set_msg_type(&mut self, kind: Icmpv6Message) {
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
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the identifier of an echo request or reply.
    #[inline]
    pub fn set_echo_ident(&mut self, ident: u16) {
        self.buffer.as_mut()[field::ECHO_IDENT].copy_from_slice(&ident.to_be_bytes());
    }

    /// Sets the sequence number of an echo request or reply.
    #[inline]
    pub fn set_echo_seq_no(&mut self, seq_no: u16) {
        self.buffer.as_mut()[field::ECHO_SEQNO].copy_from_slice(&seq_no.to_be_bytes());
    }

    /// Sets the MTU of a Packet Too Big.
    #[inline]
    pub fn set_pkt_too_big_mtu(&mut self, mtu: u32) {
        self.buffer.as_mut()[field::MTU].copy_from_slice(&mtu.to_be_bytes());
    }

    /// Sets the pointer of a Parameter Problem.
    #[inline]
    pub fn set_param_problem_ptr(&mut self, pointer: u32) {
        self.buffer.as_mut()[field::POINTER].copy_from_slice(&pointer.to_be_bytes());
    }

    /// Zeroes the 4-byte body, the Unused field of Destination Unreachable and Time
    /// Exceeded (RFC 4443 §3.1, §3.3).
    #[inline]
    pub fn clear_body(&mut self) {
        self.buffer.as_mut()[field::BODY].fill(0);
    }

    /// The bytes after the 8-byte header, mutable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD_START..]
    }

    /// Computes the checksum over the pseudo-header and the whole buffer and writes it
    /// (RFC 4443 §2.3).
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        self.set_checksum(0);
        let sum = !self.checksum_sum(src, dst);
        self.set_checksum(sum);
    }
}

/// Managed address configuration flag of a Router Advertisement.
const RA_FLAG_MANAGED: u8 = 0x80;
/// Other configuration flag of a Router Advertisement.
const RA_FLAG_OTHER: u8 = 0x40;
/// Router flag of a Neighbor Advertisement.
const NA_FLAG_ROUTER: u8 = 0x80;
/// Solicited flag of a Neighbor Advertisement.
const NA_FLAG_SOLICITED: u8 = 0x40;
/// Override flag of a Neighbor Advertisement.
const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Where the options start in a message of type `kind`, if it is a Neighbor Discovery
/// type: right after its fixed part (RFC 4861 §4.1-§4.5).
fn options_offset(kind: Icmpv6Message) -> Option<usize> {
    kind.is_ndisc().then(|| kind.min_len())
}

/// Getters and setters for the Neighbor Discovery fields of an ICMPv6 message.
impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Cur Hop Limit of a Router Advertisement (0: unspecified).
    #[inline]
    pub fn current_hop_limit(&self) -> u8 {
        self.read::<1>(field::CUR_HOP_LIMIT)[0]
    }

    /// The M (managed address configuration) flag of a Router Advertisement.
    #[inline]
    pub fn managed_flag(&self) -> bool {
        self.read::<1>(field::ROUTER_FLAGS)[0] & RA_FLAG_MANAGED != 0
    }

    /// The O (other configuration) flag of a Router Advertisement.
    #[inline]
    pub fn other_flag(&self) -> bool {
        self.read::<1>(field::ROUTER_FLAGS)[0] & RA_FLAG_OTHER != 0
    }

    /// Router Lifetime of a Router Advertisement, in seconds (0: not a default router).
    #[inline]
    pub fn router_lifetime(&self) -> u16 {
        u16::from_be_bytes(self.read(field::ROUTER_LIFETIME.start))
    }

    /// Reachable Time of a Router Advertisement, in milliseconds (0: unspecified).
    #[inline]
    pub fn reachable_time(&self) -> u32 {
        u32::from_be_bytes(self.read(field::REACHABLE_TIME.start))
    }

    /// Retrans Timer of a Router Advertisement, in milliseconds (0: unspecified).
    #[inline]
    pub fn retrans_time(&self) -> u32 {
        u32::from_be_bytes(self.read(field::RETRANS_TIME.start))
    }

    /// Target Address of a Neighbor Solicitation, Neighbor Advertisement or Redirect.
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.read::<16>(field::TARGET_ADDR.start))
    }

    /// The R (router) flag of a Neighbor Advertisement.
    #[inline]
    pub fn router_flag(&self) -> bool {
        self.read::<1>(field::NEIGHBOR_FLAGS)[0] & NA_FLAG_ROUTER != 0
    }

    /// The S (solicited) flag of a Neighbor Advertisement.
    #[inline]
    pub fn solicited_flag(&self) -> bool {
        self.read::<1>(field::NEIGHBOR_FLAGS)[0] & NA_FLAG_SOLICITED != 0
    }

    /// The O (override) flag of a Neighbor Advertisement.
    #[inline]
    pub fn override_flag(&self) -> bool {
        self.read::<1>(field::NEIGHBOR_FLAGS)[0] & NA_FLAG_OVERRIDE != 0
    }

    /// Destination Address of a Redirect.
    #[inline]
    pub fn dest_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.read::<16>(field::DEST_ADDR.start))
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Icmpv6Packet<&'a T> {
    /// The options of a Neighbor Discovery message (empty for other types, or when the
    /// buffer is shorter than the fixed part).
    #[inline]
    pub fn ndisc_options(&self) -> &'a [u8] {
        let at = options_offset(self.msg_type()).unwrap_or(usize::MAX);
        self.buffer.as_ref().get(at..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Sets Cur Hop Limit of a Router Advertisement.
    #[inline]
    pub fn set_current_hop_limit(&mut self, hop_limit: u8) {
        self.buffer.as_mut()[field::CUR_HOP_LIMIT] = hop_limit;
    }

    /// Sets the flags byte of a Router Advertisement: M and O, the reserved bits zero.
    #[inline]
    pub fn set_router_flags(&mut self, managed: bool, other: bool) {
        let mut flags = 0;
        if managed {
            flags |= RA_FLAG_MANAGED;
        }
        if other {
            flags |= RA_FLAG_OTHER;
        }
        self.buffer.as_mut()[field::ROUTER_FLAGS] = flags;
    }

    /// Sets Router Lifetime of a Router Advertisement, in seconds.
    #[inline]
    pub fn set_router_lifetime(&mut self, seconds: u16) {
        self.buffer.as_mut()[field::ROUTER_LIFETIME].copy_from_slice(&seconds.to_be_bytes());
    }

    /// Sets Reachable Time of a Router Advertisement, in milliseconds.
    #[inline]
    pub fn set_reachable_time(&mut self, ms: u32) {
        self.buffer.as_mut()[field::REACHABLE_TIME].copy_from_slice(&ms.to_be_bytes());
    }

    /// Sets Retrans Timer of a Router Advertisement, in milliseconds.
    #[inline]
    pub fn set_retrans_time(&mut self, ms: u32) {
        self.buffer.as_mut()[field::RETRANS_TIME].copy_from_slice(&ms.to_be_bytes());
    }

    /// Sets the Target Address of a Neighbor Solicitation, Neighbor Advertisement or
    /// Redirect.
    #[inline]
    pub fn set_target_addr(&mut self, target: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET_ADDR].copy_from_slice(&target.octets());
    }

    /// Sets the flags and reserved word of a Neighbor Advertisement: R, S and O, the
    /// reserved bits zero.
    #[inline]
    pub fn set_neighbor_flags(&mut self, router: bool, solicited: bool, override_: bool) {
        let mut flags = 0;
        if router {
            flags |= NA_FLAG_ROUTER;
        }
        if solicited {
            flags |= NA_FLAG_SOLICITED;
        }
        if override_ {
            flags |= NA_FLAG_OVERRIDE;
        }
        self.buffer.as_mut()[field::RESERVED].copy_from_slice(&[flags, 0, 0, 0]);
    }

    /// Zeroes the Reserved word of a Router Solicitation, Neighbor Solicitation or
    /// Redirect (RFC 4861 §4.1, §4.3, §4.5: zero on transmission).
    #[inline]
    pub fn clear_reserved(&mut self) {
        self.buffer.as_mut()[field::RESERVED].fill(0);
    }

    /// Sets the Destination Address of a Redirect.
    #[inline]
    pub fn set_dest_addr(&mut self, dest: Ipv6Addr) {
        self.buffer.as_mut()[field::DEST_ADDR].copy_from_slice(&dest.octets());
    }

    /// The options of a Neighbor Discovery message, mutable; set the message type first
    /// (empty for another type).
    #[inline]
    pub fn ndisc_options_mut(&mut self) -> &mut [u8] {
        let at = options_offset(self.msg_type()).unwrap_or(usize::MAX);
        self.buffer.as_mut().get_mut(at..).unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Icmpv6Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A parsed ICMPv6 message.
///
/// `data` of an error message is the quoted invoking packet, starting with its IPv6
/// header: as much of it as fits the minimum MTU ([`MAX_ERROR_QUOTE`], RFC 4443 §2.4 (c)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Repr<'a> {
    /// Destination unreachable (RFC 4443 §3.1).
    DstUnreachable {
        /// The code.
        reason: Icmpv6DstUnreachable,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Packet too big (RFC 4443 §3.2).
    PktTooBig {
        /// The MTU of the next-hop link.
        mtu: u32,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Time exceeded (RFC 4443 §3.3).
    TimeExceeded {
        /// The code.
        reason: Icmpv6TimeExceeded,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Parameter problem (RFC 4443 §3.4).
    ParamProblem {
        /// The code.
        reason: Icmpv6ParamProblem,
        /// Offset of the error in the quoted packet.
        pointer: u32,
        /// The quoted packet.
        data: &'a [u8],
    },
    /// Echo request (RFC 4443 §4.1).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data, returned unchanged in the reply.
        data: &'a [u8],
    },
    /// Echo reply (RFC 4443 §4.2).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data of the request.
        data: &'a [u8],
    },
    /// A Neighbor Discovery message (RFC 4861).
    Ndisc(NdiscRepr<'a>),
}

impl<'a> Icmpv6Repr<'a> {
    /// Parses a message sent from `src` to `dst` and verifies its checksum
    /// (`BadChecksum`).
    ///
    /// Errors must quote at least an IPv6 header ([`MIN_ERROR_QUOTE`], `Truncated`). Echo
    /// messages are accepted whatever their code, and Packet Too Big too (RFC 4443 §3.2:
    /// the code is ignored by the receiver). Neighbor Discovery messages are validated by
    /// [`NdiscRepr::parse`]. Other types (MLD, unknown) give `Unsupported`: RFC 4443 §2.4
    /// (b) has unknown informational messages discarded.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &Icmpv6Packet<&'a T>,
    ) -> Result<Self> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let msg_type = packet.msg_type();
        let data = packet.payload();
        if msg_type.is_error() && data.len() < MIN_ERROR_QUOTE {
            return Err(Error::Truncated);
        }
        Ok(match msg_type {
            Icmpv6Message::DstUnreachable => Icmpv6Repr::DstUnreachable {
                reason: Icmpv6DstUnreachable::from(packet.msg_code()),
                data,
            },
            Icmpv6Message::PktTooBig => Icmpv6Repr::PktTooBig {
                mtu: packet.pkt_too_big_mtu(),
                data,
            },
            Icmpv6Message::TimeExceeded => Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::from(packet.msg_code()),
                data,
            },
            Icmpv6Message::ParamProblem => Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::from(packet.msg_code()),
                pointer: packet.param_problem_ptr(),
                data,
            },
            Icmpv6Message::EchoRequest => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            Icmpv6Message::EchoReply => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            m if m.is_ndisc() => Icmpv6Repr::Ndisc(NdiscRepr::parse(packet)?),
            _ => return Err(Error::Unsupported),
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv6Message {
        match self {
            Icmpv6Repr::DstUnreachable { .. } => Icmpv6Message::DstUnreachable,
            Icmpv6Repr::PktTooBig { .. } => Icmpv6Message::PktTooBig,
            Icmpv6Repr::TimeExceeded { .. } => Icmpv6Message::TimeExceeded,
            Icmpv6Repr::ParamProblem { .. } => Icmpv6Message::ParamProblem,
            Icmpv6Repr::EchoRequest { .. } => Icmpv6Message::EchoRequest,
            Icmpv6Repr::EchoReply { .. } => Icmpv6Message::EchoReply,
            Icmpv6Repr::Ndisc(n) => n.msg_type(),
        }
    }

    /// The length of the emitted message.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::DstUnreachable { data, .. }
            | Icmpv6Repr::PktTooBig { data, .. }
            | Icmpv6Repr::TimeExceeded { data, .. }
            | Icmpv6Repr::ParamProblem { data, .. }
            | Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. } => field::PAYLOAD_START + data.len(),
            Icmpv6Repr::Ndisc(n) => n.buffer_len(),
        }
    }

    /// Writes the message, sent from `src` to `dst`, into `packet`, copies the data and
    /// fills the checksum.
    ///
    /// The buffer must be exactly [`Icmpv6Repr::buffer_len`] bytes long: the checksum
    /// covers all of it.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`Icmpv6Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: &Ipv6Addr,
        dst: &Ipv6Addr,
        packet: &mut Icmpv6Packet<T>,
    ) {
        let (code, body, data): (u8, u32, &[u8]) = match *self {
            Icmpv6Repr::DstUnreachable { reason, data } => (reason.into(), 0, data),
            Icmpv6Repr::PktTooBig { mtu, data } => (0, mtu, data),
            Icmpv6Repr::TimeExceeded { reason, data } => (reason.into(), 0, data),
            Icmpv6Repr::ParamProblem {
                reason,
                pointer,
                data,
            } => (reason.into(), pointer, data),
            Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => (0, u32::from(ident) << 16 | u32::from(seq_no), data),
            Icmpv6Repr::Ndisc(ref n) => {
                n.emit(packet);
                packet.fill_checksum(src, dst);
                return;
            }
        };
        packet.set_msg_type(self.msg_type());
        packet.set_msg_code(code);
        packet.buffer.as_mut()[field::BODY].copy_from_slice(&body.to_be_bytes());
        packet.payload_mut()[..data.len()].copy_from_slice(data);
        packet.fill_checksum(src, dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request from 2001:db8::1 to 2001:db8::2: ident 0x0b1c, sequence 7, 24 bytes of
    // data (an 8-byte timestamp, then 0x10, 0x11, ...).
    static ECHO_REQUEST: [u8; 32] = [
        0x80, 0x00, 0xe4, 0x7a, 0x0b, 0x1c, 0x00, 0x07, 0x5c, 0x6a, 0x1f, 0x67, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f,
    ];

    // The reply, from 2001:db8::2 to 2001:db8::1.
    static ECHO_REPLY: [u8; 32] = [
        0x81, 0x00, 0xe3, 0x7a, 0x0b, 0x1c, 0x00, 0x07, 0x5c, 0x6a, 0x1f, 0x67, 0x00, 0x00, 0x00,
        0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d,
        0x1e, 0x1f,
    ];

    // Packet Too Big, MTU 1280, from router 2001:db8:ffff::1 to 2001:db8::1, quoting the
    // IPv6 header and 8 bytes of a TCP segment to 2001:db8:2::5 port 443.
    static PKT_TOO_BIG: [u8; 56] = [
        0x02, 0x00, 0x7a, 0x90, 0x00, 0x00, 0x05, 0x00, 0x60, 0x00, 0x00, 0x00, 0x05, 0xb4, 0x06,
        0x3f, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x05, 0xc0, 0x00, 0x01, 0xbb, 0x8d, 0x3e, 0x0c, 0x21,
    ];

    // Hop limit exceeded, from router 2001:db8:ffff::1 to 2001:db8::1, quoting a
    // traceroute UDP probe (hop limit 1) to 2001:db8:2::5 port 33434.
    static HOP_LIMIT_EXCEEDED: [u8; 56] = [
        0x03, 0x00, 0x55, 0x84, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x11,
        0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x05, 0xa0, 0x28, 0x82, 0x9a, 0x00, 0x14, 0x5c, 0x2e,
    ];

    // Parameter problem, unrecognized Next Header (143) at pointer 6, same addresses.
    static PARAM_PROBLEM: [u8; 56] = [
        0x04, 0x01, 0xd6, 0x49, 0x00, 0x00, 0x00, 0x06, 0x60, 0x00, 0x00, 0x00, 0x00, 0x08, 0x8f,
        0x40, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x05, 0xa0, 0x28, 0x82, 0x9a, 0x00, 0x14, 0x5c, 0x2e,
    ];

    fn host_a() -> Ipv6Addr {
        "2001:db8::1".parse().unwrap()
    }

    fn host_b() -> Ipv6Addr {
        "2001:db8::2".parse().unwrap()
    }

    fn router() -> Ipv6Addr {
        "2001:db8:ffff::1".parse().unwrap()
    }

    fn emitted(src: &Ipv6Addr, dst: &Ipv6Addr, repr: &Icmpv6Repr<'_>) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(src, dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        buf
    }

    fn echo_request() -> Icmpv6Repr<'static> {
        Icmpv6Repr::EchoRequest {
            ident: 0x0b1c,
            seq_no: 7,
            data: &ECHO_REQUEST[8..],
        }
    }

    #[test]
    fn message_classes() {
        assert!(Icmpv6Message::PktTooBig.is_error());
        assert!(Icmpv6Message::Unknown(127).is_error());
        assert!(!Icmpv6Message::EchoRequest.is_error());
        assert!(!Icmpv6Message::Redirect.is_error());
        for t in 133..=137u8 {
            assert!(Icmpv6Message::from(t).is_ndisc());
        }
        assert!(!Icmpv6Message::EchoReply.is_ndisc());
        assert!(!Icmpv6Message::Unknown(143).is_ndisc());
        assert_eq!(
            Icmpv6ParamProblem::from(2),
            Icmpv6ParamProblem::UnrecognizedOption
        );
        assert_eq!(u8::from(Icmpv6DstUnreachable::RejectRoute), 6);
        assert_eq!(
            Icmpv6TimeExceeded::from(1),
            Icmpv6TimeExceeded::FragReassemTimeExceeded
        );
    }

    #[test]
    fn echo_request_read_fields() {
        let p = Icmpv6Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::EchoRequest);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0xe47a);
        assert_eq!(p.echo_ident(), 0x0b1c);
        assert_eq!(p.echo_seq_no(), 7);
        assert_eq!(p.payload(), &ECHO_REQUEST[8..]);
        assert!(p.verify_checksum(&host_a(), &host_b()));
        // A checksum is blind to swapped addresses, not to another address.
        assert!(p.verify_checksum(&host_b(), &host_a()));
        assert!(!p.verify_checksum(&host_a(), &"2001:db8::3".parse().unwrap()));
    }

    #[test]
    fn echo_request_write_fields() {
        let mut buf = [0xa5u8; 32];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::EchoRequest);
        p.set_msg_code(0);
        p.set_echo_ident(0x0b1c);
        p.set_echo_seq_no(7);
        p.payload_mut().copy_from_slice(&ECHO_REQUEST[8..]);
        p.fill_checksum(&host_a(), &host_b());
        assert_eq!(buf, ECHO_REQUEST);
    }

    #[test]
    fn echo_request_parse() {
        let p = Icmpv6Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&host_a(), &host_b(), &p),
            Ok(echo_request())
        );
    }

    #[test]
    fn echo_request_emit() {
        assert_eq!(emitted(&host_a(), &host_b(), &echo_request()), ECHO_REQUEST);
    }

    #[test]
    fn echo_reply_read_fields() {
        let p = Icmpv6Packet::new_checked(&ECHO_REPLY[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::EchoReply);
        assert_eq!(p.checksum(), 0xe37a);
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (0x0b1c, 7));
        assert_eq!(p.payload(), &ECHO_REPLY[8..]);
        assert!(p.verify_checksum(&host_b(), &host_a()));
    }

    #[test]
    fn echo_reply_write_fields() {
        let mut buf = [0xa5u8; 32];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::EchoReply);
        p.set_msg_code(0);
        p.set_echo_ident(0x0b1c);
        p.set_echo_seq_no(7);
        p.payload_mut().copy_from_slice(&ECHO_REPLY[8..]);
        p.fill_checksum(&host_b(), &host_a());
        assert_eq!(buf, ECHO_REPLY);
    }

    #[test]
    fn echo_reply_parse() {
        let p = Icmpv6Packet::new_checked(&ECHO_REPLY[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&host_b(), &host_a(), &p),
            Ok(Icmpv6Repr::EchoReply {
                ident: 0x0b1c,
                seq_no: 7,
                data: &ECHO_REPLY[8..]
            })
        );
    }

    #[test]
    fn echo_reply_emit() {
        let repr = Icmpv6Repr::EchoReply {
            ident: 0x0b1c,
            seq_no: 7,
            data: &ECHO_REPLY[8..],
        };
        assert_eq!(emitted(&host_b(), &host_a(), &repr), ECHO_REPLY);
    }

    #[test]
    fn pkt_too_big_read_fields() {
        let p = Icmpv6Packet::new_checked(&PKT_TOO_BIG[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::PktTooBig);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x7a90);
        assert_eq!(p.pkt_too_big_mtu(), 1280);
        assert_eq!(p.payload(), &PKT_TOO_BIG[8..]);
        assert!(p.verify_checksum(&router(), &host_a()));
    }

    #[test]
    fn pkt_too_big_write_fields() {
        let mut buf = [0xa5u8; 56];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::PktTooBig);
        p.set_msg_code(0);
        p.set_pkt_too_big_mtu(1280);
        p.payload_mut().copy_from_slice(&PKT_TOO_BIG[8..]);
        p.fill_checksum(&router(), &host_a());
        assert_eq!(buf, PKT_TOO_BIG);
    }

    #[test]
    fn pkt_too_big_parse() {
        let p = Icmpv6Packet::new_checked(&PKT_TOO_BIG[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&router(), &host_a(), &p),
            Ok(Icmpv6Repr::PktTooBig {
                mtu: 1280,
                data: &PKT_TOO_BIG[8..]
            })
        );
    }

    #[test]
    fn pkt_too_big_emit() {
        let repr = Icmpv6Repr::PktTooBig {
            mtu: 1280,
            data: &PKT_TOO_BIG[8..],
        };
        assert_eq!(emitted(&router(), &host_a(), &repr), PKT_TOO_BIG);
    }

    #[test]
    fn time_exceeded_read_fields() {
        let p = Icmpv6Packet::new_checked(&HOP_LIMIT_EXCEEDED[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::TimeExceeded);
        assert_eq!(
            Icmpv6TimeExceeded::from(p.msg_code()),
            Icmpv6TimeExceeded::HopLimitExceeded
        );
        assert_eq!(p.checksum(), 0x5584);
        assert_eq!(p.payload(), &HOP_LIMIT_EXCEEDED[8..]);
        assert!(p.verify_checksum(&router(), &host_a()));
    }

    #[test]
    fn time_exceeded_write_fields() {
        let mut buf = [0xa5u8; 56];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::TimeExceeded);
        p.set_msg_code(Icmpv6TimeExceeded::HopLimitExceeded.into());
        p.clear_body();
        p.payload_mut().copy_from_slice(&HOP_LIMIT_EXCEEDED[8..]);
        p.fill_checksum(&router(), &host_a());
        assert_eq!(buf, HOP_LIMIT_EXCEEDED);
    }

    #[test]
    fn time_exceeded_parse() {
        let p = Icmpv6Packet::new_checked(&HOP_LIMIT_EXCEEDED[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&router(), &host_a(), &p),
            Ok(Icmpv6Repr::TimeExceeded {
                reason: Icmpv6TimeExceeded::HopLimitExceeded,
                data: &HOP_LIMIT_EXCEEDED[8..],
            })
        );
    }

    #[test]
    fn time_exceeded_emit() {
        let repr = Icmpv6Repr::TimeExceeded {
            reason: Icmpv6TimeExceeded::HopLimitExceeded,
            data: &HOP_LIMIT_EXCEEDED[8..],
        };
        assert_eq!(emitted(&router(), &host_a(), &repr), HOP_LIMIT_EXCEEDED);
    }

    #[test]
    fn param_problem_read_fields() {
        let p = Icmpv6Packet::new_checked(&PARAM_PROBLEM[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::ParamProblem);
        assert_eq!(
            Icmpv6ParamProblem::from(p.msg_code()),
            Icmpv6ParamProblem::UnrecognizedNxtHdr
        );
        assert_eq!(p.checksum(), 0xd649);
        assert_eq!(p.param_problem_ptr(), 6);
        assert_eq!(p.payload()[6], 143);
        assert!(p.verify_checksum(&router(), &host_a()));
    }

    #[test]
    fn param_problem_write_fields() {
        let mut buf = [0xa5u8; 56];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::ParamProblem);
        p.set_msg_code(Icmpv6ParamProblem::UnrecognizedNxtHdr.into());
        p.set_param_problem_ptr(6);
        p.payload_mut().copy_from_slice(&PARAM_PROBLEM[8..]);
        p.fill_checksum(&router(), &host_a());
        assert_eq!(buf, PARAM_PROBLEM);
    }

    #[test]
    fn param_problem_parse() {
        let p = Icmpv6Packet::new_checked(&PARAM_PROBLEM[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&router(), &host_a(), &p),
            Ok(Icmpv6Repr::ParamProblem {
                reason: Icmpv6ParamProblem::UnrecognizedNxtHdr,
                pointer: 6,
                data: &PARAM_PROBLEM[8..],
            })
        );
    }

    #[test]
    fn param_problem_emit() {
        let repr = Icmpv6Repr::ParamProblem {
            reason: Icmpv6ParamProblem::UnrecognizedNxtHdr,
            pointer: 6,
            data: &PARAM_PROBLEM[8..],
        };
        assert_eq!(emitted(&router(), &host_a(), &repr), PARAM_PROBLEM);
    }

    #[test]
    fn dst_unreachable_round_trip() {
        let repr = Icmpv6Repr::DstUnreachable {
            reason: Icmpv6DstUnreachable::PortUnreachable,
            data: &HOP_LIMIT_EXCEEDED[8..],
        };
        let buf = emitted(&host_b(), &host_a(), &repr);
        assert_eq!(buf[..2], [1, 4]);
        assert_eq!(buf[4..8], [0; 4]);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&host_b(), &host_a(), &p), Ok(repr));
    }

    #[test]
    fn every_truncation_is_an_error() {
        let cases = [
            (&ECHO_REQUEST[..], host_a(), host_b()),
            (&ECHO_REPLY[..], host_b(), host_a()),
            (&PKT_TOO_BIG[..], router(), host_a()),
            (&HOP_LIMIT_EXCEEDED[..], router(), host_a()),
            (&PARAM_PROBLEM[..], router(), host_a()),
        ];
        for (fixture, src, dst) in cases {
            for len in 0..fixture.len() {
                match Icmpv6Packet::new_checked(&fixture[..len]) {
                    Ok(p) => assert!(Icmpv6Repr::parse(&src, &dst, &p).is_err(), "len {len}"),
                    Err(e) => assert!(len < 8 && e == Error::Truncated),
                }
            }
        }
    }

    #[test]
    fn short_quote_is_truncated() {
        let repr = Icmpv6Repr::PktTooBig {
            mtu: 1280,
            data: &PKT_TOO_BIG[8..47],
        };
        let buf = emitted(&router(), &host_a(), &repr);
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&router(), &host_a(), &p),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn bad_checksum_is_detected() {
        let mut buf = ECHO_REQUEST;
        buf[31] ^= 0x80;
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert!(!p.verify_checksum(&host_a(), &host_b()));
        assert_eq!(
            Icmpv6Repr::parse(&host_a(), &host_b(), &p),
            Err(Error::BadChecksum)
        );
        // Right bytes, wrong pseudo-header.
        let p = Icmpv6Packet::new_checked(&PKT_TOO_BIG[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&host_a(), &host_b(), &p),
            Err(Error::BadChecksum)
        );
    }

    #[test]
    fn unknown_types_need_four_bytes_and_are_unsupported() {
        // MLDv2 report (143): a 4-byte common header is enough for the view.
        let mut buf = [143u8, 0, 0, 0];
        Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(&host_a(), &host_b());
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(
            (p.echo_ident(), p.pkt_too_big_mtu(), p.payload()),
            (0, 0, &[][..])
        );
        assert_eq!(
            Icmpv6Repr::parse(&host_a(), &host_b(), &p),
            Err(Error::Unsupported)
        );
        assert!(Icmpv6Packet::new_checked(&buf[..3]).is_err());
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
                let (src, dst) = (host_a(), host_b());
                let mut bytes = bytes;
                if let Ok(p) = Icmpv6Packet::new_checked(&bytes[..]) {
                    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident());
                    let _ = (p.echo_seq_no(), p.pkt_too_big_mtu(), p.param_problem_ptr());
                    let _ = (p.payload(), p.verify_checksum(&src, &dst));
                    let _ = Icmpv6Repr::parse(&src, &dst, &p);
                } else {
                    return Ok(());
                }
                // With a valid checksum, parse goes past the check; what it accepts
                // emits to a message of the same length that parses to the same repr.
                Icmpv6Packet::new_unchecked(&mut bytes[..]).fill_checksum(&src, &dst);
                let p = Icmpv6Packet::new_checked(&bytes[..]).unwrap();
                if let Ok(repr) = Icmpv6Repr::parse(&src, &dst, &p) {
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut out[..]));
                    let q = Icmpv6Packet::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(Icmpv6Repr::parse(&src, &dst, &q), Ok(repr));
                }
            }
        }
    }
}
