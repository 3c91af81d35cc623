//! OpenFlow SET_FIELD: one [`Field`] value per settable header field, written in place
//! by [`set_field`] with every checksum kept valid.
//!
//! Each write matches what Open vSwitch's userspace datapath (`datapath_type=netdev`)
//! writes for the same action, byte for byte: the same incremental checksum updates
//! (lib/csum.c `recalc_csum16`, word by word), the same rules for UDP's zero checksum,
//! SCTP's CRC32c and IPv6 routing headers (lib/packets.c `packet_set_*`,
//! lib/odp-execute.c `odp_set_*`). Where OVS adds or changes nothing, so does this: a
//! neighbor-discovery link-layer option that is absent is not added.
//!
//! Every function errors, never panics, on a frame without the header (the variant names
//! which) and on a value the field cannot hold ([`Error::ValueOutOfRange`]); a function
//! that errors has written nothing.
//!
//! # Errors and what OVS does instead
//!
//! OVS checks a set_field's prerequisites twice: when the flow is added, against its
//! match and the actions before it (lib/ofp-actions.c `check_SET_FIELD`:
//! `OFPBAC_MATCH_INCONSISTENT`; `vlan_vid` even needs a VLAN tag in the match or a
//! `push_vlan` before it), and then per packet, where an unmet one makes OVS *ignore* the
//! action (ofproto-dpif-xlate.c `OFPACT_SET_FIELD`: "Set the field only if the packet
//! actually has it"). So a caller matching OVS treats the "no such header" errors —
//! [`Error::NotIp`], [`Error::NotArp`], [`Error::NotMpls`], [`Error::NoVlanTag`],
//! [`Error::WrongIpProto`], [`Error::NotTcpUdp`], [`Error::NoL4Header`], [`Error::NotNd`],
//! [`Error::WrongIpVersion`], [`Error::IpVersionMismatch`] — as "leave the packet as it
//! is", which it is. [`Error::ValueOutOfRange`] is a value OVS refuses when the flow is
//! added (`OFPBAC_BAD_SET_ARGUMENT`). `VlanVid` takes the bare 12-bit VID, without
//! OpenFlow's `OFPVID_PRESENT` bit (0x1000).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::patch_csum;
use crate::edit::{SumKind, patch_l4, set_dst_mac, set_ip, set_port, set_src_mac};
use crate::layout::{ETHER_TYPE_ARP, ETHER_TYPE_RARP, IP_PROTO_ICMP, IP_PROTO_ICMPV6, IpVersion, Layout, link};
use crate::mpls::{set_mpls_bos, set_mpls_label, set_mpls_tc};
use crate::vlan::{check_range, set_vlan_pcp, set_vlan_vid};
use crate::{Error, MacAddr, Result};

/// One header field and the value to write into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Ethernet source MAC.
    EthSrc(MacAddr),
    /// Ethernet destination MAC.
    EthDst(MacAddr),
    /// IPv4 or IPv6 source address, of the packet's own version (else
    /// [`Error::IpVersionMismatch`]).
    IpSrc(IpAddr),
    /// IPv4 or IPv6 destination address, as [`Field::IpSrc`].
    IpDst(IpAddr),
    /// TCP, UDP or SCTP source port.
    L4Src(u16),
    /// TCP, UDP or SCTP destination port.
    L4Dst(u16),
    /// VID of the outer VLAN tag (802.1Q or 802.1ad), 0..=4095.
    VlanVid(u16),
    /// PCP of the outer VLAN tag, 0..=7.
    VlanPcp(u8),
    /// DSCP (upper 6 bits of the IPv4 TOS / IPv6 traffic class), 0..=63.
    IpDscp(u8),
    /// ECN (lower 2 bits of the IPv4 TOS / IPv6 traffic class), 0..=3.
    IpEcn(u8),
    /// ICMPv4 or ICMPv6 type.
    IcmpType(u8),
    /// ICMPv4 or ICMPv6 code.
    IcmpCode(u8),
    /// ARP opcode.
    ArpOp(u16),
    /// ARP sender protocol (IPv4) address.
    ArpSpa(Ipv4Addr),
    /// ARP target protocol (IPv4) address.
    ArpTpa(Ipv4Addr),
    /// ARP sender hardware address.
    ArpSha(MacAddr),
    /// ARP target hardware address.
    ArpTha(MacAddr),
    /// IPv6 flow label, 0..=0xfffff.
    Ipv6Flabel(u32),
    /// Target address of an IPv6 neighbor solicitation or advertisement.
    NdTarget(Ipv6Addr),
    /// Source link-layer address option of a neighbor discovery message (only written if
    /// the message carries the option: see [`set_nd_lla`]).
    NdSll(MacAddr),
    /// Target link-layer address option, as [`Field::NdSll`].
    NdTll(MacAddr),
    /// Label of the outer MPLS LSE, 0..=0xfffff.
    MplsLabel(u32),
    /// Traffic class of the outer MPLS LSE, 0..=7.
    MplsTc(u8),
    /// Bottom-of-stack bit of the outer MPLS LSE, 0..=1 (read-only in OVS).
    MplsBos(u8),
}

/// Writes `f` into `frame` in place; every checksum the frame has stays valid.
///
/// Errors (the frame then unchanged) when the frame does not have the field's header —
/// [`Error::NotIp`], [`Error::NotArp`], [`Error::NoVlanTag`], [`Error::NotMpls`],
/// [`Error::WrongIpProto`], [`Error::NotNd`], [`Error::NoL4Header`] (non-first fragment),
/// [`Error::Truncated`] ... — or when the value does not fit the field
/// ([`Error::ValueOutOfRange`], [`Error::IpVersionMismatch`]).
pub fn set_field(frame: &mut [u8], f: Field) -> Result<()> {
    match f {
        Field::EthSrc(mac) => set_src_mac(frame, mac),
        Field::EthDst(mac) => set_dst_mac(frame, mac),
        Field::IpSrc(a) => set_ip(frame, true, a),
        Field::IpDst(a) => set_ip(frame, false, a),
        Field::L4Src(p) => set_port(frame, true, p),
        Field::L4Dst(p) => set_port(frame, false, p),
        Field::VlanVid(vid) => set_vlan_vid(frame, vid),
        Field::VlanPcp(pcp) => set_vlan_pcp(frame, pcp),
        Field::IpDscp(dscp) => {
            check_range("IP DSCP", u32::from(dscp), 63)?;
            set_tos(frame, 0xfc, dscp << 2)
        }
        Field::IpEcn(ecn) => {
            check_range("IP ECN", u32::from(ecn), 3)?;
            set_tos(frame, 0x03, ecn)
        }
        Field::IcmpType(t) => set_icmp(frame, |w| (w & 0x00ff) | (u16::from(t) << 8)),
        Field::IcmpCode(c) => set_icmp(frame, |w| (w & 0xff00) | u16::from(c)),
        Field::ArpOp(op) => set_arp(frame, 6, &op.to_be_bytes()),
        Field::ArpSha(mac) => set_arp(frame, 8, &mac),
        Field::ArpSpa(a) => set_arp(frame, 14, &a.octets()),
        Field::ArpTha(mac) => set_arp(frame, 18, &mac),
        Field::ArpTpa(a) => set_arp(frame, 24, &a.octets()),
        Field::Ipv6Flabel(label) => set_flabel(frame, label),
        Field::NdTarget(a) => set_nd_target(frame, a),
        Field::NdSll(mac) => set_nd_lla(frame, NdOption::Sll, mac),
        Field::NdTll(mac) => set_nd_lla(frame, NdOption::Tll, mac),
        Field::MplsLabel(label) => set_mpls_label(frame, label),
        Field::MplsTc(tc) => set_mpls_tc(frame, tc),
        Field::MplsBos(bos) => set_mpls_bos(frame, bos),
    }
}

/// Replaces the `mask` bits of the IPv4 TOS / IPv6 traffic class with `bits`. IPv4: the
/// header checksum is patched with the word `tos` as OVS's `odp_set_ipv4` does; IPv6 has
/// no header checksum.
fn set_tos(frame: &mut [u8], mask: u8, bits: u8) -> Result<()> {
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    match layout.ip()?.version {
        IpVersion::V4 => {
            let old = frame[l3 + 1];
            let new = (old & !mask) | bits;
            if old != new {
                patch_csum(frame, l3 + 10, &[0, old], &[0, new]);
                frame[l3 + 1] = new;
            }
        }
        IpVersion::V6 => {
            // Traffic class: the low nibble of byte 0 and the high nibble of byte 1.
            let old = (frame[l3] << 4) | (frame[l3 + 1] >> 4);
            let new = (old & !mask) | bits;
            frame[l3] = (frame[l3] & 0xf0) | (new >> 4);
            frame[l3 + 1] = (frame[l3 + 1] & 0x0f) | (new << 4);
        }
    }
    Ok(())
}

/// Sets the IPv6 flow label (0..=0xfffff). Errors with [`Error::WrongIpVersion`] on IPv4.
fn set_flabel(frame: &mut [u8], label: u32) -> Result<()> {
    check_range("IPv6 flow label", label, 0x000f_ffff)?;
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    if layout.ip()?.version != IpVersion::V6 {
        return Err(Error::WrongIpVersion { need: 6, packet: 4 });
    }
    let word = u32::from_be_bytes([frame[l3], frame[l3 + 1], frame[l3 + 2], frame[l3 + 3]]);
    frame[l3..l3 + 4].copy_from_slice(&((word & 0xfff0_0000) | label).to_be_bytes());
    Ok(())
}

/// Offset and kind of the ICMPv4/ICMPv6 header, when the frame has one (at least 8 bytes,
/// as [`crate::verify_checksums`] needs).
fn icmp_at(frame: &[u8]) -> Result<(usize, IpVersion, usize)> {
    let layout = Layout::of(frame)?;
    let ip = *layout.ip()?;
    let (want, proto) = match ip.version {
        IpVersion::V4 => ("ICMP", IP_PROTO_ICMP),
        IpVersion::V6 => ("ICMPv6", IP_PROTO_ICMPV6),
    };
    if ip.proto != proto {
        return Err(Error::WrongIpProto {
            want,
            ip_proto: ip.proto,
        });
    }
    let l4 = ip.l4.ok_or(Error::NoL4Header)?;
    if l4 + 8 > ip.end {
        return Err(Error::Truncated {
            header: want,
            need: l4 + 8,
            have: ip.end,
        });
    }
    Ok((l4, ip.version, ip.end))
}

/// Rewrites the ICMP type/code word, patching its checksum (OVS `packet_set_icmp`).
fn set_icmp(frame: &mut [u8], update: impl FnOnce(u16) -> u16) -> Result<()> {
    let (l4, _, _) = icmp_at(frame)?;
    let old = [frame[l4], frame[l4 + 1]];
    let new = update(u16::from_be_bytes(old)).to_be_bytes();
    if old != new {
        patch_csum(frame, l4 + 2, &old, &new);
        frame[l4..l4 + 2].copy_from_slice(&new);
    }
    Ok(())
}

/// Writes `value` at `offset` of the ARP/RARP packet (Ethernet/IPv4 ARP: hardware type
/// 1, protocol 0x0800, lengths 6 and 4; OVS's `set_arp` writes the same fixed offsets).
fn set_arp(frame: &mut [u8], offset: usize, value: &[u8]) -> Result<()> {
    let (l3, ether_type, _) = link(frame)?;
    if ether_type != ETHER_TYPE_ARP && ether_type != ETHER_TYPE_RARP {
        return Err(Error::NotArp { ether_type });
    }
    let Some(arp) = frame.get_mut(l3..l3 + 28) else {
        return Err(Error::Truncated {
            header: "ARP",
            need: l3 + 28,
            have: frame.len(),
        });
    };
    if arp[..6] != [0, 1, 0x08, 0x00, 6, 4] {
        return Err(Error::Malformed {
            header: "ARP",
            reason: "not Ethernet/IPv4 (hardware type 1, protocol 0x0800, lengths 6 and 4)",
        });
    }
    arp[offset..offset + value.len()].copy_from_slice(value);
    Ok(())
}

/// A neighbor-discovery link-layer address option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdOption {
    /// Source link-layer address (option type 1), in solicitations.
    Sll,
    /// Target link-layer address (option type 2), in advertisements.
    Tll,
}

/// Length of an ND solicitation/advertisement before its options.
const ND_MSG_LEN: usize = 24;

/// Offset and end of the ND message (ICMPv6 type 135 or 136 — `only` one of them if
/// given — code 0, with its target).
fn nd_at(frame: &[u8], only: Option<u8>) -> Result<(usize, usize)> {
    let (l4, version, end) = icmp_at(frame)?;
    if version != IpVersion::V6 {
        return Err(Error::WrongIpVersion { need: 6, packet: 4 });
    }
    let (icmp_type, icmp_code) = (frame[l4], frame[l4 + 1]);
    if !matches!(icmp_type, 135 | 136) || only.is_some_and(|t| t != icmp_type) || icmp_code != 0 {
        return Err(Error::NotNd { icmp_type, icmp_code });
    }
    if l4 + ND_MSG_LEN > end {
        return Err(Error::Truncated {
            header: "ICMPv6 ND",
            need: l4 + ND_MSG_LEN,
            have: end,
        });
    }
    Ok((l4, end))
}

/// Sets the target address of a neighbor solicitation/advertisement; the ICMPv6 checksum
/// is patched (OVS `packet_set_nd` → `packet_set_ipv6_addr`).
fn set_nd_target(frame: &mut [u8], target: Ipv6Addr) -> Result<()> {
    let (l4, _) = nd_at(frame, None)?;
    let at = l4 + 8;
    let new = target.octets();
    let mut old = [0; 16];
    old.copy_from_slice(&frame[at..at + 16]);
    if old != new {
        patch_l4(frame, l4 + 2, SumKind::Plain, &old, &new);
        frame[at..at + 16].copy_from_slice(&new);
    }
    Ok(())
}

/// Sets the MAC of a neighbor solicitation's source (`Sll`) or a neighbor
/// advertisement's target (`Tll`) link-layer address option, patching the ICMPv6
/// checksum. The other message type is [`Error::NotNd`] (OVS's prerequisites "ND
/// solicit" / "ND advert": the set_field is ignored there).
///
/// As OVS (`odp_set_nd`, `packet_set_nd`): the options are walked until the first
/// 8-byte SLL or TLL option, and only that one is looked at; if it is of the other kind,
/// or there is none, nothing is written (no option is added) and this returns `Ok`. The
/// walk reproduces OVS's exactly, including its length bookkeeping (after moving to the
/// next option it subtracts *that* option's length).
pub fn set_nd_lla(frame: &mut [u8], which: NdOption, mac: MacAddr) -> Result<()> {
    let only = match which {
        NdOption::Sll => 135,
        NdOption::Tll => 136,
    };
    let (l4, end) = nd_at(frame, Some(only))?;
    let mut at = l4 + ND_MSG_LEN;
    let mut remain = end - at;
    // OVS reads past the message when its count runs ahead of the walk; here the walk
    // stops there instead (`at + 8 > end`).
    while remain >= 8 && at + 8 <= end {
        let (kind, len) = (frame[at], usize::from(frame[at + 1]));
        if len == 0 || remain < len * 8 {
            break;
        }
        let found = match (kind, len) {
            (1, 1) => NdOption::Sll,
            (2, 1) => NdOption::Tll,
            _ => {
                at += len * 8;
                if at + 2 > end {
                    break;
                }
                remain = remain.saturating_sub(usize::from(frame[at + 1]) * 8);
                continue;
            }
        };
        if found == which {
            let mut old = [0; 6];
            old.copy_from_slice(&frame[at + 2..at + 8]);
            if old != mac {
                patch_l4(frame, l4 + 2, SumKind::Plain, &old, &mac);
                frame[at + 2..at + 8].copy_from_slice(&mac);
            }
        }
        break;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ETHER_TYPE_MPLS;
    use crate::mpls::{Lse, outer_lse, push_mpls_vec};
    use crate::test_util::{Build, MAC_A, MAC_B, V6_A, V6_B, arp, icmp4, icmp6, nd, sctp, tcp6, truncations, udp4};
    use crate::vlan::{TPID_8021AD, outer_vlan, push_vlan_vec};
    use crate::{Headers, fix_checksums, verify_checksums};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    /// Checks a rewritten frame: every checksum right, and exactly the bytes a full
    /// recompute would write (OVS's incremental updates never leave a -0 behind).
    fn assert_sums(f: &[u8]) {
        assert_eq!(verify_checksums(f), Ok(true), "{f:02x?}");
        let mut recomputed = f.to_vec();
        fix_checksums(&mut recomputed).unwrap();
        assert_eq!(recomputed, f);
    }

    fn set(mut f: Vec<u8>, fields: &[Field]) -> Vec<u8> {
        for &field in fields {
            set_field(&mut f, field).unwrap_or_else(|e| panic!("{field:?}: {e}"));
        }
        f
    }

    #[test]
    fn ethernet_ip_and_ports() {
        let f = set(
            udp4(64),
            &[
                Field::EthSrc([1; 6]),
                Field::EthDst([2; 6]),
                Field::IpSrc("192.0.2.1".parse().unwrap()),
                Field::IpDst("198.51.100.7".parse().unwrap()),
                Field::L4Src(5353),
                Field::L4Dst(53),
            ],
        );
        assert_sums(&f);
        let h = Headers::parse(&f).unwrap();
        assert_eq!((h.src_mac(), h.dst_mac()), ([1; 6], [2; 6]));
        assert_eq!(h.src_ip(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(h.dst_ip(), Some("198.51.100.7".parse().unwrap()));
        assert_eq!((h.src_port(), h.dst_port()), (Some(5353), Some(53)));

        let e = set_field(&mut udp4(64), Field::IpSrc("::1".parse().unwrap()));
        assert_eq!(e, Err(Error::IpVersionMismatch { given: 6, packet: 4 }));
        assert_eq!(
            set_field(&mut icmp4(), Field::L4Src(1)),
            Err(Error::NotTcpUdp { ip_proto: 1 })
        );
        assert_eq!(
            set_field(&mut arp(), Field::L4Dst(1)),
            Err(Error::NotIp { ether_type: 0x0806 })
        );
    }

    #[test]
    fn icmpv6_checksum_follows_the_addresses() {
        let f = set(
            icmp6(),
            &[
                Field::IpSrc(Ipv6Addr::from([7; 16]).into()),
                Field::IpDst(Ipv6Addr::LOCALHOST.into()),
            ],
        );
        assert_sums(&f);
        let f = set(
            nd(135, &[1, 1, 0, 0, 0, 0, 0, 1]),
            &[Field::IpSrc(Ipv6Addr::from([9; 16]).into())],
        );
        assert_sums(&f);
    }

    #[test]
    fn ipv6_routing_header_keeps_the_final_destination_in_the_checksum() {
        // UDP after a type-0-like routing header with one segment left: the checksum's
        // pseudo-header holds the final destination, which a new fixed-header dst is not.
        let mut f = [&MAC_A[..], &MAC_B, &[0x86, 0xdd]].concat();
        let udp = [0x04, 0xd2, 0, 53, 0, 10, 0, 0, b'h', b'i'];
        let rh = [[17u8, 2, 0, 1, 0, 0, 0, 0].as_slice(), &V6_B].concat(); // final dst V6_B
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((rh.len() + udp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[43, 64]);
        ip.extend_from_slice(&V6_A);
        ip.extend_from_slice(&[0x33; 16]); // next hop
        f.extend_from_slice(&ip);
        f.extend_from_slice(&rh);
        f.extend_from_slice(&udp);
        // The checksum against the final destination, as a sender writes it.
        let mut pseudo = crate::checksum::sum(&V6_A, 0);
        pseudo = crate::checksum::sum(&V6_B, pseudo) + 17 + udp.len() as u64;
        let c = !crate::checksum::fold(crate::checksum::sum(&udp, pseudo));
        let sum_at = f.len() - 4;
        f[sum_at..sum_at + 2].copy_from_slice(&c.to_be_bytes());
        let before = f.clone();
        set_field(&mut f, Field::IpDst(Ipv6Addr::from([0x44; 16]).into())).unwrap();
        assert_eq!(&f[sum_at..sum_at + 2], &before[sum_at..sum_at + 2]);
        assert_eq!(&f[38..54], &[0x44; 16]);
        set_field(&mut f, Field::IpSrc(Ipv6Addr::from([0x55; 16]).into())).unwrap();
        assert_ne!(&f[sum_at..sum_at + 2], &before[sum_at..sum_at + 2]);
    }

    #[test]
    fn udp_zero_checksum_stays_none() {
        let mut f = udp4(64);
        f[40..42].fill(0);
        let f = set(f, &[Field::L4Src(7), Field::IpDst("1.2.3.4".parse().unwrap())]);
        assert_eq!(&f[40..42], &[0, 0]);
        assert_eq!(verify_checksums(&f), Ok(true));
    }

    #[test]
    fn sctp_ports_keep_the_crc() {
        for v6 in [false, true] {
            let original = sctp(v6);
            assert_eq!(verify_checksums(&original), Ok(true));
            let f = set(original.clone(), &[Field::L4Src(1), Field::L4Dst(0xffff)]);
            assert_sums(&f);
            let l4 = if v6 { 54 } else { 34 };
            assert_eq!(&f[l4..l4 + 4], &[0, 1, 0xff, 0xff]);
            // A wrong CRC stays exactly as wrong (OVS packet_set_sctp_port).
            let mut bad = original.clone();
            bad[l4 + 8] ^= 0x5a;
            let bad = set(bad, &[Field::L4Src(1), Field::L4Dst(0xffff)]);
            assert_eq!(bad[l4 + 8], f[l4 + 8] ^ 0x5a);
            assert_eq!(&bad[l4 + 9..l4 + 12], &f[l4 + 9..l4 + 12]);
            // Addresses are not in SCTP's checksum.
            let addr: IpAddr = if v6 {
                Ipv6Addr::LOCALHOST.into()
            } else {
                Ipv4Addr::LOCALHOST.into()
            };
            assert_sums(&set(original, &[Field::IpSrc(addr)]));
        }
        let mut cut = sctp(false);
        cut[17] = 20 + 8; // IPv4 total length: only 8 bytes of SCTP
        assert!(matches!(
            set_field(&mut cut, Field::L4Src(1)),
            Err(Error::Truncated { header: "SCTP", .. })
        ));
    }

    #[test]
    fn vlan_fields_on_the_outer_tag() {
        let mut f = udp4(64);
        push_vlan_vec(&mut f, TPID_8021AD).unwrap();
        let f = set(f, &[Field::VlanVid(42), Field::VlanPcp(6)]);
        assert_eq!(outer_vlan(&f), Ok((0x88a8, 0xc02a)));
        assert_sums(&f);
        assert_eq!(set_field(&mut udp4(64), Field::VlanVid(1)), Err(Error::NoVlanTag));
    }

    #[test]
    fn dscp_and_ecn() {
        let f = set(udp4(64), &[Field::IpDscp(46), Field::IpEcn(3)]);
        assert_sums(&f);
        let h = Headers::parse(&f).unwrap();
        let ip = h.ipv4().unwrap().header();
        assert_eq!((ip.dcp().value(), ip.ecn().value()), (46, 3));
        drop(h);
        let f = set(f, &[Field::IpDscp(0)]);
        assert_eq!(f[15], 3);
        assert_sums(&f);

        let f = set(
            tcp6(),
            &[Field::IpDscp(63), Field::IpEcn(1), Field::Ipv6Flabel(0xabcde)],
        );
        let h = Headers::parse(&f).unwrap();
        let ip = h.ipv6().unwrap().header();
        assert_eq!(
            (ip.traffic_class(), ip.flow_label().value(), ip.hop_limit()),
            (0xfd, 0xabcde, 7)
        );
        drop(h);
        assert_sums(&f);
        assert!(matches!(
            set_field(&mut udp4(1), Field::IpDscp(64)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            set_field(&mut udp4(1), Field::IpEcn(4)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            set_field(&mut tcp6(), Field::Ipv6Flabel(1 << 20)),
            Err(Error::ValueOutOfRange { .. })
        ));
        assert_eq!(
            set_field(&mut udp4(1), Field::Ipv6Flabel(1)),
            Err(Error::WrongIpVersion { need: 6, packet: 4 })
        );
        assert_eq!(
            set_field(&mut arp(), Field::IpEcn(1)),
            Err(Error::NotIp { ether_type: 0x0806 })
        );
    }

    #[test]
    fn icmp_type_and_code() {
        for original in [icmp4(), icmp6()] {
            let f = set(original, &[Field::IcmpType(3), Field::IcmpCode(13)]);
            assert_sums(&f);
            let l4 = if f[12..14] == [8, 0] { 34 } else { 54 };
            assert_eq!(&f[l4..l4 + 2], &[3, 13]);
        }
        assert_eq!(
            set_field(&mut udp4(1), Field::IcmpType(1)),
            Err(Error::WrongIpProto {
                want: "ICMP",
                ip_proto: 17
            })
        );
        assert_eq!(
            set_field(&mut tcp6(), Field::IcmpCode(1)),
            Err(Error::WrongIpProto {
                want: "ICMPv6",
                ip_proto: 6
            })
        );
    }

    #[test]
    fn arp_fields() {
        let f = set(
            arp(),
            &[
                Field::ArpOp(2),
                Field::ArpSha([0xaa; 6]),
                Field::ArpSpa([192, 0, 2, 1].into()),
                Field::ArpTha([0xbb; 6]),
                Field::ArpTpa([192, 0, 2, 2].into()),
            ],
        );
        let h = Headers::parse(&f).unwrap();
        let a = h.arp().unwrap();
        assert_eq!(a.operation(), etherparse::ArpOperation::REPLY);
        assert_eq!(
            (
                a.sender_hw_addr(),
                a.sender_protocol_addr(),
                a.target_hw_addr(),
                a.target_protocol_addr()
            ),
            (&[0xaa; 6][..], &[192, 0, 2, 1][..], &[0xbb; 6][..], &[192, 0, 2, 2][..])
        );
        drop(h);
        assert_eq!(&f[42..], &arp()[42..]);
        assert_eq!(
            set_field(&mut udp4(1), Field::ArpOp(1)),
            Err(Error::NotArp { ether_type: 0x0800 })
        );
        let mut bad = arp();
        bad[19] = 16; // IPv6-sized protocol addresses
        assert!(matches!(
            set_field(&mut bad, Field::ArpOp(1)),
            Err(Error::Malformed { header: "ARP", .. })
        ));
        assert!(matches!(
            set_field(&mut arp()[..30].to_vec(), Field::ArpOp(1)),
            Err(Error::Truncated { header: "ARP", .. })
        ));
    }

    const SLL: [u8; 8] = [1, 1, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa];
    const TLL: [u8; 8] = [2, 1, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb];

    #[test]
    fn nd_target_and_link_layer_options() {
        let ns = set(
            nd(135, &SLL),
            &[Field::NdTarget(Ipv6Addr::LOCALHOST), Field::NdSll([0xcc; 6])],
        );
        assert_sums(&ns);
        assert_eq!(&ns[62..78], &Ipv6Addr::LOCALHOST.octets());
        assert_eq!(&ns[78..86], &[1, 1, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]);
        let na = set(nd(136, &TLL), &[Field::NdTll([0xdd; 6])]);
        assert_sums(&na);
        assert_eq!(&na[80..86], &[0xdd; 6]);
    }

    #[test]
    fn nd_options_are_never_added() {
        // No option: nothing added, the frame is unchanged.
        let bare = nd(135, &[]);
        assert_eq!(set(bare.clone(), &[Field::NdSll([1; 6])]), bare);
        let bare = nd(136, &[]);
        assert_eq!(set(bare.clone(), &[Field::NdTll([1; 6])]), bare);
        // The first link-layer option is the other kind: OVS stops there.
        let na = nd(136, &[SLL, TLL].concat());
        assert_eq!(set(na.clone(), &[Field::NdTll([1; 6])]), na);
        let ns = nd(135, &[TLL, SLL].concat());
        assert_eq!(set(ns.clone(), &[Field::NdSll([1; 6])]), ns);
        // An unknown option before it is skipped.
        let ns = nd(135, &[[14, 1, 0, 0, 0, 0, 0, 0], SLL].concat());
        let f = set(ns, &[Field::NdSll([3; 6])]);
        assert_sums(&f);
        assert_eq!(&f[88..94], &[3; 6]);
        // An option of length 0 ends the walk.
        let zero = nd(135, &[[1, 0, 0, 0, 0, 0, 0, 0], SLL].concat());
        assert_eq!(set(zero.clone(), &[Field::NdSll([3; 6])]), zero);
    }

    #[test]
    fn nd_errors() {
        assert_eq!(
            set_field(&mut icmp6(), Field::NdTarget(Ipv6Addr::LOCALHOST)),
            Err(Error::NotNd {
                icmp_type: 128,
                icmp_code: 0
            })
        );
        // SLL belongs to solicitations, TLL to advertisements.
        assert_eq!(
            set_field(&mut nd(136, &TLL), Field::NdSll([0; 6])),
            Err(Error::NotNd {
                icmp_type: 136,
                icmp_code: 0
            })
        );
        assert_eq!(
            set_field(&mut nd(135, &SLL), Field::NdTll([0; 6])),
            Err(Error::NotNd {
                icmp_type: 135,
                icmp_code: 0
            })
        );
        let mut coded = nd(135, &[]);
        coded[55] = 1;
        assert_eq!(
            set_field(&mut coded, Field::NdSll([0; 6])),
            Err(Error::NotNd {
                icmp_type: 135,
                icmp_code: 1
            })
        );
        assert_eq!(
            set_field(&mut icmp4(), Field::NdTarget(Ipv6Addr::LOCALHOST)),
            Err(Error::WrongIpVersion { need: 6, packet: 4 })
        );
        let short = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(V6_A, V6_B, 255)
            .icmpv6(etherparse::Icmpv6Type::NeighborSolicitation)
            .build(&[0; 8])
            .unwrap();
        assert!(matches!(
            set_field(&mut short.clone(), Field::NdTarget(Ipv6Addr::LOCALHOST)),
            Err(Error::Truncated {
                header: "ICMPv6 ND",
                ..
            })
        ));
    }

    #[test]
    fn mpls_fields() {
        let mut f = udp4(64);
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        let f = set(f, &[Field::MplsLabel(16), Field::MplsTc(5), Field::MplsBos(1)]);
        assert_eq!(
            outer_lse(&f),
            Ok(Lse {
                label: 16,
                tc: 5,
                bos: true,
                ttl: 64
            })
        );
        assert_eq!(
            set_field(&mut udp4(1), Field::MplsTc(1)),
            Err(Error::NotMpls { ether_type: 0x0800 })
        );
    }

    /// One value of every variant, for the no-panic checks.
    fn every_field() -> Vec<Field> {
        vec![
            Field::EthSrc([1; 6]),
            Field::EthDst([2; 6]),
            Field::IpSrc(Ipv4Addr::LOCALHOST.into()),
            Field::IpDst(Ipv6Addr::LOCALHOST.into()),
            Field::L4Src(1),
            Field::L4Dst(2),
            Field::VlanVid(3),
            Field::VlanPcp(4),
            Field::IpDscp(5),
            Field::IpEcn(1),
            Field::IcmpType(6),
            Field::IcmpCode(7),
            Field::ArpOp(2),
            Field::ArpSpa([1, 2, 3, 4].into()),
            Field::ArpTpa([5, 6, 7, 8].into()),
            Field::ArpSha([3; 6]),
            Field::ArpTha([4; 6]),
            Field::Ipv6Flabel(9),
            Field::NdTarget(Ipv6Addr::LOCALHOST),
            Field::NdSll([5; 6]),
            Field::NdTll([6; 6]),
            Field::MplsLabel(10),
            Field::MplsTc(3),
            Field::MplsBos(0),
        ]
    }

    #[test]
    fn truncated_frames_never_panic() {
        let mut mpls = udp4(3);
        push_mpls_vec(&mut mpls, ETHER_TYPE_MPLS).unwrap();
        let frames = [
            udp4(3),
            tcp6(),
            icmp4(),
            icmp6(),
            sctp(false),
            sctp(true),
            arp(),
            nd(135, &[SLL, TLL].concat()),
            mpls,
        ];
        for frame in frames {
            truncations(&frame, |f| {
                for field in every_field() {
                    let before = f.clone();
                    if set_field(f, field).is_err() {
                        assert_eq!(*f, before, "{field:?} failed but wrote");
                    }
                }
            });
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            mut frame in proptest::collection::vec(any::<u8>(), 0..120),
            et in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x0806), Just(0x8847), Just(0x8100)],
            proto in prop_oneof![Just(1u8), Just(6), Just(17), Just(58), Just(132)],
        ) {
            if frame.len() >= 24 {
                frame[12..14].copy_from_slice(&et.to_be_bytes());
                if et == 0x0800 { frame[14] = 0x45; frame[23] = proto; }
                if et == 0x86dd { frame[14] = 0x60; frame[20] = proto; }
            }
            for field in every_field() {
                let mut f = frame.clone();
                if set_field(&mut f, field).is_err() {
                    prop_assert_eq!(&f, &frame, "{:?} failed but wrote", field);
                }
            }
        }

        /// Any rewrite of any TCP/UDP/ICMPv6 frame leaves the checksums a full recompute
        /// would write.
        #[test]
        fn rewrites_match_full_recompute(
            v4 in any::<[u8; 4]>(), v6 in any::<[u8; 16]>(), port in any::<u16>(), dscp in 0u8..64,
            kind in 0..5, payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let b = PacketBuilder::ethernet2(MAC_A, MAC_B);
            let f = match kind {
                0 => b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9).udp(1, 2).build(&payload).unwrap(),
                1 => b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 9).tcp(1, 2, 3, 4).build(&payload).unwrap(),
                2 => b.ipv6(V6_A, V6_B, 9).udp(1, 2).build(&payload).unwrap(),
                3 => b.ipv6(V6_A, V6_B, 9).tcp(1, 2, 3, 4).build(&payload).unwrap(),
                _ => b.ipv6(V6_A, V6_B, 9).icmpv6_echo_request(1, 2).build(&payload).unwrap(),
            };
            let addr: IpAddr = if kind < 2 { v4.into() } else { v6.into() };
            let mut fields = vec![Field::IpSrc(addr), Field::IpDst(addr), Field::IpDscp(dscp)];
            if kind < 4 {
                fields.extend([Field::L4Src(port), Field::L4Dst(port)]);
            }
            let f = set(f, &fields);
            prop_assert_eq!(verify_checksums(&f), Ok(true));
            let mut recomputed = f.clone();
            fix_checksums(&mut recomputed).unwrap();
            prop_assert_eq!(f, recomputed);
        }
    }
}
