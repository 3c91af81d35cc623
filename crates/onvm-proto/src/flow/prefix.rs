//! IPv4 and IPv6 addresses under a mask (prefixes, or any mask as OpenFlow allows) for
//! matches.
//!
//! Bits outside the mask are cleared on construction, so two spellings of one prefix compare equal:
//! OpenFlow's "same match replaces" and strict delete depend on that.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use thiserror::Error;

/// A malformed address prefix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PrefixError {
    /// The address part does not parse.
    #[error("invalid address in prefix {0:?}")]
    Addr(String),
    /// The length part does not parse or is too long for the family.
    #[error("invalid prefix length in {text:?} (at most {max})")]
    Len {
        /// The whole prefix text.
        text: String,
        /// Longest valid length.
        max: u8,
    },
}

macro_rules! prefix_type {
    ($name:ident, $addr:ty, $bits:ty, $max:expr, $family:literal) => {
        #[doc = concat!("An ", $family, " address under a mask: a prefix (`addr/len`) or, as")]
        /// OpenFlow allows, any mask (`10.0.0.1/255.0.255.255`). Bits outside the mask are
        /// always zero, so equal matches compare equal (needed for FLOW_MOD's "same match
        /// replaces").
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            addr: $addr,
            mask: $bits,
        }

        impl $name {
            /// The prefix of `addr` with `len` bits; `None` if `len` is too long.
            pub fn new(addr: $addr, len: u8) -> Option<Self> {
                (len <= $max).then(|| Self::with_mask(addr, Self::len_mask(len).into()))
            }

            /// `addr` where `mask` has ones (any mask; bits outside it are cleared).
            pub fn with_mask(addr: $addr, mask: $addr) -> Self {
                let mask = <$bits>::from(mask);
                $name {
                    addr: <$addr>::from(<$bits>::from(addr) & mask),
                    mask,
                }
            }

            /// A single address (full-length prefix).
            pub fn host(addr: $addr) -> Self {
                $name {
                    addr,
                    mask: <$bits>::MAX,
                }
            }

            fn len_mask(len: u8) -> $bits {
                if len == 0 { 0 } else { <$bits>::MAX << ($max - len) }
            }

            /// The network address (bits outside the mask are zero).
            pub fn addr(&self) -> $addr {
                self.addr
            }

            /// The mask (ones = compared).
            pub fn mask(&self) -> $addr {
                self.mask.into()
            }

            /// The prefix length in bits, or `None` when the mask is not a prefix.
            pub fn prefix_len(&self) -> Option<u8> {
                let len = self.mask.leading_ones();
                (self.mask == Self::len_mask(len as u8)).then_some(len as u8)
            }

            /// Whether `a` lies inside this prefix.
            pub fn contains(&self, a: $addr) -> bool {
                <$bits>::from(a) & self.mask == <$bits>::from(self.addr)
            }

            /// Whether every address `other` matches, this one matches too.
            pub fn covers(&self, other: &Self) -> bool {
                self.mask & !other.mask == 0 && self.contains(other.addr)
            }

            /// Whether some address matches both.
            pub fn overlaps(&self, other: &Self) -> bool {
                (<$bits>::from(self.addr) ^ <$bits>::from(other.addr)) & self.mask & other.mask == 0
            }
        }

        impl FromStr for $name {
            type Err = PrefixError;

            /// `"10.0.0.0/8"`, or a bare address for a host prefix.
            fn from_str(s: &str) -> Result<Self, PrefixError> {
                let (a, l) = match s.split_once('/') {
                    Some((a, l)) => (a, Some(l)),
                    None => (s, None),
                };
                let addr: $addr = a.parse().map_err(|_| PrefixError::Addr(s.to_string()))?;
                let len_err = || PrefixError::Len {
                    text: s.to_string(),
                    max: $max,
                };
                match l {
                    None => Ok(Self::host(addr)),
                    Some(l) => {
                        let len: u8 = l.parse().map_err(|_| len_err())?;
                        Self::new(addr, len).ok_or_else(len_err)
                    }
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.prefix_len() {
                    Some(len) => write!(f, "{}/{}", self.addr, len),
                    None => write!(f, "{}/{}", self.addr, self.mask()),
                }
            }
        }
    };
}

prefix_type!(Ipv4Prefix, Ipv4Addr, u32, 32, "IPv4");
prefix_type!(Ipv6Prefix, Ipv6Addr, u128, 128, "IPv6");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let p: Ipv4Prefix = "10.1.2.3/8".parse().unwrap();
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(Ipv4Addr::new(10, 200, 0, 1)));
        assert!(!p.contains(Ipv4Addr::new(11, 0, 0, 1)));
        assert!(p.covers(&"10.3.0.0/16".parse().unwrap()));
        assert!(!p.covers(&"0.0.0.0/0".parse().unwrap()));
        let all: Ipv4Prefix = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!("1.2.3.4".parse::<Ipv4Prefix>().unwrap().prefix_len(), Some(32));
        assert!(matches!(
            "1.2.3.4/33".parse::<Ipv4Prefix>(),
            Err(PrefixError::Len { max: 32, .. })
        ));
        assert!(matches!("1.2.3/8".parse::<Ipv4Prefix>(), Err(PrefixError::Addr(_))));
        let p6: Ipv6Prefix = "2001:db8::/32".parse().unwrap();
        assert!(p6.contains("2001:db8::1".parse().unwrap()));
        assert!(!p6.contains("2001:db9::1".parse().unwrap()));
        assert!("::/129".parse::<Ipv6Prefix>().is_err());
    }

    #[test]
    fn arbitrary_masks() {
        let m = Ipv4Prefix::with_mask(Ipv4Addr::new(10, 9, 0, 7), Ipv4Addr::new(255, 0, 255, 255));
        assert_eq!(
            m.addr(),
            Ipv4Addr::new(10, 0, 0, 7),
            "bits outside the mask are cleared"
        );
        assert_eq!(m.prefix_len(), None);
        assert_eq!(m.to_string(), "10.0.0.7/255.0.255.255");
        assert!(m.contains(Ipv4Addr::new(10, 77, 0, 7)));
        assert!(!m.contains(Ipv4Addr::new(10, 77, 1, 7)));
        let net: Ipv4Prefix = "10.0.0.0/8".parse().unwrap();
        assert!(net.covers(&m) && !m.covers(&net));
        assert!(m.overlaps(&net) && net.overlaps(&m));
        assert!(!m.overlaps(&"11.0.0.0/8".parse().unwrap()));
        let odd = Ipv4Prefix::with_mask(Ipv4Addr::new(0, 0, 0, 1), Ipv4Addr::new(0, 0, 0, 1));
        assert!(odd.overlaps(&m) && odd.covers(&m) && !m.covers(&odd), "x.x.x.7 is odd");
        assert_eq!(
            Ipv4Prefix::with_mask(Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(255, 255, 0, 0)),
            "10.1.0.0/16".parse().unwrap()
        );
        let v6 = Ipv6Prefix::with_mask("2001:db8::1".parse().unwrap(), "ffff::ffff".parse().unwrap());
        assert!(v6.contains("2001:1::1".parse().unwrap()) && v6.prefix_len().is_none());
    }
}
