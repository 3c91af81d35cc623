//! NFs that misuse the shared region in ways the NF library cannot (they use onvm-shm
//! directly, as a buggy NF in C or an NF with a stray pointer would) must not hurt anyone
//! else: the manager lives, an unrelated chain keeps moving packets, and when the bad NF
//! is gone every buffer is back (the audit is whole, conservation exact).
//!
//! Each test runs two chains: generator port 0 -> service 1 (a well-behaved NF) -> port
//! 1, and generator port 2 -> service 2 (the bad NF, registered by hand) -> port 1.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{ByHand, opts, register_by_hand, start};
use onvm_mgr::Report;
use onvm_nf::{Action, Nf, handler_fn};
use onvm_proto::chain::{Chain, Hop, compile};
use onvm_proto::ctrl::{MAX_MESSAGE_LEN, Registered};
use onvm_proto::flow::Match;
use onvm_proto::limits::{EDGE_RINGS, FIRST_EDGE_RING};
use onvm_shm::seqpacket::{Received, SeqPacket};
use onvm_shm::{OwnerId, Region};

/// The manager, the good NF (service 1) and the count of packets it has seen.
struct Rig {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    mgr: JoinHandle<Report>,
    good_quit: Arc<AtomicBool>,
    good_seen: Arc<AtomicU64>,
    good: JoinHandle<onvm_nf::Summary>,
}

fn chain(name: &str, in_port: u16, service: u16) -> Chain {
    Chain {
        name: name.into(),
        hops: vec![
            Hop::Service {
                id: service,
                name: format!("s{service}"),
            },
            Hop::Out(1),
        ],
        in_port: Some(in_port),
        matcher: Match::any(),
        default: false,
        priority: None,
    }
}

fn rig(name: &str) -> Rig {
    let rules = compile(&[chain("good", 0, 1), chain("bad", 2, 2)], 3).unwrap();
    rig_with(name, rules, |_| {})
}

/// The manager with `rules` (and whatever `tune` changes) and the good NF.
fn rig_with(name: &str, rules: Vec<onvm_proto::flow::Rule>, tune: impl FnOnce(&mut onvm_mgr::Options)) -> Rig {
    let mut o = opts(
        name,
        &["gen:64B,16flows,rate=100k", "null", "gen:64B,16flows,rate=100k"],
        rules,
    );
    // A safety net: the test stops the manager long before.
    o.run_for = Some(Duration::from_secs(60));
    // Normal pages, so the test can scribble on the region with pwrite (hugetlbfs files
    // only map).
    o.region.backing = onvm_shm::BackingChoice::Normal;
    tune(&mut o);
    let path = o.socket.clone();
    let (stop, mgr) = start(o);
    let (good_quit, good_seen) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let good = {
        let (p, quit, seen) = (path.clone(), good_quit.clone(), good_seen.clone());
        std::thread::spawn(move || {
            let nf = Nf::builder("good")
                .service(1)
                .shared_core(true)
                .socket(p)
                .connect()
                .unwrap();
            nf.run(handler_fn(move |_, ctx| {
                seen.fetch_add(1, Ordering::Relaxed);
                if quit.load(Ordering::Relaxed) {
                    ctx.stop();
                }
                Action::Next
            }))
            .unwrap()
        })
    };
    let r = Rig {
        path,
        stop,
        mgr,
        good_quit,
        good_seen,
        good,
    };
    r.expect_flowing("before the bad NF");
    r
}

impl Rig {
    /// The good chain moves packets now (within a bound that holds on a busy machine).
    fn expect_flowing(&self, when: &str) {
        let before = self.good_seen.load(Ordering::Relaxed);
        let t = Instant::now();
        while self.good_seen.load(Ordering::Relaxed) < before + 1000 {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the good chain stopped {when}: {} packets in 10 s",
                self.good_seen.load(Ordering::Relaxed) - before
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Stop the good NF, then the manager; the manager's report, checked whole.
    fn finish(self) -> Report {
        self.good_quit.store(true, Ordering::Relaxed);
        let s = self.good.join().expect("the good NF did not panic");
        assert!(s.counters.rx > 0);
        self.stop.store(true, Ordering::Relaxed);
        let report = self.mgr.join().expect("the manager did not panic");
        assert!(report.audit.is_whole(), "{}\n{:#?}", report.audit, report.events);
        assert!(report.conserved(), "{}", report.conservation_line());
        assert_eq!(report.in_flight, 0, "{}", report.conservation_line());
        report
    }
}

/// An NF registered by hand: its socket, the region (mapped and as a file to scribble
/// on), its rings.
struct Bad {
    sock: SeqPacket,
    file: File,
    region: Arc<Region>,
    reg: Registered,
}

impl Bad {
    fn register(path: &Path) -> Bad {
        let ByHand {
            sock,
            file,
            region,
            reg,
        } = register_by_hand(path, "bad", 2);
        Bad {
            sock,
            file,
            region,
            reg,
        }
    }

    /// Write `v` into line `line` (0 producer index, 1 consumer index; 128 bytes each,
    /// see onvm-shm's `RingCtl`) of ring `r`.
    fn scribble_ring(&self, r: u32, line: u64, v: u32) {
        let l = self.region.layout();
        let at = l.rings_offset + u64::from(r) * l.ring_stride + line * 128;
        self.file.write_at(&v.to_le_bytes(), at).unwrap();
    }

    /// Entries in ring `r` now (0 for a corrupt one).
    fn ring_len(&self, r: u32) -> u32 {
        self.region.ring(r).unwrap().len().unwrap_or(0)
    }

    /// Die: close the socket (what the kernel does when a process exits).
    fn die(self) {
        drop(self.region);
        drop(self.sock);
    }

    /// The manager has not closed our socket (it did not disconnect us).
    fn expect_connected(&self) {
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
        self.sock.set_nonblocking(true).unwrap();
        loop {
            match self.sock.recv(&mut buf) {
                Ok(Received::Closed) | Err(_) => panic!("the manager disconnected the NF"),
                Ok(Received::Empty) => return,
                Ok(Received::Msg(..)) => {} // a message: read on
            }
        }
    }
}

/// Wait until `f` holds (10 s at most, then fail with `what`).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Drops the manager counted for `reason`.
fn drops(report: &Report, reason: &str) -> u64 {
    report.drops.iter().find(|(r, _)| *r == reason).map_or(0, |d| d.1)
}

fn event<'r>(report: &'r Report, needle: &str) -> &'r str {
    report
        .events
        .iter()
        .find(|e| e.contains(needle))
        .unwrap_or_else(|| panic!("no event with {needle:?}: {:#?}", report.events))
}

/// "N skipped unclaimed" in the manager's event about a dead NF.
fn unclaimed(e: &str) -> u32 {
    e.split(" skipped unclaimed")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"))
}

/// The bad NF moves its consumer index past what it is sent, claiming nothing, for a
/// while, then dies: every buffer it skipped comes back.
#[test]
fn an_nf_that_skips_its_ring_and_dies_loses_no_buffer() {
    let rig = rig("skipper");
    let bad = Bad::register(&rig.path);
    let mut rx = bad.region.consumer(bad.reg.rings.rx).unwrap();
    let mut skipped = 0;
    let mut raw = [0u32; 64];
    let t = Instant::now();
    while skipped < 2000 || t.elapsed() < Duration::from_millis(200) {
        assert!(t.elapsed() < Duration::from_secs(10), "only {skipped} packets came");
        skipped += rx.dequeue_burst(&mut raw).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    // (While it lives it takes every buffer sent to it out of circulation; a per-NF
    // quota is what keeps the good chain going meanwhile.)
    bad.die();
    rig.expect_flowing("after the bad NF died");
    let report = rig.finish();
    let e = event(&report, "\"bad\" (instance");
    assert!(unclaimed(e) > 0, "{e}");
}

/// The bad NF writes garbage lengths and offsets into every buffer's metadata line
/// (free ones, in-flight ones, the good NF's) for a while: nobody panics.
#[test]
fn a_metadata_scribbler_hurts_no_one() {
    let rig = rig("metascribbler");
    let bad = Bad::register(&rig.path);
    let l = *bad.region.layout();
    let mut garbage = [0u8; 8];
    garbage[..4].copy_from_slice(&0xffff_fff0u32.to_le_bytes()); // length
    garbage[4..].copy_from_slice(&0x7fff_ffffu32.to_le_bytes()); // data offset
    // Between passes it passes on what it was sent (claimed, back to the manager), so
    // its ring does not hold the pool.
    let me = bad.region.holder(OwnerId(bad.reg.instance)).unwrap();
    let (mut rx, mut tx) = (
        bad.region.consumer(bad.reg.rings.rx).unwrap(),
        bad.region.producer(bad.reg.rings.tx).unwrap(),
    );
    let mut bufs = Vec::new();
    let t = Instant::now();
    let mut passes = 0;
    while passes < 3 || t.elapsed() < Duration::from_millis(300) {
        for i in 1..=u64::from(l.buffers) {
            bad.file
                // Bytes 4..12 of the 64-byte metadata line: length, data offset.
                .write_at(&garbage, l.bufs_offset + i * u64::from(l.buf_stride) + 4)
                .unwrap();
        }
        passes += 1;
        while me.dequeue(&mut rx, 32, &mut bufs).unwrap() > 0 {
            me.enqueue(&mut tx, OwnerId::MANAGER, &mut bufs).unwrap();
            assert!(bufs.is_empty(), "the tx ring is full");
        }
        rig.expect_flowing("while the metadata scribbling goes on");
    }
    drop(me);
    bad.die();
    rig.expect_flowing("after the scribbler died");
    let report = rig.finish();
    // The manager named what it found: the buffer, who handed it over (whichever NF
    // it passed through last), and what was wrong.
    let e = event(&report, "bad buffer (#1): buffer ");
    assert!(
        (e.contains(" from instance ") || e.contains(" from port ")) && e.contains("corrupt metadata"),
        "{e}"
    );
}

/// The bad NF writes garbage into the indices of its rings (rx: the manager's producer
/// sees the consumer index jump; tx: its producer index past the capacity): the manager
/// counts what it cannot deliver as `ring-corrupt` and does not disconnect it (a
/// scribbled ring is no proof of who scribbled it); when it dies everything comes back.
#[test]
fn a_ring_scribbler_costs_only_its_own_packets_and_its_buffers_come_back() {
    let rig = rig("ringscribbler");
    let bad = Bad::register(&rig.path);
    let rings = bad.reg.rings;
    wait_for("packets for the bad NF", || bad.ring_len(rings.rx) > 0);
    bad.scribble_ring(rings.rx, 1, 0x8000_0000);
    bad.scribble_ring(rings.tx, 0, 0x4000_0000);
    rig.expect_flowing("while the bad NF's rings are corrupt");
    std::thread::sleep(Duration::from_millis(100));
    bad.expect_connected();
    bad.die();
    rig.expect_flowing("after the ring scribbler died");
    let report = rig.finish();
    assert_eq!(report.crashes, 1, "{:#?}", report.events);
    // (Its rx ring has room for the whole pool: the manager's cached view of it never
    // says full, so it never needs the consumer index it cannot trust.)
    let e = event(&report, "its tx ring (ring ");
    assert!(e.contains("\"bad\"") && e.contains("corrupt"), "{e}");
}

/// An NF built with onvm-nf on a thread: counts what it sees, stops when told.
struct Running {
    quit: Arc<AtomicBool>,
    /// While set, it takes 2 ms per packet: a reader slower than its writer even when
    /// the writer is starved on a busy machine (2 ms per 32 packets was not).
    slow: Arc<AtomicBool>,
    seen: Arc<AtomicU64>,
    handle: JoinHandle<onvm_nf::Summary>,
}

impl Running {
    fn start(path: &Path, tag: &str, service: u16, instance: u16) -> Running {
        let (quit, seen) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let slow = Arc::new(AtomicBool::new(false));
        let handle = {
            let (p, quit, seen, tag) = (path.to_path_buf(), quit.clone(), seen.clone(), tag.to_string());
            let slow = slow.clone();
            std::thread::spawn(move || {
                let nf = Nf::builder(tag)
                    .service(service)
                    .instance(instance)
                    .shared_core(true)
                    .socket(p)
                    .connect()
                    .unwrap();
                nf.run(handler_fn(move |_, ctx| {
                    seen.fetch_add(1, Ordering::Relaxed);
                    if slow.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if quit.load(Ordering::Relaxed) {
                        ctx.stop();
                    }
                    Action::Next
                }))
                .expect("an innocent NF's run never fails")
            })
        };
        Running {
            quit,
            slow,
            seen,
            handle,
        }
    }

    /// It sees packets now (1000 more within 10 s, a bound for a busy machine).
    fn expect_seeing(&self, what: &str) {
        let before = self.seen.load(Ordering::Relaxed);
        wait_for(what, || {
            assert!(!self.handle.is_finished(), "the NF exited: {what}");
            self.seen.load(Ordering::Relaxed) >= before + 1000
        });
    }

    fn stop(self) -> onvm_nf::Summary {
        self.quit.store(true, Ordering::Relaxed);
        self.handle.join().expect("the NF did not panic")
    }
}

/// The spy scribbles both indices of ring `r` in turn, over and over for a second,
/// checking now and then that the innocent NF `b` is still running (and ending `b`'s
/// slowness if the caller set it); then traffic still
/// flows and reaches `b`, the spy dies, and it is the only crash: the report.
fn b_outlives_a_second_of_scribbling(rig: Rig, spy: Bad, r: u32, b: Running) -> Report {
    let t = Instant::now();
    let mut k = 0u32;
    while t.elapsed() < Duration::from_secs(1) {
        k = k.wrapping_add(1);
        spy.scribble_ring(r, u64::from(k % 2), 0xdead_0000 | (k & 0xffff));
        if k.is_multiple_of(64) {
            assert!(!b.handle.is_finished(), "b exited");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    b.slow.store(false, Ordering::Relaxed);
    rig.expect_flowing("after the scribbling");
    b.expect_seeing("b after the scribbling stopped");
    spy.die();
    // b first: it sees packets only while a sends them.
    let sb = b.stop();
    eprintln!("b: {:?}", sb.counters);
    let report = rig.finish();
    assert_eq!(
        report.crashes, 1,
        "only the spy died, b was not disconnected: {:#?}",
        report.events
    );
    report
}

/// The rig plus onvm-nf NFs on rings of 256 slots (so a writer's cached view of a ring
/// says full often and it re-reads the consumer's index): with `Some(a)`, a chain port 2
/// -> service 3 (A, instance 10) -> service 4 (B, instance 11) -> port 1, where A sends
/// to B over a direct edge; with `None`, port 2 -> B -> port 1 (the manager feeds B's rx
/// ring). And a hand-registered NF to scribble with.
fn rig_b(name: &str, via_a: bool) -> (Rig, Bad, Option<Running>, Running) {
    let b_hop = Hop::Service {
        id: 4,
        name: "b".into(),
    };
    let mut hops = vec![b_hop, Hop::Out(1)];
    if via_a {
        hops.insert(
            0,
            Hop::Service {
                id: 3,
                name: "a".into(),
            },
        );
    }
    let first = if via_a { 3 } else { 4 };
    let rules = compile(
        &[
            chain("good", 0, 1),
            Chain {
                hops,
                ..chain("b", 2, first)
            },
        ],
        3,
    )
    .unwrap();
    let r = rig_with(name, rules, |o| o.region.ring_capacity = 256);
    // The scribbler (service 2, which nothing feeds) registers first: a registration
    // closes every edge, and the edge a -> b must be the one that stays.
    let spy = Bad::register(&r.path);
    let a = via_a.then(|| Running::start(&r.path, "a", 3, 10));
    let b = Running::start(&r.path, "b", 4, 11);
    b.expect_seeing("b before the scribbling");
    (r, spy, a, b)
}

/// NF B (reading the direct edge A -> B) scribbles that edge's consumer index, once and
/// then over and over for a second: writer A never exits (its flush sees the edge as
/// full, the packets go the manager's way), the manager lives, the good chain moves,
/// and once B stops, A -> B traffic resumes; at the end the pool is whole.
#[test]
fn an_edge_reader_that_scribbles_its_own_index_never_stops_the_writer() {
    let (rig, spy, a, b) = rig_b("edgescribbler", true);
    let a = a.unwrap();
    let edge = FIRST_EDGE_RING..FIRST_EDGE_RING + EDGE_RINGS;
    let mut ring = None;
    wait_for("the direct edge a -> b", || {
        ring = edge.clone().find(|&r| spy.region.ring(r).unwrap().ends() == (10, 11));
        ring.is_some()
    });
    let ring = ring.unwrap();
    let head = || spy.region.ring(ring).unwrap().consumed();
    spy.scribble_ring(ring, 1, head().wrapping_add(0x8000_0000));
    b.expect_seeing("after one scribble of the edge");
    // b reads slower than a writes, so the edge stays full and a re-reads b's index at
    // every flush: it finds it corrupt over and over.
    b.slow.store(true, Ordering::Relaxed);
    let t = Instant::now();
    let mut writes = 0u32;
    while t.elapsed() < Duration::from_secs(1) {
        spy.scribble_ring(ring, 1, 0xdead_0000 | (writes & 0xffff));
        writes += 1;
        if writes.is_multiple_of(64) {
            assert!(!a.handle.is_finished(), "the writer exited");
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    b.slow.store(false, Ordering::Relaxed);
    rig.expect_flowing("after the edge scribbling");
    b.expect_seeing("b after the scribbling stopped");
    assert!(!a.handle.is_finished(), "the writer exited");
    spy.die();
    // b first: it sees packets only while a sends them.
    let (sb, sa) = (b.stop(), a.stop());
    eprintln!("{writes} scribbles; a: {:?}; b: {:?}", sa.counters, sb.counters);
    assert!(sa.counters.tx_drop > 0, "a's full edge went the manager's way: {sa:?}");
    let report = rig.finish();
    assert_eq!(report.crashes, 1, "only the spy died: {:#?}", report.events);
}

/// A third NF scribbles innocent NF B's rx ring (its consumer index, its producer
/// index; once, then over and over for a second): B neither exits nor is disconnected,
/// what the manager could not deliver is `ring-corrupt`, and traffic through B resumes
/// once the scribbling stops; at the end the pool is whole.
#[test]
fn a_third_nf_scribbling_an_innocent_nfs_rx_ring_disconnects_no_one() {
    let (rig, spy, _, b) = rig_b("rxscribbler", false);
    let rx = onvm_mgr::registry::rings_of(11).rx;
    let ring = spy.region.ring(rx).unwrap();
    spy.scribble_ring(rx, 1, ring.consumed().wrapping_add(0x8000_0000));
    b.expect_seeing("after one scribble of its consumer index");
    spy.scribble_ring(rx, 0, ring.consumed().wrapping_add(0x4000_0000));
    b.expect_seeing("after one scribble of its producer index");
    // b reads slower than the port sends, so its ring stays full and the manager
    // re-reads b's index at every burst: it meets the scribbled value, not only in the
    // moments before b republishes it (a fast b left that to chance on a busy machine).
    b.slow.store(true, Ordering::Relaxed);
    let report = b_outlives_a_second_of_scribbling(rig, spy, rx, b);
    assert!(drops(&report, "ring-corrupt") > 0, "{:?}", report.drops);
    let e = event(&report, "its rx ring (ring ");
    assert!(e.contains("\"b\" (instance 11)") && e.contains("ring-corrupt"), "{e}");
}

/// A third NF scribbles innocent NF B's alloc ring (both indices, over and over for a
/// second): the manager reports it, does not top the ring up while it is corrupt, and
/// does not disconnect B, which keeps forwarding; at the end the pool is whole.
#[test]
fn a_third_nf_scribbling_an_innocent_nfs_alloc_ring_disconnects_no_one() {
    let (rig, spy, _, b) = rig_b("allocscribbler", false);
    let alloc = onvm_mgr::registry::rings_of(11).alloc;
    wait_for("b's alloc ring to be filled", || spy.ring_len(alloc) >= 32);
    let report = b_outlives_a_second_of_scribbling(rig, spy, alloc, b);
    let e = event(&report, "its alloc ring (ring ");
    assert!(e.contains("\"b\" (instance 11)") && e.contains("corrupt"), "{e}");
}

/// The bad NF corrupts its alloc ring once the manager has filled it, then dies: the
/// buffers that were in it come back although the ring cannot be read.
#[test]
fn a_corrupt_alloc_ring_then_death_loses_nothing() {
    let rig = rig("allocscribbler");
    let bad = Bad::register(&rig.path);
    let alloc = bad.reg.rings.alloc;
    wait_for("the alloc ring to be filled", || bad.ring_len(alloc) >= 32);
    bad.scribble_ring(alloc, 1, 0x8000_0000);
    bad.die();
    rig.expect_flowing("after the bad NF died");
    let report = rig.finish();
    let e = event(&report, "\"bad\" (instance");
    assert!(unclaimed(e) >= 32, "the alloc ring's buffers: {e}");
}

/// The bad NF never reads its ring, which has room for more than the whole pool: once
/// the pool runs low the manager queues no more there than its quota, so the good chain
/// keeps the buffers it needs.
#[test]
fn an_nf_that_never_reads_cannot_take_the_pool() {
    let rig = rig("sleeper");
    let bad = Bad::register(&rig.path);
    let quota = bad.reg.quota;
    assert_eq!(quota, 4095 / 4, "a quarter of the pool by default");
    wait_for("its ring to fill past its quota", || {
        bad.ring_len(bad.reg.rings.rx) > quota
    });
    rig.expect_flowing("while the bad NF does not read");
    std::thread::sleep(Duration::from_millis(200));
    rig.expect_flowing("still");
    let held = bad.ring_len(bad.reg.rings.rx);
    assert!(held <= 4095 - 4095 / 8, "its ring holds {held} of 4095 buffers");
    bad.die();
    let report = rig.finish();
    let over = report
        .drops
        .iter()
        .find(|(r, _)| *r == "nf-over-quota")
        .map_or(0, |d| d.1);
    assert!(over > 0, "{:?}", report.drops);
}

/// A process scribbles rings nobody uses (the rings of an unused instance ID, an unused
/// edge ring): the manager resets them within a watchdog round, so the audit at the end is
/// whole and the NF that later gets that ID starts on consistent rings and works.
#[test]
fn scribbled_idle_rings_are_reset() {
    let rig = rig("idlescribbler");
    let spy = Bad::register(&rig.path);
    let unused = onvm_mgr::registry::rings_of(100);
    let idle = [unused.rx, unused.tx, unused.alloc, FIRST_EDGE_RING + EDGE_RINGS - 1];
    for r in idle {
        spy.scribble_ring(r, 1, 0xdead_beef);
    }
    assert!(spy.region.ring(unused.rx).unwrap().len().is_err(), "the scribble took");
    wait_for("the idle rings to be reset", || {
        idle.iter().all(|&r| spy.region.ring(r).unwrap().len().is_ok())
    });
    let late = Running::start(&rig.path, "late", 1, 100);
    late.expect_seeing("on the ID whose rings were scribbled");
    late.stop();
    spy.die();
    rig.finish();
}
