//! OpenFlow's view of the flow table and onvm's, converted both ways.
//!
//! Ports: OpenFlow numbers ports from 1, so physical port `p` is OpenFlow port `p + 1`;
//! the logical port of service `s` is `0x1000 + s` in both (see [`PortNo`]); reserved
//! ports keep their numbers. What onvm's table cannot express is refused with the
//! spec's error, never approximated: a controller must not believe a rule does what it
//! does not.

use onvm_openflow::{self as of, Instruction, Masked, OfpError, SetField, ofpbac, ofpbic, ofpbmc, ofpet, ofpp};
use std::net::{Ipv4Addr, Ipv6Addr};

use onvm_proto::flow::{
    Action, Bits, Edit, Instructions, Ipv4Prefix, Ipv6Prefix, MacMatch, MaskedBits, Match, N_TABLES, PortKind, PortNo,
    Rewrite, Rule, Spelling, VID_PRESENT,
};
use onvm_proto::limits::MAX_SERVICES;

/// The OpenFlow number of a port.
pub fn of_port(p: PortNo) -> u32 {
    match p.kind() {
        PortKind::Physical(n) => u32::from(n) + 1,
        PortKind::Service(_) | PortKind::Other(_) => p.0,
        PortKind::Controller => ofpp::CONTROLLER,
        PortKind::InPort => ofpp::IN_PORT,
        PortKind::All => ofpp::ALL,
    }
}

/// The port an OpenFlow number names: a physical or service port, or the controller.
pub fn onvm_port(n: u32) -> Option<PortNo> {
    match n {
        1..PortNo::SERVICE_BASE => Some(PortNo(n - 1)),
        _ if (PortNo::SERVICE_BASE..PortNo::SERVICE_BASE + u32::from(MAX_SERVICES)).contains(&n) => Some(PortNo(n)),
        ofpp::CONTROLLER => Some(PortNo::CONTROLLER),
        _ => None,
    }
}

fn bad_match(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_MATCH, code, message)
}

/// The VLAN bits OpenFlow's `vlan_vid` compares: [`VID_PRESENT`] and the 12-bit ID.
const VID_BITS: u16 = VID_PRESENT | 0x0fff;
/// The 20 bits of an IPv6 flow label.
const FLABEL_BITS: u32 = 0x000f_ffff;

fn port_value(n: u32, name: &str) -> Result<PortNo, OfpError> {
    onvm_port(n).ok_or_else(|| bad_match(ofpbmc::BAD_VALUE, format!("{name} {n:#x} is no port of this switch")))
}

fn v4(m: &Masked<Ipv4Addr>) -> Ipv4Prefix {
    Ipv4Prefix::with_mask(m.value, m.mask.unwrap_or(Ipv4Addr::BROADCAST))
}

fn v6(m: &Masked<Ipv6Addr>) -> Ipv6Prefix {
    Ipv6Prefix::with_mask(m.value, m.mask.unwrap_or(Ipv6Addr::from(u128::MAX)))
}

fn mac(f: &Masked<[u8; 6]>) -> MacMatch {
    MacMatch::masked(f.value, f.mask.unwrap_or([0xff; 6]))
}

fn bits<T: Bits>(m: &Masked<T>, full: T) -> MaskedBits<T> {
    MaskedBits::masked(m.value, m.mask.unwrap_or(full) & full)
}

/// onvm's match for an OpenFlow match (whose codec checked the prerequisites, so a
/// field shared by protocols, such as a port, comes with the `ip_proto` that says
/// which). Every mask is kept: what the table matches is what the controller asked.
pub fn to_match(m: &of::Match) -> Result<Match, OfpError> {
    let in_port = m.in_port.map(|n| port_value(n, "in_port")).transpose()?;
    let in_phy_port = m.in_phy_port.map(|n| port_value(n, "in_phy_port")).transpose()?;
    // A tagged packet with exactly one VLAN ID is `vlan_id`; the rest (untagged, any
    // tag, masked IDs) is `vlan_vid`, so each match has one spelling.
    let (vlan_id, vlan_vid) = match m.vlan_vid.map(|v| bits(&v, VID_BITS)) {
        None => (None, None),
        Some(v) if v.mask() == VID_BITS && v.value() & VID_PRESENT != 0 => (Some(v.value() & 0x0fff), None),
        Some(v) => (None, Some(v)),
    };
    Ok(Match {
        in_port,
        eth_src: m.eth_src.as_ref().map(mac),
        eth_dst: m.eth_dst.as_ref().map(mac),
        eth_type: m.eth_type,
        vlan_id,
        ipv4_src: m.ipv4_src.as_ref().map(v4),
        ipv4_dst: m.ipv4_dst.as_ref().map(v4),
        ipv6_src: m.ipv6_src.as_ref().map(v6),
        ipv6_dst: m.ipv6_dst.as_ref().map(v6),
        ip_proto: m.ip_proto,
        l4_src: m.tcp_src.or(m.udp_src).or(m.sctp_src),
        l4_dst: m.tcp_dst.or(m.udp_dst).or(m.sctp_dst),
        in_phy_port,
        metadata: m.metadata.as_ref().map(|v| bits(v, u64::MAX)),
        tunnel_id: m.tunnel_id.as_ref().map(|v| bits(v, u64::MAX)),
        vlan_vid,
        vlan_pcp: m.vlan_pcp,
        ip_dscp: m.ip_dscp,
        ip_ecn: m.ip_ecn,
        icmp_type: m.icmpv4_type.or(m.icmpv6_type),
        icmp_code: m.icmpv4_code.or(m.icmpv6_code),
        arp_op: m.arp_op,
        arp_spa: m.arp_spa.as_ref().map(v4),
        arp_tpa: m.arp_tpa.as_ref().map(v4),
        arp_sha: m.arp_sha.as_ref().map(mac),
        arp_tha: m.arp_tha.as_ref().map(mac),
        ipv6_flabel: m.ipv6_flabel.as_ref().map(|v| bits(v, FLABEL_BITS)),
        nd_target: m.ipv6_nd_target,
        nd_sll: m.ipv6_nd_sll,
        nd_tll: m.ipv6_nd_tll,
        mpls_label: m.mpls_label,
        mpls_tc: m.mpls_tc,
        mpls_bos: m.mpls_bos,
    })
}

/// `value/mask`, or the exact value when the mask is `full`.
fn masked<T: PartialEq + Copy>(value: T, mask: T, full: T) -> Masked<T> {
    if mask == full {
        Masked::exact(value)
    } else {
        Masked::with_mask(value, mask)
    }
}

/// The OpenFlow match for onvm's (what dump-flows shows): what [`to_match`] was given,
/// up to a full mask, which reads back as an exact value (as Open vSwitch has it).
pub fn from_match(m: &Match) -> of::Match {
    let mac = |f: &Option<MacMatch>| f.map(|f| masked(f.addr(), f.mask(), [0xff; 6]));
    let p4 = |p: &Option<Ipv4Prefix>| p.map(|p| masked(p.addr(), p.mask(), Ipv4Addr::BROADCAST));
    let p6 = |p: &Option<Ipv6Prefix>| p.map(|p| masked(p.addr(), p.mask(), Ipv6Addr::from(u128::MAX)));
    fn b<T: Bits>(v: &Option<MaskedBits<T>>, full: T) -> Option<Masked<T>> {
        v.map(|v| masked(v.value(), v.mask(), full))
    }
    let proto = |p: u8| m.ip_proto == Some(p);
    let port = |v: Option<u16>, p: u8| v.filter(|_| proto(p));
    let icmp = |v: Option<u8>, p: u8| v.filter(|_| proto(p));
    let vlan_vid = b(&m.vlan_vid, VID_BITS).or(m.vlan_id.map(|v| Masked::exact(v | of::OFPVID_PRESENT)));
    of::Match {
        in_port: m.in_port.map(of_port),
        in_phy_port: m.in_phy_port.map(of_port),
        metadata: b(&m.metadata, u64::MAX),
        eth_dst: mac(&m.eth_dst),
        eth_src: mac(&m.eth_src),
        eth_type: m.eth_type,
        vlan_vid,
        vlan_pcp: m.vlan_pcp,
        ip_dscp: m.ip_dscp,
        ip_ecn: m.ip_ecn,
        ip_proto: m.ip_proto,
        ipv4_src: p4(&m.ipv4_src),
        ipv4_dst: p4(&m.ipv4_dst),
        tcp_src: port(m.l4_src, of::IP_PROTO_TCP),
        tcp_dst: port(m.l4_dst, of::IP_PROTO_TCP),
        udp_src: port(m.l4_src, of::IP_PROTO_UDP),
        udp_dst: port(m.l4_dst, of::IP_PROTO_UDP),
        sctp_src: port(m.l4_src, of::IP_PROTO_SCTP),
        sctp_dst: port(m.l4_dst, of::IP_PROTO_SCTP),
        icmpv4_type: icmp(m.icmp_type, of::IP_PROTO_ICMP),
        icmpv4_code: icmp(m.icmp_code, of::IP_PROTO_ICMP),
        arp_op: m.arp_op,
        arp_spa: p4(&m.arp_spa),
        arp_tpa: p4(&m.arp_tpa),
        arp_sha: mac(&m.arp_sha),
        arp_tha: mac(&m.arp_tha),
        ipv6_src: p6(&m.ipv6_src),
        ipv6_dst: p6(&m.ipv6_dst),
        ipv6_flabel: b(&m.ipv6_flabel, FLABEL_BITS),
        icmpv6_type: icmp(m.icmp_type, of::IP_PROTO_ICMPV6),
        icmpv6_code: icmp(m.icmp_code, of::IP_PROTO_ICMPV6),
        ipv6_nd_target: m.nd_target,
        ipv6_nd_sll: m.nd_sll,
        ipv6_nd_tll: m.nd_tll,
        mpls_label: m.mpls_label,
        mpls_tc: m.mpls_tc,
        mpls_bos: m.mpls_bos,
        tunnel_id: b(&m.tunnel_id, u64::MAX),
    }
}

fn bad_action(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_ACTION, code, message)
}

/// onvm's rewrite for a SET_FIELD (the codec has checked its value and prerequisites).
/// A tunnel ID is refused: onvm has no tunnels to put one in.
fn rewrite(f: SetField) -> Result<Rewrite, OfpError> {
    Ok(match f {
        SetField::EthDst(m) => Rewrite::EthDst(m),
        SetField::EthSrc(m) => Rewrite::EthSrc(m),
        SetField::VlanVid(v) => Rewrite::VlanVid(v),
        SetField::VlanPcp(v) => Rewrite::VlanPcp(v),
        SetField::IpDscp(v) => Rewrite::IpDscp(v),
        SetField::IpEcn(v) => Rewrite::IpEcn(v),
        SetField::Ipv4Src(a) => Rewrite::IpSrc(a.into()),
        SetField::Ipv4Dst(a) => Rewrite::IpDst(a.into()),
        SetField::Ipv6Src(a) => Rewrite::IpSrc(a.into()),
        SetField::Ipv6Dst(a) => Rewrite::IpDst(a.into()),
        SetField::TcpSrc(p) | SetField::UdpSrc(p) | SetField::SctpSrc(p) => Rewrite::L4Src(p),
        SetField::TcpDst(p) | SetField::UdpDst(p) | SetField::SctpDst(p) => Rewrite::L4Dst(p),
        SetField::Icmpv4Type(v) | SetField::Icmpv6Type(v) => Rewrite::IcmpType(v),
        SetField::Icmpv4Code(v) | SetField::Icmpv6Code(v) => Rewrite::IcmpCode(v),
        SetField::ArpOp(v) => Rewrite::ArpOp(v),
        SetField::ArpSpa(a) => Rewrite::ArpSpa(a),
        SetField::ArpTpa(a) => Rewrite::ArpTpa(a),
        SetField::ArpSha(m) => Rewrite::ArpSha(m),
        SetField::ArpTha(m) => Rewrite::ArpTha(m),
        SetField::Ipv6Flabel(v) => Rewrite::Ipv6Flabel(v),
        SetField::Ipv6NdTarget(a) => Rewrite::NdTarget(a),
        SetField::Ipv6NdSll(m) => Rewrite::NdSll(m),
        SetField::Ipv6NdTll(m) => Rewrite::NdTll(m),
        SetField::MplsLabel(v) => Rewrite::MplsLabel(v),
        SetField::MplsTc(v) => Rewrite::MplsTc(v),
        SetField::MplsBos(v) => Rewrite::MplsBos(v),
        SetField::TunnelId(_) => {
            return Err(bad_action(
                ofpbac::BAD_SET_TYPE,
                "set-field tunnel_id: this switch has no tunnel ports".into(),
            ));
        }
    })
}

/// The SET_FIELD for onvm's rewrite. Fields several protocols share (ports, ICMP
/// type and code) are the ones of `proto`, the IP protocol the rule matches (the
/// prerequisite the controller had to give).
fn set_field(r: Rewrite, proto: Option<u8>) -> SetField {
    use std::net::IpAddr::{V4, V6};
    const SCTP: u8 = 132;
    const ICMPV6: u8 = 58;
    match r {
        Rewrite::EthDst(m) => SetField::EthDst(m),
        Rewrite::EthSrc(m) => SetField::EthSrc(m),
        Rewrite::VlanVid(v) => SetField::VlanVid(v),
        Rewrite::VlanPcp(v) => SetField::VlanPcp(v),
        Rewrite::IpDscp(v) => SetField::IpDscp(v),
        Rewrite::IpEcn(v) => SetField::IpEcn(v),
        Rewrite::IpSrc(V4(a)) => SetField::Ipv4Src(a),
        Rewrite::IpDst(V4(a)) => SetField::Ipv4Dst(a),
        Rewrite::IpSrc(V6(a)) => SetField::Ipv6Src(a),
        Rewrite::IpDst(V6(a)) => SetField::Ipv6Dst(a),
        Rewrite::L4Src(p) => match proto {
            Some(of::IP_PROTO_UDP) => SetField::UdpSrc(p),
            Some(SCTP) => SetField::SctpSrc(p),
            _ => SetField::TcpSrc(p),
        },
        Rewrite::L4Dst(p) => match proto {
            Some(of::IP_PROTO_UDP) => SetField::UdpDst(p),
            Some(SCTP) => SetField::SctpDst(p),
            _ => SetField::TcpDst(p),
        },
        Rewrite::IcmpType(v) if proto == Some(ICMPV6) => SetField::Icmpv6Type(v),
        Rewrite::IcmpCode(v) if proto == Some(ICMPV6) => SetField::Icmpv6Code(v),
        Rewrite::IcmpType(v) => SetField::Icmpv4Type(v),
        Rewrite::IcmpCode(v) => SetField::Icmpv4Code(v),
        Rewrite::ArpOp(v) => SetField::ArpOp(v),
        Rewrite::ArpSpa(a) => SetField::ArpSpa(a),
        Rewrite::ArpTpa(a) => SetField::ArpTpa(a),
        Rewrite::ArpSha(m) => SetField::ArpSha(m),
        Rewrite::ArpTha(m) => SetField::ArpTha(m),
        Rewrite::Ipv6Flabel(v) => SetField::Ipv6Flabel(v),
        Rewrite::NdTarget(a) => SetField::Ipv6NdTarget(a),
        Rewrite::NdSll(m) => SetField::Ipv6NdSll(m),
        Rewrite::NdTll(m) => SetField::Ipv6NdTll(m),
        Rewrite::MplsLabel(v) => SetField::MplsLabel(v),
        Rewrite::MplsTc(v) => SetField::MplsTc(v),
        Rewrite::MplsBos(v) => SetField::MplsBos(v),
    }
}

/// onvm's edit for a push, pop or TTL action, if `a` is one.
fn edit(a: &of::Action) -> Option<Edit> {
    Some(match *a {
        of::Action::CopyTtlOut => Edit::CopyTtlOut,
        of::Action::CopyTtlIn => Edit::CopyTtlIn,
        of::Action::SetMplsTtl(t) => Edit::SetMplsTtl(t),
        of::Action::DecMplsTtl => Edit::DecMplsTtl,
        of::Action::PushVlan(e) => Edit::PushVlan(e),
        of::Action::PopVlan => Edit::PopVlan,
        of::Action::PushMpls(e) => Edit::PushMpls(e),
        of::Action::PopMpls(e) => Edit::PopMpls(e),
        of::Action::SetNwTtl(t) => Edit::SetNwTtl(t),
        of::Action::DecNwTtl => Edit::DecNwTtl,
        _ => return None,
    })
}

/// The OpenFlow action for onvm's edit.
fn edit_action(e: Edit) -> of::Action {
    match e {
        Edit::CopyTtlOut => of::Action::CopyTtlOut,
        Edit::CopyTtlIn => of::Action::CopyTtlIn,
        Edit::SetMplsTtl(t) => of::Action::SetMplsTtl(t),
        Edit::DecMplsTtl => of::Action::DecMplsTtl,
        Edit::PushVlan(e) => of::Action::PushVlan(e),
        Edit::PopVlan => of::Action::PopVlan,
        Edit::PushMpls(e) => of::Action::PushMpls(e),
        Edit::PopMpls(e) => of::Action::PopMpls(e),
        Edit::SetNwTtl(t) => of::Action::SetNwTtl(t),
        Edit::DecNwTtl => of::Action::DecNwTtl,
    }
}

/// An action the codec decodes that this switch does not carry out.
fn unsupported(a: &of::Action) -> OfpError {
    bad_action(
        ofpbac::BAD_TYPE,
        format!("action {a:?} is not supported by this switch"),
    )
}

/// onvm has no queues: SET_QUEUE is refused rather than ignored.
fn no_queues(q: u32) -> OfpError {
    bad_action(
        ofpbac::BAD_TYPE,
        format!("set_queue:{q}: this switch has no output queues"),
    )
}

/// onvm's action for one OpenFlow action of a flow rule (or a group's bucket).
pub fn rule_action(a: &of::Action) -> Result<Action, OfpError> {
    match *a {
        of::Action::Output {
            port: ofpp::CONTROLLER,
            max_len,
        } => Ok(Action::Controller { max_len }),
        of::Action::Output {
            port: ofpp::IN_PORT, ..
        } => Ok(Action::Output(PortNo::IN_PORT)),
        of::Action::Output {
            port: ofpp::FLOOD | ofpp::ALL,
            ..
        } => Ok(Action::Output(PortNo::ALL)),
        of::Action::Output { port, .. } => match onvm_port(port) {
            Some(p) if p != PortNo::CONTROLLER => Ok(Action::Output(p)),
            _ => Err(bad_action(
                ofpbac::BAD_OUT_PORT,
                format!(
                    "output to {port:#x} is not possible in a flow rule (ports, services, IN_PORT, ALL, FLOOD and CONTROLLER are)"
                ),
            )),
        },
        of::Action::SetField(f) => rewrite(f).map(Action::Set),
        of::Action::Group(g) => Ok(Action::Group(g)),
        of::Action::SetQueue(q) => Err(no_queues(q)),
        _ => edit(a).map(Action::Edit).ok_or_else(|| unsupported(a)),
    }
}

/// The OpenFlow action for onvm's (what flow stats and group descriptions show); an
/// output to ALL was FLOOD when `flood`. `None` for what is no OpenFlow action (a
/// config chain's drop; a goto, which is an instruction).
pub fn of_action(a: Action, flood: bool, proto: Option<u8>) -> Option<of::Action> {
    Some(match a {
        Action::Output(p) => of::Action::Output {
            port: match p {
                PortNo::ALL if flood => ofpp::FLOOD,
                _ => of_port(p),
            },
            max_len: 0,
        },
        Action::Controller { max_len } => of::Action::Output {
            port: ofpp::CONTROLLER,
            max_len,
        },
        Action::Set(r) => of::Action::SetField(set_field(r, proto)),
        Action::Edit(e) => edit_action(e),
        Action::Group(g) => of::Action::Group(g),
        Action::Goto(_) | Action::Drop => return None,
    })
}

/// onvm's actions and instructions for those of a FLOW_MOD to `table`: apply-actions
/// in their order then the goto, the other instructions, and how outputs were spelled
/// (FLOOD or ALL), for [`rule_instructions`] to read them back as installed. Whether
/// the groups and meter named exist is the caller's check (it has the tables).
pub fn to_actions(instructions: &[Instruction], table: u8) -> Result<(Vec<Action>, Instructions, Spelling), OfpError> {
    let mut apply = Vec::new();
    let mut extra = Instructions::default();
    let (mut apply_flood, mut write_flood) = (Vec::new(), Vec::new());
    let mut goto = None;
    let is_flood = |a: &of::Action| matches!(a, of::Action::Output { port: ofpp::FLOOD, .. });
    for i in instructions {
        match i {
            Instruction::ApplyActions(a) => {
                for a in a {
                    apply.push(rule_action(a)?);
                    apply_flood.push(is_flood(a));
                }
            }
            Instruction::WriteActions(a) => {
                for a in a {
                    extra.write.push(rule_action(a)?);
                    write_flood.push(is_flood(a));
                }
            }
            Instruction::ClearActions => extra.clear = true,
            Instruction::WriteMetadata { metadata, mask } => extra.metadata = Some((*metadata, *mask)),
            Instruction::Meter(m) => extra.meter = Some(*m),
            Instruction::GotoTable(t) => {
                if *t <= table || *t >= N_TABLES {
                    return Err(OfpError::of(
                        ofpet::BAD_INSTRUCTION,
                        ofpbic::BAD_TABLE_ID,
                        format!("goto table {t} from table {table}: must be a later table below {N_TABLES}"),
                    ));
                }
                goto = Some(Action::Goto(*t));
            }
        }
    }
    let spelling = Spelling {
        flood: apply_flood
            .iter()
            .chain(&write_flood)
            .take(64)
            .enumerate()
            .fold(0, |bits, (i, f)| bits | (u64::from(*f) << i)),
    };
    apply.extend(goto);
    Ok((apply, extra, spelling))
}

/// The instructions that describe onvm's actions (what dump-flows shows), plainly
/// spelled (apply-actions, ALL); `proto` is the IP protocol the rule matches (whose
/// ports and ICMP fields its set-fields rewrite).
pub fn to_instructions(actions: &[Action], proto: Option<u8>) -> Vec<Instruction> {
    spelled_instructions(actions, &Instructions::default(), Spelling::default(), proto)
}

/// A rule's instructions as its installer wrote them (its [`Spelling`]): what a
/// controller reads back in flow stats is what it sent in the FLOW_MOD.
pub fn rule_instructions(r: &Rule) -> Vec<Instruction> {
    spelled_instructions(&r.actions, &r.instructions, r.spelling, r.matcher.ip_proto)
}

fn spelled_instructions(
    actions: &[Action],
    extra: &Instructions,
    spelling: Spelling,
    proto: Option<u8>,
) -> Vec<Instruction> {
    let flood = |i: usize| i < 64 && spelling.flood & (1 << i) != 0;
    let applied = actions.iter().filter(|a| !matches!(a, Action::Goto(_))).count();
    let apply: Vec<of::Action> = actions
        .iter()
        .enumerate()
        .filter_map(|(i, &a)| of_action(a, flood(i), proto))
        .collect();
    let write: Vec<of::Action> = extra
        .write
        .iter()
        .enumerate()
        // Written actions' bits follow the apply-actions' (the goto, last, has none).
        .filter_map(|(j, &a)| of_action(a, flood(applied + j), proto))
        .collect();
    let goto = actions.iter().find_map(|a| match a {
        Action::Goto(t) => Some(Instruction::GotoTable(*t)),
        _ => None,
    });
    let mut v = Vec::new();
    v.extend(extra.meter.map(Instruction::Meter));
    if !apply.is_empty() {
        v.push(Instruction::ApplyActions(apply));
    }
    if extra.clear {
        v.push(Instruction::ClearActions);
    }
    if !write.is_empty() {
        v.push(Instruction::WriteActions(write));
    }
    v.extend(
        extra
            .metadata
            .map(|(metadata, mask)| Instruction::WriteMetadata { metadata, mask }),
    );
    v.extend(goto);
    v
}

/// What a PACKET_OUT does with its packet, in order (the control-plane seam's steps).
pub use crate::control_plane::Out;

/// The steps of a PACKET_OUT's actions.
pub fn packet_out_actions(actions: &[of::Action]) -> Result<Vec<Out>, OfpError> {
    actions
        .iter()
        .map(|a| match *a {
            of::Action::Output { port, .. } => match port {
                ofpp::TABLE => Ok(Out::Table),
                ofpp::IN_PORT => Ok(Out::InPort),
                ofpp::FLOOD | ofpp::ALL => Ok(Out::Flood),
                _ => match onvm_port(port) {
                    Some(p) if p != PortNo::CONTROLLER => Ok(Out::Port(p)),
                    _ => Err(bad_action(
                        ofpbac::BAD_OUT_PORT,
                        format!("packet-out to {port:#x}: no such port"),
                    )),
                },
            },
            of::Action::SetField(f) => rewrite(f).map(Out::Set),
            of::Action::Group(g) => Ok(Out::Group(g)),
            of::Action::SetQueue(q) => Err(no_queues(q)),
            _ => edit(a).map(Out::Edit).ok_or_else(|| unsupported(a)),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn port_numbers_both_ways() {
        assert_eq!(of_port(PortNo::physical(0)), 1);
        assert_eq!(of_port(PortNo::service(3)), 0x1003);
        assert_eq!(onvm_port(1), Some(PortNo::physical(0)));
        assert_eq!(onvm_port(0x1003), Some(PortNo::service(3)));
        assert_eq!(onvm_port(0), None, "OpenFlow has no port 0");
        assert_eq!(onvm_port(0x1000 + u32::from(MAX_SERVICES)), None);
        assert_eq!(onvm_port(ofpp::CONTROLLER), Some(PortNo::CONTROLLER));
        assert_eq!(onvm_port(ofpp::LOCAL), None);
    }

    #[test]
    fn matches_round_trip_with_any_mask() {
        let m = of::Match {
            in_port: Some(2),
            eth_dst: Some(Masked::with_mask([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])),
            eth_type: Some(of::ETH_TYPE_IPV4),
            vlan_vid: Some(Masked::exact(of::OFPVID_PRESENT | 42)),
            ip_proto: Some(of::IP_PROTO_UDP),
            ipv4_src: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 0, 0),
                Ipv4Addr::new(255, 0, 0, 0),
            )),
            ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 9))),
            udp_dst: Some(53),
            ..of::Match::default()
        };
        let ours = to_match(&m).unwrap();
        assert_eq!(ours.in_port, Some(PortNo::physical(1)));
        assert_eq!(ours.vlan_id, Some(42));
        assert_eq!(ours.ipv4_src.unwrap().prefix_len(), Some(8));
        assert_eq!(ours.l4_dst, Some(53));
        assert_eq!(from_match(&ours), m);
        let v6 = of::Match {
            eth_type: Some(of::ETH_TYPE_IPV6),
            ipv6_dst: Some(Masked::with_mask(
                "2001:db8::".parse().unwrap(),
                "ffff:ffff::".parse().unwrap(),
            )),
            ip_proto: Some(of::IP_PROTO_TCP),
            tcp_src: Some(1),
            ..of::Match::default()
        };
        assert_eq!(from_match(&to_match(&v6).unwrap()), v6);
        // Masks that are no prefix are kept as they are.
        let holes = of::Match {
            eth_type: Some(of::ETH_TYPE_IPV4),
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 1, 0),
                Ipv4Addr::new(255, 0, 255, 0),
            )),
            ..of::Match::default()
        };
        let ours = to_match(&holes).unwrap();
        assert_eq!(ours.ipv4_dst.unwrap().prefix_len(), None);
        assert_eq!(from_match(&ours), holes);
        // A full mask reads back as an exact value, as Open vSwitch shows it.
        let full = of::Match {
            eth_type: Some(of::ETH_TYPE_IPV4),
            ipv4_dst: Some(Masked::with_mask(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::BROADCAST)),
            ..of::Match::default()
        };
        assert_eq!(
            from_match(&to_match(&full).unwrap()).ipv4_dst,
            Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 1)))
        );
        let no_port = of::Match {
            in_port: Some(0x2000),
            ..of::Match::default()
        };
        assert_eq!(to_match(&no_port).unwrap_err().kind.code, ofpbmc::BAD_VALUE);
        let no_phy_port = of::Match {
            in_port: Some(1),
            in_phy_port: Some(0x2000),
            ..of::Match::default()
        };
        assert_eq!(to_match(&no_phy_port).unwrap_err().kind.code, ofpbmc::BAD_VALUE);
    }

    /// Matches with every field onvm supports beyond the classic ones, each with its
    /// prerequisites (as the codec checks them).
    pub(crate) fn wide_matches() -> Vec<of::Match> {
        let mac = |b| [2, 0, 0, 0, 0, b];
        let base = |eth_type, ip_proto| of::Match {
            eth_type: Some(eth_type),
            ip_proto,
            ..of::Match::default()
        };
        vec![
            // ovs-testcontroller's learned flows: untagged, with nw_tos, ICMP type/code.
            of::Match {
                in_port: Some(1),
                vlan_vid: Some(Masked::exact(of::OFPVID_NONE)),
                eth_src: Some(Masked::exact(mac(1))),
                eth_dst: Some(Masked::exact(mac(2))),
                ip_dscp: Some(0),
                ipv4_src: Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 1))),
                ipv4_dst: Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 2))),
                icmpv4_type: Some(8),
                icmpv4_code: Some(0),
                ..base(of::ETH_TYPE_IPV4, Some(of::IP_PROTO_ICMP))
            },
            of::Match {
                in_port: Some(2),
                in_phy_port: Some(2),
                metadata: Some(Masked::with_mask(0xab00, 0xff00)),
                tunnel_id: Some(Masked::exact(0)),
                vlan_vid: Some(Masked::with_mask(of::OFPVID_PRESENT, of::OFPVID_PRESENT)),
                vlan_pcp: Some(5),
                ip_dscp: Some(46),
                ip_ecn: Some(3),
                ipv4_dst: Some(Masked::with_mask(
                    Ipv4Addr::new(10, 0, 0, 1),
                    Ipv4Addr::new(255, 0, 255, 255),
                )),
                tcp_src: Some(1234),
                tcp_dst: Some(80),
                ..base(of::ETH_TYPE_IPV4, Some(of::IP_PROTO_TCP))
            },
            of::Match {
                vlan_vid: Some(Masked::with_mask(of::OFPVID_PRESENT | 0x0a0, 0x1ff0)),
                ipv6_src: Some(Masked::with_mask(
                    "2001::1".parse().unwrap(),
                    "ffff::ffff".parse().unwrap(),
                )),
                ipv6_flabel: Some(Masked::with_mask(0x12000, 0xff000)),
                sctp_src: Some(5000),
                sctp_dst: Some(80),
                ..base(of::ETH_TYPE_IPV6, Some(of::IP_PROTO_SCTP))
            },
            of::Match {
                ipv6_flabel: Some(Masked::exact(0xabcde)),
                udp_dst: Some(53),
                ..base(of::ETH_TYPE_IPV6, Some(of::IP_PROTO_UDP))
            },
            of::Match {
                arp_op: Some(1),
                arp_spa: Some(Masked::with_mask(
                    Ipv4Addr::new(10, 0, 0, 0),
                    Ipv4Addr::new(255, 255, 255, 0),
                )),
                arp_tpa: Some(Masked::exact(Ipv4Addr::new(10, 0, 0, 9))),
                arp_sha: Some(Masked::exact(mac(1))),
                arp_tha: Some(Masked::with_mask(mac(0), [0xff, 0xff, 0xff, 0, 0, 0])),
                ..base(of::ETH_TYPE_ARP, None)
            },
            of::Match {
                icmpv6_type: Some(of::ICMPV6_ND_SOLICIT),
                icmpv6_code: Some(0),
                ipv6_nd_target: Some("fe80::2".parse().unwrap()),
                ipv6_nd_sll: Some(mac(3)),
                ..base(of::ETH_TYPE_IPV6, Some(of::IP_PROTO_ICMPV6))
            },
            of::Match {
                icmpv6_type: Some(of::ICMPV6_ND_ADVERT),
                ipv6_nd_target: Some("fe80::3".parse().unwrap()),
                ipv6_nd_tll: Some(mac(4)),
                ..base(of::ETH_TYPE_IPV6, Some(of::IP_PROTO_ICMPV6))
            },
            of::Match {
                mpls_label: Some(0xfffff),
                mpls_tc: Some(7),
                mpls_bos: Some(1),
                ..base(of::ETH_TYPE_MPLS, None)
            },
        ]
    }

    #[test]
    fn every_field_round_trips_through_the_table_match() {
        for m in wide_matches() {
            m.check_prereqs().unwrap();
            let ours = to_match(&m).unwrap();
            assert_eq!(from_match(&ours), m, "{ours:?}");
        }
        // The two spellings of one VLAN match: "tagged with 42" is `vlan_id`.
        let exact = of::Match {
            vlan_vid: Some(Masked::with_mask(of::OFPVID_PRESENT | 42, 0x1fff)),
            ..of::Match::default()
        };
        let ours = to_match(&exact).unwrap();
        assert_eq!((ours.vlan_id, ours.vlan_vid), (Some(42), None));
        assert_eq!(from_match(&ours).vlan_vid, Some(Masked::exact(of::OFPVID_PRESENT | 42)));
        let untagged = to_match(&of::Match {
            vlan_vid: Some(Masked::exact(of::OFPVID_NONE)),
            ..of::Match::default()
        })
        .unwrap();
        assert_eq!(
            (untagged.vlan_id, untagged.vlan_vid.map(|v| (v.value(), v.mask()))),
            (None, Some((0, 0x1fff)))
        );
    }

    #[test]
    fn table_matches_do_what_the_openflow_match_says() {
        use onvm_proto::flow::PacketKey;
        // An untagged ICMP echo from 10.0.0.1 to 10.0.0.2, 02:..:01 → 02:..:02, port 1.
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        f.extend([0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend([8, 0, 0, 0, 0, 1, 0, 1]);
        let k = PacketKey::from_frame(PortNo::physical(0), &f);
        let learned = to_match(&wide_matches()[0]).unwrap();
        assert!(learned.matches(&k));
        let mut tagged = f.clone();
        tagged.splice(12..12, [0x81, 0, 0, 5]);
        assert!(!learned.matches(&PacketKey::from_frame(PortNo::physical(0), &tagged)));
        let mut reply = f.clone();
        reply[34] = 0;
        assert!(!learned.matches(&PacketKey::from_frame(PortNo::physical(0), &reply)));
        let mut tos = f.clone();
        tos[15] = 0xb8;
        assert!(!learned.matches(&PacketKey::from_frame(PortNo::physical(0), &tos)));
        // Any tag with PCP 5 over TCP.
        let any_tag = to_match(&wide_matches()[1]).unwrap();
        assert!(!any_tag.matches(&k));
    }

    #[test]
    fn instructions_onvm_can_and_cannot_carry_out() {
        let out = |port| of::Action::Output { port, max_len: 0 };
        let apply = |a: Vec<of::Action>| Instruction::ApplyActions(a);
        let acts = |i: &[Instruction], t| to_actions(i, t).map(|(a, _, _)| a);
        assert_eq!(
            acts(&[apply(vec![out(0x1001)])], 0).unwrap(),
            [Action::Output(PortNo::service(1))]
        );
        assert_eq!(acts(&[Instruction::GotoTable(2)], 1).unwrap(), [Action::Goto(2)]);
        assert_eq!(acts(&[], 0).unwrap(), [], "no instructions = drop");
        let miss = of::Action::Output {
            port: ofpp::CONTROLLER,
            max_len: of::ofpcml::NO_BUFFER,
        };
        assert_eq!(
            acts(&[apply(vec![miss])], 0).unwrap(),
            [Action::Controller {
                max_len: of::ofpcml::NO_BUFFER
            }]
        );
        let code = |i: &[Instruction], t| {
            let e = to_actions(i, t).unwrap_err();
            (e.kind.ty, e.kind.code)
        };
        assert_eq!(
            code(&[Instruction::GotoTable(1)], 1),
            (ofpet::BAD_INSTRUCTION, ofpbic::BAD_TABLE_ID)
        );
        assert_eq!(
            code(&[Instruction::GotoTable(N_TABLES)], 0),
            (ofpet::BAD_INSTRUCTION, ofpbic::BAD_TABLE_ID)
        );
        // Write-actions with a goto: the action set waits for the later tables.
        let (a, extra, _) =
            to_actions(&[Instruction::WriteActions(vec![out(1)]), Instruction::GotoTable(1)], 0).unwrap();
        assert_eq!(
            (a, extra.write),
            (vec![Action::Goto(1)], vec![Action::Output(PortNo::physical(0))])
        );
        assert_eq!(
            code(&[apply(vec![of::Action::SetQueue(1)])], 0),
            (ofpet::BAD_ACTION, ofpbac::BAD_TYPE),
            "no queues"
        );
        assert_eq!(
            code(&[apply(vec![of::Action::SetField(of::SetField::TunnelId(1))])], 0),
            (ofpet::BAD_ACTION, ofpbac::BAD_SET_TYPE),
            "no tunnels"
        );
        assert_eq!(
            code(&[apply(vec![out(ofpp::LOCAL)])], 0),
            (ofpet::BAD_ACTION, ofpbac::BAD_OUT_PORT)
        );
        // Rewrites, edits and several outputs in order; write-actions to the action set.
        let set = of::Action::SetField(of::SetField::TcpDst(80));
        let mac = of::Action::SetField(of::SetField::EthDst([2; 6]));
        let (got, extra, _) = to_actions(
            &[
                Instruction::WriteActions(vec![out(2)]),
                apply(vec![
                    set,
                    out(1),
                    of::Action::PushVlan(0x8100),
                    mac,
                    out(ofpp::FLOOD),
                    of::Action::Group(3),
                ]),
                Instruction::Meter(4),
                Instruction::WriteMetadata { metadata: 5, mask: 7 },
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Action::Set(Rewrite::L4Dst(80)),
                Action::Output(PortNo::physical(0)),
                Action::Edit(Edit::PushVlan(0x8100)),
                Action::Set(Rewrite::EthDst([2; 6])),
                Action::Output(PortNo::ALL),
                Action::Group(3),
            ]
        );
        assert_eq!(
            extra,
            Instructions {
                meter: Some(4),
                clear: false,
                write: vec![Action::Output(PortNo::physical(1))],
                metadata: Some((5, 7)),
            }
        );
        // And back, as dump-flows shows them.
        let v6 = of::Action::SetField(of::SetField::Ipv6Src("2001:db8::1".parse().unwrap()));
        for i in [
            vec![apply(vec![out(3)])],
            vec![Instruction::GotoTable(4)],
            vec![apply(vec![miss])],
            vec![],
            vec![apply(vec![set, v6, out(1), out(ofpp::ALL)]), Instruction::GotoTable(2)],
        ] {
            assert_eq!(to_instructions(&acts(&i, 0).unwrap(), None), i);
        }
        let udp = of::Action::SetField(of::SetField::UdpSrc(53));
        let i = vec![apply(vec![udp])];
        assert_eq!(to_instructions(&acts(&i, 0).unwrap(), Some(of::IP_PROTO_UDP)), i);
        let icmp6 = of::Action::SetField(of::SetField::Icmpv6Type(135));
        let i = vec![apply(vec![icmp6])];
        assert_eq!(to_instructions(&acts(&i, 0).unwrap(), Some(58)), i);
    }

    #[test]
    fn instructions_read_back_as_written() {
        let out = |port| of::Action::Output { port, max_len: 0 };
        let apply = |a: Vec<of::Action>| Instruction::ApplyActions(a);
        let write = |a: Vec<of::Action>| Instruction::WriteActions(a);
        let set = of::Action::SetField(of::SetField::TcpDst(80));
        for i in [
            vec![apply(vec![out(ofpp::FLOOD)])],
            vec![apply(vec![out(ofpp::ALL)])],
            vec![write(vec![out(2)])],
            vec![
                apply(vec![set, out(ofpp::FLOOD), out(ofpp::ALL)]),
                write(vec![out(ofpp::FLOOD), out(1)]),
            ],
            vec![apply(vec![out(1)]), Instruction::GotoTable(3)],
            vec![
                Instruction::Meter(9),
                apply(vec![of::Action::PopVlan, of::Action::DecNwTtl, out(1)]),
                Instruction::ClearActions,
                write(vec![
                    of::Action::PushMpls(0x8847),
                    out(ofpp::FLOOD),
                    of::Action::Group(2),
                ]),
                Instruction::WriteMetadata { metadata: 1, mask: 3 },
                Instruction::GotoTable(3),
            ],
        ] {
            let (actions, extra, spelling) = to_actions(&i, 0).unwrap();
            let mut r = Rule::new(1, Match::any(), actions);
            r.spelling = spelling;
            r.instructions = extra;
            assert_eq!(rule_instructions(&r), i, "{spelling:?}");
        }
        // A rule installed otherwise (a config chain) reads back plainly.
        let r = Rule::new(1, Match::any(), vec![Action::Output(PortNo::ALL)]);
        assert_eq!(rule_instructions(&r), [apply(vec![out(ofpp::ALL)])]);
    }

    #[test]
    fn packet_out_destinations() {
        let out = |port| of::Action::Output { port, max_len: 0 };
        assert_eq!(
            packet_out_actions(&[
                out(ofpp::TABLE),
                out(ofpp::FLOOD),
                out(ofpp::ALL),
                of::Action::SetField(of::SetField::UdpDst(7)),
                out(ofpp::IN_PORT),
                out(2)
            ])
            .unwrap(),
            [
                Out::Table,
                Out::Flood,
                Out::Flood,
                Out::Set(Rewrite::L4Dst(7)),
                Out::InPort,
                Out::Port(PortNo::physical(1))
            ]
        );
        let e = packet_out_actions(&[out(ofpp::LOCAL)]).unwrap_err();
        assert_eq!((e.kind.ty, e.kind.code), (ofpet::BAD_ACTION, ofpbac::BAD_OUT_PORT));
    }
}
