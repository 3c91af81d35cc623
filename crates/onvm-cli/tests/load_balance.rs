//! A service with three instances: the manager spreads flows over all of them and
//! keeps each flow — both directions — on one instance.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, SOON, TempDir, assert_conserved, onvm, serial};
use onvm_nf::{Action, Nf, handler_fn};
use onvm_packet::{Headers, UdpSpec};
use onvm_proto::config::Config;

const FLOWS: u32 = 60;
/// Packets per flow and direction.
const EACH_WAY: u32 = 5;

/// Flow `f`'s two endpoints, spread over many addresses and ports.
fn endpoints(f: u32) -> ((Ipv4Addr, u16), (Ipv4Addr, u16)) {
    let a = Ipv4Addr::new(10, (f * 7 % 256) as u8, (f * 13 % 256) as u8, (1 + f % 250) as u8);
    let b = Ipv4Addr::new(192, 168, (f % 256) as u8, (200 - f % 100) as u8);
    ((a, 1024 + (f * 331 % 60000) as u16), (b, 80 + (f % 7) as u16))
}

/// Both directions of every flow, interleaved: A→B, B→A, A→B, ...
fn two_way_frames() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for round in 0..EACH_WAY {
        for f in 0..FLOWS {
            let ((a, pa), (b, pb)) = endpoints(f);
            for (src, sp, dst, dp) in [(a, pa, b, pb), (b, pb, a, pa)] {
                let payload = [round as u8, f as u8];
                let spec = UdpSpec {
                    payload: &payload,
                    frame_len: Some(60 + (f as usize % 5) * 100),
                    ..UdpSpec::new(src, dst, sp, dp)
                };
                v.push(spec.to_vec().unwrap());
            }
        }
    }
    v
}

/// The capture: one lead-in packet (a flow of its own) at t = 0 and the flows 1.5 s
/// later, for `timing=file` replay. The input port starts reading when the manager
/// starts, not when its NFs are up; the lead-in gives them time to register.
fn write_input(path: &Path) -> usize {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let lead_in = UdpSpec::new([172, 16, 0, 1], [172, 16, 0, 2], 9, 9).to_vec().unwrap();
    let frames = two_way_frames();
    let t0 = Duration::from_secs(1_700_000_000);
    let mut w = PcapWriter::with_header(std::fs::File::create(path).unwrap(), PcapHeader::default()).unwrap();
    w.write_packet(&PcapPacket::new(t0, lead_in.len() as u32, &lead_in))
        .unwrap();
    for f in &frames {
        let at = t0 + Duration::from_millis(1500);
        w.write_packet(&PcapPacket::new(at, f.len() as u32, f)).unwrap();
    }
    frames.len()
}

fn config(dir: &TempDir, input: &Path, nfs: &str) -> String {
    format!(
        r#"[manager]
socket = {socket:?}
ports = [{input:?}, "null"]
shared_cores = true

[services]
lb = 1
{nfs}
[[chains]]
name = "lb"
chain = ["lb", "out:1"]
in_port = 0
"#,
        socket = dir.socket().display().to_string(),
        input = format!("pcap:{},timing=file", input.display()),
    )
}

/// A flow regardless of direction: its endpoints, sorted.
type FlowKey = ((IpAddr, u16), (IpAddr, u16));

fn flow_key(frame: &[u8]) -> Option<FlowKey> {
    let h = Headers::parse(frame).ok()?;
    let a = (h.src_ip()?, h.src_port()?);
    let b = (h.dst_ip()?, h.dst_port()?);
    Some(if a <= b { (a, b) } else { (b, a) })
}

#[test]
fn three_instances_share_the_flows_and_each_flow_stays_on_one_instance_both_ways() {
    let _one = serial();
    let dir = TempDir::new("lb-lib");
    let input = dir.join("in.pcap");
    let sent = write_input(&input);
    let cfg = Config::from_toml(&config(&dir, &input, "")).expect("the config parses");
    let mut opts = onvm_mgr::Options::new(dir.socket());
    opts.ports = cfg.manager.ports.clone();
    opts.rules = cfg.rules.clone();
    opts.stats = onvm_mgr::StatsMode::Off;
    opts.log_events = false;
    opts.region.buffers = 4095;
    opts.exit_when_drained = Some(Duration::from_millis(500));

    let stop = Arc::new(AtomicBool::new(false));
    let mgr = {
        let stop = stop.clone();
        std::thread::spawn(move || onvm_mgr::run(opts, &stop))
    };
    assert!(
        common::wait_for(SOON, || dir.socket().exists() || mgr.is_finished()),
        "the manager starts"
    );
    // Which instances saw each flow, and how many packets each instance saw.
    let seen: Arc<Mutex<BTreeMap<FlowKey, BTreeSet<u16>>>> = Arc::default();
    let packets: Arc<Mutex<BTreeMap<u16, u64>>> = Arc::default();
    let nfs: Vec<_> = (0..3)
        .map(|k| {
            let (seen, packets, socket) = (seen.clone(), packets.clone(), dir.socket());
            std::thread::spawn(move || {
                let nf = Nf::builder(format!("lb{k}"))
                    .service(1)
                    .shared_core(true)
                    .socket(socket)
                    .connect()
                    .expect("the NF registers");
                nf.run(handler_fn(move |pkt, ctx| {
                    if let Some(key) = flow_key(pkt.data())
                        && key.0.0 != IpAddr::from([172, 16, 0, 1])
                    {
                        seen.lock().unwrap().entry(key).or_default().insert(ctx.instance());
                        *packets.lock().unwrap().entry(ctx.instance()).or_default() += 1;
                    }
                    Action::Next
                }))
                .expect("the NF runs until the manager stops it")
            })
        })
        .collect();
    let report = mgr.join().unwrap().expect("the manager runs");
    for h in nfs {
        h.join().unwrap();
    }
    assert!(report.conserved(), "{}", report.conservation_line());

    let seen = seen.lock().unwrap();
    let packets = packets.lock().unwrap();
    assert_eq!(
        packets.values().sum::<u64>(),
        sent as u64,
        "every flow packet reached an instance: {packets:?}; drops {:?}",
        report.drops
    );
    assert_eq!(seen.len(), FLOWS as usize, "flows seen");
    for (flow, instances) in seen.iter() {
        assert_eq!(
            instances.len(),
            1,
            "flow {flow:?} (both directions) went to {instances:?}"
        );
    }
    let used: BTreeSet<u16> = seen.values().flatten().copied().collect();
    eprintln!("packets per instance: {packets:?}");
    assert_eq!(used.len(), 3, "every instance got flows: {packets:?}");
}

fn up(cfg: &PathBuf) -> Proc {
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(cfg)
        .args(["--stats", "off", "--exit-when-drained", "0.5", "--buffers", "4095"]);
    let mut p = Proc::spawn("onvm up", cmd);
    let code = p.exit_code(SOON);
    assert_eq!(code, 0, "{}", p.output());
    p
}

#[test]
fn onvm_up_with_three_basic_monitor_instances_spreads_packets_over_all_three() {
    let _one = serial();
    let dir = TempDir::new("lb-up");
    let input = dir.join("in.pcap");
    let sent = write_input(&input) as u64;
    let nfs = r#"
[[nfs]]
name = "basic_monitor"
service = "lb"
instances = 3
args = ["--quiet"]
"#;
    let cfg = dir.write("lb.toml", &config(&dir, &input, nfs));
    let p = up(&cfg);
    assert_conserved(&p);
    let out = p.stdout.text();
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("NF basic_monitor ")).collect();
    assert_eq!(rows.len(), 3, "{out}");
    let rx: Vec<u64> = rows.iter().map(|r| common::field(r, "rx").unwrap()).collect();
    eprintln!("rx per basic_monitor instance: {rx:?}");
    assert!(rx.iter().all(|&n| n > 0), "every instance got packets: {rx:?}\n{out}");
    // The lead-in may have found no instance yet; every other packet went through one.
    let total: u64 = rx.iter().sum();
    assert!(total == sent || total == sent + 1, "{total} of {sent}\n{out}");
}
