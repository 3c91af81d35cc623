//! Interop: what the switch sends must be what Open vSwitch's own decoder reads.
//! `ovs-ofctl ofp-print HEX` decodes one message with OVS's OpenFlow library and marks
//! any problem with `***` (decode error, leftover bytes). Fails, naming what is missing,
//! where `ovs-ofctl` is not installed (Debian: `openvswitch-common`).

use std::process::Command;

use onvm_openflow::*;

mod common;
use common::{controller_samples, onvm_table, samples, to_hex};

#[test]
fn ovs_reads_what_the_switch_sends() {
    if !common::have_ovs_ofctl() {
        return;
    }
    let mut failures = Vec::new();
    for (m, want) in samples() {
        let bytes = m.encode(0x77).unwrap();
        let hex = to_hex(&bytes);
        let out = Command::new("ovs-ofctl")
            .args(["ofp-print", &hex])
            .output()
            .expect("runs ovs-ofctl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("***") || !text.contains(want) {
            failures.push(format!("{:?} (want {want:?}):\n{text}", type_name(m.ty())));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a controller sends to use groups, meters and the newer actions and
/// instructions, encoded here, reads in Open vSwitch as meant (and comes back from our
/// decoder the same).
#[test]
fn ovs_reads_group_meter_and_pipeline_mods() {
    if !common::have_ovs_ofctl() {
        return;
    }
    let mut failures = Vec::new();
    for (m, want) in controller_samples() {
        let bytes = m.encode(0x77).unwrap();
        assert_eq!(Message::decode(&bytes), Ok((0x77, m.clone())));
        let out = Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "ofp-print", &to_hex(&bytes)])
            .output()
            .expect("runs ovs-ofctl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || text.contains("***") || !text.contains(want) {
            failures.push(format!("{:?} (want {want:?}):\n{text}", type_name(m.ty())));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `ovs-ofctl` asks for table features before add-flow; OVS must find all it requires.
#[test]
fn ovs_reads_our_table_features() {
    if !common::have_ovs_ofctl() {
        return;
    }
    let m = Message::MultipartReply(MultipartReply {
        flags: 0,
        body: MultipartReplyBody::TableFeatures((0..4).map(|t| onvm_table(t, 4)).collect()),
    });
    let (_, back) = Message::decode(&m.encode(1).unwrap()).unwrap();
    assert_eq!(back, m);
    let hex = to_hex(&m.encode(1).unwrap());
    let out = Command::new("ovs-ofctl")
        .args(["ofp-print", &hex])
        .output()
        .expect("runs ovs-ofctl");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && !stdout.contains("***") && stderr.is_empty(),
        "{stdout}{stderr}"
    );
    for want in [
        "table 0 (\"table0\")",
        "next tables: 1-3",
        "instructions: meter apply_actions clear_actions write_actions write_metadata goto_table",
        "actions: output group set_field strip_vlan push_vlan mod_nw_ttl dec_ttl set_mpls_ttl dec_mpls_ttl push_mpls \
         pop_mpls",
        "Set-Field: eth_{src,dst} vlan_{vid,pcp} mpls_{label,tc,bos} ip_{src,dst} ipv6_{src,dst,label} ip_dscp nw_ecn \
         arp_{op,spa,tpa,sha,tha} tcp_{src,dst} udp_{src,dst} sctp_{src,dst} icmp_{type,code} icmpv6_{type,code} \
         nd_{target,sll,tll}",
        "metadata: match=0xffffffffffffffff write=0",
        "arbitrary mask: tun_id metadata eth_{src,dst} vlan_vid ip_{src,dst} ipv6_{src,dst,label} arp_{spa,tpa,sha,tha}",
        "exact match or wildcard: in_port_oxm eth_type vlan_pcp mpls_{label,tc,bos} nw_proto ip_dscp nw_ecn arp_op \
         tcp_{src,dst} udp_{src,dst} sctp_{src,dst} icmp_{type,code} icmpv6_{type,code} nd_{target,sll,tll}",
        "max_entries=65536",
    ] {
        assert!(stdout.contains(want), "no {want:?} in:\n{stdout}");
    }
}
