//! In-place rewrites of the header fields forwarding NFs change on every packet.
//!
//! These are openNetVM's packet helpers (`onvm_pkt_swap_src_mac_addr` and friends) on a
//! byte slice: a bridge or "forward" NF swaps MACs and sends the frame back out, a
//! reflector also swaps addresses and ports, a router decrements the TTL. Each one
//! touches only the bytes it must, finds them through [`Layout`], and keeps every
//! checksum valid — swapping two fields of a one's-complement sum leaves it unchanged,
//! and the TTL decrement patches the IPv4 header checksum incrementally (RFC 1624) —
//! so no [`crate::fix_checksums`] call is needed after them. Setting an address or a
//! port (an OpenFlow SET_FIELD) patches the IPv4 header and TCP/UDP checksums the same
//! incremental way.

use std::net::IpAddr;

use crate::layout::{IpVersion, Layout};
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

/// Decrements the IPv4 TTL or IPv6 hop limit and returns the new value; the IPv4 header
/// checksum is updated incrementally. A router drops the packet when this returns 0.
///
/// Errors with [`Error::TtlExpired`] if the value is already 0 (the frame is unchanged).
pub fn decrement_ttl(frame: &mut [u8]) -> Result<u8> {
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    let at = match layout.ip()?.version {
        IpVersion::V4 => l3 + 8,
        IpVersion::V6 => l3 + 7,
    };
    let ttl = frame[at].checked_sub(1).ok_or(Error::TtlExpired)?;
    frame[at] = ttl;
    if layout.ip()?.version == IpVersion::V4 {
        // RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the 16-bit word holding TTL and protocol.
        // The TTL is its high byte, so m' = m - 0x0100 and ~m + m' = 0xfeff (one's complement).
        let old = u16::from_be_bytes([frame[l3 + 10], frame[l3 + 11]]);
        let mut sum = u32::from(!old) + 0xfeff;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        frame[l3 + 10..l3 + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    Ok(ttl)
}

/// RFC 1624 eqn. 3 on the checksum at `sum_at` after the 16-bit words `old` became `new`.
/// A UDP checksum of 0 (IPv4: "none") stays 0, and a computed 0 is sent as 0xffff.
fn patch_checksum(frame: &mut [u8], sum_at: usize, old: &[u8], new: &[u8], udp: bool) {
    let hc = u16::from_be_bytes([frame[sum_at], frame[sum_at + 1]]);
    if udp && hc == 0 {
        return;
    }
    let word = |b: &[u8]| u32::from(u16::from_be_bytes([b[0], b[1]]));
    let mut sum = u32::from(!hc);
    for (o, n) in old.chunks(2).zip(new.chunks(2)) {
        sum += (!word(o) & 0xffff) + word(n);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut out = !(sum as u16);
    if udp && out == 0 {
        out = 0xffff;
    }
    frame[sum_at..sum_at + 2].copy_from_slice(&out.to_be_bytes());
}

/// Where the TCP/UDP checksum is (and whether it is UDP's), when the frame has the header.
fn l4_checksum(layout: &Layout) -> Option<(usize, bool)> {
    let (l4, proto, _) = layout.tcp_udp().ok()?;
    Some(if proto == crate::layout::IP_PROTO_TCP {
        (l4 + 16, false)
    } else {
        (l4 + 6, true)
    })
}

/// Writes `new` at `at`, patching the L4 checksum and, when `ip_header`, the IPv4 one.
fn replace(frame: &mut [u8], layout: &Layout, at: usize, new: &[u8], ip_header: bool) {
    let mut old = [0u8; 16];
    old[..new.len()].copy_from_slice(&frame[at..at + new.len()]);
    let old = &old[..new.len()];
    if ip_header {
        patch_checksum(frame, layout.l3 + 10, old, new, false);
    }
    if let Some((sum_at, udp)) = l4_checksum(layout) {
        patch_checksum(frame, sum_at, old, new, udp);
    }
    frame[at..at + new.len()].copy_from_slice(new);
}

/// Sets the source (`src`) or destination IP address; the IPv4 header checksum and the
/// TCP/UDP checksum (whose pseudo-header holds the addresses) stay valid.
///
/// Errors with [`Error::IpVersionMismatch`] for an address of the other version.
pub fn set_ip(frame: &mut [u8], src: bool, addr: IpAddr) -> Result<()> {
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    match (layout.ip()?.version, addr) {
        (IpVersion::V4, IpAddr::V4(a)) => replace(frame, &layout, l3 + if src { 12 } else { 16 }, &a.octets(), true),
        (IpVersion::V6, IpAddr::V6(a)) => replace(frame, &layout, l3 + if src { 8 } else { 24 }, &a.octets(), false),
        (packet, _) => {
            let v = |v6: bool| if v6 { 6 } else { 4 };
            return Err(Error::IpVersionMismatch {
                given: v(addr.is_ipv6()),
                packet: v(packet == IpVersion::V6),
            });
        }
    }
    Ok(())
}

/// Sets the source (`src`) or destination TCP/UDP port; the checksum stays valid.
///
/// Errors as [`swap_ports`] does for frames without a TCP/UDP header.
pub fn set_port(frame: &mut [u8], src: bool, port: u16) -> Result<()> {
    let layout = Layout::of(frame)?;
    let (l4, _, _) = layout.tcp_udp()?;
    replace(frame, &layout, l4 + if src { 0 } else { 2 }, &port.to_be_bytes(), false);
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
        assert_eq!(
            decrement_ttl(&mut arp.clone()),
            Err(Error::NotIp { ether_type: 0x0806 })
        );
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

    #[test]
    fn ttl_decrement() {
        let mut f = udp4(2);
        assert_eq!(decrement_ttl(&mut f), Ok(1));
        assert_eq!(verify_checksums(&f), Ok(true));
        assert_eq!(decrement_ttl(&mut f), Ok(0));
        assert_eq!(verify_checksums(&f), Ok(true));
        let before = f.clone();
        assert_eq!(decrement_ttl(&mut f), Err(Error::TtlExpired));
        assert_eq!(f, before);
        let mut v6 = tcp6();
        assert_eq!(decrement_ttl(&mut v6), Ok(6));
        assert_eq!(Headers::parse(&v6).unwrap().ipv6().unwrap().header().hop_limit(), 6);
    }

    proptest! {
        #[test]
        fn ttl_decrement_matches_full_recompute(ttl in 1u8.., src in any::<[u8; 4]>(), dst in any::<[u8; 4]>()) {
            let mut f = PacketBuilder::ethernet2(A, B).ipv4(src, dst, ttl).udp(1, 2).build(&[]).unwrap();
            prop_assert_eq!(decrement_ttl(&mut f), Ok(ttl - 1));
            let mut recomputed = f.clone();
            fix_checksums(&mut recomputed).unwrap();
            prop_assert_eq!(f, recomputed);
        }

        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..120)) {
            let _ = swap_macs(&mut frame.clone());
            let _ = reflect_macs(&mut frame.clone(), A);
            let _ = swap_ips(&mut frame.clone());
            let _ = swap_ports(&mut frame.clone());
            let _ = decrement_ttl(&mut frame.clone());
        }
    }
}
