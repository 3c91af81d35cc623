//! A buggy NF must not take the manager down: garbage indices are refused and counted,
//! a ring with corrupt indices gets its NF disconnected (as a crash, buffers reclaimed,
//! rings reset), and the next NF runs normally.

mod common;

use std::os::unix::fs::FileExt;
use std::time::Duration;

use common::{ByHand, opts, register_by_hand, start};
use onvm_nf::{Action, Nf, handler_fn};
use onvm_proto::ctrl::MAX_MESSAGE_LEN;
use onvm_shm::seqpacket::Received;

#[test]
fn garbage_indices_and_a_corrupt_ring_leave_the_manager_running() {
    let mut o = opts("buggy", &[], vec![]);
    o.run_for = Some(Duration::from_secs(30));
    // Normal pages, so the test can scribble on the region with pwrite (hugetlbfs files
    // only map).
    o.region.backing = onvm_shm::BackingChoice::Normal;
    let path = o.socket.clone();
    let (stop, mgr) = start(o);

    // Register by hand, as a buggy NF would.
    let ByHand {
        sock,
        file,
        region,
        reg: r,
    } = register_by_hand(&path, "buggy", 1);

    // 1. Indices that are no buffer, or no buffer sent to the manager.
    let mut tx = region.producer(r.rings.tx).unwrap();
    assert_eq!(tx.enqueue_burst(&[0, 7, 1_000_000, 7]).unwrap(), 4);
    std::thread::sleep(Duration::from_millis(50));

    // 2. A transmit ring whose tail jumps past its capacity.
    let l = region.layout();
    let tail_at = l.rings_offset + u64::from(r.rings.tx) * l.ring_stride;
    file.write_at(&0x4000_0000u32.to_le_bytes(), tail_at).unwrap();

    // The manager disconnects the NF: its socket reads as closed.
    sock.set_nonblocking(false).unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert!(
        sock.wait_readable(2000).unwrap(),
        "the manager did not react to the corrupt ring"
    );
    assert!(matches!(sock.recv(&mut buf), Ok(Received::Closed) | Err(_)));
    drop(region);

    // And it still serves NFs: a well-behaved one gets the freed ID and clean rings.
    let nf = Nf::builder("good")
        .service(1)
        .shared_core(true)
        .ttl(Duration::from_millis(200))
        .socket(&path)
        .connect()
        .unwrap();
    assert_eq!(nf.instance(), r.instance, "the freed instance ID is reused");
    let s = nf.run(handler_fn(|_, _| Action::Drop)).unwrap();
    assert!(s.reason.contains("time to live"), "{}", s.reason);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = mgr.join().unwrap();
    assert!(report.rejected >= 3, "garbage indices are counted: {}", report.rejected);
    assert!(
        report.events.iter().any(|e| e.contains("corrupted its tx ring")),
        "{:?}",
        report.events
    );
    assert_eq!(report.crashes, 1);
    assert!(report.conserved(), "{}", report.conservation_line());
}
