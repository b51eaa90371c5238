//! Neighbor Discovery for IPv6 (RFC 4861): the message bodies carried by ICMPv6, their
//! options, and [`NdiscRepr`].
//!
//! The fixed fields of each message are read and written through
//! [`Icmpv6Packet`] (`target_addr`, `router_lifetime`,
//! `ndisc_options`, ...), which never panics once `new_checked` has succeeded. Options are
//! parsed one at a time by [`NdiscOption::parse`], which checks every length, so no
//! option accessor can panic either.
//!
//! [`NdiscRepr::parse`] applies the validity checks of RFC 4861 §6.1, §7.1 and §8.1 that
//! need only the ICMPv6 message (code, lengths, options, target addresses). The checks
//! that need the IP header (hop limit 255, unspecified source with no link-layer address
//! option, multicast destination with the Solicited flag) are the caller's.

use core::net::Ipv6Addr;

use crate::wire::icmpv6::{Icmpv6Message, Icmpv6Packet};
use crate::wire::{enum_with_unknown, Error, EthernetAddress, Result};

/// Byte ranges of the options (RFC 4861 §4.6).
mod field {
    use core::ops::Range;

    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_LLADDR: Range<usize> = 2..8;
    pub const OPT_PREFIX_LEN: usize = 2;
    pub const OPT_PREFIX_FLAGS: usize = 3;
    pub const OPT_VALID_LIFETIME: Range<usize> = 4..8;
    pub const OPT_PREFERRED_LIFETIME: Range<usize> = 8..12;
    pub const OPT_PREFIX_RESERVED: Range<usize> = 12..16;
    pub const OPT_PREFIX: Range<usize> = 16..32;
    pub const OPT_MTU: Range<usize> = 4..8;
    pub const OPT_REDIRECTED_DATA: usize = 8;
}

/// On-link flag of a Prefix Information option.
const PREFIX_FLAG_ON_LINK: u8 = 0x80;
/// Autonomous address-configuration flag of a Prefix Information option.
const PREFIX_FLAG_AUTONOMOUS: u8 = 0x40;

enum_with_unknown! {
    /// Neighbor Discovery option types (RFC 4861 §4.6).
    pub enum NdiscOptionType(u8) {
        /// Source link-layer address (§4.6.1).
        SourceLinkLayerAddr = 1,
        /// Target link-layer address (§4.6.1).
        TargetLinkLayerAddr = 2,
        /// Prefix information (§4.6.2).
        PrefixInformation = 3,
        /// Redirected header (§4.6.3).
        RedirectedHeader = 4,
        /// MTU (§4.6.4).
        Mtu = 5,
    }
}

/// The Prefix Information option (RFC 4861 §4.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrefixInfo {
    /// Number of leading bits of `prefix` that are valid, 0 to 128.
    pub prefix_len: u8,
    /// L: the prefix is on-link.
    pub on_link: bool,
    /// A: the prefix can be used for stateless address autoconfiguration (RFC 4862).
    pub autonomous: bool,
    /// Valid lifetime, in seconds (`u32::MAX`: infinity).
    pub valid_lifetime: u32,
    /// Preferred lifetime, in seconds (`u32::MAX`: infinity).
    pub preferred_lifetime: u32,
    /// The prefix; bits beyond `prefix_len` are zero on transmission and ignored on
    /// reception.
    pub prefix: Ipv6Addr,
}

/// A Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdiscOption<'a> {
    /// Source link-layer address (type 1), an Ethernet address here.
    SourceLinkLayerAddr(EthernetAddress),
    /// Target link-layer address (type 2), an Ethernet address here.
    TargetLinkLayerAddr(EthernetAddress),
    /// Prefix information (type 3).
    PrefixInformation(PrefixInfo),
    /// Redirected header (type 4): the start of the redirected packet, its IPv6 header
    /// first, with the option's zero padding at the end.
    RedirectedHeader(&'a [u8]),
    /// MTU (type 5), in bytes.
    Mtu(u32),
    /// Any other option, which a receiver ignores (RFC 4861 §4.6): its type and the bytes
    /// after the type and length.
    Unknown {
        /// The option type.
        kind: u8,
        /// The bytes after the type and length.
        data: &'a [u8],
    },
}

/// The most bytes an option's Length field can describe (255 units of 8 octets).
const MAX_OPTION_LEN: usize = 255 * 8;

impl<'a> NdiscOption<'a> {
    /// Parses the option at the start of `buf` and returns it with its length in bytes.
    ///
    /// Errors: `Truncated` when the option runs past the end of `buf`; `BadOption` for a
    /// Length of zero (RFC 4861 §4.6), a link-layer address option that is not one unit
    /// long (not an Ethernet address), a Prefix Information option not four units long or
    /// with a prefix length above 128, an MTU option not one unit long.
    pub fn parse(buf: &'a [u8]) -> Result<(NdiscOption<'a>, usize)> {
        if buf.len() < 2 {
            return Err(Error::Truncated);
        }
        let kind = NdiscOptionType::from(buf[field::OPT_TYPE]);
        let units = buf[field::OPT_LEN];
        if units == 0 {
            return Err(Error::BadOption);
        }
        let len = usize::from(units) * 8;
        let opt = buf.get(..len).ok_or(Error::Truncated)?;
        let option = match kind {
            NdiscOptionType::SourceLinkLayerAddr | NdiscOptionType::TargetLinkLayerAddr => {
                if units != 1 {
                    return Err(Error::BadOption);
                }
                let lladdr = EthernetAddress::from_bytes(&opt[field::OPT_LLADDR]);
                if kind == NdiscOptionType::SourceLinkLayerAddr {
                    NdiscOption::SourceLinkLayerAddr(lladdr)
                } else {
                    NdiscOption::TargetLinkLayerAddr(lladdr)
                }
            }
            NdiscOptionType::PrefixInformation => {
                if units != 4 || opt[field::OPT_PREFIX_LEN] > 128 {
                    return Err(Error::BadOption);
                }
                let flags = opt[field::OPT_PREFIX_FLAGS];
                let mut prefix = [0u8; 16];
                prefix.copy_from_slice(&opt[field::OPT_PREFIX]);
                NdiscOption::PrefixInformation(PrefixInfo {
                    prefix_len: opt[field::OPT_PREFIX_LEN],
                    on_link: flags & PREFIX_FLAG_ON_LINK != 0,
                    autonomous: flags & PREFIX_FLAG_AUTONOMOUS != 0,
                    valid_lifetime: read_u32(&opt[field::OPT_VALID_LIFETIME]),
                    preferred_lifetime: read_u32(&opt[field::OPT_PREFERRED_LIFETIME]),
                    prefix: Ipv6Addr::from(prefix),
                })
            }
            NdiscOptionType::RedirectedHeader => {
                NdiscOption::RedirectedHeader(&opt[field::OPT_REDIRECTED_DATA..])
            }
            NdiscOptionType::Mtu => {
                if units != 1 {
                    return Err(Error::BadOption);
                }
                NdiscOption::Mtu(read_u32(&opt[field::OPT_MTU]))
            }
            NdiscOptionType::Unknown(kind) => NdiscOption::Unknown {
                kind,
                data: &opt[2..],
            },
        };
        Ok((option, len))
    }

    /// The option type.
    pub fn kind(&self) -> NdiscOptionType {
        match self {
            NdiscOption::SourceLinkLayerAddr(_) => NdiscOptionType::SourceLinkLayerAddr,
            NdiscOption::TargetLinkLayerAddr(_) => NdiscOptionType::TargetLinkLayerAddr,
            NdiscOption::PrefixInformation(_) => NdiscOptionType::PrefixInformation,
            NdiscOption::RedirectedHeader(_) => NdiscOptionType::RedirectedHeader,
            NdiscOption::Mtu(_) => NdiscOptionType::Mtu,
            NdiscOption::Unknown { kind, .. } => NdiscOptionType::from(*kind),
        }
    }

    /// The length of the option on the wire: a multiple of 8, at most 2040 bytes.
    pub fn buffer_len(&self) -> usize {
        match self {
            NdiscOption::SourceLinkLayerAddr(_)
            | NdiscOption::TargetLinkLayerAddr(_)
            | NdiscOption::Mtu(_) => 8,
            NdiscOption::PrefixInformation(_) => 32,
            NdiscOption::RedirectedHeader(data) => round_up8(8 + data.len()),
            NdiscOption::Unknown { data, .. } => round_up8(2 + data.len()),
        }
    }

    /// Writes the option at the start of `buf`, reserved fields and padding zero, and
    /// returns its length ([`NdiscOption::buffer_len`]). Data that would make the option
    /// longer than 2040 bytes is cut; a Redirected Header is meant to be cut well before,
    /// so that the Redirect fits the minimum MTU (RFC 4861 §4.6.3).
    ///
    /// # Panics
    ///
    /// When `buf` is shorter than [`NdiscOption::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        let opt = &mut buf[..len];
        opt[field::OPT_TYPE] = self.kind().into();
        opt[field::OPT_LEN] = (len / 8) as u8;
        match self {
            NdiscOption::SourceLinkLayerAddr(lladdr) | NdiscOption::TargetLinkLayerAddr(lladdr) => {
                opt[field::OPT_LLADDR].copy_from_slice(lladdr.as_bytes());
            }
            NdiscOption::PrefixInformation(info) => {
                opt[field::OPT_PREFIX_LEN] = info.prefix_len;
                let mut flags = 0;
                if info.on_link {
                    flags |= PREFIX_FLAG_ON_LINK;
                }
                if info.autonomous {
                    flags |= PREFIX_FLAG_AUTONOMOUS;
                }
                opt[field::OPT_PREFIX_FLAGS] = flags;
                opt[field::OPT_VALID_LIFETIME].copy_from_slice(&info.valid_lifetime.to_be_bytes());
                opt[field::OPT_PREFERRED_LIFETIME]
                    .copy_from_slice(&info.preferred_lifetime.to_be_bytes());
                opt[field::OPT_PREFIX_RESERVED].fill(0);
                opt[field::OPT_PREFIX].copy_from_slice(&info.prefix.octets());
            }
            NdiscOption::RedirectedHeader(data) => {
                let start = field::OPT_REDIRECTED_DATA;
                let n = data.len().min(len - start);
                opt[2..start].fill(0);
                opt[start..start + n].copy_from_slice(&data[..n]);
                opt[start + n..].fill(0);
            }
            NdiscOption::Mtu(mtu) => {
                opt[2..4].fill(0);
                opt[field::OPT_MTU].copy_from_slice(&mtu.to_be_bytes());
            }
            NdiscOption::Unknown { data, .. } => {
                let n = data.len().min(len - 2);
                opt[2..2 + n].copy_from_slice(&data[..n]);
                opt[2 + n..].fill(0);
            }
        }
        len
    }
}

fn read_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn round_up8(n: usize) -> usize {
    ((n + 7) & !7).min(MAX_OPTION_LEN)
}

/// An iterator over the options of a Neighbor Discovery message
/// ([`Icmpv6Packet::ndisc_options`]), with the errors of [`NdiscOption::parse`]. It stops
/// after the first error.
#[derive(Debug, Clone)]
pub struct NdiscOptionsIter<'a> {
    data: &'a [u8],
}

impl<'a> NdiscOptionsIter<'a> {
    /// An iterator over the options in `data`.
    pub const fn new(data: &'a [u8]) -> Self {
        NdiscOptionsIter { data }
    }
}

impl<'a> Iterator for NdiscOptionsIter<'a> {
    type Item = Result<NdiscOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.data.is_empty() {
            return None;
        }
        match NdiscOption::parse(self.data) {
            Ok((option, len)) => {
                self.data = &self.data[len..];
                Some(Ok(option))
            }
            Err(e) => {
                self.data = &[];
                Some(Err(e))
            }
        }
    }
}

/// A parsed Neighbor Discovery message (RFC 4861 §4).
///
/// Only the options each message uses are kept, the first of each kind; unknown options
/// are skipped (RFC 4861 §4.6). A Router Advertisement with several prefixes keeps the
/// first here: read them all with [`NdiscOptionsIter`] over
/// [`Icmpv6Packet::ndisc_options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdiscRepr<'a> {
    /// Router Solicitation (§4.1).
    RouterSolicit {
        /// The Source Link-Layer Address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Router Advertisement (§4.2).
    RouterAdvert {
        /// Cur Hop Limit (0: unspecified).
        hop_limit: u8,
        /// M: addresses are available by DHCPv6.
        managed: bool,
        /// O: other configuration is available by DHCPv6.
        other: bool,
        /// Router Lifetime in seconds (0: not a default router).
        router_lifetime: u16,
        /// Reachable Time in milliseconds (0: unspecified).
        reachable_time: u32,
        /// Retrans Timer in milliseconds (0: unspecified).
        retrans_time: u32,
        /// The Source Link-Layer Address option.
        lladdr: Option<EthernetAddress>,
        /// The MTU option.
        mtu: Option<u32>,
        /// The first Prefix Information option.
        prefix_info: Option<PrefixInfo>,
    },
    /// Neighbor Solicitation (§4.3).
    NeighborSolicit {
        /// The address whose link-layer address is sought.
        target_addr: Ipv6Addr,
        /// The Source Link-Layer Address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Neighbor Advertisement (§4.4).
    NeighborAdvert {
        /// R: the sender is a router.
        router: bool,
        /// S: sent in response to a Neighbor Solicitation.
        solicited: bool,
        /// O: override an existing cache entry.
        override_: bool,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// The Target Link-Layer Address option.
        lladdr: Option<EthernetAddress>,
    },
    /// Redirect (§4.5).
    Redirect {
        /// The better first hop: a router's link-local address, or `dest_addr` itself
        /// when the destination is on-link.
        target_addr: Ipv6Addr,
        /// The destination being redirected.
        dest_addr: Ipv6Addr,
        /// The Target Link-Layer Address option.
        lladdr: Option<EthernetAddress>,
        /// The Redirected Header option's data.
        redirected_hdr: Option<&'a [u8]>,
    },
}

impl<'a> NdiscRepr<'a> {
    /// Parses a Neighbor Discovery message. The caller has checked the checksum (as
    /// [`Icmpv6Repr::parse`](crate::wire::icmpv6::Icmpv6Repr::parse) does) and checks the
    /// rules that need the IP header, the hop limit of 255 first.
    ///
    /// Errors: `Truncated` for a message shorter than its fixed part or an option running
    /// past the end; `BadOption` for a malformed option ([`NdiscOption::parse`]);
    /// `Unsupported` for a type that is not Neighbor Discovery, a code other than 0
    /// (RFC 4861 §6.1.1, §6.1.2, §7.1.1, §7.1.2, §8.1), a multicast target in a Neighbor
    /// Solicitation or Advertisement (§7.1.1, §7.1.2), and a Redirect whose destination is
    /// multicast or whose target is neither link-local nor the destination (§8.1).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Icmpv6Packet<&'a T>) -> Result<Self> {
        let msg_type = packet.msg_type();
        if !msg_type.is_ndisc() {
            return Err(Error::Unsupported);
        }
        packet.check_len()?;
        if packet.msg_code() != 0 {
            return Err(Error::Unsupported);
        }
        let mut slla = None;
        let mut tlla = None;
        let mut mtu = None;
        let mut prefix_info = None;
        let mut redirected_hdr = None;
        for option in NdiscOptionsIter::new(packet.ndisc_options()) {
            match option? {
                NdiscOption::SourceLinkLayerAddr(a) => {
                    slla.get_or_insert(a);
                }
                NdiscOption::TargetLinkLayerAddr(a) => {
                    tlla.get_or_insert(a);
                }
                NdiscOption::PrefixInformation(p) => {
                    prefix_info.get_or_insert(p);
                }
                NdiscOption::RedirectedHeader(h) => {
                    redirected_hdr.get_or_insert(h);
                }
                NdiscOption::Mtu(m) => {
                    mtu.get_or_insert(m);
                }
                NdiscOption::Unknown { .. } => {}
            }
        }
        Ok(match msg_type {
            Icmpv6Message::RouterSolicit => NdiscRepr::RouterSolicit { lladdr: slla },
            Icmpv6Message::RouterAdvert => NdiscRepr::RouterAdvert {
                hop_limit: packet.current_hop_limit(),
                managed: packet.managed_flag(),
                other: packet.other_flag(),
                router_lifetime: packet.router_lifetime(),
                reachable_time: packet.reachable_time(),
                retrans_time: packet.retrans_time(),
                lladdr: slla,
                mtu,
                prefix_info,
            },
            Icmpv6Message::NeighborSolicit => {
                let target_addr = packet.target_addr();
                if target_addr.is_multicast() {
                    return Err(Error::Unsupported);
                }
                NdiscRepr::NeighborSolicit {
                    target_addr,
                    lladdr: slla,
                }
            }
            Icmpv6Message::NeighborAdvert => {
                let target_addr = packet.target_addr();
                if target_addr.is_multicast() {
                    return Err(Error::Unsupported);
                }
                NdiscRepr::NeighborAdvert {
                    router: packet.router_flag(),
                    solicited: packet.solicited_flag(),
                    override_: packet.override_flag(),
                    target_addr,
                    lladdr: tlla,
                }
            }
            _ => {
                let target_addr = packet.target_addr();
                let dest_addr = packet.dest_addr();
                if dest_addr.is_multicast()
                    || !(target_addr.is_unicast_link_local() || target_addr == dest_addr)
                {
                    return Err(Error::Unsupported);
                }
                NdiscRepr::Redirect {
                    target_addr,
                    dest_addr,
                    lladdr: tlla,
                    redirected_hdr,
                }
            }
        })
    }

    /// The message type.
    pub fn msg_type(&self) -> Icmpv6Message {
        match self {
            NdiscRepr::RouterSolicit { .. } => Icmpv6Message::RouterSolicit,
            NdiscRepr::RouterAdvert { .. } => Icmpv6Message::RouterAdvert,
            NdiscRepr::NeighborSolicit { .. } => Icmpv6Message::NeighborSolicit,
            NdiscRepr::NeighborAdvert { .. } => Icmpv6Message::NeighborAdvert,
            NdiscRepr::Redirect { .. } => Icmpv6Message::Redirect,
        }
    }

    /// The options this message carries, in the order they are emitted; absent ones are
    /// `None`.
    fn options(&self) -> [Option<NdiscOption<'a>>; 3] {
        match *self {
            NdiscRepr::RouterSolicit { lladdr } | NdiscRepr::NeighborSolicit { lladdr, .. } => {
                [lladdr.map(NdiscOption::SourceLinkLayerAddr), None, None]
            }
            NdiscRepr::RouterAdvert {
                lladdr,
                mtu,
                prefix_info,
                ..
            } => [
                lladdr.map(NdiscOption::SourceLinkLayerAddr),
                mtu.map(NdiscOption::Mtu),
                prefix_info.map(NdiscOption::PrefixInformation),
            ],
            NdiscRepr::NeighborAdvert { lladdr, .. } => {
                [lladdr.map(NdiscOption::TargetLinkLayerAddr), None, None]
            }
            NdiscRepr::Redirect {
                lladdr,
                redirected_hdr,
                ..
            } => [
                lladdr.map(NdiscOption::TargetLinkLayerAddr),
                redirected_hdr.map(NdiscOption::RedirectedHeader),
                None,
            ],
        }
    }

    /// The length of the whole ICMPv6 message: common header, fixed part and options.
    pub fn buffer_len(&self) -> usize {
        let fixed = self.msg_type().min_len();
        fixed
            + self
                .options()
                .iter()
                .flatten()
                .map(NdiscOption::buffer_len)
                .sum::<usize>()
    }

    /// Writes the message into `packet`: type, code 0, fixed fields with the reserved
    /// bits zero, then the options (link-layer address, MTU, prefix information or
    /// redirected header). It leaves the checksum alone:
    /// [`Icmpv6Repr::emit`](crate::wire::icmpv6::Icmpv6Repr::emit) fills it.
    ///
    /// # Panics
    ///
    /// When the buffer is shorter than [`NdiscRepr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Icmpv6Packet<T>) {
        packet.set_msg_type(self.msg_type());
        packet.set_msg_code(0);
        match *self {
            NdiscRepr::RouterSolicit { .. } => packet.clear_reserved(),
            NdiscRepr::RouterAdvert {
                hop_limit,
                managed,
                other,
                router_lifetime,
                reachable_time,
                retrans_time,
                ..
            } => {
                packet.set_current_hop_limit(hop_limit);
                packet.set_router_flags(managed, other);
                packet.set_router_lifetime(router_lifetime);
                packet.set_reachable_time(reachable_time);
                packet.set_retrans_time(retrans_time);
            }
            NdiscRepr::NeighborSolicit { target_addr, .. } => {
                packet.clear_reserved();
                packet.set_target_addr(target_addr);
            }
            NdiscRepr::NeighborAdvert {
                router,
                solicited,
                override_,
                target_addr,
                ..
            } => {
                packet.set_neighbor_flags(router, solicited, override_);
                packet.set_target_addr(target_addr);
            }
            NdiscRepr::Redirect {
                target_addr,
                dest_addr,
                ..
            } => {
                packet.clear_reserved();
                packet.set_target_addr(target_addr);
                packet.set_dest_addr(dest_addr);
            }
        }
        let buf = packet.ndisc_options_mut();
        let mut at = 0;
        for option in self.options().iter().flatten() {
            at += option.emit(&mut buf[at..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv6::Icmpv6Repr;

    // Neighbor Solicitation from fe80::5054:ff:fe12:3456 to the solicited-node group
    // ff02::1:ff65:432a, for fe80::5054:ff:fe65:432a, with the Source Link-Layer Address
    // option 52:54:00:12:34:56.
    static NEIGHBOR_SOLICIT: [u8; 32] = [
        0x87, 0x00, 0x9b, 0xb1, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x54, 0x00, 0xff, 0xfe, 0x65, 0x43, 0x2a, 0x01, 0x01, 0x52, 0x54, 0x00, 0x12,
        0x34, 0x56,
    ];

    // The answer from fe80::5054:ff:fe65:432a: Router, Solicited and Override set, with the
    // Target Link-Layer Address option 52:54:00:65:43:2a.
    static NEIGHBOR_ADVERT: [u8; 32] = [
        0x88, 0x00, 0x5a, 0xb9, 0xe0, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x54, 0x00, 0xff, 0xfe, 0x65, 0x43, 0x2a, 0x02, 0x01, 0x52, 0x54, 0x00, 0x65,
        0x43, 0x2a,
    ];

    // Router Solicitation from fe80::5054:ff:fe65:432a to ff02::2, with its Source
    // Link-Layer Address.
    static ROUTER_SOLICIT: [u8; 16] = [
        0x85, 0x00, 0x53, 0x67, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x52, 0x54, 0x00, 0x65, 0x43,
        0x2a,
    ];

    // Router Advertisement from fe80::5054:ff:fe12:3456 to ff02::1: hop limit 64, O set,
    // router lifetime 1800 s, reachable time 30000 ms, retrans timer 1000 ms; Source
    // Link-Layer Address, MTU 1500, and prefix 2001:db8:1::/64 (L, A, valid 30 days,
    // preferred 7 days).
    static ROUTER_ADVERT: [u8; 64] = [
        0x86, 0x00, 0x6c, 0x19, 0x40, 0x40, 0x07, 0x08, 0x00, 0x00, 0x75, 0x30, 0x00, 0x00, 0x03,
        0xe8, 0x01, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00,
        0x05, 0xdc, 0x03, 0x04, 0x40, 0xc0, 0x00, 0x27, 0x8d, 0x00, 0x00, 0x09, 0x3a, 0x80, 0x00,
        0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00,
    ];

    // Redirect from router fe80::5054:ff:fe12:3456 to host 2001:db8:1::10: reach
    // 2001:db8:2::5 through fe80::5054:ff:fe65:432a (Target Link-Layer Address), with the
    // Redirected Header holding the IPv6 and UDP headers of the packet that caused it.
    static REDIRECT: [u8; 104] = [
        0x89, 0x00, 0x1f, 0x62, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x50, 0x54, 0x00, 0xff, 0xfe, 0x65, 0x43, 0x2a, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x02, 0x01, 0x52, 0x54, 0x00,
        0x65, 0x43, 0x2a, 0x04, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00,
        0x00, 0x14, 0x11, 0x3f, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x10, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xa0, 0x28, 0x82, 0x9a, 0x00, 0x14, 0x5c, 0x2e,
    ];

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn router_ll() -> Ipv6Addr {
        ip("fe80::5054:ff:fe12:3456")
    }

    fn host_ll() -> Ipv6Addr {
        ip("fe80::5054:ff:fe65:432a")
    }

    fn router_mac() -> EthernetAddress {
        EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
    }

    fn host_mac() -> EthernetAddress {
        EthernetAddress([0x52, 0x54, 0x00, 0x65, 0x43, 0x2a])
    }

    fn prefix_info() -> PrefixInfo {
        PrefixInfo {
            prefix_len: 64,
            on_link: true,
            autonomous: true,
            valid_lifetime: 2_592_000,
            preferred_lifetime: 604_800,
            prefix: ip("2001:db8:1::"),
        }
    }

    /// Each fixture with its addresses and repr.
    fn cases() -> [(&'static [u8], Ipv6Addr, Ipv6Addr, NdiscRepr<'static>); 5] {
        [
            (
                &NEIGHBOR_SOLICIT,
                router_ll(),
                ip("ff02::1:ff65:432a"),
                ns(),
            ),
            (&NEIGHBOR_ADVERT, host_ll(), router_ll(), na()),
            (&ROUTER_SOLICIT, host_ll(), ip("ff02::2"), rs()),
            (&ROUTER_ADVERT, router_ll(), ip("ff02::1"), ra()),
            (&REDIRECT, router_ll(), ip("2001:db8:1::10"), redirect()),
        ]
    }

    fn ns() -> NdiscRepr<'static> {
        NdiscRepr::NeighborSolicit {
            target_addr: host_ll(),
            lladdr: Some(router_mac()),
        }
    }

    fn na() -> NdiscRepr<'static> {
        NdiscRepr::NeighborAdvert {
            router: true,
            solicited: true,
            override_: true,
            target_addr: host_ll(),
            lladdr: Some(host_mac()),
        }
    }

    fn rs() -> NdiscRepr<'static> {
        NdiscRepr::RouterSolicit {
            lladdr: Some(host_mac()),
        }
    }

    fn ra() -> NdiscRepr<'static> {
        NdiscRepr::RouterAdvert {
            hop_limit: 64,
            managed: false,
            other: true,
            router_lifetime: 1800,
            reachable_time: 30_000,
            retrans_time: 1000,
            lladdr: Some(router_mac()),
            mtu: Some(1500),
            prefix_info: Some(prefix_info()),
        }
    }

    fn redirect() -> NdiscRepr<'static> {
        NdiscRepr::Redirect {
            target_addr: host_ll(),
            dest_addr: ip("2001:db8:2::5"),
            lladdr: Some(host_mac()),
            redirected_hdr: Some(&REDIRECT[56..]),
        }
    }

    fn parse(fixture: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<Icmpv6Repr<'_>> {
        let p = Icmpv6Packet::new_checked(fixture)?;
        Icmpv6Repr::parse(&src, &dst, &p)
    }

    fn emitted(repr: NdiscRepr<'_>, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
        let repr = Icmpv6Repr::Ndisc(repr);
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&src, &dst, &mut Icmpv6Packet::new_unchecked(&mut buf[..]));
        buf
    }

    fn options(fixture: &[u8]) -> Vec<NdiscOption<'_>> {
        let p = Icmpv6Packet::new_checked(fixture).unwrap();
        NdiscOptionsIter::new(p.ndisc_options())
            .map(Result::unwrap)
            .collect()
    }

    /// The parse and emit tests of entry `$case` of [`cases`].
    macro_rules! parse_and_emit {
        ($parse:ident, $emit:ident, $case:expr) => {
            #[test]
            fn $parse() {
                let (fixture, src, dst, repr) = cases()[$case];
                assert_eq!(parse(fixture, src, dst), Ok(Icmpv6Repr::Ndisc(repr)));
            }

            #[test]
            fn $emit() {
                let (fixture, src, dst, repr) = cases()[$case];
                assert_eq!(emitted(repr, src, dst), fixture);
            }
        };
    }

    parse_and_emit!(neighbor_solicit_parse, neighbor_solicit_emit, 0);
    parse_and_emit!(neighbor_advert_parse, neighbor_advert_emit, 1);
    parse_and_emit!(router_solicit_parse, router_solicit_emit, 2);
    parse_and_emit!(router_advert_parse, router_advert_emit, 3);
    parse_and_emit!(redirect_parse, redirect_emit, 4);

    #[test]
    fn neighbor_solicit_read_fields() {
        let p = Icmpv6Packet::new_checked(&NEIGHBOR_SOLICIT[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::NeighborSolicit);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.checksum(), 0x9bb1);
        assert_eq!(p.target_addr(), host_ll());
        assert!(p.verify_checksum(&router_ll(), &ip("ff02::1:ff65:432a")));
        assert_eq!(
            options(&NEIGHBOR_SOLICIT),
            [NdiscOption::SourceLinkLayerAddr(router_mac())]
        );
    }

    #[test]
    fn neighbor_solicit_write_fields() {
        let mut buf = [0xa5u8; 32];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::NeighborSolicit);
        p.set_msg_code(0);
        p.clear_reserved();
        p.set_target_addr(host_ll());
        NdiscOption::SourceLinkLayerAddr(router_mac()).emit(p.ndisc_options_mut());
        p.fill_checksum(&router_ll(), &ip("ff02::1:ff65:432a"));
        assert_eq!(buf, NEIGHBOR_SOLICIT);
    }

    #[test]
    fn neighbor_advert_read_fields() {
        let p = Icmpv6Packet::new_checked(&NEIGHBOR_ADVERT[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::NeighborAdvert);
        assert_eq!(p.checksum(), 0x5ab9);
        assert!(p.router_flag() && p.solicited_flag() && p.override_flag());
        assert_eq!(p.target_addr(), host_ll());
        assert!(p.verify_checksum(&host_ll(), &router_ll()));
        assert_eq!(
            options(&NEIGHBOR_ADVERT),
            [NdiscOption::TargetLinkLayerAddr(host_mac())]
        );
    }

    #[test]
    fn neighbor_advert_write_fields() {
        let mut buf = [0xa5u8; 32];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::NeighborAdvert);
        p.set_msg_code(0);
        p.set_neighbor_flags(true, true, true);
        p.set_target_addr(host_ll());
        NdiscOption::TargetLinkLayerAddr(host_mac()).emit(p.ndisc_options_mut());
        p.fill_checksum(&host_ll(), &router_ll());
        assert_eq!(buf, NEIGHBOR_ADVERT);
    }

    #[test]
    fn neighbor_advert_flags_are_independent() {
        for (r, s, o, byte) in [
            (true, false, false, 0x80),
            (false, true, false, 0x40),
            (false, false, true, 0x20),
        ] {
            let repr = NdiscRepr::NeighborAdvert {
                router: r,
                solicited: s,
                override_: o,
                target_addr: host_ll(),
                lladdr: None,
            };
            let buf = emitted(repr, host_ll(), router_ll());
            assert_eq!(buf.len(), 24);
            assert_eq!(buf[4..8], [byte, 0, 0, 0]);
            assert_eq!(
                parse(&buf, host_ll(), router_ll()),
                Ok(Icmpv6Repr::Ndisc(repr))
            );
        }
    }

    #[test]
    fn router_solicit_read_fields() {
        let p = Icmpv6Packet::new_checked(&ROUTER_SOLICIT[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::RouterSolicit);
        assert_eq!(p.checksum(), 0x5367);
        assert!(p.verify_checksum(&host_ll(), &ip("ff02::2")));
        assert_eq!(
            options(&ROUTER_SOLICIT),
            [NdiscOption::SourceLinkLayerAddr(host_mac())]
        );
    }

    #[test]
    fn router_solicit_write_fields() {
        let mut buf = [0xa5u8; 16];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::RouterSolicit);
        p.set_msg_code(0);
        p.clear_reserved();
        NdiscOption::SourceLinkLayerAddr(host_mac()).emit(p.ndisc_options_mut());
        p.fill_checksum(&host_ll(), &ip("ff02::2"));
        assert_eq!(buf, ROUTER_SOLICIT);
    }

    #[test]
    fn router_advert_read_fields() {
        let p = Icmpv6Packet::new_checked(&ROUTER_ADVERT[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::RouterAdvert);
        assert_eq!(p.checksum(), 0x6c19);
        assert_eq!(p.current_hop_limit(), 64);
        assert!(!p.managed_flag() && p.other_flag());
        assert_eq!(p.router_lifetime(), 1800);
        assert_eq!(p.reachable_time(), 30_000);
        assert_eq!(p.retrans_time(), 1000);
        assert!(p.verify_checksum(&router_ll(), &ip("ff02::1")));
        assert_eq!(
            options(&ROUTER_ADVERT),
            [
                NdiscOption::SourceLinkLayerAddr(router_mac()),
                NdiscOption::Mtu(1500),
                NdiscOption::PrefixInformation(prefix_info()),
            ]
        );
    }

    #[test]
    fn router_advert_write_fields() {
        let mut buf = [0xa5u8; 64];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::RouterAdvert);
        p.set_msg_code(0);
        p.set_current_hop_limit(64);
        p.set_router_flags(false, true);
        p.set_router_lifetime(1800);
        p.set_reachable_time(30_000);
        p.set_retrans_time(1000);
        let opts = p.ndisc_options_mut();
        let mut at = NdiscOption::SourceLinkLayerAddr(router_mac()).emit(opts);
        at += NdiscOption::Mtu(1500).emit(&mut opts[at..]);
        at += NdiscOption::PrefixInformation(prefix_info()).emit(&mut opts[at..]);
        assert_eq!(at, 48);
        p.fill_checksum(&router_ll(), &ip("ff02::1"));
        assert_eq!(buf, ROUTER_ADVERT);
    }

    #[test]
    fn redirect_read_fields() {
        let p = Icmpv6Packet::new_checked(&REDIRECT[..]).unwrap();
        assert_eq!(p.msg_type(), Icmpv6Message::Redirect);
        assert_eq!(p.checksum(), 0x1f62);
        assert_eq!(p.target_addr(), host_ll());
        assert_eq!(p.dest_addr(), ip("2001:db8:2::5"));
        assert!(p.verify_checksum(&router_ll(), &ip("2001:db8:1::10")));
        assert_eq!(
            options(&REDIRECT),
            [
                NdiscOption::TargetLinkLayerAddr(host_mac()),
                NdiscOption::RedirectedHeader(&REDIRECT[56..])
            ]
        );
    }

    #[test]
    fn redirect_write_fields() {
        let mut buf = [0xa5u8; 104];
        let mut p = Icmpv6Packet::new_unchecked(&mut buf[..]);
        p.set_msg_type(Icmpv6Message::Redirect);
        p.set_msg_code(0);
        p.clear_reserved();
        p.set_target_addr(host_ll());
        p.set_dest_addr(ip("2001:db8:2::5"));
        let opts = p.ndisc_options_mut();
        let at = NdiscOption::TargetLinkLayerAddr(host_mac()).emit(opts);
        NdiscOption::RedirectedHeader(&REDIRECT[56..]).emit(&mut opts[at..]);
        p.fill_checksum(&router_ll(), &ip("2001:db8:1::10"));
        assert_eq!(buf, REDIRECT);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for (fixture, src, dst, _) in cases() {
            let fixed = Icmpv6Message::from(fixture[0]).min_len();
            let mut boundaries = vec![fixed];
            for option in NdiscOptionsIter::new(&fixture[fixed..]) {
                boundaries.push(boundaries[boundaries.len() - 1] + option.unwrap().buffer_len());
            }
            for len in 0..fixture.len() {
                assert!(parse(&fixture[..len], src, dst).is_err(), "len {len}");
                // Without the checksum in the way, a cut inside an option is still caught.
                match Icmpv6Packet::new_checked(&fixture[..len]) {
                    Err(e) => assert!(len < fixed && e == Error::Truncated),
                    Ok(p) if !boundaries.contains(&len) => {
                        assert_eq!(NdiscRepr::parse(&p), Err(Error::Truncated), "len {len}")
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    #[test]
    fn bad_checksums_are_detected() {
        for (fixture, src, dst, _) in cases() {
            let mut buf = fixture.to_vec();
            let last = buf.len() - 1;
            buf[last] ^= 0x10;
            assert_eq!(parse(&buf, src, dst), Err(Error::BadChecksum));
            assert_eq!(parse(fixture, src, ip("fe80::1")), Err(Error::BadChecksum));
        }
    }

    /// Emits `repr`, applies `edit` to the bytes, refills the checksum and parses.
    fn parse_edited(
        repr: NdiscRepr<'_>,
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Icmpv6Repr<'static>> {
        let (src, dst) = (router_ll(), ip("ff02::1"));
        let mut buf = emitted(repr, src, dst);
        edit(&mut buf);
        Icmpv6Packet::new_unchecked(&mut buf[..]).fill_checksum(&src, &dst);
        let buf: &'static [u8] = Box::leak(buf.into_boxed_slice());
        parse(buf, src, dst)
    }

    #[test]
    fn nonzero_code_is_rejected() {
        for (_, _, _, repr) in cases() {
            assert_eq!(parse_edited(repr, |b| b[1] = 1), Err(Error::Unsupported));
        }
    }

    #[test]
    fn multicast_targets_are_rejected() {
        let group = ip("ff02::1:ff65:432a");
        for repr in [
            NdiscRepr::NeighborSolicit {
                target_addr: group,
                lladdr: None,
            },
            NdiscRepr::NeighborAdvert {
                router: false,
                solicited: false,
                override_: true,
                target_addr: group,
                lladdr: None,
            },
            NdiscRepr::Redirect {
                target_addr: host_ll(),
                dest_addr: group,
                lladdr: None,
                redirected_hdr: None,
            },
        ] {
            assert_eq!(parse_edited(repr, |_| {}), Err(Error::Unsupported));
        }
    }

    #[test]
    fn redirect_target_must_be_link_local_or_destination() {
        let dest = ip("2001:db8:2::5");
        let on_link = NdiscRepr::Redirect {
            target_addr: dest,
            dest_addr: dest,
            lladdr: None,
            redirected_hdr: None,
        };
        assert_eq!(
            parse_edited(on_link, |_| {}),
            Ok(Icmpv6Repr::Ndisc(on_link))
        );
        let global = NdiscRepr::Redirect {
            target_addr: ip("2001:db8::99"),
            dest_addr: dest,
            lladdr: None,
            redirected_hdr: None,
        };
        assert_eq!(parse_edited(global, |_| {}), Err(Error::Unsupported));
    }

    #[test]
    fn zero_length_option_is_rejected() {
        // RFC 4861 §4.6: a Length of 0 invalidates the whole message.
        assert_eq!(parse_edited(rs(), |b| b[9] = 0), Err(Error::BadOption));
        let mut it = NdiscOptionsIter::new(&[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn option_overrun_is_truncated() {
        assert_eq!(NdiscOption::parse(&[1]), Err(Error::Truncated));
        assert_eq!(
            NdiscOption::parse(&[1, 2, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::Truncated)
        );
        assert_eq!(parse_edited(rs(), |b| b[9] = 2), Err(Error::Truncated));
        assert_eq!(parse_edited(rs(), |b| b.push(0)), Err(Error::Truncated));
    }

    #[test]
    fn malformed_options_are_rejected() {
        // Link-layer address option two units long: not an Ethernet address.
        assert_eq!(
            NdiscOption::parse(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOption)
        );
        // MTU option two units long.
        assert_eq!(
            NdiscOption::parse(&[5, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadOption)
        );
        // Prefix Information with prefix length 129.
        let mut opt = [0u8; 32];
        NdiscOption::PrefixInformation(prefix_info()).emit(&mut opt);
        opt[2] = 129;
        assert_eq!(NdiscOption::parse(&opt), Err(Error::BadOption));
        // Prefix Information three units long.
        opt[2] = 64;
        opt[1] = 3;
        assert_eq!(NdiscOption::parse(&opt), Err(Error::BadOption));
    }

    #[test]
    fn unknown_and_repeated_options() {
        // A nonce option (type 14, RFC 3971) is skipped; the first SLLA wins.
        let mut buf = [0u8; 24];
        let mut at = NdiscOption::Unknown {
            kind: 14,
            data: &[1, 2, 3, 4, 5, 6],
        }
        .emit(&mut buf);
        at += NdiscOption::SourceLinkLayerAddr(host_mac()).emit(&mut buf[at..]);
        NdiscOption::SourceLinkLayerAddr(router_mac()).emit(&mut buf[at..]);
        let options: Vec<_> = NdiscOptionsIter::new(&buf).map(Result::unwrap).collect();
        assert_eq!(
            options[0],
            NdiscOption::Unknown {
                kind: 14,
                data: &[1, 2, 3, 4, 5, 6]
            }
        );
        assert_eq!(options[0].kind(), NdiscOptionType::Unknown(14));
        let r = parse_edited(rs(), |b| {
            b.truncate(8);
            b.extend_from_slice(&buf);
        });
        assert_eq!(r, Ok(Icmpv6Repr::Ndisc(rs())));
    }

    #[test]
    fn option_emit_pads_to_eight() {
        let mut buf = [0xa5u8; 16];
        let n = NdiscOption::Unknown {
            kind: 200,
            data: &[9, 9, 9, 9, 9, 9, 9],
        }
        .emit(&mut buf);
        assert_eq!(n, 16);
        assert_eq!(buf, [200, 2, 9, 9, 9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0]);
        let mut buf = [0xa5u8; 16];
        let n = NdiscOption::RedirectedHeader(&[7, 7, 7]).emit(&mut buf);
        assert_eq!(n, 16);
        assert_eq!(buf, [4, 2, 0, 0, 0, 0, 0, 0, 7, 7, 7, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn ndisc_getters_on_other_types_read_zero() {
        // An echo request is 8 bytes: NDP fields beyond it read as zero, no panic.
        let buf = [128u8, 0, 0, 0, 0, 1, 0, 1];
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        assert_eq!(p.target_addr(), Ipv6Addr::UNSPECIFIED);
        assert_eq!((p.reachable_time(), p.retrans_time()), (0, 0));
        assert!(p.ndisc_options().is_empty());
        assert_eq!(NdiscRepr::parse(&p), Err(Error::Unsupported));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(
                kind in 133u8..=137,
                body in proptest::collection::vec(any::<u8>(), 0..96),
            ) {
                let mut bytes = vec![kind, 0, 0, 0];
                bytes.extend_from_slice(&body);
                let Ok(p) = Icmpv6Packet::new_checked(&bytes[..]) else {
                    prop_assert!(bytes.len() < Icmpv6Message::from(kind).min_len());
                    return Ok(());
                };
                let _ = (p.current_hop_limit(), p.managed_flag(), p.other_flag());
                let _ = (p.router_lifetime(), p.reachable_time(), p.retrans_time());
                let _ = (p.target_addr(), p.router_flag(), p.solicited_flag());
                let _ = (p.override_flag(), p.dest_addr(), p.ndisc_options());
                if let Ok(repr) = NdiscRepr::parse(&p) {
                    let mut out = vec![0u8; repr.buffer_len()];
                    repr.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]));
                    let q = Icmpv6Packet::new_checked(&out[..]).unwrap();
                    prop_assert_eq!(NdiscRepr::parse(&q), Ok(repr));
                }
            }

            #[test]
            fn options_iter_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
                let mut total = 0;
                for option in NdiscOptionsIter::new(&bytes) {
                    match option {
                        Ok(o) => total += o.buffer_len().max(8),
                        Err(_) => break,
                    }
                }
                prop_assert!(total <= bytes.len() + 8);
            }
        }
    }
}
