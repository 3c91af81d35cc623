//! The control plane cannot starve the data plane (issue 12, point 4): a chain
//! generator → a → b → null keeps moving packets while a rogue client repeats `Ready`,
//! floods counters or bad messages, or opens thousands of idle connections; the manager
//! lives, the direct edge a → b is not closed by the repeats, bad messages do not flood
//! the events, idle connections are capped and closed after the registration timeout,
//! and every packet is accounted for at the end.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Proc, SOON, TempDir, onvm, serial, start_forwarder, stop_cleanly, wait_for};
use onvm_proto::ctrl::{ABI_VERSION, MAX_MESSAGE_LEN, MgrMsg, NfCounters, NfMsg, Register, RegisterFlags};
use onvm_shm::seqpacket::{Received, SeqPacket};

/// The share of its rate before the attack that the chain must keep during it. The
/// generator sends 1 Mpps (the rate of the issue's report), which the chain carries with
/// room to spare, so a rate that falls is the manager starved, not the cores shared with
/// the flooding thread and other work. Measured on the busy 2-core VM (2026-12-04): 86–100 %
/// kept under every attack; the build before kept 2 % (bad messages), 9 % (idle
/// connections), 14–96 % (counters: it starved only when the flood outran it) and 39 %
/// (`Ready`, which also reopened the edge a → b 142 times).
const KEPT: f64 = 0.50;
/// Stats interval of the manager, seconds.
const STATS_EVERY: &str = "0.2";
/// How long throughput is measured, before and during an attack.
const WINDOW: Duration = Duration::from_millis(1200);

/// A manager running generator (port 0) → a (service 1) → b (service 2) → null (port 1)
/// with CSV stats, both forwarders registered and the direct edge a → b open.
struct Chain {
    dir: TempDir,
    mgr: Proc,
    _nfs: Vec<Proc>,
}

impl Chain {
    fn start(name: &str) -> Chain {
        let dir = TempDir::new(name);
        let cfg = dir.write(
            "chain.toml",
            r#"[manager]
ports = ["gen:64B,16flows,rate=1M", "null"]
shared_cores = true

[services]
a = 1
b = 2

[[chains]]
name = "ab"
chain = ["a", "b", "out:1"]
in_port = 0
"#,
        );
        let socket = dir.socket();
        let mut cmd = onvm();
        cmd.args([
            "mgr",
            "--stats",
            "csv",
            "--stats-every",
            STATS_EVERY,
            "--buffers",
            "4095",
        ])
        .args(["--wait-for-nfs", "2", "--socket"])
        .arg(&socket)
        .arg("--config")
        .arg(&cfg);
        let mut mgr = Proc::spawn("onvm mgr", cmd);
        let up = wait_for(SOON, || socket.exists() || mgr.exited());
        assert!(up && socket.exists(), "the manager did not start\n{}", mgr.output());
        let nfs = vec![
            start_forwarder(&mgr, &socket, 1, "fwd-a").0,
            start_forwarder(&mgr, &socket, 2, "fwd-b").0,
        ];
        assert!(
            mgr.stderr.wait(SOON, |l| l.contains("direct edge")).is_some(),
            "no direct edge a → b\n{}",
            mgr.output()
        );
        Chain { dir, mgr, _nfs: nfs }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.socket()
    }

    /// The latest CSV line of port 1 (the null port): when it arrived and the packets
    /// sent so far.
    fn port1_tx(&self) -> Option<(Instant, u64)> {
        let is_port1 = |l: &str| l.split(',').nth(1) == Some("1");
        let last = self.mgr.stdout.count(is_port1);
        let seen = std::cell::Cell::new(0);
        let (t, line) = self.mgr.stdout.find(|l| {
            if is_port1(l) {
                seen.set(seen.get() + 1);
            }
            last > 0 && seen.get() == last
        })?;
        // ts,port,rx,rx_pps,tx,...
        Some((t, line.split(',').nth(4)?.parse().ok()?))
    }

    /// Packets per second out of port 1 over about [`WINDOW`], from two stats lines.
    fn rate(&mut self) -> f64 {
        let first = self.next_line(None);
        std::thread::sleep(WINDOW);
        let last = self.next_line(Some(first.0));
        assert!(!self.mgr.exited(), "the manager died\n{}", self.mgr.output());
        (last.1 - first.1) as f64 / last.0.duration_since(first.0).as_secs_f64()
    }

    /// The next port 1 stats line after `after` (or a fresh one).
    fn next_line(&mut self, after: Option<Instant>) -> (Instant, u64) {
        let after = after.unwrap_or_else(Instant::now);
        let mut got = None;
        let ok = wait_for(SOON, || {
            got = self.port1_tx().filter(|(t, _)| *t > after);
            got.is_some()
        });
        assert!(ok, "no stats line for port 1\n{}", self.mgr.output());
        got.unwrap()
    }

    /// How many times a direct edge opened (each close of a → b is followed by another).
    fn edges_opened(&self) -> usize {
        self.mgr.stderr.count(|l| l.contains("direct edge"))
    }

    fn stop(mut self) {
        assert!(!self.mgr.exited(), "the manager died\n{}", self.mgr.output());
        stop_cleanly(&mut self.mgr);
    }
}

/// A client that registered by hand (service 9, nothing routes to it) and said `Ready`.
fn rogue_nf(socket: &Path) -> SeqPacket {
    let sock = SeqPacket::connect(socket).expect("connect to the manager");
    let reg = NfMsg::Register(Register {
        abi_version: ABI_VERSION,
        tag: "rogue".into(),
        service: 9,
        instance: None,
        core: None,
        parent: None,
        flags: RegisterFlags::SHARED_CORE,
    });
    sock.send(&reg.encode().unwrap()).unwrap();
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let Received::Msg(n, _) = sock.recv(&mut buf).unwrap() else {
        panic!("no answer to the registration");
    };
    assert!(
        matches!(MgrMsg::decode(&buf[..n]), Ok(MgrMsg::Registered(_))),
        "refused"
    );
    sock.send(&NfMsg::Ready.encode().unwrap()).unwrap();
    sock
}

/// Send `bytes` on `sock` in a tight loop (blocking when the manager's side is full)
/// until `stop`; counts the messages sent.
fn flood(sock: SeqPacket, bytes: Vec<u8>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) -> JoinHandle<SeqPacket> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if sock.send(&bytes).is_err() {
                break;
            }
            sent.fetch_add(1, Ordering::Relaxed);
        }
        sock
    })
}

/// Flood the manager with `msg` (a message's bytes) from a rogue NF: the chain's rate
/// before and during the flood, the messages sent, and what `probe` found while the
/// flood went on.
fn measure_flood<R>(chain: &mut Chain, msg: Vec<u8>, probe: impl FnOnce(&Chain) -> R) -> (f64, f64, u64, R) {
    let before = chain.rate();
    let sock = rogue_nf(&chain.socket());
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let h = flood(sock, msg, stop.clone(), sent.clone());
    std::thread::sleep(Duration::from_millis(300));
    let during = chain.rate();
    let probed = probe(chain);
    stop.store(true, Ordering::Relaxed);
    let sock = h.join().unwrap();
    drop(sock); // the rogue goes: a crash, as far as the manager knows
    (before, during, sent.load(Ordering::Relaxed), probed)
}

/// A rogue NF repeats `msg` while the chain runs: the chain keeps its rate and the
/// direct edge a → b reopens at most `reopens` times (the rogue's first `Ready` and its
/// death may each close it once; the repeats must not). The chain, for more checks.
fn repeats_neither_close_edges_nor_starve_the_chain(name: &str, msg: NfMsg, reopens: usize) -> Chain {
    let mut chain = Chain::start(name);
    let opened = chain.edges_opened();
    let (before, during, sent, ()) = measure_flood(&mut chain, msg.encode().unwrap(), |_| ());
    eprintln!("{msg:?} flood: {sent} messages; port 1: {before:.0} pps before, {during:.0} pps during");
    assert!(sent > 1000, "the flood sent only {sent} messages");
    let reopened = chain.edges_opened() - opened;
    assert!(
        reopened <= reopens,
        "the edge a → b reopened {reopened} times: repeated {msg:?} closes edges\n{}",
        chain.mgr.stderr.text()
    );
    assert!(
        during >= KEPT * before,
        "{msg:?} flood: {during:.0} pps during vs {before:.0} before"
    );
    chain
}

#[test]
fn a_repeated_ready_neither_closes_edges_nor_starves_the_chain() {
    let _one = serial();
    repeats_neither_close_edges_nor_starve_the_chain("flood-ready", NfMsg::Ready, 3).stop();
}

/// `Leaving` takes an instance out of its service's table once; a hostile NF that
/// repeats it changes nothing more (each table change closes everyone's edges).
#[test]
fn a_repeated_leaving_neither_closes_edges_nor_starves_the_chain() {
    let _one = serial();
    // Its Ready, its first Leaving and its death may each close the edge once.
    let chain = repeats_neither_close_edges_nor_starve_the_chain("flood-leaving", NfMsg::Leaving, 4);
    let leaving = chain
        .mgr
        .stderr
        .count(|l| l.contains("\"rogue\"") && l.contains("is leaving"));
    assert_eq!(leaving, 1, "{}", chain.mgr.stderr.text());
    chain.stop();
}

#[test]
fn a_counters_flood_does_not_starve_the_chain() {
    let _one = serial();
    let mut chain = Chain::start("flood-counters");
    // Another client's messages are still served promptly: its registration is
    // answered in a tick or two, not after the flood.
    let register = |c: &Chain| {
        let t = Instant::now();
        let sock = rogue_nf(&c.socket());
        (t.elapsed(), sock)
    };
    let (before, during, sent, (took, _other)) = measure_flood(
        &mut chain,
        NfMsg::Counters(NfCounters::default()).encode().unwrap(),
        register,
    );
    eprintln!(
        "counters flood: {sent} messages; port 1: {before:.0} pps before, {during:.0} pps during; \
         another NF registered in {took:?}"
    );
    assert!(sent > 1000, "the flood sent only {sent} messages");
    assert!(
        took < Duration::from_millis(500),
        "a registration took {took:?} during the flood"
    );
    assert!(
        during >= KEPT * before,
        "counters flood: {during:.0} pps during vs {before:.0} before"
    );
    chain.stop();
}

#[test]
fn a_flood_of_bad_messages_neither_starves_the_chain_nor_floods_the_events() {
    let _one = serial();
    let mut chain = Chain::start("flood-bad");
    // An unknown message type: reported and ignored, the NF keeps its place.
    let (before, during, sent, ()) = measure_flood(&mut chain, vec![0x42, 1, 2], |_| ());
    eprintln!("bad-message flood: {sent} messages; port 1: {before:.0} pps before, {during:.0} pps during");
    assert!(sent > 1000, "the flood sent only {sent} messages");
    assert!(
        during >= KEPT * before,
        "bad-message flood: {during:.0} pps during vs {before:.0} before"
    );
    // The first ten in full, then one at each power of two.
    let reported = chain
        .mgr
        .stderr
        .count(|l| l.contains("bad control message from instance"));
    let bound = 10 + 64 - sent.leading_zeros() as usize;
    assert!(
        (10..=bound).contains(&reported),
        "{reported} events for {sent} bad messages (expected 10..={bound})"
    );
    chain.stop();
}

/// Connections the test opens; fewer if the hard limit on open files forbids it.
const IDLE: usize = 3000;

/// Raise this process's soft limit on open files to `want` (within the hard limit, with
/// prlimit(1)); how many connections it can then hold.
fn room_for(want: usize) -> usize {
    let pid = std::process::id().to_string();
    let limit = |which: &str| -> usize {
        let out = std::process::Command::new("prlimit")
            .args(["--pid", &pid, "--nofile", "--noheadings", "--raw", "--output", which])
            .output()
            .expect("prlimit(1) (util-linux) is needed");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(1024)
    };
    let (soft, hard) = (limit("SOFT"), limit("HARD"));
    let need = want + 256;
    if soft < need {
        let new = need.min(hard);
        let st = std::process::Command::new("prlimit")
            .args(["--pid", &pid, &format!("--nofile={new}:{hard}")])
            .status()
            .expect("run prlimit(1)");
        assert!(st.success(), "prlimit could not raise the open-file limit");
    }
    let room = want.min(limit("SOFT").saturating_sub(256));
    if room < want {
        eprintln!("open-file limit {hard}: {room} idle connections instead of {want}");
    }
    room
}

#[test]
fn idle_unregistered_connections_are_capped_and_time_out() {
    let _one = serial();
    let n = room_for(IDLE);
    let mut chain = Chain::start("flood-idle");
    let before = chain.rate();
    let socket = chain.socket();
    let opener = std::thread::spawn(move || -> Vec<SeqPacket> {
        (0..n)
            .map(|i| SeqPacket::connect(&socket).unwrap_or_else(|e| panic!("connection {i}: {e}")))
            .collect()
    });
    // Measured from the first connection on: the burst of connects, then the idle ones.
    let during = chain.rate();
    let conns = opener.join().unwrap();
    eprintln!("{n} idle connections; port 1: {before:.0} pps before, {during:.0} pps during");
    assert!(
        during >= KEPT * before,
        "idle connections: {during:.0} pps during vs {before:.0} before"
    );
    for c in &conns {
        c.set_nonblocking(true).unwrap();
    }
    let mut buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let mut open = |conns: &[SeqPacket]| {
        conns
            .iter()
            .filter(|c| matches!(c.recv(&mut buf), Ok(Received::Empty)))
            .count()
    };
    // Once the listener's backlog is taken, the manager holds at most its cap of 64.
    std::thread::sleep(Duration::from_millis(300));
    let held = open(&conns);
    assert!(held <= 64, "{held} unregistered connections still open");
    // Over the cap: closed at once, reported per burst, not per connection.
    let capped = chain
        .mgr
        .stderr
        .count(|l| l.contains("new control connection(s)") && l.contains("waiting to register"));
    assert!(
        capped >= 1,
        "no event for the connections over the cap\n{}",
        chain.mgr.stderr.text()
    );
    assert!(capped <= 10, "{capped} events for one burst of connections");
    // The rest are closed after the registration timeout (2 s), with an event.
    let timed_out = chain.mgr.stderr.wait(SOON, |l| l.contains("did not register within"));
    assert!(timed_out.is_some(), "no timeout event\n{}", chain.mgr.stderr.text());
    assert!(
        wait_for(SOON, || open(&conns) == 0),
        "idle connections still open long after the timeout"
    );
    drop(conns);
    // A real NF can still register afterwards.
    let (_late, _) = start_forwarder(&chain.mgr, &chain.socket(), 3, "fwd-late");
    chain.stop();
}
