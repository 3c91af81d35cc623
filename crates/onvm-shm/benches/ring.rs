//! Ring and packet-loop benchmarks, with baselines measured in the same run.
//!
//! * `one-core`: one thread enqueues a burst and dequeues it again (pure ring cost).
//! * `cross-core`: a producer pinned to core 0 and a consumer pinned to core 1 move
//!   2^16 indices in bursts (the manager -> NF case). Baselines: crossbeam's
//!   `ArrayQueue` (MPMC, no burst API: a loop of push/pop) and `rtrb` (SPSC with chunk
//!   API, the best in-process SPSC crate).
//! * `speed-tester`: openNetVM's speed_tester loop on one core: dequeue 32 buffers sent
//!   to ourselves (claiming each: range + owner check), write each packet's metadata,
//!   enqueue them back to ourselves. openNetVM does the same through DPDK rings.
//!
//! Run: `cargo bench -p onvm-shm --bench ring`; the figures are elements per second.

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use onvm_shm::{BackingChoice, OwnerId, Pool, Region, RegionConfig};
use std::hint::black_box;
use std::time::{Duration, Instant};

const BURSTS: [usize; 3] = [1, 8, 32];
const CAP: usize = 1024;
const CROSS_ITEMS: u64 = 1 << 16;

/// Pin the calling thread to core `core` (modulo the machine's cores). The core list is
/// read once, before any pinning: `get_core_ids` reports the *current* affinity mask.
fn pin(core: usize) {
    static CORES: std::sync::OnceLock<Vec<core_affinity::CoreId>> = std::sync::OnceLock::new();
    let ids = CORES.get_or_init(|| core_affinity::get_core_ids().unwrap_or_default());
    if let Some(id) = ids.get(core % ids.len().max(1)) {
        core_affinity::set_for_current(*id);
    }
}

/// A ring in a real region, so the benchmark measures what the platform uses.
fn region(rings: u32) -> std::sync::Arc<Region> {
    Region::create(&RegionConfig {
        buffers: 4096,
        rings,
        ring_capacity: CAP as u32,
        backing: BackingChoice::Auto,
        ..Default::default()
    })
    .unwrap()
}

fn one_core(c: &mut Criterion) {
    pin(0);
    let mut g = c.benchmark_group("one-core");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let items: Vec<u32> = (1..=32).collect();
    for &b in &BURSTS {
        g.throughput(Throughput::Elements(b as u64));
        let r = region(1);
        let (mut p, mut q) = (r.producer(0).unwrap(), r.consumer(0).unwrap());
        let mut out = [0u32; 32];
        g.bench_function(BenchmarkId::new("onvm", b), |bn| {
            bn.iter(|| {
                p.enqueue_burst(black_box(&items[..b])).unwrap();
                black_box(q.dequeue_burst(&mut out[..b]).unwrap());
            })
        });
        let aq = ArrayQueue::new(CAP);
        g.bench_function(BenchmarkId::new("ArrayQueue", b), |bn| {
            bn.iter(|| {
                for &v in black_box(&items[..b]) {
                    let _ = aq.push(v);
                }
                for _ in 0..b {
                    black_box(aq.pop());
                }
            })
        });
        let (mut rp, mut rc) = rtrb::RingBuffer::<u32>::new(CAP);
        g.bench_function(BenchmarkId::new("rtrb", b), |bn| {
            bn.iter(|| {
                rp.write_chunk_uninit(b)
                    .unwrap()
                    .fill_from_iter(black_box(&items[..b]).iter().copied());
                for v in rc.read_chunk(b).unwrap() {
                    black_box(v);
                }
            })
        });
    }
    g.finish();
}

/// Time to move `iters * CROSS_ITEMS` items from core 0 to core 1.
fn cross<P, C>(iters: u64, mut produce: P, consume: C) -> Duration
where
    P: FnMut(u32) -> usize,
    C: FnOnce(u64) + Send,
{
    let total = iters * CROSS_ITEMS;
    std::thread::scope(|s| {
        pin(0);
        let h = s.spawn(move || {
            pin(1);
            consume(total);
        });
        let t = Instant::now();
        let mut sent = 0u64;
        while sent < total {
            sent += produce(sent as u32) as u64;
        }
        h.join().unwrap();
        t.elapsed()
    })
}

fn cross_core(c: &mut Criterion) {
    let mut g = c.benchmark_group("cross-core");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20);
    g.throughput(Throughput::Elements(CROSS_ITEMS));
    for &b in &BURSTS {
        g.bench_function(BenchmarkId::new("onvm", b), |bn| {
            bn.iter_custom(|iters| {
                let r = region(1);
                let mut p = r.producer(0).unwrap();
                let items: Vec<u32> = (1..=b as u32).collect();
                let rr = &r;
                cross(
                    iters,
                    |_| p.enqueue_burst(&items).unwrap(),
                    move |total| {
                        let mut q = rr.consumer(0).unwrap();
                        let mut out = [0u32; 32];
                        let mut got = 0u64;
                        while got < total {
                            got += q.dequeue_burst(&mut out[..b]).unwrap() as u64;
                        }
                    },
                )
            })
        });
        g.bench_function(BenchmarkId::new("ArrayQueue", b), |bn| {
            bn.iter_custom(|iters| {
                let aq = ArrayQueue::new(CAP);
                let q = &aq;
                cross(
                    iters,
                    |v| {
                        let mut n = 0;
                        for i in 0..b as u32 {
                            if q.push(v + i).is_err() {
                                break;
                            }
                            n += 1;
                        }
                        n
                    },
                    move |total| {
                        let mut got = 0u64;
                        while got < total {
                            for _ in 0..b {
                                match q.pop() {
                                    Some(v) => {
                                        black_box(v);
                                        got += 1;
                                    }
                                    None => break,
                                }
                            }
                        }
                    },
                )
            })
        });
        g.bench_function(BenchmarkId::new("rtrb", b), |bn| {
            bn.iter_custom(|iters| {
                let (mut rp, mut rc) = rtrb::RingBuffer::<u32>::new(CAP);
                cross(
                    iters,
                    |v| {
                        let n = b.min(rp.slots());
                        if n > 0 {
                            rp.write_chunk_uninit(n).unwrap().fill_from_iter(v..v + n as u32);
                        }
                        n
                    },
                    move |total| {
                        let mut got = 0u64;
                        while got < total {
                            let n = b.min(rc.slots());
                            if n > 0 {
                                for v in rc.read_chunk(n).unwrap() {
                                    black_box(v);
                                }
                                got += n as u64;
                            }
                        }
                    },
                )
            })
        });
    }
    g.finish();
}

fn speed_tester(c: &mut Criterion) {
    pin(0);
    let mut g = c.benchmark_group("speed-tester");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(32));
    let r = region(1);
    let mut pool = Pool::new(&r).unwrap();
    let me = r.holder(OwnerId(1)).unwrap();
    let (mut tx, mut rx) = (r.producer(0).unwrap(), r.consumer(0).unwrap());
    // 128 packets in flight, like openNetVM's speed_tester default. The ring's ends
    // say who sends on it (a receiver checks the sender): the manager for the first
    // fill, then the NF itself.
    let mut bufs = Vec::new();
    pool.alloc_burst(128, &mut bufs);
    r.ring(0).unwrap().set_ends(0, me.id().0);
    pool.holder().enqueue(&mut tx, me.id(), &mut bufs).unwrap();
    while me.dequeue(&mut rx, 32, &mut bufs).unwrap() > 0 {}
    r.ring(0).unwrap().set_ends(me.id().0, me.id().0);
    me.enqueue(&mut tx, me.id(), &mut bufs).unwrap();
    let mut burst = Vec::with_capacity(32);
    let mut now = 0u64;
    g.bench_function("onvm-1-core-burst32", |bn| {
        bn.iter(|| {
            me.dequeue(&mut rx, 32, &mut burst).unwrap();
            for b in &burst {
                let m = me.meta(b);
                m.set_dest(1);
                m.set_action(2);
                m.set_timestamp(now);
                now += 1;
            }
            me.enqueue(&mut tx, me.id(), &mut burst).unwrap();
        })
    });
    assert_eq!(me.rejected(), 0);
    // The same loop on the bare ring (no ownership checks), to show what they cost.
    let meta_of = |i: u32| r.meta(r.buf_idx(i).unwrap());
    let mut raw = [0u32; 32];
    g.bench_function("onvm-1-core-burst32-unchecked", |bn| {
        bn.iter(|| {
            let n = rx.dequeue_burst(&mut raw).unwrap();
            for &i in &raw[..n] {
                let m = meta_of(i);
                m.set_dest(1);
                m.set_action(2);
                m.set_timestamp(now);
                now += 1;
            }
            tx.enqueue_burst(&raw[..n]).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, one_core, cross_core, speed_tester);
criterion_main!(benches);
