//! Building UDP and TCP frames into caller-provided buffers.
//!
//! The traffic generator, tests and NFs that answer packets (ARP/ICMP responders,
//! reflectors) need well-formed frames with correct checksums, written straight into a
//! packet buffer of the shared region. [`UdpSpec`] and [`TcpSpec`] describe one frame
//! (MACs, optional VLAN tag, IPv4 or IPv6 addresses, ports, payload) and write it into a
//! `&mut [u8]`, returning its length, or into a new `Vec<u8>`.
//!
//! # Frame length
//!
//! Lengths here never include the 4-byte FCS, which the NIC appends. A spec's
//! `frame_len`, when set, is the exact number of bytes written: the payload is followed
//! by zero bytes (part of the L4 payload, counted in the IP and UDP lengths and covered
//! by the checksums) up to it. Frame sizes quoted the usual way, FCS included — the
//! generator's `gen:64B` — convert with [`frame_len_for_wire_size`]: a "64B" frame is
//! 60 bytes here. Frames shorter than [`crate::MIN_FRAME_LEN`] are not padded: inside
//! onvm-rs they are fine, and NICs pad on transmit.
//!
//! # Flows
//!
//! [`FlowTuple::for_index`] maps a flow index to a distinct UDP 5-tuple,
//! deterministically, and [`build_udp_for_flow`] writes that flow's frame: the
//! generator cycles through indices to produce `N` flows.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::{BitOr, BitOrAssign};

use crate::layout::{
    ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, IP_PROTO_TCP, IP_PROTO_UDP, IPV4_HEADER_LEN, IPV6_HEADER_LEN, TCP_HEADER_LEN,
    UDP_HEADER_LEN,
};
use crate::{ETHERNET_HEADER_LEN, Error, FCS_LEN, MacAddr, Result, VLAN_TAG_LEN, fix_checksums};

/// Source MAC the specs start with: locally administered, unicast.
pub const DEFAULT_SRC_MAC: MacAddr = [0x02, 0, 0, 0, 0, 0x01];
/// Destination MAC the specs start with: locally administered, unicast.
pub const DEFAULT_DST_MAC: MacAddr = [0x02, 0, 0, 0, 0, 0x02];
/// TTL / hop limit the specs start with.
pub const DEFAULT_TTL: u8 = 64;

/// Converts a frame size quoted with FCS (the usual "64B") to the number of bytes a
/// frame here holds: 4 fewer.
pub const fn frame_len_for_wire_size(wire_size: usize) -> usize {
    wire_size.saturating_sub(FCS_LEN)
}

/// The link and IP part shared by [`UdpSpec`] and [`TcpSpec`].
#[derive(Debug, Clone, Copy)]
struct Ip<'p> {
    src_mac: MacAddr,
    dst_mac: MacAddr,
    vlan_tci: Option<u16>,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    ttl: u8,
    payload: &'p [u8],
    frame_len: Option<usize>,
}

impl Ip<'_> {
    /// Header lengths up to L4: `(l3 offset, l4 offset)`.
    fn offsets(&self) -> (usize, usize) {
        let l3 = ETHERNET_HEADER_LEN + if self.vlan_tci.is_some() { VLAN_TAG_LEN } else { 0 };
        let ip = if self.src_ip.is_ipv4() {
            IPV4_HEADER_LEN
        } else {
            IPV6_HEADER_LEN
        };
        (l3, l3 + ip)
    }

    /// Total frame length with an L4 header of `l4_header` bytes, checked.
    fn total_len(&self, l4_header: usize) -> Result<usize> {
        if self.src_ip.is_ipv4() != self.dst_ip.is_ipv4() {
            return Err(Error::MixedIpVersions);
        }
        let (l3, l4) = self.offsets();
        let need = l4 + l4_header + self.payload.len();
        let total = match self.frame_len {
            Some(frame_len) if frame_len < need => return Err(Error::FrameLenTooSmall { frame_len, need }),
            Some(frame_len) => frame_len,
            None => need,
        };
        let (header, len) = if self.src_ip.is_ipv4() {
            ("IPv4", total - l3)
        } else {
            ("IPv6 payload", total - l4)
        };
        if len > usize::from(u16::MAX) {
            return Err(Error::TooLong {
                header,
                len,
                max: usize::from(u16::MAX),
            });
        }
        Ok(total)
    }

    /// Writes the frame with `l4_header` (checksum zero) and fixes the checksums.
    fn write(&self, proto: u8, l4_header: &[u8], out: &mut [u8]) -> Result<usize> {
        let total = self.total_len(l4_header.len())?;
        let have = out.len();
        let f = out
            .get_mut(..total)
            .ok_or(Error::BufferTooSmall { need: total, have })?;
        let (l3, l4) = self.offsets();
        f[..6].copy_from_slice(&self.dst_mac);
        f[6..12].copy_from_slice(&self.src_mac);
        let ether_type = if self.src_ip.is_ipv4() {
            ETHER_TYPE_IPV4
        } else {
            ETHER_TYPE_IPV6
        };
        if let Some(tci) = self.vlan_tci {
            f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
            f[14..16].copy_from_slice(&tci.to_be_bytes());
        }
        f[l3 - 2..l3].copy_from_slice(&ether_type.to_be_bytes());
        // `total_len` checked that these lengths fit 16 bits.
        match (self.src_ip, self.dst_ip) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let h = &mut f[l3..l4];
                h[0] = 0x45; // version 4, IHL 5
                h[1] = 0; // DSCP, ECN
                h[2..4].copy_from_slice(&((total - l3) as u16).to_be_bytes());
                h[4..6].fill(0); // identification
                h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // don't fragment
                h[8] = self.ttl;
                h[9] = proto;
                h[10..12].fill(0); // checksum, fixed below
                h[12..16].copy_from_slice(&src.octets());
                h[16..20].copy_from_slice(&dst.octets());
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let h = &mut f[l3..l4];
                h[..4].copy_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class and flow label 0
                h[4..6].copy_from_slice(&((total - l4) as u16).to_be_bytes());
                h[6] = proto;
                h[7] = self.ttl;
                h[8..24].copy_from_slice(&src.octets());
                h[24..40].copy_from_slice(&dst.octets());
            }
            _ => return Err(Error::MixedIpVersions),
        }
        let data = l4 + l4_header.len();
        f[l4..data].copy_from_slice(l4_header);
        if proto == IP_PROTO_UDP {
            f[l4 + 4..l4 + 6].copy_from_slice(&((total - l4) as u16).to_be_bytes());
        }
        f[data..data + self.payload.len()].copy_from_slice(self.payload);
        f[data + self.payload.len()..].fill(0);
        fix_checksums(f)?;
        Ok(total)
    }
}

/// A UDP frame to build. Start from [`UdpSpec::new`] and set the public fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpSpec<'p> {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Tag control information (priority, DEI, VLAN ID) of an 802.1Q tag, if one is wanted;
    /// for priority 0 it is just the VLAN ID.
    pub vlan_tci: Option<u16>,
    /// Source address; IPv4 or IPv6, the same as `dst_ip`.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes.
    pub payload: &'p [u8],
    /// Exact frame length (no FCS) to write, the payload extended with zeros to reach it;
    /// `None` for no more than the payload.
    pub frame_len: Option<usize>,
}

impl<'p> UdpSpec<'p> {
    /// A spec with the default MACs and TTL, no VLAN tag, an empty payload and no
    /// target frame length.
    pub fn new(src_ip: impl Into<IpAddr>, dst_ip: impl Into<IpAddr>, src_port: u16, dst_port: u16) -> Self {
        UdpSpec {
            src_mac: DEFAULT_SRC_MAC,
            dst_mac: DEFAULT_DST_MAC,
            vlan_tci: None,
            src_ip: src_ip.into(),
            dst_ip: dst_ip.into(),
            ttl: DEFAULT_TTL,
            src_port,
            dst_port,
            payload: &[],
            frame_len: None,
        }
    }

    fn ip(&self) -> Ip<'p> {
        Ip {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan_tci: self.vlan_tci,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            ttl: self.ttl,
            payload: self.payload,
            frame_len: self.frame_len,
        }
    }

    /// Length of the frame [`UdpSpec::write`] writes, or why it cannot be built.
    pub fn total_len(&self) -> Result<usize> {
        self.ip().total_len(UDP_HEADER_LEN)
    }

    /// Writes the frame at the start of `out` and returns its length. Checksums are correct.
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let mut h = [0u8; UDP_HEADER_LEN];
        h[..2].copy_from_slice(&self.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        self.ip().write(IP_PROTO_UDP, &h, out)
    }

    /// The frame in a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0; self.total_len()?];
        self.write(&mut v)?;
        Ok(v)
    }
}

/// TCP header flags; combine with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN: no more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN: synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST: reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH: push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK: the acknowledgment number is valid.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG: the urgent pointer is valid.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE: ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR: congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// Whether all flags of `other` are set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// A TCP segment (20-byte header, no options) to build. Start from [`TcpSpec::new`] and
/// set the public fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpSpec<'p> {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// Tag control information of an 802.1Q tag, if one is wanted (see [`UdpSpec::vlan_tci`]).
    pub vlan_tci: Option<u16>,
    /// Source address; IPv4 or IPv6, the same as `dst_ip`.
    pub src_ip: IpAddr,
    /// Destination address.
    pub dst_ip: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number, written as given (it means something only with [`TcpFlags::ACK`]).
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Payload bytes.
    pub payload: &'p [u8],
    /// Exact frame length (no FCS), the payload extended with zeros to reach it (see [`UdpSpec::frame_len`]).
    pub frame_len: Option<usize>,
}

impl<'p> TcpSpec<'p> {
    /// A spec with the default MACs and TTL, no VLAN tag, sequence and acknowledgment
    /// numbers 0, no flags, a window of 65535, an empty payload and no target frame length.
    pub fn new(src_ip: impl Into<IpAddr>, dst_ip: impl Into<IpAddr>, src_port: u16, dst_port: u16) -> Self {
        TcpSpec {
            src_mac: DEFAULT_SRC_MAC,
            dst_mac: DEFAULT_DST_MAC,
            vlan_tci: None,
            src_ip: src_ip.into(),
            dst_ip: dst_ip.into(),
            ttl: DEFAULT_TTL,
            src_port,
            dst_port,
            seq: 0,
            ack: 0,
            flags: TcpFlags::NONE,
            window: u16::MAX,
            payload: &[],
            frame_len: None,
        }
    }

    fn ip(&self) -> Ip<'p> {
        Ip {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            vlan_tci: self.vlan_tci,
            src_ip: self.src_ip,
            dst_ip: self.dst_ip,
            ttl: self.ttl,
            payload: self.payload,
            frame_len: self.frame_len,
        }
    }

    /// Length of the frame [`TcpSpec::write`] writes, or why it cannot be built.
    pub fn total_len(&self) -> Result<usize> {
        self.ip().total_len(TCP_HEADER_LEN)
    }

    /// Writes the frame at the start of `out` and returns its length. Checksums are correct.
    pub fn write(&self, out: &mut [u8]) -> Result<usize> {
        let mut h = [0u8; TCP_HEADER_LEN];
        h[..2].copy_from_slice(&self.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        h[4..8].copy_from_slice(&self.seq.to_be_bytes());
        h[8..12].copy_from_slice(&self.ack.to_be_bytes());
        h[12] = 5 << 4; // data offset: 5 words, no options
        h[13] = self.flags.0;
        h[14..16].copy_from_slice(&self.window.to_be_bytes());
        self.ip().write(IP_PROTO_TCP, &h, out)
    }

    /// The frame in a new vector.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut v = vec![0; self.total_len()?];
        self.write(&mut v)?;
        Ok(v)
    }
}

/// The UDP 5-tuple of one generated flow.
///
/// The mapping from index is fixed so that runs are reproducible and a receiver can tell
/// flows apart: the low 16 bits of the index are the last two bytes of the source
/// address `10.0.x.y`, the high 16 bits are added (wrapping) to destination port 5000,
/// and the source port `1024 + (index % 1024)` varies with the low bits too so that
/// port-only hashes also spread small flow counts. The destination is always `10.1.0.1`.
/// Every `u32` index gets a different tuple ([`FlowTuple::index`] inverts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowTuple {
    /// `10.0.x.y`.
    pub src_ip: Ipv4Addr,
    /// Always [`FlowTuple::DST_IP`].
    pub dst_ip: Ipv4Addr,
    /// `1024 + index % 1024`.
    pub src_port: u16,
    /// `5000 + index / 65536`, wrapping.
    pub dst_port: u16,
}

impl FlowTuple {
    /// Destination address of every generated flow.
    pub const DST_IP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    /// Destination port of flows 0 to 65535.
    pub const BASE_DST_PORT: u16 = 5000;
    /// Lowest source port.
    pub const BASE_SRC_PORT: u16 = 1024;

    /// The tuple of flow `index`.
    pub const fn for_index(index: u32) -> FlowTuple {
        let [hi1, hi0, lo1, lo0] = index.to_be_bytes();
        FlowTuple {
            src_ip: Ipv4Addr::new(10, 0, lo1, lo0),
            dst_ip: FlowTuple::DST_IP,
            src_port: FlowTuple::BASE_SRC_PORT + (index % 1024) as u16,
            dst_port: FlowTuple::BASE_DST_PORT.wrapping_add(u16::from_be_bytes([hi1, hi0])),
        }
    }

    /// The index whose tuple this is, if it is one of [`FlowTuple::for_index`]'s.
    pub fn index(&self) -> Option<u32> {
        let [a, b, lo1, lo0] = self.src_ip.octets();
        let hi = self.dst_port.wrapping_sub(FlowTuple::BASE_DST_PORT);
        let index = u32::from_be_bytes([(hi >> 8) as u8, hi as u8, lo1, lo0]);
        ((a, b) == (10, 0) && FlowTuple::for_index(index) == *self).then_some(index)
    }

    /// A UDP spec for this flow with the default MACs and TTL, an empty payload and no
    /// target length: set `frame_len`, MACs etc. before writing.
    pub fn udp_spec(&self) -> UdpSpec<'static> {
        UdpSpec::new(self.src_ip, self.dst_ip, self.src_port, self.dst_port)
    }
}

/// Writes the UDP/IPv4 frame of flow `flow_index` ([`FlowTuple::for_index`]), exactly
/// `frame_len` bytes long (no FCS: 60 for a "64B" frame) with a zero payload, default
/// MACs and TTL, and correct checksums; returns `frame_len`.
///
/// Errors if `frame_len` is below the 42 bytes of headers or above what the IPv4 length
/// field can describe, or if `out` is shorter than `frame_len`.
pub fn build_udp_for_flow(flow_index: u32, frame_len: usize, out: &mut [u8]) -> Result<usize> {
    UdpSpec {
        frame_len: Some(frame_len),
        ..FlowTuple::for_index(flow_index).udp_spec()
    }
    .write(out)
}

/// [`build_udp_for_flow`] into a new vector.
pub fn build_udp_for_flow_vec(flow_index: u32, frame_len: usize) -> Result<Vec<u8>> {
    UdpSpec {
        frame_len: Some(frame_len),
        ..FlowTuple::for_index(flow_index).udp_spec()
    }
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Build;
    use crate::{Headers, MIN_FRAME_LEN, verify_checksums};
    use etherparse::{PacketBuilder, TcpHeader};
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::net::Ipv6Addr;

    fn etherparse_udp(s: &UdpSpec<'_>) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(s.src_mac, s.dst_mac);
        let payload = s.payload;
        match (s.vlan_tci, s.src_ip, s.dst_ip) {
            (None, IpAddr::V4(a), IpAddr::V4(b)) => eth
                .ipv4(a.octets(), b.octets(), s.ttl)
                .udp(s.src_port, s.dst_port)
                .build(payload),
            (None, IpAddr::V6(a), IpAddr::V6(b)) => eth
                .ipv6(a.octets(), b.octets(), s.ttl)
                .udp(s.src_port, s.dst_port)
                .build(payload),
            (Some(t), IpAddr::V4(a), IpAddr::V4(b)) => eth
                .single_vlan((t & 0xfff).try_into().unwrap())
                .ipv4(a.octets(), b.octets(), s.ttl)
                .udp(s.src_port, s.dst_port)
                .build(payload),
            (Some(t), IpAddr::V6(a), IpAddr::V6(b)) => eth
                .single_vlan((t & 0xfff).try_into().unwrap())
                .ipv6(a.octets(), b.octets(), s.ttl)
                .udp(s.src_port, s.dst_port)
                .build(payload),
            _ => unreachable!(),
        }
        .unwrap()
    }

    fn etherparse_tcp(s: &TcpSpec<'_>) -> Vec<u8> {
        let mut t = TcpHeader::new(s.src_port, s.dst_port, s.seq, s.window);
        t.acknowledgment_number = s.ack;
        let f = s.flags;
        (t.fin, t.syn, t.rst, t.psh) = (
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::RST),
            f.contains(TcpFlags::PSH),
        );
        (t.ack, t.urg, t.ece, t.cwr) = (
            f.contains(TcpFlags::ACK),
            f.contains(TcpFlags::URG),
            f.contains(TcpFlags::ECE),
            f.contains(TcpFlags::CWR),
        );
        let eth = PacketBuilder::ethernet2(s.src_mac, s.dst_mac);
        match (s.src_ip, s.dst_ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => eth.ipv4(a.octets(), b.octets(), s.ttl).tcp_header(t).build(s.payload),
            (IpAddr::V6(a), IpAddr::V6(b)) => eth.ipv6(a.octets(), b.octets(), s.ttl).tcp_header(t).build(s.payload),
            _ => unreachable!(),
        }
        .unwrap()
    }

    fn ip_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
            (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| (IpAddr::from(a), IpAddr::from(b))),
        ]
    }

    #[test]
    fn udp_matches_etherparse() {
        let spec = UdpSpec {
            payload: b"hello",
            ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80)
        };
        let v = spec.to_vec().unwrap();
        assert_eq!(v, etherparse_udp(&spec));
        assert_eq!(v.len(), 14 + 20 + 8 + 5);
        assert_eq!(spec.total_len(), Ok(v.len()));
        let mut buf = [0xaa; 100];
        assert_eq!(spec.write(&mut buf), Ok(v.len()));
        assert_eq!(&buf[..v.len()], &v[..]);
        assert!(
            buf[v.len()..].iter().all(|&b| b == 0xaa),
            "nothing written past the frame"
        );
    }

    #[test]
    fn tcp_with_flags_seq_ack() {
        let spec = TcpSpec {
            seq: 0xdead_beef,
            ack: 42,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window: 1000,
            payload: b"x",
            ..TcpSpec::new(Ipv6Addr::LOCALHOST, Ipv6Addr::from([0xfe; 16]), 443, 50000)
        };
        let v = spec.to_vec().unwrap();
        assert_eq!(v, etherparse_tcp(&spec));
        let h = Headers::parse(&v).unwrap();
        let t = h.tcp().unwrap();
        assert!(t.syn() && t.ack() && !t.fin() && !t.rst() && !t.psh());
        assert_eq!(
            (t.sequence_number(), t.acknowledgment_number(), t.window_size()),
            (0xdead_beef, 42, 1000)
        );
        let mut flags = TcpFlags::FIN;
        flags |= TcpFlags::PSH;
        assert!(flags.contains(TcpFlags::FIN) && flags.contains(TcpFlags::PSH) && !flags.contains(TcpFlags::ACK));
    }

    #[test]
    fn vlan_tag() {
        let spec = UdpSpec {
            vlan_tci: Some(0x2000 | 300),
            ..UdpSpec::new([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)
        };
        let v = spec.to_vec().unwrap();
        let h = Headers::parse(&v).unwrap();
        assert_eq!(h.vlan_id(), Some(300));
        assert_eq!(h.vlan().unwrap().priority_code_point().value(), 1);
        assert_eq!(verify_checksums(&v), Ok(true));
    }

    #[test]
    fn padding_to_a_frame_length() {
        for (src, dst) in [
            (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2])),
            (IpAddr::from([1u8; 16]), IpAddr::from([2u8; 16])),
        ] {
            let spec = UdpSpec {
                payload: b"abc",
                frame_len: Some(frame_len_for_wire_size(128)),
                ..UdpSpec::new(src, dst, 7, 9)
            };
            let v = spec.to_vec().unwrap();
            assert_eq!(v.len(), 124);
            assert_eq!(verify_checksums(&v), Ok(true));
            let h = Headers::parse(&v).unwrap();
            let l4 = if src.is_ipv4() { 34 } else { 54 };
            assert_eq!(h.payload().len(), 124 - l4 - 8);
            assert!(h.payload().starts_with(b"abc") && h.payload()[3..].iter().all(|&b| b == 0));
            // Same bytes as building with the zero-extended payload.
            let payload = h.payload().to_vec();
            assert_eq!(
                v,
                etherparse_udp(&UdpSpec {
                    payload: &payload,
                    frame_len: None,
                    ..spec
                })
            );
        }
        let tcp = TcpSpec {
            frame_len: Some(MIN_FRAME_LEN),
            ..TcpSpec::new([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)
        };
        let v = tcp.to_vec().unwrap();
        assert_eq!(
            (v.len(), Headers::parse(&v).unwrap().payload(), verify_checksums(&v)),
            (60, &[0u8; 6][..], Ok(true))
        );
    }

    #[test]
    fn errors() {
        let spec = UdpSpec::new([1, 1, 1, 1], Ipv6Addr::LOCALHOST, 1, 2);
        assert_eq!(spec.to_vec(), Err(Error::MixedIpVersions));
        assert_eq!(spec.write(&mut [0; 100]), Err(Error::MixedIpVersions));
        let spec = UdpSpec {
            payload: b"12345",
            ..UdpSpec::new([1, 1, 1, 1], [2, 2, 2, 2], 1, 2)
        };
        assert_eq!(
            spec.write(&mut [0; 46]),
            Err(Error::BufferTooSmall { need: 47, have: 46 })
        );
        let short = UdpSpec {
            frame_len: Some(46),
            ..spec
        };
        assert_eq!(
            short.to_vec(),
            Err(Error::FrameLenTooSmall {
                frame_len: 46,
                need: 47
            })
        );
        let huge = UdpSpec {
            frame_len: Some(70_000),
            ..spec
        };
        assert_eq!(
            huge.total_len(),
            Err(Error::TooLong {
                header: "IPv4",
                len: 70_000 - 14,
                max: 65535
            })
        );
        let max = UdpSpec {
            frame_len: Some(14 + 65535),
            ..spec
        };
        assert_eq!(verify_checksums(&max.to_vec().unwrap()), Ok(true));
        let v6 = UdpSpec {
            frame_len: Some(14 + 40 + 65536),
            ..UdpSpec::new([1u8; 16], [2u8; 16], 1, 2)
        };
        assert!(matches!(
            v6.to_vec(),
            Err(Error::TooLong {
                header: "IPv6 payload",
                ..
            })
        ));
        let tcp = TcpSpec::new([1, 1, 1, 1], [2, 2, 2, 2], 1, 2);
        assert_eq!(
            tcp.write(&mut [0; 10]),
            Err(Error::BufferTooSmall { need: 54, have: 10 })
        );
    }

    #[test]
    fn flows_are_distinct_and_deterministic() {
        let mut seen = HashSet::new();
        for i in (0..200_000).chain([u32::MAX - 1, u32::MAX]) {
            let t = FlowTuple::for_index(i);
            assert!(seen.insert(t), "flow {i} repeats a tuple");
            assert_eq!(t.index(), Some(i));
        }
        assert_eq!(
            FlowTuple::for_index(0x0001_0203),
            FlowTuple {
                src_ip: Ipv4Addr::new(10, 0, 2, 3),
                dst_ip: Ipv4Addr::new(10, 1, 0, 1),
                src_port: 1024 + 0x203,
                dst_port: 5001
            }
        );
        let mut other = FlowTuple::for_index(5);
        other.src_port += 1;
        assert_eq!(other.index(), None);
    }

    #[test]
    fn build_for_flow() {
        let mut buf = [0u8; 2048];
        let len = build_udp_for_flow(70_000, frame_len_for_wire_size(64), &mut buf).unwrap();
        assert_eq!(len, 60);
        let f = buf[..len].to_vec();
        let f = &f[..];
        assert_eq!(verify_checksums(f), Ok(true));
        let h = Headers::parse(f).unwrap();
        let t = FlowTuple::for_index(70_000);
        assert_eq!(h.src_ip(), Some(IpAddr::V4(t.src_ip)));
        assert_eq!(h.dst_ip(), Some(IpAddr::V4(t.dst_ip)));
        assert_eq!((h.src_port(), h.dst_port()), (Some(t.src_port), Some(t.dst_port)));
        assert_eq!(build_udp_for_flow_vec(70_000, 60).unwrap(), f);
        assert_eq!(
            build_udp_for_flow(1, 41, &mut buf),
            Err(Error::FrameLenTooSmall {
                frame_len: 41,
                need: 42
            })
        );
        assert_eq!(
            build_udp_for_flow(1, 1514, &mut buf[..100]),
            Err(Error::BufferTooSmall { need: 1514, have: 100 })
        );
        assert_eq!(build_udp_for_flow(1, 1514, &mut buf), Ok(1514));
    }

    proptest! {
        #[test]
        fn udp_matches_etherparse_for_any_fields(
            (src_ip, dst_ip) in ip_pair(),
            ports in any::<(u16, u16)>(),
            ttl in any::<u8>(),
            macs in any::<([u8; 6], [u8; 6])>(),
            vlan in proptest::option::of(0u16..4096),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let spec = UdpSpec {
                src_mac: macs.0, dst_mac: macs.1, vlan_tci: vlan, ttl, payload: &payload,
                ..UdpSpec::new(src_ip, dst_ip, ports.0, ports.1)
            };
            prop_assert_eq!(spec.to_vec().unwrap(), etherparse_udp(&spec));
        }

        #[test]
        fn tcp_matches_etherparse_for_any_fields(
            (src_ip, dst_ip) in ip_pair(),
            ports in any::<(u16, u16)>(),
            seq_ack in any::<(u32, u32)>(),
            flags in any::<u8>(),
            window in any::<u16>(),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let spec = TcpSpec {
                seq: seq_ack.0, ack: seq_ack.1, flags: TcpFlags(flags), window, payload: &payload,
                ..TcpSpec::new(src_ip, dst_ip, ports.0, ports.1)
            };
            prop_assert_eq!(spec.to_vec().unwrap(), etherparse_tcp(&spec));
        }

        #[test]
        fn flow_index_round_trips(index in any::<u32>(), len in 42usize..1515) {
            prop_assert_eq!(FlowTuple::for_index(index).index(), Some(index));
            let f = build_udp_for_flow_vec(index, len).unwrap();
            prop_assert_eq!(f.len(), len);
            prop_assert_eq!(verify_checksums(&f), Ok(true));
        }
    }
}
