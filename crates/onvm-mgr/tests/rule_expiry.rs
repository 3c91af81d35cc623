//! Rule timeouts have their own deadline: a rule leaves the table within a second of
//! its timeout whatever the stats interval (it once waited for the next stats line:
//! a 2 s idle timeout lived 21.8 s with `--stats-every 30`).

mod common;

use std::time::{Duration, Instant};

use common::opts;
use onvm_proto::flow::{Action, Match, PortNo, Rule};

#[test]
fn rules_expire_within_a_second_of_their_timeout_with_stats_every_30s() {
    let mut hard = Rule::new(
        10,
        Match::in_port(PortNo::physical(0)),
        vec![Action::Output(PortNo::physical(1))],
    );
    hard.hard_timeout = 1;
    // Matches nothing that arrives, so it idles out.
    let mut idle = Rule::new(10, Match::in_port(PortNo::service(9)), vec![Action::Drop]);
    idle.idle_timeout = 1;
    let mut o = opts("expiry", &["gen:64B,4flows,rate=20k", "null"], vec![hard, idle]);
    o.stats_every = Duration::from_secs(30);
    // Timeout + 1 s: both rules must be gone by then, with the switch busy meanwhile.
    o.run_for = Some(Duration::from_secs(2));
    let t = Instant::now();
    let report = onvm_mgr::run(o, &std::sync::atomic::AtomicBool::new(false)).expect("manager runs");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the run ended: {:?}",
        t.elapsed()
    );
    let expired: Vec<&String> = report.events.iter().filter(|e| e.starts_with("rule expired")).collect();
    assert_eq!(
        expired.len(),
        2,
        "both rules expired within 1 s of their timeout: {:#?}",
        report.events
    );
    // Once the port's rule is gone its packets miss the table.
    let no_rule = report.drops.iter().find(|(r, _)| *r == "no-rule").map_or(0, |d| d.1);
    assert!(report.ports[1].stats.tx > 0 && no_rule > 0, "{report:#?}");
    assert!(report.conserved(), "{}", report.conservation_line());
}
