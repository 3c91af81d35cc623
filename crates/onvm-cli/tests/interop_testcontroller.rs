//! Open vSwitch's own learning controller drives the manager unchanged:
//! `ovs-testcontroller -O OpenFlow13` with its default flags listens, the manager (in a
//! network namespace of its own, two AF_PACKET ports, no config chains, fail mode
//! secure: only the controller's rules forward) connects to it, and two hosts (each a
//! namespace with a veth to one port, addresses in 10.0.0.0/8) ping each other and move
//! 1 MiB over TCP with the kernel's offloads on. The controller learns the MAC
//! addresses from PACKET_INs, floods with PACKET_OUTs and installs flows with its
//! default match (in_port, the VLAN, the addresses, ToS/ECN, ports: once refused);
//! dump-flows over the manager's own listener must show them installed.
//!
//! Ping: a first round lets the controller learn (ARP and the first echo go through it
//! as PACKET_IN/PACKET_OUT) and may lose a packet to a learning race; after it every
//! packet has a learned flow, so a later `ping -c 5` must get all 5 back. It is tried
//! a few times because a loaded 2-core machine can stall a namespace's process past
//! ping's wait; a real forwarding fault fails every try.
//!
//! Needs root, `ip`, `ping` (iputils-ping), python3, ovs-ofctl (openvswitch-common) and
//! ovs-testcontroller (openvswitch-testcontroller); scripts/deps.sh installs them.
//! Without them the test fails, naming what is missing (`ONVM_ALLOW_SKIP=1` skips).
//! Every namespace (with its veths) and process is removed on drop, however it ends.

mod common;

use std::time::Duration;

use common::netns::{Netns, start_tcp_transfer, two_hosts};
use common::{Proc, SOON, TempDir, assert_conserved, wait_for};

/// The controller's port, on the manager namespace's loopback (fresh: nothing else
/// listens there).
const CONTROLLER: u16 = 6653;
/// The manager's own OpenFlow listener, for dump-flows.
const LISTENER: u16 = 6634;
/// Bytes the TCP transfer moves.
const TCP_BYTES: usize = 1 << 20;
const H1: &str = "10.216.0.1";
const H2: &str = "10.216.0.2";

/// Requires what this test needs; `false` only with ONVM_ALLOW_SKIP=1 (the caller returns).
#[must_use]
#[track_caller]
fn can_run() -> bool {
    onvm_testkit::require_root("to create network namespaces, veth pairs and raw sockets")
        && onvm_testkit::require_tool("ip", "apt install iproute2")
        && onvm_testkit::require_tool("ping", "apt install iputils-ping")
        && onvm_testkit::require_tool("python3", "apt install python3")
        && onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common")
        && onvm_testkit::require_tool("ovs-testcontroller", "apt install openvswitch-testcontroller")
}

/// `ping -c N` from `ns` to `to`: (received, its output).
fn ping(ns: &Netns, to: &str, n: u32) -> (u32, String) {
    let out = ns
        .command("ping")
        .args(["-n", "-c", &n.to_string(), "-i", "0.2", "-W", "5", to])
        .output()
        .expect("run ping");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let received = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|w| w.split_whitespace().next())
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    (received, text)
}

#[test]
fn ovs_testcontroller_learns_and_two_hosts_ping_and_move_tcp_through_the_manager() {
    if !can_run() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("interop-tc");
    // Declared first, dropped last: the processes in them go before the namespaces.
    let (sw, h1, h2) = two_hosts("tc", &format!("{H1}/16"), &format!("{H2}/16"));

    let mut ctl = sw.command("ovs-testcontroller");
    // Its control socket in the test's directory: /var/run/openvswitch may not exist.
    ctl.args(["-O", "OpenFlow13", &format!("ptcp:{CONTROLLER}:127.0.0.1")])
        .arg(format!("--unixctl={}", dir.join("tc.ctl").display()));
    let mut ctl = Proc::spawn("ovs-testcontroller", ctl);
    let listening = wait_for(SOON, || {
        ctl.exited()
            || sw
                .command("ss")
                .args(["-Htln", &format!("sport = :{CONTROLLER}")])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
    });
    assert!(
        listening && !ctl.exited(),
        "ovs-testcontroller did not listen\n{}",
        ctl.output()
    );

    let mut mgr = sw.command(env!("CARGO_BIN_EXE_onvm"));
    mgr.args(["mgr", "--stats", "off", "--buffers", "8191", "--socket"])
        .arg(dir.socket())
        .args(["-p", "afpacket:p0", "-p", "afpacket:p1", "--fail-mode", "secure"])
        .args(["--controller", &format!("tcp:127.0.0.1:{CONTROLLER}")])
        .args(["--openflow-listen", &format!("ptcp:{LISTENER}:127.0.0.1")]);
    let mut mgr = Proc::spawn("onvm mgr", mgr);
    let connected = mgr
        .stderr
        .wait(Duration::from_secs(30), |l| {
            l.contains(&format!("openflow: tcp:127.0.0.1:{CONTROLLER} connected")) || l.contains("openflow: 127.0.0.1:")
        })
        .is_some();
    assert!(
        connected,
        "the manager did not reach the controller\n{}\n{}",
        mgr.output(),
        ctl.output()
    );
    let why = |mgr: &Proc, ctl: &Proc| format!("{}\n{}", mgr.output(), ctl.output());

    // Learning: ARP and the first echoes go through the controller.
    let learned = wait_for(Duration::from_secs(60), || ping(&h1, H2, 2).0 > 0);
    assert!(learned, "no ping got through while learning\n{}", why(&mgr, &ctl));
    // Learned: every echo has a flow both ways now.
    let mut tries = Vec::new();
    for _ in 0..4 {
        let (got, text) = ping(&h1, H2, 5);
        tries.push(text);
        if got == 5 {
            break;
        }
    }
    assert!(
        tries.last().is_some_and(|t| t.contains(" 5 received")),
        "ping -c 5 never got all 5 back:\n{}\n{}",
        tries.join("\n"),
        why(&mgr, &ctl)
    );

    // 1 MiB over TCP, offloads on (partial checksums, super-frames on the veths).
    let (mut client, mut server) = start_tcp_transfer(&h1, &h2, H2, TCP_BYTES);
    let client_code = client.exit_code(Duration::from_secs(90));
    let server_code = server.exit_code(Duration::from_secs(90));
    let moved = format!("{}{}", client.output(), server.output());
    assert_eq!((client_code, server_code), (0, 0), "{moved}\n{}", why(&mgr, &ctl));
    let line = |p: &Proc, start: &str| {
        p.stdout
            .find(|l| l.starts_with(start))
            .map(|(_, l)| l.trim_start_matches(start).to_string())
    };
    let (sent, received) = (line(&client, "sent"), line(&server, "received"));
    assert!(sent.is_some() && sent == received, "{moved}");

    // The learned flows are installed (not refused): unicast rules to each host's port.
    let dump = sw
        .command("ovs-ofctl")
        .args(["-O", "OpenFlow13", "--no-names", "dump-flows"])
        .arg(format!("tcp:127.0.0.1:{LISTENER}"))
        .output()
        .expect("run ovs-ofctl");
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    let learned: Vec<&str> = dump
        .lines()
        .filter(|l| l.contains("cookie=") && l.contains("dl_dst=") && l.contains("actions=output:"))
        .collect();
    let to = |port: &str| learned.iter().any(|l| l.ends_with(&format!("actions=output:{port}")));
    assert!(
        to("1") && to("2"),
        "no learned flow to each host:\n{dump}\n{}",
        why(&mgr, &ctl)
    );
    let all = why(&mgr, &ctl);
    assert!(!all.contains("OFPBMC") && !all.contains("OFPBAC"), "a refusal:\n{all}");

    mgr.signal("TERM");
    assert_eq!(mgr.exit_code(SOON), 0, "the manager failed\n{}", why(&mgr, &ctl));
    assert_conserved(&mgr);
    eprintln!(
        "learned flows:\n{}\nthe manager's summary:\n{}",
        learned.join("\n"),
        mgr.stdout.text()
    );
}
