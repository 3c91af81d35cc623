//! Test helpers for the kernel-backed ports: a veth pair that cleans up after itself,
//! marked frames, and sending/receiving them through ports.
//!
//! Real interfaces carry the kernel's own traffic too (IPv6 router solicitations, MLD),
//! so test frames carry a marker, UDP destination port [`MARK_PORT`], and receivers
//! keep only marked frames.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use onvm_shm::Pool;

use crate::Port;
use crate::testutil;

/// UDP destination port of test frames.
pub const MARK_PORT: u16 = 0xB5B5;
/// Length of every test frame: Ethernet, IPv4, UDP and a 32-byte payload.
pub const FRAME_LEN: usize = 14 + 20 + 8 + 32;

/// Run `ip ARGS`; false (with the reason printed) when it cannot run or fails.
pub fn ip(args: &[&str]) -> bool {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
            false
        }
        Err(e) => {
            eprintln!("ip {}: {e}", args.join(" "));
            false
        }
    }
}

/// A fresh interface name, unique across this process's tests and other processes.
pub fn unique_name(kind: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // 15 bytes at most: "ot" + kind (1) + pid (up to 7) + counter.
    format!(
        "ot{kind}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Requires root, which the tests of kernel-backed ports need: the test fails without
/// it (`false` only with `ONVM_ALLOW_SKIP=1`: the caller returns, see onvm-testkit).
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require_root() -> bool {
    onvm_testkit::require_root("to create interfaces (veth pairs, TAP devices) and open raw and AF_XDP sockets")
}

/// Wait (up to 5 s) until `name` is operationally up: before that the kernel drops
/// what is sent through it.
pub fn wait_up(name: &str) {
    let path = format!("/sys/class/net/{name}/operstate");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        match std::fs::read_to_string(&path) {
            Ok(s) if matches!(s.trim(), "up" | "unknown") => return,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    panic!("{name} did not come up");
}

/// Wait (up to 10 s) until interface `name` is gone; panics if it stays. An interface
/// that goes with the last descriptor of a port (a TAP device) may outlive the port for
/// a moment: a process that another test thread forked (to run `ip`) holds a copy of
/// every descriptor until it execs, which a busy machine delays.
pub fn wait_gone(name: &str) {
    let path = format!("/sys/class/net/{name}");
    let start = Instant::now();
    while std::path::Path::new(&path).exists() {
        assert!(start.elapsed() < Duration::from_secs(10), "{name} outlived its port");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A veth pair `a` <-> `b`, both up; deleted on drop (also when the test panics).
#[derive(Debug)]
pub struct Veth {
    pub a: String,
    pub b: String,
}

impl Veth {
    /// The test fails when not root or when `ip` cannot create the pair; `None` only
    /// where skipping is allowed ([`require_root`]): the caller returns.
    #[track_caller]
    pub fn create() -> Option<Veth> {
        Self::with_queues(1)
    }

    /// A pair whose ends have `queues` receive and transmit queues each.
    #[track_caller]
    pub fn with_queues(queues: u16) -> Option<Veth> {
        if !require_root() {
            return None;
        }
        let a = unique_name("a");
        let b = unique_name("b");
        let q = queues.to_string();
        #[rustfmt::skip]
        let args = ["link", "add", &a, "numtxqueues", &q, "numrxqueues", &q, "type", "veth",
            "peer", "name", &b, "numtxqueues", &q, "numrxqueues", &q];
        assert!(
            ip(&args),
            "cannot create a veth pair (the kernel needs CONFIG_VETH; `ip` is in iproute2)"
        );
        let veth = Veth { a, b };
        for n in [&veth.a, &veth.b] {
            // No IPv6 on test links: fewer stray frames.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{n}/disable_ipv6"), "1");
            assert!(ip(&["link", "set", n, "up"]), "cannot bring {n} up");
        }
        wait_up(&veth.a);
        wait_up(&veth.b);
        Some(veth)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // Deleting one end deletes the pair.
        ip(&["link", "del", &self.a]);
    }
}

/// `n` distinct marked frames; `tag` tells apart batches sent in one test.
pub fn frames(n: usize, tag: u8) -> Vec<Vec<u8>> {
    (0..n as u32)
        .map(|i| {
            let mut payload = [0u8; 32];
            payload[0] = tag;
            payload[1..5].copy_from_slice(&i.to_be_bytes());
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 9, 0, 1], [10, 9, 0, 2], 64)
                .udp(1000 + (i % 1000) as u16, MARK_PORT);
            let mut v = Vec::with_capacity(b.size(payload.len()));
            b.write(&mut v, &payload).unwrap();
            assert_eq!(v.len(), FRAME_LEN);
            v
        })
        .collect()
}

/// Whether `frame` is a test frame.
pub fn marked(frame: &[u8]) -> bool {
    matches!(
        SlicedPacket::from_ethernet(frame),
        Ok(SlicedPacket { transport: Some(TransportSlice::Udp(u)), .. }) if u.destination_port() == MARK_PORT
    )
}

/// Copy `frames` into buffers and send them through `port`; returns how many were sent.
pub fn send(port: &mut dyn Port, pool: &mut Pool, frames: &[Vec<u8>]) -> usize {
    let mut bufs = Vec::new();
    assert_eq!(pool.alloc_burst(frames.len(), &mut bufs), frames.len());
    for (b, f) in bufs.iter_mut().zip(frames) {
        pool.holder().packet(b).unwrap().copy_from(f).unwrap();
    }
    let n = port.tx_burst(pool, &mut bufs);
    assert!(bufs.is_empty());
    n
}

/// Poll `port` until `want` marked frames arrived (10 s at most: the kernel delivers
/// them in softirq, which a busy machine delays), or for 50 ms when `want` is 0;
/// returns the marked frames, freeing every buffer.
pub fn receive_marked(port: &mut dyn Port, pool: &mut Pool, want: usize) -> Vec<Vec<u8>> {
    let limit = if want == 0 {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(10)
    };
    let start = Instant::now();
    let mut got = Vec::new();
    let mut bufs = Vec::new();
    while (want == 0 || got.len() < want) && start.elapsed() < limit {
        if port.rx_burst(pool, &mut bufs, 64) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        got.extend(testutil::take(pool, &mut bufs).into_iter().filter(|f| marked(f)));
    }
    got
}

/// Send `n` frames tagged `tag` from `from` and check `to` receives exactly them, in
/// order, and `from` does not see them come back.
pub fn one_way(from: &mut dyn Port, to: &mut dyn Port, pool: &mut Pool, n: usize, tag: u8) {
    let frames = frames(n, tag);
    assert_eq!(send(from, pool, &frames), n, "{} sent", from.name());
    let got = receive_marked(to, pool, n);
    assert_eq!(got.len(), n, "{} received", to.name());
    assert!(got == frames, "{} received other bytes than were sent", to.name());
    assert!(
        receive_marked(from, pool, 0).is_empty(),
        "{} saw its own frames",
        from.name()
    );
}
