//! Autoscaling keeps flows where they are: a service scaled 1 → 2 → 1 by the manager's
//! autoscaler (the supervisor here is this test, which starts and stops NF threads as
//! asked) moves about half of the flows to the new instance (the RETA moves only the
//! flows it takes), and once the old instance has worked off the packets queued for it
//! before the move, every flow stays on one instance until the scale-down.
//!
//! Not yet: during that backlog (tens of milliseconds when the old instance is
//! overloaded, which is why it scaled) a moved flow's older packets are still handled by
//! the old instance while its new ones reach the new one, so the two handle it at once
//! and its packets may leave out of order.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{chain, opts, start};
use onvm_mgr::AutoscaleRule;
use onvm_mgr::supervisor::{Command, Request};
use onvm_nf::{Action, Nf, handler_fn};
use onvm_proto::config::Autoscale;

/// Per flow (its addresses and ports), the instances that handled it, in order, each
/// change once, with when.
type Seen = Arc<Mutex<HashMap<[u8; 12], Vec<(Instant, u16)>>>>;

fn instance(path: std::path::PathBuf, seen: Seen, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let nf = Nf::builder("s1")
            .service(1)
            .shared_core(true)
            .socket(path)
            .connect()
            .unwrap();
        nf.run(handler_fn(move |pkt, ctx| {
            if stop.load(Ordering::Relaxed) {
                ctx.stop();
            }
            // IPv4 source and destination, UDP ports: the flow.
            let key: [u8; 12] = pkt.data()[26..38].try_into().unwrap();
            let id = ctx.instance();
            let mut seen = seen.lock().unwrap();
            let v = seen.entry(key).or_default();
            if v.last().map(|l| l.1) != Some(id) {
                v.push((Instant::now(), id));
            }
            drop(seen);
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(15) {
                std::hint::spin_loop();
            }
            Action::Next
        }))
        .unwrap();
    })
}

#[test]
fn scaling_up_moves_about_half_the_flows_then_each_stays_on_one_instance() {
    // 100 kpps for 3 s against one instance's ~60 kpps.
    let mut o = opts(
        "autoscale",
        &["gen:64B,64flows,rate=100k,count=300000", "null"],
        chain(&[1], 1),
    );
    o.run_for = Some(Duration::from_secs(6));
    o.wait_for_nfs = Some((1, Duration::from_secs(10)));
    o.autoscale = vec![AutoscaleRule {
        service: 1,
        name: "s1".into(),
        min: 1,
        policy: Autoscale {
            max: 2,
            ring_percent: 50,
            after: Duration::from_millis(100),
            idle: Duration::from_millis(500),
        },
    }];
    let (to_us, asks) = std::sync::mpsc::channel::<Request>();
    o.supervisor = Some(to_us);
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let seen: Seen = Arc::default();
    let first = Arc::new(AtomicBool::new(false));
    let mut running = vec![(first.clone(), instance(path.clone(), seen.clone(), first))];
    // This test is the supervisor: it starts and stops instances as the manager asks.
    let mut asked = Vec::new();
    let mut when = Vec::new();
    let mut stopped = Vec::new();
    while let Ok(r) = asks.recv() {
        let Command::Scale { service, instances } = r.command else {
            panic!("only scaling is asked for: {:?}", r.command)
        };
        assert_eq!(service, "s1");
        asked.push(instances);
        when.push(Instant::now());
        while running.len() < usize::from(instances) {
            let stop = Arc::new(AtomicBool::new(false));
            running.push((stop.clone(), instance(path.clone(), seen.clone(), stop)));
        }
        while running.len() > usize::from(instances) {
            let (stop, h) = running.pop().unwrap();
            stop.store(true, Ordering::Relaxed);
            stopped.push(h);
        }
        let _ = r.reply.send(Ok(format!("{instances} instance(s)")));
    }
    let report = mgr.join().unwrap();
    for (_, h) in running {
        h.join().unwrap();
    }
    for h in stopped {
        h.join().unwrap();
    }
    assert!(report.conserved(), "{}", report.conservation_line());
    assert_eq!(
        asked,
        [2, 1],
        "up under load, down when it stopped: {:#?}",
        report.events
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 64, "every flow went through");
    // From 300 ms after the second instance was asked for (its start and the old
    // instance's backlog) to the scale-down, no flow changes instance.
    let (settled, down) = (when[0] + Duration::from_millis(300), when[1]);
    let mut moved = 0;
    for (flow, v) in seen.iter() {
        let changes: Vec<&(Instant, u16)> = v.iter().filter(|(t, _)| *t > settled && *t < down).collect();
        assert!(
            changes.is_empty(),
            "flow {flow:?} changed instance while the count stood: {v:?}"
        );
        let on_at_settle = v.iter().rev().find(|(t, _)| *t <= settled).map(|c| c.1);
        moved += usize::from(on_at_settle.is_some_and(|i| i != v[0].1));
    }
    assert!(
        (16..=48).contains(&moved),
        "{moved} of 64 flows moved to the new instance (about half should)"
    );
    assert!(
        report.events.iter().any(|e| e.contains("took traffic")),
        "{:#?}",
        report.events
    );
}
