//! One os-ken app, two switches: `examples/openflow/pipeline_app.py` programs Open
//! vSwitch (the userspace switch, `datapath_type=netdev`, all its state in a temp
//! folder: tests/common/ovs.rs) and an `onvm up` manager at the same time, with the same
//! pipeline, and the same frames go through both; what leaves each must be the same,
//! byte for byte. The pipeline:
//!
//! * **VLAN**: an untagged frame from the access port (1) gets a tag pushed (push_vlan +
//!   set_field vlan_vid=100) on its way to the trunk port (2); a frame from the trunk
//!   tagged 100 is popped on its way to the access port. Frames tagged on the access
//!   port, or tagged 200 on the trunk, match nothing and are dropped.
//! * **SELECT group** with three buckets, each an output to an "NF service" port
//!   (4097..4099): on onvm the logical port of a service with one `simple_forward` NF,
//!   on Open vSwitch a patch port into a bridge of its own that sends every packet back
//!   out IN_PORT (`Ovs::loopback_service`, with `ofport_request` giving it onvm's
//!   number). What comes back re-enters the table on the service port and goes to the
//!   trunk, still tagged. The two switches hash flows to buckets differently, so which
//!   bucket a flow takes may differ, but the frames that leave must not. Flow affinity
//!   is checked on each: the test adds, beside the app's rules, one counting rule per
//!   (service port, flow) with the same action as the app's rule for that port; each
//!   flow must have used exactly one bucket, at least two buckets must be used, and the
//!   group's bucket counters (GROUP stats), and on onvm each service's NF's `rx`, must
//!   agree with those counts.
//! * **Meter** (1000 packets/s, burst 100, one drop band) on one UDP flow from the
//!   access port, tagged and sent to the trunk. This part is not byte-exact between the
//!   switches: which packets of a burst a token bucket passes depends on when each
//!   switch reads them from its socket and on how its bucket refills (Open vSwitch in
//!   milliseconds, onvm by its own clock), so the passed subsets differ. Each switch
//!   must pass every packet of a flow sent far below the rate (100/s), and of a burst
//!   of 400 back-to-back packets pass at least `burst` but not more than the burst plus
//!   what the rate allows between the burst's start (its first frame leaving the access
//!   host) and the last passed packet's exit (a meter that reads the time as packets
//!   arrive cannot credit more), with [`CLOCK_SLACK`] for rounding, in the order sent, dropping the rest; METER stats must count the
//!   drops in the band.
//!
//! Topology: one namespace for both switches and the controller (all on its loopback),
//! one for the access hosts and one for the trunk hosts, each host a veth end per
//! switch (addresses unused: frames are raw, sent by tcpreplay, captured by tcpdump
//! `-Q in`, and `-Q out` on the access host for when the burst left). Open vSwitch goes
//! first, as the reference; then onvm gets the same pcaps. About 10 s.
//!
//! Where onvm lacks a feature the app's FLOW_MOD / GROUP_MOD / METER_MOD is refused:
//! the app prints each refusal (`error from 0xb1: WHAT: OFPET_... OFP..._...`) and this
//! test fails listing them with every frame difference that follows, so one run says
//! everything that is missing. It never passes without both switches.
//!
//! Needs root, `ip`, tcpreplay, tcpdump, python3 with os-ken, Open vSwitch's daemons
//! and tools (openvswitch-switch, openvswitch-common); scripts/deps.sh installs them.
//! Without them it fails naming what is missing (`ONVM_ALLOW_SKIP=1` skips).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::netns::{Netns, whole_records};
use common::openflow::have_os_ken;
use common::ovs::Ovs;
use common::{KillBySocket, Proc, SOON, TempDir, registered, wait_for};
use onvm_packet::{Headers, UdpSpec};

/// The app's port, on the switch namespace's loopback.
const CONTROLLER: u16 = 6653;
/// onvm's OpenFlow listener, for the stats ovs-ofctl reads.
const LISTENER: u16 = 6634;
const OVS_DPID: u64 = 0xa1;
const ONVM_DPID: u64 = 0xb1;
const ACCESS: u16 = 1;
const TRUNK: u16 = 2;
const SERVICES: [u16; 3] = [0x1001, 0x1002, 0x1003];
const VLAN: u16 = 100;
const OTHER_VLAN: u16 = 200;
const METER_UDP: u16 = 9999;
const RATE: u64 = 1000;
const BURST: u64 = 100;
/// Flows from the access side, through the group; frames per flow.
const FLOWS: u8 = 20;
const PER_FLOW: usize = 10;
/// Flows from the trunk side; frames per flow.
const TRUNK_FLOWS: u8 = 10;
/// Metered frames: far below the rate, then back to back.
const SLOW: usize = 30;
const BURST_SENT: usize = 400;
/// Packets a meter may pass beyond `burst` + `rate` x the burst's time: rounding of
/// the bucket's refill and the capture's timestamps (each switch meters a packet at
/// the time it handles it: onvm reads its clock per metered packet, because a pass's
/// time can be a yield old on a busy machine and crediting that wait passed 30-50
/// packets too many). A bucket of `burst` + `rate`, or no meter, is far above it.
const CLOCK_SLACK: u64 = 3;
/// The counting rules' cookie.
const COUNTING: &str = "0x7e57";

/// A UDP frame `src:sport -> dst:dport`, tagged `vlan` if given, `len` bytes, with
/// `index` in its payload so no two frames are alike.
fn udp(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, vlan: Option<u16>, index: u32, len: usize) -> Vec<u8> {
    let tag = index.to_be_bytes();
    let spec = UdpSpec {
        vlan_tci: vlan,
        payload: &tag,
        frame_len: Some(len),
        ..UdpSpec::new(src, dst, sport, dport)
    };
    spec.to_vec().expect("a valid UDP frame")
}

/// `frame` with an 802.1Q tag (priority 0, VID `vid`) after its MAC addresses, as
/// push_vlan + set_field vlan_vid writes it.
fn tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&[0x81, 0x00]);
    f.extend_from_slice(&vid.to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

/// `frame` without its outer tag.
fn untagged(frame: &[u8]) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend_from_slice(&frame[16..]);
    f
}

/// What the hosts send and what must come out.
struct Traffic {
    /// Into the access port: the group's flows, untagged, and a few tagged frames
    /// (dropped), interleaved.
    access: Vec<Vec<u8>>,
    /// Into the trunk port: tagged VLAN frames (popped) and a few of another VLAN
    /// (dropped).
    trunk: Vec<Vec<u8>>,
    /// The metered flow, far below the rate, then back to back.
    slow: Vec<Vec<u8>>,
    burst: Vec<Vec<u8>>,
}

impl Traffic {
    fn new() -> Traffic {
        let mut access = Vec::new();
        for i in 0..usize::from(FLOWS) * PER_FLOW {
            let f = (i % usize::from(FLOWS)) as u8;
            let len = 60 + (i * 53) % 940;
            access.push(udp(
                [10, 1, 0, f + 1],
                2000 + u16::from(f),
                [10, 2, 0, 1],
                3000,
                None,
                i as u32,
                len,
            ));
            if i % 20 == 7 {
                access.push(udp([10, 1, 1, 1], 2100, [10, 2, 0, 1], 3000, Some(VLAN), i as u32, 64));
            }
        }
        let mut trunk = Vec::new();
        for i in 0..usize::from(TRUNK_FLOWS) * PER_FLOW {
            let f = (i % usize::from(TRUNK_FLOWS)) as u8;
            let len = 64 + (i * 71) % 900;
            trunk.push(udp(
                [10, 3, 0, f + 1],
                4000 + u16::from(f),
                [10, 4, 0, 1],
                5000,
                Some(VLAN),
                i as u32,
                len,
            ));
            if i % 10 == 3 {
                trunk.push(udp(
                    [10, 3, 1, 1],
                    4100,
                    [10, 4, 0, 1],
                    5000,
                    Some(OTHER_VLAN),
                    i as u32,
                    64,
                ));
            }
        }
        let metered = |i: usize| udp([10, 5, 0, 1], 6000, [10, 6, 0, 1], METER_UDP, None, i as u32, 60);
        Traffic {
            access,
            trunk,
            slow: (0..SLOW).map(metered).collect(),
            burst: (1000..1000 + BURST_SENT).map(metered).collect(),
        }
    }

    /// What the trunk port must send of `access`: the untagged frames, tagged.
    fn to_trunk(&self) -> Vec<Vec<u8>> {
        let untagged = self
            .access
            .iter()
            .filter(|f| Headers::parse(f).unwrap().vlan_id().is_none());
        untagged.map(|f| tagged(f, VLAN)).collect()
    }

    /// What the access port must send of `trunk`: the VLAN's frames, untagged.
    fn to_access(&self) -> Vec<Vec<u8>> {
        let ours = self
            .trunk
            .iter()
            .filter(|f| Headers::parse(f).unwrap().vlan_id() == Some(VLAN));
        ours.map(|f| untagged(f)).collect()
    }
}

/// A flow: source and destination address and port.
type FlowKey = (String, u16, String, u16);

fn flow_of(frame: &[u8]) -> FlowKey {
    let h = Headers::parse(frame).expect("an Ethernet frame");
    let ip = |a: Option<std::net::IpAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    (
        ip(h.src_ip()),
        h.src_port().unwrap_or(0),
        ip(h.dst_ip()),
        h.dst_port().unwrap_or(0),
    )
}

/// The index a frame of [`udp`] carries in its payload.
fn index_of(frame: &[u8]) -> Option<u32> {
    let h = Headers::parse(frame).ok()?;
    Some(u32::from_be_bytes(h.payload().get(..4)?.try_into().ok()?))
}

/// Frames by flow, each flow's in the order given.
fn per_flow(frames: &[Vec<u8>]) -> BTreeMap<FlowKey, Vec<Vec<u8>>> {
    let mut m: BTreeMap<FlowKey, Vec<Vec<u8>>> = BTreeMap::new();
    for f in frames {
        m.entry(flow_of(f)).or_default().push(f.clone());
    }
    m
}

fn hex(frame: &[u8]) -> String {
    let shown: Vec<String> = frame.iter().take(48).map(|b| format!("{b:02x}")).collect();
    let more = if frame.len() > 48 { "..." } else { "" };
    format!("{} bytes {}{more}", frame.len(), shown.join(""))
}

/// `None` when `got` has `want`'s frames, each flow's in the same order; else what
/// differs (counts, the first differing frame of the first flow that differs).
fn differs(want: &[Vec<u8>], got: &[Vec<u8>]) -> Option<String> {
    let (w, g) = (per_flow(want), per_flow(got));
    if w == g {
        return None;
    }
    let mut text = format!("{} frames expected, {} seen", want.len(), got.len());
    let keys: BTreeSet<&FlowKey> = w.keys().chain(g.keys()).collect();
    for k in keys {
        let (wf, gf) = (w.get(k).map_or(&[][..], |v| v), g.get(k).map_or(&[][..], |v| v));
        if wf == gf {
            continue;
        }
        text += &format!("; flow {k:?}: {} expected, {} seen", wf.len(), gf.len());
        match wf.iter().zip(gf).position(|(a, b)| a != b) {
            Some(i) => text += &format!("; its frame #{i}: expected {}, seen {}", hex(&wf[i]), hex(&gf[i])),
            None if gf.len() > wf.len() => text += &format!("; extra {}", hex(&gf[wf.len()])),
            None => text += &format!("; missing from #{}", gf.len()),
        }
        break;
    }
    Some(text)
}

/// A classic pcap's records: (time stamp, frame).
fn read_capture(path: &Path) -> Vec<(Duration, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = pcap_file::pcap::PcapReader::new(file).expect("a pcap header");
    let mut out = Vec::new();
    while let Some(Ok(p)) = r.next_packet() {
        out.push((p.timestamp, p.data.into_owned()));
    }
    out
}

/// tcpdump on `iface` in `ns`, frames in one direction only (`in`: what the switch
/// sent, not what tcpreplay sends from the same interface; `out`: what tcpreplay sent,
/// and when), no filter (a stray frame is a difference too).
fn capture(ns: &Netns, iface: &str, direction: &str, path: &Path) -> Proc {
    let mut c = ns.command("tcpdump");
    c.args(["-Q", direction, "-i", iface, "-U", "-n", "-w"]).arg(path);
    let p = Proc::spawn("tcpdump", c);
    assert!(
        p.stderr.wait(SOON, |l| l.contains("listening on")).is_some(),
        "tcpdump did not start\n{}",
        p.output()
    );
    p
}

/// tcpreplay `frames` (written to `pcap`) into `iface` in `ns`, at `speed`
/// (`--pps=N`, `--topspeed`); returns when all are sent.
fn replay(ns: &Netns, iface: &str, pcap: &Path, frames: &[Vec<u8>], speed: &str) {
    common::write_pcap(pcap, frames, Duration::from_secs(1_700_000_000));
    let mut c = ns.command("tcpreplay");
    c.args(["-q", "-i", iface, speed]).arg(pcap);
    let mut p = Proc::spawn("tcpreplay", c);
    assert_eq!(p.exit_code(SOON), 0, "{}", p.output());
}

/// Waits until `path` holds `want` records, or until it has not grown for a second
/// (a switch that drops); at most 10 s.
fn settle(path: &Path, want: usize) -> usize {
    let (start, mut last, mut since) = (Instant::now(), 0, Instant::now());
    loop {
        let n = whole_records(path);
        if n >= want || since.elapsed() > Duration::from_secs(1) || start.elapsed() > Duration::from_secs(10) {
            return n;
        }
        if n != last {
            (last, since) = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One of the two switches, as the test reaches it.
struct Switch<'a> {
    name: &'static str,
    /// ovs-ofctl's target for it (run in the switch namespace).
    target: String,
    /// The host-side veth ends: in the access and in the trunk namespace.
    host_if: &'static str,
    sw: &'a Netns,
}

impl Switch<'_> {
    /// `ovs-ofctl -O OpenFlow13 --no-names CMD TARGET ARGS`: (success, its output).
    fn ofctl(&self, cmd: &str, args: &[&str]) -> (bool, String) {
        let out = self
            .sw
            .command("timeout")
            .args(["10", "ovs-ofctl", "-O", "OpenFlow13", "--no-names", cmd, &self.target])
            .args(args)
            .output()
            .expect("run ovs-ofctl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// What came out of one switch, and its counters.
struct Seen {
    /// Out of the trunk port, in arrival order: the group's flows, then the metered one.
    to_trunk: Vec<Vec<u8>>,
    /// Out of the access port.
    to_access: Vec<Vec<u8>>,
    slow: Vec<Vec<u8>>,
    /// The burst's frames that passed, with their capture times, and when its first
    /// frame left the access host (the same clock: since the Unix epoch).
    burst: Vec<(Duration, Vec<u8>)>,
    burst_start: Duration,
}

/// The same sequence through `s`: the access and trunk frames (2000/s), then the
/// metered flow slowly (100/s) and, once the meter's bucket has refilled, back to back.
fn drive(s: &Switch, t: &Traffic, dir: &TempDir, access_ns: &Netns, trunk_ns: &Netns) -> Seen {
    let (trunk_pcap, access_pcap, sent_pcap) = (
        dir.join(&format!("{}-out-trunk.pcap", s.name)),
        dir.join(&format!("{}-out-access.pcap", s.name)),
        dir.join(&format!("{}-sent-access.pcap", s.name)),
    );
    let mut cap_t = capture(trunk_ns, s.host_if, "in", &trunk_pcap);
    let mut cap_a = capture(access_ns, s.host_if, "in", &access_pcap);
    let mut cap_sent = capture(access_ns, s.host_if, "out", &sent_pcap);
    let input = |what: &str| dir.join(&format!("{}-in-{what}.pcap", s.name));
    replay(access_ns, s.host_if, &input("access"), &t.access, "--pps=2000");
    replay(trunk_ns, s.host_if, &input("trunk"), &t.trunk, "--pps=2000");
    let main = t.to_trunk().len();
    settle(&trunk_pcap, main);
    settle(&access_pcap, t.to_access().len());
    replay(access_ns, s.host_if, &input("slow"), &t.slow, "--pps=100");
    settle(&trunk_pcap, main + SLOW);
    // The bucket refills (burst / rate = 0.1 s) before the burst.
    std::thread::sleep(Duration::from_millis(300));
    replay(access_ns, s.host_if, &input("burst"), &t.burst, "--topspeed");
    settle(&trunk_pcap, usize::MAX);
    for cap in [&mut cap_t, &mut cap_a, &mut cap_sent] {
        cap.signal("INT");
        cap.wait_exit(SOON);
    }
    // The metered flow's frames by the index in their payload: the burst's from 1000.
    let metered = |f: &[u8]| flow_of(f).3 == METER_UDP;
    let burst = |f: &[u8]| metered(f) && index_of(f) >= Some(1000);
    let out = read_capture(&trunk_pcap);
    let frames = |keep: &dyn Fn(&[u8]) -> bool| -> Vec<(Duration, Vec<u8>)> {
        out.iter().filter(|(_, f)| keep(f)).cloned().collect()
    };
    let bytes = |v: Vec<(Duration, Vec<u8>)>| v.into_iter().map(|(_, f)| f).collect();
    let sent = read_capture(&sent_pcap);
    let burst_start = sent.iter().find(|(_, f)| burst(f)).map(|(at, _)| *at);
    Seen {
        to_trunk: bytes(frames(&|f| !metered(f))),
        slow: bytes(frames(&|f| metered(f) && !burst(f))),
        burst: frames(&burst),
        burst_start: burst_start.expect("tcpdump saw the burst leave the access host"),
        to_access: read_capture(&access_pcap).into_iter().map(|(_, f)| f).collect(),
    }
}

/// The counting rules: one per (service port, access flow), the action the app's rule
/// for that service port has (to the trunk), so forwarding is unchanged.
fn counting_rules(dir: &TempDir) -> PathBuf {
    let mut text = String::new();
    for s in SERVICES {
        for f in 1..=FLOWS {
            text +=
                &format!("cookie={COUNTING},priority=150,in_port={s},ip,nw_src=10.1.0.{f},actions=output:{TRUNK}\n");
        }
    }
    dir.write("counting.flows", &text)
}

/// The number after `key` (`n_packets=`, `packet_count:`) in `text`.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.find(key)? + key.len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// The frames the pipeline makes of `t`, as a switch must send them (the group's
/// flows and the slow metered flow tagged, the trunk's VLAN untagged); the burst is
/// left out (it is not byte-exact).
fn model(t: &Traffic) -> Seen {
    Seen {
        to_trunk: t.to_trunk(),
        to_access: t.to_access(),
        slow: t.slow.iter().map(|f| tagged(f, VLAN)).collect(),
        burst: Vec::new(),
        burst_start: Duration::ZERO,
    }
}

/// Where `got` differs from `want` in the byte-exact part (the group's flows, the
/// VLAN's flows back, the slow metered flow): each flow's frames, in order.
fn compare(want: &Seen, got: &Seen, than: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (what, x, y) in [
        (
            format!("access -> trunk (push VLAN {VLAN}, group)"),
            &want.to_trunk,
            &got.to_trunk,
        ),
        (
            format!("trunk -> access (pop VLAN {VLAN})"),
            &want.to_access,
            &got.to_access,
        ),
        (
            "metered flow far below the rate (all must pass)".into(),
            &want.slow,
            &got.slow,
        ),
    ] {
        if let Some(d) = differs(x, y) {
            problems.push(format!("{what}: other frames than {than}: {d}"));
        }
    }
    problems
}

/// Checks one switch's meter, flow affinity and counters (what is not byte-exact);
/// every problem found, and the packets each service port got by the counting rules.
fn check(s: &Switch, t: &Traffic, seen: &Seen) -> (Vec<String>, Vec<u64>) {
    let mut problems = Vec::new();
    let mut problem = |what: String| problems.push(what);

    // The burst: an in-order subset, at least `burst`, at most what the rate allows.
    // Every passed frame was metered after the burst started and before it came out,
    // so the bucket (full at the start) got at most `rate` tokens a second in between.
    // (The first frame's exit is no bound: a switch may meter over milliseconds and
    // send the passed frames in one batch.)
    let want: Vec<Vec<u8>> = t.burst.iter().map(|f| tagged(f, VLAN)).collect();
    let mut it = want.iter();
    let in_order = seen.burst.iter().all(|(_, f)| it.any(|w| w == f));
    let passed = seen.burst.len() as u64;
    let span = seen
        .burst
        .last()
        .map_or(Duration::ZERO, |(at, _)| at.saturating_sub(seen.burst_start));
    let allowed = BURST + (RATE as f64 * span.as_secs_f64()) as u64 + CLOCK_SLACK;
    if !in_order || passed < BURST || passed >= BURST_SENT as u64 || passed > allowed {
        problem(format!(
            "meter burst: {passed} of {BURST_SENT} back-to-back frames passed within {span:?} of the burst's \
             start (want at least {BURST}, at most {allowed} and fewer than all; in the order sent: {in_order})"
        ));
    }
    let (ok, stats) = s.ofctl("meter-stats", &[]);
    let meter_in = number_after(&stats, "packet_in_count:");
    let band = stats
        .lines()
        .find(|l| l.trim_start().starts_with("0: "))
        .and_then(|l| number_after(l, "packet_count:"));
    match (ok, meter_in, band) {
        (true, Some(meter_in), Some(band)) => {
            let out = (SLOW as u64) + passed;
            if band == 0 || meter_in != out + band || meter_in > (SLOW + BURST_SENT) as u64 {
                problem(format!(
                    "METER stats: {meter_in} in, {band} dropped by the band, but {out} passed of {} sent:\n{stats}",
                    SLOW + BURST_SENT
                ));
            }
        }
        _ => problem(format!("METER stats unreadable (ovs-ofctl meter-stats):\n{stats}")),
    }

    // Flow affinity, from the counting rules: flow -> {service: packets}.
    let (ok, dump) = s.ofctl("dump-flows", &[&format!("cookie={COUNTING}/-1")]);
    let mut buckets: BTreeMap<String, BTreeMap<u64, u64>> = BTreeMap::new();
    for line in dump.lines().filter(|l| l.contains("n_packets=")) {
        let src = line
            .split([',', ' '])
            .find_map(|w| w.strip_prefix("nw_src="))
            .unwrap_or("?")
            .to_string();
        let (port, n) = (number_after(line, "in_port="), number_after(line, "n_packets="));
        if let (Some(port), Some(n)) = (port, n)
            && n > 0
        {
            buckets.entry(src).or_default().insert(port, n);
        }
    }
    let spread: Vec<String> = buckets.iter().map(|(f, b)| format!("{f}: {b:?}")).collect();
    let used: BTreeSet<u64> = buckets.values().flat_map(|b| b.keys().copied()).collect();
    let one_each = buckets.len() == usize::from(FLOWS)
        && buckets
            .values()
            .all(|b| b.len() == 1 && b.values().sum::<u64>() == PER_FLOW as u64);
    if !ok || !one_each || used.len() < 2 {
        problem(format!(
            "flow affinity: each of {FLOWS} flows must use exactly one bucket ({PER_FLOW} frames), at least \
             two buckets in all; per flow {{service port: packets}}: {spread:?}\n{}",
            if ok { String::new() } else { dump.clone() }
        ));
    }
    // GROUP stats: the buckets' counters are the services' counts.
    let per_service: Vec<u64> = SERVICES
        .iter()
        .map(|&p| buckets.values().filter_map(|b| b.get(&u64::from(p))).sum())
        .collect();
    let (ok, stats) = s.ofctl("dump-group-stats", &[]);
    let counters: Vec<Option<u64>> = (0..SERVICES.len())
        .map(|k| number_after(&stats, &format!("bucket{k}:packet_count=")))
        .collect();
    let total = number_after(&stats, ",packet_count=");
    let sent = (usize::from(FLOWS) * PER_FLOW) as u64;
    if !ok || counters != per_service.iter().map(|&n| Some(n)).collect::<Vec<_>>() || total != Some(sent) {
        problem(format!(
            "GROUP stats: buckets {counters:?} and total {total:?}, want {per_service:?} (the counting rules) \
             and {sent}:\n{stats}"
        ));
    }
    eprintln!(
        "{}: per flow {{service port: packets}}: {spread:?}; group buckets {counters:?}; burst: {passed} of \
         {BURST_SENT} passed within {span:?}",
        s.name
    );
    (problems, per_service)
}

/// The service in a summary line `NF TAG instance N service S: rx ...`.
fn nf_service(line: &str) -> Option<usize> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "service")?;
    words.next()?.trim_end_matches(':').parse().ok()
}

/// The app's JSON config: both switches alike (ports by number).
fn app_config(dir: &TempDir) -> PathBuf {
    let services: Vec<String> = SERVICES.iter().map(u16::to_string).collect();
    dir.write(
        "pipeline.json",
        &format!(
            r#"{{"access": {ACCESS}, "trunk": {TRUNK}, "vlan": {VLAN}, "services": [{}],
"meter": {{"udp_dst": {METER_UDP}, "rate_pktps": {RATE}, "burst": {BURST}}}}}"#,
            services.join(", ")
        ),
    )
}

/// `onvm up`'s config: the two AF_PACKET ports, three services of one `simple_forward`
/// each, no chains (only the controller's rules forward), the app as controller.
fn onvm_config(dir: &TempDir) -> PathBuf {
    let mut text = format!(
        r#"[manager]
socket = {socket:?}
ports = ["afpacket:onvm-acc", "afpacket:onvm-trk"]
shared_cores = true
controllers = ["tcp:127.0.0.1:{CONTROLLER}"]
openflow_listen = "ptcp:{LISTENER}:127.0.0.1"
fail_mode = "secure"
datapath_id = {ONVM_DPID:#x}

[services]
"#,
        socket = dir.socket().display().to_string(),
    );
    for (k, _) in SERVICES.iter().enumerate() {
        text += &format!("nf{} = {}\n", k + 1, k + 1);
    }
    for (k, _) in SERVICES.iter().enumerate() {
        text += &format!("\n[[nfs]]\nname = \"simple_forward\"\nservice = \"nf{}\"\n", k + 1);
    }
    dir.write("onvm.toml", &text)
}

#[test]
fn one_os_ken_app_programs_ovs_and_onvm_alike_vlan_select_group_and_meter() {
    if !(onvm_testkit::require_root("to create network namespaces, veth pairs and raw sockets")
        && onvm_testkit::require_tool("ip", "apt install iproute2")
        && onvm_testkit::require_tool("tcpreplay", "apt install tcpreplay")
        && onvm_testkit::require_tool("tcpdump", "apt install tcpdump")
        && have_os_ken()
        && common::ovs::can_run())
    {
        return;
    }
    let _serial = common::serial();
    let started = Instant::now();
    let dir = TempDir::new("osken-ovs");
    // Declared first, dropped last: the processes in them go before the namespaces.
    let sw = Netns::create("ovsw");
    let (access_ns, trunk_ns) = (Netns::create("ovsa"), Netns::create("ovst"));
    for (host, side) in [(&access_ns, "acc"), (&trunk_ns, "trk")] {
        sw.veth_to(&format!("ovs-{side}"), host, "to-ovs");
        sw.veth_to(&format!("onvm-{side}"), host, "to-onvm");
    }
    let traffic = Traffic::new();

    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/openflow/pipeline_app.py");
    let mut cmd = sw.command("python3");
    cmd.arg(&app)
        .args(["--listen", &CONTROLLER.to_string(), "--config"])
        .arg(app_config(&dir));
    let app = Proc::spawn("pipeline_app", cmd);
    assert!(
        app.stdout.wait(SOON, |l| l.contains("listening on")).is_some(),
        "the app did not start\n{}",
        app.output()
    );
    let done_on = |dpid: u64| {
        let (ready, refused) = (
            format!("pipeline ready on {dpid:#x}"),
            format!("pipeline refused on {dpid:#x}"),
        );
        app.stdout
            .wait(Duration::from_secs(30), |l| l.contains(&ready) || l.contains(&refused))
            .map(|(_, l)| l)
    };

    // Open vSwitch: br0 with the two veths as ports 1 and 2 and three loopback services.
    let ovs = Ovs::start("osken", &sw);
    let controller = format!("tcp:127.0.0.1:{CONTROLLER}");
    ovs.bridge("br0", OVS_DPID);
    ovs.port("br0", "ovs-acc", ACCESS);
    ovs.port("br0", "ovs-trk", TRUNK);
    for (k, &port) in SERVICES.iter().enumerate() {
        ovs.loopback_service("br0", port, &format!("nf{}", k + 1));
    }
    ovs.controller("br0", &controller);
    let line = done_on(OVS_DPID);
    assert!(
        line.as_deref().is_some_and(|l| l.contains("ready")),
        "the app did not program Open vSwitch: {line:?}\n{}\n{}",
        app.output(),
        ovs.log()
    );

    // onvm: the same ports and services, three simple_forward NFs.
    let _nfs = KillBySocket(dir.socket());
    let mut cmd = sw.command(env!("CARGO_BIN_EXE_onvm"));
    cmd.arg("up")
        .arg(onvm_config(&dir))
        .args(["--stats", "off", "--buffers", "4095"]);
    let mut up = Proc::spawn("onvm up", cmd);
    assert!(
        wait_for(SOON, || registered(&up) >= SERVICES.len() || up.exited()) && registered(&up) >= SERVICES.len(),
        "the NFs did not register\n{}",
        up.output()
    );
    let onvm_line =
        done_on(ONVM_DPID).unwrap_or_else(|| panic!("onvm never reached the app\n{}\n{}", app.output(), up.output()));

    let switches = [
        Switch {
            name: "Open vSwitch",
            target: format!("unix:{}", ovs.dir().join("br0.mgmt").display()),
            host_if: "to-ovs",
            sw: &sw,
        },
        Switch {
            name: "onvm",
            target: format!("tcp:127.0.0.1:{LISTENER}"),
            host_if: "to-onvm",
            sw: &sw,
        },
    ];
    let mut problems = Vec::new();
    if onvm_line.contains("refused") {
        let errors = app.stdout.text();
        let errors: Vec<&str> = errors
            .lines()
            .filter(|l| l.contains(&format!("error from {ONVM_DPID:#x}")))
            .collect();
        problems.push(format!("onvm refused part of the pipeline:\n  {}", errors.join("\n  ")));
    }
    let rules = counting_rules(&dir);
    let (mut seen, mut per_service) = (Vec::new(), Vec::new());
    for s in &switches {
        let (ok, text) = s.ofctl("add-flows", &[&rules.display().to_string()]);
        if !ok {
            problems.push(format!("{}: the counting rules were refused: {text}", s.name));
        }
        let got = drive(s, &traffic, &dir, &access_ns, &trunk_ns);
        let (found, counts) = check(s, &traffic, &got);
        problems.extend(found.into_iter().map(|p| format!("{}: {p}", s.name)));
        per_service.push(counts);
        seen.push(got);
    }
    // Open vSwitch is the reference: its frames must be what the pipeline makes, and
    // onvm's must be Open vSwitch's, byte for byte.
    let ovs_vs_model = compare(&model(&traffic), &seen[0], "the pipeline makes");
    let onvm_vs_ovs = compare(&seen[0], &seen[1], "Open vSwitch sent (expected = Open vSwitch's)");
    problems.extend(ovs_vs_model.into_iter().map(|p| format!("Open vSwitch: {p}")));
    problems.extend(onvm_vs_ovs.into_iter().map(|p| format!("onvm: {p}")));

    // onvm stops cleanly, every packet accounted for (a failure here is listed with
    // the others rather than hiding them).
    up.signal("TERM");
    let status = wait_for(SOON, || up.exited()).then(|| up.wait_exit(SOON));
    let summary = up.stdout.text();
    let conserved = summary
        .lines()
        .any(|l| l.starts_with("conservation: OK") && l.contains("pool whole"));
    if status.is_none_or(|st| !st.success()) || !conserved {
        problems.push(format!(
            "onvm up did not stop cleanly ({status:?}) or lost packets (no \"conservation: OK ... pool whole\" line)"
        ));
    } else {
        // Each service's NF got what the counting rules saw come back on its port.
        let rx: Vec<u64> = (1..=SERVICES.len())
            .map(|service| {
                summary
                    .lines()
                    .filter(|l| l.starts_with("NF simple_forward") && nf_service(l) == Some(service))
                    .filter_map(|l| common::field(l, "rx"))
                    .sum()
            })
            .collect();
        if rx != per_service[1] {
            problems.push(format!(
                "onvm: the NFs of services 1..3 received {rx:?} packets, the counting rules saw {:?} come back",
                per_service[1]
            ));
        }
    }
    eprintln!("took {:?}", started.elapsed());
    assert!(
        problems.is_empty(),
        "{} problem(s):\n* {}\n{}\n{}",
        problems.len(),
        problems.join("\n* "),
        app.output(),
        up.output()
    );
}
