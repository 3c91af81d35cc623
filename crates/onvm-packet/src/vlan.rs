//! 802.1Q / 802.1ad VLAN tags: push, pop, and the outer tag's VID and PCP.
//!
//! # Caller contract for push and pop
//!
//! A packet buffer grows and shrinks only at its front (it has headroom), so these work
//! on the slice the caller resized:
//!
//! - [`push_vlan`]: the caller has already prepended [`VLAN_TAG_LEN`] bytes (their
//!   content does not matter); the old frame is `frame[VLAN_TAG_LEN..]`. On return
//!   `frame` is the tagged frame. On error nothing was written: the caller strips the
//!   4 bytes again.
//! - [`pop_vlan`]: `frame` is the tagged frame; on return the untagged frame is
//!   `frame[VLAN_TAG_LEN..]` and the caller strips the first 4 bytes. On error the frame
//!   is unchanged.
//!
//! [`push_vlan_vec`] / [`pop_vlan_vec`] do the same on a `Vec<u8>`.
//!
//! # What Open vSwitch writes
//!
//! OVS's `push_vlan` (ofproto-dpif-xlate.c, `OFPACT_PUSH_VLAN`: `flow_push_vlan_uninit`
//! then `tci = VLAN_CFI`) gives the new tag VID 0 and PCP 0 — it does *not* copy them from
//! an existing outer tag as OpenFlow 1.3 §7.2.5 suggests — and the datapath's
//! `eth_push_vlan` (lib/packets.c) clears the CFI/DEI bit. [`push_vlan`] does the same;
//! [`push_vlan_tci`] writes any TCI. A set of the VID or PCP is committed by OVS as a
//! pop and a push of the whole tag, so its DEI bit is cleared too, unless the VID/PCP
//! did not change (then OVS writes nothing); [`set_vlan_vid`] and [`set_vlan_pcp`] do the
//! same.

use crate::layout::VLAN_ETHER_TYPES;
use crate::{ETHERNET_HEADER_LEN, Error, Result, VLAN_TAG_LEN};

/// TPID of an 802.1Q (customer) tag.
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of an 802.1ad (service, "QinQ" outer) tag.
pub const TPID_8021AD: u16 = 0x88a8;
/// Mask of the VID in a TCI.
pub const VLAN_VID_MASK: u16 = 0x0fff;
/// Mask of the CFI/DEI bit in a TCI.
pub const VLAN_DEI: u16 = 0x1000;
/// Shift of the PCP in a TCI.
pub const VLAN_PCP_SHIFT: u16 = 13;

/// Offset of the outer tag's TCI if the frame is tagged.
fn outer_tci_at(frame: &[u8]) -> Result<usize> {
    if frame.len() < ETHERNET_HEADER_LEN {
        return Err(Error::TooShortForEthernet { len: frame.len() });
    }
    if !VLAN_ETHER_TYPES.contains(&u16::from_be_bytes([frame[12], frame[13]])) {
        return Err(Error::NoVlanTag);
    }
    if frame.len() < ETHERNET_HEADER_LEN + VLAN_TAG_LEN {
        return Err(Error::Truncated {
            header: "VLAN",
            need: ETHERNET_HEADER_LEN + VLAN_TAG_LEN,
            have: frame.len(),
        });
    }
    Ok(14)
}

/// The outer tag's `(TPID, TCI)`, or [`Error::NoVlanTag`].
pub fn outer_vlan(frame: &[u8]) -> Result<(u16, u16)> {
    let at = outer_tci_at(frame)?;
    Ok((
        u16::from_be_bytes([frame[12], frame[13]]),
        u16::from_be_bytes([frame[at], frame[at + 1]]),
    ))
}

/// Pushes a new outer tag with TPID `tpid` (0x8100 or 0x88a8) and VID 0, PCP 0, as OVS
/// does (see the module doc). The caller has prepended [`VLAN_TAG_LEN`] bytes: the old
/// frame is `frame[4..]`.
///
/// Errors with [`Error::NotVlanTpid`] for another TPID and
/// [`Error::TooShortForEthernet`] if the old frame has no Ethernet header.
pub fn push_vlan(frame: &mut [u8], tpid: u16) -> Result<()> {
    push_vlan_tci(frame, tpid, 0)
}

/// [`push_vlan`] with the new tag's TCI (PCP, DEI, VID) given, written as it is.
pub fn push_vlan_tci(frame: &mut [u8], tpid: u16, tci: u16) -> Result<()> {
    if tpid != TPID_8021Q && tpid != TPID_8021AD {
        return Err(Error::NotVlanTpid { ether_type: tpid });
    }
    let old_len = frame.len().saturating_sub(VLAN_TAG_LEN);
    if old_len < ETHERNET_HEADER_LEN {
        return Err(Error::TooShortForEthernet { len: old_len });
    }
    // OVS eth_push_vlan: memmove the two MACs to the front, then the tag after them; the
    // old EtherType stays where it was and becomes the tag's inner EtherType.
    frame.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
    frame[12..14].copy_from_slice(&tpid.to_be_bytes());
    frame[14..16].copy_from_slice(&tci.to_be_bytes());
    Ok(())
}

/// Removes the outer tag: on return the untagged frame is `frame[4..]` (the caller strips
/// [`VLAN_TAG_LEN`] bytes). Errors with [`Error::NoVlanTag`] if the frame is untagged.
pub fn pop_vlan(frame: &mut [u8]) -> Result<()> {
    outer_tci_at(frame)?;
    frame.copy_within(0..12, VLAN_TAG_LEN);
    Ok(())
}

/// Writes the outer tag's TCI with `update` applied to it; as OVS, nothing is written if
/// the VID and PCP stay the same, else the DEI bit is cleared (see the module doc).
fn update_tci(frame: &mut [u8], update: impl FnOnce(u16) -> u16) -> Result<()> {
    let at = outer_tci_at(frame)?;
    let old = u16::from_be_bytes([frame[at], frame[at + 1]]);
    let new = update(old) & !VLAN_DEI;
    if new != old & !VLAN_DEI {
        frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
    }
    Ok(())
}

/// Sets the outer tag's VID (0..=4095). Errors with [`Error::NoVlanTag`] if the frame is
/// untagged and [`Error::ValueOutOfRange`] for a larger VID.
pub fn set_vlan_vid(frame: &mut [u8], vid: u16) -> Result<()> {
    check_range("VLAN VID", u32::from(vid), u32::from(VLAN_VID_MASK))?;
    update_tci(frame, |tci| (tci & !VLAN_VID_MASK) | vid)
}

/// Sets the outer tag's PCP (0..=7). Errors as [`set_vlan_vid`].
pub fn set_vlan_pcp(frame: &mut [u8], pcp: u8) -> Result<()> {
    check_range("VLAN PCP", u32::from(pcp), 7)?;
    update_tci(frame, |tci| {
        (tci & !(7 << VLAN_PCP_SHIFT)) | (u16::from(pcp) << VLAN_PCP_SHIFT)
    })
}

/// [`Error::ValueOutOfRange`] if `value > max`.
pub(crate) fn check_range(field: &'static str, value: u32, max: u32) -> Result<()> {
    if value > max {
        return Err(Error::ValueOutOfRange { field, value, max });
    }
    Ok(())
}

/// Runs a push that needs `n` bytes prepended on a `Vec`: grows it, and shrinks it back
/// if the push fails.
pub(crate) fn push_vec(v: &mut Vec<u8>, n: usize, push: impl FnOnce(&mut [u8]) -> Result<()>) -> Result<()> {
    v.splice(0..0, std::iter::repeat_n(0, n));
    let r = push(v);
    if r.is_err() {
        v.drain(..n);
    }
    r
}

/// [`push_vlan`] on a `Vec`: the vector grows by [`VLAN_TAG_LEN`] at its front.
pub fn push_vlan_vec(v: &mut Vec<u8>, tpid: u16) -> Result<()> {
    push_vec(v, VLAN_TAG_LEN, |f| push_vlan(f, tpid))
}

/// [`pop_vlan`] on a `Vec`: the vector shrinks by [`VLAN_TAG_LEN`].
pub fn pop_vlan_vec(v: &mut Vec<u8>) -> Result<()> {
    pop_vlan(v)?;
    v.drain(..VLAN_TAG_LEN);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{tcp6, truncations, udp4};
    use crate::{Headers, verify_checksums};
    use etherparse::{LinkExtSlice, SlicedPacket};
    use proptest::prelude::*;

    /// `(TPID, PCP, DEI, VID)` of each tag etherparse finds, outer first.
    fn tags(f: &[u8]) -> Vec<(u16, u8, bool, u16)> {
        let p = SlicedPacket::from_ethernet(f).unwrap();
        let mut tpid = u16::from_be_bytes([f[12], f[13]]);
        p.link_exts
            .iter()
            .filter_map(|e| match e {
                LinkExtSlice::Vlan(v) => {
                    let t = (
                        tpid,
                        v.priority_code_point().value(),
                        v.drop_eligible_indicator(),
                        v.vlan_identifier().value(),
                    );
                    tpid = v.ether_type().0;
                    Some(t)
                }
                LinkExtSlice::Macsec(_) => None,
            })
            .collect()
    }

    #[test]
    fn push_then_pop_gives_back_the_frame() {
        for original in [udp4(64), tcp6()] {
            let mut f = original.clone();
            push_vlan_vec(&mut f, TPID_8021Q).unwrap();
            assert_eq!(f.len(), original.len() + VLAN_TAG_LEN);
            assert_eq!(&f[..12], &original[..12]);
            assert_eq!(&f[12..16], &[0x81, 0, 0, 0]);
            assert_eq!(&f[16..], &original[12..]);
            assert_eq!(tags(&f), vec![(0x8100, 0, false, 0)]);
            assert_eq!(verify_checksums(&f), Ok(true));
            let h = Headers::parse(&f).unwrap();
            assert_eq!(h.payload(), Headers::parse(&original).unwrap().payload());
            drop(h);
            pop_vlan_vec(&mut f).unwrap();
            assert_eq!(f, original);
        }
    }

    #[test]
    fn qinq_push_pop_and_outer_fields() {
        let original = udp4(64);
        let mut f = original.clone();
        push_vlan_vec(&mut f, TPID_8021Q).unwrap();
        set_vlan_vid(&mut f, 100).unwrap();
        set_vlan_pcp(&mut f, 3).unwrap();
        // As OVS: the new outer tag starts at VID 0, PCP 0, not copied from the inner one.
        push_vlan_vec(&mut f, TPID_8021AD).unwrap();
        assert_eq!(tags(&f), vec![(0x88a8, 0, false, 0), (0x8100, 3, false, 100)]);
        set_vlan_vid(&mut f, 4095).unwrap();
        set_vlan_pcp(&mut f, 7).unwrap();
        assert_eq!(tags(&f), vec![(0x88a8, 7, false, 4095), (0x8100, 3, false, 100)]);
        assert_eq!(outer_vlan(&f), Ok((0x88a8, 0xefff)));
        assert_eq!(verify_checksums(&f), Ok(true));
        pop_vlan_vec(&mut f).unwrap();
        assert_eq!(tags(&f), vec![(0x8100, 3, false, 100)]);
        pop_vlan_vec(&mut f).unwrap();
        assert_eq!(f, original);
        assert_eq!(pop_vlan_vec(&mut f), Err(Error::NoVlanTag));
        assert_eq!(f, original);
    }

    #[test]
    fn push_with_a_tci_and_the_dei_rule() {
        let mut f = udp4(64);
        push_vec(&mut f, 4, |f| push_vlan_tci(f, TPID_8021Q, 0xb00a)).unwrap();
        assert_eq!(tags(&f), vec![(0x8100, 5, true, 10)]);
        // Setting the same VID writes nothing (OVS commits no change): DEI stays.
        set_vlan_vid(&mut f, 10).unwrap();
        assert_eq!(tags(&f), vec![(0x8100, 5, true, 10)]);
        // A change is written as OVS's pop + push of the tag: DEI cleared.
        set_vlan_vid(&mut f, 11).unwrap();
        assert_eq!(tags(&f), vec![(0x8100, 5, false, 11)]);
    }

    #[test]
    fn errors() {
        let mut f = udp4(64);
        let before = f.clone();
        assert_eq!(set_vlan_vid(&mut f, 1), Err(Error::NoVlanTag));
        assert_eq!(set_vlan_pcp(&mut f, 1), Err(Error::NoVlanTag));
        assert_eq!(outer_vlan(&f), Err(Error::NoVlanTag));
        assert_eq!(
            push_vlan_vec(&mut f, 0x0800),
            Err(Error::NotVlanTpid { ether_type: 0x0800 })
        );
        assert_eq!(f, before);
        push_vlan_vec(&mut f, TPID_8021Q).unwrap();
        assert_eq!(
            set_vlan_vid(&mut f, 4096),
            Err(Error::ValueOutOfRange {
                field: "VLAN VID",
                value: 4096,
                max: 4095
            })
        );
        assert!(matches!(
            set_vlan_pcp(&mut f, 8),
            Err(Error::ValueOutOfRange { field: "VLAN PCP", .. })
        ));
        let mut short = vec![0u8; 13];
        assert_eq!(
            push_vlan_vec(&mut short, TPID_8021Q),
            Err(Error::TooShortForEthernet { len: 13 })
        );
        assert_eq!(short, vec![0u8; 13]);
        assert_eq!(
            push_vlan(&mut [0u8; 3], TPID_8021Q),
            Err(Error::TooShortForEthernet { len: 0 })
        );
        assert_eq!(pop_vlan(&mut [0u8; 5]), Err(Error::TooShortForEthernet { len: 5 }));
        let mut cut = [0u8; 16];
        cut[12] = 0x81;
        assert!(matches!(
            pop_vlan(&mut cut),
            Err(Error::Truncated { header: "VLAN", .. })
        ));
    }

    #[test]
    fn truncated_frames_never_panic() {
        let mut tagged = udp4(64);
        push_vlan_vec(&mut tagged, TPID_8021AD).unwrap();
        truncations(&tagged, |f| {
            let _ = push_vlan_vec(f, TPID_8021Q);
            let _ = pop_vlan_vec(f);
            let _ = set_vlan_vid(f, 5);
            let _ = set_vlan_pcp(f, 5);
            let _ = outer_vlan(f);
            let _ = push_vlan(f, TPID_8021Q);
            let _ = pop_vlan(f);
        });
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..40), vid in any::<u16>(), pcp in any::<u8>()) {
            let mut f = frame.clone();
            let _ = push_vlan_vec(&mut f, TPID_8021Q);
            let _ = set_vlan_vid(&mut f, vid);
            let _ = set_vlan_pcp(&mut f, pcp);
            let _ = pop_vlan_vec(&mut f);
            let _ = pop_vlan_vec(&mut frame.clone());
        }
    }
}
