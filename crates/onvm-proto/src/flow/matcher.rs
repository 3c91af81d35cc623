//! What a rule matches: optional header fields, each a wildcard when absent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{BitAnd, BitXor, Not};

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

/// An integer field under a mask (ones = compared), as OpenFlow's maskable fields
/// (`metadata`, `tunnel_id`, `vlan_vid`, `ipv6_flabel`) have them. Bits of the value
/// outside the mask are cleared on construction, so equal matches compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MaskedBits<T> {
    value: T,
    mask: T,
}

/// The integer types [`MaskedBits`] holds.
pub trait Bits: Copy + Eq + BitAnd<Output = Self> + BitXor<Output = Self> + Not<Output = Self> + Default {}
impl Bits for u16 {}
impl Bits for u32 {}
impl Bits for u64 {}

impl<T: Bits> MaskedBits<T> {
    /// Exactly `value` (every bit compared).
    pub fn exact(value: T) -> Self {
        MaskedBits {
            value,
            mask: !T::default(),
        }
    }

    /// `value` where `mask` has ones.
    pub fn masked(value: T, mask: T) -> Self {
        MaskedBits {
            value: value & mask,
            mask,
        }
    }

    pub fn value(&self) -> T {
        self.value
    }

    pub fn mask(&self) -> T {
        self.mask
    }

    /// Whether every bit is compared.
    pub fn is_exact(&self) -> bool {
        self.mask == !T::default()
    }

    /// Whether `x` matches.
    pub fn contains(&self, x: T) -> bool {
        x & self.mask == self.value
    }

    /// Whether some value matches both.
    pub fn overlaps(&self, other: &Self) -> bool {
        (self.value ^ other.value) & self.mask & other.mask == T::default()
    }

    /// Whether every value `other` matches, `self` matches too.
    pub fn covers(&self, other: &Self) -> bool {
        self.mask & !other.mask == T::default() && other.value & self.mask == self.value
    }
}

/// The "VLAN tag present" bit of [`Match::vlan_vid`] (OpenFlow's `OFPVID_PRESENT`).
pub const VID_PRESENT: u16 = 0x1000;

/// What a rule matches. `None` = wildcard. All present fields must match.
///
/// Fields that OpenFlow ties to a protocol (`l4_src` is TCP's, UDP's or SCTP's port,
/// `icmp_type` ICMPv4's or ICMPv6's) are told apart by `ip_proto`, which OpenFlow's
/// prerequisites make the rule carry. A packet that lacks a field the rule asks for
/// (not parsed, another protocol) does not match.
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
    /// VLAN ID of the outer tag (a tagged packet with exactly this ID; OpenFlow's
    /// `vlan_vid=0x1000|id`). Other VLAN matches are [`Match::vlan_vid`].
    pub vlan_id: Option<u16>,
    /// IPv4 source (prefix or any mask).
    pub ipv4_src: Option<Ipv4Prefix>,
    /// IPv4 destination (prefix or any mask).
    pub ipv4_dst: Option<Ipv4Prefix>,
    /// IPv6 source (prefix or any mask).
    pub ipv6_src: Option<Ipv6Prefix>,
    /// IPv6 destination (prefix or any mask).
    pub ipv6_dst: Option<Ipv6Prefix>,
    /// IP protocol number.
    pub ip_proto: Option<u8>,
    /// TCP/UDP/SCTP source port (which one: `ip_proto`).
    pub l4_src: Option<u16>,
    /// TCP/UDP/SCTP destination port.
    pub l4_dst: Option<u16>,
    /// Physical ingress port: the same as `in_port` here (no port is a tunnel).
    pub in_phy_port: Option<PortNo>,
    /// The pipeline's metadata register ([`PacketKey::metadata`]).
    pub metadata: Option<MaskedBits<u64>>,
    /// The tunnel ID the packet carries ([`PacketKey::tunnel_id`]).
    pub tunnel_id: Option<MaskedBits<u64>>,
    /// OpenFlow's `vlan_vid` on [`VID_PRESENT`] | the outer tag's ID, 0 for an untagged
    /// packet: `0x0000` = untagged, `0x1000/0x1000` = any tag, or any other mask.
    pub vlan_vid: Option<MaskedBits<u16>>,
    /// Priority (PCP) of the outer VLAN tag.
    pub vlan_pcp: Option<u8>,
    /// DSCP (upper 6 bits of the IPv4 TOS / IPv6 traffic class).
    pub ip_dscp: Option<u8>,
    /// ECN (lower 2 bits of the TOS / traffic class).
    pub ip_ecn: Option<u8>,
    /// ICMPv4 or ICMPv6 type (which one: `ip_proto`).
    pub icmp_type: Option<u8>,
    /// ICMPv4 or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ARP opcode.
    pub arp_op: Option<u16>,
    /// ARP sender protocol (IPv4) address, masked.
    pub arp_spa: Option<Ipv4Prefix>,
    /// ARP target protocol address, masked.
    pub arp_tpa: Option<Ipv4Prefix>,
    /// ARP sender hardware address, masked.
    pub arp_sha: Option<MacMatch>,
    /// ARP target hardware address, masked.
    pub arp_tha: Option<MacMatch>,
    /// IPv6 flow label (20 bits), masked.
    pub ipv6_flabel: Option<MaskedBits<u32>>,
    /// Target address of an IPv6 neighbour solicitation or advertisement.
    pub nd_target: Option<Ipv6Addr>,
    /// Source link-layer address option of a neighbour solicitation (0 if absent).
    pub nd_sll: Option<[u8; 6]>,
    /// Target link-layer address option of a neighbour advertisement (0 if absent).
    pub nd_tll: Option<[u8; 6]>,
    /// Label of the top MPLS label stack entry (20 bits).
    pub mpls_label: Option<u32>,
    /// Traffic class of the top MPLS entry (3 bits).
    pub mpls_tc: Option<u8>,
    /// Bottom-of-stack bit of the top MPLS entry.
    pub mpls_bos: Option<u8>,
}

/// `want` is a wildcard, or `have` is present and equal.
#[inline(always)]
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

fn eq<T: PartialEq>(a: &T, b: &T) -> bool {
    a == b
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
            && self.matches_more(k)
    }

    /// The fields beyond the classic ones; out of line, so that a rule using none of
    /// them costs one call and a few tests.
    #[inline(never)]
    fn matches_more(&self, k: &PacketKey) -> bool {
        self.in_phy_port.is_none_or(|p| p == k.in_port)
            && self.metadata.is_none_or(|m| m.contains(k.metadata))
            && self.tunnel_id.is_none_or(|m| m.contains(k.tunnel_id))
            // An untagged packet is 0 here, but only if its Ethernet header parsed.
            && self
                .vlan_vid
                .is_none_or(|m| k.eth_type.is_some() && m.contains(k.vlan_id.map_or(0, |v| VID_PRESENT | v)))
            && field(&self.vlan_pcp, &k.vlan_pcp)
            && field(&self.ip_dscp, &k.ip_dscp)
            && field(&self.ip_ecn, &k.ip_ecn)
            && field(&self.icmp_type, &k.icmp_type)
            && field(&self.icmp_code, &k.icmp_code)
            && field(&self.arp_op, &k.arp_op)
            && self.arp_spa.is_none_or(|p| k.arp_spa.is_some_and(|a| p.contains(a)))
            && self.arp_tpa.is_none_or(|p| k.arp_tpa.is_some_and(|a| p.contains(a)))
            && self.arp_sha.is_none_or(|m| k.arp_sha.is_some_and(|a| m.contains(a)))
            && self.arp_tha.is_none_or(|m| k.arp_tha.is_some_and(|a| m.contains(a)))
            && self.ipv6_flabel.is_none_or(|m| k.ipv6_flabel.is_some_and(|l| m.contains(l)))
            && field(&self.nd_target, &k.nd_target)
            && field(&self.nd_sll, &k.nd_sll)
            && field(&self.nd_tll, &k.nd_tll)
            && field(&self.mpls_label, &k.mpls_label)
            && field(&self.mpls_tc, &k.mpls_tc)
            && field(&self.mpls_bos, &k.mpls_bos)
    }

    /// Whether some packet could match both (OpenFlow's CHECK_OVERLAP): no field has
    /// values in the two that exclude each other.
    pub fn overlaps(&self, other: &Match) -> bool {
        fn both<A, B>(a: &Option<A>, b: &Option<B>, meet: impl Fn(&A, &B) -> bool) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => meet(a, b),
                _ => true,
            }
        }
        let o = other;
        both(&self.in_port, &o.in_port, eq)
            && both(&self.eth_src, &o.eth_src, MacMatch::overlaps)
            && both(&self.eth_dst, &o.eth_dst, MacMatch::overlaps)
            && both(&self.eth_type, &o.eth_type, eq)
            && both(&self.vlan_id, &o.vlan_id, eq)
            && both(&self.ip_proto, &o.ip_proto, eq)
            && both(&self.l4_src, &o.l4_src, eq)
            && both(&self.l4_dst, &o.l4_dst, eq)
            && both(&self.ipv4_src, &o.ipv4_src, Ipv4Prefix::overlaps)
            && both(&self.ipv4_dst, &o.ipv4_dst, Ipv4Prefix::overlaps)
            && both(&self.ipv6_src, &o.ipv6_src, Ipv6Prefix::overlaps)
            && both(&self.ipv6_dst, &o.ipv6_dst, Ipv6Prefix::overlaps)
            // An IPv4 field and an IPv6 field exclude each other.
            && !((self.ipv4_src.is_some() || self.ipv4_dst.is_some())
                && (o.ipv6_src.is_some() || o.ipv6_dst.is_some()))
            && !((self.ipv6_src.is_some() || self.ipv6_dst.is_some())
                && (o.ipv4_src.is_some() || o.ipv4_dst.is_some()))
            && both(&self.in_phy_port, &o.in_phy_port, eq)
            && both(&self.in_port, &o.in_phy_port, eq)
            && both(&self.in_phy_port, &o.in_port, eq)
            && both(&self.metadata, &o.metadata, MaskedBits::overlaps)
            && both(&self.tunnel_id, &o.tunnel_id, MaskedBits::overlaps)
            && both(&self.vlan_vid, &o.vlan_vid, MaskedBits::overlaps)
            && both(&self.vlan_id, &o.vlan_vid, |id, m| m.contains(VID_PRESENT | id))
            && both(&self.vlan_vid, &o.vlan_id, |m, id| m.contains(VID_PRESENT | id))
            && both(&self.vlan_pcp, &o.vlan_pcp, eq)
            && both(&self.ip_dscp, &o.ip_dscp, eq)
            && both(&self.ip_ecn, &o.ip_ecn, eq)
            && both(&self.icmp_type, &o.icmp_type, eq)
            && both(&self.icmp_code, &o.icmp_code, eq)
            && both(&self.arp_op, &o.arp_op, eq)
            && both(&self.arp_spa, &o.arp_spa, Ipv4Prefix::overlaps)
            && both(&self.arp_tpa, &o.arp_tpa, Ipv4Prefix::overlaps)
            && both(&self.arp_sha, &o.arp_sha, MacMatch::overlaps)
            && both(&self.arp_tha, &o.arp_tha, MacMatch::overlaps)
            && both(&self.ipv6_flabel, &o.ipv6_flabel, MaskedBits::overlaps)
            && both(&self.nd_target, &o.nd_target, eq)
            && both(&self.nd_sll, &o.nd_sll, eq)
            && both(&self.nd_tll, &o.nd_tll, eq)
            && both(&self.mpls_label, &o.mpls_label, eq)
            && both(&self.mpls_tc, &o.mpls_tc, eq)
            && both(&self.mpls_bos, &o.mpls_bos, eq)
    }

    /// Whether every packet `other` matches is also matched by `self` (field by field,
    /// as OpenFlow's non-strict delete compares).
    pub fn covers(&self, other: &Match) -> bool {
        let o = other;
        covers_opt(&self.in_port, &o.in_port, eq)
            && covers_opt(&self.eth_src, &o.eth_src, MacMatch::covers)
            && covers_opt(&self.eth_dst, &o.eth_dst, MacMatch::covers)
            && covers_opt(&self.eth_type, &o.eth_type, eq)
            && covers_opt(&self.vlan_id, &o.vlan_id, eq)
            && covers_opt(&self.ip_proto, &o.ip_proto, eq)
            && covers_opt(&self.l4_src, &o.l4_src, eq)
            && covers_opt(&self.l4_dst, &o.l4_dst, eq)
            && covers_opt(&self.ipv4_src, &o.ipv4_src, Ipv4Prefix::covers)
            && covers_opt(&self.ipv4_dst, &o.ipv4_dst, Ipv4Prefix::covers)
            && covers_opt(&self.ipv6_src, &o.ipv6_src, Ipv6Prefix::covers)
            && covers_opt(&self.ipv6_dst, &o.ipv6_dst, Ipv6Prefix::covers)
            && covers_opt(&self.in_phy_port, &o.in_phy_port, eq)
            && covers_opt(&self.metadata, &o.metadata, MaskedBits::covers)
            && covers_opt(&self.tunnel_id, &o.tunnel_id, MaskedBits::covers)
            && match (&self.vlan_vid, &o.vlan_vid, o.vlan_id) {
                (None, _, _) => true,
                (Some(s), Some(v), _) => s.covers(v),
                // `vlan_id` is the exact tagged case of `vlan_vid`.
                (Some(s), None, Some(id)) => s.contains(VID_PRESENT | id),
                (Some(_), None, None) => false,
            }
            && covers_opt(&self.vlan_pcp, &o.vlan_pcp, eq)
            && covers_opt(&self.ip_dscp, &o.ip_dscp, eq)
            && covers_opt(&self.ip_ecn, &o.ip_ecn, eq)
            && covers_opt(&self.icmp_type, &o.icmp_type, eq)
            && covers_opt(&self.icmp_code, &o.icmp_code, eq)
            && covers_opt(&self.arp_op, &o.arp_op, eq)
            && covers_opt(&self.arp_spa, &o.arp_spa, Ipv4Prefix::covers)
            && covers_opt(&self.arp_tpa, &o.arp_tpa, Ipv4Prefix::covers)
            && covers_opt(&self.arp_sha, &o.arp_sha, MacMatch::covers)
            && covers_opt(&self.arp_tha, &o.arp_tha, MacMatch::covers)
            && covers_opt(&self.ipv6_flabel, &o.ipv6_flabel, MaskedBits::covers)
            && covers_opt(&self.nd_target, &o.nd_target, eq)
            && covers_opt(&self.nd_sll, &o.nd_sll, eq)
            && covers_opt(&self.nd_tll, &o.nd_tll, eq)
            && covers_opt(&self.mpls_label, &o.mpls_label, eq)
            && covers_opt(&self.mpls_tc, &o.mpls_tc, eq)
            && covers_opt(&self.mpls_bos, &o.mpls_bos, eq)
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

    fn any_with(f: impl FnOnce(&mut Match)) -> Match {
        let mut m = Match::any();
        f(&mut m);
        m
    }

    #[test]
    fn vlan_present_bit_pcp_and_qinq() {
        let tagged = PacketKey::from_frame(PortNo(0), &udp6_vlan(42));
        let untagged = key4(PortNo(0), [10, 0, 0, 5], 80);
        let vid = |v, m| any_with(|x| x.vlan_vid = Some(MaskedBits::masked(v, m)));
        let none = vid(0, 0xffff);
        let any_tag = vid(VID_PRESENT, VID_PRESENT);
        assert!(none.matches(&untagged) && !none.matches(&tagged));
        assert!(any_tag.matches(&tagged) && !any_tag.matches(&untagged));
        assert!(vid(VID_PRESENT | 42, 0x1fff).matches(&tagged));
        assert!(!vid(VID_PRESENT | 43, 0x1fff).matches(&tagged));
        // VIDs 40..47 with the tag present.
        assert!(vid(VID_PRESENT | 40, 0x1ff8).matches(&tagged));
        assert!(!vid(VID_PRESENT | 48, 0x1ff8).matches(&tagged));
        // No Ethernet header: not even "untagged".
        assert!(!none.matches(&PacketKey::from_frame(PortNo(0), &[0; 5])));
        let qinq = eth(&[(0x88a8, 0x6000 | 100), (0x8100, 200)], 0x0800, &ipv4(0, 6, &[0; 20]));
        let k = PacketKey::from_frame(PortNo(0), &qinq);
        assert!(vid(VID_PRESENT | 100, 0x1fff).matches(&k) && !vid(VID_PRESENT | 200, 0x1fff).matches(&k));
        assert!(any_with(|m| m.vlan_pcp = Some(3)).matches(&k));
        assert!(!any_with(|m| m.vlan_pcp = Some(0)).matches(&k));
        assert!(!any_with(|m| m.vlan_pcp = Some(0)).matches(&untagged));
        // The exact tagged case has two spellings that cover each other's packets.
        let id = any_with(|m| m.vlan_id = Some(42));
        assert!(any_tag.covers(&id) && !none.covers(&id) && any_tag.overlaps(&id) && !none.overlaps(&id));
    }

    #[test]
    fn ip_l4_icmp_arp_nd_mpls_fields() {
        let sctp = PacketKey::from_frame(
            PortNo(0),
            &eth(
                &[],
                0x0800,
                &ipv4(0xb9, 132, &[0x13, 0x88, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0]),
            ),
        );
        let yes = |m: Match, k: &PacketKey| assert!(m.matches(k), "{m:?} should match {k:?}");
        let no = |m: Match, k: &PacketKey| assert!(!m.matches(k), "{m:?} should not match {k:?}");
        yes(any_with(|m| (m.ip_dscp, m.ip_ecn) = (Some(46), Some(1))), &sctp);
        no(any_with(|m| m.ip_dscp = Some(0)), &sctp);
        no(any_with(|m| m.ip_ecn = Some(0)), &sctp);
        yes(any_with(|m| (m.ip_proto, m.l4_dst) = (Some(132), Some(80))), &sctp);
        // Arbitrary IPv4 masks: 10.x.0.2 for any x.
        let odd = Ipv4Prefix::with_mask(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(255, 0, 255, 255));
        yes(any_with(|m| m.ipv4_dst = Some(odd)), &sctp);
        let odd3 = Ipv4Prefix::with_mask(Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(255, 0, 255, 255));
        no(any_with(|m| m.ipv4_dst = Some(odd3)), &sctp);

        let icmp = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &ipv4(0, 1, &[8, 0, 0, 0, 0, 1, 0, 1])));
        yes(any_with(|m| (m.icmp_type, m.icmp_code) = (Some(8), Some(0))), &icmp);
        no(any_with(|m| m.icmp_type = Some(0)), &icmp);
        no(any_with(|m| m.icmp_type = Some(8)), &sctp);

        let a = PacketKey::from_frame(PortNo(0), &arp(1, [0xa; 6], [10, 0, 0, 1], [0; 6], [10, 0, 0, 9]));
        yes(any_with(|m| m.arp_op = Some(1)), &a);
        no(any_with(|m| m.arp_op = Some(2)), &a);
        yes(any_with(|m| m.arp_spa = Some("10.0.0.0/24".parse().unwrap())), &a);
        no(any_with(|m| m.arp_tpa = Some("10.0.0.1".parse().unwrap())), &a);
        yes(
            any_with(|m| m.arp_sha = Some(MacMatch::masked([0xa, 0, 0, 0, 0, 0], [0xff, 0, 0, 0, 0, 0]))),
            &a,
        );
        no(any_with(|m| m.arp_tha = Some(MacMatch::exact([0xa; 6]))), &a);
        no(any_with(|m| m.arp_op = Some(1)), &icmp);

        let ns = PacketKey::from_frame(PortNo(0), &nd(135, "fe80::2", &[(1, [0xa; 6])]));
        yes(
            any_with(|m| (m.icmp_type, m.nd_target) = (Some(135), Some("fe80::2".parse().unwrap()))),
            &ns,
        );
        no(any_with(|m| m.nd_target = Some("fe80::3".parse().unwrap())), &ns);
        yes(any_with(|m| (m.nd_sll, m.nd_tll) = (Some([0xa; 6]), Some([0; 6]))), &ns);
        no(any_with(|m| m.nd_sll = Some([0xb; 6])), &ns);
        let v6 = PacketKey::from_frame(PortNo(0), &icmp6(128, 0, &[], 0, 0xabcde));
        yes(
            any_with(|m| m.ipv6_flabel = Some(MaskedBits::masked(0xa0000, 0xf0000))),
            &v6,
        );
        no(any_with(|m| m.ipv6_flabel = Some(MaskedBits::exact(0xabcdf))), &v6);
        no(any_with(|m| m.ipv6_flabel = Some(MaskedBits::masked(0, 0))), &sctp);

        let stack = ((1000u32 << 12) | (5 << 9) | (1 << 8) | 64).to_be_bytes();
        let mpls = PacketKey::from_frame(PortNo(0), &eth(&[], 0x8847, &stack));
        yes(
            any_with(|m| (m.mpls_label, m.mpls_tc, m.mpls_bos) = (Some(1000), Some(5), Some(1))),
            &mpls,
        );
        no(any_with(|m| m.mpls_label = Some(1001)), &mpls);
        no(any_with(|m| m.mpls_bos = Some(0)), &mpls);
        no(any_with(|m| m.mpls_label = Some(1000)), &sctp);
    }

    #[test]
    fn metadata_tunnel_id_and_in_phy_port() {
        let mut k = key4(PortNo(2), [10, 0, 0, 5], 80);
        let md = |v, m| any_with(|x| x.metadata = Some(MaskedBits::masked(v, m)));
        assert!(md(0, u64::MAX).matches(&k), "every packet starts with metadata 0");
        assert!(!md(1, u64::MAX).matches(&k));
        k.metadata = 0xab00;
        assert!(md(0xab00, 0xff00).matches(&k) && !md(0xac00, 0xff00).matches(&k));
        assert!(any_with(|m| m.tunnel_id = Some(MaskedBits::exact(0))).matches(&k));
        assert!(!any_with(|m| m.tunnel_id = Some(MaskedBits::exact(5))).matches(&k));
        assert!(any_with(|m| m.in_phy_port = Some(PortNo(2))).matches(&k));
        assert!(!any_with(|m| m.in_phy_port = Some(PortNo(1))).matches(&k));
        // Masks in covering and overlap.
        assert!(md(0xab00, 0xff00).covers(&md(0xab12, 0xffff)) && !md(0xab12, 0xffff).covers(&md(0xab00, 0xff00)));
        assert!(md(0xab00, 0xff00).overlaps(&md(0x0012, 0x00ff)) && !md(0xab00, 0xff00).overlaps(&md(0xac00, 0xff00)));
        assert_eq!(
            MaskedBits::masked(0xffu64, 0x0f).value(),
            0x0f,
            "bits outside the mask are cleared"
        );
    }
}
