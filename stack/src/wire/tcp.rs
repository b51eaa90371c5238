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

    /// The sequence number.
    #[inline]
    pub fn seq_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::SEQ_NUM])
    }

    /// The acknowledgment number (meaningful only when [`ack`](Self::ack) is set).
    #[inline]
    pub fn ack_number(&self) -> u32 {
        be32(&self.buffer.as_ref()[field::ACK_NUM])
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

    /// The window field, unscaled.
    #[inline]
    pub fn window_len(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::WIN_SIZE])
    }

    /// The checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The urgent pointer field.
    #[inline]
    pub fn urgent_at(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::URGENT])
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

    /// Sets the sequence number.
    #[inline]
    pub fn set_seq_number(&mut self, value: u32) {
        put32(&mut self.buffer.as_mut()[field::SEQ_NUM], value);
    }

    /// Sets the acknowledgment number.
    #[inline]
    pub fn set_ack_number(&mut self, value: u32) {
        put32(&mut self.buffer.as_mut()[field::ACK_NUM], value);
    }

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

    /// Sets the window field.
    #[inline]
    pub fn set_window_len(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::WIN_SIZE], value);
    }

    /// Sets the checksum field.
    #[inline]
    pub fn set_checksum(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the urgent pointer field.
    #[inline]
    pub fn set_urgent_at(&mut self, value: u16) {
        put16(&mut self.buffer.as_mut()[field::URGENT], value);
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

