//! A table of malformed messages, each with the OFPT_ERROR `(type, code)` it must get.

use super::{hex, msg};
use crate::header::ofpt;
use crate::*;

const V: u8 = OFP_VERSION;

/// An `ofp_match` around `tlvs`, with correct length and padding.
fn oxm_match(tlvs: &[u8]) -> Vec<u8> {
    let len = 4 + tlvs.len();
    let mut out = vec![0, 1];
    out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    out.extend_from_slice(tlvs);
    out.resize(len.div_ceil(8) * 8, 0);
    out
}

/// A FLOW_MOD with the given command, table, flags, raw match and raw instructions.
fn flow_mod(command: u8, table: u8, flags: u16, match_: &[u8], instructions: &[u8]) -> Vec<u8> {
    let mut body = vec![0; 16];
    body.extend_from_slice(&[table, command, 0, 0, 0, 0, 0, 1]);
    body.extend_from_slice(&[0xff; 12]);
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(match_);
    body.extend_from_slice(instructions);
    msg(V, ofpt::FLOW_MOD, 1, &body)
}

fn add(match_tlvs: &[u8]) -> Vec<u8> {
    flow_mod(0, 0, 0, &oxm_match(match_tlvs), &[])
}

fn add_instr(instructions: &[u8]) -> Vec<u8> {
    flow_mod(0, 0, 0, &oxm_match(&[]), instructions)
}

/// APPLY_ACTIONS around raw actions.
fn apply(actions: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 4];
    out.extend_from_slice(&u16::try_from(8 + actions.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(actions);
    out
}

/// WRITE_ACTIONS around raw actions.
fn write(actions: &[u8]) -> Vec<u8> {
    let mut out = apply(actions);
    out[1] = 3;
    out
}

/// A SET_FIELD action around one OXM TLV (hex), padded to a multiple of 8.
fn set_field(tlv: &str) -> Vec<u8> {
    let tlv = hex(tlv);
    let len = (4 + tlv.len()).div_ceil(8) * 8;
    let mut out = vec![0, 25];
    out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    out.extend_from_slice(&tlv);
    out.resize(len, 0);
    out
}

/// An ADD of a flow matching `match_tlvs` (hex) with raw instructions.
fn add_instr_over(match_tlvs: &str, instructions: &[u8]) -> Vec<u8> {
    flow_mod(0, 0, 0, &oxm_match(&hex(match_tlvs)), instructions)
}

/// A match TLV of VLAN 5 (tagged: what vlan_pcp / vlan_vid rewrites need).
const TAGGED: &str = "80 00 0c 02 10 05";

fn output(port: u32) -> Vec<u8> {
    let mut out = hex("00 00 00 10");
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&hex("ff e5 00 00 00 00 00 00"));
    out
}

fn packet_out(in_port: u32, actions_len: u16, actions: &[u8]) -> Vec<u8> {
    let mut body = vec![0xff; 4];
    body.extend_from_slice(&in_port.to_be_bytes());
    body.extend_from_slice(&actions_len.to_be_bytes());
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(actions);
    msg(V, ofpt::PACKET_OUT, 1, &body)
}

fn multipart(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut b = ty.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(body);
    msg(V, ofpt::MULTIPART_REQUEST, 1, &b)
}

/// A GROUP_MOD of raw buckets.
fn group_mod(command: u16, ty: u8, group_id: u32, buckets: &[u8]) -> Vec<u8> {
    let mut body = command.to_be_bytes().to_vec();
    body.extend_from_slice(&[ty, 0]);
    body.extend_from_slice(&group_id.to_be_bytes());
    body.extend_from_slice(buckets);
    msg(V, ofpt::GROUP_MOD, 1, &body)
}

/// A bucket of raw actions with the length it says it has.
fn bucket_of_len(len: u16, actions: &[u8]) -> Vec<u8> {
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&hex("00 00 ff ff ff ff ff ff ff ff 00 00 00 00"));
    out.extend_from_slice(actions);
    out
}

fn bucket(actions: &[u8]) -> Vec<u8> {
    bucket_of_len(u16::try_from(16 + actions.len()).unwrap(), actions)
}

/// A METER_MOD of raw bands.
fn meter_mod(command: u16, flags: u16, meter_id: u32, bands: &[u8]) -> Vec<u8> {
    let mut body = command.to_be_bytes().to_vec();
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(&meter_id.to_be_bytes());
    body.extend_from_slice(bands);
    msg(V, ofpt::METER_MOD, 1, &body)
}

const DROP_BAND: &str = "00 01 00 10 00 00 03 e8 00 00 00 64 00 00 00 00";

fn multipart_reply(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut b = ty.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(body);
    msg(V, ofpt::MULTIPART_REPLY, 1, &b)
}

const TCP_PREREQS: &str = "80 00 0a 02 08 00  80 00 14 01 06";

fn cases() -> Vec<(&'static str, Vec<u8>, u16, u16)> {
    use ofpet::*;
    let prereq_tcp = |extra: &str| add(&hex(&format!("{TCP_PREREQS} {extra}")));
    vec![
        // Header and framing.
        ("shorter than a header", hex("04 00 00"), BAD_REQUEST, ofpbrc::BAD_LEN),
        (
            "header length below 8",
            hex("04 00 00 07 00 00 00 01"),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "header length beyond the bytes",
            hex("04 02 00 10 00 00 00 01"),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "bytes beyond the header length",
            hex("04 02 00 08 00 00 00 01 00"),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "OpenFlow 1.0 features request",
            hex("01 05 00 08 00 00 00 01"),
            BAD_REQUEST,
            ofpbrc::BAD_VERSION,
        ),
        (
            "OpenFlow 1.5 flow mod",
            msg(6, ofpt::FLOW_MOD, 1, &[]),
            BAD_REQUEST,
            ofpbrc::BAD_VERSION,
        ),
        (
            "unknown message type",
            msg(V, 99, 1, &[]),
            BAD_REQUEST,
            ofpbrc::BAD_TYPE,
        ),
        (
            "unsupported PORT_MOD",
            msg(V, ofpt::PORT_MOD, 1, &[0; 32]),
            BAD_REQUEST,
            ofpbrc::BAD_TYPE,
        ),
        (
            "experimenter message",
            msg(V, ofpt::EXPERIMENTER, 1, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_EXPERIMENTER,
        ),
        // Small fixed messages.
        (
            "features request with a body",
            msg(V, ofpt::FEATURES_REQUEST, 1, &[0; 4]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "barrier request with a body",
            msg(V, ofpt::BARRIER_REQUEST, 1, &[0]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "short features reply",
            msg(V, ofpt::FEATURES_REPLY, 1, &[0; 20]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "short set config",
            msg(V, ofpt::SET_CONFIG, 1, &[0; 2]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "set config bad flags",
            msg(V, ofpt::SET_CONFIG, 1, &hex("00 04 00 80")),
            SWITCH_CONFIG_FAILED,
            ofpscfc::BAD_FLAGS,
        ),
        (
            "role request unknown role",
            msg(
                V,
                ofpt::ROLE_REQUEST,
                1,
                &hex("00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 01"),
            ),
            ROLE_REQUEST_FAILED,
            ofprrfc::BAD_ROLE,
        ),
        (
            "short role request",
            msg(V, ofpt::ROLE_REQUEST, 1, &[0; 12]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "hello element length 2",
            msg(V, ofpt::HELLO, 1, &hex("00 01 00 02 00 00 00 00")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "hello element past the end",
            msg(V, ofpt::HELLO, 1, &hex("00 01 00 10 00 00 00 10")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "hello bitmap of 3 bytes",
            msg(V, ofpt::HELLO, 1, &hex("00 01 00 07 00 00 10 00")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "short error",
            msg(V, ofpt::ERROR, 1, &[0; 3]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "short port status",
            msg(V, ofpt::PORT_STATUS, 1, &[0; 70]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        // FLOW_MOD fixed part.
        (
            "flow mod cut in its fixed part",
            msg(V, ofpt::FLOW_MOD, 1, &[0; 30]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "flow mod unknown command",
            flow_mod(9, 0, 0, &oxm_match(&[]), &[]),
            FLOW_MOD_FAILED,
            ofpfmfc::BAD_COMMAND,
        ),
        (
            "flow mod unknown flag",
            flow_mod(0, 0, 0x0100, &oxm_match(&[]), &[]),
            FLOW_MOD_FAILED,
            ofpfmfc::BAD_FLAGS,
        ),
        (
            "flow mod add to OFPTT_ALL",
            flow_mod(0, OFPTT_ALL, 0, &oxm_match(&[]), &[]),
            FLOW_MOD_FAILED,
            ofpfmfc::BAD_TABLE_ID,
        ),
        // The match.
        (
            "flow mod without a match",
            flow_mod(0, 0, 0, &[], &[]),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "OFPMT_STANDARD match",
            flow_mod(0, 0, 0, &hex("00 00 00 04 00 00 00 00"), &[]),
            BAD_MATCH,
            ofpbmc::BAD_TYPE,
        ),
        (
            "match length 3",
            flow_mod(0, 0, 0, &hex("00 01 00 03 00 00 00 00"), &[]),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "match length past the end",
            flow_mod(0, 0, 0, &hex("00 01 00 20 00 00 00 00"), &[]),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "match padding missing",
            flow_mod(0, 0, 0, &hex("00 01 00 0c 80 00 00 04 00 00 00 01"), &[]),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "match padding not zero",
            flow_mod(0, 0, 0, &hex("00 01 00 0c 80 00 00 04 00 00 00 01 00 00 01 00"), &[]),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        ("OXM header cut", add(&hex("80 00")), BAD_MATCH, ofpbmc::BAD_LEN),
        (
            "OXM value past the match",
            add(&hex("80 00 00 08 00 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "in_port of 2 bytes",
            add(&hex("80 00 00 02 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "masked eth_dst of 6 bytes",
            add(&hex("80 00 07 06 01 00 00 00 00 00")),
            BAD_MATCH,
            ofpbmc::BAD_LEN,
        ),
        (
            "unsupported field pbb_isid",
            add(&hex("80 00 4a 03 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_FIELD,
        ),
        (
            "unsupported field ipv6_exthdr",
            add(&hex("80 00 0a 02 86 dd 80 00 4e 02 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_FIELD,
        ),
        (
            "metadata twice",
            add(&hex(
                "80 00 04 08 00 00 00 00 00 00 00 01 80 00 04 08 00 00 00 00 00 00 00 01",
            )),
            BAD_MATCH,
            ofpbmc::DUP_FIELD,
        ),
        (
            "masked ipv6_nd_target",
            add(&hex(&format!("80 00 3f 20 {} {}", "00".repeat(16), "ff".repeat(16)))),
            BAD_MATCH,
            ofpbmc::BAD_MASK,
        ),
        (
            "vlan_pcp of 8",
            add(&hex("80 00 0c 02 10 05 80 00 0e 01 08")),
            BAD_MATCH,
            ofpbmc::BAD_VALUE,
        ),
        (
            "ip_dscp of 64",
            add(&hex("80 00 0a 02 08 00 80 00 10 01 40")),
            BAD_MATCH,
            ofpbmc::BAD_VALUE,
        ),
        (
            "mpls_bos of 2",
            add(&hex("80 00 0a 02 88 47 80 00 48 01 02")),
            BAD_MATCH,
            ofpbmc::BAD_VALUE,
        ),
        (
            "vlan_pcp without vlan_vid",
            add(&hex("80 00 0e 01 03")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "vlan_pcp on untagged",
            add(&hex("80 00 0c 02 00 00 80 00 0e 01 03")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "in_phy_port without in_port",
            add(&hex("80 00 02 04 00 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ip_dscp over ARP",
            add(&hex("80 00 0a 02 08 06 80 00 10 01 2e")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "icmpv4_type without ip_proto",
            add(&hex("80 00 0a 02 08 00 80 00 26 01 08")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "icmpv4_type over IPv6",
            add(&hex("80 00 0a 02 86 dd 80 00 14 01 01 80 00 26 01 08")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "sctp_src over TCP",
            add(&hex("80 00 0a 02 08 00 80 00 14 01 06 80 00 22 02 00 50")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "arp_op over IPv4",
            add(&hex("80 00 0a 02 08 00 80 00 2a 02 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "icmpv6_type with ip_proto 1",
            add(&hex("80 00 0a 02 86 dd 80 00 14 01 01 80 00 3a 01 87")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ipv6_nd_target on an echo request",
            add(&hex(&format!(
                "80 00 0a 02 86 dd 80 00 14 01 3a 80 00 3a 01 80 80 00 3e 10 {}",
                "00".repeat(16)
            ))),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ipv6_nd_tll on a solicitation",
            add(&hex(
                "80 00 0a 02 86 dd 80 00 14 01 3a 80 00 3a 01 87 80 00 42 06 00 00 00 00 00 01",
            )),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "mpls_label over IPv4",
            add(&hex("80 00 0a 02 08 00 80 00 44 04 00 00 00 10")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "unknown field 100",
            add(&hex("80 00 c8 01 00")),
            BAD_MATCH,
            ofpbmc::BAD_FIELD,
        ),
        (
            "Nicira class",
            add(&hex("00 01 00 04 00 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_FIELD,
        ),
        (
            "masked in_port",
            add(&hex("80 00 01 08 00 00 00 01 ff ff ff ff")),
            BAD_MATCH,
            ofpbmc::BAD_MASK,
        ),
        (
            "masked eth_type",
            add(&hex("80 00 0b 04 08 00 ff ff")),
            BAD_MATCH,
            ofpbmc::BAD_MASK,
        ),
        (
            "eth_type twice",
            add(&hex("80 00 0a 02 08 00 80 00 0a 02 08 00")),
            BAD_MATCH,
            ofpbmc::DUP_FIELD,
        ),
        (
            "vlan id without OFPVID_PRESENT",
            add(&hex("80 00 0c 02 00 05")),
            BAD_MATCH,
            ofpbmc::BAD_VALUE,
        ),
        (
            "vlan id over 13 bits",
            add(&hex("80 00 0c 02 20 05")),
            BAD_MATCH,
            ofpbmc::BAD_VALUE,
        ),
        (
            "ip_proto without eth_type",
            add(&hex("80 00 14 01 06")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ip_proto over ARP",
            add(&hex("80 00 0a 02 08 06 80 00 14 01 06")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ipv4_src without eth_type",
            add(&hex("80 00 16 04 0a 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ipv4_src over IPv6",
            add(&hex("80 00 0a 02 86 dd 80 00 16 04 0a 00 00 01")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "ipv6_dst over IPv4",
            add(&hex("80 00 0a 02 08 00 80 00 36 10 00000000000000000000000000000001")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "tcp_src without ip_proto",
            add(&hex("80 00 0a 02 08 00 80 00 1a 02 00 50")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "tcp_dst over UDP",
            add(&hex("80 00 0a 02 08 00 80 00 14 01 11 80 00 1c 02 00 50")),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "udp_src over TCP",
            prereq_tcp("80 00 1e 02 00 35"),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        // Instructions.
        (
            "instruction header cut",
            add_instr(&hex("00 04")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "instruction length 12",
            add_instr(&hex("00 05 00 0c 00 00 00 00 00 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "instruction length past the end",
            add_instr(&hex("00 04 00 18 00 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "goto_table of 16 bytes",
            add_instr(&hex("00 01 00 10 05 00 00 00 00 00 00 00 00 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "unknown instruction 7",
            add_instr(&hex("00 07 00 08 00 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::UNKNOWN_INST,
        ),
        (
            "meter instruction of 16 bytes",
            add_instr(&hex("00 06 00 10 00 00 00 01 00 00 00 00 00 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "meter instruction of meter 0",
            add_instr(&hex("00 06 00 08 00 00 00 00")),
            METER_MOD_FAILED,
            ofpmmfc::INVALID_METER,
        ),
        (
            "meter instruction of OFPM_CONTROLLER",
            add_instr(&hex("00 06 00 08 ff ff ff fe")),
            METER_MOD_FAILED,
            ofpmmfc::INVALID_METER,
        ),
        (
            "write_metadata of 16 bytes",
            add_instr(&hex("00 02 00 10 00000000 0000000000000001")),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "write_metadata of 32 bytes",
            add_instr(&hex(
                "00 02 00 20 00000000 0000000000000001 ffffffffffffffff 0000000000000000",
            )),
            BAD_INSTRUCTION,
            ofpbic::BAD_LEN,
        ),
        (
            "experimenter instruction",
            add_instr(&hex("ff ff 00 08 00 00 23 20")),
            BAD_INSTRUCTION,
            ofpbic::BAD_EXPERIMENTER,
        ),
        (
            "goto the same table",
            flow_mod(0, 3, 0, &oxm_match(&[]), &hex("00 01 00 08 03 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_TABLE_ID,
        ),
        (
            "goto table 255",
            add_instr(&hex("00 01 00 08 ff 00 00 00")),
            BAD_INSTRUCTION,
            ofpbic::BAD_TABLE_ID,
        ),
        // Actions.
        (
            "action past its list",
            add_instr(&apply(&hex("00 00 00 10 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "action length 12",
            add_instr(&apply(&hex("00 00 00 0c 00 00 00 01 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "action length 0",
            add_instr(&apply(&hex("00 00 00 00 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "output of 24 bytes",
            add_instr(&apply(&hex(
                "00 00 00 18 00 00 00 01 ff e5 00 00 00 00 00 00 00 00 00 00 00 00 00 00",
            ))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "output to port 0",
            add_instr(&apply(&output(0))),
            BAD_ACTION,
            ofpbac::BAD_OUT_PORT,
        ),
        (
            "output to OFPP_ANY",
            add_instr(&apply(&output(ofpp::ANY))),
            BAD_ACTION,
            ofpbac::BAD_OUT_PORT,
        ),
        (
            "output to a reserved gap",
            add_instr(&apply(&output(0xffff_ff10))),
            BAD_ACTION,
            ofpbac::BAD_OUT_PORT,
        ),
        (
            "push_pbb",
            add_instr(&apply(&hex("00 1a 00 08 88 e7 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_TYPE,
        ),
        (
            "pop_pbb",
            add_instr(&apply(&hex("00 1b 00 08 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_TYPE,
        ),
        (
            "push_vlan of 0x0800",
            add_instr(&apply(&hex("00 11 00 08 08 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_ARGUMENT,
        ),
        (
            "push_mpls of 0x8100",
            add_instr(&apply(&hex("00 13 00 08 81 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_ARGUMENT,
        ),
        (
            "push_vlan of 16 bytes",
            add_instr(&apply(&hex("00 11 00 10 81 00 00 00 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "pop_vlan of 16 bytes",
            add_instr(&apply(&hex("00 12 00 10 00 00 00 00 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "copy_ttl_out of 16 bytes",
            add_instr(&apply(&hex("00 0b 00 10 00 00 00 00 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "set_nw_ttl of 16 bytes",
            add_instr(&apply(&hex("00 17 00 10 40 00 00 00 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "set_queue of 16 bytes",
            add_instr(&apply(&hex("00 15 00 10 00 00 00 01 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "group action of 16 bytes",
            add_instr(&apply(&hex("00 16 00 10 00 00 00 01 00 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "group action to OFPG_ALL",
            add_instr(&apply(&hex("00 16 00 08 ff ff ff fc"))),
            BAD_ACTION,
            ofpbac::BAD_OUT_GROUP,
        ),
        (
            "group action to a reserved id",
            add_instr(&apply(&hex("00 16 00 08 ff ff ff 01"))),
            BAD_ACTION,
            ofpbac::BAD_OUT_GROUP,
        ),
        (
            "set_mpls_ttl without MPLS",
            add_instr(&apply(&hex("00 0f 00 08 40 00 00 00"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "dec_mpls_ttl over IPv4",
            add_instr_over("80 00 0a 02 08 00", &apply(&hex("00 10 00 08 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "pop_mpls without MPLS",
            add_instr(&apply(&hex("00 14 00 08 08 00 00 00"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "dec_nw_ttl without IP",
            add_instr(&apply(&hex("00 18 00 08 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "dec_nw_ttl after push_mpls",
            add_instr_over(
                "80 00 0a 02 08 00",
                &apply(&hex("00 13 00 08 88 47 00 00  00 18 00 08 00 00 00 00")),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "unknown action 200",
            add_instr(&apply(&hex("00 c8 00 08 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_TYPE,
        ),
        (
            "experimenter action",
            add_instr(&apply(&hex("ff ff 00 08 00 00 23 20"))),
            BAD_ACTION,
            ofpbac::BAD_EXPERIMENTER,
        ),
        (
            "set_field vlan_vid on an untagged match",
            add_instr(&apply(&set_field("80 00 0c 02 10 05"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field vlan_vid after pop_vlan",
            add_instr_over(
                TAGGED,
                &apply(&[hex("00 12 00 08 00 00 00 00"), set_field("80 00 0c 02 10 05")].concat()),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field vlan_pcp on a match of OFPVID_NONE",
            add_instr_over("80 00 0c 02 00 00", &apply(&set_field("80 00 0e 01 03"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field vlan_vid before push_vlan",
            add_instr(&apply(
                &[set_field("80 00 0c 02 10 05"), hex("00 11 00 08 81 00 00 00")].concat(),
            )),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field ipv4_dst after push_mpls",
            add_instr_over(
                "80 00 0a 02 08 00",
                &apply(&[hex("00 13 00 08 88 47 00 00"), set_field("80 00 18 04 0a 00 00 01")].concat()),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field mpls_label after pop_mpls",
            add_instr_over(
                "80 00 0a 02 88 47",
                &apply(&[hex("00 14 00 08 08 00 00 00"), set_field("80 00 44 04 00 00 00 05")].concat()),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "write-actions set vlan_vid after apply-actions pop_vlan",
            add_instr_over(
                TAGGED,
                &[
                    write(&set_field("80 00 0c 02 10 05")),
                    apply(&hex("00 12 00 08 00 00 00 00")),
                ]
                .concat(),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "write-actions pop_vlan after set vlan_vid (the pop runs first)",
            add_instr_over(
                TAGGED,
                &write(&[set_field("80 00 0c 02 10 05"), hex("00 12 00 08 00 00 00 00")].concat()),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field arp_op over IPv4",
            add_instr_over("80 00 0a 02 08 00", &apply(&set_field("80 00 2a 02 00 01"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field icmpv4_type over TCP",
            add_instr_over(TCP_PREREQS, &apply(&set_field("80 00 26 01 08"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field ipv6_nd_sll on an advertisement",
            add_instr_over(
                "80 00 0a 02 86 dd  80 00 14 01 3a  80 00 3a 01 88",
                &apply(&set_field("80 00 40 06 02 00 00 00 00 01")),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field vlan_vid 0x2005",
            add_instr_over(TAGGED, &apply(&set_field("80 00 0c 02 20 05"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field vlan_pcp 8",
            add_instr_over(TAGGED, &apply(&set_field("80 00 0e 01 08"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field ip_dscp 64",
            add_instr_over("80 00 0a 02 08 00", &apply(&set_field("80 00 10 01 40"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field ip_ecn 4",
            add_instr_over("80 00 0a 02 08 00", &apply(&set_field("80 00 12 01 04"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field ipv6_flabel of 21 bits",
            add_instr_over("80 00 0a 02 86 dd", &apply(&set_field("80 00 38 04 00 10 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field mpls_label of 21 bits",
            add_instr_over("80 00 0a 02 88 47", &apply(&set_field("80 00 44 04 00 10 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field mpls_tc 8",
            add_instr_over("80 00 0a 02 88 47", &apply(&set_field("80 00 46 01 08"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field mpls_bos 2",
            add_instr_over("80 00 0a 02 88 47", &apply(&set_field("80 00 48 01 02"))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field in_port",
            add_instr(&apply(&set_field("80 00 00 04 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field in_phy_port",
            add_instr(&apply(&set_field("80 00 02 04 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field metadata",
            add_instr(&apply(&set_field("80 00 04 08 00 00 00 00 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field eth_type",
            add_instr(&apply(&set_field("80 00 0a 02 08 00"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field ip_proto",
            add_instr_over("80 00 0a 02 08 00", &apply(&set_field("80 00 14 01 06"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field pbb_isid",
            add_instr(&apply(&set_field("80 00 4a 03 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field ipv6_exthdr",
            add_instr(&apply(&set_field("80 00 4e 02 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field vlan_pcp of 2 bytes",
            add_instr_over(TAGGED, &apply(&set_field("80 00 0e 02 00 03"))),
            BAD_ACTION,
            ofpbac::BAD_SET_LEN,
        ),
        (
            "set_field tunnel_id of 4 bytes",
            add_instr(&apply(&set_field("80 00 4c 04 00 00 00 01"))),
            BAD_ACTION,
            ofpbac::BAD_SET_LEN,
        ),
        (
            "set_field Nicira class",
            add_instr(&apply(&hex("00 19 00 10 00 01 00 04 00 00 00 01 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_SET_TYPE,
        ),
        (
            "set_field eth_dst of 4 bytes",
            add_instr(&apply(&hex("00 19 00 10 80 00 06 04 02 00 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_SET_LEN,
        ),
        (
            "set_field value past the action",
            add_instr(&apply(&hex("00 19 00 08 80 00 06 06"))),
            BAD_ACTION,
            ofpbac::BAD_SET_LEN,
        ),
        (
            "set_field with a mask",
            add_instr(&apply(&hex(
                "00 19 00 18 80 00 07 0c 02 00 00 00 00 01 ff ff ff ff ff ff 00 00 00 00",
            ))),
            BAD_ACTION,
            ofpbac::BAD_SET_ARGUMENT,
        ),
        (
            "set_field tcp_dst without ip_proto",
            add_instr(&apply(&hex("00 19 00 10 80 00 1c 02 00 50 00 00 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        (
            "set_field ipv4_src over IPv6",
            flow_mod(
                0,
                0,
                0,
                &oxm_match(&hex("80 00 0a 02 86 dd")),
                &apply(&hex("00 19 00 10 80 00 16 04 0a 00 00 01 00 00 00 00")),
            ),
            BAD_ACTION,
            ofpbac::MATCH_INCONSISTENT,
        ),
        // GROUP_MOD.
        (
            "group mod cut",
            msg(V, ofpt::GROUP_MOD, 1, &[0, 0, 1, 0]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group mod command 3",
            group_mod(3, ofpgt::ALL, 1, &[]),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_COMMAND,
        ),
        (
            "group mod type 4",
            group_mod(ofpgc::ADD, 4, 1, &[]),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_TYPE,
        ),
        (
            "group add of OFPG_ALL",
            group_mod(ofpgc::ADD, ofpgt::ALL, OFPG_ALL, &[]),
            GROUP_MOD_FAILED,
            ofpgmfc::INVALID_GROUP,
        ),
        (
            "group modify of a reserved id",
            group_mod(ofpgc::MODIFY, ofpgt::ALL, OFPG_MAX + 1, &[]),
            GROUP_MOD_FAILED,
            ofpgmfc::INVALID_GROUP,
        ),
        (
            "group delete of OFPG_ANY",
            group_mod(ofpgc::DELETE, ofpgt::ALL, OFPG_ANY, &[]),
            GROUP_MOD_FAILED,
            ofpgmfc::INVALID_GROUP,
        ),
        (
            "indirect group of two buckets",
            group_mod(
                ofpgc::ADD,
                ofpgt::INDIRECT,
                1,
                &[bucket(&output(1)), bucket(&output(2))].concat(),
            ),
            GROUP_MOD_FAILED,
            ofpgmfc::INVALID_GROUP,
        ),
        (
            "bucket of length 8",
            group_mod(ofpgc::ADD, ofpgt::ALL, 1, &bucket_of_len(8, &[])[..8]),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_BUCKET,
        ),
        (
            "bucket of length 20",
            group_mod(ofpgc::ADD, ofpgt::ALL, 1, &bucket_of_len(20, &[0; 4])),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_BUCKET,
        ),
        (
            "bucket past the message",
            group_mod(ofpgc::ADD, ofpgt::ALL, 1, &bucket_of_len(48, &output(1))),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_BUCKET,
        ),
        (
            "bucket cut in its length",
            group_mod(ofpgc::ADD, ofpgt::ALL, 1, &[0]),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_BUCKET,
        ),
        (
            "bucket with a PBB action",
            group_mod(ofpgc::ADD, ofpgt::ALL, 1, &bucket(&hex("00 1b 00 08 00 00 00 00"))),
            BAD_ACTION,
            ofpbac::BAD_TYPE,
        ),
        (
            "bucket action past the bucket",
            group_mod(
                ofpgc::ADD,
                ofpgt::ALL,
                1,
                &bucket(&hex("00 00 00 18 00 00 00 01 00 00 00 00 00 00 00 00")),
            ),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "bucket output to port 0",
            group_mod(ofpgc::ADD, ofpgt::SELECT, 1, &bucket(&output(0))),
            BAD_ACTION,
            ofpbac::BAD_OUT_PORT,
        ),
        // METER_MOD.
        (
            "meter mod cut",
            msg(V, ofpt::METER_MOD, 1, &[0, 0, 0, 1, 0, 0]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter mod command 3",
            meter_mod(3, ofpmf::KBPS, 1, &[]),
            METER_MOD_FAILED,
            ofpmmfc::BAD_COMMAND,
        ),
        (
            "meter mod flag 0x10",
            meter_mod(ofpmc::ADD, 0x10, 1, &[]),
            METER_MOD_FAILED,
            ofpmmfc::BAD_FLAGS,
        ),
        (
            "meter in kb/s and packets/s",
            meter_mod(ofpmc::ADD, ofpmf::KBPS | ofpmf::PKTPS, 1, &[]),
            METER_MOD_FAILED,
            ofpmmfc::BAD_FLAGS,
        ),
        (
            "meter 0",
            meter_mod(ofpmc::ADD, ofpmf::KBPS, 0, &[]),
            METER_MOD_FAILED,
            ofpmmfc::INVALID_METER,
        ),
        (
            "meter add of OFPM_ALL",
            meter_mod(ofpmc::ADD, ofpmf::KBPS, OFPM_ALL, &[]),
            METER_MOD_FAILED,
            ofpmmfc::INVALID_METER,
        ),
        (
            "meter modify of a reserved id",
            meter_mod(ofpmc::MODIFY, ofpmf::KBPS, OFPM_MAX + 1, &[]),
            METER_MOD_FAILED,
            ofpmmfc::INVALID_METER,
        ),
        (
            "experimenter band",
            meter_mod(
                ofpmc::ADD,
                ofpmf::KBPS,
                1,
                &hex("ff ff 00 10 00 00 03 e8 00 00 00 64 00 00 23 20"),
            ),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "band type 3",
            meter_mod(
                ofpmc::ADD,
                ofpmf::KBPS,
                1,
                &hex("00 03 00 10 00 00 03 e8 00 00 00 64 00 00 00 00"),
            ),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "band of length 8",
            meter_mod(ofpmc::ADD, ofpmf::KBPS, 1, &hex("00 01 00 08 00 00 03 e8")),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "band of length 24",
            meter_mod(
                ofpmc::ADD,
                ofpmf::KBPS,
                1,
                &hex(&format!(
                    "00 01 00 18 00 00 03 e8 00 00 00 64 00 00 00 00 {}",
                    "00 ".repeat(8)
                )),
            ),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "band cut",
            meter_mod(ofpmc::ADD, ofpmf::KBPS, 1, &hex(&DROP_BAND[..36])),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "second band cut in its header",
            meter_mod(ofpmc::ADD, ofpmf::KBPS, 1, &hex(&format!("{DROP_BAND} 00 01"))),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        // PACKET_OUT.
        (
            "packet out actions_len past the end",
            packet_out(ofpp::CONTROLLER, 32, &output(1)),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "packet out actions_len mid-action",
            packet_out(ofpp::CONTROLLER, 8, &output(1)),
            BAD_ACTION,
            ofpbac::BAD_LEN,
        ),
        (
            "packet out from FLOOD",
            packet_out(ofpp::FLOOD, 0, &[]),
            BAD_REQUEST,
            ofpbrc::BAD_PORT,
        ),
        (
            "packet out from port 0",
            packet_out(0, 0, &[]),
            BAD_REQUEST,
            ofpbrc::BAD_PORT,
        ),
        (
            "packet out bad action",
            packet_out(1, 8, &hex("00 1b 00 08 00 00 00 00")),
            BAD_ACTION,
            ofpbac::BAD_TYPE,
        ),
        // MULTIPART.
        (
            "multipart cut header",
            msg(V, ofpt::MULTIPART_REQUEST, 1, &[0, 0, 0]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group stats request cut",
            multipart(ofpmp::GROUP, &[0; 4]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group stats request too long",
            multipart(ofpmp::GROUP, &[0; 16]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group desc request with a body",
            multipart(ofpmp::GROUP_DESC, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group features request with a body",
            multipart(ofpmp::GROUP_FEATURES, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter stats request cut",
            multipart(ofpmp::METER, &[0; 4]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter config request of 12 bytes",
            multipart(ofpmp::METER_CONFIG, &[0; 12]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter features request with a body",
            multipart(ofpmp::METER_FEATURES, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group stats entry of 48 bytes",
            multipart_reply(ofpmp::GROUP, &[&hex("00 30")[..], &[0; 46]].concat()),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group stats entry past the reply",
            multipart_reply(ofpmp::GROUP, &[&hex("00 38")[..], &[0; 38]].concat()),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group desc entry of 4 bytes",
            multipart_reply(ofpmp::GROUP_DESC, &hex("00 04 00 00 00 00 00 01")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group desc of an unknown type",
            multipart_reply(ofpmp::GROUP_DESC, &hex("00 08 07 00 00 00 00 01")),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_TYPE,
        ),
        (
            "group desc bucket of length 8",
            multipart_reply(
                ofpmp::GROUP_DESC,
                &[hex("00 18 00 00 00 00 00 01"), bucket_of_len(8, &[])].concat(),
            ),
            GROUP_MOD_FAILED,
            ofpgmfc::BAD_BUCKET,
        ),
        (
            "group features of 36 bytes",
            multipart_reply(ofpmp::GROUP_FEATURES, &[0; 36]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "group features of 48 bytes",
            multipart_reply(ofpmp::GROUP_FEATURES, &[0; 48]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter stats entry of 44 bytes",
            multipart_reply(ofpmp::METER, &[&hex("00 00 00 01 00 2c")[..], &[0; 38]].concat()),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter stats cut before its length",
            multipart_reply(ofpmp::METER, &hex("00 00 00 01 00")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter config entry of 6 bytes",
            multipart_reply(ofpmp::METER_CONFIG, &hex("00 06 00 00 00 00 00 01")),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "meter config of an experimenter band",
            multipart_reply(
                ofpmp::METER_CONFIG,
                &hex("00 18 00 01 00 00 00 01  ff ff 00 10 00 00 00 01 00 00 00 02 00 00 00 00"),
            ),
            METER_MOD_FAILED,
            ofpmmfc::BAD_BAND,
        ),
        (
            "meter features of 20 bytes",
            multipart_reply(ofpmp::METER_FEATURES, &[0; 20]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "multipart queue stats",
            multipart(ofpmp::QUEUE, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_MULTIPART,
        ),
        (
            "setting table features",
            multipart(ofpmp::TABLE_FEATURES, &[0; 64]),
            TABLE_FEATURES_FAILED,
            ofptffc::EPERM,
        ),
        (
            "table features reply entry under 64",
            {
                let mut b = ofpmp::TABLE_FEATURES.to_be_bytes().to_vec();
                b.extend_from_slice(&[0; 6]);
                b.extend_from_slice(&hex("00 38"));
                b.extend_from_slice(&[0; 54]);
                msg(V, ofpt::MULTIPART_REPLY, 1, &b)
            },
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "table features property past its entry",
            {
                let mut b = ofpmp::TABLE_FEATURES.to_be_bytes().to_vec();
                b.extend_from_slice(&[0; 6]);
                b.extend_from_slice(&hex("00 48"));
                b.extend_from_slice(&[0; 62]);
                b.extend_from_slice(&hex("00 02 00 10 01 02 03 04"));
                msg(V, ofpt::MULTIPART_REPLY, 1, &b)
            },
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "multipart type 99",
            multipart(99, &[]),
            BAD_REQUEST,
            ofpbrc::BAD_MULTIPART,
        ),
        (
            "multipart experimenter",
            multipart(ofpmp::EXPERIMENTER, &[0; 8]),
            BAD_REQUEST,
            ofpbrc::BAD_EXPERIMENTER,
        ),
        (
            "desc request with a body",
            multipart(ofpmp::DESC, &[0; 4]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "port stats request cut",
            multipart(ofpmp::PORT_STATS, &[0; 4]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "flow stats request cut",
            multipart(ofpmp::FLOW, &[0; 20]),
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "flow stats request bad match",
            multipart(
                ofpmp::FLOW,
                &[&[0; 32][..], &oxm_match(&hex("80 00 14 01 06"))].concat(),
            ),
            BAD_MATCH,
            ofpbmc::BAD_PREREQ,
        ),
        (
            "flow stats reply entry too short",
            {
                let mut b = ofpmp::FLOW.to_be_bytes().to_vec();
                b.extend_from_slice(&[0; 6]);
                b.extend_from_slice(&hex("00 10"));
                b.extend_from_slice(&[0; 14]);
                msg(V, ofpt::MULTIPART_REPLY, 1, &b)
            },
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
        (
            "port desc reply of 63 bytes",
            {
                let mut b = ofpmp::PORT_DESC.to_be_bytes().to_vec();
                b.extend_from_slice(&[0; 6]);
                b.extend_from_slice(&[0; 63]);
                msg(V, ofpt::MULTIPART_REPLY, 1, &b)
            },
            BAD_REQUEST,
            ofpbrc::BAD_LEN,
        ),
    ]
}

#[test]
fn every_malformed_message_gets_its_error() {
    let mut failures = Vec::new();
    for (name, bytes, ty, code) in cases() {
        match Message::decode(&bytes) {
            Ok(m) => failures.push(format!("{name}: decoded as {m:?}")),
            Err(e) if (e.kind.ty, e.kind.code) != (ty, code) => {
                failures.push(format!(
                    "{name}: got ({}, {}) \"{}\", want ({ty}, {code})",
                    e.kind.ty, e.kind.code, e.message
                ));
            }
            Err(e) => {
                assert!(!e.message.is_empty(), "{name}: empty message");
                // The reply the switch sends names the same pair and echoes the xid.
                let (xid, reply) = Message::decode(&error_reply(&bytes, &e)).expect("the reply decodes");
                let Message::Error(reply) = reply else {
                    panic!("{name}: reply is not an ERROR")
                };
                assert_eq!((reply.ty, reply.code), (ty, code), "{name}");
                assert_eq!(xid, if bytes.len() >= 8 { 1 } else { 0 }, "{name}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n")
    );
}

/// The valid neighbours of some cases decode, so the table tests what it says it does.
#[test]
fn near_misses_are_valid() {
    for (name, bytes) in [
        ("tcp over IPv4", add(&hex(&format!("{TCP_PREREQS} 80 00 1a 02 00 50")))),
        ("vlan none", add(&hex("80 00 0c 02 00 00"))),
        ("vlan any tag", add(&hex("80 00 0d 04 10 00 10 00"))),
        ("delete from OFPTT_ALL", flow_mod(3, OFPTT_ALL, 0, &oxm_match(&[]), &[])),
        (
            "delete ignores its instructions",
            flow_mod(
                3,
                5,
                0,
                &oxm_match(&[]),
                &apply(&hex("00 19 00 10 80 00 1c 02 00 50 00 00 00 00 00 00")),
            ),
        ),
        (
            "delete ignores a backward goto",
            flow_mod(4, 5, 0, &oxm_match(&[]), &hex("00 01 00 08 01 00 00 00")),
        ),
        (
            "goto forward",
            flow_mod(0, 3, 0, &oxm_match(&[]), &hex("00 01 00 08 04 00 00 00")),
        ),
        ("output to controller", add_instr(&apply(&output(ofpp::CONTROLLER)))),
        (
            "set_field tcp_dst over TCP",
            flow_mod(
                0,
                0,
                0,
                &oxm_match(&hex(TCP_PREREQS)),
                &apply(&hex("00 19 00 10 80 00 1c 02 00 50 00 00 00 00 00 00")),
            ),
        ),
        (
            "set_field eth_dst anywhere",
            add_instr(&apply(&hex("00 19 00 10 80 00 06 06 02 00 00 00 00 01 00 00"))),
        ),
        (
            "set_field tcp_dst in a PACKET_OUT",
            packet_out(
                ofpp::CONTROLLER,
                16,
                &hex("00 19 00 10 80 00 1c 02 00 50 00 00 00 00 00 00"),
            ),
        ),
        (
            "packet out from controller",
            packet_out(ofpp::CONTROLLER, 16, &output(ofpp::TABLE)),
        ),
        ("packet out from any", packet_out(ofpp::ANY, 0, &[])),
        ("meter instruction", add_instr(&hex("00 06 00 08 00 00 00 01"))),
        (
            "write_metadata",
            add_instr(&hex("00 02 00 18 00000000 0000000000000001 ffffffffffffffff")),
        ),
        ("pop_vlan anywhere", add_instr(&apply(&hex("00 12 00 08 00 00 00 00")))),
        ("group action", add_instr(&apply(&hex("00 16 00 08 ff ff ff 00")))),
        ("set_queue", add_instr(&apply(&hex("00 15 00 08 ff ff ff ff")))),
        (
            "copy_ttl_in anywhere",
            add_instr(&apply(&hex("00 0c 00 08 00 00 00 00"))),
        ),
        (
            "set_field vlan_vid after push_vlan",
            add_instr(&apply(
                &[hex("00 11 00 08 88 a8 00 00"), set_field("80 00 0c 02 10 05")].concat(),
            )),
        ),
        (
            "set_field vlan_vid without OFPVID_PRESENT",
            add_instr_over(TAGGED, &apply(&set_field("80 00 0c 02 00 05"))),
        ),
        (
            "write-actions set vlan_vid after apply-actions push_vlan",
            add_instr(
                &[
                    write(&set_field("80 00 0c 02 10 05")),
                    apply(&hex("00 11 00 08 81 00 00 00")),
                ]
                .concat(),
            ),
        ),
        (
            "write-actions set vlan_vid before push_vlan (the set runs after the push)",
            add_instr(&write(
                &[set_field("80 00 0c 02 10 05"), hex("00 11 00 08 81 00 00 00")].concat(),
            )),
        ),
        (
            "set_field mpls_label after push_mpls",
            add_instr(&apply(
                &[hex("00 13 00 08 88 48 00 00"), set_field("80 00 44 04 00 0f ff ff")].concat(),
            )),
        ),
        (
            "set_field ipv4_dst after pop_mpls",
            add_instr_over(
                "80 00 0a 02 88 47",
                &apply(&[hex("00 14 00 08 08 00 00 00"), set_field("80 00 18 04 0a 00 00 01")].concat()),
            ),
        ),
        (
            "set_field ipv6_nd_tll on an advertisement",
            add_instr_over(
                "80 00 0a 02 86 dd  80 00 14 01 3a  80 00 3a 01 88",
                &apply(&set_field("80 00 42 06 02 00 00 00 00 01")),
            ),
        ),
        (
            "group delete of OFPG_ALL",
            group_mod(ofpgc::DELETE, ofpgt::ALL, OFPG_ALL, &[]),
        ),
        (
            "indirect group delete with two buckets",
            group_mod(
                ofpgc::DELETE,
                ofpgt::INDIRECT,
                1,
                &[bucket(&output(1)), bucket(&output(2))].concat(),
            ),
        ),
        (
            "select group of a bucket",
            group_mod(ofpgc::ADD, ofpgt::SELECT, OFPG_MAX, &bucket(&output(1))),
        ),
        ("meter delete of OFPM_ALL", meter_mod(ofpmc::DELETE, 0, OFPM_ALL, &[])),
        (
            "meter of the controller",
            meter_mod(ofpmc::ADD, ofpmf::PKTPS, OFPM_CONTROLLER, &hex(DROP_BAND)),
        ),
        ("meter without rate unit", meter_mod(ofpmc::ADD, 0, 1, &hex(DROP_BAND))),
        (
            "group stats request",
            multipart(ofpmp::GROUP, &[0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0]),
        ),
        ("meter features request", multipart(ofpmp::METER_FEATURES, &[])),
    ] {
        assert!(Message::decode(&bytes).is_ok(), "{name}: {:?}", Message::decode(&bytes));
    }
}
