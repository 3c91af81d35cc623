//! Chain-wide backpressure: a chain whose last NF is slow (20 µs per packet, for a port
//! sending 200 kpps) drops what it cannot take where it enters the chain, so the NF in
//! front of it does no work for packets that would drop; off, that NF handles every
//! packet and the slow one's rings drop three quarters of them.

mod common;

use std::time::Duration;

use common::{busy_nf, chain, opts, start};
use onvm_mgr::Report;

/// Runs the chain port 0 → quick NF → slow NF → port 1 for 2 s; the report, and how
/// many packets the quick NF handled.
fn run(name: &str, backpressure: bool) -> (Report, u64) {
    run_with(name, backpressure, 1)
}

/// [`run`] with `rx_threads` switch threads receiving.
fn run_with(name: &str, backpressure: bool, rx_threads: u16) -> (Report, u64) {
    let mut o = opts(name, &["gen:64B,16flows,rate=200k", "null"], chain(&[1, 2], 1));
    o.backpressure = backpressure;
    o.rx_threads = rx_threads;
    o.run_for = Some(Duration::from_secs(2));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    // The quick NF shares core 0 with the manager, the slow one has core 1: the quick
    // one is not held back by the slow one's use of its core.
    let slow = busy_nf(&path, 2, Some(1), None, Duration::from_micros(20));
    let quick = busy_nf(&path, 1, Some(0), None, Duration::ZERO);
    let report = mgr.join().unwrap();
    let (q, _) = (quick.join().unwrap(), slow.join().unwrap());
    assert!(report.conserved(), "{}", report.conservation_line());
    (report, q.counters.rx)
}

fn drops(r: &Report, why: &str) -> u64 {
    r.drops.iter().find(|(d, _)| *d == why).map_or(0, |d| d.1)
}

#[test]
fn a_slow_nf_s_excess_is_dropped_at_the_chain_s_entry_not_after_the_nfs_in_front() {
    let (on, handled_on) = run("bp-on", true);
    let out_on = on.ports[1].stats.tx;
    let wasted_on = handled_on.saturating_sub(out_on);
    let at_entry = drops(&on, "backpressure");
    assert!(at_entry > 100_000, "backpressure drops {at_entry}: {:?}", on.drops);
    assert!(
        on.events
            .iter()
            .any(|e| e.contains("backpressure: NF \"s2\"") && e.contains("is behind")),
        "{:#?}",
        on.events
    );
    // Only what was in the rings when it began: a few rings' worth at most.
    assert!(
        wasted_on < 10_000,
        "handled by the quick NF {handled_on}, out {out_on}: {:?}",
        on.drops
    );

    let (off, handled_off) = run("bp-off", false);
    let out_off = off.ports[1].stats.tx;
    let wasted_off = handled_off.saturating_sub(out_off);
    assert_eq!(drops(&off, "backpressure"), 0);
    assert!(
        wasted_off > 20_000 && wasted_off > 4 * wasted_on,
        "off: handled {handled_off}, out {out_off}; on: wasted {wasted_on}; off drops {:?}, ports {:?}",
        off.drops,
        off.ports
    );
    eprintln!(
        "backpressure on: out {out_on}, handled but dropped later {wasted_on}, dropped at entry {at_entry}; \
         off: out {out_off}, handled but dropped later {wasted_off}"
    );
    // The slow NF's work is what leaves either way.
    assert!(
        out_on * 2 > out_off,
        "out {out_on} with backpressure, {out_off} without"
    );
}

/// With a second switch thread receiving half the generator's flows, which it would
/// write straight into the quick NF: while the chain is behind, those packets too are
/// admitted (or dropped) at the chain's entry by the main thread.
#[test]
fn a_second_switch_thread_leaves_admission_to_the_main_one_while_a_chain_is_behind() {
    let (on, handled) = run_with("bp-lane", true, 2);
    assert!(
        on.events.iter().any(|e| e.contains("receive thread 1")),
        "{:#?}",
        on.events
    );
    let out = on.ports[1].stats.tx;
    let at_entry = drops(&on, "backpressure");
    assert!(at_entry > 100_000, "backpressure drops {at_entry}: {:?}", on.drops);
    let wasted = handled.saturating_sub(out);
    assert!(
        wasted < 10_000,
        "handled by the quick NF {handled}, out {out}: {:?}",
        on.drops
    );
}
