//! The manager as an OpenFlow 1.3 switch, against the real tools: Open vSwitch's
//! `ovs-ofctl -O OpenFlow13` programs and reads it, and an os-ken controller (the
//! example app in `examples/openflow/`) steers a chain through two NF processes,
//! proactively and reactively. Traffic is a pcap file replayed into port 0; what
//! leaves port 1 is written to a pcap file and compared with what went in.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`) and python3 with os-ken
//! (`pip install os-ken`); scripts/test.sh installs both. Without them each test fails,
//! naming what is missing (onvm-testkit; `ONVM_ALLOW_SKIP=1` skips instead).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use onvm_openflow as of;

use common::netns::{Netns, capture, whole_records};
use common::openflow::{
    RawController, flows, free_port, have_os_ken, have_ovs_ofctl, listen_addr, ofctl, ofctl_ok, spawn_mgr,
    start_pcap_mgr,
};
use common::{
    Proc, SOON, TempDir, assert_conserved, distinct_udp_frames, read_pcap, start_forwarder, stop_cleanly, wait_for,
    write_pcap,
};

const PACKETS: usize = 200;

/// The example controller app.
fn example_app() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/openflow/onvm_chain.py")
}

/// [`stop_cleanly`], and what port 1 sent.
fn stop(mut mgr: Proc, dir: &TempDir) -> Vec<Vec<u8>> {
    stop_cleanly(&mut mgr);
    read_pcap(&dir.join("out.pcap"))
}

#[test]
fn ovs_ofctl_shows_programs_and_reads_the_switch() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-ofctl");
    let frames = distinct_udp_frames(PACKETS, 16);
    let mgr = start_pcap_mgr(&dir, &frames, 1, &["--openflow-listen", "ptcp:0:127.0.0.1"]);
    let sw = listen_addr(&mgr);

    // Ports 1 and 2; no service yet.
    let show = ofctl_ok("show", &sw, &[]);
    assert!(
        show.contains("n_tables:8") && show.contains(" 1(pcap") && show.contains(" 2(pcapout"),
        "{show}"
    );
    assert!(!show.contains("4097("), "{show}");

    // The chain: port 1 → service 1 (logical port 4097) → port 2.
    ofctl_ok("add-flow", &sw, &["in_port=1,actions=output:4097"]);
    ofctl_ok(
        "add-flow",
        &sw,
        &["table=0,priority=10,in_port=4097,actions=goto_table:3"],
    );
    ofctl_ok("add-flow", &sw, &["table=3,priority=10,udp,actions=output:2"]);
    // What onvm cannot do is refused with the spec's error, and changes nothing.
    let (ok, text) = ofctl("add-flow", &sw, &["ip,nw_ttl=5,actions=output:2"]);
    assert!(!ok && text.contains("OFPBMC_BAD_FIELD"), "{text}");
    let (ok, text) = ofctl("add-flow", &sw, &["in_port=2,actions=output:LOCAL"]);
    assert!(!ok && text.contains("OFPBAC_BAD_OUT_PORT"), "{text}");
    let (ok, text) = ofctl("add-flow", &sw, &["in_port=2,actions=set_queue:1,output:1"]);
    assert!(!ok && text.contains("OFPBAC_BAD_TYPE"), "no queues: {text}");
    let (ok, text) = ofctl("add-flow", &sw, &["in_port=2,actions=group:7"]);
    assert!(!ok && text.contains("OFPBAC_BAD_OUT_GROUP"), "no group 7: {text}");
    let (ok, text) = ofctl("add-flow", &sw, &["table=3,actions=goto_table:1"]);
    assert!(!ok && text.contains("OFPBIC_BAD_TABLE_ID"), "{text}");
    assert_eq!(flows(&ofctl_ok("dump-flows", &sw, &[])).len(), 3);

    // The NF comes up: its service is a named, live port, and traffic flows.
    let (_nf, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd");
    let counted = |dump: &str| {
        flows(dump)
            .iter()
            .filter(|l| l.contains(&format!("n_packets={PACKETS},")))
            .count()
    };
    let mut dump = String::new();
    let all = wait_for(SOON, || {
        dump = ofctl_ok("dump-flows", &sw, &[]);
        counted(&dump) == 3
    });
    assert!(
        all,
        "not every rule counted {PACKETS} packets:\n{dump}\n{}",
        mgr.output()
    );
    assert!(dump.contains("table=3") && dump.contains("goto_table:3"), "{dump}");
    let show = ofctl_ok("show", &sw, &[]);
    let svc = show
        .lines()
        .skip_while(|l| !l.contains("4097(fwd)"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(svc.contains("state:      LIVE"), "{show}");

    // The NF reports its counters about once a second; the service port shows them.
    let mut ports = String::new();
    let two_lines = |ports: &str, port: &str| {
        let mut it = ports
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&format!("port {port}:")));
        format!("{}{}", it.next().unwrap_or_default(), it.next().unwrap_or_default())
    };
    let rx = format!("rx pkts={PACKETS},");
    let tx = format!("tx pkts={PACKETS},");
    let counted = wait_for(SOON, || {
        ports = ofctl_ok("dump-ports", &sw, &[]);
        let svc = two_lines(&ports, "4097");
        svc.contains(&rx) && svc.contains(&tx)
    });
    assert!(counted, "{ports}");
    assert!(two_lines(&ports, " 1").contains(&rx), "{ports}");
    assert!(two_lines(&ports, " 2").contains(&tx), "{ports}");
    let tables = ofctl_ok("dump-tables", &sw, &[]);
    // Every packet is looked up in table 0 twice (from port 1, from the NF) and once in 3.
    let t0 = format!("active=2, lookup={}, matched={}", 2 * PACKETS, 2 * PACKETS);
    let t3 = format!("active=1, lookup={PACKETS}, matched={PACKETS}");
    assert!(tables.contains(&t0) && tables.contains(&t3), "{tables}");

    // Deleting by table, then everything.
    ofctl_ok("del-flows", &sw, &["table=3"]);
    assert_eq!(flows(&ofctl_ok("dump-flows", &sw, &[])).len(), 2);
    ofctl_ok("del-flows", &sw, &[]);
    assert!(flows(&ofctl_ok("dump-flows", &sw, &[])).is_empty());

    let out = stop(mgr, &dir);
    assert_eq!(out, frames, "port 2 must send what port 1 received, in order");
}

/// The example controller on a free port with these arguments; returns once it listens.
fn start_controller(args: &[&str]) -> (Proc, u16) {
    start_controller_on(free_port(), args)
}

/// The example controller on `port`.
fn start_controller_on(port: u16, args: &[&str]) -> (Proc, u16) {
    let mut cmd = Command::new("python3");
    cmd.arg(example_app()).args(["--listen", &port.to_string()]).args(args);
    let p = Proc::spawn("os-ken", cmd);
    assert!(
        p.stdout.wait(SOON, |l| l.contains("listening on")).is_some(),
        "the controller did not start\n{}",
        p.output()
    );
    (p, port)
}

/// The chain port 1 → service 1 → service 2 → port 2, steered by os-ken in `mode`
/// ("proactive", or a `--reactive` mode); the frames that port 2 sent, and the
/// controller (for its log).
fn chain_under_os_ken(mode: &str, frames: &[Vec<u8>]) -> (Vec<Vec<u8>>, Proc) {
    let mut args = vec!["--chain", "any=1,4097,4098,2"];
    if mode != "proactive" {
        args.extend(["--reactive", mode]);
    }
    let (ctl, port) = start_controller(&args);
    let dir = TempDir::new(&format!("of-osken-{mode}"));
    let controller = format!("tcp:127.0.0.1:{port}");
    let extra = [
        "--controller",
        &controller,
        "--datapath-id",
        "0x42",
        "--exit-when-drained",
        "1",
    ];
    let mut mgr = start_pcap_mgr(&dir, frames, 2, &extra);
    assert!(
        ctl.stdout.wait(SOON, |l| l.contains("rules on 0x42")).is_some(),
        "the controller did not program the switch\n{}\n{}",
        ctl.output(),
        mgr.output()
    );
    let (_a, _) = start_forwarder(&mgr, &dir.socket(), 1, "a");
    let (_b, _) = start_forwarder(&mgr, &dir.socket(), 2, "b");
    // The manager stops by itself once the replay is done and nothing moved for 1 s.
    assert_eq!(
        mgr.exit_code(SOON),
        0,
        "the manager failed\n{}\n{}",
        mgr.output(),
        ctl.output()
    );
    assert_conserved(&mgr);
    (read_pcap(&dir.join("out.pcap")), ctl)
}

#[test]
fn os_ken_installs_a_chain_through_two_nfs() {
    if !have_os_ken() {
        return;
    }
    let _serial = common::serial();
    let frames = distinct_udp_frames(PACKETS, 16);
    let (out, ctl) = chain_under_os_ken("proactive", &frames);
    assert_eq!(
        out,
        frames,
        "the chain must carry every frame, in order\n{}",
        ctl.output()
    );
    assert!(
        ctl.stdout.find(|l| l.contains("installed 3 rules on 0x42")).is_some(),
        "{}",
        ctl.output()
    );
    assert_eq!(
        ctl.stdout.count(|l| l.contains("packet-in")),
        0,
        "proactive rules need no PACKET_IN"
    );
}

/// Reactive: the table holds only a table-miss rule; the first packet of each hop goes
/// to the controller, which installs the hop and has that packet sent on.
fn reactive(mode: &str) {
    if !have_os_ken() {
        return;
    }
    let _serial = common::serial();
    let frames = distinct_udp_frames(PACKETS, 16);
    let (out, ctl) = chain_under_os_ken(mode, &frames);
    let ins = ctl.stdout.count(|l| l.contains("packet-in"));
    assert!(
        ins >= 3,
        "each of the 3 hops starts with a PACKET_IN, saw {ins}\n{}",
        ctl.output()
    );
    let buffered = ctl.stdout.count(|l| l.contains("buffered=True"));
    match mode {
        "buffer" => assert_eq!(buffered, ins, "{}", ctl.output()),
        _ => assert_eq!(buffered, 0, "{}", ctl.output()),
    }
    // Packets that met a miss went round the controller and may come out later than
    // their successors; none may be lost, the very first included.
    assert_eq!(out.len(), frames.len(), "{}", ctl.output());
    assert!(out.contains(&frames[0]), "the first packet was lost");
    let (mut a, mut b) = (out, frames);
    a.sort();
    b.sort();
    assert_eq!(a, b, "other frames than went in");
}

#[test]
fn reactive_hops_from_buffered_packet_ins() {
    reactive("buffer");
}

#[test]
fn reactive_hops_from_whole_packet_ins_and_packet_outs() {
    reactive("whole");
}

/// Two managers, as two hosts: network namespaces A and B joined by a veth pair (A's
/// port 1 to B's port 0), each with one NF, and one os-ken controller in a third
/// namespace that both reach over their own management link. The controller steers
/// one chain across them: in → A's service 1 → the link → B's service 2 → out.
/// tcpreplay sends into A and tcpdump on B's far side must see every frame, in order.
#[test]
fn one_controller_steers_a_chain_across_two_managers() {
    if !have_os_ken() || !common::netns::can_run() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-hosts");
    let ext = Netns::create("ofx");
    let (a, b) = (Netns::create("ofa"), Netns::create("ofb"));
    ext.veth_to("in1", &a, "in0");
    a.veth_to("link0", &b, "link1");
    b.veth_to("out0", &ext, "out1");
    ext.veth_to("ctla", &a, "ctla0");
    ext.veth_to("ctlb", &b, "ctlb0");
    for (ns, iface, cidr) in [
        (&ext, "ctla", "10.9.1.1/24"),
        (&a, "ctla0", "10.9.1.2/24"),
        (&ext, "ctlb", "10.9.2.1/24"),
        (&b, "ctlb0", "10.9.2.2/24"),
    ] {
        ns.addr(iface, cidr);
    }

    let port = free_port();
    let mut ctl_cmd = ext.command("python3");
    ctl_cmd.arg(example_app()).args([
        "--listen",
        &port.to_string(),
        "--chain",
        "0xa=1,4097,2",
        "--chain",
        "0xb=1,4098,2",
    ]);
    let ctl = Proc::spawn("os-ken", ctl_cmd);
    assert!(
        ctl.stdout.wait(SOON, |l| l.contains("listening on")).is_some(),
        "{}",
        ctl.output()
    );

    let host = |ns: &Netns, name: &str, dpid: &str, ports: [&str; 2], controller: &str| {
        let socket = dir.join(&format!("{name}.sock"));
        let mut cmd = ns.command(env!("CARGO_BIN_EXE_onvm"));
        cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket"])
            .arg(&socket)
            .args([
                "-p",
                ports[0],
                "-p",
                ports[1],
                "--datapath-id",
                dpid,
                "--wait-for-nfs",
                "1",
            ])
            .args(["--controller", &format!("tcp:{controller}:{port}")]);
        let p = Proc::spawn(name, cmd);
        assert!(
            wait_for(SOON, || socket.exists()),
            "{name} did not start\n{}",
            p.output()
        );
        (p, socket)
    };
    let (mut mgr_a, sock_a) = host(&a, "host A", "0xa", ["afpacket:in0", "afpacket:link0"], "10.9.1.1");
    let (mut mgr_b, sock_b) = host(&b, "host B", "0xb", ["afpacket:link1", "afpacket:out0"], "10.9.2.1");
    for dpid in ["0xa", "0xb"] {
        assert!(
            ctl.stdout
                .wait(SOON, |l| l.contains(&format!("rules on {dpid}")))
                .is_some(),
            "the controller did not program {dpid}\n{}\n{}\n{}",
            ctl.output(),
            mgr_a.output(),
            mgr_b.output()
        );
    }
    let (_nf_a, _) = start_forwarder(&mgr_a, &sock_a, 1, "a");
    let (_nf_b, _) = start_forwarder(&mgr_b, &sock_b, 2, "b");
    for m in [&mgr_a, &mgr_b] {
        assert!(
            m.stderr.wait(SOON, |l| l.contains("ports receiving")).is_some(),
            "{}",
            m.output()
        );
    }

    let frames = distinct_udp_frames(PACKETS, 16);
    let in_pcap = dir.join("in.pcap");
    write_pcap(&in_pcap, &frames, Duration::from_secs(1_700_000_000));
    let cap = dir.join("cap.pcap");
    let mut dump = capture(&ext, "out1", &cap);
    let mut replay = ext.command("tcpreplay");
    replay.args(["-i", "in1", "--pps", "20000"]).arg(&in_pcap);
    let mut replay = Proc::spawn("tcpreplay", replay);
    assert_eq!(replay.exit_code(SOON), 0, "{}", replay.output());
    let all = wait_for(SOON, || whole_records(&cap) >= PACKETS);
    for m in [&mut mgr_a, &mut mgr_b] {
        stop_cleanly(m);
    }
    dump.signal("INT");
    dump.wait_exit(SOON);
    let out = read_pcap(&cap);
    assert!(
        all,
        "captured {} of {PACKETS}\n{}\n{}",
        out.len(),
        mgr_a.output(),
        mgr_b.output()
    );
    assert_eq!(out, frames, "host B must send what host A received, in order");
}

/// The manager dials a controller that is not there yet, gets it when it comes, loses
/// it, and gets it back; meanwhile the table follows the fail mode: `secure` keeps
/// the controller's rule, `standalone` puts the config's chain back alone. (The
/// standalone run takes its OpenFlow settings from the config's `[manager]`.)
fn controller_comes_and_goes(fail_mode: &str) {
    if !have_os_ken() || !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new(&format!("of-fail-{fail_mode}"));
    let port = free_port();
    let controller = format!("tcp:127.0.0.1:{port}");
    // Standalone takes its OpenFlow settings from the config file, secure from flags.
    let in_config = fail_mode == "standalone";
    let openflow = match in_config {
        true => format!(
            "controllers = [{controller:?}]\nopenflow_listen = \"ptcp:0:127.0.0.1\"\nfail_mode = {fail_mode:?}\n"
        ),
        false => String::new(),
    };
    let cfg = dir.write(
        "chain.toml",
        &format!(
            "[manager]\nsocket = {:?}\nports = [\"null\", \"null\"]\n{openflow}\n[services]\nmon = 1\n\n\
             [[chains]]\nname = \"c\"\nchain = [\"mon\", \"out:1\"]\nin_port = 0\n",
            dir.socket().display().to_string()
        ),
    );
    let cfg = cfg.display().to_string();
    let mut args = vec!["--config", &cfg];
    if !in_config {
        args.extend(["--openflow-listen", "ptcp:0:127.0.0.1", "--controller", &controller]);
        args.extend(["--fail-mode", fail_mode]);
    }
    let mut mgr = spawn_mgr(&dir, &args);
    let sw = listen_addr(&mgr);
    // Nobody listens yet: refused, and redialled after 1 s, then 2 s (the backoff doubles).
    let (t1, _) = mgr
        .stderr
        .wait(SOON, |l| l.contains("redialling in 1s"))
        .unwrap_or_else(|| panic!("{}", mgr.output()));
    let (t2, _) = mgr
        .stderr
        .wait(SOON, |l| l.contains("redialling in 2s"))
        .unwrap_or_else(|| panic!("{}", mgr.output()));
    let gap = t2.duration_since(t1);
    assert!(
        gap >= Duration::from_millis(900),
        "redialled after {gap:?}, not the 1 s backoff"
    );
    let config_rules = flows(&ofctl_ok("dump-flows", &sw, &[])).len();
    assert_eq!(config_rules, 2, "the config's chain is two rules");
    let controller_rule = |dump: &str| {
        flows(dump)
            .iter()
            .any(|l| l.contains("priority=100,in_port=2 actions=output:1"))
    };

    for round in 0..2 {
        let (mut ctl, _) = start_controller_on(port, &["--chain", "any=2,1"]);
        assert!(
            ctl.stdout.wait(SOON, |l| l.contains("installed 1 rules")).is_some(),
            "round {round}: the manager did not (re)connect\n{}\n{}",
            ctl.output(),
            mgr.output()
        );
        let dump = ofctl_ok("dump-flows", &sw, &[]);
        assert!(controller_rule(&dump), "{dump}");
        assert_eq!(flows(&dump).len(), config_rules + 1, "{dump}");
        let gone_before = mgr.stderr.count(|l| l.contains("gone ("));
        ctl.kill();
        assert!(
            wait_for(SOON, || mgr.stderr.count(|l| l.contains("gone (")) > gone_before),
            "the manager did not notice the controller go\n{}",
            mgr.output()
        );
        let mut dump = String::new();
        let settled = wait_for(Duration::from_secs(2), || {
            dump = ofctl_ok("dump-flows", &sw, &[]);
            controller_rule(&dump) == (fail_mode == "secure")
        });
        assert!(
            settled,
            "{fail_mode}: after the controller went:\n{dump}\n{}",
            mgr.output()
        );
        assert_eq!(
            flows(&dump).len(),
            config_rules + usize::from(fail_mode == "secure"),
            "{dump}"
        );
    }
    stop_cleanly(&mut mgr);
}

#[test]
fn fail_secure_keeps_the_controllers_rules_and_redials() {
    controller_comes_and_goes("secure");
}

#[test]
fn fail_standalone_restores_the_config_chain_and_redials() {
    controller_comes_and_goes("standalone");
}

fn output(port: u32, max_len: u16) -> of::Action {
    of::Action::Output { port, max_len }
}

/// PACKET_IN truncates to the rule's max_len and keeps the packet; PACKET_OUT floods a
/// buffered packet (copies to every other port) or sends carried bytes; buffers nobody
/// claims are dropped after 5 s, counted, and the pool is whole again.
#[test]
fn packet_in_buffers_packet_out_floods_and_unclaimed_buffers_expire() {
    let _serial = common::serial();
    let dir = TempDir::new("of-raw");
    // Ten frames, all longer than 64 bytes (the first of the set is 60).
    let frames = distinct_udp_frames(11, 4).split_off(1);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let controller = format!("tcp:{}", l.local_addr().unwrap());
    let out3 = format!("pcapout:{}", dir.join("out3.pcap").display());
    let mgr = start_pcap_mgr(&dir, &frames, 1, &["--controller", &controller, "-p", &out3]);
    let mut c = RawController::accept(&l);
    // Table miss → controller, 64 bytes of each packet.
    c.send(&of::Message::FlowMod(of::FlowMod {
        cookie: 0x5eed,
        cookie_mask: 0,
        table_id: 0,
        command: of::FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 0,
        buffer_id: of::OFP_NO_BUFFER,
        out_port: of::ofpp::ANY,
        out_group: of::OFPG_ANY,
        flags: 0,
        match_: of::Match::default(),
        instructions: vec![of::Instruction::ApplyActions(vec![output(of::ofpp::CONTROLLER, 64)])],
    }));
    c.send(&of::Message::BarrierRequest);
    while c.recv() != of::Message::BarrierReply {}
    // Ports receive once an NF runs (one that no rule sends to).
    let (_nf, _) = start_forwarder(&mgr, &dir.socket(), 9, "idle");
    let first = c.packet_in();
    let i = 0;
    assert_eq!(first.data[..], frames[i][..64], "the rule's 64 bytes");
    assert_eq!(usize::from(first.total_len), frames[i].len());
    assert_eq!(
        (first.reason, first.cookie, first.match_.in_port),
        (of::ofpr::NO_MATCH, 0x5eed, Some(1))
    );
    assert_ne!(first.buffer_id, of::OFP_NO_BUFFER);
    let mut seen = 1;
    while seen < frames.len() - i {
        c.packet_in();
        seen += 1;
    }
    // The buffered first packet: flooded from port 1 (to ports 2 and 3).
    c.send(&of::Message::PacketOut(of::PacketOut {
        buffer_id: first.buffer_id,
        in_port: 1,
        actions: vec![output(of::ofpp::FLOOD, 0)],
        data: vec![],
    }));
    // Bytes of the controller's own, to port 2.
    let own = frames[0].iter().rev().copied().collect::<Vec<u8>>();
    c.send(&of::Message::PacketOut(of::PacketOut {
        buffer_id: of::OFP_NO_BUFFER,
        in_port: of::ofpp::CONTROLLER,
        actions: vec![output(2, 0)],
        data: own.clone(),
    }));
    // The rest stay buffered until they expire.
    let expired = (frames.len() - i - 1) as u64;
    std::thread::sleep(Duration::from_millis(5_500));
    let mut mgr = mgr;
    stop_cleanly(&mut mgr);
    let out = mgr.stdout.text();
    let drops = out
        .lines()
        .find(|l| l.starts_with("manager drops:"))
        .unwrap_or_default();
    assert!(drops.contains(&format!("buffer-expired={expired}")), "{out}");
    assert_eq!(read_pcap(&dir.join("out.pcap")), [frames[i].clone(), own]);
    assert_eq!(read_pcap(&dir.join("out3.pcap")), [frames[i].clone()]);
}

/// A controller reroutes a service while traffic flows over the direct NF→NF edge the
/// manager opened for it: the edge must close, or the old next hop keeps getting
/// packets that the table no longer sends there.
#[test]
fn rerouting_a_service_closes_its_direct_edge() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-reroute");
    let mgr = spawn_mgr(
        &dir,
        &[
            "-p",
            "gen:64B,16flows,rate=20k",
            "-p",
            "null",
            "--wait-for-nfs",
            "3",
            "--openflow-listen",
            "ptcp:0:127.0.0.1",
        ],
    );
    let sw = listen_addr(&mgr);
    for f in ["in_port=1,actions=output:4097", "in_port=4097,actions=output:4098"] {
        ofctl_ok("add-flow", &sw, &[f]);
    }
    for f in ["in_port=4098,actions=output:2", "in_port=4099,actions=output:2"] {
        ofctl_ok("add-flow", &sw, &[f]);
    }
    let _nfs: Vec<_> = [(1, "a"), (2, "b"), (3, "c")]
        .into_iter()
        .map(|(s, t)| start_forwarder(&mgr, &dir.socket(), s, t).0)
        .collect();
    assert!(
        mgr.stderr.wait(SOON, |l| l.contains("direct edge")).is_some(),
        "no direct edge a → b\n{}",
        mgr.output()
    );
    let packets = |from: &str| -> u64 {
        let dump = ofctl_ok("dump-flows", &sw, &[]);
        let line = flows(&dump)
            .into_iter()
            .find(|l| l.contains(&format!("in_port={from} ")))
            .unwrap_or_else(|| panic!("no rule for {from}:\n{dump}"))
            .to_string();
        let n = line.split("n_packets=").nth(1).unwrap().split(',').next().unwrap();
        n.parse().unwrap()
    };
    assert!(wait_for(SOON, || packets("4098") > 100), "b's packets do not come back");
    ofctl_ok("mod-flows", &sw, &["in_port=4097,actions=output:4099"]);
    // What was in flight to b when the rule changed drains; then b gets nothing more.
    std::thread::sleep(Duration::from_millis(300));
    let (b, c) = (packets("4098"), packets("4099"));
    std::thread::sleep(Duration::from_millis(500));
    let (b2, c2) = (packets("4098"), packets("4099"));
    assert_eq!(b2, b, "b still gets a's packets after the reroute\n{}", mgr.output());
    assert!(c2 > c && c > 0, "c gets a's packets: {c} then {c2}");
    let mut mgr = mgr;
    stop_cleanly(&mut mgr);
}

fn add(priority: u16, in_port: u32, idle: u16, hard: u16, flags: u16) -> of::Message {
    of::Message::FlowMod(of::FlowMod {
        cookie: u64::from(priority),
        cookie_mask: 0,
        table_id: 0,
        command: of::FlowModCommand::Add,
        idle_timeout: idle,
        hard_timeout: hard,
        priority,
        buffer_id: of::OFP_NO_BUFFER,
        out_port: of::ofpp::ANY,
        out_group: of::OFPG_ANY,
        flags,
        match_: of::Match {
            in_port: Some(in_port),
            ..of::Match::default()
        },
        instructions: vec![of::Instruction::ApplyActions(vec![output(2, 0)])],
    })
}

/// Idle and hard timeouts remove rules, and a controller that set SEND_FLOW_REM hears
/// of it (and of a delete) with the reason and the rule's counters.
#[test]
fn timeouts_and_deletes_send_flow_removed() {
    let _serial = common::serial();
    let dir = TempDir::new("of-timeouts");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let controller = format!("tcp:{}", l.local_addr().unwrap());
    let mgr = start_pcap_mgr(&dir, &[], 0, &["--controller", &controller]);
    let mut c = RawController::accept(&l);
    let notify = of::ofpff::SEND_FLOW_REM;
    c.send(&add(1, 1, 0, 1, notify)); // hard 1 s
    c.send(&add(2, 2, 1, 0, notify)); // idle 1 s
    c.send(&add(3, 3, 1, 0, 0)); // idle 1 s, nobody told
    c.send(&add(4, 4, 0, 0, notify)); // deleted below
    let mut del = add(4, 4, 0, 0, 0);
    if let of::Message::FlowMod(f) = &mut del {
        f.command = of::FlowModCommand::DeleteStrict;
    }
    c.send(&del);
    let mut reasons = Vec::new();
    while reasons.len() < 3 {
        if let of::Message::FlowRemoved(r) = c.recv() {
            reasons.push((r.cookie, r.reason, r.match_.in_port));
        }
    }
    reasons.sort();
    assert_eq!(
        reasons,
        [
            (1, of::ofprr::HARD_TIMEOUT, Some(1)),
            (2, of::ofprr::IDLE_TIMEOUT, Some(2)),
            (4, of::ofprr::DELETE, Some(4))
        ]
    );
    // All four are gone (the silent one too, maybe one expiry pass later).
    let mut count = || {
        c.send(&of::Message::MultipartRequest(of::MultipartRequest {
            flags: 0,
            body: of::MultipartRequestBody::Aggregate(of::FlowStatsRequest {
                table_id: of::OFPTT_ALL,
                out_port: of::ofpp::ANY,
                out_group: of::OFPG_ANY,
                cookie: 0,
                cookie_mask: 0,
                match_: of::Match::default(),
            }),
        }));
        loop {
            if let of::Message::MultipartReply(of::MultipartReply {
                body: of::MultipartReplyBody::Aggregate(a),
                ..
            }) = c.recv()
            {
                break a.flow_count;
            }
        }
    };
    assert!(wait_for(Duration::from_secs(3), || count() == 0));
    let mut mgr = mgr;
    stop_cleanly(&mut mgr);
}

/// `--controller` is repeatable and needs no ports or NFs: a bare manager dials both
/// controllers, each sees the same switch, and `ovs-ofctl` on the listener sees it too.
#[test]
fn a_bare_manager_serves_two_controllers_and_a_tool() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-two");
    let (l1, l2) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (c1, c2) = (
        format!("tcp:{}", l1.local_addr().unwrap()),
        format!("tcp:{}", l2.local_addr().unwrap()),
    );
    let mut mgr = spawn_mgr(
        &dir,
        &[
            "--controller",
            &c1,
            "--controller",
            &c2,
            "--datapath-id",
            "77",
            "--openflow-listen",
            "ptcp:0:127.0.0.1",
        ],
    );
    let sw = listen_addr(&mgr);
    for l in [&l1, &l2] {
        let mut c = RawController::accept(l);
        c.send(&of::Message::FeaturesRequest);
        let dpid = loop {
            if let of::Message::FeaturesReply(f) = c.recv() {
                break f.datapath_id;
            }
        };
        assert_eq!(dpid, 77);
    }
    let show = ofctl_ok("show", &sw, &[]);
    assert!(show.contains("dpid:000000000000004d"), "{show}");
    stop_cleanly(&mut mgr);
}

/// Garbage on the OpenFlow socket — random bodies under valid headers, random bytes,
/// lengths that lie, a peer that vanishes mid-message — gets ERRORs or a closed
/// connection, never a crash or a hang: packets keep flowing and are all accounted for.
#[test]
fn garbage_from_controllers_never_takes_the_switch_down() {
    if !have_ovs_ofctl() {
        return;
    }
    use std::io::{Read, Write};
    let _serial = common::serial();
    let dir = TempDir::new("of-garbage");
    let mut mgr = spawn_mgr(
        &dir,
        &[
            "-p",
            "gen:64B,16flows,rate=20k",
            "-p",
            "null",
            "--openflow-listen",
            "ptcp:0:127.0.0.1",
        ],
    );
    let sw = listen_addr(&mgr);
    ofctl_ok("add-flow", &sw, &["in_port=1,actions=output:2"]);
    let addr = sw.strip_prefix("tcp:").unwrap().to_string();
    // A small xorshift generator: the same garbage every run.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut errors = 0;
    for round in 0..200 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let hello = of::Message::Hello(of::Hello::ours(of::VersionBitmap::of(&[4])));
        s.write_all(&hello.encode(1).unwrap()).unwrap();
        let body_len = (rand() % 120) as usize;
        let mut msg: Vec<u8> = vec![4, (rand() % 30) as u8, 0, 0, 0, 0, 0, round as u8];
        msg.extend((0..body_len).map(|_| rand() as u8));
        let len = match round % 4 {
            0 => 8 + body_len as u16,      // honest length, random body
            1 => (rand() % 8) as u16,      // below the header's own
            2 => 8 + body_len as u16 + 50, // promises more than comes
            _ => rand() as u16,            // anything
        };
        msg[2..4].copy_from_slice(&len.to_be_bytes());
        s.write_all(&msg).unwrap();
        if round % 4 == 0 {
            // An honest frame is answered after our HELLO: mostly an ERROR.
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let mut answers = Vec::new();
            while answers.len() < 2 {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                    _ => break,
                }
                while let Ok(Some(n)) = of::frame_len(&got) {
                    let frame: Vec<u8> = got.drain(..n).collect();
                    answers.push(of::Message::decode(&frame).map(|(_, m)| m.ty()));
                }
            }
            if answers.get(1) == Some(&Ok(of::ofpt::ERROR)) {
                errors += 1;
            }
        }
        // Round 2 leaves the manager waiting for bytes that never come: it must not wait.
    }
    assert!(errors > 10, "only {errors} ERRORs for the honest garbage");
    // Still switching and still answering.
    let before = flows(&ofctl_ok("dump-flows", &sw, &[]))[0].to_string();
    std::thread::sleep(Duration::from_millis(200));
    let after = flows(&ofctl_ok("dump-flows", &sw, &[]))[0].to_string();
    assert_ne!(before, after, "the rule's counters stopped: {before}");
    stop_cleanly(&mut mgr);
}

/// A rule that rewrites headers and sends copies: the actions run in order, each output
/// sends the packet as rewritten so far, `ALL` floods, and every checksum still holds.
#[test]
fn rules_rewrite_headers_and_send_copies() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-rewrite");
    let frames = distinct_udp_frames(40, 8);
    let out3 = format!("pcapout:{}", dir.join("out3.pcap").display());
    let mut mgr = start_pcap_mgr(
        &dir,
        &frames,
        1,
        &["--openflow-listen", "ptcp:0:127.0.0.1", "-p", &out3],
    );
    let sw = listen_addr(&mgr);
    let rule = "udp,in_port=1,actions=output:2,set_field:02:00:00:00:00:09->eth_dst,\
                set_field:10.9.9.9->ip_dst,set_field:4242->udp_dst,output:3,set_field:7->udp_src,ALL";
    ofctl_ok("add-flow", &sw, &[rule]);
    let dump = ofctl_ok("dump-flows", &sw, &[]);
    assert!(
        dump.contains("set_field:4242->udp_dst,output:3") && dump.contains("ALL"),
        "{dump}"
    );
    let (_nf, _) = start_forwarder(&mgr, &dir.socket(), 9, "idle");
    assert!(
        wait_for(SOON, || flows(&ofctl_ok("dump-flows", &sw, &[]))[0]
            .contains("n_packets=40,")),
        "{}",
        mgr.output()
    );
    stop_cleanly(&mut mgr);
    let (out2, out3) = (read_pcap(&dir.join("out.pcap")), read_pcap(&dir.join("out3.pcap")));
    let mut want2 = Vec::new();
    let mut want3 = Vec::new();
    for f in &frames {
        let mut rw = f.clone();
        onvm_packet::set_dst_mac(&mut rw, [2, 0, 0, 0, 0, 9]).unwrap();
        onvm_packet::set_ip(&mut rw, false, "10.9.9.9".parse().unwrap()).unwrap();
        onvm_packet::set_port(&mut rw, false, 4242).unwrap();
        let mut all = rw.clone();
        onvm_packet::set_port(&mut all, true, 7).unwrap();
        want2.extend([f.clone(), all.clone()]);
        want3.extend([rw, all]);
    }
    for (got, want) in [(&out2, &want2), (&out3, &want3)] {
        assert_eq!(got.len(), want.len());
        assert!(
            got.iter().all(|f| onvm_packet::verify_checksums(f) == Ok(true)),
            "a checksum broke"
        );
        assert!(got == want, "not the frames the actions make, in order");
    }
}

const MAC1: &str = "02:00:00:00:00:01";
const MAC2: &str = "02:00:00:00:00:02";

/// An Ethernet frame 02:..:01 → 02:..:02 with these 802.1Q tags (TCI), padded to 60.
fn frame(tags: &[u16], ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    for tci in tags {
        f.extend([0x81, 0x00]);
        f.extend(tci.to_be_bytes());
    }
    f.extend(ty.to_be_bytes());
    f.extend(payload);
    f.resize(f.len().max(60), 0);
    f
}

/// 10.0.0.1 → 10.0.0.2 with this TOS: an ICMP message (type, code), or TCP ports.
fn ipv4(tos: u8, icmp: Option<(u8, u8)>, tcp: Option<(u16, u16)>) -> Vec<u8> {
    let (proto, l4) = match (icmp, tcp) {
        (Some((t, c)), _) => (1, vec![t, c, 0, 0, 0, 1, 0, 1]),
        (None, Some((sp, dp))) => {
            let mut h = sp.to_be_bytes().to_vec();
            h.extend(dp.to_be_bytes());
            h.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
            (6, h)
        }
        (None, None) => (17, vec![0; 8]),
    };
    let len = u16::try_from(20 + l4.len()).unwrap();
    let mut ip = vec![0x45, tos];
    ip.extend(len.to_be_bytes());
    ip.extend([0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    ip.extend(l4);
    ip
}

/// An Ethernet/IPv4 ARP packet of this opcode between 10.0.0.1 and 10.0.0.2.
fn arp(op: u16) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend(op.to_be_bytes());
    a.extend([2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 2]);
    frame(&[], 0x0806, &a)
}

/// The match of a flow as ovs-ofctl prints it (from `priority=` to ` actions=`), field
/// by field, sorted.
fn match_fields(line: &str) -> Vec<String> {
    let from = line
        .find("priority=")
        .unwrap_or_else(|| panic!("no priority in {line:?}"));
    let to = line.find(" actions=").unwrap_or(line.len());
    let mut v: Vec<String> = line[from..to].split(',').map(str::to_string).collect();
    v.sort();
    v
}

/// What ovs-ofctl itself makes of a flow (`parse-flow`: its own encoding, decoded and
/// printed as dump-flows prints an Open vSwitch bridge's flows).
fn ovs_fields(flow: &str) -> Vec<String> {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "parse-flow", flow])
        .output()
        .expect("run ovs-ofctl parse-flow");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("FLOW_MOD"))
        .unwrap_or_else(|| panic!("ovs-ofctl cannot parse {flow}: {text}"));
    match_fields(line)
}

/// ovs-testcontroller's learned flows (its default flags): the whole packet as the
/// match, with the untagged-VLAN match, nw_tos/nw_ecn, ICMP type/code or ARP fields.
fn testcontroller_flows() -> Vec<String> {
    let l2 = format!("in_port=1,dl_vlan=0xffff,dl_src={MAC1},dl_dst={MAC2}");
    let ip = "nw_src=10.0.0.1,nw_dst=10.0.0.2,nw_tos=0,nw_ecn=0";
    vec![
        format!("priority=200,{l2},dl_type=0x0800,{ip},nw_proto=1,icmp_type=8,icmp_code=0,actions=output:2"),
        format!("priority=201,{l2},dl_type=0x0800,{ip},nw_proto=6,tp_src=1234,tp_dst=80,actions=output:2"),
        format!(
            "priority=202,{l2},dl_type=0x0806,arp_op=2,arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_sha={MAC1},arp_tha={MAC2},actions=output:2"
        ),
    ]
}

/// Every other supported field, written as ovs-ofctl users write them.
const WIDE_FLOWS: &[&str] = &[
    "priority=103,in_port=1,dl_vlan=10,dl_vlan_pcp=5,ip,nw_dst=10.0.0.1/255.0.255.255,nw_tos=184,nw_ecn=3,metadata=0xab00/0xff00,tun_id=0,actions=drop",
    "priority=104,dl_vlan_pcp=3,vlan_tci=0x1000/0x1000,sctp6,ipv6_src=2001::1/ffff::ffff,ipv6_label=0x12000/0xff000,sctp_src=5000,sctp_dst=80,actions=drop",
    "priority=105,vlan_tci=0x10a0/0x1ff0,udp6,ipv6_dst=2001:db8::/32,ipv6_label=0xabcde,tp_dst=53,actions=drop",
    "priority=106,icmp6,icmp_type=135,icmp_code=0,nd_target=fe80::2,nd_sll=02:00:00:00:00:03,actions=drop",
    "priority=107,icmp6,icmp_type=136,nd_target=fe80::3,nd_tll=02:00:00:00:00:04,actions=drop",
    "priority=108,mpls,mpls_label=1048575,mpls_tc=7,mpls_bos=1,actions=drop",
    "priority=109,arp,arp_op=1,arp_spa=10.0.0.0/24,arp_tpa=10.0.0.9,arp_sha=02:00:00:00:00:01,arp_tha=02:00:00:00:00:00/ff:ff:ff:00:00:00,actions=drop",
    "priority=110,dl_src=01:00:00:00:00:00/01:00:00:00:00:00,tcp,nw_src=10.1.0.0/255.255.0.255,tcp_dst=443,actions=drop",
    "priority=111,in_port=2,vlan_tci=0x1000/0x1000,icmp,icmp_type=3,icmp_code=1,actions=drop",
];

/// Every match field ovs-ofctl can send that onvm supports is accepted, and dump-flows
/// prints each flow back field for field as ovs-ofctl prints the same flow for an Open
/// vSwitch bridge; ovs-testcontroller's learned flows match the packets they were
/// learned from, and only those.
#[test]
fn ovs_ofctl_match_fields_and_testcontroller_flows() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let dir = TempDir::new("of-fields");
    let icmp = frame(&[], 0x0800, &ipv4(0, Some((8, 0)), None));
    let tcp = frame(&[], 0x0800, &ipv4(0, None, Some((1234, 80))));
    let frames = vec![
        icmp.clone(),
        frame(&[], 0x0800, &ipv4(0xb8, Some((8, 0)), None)), // another nw_tos
        frame(&[5], 0x0800, &ipv4(0, Some((8, 0)), None)),   // tagged
        frame(&[], 0x0800, &ipv4(0, Some((0, 0)), None)),    // another ICMP type
        arp(2),
        arp(1), // another arp_op
        tcp.clone(),
        frame(&[], 0x0800, &ipv4(0, None, Some((1234, 81)))), // another tp_dst
    ];
    let mgr = start_pcap_mgr(&dir, &frames, 1, &["--openflow-listen", "ptcp:0:127.0.0.1"]);
    let sw = listen_addr(&mgr);
    let learned = testcontroller_flows();
    let all: Vec<&str> = learned
        .iter()
        .map(String::as_str)
        .chain(WIDE_FLOWS.iter().copied())
        .collect();
    for f in &all {
        ofctl_ok("add-flow", &sw, &[f]);
    }
    let dump = ofctl_ok("dump-flows", &sw, &[]);
    let lines = flows(&dump);
    assert_eq!(lines.len(), all.len(), "{dump}");
    for f in &all {
        let want = ovs_fields(f);
        let prio = &want.iter().find(|x| x.starts_with("priority=")).unwrap().clone();
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("{prio},")))
            .unwrap_or_else(|| panic!("no {prio} in\n{dump}"));
        assert_eq!(match_fields(line), want, "{f} reads back as\n{line}");
    }
    // Prerequisites and field widths are the spec's; ovs-ofctl would not even send
    // most broken ones, so they are checked against the codec in onvm-openflow.
    let (ok, text) = ofctl("add-flow", &sw, &["ip,nw_ttl=5,actions=drop"]);
    assert!(!ok && text.contains("OFPBMC_BAD_FIELD"), "{text}");

    // The learned flows forward exactly the packets they were learned from.
    let (_nf, _) = start_forwarder(&mgr, &dir.socket(), 1, "fwd");
    let mut dump = String::new();
    let seen = wait_for(SOON, || {
        dump = ofctl_ok("dump-flows", &sw, &[]);
        flows(&dump).iter().filter(|l| l.contains("n_packets=1,")).count() == 3
    });
    assert!(seen, "each learned flow should count its one packet:\n{dump}");
    let out = stop(mgr, &dir);
    assert_eq!(out, vec![icmp, arp(2), tcp]);
}
