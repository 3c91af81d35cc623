//! Flow stats read back what a controller installed: `ovs-ofctl -O OpenFlow13`
//! adds rules spelled in ways onvm carries out alike (FLOOD and ALL, write-actions at
//! the end of a rule and apply-actions) and dump-flows shows each as it was written,
//! also after a mod-flows respells one.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`); scripts/test.sh installs it. Without
//! it the test fails, naming what is missing (onvm-testkit; `ONVM_ALLOW_SKIP=1` skips).

mod common;

use common::openflow::{have_ovs_ofctl, listen_addr, ofctl_ok, start_pcap_mgr};
use common::{TempDir, distinct_udp_frames, stop_cleanly};

/// The `actions=` of the flow line of `dump` that contains `what`.
fn actions_of<'d>(dump: &'d str, what: &str) -> &'d str {
    let line = dump
        .lines()
        .find(|l| l.contains("cookie=") && l.contains(what))
        .unwrap_or_else(|| panic!("no flow with {what:?}:\n{dump}"));
    line.split("actions=").nth(1).unwrap_or_default().trim()
}

#[test]
fn dump_flows_shows_flood_and_write_actions_as_installed() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-readback");
    let frames = distinct_udp_frames(4, 2);
    let mut mgr = start_pcap_mgr(&dir, &frames, 1, &["--openflow-listen", "ptcp:0:127.0.0.1"]);
    let sw = listen_addr(&mgr);

    ofctl_ok("add-flow", &sw, &["priority=10,in_port=1,actions=FLOOD"]);
    ofctl_ok("add-flow", &sw, &["priority=11,in_port=1,udp,actions=ALL"]);
    ofctl_ok(
        "add-flow",
        &sw,
        &["priority=12,in_port=2,actions=write_actions(output:1)"],
    );
    ofctl_ok(
        "add-flow",
        &sw,
        &["priority=13,in_port=2,tcp,actions=mod_tp_dst:80,FLOOD,write_actions(FLOOD,output:1)"],
    );
    let dump = ofctl_ok("dump-flows", &sw, &[]);
    assert_eq!(actions_of(&dump, "priority=10,"), "FLOOD", "{dump}");
    assert_eq!(actions_of(&dump, "priority=11,"), "ALL", "{dump}");
    assert_eq!(actions_of(&dump, "priority=12,"), "write_actions(output:1)", "{dump}");
    assert_eq!(
        actions_of(&dump, "priority=13,"),
        "set_field:80->tcp_dst,FLOOD,write_actions(FLOOD,output:1)",
        "{dump}"
    );

    // A modify respells: apply-actions and ALL now, FLOOD in write-actions later.
    ofctl_ok("mod-flows", &sw, &["in_port=1,actions=ALL"]);
    ofctl_ok("mod-flows", &sw, &["in_port=2,actions=write_actions(FLOOD)"]);
    let dump = ofctl_ok("dump-flows", &sw, &[]);
    assert_eq!(actions_of(&dump, "priority=10,"), "ALL", "{dump}");
    assert_eq!(actions_of(&dump, "priority=11,"), "ALL", "{dump}");
    assert_eq!(actions_of(&dump, "priority=12,"), "write_actions(FLOOD)", "{dump}");
    assert_eq!(actions_of(&dump, "priority=13,"), "write_actions(FLOOD)", "{dump}");

    stop_cleanly(&mut mgr);
}
