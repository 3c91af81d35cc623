//! Autoscaling keeps flows where they are: a service scaled 1 → 2 → 1 by the manager's
//! autoscaler (the supervisor here is this test, which starts and stops NF threads as
//! asked) moves about half of the flows to the new instance (the RETA moves only the
//! flows it takes), each once: a moved flow's new packets wait in the manager until the
//! old instance has handled those queued for it before the move (a backlog of tens of
//! milliseconds, as the old instance is overloaded, which is why it scaled), so no flow
//! is handled by both at once and none goes back and forth until the scale-down.

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
    // From the scale-up to the scale-down, a flow changes instance at most once: had
    // the new instance taken a moved flow while the old one still worked off its
    // backlog, the two would take turns (1, 2, 1, 2, ...) for tens of milliseconds.
    let (up, down) = (when[0], when[1]);
    let mut moved = 0;
    for (flow, v) in seen.iter() {
        let changes = v.iter().filter(|(t, _)| *t > up && *t < down).count();
        assert!(
            changes <= 1,
            "flow {flow:?} changed instance {changes} times while the count was 2: {v:?}\n{:#?}",
            report.events
        );
        let on_before_down = v.iter().rev().find(|(t, _)| *t < down).map(|c| c.1);
        moved += usize::from(on_before_down.is_some_and(|i| i != v[0].1));
    }
    assert!(
        (16..=48).contains(&moved),
        "{moved} of 64 flows moved to the new instance (about half should)"
    );
    for needle in ["took traffic", "it had read what was queued for it"] {
        assert!(
            report.events.iter().any(|e| e.contains(needle)),
            "no event with {needle:?}: {:#?}",
            report.events
        );
    }
}
