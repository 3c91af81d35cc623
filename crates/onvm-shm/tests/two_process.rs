//! The region between two real processes: this test binary re-runs itself as the child
//! (the ignored test `child_main`), which receives the region's memfd over a Unix socket,
//! maps it and echoes packets back, as an NF would.

use onvm_shm::fdpass::{recv_fd, send_fd};
use onvm_shm::{Buf, Holder, OwnerId, Pool, Region, RegionConfig};
use std::collections::VecDeque;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NF: OwnerId = OwnerId(1);
const TO_NF: u32 = 0;
const FROM_NF: u32 = 1;
const DEADLINE: Duration = Duration::from_secs(120);

/// The tests spin on both cores; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Setup {
    region: std::sync::Arc<Region>,
    pool: Pool,
    child: Child,
    sock: UnixStream,
    _dir: TempDir,
}

struct TempDir(PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Create the region, start the child in `mode`, and hand it the region's fd.
fn start(mode: &str, total: u64) -> Setup {
    let cfg = RegionConfig {
        buffers: 4096,
        rings: 2,
        ring_capacity: 1024,
        ..Default::default()
    };
    let region = Region::create(&cfg).unwrap();
    let pool = Pool::new(&region).unwrap();
    region.ring(TO_NF).unwrap().set_ends(0, NF.0);
    region.ring(FROM_NF).unwrap().set_ends(NF.0, 0);
    let dir = std::env::temp_dir().join(format!("onvm-shm-test-{}-{mode}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ctl.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_main", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("ONVM_SHM_CHILD", &path)
        .env("ONVM_SHM_CHILD_MODE", mode)
        .env("ONVM_SHM_CHILD_TOTAL", total.to_string())
        .spawn()
        .unwrap();
    let (sock, _) = listener.accept().unwrap();
    send_fd(&sock, b"region", region.fd()).unwrap();
    Setup {
        region,
        pool,
        child,
        sock,
        _dir: TempDir(dir),
    }
}

/// Parent side of the stream: keep up to `window` packets in flight, check that each
/// comes back in order with the child's mark, and free it. Stops after `stop_after`
/// packets came back (or all `total`).
fn stream(s: &mut Setup, total: u64, window: usize, stop_after: u64) -> u64 {
    let region = s.region.clone();
    let mut to_nf = region.producer(TO_NF).unwrap();
    let mut from_nf = region.consumer(FROM_NF).unwrap();
    let mut outstanding: VecDeque<(u32, u64)> = VecDeque::new();
    let mut pending: Vec<Buf> = Vec::new();
    let mut back: Vec<Buf> = Vec::new();
    let (mut seq, mut received) = (0u64, 0u64);
    let t0 = Instant::now();
    while received < stop_after {
        if pending.is_empty() && seq < total && outstanding.len() < window {
            let want = 32.min(window - outstanding.len()).min((total - seq) as usize);
            s.pool.alloc_burst(want, &mut pending);
            for b in pending.iter_mut() {
                let h = s.pool.holder();
                let mut p = h.packet(b).unwrap();
                p.copy_from(&[0u8; 64]).unwrap();
                p.data_mut()[..8].copy_from_slice(&seq.to_le_bytes());
                p.meta().set_user(seq);
                outstanding.push_back((b.index(), seq));
                seq += 1;
            }
        }
        s.pool.holder().enqueue(&mut to_nf, NF, &mut pending).unwrap();
        s.pool.holder().dequeue(&mut from_nf, 32, &mut back).unwrap();
        for mut b in back.drain(..) {
            let (idx, want) = outstanding.pop_front().expect("a packet came back that was never sent");
            assert_eq!(b.index(), idx, "packets came back out of order or duplicated");
            let h = s.pool.holder();
            let p = h.packet(&mut b).unwrap();
            assert_eq!(p.meta().user(), want);
            assert_eq!(p.data()[8..16], (!want).to_le_bytes(), "child's mark missing on {want}");
            s.pool.free(b);
            received += 1;
        }
        assert!(t0.elapsed() < DEADLINE, "stuck: sent {seq}, received {received}");
    }
    assert_eq!(s.pool.holder().rejected(), 0, "{:?}", s.pool.holder().last_rejection());
    received
}

/// Twenty million packets go to the child and twenty million come back: every index
/// returns exactly once, in order, with the child's write visible, and afterwards the
/// pool is whole.
#[test]
fn two_processes_pass_tens_of_millions_of_indices_both_ways() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const TOTAL: u64 = 20_000_000;
    let mut s = start("echo", TOTAL);
    let t = Instant::now();
    let n = stream(&mut s, TOTAL, 2048, TOTAL);
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "{n} packets each way in {secs:.2} s: {:.1} Mpps round trips",
        n as f64 / secs / 1e6
    );
    assert!(s.child.wait().unwrap().success(), "child reported a problem");
    let a = s.pool.audit(&[]);
    assert!(a.is_whole(), "{a}");
    assert_eq!(a.free, 4096);
}

/// SIGKILL the child while packets stream and it holds some: the parent notices through
/// the socket, reclaims what the child had, and the audit accounts for every buffer.
#[test]
fn sigkill_mid_stream_is_noticed_and_every_buffer_reclaimed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = start("hold", u64::MAX);
    stream(&mut s, u64::MAX, 2048, 1_000_000);
    s.child.kill().unwrap();
    // Noticing: the control socket reads as closed once the kernel has torn the child down.
    let t = Instant::now();
    s.sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let (n, fd) = recv_fd(&s.sock, &mut buf).unwrap();
    assert_eq!((n, fd.is_none()), (0, true), "socket closed");
    eprintln!("child death noticed {:?} after kill", t.elapsed());
    s.child.wait().unwrap();

    let before = s.pool.audit(&[]);
    assert!(!before.is_whole(), "the dead child's buffers are unaccounted: {before}");
    let got = s.pool.reclaim(NF).unwrap();
    eprintln!("reclaimed {got:?}");
    assert!(got.held >= 64, "the child held a window of 64: {got:?}");
    // What the child had published back is the parent's to take.
    let mut back = Vec::new();
    let mut from_nf = s.region.consumer(FROM_NF).unwrap();
    while s.pool.holder().dequeue(&mut from_nf, 32, &mut back).unwrap() > 0 {}
    for b in back {
        s.pool.free(b);
    }
    let a = s.pool.audit(&[]);
    assert!(a.is_whole(), "{a}");
    assert_eq!(a.free, 4096, "{a}");
}

/// The doorbell across processes: the child sleeps on an empty ring and is woken by
/// each packet, 200 times; a lost wake-up would cost the 5 s timeout.
#[test]
fn doorbell_wakes_a_sleeping_child_process() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const TOTAL: u64 = 200;
    let mut s = start("sleep", TOTAL);
    let region = s.region.clone();
    let mut to_nf = region.producer(TO_NF).unwrap();
    let mut from_nf = region.consumer(FROM_NF).unwrap();
    let t = Instant::now();
    for seq in 0..TOTAL {
        let mut b = s.pool.alloc().unwrap();
        {
            let h = s.pool.holder();
            let mut p = h.packet(&mut b).unwrap();
            p.copy_from(&[0u8; 64]).unwrap();
            p.data_mut()[..8].copy_from_slice(&seq.to_le_bytes());
            p.meta().set_user(seq);
        }
        std::thread::sleep(Duration::from_micros(200)); // let the child fall asleep
        let mut v = vec![b];
        assert_eq!(s.pool.holder().enqueue(&mut to_nf, NF, &mut v).unwrap(), 1);
        to_nf.notify();
        let mut back = Vec::new();
        while back.is_empty() {
            from_nf.wait(Some(Duration::from_secs(5))).unwrap();
            s.pool.holder().dequeue(&mut from_nf, 1, &mut back).unwrap();
        }
        s.pool.free(back.pop().unwrap());
    }
    let per = t.elapsed() / TOTAL as u32;
    eprintln!("{per:?} per sleep/wake round trip");
    assert!(
        per < Duration::from_millis(500),
        "wake-ups were lost ({per:?} per round trip)"
    );
    assert!(s.child.wait().unwrap().success());
    assert!(s.pool.audit(&[]).is_whole());
}

/// The child: an NF in miniature. Modes: `echo` (return everything), `hold` (keep the
/// latest 64 packets before returning them), `sleep` (wait on the doorbell when idle).
#[test]
#[ignore = "runs only as the child process of the tests above"]
fn child_main() {
    let Some(path) = std::env::var_os("ONVM_SHM_CHILD") else {
        return;
    };
    let mode = std::env::var("ONVM_SHM_CHILD_MODE").unwrap();
    let total: u64 = std::env::var("ONVM_SHM_CHILD_TOTAL").unwrap().parse().unwrap();
    let sock = UnixStream::connect(path).unwrap();
    let mut msg = [0u8; 16];
    let (n, fd) = recv_fd(&sock, &mut msg).unwrap();
    assert_eq!(&msg[..n], b"region");
    let region = Region::open(fd.expect("region fd")).unwrap();
    let h: Holder = region.holder(NF).unwrap();
    let mut rx = region.consumer(TO_NF).unwrap();
    let mut tx = region.producer(FROM_NF).unwrap();
    let hold = if mode == "hold" { 64 } else { 0 };
    let mut held: VecDeque<Buf> = VecDeque::new();
    let mut got = Vec::new();
    let mut out = Vec::new();
    let (mut expect, t0) = (0u64, Instant::now());
    while expect < total {
        if mode == "sleep" && rx.wait(Some(Duration::from_secs(5))).unwrap() == 0 {
            continue;
        }
        h.dequeue(&mut rx, 32, &mut got).unwrap();
        for mut b in got.drain(..) {
            let mut p = h.packet(&mut b).unwrap();
            let seq = u64::from_le_bytes(p.data()[..8].try_into().unwrap());
            assert_eq!(
                (seq, p.meta().user()),
                (expect, expect),
                "child saw a packet out of order"
            );
            p.data_mut()[8..16].copy_from_slice(&(!seq).to_le_bytes());
            expect += 1;
            held.push_back(b);
        }
        while held.len() > hold {
            out.push(held.pop_front().unwrap());
        }
        while !out.is_empty() {
            h.enqueue(&mut tx, OwnerId::MANAGER, &mut out).unwrap();
        }
        if mode == "sleep" {
            tx.notify();
        }
        assert!(t0.elapsed() < DEADLINE, "child stuck at {expect}");
    }
    assert_eq!(h.rejected(), 0, "{:?}", h.last_rejection());
}
