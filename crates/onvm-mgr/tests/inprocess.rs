//! Manager + NFs in one process (NFs on threads, mapping the region themselves): the
//! switch, chains, edges and conservation, fast enough for every test run. The
//! process-level tests (crashes, `onvm up`) live with the CLI.

mod common;

use std::time::Duration;

use common::{chain, opts, start};
use onvm_nf::{Action, Nf, handler_fn};

#[test]
fn generator_through_a_two_nf_chain_to_a_port_conserves_every_packet() {
    let mut o = opts("chain2", &["gen:64B,16flows,count=200k", "null"], chain(&[1, 2], 1));
    o.exit_when_drained = Some(Duration::from_millis(300));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let mut nfs = Vec::new();
    for s in [1u16, 2] {
        let p = path.clone();
        nfs.push(std::thread::spawn(move || {
            let nf = Nf::builder(format!("fwd{s}"))
                .service(s)
                .shared_core(true)
                .socket(p)
                .connect()
                .unwrap();
            nf.run(handler_fn(|_, _| Action::Next)).unwrap()
        }));
    }
    let report = mgr.join().unwrap();
    let sums: Vec<_> = nfs.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(report.ports[0].stats.rx, 200_000);
    assert_eq!(report.ports[1].stats.tx + report.dropped, 200_000, "{report:#?}");
    assert!(report.conserved(), "{}", report.conservation_line());
    assert_eq!(report.in_flight, 0);
    for s in &sums {
        assert_eq!(s.counters.rx, s.counters.act_next, "{s:?}");
        assert!(s.counters.rx > 0);
    }
}

#[test]
fn the_last_nf_hands_packets_to_the_manager_on_an_edge_and_they_leave_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.pcap");
    let sink = format!("pcapout:{}", out.display());
    let mut o = opts("mgredge", &["gen:64B,16flows,count=100k", &sink], chain(&[1], 1));
    o.exit_when_drained = Some(Duration::from_millis(300));
    o.wait_for_nfs = Some((1, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let nf = Nf::builder("fwd")
        .service(1)
        .shared_core(true)
        .socket(path)
        .connect()
        .unwrap();
    let h = std::thread::spawn(move || nf.run(handler_fn(|_, _| Action::Next)).unwrap());
    let report = mgr.join().unwrap();
    let s = h.join().unwrap();
    assert!(
        report
            .events
            .iter()
            .any(|e| e.contains("instance 1 → the manager, out of a port")),
        "{:?}",
        report.events
    );
    let sent = report.ports[1].stats.tx;
    assert_eq!(sent + report.dropped, 100_000, "{report:#?}");
    assert!(report.conserved(), "{}", report.conservation_line());
    assert_eq!(report.in_flight, 0);
    assert_eq!(s.counters.rx, s.counters.act_next, "{s:?}");
    // What left is what the generator made: the edge carries buffers, not copies, and
    // the manager routed them without a verdict in their metadata.
    let mut reader = pcap_file::pcap::PcapReader::new(std::fs::File::open(&out).unwrap()).unwrap();
    let mut n = 0u64;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        assert_eq!(pkt.data.len(), 60);
        assert_eq!(&pkt.data[12..14], &[0x08, 0x00], "an IPv4 frame as generated");
        n += 1;
    }
    assert_eq!(n, sent);
}

/// A fake two-node machine (sysfs tree in a temp dir) whose two kernel ports are on
/// different nodes: the switch goes to port 0's node, the buffers are split into one
/// slice per node, and a slice whose node this machine lacks is reported unbound while
/// the manager runs on. TAP ports, because the fake tree decides their nodes; they need
/// CAP_NET_ADMIN, without which the test says so and passes.
#[test]
fn a_fake_two_node_machine_gets_a_buffer_slice_per_port_node() {
    let fake = tempfile::tempdir().unwrap();
    for (file, text) in [
        ("sys/devices/system/cpu/online", "0-3"),
        ("sys/devices/system/node/node0/cpulist", "0-1"),
        ("sys/devices/system/node/node1/cpulist", "2-3"),
        ("sys/class/net/onvmnuma0/device/numa_node", "1"),
        ("sys/class/net/onvmnuma1/device/numa_node", "0"),
    ] {
        let p = fake.path().join(file);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, format!("{text}\n")).unwrap();
    }
    if !onvm_testkit::require_root("to create TAP devices (CAP_NET_ADMIN)") {
        return;
    }
    let mut o = opts("numa", &["tap:onvmnuma0", "tap:onvmnuma1"], Vec::new());
    o.sysfs_root = fake.path().into();
    o.run_for = Some(Duration::from_millis(200));
    let report = onvm_mgr::run(o, &std::sync::atomic::AtomicBool::new(false)).unwrap();
    let numa = report
        .events
        .iter()
        .find(|e| e.starts_with("numa:"))
        .expect("a numa event");
    assert!(numa.contains("2 node(s)"), "{numa}");
    assert!(
        numa.contains("switch on node 1 core 2; NF cores [3, 0, 1, 2]"),
        "{numa}"
    );
    assert!(numa.contains("buffers: node 1 1..=2048 ("), "{numa}");
    assert!(numa.contains("node 0 2049..=4095 (bound)"), "{numa}");
    assert!(report.conserved(), "{}", report.conservation_line());
}
