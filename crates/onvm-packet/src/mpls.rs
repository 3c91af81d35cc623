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
//!   popped LSE was the bottom one, then moves the L2 header forward (`pop_mpls`).
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
