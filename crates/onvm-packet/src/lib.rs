//! Typed packet headers and builders for onvm-rs NFs.
//!
//! Everything here works on plain byte slices (`&[u8]` / `&mut [u8]`) holding one
//! Ethernet II frame *without* FCS, so it can be used directly on packet buffers in the
//! shared packet region: no copies, no allocation on the hot paths, no `unsafe`.
//!
//! | Module | Holds |
//! |---|---|
//! | [`headers`] | [`Headers`]: strict, typed read access to a frame's headers (etherparse slices) |
//! | [`layout`] | [`Layout`]: where L3/L4 start, found by hand from a few header bytes, for in-place edits |
//! | [`edit`] | in-place rewrites: MAC/IP/port swaps, MAC, IP address and port setters |
//! | [`field`] | OpenFlow SET_FIELD: [`Field`] and [`set_field`], every checksum kept valid as Open vSwitch keeps it |
//! | [`vlan`] | push/pop an 802.1Q/802.1ad tag ([`push_vlan`], [`pop_vlan`]), set its VID/PCP |
//! | [`mpls`] | push/pop an MPLS label stack entry ([`push_mpls`], [`pop_mpls`]), set its fields |
//! | [`ttl`] | set/decrement/copy the IP and MPLS TTLs ([`dec_nw_ttl`], [`dec_mpls_ttl`], ...) |
//! | [`checksum`] | recompute ([`fix_checksums`]) and check ([`verify_checksums`]) IPv4/TCP/UDP/ICMP/SCTP checksums |
//! | [`builder`] | [`UdpSpec`] / [`TcpSpec`] frame builders and the per-flow generator helper [`build_udp_for_flow`] |
//!
//! Reading and writing are deliberately split: [`Headers`] borrows the frame immutably
//! and hands out etherparse's typed slices, which is what classification and logging
//! want; the edit and checksum functions only need a handful of offsets ([`Layout`]),
//! so they find them with a few bounds-checked reads and then mutate the frame in
//! place, which is what a forwarding NF does to every packet.
//!
//! ```
//! use onvm_packet::{Headers, UdpSpec, swap_ips, swap_macs, swap_ports, verify_checksums};
//!
//! // Build a frame into a packet buffer...
//! let mut buf = [0u8; 1514];
//! let spec = UdpSpec { payload: b"hello", ..UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1234, 7) };
//! let len = spec.write(&mut buf)?;
//! let frame = &mut buf[..len];
//!
//! // ...read it...
//! let h = Headers::parse(frame)?;
//! assert_eq!((h.dst_port(), h.payload()), (Some(7), &b"hello"[..]));
//! drop(h);
//!
//! // ...and echo it back in place, checksums still valid.
//! swap_macs(frame)?;
//! swap_ips(frame)?;
//! swap_ports(frame)?;
//! assert!(verify_checksums(frame)?);
//! # Ok::<(), onvm_packet::Error>(())
//! ```
//!
//! # Frame sizes and the FCS
//!
//! Frames in onvm-rs never carry the 4-byte Ethernet FCS (the NIC adds and strips it),
//! but frame *sizes* are quoted the usual way, FCS included: the traffic generator's
//! "64B" frame holds 60 bytes of data. [`frame_len_for_wire_size`] converts one into
//! the other; every length this crate takes or returns is a data length (no FCS).
//!
//! # Errors
//!
//! One [`Error`] enum names what was wrong with a frame or a buffer. No function here
//! panics on malformed input; the tests feed every entry point random bytes.
#![forbid(unsafe_code)]

pub mod builder;
pub mod checksum;
pub mod edit;
pub mod field;
pub mod headers;
pub mod layout;
pub mod mpls;
pub mod ttl;
pub mod vlan;

mod error;

pub use builder::{
    FlowTuple, TcpFlags, TcpSpec, UdpSpec, build_udp_for_flow, build_udp_for_flow_vec, frame_len_for_wire_size,
};
pub use checksum::{crc32c, fix_checksums, internet_checksum, recalc_csum16, verify_checksums};
pub use edit::{reflect_macs, set_dst_mac, set_ip, set_port, set_src_mac, swap_ips, swap_macs, swap_ports};
pub use error::{Error, Result};
pub use field::{Field, NdOption, set_field, set_nd_lla};
pub use headers::Headers;
pub use layout::{Layout, l3_offset, l4_offset};
pub use mpls::{
    Lse, MPLS_LSE_LEN, MPLS_MAX_LABELS, outer_lse, pop_mpls, pop_mpls_ovs, pop_mpls_ovs_vec, pop_mpls_vec, push_mpls,
    push_mpls_vec, set_mpls_bos, set_mpls_label, set_mpls_tc,
};
pub use ttl::{copy_ttl_in, copy_ttl_out, dec_mpls_ttl, dec_nw_ttl, set_mpls_ttl, set_nw_ttl};
pub use vlan::{
    TPID_8021AD, TPID_8021Q, outer_vlan, pop_vlan, pop_vlan_vec, push_vlan, push_vlan_tci, push_vlan_vec, set_vlan_pcp,
    set_vlan_vid,
};

/// The etherparse version whose types [`Headers`] hands out, so users need not keep
/// their own dependency in step.
pub use etherparse;

/// Length of an Ethernet II header (two MACs and the EtherType).
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Length of one 802.1Q / 802.1ad VLAN tag.
pub const VLAN_TAG_LEN: usize = 4;
/// Length of the Ethernet frame check sequence, which frames here never carry.
pub const FCS_LEN: usize = 4;
/// Smallest Ethernet frame without FCS (the "64B" frame on the wire).
pub const MIN_FRAME_LEN: usize = 60;
/// Largest standard (non-jumbo) Ethernet frame without FCS: 1500 bytes of MTU plus the header.
pub const MAX_FRAME_LEN: usize = 1514;

/// A MAC address.
pub type MacAddr = [u8; 6];

#[cfg(test)]
mod test_util {
    //! etherparse's `PacketBuilder` as a one-call reference encoder for the tests.

    use etherparse::err::packet::BuildVecWriteError;
    use etherparse::{Icmpv4Header, Icmpv6Header, PacketBuilderStep, TcpHeader, UdpHeader};

    /// Writes a finished etherparse builder and its payload into a new vector.
    pub(crate) trait Build {
        fn build(self, payload: &[u8]) -> Result<Vec<u8>, BuildVecWriteError>;
    }

    macro_rules! build {
        ($($h:ty),*) => {$(
            impl Build for PacketBuilderStep<$h> {
                fn build(self, payload: &[u8]) -> Result<Vec<u8>, BuildVecWriteError> {
                    let mut v = Vec::new();
                    self.write_to_vec(&mut v, payload)?;
                    Ok(v)
                }
            }
        )*};
    }
    build!(UdpHeader, TcpHeader, Icmpv4Header, Icmpv6Header);

    pub(crate) const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    pub(crate) const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];
    pub(crate) const V6_A: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    pub(crate) const V6_B: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

    fn eth() -> etherparse::PacketBuilderStep<etherparse::Ethernet2Header> {
        etherparse::PacketBuilder::ethernet2(MAC_A, MAC_B)
    }

    /// UDP over IPv4 (TOS 0, TTL `ttl`).
    pub(crate) fn udp4(ttl: u8) -> Vec<u8> {
        eth()
            .ipv4([10, 0, 0, 1], [10, 9, 8, 7], ttl)
            .udp(1000, 2000)
            .build(b"hello")
            .unwrap()
    }

    /// TCP over IPv6 (hop limit 7).
    pub(crate) fn tcp6() -> Vec<u8> {
        eth().ipv6(V6_A, V6_B, 7).tcp(80, 443, 1, 10).build(b"payload").unwrap()
    }

    /// ICMPv4 / ICMPv6 echo requests.
    pub(crate) fn icmp4() -> Vec<u8> {
        eth()
            .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
            .icmpv4_echo_request(1, 2)
            .build(b"ping")
            .unwrap()
    }

    pub(crate) fn icmp6() -> Vec<u8> {
        eth()
            .ipv6(V6_A, V6_B, 9)
            .icmpv6_echo_request(1, 2)
            .build(b"ping")
            .unwrap()
    }

    /// SCTP (one DATA chunk) over IPv4 or IPv6 with a correct CRC32c.
    pub(crate) fn sctp(v6: bool) -> Vec<u8> {
        let mut l4 = vec![0x04, 0xd2, 0x16, 0x2e, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
        l4.extend_from_slice(&[0, 3, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'd', b'a', b't', b'a']);
        let mut v = Vec::new();
        let proto = etherparse::IpNumber(132);
        if v6 {
            eth().ipv6(V6_A, V6_B, 64).write(&mut v, proto, &l4).unwrap();
        } else {
            eth()
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .write(&mut v, proto, &l4)
                .unwrap();
        }
        crate::fix_checksums(&mut v).unwrap();
        v
    }

    /// A neighbor solicitation (135) or advertisement (136) for `V6_B` with `options`.
    pub(crate) fn nd(icmp_type: u8, options: &[u8]) -> Vec<u8> {
        use etherparse::Icmpv6Type;
        let t = if icmp_type == 135 {
            Icmpv6Type::NeighborSolicitation
        } else {
            Icmpv6Type::NeighborAdvertisement(etherparse::icmpv6::NeighborAdvertisementHeader {
                router: false,
                solicited: true,
                r#override: true,
            })
        };
        let body = [&V6_B[..], options].concat();
        eth().ipv6(V6_A, V6_B, 255).icmpv6(t).build(&body).unwrap()
    }

    /// An Ethernet/IPv4 ARP request, padded to 60 bytes.
    pub(crate) fn arp() -> Vec<u8> {
        let mut f = [&[0xff; 6][..], &MAC_A, &[0x08, 0x06]].concat();
        f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&MAC_A);
        f.extend_from_slice(&[10, 0, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[10, 0, 0, 2]);
        f.resize(60, 0);
        f
    }

    /// Every prefix of `frame` (and `frame` with bytes cut off its front), run through
    /// `op`: whatever it returns, it must not panic.
    pub(crate) fn truncations(frame: &[u8], mut op: impl FnMut(&mut Vec<u8>)) {
        for len in 0..=frame.len() {
            op(&mut frame[..len].to_vec());
            op(&mut frame[frame.len() - len..].to_vec());
        }
    }
}
