//! Undoing what the kernel's offloads did to a frame a packet socket received, on byte
//! buffers (pure functions: no socket, no ring).
//!
//! Three things make the frame the kernel hands a packet socket differ from what was on
//! the wire, each announced in the ring frame's header:
//! - **VLAN tag taken out** (`TP_STATUS_VLAN_VALID`): the receive path moves the outer
//!   802.1Q or 802.1ad tag into `tp_vlan_tci` (`tp_vlan_tpid`, valid with
//!   `TP_STATUS_VLAN_TPID_VALID`, says which) whatever the driver's offload settings;
//!   [`write_tagged`] puts it back after the MAC addresses. An inner tag (QinQ) stays in
//!   the frame.
//! - **Partial checksum** (`TP_STATUS_CSUMNOTREADY`): a frame sent with checksum offload
//!   (the default on veth, and on a host's own traffic to a NIC) carries in its TCP or
//!   UDP checksum field only the sum of the pseudo-header; [`complete_checksum`]
//!   computes the whole checksum.
//! - **Super-frame** (segmentation offload, `TP_STATUS_GSO_TCP`, or GRO on a NIC): one
//!   TCP frame of up to 64 KiB stands for many that fit the MTU. The packet socket
//!   gives no segment size, so [`TcpSplit`] cuts it into segments whose IP packets are
//!   the interface's MTU long, as TCP segmentation would have cut it, each with its IPv4
//!   ID, sequence number, flags, lengths and checksums.
//!
//! Every offset is checked against the frame before it is read (the frame comes from
//! another host); a frame these functions cannot handle is left alone and the caller
//! counts it.

/// The TPID of an 802.1Q tag: what a tag is given when the kernel did not say
/// (`TP_STATUS_VLAN_TPID_VALID` clear).
pub(crate) const TPID_8021Q: u16 = 0x8100;
/// EtherTypes that announce a VLAN tag: 802.1Q, 802.1ad and the old QinQ 0x9100.
const VLAN_TPIDS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// Most VLAN tags skipped before the EtherType is taken as final.
const MAX_TAGS: usize = 3;
/// Length of a VLAN tag.
pub(crate) const TAG_LEN: usize = 4;

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

/// A VLAN tag the kernel took out of a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VlanTag {
    /// 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub tpid: u16,
    /// Priority, DEI and VLAN ID.
    pub tci: u16,
}

impl VlanTag {
    /// The tag of a ring frame header: `None` unless `TP_STATUS_VLAN_VALID` (a TCI of 0,
    /// a priority tag, is a tag too); the TPID is 802.1Q unless the kernel gave one.
    pub fn from_ring(status: u32, tci: u16, tpid: u16) -> Option<VlanTag> {
        if status & libc::TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
            tpid
        } else {
            TPID_8021Q
        };
        Some(VlanTag { tpid, tci })
    }

    /// Put the tag back after the MAC addresses of the frame `tagged[TAG_LEN..]`: the
    /// caller made room for it in front (the content of `tagged[..TAG_LEN]` does not
    /// matter), and on success `tagged` is the frame as it was on the wire. The one
    /// piece of code every port that gets tags taken out uses (AF_PACKET here, the DPDK
    /// port for `net_af_packet`): [`onvm_packet::push_vlan_tci`]. False (nothing
    /// written) if that frame has no Ethernet header or the TPID is neither 802.1Q nor
    /// 802.1ad (the kernel takes out no other).
    pub fn push(self, tagged: &mut [u8]) -> bool {
        onvm_packet::push_vlan_tci(tagged, self.tpid, self.tci).is_ok()
    }
}

/// Write `frame` into `dst` with `tag` put back after the MAC addresses
/// ([`VlanTag::push`]); `dst` must be exactly [`TAG_LEN`] bytes longer than `frame`.
/// False (nothing written) if the frame is too short to have an Ethernet header, `dst`
/// has another length or the tag's TPID is neither 802.1Q nor 802.1ad.
pub(crate) fn write_tagged(frame: &[u8], tag: VlanTag, dst: &mut [u8]) -> bool {
    if frame.len() < 14
        || dst.len() != frame.len() + TAG_LEN
        || !matches!(tag.tpid, onvm_packet::TPID_8021Q | onvm_packet::TPID_8021AD)
    {
        return false;
    }
    dst[TAG_LEN..].copy_from_slice(frame);
    tag.push(dst)
}

/// Where the TCP or UDP segment of a frame is, found by [`l4_of`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct L4 {
    /// Offset of the IP header.
    l3: usize,
    v6: bool,
    /// Offset of the TCP or UDP header.
    l4: usize,
    proto: u8,
    /// One past the IP packet (from its length field; bytes after it are padding).
    end: usize,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// The TCP or UDP segment of an unfragmented IPv4 or IPv6 packet in `frame` (after up to
/// three VLAN tags, IPv4 options and IPv6 hop-by-hop, routing and destination options
/// headers), with every header inside the IP packet and the IP packet inside the frame.
fn l4_of(frame: &[u8]) -> Option<L4> {
    let mut off = 12;
    let mut ether_type = be16(frame.get(..14)?, 12);
    for _ in 0..MAX_TAGS {
        if !VLAN_TPIDS.contains(&ether_type) {
            break;
        }
        off += TAG_LEN;
        ether_type = be16(frame.get(..off + 2)?, off);
    }
    let l3 = off + 2;
    let (v6, l4, proto, end) = match ether_type {
        0x0800 => {
            let h = frame.get(l3..l3 + 20)?;
            let ihl = usize::from(h[0] & 0x0f) * 4;
            let total = usize::from(be16(h, 2));
            // More fragments, or a fragment offset: not a whole segment.
            if h[0] >> 4 != 4 || ihl < 20 || total < ihl || be16(h, 6) & 0x3fff != 0 {
                return None;
            }
            (false, l3 + ihl, h[9], l3 + total)
        }
        0x86dd => {
            let h = frame.get(l3..l3 + 40)?;
            if h[0] >> 4 != 6 {
                return None;
            }
            let end = l3 + 40 + usize::from(be16(h, 4));
            let (mut next, mut at) = (h[6], l3 + 40);
            // Hop-by-hop, routing, destination options; a fragment header (44) or
            // anything else ends the walk.
            while matches!(next, 0 | 43 | 60) {
                let e = frame.get(at..at + 2)?;
                next = e[0];
                at += (usize::from(e[1]) + 1) * 8;
            }
            (true, at, next, end)
        }
        _ => return None,
    };
    let min = match proto {
        PROTO_TCP => 20,
        PROTO_UDP => 8,
        _ => return None,
    };
    if end > frame.len() || l4 + min > end {
        return None;
    }
    Some(L4 { l3, v6, l4, proto, end })
}

/// Adds the big-endian 16-bit words of `data` to `acc` (an odd last byte padded with 0).
fn sum(data: &[u8], mut acc: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// Offset of the checksum field of the segment `p` describes.
fn field(p: &L4) -> usize {
    p.l4 + if p.proto == PROTO_TCP { 16 } else { 6 }
}

/// The one's-complement sum of the pseudo-header of `p` (addresses, protocol, length).
fn pseudo_sum(frame: &[u8], p: &L4) -> u64 {
    let addrs = if p.v6 {
        &frame[p.l3 + 8..p.l3 + 40]
    } else {
        &frame[p.l3 + 12..p.l3 + 20]
    };
    sum(addrs, u64::from(p.proto) + (p.end - p.l4) as u64)
}

/// Compute and store the whole TCP or UDP checksum of `p` in `frame`.
fn store_checksum(frame: &mut [u8], p: &L4) {
    let f = field(p);
    frame[f..f + 2].fill(0);
    let mut c = !fold(sum(&frame[p.l4..p.end], pseudo_sum(frame, p)));
    if p.proto == PROTO_UDP && c == 0 {
        // 0 means "no checksum" in UDP: a computed 0 is sent as all ones.
        c = 0xffff;
    }
    frame[f..f + 2].copy_from_slice(&c.to_be_bytes());
}

/// Complete the checksum of a frame the kernel flagged `TP_STATUS_CSUMNOTREADY`: the
/// TCP or UDP checksum of its (outermost) IP packet is computed over the pseudo-header
/// and the whole segment and stored. False, with the frame unchanged, if it carries no
/// whole TCP or UDP segment (the kernel offloads no other checksum but SCTP's CRC32c,
/// which is not completed).
pub(crate) fn complete_checksum(frame: &mut [u8]) -> bool {
    match l4_of(frame) {
        Some(p) => {
            store_checksum(frame, &p);
            true
        }
        None => false,
    }
}

/// Whether the TCP or UDP checksum of `frame` holds only the pseudo-header sum (what a
/// sender with checksum offload leaves in it) and not a whole checksum. `None` if the
/// frame carries no whole TCP or UDP segment. A UDP checksum of 0 ("none") is whole.
///
/// For receive paths that get no `CSUMNOTREADY` flag (AF_XDP): it costs the pseudo-
/// header sum, and the whole-segment sum only for the frames that look partial.
pub(crate) fn checksum_is_partial(frame: &[u8]) -> Option<bool> {
    let p = l4_of(frame)?;
    let stored = be16(frame, field(&p));
    if p.proto == PROTO_UDP && stored == 0 {
        return Some(false);
    }
    if stored != fold(pseudo_sum(frame, &p)) {
        return Some(false);
    }
    // A whole checksum that happens to equal the pseudo-header sum verifies: it stays.
    Some(fold(sum(&frame[p.l4..p.end], pseudo_sum(frame, &p))) != 0xffff)
}

/// How a TCP super-frame is cut into segments that fit an MTU (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpSplit {
    p: L4,
    /// End of the TCP header: the headers every segment repeats are `..hdr_end`.
    hdr_end: usize,
    /// Payload bytes per segment (the last may carry fewer).
    mss: usize,
    /// Segments in all.
    count: usize,
    /// Bytes the tag adds in front of the copied headers.
    shift: usize,
    tag: Option<VlanTag>,
}

impl TcpSplit {
    /// The plan for `frame` (as the ring gives it: without `tag`, which every segment
    /// gets back) if it is a TCP frame whose IP packet is longer than `mtu`; `None` if
    /// it is not TCP, fits, or leaves no room for payload at that MTU.
    pub fn plan(frame: &[u8], tag: Option<VlanTag>, mtu: usize) -> Option<TcpSplit> {
        let p = l4_of(frame)?;
        if p.proto != PROTO_TCP || p.end - p.l3 <= mtu {
            return None;
        }
        let hdr_end = p.l4 + usize::from(frame[p.l4 + 12] >> 4) * 4;
        if hdr_end < p.l4 + 20 || hdr_end > p.end {
            return None;
        }
        let mss = mtu.checked_sub(hdr_end - p.l3).filter(|&m| m > 0)?;
        let payload = p.end - hdr_end;
        Some(TcpSplit {
            p,
            hdr_end,
            mss,
            count: payload.div_ceil(mss),
            shift: if tag.is_some() { TAG_LEN } else { 0 },
            tag,
        })
    }

    /// Segments in all.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Length of segment `i`'s frame (tag included).
    pub fn len(&self, i: usize) -> usize {
        self.shift + self.hdr_end + self.payload(i).len()
    }

    fn payload(&self, i: usize) -> std::ops::Range<usize> {
        let start = self.hdr_end + i * self.mss;
        start..(start + self.mss).min(self.p.end)
    }

    /// Write segment `i` (below [`count`](Self::count)) of `frame` into `dst`, which is
    /// [`len(i)`](Self::len) bytes long.
    pub fn write(&self, frame: &[u8], i: usize, dst: &mut [u8]) {
        let payload = self.payload(i);
        let hdr = self.shift + self.hdr_end;
        debug_assert!(i < self.count && dst.len() == hdr + payload.len());
        match self.tag {
            Some(tag) => {
                write_tagged(&frame[..self.hdr_end], tag, &mut dst[..hdr]);
            }
            None => dst[..hdr].copy_from_slice(&frame[..self.hdr_end]),
        }
        dst[hdr..].copy_from_slice(&frame[payload.clone()]);
        let s = self.shift;
        let p = L4 {
            l3: self.p.l3 + s,
            l4: self.p.l4 + s,
            end: dst.len(),
            ..self.p
        };
        let ip_len = p.end - p.l3;
        if p.v6 {
            dst[p.l3 + 4..p.l3 + 6].copy_from_slice(&((ip_len - 40) as u16).to_be_bytes());
        } else {
            dst[p.l3 + 2..p.l3 + 4].copy_from_slice(&(ip_len as u16).to_be_bytes());
            // Each segment gets the next IPv4 ID, as the kernel's segmentation does.
            let id = be16(dst, p.l3 + 4).wrapping_add(i as u16);
            dst[p.l3 + 4..p.l3 + 6].copy_from_slice(&id.to_be_bytes());
            let ihl = usize::from(dst[p.l3] & 0x0f) * 4;
            dst[p.l3 + 10..p.l3 + 12].fill(0);
            let c = !fold(sum(&dst[p.l3..p.l3 + ihl], 0));
            dst[p.l3 + 10..p.l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let seq = u32::from_be_bytes(dst[p.l4 + 4..p.l4 + 8].try_into().expect("4 bytes"));
        let seq = seq.wrapping_add((payload.start - self.hdr_end) as u32);
        dst[p.l4 + 4..p.l4 + 8].copy_from_slice(&seq.to_be_bytes());
        // FIN and PSH only on the last segment, CWR only on the first.
        if i + 1 < self.count {
            dst[p.l4 + 13] &= !0x09;
        }
        if i > 0 {
            dst[p.l4 + 13] &= !0x80;
        }
        store_checksum(dst, &p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    const V4: ([u8; 4], [u8; 4]) = ([10, 1, 0, 1], [10, 1, 0, 2]);
    const V6: ([u8; 16], [u8; 16]) = ([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [0xfd; 16]);

    /// `builder.write` into a vector of the size it needs (etherparse has no `build`).
    macro_rules! build {
        ($b:expr, $payload:expr) => {{
            let b = $b;
            let payload: &[u8] = $payload;
            let mut v = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut v, payload).map(|()| v)
        }};
    }

    fn eth() -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
    }

    fn tcp4(payload: &[u8]) -> Vec<u8> {
        build!(
            eth().ipv4(V4.0, V4.1, 64).tcp(40000, 5001, 1000, 64000).ack(77).psh(),
            payload
        )
        .unwrap()
    }

    /// A frame with etherparse's correct checksums of each kind a checksum is offloaded for.
    fn samples(payload: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("tcp4", tcp4(payload)),
            ("udp4", build!(eth().ipv4(V4.0, V4.1, 64).udp(1, 2), payload).unwrap()),
            (
                "tcp6",
                build!(eth().ipv6(V6.0, V6.1, 64).tcp(1, 2, 3, 4).syn(), payload).unwrap(),
            ),
            ("udp6", build!(eth().ipv6(V6.0, V6.1, 64).udp(1, 2), payload).unwrap()),
            (
                "vlan-tcp4",
                build!(
                    eth()
                        .single_vlan(7.try_into().unwrap())
                        .ipv4(V4.0, V4.1, 64)
                        .tcp(1, 2, 3, 4),
                    payload
                )
                .unwrap(),
            ),
        ]
    }

    /// What a sender with checksum offload puts on the wire: the pseudo-header sum,
    /// not complemented, in the checksum field.
    fn partial(good: &[u8]) -> Vec<u8> {
        let mut f = good.to_vec();
        let p = l4_of(&f).unwrap();
        let at = field(&p);
        let ps = fold(pseudo_sum(&f, &p));
        f[at..at + 2].copy_from_slice(&ps.to_be_bytes());
        f
    }

    fn verifies(frame: &[u8]) -> bool {
        let p = l4_of(frame).unwrap();
        fold(sum(&frame[p.l4..p.end], pseudo_sum(frame, &p))) == 0xffff
    }

    #[test]
    fn a_tag_goes_back_after_the_mac_addresses() {
        let f = tcp4(b"abc");
        let tag = VlanTag::from_ring(libc::TP_STATUS_VLAN_VALID, 0x2064, 0).unwrap();
        assert_eq!(
            tag,
            VlanTag {
                tpid: 0x8100,
                tci: 0x2064
            }
        );
        let mut dst = vec![0; f.len() + 4];
        assert!(write_tagged(&f, tag, &mut dst));
        let want = build!(
            eth()
                .single_vlan(100.try_into().unwrap())
                .ipv4(V4.0, V4.1, 64)
                .tcp(40000, 5001, 1000, 64000)
                .ack(77)
                .psh(),
            b"abc"
        )
        .unwrap();
        // etherparse writes PCP 0: the same frame but for the priority bits.
        assert_eq!(dst[..14], want[..14]);
        assert_eq!(dst[14] & 0x1f, want[14]);
        assert_eq!(dst[15..], want[15..]);
        assert_eq!(dst[14] >> 5, 1, "PCP 1 kept");
        // Too short, or a destination of the wrong length: nothing written.
        assert!(!write_tagged(&f[..11], tag, &mut [0; 15]));
        assert!(!write_tagged(&f, tag, &mut dst[1..]));
        // A TPID the kernel never takes out (0x9100) is refused.
        let old_qinq = VlanTag { tpid: 0x9100, ..tag };
        assert!(!write_tagged(&f, old_qinq, &mut dst));
    }

    #[test]
    fn the_tpid_comes_from_the_ring_when_valid() {
        let both = libc::TP_STATUS_VLAN_VALID | libc::TP_STATUS_VLAN_TPID_VALID;
        assert_eq!(
            VlanTag::from_ring(both, 5, 0x88a8),
            Some(VlanTag { tpid: 0x88a8, tci: 5 })
        );
        assert_eq!(
            VlanTag::from_ring(libc::TP_STATUS_VLAN_VALID, 5, 0x88a8).unwrap().tpid,
            0x8100
        );
        // A priority tag (VID 0, PCP 0) is a tag; no VLAN_VALID is none, whatever the TCI.
        assert_eq!(
            VlanTag::from_ring(both, 0, 0x8100),
            Some(VlanTag { tpid: 0x8100, tci: 0 })
        );
        assert_eq!(VlanTag::from_ring(libc::TP_STATUS_USER, 9, 0x8100), None);
        // 802.1ad outer tag back in front of an inner 802.1Q one: QinQ as sent.
        let qinq = build!(
            eth()
                .double_vlan(10.try_into().unwrap(), 20.try_into().unwrap())
                .ipv4(V4.0, V4.1, 64)
                .udp(1, 2),
            b"q"
        )
        .unwrap();
        let mut stripped = qinq[..12].to_vec();
        stripped.extend_from_slice(&qinq[16..]);
        let tci = be16(&qinq, 14);
        let outer = VlanTag::from_ring(both, tci, be16(&qinq, 12)).unwrap();
        let mut dst = vec![0; qinq.len()];
        assert!(write_tagged(&stripped, outer, &mut dst));
        assert_eq!(dst, qinq);
    }

    #[test]
    fn partial_checksums_are_completed() {
        for payload in [&b""[..], b"x", b"hello, world", &[0xab; 1001]] {
            for (name, good) in samples(payload) {
                assert!(verifies(&good), "{name}");
                let mut f = partial(&good);
                assert!(!verifies(&f), "{name}: a partial checksum does not verify");
                assert_eq!(checksum_is_partial(&f), Some(true), "{name}");
                assert_eq!(checksum_is_partial(&good), Some(false), "{name}");
                assert!(complete_checksum(&mut f), "{name}");
                assert_eq!(f, good, "{name}: the checksum etherparse computes");
            }
        }
    }

    #[test]
    fn padding_is_not_summed_and_odd_lengths_work() {
        let good = build!(eth().ipv4(V4.0, V4.1, 64).udp(1, 2), b"odd").unwrap();
        let mut f = partial(&good);
        f.resize(60, 0xee);
        assert!(complete_checksum(&mut f));
        assert_eq!(f[..good.len()], good[..]);
        assert!(f[good.len()..].iter().all(|&b| b == 0xee));
    }

    #[test]
    fn a_udp_checksum_that_comes_out_zero_is_sent_as_ffff() {
        let base = build!(eth().ipv4(V4.0, V4.1, 64).udp(1, 2), &[0, 0]).unwrap();
        let end = base.len();
        let hit = (0..=u16::MAX)
            .map(|w| {
                let mut f = base.clone();
                f[end - 2..].copy_from_slice(&w.to_be_bytes());
                assert!(complete_checksum(&mut f));
                f
            })
            .find(|f| be16(f, 40) == 0xffff)
            .expect("some payload word sums to zero");
        assert!(verifies(&hit));
        // A UDP checksum of 0 is "none": whole, not partial.
        let mut none = hit.clone();
        none[40..42].fill(0);
        assert_eq!(checksum_is_partial(&none), Some(false));
    }

    #[test]
    fn frames_without_a_whole_segment_are_left_alone() {
        let arp = [&[0xffu8; 12][..], &[0x08, 0x06], &[0xab; 46]].concat();
        let icmp = build!(eth().ipv4(V4.0, V4.1, 64).icmpv4_echo_request(1, 2), b"p").unwrap();
        let mut frag = tcp4(b"fragment");
        frag[20] = 0x20; // more fragments
        let mut cut = tcp4(b"cut short");
        cut.truncate(cut.len() - 3);
        let mut runt = tcp4(b"");
        runt.truncate(40);
        for (name, f) in [
            ("arp", arp),
            ("icmp", icmp),
            ("frag", frag),
            ("cut", cut),
            ("runt", runt),
        ] {
            let mut g = f.clone();
            assert!(!complete_checksum(&mut g), "{name}");
            assert_eq!(g, f, "{name}");
            assert_eq!(checksum_is_partial(&f), None, "{name}");
        }
        assert!(!complete_checksum(&mut [0u8; 5]));
        assert!(!complete_checksum(&mut []));
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        let good = build!(eth().ipv6(V6.0, V6.1, 64).udp(7, 8), b"ext").unwrap();
        // Insert an 8-byte hop-by-hop header between the IPv6 header and UDP.
        let mut f = good[..54].to_vec();
        f.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        f.extend_from_slice(&good[54..]);
        f[20] = 0; // next header: hop-by-hop
        let plen = be16(&f, 18) + 8;
        f[18..20].copy_from_slice(&plen.to_be_bytes());
        let mut p = partial(&f);
        assert!(complete_checksum(&mut p));
        assert_eq!(p[62 + 6..62 + 8], good[54 + 6..54 + 8], "the same UDP checksum");
    }

    /// The segments of a super-frame, parsed: (seq, flags, payload), each checked whole.
    fn split(frame: &[u8], tag: Option<VlanTag>, mtu: usize) -> Vec<(u32, u8, Vec<u8>, Vec<u8>)> {
        let s = TcpSplit::plan(frame, tag, mtu).expect("a plan");
        (0..s.count())
            .map(|i| {
                let mut dst = vec![0; s.len(i)];
                s.write(frame, i, &mut dst);
                assert!(verifies(&dst), "segment {i}: TCP checksum");
                let p = SlicedPacket::from_ethernet(&dst).unwrap();
                let Some(TransportSlice::Tcp(t)) = &p.transport else {
                    panic!("segment {i}: no TCP")
                };
                let ip_len = dst.len() - 14 - if tag.is_some() { 4 } else { 0 };
                assert!(ip_len <= mtu, "segment {i}: {ip_len} > {mtu}");
                let hdr = t.to_header();
                let f = (u8::from(hdr.fin))
                    | (u8::from(hdr.psh) << 3)
                    | (u8::from(hdr.ack) << 4)
                    | (u8::from(hdr.cwr) << 7);
                let payload = t.payload().to_vec();
                drop(p);
                (hdr.sequence_number, f, payload, dst)
            })
            .collect()
    }

    #[test]
    fn a_super_frame_is_cut_into_segments_that_fit_the_mtu() {
        let data: Vec<u8> = (0..7240u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut big = build!(
            eth()
                .ipv4(V4.0, V4.1, 64)
                .tcp(40000, 5001, 1000, 64000)
                .ack(77)
                .psh()
                .fin()
                .cwr(),
            &data
        )
        .unwrap();
        big[18..20].copy_from_slice(&0x1234u16.to_be_bytes()); // IPv4 ID
        let big = partial(&big);
        // 1500 - 20 - 20 = 1460 bytes a segment: 4 full and one of 1400.
        assert_eq!(TcpSplit::plan(&big, None, 9000), None, "it fits 9000");
        let segs = split(&big, None, 1500);
        assert_eq!(segs.len(), 5);
        let mut joined = Vec::new();
        for (i, (seq, flags, payload, f)) in segs.iter().enumerate() {
            assert_eq!(*seq, 1000 + 1460 * i as u32);
            assert_eq!(payload.len(), if i < 4 { 1460 } else { 1400 });
            let last = i == 4;
            assert_eq!(flags & 0x09 != 0, last, "FIN/PSH on the last only: {i}");
            assert_eq!(flags & 0x80 != 0, i == 0, "CWR on the first only: {i}");
            assert_eq!(flags & 0x10, 0x10, "ACK on all");
            assert_eq!(be16(f, 18), 0x1234 + i as u16, "IPv4 ID");
            assert_eq!(fold(sum(&f[14..34], 0)), 0xffff, "IPv4 header checksum");
            joined.extend_from_slice(payload);
        }
        assert_eq!(joined, data);
    }

    #[test]
    fn tagged_and_ipv6_super_frames_are_cut_too() {
        let data = vec![0x5a; 3000];
        let tag = VlanTag { tpid: 0x88a8, tci: 42 };
        let big6 = build!(eth().ipv6(V6.0, V6.1, 64).tcp(1, 2, 0xffff_fff0, 9), &data).unwrap();
        let segs = split(&big6, Some(tag), 1280);
        // 1280 - 40 - 20 = 1220 a segment: 1220, 1220, 560; the sequence wraps.
        assert_eq!(segs.iter().map(|s| s.2.len()).collect::<Vec<_>>(), [1220, 1220, 560]);
        assert_eq!(segs[1].0, 0xffff_fff0u32.wrapping_add(1220));
        for (_, _, payload, f) in &segs {
            assert_eq!(f[12..16], [0x88, 0xa8, 0, 42], "the tag is back");
            assert_eq!(usize::from(be16(f, 18 + 4)), 20 + payload.len(), "IPv6 payload length");
        }
        // Not TCP, or no room for payload: no plan.
        let udp = build!(eth().ipv4(V4.0, V4.1, 64).udp(1, 2), &data).unwrap();
        assert_eq!(TcpSplit::plan(&udp, None, 1500), None);
        assert_eq!(TcpSplit::plan(&tcp4(&data), None, 40), None);
    }
}
