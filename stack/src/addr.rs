//! Addresses and prefixes, validated at the edge.
//!
//! A [`Ipv4Prefix`]/[`Ipv6Prefix`] is a network (no host bits set) and a length; a
//! [`Ipv4Cidr`]/[`Ipv6Cidr`] is an interface address with the length of its subnet. Both
//! constructors fail on a length beyond the address width, so code behind the edge never
//! checks again.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// Why an address, prefix or CIDR string or value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddrError {
    /// The prefix length exceeds the address width.
    PrefixTooLong {
        /// The length given.
        len: u8,
        /// The width of the address family.
        max: u8,
    },
    /// A prefix has bits set beyond its length (`192.0.2.1/24` as a route).
    HostBitsSet,
    /// The text is not `ADDRESS/LENGTH` (or `ADDRESS` where allowed).
    Syntax(String),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::PrefixTooLong { len, max } => {
                write!(f, "prefix length {len} is longer than {max}")
            }
            AddrError::HostBitsSet => f.write_str("prefix has host bits set beyond its length"),
            AddrError::Syntax(s) => write!(f, "cannot parse {s:?} as ADDRESS/LENGTH"),
        }
    }
}

impl std::error::Error for AddrError {}

macro_rules! prefix_types {
    ($prefix:ident, $cidr:ident, $addr:ty, $bits:ty, $width:expr, $doc:expr) => {
        #[doc = concat!("An ", $doc, " network prefix: address with no host bits, and a length.")]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $prefix {
            addr: $addr,
            len: u8,
        }

        // `len` is the prefix length, not a size: there is nothing to be empty.
        #[allow(clippy::len_without_is_empty)]
        impl $prefix {
            /// The address width in bits.
            pub const WIDTH: u8 = $width;

            /// A prefix; fails when `len` is too long or `addr` has host bits set.
            pub fn new(addr: $addr, len: u8) -> Result<Self, AddrError> {
                if len > $width {
                    return Err(AddrError::PrefixTooLong { len, max: $width });
                }
                if <$bits>::from(addr) & !Self::mask_bits(len) != 0 {
                    return Err(AddrError::HostBitsSet);
                }
                Ok(Self { addr, len })
            }

            /// The prefix of length `len` that contains `addr` (host bits cleared).
            pub fn truncating(addr: $addr, len: u8) -> Result<Self, AddrError> {
                if len > $width {
                    return Err(AddrError::PrefixTooLong { len, max: $width });
                }
                let bits = <$bits>::from(addr) & Self::mask_bits(len);
                Ok(Self {
                    addr: <$addr>::from(bits),
                    len,
                })
            }

            /// The default route (length zero).
            pub const fn default_route() -> Self {
                Self {
                    addr: <$addr>::from_bits(0),
                    len: 0,
                }
            }

            /// The network address.
            pub const fn addr(&self) -> $addr {
                self.addr
            }

            /// The length in bits.
            pub const fn len(&self) -> u8 {
                self.len
            }

            /// True for the default route.
            pub const fn is_default(&self) -> bool {
                self.len == 0
            }

            /// The network address as an integer.
            pub fn bits(&self) -> $bits {
                <$bits>::from(self.addr)
            }

            /// The mask of a prefix of `len` bits, as an integer.
            pub const fn mask_bits(len: u8) -> $bits {
                if len == 0 {
                    0
                } else {
                    <$bits>::MAX << ($width - len as u32)
                }
            }

            /// True when `addr` lies in this prefix.
            pub fn contains(&self, addr: $addr) -> bool {
                <$bits>::from(addr) & Self::mask_bits(self.len) == self.bits()
            }

            /// True when `other` is equal to or more specific than `self` and inside it.
            pub fn covers(&self, other: &$prefix) -> bool {
                other.len >= self.len && self.contains(other.addr)
            }
        }

        impl fmt::Display for $prefix {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.addr, self.len)
            }
        }

        impl fmt::Debug for $prefix {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $prefix {
            type Err = AddrError;
            fn from_str(s: &str) -> Result<Self, AddrError> {
                let (addr, len) = split_cidr::<$addr>(s, $width)?;
                Self::new(addr, len)
            }
        }

        #[doc = concat!("An ", $doc, " interface address with the length of its subnet.")]
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $cidr {
            addr: $addr,
            len: u8,
        }

        // `len` is the subnet length, not a size.
        #[allow(clippy::len_without_is_empty)]
        impl $cidr {
            /// An interface address; fails when `len` is too long.
            pub fn new(addr: $addr, len: u8) -> Result<Self, AddrError> {
                if len > $width {
                    return Err(AddrError::PrefixTooLong { len, max: $width });
                }
                Ok(Self { addr, len })
            }
            /// The address.
            pub const fn addr(&self) -> $addr {
                self.addr
            }
            /// The subnet length.
            pub const fn len(&self) -> u8 {
                self.len
            }
            /// The subnet this address lies in.
            pub fn network(&self) -> $prefix {
                // Cannot fail: `len` was checked at construction.
                $prefix::truncating(self.addr, self.len).unwrap_or($prefix::default_route())
            }
        }

        impl fmt::Display for $cidr {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}/{}", self.addr, self.len)
            }
        }

        impl fmt::Debug for $cidr {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $cidr {
            type Err = AddrError;
            fn from_str(s: &str) -> Result<Self, AddrError> {
                let (addr, len) = split_cidr::<$addr>(s, $width)?;
                Self::new(addr, len)
            }
        }
    };
}

prefix_types!(Ipv4Prefix, Ipv4Cidr, Ipv4Addr, u32, 32, "IPv4");
prefix_types!(Ipv6Prefix, Ipv6Cidr, Ipv6Addr, u128, 128, "IPv6");

fn split_cidr<A: FromStr>(s: &str, width: u8) -> Result<(A, u8), AddrError> {
    let syntax = || AddrError::Syntax(s.to_string());
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse::<u8>().map_err(|_| syntax())?),
        None => (s, width),
    };
    let addr = a.trim().parse::<A>().map_err(|_| syntax())?;
    Ok((addr, l))
}

/// A prefix of either family.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum IpPrefix {
    /// IPv4.
    V4(Ipv4Prefix),
    /// IPv6.
    V6(Ipv6Prefix),
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpPrefix::V4(p) => p.fmt(f),
            IpPrefix::V6(p) => p.fmt(f),
        }
    }
}

impl FromStr for IpPrefix {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        if s.contains(':') {
            s.parse().map(IpPrefix::V6)
        } else {
            s.parse().map(IpPrefix::V4)
        }
    }
}

/// An interface address of either family.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum IpCidr {
    /// IPv4.
    V4(Ipv4Cidr),
    /// IPv6.
    V6(Ipv6Cidr),
}

impl IpCidr {
    /// The address.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpCidr::V4(c) => IpAddr::V4(c.addr()),
            IpCidr::V6(c) => IpAddr::V6(c.addr()),
        }
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpCidr::V4(c) => c.fmt(f),
            IpCidr::V6(c) => c.fmt(f),
        }
    }
}

impl FromStr for IpCidr {
    type Err = AddrError;
    fn from_str(s: &str) -> Result<Self, AddrError> {
        if s.contains(':') {
            s.parse().map(IpCidr::V6)
        } else {
            s.parse().map(IpCidr::V4)
        }
    }
}

/// IPv6 address helpers that `core::net` lacks on stable.
pub mod v6 {
    use core::net::Ipv6Addr;

    /// ff02::1, all nodes on the link.
    pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    /// ff02::2, all routers on the link.
    pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

    /// True for fe80::/10.
    pub fn is_link_local(a: Ipv6Addr) -> bool {
        a.segments()[0] & 0xffc0 == 0xfe80
    }

    /// The solicited-node multicast group of `a` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX.
    pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
        let o = a.octets();
        Ipv6Addr::from([
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
        ])
    }

    /// The link-local address derived from a MAC by modified EUI-64 (RFC 4291 App. A).
    pub fn link_local_from_mac(mac: [u8; 6]) -> Ipv6Addr {
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            mac[0] ^ 0x02,
            mac[1],
            mac[2],
            0xff,
            0xfe,
            mac[3],
            mac[4],
            mac[5],
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_validate_at_construction() {
        assert!(Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 24).is_ok());
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 1), 24),
            Err(AddrError::HostBitsSet)
        );
        assert_eq!(
            Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 33),
            Err(AddrError::PrefixTooLong { len: 33, max: 32 })
        );
        assert!("2001:db8::/129".parse::<Ipv6Prefix>().is_err());
        assert!("2001:db8::/32".parse::<Ipv6Prefix>().is_ok());
        assert!("banana/3".parse::<Ipv4Prefix>().is_err());
        assert_eq!(
            "0.0.0.0/0".parse::<Ipv4Prefix>().unwrap(),
            Ipv4Prefix::default_route()
        );
    }

    #[test]
    fn containment() {
        let p: Ipv4Prefix = "198.51.100.0/24".parse().unwrap();
        assert!(p.contains(Ipv4Addr::new(198, 51, 100, 77)));
        assert!(!p.contains(Ipv4Addr::new(198, 51, 101, 1)));
        assert!(Ipv4Prefix::default_route().contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert!(p.covers(&"198.51.100.128/25".parse().unwrap()));
        assert!(!p.covers(&"198.51.0.0/16".parse().unwrap()));
        let c: Ipv6Cidr = "2001:db8:1::1/64".parse().unwrap();
        assert_eq!(c.network(), "2001:db8:1::/64".parse().unwrap());
        assert_eq!("192.0.2.1".parse::<Ipv4Cidr>().unwrap().len(), 32);
    }

    #[test]
    fn ipv6_helpers() {
        let a: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(
            v6::solicited_node(a),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
        let ll = v6::link_local_from_mac([0x02, 0x00, 0x5e, 0x10, 0x00, 0x01]);
        assert_eq!(ll, "fe80::5eff:fe10:1".parse::<Ipv6Addr>().unwrap());
        assert!(v6::is_link_local(ll));
    }
}
