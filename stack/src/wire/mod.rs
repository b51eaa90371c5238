//! Wire formats: typed, checked, zero-copy views over packet buffers, and their emitters.
//!
//! Every header follows one pattern (after smoltcp's `wire`): a `Packet<T: AsRef<[u8]>>`
//! wraps a buffer; `new_checked` validates the lengths once for untrusted input, after
//! which **no accessor can panic**; `new_unchecked` is for emitting into a buffer the
//! caller sized. A `Repr` (parsed representation) sits on top for traffic that ends
//! here. The forwarding path never builds a `Repr`: it rewrites in place.
//!
//! Errors are a small `Copy` enum: a malformed frame costs a counter increment, never an
//! allocation.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod ndp;
pub mod tcp;
pub mod udp;

use core::fmt;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use ethernet::{parse_l2, EthernetFrame, EthernetRepr, L2Info, VlanHeader};
pub use icmpv4::{
    Icmpv4DstUnreachable, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv4TimeExceeded,
};
pub use icmpv6::{
    Icmpv6DstUnreachable, Icmpv6Message, Icmpv6Packet, Icmpv6ParamProblem, Icmpv6Repr,
    Icmpv6TimeExceeded,
};
pub use ipv4::{Ipv4Packet, Ipv4Repr};
pub use ipv6::{walk_ext_headers, ExtChain, Ipv6Packet, Ipv6Repr};
pub use ndp::{NdiscOption, NdiscRepr, PrefixInfo};
pub use tcp::{TcpControl, TcpOption, TcpPacket, TcpRepr};
pub use udp::{UdpPacket, UdpRepr};

/// Why a buffer is not a valid header of the expected kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header or than a length field says.
    Truncated,
    /// A version field holds the wrong value.
    BadVersion,
    /// A header length field is out of range.
    BadHeaderLen,
    /// A total or payload length field disagrees with the buffer.
    BadLength,
    /// The checksum does not verify.
    BadChecksum,
    /// An option or extension header is malformed.
    BadOption,
    /// A field holds a value this implementation does not accept (for example an ARP
    /// hardware type other than Ethernet).
    Unsupported,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::Truncated => "truncated",
            Error::BadVersion => "bad version",
            Error::BadHeaderLen => "bad header length",
            Error::BadLength => "bad length",
            Error::BadChecksum => "bad checksum",
            Error::BadOption => "bad option",
            Error::Unsupported => "unsupported value",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// Result of parsing a header.
pub type Result<T> = core::result::Result<T, Error>;

/// A 48-bit Ethernet (EUI-48) address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// The address in `data`, which must be 6 bytes long.
    pub fn from_bytes(data: &[u8]) -> Self {
        let mut b = [0u8; 6];
        b.copy_from_slice(data);
        EthernetAddress(b)
    }
    /// The six octets.
    pub const fn as_bytes(&self) -> &[u8; 6] {
        &self.0
    }
    /// True for a unicast address (group bit clear, not all zeros).
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 0x01 == 0 && self.0 != [0; 6]
    }
    /// True for ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// True when the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }
    /// True for a locally administered address.
    pub fn is_local(&self) -> bool {
        self.0[0] & 0x02 != 0
    }
    /// The IPv6 multicast MAC 33:33:xx:xx:xx:xx for `group` (RFC 2464 §7).
    pub fn ipv6_multicast(group: core::net::Ipv6Addr) -> Self {
        let o = group.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::str::FromStr for EthernetAddress {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split([':', '-']) {
            if n == 6 || part.len() != 2 {
                return Err(Error::BadLength);
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| Error::Unsupported)?;
            n += 1;
        }
        if n != 6 {
            return Err(Error::BadLength);
        }
        Ok(EthernetAddress(out))
    }
}

macro_rules! enum_with_unknown {
    (
        $(#[$meta:meta])* pub enum $name:ident($ty:ty) {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+,
            /// A value with no name here.
            Unknown($ty),
        }

        impl From<$ty> for $name {
            fn from(value: $ty) -> Self {
                match value {
                    $( $value => $name::$variant ),+,
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $ty {
            fn from(value: $name) -> Self {
                match value {
                    $( $name::$variant => $value ),+,
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use enum_with_unknown;

enum_with_unknown! {
    /// The EtherType field of an Ethernet II frame.
    pub enum EtherType(u16) {
        /// IPv4.
        Ipv4 = 0x0800,
        /// ARP.
        Arp = 0x0806,
        /// IPv6.
        Ipv6 = 0x86dd,
        /// IEEE 802.1Q VLAN tag.
        Vlan = 0x8100,
        /// IEEE 802.1ad service VLAN tag (QinQ).
        QinQ = 0x88a8,
    }
}

enum_with_unknown! {
    /// IP protocol numbers (IPv4 protocol, IPv6 next header).
    pub enum IpProtocol(u8) {
        /// IPv6 hop-by-hop options.
        HopByHop = 0,
        /// ICMP for IPv4.
        Icmp = 1,
        /// TCP.
        Tcp = 6,
        /// UDP.
        Udp = 17,
        /// IPv6 routing header.
        Ipv6Route = 43,
        /// IPv6 fragment header.
        Ipv6Frag = 44,
        /// Encapsulating security payload.
        Esp = 50,
        /// Authentication header.
        Ah = 51,
        /// ICMP for IPv6.
        Icmpv6 = 58,
        /// IPv6 no next header.
        Ipv6NoNxt = 59,
        /// IPv6 destination options.
        Ipv6Opts = 60,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ethernet_address_classes_and_parsing() {
        let a: EthernetAddress = "02:00:5e:10:00:01".parse().unwrap();
        assert!(a.is_unicast() && a.is_local() && !a.is_multicast());
        assert_eq!(a.to_string(), "02:00:5e:10:00:01");
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(!EthernetAddress([0; 6]).is_unicast());
        assert!("02:00:5e:10:00".parse::<EthernetAddress>().is_err());
        assert!("02:00:5e:10:00:zz".parse::<EthernetAddress>().is_err());
        assert!("02:00:5e:10:00:01:02".parse::<EthernetAddress>().is_err());
        let g: core::net::Ipv6Addr = "ff02::1:ff00:1234".parse().unwrap();
        assert_eq!(
            EthernetAddress::ipv6_multicast(g).0,
            [0x33, 0x33, 0xff, 0x00, 0x12, 0x34]
        );
    }

    #[test]
    fn enums_round_trip_unknown_values() {
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(u16::from(EtherType::Unknown(0x1234)), 0x1234);
        assert_eq!(IpProtocol::from(58), IpProtocol::Icmpv6);
        assert_eq!(u8::from(IpProtocol::Unknown(200)), 200);
    }
}
