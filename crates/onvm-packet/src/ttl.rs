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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{ETHER_TYPE_IPV4, ETHER_TYPE_MPLS};
    use crate::mpls::{outer_lse, pop_mpls_vec, push_mpls_vec};
    use crate::test_util::{Build, MAC_A, MAC_B, arp, tcp6, truncations, udp4};
    use crate::vlan::{TPID_8021Q, push_vlan_vec};
    use crate::{Headers, fix_checksums, verify_checksums};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn ipv4_ttl(f: &[u8]) -> u8 {
        Headers::parse(f).unwrap().ipv4().unwrap().header().ttl()
    }

    #[test]
    fn nw_ttl_decrement() {
        let mut f = udp4(3);
        assert_eq!(dec_nw_ttl(&mut f), Ok(2));
        assert_eq!(verify_checksums(&f), Ok(true));
        assert_eq!(dec_nw_ttl(&mut f), Ok(1));
        assert_eq!((ipv4_ttl(&f), verify_checksums(&f)), (1, Ok(true)));
        // 1 and 0 are invalid TTLs: the frame is left as it is.
        let before = f.clone();
        assert_eq!(dec_nw_ttl(&mut f), Err(Error::InvalidTtl { ttl: 1 }));
        assert_eq!(f, before);
        let mut zero = udp4(0);
        let before = zero.clone();
        assert_eq!(dec_nw_ttl(&mut zero), Err(Error::InvalidTtl { ttl: 0 }));
        assert_eq!(zero, before);
        assert_eq!(
            Error::InvalidTtl { ttl: 1 }.to_string(),
            "invalid TTL 1: cannot be decremented below 1"
        );

        let mut v6 = tcp6();
        assert_eq!(dec_nw_ttl(&mut v6), Ok(6));
        assert_eq!(Headers::parse(&v6).unwrap().ipv6().unwrap().header().hop_limit(), 6);
        let mut tagged = udp4(9);
        push_vlan_vec(&mut tagged, TPID_8021Q).unwrap();
        assert_eq!(dec_nw_ttl(&mut tagged), Ok(8));
        assert_eq!(verify_checksums(&tagged), Ok(true));
        assert_eq!(dec_nw_ttl(&mut arp()), Err(Error::NotIp { ether_type: 0x0806 }));
    }

    #[test]
    fn nw_ttl_set() {
        let mut f = udp4(64);
        set_nw_ttl(&mut f, 1).unwrap();
        assert_eq!((ipv4_ttl(&f), verify_checksums(&f)), (1, Ok(true)));
        set_nw_ttl(&mut f, 255).unwrap();
        assert_eq!((ipv4_ttl(&f), verify_checksums(&f)), (255, Ok(true)));
        let mut v6 = tcp6();
        set_nw_ttl(&mut v6, 0).unwrap();
        assert_eq!(v6[21], 0);
        assert_eq!(set_nw_ttl(&mut arp(), 3), Err(Error::NotIp { ether_type: 0x0806 }));
    }

    proptest! {
        /// OVS's incremental update writes what a full recompute would.
        #[test]
        fn nw_ttl_matches_full_recompute(ttl in 2u8.., new in any::<u8>(), src in any::<[u8; 4]>(), dst in any::<[u8; 4]>()) {
            let mut f = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv4(src, dst, ttl).udp(1, 2).build(&[]).unwrap();
            prop_assert_eq!(dec_nw_ttl(&mut f), Ok(ttl - 1));
            let mut recomputed = f.clone();
            fix_checksums(&mut recomputed).unwrap();
            prop_assert_eq!(&f, &recomputed);
            set_nw_ttl(&mut f, new).unwrap();
            let mut recomputed = f.clone();
            fix_checksums(&mut recomputed).unwrap();
            prop_assert_eq!(f, recomputed);
        }
    }

    /// An IPv4 frame under `labels` MPLS labels, their TTLs 10, 20, ... from the outside.
    fn mpls_frame(ip_ttl: u8, labels: usize) -> Vec<u8> {
        let mut f = udp4(ip_ttl);
        for i in 0..labels {
            push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
            set_mpls_ttl(&mut f, 10 * (labels - i) as u8).unwrap();
        }
        f
    }

    #[test]
    fn mpls_ttl_set_and_decrement() {
        let mut f = mpls_frame(64, 2);
        assert_eq!(outer_lse(&f).unwrap().ttl, 10);
        assert_eq!(dec_mpls_ttl(&mut f), Ok(9));
        set_mpls_ttl(&mut f, 2).unwrap();
        assert_eq!(dec_mpls_ttl(&mut f), Ok(1));
        let before = f.clone();
        assert_eq!(dec_mpls_ttl(&mut f), Err(Error::InvalidTtl { ttl: 1 }));
        set_mpls_ttl(&mut f, 0).unwrap();
        assert_eq!(dec_mpls_ttl(&mut f), Err(Error::InvalidTtl { ttl: 0 }));
        assert_eq!(&f[18..], &before[18..]);
        assert_eq!(dec_mpls_ttl(&mut udp4(5)), Err(Error::NotMpls { ether_type: 0x0800 }));
        assert_eq!(
            set_mpls_ttl(&mut udp4(5), 1),
            Err(Error::NotMpls { ether_type: 0x0800 })
        );
    }

    #[test]
    fn copy_ttl_between_ip_and_one_label() {
        let mut f = mpls_frame(64, 1);
        assert_eq!(outer_lse(&f).unwrap().ttl, 10);
        copy_ttl_out(&mut f).unwrap();
        assert_eq!(outer_lse(&f).unwrap().ttl, 64);
        set_mpls_ttl(&mut f, 3).unwrap();
        copy_ttl_in(&mut f).unwrap();
        pop_mpls_vec(&mut f, ETHER_TYPE_IPV4).unwrap();
        assert_eq!((ipv4_ttl(&f), verify_checksums(&f)), (3, Ok(true)));

        let mut v6 = tcp6();
        push_mpls_vec(&mut v6, ETHER_TYPE_MPLS).unwrap();
        set_mpls_ttl(&mut v6, 99).unwrap();
        copy_ttl_in(&mut v6).unwrap();
        assert_eq!(v6[4 + 21], 99);
        set_mpls_ttl(&mut v6, 1).unwrap();
        copy_ttl_out(&mut v6).unwrap();
        assert_eq!(outer_lse(&v6).unwrap().ttl, 99);
    }

    #[test]
    fn copy_ttl_between_labels() {
        let mut f = mpls_frame(64, 3);
        copy_ttl_out(&mut f).unwrap();
        assert_eq!([14, 18, 22].map(|at| lse_at(&f, at).unwrap().ttl), [20, 20, 30]);
        set_mpls_ttl(&mut f, 77).unwrap();
        copy_ttl_in(&mut f).unwrap();
        assert_eq!([14, 18, 22].map(|at| lse_at(&f, at).unwrap().ttl), [77, 77, 30]);
        assert_eq!(&f[26..], &udp4(64)[14..]);
    }

    #[test]
    fn copy_ttl_errors() {
        assert_eq!(copy_ttl_out(&mut udp4(3)), Err(Error::NotMpls { ether_type: 0x0800 }));
        assert_eq!(copy_ttl_in(&mut udp4(3)), Err(Error::NotMpls { ether_type: 0x0800 }));
        // An ARP packet under a label has no TTL.
        let mut f = arp();
        push_mpls_vec(&mut f, ETHER_TYPE_MPLS).unwrap();
        assert!(matches!(
            copy_ttl_out(&mut f),
            Err(Error::Malformed { header: "MPLS", .. })
        ));
        assert!(matches!(
            copy_ttl_in(&mut f),
            Err(Error::Malformed { header: "MPLS", .. })
        ));
        let mut cut = mpls_frame(5, 1)[..30].to_vec();
        assert!(matches!(
            copy_ttl_in(&mut cut),
            Err(Error::Truncated { header: "IPv4", .. })
        ));
        let mut cut = mpls_frame(5, 2)[..20].to_vec();
        assert!(matches!(
            copy_ttl_in(&mut cut),
            Err(Error::Truncated { header: "MPLS", .. })
        ));
    }

    #[test]
    fn truncated_frames_never_panic() {
        for f in [mpls_frame(9, 1), mpls_frame(9, 2), udp4(9), tcp6()] {
            truncations(&f, |f| {
                let _ = set_nw_ttl(f, 1);
                let _ = dec_nw_ttl(f);
                let _ = set_mpls_ttl(f, 1);
                let _ = dec_mpls_ttl(f);
                let _ = copy_ttl_out(f);
                let _ = copy_ttl_in(f);
            });
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(
            mut frame in proptest::collection::vec(any::<u8>(), 0..100),
            et in prop_oneof![Just(0x8847u16), Just(0x0800), Just(0x86dd)],
        ) {
            if frame.len() >= 14 {
                frame[12..14].copy_from_slice(&et.to_be_bytes());
            }
            let _ = set_nw_ttl(&mut frame.clone(), 1);
            let _ = dec_nw_ttl(&mut frame.clone());
            let _ = set_mpls_ttl(&mut frame.clone(), 1);
            let _ = dec_mpls_ttl(&mut frame.clone());
            let _ = copy_ttl_out(&mut frame.clone());
            let _ = copy_ttl_in(&mut frame.clone());
        }
    }
}
