//! Several regions in one process (a manager with one per NUMA node, or any test): a
//! `Buf` of one region is refused by every other region's holder and pool, through the
//! safe API only, and neither region's state changes; its own region takes it as before.

use onvm_shm::{BackingChoice, Buf, BufError, OwnerId, Pool, Region, RegionConfig, RingError};
use std::sync::Arc;

const NF: OwnerId = OwnerId(5);

fn region(buffers: u32) -> Arc<Region> {
    Region::create(&RegionConfig {
        buffers,
        rings: 2,
        ring_capacity: 64,
        backing: BackingChoice::Normal,
        ..Default::default()
    })
    .unwrap()
}

/// Region B, with its pool, NF 5 holding buffer `index` (so that a Buf of A with that
/// index would alias a buffer someone holds) and ring 0 towards NF 5.
fn region_b(index: u32) -> (Arc<Region>, Pool, Buf) {
    let b = region(64);
    b.ring(0).unwrap().set_ends(0, NF.0);
    let mut pool = Pool::new(&b).unwrap();
    let mut bufs = Vec::new();
    pool.alloc_burst(index as usize, &mut bufs);
    let held = bufs.pop().unwrap();
    assert_eq!(held.index(), index);
    for x in bufs {
        pool.free(x);
    }
    let raw = pool.holder().send(held, NF);
    let nf = b.holder(NF).unwrap();
    let mut held = nf.claim(raw).unwrap();
    nf.packet(&mut held).unwrap().copy_from(b"B's packet").unwrap();
    nf.meta(&held).set_dest(1234);
    // The test keeps the token; NF 5's holder goes, its buffer stays held by NF 5.
    (b, pool, held)
}

#[test]
fn a_buf_of_one_region_is_refused_by_another_regions_holder_and_pool() {
    let a = region(512);
    let mut pool_a = Pool::new(&a).unwrap();
    let mut x = pool_a.alloc().unwrap();
    pool_a
        .holder()
        .packet(&mut x)
        .unwrap()
        .copy_from(b"A's packet")
        .unwrap();
    assert_eq!(x.region_id(), a.id());

    let (b, mut pool_b, b_held) = region_b(x.index());
    assert_ne!(a.id(), b.id());
    assert_eq!(b_held.region_id(), b.id());
    let hb = pool_b.holder();
    let nf_b = b.holder(NF).unwrap();
    let before = pool_b.audit(&[NF]);
    assert!(before.is_whole(), "{before}");

    // packet: a named error, from the pool's holder and from an NF's.
    let want = BufError::ForeignRegion {
        index: x.index(),
        buf_region: a.id(),
        region: b.id(),
    };
    assert_eq!(hb.packet(&mut x).unwrap_err(), want);
    assert_eq!(nf_b.packet(&mut x).unwrap_err(), want);
    assert!(want.to_string().contains(&format!("region #{}", a.id())), "{want}");

    // meta: a stand-in line; neither region's metadata is touched.
    hb.meta(&x).set_dest(99);
    assert_eq!(b.meta(b.buf_idx(x.index()).unwrap()).dest(), 1234);
    assert_eq!(pool_a.holder().meta(&x).dest(), 0);

    // enqueue: refused before anything is sent, even with B's own buffers around it.
    let mut prod = b.producer(0).unwrap();
    let mine = pool_b.alloc().unwrap();
    let mine_idx = mine.index();
    let mut burst = vec![mine, x];
    let e = pool_b.holder().enqueue(&mut prod, NF, &mut burst).unwrap_err();
    assert_eq!(
        e,
        RingError::ForeignBuf {
            index: burst[1].index(),
            buf_region: a.id(),
            region: b.id(),
        }
    );
    assert_eq!(burst.len(), 2, "nothing left the burst");
    assert!(b.ring(0).unwrap().is_empty().unwrap(), "nothing entered the ring");
    x = burst.pop().unwrap();
    pool_b.free(burst.pop().unwrap());
    assert_eq!(b.owner(b.buf_idx(mine_idx).unwrap()), Some(onvm_shm::Owner::Free));

    // send and free take the token: both refuse it without writing anything.
    let y = pool_a.alloc().unwrap();
    assert_eq!(pool_b.holder().send(y, NF), 0, "0 is never a buffer index");
    let free_before = pool_b.free_count();
    pool_b.free(x);
    assert_eq!(pool_b.free_count(), free_before, "it did not enter B's pool");

    // B is as it was: buffer `index` still NF 5's with its bytes, the pool whole.
    assert_eq!(pool_b.holder().foreign(), 5, "packet, meta, enqueue, send, free");
    assert_eq!(nf_b.foreign(), 1, "packet");
    let after = pool_b.audit(&[NF]);
    assert!(after.is_whole(), "{after}");
    assert_eq!((after.free, after.held), (before.free, before.held));
    let mut b_held = b_held;
    assert_eq!(nf_b.packet(&mut b_held).unwrap().data(), b"B's packet");

    // A's own buffers still work with A's holder and pool. The two tokens that B took
    // and refused are lost to A (held by its manager, never double-owned).
    let mut z = pool_a.alloc().unwrap();
    pool_a.holder().packet(&mut z).unwrap().copy_from(b"again").unwrap();
    let mut prod_a = a.producer(0).unwrap();
    a.ring(0).unwrap().set_ends(0, NF.0);
    let nf_a = a.holder(NF).unwrap();
    let sent = pool_a.holder().enqueue(&mut prod_a, NF, &mut vec![z]).unwrap();
    assert_eq!(sent, 1);
    let mut got = Vec::new();
    nf_a.dequeue(&mut a.consumer(0).unwrap(), 32, &mut got).unwrap();
    assert_eq!(nf_a.packet(&mut got[0]).unwrap().data(), b"again");
    nf_a.enqueue(&mut a.producer(1).unwrap(), OwnerId::MANAGER, &mut got)
        .unwrap();
    a.ring(1).unwrap().set_ends(NF.0, 0);
    pool_a
        .holder()
        .dequeue(&mut a.consumer(1).unwrap(), 32, &mut got)
        .unwrap();
    pool_a.free(got.pop().unwrap());
    assert_eq!(pool_a.holder().foreign(), 0);
    let audit_a = pool_a.audit(&[]);
    assert!(audit_a.is_whole(), "{audit_a}");
    assert_eq!((audit_a.free, audit_a.held), (510, 2));
}

/// Region A has more buffers than B: an A index past B's last buffer would have been an
/// access outside B's mapping; it is refused like any other.
#[test]
fn an_index_past_the_other_regions_end_is_refused_too() {
    let a = region(512);
    let b = region(64);
    let mut pool_a = Pool::new(&a).unwrap();
    let mut pool_b = Pool::new(&b).unwrap();
    let mut bufs = Vec::new();
    pool_a.alloc_burst(300, &mut bufs);
    let mut far = bufs.pop().unwrap();
    assert_eq!(far.index(), 300);
    assert!(matches!(
        pool_b.holder().packet(&mut far),
        Err(BufError::ForeignRegion { index: 300, .. })
    ));
    pool_b.holder().meta(&far).set_user(1);
    let mut burst = vec![far];
    assert!(
        pool_b
            .holder()
            .enqueue(&mut b.producer(0).unwrap(), NF, &mut burst)
            .is_err()
    );
    pool_b.free(burst.pop().unwrap());
    assert!(pool_b.audit(&[]).is_whole());
    assert_eq!(pool_b.free_count(), 64);
    for x in bufs {
        pool_a.free(x);
    }
}

/// A `BufIdx` checked by a larger region's `buf_idx` does not reach past a smaller
/// region's mapping through its public accessors.
#[test]
#[should_panic(expected = "checked against another region")]
fn a_buf_idx_of_a_larger_region_does_not_read_past_the_mapping() {
    let a = region(512);
    let b = region(64);
    let _ = b.meta(a.buf_idx(300).unwrap());
}

#[test]
fn region_ids_are_unique_and_never_reused() {
    let first = region(8);
    let id = first.id();
    let second = Region::open(first.fd().try_clone_to_owned().unwrap()).unwrap();
    assert_ne!(second.id(), id, "two mappings of one memfd are two regions");
    let mut pool = Pool::new(&first).unwrap();
    let stale = pool.alloc().unwrap();
    drop((pool, second, first));
    let mut later = Vec::new();
    for _ in 0..4 {
        let r = region(8);
        assert!(r.id() > id);
        let mut p = Pool::new(&r).unwrap();
        later.push(p.alloc().unwrap().region_id());
    }
    assert!(!later.contains(&stale.region_id()));
    // (`stale` outlived its region: it can only be dropped.)
    let _ = stale;
}
