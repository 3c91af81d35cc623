//! IPv4 and IPv6 address prefixes for matches.
//!
//! Host bits are cleared on construction, so two spellings of one prefix compare equal:
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
        #[doc = concat!("An ", $family, " prefix (`addr/len`); host bits are always zero, so")]
        /// equal prefixes compare equal (needed for FLOW_MOD's "same match replaces").
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            addr: $addr,
            len: u8,
        }

        impl $name {
            /// The prefix of `addr` with `len` bits; `None` if `len` is too long.
            pub fn new(addr: $addr, len: u8) -> Option<Self> {
                (len <= $max).then(|| $name {
                    addr: <$addr>::from(<$bits>::from(addr) & Self::mask(len)),
                    len,
                })
            }

            /// A single address (full-length prefix).
            pub fn host(addr: $addr) -> Self {
                $name { addr, len: $max }
            }

            fn mask(len: u8) -> $bits {
                if len == 0 { 0 } else { <$bits>::MAX << ($max - len) }
            }

            /// The network address.
            pub fn addr(&self) -> $addr {
                self.addr
            }

            /// The prefix length in bits.
            pub fn prefix_len(&self) -> u8 {
                self.len
            }

            /// Whether `a` lies inside this prefix.
            pub fn contains(&self, a: $addr) -> bool {
                <$bits>::from(a) & Self::mask(self.len) == <$bits>::from(self.addr)
            }

            /// Whether every address of `other` lies inside this prefix.
            pub fn covers(&self, other: &Self) -> bool {
                self.len <= other.len && self.contains(other.addr)
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
                write!(f, "{}/{}", self.addr, self.len)
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
        assert_eq!("1.2.3.4".parse::<Ipv4Prefix>().unwrap().prefix_len(), 32);
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
}
