//! `onvm bench`: throughput and latency of the platform, as openNetVM measures it.
//!
//! Each scenario starts a manager and its NFs in this process (NFs on their own
//! threads, each mapping the region itself, exactly as an NF process does), runs for a
//! few seconds, and takes the rate over a window that starts after one second of
//! warm-up. Scenarios:
//!
//! - `self-loop`: one speed_tester sending to itself (openNetVM scenario A).
//! - `chain2`: speed_tester → simple_forward → speed_tester (scenario B).
//! - `chain3`: speed_tester → simple_forward → simple_forward → speed_tester; three NFs
//!   on two cores need shared-core mode, so this one runs through the manager.
//! - `shared1core-Nnf`: speed_tester → simple_forwards → speed_tester, N NFs all on
//!   core 1 in shared-core mode (the manager on core 0): switching between NFs on one
//!   core (openNetVM's scenario C for N = 2).
//! - `backpressure-off`/`-on`: generator port → 2 simple_forwards → a simple_forward
//!   that spends 2 µs per packet (alone on core 1) → null, in shared-core mode, with chain
//!   backpressure off and on: the figure is what leaves port 1, and the run also says
//!   how much the first NF handled that dropped later (wasted work).
//! - `port-chainN`: generator port → N simple_forwards → null port, through the
//!   manager's switch and flow table (openNetVM's NIC path, scenario D).
//! - `nullport-chainN`: the same from a receiving null port (`null:64B`, DPDK's
//!   `net_null`), which costs next to nothing: the platform's own cost per packet.
//!   With `--profile`, port scenarios also print the switch thread's cycles per
//!   packet, phase by phase (rx, classify, enqueue, dequeue, tx, rest).
//! - `nf-NAME`: generator port → one catalogue NF → null port, 64-byte frames of 1024
//!   flows, with flags and files that make the NF do its usual work on them (see
//!   [`nfs`]): each NF's Mpps on one core.
//! - `*-latency`: one packet in flight, per-packet round trip p50/p99 (L2, L3).
//! - `container-chain2-64B`, only with `--only container` (it needs a Docker engine):
//!   `onvm up` runs generator port → 2 simple_forwards → null port with the NFs as
//!   bare processes and as containers, interleaved; see [`containers`].
//!
//! A ping-pong probe between core 0 and core 1 runs before the NF scenarios: on this
//! VM the inter-core latency switches between two modes, and two-core figures must
//! be read with it (see docs/ARCHITECTURE.md).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use onvm_mgr::{Options, StatsMode};
use onvm_nf::Nf;
use onvm_nfs::meter::Metered;
use onvm_nfs::simple_forward::SimpleForward;
use onvm_nfs::speed_tester::{self, SpeedTester};
use onvm_proto::chain::{Chain, Hop, compile};
use onvm_proto::flow::Match;
use serde::Serialize;

use crate::CliResult;

/// `println!` that a closed stdout (`onvm bench | head`) cannot turn into a panic.
macro_rules! say {
    ($($t:tt)*) => {
        onvm_mgr::stats::emit(format_args!("{}\n", format_args!($($t)*)))
    };
}

mod containers;
mod nfs;

/// `onvm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds per scenario (the first second is warm-up).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Run only scenarios whose name starts with this (`container`: NFs in containers
    /// against bare processes, which needs a Docker engine and runs only when asked).
    #[arg(long)]
    pub only: Option<String>,
    /// Also measure the switch thread's cycles per packet in each phase of its pass
    /// (port scenarios): a TSC read per phase costs a few cycles per packet, so the
    /// rates of a profiled run are a little lower.
    #[arg(long)]
    pub profile: bool,
    /// Run each manager with its HTTP endpoint on (loopback) and scraped every second
    /// (`/metrics` and `/api/v1/stats`), to measure what watching costs the data path.
    #[arg(long)]
    pub http: bool,
    /// The port scenarios' ports instead of their own (repeatable: the first receives,
    /// the chain sends out of the second), e.g. `--ports dpdk:net_null0 --ports
    /// dpdk:net_null1,no-rx=1` for DPDK's null ports (a `dpdk` build).
    #[arg(long = "ports")]
    pub ports: Vec<String>,
    /// Switch threads that receive (`onvm mgr --rx-threads`): with 2, a `null:64B`
    /// port's second queue is polled by a thread of its own. Interleave runs with 1 and
    /// with 2 (`scripts/bench-ab.sh`) to see what the second thread gives.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub rx_threads: u16,
    /// Cores the threads beside the main one are pinned to, one each in order (`onvm
    /// mgr --rx-cores`), e.g. 2,3,4 on a machine with a core per thread: the main
    /// thread takes core 0 and the measuring NF core 1 (default: not pinned).
    #[arg(long, value_delimiter = ',')]
    pub rx_cores: Option<Vec<u16>>,
    /// Instances of the first NF of the port scenarios (`port-chainN`, `nullport-chainN`):
    /// the service's flows are shared out among them, and the figure is what they
    /// forwarded together. Use it with a port of many flows (`port-`: `gen:64B,1024flows`;
    /// `null:64B` frames are all one flow).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub instances: u16,
    /// Cores of those instances, one each in order, e.g. 1,2 (default: the first on
    /// core 1 as in every scenario; with `--instances`, placed by the manager).
    #[arg(long, value_delimiter = ',')]
    pub nf_cores: Option<Vec<u16>>,
    /// Let NFs poll port queues themselves (`onvm mgr --nf-queues`): on the `nullport`
    /// scenarios the NF is then the whole port path.
    #[arg(long)]
    pub nf_queues: bool,
    #[command(flatten)]
    pub containers: containers::ContainerArgs,
}

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// Scenario name, e.g. `self-loop-64B`.
    pub name: String,
    /// Million packets per second seen by the measuring NF.
    pub mpps: f64,
    /// Median per-packet round trip (latency scenarios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ns: Option<u64>,
    /// 99th percentile round trip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ns: Option<u64>,
    /// NFs in the scenario.
    pub nfs: usize,
    /// Frame size (bytes, with FCS).
    pub frame: usize,
    /// openNetVM's figure for the same scenario on this machine type, if measured (for
    /// two-core scenarios: in the VM's fast inter-core mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_netvm_mpps: Option<f64>,
    /// openNetVM's figure in the VM's slow inter-core mode (two-core scenarios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_netvm_slow_mpps: Option<f64>,
    /// Inter-core ping-pong round trip measured just before (two-core scenarios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_rtt_ns: Option<u64>,
    /// The same probe just after: a mode switch during the run shows as a difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe_after_ns: Option<u64>,
    /// The switch thread's TSC cycles per packet received, by phase (`--profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switch_cycles: Option<SwitchCycles>,
    /// `nf-` scenarios: the NF's handler alone, run offline on this thread over the
    /// scenario's traffic (no manager, no rings): Mpps, and its ns per packet over the
    /// library's own cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler_alone: Option<nfs::HandlerAlone>,
    /// Backpressure scenarios: useful and wasted work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waste: Option<Waste>,
}

/// Backpressure scenarios: where the packets went, over the whole run (Mpps).
#[derive(Debug, Clone, Serialize)]
pub struct Waste {
    /// Out of port 1: the useful work.
    pub out_mpps: f64,
    /// Handled by the first NF but not sent: work spent on packets that dropped later.
    pub wasted_mpps: f64,
    /// Dropped where they entered the chain, before any NF (`backpressure`).
    pub entry_drop_mpps: f64,
}

impl Waste {
    fn of(report: &onvm_mgr::Report) -> Waste {
        let secs = report.uptime.as_secs_f64().max(1e-9);
        let out = report.ports.get(1).map_or(0, |p| p.stats.tx);
        let first: u64 = report
            .nfs
            .iter()
            .filter(|n| n.service == 1)
            .map(|n| n.counters.rx)
            .sum();
        let entry = report
            .drops
            .iter()
            .find(|(name, _)| *name == "backpressure")
            .map_or(0, |d| d.1);
        Waste {
            out_mpps: out as f64 / secs / 1e6,
            wasted_mpps: first.saturating_sub(out) as f64 / secs / 1e6,
            entry_drop_mpps: entry as f64 / secs / 1e6,
        }
    }
}

/// The switch thread's cycles per packet (`--profile`, port scenarios).
#[derive(Debug, Clone, Serialize)]
pub struct SwitchCycles {
    /// Per phase of the pass.
    pub phases: Vec<(&'static str, f64)>,
    /// All phases.
    pub total: f64,
    /// The TSC's rate, Hz.
    pub tsc_hz: f64,
}

/// openNetVM v21.10 on this VM type (../shared/research/onvm-bench.md): self-loop 64.6
/// Mpps; 2-NF chain 51.7 Mpps in the fast inter-core mode, 18.4 in the slow one.
const ONVM_SELF_LOOP: f64 = 64.6;
const ONVM_CHAIN2_FAST: f64 = 51.7;
const ONVM_CHAIN2_SLOW: f64 = 18.4;
/// Its scenario C, speed_tester and simple_forward sharing core 1 in shared-core mode:
/// 0.89 Mpps in the side-by-side run of 2026-12-02 (4.9 alone on 2026-11-21).
const ONVM_SHARED1CORE_2NF: f64 = 0.89;

/// Round trip of a cache line bounced between core 0 and core 1 (plain spinning, no
/// PAUSE, which alone costs ~140 cycles on recent x86).
pub fn pingpong_ns() -> Option<u64> {
    let cores = core_affinity::get_core_ids()?;
    if cores.len() < 2 {
        return None;
    }
    const ROUNDS: u64 = 200_000;
    let flag = Arc::new(AtomicU64::new(0));
    let f = flag.clone();
    let c1 = cores[1];
    let peer = std::thread::spawn(move || {
        core_affinity::set_for_current(c1);
        for i in 0..ROUNDS {
            while f.load(Ordering::Acquire) != 2 * i + 1 {}
            f.store(2 * i + 2, Ordering::Release);
        }
    });
    let me = std::thread::spawn(move || {
        core_affinity::set_for_current(cores[0]);
        let t = Instant::now();
        for i in 0..ROUNDS {
            flag.store(2 * i + 1, Ordering::Release);
            while flag.load(Ordering::Acquire) != 2 * i + 2 {}
        }
        t.elapsed()
    });
    let d = me.join().ok()?;
    peer.join().ok()?;
    Some((d.as_nanos() / u128::from(ROUNDS)) as u64)
}

/// What an NF of a scenario runs.
#[derive(Clone, Debug)]
enum Role {
    /// speed_tester to `dest` (None = itself), `count` in flight.
    Tester { dest: Option<u16>, count: usize },
    /// simple_forward to `dest` (None = the chain's next hop), metered.
    Forward { dest: Option<u16> },
    /// A catalogue NF with these flags (`["firewall", "-f", FILE]`), metered.
    Nf(Vec<String>),
}

#[derive(Clone, Debug)]
struct Plan {
    service: u16,
    core: Option<u16>,
    shared: bool,
    role: Role,
}

struct Scenario {
    name: String,
    frame: usize,
    latency: bool,
    ports: Vec<String>,
    chain: Vec<u16>,
    nfs: Vec<Plan>,
    /// Files its NFs read (rules, routes), written before it starts.
    files: Vec<(PathBuf, String)>,
    /// openNetVM's figures: (fast or only mode, slow mode).
    onvm: (Option<f64>, Option<f64>),
    /// `Some(on)`: a backpressure scenario, backpressure on or off; the figure is the
    /// rate out of port 1 (see [`Waste`]).
    backpressure: Option<bool>,
}

impl Scenario {
    /// `--instances`, `--nf-cores`: the first NF of a port scenario as `n` instances,
    /// pinned to `cores` where given.
    fn scale_out(&mut self, n: u16, cores: Option<&[u16]>) {
        let Some(first) = self.nfs.first().filter(|_| !self.ports.is_empty()).cloned() else {
            return;
        };
        if !matches!(first.role, Role::Forward { .. }) || (n == 1 && cores.is_none()) {
            return;
        }
        let at = |j: usize| cores.and_then(|c| c.get(j)).copied();
        let more = (1..usize::from(n)).map(|j| Plan {
            core: at(j),
            ..first.clone()
        });
        self.nfs.splice(1..1, more);
        // Without cores, several instances are the manager's to place.
        self.nfs[0].core = cores.and(at(0).or(first.core));
    }
}

fn run_nf(plan: Plan, socket: PathBuf, frame: usize, latency: bool, ttl: Duration) -> Result<Record, String> {
    let mut b = Nf::builder(match &plan.role {
        Role::Tester { .. } => "speed_tester",
        Role::Forward { .. } => "simple_forward",
        Role::Nf(words) => words.first().map_or("nf", String::as_str),
    })
    .service(plan.service)
    .shared_core(plan.shared)
    .socket(socket)
    .ttl(ttl)
    .tick(Duration::from_millis(500));
    if let Some(c) = plan.core {
        b = b.core(c);
    }
    let nf = b.connect().map_err(|e| e.to_string())?;
    let rec = |mpps, p50_ns, p99_ns| Record {
        name: String::new(),
        mpps,
        p50_ns,
        p99_ns,
        nfs: 0,
        frame,
        open_netvm_mpps: None,
        open_netvm_slow_mpps: None,
        probe_rtt_ns: None,
        probe_after_ns: None,
        switch_cycles: None,
        handler_alone: None,
        waste: None,
    };
    match plan.role {
        Role::Tester { dest, count } => {
            let mut st = SpeedTester::new(speed_tester::Config {
                dest,
                count,
                size: frame,
                latency,
                print: false,
            });
            nf.run(&mut st).map_err(|e| e.to_string())?;
            let m = st.result.ok_or("speed_tester measured nothing")?;
            Ok(rec(m.mpps, m.p50_ns, m.p99_ns))
        }
        Role::Forward { dest } => {
            let mut h = Metered::new(SimpleForward::new(dest));
            nf.run(&mut h).map_err(|e| e.to_string())?;
            Ok(rec(h.meter.window().0, None, None))
        }
        Role::Nf(words) => {
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            let mpps = onvm_nfs::Catalogue::parse(&words)?.visit(nfs::MeteredRun(nf))?;
            Ok(rec(mpps, None, None))
        }
    }
}

/// `--http`: scrape `/metrics` and `/api/v1/stats` at `addr` every second until `stop`;
/// how many scrapes answered 200.
fn scrape(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> u32 {
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut ok = 0;
    while !stop.load(Ordering::Relaxed) {
        for path in ["/metrics", "/api/v1/stats"] {
            if let Ok(mut r) = http.get(format!("http://{addr}{path}")).call() {
                ok += u32::from(r.body_mut().read_to_string().is_ok());
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    ok
}

fn run_scenario(s: &Scenario, probe: Option<u64>, a: &BenchArgs) -> Result<Record, String> {
    let dir = std::env::temp_dir().join(format!("onvm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let socket = dir.join(format!("{}.sock", s.name));
    for (path, text) in &s.files {
        std::fs::write(path, text).map_err(|e| format!("{}: cannot write {}: {e}", s.name, path.display()))?;
    }
    let mut o = Options::new(socket.clone());
    o.stats = StatsMode::Off;
    o.log_events = false;
    o.profile = a.profile && !s.ports.is_empty();
    o.backpressure = s.backpressure == Some(true);
    o.rx_threads = a.rx_threads;
    o.rx_cores.clone_from(&a.rx_cores);
    o.nf_queues = a.nf_queues;
    if a.http {
        // A port free now; the manager fails to start, saying so, if it went meanwhile.
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        o.http = Some(l.local_addr().map_err(|e| e.to_string())?);
    }
    let http = o.http;
    for p in &s.ports {
        o.ports
            .push(p.parse().map_err(|e: onvm_proto::port::PortSpecError| e.to_string())?);
    }
    if !s.chain.is_empty() {
        let mut hops: Vec<Hop> = s
            .chain
            .iter()
            .map(|&id| Hop::Service {
                id,
                name: format!("s{id}"),
            })
            .collect();
        hops.push(Hop::Out(1));
        o.rules = compile(
            &[Chain {
                name: s.name.clone(),
                hops,
                in_port: Some(0),
                matcher: Match::any(),
                default: false,
                priority: None,
            }],
            2,
        )
        .map_err(|e| e.to_string())?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let mgr = std::thread::spawn(move || onvm_mgr::run(o, &st));
    let t = Instant::now();
    while !socket.exists() {
        if mgr.is_finished() {
            // Its own error says why (a port that would not open, a core not online).
            let why = match mgr.join() {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(_)) => "it stopped".into(),
                Err(_) => "it panicked".into(),
            };
            return Err(format!("{}: the manager did not start: {why}", s.name));
        }
        if t.elapsed() > Duration::from_secs(5) {
            return Err(format!("{}: the manager did not start in 5 s", s.name));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let ttl = Duration::try_from_secs_f64(a.seconds).map_err(|_| "--seconds must be positive")?;
    let scraping = Arc::new(AtomicBool::new(false));
    let scraper = http.map(|addr| {
        let stop = scraping.clone();
        std::thread::spawn(move || scrape(addr, stop))
    });
    // Receivers first, so the first packets find them; the measuring NF (index 0) last.
    let mut handles = Vec::new();
    for (i, plan) in s.nfs.iter().enumerate().rev() {
        let (socket, plan, frame, latency) = (socket.clone(), plan.clone(), s.frame, s.latency);
        handles.push((i, std::thread::spawn(move || run_nf(plan, socket, frame, latency, ttl))));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The measuring NF is the first; instances of its service add theirs (`--instances`).
    let measuring = s.nfs.first().map(|p| p.service);
    let mut measured: Option<Record> = None;
    let mut nf_failed = None;
    for (i, h) in handles {
        match h.join().map_err(|_| "an NF thread panicked".to_string()).flatten() {
            Ok(r) if Some(s.nfs[i].service) == measuring => match &mut measured {
                Some(m) => m.mpps += r.mpps,
                None => measured = Some(r),
            },
            Ok(_) => {}
            Err(e) => {
                nf_failed.get_or_insert(e);
            }
        }
    }
    scraping.store(true, Ordering::Relaxed);
    let scrapes = scraper.map(|t| t.join().unwrap_or(0));
    stop.store(true, Ordering::Relaxed);
    // The manager's error first: when it fails after listening (a receive thread's
    // core not online), its NFs only see the connection close.
    let report = mgr
        .join()
        .map_err(|_| "the manager panicked".to_string())?
        .map_err(|e| format!("{}: the manager: {e}", s.name))?;
    if let Some(e) = nf_failed {
        return Err(e);
    }
    if scrapes == Some(0) {
        return Err(format!("{}: --http: no scrape was answered", s.name));
    }
    if !report.conserved() {
        return Err(format!("{}: {}", s.name, report.conservation_line()));
    }
    let mut r = measured.ok_or("no measuring NF")?;
    r.name = s.name.clone();
    r.nfs = s.nfs.len();
    if s.backpressure.is_some() {
        let w = Waste::of(&report);
        r.mpps = w.out_mpps;
        r.waste = Some(w);
    }
    r.switch_cycles = report.profile.map(|p| {
        let (phases, total) = p.per_packet();
        SwitchCycles {
            phases,
            total,
            tsc_hz: p.tsc_hz,
        }
    });
    (r.open_netvm_mpps, r.open_netvm_slow_mpps) = s.onvm;
    if s.nfs.len() > 1 {
        r.probe_rtt_ns = probe;
        r.probe_after_ns = pingpong_ns();
    }
    Ok(r)
}

fn scenarios() -> Vec<Scenario> {
    let tester = |dest, count| Plan {
        service: 1,
        core: Some(1),
        shared: false,
        role: Role::Tester { dest, count },
    };
    let fwd = |service, dest, core: Option<u16>, shared| Plan {
        service,
        core,
        shared,
        role: Role::Forward { dest },
    };
    let mut v = Vec::new();
    for frame in [64usize, 1500] {
        v.push(Scenario {
            name: format!("self-loop-{frame}B"),
            frame,
            latency: false,
            ports: vec![],
            chain: vec![],
            nfs: vec![tester(None, 128)],
            files: Vec::new(),
            onvm: (Some(ONVM_SELF_LOOP), None),
            backpressure: None,
        });
        v.push(Scenario {
            name: format!("chain2-{frame}B"),
            frame,
            latency: false,
            ports: vec![],
            chain: vec![],
            nfs: vec![tester(Some(2), 128), fwd(2, Some(1), Some(0), false)],
            files: Vec::new(),
            onvm: if frame == 64 {
                (Some(ONVM_CHAIN2_FAST), Some(ONVM_CHAIN2_SLOW))
            } else {
                (None, None)
            },
            backpressure: None,
        });
        v.push(Scenario {
            name: format!("chain3-{frame}B"),
            frame,
            latency: false,
            ports: vec![],
            chain: vec![],
            nfs: vec![
                Plan {
                    shared: true,
                    core: None,
                    ..tester(Some(2), 128)
                },
                fwd(2, Some(3), None, true),
                fwd(3, Some(1), None, true),
            ],
            files: Vec::new(),
            onvm: (None, None),
            backpressure: None,
        });
    }
    // NFs sharing one core (shared-core mode, all on core 1, the manager on core 0):
    // speed_tester → simple_forward … → speed_tester over direct edges. What it
    // measures is switching between NFs on one core, not their work.
    for n in [2u16, 4] {
        let on1 = |p: Plan| Plan {
            shared: true,
            core: Some(1),
            ..p
        };
        let mut nfs = vec![on1(tester(Some(2), 128))];
        nfs.extend((2..=n).map(|s| on1(fwd(s, Some(if s == n { 1 } else { s + 1 }), None, true))));
        v.push(Scenario {
            name: format!("shared1core-{n}nf"),
            frame: 64,
            latency: false,
            ports: vec![],
            chain: vec![],
            nfs,
            files: Vec::new(),
            onvm: if n == 2 {
                (Some(ONVM_SHARED1CORE_2NF), None)
            } else {
                (None, None)
            },
            backpressure: None,
        });
    }
    // A slow last NF (2 µs per packet, core 1) behind two quick ones (core 0, with the
    // manager), in shared-core mode: what reaches port 1, and the work the quick ones
    // spend on packets that drop.
    for on in [false, true] {
        let nf = |service, words: &[&str]| Plan {
            service,
            core: Some(u16::from(service == 3)),
            shared: true,
            role: Role::Nf(words.iter().map(|w| w.to_string()).collect()),
        };
        v.push(Scenario {
            name: format!("backpressure-{}", if on { "on" } else { "off" }),
            frame: 64,
            latency: false,
            ports: vec!["gen:64B,1024flows".into(), "null".into()],
            chain: vec![1, 2, 3],
            nfs: vec![
                nf(1, &["simple_forward"]),
                nf(2, &["simple_forward"]),
                nf(3, &["simple_forward", "--busy-ns", "2000"]),
            ],
            files: Vec::new(),
            onvm: (None, None),
            backpressure: Some(on),
        });
    }
    for (kind, source) in [("port", "gen:64B,1024flows"), ("nullport", "null:64B")] {
        for n in 1..=3u16 {
            let shared = n > 1;
            v.push(Scenario {
                name: format!("{kind}-chain{n}-64B"),
                frame: 64,
                latency: false,
                ports: vec![source.into(), "null".into()],
                chain: (1..=n).collect(),
                nfs: (1..=n)
                    .map(|s| fwd(s, None, if shared { None } else { Some(1) }, shared))
                    .collect(),
                files: Vec::new(),
                onvm: (None, None),
                backpressure: None,
            });
        }
    }
    v.extend(nfs::scenarios(
        &std::env::temp_dir().join(format!("onvm-bench-{}", std::process::id())),
    ));
    v.push(Scenario {
        name: "self-loop-latency-64B".into(),
        frame: 64,
        latency: true,
        ports: vec![],
        chain: vec![],
        nfs: vec![tester(None, 1)],
        files: Vec::new(),
        onvm: (None, None),
        backpressure: None,
    });
    v.push(Scenario {
        name: "chain2-latency-64B".into(),
        frame: 64,
        latency: true,
        ports: vec![],
        chain: vec![],
        nfs: vec![tester(Some(2), 1), fwd(2, Some(1), Some(0), false)],
        files: Vec::new(),
        onvm: (None, None),
        backpressure: None,
    });
    v
}

/// `onvm bench`.
pub fn run(a: BenchArgs) -> CliResult {
    if containers::selected(a.only.as_deref()) {
        let out = containers::run(a.seconds, &a.containers)?;
        write_json(a.json.as_deref(), &out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let probe = pingpong_ns();
    say!(
        "inter-core ping-pong round trip: {} ns (openNetVM's figures were taken at 76-135 ns (fast) and 410-510 ns (slow))",
        probe.map_or_else(|| "-".into(), |p| p.to_string())
    );
    let mut out = Vec::new();
    say!(
        "{:<24} {:>9} {:>9} {:>9} {:>12} {:>12} {:>14}",
        "scenario",
        "Mpps",
        "p50 ns",
        "p99 ns",
        "openNetVM",
        "ratio",
        "probe ns"
    );
    for s in scenarios() {
        if a.only.as_deref().is_some_and(|o| !s.name.starts_with(o)) {
            continue;
        }
        let mut s = s;
        if !a.ports.is_empty() && !s.ports.is_empty() {
            s.ports.clone_from(&a.ports);
        }
        s.scale_out(a.instances, a.nf_cores.as_deref());
        let before = if s.nfs.len() > 1 { pingpong_ns() } else { probe };
        let mut r = run_scenario(&s, before, &a)?;
        if let Some(Plan {
            role: Role::Nf(words), ..
        }) = s.nfs.first()
            && s.backpressure.is_none()
        {
            r.handler_alone = Some(nfs::handler_alone(words)?);
        }
        let opt = |v: Option<u64>| v.map_or_else(|| "-".into(), |v| v.to_string());
        say!(
            "{:<24} {:>9.2} {:>9} {:>9} {:>12} {:>12} {:>14}",
            r.name,
            r.mpps,
            opt(r.p50_ns),
            opt(r.p99_ns),
            match (r.open_netvm_mpps, r.open_netvm_slow_mpps) {
                (Some(f), Some(sl)) => format!("{f:.1}/{sl:.1}"),
                (Some(f), None) => format!("{f:.1}"),
                _ => "-".into(),
            },
            match (r.open_netvm_mpps, r.open_netvm_slow_mpps) {
                (Some(f), Some(sl)) => format!("{:.2}x/{:.2}x", r.mpps / f, r.mpps / sl),
                (Some(f), None) => format!("{:.2}x", r.mpps / f),
                _ => "-".into(),
            },
            match (r.probe_rtt_ns, r.probe_after_ns) {
                (Some(a), Some(b)) => format!("{a} → {b}"),
                _ => "-".into(),
            },
        );
        if let Some(w) = &r.waste {
            say!(
                "  out of port 1 {:.3} Mpps; handled by the first NF but dropped later {:.3} Mpps; dropped at the chain's entry {:.3} Mpps",
                w.out_mpps,
                w.wasted_mpps,
                w.entry_drop_mpps
            );
        }
        if let Some(h) = &r.handler_alone {
            say!(
                "  its handler alone (offline, one core): {:.2} Mpps, {:.1} ns per packet over the library's {:.1}",
                h.mpps,
                h.ns_per_packet,
                h.library_ns
            );
        }
        if let Some(c) = &r.switch_cycles {
            let parts: Vec<String> = c.phases.iter().map(|(p, v)| format!("{p} {v:.1}")).collect();
            say!(
                "  switch thread, TSC cycles per packet ({:.2} GHz): {} = {:.1}",
                c.tsc_hz / 1e9,
                parts.join(", "),
                c.total
            );
        }
        out.push(r);
    }
    if a.only
        .as_deref()
        .is_none_or(|o| "nf-".starts_with(o) || o.starts_with("nf-"))
    {
        for (name, why) in nfs::NOT_BENCHED {
            say!("nf-{name}: not benched: {why}");
        }
    }
    write_json(a.json.as_deref(), &out)?;
    Ok(ExitCode::SUCCESS)
}

/// `--json PATH`: the records, pretty-printed.
fn write_json(path: Option<&std::path::Path>, records: &impl Serialize) -> Result<(), String> {
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(records).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        say!("results written to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str) -> Scenario {
        scenarios()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no scenario {name}"))
    }

    #[test]
    fn instances_scale_out_the_first_nf_of_a_port_scenario_only() {
        let mut s = scenario("port-chain2-64B");
        s.scale_out(3, Some(&[4, 5, 6]));
        let plan: Vec<(u16, Option<u16>)> = s.nfs.iter().map(|p| (p.service, p.core)).collect();
        // Three instances of service 1 on their cores, then the chain's second NF as it was.
        assert_eq!(&plan[..3], &[(1, Some(4)), (1, Some(5)), (1, Some(6))]);
        assert_eq!(plan[3].0, 2);
        assert_eq!(plan.len(), 4);

        let mut s = scenario("port-chain1-64B");
        s.scale_out(2, None);
        assert!(
            s.nfs.iter().all(|p| p.service == 1 && p.core.is_none()),
            "placed by the manager"
        );
        assert_eq!(s.nfs.len(), 2);

        let mut s = scenario("port-chain1-64B");
        s.scale_out(1, None);
        assert_eq!(s.nfs[0].core, Some(1), "no flag, no change");

        // Between-NF scenarios have no port whose flows could be shared out.
        let mut s = scenario("chain2-64B");
        s.scale_out(4, None);
        assert_eq!(s.nfs.len(), 2);
    }
}
