//! Typed, read-only access to the headers of one frame.
//!
//! [`Headers`] wraps etherparse's *strict* [`SlicedPacket`]: a frame whose IP or L4
//! header is truncated or inconsistent (lengths past the end, a bad IHL, ...) is an
//! error, not a half-filled result, so an NF that gets `Ok` can trust every accessor.
//! (Classification in `onvm-proto` parses laxly instead, because there a malformed
//! frame must still be routed somewhere; here the NF wants to work on the packet.)
//!
//! Accessors hand out etherparse's slice types, borrowed from the frame, so nothing is
//! copied; the convenience ones (`src_ip`, `dst_port`, ...) cover what most NFs ask.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpPacketSlice, Ethernet2Slice, Icmpv4Slice, Icmpv6Slice, Ipv4Slice, Ipv6Slice, LinkExtSlice, LinkSlice, NetSlice,
    SingleVlanSlice, SlicedPacket, TcpSlice, TransportSlice, UdpSlice,
};

use crate::{ETHERNET_HEADER_LEN, Error, Result};

/// The parsed headers of one Ethernet II frame (without FCS), borrowing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers<'a> {
    frame: &'a [u8],
    ethernet: Ethernet2Slice<'a>,
    sliced: SlicedPacket<'a>,
}

impl<'a> Headers<'a> {
    /// Parses `frame` from its Ethernet header down as far as etherparse knows the
    /// headers (VLAN, ARP, IPv4/IPv6 with extensions, TCP, UDP, ICMPv4/v6, IGMP).
    ///
    /// Errors: [`Error::TooShortForEthernet`] below 14 bytes, [`Error::Parse`] naming the
    /// header etherparse rejected otherwise. Never panics.
    pub fn parse(frame: &'a [u8]) -> Result<Headers<'a>> {
        if frame.len() < ETHERNET_HEADER_LEN {
            return Err(Error::TooShortForEthernet { len: frame.len() });
        }
        let sliced = SlicedPacket::from_ethernet(frame)?;
        let ethernet = match &sliced.link {
            Some(LinkSlice::Ethernet2(e)) => e.clone(),
            // `from_ethernet` always yields an Ethernet II link; this keeps it panic-free anyway.
            _ => Ethernet2Slice::from_slice_without_fcs(frame)
                .map_err(|_| Error::TooShortForEthernet { len: frame.len() })?,
        };
        Ok(Headers {
            frame,
            ethernet,
            sliced,
        })
    }

    /// The whole frame.
    pub fn frame(&self) -> &'a [u8] {
        self.frame
    }

    /// etherparse's full result, for what the accessors below do not cover.
    pub fn sliced(&self) -> &SlicedPacket<'a> {
        &self.sliced
    }

    /// The Ethernet II header.
    pub fn ethernet(&self) -> &Ethernet2Slice<'a> {
        &self.ethernet
    }

    /// Source MAC address.
    pub fn src_mac(&self) -> [u8; 6] {
        self.ethernet.source()
    }

    /// Destination MAC address.
    pub fn dst_mac(&self) -> [u8; 6] {
        self.ethernet.destination()
    }

    /// EtherType after any VLAN tags.
    pub fn ether_type(&self) -> u16 {
        self.vlans()
            .last()
            .map_or(self.ethernet.ether_type(), |v| v.ether_type())
            .0
    }

    fn vlans(&self) -> impl Iterator<Item = &SingleVlanSlice<'a>> {
        self.sliced.link_exts.iter().filter_map(|e| match e {
            LinkExtSlice::Vlan(v) => Some(v),
            LinkExtSlice::Macsec(_) => None,
        })
    }

    /// The outer VLAN tag, if any (`vlan_identifier()`, `priority_code_point()`, ...).
    pub fn vlan(&self) -> Option<&SingleVlanSlice<'a>> {
        self.vlans().next()
    }

    /// VLAN ID of the outer tag, if any.
    pub fn vlan_id(&self) -> Option<u16> {
        self.vlan().map(|v| v.vlan_identifier().value())
    }

    /// The ARP packet, if the frame is ARP.
    pub fn arp(&self) -> Option<&ArpPacketSlice<'a>> {
        match &self.sliced.net {
            Some(NetSlice::Arp(a)) => Some(a),
            _ => None,
        }
    }

    /// The IPv4 header and payload, if the frame is IPv4.
    pub fn ipv4(&self) -> Option<&Ipv4Slice<'a>> {
        match &self.sliced.net {
            Some(NetSlice::Ipv4(ip)) => Some(ip),
            _ => None,
        }
    }

    /// The IPv6 header, extension headers and payload, if the frame is IPv6.
    pub fn ipv6(&self) -> Option<&Ipv6Slice<'a>> {
        match &self.sliced.net {
            Some(NetSlice::Ipv6(ip)) => Some(ip),
            _ => None,
        }
    }

    /// The TCP segment, if any (not for non-first fragments).
    pub fn tcp(&self) -> Option<&TcpSlice<'a>> {
        match &self.sliced.transport {
            Some(TransportSlice::Tcp(t)) => Some(t),
            _ => None,
        }
    }

    /// The UDP datagram, if any (not for non-first fragments).
    pub fn udp(&self) -> Option<&UdpSlice<'a>> {
        match &self.sliced.transport {
            Some(TransportSlice::Udp(u)) => Some(u),
            _ => None,
        }
    }

    /// The ICMPv4 message, if any.
    pub fn icmpv4(&self) -> Option<&Icmpv4Slice<'a>> {
        match &self.sliced.transport {
            Some(TransportSlice::Icmpv4(i)) => Some(i),
            _ => None,
        }
    }

    /// The ICMPv6 message, if any.
    pub fn icmpv6(&self) -> Option<&Icmpv6Slice<'a>> {
        match &self.sliced.transport {
            Some(TransportSlice::Icmpv6(i)) => Some(i),
            _ => None,
        }
    }

    /// IPv4/IPv6 source address.
    pub fn src_ip(&self) -> Option<IpAddr> {
        match &self.sliced.net {
            Some(NetSlice::Ipv4(ip)) => Some(IpAddr::V4(Ipv4Addr::from(ip.header().source()))),
            Some(NetSlice::Ipv6(ip)) => Some(IpAddr::V6(Ipv6Addr::from(ip.header().source()))),
            _ => None,
        }
    }

    /// IPv4/IPv6 destination address.
    pub fn dst_ip(&self) -> Option<IpAddr> {
        match &self.sliced.net {
            Some(NetSlice::Ipv4(ip)) => Some(IpAddr::V4(Ipv4Addr::from(ip.header().destination()))),
            Some(NetSlice::Ipv6(ip)) => Some(IpAddr::V6(Ipv6Addr::from(ip.header().destination()))),
            _ => None,
        }
    }

    /// IP protocol of the payload, after any IPv6 extension headers.
    pub fn ip_proto(&self) -> Option<u8> {
        match &self.sliced.net {
            Some(NetSlice::Ipv4(ip)) => Some(ip.payload().ip_number.0),
            Some(NetSlice::Ipv6(ip)) => Some(ip.payload().ip_number.0),
            _ => None,
        }
    }

    /// TCP/UDP source port.
    pub fn src_port(&self) -> Option<u16> {
        match &self.sliced.transport {
            Some(TransportSlice::Tcp(t)) => Some(t.source_port()),
            Some(TransportSlice::Udp(u)) => Some(u.source_port()),
            _ => None,
        }
    }

    /// TCP/UDP destination port.
    pub fn dst_port(&self) -> Option<u16> {
        match &self.sliced.transport {
            Some(TransportSlice::Tcp(t)) => Some(t.destination_port()),
            Some(TransportSlice::Udp(u)) => Some(u.destination_port()),
            _ => None,
        }
    }

    /// The bytes after the innermost header parsed: the TCP/UDP/ICMP/IGMP payload;
    /// failing that the IP payload (another protocol, or a fragment); failing that the
    /// Ethernet payload after VLAN tags (an unknown EtherType); empty for ARP. Lengths
    /// come from the headers, so Ethernet padding is never part of it.
    pub fn payload(&self) -> &'a [u8] {
        if let Some(t) = &self.sliced.transport {
            return match t {
                TransportSlice::Tcp(t) => t.payload(),
                TransportSlice::Udp(u) => u.payload(),
                TransportSlice::Icmpv4(i) => i.payload(),
                TransportSlice::Icmpv6(i) => i.payload(),
                TransportSlice::Igmp(i) => i.payload(),
            };
        }
        match &self.sliced.net {
            Some(NetSlice::Ipv4(ip)) => ip.payload().payload,
            Some(NetSlice::Ipv6(ip)) => ip.payload().payload,
            Some(NetSlice::Arp(_)) => &[],
            None => self.sliced.ether_payload().map_or(&[], |p| p.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{l3_offset, l4_offset};
    use crate::test_util::Build;
    use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder};
    use proptest::prelude::*;

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn offset_in(frame: &[u8], part: &[u8]) -> usize {
        part.as_ptr() as usize - frame.as_ptr() as usize
    }

    #[test]
    fn udp_over_ipv4() {
        let f = PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 1, 0, 1], 64)
            .udp(1234, 80)
            .build(b"data")
            .unwrap();
        let h = Headers::parse(&f).unwrap();
        assert_eq!((h.src_mac(), h.dst_mac(), h.ether_type()), (SRC, DST, 0x0800));
        assert_eq!(h.ethernet().source(), SRC);
        assert_eq!(h.src_ip(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(h.dst_ip(), Some("10.1.0.1".parse().unwrap()));
        assert_eq!(
            (h.ip_proto(), h.src_port(), h.dst_port()),
            (Some(17), Some(1234), Some(80))
        );
        assert_eq!(h.payload(), b"data");
        assert!(h.ipv4().is_some() && h.udp().is_some());
        assert!(h.ipv6().is_none() && h.tcp().is_none() && h.arp().is_none() && h.vlan().is_none());
        assert!(h.icmpv4().is_none() && h.icmpv6().is_none());
        assert_eq!(h.frame(), &f[..]);
        assert!(h.sliced().net.is_some());
    }

    #[test]
    fn tcp_over_ipv6_in_a_vlan_with_padding() {
        let mut f = PacketBuilder::ethernet2(SRC, DST)
            .single_vlan(300.try_into().unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(443, 5000, 77, 1000)
            .syn()
            .build(b"")
            .unwrap();
        let h = Headers::parse(&f).unwrap();
        assert_eq!((h.vlan_id(), h.ether_type()), (Some(300), 0x86dd));
        assert_eq!(h.vlan().unwrap().vlan_identifier().value(), 300);
        assert_eq!(h.src_ip(), Some(IpAddr::V6([1; 16].into())));
        assert_eq!(h.dst_ip(), Some(IpAddr::V6([2; 16].into())));
        let tcp = h.tcp().unwrap();
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!(
            (tcp.sequence_number(), h.ip_proto(), h.src_port()),
            (77, Some(6), Some(443))
        );
        assert_eq!(h.payload(), b"");
        drop(h);
        f.extend_from_slice(&[0xee; 10]);
        assert_eq!(Headers::parse(&f).unwrap().payload(), b"", "padding is not payload");
    }

    #[test]
    fn icmp_arp_and_others() {
        let f = PacketBuilder::ethernet2(SRC, DST)
            .ipv4([1; 4], [2; 4], 1)
            .icmpv4_echo_request(7, 8)
            .build(b"ping")
            .unwrap();
        let h = Headers::parse(&f).unwrap();
        assert_eq!(
            (h.icmpv4().unwrap().type_u8(), h.payload(), h.src_port()),
            (8, &b"ping"[..], None)
        );
        let f = PacketBuilder::ethernet2(SRC, DST)
            .ipv6([1; 16], [2; 16], 1)
            .icmpv6_echo_reply(7, 8)
            .build(b"pong")
            .unwrap();
        let h = Headers::parse(&f).unwrap();
        assert_eq!(
            (h.icmpv6().unwrap().type_u8(), h.payload(), h.ip_proto()),
            (129, &b"pong"[..], Some(58))
        );

        let arp = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            ArpOperation::REQUEST,
            &SRC,
            &[10, 0, 0, 1],
            &[0; 6],
            &[10, 0, 0, 2],
        )
        .unwrap();
        let mut f = etherparse::Ethernet2Header {
            source: SRC,
            destination: [0xff; 6],
            ether_type: EtherType::ARP,
        }
        .to_bytes()
        .to_vec();
        f.extend_from_slice(&arp.to_bytes());
        f.resize(60, 0);
        let h = Headers::parse(&f).unwrap();
        assert_eq!(h.arp().unwrap().target_protocol_addr(), &[10, 0, 0, 2]);
        assert_eq!((h.src_ip(), h.ip_proto(), h.payload()), (None, None, &[][..]));

        let mut other = vec![0u8; 12];
        other.extend_from_slice(&[0x88, 0xb5, 1, 2, 3]);
        let h = Headers::parse(&other).unwrap();
        assert_eq!((h.ether_type(), h.payload()), (0x88b5, &[1, 2, 3][..]));
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(Headers::parse(&[0; 10]), Err(Error::TooShortForEthernet { len: 10 }));
        let f = PacketBuilder::ethernet2(SRC, DST)
            .ipv4([1; 4], [2; 4], 1)
            .udp(1, 2)
            .build(b"abcdef")
            .unwrap();
        for cut in [15, 33, 34, 40, f.len() - 1] {
            let e = Headers::parse(&f[..cut]).unwrap_err();
            assert!(matches!(e, Error::Parse(_)), "cut {cut}: {e}");
            assert!(e.to_string().starts_with("cannot parse frame: "), "{e}");
        }
        let mut bad = f.clone();
        bad[14] = 0x43; // IHL 3
        assert!(Headers::parse(&bad).is_err());
    }

    #[test]
    fn fragments_have_no_transport() {
        let mut f = PacketBuilder::ethernet2(SRC, DST)
            .ipv4([1; 4], [2; 4], 1)
            .udp(1, 2)
            .build(b"abcdef")
            .unwrap();
        f[20] = 0x20; // more fragments
        let h = Headers::parse(&f).unwrap();
        assert!(h.udp().is_none());
        assert_eq!((h.ip_proto(), h.payload().len()), (Some(17), 14));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(h) = Headers::parse(&frame) {
                let _ = (h.vlan_id(), h.src_ip(), h.dst_ip(), h.ip_proto(), h.src_port(), h.dst_port(), h.payload());
            }
        }

        #[test]
        fn random_ip_bytes_never_panic(
            ether_type in prop_oneof![Just([8u8, 0]), Just([0x86, 0xdd]), Just([0x81, 0])],
            first in prop_oneof![Just(0x45u8), Just(0x60), any::<u8>()],
            rest in proptest::collection::vec(any::<u8>(), 0..120),
        ) {
            let frame = [&[0u8; 12][..], &ether_type, &[first], &rest].concat();
            if let Ok(h) = Headers::parse(&frame) {
                let _ = (h.vlan_id(), h.src_ip(), h.ip_proto(), h.src_port(), h.payload());
            }
        }

        #[test]
        fn layout_agrees_with_etherparse(
            vlan in proptest::option::of(0u16..4096),
            v6 in any::<bool>(),
            tcp in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let b = PacketBuilder::ethernet2(SRC, DST);
            let mut f = Vec::new();
            macro_rules! finish { ($ip:expr) => {
                if tcp { $ip.tcp(1, 2, 3, 4).write(&mut f, &payload).unwrap() }
                else { $ip.udp(1, 2).write(&mut f, &payload).unwrap() }
            } }
            match (vlan, v6) {
                (Some(id), false) => finish!(b.single_vlan(id.try_into().unwrap()).ipv4([1; 4], [2; 4], 9)),
                (Some(id), true) => finish!(b.single_vlan(id.try_into().unwrap()).ipv6([1; 16], [2; 16], 9)),
                (None, false) => finish!(b.ipv4([1; 4], [2; 4], 9)),
                (None, true) => finish!(b.ipv6([1; 16], [2; 16], 9)),
            }
            let h = Headers::parse(&f).unwrap();
            let l3 = match (h.ipv4(), h.ipv6()) {
                (Some(ip), _) => offset_in(&f, ip.header().slice()),
                (_, Some(ip)) => offset_in(&f, ip.header().slice()),
                _ => unreachable!(),
            };
            let l4 = match (h.tcp(), h.udp()) {
                (Some(t), _) => offset_in(&f, t.header_slice()),
                (_, Some(u)) => offset_in(&f, u.header_slice()),
                _ => unreachable!(),
            };
            prop_assert_eq!(l3_offset(&f), Some(l3));
            prop_assert_eq!(l4_offset(&f), Some(l4));
            prop_assert_eq!(h.vlan_id(), vlan);
            prop_assert_eq!(h.payload(), &payload[..]);
        }
    }
}
