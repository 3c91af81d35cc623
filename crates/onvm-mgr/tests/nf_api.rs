//! The NF library's API against a real manager (in-process; NFs on threads with their
//! own mapping of the region): keep + return_pkt, allocate + inject, messages, scaling,
//! packet limits, direct edges.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{chain, opts, start};
use onvm_nf::{Action, Ctx, Dest, Handler, Nf, PacketMut, handler_fn};

/// Keeps every packet and hands the kept ones on at each tick.
struct Keeper;

impl Handler for Keeper {
    fn packet(&mut self, _pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        Action::Keep
    }
    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        for k in ctx.take_kept() {
            ctx.return_pkt(k, Action::Next);
        }
    }
}

#[test]
fn kept_packets_are_returned_later_and_none_is_lost() {
    let mut o = opts("keep", &["gen:64B,4flows,count=5000", "null"], chain(&[1], 1));
    o.exit_when_drained = Some(Duration::from_millis(400));
    o.wait_for_nfs = Some((1, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let nf = Nf::builder("keeper")
        .service(1)
        .shared_core(true)
        .tick(Duration::from_millis(20))
        .socket(&path)
        .connect()
        .unwrap();
    let summary = std::thread::spawn(move || nf.run(Keeper).unwrap()).join().unwrap();
    let report = mgr.join().unwrap();
    let c = summary.counters;
    assert!(c.act_buffer > 0, "{c:?}");
    assert_eq!(c.act_buffer, c.act_returned, "every kept packet was returned: {c:?}");
    assert_eq!(report.ports[1].stats.tx + report.dropped, 5000);
    assert!(report.conserved(), "{}", report.conservation_line());
}

/// Allocates `n` packets at setup and sends them out of port 1.
struct Injector {
    n: usize,
}

impl Handler for Injector {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let mut sent = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while sent < self.n && std::time::Instant::now() < deadline {
            let Some(mut k) = ctx.alloc() else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            let mut p = ctx.packet(&mut k).unwrap();
            let room = p.append(60).unwrap();
            onvm_packet::build_udp_for_flow(sent as u32, 60, room).unwrap();
            ctx.return_pkt(k, Action::Out(1));
            sent += 1;
        }
    }
}

#[test]
fn allocated_packets_are_injected_out_of_a_port() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inj.pcap");
    let out_spec = format!("pcapout:{}", out.display());
    let mut o = opts("inject", &["null", &out_spec], vec![]);
    o.exit_when_drained = Some(Duration::from_millis(500));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let nf = Nf::builder("injector")
        .service(1)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let summary = std::thread::spawn(move || nf.run(Injector { n: 300 }).unwrap())
        .join()
        .unwrap();
    let report = mgr.join().unwrap();
    assert_eq!(summary.counters.allocated, 300);
    assert_eq!(summary.counters.act_returned, 300);
    assert_eq!(report.ports[1].stats.tx, 300);
    assert!(report.conserved(), "{}", report.conservation_line());
    // The capture holds the 300 frames, in order.
    let file = std::fs::File::open(&out).unwrap();
    let mut reader = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut i = 0u32;
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt.unwrap();
        assert_eq!(&pkt.data[..], &onvm_packet::build_udp_for_flow_vec(i, 60).unwrap()[..]);
        i += 1;
    }
    assert_eq!(i, 300);
}

/// Messages received: (sender, payload).
type Inbox = Arc<Mutex<Vec<(u16, Vec<u8>)>>>;

/// Records messages; answers "ping" with "pong"; stops on "pong".
#[derive(Clone, Default)]
struct Talker {
    got: Inbox,
    ping_to: Option<u16>,
}

impl Handler for Talker {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(s) = self.ping_to {
            ctx.send_msg(Dest::Service(s), b"ping".to_vec())
                .expect("a short message");
        }
    }
    fn message(&mut self, from: u16, bytes: &[u8], ctx: &mut Ctx<'_>) {
        self.got.lock().unwrap().push((from, bytes.to_vec()));
        match bytes {
            b"ping" => ctx
                .send_msg(Dest::Instance(from), b"pong".to_vec())
                .expect("a short message"),
            _ => ctx.stop(),
        }
    }
}

#[test]
fn nfs_exchange_messages_through_the_manager() {
    let mut o = opts("msg", &[], vec![]);
    o.run_for = Some(Duration::from_secs(10));
    let path = o.socket.clone();
    let (stop, mgr) = start(o);
    let b = Nf::builder("b")
        .service(2)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let a = Nf::builder("a")
        .service(1)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let (ia, ib) = (a.instance(), b.instance());
    let tb = Talker::default();
    let ta = Talker {
        ping_to: Some(2),
        ..Talker::default()
    };
    let (got_a, got_b) = (ta.got.clone(), tb.got.clone());
    let hb = std::thread::spawn(move || b.run(tb).unwrap());
    let sa = std::thread::spawn(move || a.run(ta).unwrap()).join().unwrap();
    assert_eq!(sa.reason, "stopped by the NF");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hb.join().unwrap();
    mgr.join().unwrap();
    assert_eq!(*got_b.lock().unwrap(), vec![(ia, b"ping".to_vec())]);
    assert_eq!(*got_a.lock().unwrap(), vec![(ib, b"pong".to_vec())]);
}

#[test]
fn scaled_children_share_the_service_and_the_limit_stops_an_nf() {
    let mut o = opts("scale", &["gen:64B,256flows,count=60000", "null"], chain(&[1], 1));
    o.exit_when_drained = Some(Duration::from_millis(400));
    o.wait_for_nfs = Some((3, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let parent = Nf::builder("par")
        .service(1)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let children = parent.scale(2, || handler_fn(|_, _| Action::Next)).unwrap();
    let p = std::thread::spawn(move || parent.run(handler_fn(|_, _| Action::Next)).unwrap());
    let mut sums = vec![p.join().unwrap()];
    sums.extend(children.into_iter().map(|h| h.join().unwrap().unwrap()));
    let report = mgr.join().unwrap();
    let ids: std::collections::BTreeSet<u16> = sums.iter().map(|s| s.instance).collect();
    assert_eq!(ids.len(), 3, "three instances: {sums:?}");
    for s in &sums {
        assert!(s.counters.rx > 0, "instance {} got no packets", s.instance);
    }
    let rows: Vec<_> = report.nfs.iter().filter(|n| n.parent.is_some()).collect();
    assert_eq!(rows.len(), 2, "children are registered with their parent");
    assert_eq!(report.ports[1].stats.tx + report.dropped, 60_000);
    assert!(report.conserved(), "{}", report.conservation_line());

    // A packet limit stops an NF by itself.
    let mut o = opts("limit", &["gen:64B,4flows,rate=200k", "null"], chain(&[1], 1));
    o.run_for = Some(Duration::from_secs(20));
    let path = o.socket.clone();
    let (stop, mgr) = start(o);
    let nf = Nf::builder("lim")
        .service(1)
        .shared_core(true)
        .packet_limit(1000)
        .socket(&path)
        .connect()
        .unwrap();
    let s = nf.run(handler_fn(|_, _| Action::Next)).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = mgr.join().unwrap();
    assert!(s.reason.contains("packet limit"), "{}", s.reason);
    assert!(s.counters.rx >= 1000);
    assert!(report.conserved(), "{}", report.conservation_line());
}

#[test]
fn a_self_loop_runs_on_a_direct_edge_and_the_pool_is_whole_after() {
    let mut o = opts("edge", &[], vec![]);
    o.run_for = Some(Duration::from_secs(30));
    o.log_events = false;
    let path = o.socket.clone();
    let (stop, mgr) = start(o);
    let nf = Nf::builder("st")
        .service(1)
        .ttl(Duration::from_millis(800))
        .tick(Duration::from_millis(100))
        .socket(&path)
        .connect()
        .unwrap();
    let mut st = onvm_nfs_like::SelfLoop;
    let s = nf.run(&mut st).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = mgr.join().unwrap();
    assert!(
        report.events.iter().any(|e| e.contains("direct edge")),
        "{:?}",
        report.events
    );
    assert!(s.counters.rx > 10_000, "{:?}", s.counters);
    assert!(report.conserved(), "{}", report.conservation_line());
    assert_eq!(report.in_flight, 0);
}

/// A minimal speed tester (the real one lives in onvm-nfs, which depends on this crate's
/// users, not on it): 32 packets sent to itself, forever.
mod onvm_nfs_like {
    use super::*;

    pub struct SelfLoop;

    impl Handler for SelfLoop {
        fn setup(&mut self, ctx: &mut Ctx<'_>) {
            let mut n = 0;
            while n < 32 {
                match ctx.alloc() {
                    Some(mut k) => {
                        ctx.packet(&mut k).unwrap().append(60).unwrap();
                        ctx.return_pkt(k, Action::ToService(ctx.service()));
                        n += 1;
                    }
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
        fn packet(&mut self, _p: &mut PacketMut<'_>, ctx: &mut Ctx<'_>) -> Action {
            Action::ToService(ctx.service())
        }
    }
}

#[test]
fn to_instance_and_out_reach_their_targets_and_bridge_crosses_ports() {
    // Port 0 -> service 1 ("sender"), which sends everything to instance 9 by ID; that NF
    // (service 2) bridges it out of port 0 ^ 1 = 1 by the packet's in-port.
    let mut o = opts("toinst", &["gen:64B,8flows,count=3000", "null"], chain(&[1], 1));
    o.exit_when_drained = Some(Duration::from_millis(400));
    o.wait_for_nfs = Some((2, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let target = Nf::builder("bridge")
        .service(2)
        .instance(9)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let sender = Nf::builder("sender")
        .service(1)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let t = std::thread::spawn(move || {
        target
            .run(handler_fn(|pkt, _| Action::Out(pkt.meta().in_port() ^ 1)))
            .unwrap()
    });
    let s = std::thread::spawn(move || sender.run(handler_fn(|_, _| Action::ToInstance(9))).unwrap());
    let (ts, ss) = (t.join().unwrap(), s.join().unwrap());
    let report = mgr.join().unwrap();
    assert_eq!(ss.counters.act_tonf, 3000, "{:?}", ss.counters);
    assert_eq!(ts.counters.rx, 3000);
    assert_eq!(ts.counters.act_out, 3000);
    assert_eq!(report.ports[1].stats.tx, 3000);
    assert!(report.conserved(), "{}", report.conservation_line());
}

/// A sleeping shared-core NF is woken by the manager as soon as a packet waits for it
/// when traffic is light (the doorbell coalescing of heavy traffic must not hold single
/// packets back): with one packet every 500 µs, the median time from the port to the
/// NF stays far below the NF's own 5 ms sleep timeout.
#[test]
fn light_traffic_wakes_a_sleeping_nf_at_once() {
    let mut o = opts("wake", &["gen:64B,4flows,rate=2000,count=400", "null"], chain(&[1], 1));
    o.exit_when_drained = Some(Duration::from_millis(300));
    o.wait_for_nfs = Some((1, Duration::from_secs(10)));
    let path = o.socket.clone();
    let (_stop, mgr) = start(o);
    let nf = Nf::builder("sleepy")
        .service(1)
        .shared_core(true)
        .socket(&path)
        .connect()
        .unwrap();
    let delays = Arc::new(Mutex::new(Vec::new()));
    let d = delays.clone();
    let h = std::thread::spawn(move || {
        nf.run(handler_fn(move |p, _| {
            d.lock().unwrap().push(onvm_ports::now_ns() - p.meta().timestamp());
            Action::Next
        }))
        .unwrap()
    });
    let report = mgr.join().unwrap();
    h.join().unwrap();
    let mut v = delays.lock().unwrap().clone();
    v.sort_unstable();
    assert!(v.len() >= 300, "{} packets", v.len());
    let median = v[v.len() / 2];
    assert!(median < 1_000_000, "median port-to-NF delay {median} ns");
    assert!(report.conserved(), "{}", report.conservation_line());
}
