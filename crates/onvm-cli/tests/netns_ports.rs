//! Kernel ports end to end, inside a network namespace this test creates and removes:
//! tcpreplay sends a capture into an interface, `onvm up` (manager and two NF
//! processes, run inside the namespace) receives it on a kernel port, passes it
//! through the chain and sends it out of a second port, and tcpdump's capture on the
//! far side must hold exactly the packets that went in, byte for byte, in order.
//! One test per backend: AF_PACKET and AF_XDP on veth pairs, TAP on TAP devices; the
//! same with VLAN-tagged frames (802.1Q, 802.1ad, QinQ), which must come out with their
//! tags (through DPDK's `net_af_packet` too, which keeps them but for an outer 802.1ad
//! TPID); and a TCP transfer between two namespaces through two AF_PACKET ports with the
//! kernel's offloads left on (partial checksums, super-frames).
//!
//! Needs root, `ip`, tcpreplay and tcpdump (scripts/test.sh installs them), and python3
//! for the TCP test; without them each test fails, naming what is missing
//! (`ONVM_ALLOW_SKIP=1` skips instead).

mod common;

use std::time::Duration;

use common::netns::{Netns, can_run, capture_filtered, start_tcp_transfer, two_hosts, whole_records};
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
    ends: (&str, &str),
    max_len: usize,
    extra: &[&str],
    setup: impl FnOnce(&Netns),
) {
    let input = udp_frames_up_to(PACKETS, 29, max_len);
    run_frames(
        kind,
        ports,
        ends,
        (input.clone(), input, "udp"),
        extra,
        Order::Exact,
        setup,
    );
}

/// `frames` with VLAN tags after the MAC addresses, by index: 802.1Q (VID and PCP
/// varying), 802.1ad, and QinQ (802.1ad outside, 802.1Q inside).
fn tagged(frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let vid = (i % 4094 + 1) as u16;
            let q = (0x8100u16, (((i % 8) as u16) << 13) | vid);
            let ad = (0x88a8u16, vid);
            let tags = match i % 3 {
                0 => vec![q],
                1 => vec![ad],
                _ => vec![ad, (0x8100, 100)],
            };
            let mut v = f[..12].to_vec();
            for (tpid, tci) in tags {
                v.extend_from_slice(&tpid.to_be_bytes());
                v.extend_from_slice(&tci.to_be_bytes());
            }
            v.extend_from_slice(&f[12..]);
            v
        })
        .collect()
}

/// What the input port makes of an outer 802.1ad tag.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OuterTpid {
    /// The frame keeps it, as every port of ours does.
    Kept,
    /// It leaves as an 802.1Q tag (0x8100) with the same TCI: DPDK's `net_af_packet`
    /// hands on the TCI of the tag the kernel took out, not its TPID (onvm-ports'
    /// `dpdk` module doc).
    Becomes8021Q,
}

/// [`run`] with VLAN-tagged frames: they must leave with their tags, byte for byte (but
/// for the outer TPID, as `outer` says).
fn run_tagged(kind: &str, ports: (&str, &str), ends: (&str, &str), outer: OuterTpid, setup: impl FnOnce(&Netns)) {
    // At most 1400 bytes before the tags: a QinQ frame longer than the MTU allows
    // untagged plus one tag is refused by the kernel.
    let input = tagged(udp_frames_up_to(PACKETS, 29, 1400));
    let mut expect = input.clone();
    if outer == OuterTpid::Becomes8021Q {
        for f in &mut expect {
            f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
        }
    }
    run_frames(kind, ports, ends, (input, expect, "vlan"), &[], Order::Exact, setup);
}

/// How the capture must order the packets.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    /// As they went in.
    Exact,
    /// Each flow's (same addresses and ports: untagged IPv4 UDP) as they went in; flows
    /// received on different queues may pass each other, as on any multi-queue NIC.
    PerFlow,
}

/// The packets of each flow of `frames`, in order.
fn flows(frames: &[Vec<u8>]) -> std::collections::BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
    let mut m: std::collections::BTreeMap<Vec<u8>, Vec<Vec<u8>>> = Default::default();
    for f in frames {
        m.entry(f[26..38].to_vec()).or_default().push(f.clone());
    }
    m
}

/// The scenario of [`run`] with these `input` frames, captured with tcpdump `filter`;
/// the capture must be `expect`, in the `order` asked.
fn run_frames(
    kind: &str,
    ports: (&str, &str),
    (inject, sniff): (&str, &str),
    (input, expect, filter): (Vec<Vec<u8>>, Vec<Vec<u8>>, &str),
    extra: &[&str],
    order: Order,
    setup: impl FnOnce(&Netns),
) -> String {
    if !can_run() {
        return String::new();
    }
    let _serial = common::serial();
    let dir = TempDir::new(kind);
    let ns = Netns::create(kind);
    setup(&ns);
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
    let mut dump = capture_filtered(&ns, sniff, &cap_path, filter);
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
    if order == Order::PerFlow && flows(&out) == flows(&expect) {
        return up.stderr.text();
    }
    if out != expect {
        let first = out.iter().zip(&expect).position(|(o, e)| o != e).unwrap_or(0);
        let (mut a, mut b) = (out.clone(), expect.clone());
        a.sort();
        b.sort();
        let what = if a == b {
            let pos = expect.iter().position(|e| *e == out[first]);
            format!("the same packets in another order: capture {first} is input {pos:?}")
        } else {
            format!(
                "other bytes than expected, first at packet {first}: {:02x?}\nexpected {:02x?}",
                out[first], expect[first]
            )
        };
        panic!("{kind}: {what}\n{}", up.output());
    }
    up.stderr.text()
}

#[test]
fn af_packet_ports_carry_a_replay_through_a_chain() {
    run_on_veths("afpacket", ("afpacket:in0", "afpacket:out0"));
}

#[test]
fn af_xdp_ports_carry_a_replay_through_a_chain() {
    run_on_veths("afxdp", ("afxdp:in0", "afxdp:out0"));
}

/// `--rx-threads 2` on an AF_XDP port with two queues: the second queue's socket is
/// polled by a thread of its own, which writes straight into the chain's first NF.
/// Every packet comes out, each flow in its order.
#[test]
fn a_second_receive_thread_takes_an_af_xdp_queue() {
    let input = udp_frames_up_to(PACKETS, 29, 1514);
    let log = run_frames(
        "afxdp-rx2",
        ("afxdp:in0,queues=2", "afxdp:out0"),
        ("in1", "out1"),
        (input.clone(), input, "udp"),
        &["--rx-threads", "2"],
        Order::PerFlow,
        |ns| {
            let two = ["numtxqueues", "2", "numrxqueues", "2"];
            let mut add = vec!["link", "add", "in0"];
            add.extend_from_slice(&two);
            add.extend_from_slice(&["type", "veth", "peer", "name", "in1"]);
            add.extend_from_slice(&two);
            ns.ip(&add);
            ns.ip(&["link", "set", "in0", "up"]);
            ns.ip(&["link", "set", "in1", "up"]);
            ns.veth("out0", "out1");
        },
    );
    if log.is_empty() {
        return; // skipped (ONVM_ALLOW_SKIP)
    }
    assert!(
        log.contains("receive thread 1 (not pinned): port 0 (afxdp:in0,queues=2 queue 1)"),
        "{log}"
    );
    let stopped = log
        .lines()
        .find(|l| l.contains("receive thread 1 stopped"))
        .unwrap_or_else(|| panic!("{log}"));
    let received: u64 = stopped
        .split("received ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stopped}"));
    // The veth spreads flows over its two queues by their hash: 29 flows all on
    // queue 0 would mean the second thread took none.
    assert!(received > 0, "the second queue received nothing: {stopped}");
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

#[test]
fn vlan_tags_cross_af_packet_ports_intact() {
    run_tagged(
        "vlan-afpacket",
        ("afpacket:in0", "afpacket:out0"),
        ("in1", "out1"),
        OuterTpid::Kept,
        |ns| {
            ns.veth("in0", "in1");
            ns.veth("out0", "out1");
        },
    );
}

#[test]
fn vlan_tags_cross_af_xdp_ports_intact() {
    run_tagged(
        "vlan-afxdp",
        ("afxdp:in0", "afxdp:out0"),
        ("in1", "out1"),
        OuterTpid::Kept,
        |ns| {
            ns.veth("in0", "in1");
            ns.veth("out0", "out1");
        },
    );
}

#[test]
fn vlan_tags_cross_tap_ports_intact() {
    run_tagged(
        "vlan-tap",
        ("tap:tin", "tap:tout"),
        ("tin", "tout"),
        OuterTpid::Kept,
        |_| {},
    );
}

/// Bytes the TCP test sends.
const TCP_BYTES: usize = 4 << 20;

/// Both ways between ports 0 and 1, each through a forwarder.
fn two_way_config(dir: &TempDir, ports: (&str, &str)) -> std::path::PathBuf {
    let text = format!(
        r#"[manager]
socket = {socket:?}
ports = [{a:?}, {b:?}]
shared_cores = true

[services]
east = 1
west = 2

[[nfs]]
name = "simple_forward"
service = "east"

[[nfs]]
name = "simple_forward"
service = "west"

[[chains]]
name = "east"
chain = ["east", "out:1"]
in_port = 0

[[chains]]
name = "west"
chain = ["west", "out:0"]
in_port = 1
"#,
        socket = dir.socket().display().to_string(),
        a = ports.0,
        b = ports.1,
    );
    dir.write("two-way.toml", &text)
}

/// What the sender's veth carries in a TCP test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SenderFrames {
    /// Super-frames longer than the MTU (segmentation offload; AF_PACKET must cut them).
    SuperFrames,
    /// Frames that fit the MTU (attaching XDP to a veth turns its peer's offload off).
    FitTheMtu,
}

/// A TCP client in one namespace sends 4 MiB to a server in another, through the
/// manager's two AF_PACKET ports and a forwarder each way. The hosts' veths keep the
/// kernel's defaults (checksum and segmentation offload on): the ports get partial
/// checksums and super-frames of up to 64 KiB, and must hand on frames a receiver
/// accepts. The server must get exactly the bytes sent.
#[test]
fn tcp_crosses_af_packet_ports_with_offloads_on() {
    tcp_through(
        "tcp-afpacket",
        ("afpacket:p0", "afpacket:p1"),
        SenderFrames::SuperFrames,
    );
}

/// [`tcp_crosses_af_packet_ports_with_offloads_on`] through AF_XDP ports: no
/// super-frames, but partial checksums, which the port sees no flag for.
#[test]
fn tcp_crosses_af_xdp_ports_with_offloads_on() {
    tcp_through("tcp-afxdp", ("afxdp:p0", "afxdp:p1"), SenderFrames::FitTheMtu);
}

fn tcp_through(kind: &str, ports: (&str, &str), expect: SenderFrames) {
    if !can_run() || !onvm_testkit::require_tool("python3", "apt install python3") {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new(kind);
    let (mgr_ns, h1, h2) = two_hosts(kind, "10.213.10.1/24", "10.213.10.2/24");
    let cfg = two_way_config(&dir, ports);
    let mut up_cmd = mgr_ns.command(env!("CARGO_BIN_EXE_onvm"));
    up_cmd.arg("up").arg(&cfg).args(["--stats", "off", "--buffers", "8191"]);
    let mut up = Proc::spawn("onvm up", up_cmd);
    assert!(
        up.stderr.wait(SOON, |l| l.contains("ports receiving")).is_some(),
        "the manager did not start receiving\n{}",
        up.output()
    );
    // What the sender puts on its veth, to show the offloads were on.
    let sent_pcap = dir.join("sent.pcap");
    let mut dump = capture_filtered(&h1, "h1", &sent_pcap, "tcp");
    let (mut client, mut server) = start_tcp_transfer(&h1, &h2, "10.213.10.2", TCP_BYTES);
    let client_code = client.exit_code(Duration::from_secs(30));
    let server_code = server.exit_code(Duration::from_secs(30));
    up.signal("TERM");
    let code = up.exit_code(SOON);
    dump.signal("INT");
    dump.wait_exit(SOON);
    let why = format!("{}{}{}", client.output(), server.output(), up.output());
    assert_eq!((client_code, server_code), (0, 0), "{why}");
    let sent = client
        .stdout
        .find(|l| l.starts_with("sent "))
        .expect("the client's line")
        .1;
    let received = server
        .stdout
        .find(|l| l.starts_with("received "))
        .expect("the server's line")
        .1;
    assert_eq!(received.replace("received", ""), sent.replace("sent", ""), "{why}");
    assert_eq!(code, 0, "onvm up failed\n{}", up.output());
    assert_conserved(&up);
    let frames = common::read_pcap(&sent_pcap);
    let longest = frames.iter().map(Vec::len).max().unwrap_or(0);
    eprintln!(
        "{kind}: the sender's veth carried {} frames, the longest {longest} bytes",
        frames.len()
    );
    match expect {
        SenderFrames::SuperFrames => assert!(
            longest > 1514,
            "the sender used no segmentation offload (longest frame {longest} bytes): the test did not test it"
        ),
        SenderFrames::FitTheMtu => assert!(longest <= 1514, "a {longest}-byte frame"),
    }
    // The sender left its checksums to the (veth's) hardware: what the ports got.
    let partial = frames
        .iter()
        .filter(|f| onvm_packet::verify_checksums(f) == Ok(false))
        .count();
    assert!(
        partial > 0,
        "no frame with a partial checksum: the test did not test it"
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

/// 802.1Q, 802.1ad and QinQ frames through `net_af_packet` vdevs: the tag the kernel
/// takes out of each frame is put back by the port, as 802.1Q (the PMD gives no TPID);
/// the TCIs, inner tags and everything else arrive as sent.
#[cfg(feature = "dpdk")]
#[test]
fn dpdk_af_packet_vdevs_carry_vlan_tags() {
    run_tagged(
        "vlan-dpdk-afpacket",
        ("dpdk:net_af_packet0,iface=in0", "dpdk:net_af_packet1,iface=out0"),
        ("in1", "out1"),
        OuterTpid::Becomes8021Q,
        |ns| {
            ns.veth("in0", "in1");
            ns.veth("out0", "out1");
        },
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
