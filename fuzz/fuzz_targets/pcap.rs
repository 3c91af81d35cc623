//! Any bytes as a capture file for the `pcap:` port: opening (the header check and the
//! walk over every record) and replaying it must not panic nor allocate more than
//! one record's worth (libFuzzer's -rss_limit_mb/-malloc_limit_mb catch that); a replay
//! read once delivers at most the packets counted at open and then ends; a looping one
//! keeps its buffers accounted for.
#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use onvm_ports::{PcapInPort, Port};
use onvm_proto::port::{PcapInSpec, PcapTiming};
use onvm_shm::{BackingChoice, Pool, Region, RegionConfig};

struct World {
    /// Holds the pool's memory.
    _region: Arc<Region>,
    pool: Pool,
    /// The fuzz input is written here (the port opens a path).
    path: PathBuf,
}

impl World {
    fn new() -> World {
        let cfg = RegionConfig {
            buffers: 256,
            data_room: 2048,
            rings: 1,
            ring_capacity: 64,
            backing: BackingChoice::Normal,
            ..Default::default()
        };
        let region = Region::create(&cfg).expect("region");
        let pool = Pool::new(&region).expect("pool");
        // Under $TMPDIR: scripts/fuzz.sh points it at a directory it removes.
        let dir = std::env::temp_dir().join(format!("onvm-fuzz-pcap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        World {
            _region: region,
            pool,
            path: dir.join("input.pcap"),
        }
    }
}

thread_local! {
    /// One region for the whole run: creating one per input would dominate the time.
    static WORLD: RefCell<World> = RefCell::new(World::new());
}

/// Poll `port` at most `polls` times, freeing what it delivers; the packets delivered.
fn drain(port: &mut PcapInPort, pool: &mut Pool, polls: usize) -> u64 {
    let mut out = Vec::new();
    let mut got = 0;
    for _ in 0..polls {
        if port.rx_done() {
            break;
        }
        got += port.rx_burst(pool, &mut out, 32) as u64;
        for b in out.drain(..) {
            pool.free(b);
        }
    }
    got
}

fuzz_target!(|data: &[u8]| WORLD.with_borrow_mut(|w| one(w, data)));

fn one(w: &mut World, data: &[u8]) {
    std::fs::write(&w.path, data).expect("write the input");
    for repeat in [false, true] {
        let spec = PcapInSpec {
            path: w.path.clone(),
            repeat,
            timing: PcapTiming::Fast,
        };
        let Ok(mut port) = PcapInPort::open(&spec, 0) else {
            return;
        };
        let count = port.packets().expect("a regular file is counted at open");
        if repeat {
            drain(&mut port, &mut w.pool, 16);
        } else {
            // Every record is taken by the time the port says it is done: at most one
            // poll per record, plus one.
            let got = drain(&mut port, &mut w.pool, count as usize + 2);
            assert!(got <= count, "delivered {got} of {count} packets");
            assert!(port.rx_done(), "a capture read once ends");
        }
    }
    let a = w.pool.audit(&[]);
    assert!(a.is_whole() && a.held == 0, "{a}");
}
