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
