//! What the routing NFs (`firewall`, `l3fwd`, `nf_router`) share: a longest-prefix-match
//! table over [`Prefix`]es of both families, and where a frame's addresses are.
//!
//! The table is [`prefix_trie`]'s tree bitmap (one per family, keyed by the address as
//! an integer); a lookup walks it without allocating. Prefixes with host bits set
//! (`10.1.2.3/8`) are taken as their network (`10.0.0.0/8`), as DPDK's `rte_lpm_add`
//! takes them.

use std::net::IpAddr;

use onvm_packet::Layout;
use onvm_packet::layout::IpVersion;
use prefix_trie::PrefixMap;

use crate::net::{Prefix, mask32, mask128};

/// An address read from a frame: IPv4 or IPv6, as an integer (network order's value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addr {
    /// IPv4.
    V4(u32),
    /// IPv6.
    V6(u128),
}

/// A longest-prefix-match table over IPv4 and IPv6 prefixes.
#[derive(Clone)]
pub struct LpmTable<T> {
    v4: PrefixMap<(u32, u8), T>,
    v6: PrefixMap<(u128, u8), T>,
    len: usize,
}

impl<T> std::fmt::Debug for LpmTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LpmTable").field("prefixes", &self.len).finish()
    }
}

impl<T> Default for LpmTable<T> {
    fn default() -> Self {
        LpmTable {
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            len: 0,
        }
    }
}

impl<T> LpmTable<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `p` → `v`; the value it replaces, if `p` was there.
    pub fn insert(&mut self, p: Prefix, v: T) -> Option<T> {
        let old = match p.addr {
            IpAddr::V4(a) => self.v4.insert((mask32(a.to_bits(), p.len), p.len), v),
            IpAddr::V6(a) => self.v6.insert((mask128(a.to_bits(), p.len), p.len), v),
        };
        self.len += usize::from(old.is_none());
        old
    }

    /// Prefixes in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of the longest prefix holding `a`.
    #[inline]
    pub fn lookup(&self, a: Addr) -> Option<&T> {
        match a {
            Addr::V4(a) => self.v4.get_lpm(&(a, 32)).map(|(_, v)| v),
            Addr::V6(a) => self.v6.get_lpm(&(a, 128)).map(|(_, v)| v),
        }
    }

    /// [`LpmTable::lookup`] of a `std` address.
    pub fn lookup_ip(&self, a: IpAddr) -> Option<&T> {
        self.lookup(match a {
            IpAddr::V4(a) => Addr::V4(a.to_bits()),
            IpAddr::V6(a) => Addr::V6(a.to_bits()),
        })
    }
}

/// What a frame is, to an NF that looks at its IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// An IPv4 or IPv6 packet whose header is whole (`Layout::ip` is `Some`).
    Ip(Layout),
    /// A well-formed Ethernet frame of another EtherType (ARP, …).
    NotIp,
    /// Shorter than an Ethernet header, a cut VLAN tag, or a truncated or malformed IP
    /// header (bad version, header or total length).
    Malformed,
}

/// Classify `frame` (bounds-checked reads of a few header bytes, no allocation).
#[inline]
pub fn classify(frame: &[u8]) -> Class {
    match Layout::of(frame) {
        Ok(l) if l.ip.is_some() => Class::Ip(l),
        Ok(_) => Class::NotIp,
        Err(_) => Class::Malformed,
    }
}

/// The source (`dst == false`) or destination address of an IP frame laid out as `l`
/// (from [`classify`], so the header is in the frame).
#[inline]
pub fn addr(frame: &[u8], l: &Layout, dst: bool) -> Option<Addr> {
    let ip = l.ip.as_ref()?;
    Some(match ip.version {
        IpVersion::V4 => {
            let at = l.l3 + if dst { 16 } else { 12 };
            Addr::V4(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?))
        }
        IpVersion::V6 => {
            let at = l.l3 + if dst { 24 } else { 8 };
            Addr::V6(u128::from_be_bytes(frame.get(at..at + 16)?.try_into().ok()?))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_in_both_families() {
        let mut t = LpmTable::new();
        for (p, v) in [
            ("10.0.0.0/8", 1),
            ("10.1.0.0/16", 2),
            ("10.1.2.3", 3),
            ("0.0.0.0/0", 9),
            ("2001:db8::/32", 4),
            ("2001:db8:1::/48", 5),
        ] {
            t.insert(p.parse().unwrap(), v);
        }
        let l = |a: &str| t.lookup_ip(a.parse().unwrap()).copied();
        assert_eq!(l("10.1.2.3"), Some(3));
        assert_eq!(l("10.1.2.4"), Some(2));
        assert_eq!(l("10.2.0.0"), Some(1));
        assert_eq!(l("11.0.0.1"), Some(9));
        assert_eq!(l("2001:db8:1::7"), Some(5));
        assert_eq!(l("2001:db8:2::7"), Some(4));
        assert_eq!(l("2001:db9::"), None);
        assert_eq!(t.len(), 6);
        // Host bits are ignored: the same prefix again replaces it.
        assert_eq!(t.insert("10.9.9.9/8".parse().unwrap(), 7), Some(1));
        assert_eq!(t.lookup_ip("10.2.0.0".parse().unwrap()), Some(&7));
    }
}
