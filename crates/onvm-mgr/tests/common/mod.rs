//! Helpers shared by the in-process tests: a manager on a thread, options, chains.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use onvm_mgr::{Options, Report, StatsMode};
use onvm_proto::chain::{Chain, Hop, compile};
use onvm_proto::flow::Match;
use onvm_proto::port::PortSpec;

pub fn socket(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onvm-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("onvm.sock")
}

pub fn chain(services: &[u16], out: u16) -> Vec<onvm_proto::flow::Rule> {
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

pub fn start(opts: Options) -> (Arc<AtomicBool>, std::thread::JoinHandle<Report>) {
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

pub fn opts(name: &str, ports: &[&str], rules: Vec<onvm_proto::flow::Rule>) -> Options {
    let mut o = Options::new(socket(name));
    o.ports = ports.iter().map(|p| p.parse::<PortSpec>().unwrap()).collect();
    o.rules = rules;
    o.stats = StatsMode::Off;
    o.log_events = false;
    o.region.buffers = 4095;
    o
}
