//! TCP segments (RFC 9293 §3.1) and their options: MSS (RFC 9293 §3.2), window scale and
//! timestamps (RFC 7323), SACK (RFC 2018).
//!
//! [`TcpPacket`] is a view over a whole segment: the buffer must be exactly the IP
//! payload, since TCP has no length field of its own and the checksum covers every byte
//! of it (RFC 9293 §3.1). [`TcpRepr`] is the parsed form the connection code works with.
//!
//! **Panics:** after `new_checked` (or `check_len`) succeeds, no getter of [`TcpPacket`]
//! can panic, whatever the header holds; [`TcpOption::parse`] and [`TcpOptionsIter`]
//! never panic on any input. Setters, and getters on a view made with `new_unchecked`
//! over a buffer shorter than the header, panic on out-of-bounds access, as does
//! [`TcpOption::emit`] into a buffer shorter than its [`TcpOption::buffer_len`].

use core::iter::FusedIterator;
use core::net::IpAddr;

use super::udp::{pseudo_header, pseudo_header_for_fill};
use super::{checksum, Error, IpProtocol, Result};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// The largest header: a 4-bit data offset of 15 words.
pub const MAX_HEADER_LEN: usize = 60;

/// The most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// The largest window scale shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;

mod field {
    use core::ops::Range;

    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const FLAGS: Range<usize> = 12..14;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

// The data offset / reserved / control bits word (RFC 9293 §3.1; CWR and ECE from
// RFC 3168 §6.1).
const FLG_FIN: u16 = 0x001;
const FLG_SYN: u16 = 0x002;
const FLG_RST: u16 = 0x004;
const FLG_PSH: u16 = 0x008;
const FLG_ACK: u16 = 0x010;
const FLG_URG: u16 = 0x020;
const FLG_ECE: u16 = 0x040;
const FLG_CWR: u16 = 0x080;
const DATA_OFFSET_MASK: u16 = 0xf000;

// Option kinds (IANA "TCP Option Kind Numbers").
const KIND_EOL: u8 = 0;
const KIND_NOP: u8 = 1;
const KIND_MSS: u8 = 2;
const KIND_WS: u8 = 3;
const KIND_SACK_PERMITTED: u8 = 4;
const KIND_SACK: u8 = 5;
const KIND_TIMESTAMP: u8 = 8;

#[inline]
fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

#[inline]
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[inline]
fn put16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}

#[inline]
fn put32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}

/// A view over a TCP segment: header, options and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps `buffer` without checking it (for emitting into a sized buffer).
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps `buffer` after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the data offset against the buffer (RFC 9293 §3.1).
    ///
    /// Errors: [`Error::Truncated`] when the buffer is shorter than 20 bytes or than the
    /// header length; [`Error::BadHeaderLen`] when the data offset is below 5 words.
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
        if data.len() < header_len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn flags_word(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::FLAGS])
    }

    /// The header length in bytes, options included (data offset × 4).
    #[inline]
    pub fn header_len(&self) -> u8 {
        ((self.flags_word() >> 12) as u8) * 4
    }

    /// The options: the bytes between the fixed header and `header_len()`.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.header_len())]
    }

    /// An iterator over the options.
    #[inline]
    pub fn options_iter(&self) -> TcpOptionsIter<'_> {
        TcpOptionsIter::new(self.options())
    }

    /// The payload: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[usize::from(self.header_len())..]
    }

    /// The sequence space the segment occupies: payload bytes, plus one each for SYN and
    /// FIN (RFC 9293 §3.4).
    #[inline]
    pub fn segment_len(&self) -> usize {
        self.payload().len() + usize::from(self.syn()) + usize::from(self.fin())
    }

    /// True when the checksum verifies for a segment from `src` to `dst` over the whole
    /// buffer (RFC 9293 §3.1). Addresses of mixed families never verify.
    #[inline]
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let Some(pseudo) = pseudo_header(src, dst, IpProtocol::Tcp, data.len() as u32) else {
            return false;
        };
        checksum::combine(&[pseudo, checksum::data(data)]) == 0xffff
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The payload, borrowed for as long as the underlying buffer rather than the view.
    #[inline]
    pub fn into_payload(self) -> &'a [u8] {
        let start = usize::from(self.header_len());
        &self.buffer.as_ref()[start..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    #[inline]
    fn set_flags_word(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::FLAGS], value);
    }

    #[inline]
    fn set_flag(&mut self, flag: u16, on: bool) {
        let raw = self.flags_word();
        self.set_flags_word(if on { raw | flag } else { raw & !flag });
    }

    /// Sets the header length in bytes; it is stored in 4-byte words, so `len` should be
    /// a multiple of 4 between 20 and 60.
    #[inline]
    pub fn set_header_len(&mut self, len: u8) {
        let raw = self.flags_word();
        self.set_flags_word((raw & !DATA_OFFSET_MASK) | (u16::from(len / 4) << 12));
    }

    /// Clears the control bits and the reserved bits, keeping the data offset.
    #[inline]
    pub fn clear_flags(&mut self) {
        let raw = self.flags_word();
        self.set_flags_word(raw & DATA_OFFSET_MASK);
    }

    /// Computes the checksum over the pseudo-header and the whole buffer, and stores it
    /// (RFC 9293 §3.1). `src` and `dst` must be of one family.
    #[inline]
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let len = self.buffer.as_ref().len();
        self.fill_checksum_over(src, dst, len);
    }

    /// Fills the checksum computed over the first `len` bytes of the buffer.
    fn fill_checksum_over(&mut self, src: IpAddr, dst: IpAddr, len: usize) {
        self.set_checksum(0);
        let pseudo = pseudo_header_for_fill(src, dst, IpProtocol::Tcp, len as u32);
        let data = checksum::data(&self.buffer.as_ref()[..len]);
        self.set_checksum(!checksum::combine(&[pseudo, data]));
    }

    /// The options, mutably.
    #[inline]
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.header_len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// The payload, mutably.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = usize::from(self.header_len());
        &mut self.buffer.as_mut()[start..]
    }
}

/// Generates the getter and setter of each big-endian integer field.
macro_rules! int_fields {
    ($($(#[$doc:meta])* $get:ident, $set:ident: $ty:ident = $range:expr;)+) => {
        impl<T: AsRef<[u8]>> TcpPacket<T> {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $get(&self) -> $ty {
                    let mut bytes = [0; core::mem::size_of::<$ty>()];
                    bytes.copy_from_slice(&self.buffer.as_ref()[$range]);
                    $ty::from_be_bytes(bytes)
                }
            )+
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
            $(
                #[doc = concat!("Sets the field [`", stringify!($get), "`](Self::", stringify!($get), ") reads.")]
                #[inline]
                pub fn $set(&mut self, value: $ty) {
                    self.buffer.as_mut()[$range].copy_from_slice(&value.to_be_bytes());
                }
            )+
        }
    };
}

int_fields! {
    /// The source port.
    src_port, set_src_port: u16 = field::SRC_PORT;
    /// The destination port.
    dst_port, set_dst_port: u16 = field::DST_PORT;
    /// The sequence number.
    seq_number, set_seq_number: u32 = field::SEQ_NUM;
    /// The acknowledgment number (meaningful only when [`ack`](Self::ack) is set).
    ack_number, set_ack_number: u32 = field::ACK_NUM;
    /// The window field, unscaled.
    window_len, set_window_len: u16 = field::WIN_SIZE;
    /// The checksum field.
    checksum, set_checksum: u16 = field::CHECKSUM;
    /// The urgent pointer field.
    urgent_at, set_urgent_at: u16 = field::URGENT;
}

/// Generates a getter and a setter for each control bit.
macro_rules! flag_accessors {
    ($($(#[$doc:meta])* $get:ident, $set:ident = $bit:expr;)+) => {
        impl<T: AsRef<[u8]>> TcpPacket<T> {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $get(&self) -> bool {
                    self.flags_word() & $bit != 0
                }
            )+
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
            $(
                #[doc = concat!("Sets or clears the ", stringify!($get), " flag.")]
                #[inline]
                pub fn $set(&mut self, value: bool) {
                    self.set_flag($bit, value);
                }
            )+
        }
    };
}

flag_accessors! {
    /// The FIN flag: the sender has no more data.
    fin, set_fin = FLG_FIN;
    /// The SYN flag: synchronize sequence numbers.
    syn, set_syn = FLG_SYN;
    /// The RST flag: reset the connection.
    rst, set_rst = FLG_RST;
    /// The PSH flag: push the data to the application.
    psh, set_psh = FLG_PSH;
    /// The ACK flag: the acknowledgment number is significant.
    ack, set_ack = FLG_ACK;
    /// The URG flag: the urgent pointer is significant.
    urg, set_urg = FLG_URG;
    /// The ECN-Echo flag (RFC 3168 §6.1).
    ece, set_ece = FLG_ECE;
    /// The congestion window reduced flag (RFC 3168 §6.1).
    cwr, set_cwr = FLG_CWR;
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of option list (kind 0, RFC 9293 §3.2).
    EndOfList,
    /// No-operation (kind 1, RFC 9293 §3.2), used for alignment.
    NoOperation,
    /// Maximum segment size (kind 2, length 4, RFC 9293 §3.7.1).
    MaxSegmentSize(u16),
    /// Window scale shift count (kind 3, length 3, RFC 7323 §2.2), as sent.
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2, RFC 2018 §2).
    SackPermitted,
    /// SACK blocks as `(left edge, right edge)` (kind 5, RFC 2018 §3). Parsing keeps the
    /// first three blocks (with timestamps, no more fit); emitting writes the `Some`
    /// entries in order and needs at least one.
    SackRange([Option<(u32, u32)>; 3]),
    /// Timestamps (kind 8, length 10, RFC 7323 §3.2).
    Timestamp {
        /// TSval: the sender's timestamp clock.
        tsval: u32,
        /// TSecr: the TSval being echoed (meaningful when ACK is set).
        tsecr: u32,
    },
    /// Any other option, with its data (the bytes after kind and length).
    Unknown {
        /// The option kind.
        kind: u8,
        /// The option data; at most 253 bytes for it to be emitted.
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Parses the option at the start of `buffer`, returning the bytes after it and the
    /// option. After [`TcpOption::EndOfList`] the rest is padding.
    ///
    /// Errors: [`Error::Truncated`] for an empty buffer; [`Error::BadOption`] for a
    /// missing length byte, a length below 2, a length that runs past `buffer`, or a
    /// length that does not match the option kind (RFC 9293 §3.2 MUST-7 asks that such
    /// options be survived, which an error does).
    pub fn parse(buffer: &'a [u8]) -> Result<(&'a [u8], TcpOption<'a>)> {
        let Some((&kind, after_kind)) = buffer.split_first() else {
            return Err(Error::Truncated);
        };
        match kind {
            KIND_EOL => return Ok((after_kind, TcpOption::EndOfList)),
            KIND_NOP => return Ok((after_kind, TcpOption::NoOperation)),
            _ => {}
        }
        let Some(&len) = after_kind.first() else {
            return Err(Error::BadOption);
        };
        let len = usize::from(len);
        if len < 2 || len > buffer.len() {
            return Err(Error::BadOption);
        }
        let data = &buffer[2..len];
        let option = match kind {
            KIND_MSS if len == 4 => TcpOption::MaxSegmentSize(be16(data)),
            KIND_WS if len == 3 => TcpOption::WindowScale(data[0]),
            KIND_SACK_PERMITTED if len == 2 => TcpOption::SackPermitted,
            KIND_SACK if len >= 10 && (len - 2) % 8 == 0 => {
                let mut ranges = [None; 3];
                for (slot, block) in ranges.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = Some((be32(&block[..4]), be32(&block[4..])));
                }
                TcpOption::SackRange(ranges)
            }
            KIND_TIMESTAMP if len == 10 => TcpOption::Timestamp {
                tsval: be32(&data[..4]),
                tsecr: be32(&data[4..]),
            },
            KIND_MSS | KIND_WS | KIND_SACK_PERMITTED | KIND_SACK | KIND_TIMESTAMP => {
                return Err(Error::BadOption);
            }
            _ => TcpOption::Unknown { kind, data },
        };
        Ok((&buffer[len..], option))
    }

    /// The number of bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::MaxSegmentSize(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::SackRange(ranges) => 2 + 8 * ranges.iter().flatten().count(),
            TcpOption::Timestamp { .. } => 10,
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buffer` and returns its length; `buffer` must
    /// hold at least [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit(&self, buffer: &mut [u8]) -> usize {
        let len = self.buffer_len();
        match *self {
            TcpOption::EndOfList => buffer[0] = KIND_EOL,
            TcpOption::NoOperation => buffer[0] = KIND_NOP,
            TcpOption::MaxSegmentSize(mss) => {
                buffer[0] = KIND_MSS;
                put16(&mut buffer[2..4], mss);
            }
            TcpOption::WindowScale(shift) => {
                buffer[0] = KIND_WS;
                buffer[2] = shift;
            }
            TcpOption::SackPermitted => buffer[0] = KIND_SACK_PERMITTED,
            TcpOption::SackRange(ranges) => {
                buffer[0] = KIND_SACK;
                for (i, (left, right)) in ranges.iter().flatten().enumerate() {
                    let at = 2 + 8 * i;
                    put32(&mut buffer[at..at + 4], *left);
                    put32(&mut buffer[at + 4..at + 8], *right);
                }
            }
            TcpOption::Timestamp { tsval, tsecr } => {
                buffer[0] = KIND_TIMESTAMP;
                put32(&mut buffer[2..6], tsval);
                put32(&mut buffer[6..10], tsecr);
            }
            TcpOption::Unknown { kind, data } => {
                debug_assert!(len <= usize::from(u8::MAX));
                buffer[0] = kind;
                buffer[2..len].copy_from_slice(data);
            }
        }
        if len > 1 {
            buffer[1] = len as u8;
        }
        len
    }
}

/// An iterator over an options slice (such as [`TcpPacket::options`]) that yields each
/// option or the first error, and stops after [`TcpOption::EndOfList`] (what follows it
/// is padding) or after an error.
#[derive(Debug, Clone)]
pub struct TcpOptionsIter<'a> {
    rest: &'a [u8],
    done: bool,
}

impl<'a> TcpOptionsIter<'a> {
    /// An iterator over the options in `options`.
    pub const fn new(options: &'a [u8]) -> Self {
        TcpOptionsIter {
            rest: options,
            done: false,
        }
    }
}

impl<'a> Iterator for TcpOptionsIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        match TcpOption::parse(self.rest) {
            Ok((rest, option)) => {
                self.rest = rest;
                self.done = option == TcpOption::EndOfList;
                Some(Ok(option))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl FusedIterator for TcpOptionsIter<'_> {}

/// The control flag a segment carries, beyond ACK (which [`TcpRepr::ack_number`] says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TcpControl {
    /// No SYN, FIN, RST or PSH.
    #[default]
    None,
    /// PSH alone.
    Psh,
    /// SYN.
    Syn,
    /// FIN.
    Fin,
    /// RST.
    Rst,
}

impl TcpControl {
    /// The sequence space the flag occupies: 1 for SYN and FIN, 0 otherwise
    /// (RFC 9293 §3.4).
    pub const fn seq_len(self) -> usize {
        match self {
            TcpControl::Syn | TcpControl::Fin => 1,
            _ => 0,
        }
    }
}

/// The parsed form of a TCP segment.
///
/// `window_len` is the field as sent, unscaled. The urgent pointer, URG, ECE and CWR are
/// not represented: parse ignores them and emit writes them as zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpRepr<'a> {
    /// The source port.
    pub src_port: u16,
    /// The destination port.
    pub dst_port: u16,
    /// SYN, FIN, RST, PSH or none.
    pub control: TcpControl,
    /// The sequence number.
    pub seq_number: u32,
    /// The acknowledgment number when ACK is set.
    pub ack_number: Option<u32>,
    /// The window field, unscaled.
    pub window_len: u16,
    /// The window scale option (at most [`MAX_WINDOW_SCALE`] after parsing).
    pub window_scale: Option<u8>,
    /// The MSS option.
    pub max_seg_size: Option<u16>,
    /// The SACK-permitted option.
    pub sack_permitted: bool,
    /// SACK blocks, `(left edge, right edge)`.
    pub sack_ranges: [Option<(u32, u32)>; 3],
    /// The timestamps option, `(TSval, TSecr)`.
    pub timestamp: Option<(u32, u32)>,
    /// The payload.
    pub payload: &'a [u8],
}

impl<'a> TcpRepr<'a> {
    /// Parses `packet`, a segment from `src` to `dst`.
    ///
    /// Errors: those of [`TcpPacket::check_len`]; [`Error::BadChecksum`];
    /// [`Error::BadOption`] for a malformed option; [`Error::Unsupported`] when more than
    /// one of SYN, FIN and RST is set (no valid segment carries two). PSH alongside SYN,
    /// FIN or RST is not kept: `control` holds the other flag.
    ///
    /// Unknown options are skipped; of repeated options the last wins. A window scale
    /// above 14 is taken as 14 (RFC 7323 §2.3).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &TcpPacket<&'a T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<TcpRepr<'a>> {
        packet.check_len()?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let control = match (packet.syn(), packet.fin(), packet.rst()) {
            (false, false, false) if packet.psh() => TcpControl::Psh,
            (false, false, false) => TcpControl::None,
            (true, false, false) => TcpControl::Syn,
            (false, true, false) => TcpControl::Fin,
            (false, false, true) => TcpControl::Rst,
            _ => return Err(Error::Unsupported),
        };
        let mut repr = TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            control,
            seq_number: packet.seq_number(),
            ack_number: packet.ack().then(|| packet.ack_number()),
            window_len: packet.window_len(),
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        for option in packet.options_iter() {
            match option? {
                TcpOption::MaxSegmentSize(mss) => repr.max_seg_size = Some(mss),
                TcpOption::WindowScale(shift) => {
                    repr.window_scale = Some(shift.min(MAX_WINDOW_SCALE));
                }
                TcpOption::SackPermitted => repr.sack_permitted = true,
                TcpOption::SackRange(ranges) => repr.sack_ranges = ranges,
                TcpOption::Timestamp { tsval, tsecr } => repr.timestamp = Some((tsval, tsecr)),
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
            }
        }
        let buffer: &'a T = packet.buffer;
        repr.payload = &buffer.as_ref()[usize::from(packet.header_len())..];
        Ok(repr)
    }

    /// Option bytes other than SACK blocks, in the layout [`emit`](Self::emit) uses.
    fn fixed_options_len(&self) -> usize {
        let mut len = 0;
        if self.max_seg_size.is_some() {
            len += 4;
        }
        if self.timestamp.is_some() {
            len += 12; // SACK-permitted, or two NOPs, then timestamps
        } else if self.sack_permitted {
            len += 4; // two NOPs, SACK-permitted
        }
        if self.window_scale.is_some() {
            len += 4; // NOP, window scale
        }
        len
    }

    /// How many of the SACK blocks `emit` writes: as many as fit in 40 option bytes.
    fn sack_blocks_emitted(&self) -> usize {
        let room = MAX_OPTIONS_LEN - self.fixed_options_len();
        let fit = room.saturating_sub(4) / 8;
        self.sack_ranges.iter().flatten().count().min(fit)
    }

    /// The header length this emits: 20 plus options, a multiple of 4, at most 60.
    pub fn header_len(&self) -> usize {
        let blocks = self.sack_blocks_emitted();
        let sack = if blocks > 0 { 4 + 8 * blocks } else { 0 };
        HEADER_LEN + self.fixed_options_len() + sack
    }

    /// The length of the segment this emits: header, options and payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// The sequence space the segment occupies: payload plus SYN or FIN.
    pub fn segment_len(&self) -> usize {
        self.payload.len() + self.control.seq_len()
    }

    /// Writes the segment into `packet`: header, options, payload and the checksum for
    /// a segment from `src` to `dst`. The buffer must be at least
    /// [`buffer_len`](Self::buffer_len) bytes; the checksum covers the first
    /// `buffer_len()` bytes, so pass a buffer of exactly that length for the packet to
    /// verify as a whole.
    ///
    /// Options are laid out as Linux does, each 4-byte aligned so no padding is needed:
    /// MSS; SACK-permitted and timestamps (or NOPs in place of either); NOP and window
    /// scale; two NOPs and SACK blocks, as many as fit the 40 option bytes (RFC 2018 §3).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
        src: IpAddr,
        dst: IpAddr,
    ) {
        let header_len = self.header_len();
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_seq_number(self.seq_number);
        packet.set_ack_number(self.ack_number.unwrap_or(0));
        packet.set_flags_word(0);
        packet.set_header_len(header_len as u8);
        match self.control {
            TcpControl::None => {}
            TcpControl::Psh => packet.set_psh(true),
            TcpControl::Syn => packet.set_syn(true),
            TcpControl::Fin => packet.set_fin(true),
            TcpControl::Rst => packet.set_rst(true),
        }
        packet.set_ack(self.ack_number.is_some());
        packet.set_window_len(self.window_len);
        packet.set_urgent_at(0);

        let options = packet.options_mut();
        let mut at = 0;
        fn nop(options: &mut [u8], at: &mut usize) {
            *at += TcpOption::NoOperation.emit(&mut options[*at..]);
        }
        if let Some(mss) = self.max_seg_size {
            at += TcpOption::MaxSegmentSize(mss).emit(&mut options[at..]);
        }
        match (self.timestamp, self.sack_permitted) {
            (Some((tsval, tsecr)), sack_permitted) => {
                if sack_permitted {
                    at += TcpOption::SackPermitted.emit(&mut options[at..]);
                } else {
                    nop(options, &mut at);
                    nop(options, &mut at);
                }
                at += TcpOption::Timestamp { tsval, tsecr }.emit(&mut options[at..]);
            }
            (None, true) => {
                nop(options, &mut at);
                nop(options, &mut at);
                at += TcpOption::SackPermitted.emit(&mut options[at..]);
            }
            (None, false) => {}
        }
        if let Some(shift) = self.window_scale {
            nop(options, &mut at);
            at += TcpOption::WindowScale(shift).emit(&mut options[at..]);
        }
        let blocks = self.sack_blocks_emitted();
        if blocks > 0 {
            let mut ranges = [None; 3];
            for (slot, range) in ranges
                .iter_mut()
                .zip(self.sack_ranges.iter().flatten().take(blocks))
            {
                *slot = Some(*range);
            }
            nop(options, &mut at);
            nop(options, &mut at);
            at += TcpOption::SackRange(ranges).emit(&mut options[at..]);
        }
        debug_assert_eq!(at, options.len());

        packet.payload_mut()[..self.payload.len()].copy_from_slice(self.payload);
        packet.fill_checksum_over(src, dst, header_len + self.payload.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20));
    const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10));
    const DST6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x20));

    // A Linux SYN, 192.0.2.10:54321 -> 198.51.100.20:443: MSS 1460, SACK-permitted,
    // timestamps, window scale 7; checksum 0xedcd.
    const SYN: [u8; 40] = [
        0xd4, 0x31, 0x01, 0xbb, 0x3b, 0x9a, 0xca, 0x07, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa,
        0xf0, 0xed, 0xcd, 0x00, 0x00, // header
        0x02, 0x04, 0x05, 0xb4, // MSS
        0x04, 0x02, 0x08, 0x0a, 0x0d, 0x3f, 0x8a, 0x21, 0x00, 0x00, 0x00, 0x00, // SACKP, TS
        0x01, 0x03, 0x03, 0x07, // NOP, WS
    ];

    // The first data segment of the same connection: PSH|ACK, NOP NOP timestamps, and an
    // HTTP request; checksum 0x8a6a.
    const DATA: [u8; 69] = [
        0xd4, 0x31, 0x01, 0xbb, 0x3b, 0x9a, 0xca, 0x08, 0x91, 0xc2, 0xe6, 0xf4, 0x80, 0x18, 0x01,
        0xf6, 0x8a, 0x6a, 0x00, 0x00, // header
        0x01, 0x01, 0x08, 0x0a, 0x0d, 0x3f, 0x8b, 0x05, 0x7a, 0x1c, 0x4e, 0x90, // TS
        0x47, 0x45, 0x54, 0x20, 0x2f, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d,
        0x0a, 0x48, 0x6f, 0x73, 0x74, 0x3a, 0x20, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
        0x63, 0x6f, 0x6d, 0x0d, 0x0a, 0x0d, 0x0a,
    ];

    const HTTP: &[u8] = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";

    fn syn_repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 54321,
            dst_port: 443,
            control: TcpControl::Syn,
            seq_number: 0x3b9a_ca07,
            ack_number: None,
            window_len: 64240,
            window_scale: Some(7),
            max_seg_size: Some(1460),
            sack_permitted: true,
            sack_ranges: [None; 3],
            timestamp: Some((0x0d3f_8a21, 0)),
            payload: &[],
        }
    }

    fn data_repr() -> TcpRepr<'static> {
        let mut repr = syn_repr();
        repr.control = TcpControl::Psh;
        repr.seq_number = 0x3b9a_ca08;
        repr.ack_number = Some(0x91c2_e6f4);
        repr.window_len = 502;
        (repr.window_scale, repr.max_seg_size, repr.sack_permitted) = (None, None, false);
        repr.timestamp = Some((0x0d3f_8b05, 0x7a1c_4e90));
        repr.payload = HTTP;
        repr
    }

    /// Emits `repr` into an exactly sized, 0xa5-filled buffer.
    fn emit(repr: &TcpRepr<'_>, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), src, dst);
        buf
    }

    /// Parses `buf` as a segment from SRC to DST.
    fn parse(buf: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(&TcpPacket::new_checked(buf)?, SRC, DST)
    }

    /// Makes the checksum of `buf` valid again for SRC to DST after an edit.
    fn refill(buf: &mut [u8]) {
        TcpPacket::new_unchecked(buf).fill_checksum(SRC, DST);
    }

    #[test]
    fn read_fields() {
        let packet = TcpPacket::new_checked(&SYN[..]).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (54321, 443));
        assert_eq!((packet.seq_number(), packet.ack_number()), (0x3b9a_ca07, 0));
        assert_eq!(packet.header_len(), 40);
        assert!(packet.syn() && !packet.fin() && !packet.rst() && !packet.psh() && !packet.ack());
        assert!(!packet.urg() && !packet.ece() && !packet.cwr());
        assert_eq!(packet.window_len(), 64240);
        assert_eq!((packet.checksum(), packet.urgent_at()), (0xedcd, 0));
        assert_eq!(packet.options(), &SYN[20..]);
        assert_eq!(packet.payload(), &[] as &[u8]);
        assert_eq!(packet.segment_len(), 1);
        assert!(packet.verify_checksum(SRC, DST));
        assert!(!packet.verify_checksum(SRC6, DST6));
        let options: Vec<_> = packet.options_iter().map(Result::unwrap).collect();
        let timestamp = TcpOption::Timestamp {
            tsval: 0x0d3f_8a21,
            tsecr: 0,
        };
        assert_eq!(
            options,
            [
                TcpOption::MaxSegmentSize(1460),
                TcpOption::SackPermitted,
                timestamp,
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );

        let packet = TcpPacket::new_checked(&DATA[..]).unwrap();
        assert_eq!(
            (packet.seq_number(), packet.ack_number()),
            (0x3b9a_ca08, 0x91c2_e6f4)
        );
        assert_eq!(packet.header_len(), 32);
        assert!(packet.psh() && packet.ack() && !packet.syn() && !packet.fin() && !packet.rst());
        assert_eq!((packet.window_len(), packet.checksum()), (502, 0x8a6a));
        assert_eq!(packet.payload(), HTTP);
        assert_eq!(packet.segment_len(), HTTP.len());
        assert!(packet.verify_checksum(SRC, DST));
        assert_eq!(packet.into_payload(), HTTP);
    }

    #[test]
    fn write_fields() {
        let mut buf = [0xa5u8; 40];
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(54321);
        packet.set_dst_port(443);
        packet.set_seq_number(0x3b9a_ca07);
        packet.set_ack_number(0);
        packet.set_header_len(40);
        packet.clear_flags();
        packet.set_syn(true);
        packet.set_window_len(64240);
        packet.set_urgent_at(0);
        packet.options_mut().copy_from_slice(&SYN[20..]);
        packet.fill_checksum(SRC, DST);
        assert_eq!(buf, SYN);

        let mut buf = [0xa5u8; 69];
        let mut packet = TcpPacket::new_unchecked(&mut buf[..]);
        packet.set_src_port(54321);
        packet.set_dst_port(443);
        packet.set_seq_number(0x3b9a_ca08);
        packet.set_ack_number(0x91c2_e6f4);
        packet.set_header_len(32);
        packet.clear_flags();
        packet.set_psh(true);
        packet.set_ack(true);
        packet.set_window_len(502);
        packet.set_urgent_at(0);
        packet.options_mut().copy_from_slice(&DATA[20..32]);
        packet.payload_mut().copy_from_slice(HTTP);
        packet.fill_checksum(SRC, DST);
        assert_eq!(buf, DATA);
    }

    #[test]
    fn flags_are_independent() {
        type Setter = fn(&mut TcpPacket<[u8; 20]>, bool);
        let setters: [Setter; 8] = [
            TcpPacket::set_fin,
            TcpPacket::set_syn,
            TcpPacket::set_rst,
            TcpPacket::set_psh,
            TcpPacket::set_ack,
            TcpPacket::set_urg,
            TcpPacket::set_ece,
            TcpPacket::set_cwr,
        ];
        let mut packet = TcpPacket::new_unchecked([0u8; 20]);
        packet.set_header_len(20);
        for (i, set) in setters.iter().enumerate() {
            set(&mut packet, true);
            assert_eq!(packet.clone().into_inner()[12..14], [0x50, 1 << i]);
            set(&mut packet, false);
        }
        packet.set_syn(true);
        packet.set_ack(true);
        packet.clear_flags();
        assert_eq!(packet.clone().into_inner()[12..14], [0x50, 0x00]);
    }

    #[test]
    fn parse_repr() {
        assert_eq!(parse(&SYN), Ok(syn_repr()));
        assert_eq!(parse(&DATA), Ok(data_repr()));
    }

    #[test]
    fn emit_repr() {
        assert_eq!((syn_repr().header_len(), syn_repr().buffer_len()), (40, 40));
        assert_eq!(syn_repr().segment_len(), 1);
        assert_eq!(emit(&syn_repr(), SRC, DST), SYN);
        assert_eq!(
            (data_repr().header_len(), data_repr().buffer_len()),
            (32, 69)
        );
        assert_eq!(emit(&data_repr(), SRC, DST), DATA);

        // Into a larger buffer: the checksum covers the segment only.
        let mut buf = [0xa5u8; 80];
        data_repr().emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC, DST);
        assert_eq!(&buf[..69], &DATA[..]);
        assert!(buf[69..].iter().all(|&b| b == 0xa5));
    }

    #[test]
    fn ipv6_round_trip() {
        let buf = emit(&data_repr(), SRC6, DST6);
        let packet = TcpPacket::new_checked(&buf[..]).unwrap();
        assert!(packet.verify_checksum(SRC6, DST6));
        assert!(!packet.verify_checksum(SRC, DST) && !packet.verify_checksum(SRC, DST6));
        assert_eq!(TcpRepr::parse(&packet, SRC6, DST6), Ok(data_repr()));
    }

    #[test]
    fn option_round_trips() {
        let sack1 = [Some((0x1000, 0x2000)), None, None];
        let sack3 = [Some((1, 2)), Some((3, 4)), Some((5, 6))];
        let sack3_bytes = [
            0x05, 0x1a, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6,
        ];
        let ts = |tsval, tsecr| TcpOption::Timestamp { tsval, tsecr };
        let unknown = |kind, data| TcpOption::Unknown { kind, data };
        let cases: [(TcpOption<'_>, &[u8]); 10] = [
            (TcpOption::EndOfList, &[0x00]),
            (TcpOption::NoOperation, &[0x01]),
            (TcpOption::MaxSegmentSize(1460), &[0x02, 0x04, 0x05, 0xb4]),
            (TcpOption::WindowScale(7), &[0x03, 0x03, 0x07]),
            (TcpOption::SackPermitted, &[0x04, 0x02]),
            (
                ts(0x0102_0304, 0x0506_0708),
                &[0x08, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8],
            ),
            (
                TcpOption::SackRange(sack1),
                &[5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0],
            ),
            (TcpOption::SackRange(sack3), &sack3_bytes),
            (unknown(30, &[0xaa][..]), &[30, 3, 0xaa]),
            (unknown(34, &[][..]), &[34, 2]),
        ];
        for (option, bytes) in cases {
            assert_eq!(option.buffer_len(), bytes.len(), "{option:?}");
            let mut buf = [0xa5u8; 40];
            assert_eq!(option.emit(&mut buf), bytes.len());
            assert_eq!(&buf[..bytes.len()], bytes, "{option:?}");
            assert!(buf[bytes.len()..].iter().all(|&b| b == 0xa5));
            let (rest, parsed) = TcpOption::parse(&buf).unwrap();
            assert_eq!((parsed, rest.len()), (option, 40 - bytes.len()));
        }
    }

    #[test]
    fn sack_with_four_blocks_keeps_three() {
        let mut buf = [0u8; 34];
        buf[..2].copy_from_slice(&[5, 34]);
        for i in 0..8u8 {
            buf[2 + 4 * usize::from(i) + 3] = i;
        }
        let (rest, option) = TcpOption::parse(&buf).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            option,
            TcpOption::SackRange([Some((0, 1)), Some((2, 3)), Some((4, 5))])
        );
    }

    #[test]
    fn malformed_options() {
        let cases: [&[u8]; 16] = [
            &[0x02],                            // no length byte
            &[0x02, 0x00],                      // length 0
            &[0x02, 0x01],                      // length 1
            &[0x02, 0x04, 0x05],                // runs past the buffer
            &[0x02, 0x03, 0x05],                // MSS of length 3
            &[0x02, 0x05, 0x05, 0xb4, 0x00],    // MSS of length 5
            &[0x03, 0x02],                      // WS of length 2
            &[0x03, 0x04, 0x07, 0x00],          // WS of length 4
            &[0x04, 0x03, 0x00],                // SACK-permitted of length 3
            &[0x08, 0x09, 0, 0, 0, 0, 0, 0, 0], // timestamps of length 9
            &[0x08, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x05, 0x02],                      // SACK with no blocks
            &[0x05, 0x09, 0, 0, 0, 0, 0, 0, 0], // SACK of length 9
            &[0x05, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[0x1e, 0x00],             // unknown kind, length 0
            &[0x1e, 0x05, 0x00, 0x00], // unknown kind, runs past the buffer
        ];
        for bytes in cases {
            assert_eq!(
                TcpOption::parse(bytes),
                Err(Error::BadOption),
                "{bytes:02x?}"
            );
            let mut iter = TcpOptionsIter::new(bytes);
            assert_eq!(iter.next(), Some(Err(Error::BadOption)));
            assert_eq!(iter.next(), None, "the iterator stops after an error");
        }
        assert_eq!(TcpOption::parse(&[]), Err(Error::Truncated));

        // In a segment: MSS with length 0.
        let mut buf = SYN;
        buf[21] = 0x00;
        refill(&mut buf);
        assert_eq!(parse(&buf), Err(Error::BadOption));
    }

    #[test]
    fn options_iter_stops_after_end_of_list() {
        let options = [0x01, 0x01, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff];
        let parsed: Vec<_> = TcpOptionsIter::new(&options).map(Result::unwrap).collect();
        let expected = [
            TcpOption::NoOperation,
            TcpOption::NoOperation,
            TcpOption::EndOfList,
        ];
        assert_eq!(parsed, expected);
        assert_eq!(TcpOptionsIter::new(&[]).count(), 0);
    }

    #[test]
    fn sack_blocks_round_trip() {
        // An ACK with timestamps and three SACK blocks: a full 60-byte header.
        let mut repr = data_repr();
        repr.control = TcpControl::None;
        repr.sack_ranges = [Some((1000, 2000)), Some((3000, 4000)), Some((5000, 6000))];
        repr.payload = &[];
        assert_eq!(repr.header_len(), 60);
        let buf = emit(&repr, SRC, DST);
        assert_eq!(&buf[32..36], &[0x01, 0x01, 0x05, 0x1a]);
        assert_eq!(parse(&buf), Ok(repr));

        // Without timestamps: NOP NOP SACK only.
        repr.timestamp = None;
        repr.sack_ranges = [Some((7, 9)), None, None];
        assert_eq!(repr.header_len(), 20 + 4 + 8);
        let buf = emit(&repr, SRC, DST);
        assert_eq!(&buf[20..24], &[0x01, 0x01, 0x05, 0x0a]);
        assert_eq!(parse(&buf), Ok(repr));
    }

    #[test]
    fn sack_blocks_that_do_not_fit_are_dropped() {
        // Every option at once leaves room for two blocks.
        let mut repr = syn_repr();
        repr.sack_ranges = [Some((1, 2)), Some((3, 4)), Some((5, 6))];
        assert_eq!(repr.header_len(), 60);
        let buf = emit(&repr, SRC, DST);
        let parsed = parse(&buf).unwrap();
        assert_eq!(parsed.sack_ranges, [Some((1, 2)), Some((3, 4)), None]);
        repr.sack_ranges = parsed.sack_ranges;
        assert_eq!(parsed, repr);
    }

    #[test]
    fn option_layouts() {
        let mut bare = syn_repr();
        (bare.window_scale, bare.max_seg_size, bare.timestamp) = (None, None, None);
        bare.sack_permitted = false;
        assert_eq!(bare.header_len(), 20);
        let (mut sack, mut ws, mut mss) = (bare, bare, bare);
        sack.sack_permitted = true;
        ws.window_scale = Some(14);
        mss.max_seg_size = Some(1220);
        assert_eq!(&emit(&sack, SRC, DST)[20..], &[0x01, 0x01, 0x04, 0x02]);
        assert_eq!(&emit(&ws, SRC, DST)[20..], &[0x01, 0x03, 0x03, 0x0e]);
        assert_eq!(&emit(&mss, SRC, DST)[20..], &[0x02, 0x04, 0x04, 0xc4]);
        for repr in [bare, sack, ws, mss] {
            assert_eq!(parse(&emit(&repr, SRC, DST)), Ok(repr));
        }
    }

    #[test]
    fn window_scale_above_14_is_clamped() {
        let mut repr = syn_repr();
        repr.window_scale = Some(15);
        let buf = emit(&repr, SRC, DST);
        assert_eq!(buf[39], 15);
        assert_eq!(parse(&buf).unwrap().window_scale, Some(14));
    }

    #[test]
    fn unknown_options_are_skipped() {
        // NOP NOP, unknown kind 30 (MPTCP) with 6 data bytes, then EOL padding.
        let mut buf = [0u8; 36];
        buf[..20].copy_from_slice(&DATA[..20]);
        buf[20..32].copy_from_slice(&[0x01, 0x01, 30, 8, 1, 2, 3, 4, 5, 6, 0x00, 0x00]);
        buf[32..].copy_from_slice(b"data");
        refill(&mut buf);
        let repr = parse(&buf).unwrap();
        assert_eq!((repr.timestamp, repr.payload), (None, &b"data"[..]));
        let packet = TcpPacket::new_checked(&buf[..]).unwrap();
        let unknown = TcpOption::Unknown {
            kind: 30,
            data: &[1, 2, 3, 4, 5, 6],
        };
        assert!(packet.options_iter().any(|o| o == Ok(unknown)));
    }

    #[test]
    fn control_flags() {
        let cases: [(u8, Result<(TcpControl, bool)>); 9] = [
            (0x10, Ok((TcpControl::None, true))),
            (0x18, Ok((TcpControl::Psh, true))),
            (0x12, Ok((TcpControl::Syn, true))),
            (0x11, Ok((TcpControl::Fin, true))),
            (0x19, Ok((TcpControl::Fin, true))), // FIN|PSH|ACK: PSH not kept
            (0x04, Ok((TcpControl::Rst, false))),
            (0x03, Err(Error::Unsupported)), // SYN|FIN
            (0x06, Err(Error::Unsupported)), // SYN|RST
            (0x05, Err(Error::Unsupported)), // FIN|RST
        ];
        for (flags, expected) in cases {
            let mut buf = DATA;
            buf[13] = flags;
            refill(&mut buf);
            let got = parse(&buf).map(|r| (r.control, r.ack_number.is_some()));
            assert_eq!(got, expected, "flags {flags:#04x}");
        }
        assert_eq!(TcpControl::Syn.seq_len() + TcpControl::Fin.seq_len(), 2);
        assert_eq!(TcpControl::Rst.seq_len() + TcpControl::Psh.seq_len(), 0);
        assert_eq!(TcpControl::default(), TcpControl::None);
    }

    #[test]
    fn segment_len_counts_syn_and_fin() {
        let mut buf = DATA;
        let mut packet = TcpPacket::new_checked(&mut buf[..]).unwrap();
        packet.set_fin(true);
        assert_eq!(packet.segment_len(), HTTP.len() + 1);
        packet.set_syn(true);
        assert_eq!(packet.segment_len(), HTTP.len() + 2);
        let mut repr = data_repr();
        repr.control = TcpControl::Fin;
        assert_eq!(repr.segment_len(), HTTP.len() + 1);
    }

    #[test]
    fn check_len_errors() {
        for len in 0..HEADER_LEN {
            assert_eq!(
                TcpPacket::new_checked(&DATA[..len]).err(),
                Some(Error::Truncated)
            );
            let packet = TcpPacket::new_unchecked(&DATA[..len]);
            assert_eq!(TcpRepr::parse(&packet, SRC, DST), Err(Error::Truncated));
        }
        // Cut inside the options.
        for len in HEADER_LEN..40 {
            assert_eq!(
                TcpPacket::new_checked(&SYN[..len]).err(),
                Some(Error::Truncated)
            );
        }
        for offset in 0..5u8 {
            let mut buf = DATA;
            buf[12] = offset << 4;
            assert_eq!(
                TcpPacket::new_checked(&buf[..]).err(),
                Some(Error::BadHeaderLen)
            );
        }
        let mut buf = SYN;
        buf[12] = 0xf0; // 60 bytes of header in a 40-byte buffer
        assert_eq!(
            TcpPacket::new_checked(&buf[..]).err(),
            Some(Error::Truncated)
        );
        // A payload cut short is not detectable here: only the checksum fails.
        assert_eq!(parse(&DATA[..60]), Err(Error::BadChecksum));
    }

    #[test]
    fn bad_checksum_is_refused() {
        let mut buf = DATA;
        buf[40] ^= 0x01;
        assert!(!TcpPacket::new_checked(&buf[..])
            .unwrap()
            .verify_checksum(SRC, DST));
        assert_eq!(parse(&buf), Err(Error::BadChecksum));
        let packet = TcpPacket::new_checked(&DATA[..]).unwrap();
        let other: IpAddr = Ipv4Addr::new(198, 51, 100, 21).into();
        assert_eq!(TcpRepr::parse(&packet, SRC, other), Err(Error::BadChecksum));
    }

    prop_compose! {
        fn any_repr()(
            (src_port, dst_port, seq_number) in any::<(u16, u16, u32)>(),
            ((ack_number, window_len), control) in (any::<(Option<u32>, u16)>(), 0..5usize),
            window_scale in proptest::option::of(0..=14u8),
            (max_seg_size, sack_permitted) in any::<(Option<u16>, bool)>(),
            (sack_ranges, timestamp) in any::<([Option<(u32, u32)>; 3], Option<(u32, u32)>)>(),
        ) -> TcpRepr<'static> {
            let controls = [TcpControl::None, TcpControl::Psh, TcpControl::Syn, TcpControl::Fin, TcpControl::Rst];
            TcpRepr {
                src_port, dst_port, control: controls[control], seq_number, ack_number, window_len,
                window_scale, max_seg_size, sack_permitted, sack_ranges, timestamp, payload: &[],
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(packet) = TcpPacket::new_checked(&data[..]) {
                let _ = (packet.src_port(), packet.dst_port(), packet.seq_number());
                let _ = (packet.ack_number(), packet.header_len(), packet.window_len());
                let _ = (packet.fin(), packet.syn(), packet.rst(), packet.psh(), packet.ack());
                let _ = (packet.urg(), packet.ece(), packet.cwr(), packet.urgent_at());
                let _ = (packet.checksum(), packet.options(), packet.payload());
                let _ = (packet.segment_len(), packet.verify_checksum(SRC, DST));
                prop_assert!(packet.options_iter().count() <= packet.options().len());
                let _ = TcpRepr::parse(&packet, SRC, DST);
            }
            // With the checksum made valid, parse gets past it to the options and flags.
            let mut fixed = data.clone();
            if TcpPacket::new_checked(&fixed[..]).is_ok() {
                refill(&mut fixed);
                if let Ok(repr) = parse(&fixed) {
                    prop_assert_eq!(repr.payload, TcpPacket::new_unchecked(&fixed[..]).into_payload());
                }
            }
            for start in 0..data.len().min(8) {
                if let Ok((rest, option)) = TcpOption::parse(&data[start..]) {
                    prop_assert!(rest.len() < data.len() - start);
                    let _ = option.buffer_len();
                }
            }
        }

        #[test]
        fn repr_round_trips(
            base in any_repr(),
            payload in proptest::collection::vec(any::<u8>(), 0..32),
            v6 in any::<bool>(),
        ) {
            let (src, dst) = if v6 { (SRC6, DST6) } else { (SRC, DST) };
            let repr = TcpRepr { payload: &payload, ..base };
            prop_assert!(repr.header_len() <= MAX_HEADER_LEN && repr.header_len().is_multiple_of(4));
            let buf = emit(&repr, src, dst);
            let parsed = TcpRepr::parse(&TcpPacket::new_checked(&buf[..]).unwrap(), src, dst);
            let parsed = parsed.unwrap();
            // Only trailing SACK blocks that do not fit may be lost.
            prop_assert_eq!(TcpRepr { sack_ranges: parsed.sack_ranges, ..repr }, parsed);
            let kept = parsed.sack_ranges.iter().flatten();
            prop_assert!(repr.sack_ranges.iter().flatten().take(kept.clone().count()).eq(kept));
        }
    }
}
