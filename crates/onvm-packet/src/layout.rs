//! Where the headers of a frame start, found from a few header bytes.
//!
//! In-place edits (MAC/IP/port swaps, checksum fixes) need only offsets, not typed
//! headers, and they run on every packet of a forwarding NF; so instead of a full
//! parse this module reads the EtherType, VLAN tags, the IP header length and IPv6
//! extension headers directly, bounds-checking every read. The result, [`Layout`], is
//! plain data the edit and checksum functions index the frame with.
//!
//! Lengths come from the headers, not from the frame: an IP packet ends where its
//! length field says, so Ethernet padding after it (a 60-byte frame carrying a short
//! packet) never leaks into a checksum.

use crate::{ETHERNET_HEADER_LEN, Error, Result, VLAN_TAG_LEN};

/// EtherType of IPv4.
pub const ETHER_TYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHER_TYPE_IPV6: u16 = 0x86dd;
/// EtherType of ARP.
pub const ETHER_TYPE_ARP: u16 = 0x0806;
/// EtherType of RARP (its packet has ARP's layout).
pub const ETHER_TYPE_RARP: u16 = 0x8035;
/// EtherType of MPLS unicast.
pub const ETHER_TYPE_MPLS: u16 = 0x8847;
/// EtherType of MPLS multicast.
pub const ETHER_TYPE_MPLS_MCAST: u16 = 0x8848;
/// EtherTypes announcing a VLAN tag: 802.1Q, 802.1ad (QinQ) and the old 0x9100 QinQ.
pub const VLAN_ETHER_TYPES: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Most VLAN tags followed before the EtherType is taken as final (etherparse's limit too).
pub const MAX_VLAN_TAGS: usize = 3;

/// IP protocol number of ICMPv4.
pub const IP_PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IP_PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTO_UDP: u8 = 17;
/// IP protocol number of ICMPv6.
pub const IP_PROTO_ICMPV6: u8 = 58;
/// IP protocol number of SCTP.
pub const IP_PROTO_SCTP: u8 = 132;

/// Length of an IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Length of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Length of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Length of a TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// Length of the SCTP common header.
pub const SCTP_HEADER_LEN: usize = 12;

/// IP version of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Where the IP packet of a frame lies and what it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpLayout {
    /// IPv4 or IPv6.
    pub version: IpVersion,
    /// Offset one past the IP packet, from its length field; bytes after it are padding.
    pub end: usize,
    /// Protocol of the payload, after any IPv6 extension headers.
    pub proto: u8,
    /// Offset of the L4 header (after IPv4 options / IPv6 extension headers), `None` for a
    /// non-first fragment, which carries none.
    pub l4: Option<usize>,
    /// Whether the packet is a fragment (first or not); its L4 checksum covers bytes that
    /// are not in this frame.
    pub fragmented: bool,
}

/// Offsets of the headers in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// EtherType after any VLAN tags.
    pub ether_type: u16,
    /// Number of VLAN tags between the Ethernet header and L3.
    pub vlan_tags: usize,
    /// Offset of the L3 header (after the Ethernet header and VLAN tags).
    pub l3: usize,
    /// The IP packet, if `ether_type` is IPv4 or IPv6.
    pub ip: Option<IpLayout>,
}

impl Layout {
    /// Finds the headers of `frame`. An IP header that is truncated or malformed is an
    /// error; a frame that is not IP gives a layout with `ip: None`.
    pub fn of(frame: &[u8]) -> Result<Layout> {
        let (l3, ether_type, vlan_tags) = link(frame)?;
        let ip = match ether_type {
            ETHER_TYPE_IPV4 => Some(ipv4(frame, l3)?),
            ETHER_TYPE_IPV6 => Some(ipv6(frame, l3)?),
            _ => None,
        };
        Ok(Layout {
            ether_type,
            vlan_tags,
            l3,
            ip,
        })
    }

    /// The IP part of the layout, or [`Error::NotIp`].
    pub fn ip(&self) -> Result<&IpLayout> {
        self.ip.as_ref().ok_or(Error::NotIp {
            ether_type: self.ether_type,
        })
    }

    /// Offset of the L4 header, if the frame is IP and not a non-first fragment.
    pub fn l4(&self) -> Option<usize> {
        self.ip.and_then(|ip| ip.l4)
    }

    /// Offset and protocol of a TCP or UDP header, checking that the frame holds its
    /// fixed part (ports, and for TCP the checksum) within the IP packet.
    pub(crate) fn tcp_udp(&self) -> Result<(usize, u8, usize)> {
        let ip = self.ip()?;
        if ip.proto != IP_PROTO_TCP && ip.proto != IP_PROTO_UDP {
            return Err(Error::NotTcpUdp { ip_proto: ip.proto });
        }
        let l4 = ip.l4.ok_or(Error::NoL4Header)?;
        let (header, min) = if ip.proto == IP_PROTO_TCP {
            ("TCP", TCP_HEADER_LEN)
        } else {
            ("UDP", UDP_HEADER_LEN)
        };
        if l4 + min > ip.end {
            return Err(Error::Truncated {
                header,
                need: l4 + min,
                have: ip.end,
            });
        }
        Ok((l4, ip.proto, ip.end))
    }
}

/// Offset of the L3 header: after the Ethernet header and any VLAN tags. `None` if the
/// frame is too short for them.
pub fn l3_offset(frame: &[u8]) -> Option<usize> {
    link(frame).ok().map(|(l3, _, _)| l3)
}

/// Offset of the L4 header of an IPv4/IPv6 frame, after IPv4 options and IPv6 extension
/// headers. `None` if the frame is not IP, its IP header is truncated or malformed, or it
/// is a non-first fragment.
pub fn l4_offset(frame: &[u8]) -> Option<usize> {
    Layout::of(frame).ok()?.l4()
}

/// Ethernet header and VLAN tags: `(l3 offset, EtherType, number of tags)`.
pub(crate) fn link(frame: &[u8]) -> Result<(usize, u16, usize)> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return Err(Error::TooShortForEthernet { len: frame.len() });
    }
    let mut l3 = ETHERNET_HEADER_LEN;
    let mut ether_type = be16(frame, 12);
    let mut tags = 0;
    while tags < MAX_VLAN_TAGS && VLAN_ETHER_TYPES.contains(&ether_type) {
        if frame.len() < l3 + VLAN_TAG_LEN {
            return Err(Error::Truncated {
                header: "VLAN",
                need: l3 + VLAN_TAG_LEN,
                have: frame.len(),
            });
        }
        ether_type = be16(frame, l3 + 2);
        l3 += VLAN_TAG_LEN;
        tags += 1;
    }
    Ok((l3, ether_type, tags))
}

fn ipv4(frame: &[u8], l3: usize) -> Result<IpLayout> {
    const H: &str = "IPv4";
    let have = frame.len();
    if have < l3 + IPV4_HEADER_LEN {
        return Err(Error::Truncated {
            header: H,
            need: l3 + IPV4_HEADER_LEN,
            have,
        });
    }
    if frame[l3] >> 4 != 4 {
        return Err(Error::Malformed {
            header: H,
            reason: "version field is not 4",
        });
    }
    let header_len = usize::from(frame[l3] & 0x0f) * 4;
    if header_len < IPV4_HEADER_LEN {
        return Err(Error::Malformed {
            header: H,
            reason: "header length (IHL) below 5 words",
        });
    }
    if have < l3 + header_len {
        return Err(Error::Truncated {
            header: H,
            need: l3 + header_len,
            have,
        });
    }
    let total_len = usize::from(be16(frame, l3 + 2));
    if total_len < header_len {
        return Err(Error::Malformed {
            header: H,
            reason: "total length smaller than the header",
        });
    }
    if have < l3 + total_len {
        return Err(Error::Truncated {
            header: H,
            need: l3 + total_len,
            have,
        });
    }
    let frag = be16(frame, l3 + 6);
    let offset = frag & 0x1fff;
    let more_fragments = frag & 0x2000 != 0;
    Ok(IpLayout {
        version: IpVersion::V4,
        end: l3 + total_len,
        proto: frame[l3 + 9],
        l4: (offset == 0).then_some(l3 + header_len),
        fragmented: more_fragments || offset != 0,
    })
}

fn ipv6(frame: &[u8], l3: usize) -> Result<IpLayout> {
    const H: &str = "IPv6";
    let have = frame.len();
    if have < l3 + IPV6_HEADER_LEN {
        return Err(Error::Truncated {
            header: H,
            need: l3 + IPV6_HEADER_LEN,
            have,
        });
    }
    if frame[l3] >> 4 != 6 {
        return Err(Error::Malformed {
            header: H,
            reason: "version field is not 6",
        });
    }
    let end = l3 + IPV6_HEADER_LEN + usize::from(be16(frame, l3 + 4));
    if have < end {
        return Err(Error::Truncated {
            header: H,
            need: end,
            have,
        });
    }
    let mut proto = frame[l3 + 6];
    let mut at = l3 + IPV6_HEADER_LEN;
    let mut fragmented = false;
    loop {
        const EXT: &str = "IPv6 extension";
        let len = match proto {
            // Hop-by-hop, routing, destination options: length in 8-byte units, not counting the first.
            0 | 43 | 60 => {
                if end < at + 2 {
                    return Err(Error::Truncated {
                        header: EXT,
                        need: at + 2,
                        have: end,
                    });
                }
                (usize::from(frame[at + 1]) + 1) * 8
            }
            // Fragment header: fixed 8 bytes.
            44 => 8,
            // Authentication header: length in 4-byte units, not counting the first two.
            51 => {
                if end < at + 2 {
                    return Err(Error::Truncated {
                        header: EXT,
                        need: at + 2,
                        have: end,
                    });
                }
                (usize::from(frame[at + 1]) + 2) * 4
            }
            _ => break,
        };
        if end < at + len {
            return Err(Error::Truncated {
                header: EXT,
                need: at + len,
                have: end,
            });
        }
        let next = frame[at];
        if proto == 44 {
            fragmented = true;
            if be16(frame, at + 2) >> 3 != 0 {
                // A non-first fragment: what follows is the middle of the payload.
                return Ok(IpLayout {
                    version: IpVersion::V6,
                    end,
                    proto: next,
                    l4: None,
                    fragmented,
                });
            }
        }
        proto = next;
        at += len;
    }
    Ok(IpLayout {
        version: IpVersion::V6,
        end,
        proto,
        l4: Some(at),
        fragmented,
    })
}

/// Big-endian `u16` at `at`; callers have checked the bounds.
pub(crate) fn be16(frame: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([frame[at], frame[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Build;
    use etherparse::{IpNumber, Ipv6FragmentHeader, PacketBuilder};
    use proptest::prelude::*;

    fn udp4() -> Vec<u8> {
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .build(&[9; 5])
            .unwrap()
    }

    #[test]
    fn plain_ipv4_udp() {
        let f = udp4();
        let l = Layout::of(&f).unwrap();
        assert_eq!((l.ether_type, l.vlan_tags, l.l3), (ETHER_TYPE_IPV4, 0, 14));
        let ip = l.ip.unwrap();
        assert_eq!(
            ip,
            IpLayout {
                version: IpVersion::V4,
                end: f.len(),
                proto: 17,
                l4: Some(34),
                fragmented: false
            }
        );
        assert_eq!(l3_offset(&f), Some(14));
        assert_eq!(l4_offset(&f), Some(34));
    }

    #[test]
    fn padding_is_not_part_of_the_ip_packet() {
        let mut f = udp4();
        let ip_end = f.len();
        f.resize(60, 0);
        assert_eq!(Layout::of(&f).unwrap().ip.unwrap().end, ip_end);
    }

    #[test]
    fn vlan_tags_are_skipped() {
        let f = PacketBuilder::ethernet2([1; 6], [2; 6])
            .single_vlan(42.try_into().unwrap())
            .ipv6([1; 16], [2; 16], 64)
            .tcp(1, 2, 3, 4)
            .build(&[])
            .unwrap();
        let l = Layout::of(&f).unwrap();
        assert_eq!((l.ether_type, l.vlan_tags, l.l3), (ETHER_TYPE_IPV6, 1, 18));
        assert_eq!(l.l4(), Some(58));

        // QinQ by hand: 0x88a8 outer, 0x8100 inner.
        let mut q = f[..12].to_vec();
        q.extend_from_slice(&[0x88, 0xa8, 0, 7]);
        q.extend_from_slice(&f[12..]);
        let l = Layout::of(&q).unwrap();
        assert_eq!((l.vlan_tags, l.l3, l.l4()), (2, 22, Some(62)));
    }

    #[test]
    fn ipv4_options_move_l4() {
        let mut f = udp4();
        // Insert 4 bytes of options (NOPs) and fix IHL and total length.
        f.splice(34..34, [1, 1, 1, 0]);
        f[14] = 0x46;
        let total = u16::from_be_bytes([f[16], f[17]]) + 4;
        f[16..18].copy_from_slice(&total.to_be_bytes());
        assert_eq!(l4_offset(&f), Some(38));
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        use etherparse::{Ipv6Header, Ipv6RawExtHeader};
        let ext = Ipv6RawExtHeader::new_raw(IpNumber::UDP, &[0; 6]).unwrap();
        let ip = Ipv6Header {
            payload_length: (ext.header_len() + 8) as u16,
            next_header: IpNumber::IPV6_HEADER_HOP_BY_HOP,
            hop_limit: 1,
            ..Default::default()
        };
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ETHER_TYPE_IPV6.to_be_bytes());
        f.extend_from_slice(&ip.to_bytes());
        f.extend_from_slice(&ext.to_bytes());
        f.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        let ip = Layout::of(&f).unwrap().ip.unwrap();
        assert_eq!((ip.proto, ip.l4, ip.fragmented), (17, Some(14 + 40 + 8), false));
    }

    #[test]
    fn fragments() {
        let mut f = udp4();
        f[20] = 0x20; // MF, offset 0: first fragment, L4 header present
        let ip = Layout::of(&f).unwrap().ip.unwrap();
        assert_eq!((ip.l4, ip.fragmented), (Some(34), true));
        f[21] = 1; // offset 8
        let ip = Layout::of(&f).unwrap().ip.unwrap();
        assert_eq!((ip.l4, ip.fragmented), (None, true));

        let frag = Ipv6FragmentHeader::new(IpNumber::UDP, 1.try_into().unwrap(), false, 7);
        let mut v6 = vec![0u8; 12];
        v6.extend_from_slice(&ETHER_TYPE_IPV6.to_be_bytes());
        let ip = etherparse::Ipv6Header {
            payload_length: 16,
            next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
            ..Default::default()
        };
        v6.extend_from_slice(&ip.to_bytes());
        v6.extend_from_slice(&frag.to_bytes());
        v6.extend_from_slice(&[0; 8]);
        let ip = Layout::of(&v6).unwrap().ip.unwrap();
        assert_eq!((ip.proto, ip.l4, ip.fragmented), (17, None, true));
    }

    #[test]
    fn errors_name_the_header() {
        assert_eq!(Layout::of(&[0; 10]), Err(Error::TooShortForEthernet { len: 10 }));
        assert_eq!(l3_offset(&[0; 10]), None);
        let mut f = vec![0; 14];
        f[12] = 0x81;
        assert_eq!(
            Layout::of(&f),
            Err(Error::Truncated {
                header: "VLAN",
                need: 18,
                have: 14
            })
        );
        let f = udp4();
        assert_eq!(
            Layout::of(&f[..30]),
            Err(Error::Truncated {
                header: "IPv4",
                need: 34,
                have: 30
            })
        );
        assert_eq!(
            Layout::of(&f[..40]),
            Err(Error::Truncated {
                header: "IPv4",
                need: f.len(),
                have: 40
            })
        );
        assert_eq!(l3_offset(&f[..40]), Some(14));
        assert_eq!(l4_offset(&f[..40]), None);
        let mut bad = f.clone();
        bad[14] = 0x44;
        assert!(matches!(Layout::of(&bad), Err(Error::Malformed { header: "IPv4", .. })));
        bad[14] = 0x65;
        assert!(matches!(Layout::of(&bad), Err(Error::Malformed { header: "IPv4", .. })));
        let arp = [&[0u8; 12][..], &[0x08, 0x06], &[0; 28]].concat();
        let l = Layout::of(&arp).unwrap();
        assert_eq!((l.ip, l.l4()), (None, None));
        assert_eq!(
            l.ip(),
            Err(Error::NotIp {
                ether_type: ETHER_TYPE_ARP
            })
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Layout::of(&frame);
            let _ = l3_offset(&frame);
            let _ = l4_offset(&frame);
        }

        #[test]
        fn random_ip_frames_never_panic(
            ether_type in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100)],
            rest in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let frame = [&[0u8; 12][..], &ether_type.to_be_bytes(), &rest].concat();
            if let Ok(l) = Layout::of(&frame) && let Some(ip) = l.ip {
                prop_assert!(ip.end <= frame.len());
                if let Some(l4) = ip.l4 { prop_assert!(l4 <= ip.end); }
            }
        }
    }
}
