//! Actions: every OpenFlow 1.3 action but the PBB and experimenter ones.
//!
//! An action is `type:16 len:16` and a body, `len` a multiple of 8. PUSH_PBB / POP_PBB
//! (valid in the spec, not offered by this switch) and unknown types are refused with
//! `OFPBAC_BAD_TYPE`, which is what the spec asks of a switch that does not support an
//! action; a SET_FIELD of a field that cannot be rewritten gets `OFPBAC_BAD_SET_TYPE`.
//!
//! Decoding checks what the action alone can say: its fixed length (`BAD_LEN`), the
//! ethertype of a push (`BAD_ARGUMENT`: 802.1Q/802.1ad for VLAN, unicast/multicast for
//! MPLS), a group id that names one group (`BAD_OUT_GROUP`), a set-field value that fits
//! its field (`BAD_SET_ARGUMENT`). Whether the packet has the header an action works on
//! depends on the flow's match and on the actions before it; [`HeaderState`] walks a list
//! to say so (`OFPBAC_MATCH_INCONSISTENT`), as Open vSwitch's `ofpacts_check` does.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, OfpError, ofpbac, ofpet};
use crate::group::OFPG_MAX;
use crate::oxm::{
    ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6, ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST, FieldValue, ICMPV6_ND_ADVERT,
    ICMPV6_ND_SOLICIT, IP_PROTO_ICMP, IP_PROTO_ICMPV6, IP_PROTO_SCTP, IP_PROTO_TCP, IP_PROTO_UDP, Match,
    OFPVID_PRESENT, OFPXMC_OPENFLOW_BASIC, Oxm, ofpxmt,
};
use crate::port::is_output_port;
use crate::wire::{Reader, Writer};

/// `ofp_action_type` values.
pub mod ofpat {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `ofp_controller_max_len`: `max_len` of an OUTPUT to the controller.
pub mod ofpcml {
    /// Largest length that may be asked for (buffer the rest).
    pub const MAX: u16 = 0xffe5;
    /// Send the whole packet, do not buffer it.
    pub const NO_BUFFER: u16 = 0xffff;
}

/// Ethertypes a push action may add (the spec allows no others).
pub const ETH_TYPE_VLAN: u16 = 0x8100;
pub const ETH_TYPE_VLAN_QINQ: u16 = 0x88a8;

/// A field rewrite (SET_FIELD) of one of the settable OpenFlow 1.3 basic fields (all
/// but `pbb_isid`, which goes with the PBB actions this switch does not offer). Values
/// are checked to fit their field, so a 3-bit field holds at most 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetField {
    EthDst([u8; 6]),
    EthSrc([u8; 6]),
    /// The 12-bit VLAN id. On the wire it carries [`OFPVID_PRESENT`] as OpenFlow 1.3
    /// says; one without the flag is taken too, as Open vSwitch does, since controllers
    /// written for 1.0 semantics send it so.
    VlanVid(u16),
    /// 3 bits.
    VlanPcp(u8),
    /// 6 bits (the TOS byte shifted right by 2).
    IpDscp(u8),
    /// 2 bits.
    IpEcn(u8),
    Ipv4Src(Ipv4Addr),
    Ipv4Dst(Ipv4Addr),
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    SctpSrc(u16),
    SctpDst(u16),
    Icmpv4Type(u8),
    Icmpv4Code(u8),
    ArpOp(u16),
    ArpSpa(Ipv4Addr),
    ArpTpa(Ipv4Addr),
    ArpSha([u8; 6]),
    ArpTha([u8; 6]),
    Ipv6Src(Ipv6Addr),
    Ipv6Dst(Ipv6Addr),
    /// 20 bits.
    Ipv6Flabel(u32),
    Icmpv6Type(u8),
    Icmpv6Code(u8),
    Ipv6NdTarget(Ipv6Addr),
    Ipv6NdSll([u8; 6]),
    Ipv6NdTll([u8; 6]),
    /// 20 bits.
    MplsLabel(u32),
    /// 3 bits.
    MplsTc(u8),
    /// 1 bit.
    MplsBos(u8),
    TunnelId(u64),
}

/// One action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send out `port` (a real port or one of [`crate::ofpp`]'s reserved ones but ANY);
    /// `max_len` bytes of the packet go to the controller when `port` is CONTROLLER.
    Output {
        port: u32,
        max_len: u16,
    },
    /// Copy the TTL from the next-to-outermost header to the outermost.
    CopyTtlOut,
    /// Copy the TTL from the outermost header to the next-to-outermost.
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    /// Push a VLAN tag of this ethertype ([`ETH_TYPE_VLAN`] or [`ETH_TYPE_VLAN_QINQ`]).
    PushVlan(u16),
    PopVlan,
    /// Push an MPLS label of this ethertype ([`crate::ETH_TYPE_MPLS`] or
    /// [`crate::ETH_TYPE_MPLS_MCAST`]).
    PushMpls(u16),
    /// Pop the outer MPLS label; the packet's ethertype becomes this one.
    PopMpls(u16),
    SetQueue(u32),
    /// Run group `group_id` (at most [`crate::OFPG_MAX`]).
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    SetField(SetField),
}

fn action_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_ACTION, code, message)
}

/// Reads the field value of a SET_FIELD, checking its length against `T`.
fn set_value<T: FieldValue>(mut f: Oxm<'_>) -> Result<T, OfpError> {
    if f.payload.remaining() != T::LEN {
        return Err(action_error(
            ofpbac::BAD_SET_LEN,
            format!("set-field value has {} bytes, needs {}", f.payload.remaining(), T::LEN),
        ));
    }
    T::read(&mut f.payload)
}

/// Reads a set-field value of a field `bits` wide: a wider value is `BAD_SET_ARGUMENT`.
fn set_bits<T: FieldValue + Into<u64> + Copy>(f: Oxm<'_>, bits: u32, name: &str) -> Result<T, OfpError> {
    let v: T = set_value(f)?;
    if v.into() >> bits != 0 {
        return Err(action_error(
            ofpbac::BAD_SET_ARGUMENT,
            format!("set-field {name} = {:#x}: the field is {bits} bits", v.into()),
        ));
    }
    Ok(v)
}

impl SetField {
    /// Reads the OXM TLV at the start of a SET_FIELD body (the rest is padding). A TLV
    /// that does not fit the action is a bad set-field length, not a bad action length.
    fn decode(body: &[u8]) -> Result<Self, OfpError> {
        let set_len = ErrorKind::new(ofpet::BAD_ACTION, ofpbac::BAD_SET_LEN);
        let f = Oxm::read(&mut Reader::new(body, set_len, "set-field"), set_len)?;
        if f.class != OFPXMC_OPENFLOW_BASIC {
            return Err(action_error(
                ofpbac::BAD_SET_TYPE,
                format!("set-field of OXM class {:#06x} is not supported", f.class),
            ));
        }
        if f.has_mask {
            return Err(action_error(
                ofpbac::BAD_SET_ARGUMENT,
                "set-field with a mask is not allowed in OpenFlow 1.3".into(),
            ));
        }
        use SetField as S;
        Ok(match f.field {
            ofpxmt::ETH_DST => S::EthDst(set_value(f)?),
            ofpxmt::ETH_SRC => S::EthSrc(set_value(f)?),
            ofpxmt::VLAN_VID => {
                // With or without OFPVID_PRESENT; what is left must be a 12-bit id.
                let raw: u16 = set_value(f)?;
                let vid = raw & !OFPVID_PRESENT;
                if vid > 0x0fff {
                    return Err(action_error(
                        ofpbac::BAD_SET_ARGUMENT,
                        format!("set-field vlan_vid = {raw:#06x} is not a 12-bit VLAN id"),
                    ));
                }
                S::VlanVid(vid)
            }
            ofpxmt::VLAN_PCP => S::VlanPcp(set_bits(f, 3, "vlan_pcp")?),
            ofpxmt::IP_DSCP => S::IpDscp(set_bits(f, 6, "ip_dscp")?),
            ofpxmt::IP_ECN => S::IpEcn(set_bits(f, 2, "ip_ecn")?),
            ofpxmt::IPV4_SRC => S::Ipv4Src(set_value(f)?),
            ofpxmt::IPV4_DST => S::Ipv4Dst(set_value(f)?),
            ofpxmt::TCP_SRC => S::TcpSrc(set_value(f)?),
            ofpxmt::TCP_DST => S::TcpDst(set_value(f)?),
            ofpxmt::UDP_SRC => S::UdpSrc(set_value(f)?),
            ofpxmt::UDP_DST => S::UdpDst(set_value(f)?),
            ofpxmt::SCTP_SRC => S::SctpSrc(set_value(f)?),
            ofpxmt::SCTP_DST => S::SctpDst(set_value(f)?),
            ofpxmt::ICMPV4_TYPE => S::Icmpv4Type(set_value(f)?),
            ofpxmt::ICMPV4_CODE => S::Icmpv4Code(set_value(f)?),
            ofpxmt::ARP_OP => S::ArpOp(set_value(f)?),
            ofpxmt::ARP_SPA => S::ArpSpa(set_value(f)?),
            ofpxmt::ARP_TPA => S::ArpTpa(set_value(f)?),
            ofpxmt::ARP_SHA => S::ArpSha(set_value(f)?),
            ofpxmt::ARP_THA => S::ArpTha(set_value(f)?),
            ofpxmt::IPV6_SRC => S::Ipv6Src(set_value(f)?),
            ofpxmt::IPV6_DST => S::Ipv6Dst(set_value(f)?),
            ofpxmt::IPV6_FLABEL => S::Ipv6Flabel(set_bits(f, 20, "ipv6_flabel")?),
            ofpxmt::ICMPV6_TYPE => S::Icmpv6Type(set_value(f)?),
            ofpxmt::ICMPV6_CODE => S::Icmpv6Code(set_value(f)?),
            ofpxmt::IPV6_ND_TARGET => S::Ipv6NdTarget(set_value(f)?),
            ofpxmt::IPV6_ND_SLL => S::Ipv6NdSll(set_value(f)?),
            ofpxmt::IPV6_ND_TLL => S::Ipv6NdTll(set_value(f)?),
            ofpxmt::MPLS_LABEL => S::MplsLabel(set_bits(f, 20, "mpls_label")?),
            ofpxmt::MPLS_TC => S::MplsTc(set_bits(f, 3, "mpls_tc")?),
            ofpxmt::MPLS_BOS => S::MplsBos(set_bits(f, 1, "mpls_bos")?),
            ofpxmt::TUNNEL_ID => S::TunnelId(set_value(f)?),
            // in_port, in_phy_port, metadata, eth_type, ip_proto (a packet's identity,
            // not a header field to rewrite), pbb_isid, ipv6_exthdr and unknown fields.
            other => {
                return Err(action_error(
                    ofpbac::BAD_SET_TYPE,
                    format!("set-field of OXM field {other} is not supported"),
                ));
            }
        })
    }

    /// Whether `m` guarantees the header this rewrites exists (the spec's set-field
    /// prerequisites, from the match alone: an action list that pushes a header
    /// first is judged by [`HeaderState`]).
    pub fn prereqs_met(&self, m: &Match) -> bool {
        self.prereqs_met_in(&HeaderState::of(m))
    }

    /// Whether a packet in state `h` has the header this rewrites (OpenFlow 1.3.5,
    /// table 12, as for matching; VLAN fields need a tag, as in Open vSwitch).
    pub fn prereqs_met_in(&self, h: &HeaderState) -> bool {
        use SetField as S;
        let v4 = h.eth_type == Some(ETH_TYPE_IPV4);
        let v6 = h.eth_type == Some(ETH_TYPE_IPV6);
        let proto = |p: u8| (v4 || v6) && h.ip_proto == Some(p);
        let nd = |types: &[u8]| {
            v6 && h.ip_proto == Some(IP_PROTO_ICMPV6) && h.icmpv6_type.is_some_and(|t| types.contains(&t))
        };
        match self {
            S::EthDst(_) | S::EthSrc(_) | S::TunnelId(_) => true,
            S::VlanVid(_) | S::VlanPcp(_) => h.vlan,
            S::IpDscp(_) | S::IpEcn(_) => v4 || v6,
            S::Ipv4Src(_) | S::Ipv4Dst(_) => v4,
            S::Ipv6Src(_) | S::Ipv6Dst(_) | S::Ipv6Flabel(_) => v6,
            S::TcpSrc(_) | S::TcpDst(_) => proto(IP_PROTO_TCP),
            S::UdpSrc(_) | S::UdpDst(_) => proto(IP_PROTO_UDP),
            S::SctpSrc(_) | S::SctpDst(_) => proto(IP_PROTO_SCTP),
            S::Icmpv4Type(_) | S::Icmpv4Code(_) => v4 && h.ip_proto == Some(IP_PROTO_ICMP),
            S::Icmpv6Type(_) | S::Icmpv6Code(_) => v6 && h.ip_proto == Some(IP_PROTO_ICMPV6),
            S::ArpOp(_) | S::ArpSpa(_) | S::ArpTpa(_) | S::ArpSha(_) | S::ArpTha(_) => h.eth_type == Some(ETH_TYPE_ARP),
            S::Ipv6NdTarget(_) => nd(&[ICMPV6_ND_SOLICIT, ICMPV6_ND_ADVERT]),
            S::Ipv6NdSll(_) => nd(&[ICMPV6_ND_SOLICIT]),
            S::Ipv6NdTll(_) => nd(&[ICMPV6_ND_ADVERT]),
            S::MplsLabel(_) | S::MplsTc(_) | S::MplsBos(_) => h.mpls(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        use SetField as S;
        use ofpxmt::*;
        match self {
            S::EthDst(v) => Oxm::put(w, ETH_DST, v),
            S::EthSrc(v) => Oxm::put(w, ETH_SRC, v),
            S::VlanVid(v) => Oxm::put(w, VLAN_VID, &(OFPVID_PRESENT | v)),
            S::VlanPcp(v) => Oxm::put(w, VLAN_PCP, v),
            S::IpDscp(v) => Oxm::put(w, IP_DSCP, v),
            S::IpEcn(v) => Oxm::put(w, IP_ECN, v),
            S::Ipv4Src(v) => Oxm::put(w, IPV4_SRC, v),
            S::Ipv4Dst(v) => Oxm::put(w, IPV4_DST, v),
            S::TcpSrc(v) => Oxm::put(w, TCP_SRC, v),
            S::TcpDst(v) => Oxm::put(w, TCP_DST, v),
            S::UdpSrc(v) => Oxm::put(w, UDP_SRC, v),
            S::UdpDst(v) => Oxm::put(w, UDP_DST, v),
            S::SctpSrc(v) => Oxm::put(w, SCTP_SRC, v),
            S::SctpDst(v) => Oxm::put(w, SCTP_DST, v),
            S::Icmpv4Type(v) => Oxm::put(w, ICMPV4_TYPE, v),
            S::Icmpv4Code(v) => Oxm::put(w, ICMPV4_CODE, v),
            S::ArpOp(v) => Oxm::put(w, ARP_OP, v),
            S::ArpSpa(v) => Oxm::put(w, ARP_SPA, v),
            S::ArpTpa(v) => Oxm::put(w, ARP_TPA, v),
            S::ArpSha(v) => Oxm::put(w, ARP_SHA, v),
            S::ArpTha(v) => Oxm::put(w, ARP_THA, v),
            S::Ipv6Src(v) => Oxm::put(w, IPV6_SRC, v),
            S::Ipv6Dst(v) => Oxm::put(w, IPV6_DST, v),
            S::Ipv6Flabel(v) => Oxm::put(w, IPV6_FLABEL, v),
            S::Icmpv6Type(v) => Oxm::put(w, ICMPV6_TYPE, v),
            S::Icmpv6Code(v) => Oxm::put(w, ICMPV6_CODE, v),
            S::Ipv6NdTarget(v) => Oxm::put(w, IPV6_ND_TARGET, v),
            S::Ipv6NdSll(v) => Oxm::put(w, IPV6_ND_SLL, v),
            S::Ipv6NdTll(v) => Oxm::put(w, IPV6_ND_TLL, v),
            S::MplsLabel(v) => Oxm::put(w, MPLS_LABEL, v),
            S::MplsTc(v) => Oxm::put(w, MPLS_TC, v),
            S::MplsBos(v) => Oxm::put(w, MPLS_BOS, v),
            S::TunnelId(v) => Oxm::put(w, TUNNEL_ID, v),
        }
    }
}

/// What a packet is known to carry at one point of an action list: what the flow's
/// match guarantees, changed by the pushes and pops before that point.
///
/// Open vSwitch checks an action list the same way (`ofpacts_check` updates its copy
/// of the flow as push/pop actions go by), so `push_vlan, set_field:vlan_vid` is
/// accepted on an untagged match and `pop_mpls:0x0800, set_field:ipv4_dst` on an MPLS
/// one. What is unknown counts as absent: after a pop nothing is promised of the
/// header below but what the pop names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeaderState {
    /// The ethertype after any VLAN tags (what `eth_type` matches).
    pub eth_type: Option<u16>,
    /// At least one VLAN tag is present.
    pub vlan: bool,
    /// Only meaningful with an IP `eth_type`.
    pub ip_proto: Option<u8>,
    /// Only meaningful with ICMPv6.
    pub icmpv6_type: Option<u8>,
}

impl HeaderState {
    /// What `m` guarantees.
    pub fn of(m: &Match) -> Self {
        HeaderState {
            eth_type: m.eth_type,
            vlan: m.vlan_vid.is_some_and(|v| v.value & OFPVID_PRESENT != 0),
            ip_proto: m.ip_proto,
            icmpv6_type: m.icmpv6_type,
        }
    }

    fn mpls(&self) -> bool {
        matches!(self.eth_type, Some(ETH_TYPE_MPLS | ETH_TYPE_MPLS_MCAST))
    }

    fn ip(&self) -> bool {
        matches!(self.eth_type, Some(ETH_TYPE_IPV4 | ETH_TYPE_IPV6))
    }

    /// Checks that `a` has the header it works on here, then applies what it does to
    /// the headers. A set-field of a missing header, an MPLS TTL or pop without an
    /// MPLS label, an IP TTL without IP: `OFPBAC_MATCH_INCONSISTENT` (the spec's code
    /// for "action needs a header the match does not guarantee").
    pub fn step(&mut self, a: &Action) -> Result<(), OfpError> {
        let inconsistent = |why: String| Err(action_error(ofpbac::MATCH_INCONSISTENT, why));
        match *a {
            Action::SetField(f) if !f.prereqs_met_in(self) => {
                return inconsistent(format!(
                    "{f:?} needs a match (or an earlier push) that guarantees its header (eth_type / ip_proto / VLAN tag)"
                ));
            }
            Action::SetMplsTtl(_) | Action::DecMplsTtl | Action::PopMpls(_) if !self.mpls() => {
                return inconsistent(format!(
                    "{a:?} needs an MPLS eth_type (0x8847 / 0x8848) or an earlier push_mpls"
                ));
            }
            Action::SetNwTtl(_) | Action::DecNwTtl if !self.ip() => {
                return inconsistent(format!("{a:?} needs eth_type IPv4 or IPv6"));
            }
            Action::PushVlan(_) => self.vlan = true,
            Action::PopVlan => self.vlan = false,
            // The label hides the IP header; a pop reveals only the type it names.
            Action::PushMpls(t) | Action::PopMpls(t) => {
                *self = HeaderState {
                    eth_type: Some(t),
                    ip_proto: None,
                    icmpv6_type: None,
                    ..*self
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// [`HeaderState::step`] over an action list (APPLY_ACTIONS, PACKET_OUT, a
    /// bucket), in its order.
    pub fn check_list(&mut self, actions: &[Action]) -> Result<(), OfpError> {
        actions.iter().try_for_each(|a| self.step(a))
    }

    /// [`HeaderState::step`] over the actions of a WRITE_ACTIONS, in the order the
    /// action set runs them ([`Action::set_order`]), not the order they were written:
    /// `write_actions(set_field:vlan_vid, push_vlan)` tags the packet before setting
    /// its VLAN id.
    pub fn check_action_set(&mut self, actions: &[Action]) -> Result<(), OfpError> {
        let mut ordered: Vec<&Action> = actions.iter().collect();
        ordered.sort_by_key(|a| a.set_order());
        ordered.into_iter().try_for_each(|a| self.step(a))
    }
}

impl Action {
    /// Where this action runs when the action set is executed (OpenFlow 1.3.5,
    /// 5.10): copy TTL inwards, pops, push MPLS, push VLAN, copy TTL outwards,
    /// decrement TTLs, sets, set_queue, group, output. Lower runs first.
    pub fn set_order(&self) -> u8 {
        match self {
            Action::CopyTtlIn => 0,
            Action::PopVlan | Action::PopMpls(_) => 1,
            Action::PushMpls(_) => 2,
            Action::PushVlan(_) => 3,
            Action::CopyTtlOut => 4,
            Action::DecMplsTtl | Action::DecNwTtl => 5,
            Action::SetMplsTtl(_) | Action::SetNwTtl(_) | Action::SetField(_) => 6,
            Action::SetQueue(_) => 7,
            Action::Group(_) => 8,
            Action::Output { .. } => 9,
        }
    }
}

impl Action {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 || len - 4 > r.remaining() {
            return Err(r.short_error(format_args!(
                "action type {ty} length {len} is not a multiple of 8 within the {} bytes left",
                r.remaining() + 4
            )));
        }
        let mut body = r.sub(len - 4, ErrorKind::BAD_ACTION_LEN, "action")?;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(action_error(
                    ofpbac::BAD_LEN,
                    format!("action type {ty} has length {len}, needs {want}"),
                ))
            }
        };
        // The 8-byte actions: `type len` and one 4-byte word (a value, then padding).
        let short = |body: &mut Reader<'_>| fixed(8).and_then(|()| body.u8());
        let half = |body: &mut Reader<'_>| fixed(8).and_then(|()| body.u16());
        let word = |body: &mut Reader<'_>| fixed(8).and_then(|()| body.u32());
        match ty {
            ofpat::OUTPUT => {
                fixed(16)?;
                let port = body.u32()?;
                let max_len = body.u16()?;
                if !is_output_port(port) {
                    return Err(action_error(
                        ofpbac::BAD_OUT_PORT,
                        format!("OUTPUT to port {port:#x}, which is not a destination"),
                    ));
                }
                Ok(Action::Output { port, max_len })
            }
            ofpat::COPY_TTL_OUT => fixed(8).map(|()| Action::CopyTtlOut),
            ofpat::COPY_TTL_IN => fixed(8).map(|()| Action::CopyTtlIn),
            ofpat::SET_MPLS_TTL => short(&mut body).map(Action::SetMplsTtl),
            ofpat::DEC_MPLS_TTL => fixed(8).map(|()| Action::DecMplsTtl),
            ofpat::PUSH_VLAN => match half(&mut body)? {
                t @ (ETH_TYPE_VLAN | ETH_TYPE_VLAN_QINQ) => Ok(Action::PushVlan(t)),
                t => Err(action_error(
                    ofpbac::BAD_ARGUMENT,
                    format!("push_vlan of ethertype {t:#06x} (only 0x8100 and 0x88a8 are VLAN tags)"),
                )),
            },
            ofpat::POP_VLAN => fixed(8).map(|()| Action::PopVlan),
            ofpat::PUSH_MPLS => match half(&mut body)? {
                t @ (ETH_TYPE_MPLS | ETH_TYPE_MPLS_MCAST) => Ok(Action::PushMpls(t)),
                t => Err(action_error(
                    ofpbac::BAD_ARGUMENT,
                    format!("push_mpls of ethertype {t:#06x} (only 0x8847 and 0x8848 are MPLS)"),
                )),
            },
            ofpat::POP_MPLS => half(&mut body).map(Action::PopMpls),
            ofpat::SET_QUEUE => word(&mut body).map(Action::SetQueue),
            ofpat::GROUP => match word(&mut body)? {
                g if g <= OFPG_MAX => Ok(Action::Group(g)),
                g => Err(action_error(
                    ofpbac::BAD_OUT_GROUP,
                    format!("group action to {g:#x}, which is not a group id (ids end at {OFPG_MAX:#x})"),
                )),
            },
            ofpat::SET_NW_TTL => short(&mut body).map(Action::SetNwTtl),
            ofpat::DEC_NW_TTL => fixed(8).map(|()| Action::DecNwTtl),
            ofpat::SET_FIELD => Ok(Action::SetField(SetField::decode(body.rest())?)),
            ofpat::EXPERIMENTER => Err(action_error(
                ofpbac::BAD_EXPERIMENTER,
                "experimenter actions are not supported".into(),
            )),
            other => Err(action_error(
                ofpbac::BAD_TYPE,
                format!("action type {other} is not supported by this switch"),
            )),
        }
    }

    /// The `ofp_action_type` of this action.
    pub fn ty(&self) -> u16 {
        match self {
            Action::Output { .. } => ofpat::OUTPUT,
            Action::CopyTtlOut => ofpat::COPY_TTL_OUT,
            Action::CopyTtlIn => ofpat::COPY_TTL_IN,
            Action::SetMplsTtl(_) => ofpat::SET_MPLS_TTL,
            Action::DecMplsTtl => ofpat::DEC_MPLS_TTL,
            Action::PushVlan(_) => ofpat::PUSH_VLAN,
            Action::PopVlan => ofpat::POP_VLAN,
            Action::PushMpls(_) => ofpat::PUSH_MPLS,
            Action::PopMpls(_) => ofpat::POP_MPLS,
            Action::SetQueue(_) => ofpat::SET_QUEUE,
            Action::Group(_) => ofpat::GROUP,
            Action::SetNwTtl(_) => ofpat::SET_NW_TTL,
            Action::DecNwTtl => ofpat::DEC_NW_TTL,
            Action::SetField(_) => ofpat::SET_FIELD,
        }
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        w.u16(self.ty());
        let at = w.len_placeholder();
        match self {
            Action::Output { port, max_len } => {
                w.u32(*port);
                w.u16(*max_len);
                w.zeros(6);
            }
            Action::CopyTtlOut | Action::CopyTtlIn | Action::DecMplsTtl | Action::PopVlan | Action::DecNwTtl => {
                w.zeros(4);
            }
            Action::SetMplsTtl(ttl) | Action::SetNwTtl(ttl) => {
                w.u8(*ttl);
                w.zeros(3);
            }
            Action::PushVlan(t) | Action::PushMpls(t) | Action::PopMpls(t) => {
                w.u16(*t);
                w.zeros(2);
            }
            Action::SetQueue(v) | Action::Group(v) => w.u32(*v),
            Action::SetField(f) => {
                f.encode(w);
                w.pad8(start);
            }
        }
        w.patch_len(at, start);
    }

    /// Reads an action list that fills `r` exactly.
    pub(crate) fn decode_list(mut r: Reader<'_>) -> Result<Vec<Action>, OfpError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::decode(&mut r)?);
        }
        Ok(out)
    }

    pub(crate) fn encode_list(actions: &[Action], w: &mut Writer) {
        for a in actions {
            a.encode(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Masked;
    use crate::tests::hex;

    fn encode(a: Action) -> Vec<u8> {
        let mut w = Writer::default();
        a.encode(&mut w);
        w.buf
    }

    fn decode(bytes: &[u8]) -> Result<Vec<Action>, OfpError> {
        Action::decode_list(Reader::new(bytes, ErrorKind::BAD_ACTION_LEN, "action"))
    }

    /// The spec's layouts (`ofp_action_generic`, `_mpls_ttl`, `_push`, `_pop_mpls`,
    /// `_set_queue`, `_group`, `_nw_ttl`, `_set_field`), byte for byte.
    #[test]
    fn wire_layouts() {
        for (a, want) in [
            (Action::CopyTtlOut, "00 0b 00 08 00 00 00 00"),
            (Action::CopyTtlIn, "00 0c 00 08 00 00 00 00"),
            (Action::SetMplsTtl(9), "00 0f 00 08 09 00 00 00"),
            (Action::DecMplsTtl, "00 10 00 08 00 00 00 00"),
            (Action::PushVlan(ETH_TYPE_VLAN), "00 11 00 08 81 00 00 00"),
            (Action::PopVlan, "00 12 00 08 00 00 00 00"),
            (Action::PushMpls(ETH_TYPE_MPLS), "00 13 00 08 88 47 00 00"),
            (Action::PopMpls(ETH_TYPE_IPV4), "00 14 00 08 08 00 00 00"),
            (Action::SetQueue(3), "00 15 00 08 00 00 00 03"),
            (Action::Group(7), "00 16 00 08 00 00 00 07"),
            (Action::SetNwTtl(64), "00 17 00 08 40 00 00 00"),
            (Action::DecNwTtl, "00 18 00 08 00 00 00 00"),
            (
                Action::SetField(SetField::VlanVid(5)),
                "00 19 00 10 80 00 0c 02 10 05 00 00 00 00 00 00",
            ),
            (
                Action::SetField(SetField::MplsLabel(0x12345)),
                "00 19 00 10 80 00 44 04 00 01 23 45 00 00 00 00",
            ),
            (
                Action::SetField(SetField::TunnelId(1)),
                "00 19 00 10 80 00 4c 08 00 00 00 00 00 00 00 01",
            ),
            (
                Action::SetField(SetField::Ipv6NdTarget(Ipv6Addr::LOCALHOST)),
                "00 19 00 18 80 00 3e 10 00000000 00000000 00000000 00000001",
            ),
        ] {
            assert_eq!(encode(a), hex(want), "{a:?}");
            assert_eq!(decode(&hex(want)), Ok(vec![a]), "{a:?}");
        }
    }

    /// A vlan_vid set-field is taken with or without OFPVID_PRESENT (Open vSwitch
    /// takes both) and always written with it.
    #[test]
    fn set_vlan_vid_with_or_without_present() {
        let with = hex("00 19 00 10 80 00 0c 02 10 05 00 00 00 00 00 00");
        let without = hex("00 19 00 10 80 00 0c 02 00 05 00 00 00 00 00 00");
        let want = vec![Action::SetField(SetField::VlanVid(5))];
        assert_eq!(decode(&with), Ok(want.clone()));
        assert_eq!(decode(&without), Ok(want));
        assert_eq!(encode(Action::SetField(SetField::VlanVid(5))), with);
        let too_wide = hex("00 19 00 10 80 00 0c 02 20 05 00 00 00 00 00 00");
        let e = decode(&too_wide).unwrap_err();
        assert_eq!((e.kind.ty, e.kind.code), (ofpet::BAD_ACTION, ofpbac::BAD_SET_ARGUMENT));
    }

    fn check(m: &Match, actions: &[Action]) -> Result<HeaderState, u16> {
        let mut h = HeaderState::of(m);
        h.check_list(actions).map(|()| h).map_err(|e| e.kind.code)
    }

    /// Pushes provide what later set-fields need; pops take it away.
    #[test]
    fn pushes_and_pops_change_what_set_fields_may_rewrite() {
        let set = |f| Action::SetField(f);
        let untagged = Match::default();
        let ipv4 = Match {
            eth_type: Some(ETH_TYPE_IPV4),
            ..Match::default()
        };
        let mpls = Match {
            eth_type: Some(ETH_TYPE_MPLS),
            ..Match::default()
        };
        let tagged = Match {
            vlan_vid: Some(Masked::with_mask(OFPVID_PRESENT, OFPVID_PRESENT)),
            ..Match::default()
        };
        let vid = set(SetField::VlanVid(10));
        let bad = Err(ofpbac::MATCH_INCONSISTENT);
        assert_eq!(check(&untagged, &[vid]), bad);
        assert!(check(&untagged, &[Action::PushVlan(ETH_TYPE_VLAN), vid]).is_ok());
        assert!(check(&tagged, &[vid, set(SetField::VlanPcp(3))]).is_ok());
        assert_eq!(check(&tagged, &[Action::PopVlan, vid]), bad);
        let label = set(SetField::MplsLabel(100));
        assert_eq!(check(&ipv4, &[label]), bad);
        let pushed = check(&ipv4, &[Action::PushMpls(ETH_TYPE_MPLS), label, Action::DecMplsTtl]).unwrap();
        assert_eq!(pushed.eth_type, Some(ETH_TYPE_MPLS));
        assert_eq!(
            check(
                &ipv4,
                &[
                    Action::PushMpls(ETH_TYPE_MPLS),
                    set(SetField::Ipv4Dst(Ipv4Addr::LOCALHOST))
                ]
            ),
            bad
        );
        assert!(
            check(
                &mpls,
                &[
                    Action::PopMpls(ETH_TYPE_IPV4),
                    set(SetField::IpDscp(8)),
                    Action::DecNwTtl
                ]
            )
            .is_ok()
        );
        assert_eq!(check(&mpls, &[Action::PopMpls(ETH_TYPE_IPV4), label]), bad);
        assert_eq!(check(&ipv4, &[Action::PopMpls(ETH_TYPE_IPV4)]), bad);
        assert_eq!(check(&untagged, &[Action::DecNwTtl]), bad);
        assert_eq!(check(&ipv4, &[Action::SetMplsTtl(1)]), bad);
        // Actions that change no header leave the state alone.
        let tcp = Match {
            ip_proto: Some(IP_PROTO_TCP),
            ..ipv4.clone()
        };
        let same = check(
            &tcp,
            &[
                Action::SetQueue(1),
                Action::Group(2),
                Action::CopyTtlIn,
                Action::DecNwTtl,
            ],
        );
        assert_eq!(same, Ok(HeaderState::of(&tcp)));
        assert!(set(SetField::TcpDst(80)).ty() == ofpat::SET_FIELD && SetField::TcpDst(80).prereqs_met(&tcp));
    }

    /// An action set runs its pushes before its sets whatever order they were
    /// written in, and its pops before its pushes.
    #[test]
    fn action_sets_are_checked_in_the_order_they_run() {
        let vid = Action::SetField(SetField::VlanVid(10));
        let untagged = Match::default();
        let mut h = HeaderState::of(&untagged);
        assert!(h.check_action_set(&[vid, Action::PushVlan(ETH_TYPE_VLAN)]).is_ok());
        assert!(h.vlan);
        let mut h = HeaderState::of(&untagged);
        let e = h.check_list(&[vid, Action::PushVlan(ETH_TYPE_VLAN)]).unwrap_err();
        assert_eq!(e.kind.code, ofpbac::MATCH_INCONSISTENT);
        let tagged = Match {
            vlan_vid: Some(Masked::exact(OFPVID_PRESENT | 3)),
            ..Match::default()
        };
        let mut h = HeaderState::of(&tagged);
        let e = h.check_action_set(&[vid, Action::PopVlan]).unwrap_err();
        assert_eq!(e.kind.code, ofpbac::MATCH_INCONSISTENT);
        let mut order: Vec<u8> = [
            Action::Output { port: 1, max_len: 0 },
            Action::Group(1),
            Action::SetQueue(1),
            vid,
            Action::DecNwTtl,
            Action::CopyTtlOut,
            Action::PushVlan(ETH_TYPE_VLAN),
            Action::PushMpls(ETH_TYPE_MPLS),
            Action::PopVlan,
            Action::CopyTtlIn,
        ]
        .iter()
        .map(Action::set_order)
        .collect();
        let sorted = order.iter().rev().copied().collect::<Vec<_>>();
        order.sort();
        assert_eq!(order, sorted, "listed from last to run to first");
    }
}
