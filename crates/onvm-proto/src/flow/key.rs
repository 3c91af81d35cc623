//! Extraction of the matchable header fields of a raw Ethernet frame.
//!
//! Frames come from ports and NFs and may be anything: parsing is lax and stops at the
//! first header that does not parse (or is cut short), keeping what came before it. It
//! never panics; the tests feed it random and truncated bytes. Ethernet, up to two VLAN
//! tags (802.1Q, 802.1ad), ARP and the top MPLS label are read here; IPv4 and IPv6 (with
//! extension headers) by etherparse's lax slices; then the first bytes of TCP, UDP,
//! SCTP, ICMP and ICMPv6 (with the neighbour discovery target and options).

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{LaxIpPayloadSlice, LaxIpv4Slice, LaxIpv6Slice};

use super::PortNo;
use crate::rss::{FlowTuple, Toeplitz};

/// The header fields of one packet that rules can match, plus where it came from and
/// its pipeline state.
///
/// Fields that could not be parsed (truncated or unknown headers, another protocol) are
/// `None`, and a rule that asks for such a field does not match: a malformed frame falls
/// through to the rules that ignore what it lacks, never into one that assumed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketKey {
    /// Port the packet entered the table from (physical or a service's port).
    pub in_port: PortNo,
    /// Ethernet source address.
    pub eth_src: Option<[u8; 6]>,
    /// Ethernet destination address.
    pub eth_dst: Option<[u8; 6]>,
    /// EtherType after any VLAN tags.
    pub eth_type: Option<u16>,
    /// VLAN ID of the outer tag.
    pub vlan_id: Option<u16>,
    /// IPv4/IPv6 source address.
    pub ip_src: Option<IpAddr>,
    /// IPv4/IPv6 destination address.
    pub ip_dst: Option<IpAddr>,
    /// IP protocol of the payload (after IPv6 extension headers).
    pub ip_proto: Option<u8>,
    /// TCP/UDP/SCTP source port.
    pub l4_src: Option<u16>,
    /// TCP/UDP/SCTP destination port.
    pub l4_dst: Option<u16>,
    /// The pipeline's metadata register: 0 when a packet enters table 0 (OpenFlow's
    /// write-metadata changes it between tables).
    pub metadata: u64,
    /// The tunnel ID the packet arrived with: 0 for packets from ports and services.
    pub tunnel_id: u64,
    /// Priority (PCP) of the outer VLAN tag.
    pub vlan_pcp: Option<u8>,
    /// DSCP of IPv4's TOS or IPv6's traffic class.
    pub ip_dscp: Option<u8>,
    /// ECN of IPv4's TOS or IPv6's traffic class.
    pub ip_ecn: Option<u8>,
    /// IPv6 flow label.
    pub ipv6_flabel: Option<u32>,
    /// ICMPv4 or ICMPv6 type (which one: `ip_proto`).
    pub icmp_type: Option<u8>,
    /// ICMPv4 or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// ARP opcode (Ethernet/IPv4 ARP only).
    pub arp_op: Option<u16>,
    /// ARP sender protocol address.
    pub arp_spa: Option<Ipv4Addr>,
    /// ARP target protocol address.
    pub arp_tpa: Option<Ipv4Addr>,
    /// ARP sender hardware address.
    pub arp_sha: Option<[u8; 6]>,
    /// ARP target hardware address.
    pub arp_tha: Option<[u8; 6]>,
    /// Target of an ICMPv6 neighbour solicitation (135) or advertisement (136).
    pub nd_target: Option<Ipv6Addr>,
    /// Source link-layer address option of an NS/NA; all zeros when it has none (as
    /// Open vSwitch has it).
    pub nd_sll: Option<[u8; 6]>,
    /// Target link-layer address option of an NS/NA; all zeros when it has none.
    pub nd_tll: Option<[u8; 6]>,
    /// Label of the top MPLS label stack entry.
    pub mpls_label: Option<u32>,
    /// Traffic class of the top MPLS entry.
    pub mpls_tc: Option<u8>,
    /// Bottom-of-stack bit of the top MPLS entry.
    pub mpls_bos: Option<u8>,
}

/// Feeds the hasher a few wide words instead of one call per field: the flow cache
/// hashes the key of every packet it sees, and a field-by-field hash of this many
/// fields costs it twice as much as the rest of the lookup. Equal keys give equal
/// words; fields that rarely tell flows apart are folded together with XOR (a
/// collision costs a cache miss, never a wrong answer).
impl Hash for PacketKey {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let o8 = |v: Option<u8>| v.map_or(0x100, u64::from);
        let o16 = |v: Option<u16>| v.map_or(0x1_0000, u64::from);
        let mac = |m: Option<[u8; 6]>| {
            m.map_or(1 << 48, |a| {
                u64::from_le_bytes([a[0], a[1], a[2], a[3], a[4], a[5], 0, 0])
            })
        };
        let ip = |a: Option<IpAddr>| match a {
            None => 1 << 40,
            Some(IpAddr::V4(a)) => u64::from(u32::from(a)),
            Some(IpAddr::V6(a)) => {
                let a = u128::from(a);
                (a as u64) ^ ((a >> 64) as u64).rotate_left(33) ^ (1 << 41)
            }
        };
        let v4 = |a: Option<Ipv4Addr>| a.map_or(1 << 32, |a| u64::from(u32::from(a)));
        h.write_u64(u64::from(self.in_port.0) | (o16(self.eth_type) << 32) | (o8(self.ip_proto) << 49));
        h.write_u64(
            o16(self.l4_src) | (o16(self.l4_dst) << 17) | (o16(self.vlan_id) << 34) | (o8(self.icmp_type) << 51),
        );
        h.write_u64(mac(self.eth_src) ^ mac(self.eth_dst).rotate_left(24));
        h.write_u64(ip(self.ip_src) ^ ip(self.ip_dst).rotate_left(32));
        let small = o8(self.vlan_pcp)
            | (o8(self.ip_dscp) << 9)
            | (o8(self.ip_ecn) << 18)
            | (o8(self.icmp_code) << 27)
            | (o16(self.arp_op) << 36)
            | (o8(self.mpls_tc) << 53)
            | (self.mpls_bos.map_or(2, u64::from) << 62);
        let rare = self.metadata
            ^ self.tunnel_id.rotate_left(7)
            ^ v4(self.arp_spa).rotate_left(13)
            ^ v4(self.arp_tpa).rotate_left(45)
            ^ mac(self.arp_sha).rotate_left(3)
            ^ mac(self.arp_tha).rotate_left(29)
            ^ self.ipv6_flabel.map_or(1 << 21, u64::from).rotate_left(17)
            ^ self.mpls_label.map_or(1 << 21, u64::from).rotate_left(41)
            ^ ip(self.nd_target.map(IpAddr::V6)).rotate_left(11)
            ^ mac(self.nd_sll).rotate_left(37)
            ^ mac(self.nd_tll).rotate_left(51);
        h.write_u64(small ^ rare.rotate_left(5));
    }
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_ARP: u16 = 0x0806;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MCAST: u16 = 0x8848;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

impl PacketKey {
    /// A key with only `in_port` set (and metadata and tunnel ID 0).
    pub fn new(in_port: PortNo) -> Self {
        PacketKey {
            in_port,
            eth_src: None,
            eth_dst: None,
            eth_type: None,
            vlan_id: None,
            ip_src: None,
            ip_dst: None,
            ip_proto: None,
            l4_src: None,
            l4_dst: None,
            metadata: 0,
            tunnel_id: 0,
            vlan_pcp: None,
            ip_dscp: None,
            ip_ecn: None,
            ipv6_flabel: None,
            icmp_type: None,
            icmp_code: None,
            arp_op: None,
            arp_spa: None,
            arp_tpa: None,
            arp_sha: None,
            arp_tha: None,
            nd_target: None,
            nd_sll: None,
            nd_tll: None,
            mpls_label: None,
            mpls_tc: None,
            mpls_bos: None,
        }
    }

    /// Parses an Ethernet frame laxly: every header that parses fills its fields, and
    /// parsing stops quietly at the first one that does not. Never panics.
    pub fn from_frame(in_port: PortNo, frame: &[u8]) -> Self {
        let mut key = PacketKey::new(in_port);
        key.parse_ethernet(frame);
        key
    }

    /// Ethernet, VLAN tags, then the EtherType's header. `None` = stopped early.
    fn parse_ethernet(&mut self, f: &[u8]) -> Option<()> {
        let mut ty = be16(f, 12)?;
        self.eth_dst = array(f, 0);
        self.eth_src = array(f, 6);
        let mut at = 14;
        // 802.1Q, 802.1ad and the old QinQ type; the outer tag's fields are the match's.
        for _ in 0..2 {
            if !matches!(ty, 0x8100 | 0x88a8 | 0x9100) {
                break;
            }
            let (tci, inner) = (be16(f, at)?, be16(f, at + 2)?);
            if self.vlan_id.is_none() {
                self.vlan_id = Some(tci & 0x0fff);
                self.vlan_pcp = Some((tci >> 13) as u8);
            }
            ty = inner;
            at += 4;
        }
        self.eth_type = Some(ty);
        let rest = &f[at..];
        match ty {
            ETH_IPV4 => self.parse_ipv4(rest),
            ETH_IPV6 => self.parse_ipv6(rest),
            ETH_ARP => self.parse_arp(rest),
            ETH_MPLS | ETH_MPLS_MCAST => {
                let e = u32::from_be_bytes(array(rest, 0)?);
                self.mpls_label = Some(e >> 12);
                self.mpls_tc = Some((e >> 9) as u8 & 7);
                self.mpls_bos = Some((e >> 8) as u8 & 1);
                Some(())
            }
            _ => None,
        }
    }

    /// Ethernet/IPv4 ARP (the only kind OpenFlow's `arp_*` fields describe).
    fn parse_arp(&mut self, a: &[u8]) -> Option<()> {
        if a.len() < 28 || be16(a, 0)? != 1 || be16(a, 2)? != ETH_IPV4 || a[4] != 6 || a[5] != 4 {
            return None;
        }
        self.arp_op = be16(a, 6);
        self.arp_sha = array(a, 8);
        self.arp_spa = array::<4>(a, 14).map(Ipv4Addr::from);
        self.arp_tha = array(a, 18);
        self.arp_tpa = array::<4>(a, 24).map(Ipv4Addr::from);
        Some(())
    }

    fn parse_ipv4(&mut self, b: &[u8]) -> Option<()> {
        let (ip, _) = LaxIpv4Slice::from_slice(b).ok()?;
        let h = ip.header();
        self.ip_src = Some(IpAddr::V4(h.source_addr()));
        self.ip_dst = Some(IpAddr::V4(h.destination_addr()));
        let tos = b[1];
        (self.ip_dscp, self.ip_ecn) = (Some(tos >> 2), Some(tos & 3));
        // A first fragment has the transport header, as Open vSwitch reads it.
        self.parse_l4(ip.payload(), h.fragments_offset().value() == 0)
    }

    fn parse_ipv6(&mut self, b: &[u8]) -> Option<()> {
        let (ip, ext_err) = LaxIpv6Slice::from_slice(b).ok()?;
        let h = ip.header();
        self.ip_src = Some(IpAddr::V6(h.source_addr()));
        self.ip_dst = Some(IpAddr::V6(h.destination_addr()));
        let tc = (b[0] << 4) | (b[1] >> 4);
        (self.ip_dscp, self.ip_ecn) = (Some(tc >> 2), Some(tc & 3));
        self.ipv6_flabel = Some(u32::from_be_bytes([0, b[1] & 0x0f, b[2], b[3]]));
        if ext_err.is_some() {
            // The payload starts at the extension header that did not parse.
            self.ip_proto = Some(ip.payload().ip_number.0);
            return None;
        }
        self.parse_l4(ip.payload(), false)
    }

    /// The protocol after IP, and its first header unless the packet is a fragment
    /// (`first`: one that starts at offset 0, which has it).
    fn parse_l4(&mut self, p: &LaxIpPayloadSlice<'_>, first: bool) -> Option<()> {
        let proto = p.ip_number.0;
        self.ip_proto = Some(proto);
        if p.fragmented && !first {
            return None;
        }
        let l4 = p.payload;
        // Whole headers only, as Open vSwitch reads them.
        let ports = |min: usize| (l4.len() >= min).then(|| (be16(l4, 0), be16(l4, 2)));
        match proto {
            6 | 17 | 132 => {
                (self.l4_src, self.l4_dst) = ports(match proto {
                    6 => 20,
                    17 => 8,
                    _ => 12,
                })?;
            }
            1 | 58 => {
                let (ty, code) = (*l4.first()?, *l4.get(1)?);
                (self.icmp_type, self.icmp_code) = (Some(ty), Some(code));
                if proto == 58 && code == 0 && matches!(ty, 135 | 136) {
                    self.parse_nd(l4)?;
                }
            }
            _ => {}
        }
        Some(())
    }

    /// A neighbour solicitation or advertisement: the target, then the options.
    fn parse_nd(&mut self, m: &[u8]) -> Option<()> {
        self.nd_target = Some(Ipv6Addr::from(array::<16>(m, 8)?));
        self.nd_sll = Some([0; 6]);
        self.nd_tll = Some([0; 6]);
        let mut opts = m.get(24..)?;
        while opts.len() >= 8 {
            let len = usize::from(opts[1]) * 8;
            if len == 0 || len > opts.len() {
                return None;
            }
            match opts[0] {
                1 if len == 8 => self.nd_sll = array(opts, 2),
                2 if len == 8 => self.nd_tll = array(opts, 2),
                _ => {}
            }
            opts = &opts[len..];
        }
        Some(())
    }

    /// The flow's RSS hash, 0 when the packet is not IP: what picks a service's
    /// instance, on whichever switch thread the packet arrives (the main one or a lane).
    #[inline]
    pub fn rss_hash(&self, key: &Toeplitz) -> u32 {
        self.flow_tuple().map_or(0, |t| t.hash(key))
    }

    /// The 5-tuple for RSS, if the packet is IP (ports are 0 when absent).
    pub fn flow_tuple(&self) -> Option<FlowTuple> {
        Some(FlowTuple {
            src: self.ip_src?,
            dst: self.ip_dst?,
            src_port: self.l4_src.unwrap_or(0),
            dst_port: self.l4_dst.unwrap_or(0),
            proto: self.ip_proto.unwrap_or(0),
        })
    }
}

/// Frame builders shared by the flow tests.
#[cfg(test)]
pub(crate) mod frames {
    use super::*;
    use etherparse::{PacketBuilder, VlanId};

    pub(crate) fn tcp4(src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4(src, dst, 64)
            .tcp(sp, dp, 1, 1000)
            .write(&mut v, &[0u8; 10])
            .unwrap();
        v
    }

    pub(crate) fn udp6_vlan(vid: u16) -> Vec<u8> {
        let mut v = Vec::new();
        let mut src = [0u8; 16];
        src[0] = 0x20;
        src[1] = 0x01;
        src[15] = 1;
        let mut dst = src;
        dst[15] = 2;
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(VlanId::try_new(vid).unwrap())
            .ipv6(src, dst, 64)
            .udp(5000, 53)
            .write(&mut v, &[1, 2, 3])
            .unwrap();
        v
    }

    /// An Ethernet frame with `tags` (TPID, TCI) and `payload` of type `ty`.
    pub(crate) fn eth(tags: &[(u16, u16)], ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1];
        for (tpid, tci) in tags {
            v.extend(tpid.to_be_bytes());
            v.extend(tci.to_be_bytes());
        }
        v.extend(ty.to_be_bytes());
        v.extend(payload);
        v
    }

    /// An IPv4 packet (no Ethernet) with this TOS, protocol and payload.
    pub(crate) fn ipv4(tos: u8, proto: u8, payload: &[u8]) -> Vec<u8> {
        let len = u16::try_from(20 + payload.len()).unwrap();
        let mut v = vec![0x45, tos];
        v.extend(len.to_be_bytes());
        v.extend([0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend(payload);
        v
    }

    /// An Ethernet/IPv4 ARP packet.
    pub(crate) fn arp(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Vec<u8> {
        let mut a = vec![0, 1, 8, 0, 6, 4];
        a.extend(op.to_be_bytes());
        a.extend(sha);
        a.extend(spa);
        a.extend(tha);
        a.extend(tpa);
        eth(&[], 0x0806, &a)
    }

    /// An ICMPv6 message of `ty` with `body` after its 8-byte header, in IPv6 with
    /// traffic class `tc` and flow label `fl`.
    pub(crate) fn icmp6(ty: u8, code: u8, body: &[u8], tc: u8, fl: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let src: [u8; 16] = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        let dst: [u8; 16] = "ff02::1:ff00:2".parse::<Ipv6Addr>().unwrap().octets();
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]).ipv6(src, dst, 255);
        b.icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: code,
            bytes5to8: [0x60, 0, 0, 0],
        })
        .write(&mut v, body)
        .unwrap();
        // Traffic class and flow label by hand (the builder leaves them 0).
        let w = 0x6000_0000u32 | (u32::from(tc) << 20) | fl;
        v[14..18].copy_from_slice(&w.to_be_bytes());
        v
    }

    /// A neighbour solicitation (135) or advertisement (136) for `target` with these
    /// options (type, address).
    pub(crate) fn nd(ty: u8, target: &str, opts: &[(u8, [u8; 6])]) -> Vec<u8> {
        let mut body = target.parse::<Ipv6Addr>().unwrap().octets().to_vec();
        for (t, a) in opts {
            body.extend([*t, 1]);
            body.extend(a);
        }
        icmp6(ty, 0, &body, 0, 0)
    }

    pub(crate) fn key4(in_port: PortNo, dst: [u8; 4], dp: u16) -> PacketKey {
        PacketKey::from_frame(in_port, &tcp4([1, 1, 1, 1], dst, 999, dp))
    }
}

#[cfg(test)]
mod tests {
    use super::frames::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_from_tcp4_frame() {
        let f = tcp4([10, 0, 0, 1], [192, 168, 1, 1], 1234, 80);
        let k = PacketKey::from_frame(PortNo::physical(0), &f);
        assert_eq!(k.eth_type, Some(0x0800));
        assert_eq!(k.vlan_id, None);
        assert_eq!(k.ip_src, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(k.ip_dst, Some("192.168.1.1".parse().unwrap()));
        assert_eq!(k.ip_proto, Some(6));
        assert_eq!((k.l4_src, k.l4_dst), (Some(1234), Some(80)));
        let t = k.flow_tuple().unwrap();
        assert_eq!((t.src_port, t.dst_port, t.proto), (1234, 80, 6));
    }

    #[test]
    fn key_from_vlan_udp6_frame() {
        let k = PacketKey::from_frame(PortNo::physical(1), &udp6_vlan(42));
        assert_eq!(k.vlan_id, Some(42));
        assert_eq!(k.eth_type, Some(0x86dd));
        assert_eq!(k.ip_src, Some("2001::1".parse().unwrap()));
        assert_eq!(k.ip_proto, Some(17));
        assert_eq!((k.l4_src, k.l4_dst), (Some(5000), Some(53)));
    }

    #[test]
    fn truncated_frames_keep_what_parsed() {
        let f = tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2);
        // Ethernet only.
        let k = PacketKey::from_frame(PortNo(0), &f[..16]);
        assert_eq!(k.eth_type, Some(0x0800));
        assert_eq!(k.ip_src, None);
        // Ethernet + IPv4, TCP cut.
        let k = PacketKey::from_frame(PortNo(0), &f[..14 + 20 + 2]);
        assert_eq!(k.ip_dst, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(k.ip_proto, Some(6));
        assert_eq!(k.l4_src, None);
        // Not even an Ethernet header.
        assert_eq!(PacketKey::from_frame(PortNo(7), &f[..5]), PacketKey::new(PortNo(7)));
    }

    #[test]
    fn qinq_and_priority_come_from_the_outer_tag() {
        let ip = ipv4(0, 17, &[0, 1, 0, 2, 0, 8, 0, 0]);
        // 802.1ad outer (PCP 5, VID 100) over 802.1Q inner (VID 200).
        let f = eth(&[(0x88a8, 0xa064), (0x8100, 200)], 0x0800, &ip);
        let k = PacketKey::from_frame(PortNo(0), &f);
        assert_eq!((k.vlan_id, k.vlan_pcp, k.eth_type), (Some(100), Some(5), Some(0x0800)));
        assert_eq!((k.l4_src, k.l4_dst), (Some(1), Some(2)));
        let f = eth(&[(0x8100, 0x2007)], 0x0800, &ip);
        let k = PacketKey::from_frame(PortNo(0), &f);
        assert_eq!((k.vlan_id, k.vlan_pcp), (Some(7), Some(1)));
        let k = PacketKey::from_frame(PortNo(0), &tcp4([1; 4], [2; 4], 1, 2));
        assert_eq!((k.vlan_id, k.vlan_pcp), (None, None));
        // A tag cut short: Ethernet addresses only.
        let k = PacketKey::from_frame(PortNo(0), &f[..16]);
        assert_eq!((k.eth_src, k.vlan_id, k.eth_type), (Some([1; 6]), None, None));
    }

    #[test]
    fn tos_sctp_and_icmp4() {
        let sctp = ipv4(0xb9, 132, &[0x13, 0x88, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0]);
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &sctp));
        assert_eq!((k.ip_dscp, k.ip_ecn, k.ip_proto), (Some(46), Some(1), Some(132)));
        assert_eq!((k.l4_src, k.l4_dst), (Some(5000), Some(80)));
        // An SCTP common header cut short has no ports.
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &ipv4(0, 132, &[0, 1, 0, 2])));
        assert_eq!((k.ip_proto, k.l4_src), (Some(132), None));
        let icmp = ipv4(0, 1, &[3, 1, 0, 0, 0, 0, 0, 0]);
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &icmp));
        assert_eq!((k.icmp_type, k.icmp_code, k.l4_src), (Some(3), Some(1), None));
        assert_eq!(
            PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &icmp[..21])).icmp_type,
            None
        );
    }

    #[test]
    fn ipv4_fragments_have_ports_only_in_the_first() {
        let udp = [0x13, 0x88, 0, 53, 0, 8, 0, 0];
        let mut first = ipv4(0, 17, &udp);
        first[6] = 0x20; // more fragments, offset 0
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &first));
        assert_eq!((k.ip_proto, k.l4_src, k.l4_dst), (Some(17), Some(5000), Some(53)));
        let mut later = ipv4(0, 17, &udp);
        later[7] = 0x10; // offset 128 bytes
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x0800, &later));
        assert_eq!((k.ip_proto, k.l4_src), (Some(17), None));
    }

    #[test]
    fn arp_fields() {
        let f = arp(2, [0xa; 6], [10, 0, 0, 1], [0xb; 6], [10, 0, 0, 2]);
        let k = PacketKey::from_frame(PortNo(0), &f);
        assert_eq!((k.eth_type, k.arp_op), (Some(0x0806), Some(2)));
        assert_eq!((k.arp_sha, k.arp_tha), (Some([0xa; 6]), Some([0xb; 6])));
        assert_eq!(k.arp_spa, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(k.arp_tpa, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!((k.ip_src, k.l4_src), (None, None));
        // Truncated, or not Ethernet/IPv4 ARP: no ARP fields.
        assert_eq!(PacketKey::from_frame(PortNo(0), &f[..14 + 27]).arp_op, None);
        let mut g = f.clone();
        g[14 + 4] = 8;
        assert_eq!(PacketKey::from_frame(PortNo(0), &g).arp_spa, None);
    }

    #[test]
    fn mpls_top_of_stack() {
        // Label 1000, TC 5, not bottom; then label 7, bottom.
        let top = (1000u32 << 12) | (5 << 9) | 64;
        let mut stack = top.to_be_bytes().to_vec();
        stack.extend(((7u32 << 12) | (1 << 8) | 64).to_be_bytes());
        let k = PacketKey::from_frame(PortNo(0), &eth(&[(0x8100, 3)], 0x8847, &stack));
        assert_eq!((k.mpls_label, k.mpls_tc, k.mpls_bos), (Some(1000), Some(5), Some(0)));
        assert_eq!(k.vlan_id, Some(3));
        let k = PacketKey::from_frame(PortNo(0), &eth(&[], 0x8848, &stack[4..]));
        assert_eq!((k.mpls_label, k.mpls_bos), (Some(7), Some(1)));
        assert_eq!(
            PacketKey::from_frame(PortNo(0), &eth(&[], 0x8847, &stack[..3])).mpls_label,
            None
        );
    }

    #[test]
    fn icmp6_and_neighbour_discovery() {
        let k = PacketKey::from_frame(PortNo(0), &icmp6(128, 0, &[1, 2, 3, 4], 0xb8, 0xabcde));
        assert_eq!((k.ip_proto, k.icmp_type, k.icmp_code), (Some(58), Some(128), Some(0)));
        assert_eq!((k.ip_dscp, k.ip_ecn, k.ipv6_flabel), (Some(46), Some(0), Some(0xabcde)));
        assert_eq!(k.nd_target, None);
        let ns = nd(135, "fe80::2", &[(1, [0xa; 6])]);
        let k = PacketKey::from_frame(PortNo(0), &ns);
        assert_eq!(k.nd_target, Some("fe80::2".parse().unwrap()));
        assert_eq!((k.nd_sll, k.nd_tll), (Some([0xa; 6]), Some([0; 6])));
        let na = nd(136, "fe80::3", &[(2, [0xb; 6])]);
        let k = PacketKey::from_frame(PortNo(0), &na);
        assert_eq!(
            (k.icmp_type, k.nd_sll, k.nd_tll),
            (Some(136), Some([0; 6]), Some([0xb; 6]))
        );
        // No options: both zero, as Open vSwitch has them.
        let k = PacketKey::from_frame(PortNo(0), &nd(135, "fe80::2", &[]));
        assert_eq!((k.nd_sll, k.nd_tll), (Some([0; 6]), Some([0; 6])));
        // A target cut short: type and code, no target.
        let k = PacketKey::from_frame(PortNo(0), &ns[..14 + 40 + 8 + 10]);
        assert_eq!((k.icmp_type, k.nd_target), (Some(135), None));
        // An option of length 0 stops the option walk.
        let mut bad = ns.clone();
        let at = bad.len() - 7;
        bad[at] = 0;
        let k = PacketKey::from_frame(PortNo(0), &bad);
        assert_eq!((k.nd_target.is_some(), k.nd_sll), (true, Some([0; 6])));
    }

    #[test]
    fn metadata_and_tunnel_id_start_at_zero() {
        let k = PacketKey::from_frame(PortNo(0), &tcp4([1; 4], [2; 4], 1, 2));
        assert_eq!((k.metadata, k.tunnel_id), (0, 0));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = PacketKey::from_frame(PortNo(0), &bytes);
            prop_assert_eq!(k.in_port, PortNo(0));
        }

        #[test]
        fn truncations_and_corruptions_never_panic(cut in 0usize..80, pos in 0usize..80, val in any::<u8>()) {
            let mut f = udp6_vlan(7);
            if pos < f.len() { f[pos] = val; }
            f.truncate(cut);
            let _ = PacketKey::from_frame(PortNo(1), &f);
            let mut g = tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2);
            if pos < g.len() { g[pos] = val; }
            g.truncate(cut);
            let _ = PacketKey::from_frame(PortNo(1), &g);
            let stack = [0u8, 0x3e, 0x81, 0x40];
            let frames = [
                nd(135, "fe80::2", &[(1, [0xa; 6]), (2, [0xb; 6])]),
                arp(1, [1; 6], [1; 4], [2; 6], [2; 4]),
                eth(&[(0x88a8, 1), (0x8100, 2)], 0x8847, &stack),
                eth(&[], 0x0800, &ipv4(0, 132, &[0; 12])),
            ];
            for mut h in frames {
                if pos < h.len() { h[pos] = val; }
                h.truncate(cut);
                let _ = PacketKey::from_frame(PortNo(1), &h);
            }
        }
    }
}
