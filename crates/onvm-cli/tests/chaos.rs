//! Chaos (issue 12, point 9): a minute of traffic through `onvm up` while NF processes
//! are picked at random and SIGKILLed or SIGSTOPped, one of them a hoarding NF. The
//! manager must notice the deaths and the hangs (the watchdog kills a stopped NF and its
//! policy restarts it), the chains must keep moving packets, and at the end `onvm up`
//! exits 0 with conservation exact and the pool audit whole.
//!
//! The choices (kill or stop, which of the live NFs, the delays) come from a small PRNG
//! whose seed is printed; `ONVM_CHAOS_SEED` replays them (the timing of the processes
//! is the machine's), and `ONVM_CHAOS_SECS` runs shorter or longer locally (CI runs
//! [`CHAOS`]).
//!
//! The misbehaving NF is this test binary run again as an NF process (the ignored test
//! [`chaos_hoarder_nf`], as `onvm-shm`'s `two_process` test does): using only the safe
//! NF API, it keeps every packet it receives and hands on only half of what it holds
//! every 200 ms, so it sits at its buffer quota (what it is sent beyond is dropped as
//! `nf-over-quota`) and, when it is killed, a quota's worth of held buffers must come
//! back to the pool.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{KillBySocket, Proc, SOON, TempDir, assert_conserved, field, onvm, pids_with_args, serial};
use onvm_nf::{Action, Ctx, Handler, Nf, PacketMut};

/// How long the chaos lasts in CI.
const CHAOS: Duration = Duration::from_secs(60);

/// Set (to the service ID) in the environment of `onvm up`, so that the copy of this
/// binary it starts runs as the hoarding NF.
const HOARDER_ENV: &str = "ONVM_CHAOS_HOARDER";

/// Service IDs (and the config's `[services]`).
const SERVICE_A: u16 = 1;
const SERVICE_B: u16 = 2;
const SERVICE_C: u16 = 3;
const SERVICE_HOARD: u16 = 4;

/// splitmix64: small, deterministic, good enough to pick victims and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Heads or tails.
    fn coin(&mut self) -> bool {
        self.next() >> 63 == 1
    }

    /// Uniform in `lo..=hi` (the bias of `%` does not matter here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(v.parse().unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

/// `kill -SIG pid`, ignoring failure: the victim may have died (or been killed by the
/// watchdog) since it was picked.
fn try_signal(pid: u32, sig: &str) -> bool {
    Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A script that runs this test binary as the hoarding NF, its libtest chatter ("running
/// 1 test", "test result: ...") sent to /dev/null rather than into `onvm up`'s output.
/// libtest's arguments run only the hoarder; `--skip SOCKET` skips nothing and marks the
/// process as this test's (see [`nf_pids`]).
fn hoarder_script(dir: &TempDir, socket: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let exe = std::env::current_exe().expect("this test binary's path");
    let text = format!(
        "#!/bin/sh\nexec '{}' chaos_hoarder_nf --exact --ignored --nocapture --test-threads=1 --skip '{}' >/dev/null\n",
        exe.display(),
        socket.display()
    );
    let path = dir.write("hoarder.sh", &text);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make the script executable");
    path
}

/// The config: port 0 feeds chain a → b (two instances each) → port 3; port 1 feeds an
/// unrelated chain c (two instances) → port 4; port 2 feeds the hoarder → port 5.
fn config(dir: &TempDir, hoarder: &Path) -> PathBuf {
    // Restarts: enough for a minute of kills, and a backoff short enough that a service
    // is seldom down for long (each NF is hit every few seconds, so the default would
    // grow to 10 s).
    let policy = r#"restart = "on-failure"
max_restarts = 100000
backoff = { initial_ms = 20, max_ms = 300, factor = 2 }"#;
    let forwarder = |service: &str| {
        format!("[[nfs]]\nname = \"simple_forward\"\nservice = \"{service}\"\ninstances = 2\n{policy}\n\n")
    };
    let text = format!(
        r#"[manager]
ports = ["gen:64B,256flows,rate=200k", "gen:64B,64flows,rate=50k", "gen:64B,64flows,rate=20k", "null", "null", "null"]
shared_cores = true
watchdog_ms = 300

[services]
a = {SERVICE_A}
b = {SERVICE_B}
c = {SERVICE_C}
hoard = {SERVICE_HOARD}

{a}{b}{c}[[nfs]]
name = "hoarder"
binary = {hoarder:?}
service = "hoard"
{policy}

[[chains]]
name = "main"
chain = ["a", "b", "out:3"]
in_port = 0

[[chains]]
name = "other"
chain = ["c", "out:4"]
in_port = 1

[[chains]]
name = "hoarded"
chain = ["hoard", "out:5"]
in_port = 2
"#,
        a = forwarder("a"),
        b = forwarder("b"),
        c = forwarder("c"),
        hoarder = hoarder.display().to_string(),
    );
    dir.write("chaos.toml", &text)
}

/// The NF processes of this test's `onvm up` now: the built-in forwarders and the hoarder.
fn nf_pids(socket: &str) -> Vec<u32> {
    let mut pids = pids_with_args(&[&["nf"], &["--socket", socket]]);
    pids.extend(pids_with_args(&[&["--skip", socket]]));
    pids
}

/// On drop, SIGKILLs the hoarder processes of this test (started with `--skip SOCKET`,
/// so [`KillBySocket`] does not find them).
struct KillHoarders(String);

impl Drop for KillHoarders {
    fn drop(&mut self) {
        for pid in pids_with_args(&[&["--skip", &self.0]]) {
            try_signal(pid, "KILL");
        }
    }
}

#[test]
fn a_minute_of_random_kills_and_stops_loses_no_buffer() {
    let _one = serial();
    let chaos = env_u64("ONVM_CHAOS_SECS").map_or(CHAOS, Duration::from_secs);
    let seed = env_u64("ONVM_CHAOS_SEED").unwrap_or_else(|| {
        let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        t.as_secs() ^ (u64::from(t.subsec_nanos()) << 20)
    });
    eprintln!("chaos: seed {seed} (replay with ONVM_CHAOS_SEED={seed}), {chaos:?}");
    let mut rng = Rng(seed);

    let dir = TempDir::new("chaos");
    let socket = dir.socket();
    let sock = socket.display().to_string();
    let _reap = KillBySocket(socket.clone());
    let _reap_hoarders = KillHoarders(sock.clone());
    let cfg = config(&dir, &hoarder_script(&dir, &socket));
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(&cfg)
        .args(["--stats", "off", "--buffers", "4095", "--socket"])
        .arg(&socket)
        .env(HOARDER_ENV, SERVICE_HOARD.to_string());
    let mut up = Proc::spawn("onvm up", cmd);
    let registered = |p: &Proc| p.stderr.count(|l| l.contains("registered: instance"));
    assert!(
        common::wait_for(SOON, || registered(&up) >= 7),
        "seed {seed}: seven NFs register\n{}",
        up.output()
    );
    std::thread::sleep(Duration::from_millis(500));

    // The chaos: every 200-700 ms one NF process, SIGKILLed or SIGSTOPped (and
    // SIGCONTed 0.1-1.5 s later unless the watchdog killed it first).
    let mut stopped: Vec<(u32, Instant)> = Vec::new();
    let (mut kills, mut stops, mut long_stops, mut conts) = (0u32, 0u32, 0u32, 0u32);
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < chaos {
        assert!(
            !up.exited(),
            "seed {seed}: onvm up exited during the chaos\n{}",
            up.output()
        );
        let now = Instant::now();
        stopped.retain(|&(pid, at)| {
            if at > now {
                return true;
            }
            conts += u32::from(try_signal(pid, "CONT"));
            false
        });
        if now >= next {
            let pids = nf_pids(&sock);
            if !pids.is_empty() {
                let victim = pids[rng.range(0, pids.len() as u64 - 1) as usize];
                if rng.coin() {
                    kills += u32::from(try_signal(victim, "KILL"));
                } else if try_signal(victim, "STOP") {
                    let cont = Duration::from_millis(rng.range(100, 1500));
                    stops += 1;
                    // Long enough for the watchdog (300 ms, checked every 50 ms) with
                    // room for a busy machine.
                    long_stops += u32::from(cont >= Duration::from_secs(1));
                    stopped.push((victim, now + cont));
                }
            }
            next = now + Duration::from_millis(rng.range(200, 700));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    for (pid, _) in stopped.drain(..) {
        try_signal(pid, "CONT");
    }
    eprintln!("chaos: {kills} SIGKILLs, {stops} SIGSTOPs ({long_stops} of 1 s or more), {conts} SIGCONTs in {chaos:?}");

    // Let the last restarts register, then stop everything.
    std::thread::sleep(Duration::from_secs(1));
    for pid in nf_pids(&sock) {
        try_signal(pid, "CONT");
    }
    up.signal("TERM");
    assert_eq!(up.exit_code(SOON), 0, "seed {seed}: onvm up exit code\n{}", up.output());
    assert_conserved(&up);

    let (out, err) = (up.stdout.text(), up.stderr.text());
    let died = up.stderr.count(|l| l.contains("died without stopping"));
    let hung = up.stderr.count(|l| l.contains(") hung:"));
    let restarts = up
        .stderr
        .count(|l| l.contains("restart ") && l.contains(" of its policy"));
    eprintln!("chaos: the manager reported {died} deaths and {hung} hangs; onvm up made {restarts} restarts");
    // Not every kill is a death the manager sees (the victim may not have registered
    // yet, or have been dead already), but most are.
    assert!(
        died > 0 && died as u32 >= kills / 2,
        "seed {seed}: {died} deaths noticed for {kills} kills\n{err}"
    );
    if long_stops > 0 {
        assert!(
            hung > 0,
            "seed {seed}: {long_stops} long stops and no hang noticed\n{err}"
        );
    }
    assert!(restarts > 0, "seed {seed}: nothing was restarted\n{err}");
    for bad in ["panicked", "max_restarts"] {
        assert!(!err.contains(bad), "seed {seed}: {bad:?} in onvm up's stderr\n{err}");
    }
    // The hoarder misbehaved: it was sent more than its quota.
    let over_quota = out
        .lines()
        .find(|l| l.starts_with("manager drops:"))
        .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("nf-over-quota=")))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        over_quota.is_some_and(|n| n > 0),
        "seed {seed}: the hoarder never went over its quota\n{out}"
    );

    // The chains kept moving packets: each death or hang costs what was in the NF's
    // rings and what arrives while its service has no instance (both instances down
    // at once is rare); measured: 98-99 % out.
    let port = |n: u16, what: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("port {n} ")))
            .and_then(|l| field(l, what))
            .unwrap_or_else(|| panic!("seed {seed}: no port {n} {what} in\n{out}"))
    };
    for (name, rx, tx) in [
        ("main", port(0, "rx"), port(3, "tx")),
        ("other", port(1, "rx"), port(4, "tx")),
    ] {
        eprintln!("chaos: chain {name}: {tx} of {rx} packets out");
        assert!(
            tx * 4 >= rx * 3,
            "seed {seed}: chain {name} moved only {tx} of {rx} packets\n{out}"
        );
    }
}

/// The hoarding NF: not a test of its own. The chaos test's `onvm up` runs this binary
/// with `chaos_hoarder_nf --ignored` and [`HOARDER_ENV`] set; run any other way it
/// returns at once.
#[test]
#[ignore = "the chaos test's misbehaving NF, run by onvm up as an NF process"]
fn chaos_hoarder_nf() {
    let Some(service) = env_u64(HOARDER_ENV) else {
        return;
    };
    let nf = Nf::builder("hoarder")
        .service(service as u16)
        .shared_core(true)
        .tick(Duration::from_millis(200))
        .connect()
        .expect("the hoarder registers");
    nf.run(Hoarder).expect("the hoarder runs");
}

/// Keeps every packet; each tick hands on the older half of what it holds.
struct Hoarder;

impl Handler for Hoarder {
    fn packet(&mut self, _pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        Action::Keep
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let kept = ctx.take_kept();
        let half = kept.len() / 2;
        for (i, k) in kept.into_iter().enumerate() {
            ctx.return_pkt(k, if i < half { Action::Next } else { Action::Keep });
        }
    }
}
