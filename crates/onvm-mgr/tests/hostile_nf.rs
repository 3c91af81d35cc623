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
        assert!(report.audit.is_whole(), "{}", report.audit);
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

    /// Wait for the manager to close our socket (it disconnected us).
    fn expect_disconnected(self) {
        self.sock.set_nonblocking(false).unwrap();
        let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
        let t = Instant::now();
        loop {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the manager did not disconnect the bad NF"
            );
            if !self.sock.wait_readable(100).unwrap() {
                continue;
            }
            match self.sock.recv(&mut buf) {
                Ok(Received::Closed) | Err(_) => break,
                Ok(_) => {} // a message (an edge, a stop): read on
            }
        }
        self.die();
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
/// disconnects it as crashed and takes everything back.
#[test]
fn a_ring_scribbler_is_disconnected_and_its_buffers_come_back() {
    let rig = rig("ringscribbler");
    let bad = Bad::register(&rig.path);
    let rings = bad.reg.rings;
    wait_for("packets for the bad NF", || bad.ring_len(rings.rx) > 0);
    bad.scribble_ring(rings.rx, 1, 0x8000_0000);
    bad.scribble_ring(rings.tx, 0, 0x4000_0000);
    bad.expect_disconnected();
    rig.expect_flowing("after the ring scribbler was disconnected");
    let report = rig.finish();
    assert_eq!(report.crashes, 1, "{:#?}", report.events);
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
