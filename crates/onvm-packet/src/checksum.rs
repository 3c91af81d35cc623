//! Internet checksums (RFC 1071) of IPv4, TCP, UDP, ICMPv4 and ICMPv6, and SCTP's
//! CRC32c, fixed in place; and the incremental updates ([`recalc_csum16`]) the in-place
//! field rewrites use.
//!
//! An NF that rewrites addresses, ports or payload bytes must leave the frame with
//! correct checksums, or the receiver drops it silently; [`fix_checksums`] recomputes
//! every checksum the frame has, so an NF can edit freely and call it once at the end.
//! [`verify_checksums`] is the matching check for tests, monitors and sinks.
//!
//! Fragments: the L4 checksum of a fragmented IP packet covers the whole reassembled
//! payload, which one frame does not hold, so both functions handle only the IPv4
//! header checksum of a fragment and leave its L4 checksum alone.
//!
//! IPv6 routing headers are not followed: the pseudo-header uses the destination of the
//! fixed header, which is the final one unless a routing header is present.

use crate::layout::{
    IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_SCTP, IP_PROTO_TCP, IP_PROTO_UDP, IpVersion, Layout, be16,
};
use crate::{Error, Result};

/// The RFC 1071 Internet checksum of `data`: the one's complement of the one's-complement
/// sum of its big-endian 16-bit words (an odd last byte is padded with zero).
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum(data, 0))
}

/// What one frame's checksums cover, found once and used to fix or to verify.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Offset and length of an IPv4 header.
    ipv4_header: Option<(usize, usize)>,
    l4: Option<L4Sum>,
}

/// One L4 checksum: it covers `start..end`, preceded by a pseudo-header if `pseudo`.
#[derive(Debug, Clone, Copy)]
struct L4Sum {
    start: usize,
    end: usize,
    /// Offset of the 16-bit checksum field.
    field: usize,
    /// `(IP version, L3 offset, protocol)` of the pseudo-header, if the checksum has one.
    pseudo: Option<(IpVersion, usize, u8)>,
    /// UDP: a computed 0 is sent as 0xffff, since 0 means "no checksum".
    udp: bool,
    /// SCTP: a 32-bit CRC32c at `field` instead of a 16-bit Internet checksum.
    crc: bool,
}

fn plan(frame: &[u8]) -> Result<Plan> {
    let layout = Layout::of(frame)?;
    let Some(ip) = layout.ip else {
        return Ok(Plan {
            ipv4_header: None,
            l4: None,
        });
    };
    let l3 = layout.l3;
    let ipv4_header = (ip.version == IpVersion::V4).then(|| (l3, usize::from(frame[l3] & 0x0f) * 4));
    let l4 = match ip.l4 {
        Some(l4) if !ip.fragmented => l4,
        _ => return Ok(Plan { ipv4_header, l4: None }),
    };
    let end = ip.end;
    let need = |header: &'static str, len: usize| {
        if l4 + len > end {
            Err(Error::Truncated {
                header,
                need: l4 + len,
                have: end,
            })
        } else {
            Ok(())
        }
    };
    let pseudo = Some((ip.version, l3, ip.proto));
    let sum = match (ip.proto, ip.version) {
        (IP_PROTO_UDP, _) => {
            need("UDP", 8)?;
            let len = usize::from(be16(frame, l4 + 4));
            if len < 8 {
                return Err(Error::Malformed {
                    header: "UDP",
                    reason: "length field below 8",
                });
            }
            need("UDP", len)?;
            L4Sum {
                start: l4,
                end: l4 + len,
                field: l4 + 6,
                pseudo,
                udp: true,
                crc: false,
            }
        }
        (IP_PROTO_TCP, _) => {
            need("TCP", 20)?;
            let header_len = usize::from(frame[l4 + 12] >> 4) * 4;
            if header_len < 20 {
                return Err(Error::Malformed {
                    header: "TCP",
                    reason: "data offset below 5 words",
                });
            }
            need("TCP", header_len)?;
            L4Sum {
                start: l4,
                end,
                field: l4 + 16,
                pseudo,
                udp: false,
                crc: false,
            }
        }
        (IP_PROTO_ICMP, IpVersion::V4) => {
            need("ICMPv4", 8)?;
            L4Sum {
                start: l4,
                end,
                field: l4 + 2,
                pseudo: None,
                udp: false,
                crc: false,
            }
        }
        (IP_PROTO_SCTP, _) => {
            need("SCTP", 12)?;
            L4Sum {
                start: l4,
                end,
                field: l4 + 8,
                pseudo: None,
                udp: false,
                crc: true,
            }
        }
        (IP_PROTO_ICMPV6, IpVersion::V6) => {
            need("ICMPv6", 8)?;
            L4Sum {
                start: l4,
                end,
                field: l4 + 2,
                pseudo,
                udp: false,
                crc: false,
            }
        }
        _ => return Ok(Plan { ipv4_header, l4: None }),
    };
    Ok(Plan {
        ipv4_header,
        l4: Some(sum),
    })
}

/// Recomputes, in place, the IPv4 header checksum and the TCP, UDP, ICMPv4, ICMPv6 or
/// SCTP checksum of `frame`, whichever it has. A frame with none (ARP, other EtherTypes or
/// IP protocols) is left as it is.
///
/// Errors if the IP or L4 header is truncated or malformed; the frame is then unchanged.
pub fn fix_checksums(frame: &mut [u8]) -> Result<()> {
    let plan = plan(frame)?;
    if let Some((at, len)) = plan.ipv4_header {
        frame[at + 10..at + 12].fill(0);
        let c = internet_checksum(&frame[at..at + len]);
        frame[at + 10..at + 12].copy_from_slice(&c.to_be_bytes());
    }
    if let Some(l4) = plan.l4.filter(|l4| l4.crc) {
        let c = sctp_crc(frame, l4.start, l4.end);
        frame[l4.field..l4.field + 4].copy_from_slice(&c.to_le_bytes());
    } else if let Some(l4) = plan.l4 {
        frame[l4.field..l4.field + 2].fill(0);
        let mut c = l4_checksum(frame, &l4);
        if l4.udp && c == 0 {
            c = 0xffff;
        }
        frame[l4.field..l4.field + 2].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

/// Whether every checksum `frame` has (see [`fix_checksums`]) is correct. A UDP-over-IPv4
/// checksum of zero means "none" and counts as correct; over IPv6 it is wrong.
///
/// Errors if the IP or L4 header is truncated or malformed.
pub fn verify_checksums(frame: &[u8]) -> Result<bool> {
    let plan = plan(frame)?;
    if let Some((at, len)) = plan.ipv4_header
        && fold(sum(&frame[at..at + len], 0)) != 0xffff
    {
        return Ok(false);
    }
    if let Some(l4) = plan.l4.filter(|l4| l4.crc) {
        let stored = &frame[l4.field..l4.field + 4];
        return Ok(stored == sctp_crc(frame, l4.start, l4.end).to_le_bytes());
    }
    if let Some(l4) = plan.l4 {
        let stored = be16(frame, l4.field);
        if l4.udp && stored == 0 {
            return Ok(matches!(l4.pseudo, Some((IpVersion::V4, _, _))));
        }
        // Summing over the stored checksum gives all ones when it is right.
        return Ok(!l4_checksum(frame, &l4) == 0xffff);
    }
    Ok(true)
}

/// The checksum over the L4 bytes (with whatever is in the checksum field) and the pseudo-header.
fn l4_checksum(frame: &[u8], l4: &L4Sum) -> u16 {
    let len = l4.end - l4.start;
    let mut acc = 0;
    if let Some((version, l3, proto)) = l4.pseudo {
        acc = match version {
            // Source and destination addresses are adjacent in both headers.
            IpVersion::V4 => sum(&frame[l3 + 12..l3 + 20], 0),
            IpVersion::V6 => sum(&frame[l3 + 8..l3 + 40], 0),
        };
        // The length is 16 bits in the IPv4 pseudo-header and 32 in IPv6's; it fits 16
        // here (it comes from a 16-bit field), and the sum is the same either way.
        acc += u64::from(proto) + len as u64;
    }
    !fold(sum(&frame[l4.start..l4.end], acc))
}

/// Open vSwitch's `recalc_csum16` (lib/csum.c, RFC 1624 eqn. 3): the new checksum of a
/// packet whose checksum was `old_csum` after one 16-bit word went from `old` to `new`.
///
/// Every incremental update in this crate goes through it, one word at a time and in
/// memory order as OVS's `recalc_csum32/48/128` do, so a rewritten frame carries the same
/// checksum bytes as one rewritten by OVS's userspace datapath.
pub fn recalc_csum16(old_csum: u16, old: u16, new: u16) -> u16 {
    !fold(u64::from(!old_csum) + u64::from(!old) + u64::from(new))
}

/// [`recalc_csum16`] over each 16-bit word of `old` → `new` (equal, even lengths).
pub(crate) fn recalc_words(mut csum: u16, old: &[u8], new: &[u8]) -> u16 {
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        csum = recalc_csum16(csum, u16::from_be_bytes([o[0], o[1]]), u16::from_be_bytes([n[0], n[1]]));
    }
    csum
}

/// Patches the 16-bit checksum stored at `at` for `old` → `new` (see [`recalc_words`]).
/// Callers have checked that `at + 2 <= frame.len()`.
pub(crate) fn patch_csum(frame: &mut [u8], at: usize, old: &[u8], new: &[u8]) {
    let c = recalc_words(be16(frame, at), old, new);
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// CRC32c (Castagnoli, reflected polynomial 0x82f63b78), as SCTP uses it (RFC 9260
/// appendix A). The value is stored in the SCTP header as its little-endian bytes.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

/// Feeds `data` into a running (non-inverted) CRC32c register.
fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = CRC32C_TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    crc
}

/// The byte-at-a-time table of the reflected Castagnoli polynomial.
const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC32c of an SCTP packet `l4..end` computed with its checksum field (at `l4 + 8`)
/// taken as zero, as RFC 9260 defines it. Callers have checked `l4 + 12 <= end <= len`.
pub(crate) fn sctp_crc(frame: &[u8], l4: usize, end: usize) -> u32 {
    let mut crc = crc32c_update(!0, &frame[l4..l4 + 8]);
    crc = crc32c_update(crc, &[0; 4]);
    !crc32c_update(crc, &frame[l4 + 12..end])
}

/// Adds the big-endian 16-bit words of `data` to `acc` (no folding; a `u64` cannot
/// overflow on any frame; an odd last byte is padded with zero). With [`fold`], the
/// building block of every Internet checksum: sums of pieces (a pseudo-header, a
/// precomputed base) add up before one fold.
pub fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds carries back in until the sum fits 16 bits (the checksum is its complement).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Build;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn eth() -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
        PacketBuilder::ethernet2([1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12])
    }

    /// One frame of each kind, with etherparse's (correct) checksums.
    fn samples(payload: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let v4 = ([192, 168, 1, 1], [10, 0, 0, 9]);
        let v6 = (
            [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
        );
        vec![
            ("udp4", eth().ipv4(v4.0, v4.1, 64).udp(1234, 53).build(payload).unwrap()),
            ("udp6", eth().ipv6(v6.0, v6.1, 64).udp(1234, 53).build(payload).unwrap()),
            (
                "tcp4",
                eth()
                    .ipv4(v4.0, v4.1, 64)
                    .tcp(80, 5555, 7, 100)
                    .syn()
                    .ack(9)
                    .build(payload)
                    .unwrap(),
            ),
            (
                "tcp6",
                eth()
                    .ipv6(v6.0, v6.1, 64)
                    .tcp(80, 5555, 7, 100)
                    .psh()
                    .build(payload)
                    .unwrap(),
            ),
            (
                "vlan-udp4",
                eth()
                    .single_vlan(100.try_into().unwrap())
                    .ipv4(v4.0, v4.1, 3)
                    .udp(1, 2)
                    .build(payload)
                    .unwrap(),
            ),
            (
                "icmp4",
                eth()
                    .ipv4(v4.0, v4.1, 64)
                    .icmpv4_echo_request(1, 2)
                    .build(payload)
                    .unwrap(),
            ),
            (
                "icmp6",
                eth()
                    .ipv6(v6.0, v6.1, 64)
                    .icmpv6_echo_request(1, 2)
                    .build(payload)
                    .unwrap(),
            ),
        ]
    }

    /// Offsets of the IPv4 header checksum (if any) and the L4 checksum.
    fn checksum_fields(frame: &[u8]) -> Vec<usize> {
        let l = Layout::of(frame).unwrap();
        let ip = l.ip.unwrap();
        let l4 = ip.l4.unwrap();
        let mut v = Vec::new();
        if ip.version == IpVersion::V4 {
            v.push(l.l3 + 10);
        }
        v.push(match ip.proto {
            IP_PROTO_UDP => l4 + 6,
            IP_PROTO_TCP => l4 + 16,
            _ => l4 + 2,
        });
        v
    }

    #[test]
    fn crc32c_check_values() {
        // The CRC catalogue's check value, and RFC 3720 B.4 (32 zero bytes: sent as
        // aa 36 91 8a, the little-endian bytes of 0x8a9136aa).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xff; 32]), 0x62a8_ab43);
        assert_eq!(crc32c(&[]), 0);
    }

    #[test]
    fn sctp_crc_is_fixed_and_verified() {
        for v6 in [false, true] {
            let good = crate::test_util::sctp(v6);
            let field = if v6 { 54 + 8 } else { 34 + 8 };
            let mut data = good[field - 8..].to_vec();
            data[8..12].fill(0);
            assert_eq!(&good[field..field + 4], &crc32c(&data).to_le_bytes());
            assert_eq!(verify_checksums(&good), Ok(true));
            for i in [field, field + 3, good.len() - 1] {
                let mut bad = good.clone();
                bad[i] ^= 1;
                assert_eq!(verify_checksums(&bad), Ok(false), "byte {i}");
                if i != good.len() - 1 {
                    fix_checksums(&mut bad).unwrap();
                    assert_eq!(bad, good);
                }
            }
            // Only 4 bytes of SCTP header inside the IP packet.
            let mut cut = good[..field - 4].to_vec();
            let (len_at, ip_len) = if v6 { (18, 4u16) } else { (16, 24) };
            cut[len_at..len_at + 2].copy_from_slice(&ip_len.to_be_bytes());
            assert!(matches!(
                verify_checksums(&cut),
                Err(Error::Truncated { header: "SCTP", .. })
            ));
        }
    }

    proptest! {
        /// OVS's word-by-word update lands on the full recompute's value.
        #[test]
        fn recalc_csum16_matches_recompute(data in proptest::collection::vec(any::<u16>(), 1..20), at in any::<prop::sample::Index>(), new in any::<u16>()) {
            let bytes: Vec<u8> = data.iter().flat_map(|w| w.to_be_bytes()).collect();
            let i = at.index(data.len());
            let mut changed = bytes.clone();
            changed[2 * i..2 * i + 2].copy_from_slice(&new.to_be_bytes());
            let sum = internet_checksum(&bytes);
            // All-zero data is the one case where the full sum is -0 and the update +0.
            prop_assume!(changed.iter().any(|&b| b != 0));
            prop_assert_eq!(recalc_csum16(sum, data[i], new), internet_checksum(&changed));
        }
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(internet_checksum(&[0xff]), !0xff00);
        assert_eq!(internet_checksum(&[]), 0xffff);
    }

    #[test]
    fn fix_restores_etherparse_checksums() {
        for (name, good) in samples(b"hello, world!") {
            assert_eq!(verify_checksums(&good), Ok(true), "{name}");
            for field in checksum_fields(&good) {
                let mut bad = good.clone();
                bad[field] ^= 0x5a;
                assert_eq!(verify_checksums(&bad), Ok(false), "{name} field {field}");
                fix_checksums(&mut bad).unwrap();
                assert_eq!(bad, good, "{name} field {field}");
            }
            let mut zeroed = good.clone();
            for field in checksum_fields(&good) {
                zeroed[field..field + 2].fill(0);
            }
            fix_checksums(&mut zeroed).unwrap();
            assert_eq!(zeroed, good, "{name}");
        }
    }

    #[test]
    fn payload_edit_is_caught_and_fixed() {
        for (name, good) in samples(&[0x11; 33]) {
            let mut f = good.clone();
            let last = f.len() - 1;
            f[last] = 0x22;
            assert_eq!(verify_checksums(&f), Ok(false), "{name}");
            fix_checksums(&mut f).unwrap();
            assert_eq!(verify_checksums(&f), Ok(true), "{name}");
            assert_ne!(f, good, "{name}");
        }
    }

    #[test]
    fn ethernet_padding_is_ignored() {
        for (name, good) in samples(b"x") {
            let mut padded = good.clone();
            padded.resize(good.len().max(60) + 7, 0xee);
            assert_eq!(verify_checksums(&padded), Ok(true), "{name}");
            let mut fixed = padded.clone();
            fix_checksums(&mut fixed).unwrap();
            assert_eq!(fixed, padded, "{name}");
        }
    }

    #[test]
    fn udp4_zero_checksum_means_none() {
        let (_, mut f) = samples(b"abc").remove(0);
        let field = checksum_fields(&f)[1];
        f[field..field + 2].fill(0);
        assert_eq!(verify_checksums(&f), Ok(true));
        let (_, mut f6) = samples(b"abc").remove(1);
        let field = checksum_fields(&f6)[0];
        f6[field..field + 2].fill(0);
        assert_eq!(verify_checksums(&f6), Ok(false));
    }

    #[test]
    fn computed_zero_udp_checksum_is_sent_as_ffff() {
        // Search a payload word that makes the UDP checksum come out as 0.
        let (_, base) = samples(&[0, 0]).remove(0);
        let end = base.len();
        let found = (0..=u16::MAX).find_map(|w| {
            let mut f = base.clone();
            f[end - 2..].copy_from_slice(&w.to_be_bytes());
            fix_checksums(&mut f).unwrap();
            (u16::from_be_bytes([f[40], f[41]]) == 0xffff).then_some(f)
        });
        let f = found.expect("some payload word gives a zero sum");
        assert_eq!(verify_checksums(&f), Ok(true));
    }

    #[test]
    fn non_ip_and_other_protocols_are_left_alone() {
        let arp = [&[0xffu8; 12][..], &[0x08, 0x06], &[0xab; 46]].concat();
        let mut f = arp.clone();
        fix_checksums(&mut f).unwrap();
        assert_eq!(f, arp);
        assert_eq!(verify_checksums(&arp), Ok(true));

        // IPv4 carrying GRE (47): only the header checksum is fixed.
        let (_, mut f) = samples(b"abcdefgh").remove(0);
        f[23] = 47;
        assert_eq!(verify_checksums(&f), Ok(false));
        fix_checksums(&mut f).unwrap();
        assert_eq!(verify_checksums(&f), Ok(true));
    }

    #[test]
    fn fragments_get_only_the_ip_header_fixed() {
        let (_, good) = samples(b"abcdefgh").remove(0);
        let mut f = good.clone();
        f[20] = 0x20; // more fragments
        f[40] ^= 0xff; // break the UDP checksum: it cannot be checked on a fragment
        fix_checksums(&mut f).unwrap();
        assert_eq!(verify_checksums(&f), Ok(true));
        assert_eq!(f[40], good[40] ^ 0xff);
    }

    #[test]
    fn malformed_l4_is_an_error() {
        let (_, good) = samples(b"abcdefgh").remove(0);
        let mut f = good.clone();
        f[38..40].copy_from_slice(&100u16.to_be_bytes()); // UDP length past the IP packet
        assert!(matches!(
            fix_checksums(&mut f),
            Err(Error::Truncated { header: "UDP", .. })
        ));
        f[38..40].copy_from_slice(&3u16.to_be_bytes());
        assert!(matches!(
            verify_checksums(&f),
            Err(Error::Malformed { header: "UDP", .. })
        ));
        let (_, mut t) = samples(b"").remove(2);
        t[14 + 20 + 12] = 0x40;
        assert!(matches!(
            fix_checksums(&mut t),
            Err(Error::Malformed { header: "TCP", .. })
        ));
        assert_eq!(fix_checksums(&mut [0u8; 5]), Err(Error::TooShortForEthernet { len: 5 }));
    }

    proptest! {
        #[test]
        fn random_payloads_and_headers(
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            corrupt in any::<prop::sample::Index>(),
            byte in 1u8..,
        ) {
            for (name, good) in samples(&payload) {
                let fields = checksum_fields(&good);
                let field = fields[corrupt.index(fields.len())];
                let mut bad = good.clone();
                bad[field + corrupt.index(2)] ^= byte;
                // 0 and 0xffff are the two forms of one's-complement zero (and 0 is "no
                // checksum" for UDP over IPv4): a corruption into one may still verify.
                if ![0, 0xffff].contains(&be16(&bad, field)) {
                    prop_assert_eq!(verify_checksums(&bad), Ok(false), "{}", name);
                }
                fix_checksums(&mut bad).unwrap();
                prop_assert_eq!(&bad, &good, "{}", name);
            }
        }

        #[test]
        fn random_bytes_never_panic(mut frame in proptest::collection::vec(any::<u8>(), 0..200), ip6 in any::<bool>()) {
            if frame.len() >= 15 {
                frame[12..14].copy_from_slice(if ip6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
                frame[14] = if ip6 { 0x60 } else { 0x45 };
            }
            let verified = verify_checksums(&frame);
            let fixed = fix_checksums(&mut frame);
            prop_assert_eq!(verified.is_ok(), fixed.is_ok());
            if fixed.is_ok() {
                prop_assert_eq!(verify_checksums(&frame), Ok(true));
            }
        }
    }
}
