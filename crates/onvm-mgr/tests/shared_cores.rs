//! What shared-core NFs report: two NFs sharing core 1 under light traffic sleep
//! between bursts (their wake-ups are counted) and use a small share of the core; the
//! stats and API show both (`sleeps`, `cpu_ns`).

mod common;

use std::time::Duration;

use common::{busy_nf, chain, opts, start};

#[test]
fn shared_core_nfs_under_light_load_sleep_and_report_their_wakeups_and_cpu() {
    let mut o = opts("shared-cores", &["gen:64B,16flows,rate=20k", "null"], chain(&[1, 2], 1));
    o.run_for = Some(Duration::from_secs(2));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let second = busy_nf(&path, 2, Some(1), None, Duration::ZERO);
    let first = busy_nf(&path, 1, Some(1), None, Duration::ZERO);
    let report = mgr.join().unwrap();
    let summaries = [first.join().unwrap(), second.join().unwrap()];
    assert!(report.conserved(), "{}", report.conservation_line());
    assert!(report.ports[1].stats.tx > 20_000, "{:?}", report.ports);
    for s in &summaries {
        let c = s.counters;
        // 20 kpps in bursts: it sleeps between them, many times a second.
        assert!(c.sleeps > 100, "{} slept {} times", s.tag, c.sleeps);
        // Its thread used some CPU, and far from all of the time it ran.
        let ran = s.elapsed.as_nanos() as u64;
        assert!(
            c.cpu_ns > 0 && c.cpu_ns < ran / 2,
            "{}: cpu {} ns of {ran}",
            s.tag,
            c.cpu_ns
        );
        // The manager got the same figures.
        let row = report.nfs.iter().find(|n| n.tag == s.tag).unwrap();
        assert!(row.counters.sleeps > 0 && row.counters.cpu_ns > 0, "{row:?}");
    }
}
