//! Manager + NFs in one process (NFs on threads, mapping the region themselves): the
//! switch, chains, edges and conservation, fast enough for every test run. The
//! process-level tests (crashes, `onvm up`) live with the CLI.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use onvm_mgr::{Options, Report, StatsMode};
use onvm_nf::{Action, Nf, handler_fn};
use onvm_proto::chain::{Chain, Hop, compile};
use onvm_proto::flow::Match;
use onvm_proto::port::PortSpec;

fn socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onvm-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("onvm.sock")
}

fn chain(services: &[u16], out: u16) -> Vec<onvm_proto::flow::Rule> {
    let mut hops: Vec<Hop> = services
        .iter()
        .map(|&id| Hop::Service {
            id,
            name: format!("s{id}"),
        })
        .collect();
    hops.push(Hop::Out(out));
    compile(
        &[Chain {
            name: "test".into(),
            hops,
            in_port: Some(0),
            matcher: Match::any(),
            default: false,
            priority: None,
        }],
        2,
    )
    .unwrap()
}

fn start(opts: Options) -> (Arc<AtomicBool>, std::thread::JoinHandle<Report>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let path = opts.socket.clone();
    let h = std::thread::spawn(move || onvm_mgr::run(opts, &s).expect("manager runs"));
    let t = Instant::now();
    while !path.exists() {
        assert!(t.elapsed() < Duration::from_secs(5), "manager did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    (stop, h)
}

fn opts(name: &str, ports: &[&str], rules: Vec<onvm_proto::flow::Rule>) -> Options {
    let mut o = Options::new(socket(name));
    o.ports = ports.iter().map(|p| p.parse::<PortSpec>().unwrap()).collect();
    o.rules = rules;
    o.stats = StatsMode::Off;
    o.log_events = false;
    o.region.buffers = 4095;
    o
}

#[test]
fn generator_through_a_two_nf_chain_to_a_port_conserves_every_packet() {
    let mut o = opts("chain2", &["gen:64B,16flows,count=200k", "null"], chain(&[1, 2], 1));
    o.exit_when_drained = Some(Duration::from_millis(300));
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
