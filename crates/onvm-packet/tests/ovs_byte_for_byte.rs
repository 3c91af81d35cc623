//! Byte for byte against Open vSwitch: the same frames, run through OVS's userspace
//! datapath (`ovs-vswitchd --enable-dummy`, a `dummy` bridge, OpenFlow 1.3 packet-outs
//! whose actions end in `output:2`, captured by the dummy port's `tx_pcap`) and through
//! this crate's functions, must come out as the same bytes.
//!
//! Needs ovs-vswitchd, ovsdb-server, ovsdb-tool, ovs-vsctl and ovs-ofctl
//! (`apt install openvswitch-switch`; scripts/deps.sh installs it); fails without them.
//! The daemons run as children of the test, in a temporary folder of their own, and are
//! killed when it ends.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use onvm_packet::etherparse::{Icmpv6Type, IpNumber, PacketBuilder, icmpv6::NeighborAdvertisementHeader};
use onvm_packet::*;

/// One action of a case, as this crate carries it out.
#[derive(Clone, Copy, Debug)]
enum Op {
    Set(Field),
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    DecTtl,
    SetNwTtl(u8),
    SetMplsTtl(u8),
    DecMplsTtl,
}

const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
const S6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const D6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn udp4(tos: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
        .udp(1234, 53)
        .write(&mut f, payload)
        .unwrap();
    f[15] = tos;
    fix_checksums(&mut f).unwrap();
    f
}
fn tcp4(payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([192, 168, 0, 1], [172, 16, 5, 4], 64)
        .tcp(40000, 80, 12345, 1000)
        .ack(77)
        .write(&mut f, payload)
        .unwrap();
    f
}
fn tcp6() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(S6, D6, 64)
        .tcp(40000, 443, 1, 1000)
        .write(&mut f, b"tls")
        .unwrap();
    f
}
fn udp6() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(S6, D6, 3)
        .udp(5000, 53)
        .write(&mut f, b"dns?")
        .unwrap();
    f
}
fn icmp4() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .icmpv4_echo_request(7, 1)
        .write(&mut f, b"ping")
        .unwrap();
    f
}
fn icmp6() -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(S6, D6, 64)
        .icmpv6_echo_request(7, 1)
        .write(&mut f, b"ping")
        .unwrap();
    f
}
fn sctp(v6: bool) -> Vec<u8> {
    let mut l4 = vec![0x04, 0xd2, 0x16, 0x2e, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0];
    l4.extend_from_slice(&[0, 3, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, b'd', b'a', b't', b'a']);
    let mut f = Vec::new();
    if v6 {
        PacketBuilder::ethernet2(A, B)
            .ipv6(S6, D6, 64)
            .write(&mut f, IpNumber(132), &l4)
            .unwrap();
    } else {
        PacketBuilder::ethernet2(A, B)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .write(&mut f, IpNumber(132), &l4)
            .unwrap();
    }
    fix_checksums(&mut f).unwrap();
    f
}
fn nd(t: u8, opts: &[u8]) -> Vec<u8> {
    let ty = if t == 135 {
        Icmpv6Type::NeighborSolicitation
    } else {
        Icmpv6Type::NeighborAdvertisement(NeighborAdvertisementHeader {
            router: false,
            solicited: true,
            r#override: true,
        })
    };
    let mut f = Vec::new();
    PacketBuilder::ethernet2(A, B)
        .ipv6(S6, D6, 255)
        .icmpv6(ty)
        .write(&mut f, &[&D6[..], opts].concat())
        .unwrap();
    f
}
fn arp() -> Vec<u8> {
    let mut f = [&[0xff; 6][..], &A, &[0x08, 0x06]].concat();
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&A);
    f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
    f.resize(60, 0);
    f
}
fn tagged(mut f: Vec<u8>, tpid: u16, tci: u16) -> Vec<u8> {
    f.splice(12..12, [(tpid >> 8) as u8, tpid as u8, (tci >> 8) as u8, tci as u8]);
    f
}
fn labelled(mut f: Vec<u8>, lses: &[[u8; 4]]) -> Vec<u8> {
    f[12..14].copy_from_slice(&[0x88, 0x47]);
    let mut at = 14;
    for l in lses {
        f.splice(at..at, *l);
        at += 4;
    }
    f
}

fn apply(mut f: Vec<u8>, ops: &[Op]) -> Result<Vec<u8>, Error> {
    for op in ops {
        match *op {
            Op::Set(x) => set_field(&mut f, x)?,
            Op::PushVlan(t) => push_vlan_vec(&mut f, t)?,
            Op::PopVlan => pop_vlan_vec(&mut f)?,
            Op::PushMpls(t) => push_mpls_vec(&mut f, t)?,
            Op::PopMpls(t) => pop_mpls_ovs_vec(&mut f, t)?,
            Op::DecTtl => drop(dec_nw_ttl(&mut f)?),
            Op::SetNwTtl(t) => set_nw_ttl(&mut f, t)?,
            Op::SetMplsTtl(t) => set_mpls_ttl(&mut f, t)?,
            Op::DecMplsTtl => drop(dec_mpls_ttl(&mut f)?),
        }
    }
    Ok(f)
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// ovsdb-server and ovs-vswitchd, children of this test, in a folder of their own; a
/// bridge with dummy ports 1 and 2, port 2 writing what it sends to `p2.pcap`.
struct Ovs {
    // Declared first: the daemons stop before their folder goes.
    children: Vec<Child>,
    dir: PathBuf,
}

impl Drop for Ovs {
    fn drop(&mut self) {
        for c in self.children.iter_mut().rev() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Ovs {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR", "OVS_SYSCONFDIR"] {
            c.env(var, &self.dir);
        }
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program} ({e}): this test needs Open vSwitch: apt install openvswitch-switch (scripts/deps.sh installs it)"));
        assert!(
            out.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn start() -> Ovs {
        let dir = std::env::temp_dir().join(format!("onvm-packet-ovs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ovs = Ovs {
            children: Vec::new(),
            dir,
        };
        let d = ovs.dir.display().to_string();
        let schema = "/usr/share/openvswitch/vswitch.ovsschema";
        ovs.run("ovsdb-tool", &["create", &format!("{d}/conf.db"), schema]);
        let spawn = |ovs: &mut Ovs, program: &str, args: Vec<String>| {
            let child = ovs
                .cmd(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {program} ({e}): this test needs Open vSwitch: apt install openvswitch-switch")
                });
            ovs.children.push(child);
        };
        spawn(
            &mut ovs,
            "ovsdb-server",
            vec![
                format!("{d}/conf.db"),
                format!("--remote=punix:{d}/db.sock"),
                format!("--pidfile={d}/ovsdb-server.pid"),
                format!("--unixctl={d}/ovsdb-server.ctl"),
                format!("--log-file={d}/ovsdb-server.log"),
            ],
        );
        let db = format!("--db=unix:{d}/db.sock");
        ovs.wait_for(&format!("{d}/db.sock"));
        ovs.run("ovs-vsctl", &[&db, "--timeout=15", "--no-wait", "init"]);
        spawn(
            &mut ovs,
            "ovs-vswitchd",
            vec![
                format!("unix:{d}/db.sock"),
                "--enable-dummy=override".into(),
                "--disable-system".into(),
                format!("--pidfile={d}/ovs-vswitchd.pid"),
                format!("--unixctl={d}/ovs-vswitchd.ctl"),
                format!("--log-file={d}/ovs-vswitchd.log"),
            ],
        );
        let pcap = format!("options:tx_pcap={d}/p2.pcap");
        ovs.run(
            "ovs-vsctl",
            &[
                &db,
                "--timeout=15",
                "add-br",
                "br0",
                "--",
                "set",
                "bridge",
                "br0",
                "datapath_type=dummy",
                "fail-mode=secure",
                "protocols=OpenFlow13",
                "--",
                "add-port",
                "br0",
                "p1",
                "--",
                "set",
                "interface",
                "p1",
                "type=dummy",
                "ofport_request=1",
                "--",
                "add-port",
                "br0",
                "p2",
                "--",
                "set",
                "interface",
                "p2",
                "type=dummy",
                "ofport_request=2",
                &pcap,
            ],
        );
        ovs.wait_for(&format!("{d}/br0.mgmt"));
        ovs
    }

    fn wait_for(&self, path: &str) {
        let start = Instant::now();
        while !Path::new(path).exists() {
            assert!(start.elapsed() < Duration::from_secs(20), "{path} did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Frames port 2 has sent so far, from its pcap file.
    fn sent(&self) -> Vec<Vec<u8>> {
        let data = std::fs::read(self.dir.join("p2.pcap")).unwrap_or_default();
        let mut out = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let len = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
            let Some(frame) = data.get(at + 16..at + 16 + len) else {
                break;
            };
            out.push(frame.to_vec());
            at += 16 + len;
        }
        out
    }

    /// Runs `frame` through `actions` then `output:2`; returns what port 2 sent, `None`
    /// if nothing (checked by a marker frame sent straight after).
    fn packet_out(&self, frame: &[u8], actions: &str) -> Option<Vec<u8>> {
        let before = self.sent().len();
        let target = format!("unix:{}", self.dir.join("br0.mgmt").display());
        let out = |packet: &[u8], actions: &str| {
            let spec = format!("in_port=1 packet={} actions={actions},output:2", hex(packet));
            self.run("ovs-ofctl", &["-O", "OpenFlow13", "packet-out", &target, &spec]);
        };
        out(frame, actions);
        let marker = [
            &[0xff; 6][..],
            &[2, 0, 0, 0, 0, 0x99],
            &[0x88, 0xb5],
            b"onvm-packet marker",
        ]
        .concat();
        out(&marker, "set_field:02:00:00:00:00:99->eth_src");
        let start = Instant::now();
        loop {
            let sent = self.sent();
            if let Some(i) = sent[before.min(sent.len())..].iter().position(|f| *f == marker) {
                return (i > 0).then(|| sent[before].clone());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "port 2 sent no marker frame");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn same_bytes_as_open_vswitch() {
    use Field as F;
    use Op::*;
    let ip4 = |s: &str| IpAddr::V4(s.parse::<Ipv4Addr>().unwrap());
    let ip6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    let mut udp0 = udp4(0, 64, b"hello");
    udp0[40..42].fill(0);
    let sll = [1u8, 1, 0xa, 0xa, 0xa, 0xa, 0xa, 0xa];
    let tll = [2u8, 1, 0xb, 0xb, 0xb, 0xb, 0xb, 0xb];
    let cases: Vec<(&str, Vec<u8>, &str, Vec<Op>)> = vec![
        (
            "eth",
            udp4(0, 64, b"x"),
            "set_field:02:aa:bb:cc:dd:ee->eth_src,set_field:02:11:22:33:44:55->eth_dst",
            vec![
                Set(F::EthSrc([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])),
                Set(F::EthDst([2, 0x11, 0x22, 0x33, 0x44, 0x55])),
            ],
        ),
        (
            "ip4src-udp",
            udp4(0, 64, b"hello"),
            "set_field:198.51.100.200->ip_src",
            vec![Set(F::IpSrc(ip4("198.51.100.200")))],
        ),
        (
            "ip4dst-tcp",
            tcp4(b"GET /"),
            "set_field:203.0.113.9->ip_dst",
            vec![Set(F::IpDst(ip4("203.0.113.9")))],
        ),
        (
            "ip4both-udp0",
            udp0.clone(),
            "set_field:1.2.3.4->ip_src,set_field:5.6.7.8->ip_dst,set_field:999->udp_src",
            vec![
                Set(F::IpSrc(ip4("1.2.3.4"))),
                Set(F::IpDst(ip4("5.6.7.8"))),
                Set(F::L4Src(999)),
            ],
        ),
        (
            "ports-tcp",
            tcp4(b"abc"),
            "set_field:1->tcp_src,set_field:65535->tcp_dst",
            vec![Set(F::L4Src(1)), Set(F::L4Dst(65535))],
        ),
        (
            "ports-udp",
            udp4(0, 64, b"hello"),
            "set_field:53->udp_src,set_field:5353->udp_dst",
            vec![Set(F::L4Src(53)), Set(F::L4Dst(5353))],
        ),
        (
            "ip6-tcp",
            tcp6(),
            "set_field:2001:db8::99->ipv6_src,set_field:fe80::1->ipv6_dst",
            vec![Set(F::IpSrc(ip6("2001:db8::99"))), Set(F::IpDst(ip6("fe80::1")))],
        ),
        (
            "ip6-udp-ports",
            udp6(),
            "set_field:2001:db8::77->ipv6_dst,set_field:7->udp_dst",
            vec![Set(F::IpDst(ip6("2001:db8::77"))), Set(F::L4Dst(7))],
        ),
        (
            "ip6-icmp6",
            icmp6(),
            "set_field:2001:db8::55->ipv6_src",
            vec![Set(F::IpSrc(ip6("2001:db8::55")))],
        ),
        (
            "sctp4",
            sctp(false),
            "set_field:5000->sctp_src,set_field:6000->sctp_dst",
            vec![Set(F::L4Src(5000)), Set(F::L4Dst(6000))],
        ),
        ("sctp6", sctp(true), "set_field:80->sctp_dst", vec![Set(F::L4Dst(80))]),
        (
            "sctp4-ip",
            sctp(false),
            "set_field:9.9.9.9->ip_src",
            vec![Set(F::IpSrc(ip4("9.9.9.9")))],
        ),
        (
            "dscp4",
            udp4(0x03, 64, b"q"),
            "set_field:46->ip_dscp",
            vec![Set(F::IpDscp(46))],
        ),
        (
            "ecn4",
            udp4(0xb8, 64, b"q"),
            "set_field:1->ip_ecn",
            vec![Set(F::IpEcn(1))],
        ),
        (
            "dscp6",
            tcp6(),
            "set_field:10->ip_dscp,set_field:2->ip_ecn",
            vec![Set(F::IpDscp(10)), Set(F::IpEcn(2))],
        ),
        (
            "flabel",
            tcp6(),
            "set_field:0xabcde->ipv6_label",
            vec![Set(F::Ipv6Flabel(0xabcde))],
        ),
        (
            "icmp4",
            icmp4(),
            "set_field:13->icmp_type,set_field:1->icmp_code",
            vec![Set(F::IcmpType(13)), Set(F::IcmpCode(1))],
        ),
        (
            "icmp6",
            icmp6(),
            "set_field:129->icmpv6_type,set_field:3->icmpv6_code",
            vec![Set(F::IcmpType(129)), Set(F::IcmpCode(3))],
        ),
        (
            "arp",
            arp(),
            "set_field:2->arp_op,set_field:192.0.2.1->arp_spa,set_field:192.0.2.2->arp_tpa,set_field:02:aa:aa:aa:aa:aa->arp_sha,set_field:02:bb:bb:bb:bb:bb->arp_tha",
            vec![
                Set(F::ArpOp(2)),
                Set(F::ArpSpa("192.0.2.1".parse().unwrap())),
                Set(F::ArpTpa("192.0.2.2".parse().unwrap())),
                Set(F::ArpSha([2, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa])),
                Set(F::ArpTha([2, 0xbb, 0xbb, 0xbb, 0xbb, 0xbb])),
            ],
        ),
        (
            "nd-target",
            nd(135, &sll),
            "set_field:2001:db8::abc->nd_target",
            vec![Set(F::NdTarget("2001:db8::abc".parse().unwrap()))],
        ),
        (
            "nd-sll",
            nd(135, &sll),
            "set_field:02:cc:cc:cc:cc:cc->nd_sll",
            vec![Set(F::NdSll([2, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]))],
        ),
        (
            "nd-sll-absent",
            nd(135, &[]),
            "set_field:02:cc:cc:cc:cc:cc->nd_sll",
            vec![Set(F::NdSll([2, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc]))],
        ),
        (
            "nd-tll",
            nd(136, &tll),
            "set_field:02:dd:dd:dd:dd:dd->nd_tll",
            vec![Set(F::NdTll([2, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd]))],
        ),
        (
            "nd-tll-skip",
            nd(136, &[&[14u8, 1, 0, 0, 0, 0, 0, 0][..], &tll].concat()),
            "set_field:02:dd:dd:dd:dd:dd->nd_tll",
            vec![Set(F::NdTll([2, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd]))],
        ),
        (
            "vid",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x300a),
            "set_field:0x1064->vlan_vid",
            vec![Set(F::VlanVid(100))],
        ),
        (
            "vid-dei",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x300a),
            "set_field:7->vlan_pcp",
            vec![Set(F::VlanPcp(7))],
        ),
        (
            "vid-same",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x300a),
            "set_field:0x100a->vlan_vid",
            vec![Set(F::VlanVid(10))],
        ),
        (
            "push-vlan",
            udp4(0, 64, b"v"),
            "push_vlan:0x8100",
            vec![PushVlan(0x8100)],
        ),
        (
            "push-vlan-vid",
            udp4(0, 64, b"v"),
            "push_vlan:0x8100,set_field:0x1037->vlan_vid",
            vec![PushVlan(0x8100), Set(F::VlanVid(55))],
        ),
        (
            "push-qinq",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x6064),
            "push_vlan:0x88a8",
            vec![PushVlan(0x88a8)],
        ),
        (
            "push-qinq-vid",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x6064),
            "push_vlan:0x88a8,set_field:0x112c->vlan_vid",
            vec![PushVlan(0x88a8), Set(F::VlanVid(300))],
        ),
        (
            "pop-vlan",
            tagged(udp4(0, 64, b"v"), 0x8100, 0x6064),
            "pop_vlan",
            vec![PopVlan],
        ),
        (
            "pop-qinq",
            tagged(tagged(udp4(0, 64, b"v"), 0x8100, 0x6064), 0x88a8, 0x012c),
            "pop_vlan",
            vec![PopVlan],
        ),
        (
            "push-mpls4",
            udp4(0xb9, 33, b"m"),
            "push_mpls:0x8847",
            vec![PushMpls(0x8847)],
        ),
        ("push-mpls6", tcp6(), "push_mpls:0x8848", vec![PushMpls(0x8848)]),
        ("push-mpls-arp", arp(), "push_mpls:0x8847", vec![PushMpls(0x8847)]),
        (
            "push-mpls-vlan",
            tagged(udp4(0, 20, b"m"), 0x8100, 0x000a),
            "push_mpls:0x8847",
            vec![PushMpls(0x8847)],
        ),
        (
            "push-mpls-2",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x85, 40]]),
            "push_mpls:0x8847",
            vec![PushMpls(0x8847)],
        ),
        (
            "push-mpls-2-label",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x85, 40]]),
            "push_mpls:0x8847,set_field:77->mpls_label",
            vec![PushMpls(0x8847), Set(F::MplsLabel(77))],
        ),
        (
            "pop-mpls",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x81, 40]]),
            "pop_mpls:0x0800",
            vec![PopMpls(0x0800)],
        ),
        (
            "pop-mpls-2",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x80, 40], [0, 0x3e, 0x81, 40]]),
            "pop_mpls:0x8847",
            vec![PopMpls(0x8847)],
        ),
        (
            "mpls-fields",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x81, 40]]),
            "set_field:1048575->mpls_label,set_field:5->mpls_tc",
            vec![Set(F::MplsLabel(1048575)), Set(F::MplsTc(5))],
        ),
        (
            "mpls-ttl",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x81, 40]]),
            "set_mpls_ttl:9",
            vec![SetMplsTtl(9)],
        ),
        (
            "dec-mpls-ttl",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x81, 40]]),
            "dec_mpls_ttl",
            vec![DecMplsTtl],
        ),
        ("dec-ttl4", udp4(0, 64, b"t"), "dec_ttl", vec![DecTtl]),
        ("dec-ttl4-tcp", tcp4(b"zz"), "dec_ttl,dec_ttl", vec![DecTtl, DecTtl]),
        ("dec-ttl6", udp6(), "dec_ttl", vec![DecTtl]),
        ("set-ttl", udp4(0, 64, b"t"), "set_nw_ttl:1", vec![SetNwTtl(1)]),
        (
            "combo",
            tagged(tcp4(b"combo"), 0x8100, 0x2005),
            "set_field:10.1.1.1->ip_src,set_field:8080->tcp_dst,dec_ttl,set_field:12->ip_dscp,pop_vlan,push_mpls:0x8847",
            vec![
                Set(F::IpSrc(ip4("10.1.1.1"))),
                Set(F::L4Dst(8080)),
                DecTtl,
                Set(F::IpDscp(12)),
                PopVlan,
                PushMpls(0x8847),
            ],
        ),
    ];
    // A UDP frame whose checksum becomes 0 (sent as 0xffff) after setting udp_dst.
    let base = udp4(0, 64, b"hello");
    let zero_port = (0..=u16::MAX)
        .find(|&p| {
            let mut f = base.clone();
            f[36..38].copy_from_slice(&p.to_be_bytes());
            fix_checksums(&mut f).unwrap();
            f[40..42] == [0xff, 0xff]
        })
        .unwrap();
    let mut bad_tcp = tcp4(b"bad");
    bad_tcp[50] ^= 0x33;
    let mut opts = udp4(0, 64, b"opts");
    opts.splice(34..34, [1, 1, 1, 0]);
    opts[14] = 0x46;
    opts[17] += 4;
    fix_checksums(&mut opts).unwrap();
    let mut padded = udp4(0, 64, b"p");
    padded.resize(60, 0);
    let rh6 = {
        let mut f = [&B[..], &A, &[0x86, 0xdd]].concat();
        let udp = [0x04, 0xd2, 0, 53, 0, 10, 0, 0, b'h', b'i'];
        let rh = [[17u8, 2, 0, 1, 0, 0, 0, 0].as_slice(), &D6].concat();
        let mut ip = vec![0x60, 0, 0, 0];
        ip.extend_from_slice(&((rh.len() + udp.len()) as u16).to_be_bytes());
        ip.extend_from_slice(&[43, 64]);
        ip.extend_from_slice(&S6);
        ip.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x33, 0x33]);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&rh);
        f.extend_from_slice(&udp);
        f
    };
    let extra: Vec<(&str, Vec<u8>, &str, Vec<Op>)> = vec![
        (
            "udp-zero-sum",
            base.clone(),
            "ZERO_SUM_PORT",
            vec![Set(F::L4Dst(zero_port))],
        ),
        (
            "bad-tcp-sum",
            bad_tcp,
            "set_field:7->tcp_src,set_field:1.1.1.1->ip_dst",
            vec![Set(F::L4Src(7)), Set(F::IpDst(ip4("1.1.1.1")))],
        ),
        (
            "ip4-options",
            opts,
            "set_field:4.4.4.4->ip_src,set_field:99->udp_src,dec_ttl",
            vec![Set(F::IpSrc(ip4("4.4.4.4"))), Set(F::L4Src(99)), DecTtl],
        ),
        (
            "padded-push-pop",
            padded.clone(),
            "push_vlan:0x88a8,push_mpls:0x8847",
            vec![PushVlan(0x88a8), PushMpls(0x8847)],
        ),
        (
            "padded-set",
            padded,
            "set_field:6.6.6.6->ip_dst",
            vec![Set(F::IpDst(ip4("6.6.6.6")))],
        ),
        (
            "rh6-dst",
            rh6.clone(),
            "set_field:2001:db8::4444->ipv6_dst",
            vec![Set(F::IpDst(ip6("2001:db8::4444")))],
        ),
        (
            "rh6-src",
            rh6,
            "set_field:2001:db8::5555->ipv6_src",
            vec![Set(F::IpSrc(ip6("2001:db8::5555")))],
        ),
        (
            "pop-mpls-notbos",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x80, 40], [0, 0x3e, 0x81, 40]]),
            "pop_mpls:0x0800",
            vec![PopMpls(0x0800)],
        ),
        (
            "push-mpls-3",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x80, 40], [0, 0x3e, 0x81, 40]]),
            "push_mpls:0x8847",
            vec![PushMpls(0x8847)],
        ),
        ("dec-ttl-1", udp4(0, 1, b"t"), "dec_ttl", vec![DecTtl]),
        (
            "dec-mpls-ttl-1",
            labelled(udp4(0, 64, b"m"), &[[0, 0x3e, 0x81, 1]]),
            "dec_mpls_ttl",
            vec![DecMplsTtl],
        ),
        (
            "icmp4-odd",
            {
                let mut f = Vec::new();
                PacketBuilder::ethernet2(A, B)
                    .ipv4([1, 1, 1, 1], [2, 2, 2, 2], 9)
                    .icmpv4_echo_request(1, 1)
                    .write(&mut f, b"odd")
                    .unwrap();
                f
            },
            "set_field:0->icmp_type",
            vec![Set(F::IcmpType(0))],
        ),
        (
            "tos-dscp-same",
            udp4(0xb8, 64, b"q"),
            "set_field:46->ip_dscp",
            vec![Set(F::IpDscp(46))],
        ),
        (
            "dei-tag-pcp",
            tagged(udp4(0, 64, b"v"), 0x88a8, 0x1005),
            "set_field:3->vlan_pcp",
            vec![Set(F::VlanPcp(3))],
        ),
    ];
    let cases: Vec<_> = cases.into_iter().chain(extra).collect();
    let ovs = Ovs::start();
    let mut differ = Vec::new();
    for (name, frame, actions, ops) in &cases {
        let actions = match *actions {
            "ZERO_SUM_PORT" => format!("set_field:{zero_port}->udp_dst"),
            a => a.to_string(),
        };
        let theirs = ovs.packet_out(frame, &actions);
        let ours = apply(frame.clone(), ops);
        let same = match (&theirs, &ours) {
            (Some(t), Ok(o)) => t == o,
            // OVS sends nothing on; here that is an invalid TTL.
            (None, Err(Error::InvalidTtl { .. })) => true,
            _ => false,
        };
        if !same {
            differ.push(format!(
                "{name} ({actions}):\n  in   {}\n  ovs  {:?}\n  ours {:?}",
                hex(frame),
                theirs.as_deref().map(hex),
                ours.as_deref().map(hex)
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} cases differ from OVS:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
