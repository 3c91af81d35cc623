//! What a rule matches: optional header fields, each a wildcard when absent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Ipv4Prefix, Ipv6Prefix, PacketKey, PortNo};

/// An Ethernet address under a mask (all ones = exact), as OpenFlow's `eth_src` /
/// `eth_dst` fields have them: a controller may match "any multicast" as
/// `01:00:00:00:00:00/01:00:00:00:00:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacMatch {
    /// The address, with the bits outside `mask` cleared.
    addr: [u8; 6],
    mask: [u8; 6],
}

impl MacMatch {
    /// Exactly `addr`.
    pub fn exact(addr: [u8; 6]) -> Self {
        MacMatch { addr, mask: [0xff; 6] }
    }

    /// `addr` where `mask` has ones (bits outside the mask are ignored).
    pub fn masked(addr: [u8; 6], mask: [u8; 6]) -> Self {
        MacMatch {
            addr: std::array::from_fn(|i| addr[i] & mask[i]),
            mask,
        }
    }

    pub fn addr(&self) -> [u8; 6] {
        self.addr
    }

    pub fn mask(&self) -> [u8; 6] {
        self.mask
    }

    /// Whether address `a` matches.
    pub fn contains(&self, a: [u8; 6]) -> bool {
        (0..6).all(|i| a[i] & self.mask[i] == self.addr[i])
    }

    /// Whether some address matches both.
    pub fn overlaps(&self, other: &MacMatch) -> bool {
        (0..6).all(|i| (self.addr[i] ^ other.addr[i]) & self.mask[i] & other.mask[i] == 0)
    }

    /// Whether every address `other` matches, `self` matches too.
    pub fn covers(&self, other: &MacMatch) -> bool {
        (0..6).all(|i| self.mask[i] & !other.mask[i] == 0 && other.addr[i] & self.mask[i] == self.addr[i])
    }
}

/// What a rule matches. `None` = wildcard. All present fields must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    /// Ingress port (physical or service).
    pub in_port: Option<PortNo>,
    /// Ethernet source address (masked).
    pub eth_src: Option<MacMatch>,
    /// Ethernet destination address (masked).
    pub eth_dst: Option<MacMatch>,
    /// EtherType (after VLAN tags).
    pub eth_type: Option<u16>,
    /// Outer VLAN ID.
    pub vlan_id: Option<u16>,
    /// IPv4 source prefix.
    pub ipv4_src: Option<Ipv4Prefix>,
    /// IPv4 destination prefix.
    pub ipv4_dst: Option<Ipv4Prefix>,
    /// IPv6 source prefix.
    pub ipv6_src: Option<Ipv6Prefix>,
    /// IPv6 destination prefix.
    pub ipv6_dst: Option<Ipv6Prefix>,
    /// IP protocol number.
    pub ip_proto: Option<u8>,
    /// TCP/UDP source port.
    pub l4_src: Option<u16>,
    /// TCP/UDP destination port.
    pub l4_dst: Option<u16>,
}

/// `want` is a wildcard, or `have` is present and equal.
fn field<T: PartialEq>(want: &Option<T>, have: &Option<T>) -> bool {
    want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
}

fn v4(a: Option<IpAddr>) -> Option<Ipv4Addr> {
    match a {
        Some(IpAddr::V4(a)) => Some(a),
        _ => None,
    }
}

fn v6(a: Option<IpAddr>) -> Option<Ipv6Addr> {
    match a {
        Some(IpAddr::V6(a)) => Some(a),
        _ => None,
    }
}

/// `outer` is a wildcard, or both present and `outer` covers `inner`.
fn covers_opt<T>(outer: &Option<T>, inner: &Option<T>, covers: impl Fn(&T, &T) -> bool) -> bool {
    match (outer, inner) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(i)) => covers(o, i),
    }
}

impl Match {
    /// Matches everything.
    pub fn any() -> Self {
        Match::default()
    }

    /// Matches packets from `port`.
    pub fn in_port(port: PortNo) -> Self {
        Match {
            in_port: Some(port),
            ..Match::default()
        }
    }

    /// Whether the packet matches.
    pub fn matches(&self, k: &PacketKey) -> bool {
        self.in_port.is_none_or(|p| p == k.in_port)
            && self.eth_src.is_none_or(|m| k.eth_src.is_some_and(|a| m.contains(a)))
            && self.eth_dst.is_none_or(|m| k.eth_dst.is_some_and(|a| m.contains(a)))
            && field(&self.eth_type, &k.eth_type)
            && field(&self.vlan_id, &k.vlan_id)
            && field(&self.ip_proto, &k.ip_proto)
            && field(&self.l4_src, &k.l4_src)
            && field(&self.l4_dst, &k.l4_dst)
            && self
                .ipv4_src
                .is_none_or(|p| v4(k.ip_src).is_some_and(|a| p.contains(a)))
            && self
                .ipv4_dst
                .is_none_or(|p| v4(k.ip_dst).is_some_and(|a| p.contains(a)))
            && self
                .ipv6_src
                .is_none_or(|p| v6(k.ip_src).is_some_and(|a| p.contains(a)))
            && self
                .ipv6_dst
                .is_none_or(|p| v6(k.ip_dst).is_some_and(|a| p.contains(a)))
    }

    /// Whether some packet could match both (OpenFlow's CHECK_OVERLAP): no field has
    /// values in the two that exclude each other.
    pub fn overlaps(&self, other: &Match) -> bool {
        fn both<T>(a: &Option<T>, b: &Option<T>, meet: impl Fn(&T, &T) -> bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => meet(a, b),
                _ => true,
            }
        }
        let eq = |a: &u16, b: &u16| a == b;
        // Two prefixes meet when one contains the other.
        let v4 = |a: &Ipv4Prefix, b: &Ipv4Prefix| a.covers(b) || b.covers(a);
        let v6 = |a: &Ipv6Prefix, b: &Ipv6Prefix| a.covers(b) || b.covers(a);
        both(&self.in_port, &other.in_port, |a, b| a == b)
            && both(&self.eth_src, &other.eth_src, MacMatch::overlaps)
            && both(&self.eth_dst, &other.eth_dst, MacMatch::overlaps)
            && both(&self.eth_type, &other.eth_type, eq)
            && both(&self.vlan_id, &other.vlan_id, eq)
            && both(&self.ip_proto, &other.ip_proto, |a, b| a == b)
            && both(&self.l4_src, &other.l4_src, eq)
            && both(&self.l4_dst, &other.l4_dst, eq)
            && both(&self.ipv4_src, &other.ipv4_src, v4)
            && both(&self.ipv4_dst, &other.ipv4_dst, v4)
            && both(&self.ipv6_src, &other.ipv6_src, v6)
            && both(&self.ipv6_dst, &other.ipv6_dst, v6)
            // An IPv4 field and an IPv6 field exclude each other.
            && !((self.ipv4_src.is_some() || self.ipv4_dst.is_some())
                && (other.ipv6_src.is_some() || other.ipv6_dst.is_some()))
            && !((self.ipv6_src.is_some() || self.ipv6_dst.is_some())
                && (other.ipv4_src.is_some() || other.ipv4_dst.is_some()))
    }

    /// Whether every packet `other` matches is also matched by `self` (field by field,
    /// as OpenFlow's non-strict delete compares).
    pub fn covers(&self, other: &Match) -> bool {
        covers_opt(&self.in_port, &other.in_port, |a, b| a == b)
            && covers_opt(&self.eth_src, &other.eth_src, MacMatch::covers)
            && covers_opt(&self.eth_dst, &other.eth_dst, MacMatch::covers)
            && covers_opt(&self.eth_type, &other.eth_type, |a, b| a == b)
            && covers_opt(&self.vlan_id, &other.vlan_id, |a, b| a == b)
            && covers_opt(&self.ip_proto, &other.ip_proto, |a, b| a == b)
            && covers_opt(&self.l4_src, &other.l4_src, |a, b| a == b)
            && covers_opt(&self.l4_dst, &other.l4_dst, |a, b| a == b)
            && covers_opt(&self.ipv4_src, &other.ipv4_src, Ipv4Prefix::covers)
            && covers_opt(&self.ipv4_dst, &other.ipv4_dst, Ipv4Prefix::covers)
            && covers_opt(&self.ipv6_src, &other.ipv6_src, Ipv6Prefix::covers)
            && covers_opt(&self.ipv6_dst, &other.ipv6_dst, Ipv6Prefix::covers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::key::frames::*;

    #[test]
    fn match_fields() {
        let k = key4(PortNo(0), [10, 0, 0, 5], 80);
        let mut m = Match::in_port(PortNo(0));
        assert!(m.matches(&k));
        m.ipv4_dst = Some("10.0.0.0/24".parse().unwrap());
        m.l4_dst = Some(80);
        m.ip_proto = Some(6);
        assert!(m.matches(&k));
        m.l4_dst = Some(81);
        assert!(!m.matches(&k));
        m.l4_dst = None;
        m.ipv6_dst = Some("::/0".parse().unwrap());
        assert!(!m.matches(&k), "an IPv6 match must not match an IPv4 packet");
        assert!(!Match::in_port(PortNo(1)).matches(&k));
        let vlan = Match {
            vlan_id: Some(42),
            ..Match::any()
        };
        assert!(!vlan.matches(&k));
        assert!(vlan.matches(&PacketKey::from_frame(PortNo(0), &udp6_vlan(42))));
    }

    #[test]
    fn ethernet_addresses_with_masks() {
        // The test frames go from 01:01:01:01:01:01 to 02:02:02:02:02:02.
        let k = PacketKey::from_frame(PortNo(0), &tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 80));
        assert_eq!((k.eth_src, k.eth_dst), (Some([1; 6]), Some([2; 6])));
        let with = |src: Option<MacMatch>, dst: Option<MacMatch>| Match {
            eth_src: src,
            eth_dst: dst,
            ..Match::any()
        };
        assert!(with(Some(MacMatch::exact([1; 6])), Some(MacMatch::exact([2; 6]))).matches(&k));
        assert!(!with(Some(MacMatch::exact([2; 6])), None).matches(&k));
        let multicast = MacMatch::masked([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]);
        assert!(with(Some(multicast), None).matches(&k), "01:01:.. has the group bit");
        assert!(!with(None, Some(multicast)).matches(&k), "02:02:.. has not");
        // Bits outside the mask do not count, and are cleared.
        let m = MacMatch::masked([0xff, 2, 2, 2, 2, 2], [0, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(m.addr(), [0, 2, 2, 2, 2, 2]);
        assert!(with(None, Some(m)).matches(&k));
        // A frame too short for an Ethernet header has no addresses: no match.
        let short = PacketKey::from_frame(PortNo(0), &[0u8; 5]);
        assert!(!with(Some(multicast), None).matches(&short));
        // Covering, as non-strict delete compares.
        assert!(multicast.covers(&MacMatch::exact([1; 6])));
        assert!(!MacMatch::exact([1; 6]).covers(&multicast));
        assert!(with(Some(multicast), None).covers(&with(Some(MacMatch::exact([3; 6])), None)));
        assert!(!with(Some(multicast), None).covers(&with(Some(MacMatch::exact([2; 6])), None)));
        assert!(Match::any().covers(&with(Some(multicast), None)));
    }
}
