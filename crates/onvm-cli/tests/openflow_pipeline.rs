//! The manager's OpenFlow 1.3 pipeline end to end, programmed by Open vSwitch's
//! `ovs-ofctl -O OpenFlow13` (add-flow, add-group, add-meter): VLAN and MPLS push/pop,
//! TTL decrements (and INVALID_TTL to a controller), set-field of every header, the
//! action set (write/clear-actions, write-metadata, goto), groups of every type,
//! chained, and meters. Frames are built with etherparse and replayed from a pcap
//! into port 1; what port 2 writes is compared byte for byte with what the spec and
//! Open vSwitch emit for the same rule (built with etherparse too, not with the code
//! under test), and the counters are read back as a user would: dump-flows,
//! dump-group-stats, meter-stats, the manager's drop reasons.
//!
//! Needs `ovs-ofctl` (Debian `openvswitch-common`); without it each test fails naming
//! it (`ONVM_ALLOW_SKIP=1` skips instead).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::time::Duration;

use onvm_packet::etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, DoubleVlanHeader, EtherType, IpDscp, IpEcn, IpHeaders, IpNumber,
    Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetSlice, PacketBuilder, SingleVlanHeader, SlicedPacket, VlanHeader, VlanId,
    VlanPcp,
};

use onvm_openflow as of;

use common::openflow::{RawController, flows, have_ovs_ofctl, listen_addr, ofctl, ofctl_ok, start_pcap_mgr};
use common::{Proc, SOON, TempDir, read_pcap, start_forwarder, stop_cleanly, wait_for};

const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Source MAC number `n`: the tests tell their flows apart by it (`dl_src=`).
const fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, n]
}

/// [`mac`] as ovs-ofctl writes it.
fn mac_str(n: u8) -> String {
    format!("02:00:00:00:01:{n:02x}")
}

/// The tags of a test frame.
#[derive(Clone, Copy, Debug)]
enum Tags {
    None,
    /// One 802.1Q tag with this TCI.
    Q(u16),
    /// An 802.1ad tag (VID `outer`) over an 802.1Q one (VID `inner`), PCP 0.
    QinQ {
        outer: u16,
        inner: u16,
    },
}

/// An Ethernet/IPv4/UDP test frame, as fields; [`V4::frame`] builds it.
#[derive(Clone, Copy, Debug)]
struct V4 {
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    tags: Tags,
    src: [u8; 4],
    dst: [u8; 4],
    ttl: u8,
    dscp: u8,
    ecn: u8,
    sport: u16,
    dport: u16,
    /// Written into the payload, so that no two frames are equal.
    seq: u32,
}

impl V4 {
    fn new(src_mac: u8, seq: u32) -> V4 {
        V4 {
            src_mac: mac(src_mac),
            dst_mac: DST_MAC,
            tags: Tags::None,
            src: [10, 0, 0, 1],
            dst: [10, 0, 0, 2],
            ttl: 64,
            dscp: 0,
            ecn: 0,
            sport: 1000,
            dport: 53,
            seq,
        }
    }

    fn frame(&self) -> Vec<u8> {
        let eth = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let mut ip = Ipv4Header::new(0, self.ttl, IpNumber::UDP, self.src, self.dst).unwrap();
        ip.dscp = IpDscp::try_new(self.dscp).unwrap();
        ip.ecn = IpEcn::try_new(self.ecn).unwrap();
        let ip = IpHeaders::Ipv4(ip, Default::default());
        let tag = |tci: u16, ether_type| SingleVlanHeader {
            pcp: VlanPcp::try_new((tci >> 13) as u8).unwrap(),
            drop_eligible_indicator: tci & 0x1000 != 0,
            vlan_id: VlanId::try_new(tci & 0xfff).unwrap(),
            ether_type,
        };
        let l3 = match self.tags {
            Tags::None => eth.ip(ip),
            Tags::Q(tci) => eth.vlan(VlanHeader::Single(tag(tci, EtherType::IPV4))).ip(ip),
            Tags::QinQ { outer, inner } => eth
                .vlan(VlanHeader::Double(DoubleVlanHeader {
                    outer: tag(outer, EtherType::VLAN_TAGGED_FRAME),
                    inner: tag(inner, EtherType::IPV4),
                }))
                .ip(ip),
        };
        let mut out = Vec::new();
        l3.udp(self.sport, self.dport)
            .write(&mut out, &payload(self.seq))
            .unwrap();
        out
    }
}

/// 32 bytes: `seq`, then a fixed pattern (frames stay over 60 bytes when a tag is popped).
fn payload(seq: u32) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((0..28).map(|i| 0xa0 + i));
    p
}

/// An Ethernet/IPv6/UDP frame from [`mac`] `src_mac` with this hop limit.
fn v6_frame(src_mac: u8, hop_limit: u8, seq: u32) -> Vec<u8> {
    let (mut src, mut dst) = ([0u8; 16], [0u8; 16]);
    src[..2].copy_from_slice(&[0x20, 0x01]);
    dst[..2].copy_from_slice(&[0x20, 0x01]);
    (src[15], dst[15]) = (1, 2);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(src_mac), DST_MAC)
        .ipv6(src, dst, hop_limit)
        .udp(1000, 53)
        .write(&mut out, &payload(seq))
        .unwrap();
    out
}

/// `frame` (untagged) with the MPLS label stack `lses` (outermost first) inserted after
/// the Ethernet header and the EtherType 0x8847.
fn with_mpls(frame: &[u8], lses: &[u32]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend([0x88, 0x47]);
    for l in lses {
        f.extend(l.to_be_bytes());
    }
    f.extend(&frame[14..]);
    f
}

/// An MPLS label stack entry: label, traffic class, bottom of stack, TTL.
fn lse(label: u32, tc: u32, bos: bool, ttl: u8) -> u32 {
    (label << 12) | (tc << 9) | (u32::from(bos) << 8) | u32::from(ttl)
}

/// What a frame says when parsed back, for the failure messages.
fn describe(f: &[u8]) -> String {
    match SlicedPacket::from_ethernet(f) {
        Err(e) => format!("unparsable ({e}): {f:02x?}"),
        Ok(p) => {
            let vlans: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
            let net = match &p.net {
                Some(NetSlice::Ipv4(ip)) => {
                    let h = ip.header();
                    format!(
                        "{} -> {} ttl {} dscp {}",
                        h.source_addr(),
                        h.destination_addr(),
                        h.ttl(),
                        h.dcp().value()
                    )
                }
                Some(NetSlice::Ipv6(ip)) => {
                    let h = ip.header();
                    format!("{} -> {} hop {}", h.source_addr(), h.destination_addr(), h.hop_limit())
                }
                _ => "not IP".to_string(),
            };
            format!("{} bytes, vlans {vlans:?}, {net}", f.len())
        }
    }
}

/// Assert `got == want` frame by frame, saying which differs and how.
#[track_caller]
fn assert_frames(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            g == w,
            "{what}: frame {i} differs\n got  {}\n want {}\n got  {g:02x?}\n want {w:02x?}",
            describe(g),
            describe(w)
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: how many frames port 2 sent");
}

/// A manager whose port 1 replays `frames` once the rules are in; port 2 is written.
struct Bench {
    dir: TempDir,
    mgr: Proc,
    /// The switch, as an ovs-ofctl target.
    sw: String,
    sent: usize,
    _nf: Option<Proc>,
}

/// What a run left: the frames port 2 sent and the manager's drop counters.
struct Run {
    out: Vec<Vec<u8>>,
    drops: BTreeMap<String, u64>,
    summary: String,
}

impl Run {
    /// Drops counted under `reason` (0 if none).
    fn dropped(&self, reason: &str) -> u64 {
        self.drops.get(reason).copied().unwrap_or(0)
    }
}

impl Bench {
    fn new(name: &str, frames: &[Vec<u8>]) -> Bench {
        Bench::with(name, frames, &[])
    }

    /// [`Bench::new`] with these more arguments for the manager.
    fn with(name: &str, frames: &[Vec<u8>], extra: &[&str]) -> Bench {
        let dir = TempDir::new(name);
        let mut args = vec!["--openflow-listen", "ptcp:0:127.0.0.1"];
        args.extend_from_slice(extra);
        let mgr = start_pcap_mgr(&dir, frames, 1, &args);
        let sw = listen_addr(&mgr);
        Bench {
            dir,
            mgr,
            sw,
            sent: frames.len(),
            _nf: None,
        }
    }

    /// `ovs-ofctl CMD SWITCH ARGS`, which must succeed.
    fn ofctl(&self, cmd: &str, args: &[&str]) -> String {
        ofctl_ok(cmd, &self.sw, args)
    }

    /// add-flow for each rule.
    fn add_flows(&self, rules: &[&str]) {
        for r in rules {
            self.ofctl("add-flow", &[r]);
        }
    }

    /// The flow lines of dump-flows.
    fn dump_flows(&self) -> String {
        self.ofctl("dump-flows", &[])
    }

    /// Start the replay (an NF no rule sends to comes up) and wait until port 1 has
    /// received every frame and port 2 has stopped sending.
    fn replay(&mut self) {
        let (nf, _) = start_forwarder(&self.mgr, &self.dir.socket(), 9, "idle");
        self._nf = Some(nf);
        let rx = format!("rx pkts={},", self.sent);
        let mut ports = String::new();
        let received = wait_for(SOON, || {
            ports = self.ofctl("dump-ports", &[]);
            port_lines(&ports, 1).contains(&rx)
        });
        assert!(
            received,
            "port 1 did not receive {} frames\n{ports}\n{}",
            self.sent,
            self.mgr.output()
        );
        // Settled: the same counters three times, 50 ms apart.
        let (mut last, mut same) = (String::new(), 0);
        let settled = wait_for(SOON, || {
            std::thread::sleep(Duration::from_millis(50));
            let now = port_lines(&self.ofctl("dump-ports", &[]), 2);
            same = if now == last { same + 1 } else { 0 };
            last = now;
            same == 2
        });
        assert!(settled, "port 2 kept sending: {last}");
    }

    /// Stop the manager (every packet accounted for): what port 2 sent, and the drops.
    fn finish(mut self) -> Run {
        stop_cleanly(&mut self.mgr);
        let summary = self.mgr.stdout.text();
        let drops = summary
            .lines()
            .find_map(|l| l.strip_prefix("manager drops:"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect();
        Run {
            out: read_pcap(&self.dir.join("out.pcap")),
            drops,
            summary,
        }
    }
}

/// The two lines dump-ports prints for port `port`.
fn port_lines(ports: &str, port: u32) -> String {
    let head = format!("port {port:>2}:");
    let mut it = ports.lines().skip_while(|l| !l.trim_start().starts_with(&head));
    format!("{}{}", it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

/// The number after `key` in `text` (first occurrence), e.g. `count(s, "packet_count=")`.
#[track_caller]
fn count(text: &str, key: &str) -> u64 {
    let at = text.find(key).unwrap_or_else(|| panic!("no {key:?} in {text:?}")) + key.len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {text:?}"))
}

/// The dump-flows line of the rule at `table` with `priority`.
#[track_caller]
fn flow_line(dump: &str, table: u8, priority: u16) -> &str {
    let (t, p) = (format!("table={table},"), format!("priority={priority}"));
    let found: Vec<&str> = flows(dump)
        .into_iter()
        .filter(|l| l.contains(&t) && l.split([',', ' ']).any(|w| w == p))
        .collect();
    assert_eq!(found.len(), 1, "one rule at table {table} priority {priority}:\n{dump}");
    found[0]
}

/// Frames `make(i)` for i in 0..n.
fn frames(n: u32, make: impl Fn(u32) -> Vec<u8>) -> Vec<Vec<u8>> {
    (0..n).map(make).collect()
}

/// push_vlan tags an untagged frame with the VID set_field writes (PCP 0, DEI 0, as
/// OVS), pop_vlan takes the whole tag off again, and a push of 0x88a8 on a tagged frame
/// makes a QinQ frame whose inner tag is untouched; a set of the VID keeps the PCP (and
/// clears DEI, as OVS), a set of the PCP keeps the VID.
#[test]
fn vlan_tags_are_pushed_set_and_popped_byte_exactly() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    // Interleaved: untagged from mac 1, VID 300 PCP 5 from mac 2, VID 400 from mac 3,
    // VID 300 PCP 5 DEI from mac 4, VID 300 from mac 5.
    let input = |i: u32| {
        let n = 1 + (i % 5) as u8;
        let tags = match n {
            1 => Tags::None,
            2 => Tags::Q(5 << 13 | 300),
            3 => Tags::Q(400),
            4 => Tags::Q(5 << 13 | 0x1000 | 300),
            _ => Tags::Q(300),
        };
        V4 { tags, ..V4::new(n, i) }
    };
    let sent: Vec<V4> = (0..50).map(input).collect();
    let mut b = Bench::new("ofp-vlan", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    let push = format!(
        "priority=10,in_port=1,dl_src={},actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:2",
        mac_str(1)
    );
    let pop = format!(
        "priority=10,in_port=1,dl_src={},dl_vlan=300,actions=pop_vlan,output:2",
        mac_str(2)
    );
    let qinq = format!(
        "priority=10,in_port=1,dl_src={},dl_vlan=400,actions=push_vlan:0x88a8,set_field:4296->vlan_vid,output:2",
        mac_str(3)
    );
    // A set of the VID keeps the PCP and clears DEI (OVS writes the whole tag again).
    let vid = format!(
        "priority=10,in_port=1,dl_src={},dl_vlan=300,actions=set_field:4196->vlan_vid,output:2",
        mac_str(4)
    );
    let pcp = format!(
        "priority=10,in_port=1,dl_src={},dl_vlan=300,actions=set_field:3->vlan_pcp,output:2",
        mac_str(5)
    );
    b.add_flows(&[&push, &pop, &qinq, &vid, &pcp]);
    b.replay();
    let dump = b.dump_flows();
    assert_eq!(
        flows(&dump).iter().filter(|l| l.contains("n_packets=10,")).count(),
        5,
        "each rule counts its 10 frames:\n{dump}"
    );
    // Counted as received, before the push: 10 frames of 74 bytes.
    let push_rule = flows(&dump)
        .into_iter()
        .find(|l| l.contains("push_vlan:0x8100"))
        .unwrap();
    assert!(push_rule.contains("n_bytes=740,"), "{push_rule}");
    let run = b.finish();
    let want: Vec<Vec<u8>> = sent
        .iter()
        .map(|f| {
            let tags = match f.src_mac[5] {
                1 => Tags::Q(100),
                2 => Tags::None,
                3 => Tags::QinQ { outer: 200, inner: 400 },
                4 => Tags::Q(5 << 13 | 100),
                _ => Tags::Q(3 << 13 | 300),
            };
            V4 { tags, ..*f }.frame()
        })
        .collect();
    assert_frames(
        &run.out,
        &want,
        "push VID 100 / pop / QinQ push VID 200 / set VID 100 / set PCP 3",
    );
    let vids: Vec<Vec<u16>> = run.out[..3]
        .iter()
        .map(|f| {
            SlicedPacket::from_ethernet(f)
                .unwrap()
                .vlan_ids()
                .iter()
                .map(|v| v.value())
                .collect()
        })
        .collect();
    assert_eq!(vids, [vec![100], vec![], vec![200, 400]]);
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// write_actions fills the action set, write_metadata carries a value to table 1, whose
/// apply-actions run first; the set runs when the pipeline ends, in the spec's order
/// (push-VLAN, then set-field, output last, whatever the written order); clear_actions
/// empties it, and a packet with nothing to do is dropped (`rule-drop`); a miss in
/// table 1 drops the packet without running its set (`no-rule`).
#[test]
fn the_action_set_runs_at_the_end_of_the_pipeline_in_the_specs_order() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    // mac 1: the set runs; mac 2: table 1 clears it; mac 3: table 1 outputs too, and
    // the set was written output first; mac 4: no rule in table 1 (a miss drops the
    // packet, its set never runs).
    let sent: Vec<V4> = (0..40).map(|i| V4::new(1 + (i % 4) as u8, i)).collect();
    let mut b = Bench::new("ofp-actset", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    let written =
        "write_actions(push_vlan:0x8100,set_field:4097->vlan_vid,output:2),write_metadata:0x5/0xff,goto_table:1";
    let rules = [
        format!("table=0,priority=10,in_port=1,dl_src={},actions={written}", mac_str(1)),
        format!("table=0,priority=10,in_port=1,dl_src={},actions={written}", mac_str(2)),
        format!("table=0,priority=10,in_port=1,dl_src={},actions={written}", mac_str(4)),
        format!(
            "table=0,priority=10,in_port=1,dl_src={},actions=write_actions(output:2,push_vlan:0x8100,set_field:4097->vlan_vid),\
             write_metadata:0x5/0xff,goto_table:1",
            mac_str(3)
        ),
        format!(
            "table=1,priority=10,ip,metadata=0x5,dl_src={},actions=set_field:10.0.0.9->ip_dst",
            mac_str(1)
        ),
        format!(
            "table=1,priority=10,metadata=0x5,dl_src={},actions=clear_actions",
            mac_str(2)
        ),
        format!(
            "table=1,priority=10,ip,metadata=0x5,dl_src={},actions=set_field:10.0.0.9->ip_dst,output:2",
            mac_str(3)
        ),
        // The metadata is 0x5, nothing else: this never matches.
        "table=1,priority=20,metadata=0x6/0xff,actions=output:2".to_string(),
    ];
    b.add_flows(&rules.iter().map(String::as_str).collect::<Vec<_>>());
    b.replay();
    let dump = b.dump_flows();
    assert!(
        flow_line(&dump, 1, 20).contains("n_packets=0,"),
        "the metadata written was 0x5:\n{dump}"
    );
    let run = b.finish();
    let mut want = Vec::new();
    for f in &sent {
        let rewritten = V4 {
            dst: [10, 0, 0, 9],
            ..*f
        };
        let tagged = V4 {
            tags: Tags::Q(1),
            ..rewritten
        };
        match f.src_mac[5] {
            1 => want.push(tagged.frame()),
            2 | 4 => {}
            _ => want.extend([rewritten.frame(), tagged.frame()]),
        }
    }
    assert_frames(
        &run.out,
        &want,
        "table 1's apply (10.0.0.9, its output untagged), then the set (tag VID 1, output)",
    );
    assert_eq!(run.dropped("rule-drop"), 10, "the cleared flows: {}", run.summary);
    assert_eq!(run.dropped("no-rule"), 10, "the misses in table 1: {}", run.summary);
}

/// Metadata accumulates through masked writes (0x5/0xff, then 0x500/0xff00: 0x505), and
/// a table matches the packet as the apply-actions before the goto rewrote it (a pushed
/// tag, a new destination).
#[test]
fn metadata_accumulates_and_the_next_table_sees_the_rewritten_packet() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..10).map(|i| V4::new(1, i)).collect();
    let mut b = Bench::new("ofp-metadata", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.add_flows(&[
        "table=0,priority=10,ip,actions=push_vlan:0x8100,set_field:4196->vlan_vid,set_field:10.0.0.9->ip_dst,\
         write_metadata:0x5/0xff,goto_table:1",
        "table=1,priority=10,dl_vlan=100,ip,nw_dst=10.0.0.9,actions=write_metadata:0x500/0xff00,goto_table:2",
        "table=2,priority=10,metadata=0x505,actions=output:2",
    ]);
    b.replay();
    let dump = b.dump_flows();
    assert_eq!(
        flows(&dump).iter().filter(|l| l.contains("n_packets=10,")).count(),
        3,
        "each table's rule counts every packet:\n{dump}"
    );
    let run = b.finish();
    let want: Vec<Vec<u8>> = sent
        .iter()
        .map(|f| {
            V4 {
                tags: Tags::Q(100),
                dst: [10, 0, 0, 9],
                ..*f
            }
            .frame()
        })
        .collect();
    assert_frames(&run.out, &want, "tagged and ip_dst rewritten in table 0");
}

/// A frame a rule grew (push_vlan) or shrank (pop_mpls) goes through an NF process and
/// comes back as it left the manager: the NF (service 9, logical port 4105) hands it
/// on, and a rule for what comes from 4105 sends it to port 2 unchanged.
#[test]
fn pushed_and_popped_frames_cross_an_nf_intact() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let plain = |n: u8, i| V4::new(n, i).frame();
    let sent = frames(20, |i| {
        if i % 2 == 0 {
            plain(1, i)
        } else {
            with_mpls(&plain(2, i), &[lse(16, 0, true, 64)])
        }
    });
    let mut b = Bench::new("ofp-via-nf", &sent);
    b.add_flows(&[
        &format!(
            "priority=10,in_port=1,dl_src={},actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:4105",
            mac_str(1)
        ),
        &format!(
            "priority=10,in_port=1,mpls,dl_src={},actions=pop_mpls:0x0800,output:4105",
            mac_str(2)
        ),
        "priority=10,in_port=4105,actions=output:2",
    ]);
    b.replay();
    let mut dump = String::new();
    let back = wait_for(SOON, || {
        dump = b.dump_flows();
        flows(&dump)
            .iter()
            .any(|l| l.contains("in_port=4105") && l.contains("n_packets=20,"))
    });
    assert!(back, "the NF did not hand every packet back:\n{dump}");
    let run = b.finish();
    let want = frames(20, |i| {
        if i % 2 == 0 {
            V4 {
                tags: Tags::Q(100),
                ..V4::new(1, i)
            }
            .frame()
        } else {
            plain(2, i)
        }
    });
    assert_frames(&run.out, &want, "tagged VID 100 / unlabelled, through the NF");
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// A later write_actions replaces the action of the same type already in the set; a
/// group in the set overrides its output; a dec_ttl in the set runs before the set-fields
/// and the group. An apply-actions dec_ttl that finds TTL 1 stops the packet there: the
/// copy an earlier output sent is out, the rest (and the action set) never run.
#[test]
fn writes_merge_into_the_set_and_a_group_there_overrides_its_output() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    // mac 1: TTL 64, its set ends with a group; mac 2: TTL 1, dec_ttl between outputs.
    let sent: Vec<V4> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                V4::new(1, i)
            } else {
                V4 {
                    ttl: 1,
                    ..V4::new(2, i)
                }
            }
        })
        .collect();
    let mut b = Bench::new("ofp-merge", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-group",
        &["group_id=1,type=all,bucket=output:2,bucket=set_field:10.0.0.7->ip_dst,output:2"],
    );
    b.add_flows(&[
        "table=0,priority=10,ip,actions=write_actions(push_vlan:0x8100,set_field:4097->vlan_vid,\
         set_field:02:00:00:00:00:aa->eth_dst,output:2),goto_table:1",
        &format!(
            "table=1,priority=10,ip,dl_src={},actions=write_actions(set_field:02:00:00:00:00:bb->eth_dst,dec_ttl,group:1)",
            mac_str(1)
        ),
        &format!("table=1,priority=10,ip,dl_src={},actions=output:2,dec_ttl,output:2", mac_str(2)),
    ]);
    b.replay();
    let stats = b.ofctl("dump-group-stats", &[]);
    let run = b.finish();
    let mut want = Vec::new();
    for f in &sent {
        if f.ttl == 1 {
            want.push(f.frame());
            continue;
        }
        let set = V4 {
            tags: Tags::Q(1),
            dst_mac: [2, 0, 0, 0, 0, 0xbb],
            ttl: 63,
            ..*f
        };
        want.extend([
            set.frame(),
            V4 {
                dst: [10, 0, 0, 7],
                ..set
            }
            .frame(),
        ]);
    }
    assert_frames(
        &run.out,
        &want,
        "mac 1: tagged, eth_dst bb, TTL 63, the group's two copies and no output:2 of the set; \
         mac 2: one copy before the dec_ttl",
    );
    assert_eq!(count(&stats, "packet_count="), 10, "{stats}");
    assert_eq!(run.dropped("invalid-ttl"), 10, "{}", run.summary);
    assert_eq!(run.drops.len(), 1, "no other drops: {:?}", run.drops);
}

/// An IPv4/TCP frame from [`mac`] `src_mac` with these ports and TTL.
fn tcp_frame(src_mac: u8, ports: (u16, u16), ttl: u8) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(src_mac), DST_MAC)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], ttl)
        .tcp(ports.0, ports.1, 7, 1024)
        .write(&mut out, &payload(0))
        .unwrap();
    out
}

/// An IPv4 ICMP echo request (or reply) from [`mac`] `src_mac`.
fn echo_frame(src_mac: u8, reply: bool) -> Vec<u8> {
    let ip = PacketBuilder::ethernet2(mac(src_mac), DST_MAC).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
    let icmp = if reply {
        ip.icmpv4_echo_reply(9, 1)
    } else {
        ip.icmpv4_echo_request(9, 1)
    };
    let mut out = Vec::new();
    icmp.write(&mut out, &payload(0)).unwrap();
    out
}

/// An IPv6/UDP frame from [`mac`] `src_mac`: source and destination ::1/::2 under
/// `prefix`, this DSCP and flow label.
fn v6_fields(src_mac: u8, prefix: u16, dscp: u8, label: u32) -> Vec<u8> {
    let addr = |last: u8| {
        let mut a = [0u8; 16];
        a[..2].copy_from_slice(&prefix.to_be_bytes());
        a[15] = last;
        a
    };
    let ip = Ipv6Header {
        traffic_class: dscp << 2,
        flow_label: Ipv6FlowLabel::try_new(label).unwrap(),
        payload_length: 0,
        next_header: IpNumber::UDP,
        hop_limit: 64,
        source: addr(1),
        destination: addr(2),
    };
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(src_mac), DST_MAC)
        .ip(IpHeaders::Ipv6(ip, Default::default()))
        .udp(1000, 53)
        .write(&mut out, &payload(0))
        .unwrap();
    out
}

/// An ARP packet from [`mac`] `src_mac`: operation, sender and target (MAC, IPv4).
fn arp_frame(src_mac: u8, op: ArpOperation, sender: ([u8; 6], [u8; 4]), target: ([u8; 6], [u8; 4])) -> Vec<u8> {
    let arp = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        op,
        &sender.0,
        &sender.1,
        &target.0,
        &target.1,
    )
    .unwrap();
    let mut out = Vec::new();
    PacketBuilder::ethernet2(mac(src_mac), DST_MAC)
        .arp(arp)
        .write(&mut out)
        .unwrap();
    out
}

/// set_field of the Ethernet, VLAN, IPv4, IPv6, UDP, TCP, ICMP, ARP and MPLS fields, and
/// mod_nw_ttl / set_mpls_ttl: each frame leaves with exactly those fields changed and
/// every checksum recomputed (as OVS writes them).
#[test]
fn set_field_rewrites_every_kind_of_header_field() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let tagged = V4 {
        tags: Tags::Q(7),
        ..V4::new(1, 0)
    };
    let (mac_a, mac_b) = ([2, 0, 0, 0, 0, 0xa1], [2, 0, 0, 0, 0, 0xb2]);
    let cases: Vec<(Vec<u8>, String, Vec<u8>)> = vec![
        (
            tagged.frame(),
            "udp,dl_vlan=7,actions=set_field:02:00:00:00:00:a1->eth_src,set_field:02:00:00:00:00:b2->eth_dst,\
             set_field:3->vlan_pcp,set_field:4109->vlan_vid,set_field:10.1.1.1->ip_src,set_field:10.2.2.2->ip_dst,\
             set_field:46->ip_dscp,set_field:1->ip_ecn,set_field:4000->udp_src,set_field:5000->udp_dst"
                .into(),
            V4 {
                src_mac: mac_a,
                dst_mac: mac_b,
                tags: Tags::Q(3 << 13 | 13),
                src: [10, 1, 1, 1],
                dst: [10, 2, 2, 2],
                dscp: 46,
                ecn: 1,
                sport: 4000,
                dport: 5000,
                ..tagged
            }
            .frame(),
        ),
        (
            tcp_frame(2, (1000, 80), 64),
            "tcp,actions=set_field:4000->tcp_src,set_field:5000->tcp_dst,mod_nw_ttl:9".into(),
            tcp_frame(2, (4000, 5000), 9),
        ),
        (
            echo_frame(3, false),
            "icmp,actions=set_field:0->icmp_type,set_field:0->icmp_code".into(),
            echo_frame(3, true),
        ),
        (
            v6_fields(4, 0x2001, 0, 0),
            "udp6,actions=set_field:2002::1->ipv6_src,set_field:2002::2->ipv6_dst,\
             set_field:10->ip_dscp,set_field:0x12345->ipv6_label"
                .into(),
            v6_fields(4, 0x2002, 10, 0x12345),
        ),
        (
            arp_frame(
                5,
                ArpOperation::REQUEST,
                (mac(5), [10, 0, 0, 1]),
                ([0; 6], [10, 0, 0, 2]),
            ),
            "arp,actions=set_field:2->arp_op,set_field:02:00:00:00:00:a1->arp_sha,set_field:10.0.0.9->arp_spa,\
             set_field:02:00:00:00:00:b2->arp_tha,set_field:10.0.0.8->arp_tpa"
                .into(),
            arp_frame(5, ArpOperation::REPLY, (mac_a, [10, 0, 0, 9]), (mac_b, [10, 0, 0, 8])),
        ),
        (
            with_mpls(&V4::new(6, 0).frame(), &[lse(16, 0, true, 64)]),
            "mpls,actions=set_field:1000->mpls_label,set_field:5->mpls_tc,set_mpls_ttl(9)".into(),
            with_mpls(&V4::new(6, 0).frame(), &[lse(1000, 5, true, 9)]),
        ),
    ];
    let sent: Vec<Vec<u8>> = cases.iter().map(|c| c.0.clone()).collect();
    let mut b = Bench::new("ofp-setfield", &sent);
    for (n, (_, rule, _)) in cases.iter().enumerate() {
        let (m, actions) = rule.split_once(",actions=").unwrap();
        b.add_flows(&[&format!(
            "priority=10,in_port=1,dl_src={},{m},actions={actions},output:2",
            mac_str(n as u8 + 1)
        )]);
    }
    b.replay();
    let run = b.finish();
    for (n, (got, (_, rule, want))) in run.out.iter().zip(&cases).enumerate() {
        assert_frames(
            std::slice::from_ref(got),
            std::slice::from_ref(want),
            &format!("case {n}: {rule}"),
        );
    }
    assert_eq!(run.out.len(), cases.len(), "one frame per case: {:?}", run.drops);
}

/// The action set pops before it pushes, whatever the order written: a set of
/// (push_vlan:0x88a8, pop_vlan) on a frame tagged VID 300 leaves with an 802.1ad tag of
/// TCI 0 in place of its 802.1Q tag (in the written order it would leave unchanged). A
/// dec_ttl in the set that finds TTL 1 drops the packet as `invalid-ttl`.
#[test]
fn the_action_set_pops_before_it_pushes_and_its_dec_ttl_can_expire() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..20)
        .map(|i| match i % 2 {
            0 => V4 {
                tags: Tags::Q(300),
                ..V4::new(1, i)
            },
            _ => V4 {
                ttl: 1,
                ..V4::new(2, i)
            },
        })
        .collect();
    let mut b = Bench::new("ofp-setorder", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.add_flows(&[
        &format!(
            "priority=10,dl_src={},dl_vlan=300,actions=write_actions(push_vlan:0x88a8,pop_vlan,output:2)",
            mac_str(1)
        ),
        &format!(
            "priority=10,ip,dl_src={},actions=write_actions(dec_ttl,output:2)",
            mac_str(2)
        ),
    ]);
    b.replay();
    let run = b.finish();
    let want: Vec<Vec<u8>> = sent
        .iter()
        .filter(|f| f.ttl != 1)
        .map(|f| {
            let mut w = V4 { tags: Tags::None, ..*f }.frame();
            w.splice(12..12, [0x88, 0xa8, 0, 0]);
            w
        })
        .collect();
    assert_frames(&run.out, &want, "pop VID 300, then push 0x88a8 (TCI 0)");
    assert_eq!(run.dropped("invalid-ttl"), 10, "{:?}", run.drops);
    assert_eq!(run.drops.len(), 1, "no other drops: {:?}", run.drops);
}

/// dec_ttl: IPv4 TTL 64 → 63 with a valid header checksum, IPv6 hop limit 64 → 63; a
/// TTL or hop limit of 0 or 1 is not sent on and, with no controller, counted as
/// `invalid-ttl`.
#[test]
fn dec_ttl_decrements_and_drops_expired_packets_as_invalid_ttl() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    // Per 6 frames: v4 TTL 64, v4 TTL 1, v6 hop 64, v4 TTL 0, v6 hop 1, v4 TTL 2.
    let v4 = |ttl, i| V4 { ttl, ..V4::new(1, i) };
    let input = |i: u32| match i % 6 {
        0 => v4(64, i).frame(),
        1 => v4(1, i).frame(),
        2 => v6_frame(1, 64, i),
        3 => v4(0, i).frame(),
        4 => v6_frame(1, 1, i),
        _ => v4(2, i).frame(),
    };
    let sent = frames(36, input);
    let mut b = Bench::new("ofp-ttl", &sent);
    b.add_flows(&[
        "priority=10,ip,actions=dec_ttl,output:2",
        "priority=10,ipv6,actions=dec_ttl,output:2",
    ]);
    b.replay();
    let dump = b.dump_flows();
    let run = b.finish();
    let want: Vec<Vec<u8>> = (0..36)
        .filter_map(|i| match i % 6 {
            0 => Some(v4(63, i).frame()),
            2 => Some(v6_frame(1, 63, i)),
            5 => Some(v4(1, i).frame()),
            _ => None,
        })
        .collect();
    assert_frames(&run.out, &want, "TTL/hop limit one less, checksum valid");
    assert_eq!(run.dropped("invalid-ttl"), 18, "TTL 0/1, hop 1: {}", run.summary);
    assert_eq!(run.drops.len(), 1, "no other drops: {:?}", run.drops);
    let rule = |m| flows(&dump).into_iter().find(|l| l.ends_with(m)).unwrap_or_default();
    assert!(
        rule("priority=10,ip actions=dec_ttl,output:2").contains("n_packets=24,"),
        "{dump}"
    );
    assert!(
        rule("priority=10,ipv6 actions=dec_ttl,output:2").contains("n_packets=12,"),
        "{dump}"
    );
}

/// Frames alternating TTL 64 and TTL 1 (`n` of each), mac 1.
fn ttl_pairs(n: u32) -> Vec<V4> {
    (0..2 * n)
        .map(|i| V4 {
            ttl: if i % 2 == 0 { 64 } else { 1 },
            ..V4::new(1, i)
        })
        .collect()
}

/// A manager connected to a [`RawController`] that set these PACKET_IN reasons
/// (`None`: the default, NO_MATCH and ACTION), with `cookie=0x77,ip,actions=dec_ttl,
/// output:2` and [`ttl_pairs`] replayed: the controller and the run.
fn dec_ttl_under_a_controller(name: &str, packet_in_mask: Option<u32>, frames: &[V4]) -> (RawController, Bench) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let controller = format!("tcp:{}", l.local_addr().unwrap());
    let sent: Vec<Vec<u8>> = frames.iter().map(V4::frame).collect();
    let mut b = Bench::with(name, &sent, &["--controller", &controller]);
    let mut c = RawController::accept(&l);
    let config = match packet_in_mask {
        Some(mask) => of::AsyncConfig {
            packet_in_mask: [mask, 0],
            ..Default::default()
        },
        None => of::AsyncConfig::default(),
    };
    c.send_and_sync(&of::Message::SetAsync(config));
    b.add_flows(&["cookie=0x77,priority=10,ip,actions=dec_ttl,output:2"]);
    b.replay();
    (c, b)
}

/// A controller that asked for INVALID_TTL packet-ins (SET_ASYNC) gets each packet
/// whose TTL ran out, whole and as it came (TTL 1), with the reason INVALID_TTL and the
/// rule's cookie; the others go on with TTL 63.
#[test]
fn an_expired_ttl_goes_to_a_controller_that_asks_for_invalid_ttl() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent = ttl_pairs(5);
    let (mut c, b) = dec_ttl_under_a_controller("ofp-ttl-ctl", Some(0b111), &sent);
    for f in sent.iter().filter(|f| f.ttl == 1) {
        let p = c.packet_in();
        assert_eq!(
            (p.reason, p.cookie, p.table_id, p.match_.in_port),
            (of::ofpr::INVALID_TTL, 0x77, 0, Some(1)),
            "{p:?}"
        );
        assert_eq!(
            (p.buffer_id, usize::from(p.total_len)),
            (of::OFP_NO_BUFFER, p.data.len())
        );
        assert_frames(&[p.data], &[f.frame()], "the packet-in carries the packet as it came");
    }
    let run = b.finish();
    let want: Vec<Vec<u8>> = sent
        .iter()
        .filter(|f| f.ttl == 64)
        .map(|f| V4 { ttl: 63, ..*f }.frame())
        .collect();
    assert_frames(&run.out, &want, "TTL 63");
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// A controller connected with the default asynchronous configuration (no
/// INVALID_TTL) does not get the expired packets: they are dropped and counted as
/// `invalid-ttl`, since no controller took them.
#[test]
fn an_expired_ttl_no_controller_asked_for_is_counted_as_invalid_ttl() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent = ttl_pairs(5);
    let (_c, b) = dec_ttl_under_a_controller("ofp-ttl-noasync", None, &sent);
    let run = b.finish();
    assert_eq!(run.out.len(), 5, "the TTL-64 packets only");
    assert_eq!(
        run.dropped("invalid-ttl"),
        5,
        "the TTL-1 packets, which no controller took, under invalid-ttl: {:?}",
        run.drops
    );
}

/// push_mpls puts one label stack entry after the Ethernet header as OVS does (label 0
/// for IPv4, TC from the DSCP's low bits, TTL from the IP TTL, bottom of stack; onto a
/// stack, a copy of the outer entry without BoS) and sets the EtherType to 0x8847;
/// pop_mpls:0x0800 takes it off again; dec_mpls_ttl decrements the outer TTL, and one
/// at 1 is dropped as `invalid-ttl`.
#[test]
fn mpls_labels_are_pushed_popped_and_their_ttl_decremented() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let ip = |n: u8, i| V4 {
        dscp: 10,
        ttl: 33,
        ..V4::new(n, i)
    };
    // Per source MAC: (input, rule, output or None).
    let case = |n: u8, i: u32| -> (Vec<u8>, Option<Vec<u8>>) {
        let f = ip(n, i).frame();
        match n {
            1 => (f.clone(), Some(with_mpls(&f, &[lse(0, 10 & 7, true, 33)]))),
            2 => (with_mpls(&f, &[lse(16, 0, true, 64)]), Some(f)),
            3 => (
                with_mpls(&f, &[lse(16, 3, true, 64)]),
                Some(with_mpls(&f, &[lse(16, 3, false, 64), lse(16, 3, true, 64)])),
            ),
            4 => (
                with_mpls(&f, &[lse(16, 0, true, 64)]),
                Some(with_mpls(&f, &[lse(16, 0, true, 63)])),
            ),
            _ => (with_mpls(&f, &[lse(16, 0, true, 1)]), None),
        }
    };
    let rules = [
        "ip,actions=push_mpls:0x8847",
        "mpls,actions=pop_mpls:0x0800",
        "mpls,actions=push_mpls:0x8847",
        "mpls,actions=dec_mpls_ttl",
        "mpls,actions=dec_mpls_ttl",
    ];
    let cases: Vec<_> = (0..20).map(|i| case(1 + (i % 5) as u8, i)).collect();
    let mut b = Bench::new("ofp-mpls", &cases.iter().map(|c| c.0.clone()).collect::<Vec<_>>());
    for (n, r) in rules.iter().enumerate() {
        let (m, a) = r.split_once(",actions=").unwrap();
        b.add_flows(&[&format!(
            "priority=10,{m},dl_src={},actions={a},output:2",
            mac_str(n as u8 + 1)
        )]);
    }
    b.replay();
    let run = b.finish();
    let want: Vec<Vec<u8>> = cases.into_iter().filter_map(|c| c.1).collect();
    assert_frames(&run.out, &want, "push onto IP / pop / push onto a label / dec_mpls_ttl");
    assert_eq!(run.dropped("invalid-ttl"), 4, "MPLS TTL 1: {:?}", run.drops);
    assert_eq!(run.drops.len(), 1, "no other drops: {:?}", run.drops);
}

/// ALL sends a copy per bucket (each bucket's actions on its own copy), INDIRECT runs
/// its one bucket, FAST_FAILOVER takes the first bucket whose watched port is live (not
/// service 1's logical port 4097: no NF serves it; service 9's is, while its NF runs);
/// dump-group-stats counts each group
/// and bucket; a rule to a missing group is refused; deleting a group deletes the
/// rules that use it.
#[test]
fn all_indirect_and_fast_failover_groups() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..40).map(|i| V4::new(1 + (i % 4) as u8, i)).collect();
    let mut b = Bench::new("ofp-groups", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-group",
        &["group_id=1,type=all,bucket=output:2,bucket=set_field:10.0.0.7->ip_dst,output:2"],
    );
    b.ofctl(
        "add-group",
        &["group_id=2,type=indirect,bucket=set_field:10.0.0.8->ip_dst,output:2"],
    );
    b.ofctl(
        "add-group",
        &["group_id=3,type=ff,bucket=watch_port:4097,output:4097,bucket=watch_port:2,output:2"],
    );
    // Service 9's port (4105) is live once the NF that starts the replay runs.
    b.ofctl(
        "add-group",
        &["group_id=4,type=ff,bucket=watch_port:4097,output:4097,\
           bucket=watch_port:4105,set_field:02:00:00:00:00:cc->eth_dst,output:2,bucket=watch_port:2,output:2"],
    );
    for (m, g) in [(1, 1), (2, 2), (3, 3), (4, 4)] {
        b.add_flows(&[&format!(
            "priority=10,ip,in_port=1,dl_src={},actions=group:{g}",
            mac_str(m)
        )]);
    }
    let (ok, text) = ofctl("add-flow", &b.sw, &["priority=5,ip,actions=group:9"]);
    assert!(!ok && text.contains("OFPBAC_BAD_OUT_GROUP"), "no group 9: {text}");
    let groups = b.ofctl("dump-groups", &[]);
    for g in [
        "group_id=1,type=all,bucket=actions=output:2,bucket=actions=set_field:10.0.0.7->ip_dst,output:2",
        "group_id=2,type=indirect,bucket=actions=set_field:10.0.0.8->ip_dst,output:2",
        "group_id=3,type=ff,bucket=watch_port:4097,actions=output:4097,bucket=watch_port:2,actions=output:2",
    ] {
        assert!(groups.lines().any(|l| l.trim() == g), "{g} read back:\n{groups}");
    }
    b.replay();
    let stats = b.ofctl("dump-group-stats", &[]);
    let of_group = |g: u32| {
        stats
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("group_id={g},")))
            .unwrap_or_else(|| panic!("no stats of group {g}:\n{stats}"))
    };
    let (g1, g2, g3) = (of_group(1), of_group(2), of_group(3));
    let bytes = sent[0].frame().len() as u64 * 10;
    assert_eq!(
        [
            count(g1, "packet_count="),
            count(g1, "bucket0:packet_count="),
            count(g1, "bucket1:packet_count="),
            count(g1, "byte_count="),
        ],
        [10, 10, 10, bytes],
        "{g1}"
    );
    assert_eq!(count(g1, "ref_count="), 1, "{g1}");
    assert_eq!(
        [count(g2, "packet_count="), count(g2, "bucket0:packet_count=")],
        [10, 10],
        "{g2}"
    );
    assert_eq!(
        [
            count(g3, "packet_count="),
            count(g3, "bucket0:packet_count="),
            count(g3, "bucket1:packet_count=")
        ],
        [10, 0, 10],
        "the fast-failover group's second bucket: {g3}"
    );
    let g4 = of_group(4);
    assert_eq!(
        [
            count(g4, "bucket0:packet_count="),
            count(g4, "bucket1:packet_count="),
            count(g4, "bucket2:packet_count=")
        ],
        [0, 10, 0],
        "the first live bucket, watching a service port with an NF: {g4}"
    );
    // Deleting group 2 deletes the rule that sends to it, and only that one.
    b.ofctl("del-groups", &["group_id=2"]);
    let dump = b.dump_flows();
    assert!(
        !dump.contains("group:2") && dump.contains("group:1") && dump.contains("group:3"),
        "{dump}"
    );
    assert!(!b.ofctl("dump-groups", &[]).contains("group_id=2,"));
    let run = b.finish();
    let mut want = Vec::new();
    for f in &sent {
        match f.src_mac[5] {
            1 => want.extend([
                f.frame(),
                V4 {
                    dst: [10, 0, 0, 7],
                    ..*f
                }
                .frame(),
            ]),
            2 => want.push(
                V4 {
                    dst: [10, 0, 0, 8],
                    ..*f
                }
                .frame(),
            ),
            3 => want.push(f.frame()),
            _ => want.push(
                V4 {
                    dst_mac: [2, 0, 0, 0, 0, 0xcc],
                    ..*f
                }
                .frame(),
            ),
        }
    }
    assert_frames(
        &run.out,
        &want,
        "ALL: both buckets; INDIRECT: 10.0.0.8; FF: unchanged, or eth_dst cc",
    );
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// An ALL group's clone whose bucket outputs to the ingress port by its number is
/// dropped (OpenFlow 1.3 §5.6.1; only IN_PORT sends it back), counted as
/// `output-in-port`; the other buckets' clones go.
#[test]
fn an_all_group_drops_the_clone_for_the_ingress_port() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..10).map(|i| V4::new(1, i)).collect();
    let mut b = Bench::new("ofp-all-inport", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl("add-group", &["group_id=1,type=all,bucket=output:1,bucket=output:2"]);
    b.add_flows(&["priority=10,in_port=1,actions=group:1"]);
    b.replay();
    let run = b.finish();
    let want: Vec<Vec<u8>> = sent.iter().map(V4::frame).collect();
    assert_frames(&run.out, &want, "the port-2 clones");
    assert_eq!(run.dropped("output-in-port"), 10, "{:?}", run.drops);
}

/// Groups chain: a FAST_FAILOVER bucket watching a group is live while that group has a
/// live bucket (group 11 has none: service 1 has no NF), and a bucket may hand the
/// packet to another group (INDIRECT → ALL: two copies), which then cannot be deleted
/// alone (OFPGMFC_CHAINED_GROUP). dump-groups reads back watch groups and SELECT
/// weights.
#[test]
fn groups_chain_and_watch_groups() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..20).map(|i| V4::new(1 + (i % 2) as u8, i)).collect();
    let mut b = Bench::new("ofp-chain", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    for g in [
        "group_id=11,type=ff,bucket=watch_port:4097,output:4097",
        "group_id=12,type=ff,bucket=watch_group:11,group:11,\
         bucket=watch_port:2,set_field:02:00:00:00:00:dd->eth_dst,output:2",
        "group_id=14,type=all,bucket=output:2,bucket=set_field:10.0.0.5->ip_dst,output:2",
        "group_id=13,type=indirect,bucket=group:14",
        "group_id=15,type=select,bucket=weight:5,output:2,bucket=weight:1,set_field:10.0.0.6->ip_dst,output:2",
    ] {
        b.ofctl("add-group", &[g]);
    }
    b.add_flows(&[
        &format!("priority=10,ip,dl_src={},actions=group:12", mac_str(1)),
        &format!("priority=10,ip,dl_src={},actions=group:13", mac_str(2)),
    ]);
    let groups = b.ofctl("dump-groups", &[]);
    for g in [
        "group_id=12,type=ff,bucket=watch_group:11,actions=group:11,\
         bucket=watch_port:2,actions=set_field:02:00:00:00:00:dd->eth_dst,output:2",
        "group_id=13,type=indirect,bucket=actions=group:14",
        "group_id=15,type=select,bucket=weight:5,actions=output:2,bucket=actions=set_field:10.0.0.6->ip_dst,output:2",
    ] {
        assert!(groups.lines().any(|l| l.trim() == g), "{g} read back:\n{groups}");
    }
    b.replay();
    // A group another group chains to is not deleted alone (and its flows stay).
    let (ok, text) = ofctl("del-groups", &b.sw, &["group_id=14"]);
    assert!(!ok && text.contains("OFPGMFC_CHAINED_GROUP"), "{text}");
    assert!(b.ofctl("dump-groups", &[]).contains("group_id=14,"));
    let run = b.finish();
    let mut want = Vec::new();
    for f in &sent {
        match f.src_mac[5] {
            1 => want.push(
                V4 {
                    dst_mac: [2, 0, 0, 0, 0, 0xdd],
                    ..*f
                }
                .frame(),
            ),
            _ => want.extend([
                f.frame(),
                V4 {
                    dst: [10, 0, 0, 5],
                    ..*f
                }
                .frame(),
            ]),
        }
    }
    assert_frames(&run.out, &want, "FF past a dead watched group; INDIRECT → ALL");
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// Deleting a group or a meter deletes the rules that use it, and a controller hears of
/// each rule that asked (send_flow_rem) with its counters: reason GROUP_DELETE for the
/// group, DELETE for the meter (OpenFlow 1.3 has no METER_DELETE; OVS says DELETE).
#[test]
fn deleting_a_group_or_a_meter_reports_the_rules_it_took() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let controller = format!("tcp:{}", l.local_addr().unwrap());
    let sent: Vec<V4> = (0..20).map(|i| V4::new(1 + (i % 2) as u8, i)).collect();
    let mut b = Bench::with(
        "ofp-removed",
        &sent.iter().map(V4::frame).collect::<Vec<_>>(),
        &["--controller", &controller],
    );
    let mut c = RawController::accept(&l);
    b.ofctl("add-group", &["group_id=1,type=all,bucket=output:2"]);
    b.ofctl("add-meter", &["meter=1,pktps,band=type=drop,rate=100000"]);
    b.add_flows(&[
        &format!(
            "cookie=0x61,priority=10,dl_src={},send_flow_rem,actions=group:1",
            mac_str(1)
        ),
        &format!(
            "cookie=0x62,priority=10,dl_src={},send_flow_rem,actions=meter:1,output:2",
            mac_str(2)
        ),
    ]);
    b.replay();
    b.ofctl("del-groups", &["group_id=1"]);
    b.ofctl("del-meters", &["meter=1"]);
    let mut removed = Vec::new();
    while removed.len() < 2 {
        if let of::Message::FlowRemoved(r) = c.recv() {
            removed.push((r.cookie, r.reason, r.packet_count));
        }
    }
    assert_eq!(
        removed,
        [(0x61, of::ofprr::GROUP_DELETE, 10), (0x62, of::ofprr::DELETE, 10)]
    );
    assert!(flows(&b.dump_flows()).is_empty());
    let run = b.finish();
    assert_eq!(run.out.len(), 20);
}

/// SELECT group 5 of 3 buckets (each sets its own eth_dst) for 4 packets of each of
/// `flows` flows (`flow(k)`: flow k's fields), interleaved: asserts every packet goes
/// to one bucket, all packets of a flow to the same one, and the bucket counters match
/// what each bucket sent; returns how many packets each bucket sent.
fn select_over(name: &str, flows: u32, flow: impl Fn(u32) -> V4) -> [u64; 3] {
    let sent: Vec<V4> = (0..4 * flows)
        .map(|i| V4 {
            seq: i,
            ..flow(i % flows)
        })
        .collect();
    let mut b = Bench::new(name, &sent.iter().map(V4::frame).collect::<Vec<_>>());
    let bucket_mac = |k: u8| [2, 0, 0, 0, 0xb0, k];
    b.ofctl(
        "add-group",
        &["group_id=5,type=select,\
           bucket=set_field:02:00:00:00:b0:00->eth_dst,output:2,\
           bucket=set_field:02:00:00:00:b0:01->eth_dst,output:2,\
           bucket=set_field:02:00:00:00:b0:02->eth_dst,output:2"],
    );
    b.add_flows(&["priority=10,in_port=1,actions=group:5"]);
    b.replay();
    let stats = b.ofctl("dump-group-stats", &["group_id=5"]);
    let run = b.finish();
    assert_eq!(run.out.len(), sent.len(), "one copy of each packet");
    // Which bucket each flow went to (by the eth_dst it got), and how many per bucket.
    let mut bucket_of: BTreeMap<([u8; 4], u16), BTreeSet<u8>> = BTreeMap::new();
    let mut per_bucket = [0u64; 3];
    for (got, f) in run.out.iter().zip(&sent) {
        let k = got[5];
        assert!(
            k < 3 && got[..5] == bucket_mac(k)[..5],
            "not a bucket's MAC: {got:02x?}"
        );
        let want = {
            let mut w = f.frame();
            w[..6].copy_from_slice(&bucket_mac(k));
            w
        };
        assert_eq!(got, &want, "only eth_dst changes");
        bucket_of.entry((f.src, f.sport)).or_default().insert(k);
        per_bucket[usize::from(k)] += 1;
    }
    let split: Vec<_> = bucket_of.iter().filter(|(_, ks)| ks.len() > 1).collect();
    assert!(split.is_empty(), "flows sent to several buckets: {split:?}");
    let counted: Vec<u64> = (0..3)
        .map(|k| count(&stats, &format!("bucket{k}:packet_count=")))
        .collect();
    assert_eq!(counted, per_bucket, "the bucket counters: {stats}");
    assert_eq!(count(&stats, "packet_count="), sent.len() as u64, "{stats}");
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
    per_bucket
}

/// SELECT: 48 flows from one client (source ports 2000, 2007, …) spread over at least
/// 2 of the 3 buckets, each flow on one bucket, the bucket counters add up.
#[test]
fn select_group_spreads_flows_and_keeps_each_flow_on_one_bucket() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let per_bucket = select_over("ofp-select", 48, |k| V4 {
        sport: 2000 + 7 * k as u16,
        ..V4::new(1, 0)
    });
    let used = per_bucket.iter().filter(|&&n| n > 0).count();
    assert!(used >= 2, "48 flows all took one bucket: {per_bucket:?}");
}

/// SELECT: 48 clients 10.0.1.k, each with source port 40000 + k (a traffic generator
/// that steps both), spread over at least 2 of the 3 buckets too. (OVS hashes the
/// addresses and ports with a real hash; a linear hash whose key repeats every 16 bits,
/// such as Toeplitz with the symmetric key 0x6d5a…, sees only the 16-bit XOR fold of the
/// tuple, src ^ dst ^ sport ^ dport by 16-bit words, which is 0x9d40 ^ … for every k
/// here: 0x0100 + k and 0x9c40 + k carry together.)
#[test]
fn select_group_spreads_clients_whose_address_and_port_step_together() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let per_bucket = select_over("ofp-select-clients", 48, |k| V4 {
        src: [10, 0, 1, k as u8],
        sport: 40000 + k as u16,
        ..V4::new(1, 0)
    });
    let used = per_bucket.iter().filter(|&&n| n > 0).count();
    assert!(used >= 2, "48 flows all took one bucket: {per_bucket:?}");
}

/// SELECT uses only live buckets: one watching service 1's port (no NF) gets no flow,
/// the two others share them.
#[test]
fn select_group_skips_a_dead_bucket() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..96)
        .map(|i| V4 {
            sport: 2000 + 7 * (i % 48) as u16,
            ..V4::new(1, i)
        })
        .collect();
    let mut b = Bench::new("ofp-select-dead", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-group",
        &["group_id=5,type=select,bucket=watch_port:4097,output:4097,\
           bucket=set_field:02:00:00:00:b0:01->eth_dst,output:2,\
           bucket=set_field:02:00:00:00:b0:02->eth_dst,output:2"],
    );
    b.add_flows(&["priority=10,in_port=1,actions=group:5"]);
    b.replay();
    let stats = b.ofctl("dump-group-stats", &["group_id=5"]);
    let run = b.finish();
    assert_eq!(run.out.len(), 96, "every packet through a live bucket: {:?}", run.drops);
    let per: Vec<u64> = (0..3)
        .map(|k| count(&stats, &format!("bucket{k}:packet_count=")))
        .collect();
    assert!(per[0] == 0 && per[1] > 0 && per[2] > 0, "{stats}");
}

/// A meter with a drop band (10 packets/s, burst 10): of 200 frames arriving at once
/// about the burst passes and the rest are dropped, counted under `meter` and in the
/// band's meter-stats; dump-meters reads the meter back; deleting it deletes its rule.
#[test]
fn a_drop_band_meter_passes_the_burst_and_drops_the_rest() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..200).map(|i| V4::new(1, i)).collect();
    let mut b = Bench::new("ofp-meter-drop", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-meter",
        &["meter=1,pktps,burst,stats,band=type=drop,rate=10,burst_size=10"],
    );
    b.add_flows(&["priority=10,in_port=1,actions=meter:1,output:2"]);
    let config = b.ofctl("dump-meters", &[]);
    assert!(
        config.contains("meter=1 pktps burst stats bands=") && config.contains("type=drop rate=10 burst_size=10"),
        "{config}"
    );
    b.replay();
    let stats = b.ofctl("meter-stats", &[]);
    let dump = b.dump_flows();
    // Deleting the meter deletes the rule that uses it.
    b.ofctl("del-meters", &["meter=1"]);
    assert!(flows(&b.dump_flows()).is_empty(), "{}", b.dump_flows());
    assert!(!b.ofctl("dump-meters", &[]).contains("meter=1"));
    let run = b.finish();
    let passed = run.out.len() as u64;
    assert!(
        (10..=60).contains(&passed),
        "the burst (10) and what 10/s adds while 200 frames arrive: {passed} passed"
    );
    // The ones that passed are the first ones, unchanged.
    let want: Vec<Vec<u8>> = sent[..run.out.len()].iter().map(V4::frame).collect();
    assert_frames(&run.out, &want, "the first packets, unchanged");
    assert_eq!(run.dropped("meter"), 200 - passed, "{}", run.summary);
    assert_eq!(
        [
            count(&stats, "flow_count:"),
            count(&stats, "packet_in_count:"),
            count(&stats, "0: packet_count:"),
        ],
        [1, 200, 200 - passed],
        "{stats}"
    );
    assert!(
        dump.contains("n_packets=200,") && dump.contains("actions=meter:1,output:2"),
        "{dump}"
    );
}

/// A KBPS meter counts bits of whole frames: a burst of 20 kilobits (2500 bytes) passes
/// 33 frames of 74 bytes at once, not 20 (packets) and not 0.
#[test]
fn a_kbps_meter_counts_the_bits_of_each_frame() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..200).map(|i| V4::new(1, i)).collect();
    let len = sent[0].frame().len();
    assert_eq!(len, 74);
    let mut b = Bench::new("ofp-meter-kbps", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-meter",
        &["meter=3,kbps,burst,band=type=drop,rate=100,burst_size=20"],
    );
    b.add_flows(&["priority=10,in_port=1,actions=meter:3,output:2"]);
    b.replay();
    let stats = b.ofctl("meter-stats", &["meter=3"]);
    let run = b.finish();
    let passed = run.out.len() as u64;
    // 2500 / 74 = 33.8; 100 kbit/s adds one frame per 5.9 ms of replay.
    assert!((33..=60).contains(&passed), "{passed} frames passed\n{stats}");
    assert_eq!(run.dropped("meter"), 200 - passed, "{:?}", run.drops);
    assert_eq!(
        [count(&stats, "byte_in_count:"), count(&stats, "0: packet_count:")],
        [200 * len as u64, 200 - passed],
        "{stats}"
    );
}

/// A DSCP-remark band (10 packets/s, burst 10, prec_level 1): nothing is dropped; the
/// packets over the rate leave with their AF drop precedence one higher (DSCP 10 → 12,
/// header checksum valid), the others unchanged.
#[test]
fn a_dscp_remark_band_raises_the_drop_precedence_over_the_rate() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..200)
        .map(|i| V4 {
            dscp: 10,
            ..V4::new(1, i)
        })
        .collect();
    let mut b = Bench::new("ofp-meter-remark", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-meter",
        &["meter=2,pktps,burst,band=type=dscp_remark,rate=10,burst_size=10,prec_level=1"],
    );
    b.add_flows(&["priority=10,in_port=1,actions=meter:2,output:2"]);
    let config = b.ofctl("dump-meters", &[]);
    assert!(
        config.contains("type=dscp_remark rate=10 burst_size=10 prec_level=1"),
        "{config}"
    );
    b.replay();
    let stats = b.ofctl("meter-stats", &[]);
    let run = b.finish();
    assert_eq!(run.out.len(), 200, "a remark band drops nothing: {:?}", run.drops);
    let mut remarked = 0u64;
    for (i, (got, f)) in run.out.iter().zip(&sent).enumerate() {
        let (same, raised) = (f.frame(), V4 { dscp: 12, ..*f }.frame());
        if *got == raised {
            remarked += 1;
        } else {
            assert_frames(
                std::slice::from_ref(got),
                &[same],
                &format!("frame {i}: DSCP 10 or 12, nothing else"),
            );
        }
    }
    assert!(
        (140..=190).contains(&remarked),
        "about all but the burst (10) remarked: {remarked}"
    );
    assert_eq!(
        [count(&stats, "packet_in_count:"), count(&stats, "0: packet_count:")],
        [200, remarked],
        "{stats}"
    );
    assert!(run.drops.is_empty(), "nothing dropped: {:?}", run.drops);
}

/// A meter of two bands in table 1, after a goto: under the remark band's rate (10/s,
/// burst 10) packets pass unchanged, over it but under the drop band's (20/s, burst 20)
/// they are remarked (DSCP 10 → 12), over both dropped: the band of the highest rate
/// exceeded applies, and every band that had tokens gives them.
#[test]
fn a_meter_of_two_bands_remarks_then_drops() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let sent: Vec<V4> = (0..200)
        .map(|i| V4 {
            dscp: 10,
            ..V4::new(1, i)
        })
        .collect();
    let mut b = Bench::new("ofp-meter-bands", &sent.iter().map(V4::frame).collect::<Vec<_>>());
    b.ofctl(
        "add-meter",
        &[
            "meter=4,pktps,burst,band=type=dscp_remark,rate=10,burst_size=10,prec_level=1,\
           type=drop,rate=20,burst_size=20",
        ],
    );
    b.add_flows(&[
        "table=0,priority=10,in_port=1,actions=goto_table:1",
        "table=1,priority=10,in_port=1,actions=meter:4,output:2",
    ]);
    b.replay();
    let stats = b.ofctl("meter-stats", &["meter=4"]);
    let run = b.finish();
    let unchanged = run.out.iter().zip(&sent).take_while(|(g, f)| **g == f.frame()).count();
    let remarked = run.out.len() - unchanged;
    let want: Vec<Vec<u8>> = sent[..run.out.len()]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i < unchanged {
                f.frame()
            } else {
                V4 { dscp: 12, ..*f }.frame()
            }
        })
        .collect();
    assert_frames(&run.out, &want, "unchanged, then remarked");
    assert!(
        (10..=15).contains(&unchanged) && (20..=30).contains(&run.out.len()),
        "about 10 unchanged and 20 in all: {unchanged} unchanged, {remarked} remarked\n{stats}"
    );
    let dropped = 200 - run.out.len() as u64;
    assert_eq!(run.dropped("meter"), dropped, "{:?}", run.drops);
    assert_eq!(
        [count(&stats, "0: packet_count:"), count(&stats, "1: packet_count:")],
        [remarked as u64, dropped],
        "{stats}"
    );
}

/// PACKET_OUT (ovs-ofctl packet-out) runs the same actions as a rule: a push and set of
/// a VLAN tag, a dec_ttl, then a group (ALL: two copies, the second rewritten).
#[test]
fn packet_out_pushes_decrements_and_sends_through_a_group() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let mut b = Bench::new("ofp-packet-out", &[]);
    b.ofctl(
        "add-group",
        &["group_id=1,type=all,bucket=output:2,bucket=set_field:10.0.0.7->ip_dst,output:2"],
    );
    b.replay();
    let f = V4::new(1, 7);
    let hex: String = f.frame().iter().map(|b| format!("{b:02x}")).collect();
    b.ofctl(
        "packet-out",
        &[&format!(
            "in_port=controller,packet={hex},actions=push_vlan:0x8100,set_field:4196->vlan_vid,dec_ttl,group:1"
        )],
    );
    let mut ports = String::new();
    let sent = wait_for(SOON, || {
        ports = b.ofctl("dump-ports", &[]);
        port_lines(&ports, 2).contains("tx pkts=2,")
    });
    assert!(sent, "port 2 did not send 2 packets\n{ports}");
    let stats = b.ofctl("dump-group-stats", &[]);
    let run = b.finish();
    let out = V4 {
        tags: Tags::Q(100),
        ttl: 63,
        ..f
    };
    assert_frames(
        &run.out,
        &[
            out.frame(),
            V4 {
                dst: [10, 0, 0, 7],
                ..out
            }
            .frame(),
        ],
        "tagged VID 100, TTL 63, both buckets",
    );
    assert_eq!(count(&stats, "packet_count="), 1, "{stats}");
}

/// What the spec says a switch refuses, with its error: a rule using a meter or group
/// that does not exist, a group or meter id taken twice, a modify of an unknown one, a
/// group loop; none of them changes anything.
#[test]
fn bad_group_meter_and_rule_mods_are_refused_with_the_specs_errors() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let b = Bench::new("ofp-errors", &[]);
    b.ofctl("add-group", &["group_id=1,type=all,bucket=output:2"]);
    b.ofctl("add-meter", &["meter=1,pktps,band=type=drop,rate=10"]);
    b.ofctl("add-group", &["group_id=20,type=all,bucket=output:2"]);
    b.ofctl("add-group", &["group_id=21,type=all,bucket=group:20"]);
    for (cmd, arg, error) in [
        // OVS (ofproto_check_ofpacts) answers INVALID_METER here.
        (
            "add-flow",
            "priority=10,actions=meter:9,output:2",
            "OFPMMFC_INVALID_METER",
        ),
        ("add-flow", "priority=10,actions=group:9", "OFPBAC_BAD_OUT_GROUP"),
        (
            "add-flow",
            "priority=10,actions=write_actions(group:9)",
            "OFPBAC_BAD_OUT_GROUP",
        ),
        (
            "add-group",
            "group_id=1,type=all,bucket=output:2",
            "OFPGMFC_GROUP_EXISTS",
        ),
        (
            "mod-group",
            "group_id=7,type=all,bucket=output:2",
            "OFPGMFC_UNKNOWN_GROUP",
        ),
        ("mod-group", "group_id=20,type=all,bucket=group:21", "OFPGMFC_LOOP"),
        (
            "add-meter",
            "meter=1,pktps,band=type=drop,rate=10",
            "OFPMMFC_METER_EXISTS",
        ),
        (
            "mod-meter",
            "meter=7,pktps,band=type=drop,rate=10",
            "OFPMMFC_UNKNOWN_METER",
        ),
    ] {
        let (ok, text) = ofctl(cmd, &b.sw, &[arg]);
        assert!(!ok && text.contains(error), "{cmd} {arg}: want {error}, got:\n{text}");
    }
    assert!(flows(&b.dump_flows()).is_empty());
    let groups = b.ofctl("dump-groups", &[]);
    assert_eq!(groups.matches("group_id=").count(), 3, "{groups}");
    let meters = b.ofctl("dump-meters", &[]);
    assert_eq!(meters.matches("meter=").count(), 1, "{meters}");
    let mut mgr = b.mgr;
    stop_cleanly(&mut mgr);
}

/// dump-flows prints each rule as ovs-ofctl itself parses it (`parse-flow`): meter,
/// apply-actions, clear-actions, write-actions, write-metadata and goto-table.
#[test]
fn dump_flows_reads_back_every_instruction_as_written() {
    if !have_ovs_ofctl() {
        return;
    }
    let _serial = common::serial();
    let b = Bench::new("ofp-readback", &[]);
    b.ofctl(
        "add-meter",
        &["meter=1,pktps,burst,band=type=drop,rate=10,burst_size=10"],
    );
    b.ofctl("add-group", &["group_id=1,type=all,bucket=output:2"]);
    let rules = [
        "table=0,priority=30,in_port=1,actions=meter:1,write_actions(push_vlan:0x8100,set_field:4097->vlan_vid,output:2),\
         write_metadata:0x5/0xff,goto_table:1",
        "table=0,priority=20,ip,actions=push_mpls:0x8847,set_field:1000->mpls_label,set_mpls_ttl(9),output:2",
        "table=0,priority=10,mpls,actions=dec_mpls_ttl,pop_mpls:0x0800,group:1",
        "table=0,priority=5,ipv6,actions=dec_ttl,set_field:7->ip_dscp,clear_actions,write_actions(group:1)",
        "table=1,priority=20,ip,metadata=0x5,actions=set_field:10.0.0.9->ip_dst,mod_nw_ttl:9,clear_actions,\
         write_actions(set_field:02:00:00:00:00:09->eth_dst,output:2),goto_table:2",
        "table=1,priority=10,metadata=0x6/0xff,actions=clear_actions",
        "table=2,priority=10,vlan_tci=0x1000/0x1000,actions=pop_vlan,push_vlan:0x88a8,set_field:5->vlan_pcp,output:2",
    ];
    b.add_flows(&rules);
    let dump = b.dump_flows();
    assert_eq!(flows(&dump).len(), rules.len(), "{dump}");
    for r in rules {
        let canon = parse_flow(r);
        let table: u8 = r["table=".len()..r.find(',').unwrap()].parse().unwrap();
        let priority: u16 = count(r, "priority=") as u16;
        let line = flow_line(&dump, table, priority);
        let actions = line.split(" actions=").nth(1).unwrap_or_default();
        assert_eq!(actions, canon.1, "the instructions of {r}");
        assert_eq!(match_of(line), canon.0, "the match of {r}");
    }
    let mut mgr = b.mgr;
    stop_cleanly(&mut mgr);
}

/// What `ovs-ofctl parse-flow` makes of `rule`: its match fields (sorted, without the
/// table) and its instructions, as ovs-ofctl prints them.
fn parse_flow(rule: &str) -> (Vec<String>, String) {
    let out = std::process::Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "parse-flow", rule])
        .output()
        .expect("run ovs-ofctl parse-flow");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "parse-flow {rule}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find(|l| l.contains(" ADD "))
        .unwrap_or_else(|| panic!("no flow in {text}"));
    let after = line.split(" ADD ").nth(1).unwrap();
    let (m, actions) = after
        .split_once(" actions=")
        .unwrap_or(("", after.trim_start_matches("actions=")));
    (fields(m), actions.to_string())
}

/// The match of a dump-flows line, field by field, sorted (without the table and the
/// counters).
fn match_of(line: &str) -> Vec<String> {
    let rule = line.split(" actions=").next().unwrap_or_default();
    let m = rule.split_whitespace().last().unwrap_or_default();
    fields(m)
}

fn fields(m: &str) -> Vec<String> {
    let mut v: Vec<String> = m
        .split([',', ' '])
        .filter(|w| !w.is_empty() && !w.starts_with("table") && !w.starts_with("cookie="))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}
