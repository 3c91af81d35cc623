//! MPLS label stacks: push and pop a label stack entry (LSE), and its fields.
//!
//! The stack sits after the Ethernet header and any VLAN tags, announced by EtherType
//! 0x8847 (unicast) or 0x8848 (multicast) in the last EtherType field; each 4-byte LSE is
//! `label:20 | tc:3 | bos:1 | ttl:8`, and the bottom one (BoS set) is followed by the
//! payload — IPv4 or IPv6 here, told apart by its version nibble.
//!
//! # Caller contract for push and pop
//!
//! As for VLAN tags ([`crate::vlan`]): [`push_mpls`] runs after the caller prepended
//! [`MPLS_LSE_LEN`] bytes (the old frame is `frame[4..]`; on error nothing was written);
//! after [`pop_mpls`] the new frame is `frame[4..]` and the caller strips 4 bytes (on error
//! the frame is unchanged). [`push_mpls_vec`] / [`pop_mpls_vec`] do it on a `Vec<u8>`.
//! [`pop_mpls_ovs`] may remove more than one LSE and returns how many bytes to strip.
//!
//! # What Open vSwitch writes
//!
//! - Push, where the LSE goes: after the Ethernet header and VLAN tags, before the IP
//!   header or the existing stack; the last EtherType becomes the one given
//!   (lib/packets.c `push_mpls`, `set_ethertype`).
//! - Push, what it holds (lib/flow.c `flow_push_mpls`): onto an existing stack, a copy of
//!   the outer LSE with BoS cleared; as the first label, label 0 (IPv4 explicit null) or
//!   2 (IPv6 explicit null, if the packet is IPv6), TC = the IP DSCP's low 3 bits (OVS
//!   writes `(nw_tos & 0xfc) >> 2` into the 3-bit field), TTL = the IP TTL / hop limit,
//!   or 64 if the packet is not IP or its TTL is 0, BoS 1.
//! - A push onto a stack of 3 or more labels (`FLOW_MAX_MPLS_LABELS`) is refused and the
//!   packet dropped (`compose_mpls_push_action`: `XLATE_TOO_MANY_MPLS_LABELS`); so is a
//!   pop when the bottom of the stack is not among the first 3 LSEs (`flow_pop_mpls`).
//! - Pop writes the EtherType given into the last EtherType field whether or not the
//!   popped LSE was the bottom one, then moves the L2 header forward (`pop_mpls`). But a
//!   pop to a non-MPLS EtherType leaves OVS's flow with no labels, so OVS's datapath pops
//!   the whole stack (lib/odp-util.c `commit_mpls_action`): [`pop_mpls_ovs`] does that;
//!   [`pop_mpls`] always pops exactly one LSE.
//! - OVS treats `mpls_bos` as read-only; [`set_mpls_bos`] is here for completeness.

use crate::layout::{
    ETHER_TYPE_IPV4, ETHER_TYPE_IPV6, ETHER_TYPE_MPLS, ETHER_TYPE_MPLS_MCAST, IpVersion, Layout, link,
};
use crate::vlan::{check_range, push_vec};
use crate::{Error, Result};

/// Length of one MPLS label stack entry.
pub const MPLS_LSE_LEN: usize = 4;
/// Most labels OVS handles in a push or pop (its `FLOW_MAX_MPLS_LABELS`).
pub const MPLS_MAX_LABELS: usize = 3;
/// Largest MPLS label (20 bits).
pub const MPLS_LABEL_MAX: u32 = 0x000f_ffff;

/// Whether `ether_type` announces an MPLS stack.
pub fn is_mpls_ether_type(ether_type: u16) -> bool {
    ether_type == ETHER_TYPE_MPLS || ether_type == ETHER_TYPE_MPLS_MCAST
}

/// One label stack entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lse {
    /// Label (20 bits).
    pub label: u32,
    /// Traffic class (3 bits).
    pub tc: u8,
    /// Bottom of stack.
    pub bos: bool,
    /// Time to live.
    pub ttl: u8,
}

impl Lse {
    /// Decodes the 4 bytes of an LSE.
    pub fn from_bytes(b: [u8; 4]) -> Lse {
        let w = u32::from_be_bytes(b);
        Lse {
            label: w >> 12,
            tc: ((w >> 9) & 7) as u8,
            bos: w & 0x100 != 0,
            ttl: w as u8,
        }
    }

    /// Encodes the LSE; a label or TC too wide for its field is cut to it (as OVS's
    /// `set_mpls_lse_values` masks them).
    pub fn to_bytes(self) -> [u8; 4] {
        let w = ((self.label & MPLS_LABEL_MAX) << 12)
            | (u32::from(self.tc & 7) << 9)
            | (u32::from(self.bos) << 8)
            | u32::from(self.ttl);
        w.to_be_bytes()
    }
}

/// Offset of the outermost LSE of an MPLS frame and the EtherType announcing it.
pub(crate) fn outer_at(frame: &[u8]) -> Result<usize> {
    let (l3, ether_type, _) = link(frame)?;
    if !is_mpls_ether_type(ether_type) {
        return Err(Error::NotMpls { ether_type });
    }
    lse_at(frame, l3)?;
    Ok(l3)
}

/// The LSE at `at`, or [`Error::Truncated`].
pub(crate) fn lse_at(frame: &[u8], at: usize) -> Result<Lse> {
    match frame.get(at..at + MPLS_LSE_LEN) {
        Some(b) => Ok(Lse::from_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(Error::Truncated {
            header: "MPLS",
            need: at + MPLS_LSE_LEN,
            have: frame.len(),
        }),
    }
}

/// The outermost LSE of an MPLS frame; [`Error::NotMpls`] if it has none.
pub fn outer_lse(frame: &[u8]) -> Result<Lse> {
    lse_at(frame, outer_at(frame)?)
}

/// Rewrites the outermost LSE with `update` applied.
pub(crate) fn update_outer(frame: &mut [u8], update: impl FnOnce(Lse) -> Lse) -> Result<()> {
    let at = outer_at(frame)?;
    let new = update(lse_at(frame, at)?).to_bytes();
    frame[at..at + MPLS_LSE_LEN].copy_from_slice(&new);
    Ok(())
}

/// Number of LSEs down to the bottom one, looking at no more than `max`; `None` if the
/// bottom is deeper. Errors if the stack is cut short.
fn depth(frame: &[u8], outer: usize, max: usize) -> Result<Option<usize>> {
    for i in 0..max {
        if lse_at(frame, outer + i * MPLS_LSE_LEN)?.bos {
            return Ok(Some(i + 1));
        }
    }
    Ok(None)
}

/// Offset of the payload under the stack (after the bottom LSE), following the stack as
/// deep as the frame goes.
pub(crate) fn payload_at(frame: &[u8], outer: usize) -> Result<usize> {
    let max = frame.len().saturating_sub(outer) / MPLS_LSE_LEN + 1;
    match depth(frame, outer, max)? {
        Some(n) => Ok(outer + n * MPLS_LSE_LEN),
        None => Err(Error::Truncated {
            header: "MPLS",
            need: frame.len() + MPLS_LSE_LEN,
            have: frame.len(),
        }),
    }
}

/// Sets the outer label (0..=0xfffff). Errors with [`Error::NotMpls`] on a frame without
/// a label stack.
pub fn set_mpls_label(frame: &mut [u8], label: u32) -> Result<()> {
    check_range("MPLS label", label, MPLS_LABEL_MAX)?;
    update_outer(frame, |l| Lse { label, ..l })
}

/// Sets the outer traffic class (0..=7). Errors as [`set_mpls_label`].
pub fn set_mpls_tc(frame: &mut [u8], tc: u8) -> Result<()> {
    check_range("MPLS TC", u32::from(tc), 7)?;
    update_outer(frame, |l| Lse { tc, ..l })
}

/// Sets the outer bottom-of-stack bit (0 or 1). Errors as [`set_mpls_label`]. (OVS
/// refuses to set it: `mpls_bos` is read-only there.)
pub fn set_mpls_bos(frame: &mut [u8], bos: u8) -> Result<()> {
    check_range("MPLS BoS", u32::from(bos), 1)?;
    update_outer(frame, |l| Lse { bos: bos == 1, ..l })
}

/// Pushes a new outermost LSE and sets the last EtherType to `ether_type` (0x8847 or
/// 0x8848); the LSE is what OVS puts there (see the module doc). The caller has prepended
/// [`MPLS_LSE_LEN`] bytes: the old frame is `frame[4..]`.
///
/// Errors with [`Error::NotMplsEtherType`], [`Error::TooManyMplsLabels`] (a stack of
/// [`MPLS_MAX_LABELS`] or more), or if the old frame's headers are cut short or malformed.
pub fn push_mpls(frame: &mut [u8], ether_type: u16) -> Result<()> {
    if !is_mpls_ether_type(ether_type) {
        return Err(Error::NotMplsEtherType { ether_type });
    }
    let old = frame.get(MPLS_LSE_LEN..).unwrap_or_default();
    let (l3, old_type, _) = link(old)?;
    let lse = if is_mpls_ether_type(old_type) {
        match depth(old, l3, MPLS_MAX_LABELS - 1)? {
            Some(_) => Lse {
                bos: false,
                ..lse_at(old, l3)?
            },
            None => {
                return Err(Error::TooManyMplsLabels {
                    labels: MPLS_MAX_LABELS,
                    max: MPLS_MAX_LABELS - 1,
                });
            }
        }
    } else {
        first_lse(old, old_type)?
    };
    frame.copy_within(MPLS_LSE_LEN..MPLS_LSE_LEN + l3, 0);
    frame[l3 - 2..l3].copy_from_slice(&ether_type.to_be_bytes());
    frame[l3..l3 + MPLS_LSE_LEN].copy_from_slice(&lse.to_bytes());
    Ok(())
}

/// The first LSE pushed onto a frame without a stack (lib/flow.c `flow_push_mpls`).
fn first_lse(frame: &[u8], ether_type: u16) -> Result<Lse> {
    let mut lse = Lse {
        label: if ether_type == ETHER_TYPE_IPV6 { 2 } else { 0 },
        tc: 0,
        bos: true,
        ttl: 64,
    };
    if ether_type == ETHER_TYPE_IPV4 || ether_type == ETHER_TYPE_IPV6 {
        let layout = Layout::of(frame)?;
        let l3 = layout.l3;
        let (tos, ttl) = match layout.ip()?.version {
            IpVersion::V4 => (frame[l3 + 1], frame[l3 + 8]),
            IpVersion::V6 => ((frame[l3] << 4) | (frame[l3 + 1] >> 4), frame[l3 + 7]),
        };
        // OVS: tc = (nw_tos & IP_DSCP_MASK) >> 2, cut to 3 bits by set_mpls_lse_tc.
        lse.tc = (tos >> 2) & 7;
        if ttl != 0 {
            lse.ttl = ttl;
        }
    }
    Ok(lse)
}

/// Pops the outermost LSE and sets the last EtherType to `ether_type`: on return the new
/// frame is `frame[4..]` (the caller strips [`MPLS_LSE_LEN`] bytes).
///
/// Errors with [`Error::NotMpls`] on a frame without a stack (OVS ignores the pop then),
/// [`Error::TooManyMplsLabels`] when the bottom is not within [`MPLS_MAX_LABELS`] LSEs,
/// or [`Error::Truncated`].
pub fn pop_mpls(frame: &mut [u8], ether_type: u16) -> Result<()> {
    let l3 = outer_at(frame)?;
    if depth(frame, l3, MPLS_MAX_LABELS)?.is_none() {
        return Err(Error::TooManyMplsLabels {
            labels: MPLS_MAX_LABELS + 1,
            max: MPLS_MAX_LABELS,
        });
    }
    frame[l3 - 2..l3].copy_from_slice(&ether_type.to_be_bytes());
    frame.copy_within(0..l3, MPLS_LSE_LEN);
    Ok(())
}

/// OVS's `pop_mpls` action as its userspace datapath carries it out: with an MPLS
/// `ether_type` it is [`pop_mpls`] (one label); with another one it removes the *whole*
/// stack, not just the outer label, because OVS commits the pop as "no labels left"
/// (lib/odp-util.c `commit_mpls_action`: one `pop_mpls(0x8847)` per inner label, then
/// `pop_mpls(ether_type)`). Returns the number of bytes the caller strips from the front
/// (4 per label); the new frame is `frame[n..]`. Errors as [`pop_mpls`]; on error the
/// frame is unchanged.
pub fn pop_mpls_ovs(frame: &mut [u8], ether_type: u16) -> Result<usize> {
    if is_mpls_ether_type(ether_type) {
        pop_mpls(frame, ether_type)?;
        return Ok(MPLS_LSE_LEN);
    }
    let l3 = outer_at(frame)?;
    let Some(labels) = depth(frame, l3, MPLS_MAX_LABELS)? else {
        return Err(Error::TooManyMplsLabels {
            labels: MPLS_MAX_LABELS + 1,
            max: MPLS_MAX_LABELS,
        });
    };
    let n = labels * MPLS_LSE_LEN;
    frame[l3 - 2..l3].copy_from_slice(&ether_type.to_be_bytes());
    frame.copy_within(0..l3, n);
    Ok(n)
}

/// [`pop_mpls_ovs`] on a `Vec`: the vector shrinks by the bytes removed.
pub fn pop_mpls_ovs_vec(v: &mut Vec<u8>, ether_type: u16) -> Result<()> {
    let n = pop_mpls_ovs(v, ether_type)?;
    v.drain(..n);
    Ok(())
}

/// [`push_mpls`] on a `Vec`: the vector grows by [`MPLS_LSE_LEN`] at its front.
pub fn push_mpls_vec(v: &mut Vec<u8>, ether_type: u16) -> Result<()> {
    push_vec(v, MPLS_LSE_LEN, |f| push_mpls(f, ether_type))
}

/// [`pop_mpls`] on a `Vec`: the vector shrinks by [`MPLS_LSE_LEN`].
pub fn pop_mpls_vec(v: &mut Vec<u8>, ether_type: u16) -> Result<()> {
    pop_mpls(v, ether_type)?;
    v.drain(..MPLS_LSE_LEN);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::ETHER_TYPE_ARP;
    use crate::test_util::{Build, MAC_A, MAC_B, V6_A, V6_B, arp, tcp6, truncations, udp4};
    use crate::vlan::{TPID_8021AD, TPID_8021Q, push_vlan_vec, set_vlan_vid};
    use crate::{Headers, verify_checksums};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn lse(label: u32, tc: u8, bos: bool, ttl: u8) -> Lse {
        Lse { label, tc, bos, ttl }
    }

    #[test]
    fn lse_encoding() {
        let l = lse(0xabcde, 5, true, 200);
        assert_eq!(l.to_bytes(), [0xab, 0xcd, 0xeb, 200]);
        assert_eq!(Lse::from_bytes(l.to_bytes()), l);
        assert_eq!(lse(u32::MAX, 0xff, false, 1).to_bytes(), [0xff, 0xff, 0xfe, 1]);
    }

    #[test]
    fn first_label_is_what_ovs_pushes() {
        // IPv4, DSCP 46 (EF) + ECN 1, TTL 33: label 0, TC = 46 & 7 = 6, TTL 33, BoS.
        let mut f = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 33)
            .udp(1, 2)
            .build(b"x")
            .unwrap();
        f[15] = 0xb9;
        crate::fix_checksums(&mut f).unwrap();
        let original = f.clone();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert_eq!(&f[12..14], &[0x88, 0x47]);
        assert_eq!(outer_lse(&f), Ok(lse(0, 6, true, 33)));
        assert_eq!(&f[18..], &original[14..]);
        pop_mpls_vec(&mut f, ETHER_TYPE_IPV4).unwrap();
        assert_eq!(f, original);

        // IPv6: label 2 (IPv6 explicit null), hop limit copied.
        let mut f = tcp6();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS_MCAST).unwrap();
        assert_eq!(&f[12..14], &[0x88, 0x48]);
        assert_eq!(outer_lse(&f), Ok(lse(2, 0, true, 7)));

        // Not IP: TTL 64. An IP TTL of 0: 64 as well.
        let mut f = arp();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert_eq!(outer_lse(&f), Ok(lse(0, 0, true, 64)));
        pop_mpls_vec(&mut f, ETHER_TYPE_ARP).unwrap();
        assert_eq!(f, arp());
        let mut f = udp4(0);
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert_eq!(outer_lse(&f), Ok(lse(0, 0, true, 64)));
    }

    #[test]
    fn stacks_up_to_three_labels() {
        let original = udp4(20);
        let mut f = original.clone();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        set_mpls_label(&mut f, 1000).unwrap();
        set_mpls_tc(&mut f, 3).unwrap();
        let one = f.clone();
        // Onto a stack: a copy of the outer LSE with BoS cleared.
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert_eq!(outer_lse(&f), Ok(lse(1000, 3, false, 20)));
        assert_eq!(lse_at(&f, 18), Ok(lse(1000, 3, true, 20)));
        set_mpls_label(&mut f, 2000).unwrap();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        let three = f.clone();
        assert_eq!(
            push_mpls_vec(&mut f, ETHER_TYPE_MPLS),
            Err(Error::TooManyMplsLabels { labels: 3, max: 2 })
        );
        assert_eq!(f, three);
        assert_eq!(
            [0, 1, 2].map(|i| lse_at(&f, 14 + 4 * i).unwrap().label),
            [2000, 2000, 1000]
        );
        pop_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        pop_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert_eq!(outer_lse(&f), Ok(lse(1000, 3, true, 20)));
        assert_eq!(f, one);
        pop_mpls_vec(&mut f, ETHER_TYPE_IPV4).unwrap();
        assert_eq!(f, original);
        assert_eq!(verify_checksums(&f), Ok(true));
        assert_eq!(
            pop_mpls_vec(&mut f, ETHER_TYPE_IPV4),
            Err(Error::NotMpls { ether_type: 0x0800 })
        );
        assert_eq!(f, original);
    }

    #[test]
    fn ovs_pop_to_a_non_mpls_ether_type_removes_the_stack() {
        let original = udp4(20);
        for labels in 1..=3 {
            let mut f = original.clone();
            for _ in 0..labels {
                push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
            }
            let mut one = f.clone();
            pop_mpls_ovs_vec(&mut one, ETHER_TYPE_MPLS).unwrap();
            let mut spec = f.clone();
            pop_mpls_vec(&mut spec, ETHER_TYPE_MPLS).unwrap();
            assert_eq!(one, spec);
            assert_eq!(pop_mpls_ovs(&mut f.clone(), ETHER_TYPE_IPV4), Ok(4 * labels));
            pop_mpls_ovs_vec(&mut f, ETHER_TYPE_IPV4).unwrap();
            assert_eq!(f, original, "{labels} labels");
        }
        assert_eq!(
            pop_mpls_ovs(&mut udp4(1), ETHER_TYPE_IPV4),
            Err(Error::NotMpls { ether_type: 0x0800 })
        );
    }

    #[test]
    fn pop_refuses_a_stack_deeper_than_three() {
        let mut f = udp4(9);
        f.splice(12..14, [0x88, 0x47]);
        for l in [
            lse(1, 0, false, 1),
            lse(2, 0, false, 1),
            lse(3, 0, false, 1),
            lse(4, 0, true, 1),
        ]
        .into_iter()
        .rev()
        {
            f.splice(14..14, l.to_bytes());
        }
        let before = f.clone();
        assert_eq!(
            pop_mpls_vec(&mut f, ETHER_TYPE_MPLS),
            Err(Error::TooManyMplsLabels { labels: 4, max: 3 })
        );
        assert_eq!(
            push_mpls_vec(&mut f, ETHER_TYPE_MPLS),
            Err(Error::TooManyMplsLabels { labels: 3, max: 2 })
        );
        assert_eq!(f, before);
        assert_eq!(payload_at(&f, 14), Ok(30));
    }

    #[test]
    fn behind_vlan_tags() {
        let original = udp4(64);
        let mut f = original.clone();
        push_vlan_vec(&mut f, TPID_8021Q).unwrap();
        set_vlan_vid(&mut f, 7).unwrap();
        push_vlan_vec(&mut f, TPID_8021AD).unwrap();
        let tagged = f.clone();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        // MACs, both tags, then the LSE; the inner tag's EtherType is now MPLS.
        assert_eq!(&f[..20], &[&tagged[..20], &[0x88, 0x47]].concat()[..20]);
        assert_eq!(&f[20..22], &[0x88, 0x47]);
        assert_eq!(outer_lse(&f), Ok(lse(0, 0, true, 64)));
        assert_eq!(&f[26..], &tagged[22..]);
        let h = Headers::parse(&f).unwrap();
        assert_eq!(h.vlan_id(), Some(0));
        assert_eq!(h.ether_type(), ETHER_TYPE_MPLS);
        drop(h);
        pop_mpls_vec(&mut f, ETHER_TYPE_IPV4).unwrap();
        assert_eq!(f, tagged);
    }

    #[test]
    fn field_setters_and_errors() {
        let mut f = udp4(64);
        assert_eq!(set_mpls_label(&mut f, 1), Err(Error::NotMpls { ether_type: 0x0800 }));
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        set_mpls_label(&mut f, MPLS_LABEL_MAX).unwrap();
        set_mpls_tc(&mut f, 7).unwrap();
        set_mpls_bos(&mut f, 0).unwrap();
        assert_eq!(outer_lse(&f), Ok(lse(MPLS_LABEL_MAX, 7, false, 64)));
        set_mpls_bos(&mut f, 1).unwrap();
        assert!(matches!(
            set_mpls_label(&mut f, 1 << 20),
            Err(Error::ValueOutOfRange {
                field: "MPLS label",
                ..
            })
        ));
        assert!(matches!(
            set_mpls_tc(&mut f, 8),
            Err(Error::ValueOutOfRange { field: "MPLS TC", .. })
        ));
        assert!(matches!(
            set_mpls_bos(&mut f, 2),
            Err(Error::ValueOutOfRange { field: "MPLS BoS", .. })
        ));
        assert_eq!(
            push_mpls_vec(&mut f, 0x0800),
            Err(Error::NotMplsEtherType { ether_type: 0x0800 })
        );
        let mut bare = f[..14].to_vec();
        assert!(matches!(outer_lse(&bare), Err(Error::Truncated { header: "MPLS", .. })));
        assert!(matches!(
            pop_mpls_vec(&mut bare, 0x0800),
            Err(Error::Truncated { header: "MPLS", .. })
        ));
        assert!(matches!(
            push_mpls_vec(&mut bare, ETHER_TYPE_MPLS),
            Err(Error::Truncated { header: "MPLS", .. })
        ));
        // An IP frame whose header is cut short: no label is made up for it.
        let mut cut = udp4(64)[..30].to_vec();
        assert!(matches!(
            push_mpls_vec(&mut cut, ETHER_TYPE_MPLS),
            Err(Error::Truncated { header: "IPv4", .. })
        ));
        assert_eq!(cut.len(), 30);
    }

    #[test]
    fn truncated_frames_never_panic() {
        let mut f = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(V6_A, V6_B, 5)
            .udp(1, 2)
            .build(b"abc")
            .unwrap();
        push_vlan_vec(&mut f, TPID_8021Q).unwrap();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        truncations(&f, |f| {
            let _ = outer_lse(f);
            let _ = set_mpls_label(f, 5);
            let _ = set_mpls_tc(f, 5);
            let _ = set_mpls_bos(f, 1);
            let _ = push_mpls_vec(f, ETHER_TYPE_MPLS);
            let _ = pop_mpls_vec(f, ETHER_TYPE_IPV6);
            let _ = push_mpls(f, ETHER_TYPE_MPLS);
            let _ = pop_mpls(f, ETHER_TYPE_MPLS);
            let _ = pop_mpls_ovs_vec(f, ETHER_TYPE_IPV6);
            let _ = pop_mpls_ovs(f, ETHER_TYPE_IPV4);
        });
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            mut frame in proptest::collection::vec(any::<u8>(), 0..80),
            et in prop_oneof![Just(0x8847u16), Just(0x8848), Just(0x8100), Just(0x0800), Just(0x86dd)],
        ) {
            if frame.len() >= 14 {
                frame[12..14].copy_from_slice(&et.to_be_bytes());
            }
            let _ = push_mpls_vec(&mut frame.clone(), ETHER_TYPE_MPLS);
            let _ = pop_mpls_vec(&mut frame.clone(), ETHER_TYPE_IPV4);
            let _ = pop_mpls_ovs_vec(&mut frame.clone(), ETHER_TYPE_IPV4);
            let _ = set_mpls_label(&mut frame.clone(), 3);
            let _ = outer_lse(&frame);
            if let Ok(at) = outer_at(&frame) {
                let _ = payload_at(&frame, at);
            }
        }

        /// Push then pop with the old EtherType gives back any well-formed frame.
        #[test]
        fn push_pop_round_trip(ttl in any::<u8>(), tos in any::<u8>(), qinq in any::<bool>(), labels in 1usize..=3) {
            let mut f = udp4(ttl);
            f[15] = tos;
            crate::fix_checksums(&mut f).unwrap();
            if qinq {
                push_vlan_vec(&mut f, TPID_8021Q).unwrap();
                push_vlan_vec(&mut f, TPID_8021AD).unwrap();
            }
            let original = f.clone();
            for _ in 0..labels {
                push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
            }
            for i in (0..labels).rev() {
                pop_mpls_vec(&mut f, if i == 0 { ETHER_TYPE_IPV4 } else { ETHER_TYPE_MPLS }).unwrap();
            }
            prop_assert_eq!(f, original);
        }
    }
}
