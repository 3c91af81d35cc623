//! `ofp_match` with OXM (OpenFlow Extensible Match) fields.
//!
//! A match is `type = OFPMT_OXM, length` followed by TLVs and zero padding to a multiple
//! of 8; `length` counts the 4-byte match header and the TLVs but not the padding. Each
//! TLV is a 32-bit header (`class:16 field:7 hasmask:1 length:8`) and a value, then the
//! mask when `hasmask` is set.
//!
//! [`Match`] holds the fields the onvm flow table can match on (see DESIGN.md, "One flow
//! table"); any other field is refused with `OFPBMC_BAD_FIELD`, so a controller learns
//! at FLOW_MOD time that the switch cannot honour the rule rather than having it match
//! more than it asked for. Decoding also enforces what the spec makes the switch check:
//! lengths (`BAD_LEN`), masks only where allowed (`BAD_MASK`), value bits outside the
//! mask (`BAD_WILDCARDS`), duplicates (`DUP_FIELD`), VLAN ids (`BAD_VALUE`) and
//! prerequisites such as `tcp_src` needing `ip_proto = 6` (`BAD_PREREQ`). Encoding
//! writes fields in field-number order, which puts every prerequisite first.

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
pub const IP_PROTO_TCP: u8 = 6;
pub const IP_PROTO_UDP: u8 = 17;

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
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    pub in_port: Option<u32>,
    pub eth_dst: Option<Masked<[u8; 6]>>,
    pub eth_src: Option<Masked<[u8; 6]>>,
    pub eth_type: Option<u16>,
    /// [`OFPVID_PRESENT`] | vid, or [`OFPVID_NONE`]; masked `0x1000/0x1000` = any tag.
    pub vlan_vid: Option<Masked<u16>>,
    pub ip_proto: Option<u8>,
    pub ipv4_src: Option<Masked<Ipv4Addr>>,
    pub ipv4_dst: Option<Masked<Ipv4Addr>>,
    pub tcp_src: Option<u16>,
    pub tcp_dst: Option<u16>,
    pub udp_src: Option<u16>,
    pub udp_dst: Option<u16>,
    pub ipv6_src: Option<Masked<Ipv6Addr>>,
    pub ipv6_dst: Option<Masked<Ipv6Addr>>,
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
    let raw = f.payload.clone().rest();
    if f.has_mask && raw[..T::LEN].iter().zip(&raw[T::LEN..]).any(|(v, m)| v & !m != 0) {
        return Err(match_error(
            ofpbmc::BAD_WILDCARDS,
            format!("{name} value has bits set outside its mask"),
        ));
    }
    let value = T::read(&mut f.payload)?;
    let mask = if f.has_mask {
        Some(T::read(&mut f.payload)?)
    } else {
        None
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
                ofpxmt::ETH_DST => masked(&mut m.eth_dst, f, "eth_dst")?,
                ofpxmt::ETH_SRC => masked(&mut m.eth_src, f, "eth_src")?,
                ofpxmt::ETH_TYPE => exact(&mut m.eth_type, f, "eth_type")?,
                ofpxmt::VLAN_VID => masked(&mut m.vlan_vid, f, "vlan_vid")?,
                ofpxmt::IP_PROTO => exact(&mut m.ip_proto, f, "ip_proto")?,
                ofpxmt::IPV4_SRC => masked(&mut m.ipv4_src, f, "ipv4_src")?,
                ofpxmt::IPV4_DST => masked(&mut m.ipv4_dst, f, "ipv4_dst")?,
                ofpxmt::TCP_SRC => exact(&mut m.tcp_src, f, "tcp_src")?,
                ofpxmt::TCP_DST => exact(&mut m.tcp_dst, f, "tcp_dst")?,
                ofpxmt::UDP_SRC => exact(&mut m.udp_src, f, "udp_src")?,
                ofpxmt::UDP_DST => exact(&mut m.udp_dst, f, "udp_dst")?,
                ofpxmt::IPV6_SRC => masked(&mut m.ipv6_src, f, "ipv6_src")?,
                ofpxmt::IPV6_DST => masked(&mut m.ipv6_dst, f, "ipv6_dst")?,
                other => {
                    return Err(match_error(
                        ofpbmc::BAD_FIELD,
                        format!("OXM field {other} is not supported by this switch"),
                    ));
                }
            }
        }
        m.check_vlan()?;
        m.check_prereqs()?;
        Ok(m)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        w.u16(OFPMT_OXM);
        let at = w.len_placeholder();
        if let Some(v) = &self.in_port {
            Oxm::put(w, ofpxmt::IN_PORT, v);
        }
        if let Some(v) = &self.eth_dst {
            Oxm::put_masked(w, ofpxmt::ETH_DST, v);
        }
        if let Some(v) = &self.eth_src {
            Oxm::put_masked(w, ofpxmt::ETH_SRC, v);
        }
        if let Some(v) = &self.eth_type {
            Oxm::put(w, ofpxmt::ETH_TYPE, v);
        }
        if let Some(v) = &self.vlan_vid {
            Oxm::put_masked(w, ofpxmt::VLAN_VID, v);
        }
        if let Some(v) = &self.ip_proto {
            Oxm::put(w, ofpxmt::IP_PROTO, v);
        }
        if let Some(v) = &self.ipv4_src {
            Oxm::put_masked(w, ofpxmt::IPV4_SRC, v);
        }
        if let Some(v) = &self.ipv4_dst {
            Oxm::put_masked(w, ofpxmt::IPV4_DST, v);
        }
        for (field, v) in [
            (ofpxmt::TCP_SRC, self.tcp_src),
            (ofpxmt::TCP_DST, self.tcp_dst),
            (ofpxmt::UDP_SRC, self.udp_src),
            (ofpxmt::UDP_DST, self.udp_dst),
        ] {
            if let Some(v) = v {
                Oxm::put(w, field, &v);
            }
        }
        if let Some(v) = &self.ipv6_src {
            Oxm::put_masked(w, ofpxmt::IPV6_SRC, v);
        }
        if let Some(v) = &self.ipv6_dst {
            Oxm::put_masked(w, ofpxmt::IPV6_DST, v);
        }
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

    /// The spec's prerequisites (OpenFlow 1.3.5, table 12) for the fields we support:
    /// IP fields need the matching `eth_type`, `ip_proto` needs IPv4 or IPv6, and L4
    /// ports need their `ip_proto`.
    pub fn check_prereqs(&self) -> Result<(), OfpError> {
        let ip = matches!(self.eth_type, Some(ETH_TYPE_IPV4 | ETH_TYPE_IPV6));
        let checks = [
            (self.ip_proto.is_some() && !ip, "ip_proto needs eth_type IPv4 or IPv6"),
            (
                (self.ipv4_src.is_some() || self.ipv4_dst.is_some()) && self.eth_type != Some(ETH_TYPE_IPV4),
                "ipv4_src/ipv4_dst need eth_type=0x0800",
            ),
            (
                (self.ipv6_src.is_some() || self.ipv6_dst.is_some()) && self.eth_type != Some(ETH_TYPE_IPV6),
                "ipv6_src/ipv6_dst need eth_type=0x86dd",
            ),
            (
                (self.tcp_src.is_some() || self.tcp_dst.is_some()) && (!ip || self.ip_proto != Some(IP_PROTO_TCP)),
                "tcp_src/tcp_dst need ip_proto=6 over IPv4 or IPv6",
            ),
            (
                (self.udp_src.is_some() || self.udp_dst.is_some()) && (!ip || self.ip_proto != Some(IP_PROTO_UDP)),
                "udp_src/udp_dst need ip_proto=17 over IPv4 or IPv6",
            ),
        ];
        match checks.iter().find(|(failed, _)| *failed) {
            Some((_, why)) => Err(match_error(ofpbmc::BAD_PREREQ, (*why).to_string())),
            None => Ok(()),
        }
    }
}
