//! In-place rewrites of the header fields forwarding NFs change on every packet.
//!
//! These are openNetVM's packet helpers (`onvm_pkt_swap_src_mac_addr` and friends) on a
//! byte slice: a bridge or "forward" NF swaps MACs and sends the frame back out, a
//! reflector also swaps addresses and ports. Each one
//! touches only the bytes it must, finds them through [`Layout`], and keeps every
//! checksum valid — swapping two fields of a one's-complement sum leaves it unchanged —
//! so no [`crate::fix_checksums`] call is needed after them. Setting an address or a
//! port (an OpenFlow SET_FIELD, see [`crate::field`]) patches the IPv4 header and L4
//! checksums incrementally, word by word as Open vSwitch does, so both write the same
//! bytes. TTLs are in [`crate::ttl`].

use std::net::IpAddr;

use crate::checksum::{patch_csum, sctp_crc};
use crate::layout::{
    IP_PROTO_ICMPV6, IP_PROTO_SCTP, IP_PROTO_TCP, IP_PROTO_UDP, IPV6_HEADER_LEN, IpVersion, Layout, SCTP_HEADER_LEN,
    TCP_HEADER_LEN, UDP_HEADER_LEN, be16,
};
use crate::{ETHERNET_HEADER_LEN, Error, MacAddr, Result};

fn ethernet(frame: &mut [u8]) -> Result<&mut [u8]> {
    let len = frame.len();
    frame
        .get_mut(..ETHERNET_HEADER_LEN)
        .ok_or(Error::TooShortForEthernet { len })
}

/// Swaps the source and destination MAC addresses.
pub fn swap_macs(frame: &mut [u8]) -> Result<()> {
    let (dst, rest) = ethernet(frame)?.split_at_mut(6);
    dst.swap_with_slice(&mut rest[..6]);
    Ok(())
}

/// Sends the frame back where it came from, as openNetVM's `onvm_pkt_swap_src_mac_addr`
/// does: the old source MAC becomes the destination and `own_mac` (the MAC of the port
/// it leaves by) the source.
pub fn reflect_macs(frame: &mut [u8], own_mac: MacAddr) -> Result<()> {
    let eth = ethernet(frame)?;
    eth.copy_within(6..12, 0);
    eth[6..12].copy_from_slice(&own_mac);
    Ok(())
}

/// Sets the source MAC address.
pub fn set_src_mac(frame: &mut [u8], mac: MacAddr) -> Result<()> {
    ethernet(frame)?[6..12].copy_from_slice(&mac);
    Ok(())
}

/// Sets the destination MAC address.
pub fn set_dst_mac(frame: &mut [u8], mac: MacAddr) -> Result<()> {
    ethernet(frame)?[..6].copy_from_slice(&mac);
    Ok(())
}

/// Swaps the source and destination IPv4/IPv6 addresses. Checksums stay valid.
pub fn swap_ips(frame: &mut [u8]) -> Result<()> {
    let layout = Layout::of(frame)?;
    let (at, len) = match layout.ip()?.version {
        IpVersion::V4 => (layout.l3 + 12, 4),
        IpVersion::V6 => (layout.l3 + 8, 16),
    };
    let (src, dst) = frame[at..at + 2 * len].split_at_mut(len);
    src.swap_with_slice(dst);
    Ok(())
}

/// Swaps the source and destination TCP/UDP ports. Checksums stay valid.
///
/// Errors with [`Error::NotTcpUdp`] for other protocols and [`Error::NoL4Header`] for
/// a non-first fragment.
pub fn swap_ports(frame: &mut [u8]) -> Result<()> {
    let (l4, _, _) = Layout::of(frame)?.tcp_udp()?;
    let (src, dst) = frame[l4..l4 + 4].split_at_mut(2);
    src.swap_with_slice(dst);
    Ok(())
}

/// Which kind of 16-bit L4 checksum an incremental update patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SumKind {
    /// TCP, ICMPv4, ICMPv6: patched as it is.
    Plain,
    /// UDP: a stored 0 ("no checksum", IPv4 only) stays 0 and a computed 0 is sent as
    /// 0xffff (OVS `packet_set_udp_port`, `packet_set_ipv4_addr`).
    Udp,
}

/// Patches the L4 checksum at `at` (in bounds) for `old` → `new` (see [`SumKind`]).
pub(crate) fn patch_l4(frame: &mut [u8], at: usize, kind: SumKind, old: &[u8], new: &[u8]) {
    if kind == SumKind::Udp && be16(frame, at) == 0 {
        return;
    }
    patch_csum(frame, at, old, new);
    if kind == SumKind::Udp && be16(frame, at) == 0 {
        frame[at..at + 2].copy_from_slice(&[0xff, 0xff]);
    }
}

/// The L4 checksum whose pseudo-header holds the IP addresses — TCP, UDP, or ICMPv6 over
/// IPv6 — when the IP packet holds that header's fixed part, as OVS's
/// `packet_set_ipv4_addr` and `packet_update_csum128` (lib/packets.c) choose it. ICMPv4
/// and SCTP checksums do not cover the addresses.
fn pseudo_sum(layout: &Layout) -> Option<(usize, SumKind)> {
    let ip = layout.ip?;
    let l4 = ip.l4?;
    let size = ip.end.checked_sub(l4)?;
    match ip.proto {
        IP_PROTO_TCP if size >= TCP_HEADER_LEN => Some((l4 + 16, SumKind::Plain)),
        IP_PROTO_UDP if size >= UDP_HEADER_LEN => Some((l4 + 6, SumKind::Udp)),
        IP_PROTO_ICMPV6 if ip.version == IpVersion::V6 && size >= 4 => Some((l4 + 2, SumKind::Plain)),
        _ => None,
    }
}

/// Whether the IPv6 packet at `l3` has a routing header with segments left: its L4
/// pseudo-header then holds the final destination, not the one in the fixed header, so a
/// new destination address must not be patched into the L4 checksum (OVS
/// `packet_rh_present`, used by `packet_set_ipv6`).
fn routing_pending(frame: &[u8], l3: usize, end: usize) -> bool {
    let (Some(&first), mut at) = (frame.get(l3 + 6), l3 + IPV6_HEADER_LEN) else {
        return false;
    };
    let mut proto = first;
    for _ in 0..32 {
        let (Some(&next), Some(&len)) = (frame.get(at), frame.get(at + 1)) else {
            return false;
        };
        let len = match proto {
            43 if frame.get(at + 3).is_some_and(|&left| left > 0) && at + 8 <= end => return true,
            0 | 43 | 60 => (usize::from(len) + 1) * 8,
            51 => (usize::from(len) + 2) * 4,
            44 => 8,
            _ => return false,
        };
        proto = next;
        at += len;
    }
    false
}

/// Sets the source (`src`) or destination IP address; the IPv4 header checksum and the
/// TCP, UDP or ICMPv6 checksum (whose pseudo-header holds the addresses) stay valid,
/// patched incrementally as OVS's userspace datapath does (`packet_set_ipv4_addr`,
/// `packet_set_ipv6_addr`): a UDP-over-IPv4 checksum of 0 stays 0, and a new IPv6
/// destination is not patched into the L4 checksum while a routing header has segments
/// left.
///
/// Errors with [`Error::IpVersionMismatch`] for an address of the other version.
pub fn set_ip(frame: &mut [u8], src: bool, addr: IpAddr) -> Result<()> {
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    let ip = *layout.ip()?;
    let (at, new, len) = match (ip.version, addr) {
        (IpVersion::V4, IpAddr::V4(a)) => {
            let mut n = [0; 16];
            n[..4].copy_from_slice(&a.octets());
            (l3 + if src { 12 } else { 16 }, n, 4)
        }
        (IpVersion::V6, IpAddr::V6(a)) => (l3 + if src { 8 } else { 24 }, a.octets(), 16),
        (packet, _) => {
            let v = |v6: bool| if v6 { 6 } else { 4 };
            return Err(Error::IpVersionMismatch {
                given: v(addr.is_ipv6()),
                packet: v(packet == IpVersion::V6),
            });
        }
    };
    let new = &new[..len];
    let mut old = [0u8; 16];
    old[..len].copy_from_slice(&frame[at..at + len]);
    let old = &old[..len];
    if old == new {
        return Ok(());
    }
    let skip_l4 = ip.version == IpVersion::V6 && !src && routing_pending(frame, l3, ip.end);
    if let Some((sum_at, kind)) = pseudo_sum(&layout)
        && !skip_l4
    {
        patch_l4(frame, sum_at, kind, old, new);
    }
    if ip.version == IpVersion::V4 {
        patch_csum(frame, l3 + 10, old, new);
    }
    frame[at..at + len].copy_from_slice(new);
    Ok(())
}

/// Sets the source (`src`) or destination TCP, UDP or SCTP port; the checksum stays
/// valid: TCP/UDP patched incrementally (a UDP checksum of 0 stays 0), SCTP's CRC32c
/// recomputed the way OVS's `packet_set_sctp_port` does it — the new CRC is XORed with
/// the difference between the stored and the correct old one, so a wrong checksum stays
/// exactly as wrong.
///
/// Errors with [`Error::NotTcpUdp`] for other protocols, [`Error::NoL4Header`] for a
/// non-first fragment and [`Error::Truncated`] if the fixed L4 header does not fit.
pub fn set_port(frame: &mut [u8], src: bool, port: u16) -> Result<()> {
    let layout = Layout::of(frame)?;
    let ip = *layout.ip()?;
    let new = port.to_be_bytes();
    if ip.proto == IP_PROTO_SCTP {
        let l4 = ip.l4.ok_or(Error::NoL4Header)?;
        if l4 + SCTP_HEADER_LEN > ip.end {
            return Err(Error::Truncated {
                header: "SCTP",
                need: l4 + SCTP_HEADER_LEN,
                have: ip.end,
            });
        }
        let sum_at = l4 + 8;
        let stored = u32::from_le_bytes([frame[sum_at], frame[sum_at + 1], frame[sum_at + 2], frame[sum_at + 3]]);
        let old_correct = sctp_crc(frame, l4, ip.end);
        let at = l4 + if src { 0 } else { 2 };
        frame[at..at + 2].copy_from_slice(&new);
        let new_correct = sctp_crc(frame, l4, ip.end);
        frame[sum_at..sum_at + 4].copy_from_slice(&(stored ^ old_correct ^ new_correct).to_le_bytes());
        return Ok(());
    }
    let (l4, proto, _) = layout.tcp_udp()?;
    let at = l4 + if src { 0 } else { 2 };
    let old = [frame[at], frame[at + 1]];
    if old == new {
        return Ok(());
    }
    let (sum_at, kind) = if proto == IP_PROTO_TCP {
        (l4 + 16, SumKind::Plain)
    } else {
        (l4 + 6, SumKind::Udp)
    };
    patch_l4(frame, sum_at, kind, &old, &new);
    frame[at..at + 2].copy_from_slice(&new);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Build;
    use crate::{Headers, fix_checksums, verify_checksums};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const A: MacAddr = [0xa; 6];
    const B: MacAddr = [0xb; 6];

    fn udp4(ttl: u8) -> Vec<u8> {
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [10, 9, 8, 7], ttl)
            .udp(1000, 2000)
            .build(b"hi")
            .unwrap()
    }

    fn tcp6() -> Vec<u8> {
        PacketBuilder::ethernet2(A, B)
            .ipv6([1; 16], [2; 16], 7)
            .tcp(80, 443, 1, 10)
            .build(b"payload")
            .unwrap()
    }

    #[test]
    fn macs() {
        let mut f = udp4(64);
        swap_macs(&mut f).unwrap();
        assert_eq!((&f[..6], &f[6..12]), (&A[..], &B[..]));
        set_src_mac(&mut f, [1; 6]).unwrap();
        set_dst_mac(&mut f, [2; 6]).unwrap();
        assert_eq!((&f[..6], &f[6..12]), (&[2; 6][..], &[1; 6][..]));
        reflect_macs(&mut f, [9; 6]).unwrap();
        assert_eq!((&f[..6], &f[6..12]), (&[1; 6][..], &[9; 6][..]));
        assert_eq!(verify_checksums(&f), Ok(true));

        let mut short = [0u8; 13];
        assert_eq!(swap_macs(&mut short), Err(Error::TooShortForEthernet { len: 13 }));
        assert_eq!(set_src_mac(&mut short, A), Err(Error::TooShortForEthernet { len: 13 }));
        assert_eq!(set_dst_mac(&mut short, A), Err(Error::TooShortForEthernet { len: 13 }));
        assert_eq!(reflect_macs(&mut short, A), Err(Error::TooShortForEthernet { len: 13 }));
        // Only the Ethernet header is needed.
        let mut bare = [0u8; 14];
        bare[..6].copy_from_slice(&A);
        swap_macs(&mut bare).unwrap();
        assert_eq!(&bare[6..12], &A);
    }

    #[test]
    fn ips_and_ports_keep_checksums_valid() {
        for mut f in [udp4(64), tcp6()] {
            let before = {
                let h = Headers::parse(&f).unwrap();
                (h.src_ip(), h.dst_ip(), h.src_port(), h.dst_port())
            };
            swap_ips(&mut f).unwrap();
            swap_ports(&mut f).unwrap();
            assert_eq!(verify_checksums(&f), Ok(true));
            let h = Headers::parse(&f).unwrap();
            assert_eq!((h.dst_ip(), h.src_ip(), h.dst_port(), h.src_port()), before);
        }
    }

    #[test]
    fn set_addresses_and_ports_keep_checksums_valid() {
        let mut no_sum = udp4(64);
        no_sum[40..42].copy_from_slice(&[0, 0]); // IPv4 UDP without a checksum
        for mut f in [udp4(64), tcp6(), no_sum.clone()] {
            let v6 = Headers::parse(&f).unwrap().ipv6().is_some();
            let (s, d): (IpAddr, IpAddr) = if v6 {
                ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            } else {
                ("192.168.1.1".parse().unwrap(), "172.16.0.9".parse().unwrap())
            };
            set_ip(&mut f, true, s).unwrap();
            set_ip(&mut f, false, d).unwrap();
            set_port(&mut f, true, 5353).unwrap();
            set_port(&mut f, false, 53).unwrap();
            assert_eq!(verify_checksums(&f), Ok(true), "{f:02x?}");
            let h = Headers::parse(&f).unwrap();
            assert_eq!(
                (h.src_ip(), h.dst_ip(), h.src_port(), h.dst_port()),
                (Some(s), Some(d), Some(5353), Some(53))
            );
        }
        // "No checksum" stays none.
        let mut f = no_sum;
        set_port(&mut f, false, 9).unwrap();
        assert_eq!(&f[40..42], &[0, 0]);
        let e = set_ip(&mut udp4(64), true, "::1".parse().unwrap()).unwrap_err();
        assert_eq!(e, Error::IpVersionMismatch { given: 6, packet: 4 });
        assert!(e.to_string().contains("IPv6 address cannot go into an IPv4 packet"));
    }

    proptest! {
        /// Any address and port on any UDP/TCP frame: the checksums a receiver checks hold.
        #[test]
        fn rewrites_never_break_checksums(a in any::<[u8; 4]>(), p in any::<u16>(), src in any::<bool>(), tcp in any::<bool>()) {
            let b = PacketBuilder::ethernet2(A, B).ipv4([10, 0, 0, 1], [10, 9, 8, 7], 64);
            let mut f = if tcp { b.tcp(1, 2, 3, 4).build(b"xyz").unwrap() } else { b.udp(1, 2).build(b"xyz").unwrap() };
            set_ip(&mut f, src, IpAddr::from(a)).unwrap();
            set_port(&mut f, !src, p).unwrap();
            prop_assert_eq!(verify_checksums(&f), Ok(true));
        }
    }

    #[test]
    fn swaps_need_the_right_headers() {
        let arp = [&[0u8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        assert_eq!(swap_ips(&mut arp.clone()), Err(Error::NotIp { ether_type: 0x0806 }));
        assert_eq!(swap_ports(&mut arp.clone()), Err(Error::NotIp { ether_type: 0x0806 }));
        let mut icmp = PacketBuilder::ethernet2(A, B)
            .ipv4([1; 4], [2; 4], 9)
            .icmpv4_echo_request(1, 1)
            .build(&[])
            .unwrap();
        assert_eq!(swap_ports(&mut icmp), Err(Error::NotTcpUdp { ip_proto: 1 }));
        let mut frag = udp4(64);
        frag[21] = 1; // fragment offset 8
        fix_checksums(&mut frag).unwrap();
        assert_eq!(swap_ports(&mut frag), Err(Error::NoL4Header));
        let f = udp4(64);
        let mut cut = f[..40].to_vec();
        assert!(matches!(
            swap_ips(&mut cut),
            Err(Error::Truncated { header: "IPv4", .. })
        ));
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = swap_macs(&mut frame.clone());
            let _ = reflect_macs(&mut frame.clone(), A);
            let _ = swap_ips(&mut frame.clone());
            let _ = swap_ports(&mut frame.clone());
            let _ = set_ip(&mut frame.clone(), true, IpAddr::from([1, 2, 3, 4]));
            let _ = set_ip(&mut frame.clone(), false, IpAddr::from([9; 16]));
            let _ = set_port(&mut frame.clone(), true, 7);
        }
    }
}
