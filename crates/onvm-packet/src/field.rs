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
//! which) and on a value the field cannot hold ([`Error::ValueOutOfRange`]).

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

/// Offset and end of the ND message (ICMPv6 type 135/136, code 0, with its target).
fn nd_at(frame: &[u8]) -> Result<(usize, usize)> {
    let (l4, version, end) = icmp_at(frame)?;
    if version != IpVersion::V6 {
        return Err(Error::WrongIpVersion { need: 6, packet: 4 });
    }
    let (icmp_type, icmp_code) = (frame[l4], frame[l4 + 1]);
    if !matches!(icmp_type, 135 | 136) || icmp_code != 0 {
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
    let (l4, _) = nd_at(frame)?;
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

/// Sets the MAC of a neighbor discovery message's source (`Sll`) or target (`Tll`)
/// link-layer address option, patching the ICMPv6 checksum.
///
/// As OVS (`odp_set_nd`, `packet_set_nd`): the options are walked until the first
/// 8-byte SLL or TLL option, and only that one is looked at; if it is of the other kind,
/// or there is none, nothing is written (no option is added) and this returns `Ok`. The
/// walk reproduces OVS's exactly, including its length bookkeeping (after moving to the
/// next option it subtracts *that* option's length).
pub fn set_nd_lla(frame: &mut [u8], which: NdOption, mac: MacAddr) -> Result<()> {
    let (l4, end) = nd_at(frame)?;
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
