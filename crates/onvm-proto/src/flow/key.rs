//! Extraction of the matchable header fields of a raw Ethernet frame.
//!
//! Frames come from ports and NFs and may be anything: parsing is lax (etherparse's
//! `LaxSlicedPacket`) and stops at the first header that does not parse, keeping what
//! came before it. It never panics; the tests feed it random and truncated bytes.

use std::net::IpAddr;

use etherparse::{LaxNetSlice, LaxSlicedPacket, LinkSlice, TransportSlice, VlanSlice};

use super::PortNo;
use crate::rss::FlowTuple;

/// The header fields of one packet that rules can match, plus where it came from.
///
/// Fields that could not be parsed (truncated or unknown headers) are `None`, and a
/// rule that asks for such a field does not match: a malformed frame falls through to
/// the rules that ignore what it lacks, never into one that assumed it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
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
    /// TCP/UDP source port.
    pub l4_src: Option<u16>,
    /// TCP/UDP destination port.
    pub l4_dst: Option<u16>,
}

impl PacketKey {
    /// A key with only `in_port` set.
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
        }
    }

    /// Parses an Ethernet frame laxly: every header that parses fills its fields, and
    /// parsing stops quietly at the first one that does not. Never panics.
    pub fn from_frame(in_port: PortNo, frame: &[u8]) -> Self {
        let mut key = PacketKey::new(in_port);
        let Ok(pkt) = LaxSlicedPacket::from_ethernet(frame) else {
            return key;
        };
        if let Some(LinkSlice::Ethernet2(eth)) = &pkt.link {
            key.eth_src = Some(eth.source());
            key.eth_dst = Some(eth.destination());
        }
        key.vlan_id = pkt.vlan().map(|v| match v {
            VlanSlice::SingleVlan(s) => s.vlan_identifier().value(),
            VlanSlice::DoubleVlan(d) => d.outer.vlan_identifier().value(),
        });
        key.eth_type = pkt.ether_payload().map(|p| p.ether_type.0);
        match &pkt.net {
            Some(LaxNetSlice::Ipv4(ip)) => {
                let h = ip.header();
                key.ip_src = Some(IpAddr::V4(h.source_addr()));
                key.ip_dst = Some(IpAddr::V4(h.destination_addr()));
                key.ip_proto = Some(ip.payload().ip_number.0);
            }
            Some(LaxNetSlice::Ipv6(ip)) => {
                let h = ip.header();
                key.ip_src = Some(IpAddr::V6(h.source_addr()));
                key.ip_dst = Some(IpAddr::V6(h.destination_addr()));
                key.ip_proto = Some(ip.payload().ip_number.0);
            }
            Some(LaxNetSlice::Arp(_)) | None => {}
        }
        match &pkt.transport {
            Some(TransportSlice::Tcp(t)) => {
                key.l4_src = Some(t.source_port());
                key.l4_dst = Some(t.destination_port());
            }
            Some(TransportSlice::Udp(u)) => {
                key.l4_src = Some(u.source_port());
                key.l4_dst = Some(u.destination_port());
            }
            _ => {}
        }
        key
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
        }
    }
}
