//! Kernel ports end to end, inside a network namespace this test creates and removes:
//! tcpreplay sends a capture into an interface, `onvm up` (manager and two NF
//! processes, run inside the namespace) receives it on a kernel port, passes it
//! through the chain and sends it out of a second port, and tcpdump's capture on the
//! far side must hold exactly the packets that went in, byte for byte, in order.
//! One test per backend: AF_PACKET and AF_XDP on veth pairs, TAP on TAP devices.
//!
//! Needs root, `ip`, tcpreplay and tcpdump (scripts/test.sh installs them); without
//! them each test fails, naming what is missing (`ONVM_ALLOW_SKIP=1` skips instead).

mod common;

use std::time::Duration;

use common::netns::{Netns, can_run, capture, whole_records};
use common::{Proc, SOON, TempDir, assert_conserved, read_pcap, udp_frames_up_to, wait_for, write_pcap};

const PACKETS: usize = 300;

fn config(dir: &TempDir, input: &str, output: &str) -> std::path::PathBuf {
    let text = format!(
        r#"[manager]
socket = {socket:?}
ports = [{input:?}, {output:?}]
shared_cores = true

[services]
a = 1
b = 2

[[nfs]]
name = "basic_monitor"
service = "a"

[[nfs]]
name = "simple_forward"
service = "b"

[[chains]]
name = "through"
chain = ["a", "b", "out:1"]
in_port = 0
"#,
        socket = dir.socket().display().to_string(),
    );
    dir.write("chain.toml", &text)
}

/// The whole scenario: `ports` (input, output) of the manager, `inject` and `sniff` the
/// interfaces tcpreplay and tcpdump use; `setup` creates what must exist before the
/// manager starts.
fn run(kind: &str, ports: (&str, &str), inject: &str, sniff: &str, setup: impl FnOnce(&Netns)) {
    run_with(kind, ports, (inject, sniff), 1514, &[], setup);
}

/// [`run`] between two veth pairs: the manager's ports on `in0` and `out0`, tcpreplay on
/// `in1`, tcpdump on `out1`.
fn run_on_veths(kind: &str, ports: (&str, &str)) {
    run(kind, ports, "in1", "out1", |ns| {
        ns.veth("in0", "in1");
        ns.veth("out0", "out1");
    });
}

/// [`run`] with frames up to `max_len` bytes and extra `onvm up` arguments.
fn run_with(
    kind: &str,
    ports: (&str, &str),
    (inject, sniff): (&str, &str),
    max_len: usize,
    extra: &[&str],
    setup: impl FnOnce(&Netns),
) {
    if !can_run() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new(kind);
    let ns = Netns::create(kind);
    setup(&ns);
    let input = udp_frames_up_to(PACKETS, 29, max_len);
    let in_pcap = dir.join("in.pcap");
    write_pcap(&in_pcap, &input, Duration::from_secs(1_700_000_000));
    let cfg = config(&dir, ports.0, ports.1);

    let mut up_cmd = ns.command(env!("CARGO_BIN_EXE_onvm"));
    up_cmd
        .arg("up")
        .arg(&cfg)
        .args(["--stats", "off", "--buffers", "8191"])
        .args(extra);
    let mut up = Proc::spawn("onvm up", up_cmd);
    assert!(
        up.stderr.wait(SOON, |l| l.contains("ports receiving")).is_some(),
        "the manager did not start receiving\n{}",
        up.output()
    );
    let port_lines: Vec<String> = up
        .stderr
        .text()
        .lines()
        .filter(|l| l.contains("port "))
        .map(String::from)
        .collect();
    eprintln!("{kind}: {port_lines:?}");

    let cap_path = dir.join("cap.pcap");
    let mut dump = capture(&ns, sniff, &cap_path);
    let mut replay = ns.command("tcpreplay");
    replay.args(["-i", inject, "--pps", "20000"]).arg(&in_pcap);
    let mut replay = Proc::spawn("tcpreplay", replay);
    assert_eq!(replay.exit_code(SOON), 0, "tcpreplay failed\n{}", replay.output());

    let got_all = wait_for(Duration::from_secs(10), || whole_records(&cap_path) >= PACKETS);
    up.signal("TERM");
    let code = up.exit_code(SOON);
    dump.signal("INT");
    dump.wait_exit(SOON);
    assert_eq!(code, 0, "onvm up failed\n{}", up.output());
    assert_conserved(&up);
    let out = read_pcap(&cap_path);
    assert!(
        got_all && out.len() == PACKETS,
        "{kind}: captured {} of {PACKETS} packets\n{}",
        out.len(),
        up.output()
    );
    if out != input {
        let first = out.iter().zip(&input).position(|(o, e)| o != e).unwrap_or(0);
        let (mut a, mut b) = (out.clone(), input.clone());
        a.sort();
        b.sort();
        let what = if a == b {
            let pos = input.iter().position(|e| *e == out[first]);
            format!("the same packets in another order: capture {first} is input {pos:?}")
        } else {
            format!("other bytes than were sent, first at packet {first}")
        };
        panic!("{kind}: {what}\n{}", up.output());
    }
}

#[test]
fn af_packet_ports_carry_a_replay_through_a_chain() {
    run_on_veths("afpacket", ("afpacket:in0", "afpacket:out0"));
}

#[test]
fn af_xdp_ports_carry_a_replay_through_a_chain() {
    run_on_veths("afxdp", ("afxdp:in0", "afxdp:out0"));
}

#[test]
fn tap_ports_carry_a_replay_through_a_chain() {
    // The manager creates both TAP devices; tcpreplay sends out of the kernel's side of
    // one (the port receives it) and tcpdump sees what the port writes to the other.
    run("tap", ("tap:tin", "tap:tout"), "tin", "tout", |_| {});
}

#[test]
fn jumbo_frames_cross_af_packet_ports() {
    run_with(
        "jumbo",
        ("afpacket:in0,mtu=9000", "afpacket:out0,mtu=9000"),
        ("in1", "out1"),
        9014,
        &["--data-room", "9216"],
        |ns| {
            ns.veth("in0", "in1");
            ns.veth("out0", "out1");
            for peer in ["in1", "out1"] {
                ns.ip(&["link", "set", peer, "mtu", "9000"]);
            }
        },
    );
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_af_packet_vdevs_carry_a_replay_through_a_chain() {
    run_on_veths(
        "dpdk-afpacket",
        ("dpdk:net_af_packet0,iface=in0", "dpdk:net_af_packet1,iface=out0"),
    );
}

#[cfg(feature = "dpdk")]
#[test]
fn dpdk_af_xdp_vdevs_carry_a_replay_through_a_chain() {
    run_on_veths(
        "dpdk-afxdp",
        ("dpdk:net_af_xdp0,iface=in0", "dpdk:net_af_xdp1,iface=out0"),
    );
}
