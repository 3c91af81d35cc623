//! A buggy NF must not take the manager down: garbage indices are refused and counted,
//! a ring with corrupt indices is reported and read again (its NF is not disconnected
//! for it), and when the NF dies the next one gets its instance and runs normally.

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

    // 2. A transmit ring whose tail jumps past its capacity: the manager reads it as
    // corrupt, says so, and carries on (some process scribbled it, not necessarily its
    // NF, which is not disconnected for it).
    let l = region.layout();
    let tail_at = l.rings_offset + u64::from(r.rings.tx) * l.ring_stride;
    file.write_at(&0x4000_0000u32.to_le_bytes(), tail_at).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    sock.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    loop {
        match sock.recv(&mut buf) {
            Ok(Received::Msg(..)) => {}
            Ok(Received::Empty) => break,
            Ok(Received::Closed) => panic!("the NF was disconnected for its corrupt ring"),
            Err(e) => panic!("{e}"),
        }
    }

    // The buggy NF dies.
    drop(region);
    drop(sock);
    std::thread::sleep(Duration::from_millis(100));

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
        report
            .events
            .iter()
            .any(|e| e.contains("its tx ring") && e.contains("is corrupt")),
        "{:?}",
        report.events
    );
    assert_eq!(report.crashes, 1);
    assert!(report.conserved(), "{}", report.conservation_line());
}

/// An NF scribbles on the metadata of buffers it sends out of a port: the port cannot
/// send them, and says which buffer it was (as the manager's routing does, naming the
/// NF), in the manager's events; every packet is still accounted for.
#[test]
fn a_port_names_the_scribbled_buffers_it_could_not_send() {
    let mut o = opts("portbad", &["gen:64B,4flows,rate=2k", "null"], common::chain(&[1], 1));
    o.run_for = Some(Duration::from_secs(30));
    o.region.backing = onvm_shm::BackingChoice::Normal;
    let path = o.socket.clone();
    let (stop, mgr) = start(o);
    let ByHand {
        sock,
        file,
        region,
        reg: r,
    } = register_by_hand(&path, "scribbler", 1);
    let me = region.holder(onvm_shm::OwnerId(r.instance)).unwrap();
    let (mut rx, mut tx) = (
        region.consumer(r.rings.rx).unwrap(),
        region.producer(r.rings.tx).unwrap(),
    );
    let l = *region.layout();
    let (action, dest) = onvm_proto::verdict::Verdict::Out(1).encode();
    let mut bufs = Vec::new();
    let mut scribbled = Vec::new();
    let t = std::time::Instant::now();
    while scribbled.len() < 5 {
        assert!(t.elapsed() < Duration::from_secs(10), "no packets came to the NF");
        me.dequeue(&mut rx, 1, &mut bufs).unwrap();
        for b in &bufs {
            me.meta(b).set_action(action);
            me.meta(b).set_dest(dest);
            // Bytes 4..8 of the metadata line: a length past the buffer's end.
            let at = l.bufs_offset + u64::from(b.index()) * u64::from(l.buf_stride) + 4;
            file.write_at(&0xffff_0000u32.to_le_bytes(), at).unwrap();
            scribbled.push(b.index());
        }
        me.enqueue(&mut tx, onvm_shm::OwnerId::MANAGER, &mut bufs).unwrap();
        assert!(bufs.is_empty());
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    drop(me);
    drop(region);
    drop(sock);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let report = mgr.join().unwrap();
    let first = scribbled[0];
    let want = format!("port 1: sending buffer {first}: buffer {first} has corrupt metadata");
    assert!(
        report
            .events
            .iter()
            .any(|e| e.starts_with("bad buffer (#") && e.contains(&want)),
        "no event with {want:?}: {:?}",
        report.events
    );
    assert!(report.ports[1].stats.errors >= 5, "{:?}", report.ports[1].stats);
    assert!(report.conserved(), "{}", report.conservation_line());
}
