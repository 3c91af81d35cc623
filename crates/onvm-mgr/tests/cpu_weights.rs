//! CPU weights: two NFs sharing core 1, both with more packets than they can take, one
//! spending 1 µs per packet at weight 100 and one 2 µs at weight 200. The scheduler
//! gives the second twice the CPU, so both move about as many packets (unweighted, the
//! cheaper one moves more).

mod common;

use std::time::Duration;

use common::{busy_nf, opts, start};
use onvm_proto::flow::{Action as RuleAction, Match, PortNo, Rule};

fn to(from: PortNo, to: PortNo) -> Rule {
    Rule::new(1, Match::in_port(from), vec![RuleAction::Output(to)])
}

/// Packets each NF handled, (cheap, costly), with the weights given.
fn run(name: &str, weights: (Option<u32>, Option<u32>)) -> (u64, u64) {
    let rules = vec![
        to(PortNo::physical(0), PortNo::service(1)),
        to(PortNo::service(1), PortNo::physical(2)),
        to(PortNo::physical(1), PortNo::service(2)),
        to(PortNo::service(2), PortNo::physical(2)),
    ];
    let ports = ["gen:64B,16flows,rate=2000k", "gen:64B,16flows,rate=2000k", "null"];
    let mut o = opts(name, &ports, rules);
    o.run_for = Some(Duration::from_secs(3));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let cheap = busy_nf(&path, 1, Some(1), weights.0, Duration::from_micros(1));
    let costly = busy_nf(&path, 2, Some(1), weights.1, Duration::from_micros(2));
    let report = mgr.join().unwrap();
    let (a, b) = (cheap.join().unwrap(), costly.join().unwrap());
    assert!(report.conserved(), "{}", report.conservation_line());
    (a.counters.rx, b.counters.rx)
}

#[test]
fn an_nf_of_twice_the_weight_gets_twice_the_cpu_of_its_core() {
    let (cheap, costly) = run("weights", (Some(100), Some(200)));
    let ratio = cheap as f64 / costly.max(1) as f64;
    let (plain_cheap, plain_costly) = run("no-weights", (None, None));
    let plain = plain_cheap as f64 / plain_costly.max(1) as f64;
    eprintln!(
        "weights 100:200: {cheap} / {costly} = {ratio:.2}; no weights: {plain_cheap} / {plain_costly} = {plain:.2}"
    );
    // Target: (100 / 1 µs) / (200 / 2 µs) = 1, within 20 %.
    assert!(
        (0.8..=1.2).contains(&ratio),
        "weighted ratio {ratio:.2} ({cheap} / {costly})"
    );
    // Without weights each gets half the core: the cheap one moves more (not quite
    // twice as many: the per-packet overhead both pay is the same).
    assert!(
        plain > 1.25 && plain > ratio + 0.25,
        "unweighted ratio {plain:.2} ({plain_cheap} / {plain_costly}), weighted {ratio:.2}"
    );
}
