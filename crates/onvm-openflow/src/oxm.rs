//! `ofp_match` with OXM (OpenFlow Extensible Match) fields.
//!
//! A match is `type = OFPMT_OXM, length` followed by TLVs and zero padding to a multiple
//! of 8; `length` counts the 4-byte match header and the TLVs but not the padding. Each
//! TLV is a 32-bit header (`class:16 field:7 hasmask:1 length:8`) and a value, then the
//! mask when `hasmask` is set.
//!
//! [`Match`] holds OpenFlow 1.3's required and commonly used optional fields: every
//! basic-class field but `pbb_isid` and `ipv6_exthdr`, which (like other classes) are
//! refused with `OFPBMC_BAD_FIELD`, so a controller learns at FLOW_MOD time that the
//! switch cannot honour the rule rather than having it match more than it asked for.
//! Decoding also enforces what the spec makes the switch check: lengths (`BAD_LEN`),
//! masks only where allowed (`BAD_MASK`), duplicates (`DUP_FIELD`), values too wide for
//! their field, such as VLAN ids or a PCP over 7 (`BAD_VALUE`), and prerequisites such
//! as `tcp_src` needing `ip_proto = 6` (`BAD_PREREQ`, checked on the whole match, so the
//! order of the TLVs does not matter). Value bits outside a field's mask are cleared,
//! as Open vSwitch does (`mf_set` stores `value & mask`; the spec would allow
//! `BAD_WILDCARDS`). Encoding writes fields in field-number order, which puts every
//! prerequisite first.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, OfpError, ofpbmc, ofpet};
use crate::wire::{Reader, Writer, pad8};

/// `ofp_match_type` of an OXM match (the only one 1.3 allows).
pub const OFPMT_OXM: u16 = 1;
/// The OXM class of all standard fields.
pub const OFPXMC_OPENFLOW_BASIC: u16 = 0x8000;
/// VLAN id flag meaning "a VLAN tag is present".
pub const OFPVID_PRESENT: u16 = 0x1000;
/// VLAN id value meaning "no VLAN tag".
pub const OFPVID_NONE: u16 = 0x0000;

/// Ethernet types that prerequisites refer to.
pub const ETH_TYPE_IPV4: u16 = 0x0800;
pub const ETH_TYPE_IPV6: u16 = 0x86dd;
pub const ETH_TYPE_ARP: u16 = 0x0806;
pub const ETH_TYPE_MPLS: u16 = 0x8847;
pub const ETH_TYPE_MPLS_MCAST: u16 = 0x8848;
pub const IP_PROTO_ICMP: u8 = 1;
pub const IP_PROTO_TCP: u8 = 6;
pub const IP_PROTO_UDP: u8 = 17;
pub const IP_PROTO_SCTP: u8 = 132;
pub const IP_PROTO_ICMPV6: u8 = 58;
/// ICMPv6 neighbour solicitation and advertisement (what `ipv6_nd_*` need).
pub const ICMPV6_ND_SOLICIT: u8 = 135;
pub const ICMPV6_ND_ADVERT: u8 = 136;

/// `oxm_ofb_match_fields` numbers (class 0x8000).
pub mod ofpxmt {
    pub const IN_PORT: u8 = 0;
    pub const IN_PHY_PORT: u8 = 1;
    pub const METADATA: u8 = 2;
    pub const ETH_DST: u8 = 3;
    pub const ETH_SRC: u8 = 4;
    pub const ETH_TYPE: u8 = 5;
    pub const VLAN_VID: u8 = 6;
    pub const VLAN_PCP: u8 = 7;
    pub const IP_DSCP: u8 = 8;
    pub const IP_ECN: u8 = 9;
    pub const IP_PROTO: u8 = 10;
    pub const IPV4_SRC: u8 = 11;
    pub const IPV4_DST: u8 = 12;
    pub const TCP_SRC: u8 = 13;
    pub const TCP_DST: u8 = 14;
    pub const UDP_SRC: u8 = 15;
    pub const UDP_DST: u8 = 16;
    pub const SCTP_SRC: u8 = 17;
    pub const SCTP_DST: u8 = 18;
    pub const ICMPV4_TYPE: u8 = 19;
    pub const ICMPV4_CODE: u8 = 20;
    pub const ARP_OP: u8 = 21;
    pub const ARP_SPA: u8 = 22;
    pub const ARP_TPA: u8 = 23;
    pub const ARP_SHA: u8 = 24;
    pub const ARP_THA: u8 = 25;
    pub const IPV6_SRC: u8 = 26;
    pub const IPV6_DST: u8 = 27;
    pub const IPV6_FLABEL: u8 = 28;
    pub const ICMPV6_TYPE: u8 = 29;
    pub const ICMPV6_CODE: u8 = 30;
    pub const IPV6_ND_TARGET: u8 = 31;
    pub const IPV6_ND_SLL: u8 = 32;
    pub const IPV6_ND_TLL: u8 = 33;
    pub const MPLS_LABEL: u8 = 34;
    pub const MPLS_TC: u8 = 35;
    pub const MPLS_BOS: u8 = 36;
    pub const PBB_ISID: u8 = 37;
    pub const TUNNEL_ID: u8 = 38;
    pub const IPV6_EXTHDR: u8 = 39;
}

/// A field value with an optional mask (1 bits = compared). A value must have no 1
/// bits where its mask has 0 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Masked<T> {
    pub value: T,
    pub mask: Option<T>,
}

impl<T> Masked<T> {
    pub fn exact(value: T) -> Self {
        Masked { value, mask: None }
    }

    pub fn with_mask(value: T, mask: T) -> Self {
        Masked {
            value,
            mask: Some(mask),
        }
    }
}

/// The match of a flow (or of a PACKET_IN / FLOW_REMOVED): `None` = wildcarded.
/// Fields are in `oxm_ofb_match_fields` order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub in_port: Option<u32>,
    pub in_phy_port: Option<u32>,
    pub metadata: Option<Masked<u64>>,
    pub eth_dst: Option<Masked<[u8; 6]>>,
    pub eth_src: Option<Masked<[u8; 6]>>,
    pub eth_type: Option<u16>,
    /// [`OFPVID_PRESENT`] | vid, or [`OFPVID_NONE`]; masked `0x1000/0x1000` = any tag.
    pub vlan_vid: Option<Masked<u16>>,
    pub vlan_pcp: Option<u8>,
    /// The 6-bit DSCP (the TOS byte shifted right by 2).
    pub ip_dscp: Option<u8>,
    pub ip_ecn: Option<u8>,
    pub ip_proto: Option<u8>,
    pub ipv4_src: Option<Masked<Ipv4Addr>>,
    pub ipv4_dst: Option<Masked<Ipv4Addr>>,
    pub tcp_src: Option<u16>,
    pub tcp_dst: Option<u16>,
    pub udp_src: Option<u16>,
    pub udp_dst: Option<u16>,
    pub sctp_src: Option<u16>,
    pub sctp_dst: Option<u16>,
    pub icmpv4_type: Option<u8>,
    pub icmpv4_code: Option<u8>,
    pub arp_op: Option<u16>,
    pub arp_spa: Option<Masked<Ipv4Addr>>,
    pub arp_tpa: Option<Masked<Ipv4Addr>>,
    pub arp_sha: Option<Masked<[u8; 6]>>,
    pub arp_tha: Option<Masked<[u8; 6]>>,
    pub ipv6_src: Option<Masked<Ipv6Addr>>,
    pub ipv6_dst: Option<Masked<Ipv6Addr>>,
    /// 20 bits.
    pub ipv6_flabel: Option<Masked<u32>>,
    pub icmpv6_type: Option<u8>,
    pub icmpv6_code: Option<u8>,
    pub ipv6_nd_target: Option<Ipv6Addr>,
    pub ipv6_nd_sll: Option<[u8; 6]>,
    pub ipv6_nd_tll: Option<[u8; 6]>,
    /// 20 bits.
    pub mpls_label: Option<u32>,
    /// 3 bits.
    pub mpls_tc: Option<u8>,
    /// 1 bit.
    pub mpls_bos: Option<u8>,
    pub tunnel_id: Option<Masked<u64>>,
}

/// A field value as OXM carries it: fixed length, big-endian.
pub(crate) trait FieldValue: Sized {
    const LEN: usize;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError>;
    fn write(&self, w: &mut Writer);
}

impl FieldValue for u8 {
    const LEN: usize = 1;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        r.u8()
    }
    fn write(&self, w: &mut Writer) {
        w.u8(*self);
    }
}

impl FieldValue for u16 {
    const LEN: usize = 2;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        r.u16()
    }
    fn write(&self, w: &mut Writer) {
        w.u16(*self);
    }
}

impl FieldValue for u32 {
    const LEN: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        r.u32()
    }
    fn write(&self, w: &mut Writer) {
        w.u32(*self);
    }
}

impl FieldValue for u64 {
    const LEN: usize = 8;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        r.u64()
    }
    fn write(&self, w: &mut Writer) {
        w.u64(*self);
    }
}

impl FieldValue for [u8; 6] {
    const LEN: usize = 6;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        r.array()
    }
    fn write(&self, w: &mut Writer) {
        w.bytes(self);
    }
}

impl FieldValue for Ipv4Addr {
    const LEN: usize = 4;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        Ok(Ipv4Addr::from(r.array::<4>()?))
    }
    fn write(&self, w: &mut Writer) {
        w.bytes(&self.octets());
    }
}

impl FieldValue for Ipv6Addr {
    const LEN: usize = 16;
    fn read(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        Ok(Ipv6Addr::from(r.array::<16>()?))
    }
    fn write(&self, w: &mut Writer) {
        w.bytes(&self.octets());
    }
}

/// One OXM TLV as read off the wire, before its field is interpreted.
#[derive(Debug)]
pub(crate) struct Oxm<'a> {
    pub(crate) class: u16,
    pub(crate) field: u8,
    pub(crate) has_mask: bool,
    /// Value, then mask if `has_mask`.
    pub(crate) payload: Reader<'a>,
}

impl<'a> Oxm<'a> {
    /// Reads one TLV; running short is the reader's own error kind.
    pub(crate) fn read(r: &mut Reader<'a>, short: ErrorKind) -> Result<Self, OfpError> {
        let header = r.u32()?;
        let len = usize::from(header as u8);
        Ok(Oxm {
            class: (header >> 16) as u16,
            field: ((header >> 9) & 0x7f) as u8,
            has_mask: header & 0x100 != 0,
            payload: r.sub(len, short, "OXM field")?,
        })
    }

    fn write_header(w: &mut Writer, field: u8, has_mask: bool, len: usize) {
        let len = u32::try_from(len).unwrap_or(0) & 0xff;
        w.u32((u32::from(OFPXMC_OPENFLOW_BASIC) << 16) | (u32::from(field) << 9) | (u32::from(has_mask) << 8) | len);
    }

    /// Writes an unmasked field.
    pub(crate) fn put<T: FieldValue>(w: &mut Writer, field: u8, value: &T) {
        Oxm::write_header(w, field, false, T::LEN);
        value.write(w);
    }

    fn put_masked<T: FieldValue>(w: &mut Writer, field: u8, m: &Masked<T>) {
        match &m.mask {
            None => Oxm::put(w, field, &m.value),
            Some(mask) => {
                Oxm::write_header(w, field, true, 2 * T::LEN);
                m.value.write(w);
                mask.write(w);
            }
        }
    }
}

fn match_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_MATCH, code, message)
}

/// Decodes the value of a field that may not be masked into `slot`.
fn exact<T: FieldValue>(slot: &mut Option<T>, mut f: Oxm<'_>, name: &str) -> Result<(), OfpError> {
    if slot.is_some() {
        return Err(match_error(ofpbmc::DUP_FIELD, format!("{name} appears twice")));
    }
    if f.has_mask {
        return Err(match_error(ofpbmc::BAD_MASK, format!("{name} cannot be masked")));
    }
    if f.payload.remaining() != T::LEN {
        return Err(match_error(
            ofpbmc::BAD_LEN,
            format!("{name} has {} bytes, needs {}", f.payload.remaining(), T::LEN),
        ));
    }
    *slot = Some(T::read(&mut f.payload)?);
    Ok(())
}

/// Decodes a maskable field into `slot`.
fn masked<T: FieldValue>(slot: &mut Option<Masked<T>>, mut f: Oxm<'_>, name: &str) -> Result<(), OfpError> {
    if slot.is_some() {
        return Err(match_error(ofpbmc::DUP_FIELD, format!("{name} appears twice")));
    }
    let want = T::LEN * if f.has_mask { 2 } else { 1 };
    if f.payload.remaining() != want {
        return Err(match_error(
            ofpbmc::BAD_LEN,
            format!("{name} has {} bytes, needs {want}", f.payload.remaining()),
        ));
    }
    let raw = f.payload.rest();
    let (value, mask) = if f.has_mask {
        // Value bits outside the mask are cleared, as Open vSwitch does.
        let (v, m) = raw.split_at(T::LEN);
        let cleared: Vec<u8> = v.iter().zip(m).map(|(v, m)| v & m).collect();
        let mut value = Reader::new(&cleared, ErrorKind::BAD_MATCH_LEN, "OXM value");
        let mut mask = Reader::new(m, ErrorKind::BAD_MATCH_LEN, "OXM mask");
        (T::read(&mut value)?, Some(T::read(&mut mask)?))
    } else {
        (
            T::read(&mut Reader::new(raw, ErrorKind::BAD_MATCH_LEN, "OXM value"))?,
            None,
        )
    };
    *slot = Some(Masked { value, mask });
    Ok(())
}

impl Match {
    /// Reads an `ofp_match` and its padding from `r`.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let short = |what: String| match_error(ofpbmc::BAD_LEN, what);
        if r.remaining() < 4 {
            return Err(short(format!("match header needs 4 bytes, has {}", r.remaining())));
        }
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if ty != OFPMT_OXM {
            return Err(match_error(
                ofpbmc::BAD_TYPE,
                format!("match type {ty} is not OFPMT_OXM"),
            ));
        }
        if len < 4 || len - 4 + pad8(len) > r.remaining() {
            return Err(short(format!(
                "match length {len} (+{} padding) does not fit in {} bytes",
                pad8(len),
                r.remaining() + 4
            )));
        }
        let mut fields = r.sub(len - 4, ErrorKind::BAD_MATCH_LEN, "OXM field")?;
        if r.bytes(pad8(len))?.iter().any(|&b| b != 0) {
            return Err(short("match padding is not zero".into()));
        }
        let mut m = Match::default();
        while !fields.is_empty() {
            let f = Oxm::read(&mut fields, ErrorKind::BAD_MATCH_LEN)?;
            if f.class != OFPXMC_OPENFLOW_BASIC {
                return Err(match_error(
                    ofpbmc::BAD_FIELD,
                    format!("OXM class {:#06x} is not supported", f.class),
                ));
            }
            match f.field {
                ofpxmt::IN_PORT => exact(&mut m.in_port, f, "in_port")?,
                ofpxmt::IN_PHY_PORT => exact(&mut m.in_phy_port, f, "in_phy_port")?,
                ofpxmt::METADATA => masked(&mut m.metadata, f, "metadata")?,
                ofpxmt::ETH_DST => masked(&mut m.eth_dst, f, "eth_dst")?,
                ofpxmt::ETH_SRC => masked(&mut m.eth_src, f, "eth_src")?,
                ofpxmt::ETH_TYPE => exact(&mut m.eth_type, f, "eth_type")?,
                ofpxmt::VLAN_VID => masked(&mut m.vlan_vid, f, "vlan_vid")?,
                ofpxmt::VLAN_PCP => exact(&mut m.vlan_pcp, f, "vlan_pcp")?,
                ofpxmt::IP_DSCP => exact(&mut m.ip_dscp, f, "ip_dscp")?,
                ofpxmt::IP_ECN => exact(&mut m.ip_ecn, f, "ip_ecn")?,
                ofpxmt::IP_PROTO => exact(&mut m.ip_proto, f, "ip_proto")?,
                ofpxmt::IPV4_SRC => masked(&mut m.ipv4_src, f, "ipv4_src")?,
                ofpxmt::IPV4_DST => masked(&mut m.ipv4_dst, f, "ipv4_dst")?,
                ofpxmt::TCP_SRC => exact(&mut m.tcp_src, f, "tcp_src")?,
                ofpxmt::TCP_DST => exact(&mut m.tcp_dst, f, "tcp_dst")?,
                ofpxmt::UDP_SRC => exact(&mut m.udp_src, f, "udp_src")?,
                ofpxmt::UDP_DST => exact(&mut m.udp_dst, f, "udp_dst")?,
                ofpxmt::SCTP_SRC => exact(&mut m.sctp_src, f, "sctp_src")?,
                ofpxmt::SCTP_DST => exact(&mut m.sctp_dst, f, "sctp_dst")?,
                ofpxmt::ICMPV4_TYPE => exact(&mut m.icmpv4_type, f, "icmpv4_type")?,
                ofpxmt::ICMPV4_CODE => exact(&mut m.icmpv4_code, f, "icmpv4_code")?,
                ofpxmt::ARP_OP => exact(&mut m.arp_op, f, "arp_op")?,
                ofpxmt::ARP_SPA => masked(&mut m.arp_spa, f, "arp_spa")?,
                ofpxmt::ARP_TPA => masked(&mut m.arp_tpa, f, "arp_tpa")?,
                ofpxmt::ARP_SHA => masked(&mut m.arp_sha, f, "arp_sha")?,
                ofpxmt::ARP_THA => masked(&mut m.arp_tha, f, "arp_tha")?,
                ofpxmt::IPV6_SRC => masked(&mut m.ipv6_src, f, "ipv6_src")?,
                ofpxmt::IPV6_DST => masked(&mut m.ipv6_dst, f, "ipv6_dst")?,
                ofpxmt::IPV6_FLABEL => masked(&mut m.ipv6_flabel, f, "ipv6_flabel")?,
                ofpxmt::ICMPV6_TYPE => exact(&mut m.icmpv6_type, f, "icmpv6_type")?,
                ofpxmt::ICMPV6_CODE => exact(&mut m.icmpv6_code, f, "icmpv6_code")?,
                ofpxmt::IPV6_ND_TARGET => exact(&mut m.ipv6_nd_target, f, "ipv6_nd_target")?,
                ofpxmt::IPV6_ND_SLL => exact(&mut m.ipv6_nd_sll, f, "ipv6_nd_sll")?,
                ofpxmt::IPV6_ND_TLL => exact(&mut m.ipv6_nd_tll, f, "ipv6_nd_tll")?,
                ofpxmt::MPLS_LABEL => exact(&mut m.mpls_label, f, "mpls_label")?,
                ofpxmt::MPLS_TC => exact(&mut m.mpls_tc, f, "mpls_tc")?,
                ofpxmt::MPLS_BOS => exact(&mut m.mpls_bos, f, "mpls_bos")?,
                ofpxmt::TUNNEL_ID => masked(&mut m.tunnel_id, f, "tunnel_id")?,
                other => {
                    return Err(match_error(
                        ofpbmc::BAD_FIELD,
                        format!("OXM field {other} is not supported by this switch"),
                    ));
                }
            }
        }
        m.check_vlan()?;
        m.check_values()?;
        m.check_prereqs()?;
        Ok(m)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        fn put<T: FieldValue>(w: &mut Writer, field: u8, v: &Option<T>) {
            if let Some(v) = v {
                Oxm::put(w, field, v);
            }
        }
        fn put_masked<T: FieldValue>(w: &mut Writer, field: u8, v: &Option<Masked<T>>) {
            if let Some(v) = v {
                Oxm::put_masked(w, field, v);
            }
        }
        use ofpxmt::*;
        let start = w.pos();
        w.u16(OFPMT_OXM);
        let at = w.len_placeholder();
        put(w, IN_PORT, &self.in_port);
        put(w, IN_PHY_PORT, &self.in_phy_port);
        put_masked(w, METADATA, &self.metadata);
        put_masked(w, ETH_DST, &self.eth_dst);
        put_masked(w, ETH_SRC, &self.eth_src);
        put(w, ETH_TYPE, &self.eth_type);
        put_masked(w, VLAN_VID, &self.vlan_vid);
        put(w, VLAN_PCP, &self.vlan_pcp);
        put(w, IP_DSCP, &self.ip_dscp);
        put(w, IP_ECN, &self.ip_ecn);
        put(w, IP_PROTO, &self.ip_proto);
        put_masked(w, IPV4_SRC, &self.ipv4_src);
        put_masked(w, IPV4_DST, &self.ipv4_dst);
        put(w, TCP_SRC, &self.tcp_src);
        put(w, TCP_DST, &self.tcp_dst);
        put(w, UDP_SRC, &self.udp_src);
        put(w, UDP_DST, &self.udp_dst);
        put(w, SCTP_SRC, &self.sctp_src);
        put(w, SCTP_DST, &self.sctp_dst);
        put(w, ICMPV4_TYPE, &self.icmpv4_type);
        put(w, ICMPV4_CODE, &self.icmpv4_code);
        put(w, ARP_OP, &self.arp_op);
        put_masked(w, ARP_SPA, &self.arp_spa);
        put_masked(w, ARP_TPA, &self.arp_tpa);
        put_masked(w, ARP_SHA, &self.arp_sha);
        put_masked(w, ARP_THA, &self.arp_tha);
        put_masked(w, IPV6_SRC, &self.ipv6_src);
        put_masked(w, IPV6_DST, &self.ipv6_dst);
        put_masked(w, IPV6_FLABEL, &self.ipv6_flabel);
        put(w, ICMPV6_TYPE, &self.icmpv6_type);
        put(w, ICMPV6_CODE, &self.icmpv6_code);
        put(w, IPV6_ND_TARGET, &self.ipv6_nd_target);
        put(w, IPV6_ND_SLL, &self.ipv6_nd_sll);
        put(w, IPV6_ND_TLL, &self.ipv6_nd_tll);
        put(w, MPLS_LABEL, &self.mpls_label);
        put(w, MPLS_TC, &self.mpls_tc);
        put(w, MPLS_BOS, &self.mpls_bos);
        put_masked(w, TUNNEL_ID, &self.tunnel_id);
        w.patch_len(at, start);
        w.pad8(start);
    }

    /// A VLAN id is 12 bits plus [`OFPVID_PRESENT`]; an exact value without the flag
    /// can only be [`OFPVID_NONE`].
    fn check_vlan(&self) -> Result<(), OfpError> {
        let Some(vid) = self.vlan_vid else { return Ok(()) };
        let limit = OFPVID_PRESENT | 0x0fff;
        let bad = vid.value > limit
            || vid.mask.is_some_and(|m| m > limit)
            || (vid.mask.is_none() && vid.value != OFPVID_NONE && vid.value & OFPVID_PRESENT == 0);
        if bad {
            return Err(match_error(
                ofpbmc::BAD_VALUE,
                format!("vlan_vid {:#06x}/{:?} is not a valid VLAN id", vid.value, vid.mask),
            ));
        }
        Ok(())
    }

    /// Values wider than their field (OpenFlow 1.3.5, table 12): `BAD_VALUE`.
    fn check_values(&self) -> Result<(), OfpError> {
        let over = |v: Option<u32>, bits: u32| v.is_some_and(|v| v >> bits != 0);
        let checks = [
            (over(self.vlan_pcp.map(u32::from), 3), "vlan_pcp is 3 bits"),
            (over(self.ip_dscp.map(u32::from), 6), "ip_dscp is 6 bits"),
            (over(self.ip_ecn.map(u32::from), 2), "ip_ecn is 2 bits"),
            (over(self.ipv6_flabel.map(|l| l.value), 20), "ipv6_flabel is 20 bits"),
            (over(self.mpls_label, 20), "mpls_label is 20 bits"),
            (over(self.mpls_tc.map(u32::from), 3), "mpls_tc is 3 bits"),
            (over(self.mpls_bos.map(u32::from), 1), "mpls_bos is 1 bit"),
        ];
        match checks.iter().find(|(failed, _)| *failed) {
            Some((_, why)) => Err(match_error(ofpbmc::BAD_VALUE, (*why).to_string())),
            None => Ok(()),
        }
    }

    /// The spec's prerequisites (OpenFlow 1.3.5, table 12): IP fields need the matching
    /// `eth_type`, transport fields their `ip_proto`, ARP fields ARP, MPLS fields an MPLS
    /// `eth_type`, `vlan_pcp` a VLAN tag, the ND fields their ICMPv6 type, `in_phy_port`
    /// an `in_port`. ICMP fields also need their IP version, as Open vSwitch has them.
    pub fn check_prereqs(&self) -> Result<(), OfpError> {
        let v4 = self.eth_type == Some(ETH_TYPE_IPV4);
        let v6 = self.eth_type == Some(ETH_TYPE_IPV6);
        let ip = v4 || v6;
        let arp = self.eth_type == Some(ETH_TYPE_ARP);
        let proto = |p: u8| ip && self.ip_proto == Some(p);
        let some2 = |a: bool, b: bool| a || b;
        let tagged = self.vlan_vid.is_some_and(|v| v.value & OFPVID_PRESENT != 0);
        let icmp6 = v6 && self.ip_proto == Some(IP_PROTO_ICMPV6);
        let nd = |types: &[u8]| icmp6 && self.icmpv6_type.is_some_and(|t| types.contains(&t));
        let checks = [
            (
                self.in_phy_port.is_some() && self.in_port.is_none(),
                "in_phy_port needs in_port",
            ),
            (
                self.vlan_pcp.is_some() && !tagged,
                "vlan_pcp needs a vlan_vid with OFPVID_PRESENT (not OFPVID_NONE)",
            ),
            (
                some2(self.ip_dscp.is_some(), self.ip_ecn.is_some()) && !ip,
                "ip_dscp/ip_ecn need eth_type IPv4 or IPv6",
            ),
            (self.ip_proto.is_some() && !ip, "ip_proto needs eth_type IPv4 or IPv6"),
            (
                some2(self.ipv4_src.is_some(), self.ipv4_dst.is_some()) && !v4,
                "ipv4_src/ipv4_dst need eth_type=0x0800",
            ),
            (
                some2(self.ipv6_src.is_some(), self.ipv6_dst.is_some()) && !v6,
                "ipv6_src/ipv6_dst need eth_type=0x86dd",
            ),
            (self.ipv6_flabel.is_some() && !v6, "ipv6_flabel needs eth_type=0x86dd"),
            (
                some2(self.tcp_src.is_some(), self.tcp_dst.is_some()) && !proto(IP_PROTO_TCP),
                "tcp_src/tcp_dst need ip_proto=6 over IPv4 or IPv6",
            ),
            (
                some2(self.udp_src.is_some(), self.udp_dst.is_some()) && !proto(IP_PROTO_UDP),
                "udp_src/udp_dst need ip_proto=17 over IPv4 or IPv6",
            ),
            (
                some2(self.sctp_src.is_some(), self.sctp_dst.is_some()) && !proto(IP_PROTO_SCTP),
                "sctp_src/sctp_dst need ip_proto=132 over IPv4 or IPv6",
            ),
            (
                some2(self.icmpv4_type.is_some(), self.icmpv4_code.is_some())
                    && !(v4 && self.ip_proto == Some(IP_PROTO_ICMP)),
                "icmpv4_type/icmpv4_code need eth_type=0x0800 and ip_proto=1",
            ),
            (
                some2(self.icmpv6_type.is_some(), self.icmpv6_code.is_some()) && !icmp6,
                "icmpv6_type/icmpv6_code need eth_type=0x86dd and ip_proto=58",
            ),
            (
                self.ipv6_nd_target.is_some() && !nd(&[ICMPV6_ND_SOLICIT, ICMPV6_ND_ADVERT]),
                "ipv6_nd_target needs icmpv6_type 135 or 136",
            ),
            (
                self.ipv6_nd_sll.is_some() && !nd(&[ICMPV6_ND_SOLICIT]),
                "ipv6_nd_sll needs icmpv6_type=135",
            ),
            (
                self.ipv6_nd_tll.is_some() && !nd(&[ICMPV6_ND_ADVERT]),
                "ipv6_nd_tll needs icmpv6_type=136",
            ),
            (
                [
                    self.arp_op.is_some(),
                    self.arp_spa.is_some(),
                    self.arp_tpa.is_some(),
                    self.arp_sha.is_some(),
                    self.arp_tha.is_some(),
                ]
                .contains(&true)
                    && !arp,
                "arp_op/arp_spa/arp_tpa/arp_sha/arp_tha need eth_type=0x0806",
            ),
            (
                [
                    self.mpls_label.is_some(),
                    self.mpls_tc.is_some(),
                    self.mpls_bos.is_some(),
                ]
                .contains(&true)
                    && !matches!(self.eth_type, Some(ETH_TYPE_MPLS | ETH_TYPE_MPLS_MCAST)),
                "mpls_label/mpls_tc/mpls_bos need eth_type 0x8847 or 0x8848",
            ),
        ];
        match checks.iter().find(|(failed, _)| *failed) {
            Some((_, why)) => Err(match_error(ofpbmc::BAD_PREREQ, (*why).to_string())),
            None => Ok(()),
        }
    }
}
