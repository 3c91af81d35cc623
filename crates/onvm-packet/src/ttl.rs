//! TTLs: the IPv4 TTL / IPv6 hop limit ("nw TTL") and the outer MPLS label's TTL — set,
//! decrement, and copy between MPLS and IP (OpenFlow's SET_NW_TTL, DEC_NW_TTL,
//! SET_MPLS_TTL, DEC_MPLS_TTL, COPY_TTL_OUT, COPY_TTL_IN).
//!
//! # Invalid TTL
//!
//! A decrement that finds the TTL at 0 or 1 returns [`Error::InvalidTtl`] and leaves the
//! frame unchanged: the packet must not go on, and an OpenFlow switch sends it to the
//! controller with reason `OFPR_INVALID_TTL` and stops processing it. This is what Open
//! vSwitch does (ofproto-dpif-xlate.c `compose_dec_ttl`, `compose_dec_mpls_ttl_action`:
//! only `ttl > 1` is decremented, and the packet-in carries the TTL it came with). Two
//! OVS details the caller decides on, since they are about the pipeline, not the bytes:
//! `dec_ttl` on a non-IP packet is a no-op there (here [`Error::NotIp`]), and
//! `dec_mpls_ttl` on a non-MPLS packet stops the table's actions (here
//! [`Error::NotMpls`]).
//!
//! The IPv4 header checksum is patched with OVS's incremental update (`odp_set_ipv4`:
//! `recalc_csum16` of the TTL word), so the bytes match OVS's.
//!
//! COPY_TTL_OUT / COPY_TTL_IN follow OpenFlow 1.1+ §5.12 ("next-to-outermost to
//! outermost" and back); OVS does not implement them (lib/ofp-actions.c: "OFPAT_COPY_TTL_OUT
//! (11) not supported").

use crate::checksum::patch_csum;
use crate::layout::{IPV4_HEADER_LEN, IPV6_HEADER_LEN, IpVersion, Layout};
use crate::mpls::{Lse, MPLS_LSE_LEN, lse_at, outer_at, payload_at, update_outer};
use crate::{Error, Result};

/// Where an IP TTL lives: its offset, and the IPv4 header's offset if the header has a
/// checksum to patch.
#[derive(Debug, Clone, Copy)]
struct IpTtl {
    at: usize,
    ipv4_header: Option<usize>,
}

fn ip_ttl(frame: &[u8]) -> Result<IpTtl> {
    let layout = Layout::of(frame)?;
    let l3 = layout.l3;
    Ok(match layout.ip()?.version {
        IpVersion::V4 => IpTtl {
            at: l3 + 8,
            ipv4_header: Some(l3),
        },
        IpVersion::V6 => IpTtl {
            at: l3 + 7,
            ipv4_header: None,
        },
    })
}

/// The IP header under an MPLS stack: found by its version nibble, length-checked.
fn ip_ttl_under_mpls(frame: &[u8], ip: usize) -> Result<IpTtl> {
    let malformed = Error::Malformed {
        header: "MPLS",
        reason: "the payload under the bottom label is not IPv4/IPv6",
    };
    let (need, ttl) = match frame.get(ip).map(|b| b >> 4) {
        Some(4) => (
            IPV4_HEADER_LEN,
            IpTtl {
                at: ip + 8,
                ipv4_header: Some(ip),
            },
        ),
        Some(6) => (
            IPV6_HEADER_LEN,
            IpTtl {
                at: ip + 7,
                ipv4_header: None,
            },
        ),
        _ => return Err(malformed),
    };
    if frame.len() < ip + need {
        let header = if ttl.ipv4_header.is_some() { "IPv4" } else { "IPv6" };
        return Err(Error::Truncated {
            header,
            need: ip + need,
            have: frame.len(),
        });
    }
    Ok(ttl)
}

/// Writes an IP TTL, patching the IPv4 header checksum as OVS does (the word
/// `ttl << 8`); nothing is written if it does not change.
fn write_ip_ttl(frame: &mut [u8], t: IpTtl, ttl: u8) {
    let old = frame[t.at];
    if old == ttl {
        return;
    }
    if let Some(l3) = t.ipv4_header {
        patch_csum(frame, l3 + 10, &[old, 0], &[ttl, 0]);
    }
    frame[t.at] = ttl;
}

/// Sets the IPv4 TTL or IPv6 hop limit; the IPv4 header checksum stays valid.
///
/// Errors with [`Error::NotIp`] on a non-IP frame, or if the IP header is cut short.
pub fn set_nw_ttl(frame: &mut [u8], ttl: u8) -> Result<()> {
    let t = ip_ttl(frame)?;
    write_ip_ttl(frame, t, ttl);
    Ok(())
}

/// Decrements the IPv4 TTL or IPv6 hop limit and returns the new value (at least 1); the
/// IPv4 header checksum stays valid.
///
/// Errors with [`Error::InvalidTtl`] when the TTL is 0 or 1 (the frame is unchanged: see
/// the module doc), [`Error::NotIp`] on a non-IP frame.
pub fn dec_nw_ttl(frame: &mut [u8]) -> Result<u8> {
    let t = ip_ttl(frame)?;
    let ttl = frame[t.at];
    if ttl <= 1 {
        return Err(Error::InvalidTtl { ttl });
    }
    write_ip_ttl(frame, t, ttl - 1);
    Ok(ttl - 1)
}

/// Sets the outer MPLS label's TTL. Errors with [`Error::NotMpls`] on a frame without a
/// label stack.
pub fn set_mpls_ttl(frame: &mut [u8], ttl: u8) -> Result<()> {
    update_outer(frame, |l| Lse { ttl, ..l })
}

/// Decrements the outer MPLS label's TTL and returns the new value (at least 1).
///
/// Errors with [`Error::InvalidTtl`] when it is 0 or 1 (the frame is unchanged),
/// [`Error::NotMpls`] on a frame without a label stack.
pub fn dec_mpls_ttl(frame: &mut [u8]) -> Result<u8> {
    let ttl = lse_at(frame, outer_at(frame)?)?.ttl;
    if ttl <= 1 {
        return Err(Error::InvalidTtl { ttl });
    }
    set_mpls_ttl(frame, ttl - 1)?;
    Ok(ttl - 1)
}

/// What is next-to-outermost with a TTL: the second LSE, or the IP header under a single
/// (bottom) label.
enum Inner {
    Lse(usize),
    Ip(IpTtl),
}

fn inner(frame: &[u8]) -> Result<(usize, Inner)> {
    let outer = outer_at(frame)?;
    let inner = if lse_at(frame, outer)?.bos {
        Inner::Ip(ip_ttl_under_mpls(frame, payload_at(frame, outer)?)?)
    } else {
        lse_at(frame, outer + MPLS_LSE_LEN)?;
        Inner::Lse(outer + MPLS_LSE_LEN)
    };
    Ok((outer, inner))
}

/// COPY_TTL_OUT: copies the TTL of the next-to-outermost header (the second label, or
/// the IP header under a bottom label) into the outer label.
///
/// Errors with [`Error::NotMpls`] on a frame without a label stack, [`Error::Malformed`]
/// if a bottom label carries neither IPv4 nor IPv6.
pub fn copy_ttl_out(frame: &mut [u8]) -> Result<()> {
    let (_, inner) = inner(frame)?;
    let ttl = match inner {
        Inner::Lse(at) => lse_at(frame, at)?.ttl,
        Inner::Ip(t) => frame[t.at],
    };
    set_mpls_ttl(frame, ttl)
}

/// COPY_TTL_IN: copies the outer label's TTL into the next-to-outermost header (the
/// second label, or the IP header under a bottom label — its IPv4 checksum kept valid).
///
/// Errors as [`copy_ttl_out`].
pub fn copy_ttl_in(frame: &mut [u8]) -> Result<()> {
    let (outer, inner) = inner(frame)?;
    let ttl = lse_at(frame, outer)?.ttl;
    match inner {
        Inner::Lse(at) => {
            let l = Lse {
                ttl,
                ..lse_at(frame, at)?
            };
            frame[at..at + MPLS_LSE_LEN].copy_from_slice(&l.to_bytes());
        }
        Inner::Ip(t) => write_ip_ttl(frame, t, ttl),
    }
    Ok(())
}
