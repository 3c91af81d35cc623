//! Flow stats read back what a controller installed: `ovs-ofctl -O OpenFlow13`
//! adds rules spelled in ways onvm carries out alike (FLOOD and ALL, write-actions at
//! the end of a rule and apply-actions) and dump-flows shows each as it was written,
//! also after a mod-flows respells one.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`); scripts/test.sh installs it. Without
//! it the test fails, naming what is missing (onvm-testkit; `ONVM_ALLOW_SKIP=1` skips).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{Proc, SOON, TempDir, distinct_udp_frames, stop_cleanly, wait_for, write_pcap};

/// Fails the test without `ovs-ofctl` (`false` only with ONVM_ALLOW_SKIP=1: return).
#[must_use]
#[track_caller]
fn have_ovs_ofctl() -> bool {
    onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common")
}

/// `onvm mgr` with a pcap input (port 1) and output (port 2) that receives nothing
/// until an NF runs (none does), listening for OpenFlow on a free local port.
fn start_mgr(dir: &TempDir) -> Proc {
    let input = dir.join("in.pcap");
    write_pcap(&input, &distinct_udp_frames(4, 2), Duration::from_secs(1_700_000_000));
    let (pcap, pcapout) = (
        format!("pcap:{}", input.display()),
        format!("pcapout:{}", dir.join("out.pcap").display()),
    );
    let mut cmd = common::onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket"])
        .arg(dir.socket())
        .args(["-p", &pcap, "-p", &pcapout, "--wait-for-nfs", "1"])
        .args(["--openflow-listen", "ptcp:0:127.0.0.1"]);
    let mut p = Proc::spawn("onvm mgr", cmd);
    let up = wait_for(SOON, || dir.socket().exists() || p.exited());
    assert!(up && dir.socket().exists(), "the manager did not start\n{}", p.output());
    p
}

/// Where the manager's OpenFlow listener is (asked for as port 0).
fn listen_addr(mgr: &Proc) -> String {
    let (_, line) = mgr
        .stderr
        .wait(SOON, |l| l.contains("openflow: listening on "))
        .unwrap_or_else(|| panic!("no OpenFlow listener\n{}", mgr.output()));
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    format!("tcp:{addr}")
}

/// `ovs-ofctl -O OpenFlow13 --no-names CMD TARGET ARGS`, which must succeed: its output.
fn ofctl_ok(cmd: &str, target: &str, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .args(["10", "ovs-ofctl", "-O", "OpenFlow13", "--no-names", cmd, target])
        .args(args)
        .output()
        .expect("run ovs-ofctl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "ovs-ofctl {cmd} {args:?} failed:\n{text}");
    text
}

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
    let mut mgr = start_mgr(&dir);
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
