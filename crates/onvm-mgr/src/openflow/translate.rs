//! OpenFlow's view of the flow table and onvm's, converted both ways.
//!
//! Ports: OpenFlow numbers ports from 1, so physical port `p` is OpenFlow port `p + 1`;
//! the logical port of service `s` is `0x1000 + s` in both (see [`PortNo`]); reserved
//! ports keep their numbers. What onvm's table cannot express is refused with the
//! spec's error, never approximated: a controller must not believe a rule does what it
//! does not.

use onvm_openflow::{self as of, Instruction, Masked, OfpError, SetField, ofpbac, ofpbic, ofpbmc, ofpet, ofpp};
use onvm_proto::flow::{Action, Ipv4Prefix, Ipv6Prefix, MacMatch, Match, N_TABLES, PortKind, PortNo, Rewrite};
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

/// The prefix length of a contiguous network mask of `bits` bits, or `None`.
fn prefix_len(mask: u128, bits: u32) -> Option<u8> {
    let top = mask << (128 - bits);
    let len = top.leading_ones();
    (top.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// The prefix length of an IP mask, or the error a controller gets for another mask.
fn mask_len(mask: u128, bits: u32, shown: impl std::fmt::Display) -> Result<u8, OfpError> {
    prefix_len(mask, bits).ok_or_else(|| {
        bad_match(
            ofpbmc::BAD_NW_ADDR_MASK,
            format!("IP mask {shown} is not a prefix (onvm matches prefixes)"),
        )
    })
}

fn v4(m: &Masked<std::net::Ipv4Addr>) -> Result<Ipv4Prefix, OfpError> {
    let mask = m.mask.map_or(u32::MAX, u32::from);
    let len = mask_len(mask.into(), 32, std::net::Ipv4Addr::from(mask))?;
    Ok(Ipv4Prefix::new(m.value, len).expect("length checked"))
}

fn v6(m: &Masked<std::net::Ipv6Addr>) -> Result<Ipv6Prefix, OfpError> {
    let mask = m.mask.map_or(u128::MAX, u128::from);
    let len = mask_len(mask, 128, std::net::Ipv6Addr::from(mask))?;
    Ok(Ipv6Prefix::new(m.value, len).expect("length checked"))
}

/// onvm's match for an OpenFlow match.
pub fn to_match(m: &of::Match) -> Result<Match, OfpError> {
    let in_port = m
        .in_port
        .map(|n| {
            onvm_port(n)
                .ok_or_else(|| bad_match(ofpbmc::BAD_VALUE, format!("in_port {n:#x} is no port of this switch")))
        })
        .transpose()?;
    let mac = |f: &Option<Masked<[u8; 6]>>| f.map(|f| MacMatch::masked(f.value, f.mask.unwrap_or([0xff; 6])));
    let vlan_id = match m.vlan_vid {
        None => None,
        Some(Masked { value, mask: None }) if value & of::OFPVID_PRESENT != 0 => Some(value & 0x0fff),
        Some(v) => {
            return Err(bad_match(
                ofpbmc::BAD_VALUE,
                format!(
                    "vlan_vid {:#06x}{}: onvm matches one VLAN ID, not \"untagged\" or \"any tag\"",
                    v.value,
                    v.mask.map(|m| format!("/{m:#06x}")).unwrap_or_default()
                ),
            ));
        }
    };
    Ok(Match {
        in_port,
        eth_src: mac(&m.eth_src),
        eth_dst: mac(&m.eth_dst),
        eth_type: m.eth_type,
        vlan_id,
        ipv4_src: m.ipv4_src.as_ref().map(v4).transpose()?,
        ipv4_dst: m.ipv4_dst.as_ref().map(v4).transpose()?,
        ipv6_src: m.ipv6_src.as_ref().map(v6).transpose()?,
        ipv6_dst: m.ipv6_dst.as_ref().map(v6).transpose()?,
        ip_proto: m.ip_proto,
        // The codec checked the prerequisites: a TCP field comes with ip_proto 6.
        l4_src: m.tcp_src.or(m.udp_src),
        l4_dst: m.tcp_dst.or(m.udp_dst),
    })
}

fn masked<T: PartialEq + Copy>(value: T, mask: T, full: T) -> Masked<T> {
    if mask == full {
        Masked::exact(value)
    } else {
        Masked::with_mask(value, mask)
    }
}

/// The OpenFlow match for onvm's (what dump-flows shows).
pub fn from_match(m: &Match) -> of::Match {
    let mac = |f: &Option<MacMatch>| f.map(|f| masked(f.addr(), f.mask(), [0xff; 6]));
    let p4 = |p: &Option<Ipv4Prefix>| {
        p.map(|p| {
            let mask = u32::MAX.checked_shl(32 - u32::from(p.prefix_len())).unwrap_or(0);
            masked(p.addr(), mask.into(), std::net::Ipv4Addr::BROADCAST)
        })
    };
    let p6 = |p: &Option<Ipv6Prefix>| {
        p.map(|p| {
            let mask = u128::MAX.checked_shl(128 - u32::from(p.prefix_len())).unwrap_or(0);
            masked(p.addr(), mask.into(), std::net::Ipv6Addr::from(u128::MAX))
        })
    };
    let tcp = m.ip_proto == Some(of::IP_PROTO_TCP);
    let udp = m.ip_proto == Some(of::IP_PROTO_UDP);
    of::Match {
        in_port: m.in_port.map(of_port),
        eth_dst: mac(&m.eth_dst),
        eth_src: mac(&m.eth_src),
        eth_type: m.eth_type,
        vlan_vid: m.vlan_id.map(|v| Masked::exact(v | of::OFPVID_PRESENT)),
        ip_proto: m.ip_proto,
        ipv4_src: p4(&m.ipv4_src),
        ipv4_dst: p4(&m.ipv4_dst),
        tcp_src: m.l4_src.filter(|_| tcp),
        tcp_dst: m.l4_dst.filter(|_| tcp),
        udp_src: m.l4_src.filter(|_| udp),
        udp_dst: m.l4_dst.filter(|_| udp),
        ipv6_src: p6(&m.ipv6_src),
        ipv6_dst: p6(&m.ipv6_dst),
    }
}

fn bad_action(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_ACTION, code, message)
}

/// onvm's rewrite for a SET_FIELD (the codec has checked its prerequisites).
fn rewrite(f: SetField) -> Rewrite {
    match f {
        SetField::EthDst(m) => Rewrite::EthDst(m),
        SetField::EthSrc(m) => Rewrite::EthSrc(m),
        SetField::Ipv4Src(a) => Rewrite::IpSrc(a.into()),
        SetField::Ipv4Dst(a) => Rewrite::IpDst(a.into()),
        SetField::Ipv6Src(a) => Rewrite::IpSrc(a.into()),
        SetField::Ipv6Dst(a) => Rewrite::IpDst(a.into()),
        SetField::TcpSrc(p) | SetField::UdpSrc(p) => Rewrite::L4Src(p),
        SetField::TcpDst(p) | SetField::UdpDst(p) => Rewrite::L4Dst(p),
    }
}

/// The SET_FIELD for onvm's rewrite; a port is TCP's unless the rule matches UDP.
fn set_field(r: Rewrite, udp: bool) -> SetField {
    use std::net::IpAddr::{V4, V6};
    match r {
        Rewrite::EthDst(m) => SetField::EthDst(m),
        Rewrite::EthSrc(m) => SetField::EthSrc(m),
        Rewrite::IpSrc(V4(a)) => SetField::Ipv4Src(a),
        Rewrite::IpDst(V4(a)) => SetField::Ipv4Dst(a),
        Rewrite::IpSrc(V6(a)) => SetField::Ipv6Src(a),
        Rewrite::IpDst(V6(a)) => SetField::Ipv6Dst(a),
        Rewrite::L4Src(p) if udp => SetField::UdpSrc(p),
        Rewrite::L4Dst(p) if udp => SetField::UdpDst(p),
        Rewrite::L4Src(p) => SetField::TcpSrc(p),
        Rewrite::L4Dst(p) => SetField::TcpDst(p),
    }
}

/// onvm's action for one OpenFlow action of a flow rule.
fn rule_action(a: &of::Action) -> Result<Action, OfpError> {
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
        of::Action::SetField(f) => Ok(Action::Set(rewrite(f))),
    }
}

/// onvm's actions for the instructions of a FLOW_MOD to `table`: apply-actions in
/// their order, then write-actions, then the goto.
///
/// onvm keeps no action set between tables: WRITE_ACTIONS is carried out at the end of
/// its own rule, which is what the action set would do there, so it is refused in a
/// rule that goes on to another table (where the action set would wait for later
/// tables). CLEAR_ACTIONS has nothing to clear.
pub fn to_actions(instructions: &[Instruction], table: u8) -> Result<Vec<Action>, OfpError> {
    let (mut apply, mut write) = (Vec::new(), Vec::new());
    let mut goto = None;
    for i in instructions {
        match i {
            Instruction::ApplyActions(a) => {
                for a in a {
                    apply.push(rule_action(a)?);
                }
            }
            Instruction::WriteActions(a) => {
                for a in a {
                    write.push(rule_action(a)?);
                }
            }
            Instruction::ClearActions => {}
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
    if goto.is_some() && !write.is_empty() {
        return Err(OfpError::of(
            ofpet::BAD_INSTRUCTION,
            ofpbic::UNSUP_INST,
            "write-actions with goto-table: onvm keeps no action set between tables (use apply-actions)",
        ));
    }
    apply.extend(write);
    apply.extend(goto);
    Ok(apply)
}

/// The instructions that describe onvm's actions (what dump-flows shows); `udp` says
/// whether port rewrites are UDP's (the rule matches UDP) or TCP's.
pub fn to_instructions(actions: &[Action], udp: bool) -> Vec<Instruction> {
    let mut apply = Vec::new();
    let mut goto = None;
    for a in actions {
        match *a {
            Action::Output(p) => apply.push(of::Action::Output {
                port: of_port(p),
                max_len: 0,
            }),
            Action::Controller { max_len } => apply.push(of::Action::Output {
                port: ofpp::CONTROLLER,
                max_len,
            }),
            Action::Set(r) => apply.push(of::Action::SetField(set_field(r, udp))),
            Action::Goto(t) => goto = Some(Instruction::GotoTable(t)),
            Action::Drop => {}
        }
    }
    let mut v = Vec::new();
    if !apply.is_empty() {
        v.push(Instruction::ApplyActions(apply));
    }
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
            of::Action::SetField(f) => Ok(Out::Set(rewrite(f))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

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
    fn matches_round_trip_and_masks_must_be_prefixes() {
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
        assert_eq!(ours.ipv4_src.unwrap().prefix_len(), 8);
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

        let holes = of::Match {
            eth_type: Some(of::ETH_TYPE_IPV4),
            ipv4_dst: Some(Masked::with_mask(
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(255, 0, 255, 0),
            )),
            ..of::Match::default()
        };
        let e = to_match(&holes).unwrap_err();
        assert_eq!((e.kind.ty, e.kind.code), (ofpet::BAD_MATCH, ofpbmc::BAD_NW_ADDR_MASK));
        assert!(e.to_string().contains("255.0.255.0"), "{e}");
        let any_tag = of::Match {
            vlan_vid: Some(Masked::with_mask(of::OFPVID_PRESENT, of::OFPVID_PRESENT)),
            ..of::Match::default()
        };
        assert_eq!(to_match(&any_tag).unwrap_err().kind.code, ofpbmc::BAD_VALUE);
        let no_port = of::Match {
            in_port: Some(0x2000),
            ..of::Match::default()
        };
        assert_eq!(to_match(&no_port).unwrap_err().kind.code, ofpbmc::BAD_VALUE);
        assert_eq!(prefix_len(u128::from(u32::MAX), 32), Some(32));
        assert_eq!(prefix_len(0, 32), Some(0));
        assert_eq!(prefix_len(0xff00_0000, 32), Some(8));
        assert_eq!(prefix_len(0xff00_ff00, 32), None);
        assert_eq!(prefix_len(u128::from(Ipv6Addr::from(u128::MAX << 64)), 128), Some(64));
    }

    #[test]
    fn instructions_onvm_can_and_cannot_carry_out() {
        let out = |port| of::Action::Output { port, max_len: 0 };
        let apply = |a: Vec<of::Action>| Instruction::ApplyActions(a);
        assert_eq!(
            to_actions(&[apply(vec![out(0x1001)])], 0).unwrap(),
            [Action::Output(PortNo::service(1))]
        );
        assert_eq!(to_actions(&[Instruction::GotoTable(2)], 1).unwrap(), [Action::Goto(2)]);
        assert_eq!(to_actions(&[], 0).unwrap(), [], "no instructions = drop");
        let miss = of::Action::Output {
            port: ofpp::CONTROLLER,
            max_len: of::ofpcml::NO_BUFFER,
        };
        assert_eq!(
            to_actions(&[apply(vec![miss])], 0).unwrap(),
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
        assert_eq!(
            code(&[Instruction::WriteActions(vec![out(1)]), Instruction::GotoTable(1)], 0),
            (ofpet::BAD_INSTRUCTION, ofpbic::UNSUP_INST)
        );
        assert_eq!(
            code(&[apply(vec![out(ofpp::LOCAL)])], 0),
            (ofpet::BAD_ACTION, ofpbac::BAD_OUT_PORT)
        );
        // Rewrites, several outputs and a goto, in order; write-actions after apply.
        let set = of::Action::SetField(of::SetField::TcpDst(80));
        let mac = of::Action::SetField(of::SetField::EthDst([2; 6]));
        let got = to_actions(
            &[
                Instruction::WriteActions(vec![out(2)]),
                apply(vec![set, out(1), mac, out(ofpp::FLOOD)]),
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Action::Set(Rewrite::L4Dst(80)),
                Action::Output(PortNo::physical(0)),
                Action::Set(Rewrite::EthDst([2; 6])),
                Action::Output(PortNo::ALL),
                Action::Output(PortNo::physical(1)),
            ]
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
            assert_eq!(to_instructions(&to_actions(&i, 0).unwrap(), false), i);
        }
        let udp = of::Action::SetField(of::SetField::UdpSrc(53));
        let i = vec![apply(vec![udp])];
        assert_eq!(to_instructions(&to_actions(&i, 0).unwrap(), true), i);
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
