//! A hoarding NF (it keeps every packet it gets, using nothing but the safe API) holds
//! at most its quota of buffers: the rest are dropped as `nf-over-quota`, an unrelated
//! chain keeps flowing, and every buffer is back in the pool at the end.

mod common;

use std::time::Duration;

use common::{opts, start};
use onvm_nf::{Action, Nf, handler_fn};
use onvm_proto::flow::{Action as RuleAction, Match, PortNo, Rule};

fn to(from: PortNo, to: PortNo) -> Rule {
    Rule::new(1, Match::in_port(from), vec![RuleAction::Output(to)])
}

#[test]
fn a_hoarder_holds_its_quota_and_the_other_chain_keeps_flowing() {
    let rules = vec![
        // Port 0 feeds the hoarder; port 1 → forwarder → port 2.
        to(PortNo::physical(0), PortNo::service(1)),
        to(PortNo::physical(1), PortNo::service(2)),
        to(PortNo::service(2), PortNo::physical(2)),
    ];
    let ports = ["gen:64B,16flows,rate=100k", "gen:64B,16flows,rate=100k", "null"];
    let mut o = opts("quota", &ports, rules);
    // The pool holds 4095 buffers: without a quota the hoarder has them all in 41 ms.
    o.nf_quota = Some(500);
    o.run_for = Some(Duration::from_secs(2));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let nf = |service: u16, action: Action| {
        let p = path.clone();
        std::thread::spawn(move || {
            let nf = Nf::builder(format!("s{service}"))
                .service(service)
                .shared_core(true)
                .socket(p)
                .connect()
                .unwrap();
            let quota = nf.run(handler_fn(move |_, ctx| {
                assert!(ctx.held() <= ctx.quota(), "{} > {}", ctx.held(), ctx.quota());
                action
            }));
            quota.unwrap()
        })
    };
    let hoarder = nf(1, Action::Keep);
    let forwarder = nf(2, Action::Next);
    let report = mgr.join().unwrap();
    let (h, f) = (hoarder.join().unwrap(), forwarder.join().unwrap());
    let over = report
        .drops
        .iter()
        .find(|(r, _)| *r == "nf-over-quota")
        .map_or(0, |d| d.1);
    assert_eq!(h.counters.act_buffer, 500, "the hoarder kept its quota: {h:?}");
    assert!(
        over > 0 && over + 500 <= h.counters.rx,
        "{over} over quota of {}",
        h.counters.rx
    );
    // The other chain moved what its port received (the pool never ran dry).
    let (rx1, tx2) = (report.ports[1].stats.rx, report.ports[2].stats.tx);
    assert!(
        rx1 > 50_000 && tx2 * 100 >= rx1 * 95,
        "port 1 rx {rx1}, port 2 tx {tx2}: {f:?}"
    );
    assert_eq!(report.ports[1].stats.rx_drop, 0, "{report:#?}");
    assert!(report.conserved(), "{}", report.conservation_line());
}
