//! `onvm bench --only container`: does zero-copy hold across containers (issue 13)?
//!
//! The other scenarios run NFs as threads of the bench process, which cannot be
//! containers. This group runs `onvm up` (this very binary) once per round with a
//! generated config: a generator port (`gen:64B,1024flows`, no rate limit) → two
//! `simple_forward` NFs as a service chain → a `null` port, in shared-core mode. The
//! same config is run with both NFs as bare processes and with both as containers of
//! one image (`image =`), rounds interleaved bare, container, container, bare, bare, …:
//! this VM switches between a fast and a slow inter-core mode, and interleaving spreads
//! the modes (and other load) over both sides. The figures are medians over the rounds
//! and the ratio container/bare.
//!
//! **Cores**: the manager gets core 0 (`--mgr-core 0`), the NFs share core 1
//! (`--nf-cores 1`), the same for both sides. Containers get core 1 as their cpuset
//! from the manager's placement; bare NFs inherit it as their CPU affinity, because
//! `onvm up` is spawned from a thread pinned to core 1 (the manager's thread pins
//! itself to core 0). Left to float, a container NF and a bare one would not meet the
//! spinning manager alike: the CFS group scheduler weighs Docker's cgroup as one entity
//! and each bare task (or, with `sched_autogroup`, each session) as another.
//!
//! **Other load**: the same weighing decides what share of core 1 the NFs get when
//! something else wants it too (on this VM: other sessions' builds). Plain bare NFs
//! share the autogroup of `onvm up`, whose manager keeps core 0 busy, while containers
//! are in Docker's cgroup, whose weight is all on core 1: under load the containers
//! got about twice the bare NFs' share and won by 1.1–1.8×, which says nothing about
//! the data path. So the bench puts the bare NFs in a cgroup of its own (cpu and
//! cpuacct, v1: [`BareCgroup`]) as Docker puts each container in one, and both sides
//! are weighed alike; where it cannot create one it says so. Each round also reports
//! what else ran (`others`: busy CPU time from /proc/stat less that of `onvm up`, its
//! reaped NFs, Docker's containers and the bench, in cores) and the **NF CPU time per
//! packet**: the CPU time both NFs used over the window (from their cgroup's cpuacct,
//! or /proc without one) over the packets that left port 1 in it, i.e. the data
//! path's cost whatever share of the core the NFs got.
//!
//! **Throughput** comes from the manager itself: `--stats csv` every
//! [`STATS_EVERY`] seconds, each interval's port-1 `tx_pps`, which the manager computes
//! over its own exact interval. The window starts one second (warm-up) after the ports
//! started receiving and lasts `--seconds` minus that second; its rate is the mean of
//! its intervals (all of one length, so the mean is packets over time).
//!
//! **Start to first packet**, honestly: `onvm up` launches its NFs as soon as the
//! manager's control socket exists (it polls every 5 ms), one after the other, and
//! opens the ports only once every NF has registered and said it is ready, at which
//! the manager logs `ports receiving`. From then the generator's first burst goes to
//! the first NF in the same switch pass, so the NFs handle their first packets
//! microseconds (a doorbell wake-up) after that line; a stats sample before the window
//! must show both NFs with packets received, or the round fails (the first such sample
//! is kept as an upper bound, *launch → packets seen*, [`STATS_EVERY`] coarse). The
//! bench watches the socket appear itself and stamps every line of `onvm up`'s output
//! as it arrives, so:
//!
//! - *launch → registered*: socket seen → the later of the two NFs' `registered`
//!   events (for a container: engine calls to create and start it, the runtime, the
//!   process in it connecting and mapping the region);
//! - *launch → first packet*: socket seen → `ports receiving`;
//! - *command → first packet*: `onvm up` spawned → `ports receiving`, which adds what
//!   happens before the manager starts (for containers: connecting to the engine,
//!   checking the image, removing leftovers of an earlier manager).
//!
//! Each is measured from outside, in the same way for processes and containers, to
//! within the arrival of a pipe line (well under a millisecond) plus the 5 ms socket
//! poll of `onvm up`, which both sides pay alike.
//!
//! The group needs a Docker engine (`DOCKER_HOST`, else /var/run/docker.sock) and says
//! so when there is none; it is not part of a plain `onvm bench`. The image is built
//! from the running binary (`onvm/nfs:bench`) unless `--image` names one, so both sides
//! run the same code.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;
use onvm_container::Engine;
use onvm_container::image::{self, ImageSpec};
use serde::Serialize;

/// The group's name: `--only` selects it when it starts with this.
pub const GROUP: &str = "container";

/// The scenario's name in the table and the JSON.
const NAME: &str = "container-chain2-64B";

/// The image built when `--image` is not given.
const DEFAULT_TAG: &str = "onvm/nfs:bench";

/// Stats interval of `onvm up` (seconds): the window is measured in these.
const STATS_EVERY: f64 = 0.25;

/// Warm-up after the ports start receiving, not measured.
const WARM_UP: Duration = Duration::from_secs(1);

/// The manager's core and the NFs' core (see the module doc).
const MGR_CORE: usize = 0;
const NF_CORE: usize = 1;

/// Time `onvm up` gets to start its NFs before the measured run (its `--run-for`
/// counts from the manager's start).
const LAUNCH_ALLOWANCE: f64 = 3.0;

/// What the issue asks of the container chain against the bare one.
const GOAL: f64 = 0.95;

/// Options of the container group (`onvm bench --only container`).
#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// With `--only container`: the image of the NFs, one that runs the built-in NFs
    /// (default: build `onvm/nfs:bench` from this binary).
    #[arg(long)]
    pub image: Option<String>,
    /// With `--only container`: rounds of each side (bare and container, interleaved).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
}

/// Whether `--only` selects this group.
pub fn selected(only: Option<&str>) -> bool {
    only.is_some_and(|o| o.starts_with(GROUP))
}

/// How the two NFs run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Bare,
    Container,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::Container => "container",
        }
    }
}

/// One round.
#[derive(Clone, Debug, Serialize)]
struct Round {
    /// `container-chain2-64B/bare` or `/container`.
    name: String,
    mode: Mode,
    /// 1-based, per mode.
    round: usize,
    /// Million packets per second out of port 1 over the window.
    mpps: f64,
    /// Stats intervals in the window.
    intervals: usize,
    /// CPU time both NFs used over the window per packet out of port 1 (ns): the cost
    /// of the data path, whatever share of the core the scheduler gave them.
    #[serde(skip_serializing_if = "Option::is_none")]
    nf_ns_per_packet: Option<f64>,
    nfs: usize,
    frame: usize,
    /// Socket seen → the later NF's `registered`.
    launch_to_registered_ms: f64,
    /// Socket seen → `ports receiving` (first packets to the chain).
    launch_to_first_packet_ms: f64,
    /// `onvm up` spawned → `ports receiving`.
    command_to_first_packet_ms: f64,
    /// Socket seen → the first stats line showing both NFs with packets: an upper
    /// bound of launch → first packet, [`STATS_EVERY`] coarse.
    launch_to_packets_seen_ms: f64,
    /// Socket seen → the later container's start call returned (containers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    launch_to_started_ms: Option<f64>,
    /// Inter-core ping-pong just before the round (the VM's mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_rtt_ns: Option<u64>,
    /// The 1-minute load average at the round's end (this round's three busy threads
    /// included).
    #[serde(skip_serializing_if = "Option::is_none")]
    load: Option<f64>,
    /// CPU time used by everything but this round (`onvm up`, its NFs, Docker's
    /// containers, the bench) during it, in cores: what else wanted the two cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    others_cores: Option<f64>,
}

/// The medians of both sides.
#[derive(Clone, Debug, Serialize)]
struct Summary {
    name: String,
    /// The container chain's median, like every record's `mpps`.
    mpps: f64,
    bare_mpps: f64,
    container_mpps: f64,
    /// container / bare (issue 13: at least 0.95).
    ratio: f64,
    /// Medians of [`Round::nf_ns_per_packet`] (NaN, `null` in JSON, where unread).
    bare_nf_ns_per_packet: f64,
    container_nf_ns_per_packet: f64,
    rounds: usize,
    nfs: usize,
    frame: usize,
    bare_launch_to_first_packet_ms: f64,
    container_launch_to_first_packet_ms: f64,
    bare_launch_to_registered_ms: f64,
    container_launch_to_registered_ms: f64,
    bare_command_to_first_packet_ms: f64,
    container_command_to_first_packet_ms: f64,
    image: String,
    /// Whether the bare NFs ran in a cgroup of the bench's (see [`BareCgroup`]).
    bare_cgroup: bool,
}

/// Run the group; its records for `--json` (every round, then the summary).
pub fn run(seconds: f64, a: &ContainerArgs) -> Result<Vec<serde_json::Value>, String> {
    if !(1..=100).contains(&a.rounds) {
        return Err(format!("--rounds {}: out of range, must be 1..=100", a.rounds));
    }
    let window = Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|s| s.checked_sub(WARM_UP))
        .filter(|w| w.as_secs_f64() >= 2.0 * STATS_EVERY)
        .ok_or_else(|| {
            format!(
                "--seconds {seconds}: the container group needs at least {} (1 s warm-up, then the window)",
                1.0 + 2.0 * STATS_EVERY
            )
        })?;
    let max_intervals = (window.as_secs_f64() / STATS_EVERY).round() as usize;
    let engine = Engine::connect(None).map_err(|e| format!("the container group needs a Docker engine: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the onvm binary: {e}"))?;
    let tag = match &a.image {
        Some(tag) => {
            match image::inspect(&engine, tag).map_err(|e| format!("image {tag}: {e}"))? {
                Some(true) => {}
                Some(false) => {
                    return Err(format!(
                        "image {tag} does not run the built-in NFs (build it with `onvm image build`)"
                    ));
                }
                None => {
                    return Err(format!(
                        "no image {tag} on {} (build it with `onvm image build --tag {tag}`)",
                        engine.endpoint()
                    ));
                }
            }
            say!("container bench: image {tag} (given; its onvm may not be this build)");
            tag.clone()
        }
        None => {
            let t = Instant::now();
            let spec = ImageSpec {
                binary: exe.clone(),
                tag: DEFAULT_TAG.into(),
                builtin: true,
                strip: true,
            };
            let built = image::build(&engine, &spec).map_err(|e| e.to_string())?;
            say!(
                "container bench: built {DEFAULT_TAG} ({:.1} MB) from {} in {:.1} s",
                built.size as f64 / 1e6,
                exe.display(),
                t.elapsed().as_secs_f64()
            );
            DEFAULT_TAG.into()
        }
    };
    say!(
        "{NAME}: gen:64B,1024flows -> simple_forward -> simple_forward -> null, shared cores, {} s per run \
         (1 s warm-up), rounds interleaved; engine {}",
        seconds,
        engine.endpoint()
    );
    say!(
        "{:<6} {:<10} {:>8} {:>10} {:>14} {:>16} {:>16} {:>10} {:>6}",
        "round",
        "mode",
        "Mpps",
        "NF ns/pkt",
        "launch->reg ms",
        "launch->1st pkt",
        "command->1st pkt",
        "probe ns",
        "others"
    );
    let cgroup = BareCgroup::create();
    match &cgroup {
        Ok(g) => say!(
            "bare NFs run in cgroup {} (cpu, cpuacct), weighed by the scheduler as Docker's are",
            g.name
        ),
        Err(e) => say!("bare NFs run in no cgroup of their own ({e}): with other load, compare `NF ns/pkt`"),
    }
    let dir = std::env::temp_dir().join(format!("onvm-bench-ct-{}", std::process::id()));
    let run_for = seconds + LAUNCH_ALLOWANCE;
    let mut rounds = Vec::new();
    for round in 1..=a.rounds {
        let order = if round % 2 == 1 {
            [Mode::Bare, Mode::Container]
        } else {
            [Mode::Container, Mode::Bare]
        };
        for mode in order {
            let image = (mode == Mode::Container).then_some((tag.as_str(), engine.endpoint()));
            let probe = super::pingpong_ns();
            let rundir = dir.join(format!("{}-{round}", mode.name()));
            let before = CpuUse::now();
            let result = one_round(&exe, &rundir, image, cgroup.as_ref().ok(), run_for, max_intervals);
            let others = CpuUse::now().and_then(|after| Some(after.others_since(&before?)));
            let _ = std::fs::remove_dir_all(&rundir);
            let m = result.map_err(|e| format!("{NAME} {} round {round}: {e}", mode.name()))?;
            let r = Round {
                name: format!("{NAME}/{}", mode.name()),
                mode,
                round,
                mpps: m.mpps,
                intervals: m.intervals,
                nf_ns_per_packet: m.nf_ns_per_packet,
                nfs: 2,
                frame: 64,
                launch_to_registered_ms: ms(m.registered - m.socket),
                launch_to_first_packet_ms: ms(m.receiving - m.socket),
                command_to_first_packet_ms: ms(m.receiving),
                launch_to_packets_seen_ms: ms(m.seen - m.socket),
                launch_to_started_ms: m.started.map(|s| ms(s.saturating_sub(m.socket))),
                probe_rtt_ns: probe,
                load: load_average(),
                others_cores: others,
            };
            say!(
                "{:<6} {:<10} {:>8.2} {:>10} {:>14.1} {:>16.1} {:>16.1} {:>10} {:>6}",
                round,
                mode.name(),
                r.mpps,
                r.nf_ns_per_packet.map_or_else(|| "-".into(), |n| format!("{n:.1}")),
                r.launch_to_registered_ms,
                r.launch_to_first_packet_ms,
                r.command_to_first_packet_ms,
                probe.map_or_else(|| "-".into(), |p| p.to_string()),
                others.map_or_else(|| "-".into(), |o| format!("{o:.2}"))
            );
            rounds.push(r);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let med = |mode: Mode, f: fn(&Round) -> f64| {
        median(rounds.iter().filter(|r| r.mode == mode).map(f).collect()).unwrap_or(f64::NAN)
    };
    let ns = |r: &Round| r.nf_ns_per_packet.unwrap_or(f64::NAN);
    let s = Summary {
        name: NAME.into(),
        mpps: med(Mode::Container, |r| r.mpps),
        bare_mpps: med(Mode::Bare, |r| r.mpps),
        container_mpps: med(Mode::Container, |r| r.mpps),
        ratio: med(Mode::Container, |r| r.mpps) / med(Mode::Bare, |r| r.mpps),
        bare_nf_ns_per_packet: med(Mode::Bare, ns),
        container_nf_ns_per_packet: med(Mode::Container, ns),
        rounds: a.rounds,
        nfs: 2,
        frame: 64,
        bare_launch_to_first_packet_ms: med(Mode::Bare, |r| r.launch_to_first_packet_ms),
        container_launch_to_first_packet_ms: med(Mode::Container, |r| r.launch_to_first_packet_ms),
        bare_launch_to_registered_ms: med(Mode::Bare, |r| r.launch_to_registered_ms),
        container_launch_to_registered_ms: med(Mode::Container, |r| r.launch_to_registered_ms),
        bare_command_to_first_packet_ms: med(Mode::Bare, |r| r.command_to_first_packet_ms),
        container_command_to_first_packet_ms: med(Mode::Container, |r| r.command_to_first_packet_ms),
        image: tag,
        bare_cgroup: cgroup.is_ok(),
    };
    for (mode, mpps, cpu, reg, first, cmd) in [
        (
            Mode::Bare,
            s.bare_mpps,
            s.bare_nf_ns_per_packet,
            s.bare_launch_to_registered_ms,
            s.bare_launch_to_first_packet_ms,
            s.bare_command_to_first_packet_ms,
        ),
        (
            Mode::Container,
            s.container_mpps,
            s.container_nf_ns_per_packet,
            s.container_launch_to_registered_ms,
            s.container_launch_to_first_packet_ms,
            s.container_command_to_first_packet_ms,
        ),
    ] {
        say!(
            "{:<6} {:<10} {:>8.2} {:>10.1} {:>14.1} {:>16.1} {:>16.1}",
            "median",
            mode.name(),
            mpps,
            cpu,
            reg,
            first,
            cmd
        );
    }
    say!(
        "container/bare: {:.3}x the rate ({}; issue 13 asks >= {GOAL}x), {:.3}x the NF CPU time per packet",
        s.ratio,
        if s.ratio >= GOAL { "met" } else { "NOT met" },
        s.container_nf_ns_per_packet / s.bare_nf_ns_per_packet
    );
    let mut out = Vec::new();
    for r in &rounds {
        out.push(serde_json::to_value(r).map_err(|e| e.to_string())?);
    }
    out.push(serde_json::to_value(&s).map_err(|e| e.to_string())?);
    Ok(out)
}

/// CPU time counters, to tell what else ran during a round.
#[derive(Clone, Copy, Debug)]
struct CpuUse {
    at: Instant,
    /// Busy time of every CPU (/proc/stat: all but idle and iowait).
    busy: Duration,
    /// This process's own time and that of its waited-for children (`onvm up` and the
    /// bare NFs it reaped).
    ours: Duration,
    /// Docker's containers (cgroup v1 cpuacct; zero where absent).
    containers: Duration,
}

/// Clock ticks of /proc (`USER_HZ`, 100 on Linux).
const TICK: Duration = Duration::from_millis(10);

impl CpuUse {
    fn now() -> Option<CpuUse> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let busy = busy_ticks(stat.lines().next()?)?;
        let me = std::fs::read_to_string("/proc/self/stat").ok()?;
        let ours = own_ticks(&me)?;
        let containers = std::fs::read_to_string("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map_or(Duration::ZERO, Duration::from_nanos);
        Some(CpuUse {
            at: Instant::now(),
            busy: TICK * busy,
            ours: TICK * ours,
            containers,
        })
    }

    /// Cores' worth of CPU time used since `before` by anything else.
    fn others_since(&self, before: &CpuUse) -> f64 {
        let all = self.busy.saturating_sub(before.busy);
        let ours = self.ours.saturating_sub(before.ours) + self.containers.saturating_sub(before.containers);
        all.saturating_sub(ours).as_secs_f64() / self.at.duration_since(before.at).as_secs_f64()
    }
}

/// Busy ticks from /proc/stat's `cpu` line: user nice system idle iowait irq softirq
/// steal …, all but idle and iowait (guest time is already in user).
fn busy_ticks(line: &str) -> Option<u32> {
    let f: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let sum = f.get(..8)?.iter().sum::<u64>() - f[3] - f[4];
    u32::try_from(sum).ok()
}

/// utime + stime + cutime + cstime from /proc/PID/stat (fields 14–17, after the
/// command name in parentheses, which may hold spaces).
fn own_ticks(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = f
        .get(11..15)?
        .iter()
        .map(|x| x.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    u32::try_from(t).ok()
}

/// The first field of /proc/loadavg.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What one run of `onvm up` showed; times since it was spawned.
#[derive(Debug)]
struct Measured {
    mpps: f64,
    intervals: usize,
    nf_ns_per_packet: Option<f64>,
    socket: Duration,
    registered: Duration,
    receiving: Duration,
    seen: Duration,
    started: Option<Duration>,
}

/// The config of a round: `image` = (tag, engine endpoint) for containers.
///
/// `bare` = (the onvm binary, a cgroup name) puts bare NFs in that cgroup (cpu and
/// cpuacct, v1) through `sh -c 'echo $$ > …/tasks; exec "$@"'` before they become
/// `onvm nf simple-forward` as `onvm up` would start them.
fn config_text(socket: &Path, image: Option<(&str, &str)>, bare: Option<(&Path, &str)>) -> String {
    let mut manager = format!(
        "[manager]\nsocket = {:?}\nports = [\"gen:64B,1024flows\", \"null\"]\nshared_cores = true\n",
        socket.display().to_string()
    );
    let nf = |name: &str, service: u16| {
        let mut e = format!("[[nfs]]\nname = {name:?}\nservice = \"fwd{service}\"\n");
        if let Some((tag, _)) = image {
            e.push_str(&format!("image = {tag:?}\n"));
        } else if let Some((exe, group)) = bare {
            let join =
                format!("for c in cpu cpuacct; do echo $$ > {CGROUPS}/$c/{group}/tasks || exit 1; done; exec \"$@\"");
            let args: Vec<String> = [
                "-c",
                &join,
                "sh",
                &exe.display().to_string(),
                "nf",
                "--service",
                &service.to_string(),
                "--tag",
                name,
                "--shared-core",
                "--socket",
                &socket.display().to_string(),
                "simple-forward",
            ]
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
            e.push_str(&format!("binary = \"/bin/sh\"\nargs = [{}]\n", args.join(", ")));
        }
        e
    };
    if let Some((_, endpoint)) = image {
        manager.push_str(&format!("docker = {endpoint:?}\n"));
    }
    format!(
        "{manager}\n[services]\nfwd1 = 1\nfwd2 = 2\n\n{}\n{}\n\
         [[chains]]\nname = \"bench\"\nchain = [\"fwd1\", \"fwd2\", \"out:1\"]\nin_port = 0\n",
        nf("simple_forward", 1),
        nf("simple_forward", 2)
    )
}

/// Where cgroup v1 hierarchies are mounted.
const CGROUPS: &str = "/sys/fs/cgroup";

/// A cgroup (cpu and cpuacct, v1) for the bare NFs, so that the scheduler weighs them
/// as it weighs Docker's: removed on drop.
struct BareCgroup {
    name: String,
}

impl BareCgroup {
    fn create() -> Result<BareCgroup, String> {
        let name = format!("onvm-bench-{}", std::process::id());
        let g = BareCgroup { name };
        for c in ["cpu", "cpuacct"] {
            let dir = Path::new(CGROUPS).join(c).join(&g.name);
            std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(g)
    }

    fn usage_file(&self) -> std::path::PathBuf {
        Path::new(CGROUPS)
            .join("cpuacct")
            .join(&self.name)
            .join("cpuacct.usage")
    }
}

impl Drop for BareCgroup {
    fn drop(&mut self) {
        for c in ["cpu", "cpuacct"] {
            let _ = std::fs::remove_dir(Path::new(CGROUPS).join(c).join(&self.name));
        }
    }
}

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// Run `onvm up` once in `dir` and measure it.
fn one_round(
    exe: &Path,
    dir: &Path,
    image: Option<(&str, &str)>,
    bare: Option<&BareCgroup>,
    run_for: f64,
    max_intervals: usize,
) -> Result<Measured, String> {
    // The manager creates the socket's own folder (0750, of the NF image's group).
    let socket = dir.join("run/onvm.sock");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let cfg = dir.join("up.toml");
    std::fs::write(&cfg, config_text(&socket, image, bare.map(|g| (exe, g.name.as_str()))))
        .map_err(|e| format!("cannot write {}: {e}", cfg.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("up")
        .arg(&cfg)
        .args(["--stats", "csv", "--stats-every", &STATS_EVERY.to_string()])
        .args(["--run-for", &run_for.to_string()])
        .args(["--mgr-core", &MGR_CORE.to_string(), "--nf-cores", &NF_CORE.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    // A child inherits the CPU affinity of the thread that forks it.
    let mut child = std::thread::spawn(move || {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: NF_CORE }) {
            return Err(format!("cannot pin to core {NF_CORE} (the group needs cores 0 and 1)"));
        }
        cmd.spawn().map_err(|e| format!("cannot run onvm up: {e}"))
    })
    .join()
    .map_err(|_| "the thread starting onvm up panicked".to_string())??;
    let (tx, rx) = mpsc::channel::<(Duration, Stream, String)>();
    let mut readers = Vec::new();
    let pipes: [(Option<Box<dyn std::io::Read + Send>>, Stream); 2] = [
        (child.stdout.take().map(|p| Box::new(p) as _), Stream::Out),
        (child.stderr.take().map(|p| Box::new(p) as _), Stream::Err),
    ];
    for (pipe, which) in pipes {
        let Some(pipe) = pipe else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send((t0.elapsed(), which, line)).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let deadline = Duration::from_secs_f64(run_for) + Duration::from_secs(60);
    let mut socket_seen = None;
    let usage = match (image, bare) {
        (Some(_), _) => Some(Path::new(DOCKER_CPUACCT).to_path_buf()),
        (None, Some(g)) => Some(g.usage_file()),
        (None, None) => None,
    };
    let mut nf_cpu = NfCpu::new(child.id(), usage);
    let status = loop {
        if socket_seen.is_none() && socket.exists() {
            socket_seen = Some(t0.elapsed());
        }
        if socket_seen.is_some() {
            nf_cpu.read(t0.elapsed());
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if t0.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("onvm up did not end within {deadline:?}; killed"));
            }
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for onvm up: {e}")),
        }
        std::thread::sleep(if socket_seen.is_none() {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(20)
        });
    };
    // NF processes share the pipes; they are gone once `onvm up` is, but do not wait
    // on a straggler forever.
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while let Ok(l) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        lines.push(l);
    }
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    // For errors: the end of what `onvm up` said, without its stats lines.
    let tail = || {
        let text: Vec<&str> = lines
            .iter()
            .map(|(_, _, l)| l.as_str())
            .filter(|l| !l.starts_with('#') && parse_csv(l).is_none())
            .collect();
        let from = text.len().saturating_sub(40);
        text[from..].join("\n")
    };
    if !status.success() {
        return Err(format!("onvm up failed ({status}):\n{}", tail()));
    }
    let socket = socket_seen.ok_or_else(|| format!("the control socket never appeared:\n{}", tail()))?;
    let events = Events::read(
        lines
            .iter()
            .filter(|l| l.1 == Stream::Err)
            .map(|(t, _, l)| (*t, l.as_str())),
    );
    let samples = samples(
        lines
            .iter()
            .filter(|l| l.1 == Stream::Out)
            .map(|(t, _, l)| (*t, l.as_str())),
    );
    let receiving = events
        .receiving
        .ok_or_else(|| format!("the manager never logged `ports receiving`:\n{}", tail()))?;
    if events.short.is_some() {
        return Err(format!("not every NF came up before the ports started:\n{}", tail()));
    }
    let want_containers = usize::from(image.is_some()) * 2;
    if events.registered.len() != 2 || events.in_containers != want_containers {
        return Err(format!(
            "expected 2 NFs registered, {want_containers} of them in containers; saw {} and {}:\n{}",
            events.registered.len(),
            events.in_containers,
            tail()
        ));
    }
    // Evidence of the first packets: before the window, a sample shows both NFs with
    // packets received.
    let from = receiving + WARM_UP + Duration::from_secs_f64(STATS_EVERY);
    let seen = packets_seen(&samples, receiving)
        .filter(|&at| at < from)
        .ok_or_else(|| {
            let shown: Vec<_> = samples.iter().take(10).map(|s| (s.at, &s.nf_rx)).collect();
            format!(
                "no stats showed both NFs with packets within the warm-up (ports receiving at {receiving:?}; \
                 (arrival, [(instance, rx)]) of the first samples: {shown:?}):\n{}",
                tail()
            )
        })?;
    let (mpps, intervals) = window_rate(&samples, from, max_intervals)
        .ok_or_else(|| format!("no full stats interval after the warm-up:\n{}", tail()))?;
    let nf_ns_per_packet = cpu_per_packet(&samples, &nf_cpu.readings, from, max_intervals);
    Ok(Measured {
        mpps,
        intervals,
        nf_ns_per_packet,
        socket,
        registered: events.registered.iter().copied().max().unwrap_or(receiving),
        receiving,
        seen,
        started: events.started.iter().copied().max(),
    })
}

/// The NFs' CPU time, read every poll while they run: bare NFs from /proc (the
/// children of `onvm up`), containers from Docker's cgroup (cpuacct, v1).
struct NfCpu {
    up: u32,
    /// The cpuacct usage file of the NFs' cgroup (Docker's, or the bench's for bare
    /// NFs); `None`: bare NFs read from /proc.
    cgroup: Option<std::path::PathBuf>,
    /// Each bare NF's latest utime + stime.
    bare: std::collections::BTreeMap<u32, Duration>,
    /// Docker's cgroup usage when the round started.
    base: Option<Duration>,
    /// (when, NF CPU time so far).
    readings: Vec<(Duration, Duration)>,
}

const DOCKER_CPUACCT: &str = "/sys/fs/cgroup/cpuacct/docker/cpuacct.usage";

fn cgroup_cpu(usage: &Path) -> Option<Duration> {
    let t = std::fs::read_to_string(usage).ok()?;
    t.trim().parse().ok().map(Duration::from_nanos)
}

impl NfCpu {
    fn new(up: u32, cgroup: Option<std::path::PathBuf>) -> NfCpu {
        NfCpu {
            up,
            base: cgroup.as_deref().and_then(cgroup_cpu),
            cgroup,
            bare: Default::default(),
            readings: Vec::new(),
        }
    }

    fn read(&mut self, at: Duration) {
        let total = if let Some(usage) = &self.cgroup {
            match (self.base, cgroup_cpu(usage)) {
                (Some(b), Some(now)) => now.saturating_sub(b),
                _ => return,
            }
        } else {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.up)) else {
                return;
            };
            for task in tasks.flatten() {
                let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                for pid in kids.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
                    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    if let Some(t) = own_ticks(&stat) {
                        self.bare.insert(pid, TICK * t);
                    }
                }
            }
            self.bare.values().sum()
        };
        self.readings.push((at, total));
    }
}

/// NF CPU time per packet out of port 1 (ns) over the window of [`window_rate`]: from
/// the last sample before it to its last one, each matched with the CPU reading taken
/// closest to its arrival.
fn cpu_per_packet(samples: &[Sample], readings: &[(Duration, Duration)], from: Duration, max: usize) -> Option<f64> {
    let first = samples.iter().position(|s| s.at >= from)?;
    let start = samples.get(first.checked_sub(1)?)?;
    let end = samples[first..].iter().take(max).next_back()?;
    let near = |at: Duration| readings.iter().min_by_key(|(t, _)| t.abs_diff(at)).map(|&(_, cpu)| cpu);
    let cpu = near(end.at)?.checked_sub(near(start.at)?)?;
    let packets = end.port1_tx.checked_sub(start.port1_tx).filter(|&p| p > 0)?;
    Some(cpu.as_secs_f64() * 1e9 / packets as f64)
}

/// The manager's and `onvm up`'s events that the round needs, with their arrival times.
#[derive(Debug, Default, PartialEq)]
struct Events {
    /// Each NF's `registered`.
    registered: Vec<Duration>,
    /// How many of them named a container.
    in_containers: usize,
    /// `ports receiving`.
    receiving: Option<Duration>,
    /// `only N of M NFs running …; ports start anyway`.
    short: Option<Duration>,
    /// Each container's `started (container …)` from `onvm up`.
    started: Vec<Duration>,
}

impl Events {
    /// Lines are matched by their text wherever it starts: bare NFs write to the same
    /// stderr, and a line of theirs can land between `onvm mgr: ` and the rest.
    fn read<'a>(lines: impl Iterator<Item = (Duration, &'a str)>) -> Events {
        let mut e = Events::default();
        for (at, line) in lines {
            if let Some(k) = line.find("NF \"")
                && line[k..].contains("\" registered: instance ")
            {
                e.registered.push(at);
                e.in_containers += usize::from(line[k..].contains(", container "));
            } else if line.ends_with("ports receiving") {
                e.receiving.get_or_insert(at);
            } else if line.ends_with("ports start anyway") {
                e.short.get_or_insert(at);
            } else if line.contains("onvm up: NF ") && line.contains(" started (container ") {
                e.started.push(at);
            }
        }
        e
    }
}

/// One stats interval of `--stats csv`, as it arrived.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    at: Duration,
    /// Port 1's `tx_pps` over the interval.
    port1_tx_pps: u64,
    /// Port 1's `tx` so far.
    port1_tx: u64,
    /// (instance, rx so far) of each NF.
    nf_rx: Vec<(u16, u64)>,
}

/// One line of `--stats csv`.
#[derive(Debug, PartialEq)]
enum CsvRow {
    /// `ts,port,rx,rx_pps,tx,tx_pps,rx_drop,tx_drop,errors`.
    Port { no: u16, tx: u64, tx_pps: u64 },
    /// `ts,tag,instance,service,core,parent,state,children,rx,…`.
    Nf { id: u16, rx: u64 },
}

fn parse_csv(line: &str) -> Option<CsvRow> {
    if line.starts_with('#') {
        return None;
    }
    let f: Vec<&str> = line.split(',').collect();
    if f.len() >= 9
        && let Ok(no) = f[1].parse::<u16>()
    {
        return Some(CsvRow::Port {
            no,
            tx: f[4].parse().ok()?,
            tx_pps: f[5].parse().ok()?,
        });
    }
    if f.len() >= 12 {
        return Some(CsvRow::Nf {
            id: f[2].parse().ok()?,
            rx: f[8].parse().ok()?,
        });
    }
    None
}

/// The intervals of `--stats csv` output: each begins with port 0's line.
fn samples<'a>(lines: impl Iterator<Item = (Duration, &'a str)>) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    for (at, line) in lines {
        match parse_csv(line) {
            Some(CsvRow::Port { no: 0, .. }) => out.push(Sample {
                at,
                ..Sample::default()
            }),
            Some(CsvRow::Port { no: 1, tx, tx_pps }) => {
                if let Some(s) = out.last_mut() {
                    s.port1_tx_pps = tx_pps;
                    s.port1_tx = tx;
                }
            }
            Some(CsvRow::Nf { id, rx }) => {
                if let Some(s) = out.last_mut() {
                    s.nf_rx.push((id, rx));
                }
            }
            Some(CsvRow::Port { .. }) | None => {}
        }
    }
    out
}

/// When the first sample after `after` arrived that shows two NFs, both with packets.
fn packets_seen(samples: &[Sample], after: Duration) -> Option<Duration> {
    samples
        .iter()
        .find(|s| s.at > after && s.nf_rx.len() == 2 && s.nf_rx.iter().all(|&(_, rx)| rx > 0))
        .map(|s| s.at)
}

/// Mean port-1 rate (Mpps) of the first `max` intervals that ended at or after
/// `from`, and how many there were.
fn window_rate(samples: &[Sample], from: Duration, max: usize) -> Option<(f64, usize)> {
    let w: Vec<u64> = samples
        .iter()
        .filter(|s| s.at >= from)
        .take(max)
        .map(|s| s.port1_tx_pps)
        .collect();
    if w.is_empty() {
        return None;
    }
    Some((w.iter().sum::<u64>() as f64 / w.len() as f64 / 1e6, w.len()))
}

/// The median (mean of the middle two for an even count); `None` when empty or NaN.
fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() || v.iter().any(|x| x.is_nan()) {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn csv_lines_split_into_intervals_with_port1_rate_and_nf_counts() {
        // As the manager prints them (onvm_mgr::stats::csv_lines), header first.
        let out = [
            (
                s(1),
                "#YYYY-MM-DD HH:MM:SS,nic_rx_pkts,nic_rx_pps,nic_tx_pkts,nic_tx_pps,nic_rx_drop,nic_tx_drop,nic_errors",
            ),
            (
                s(2),
                "#YYYY-MM-DD HH:MM:SS,nf_tag,instance_id,service_id,core,parent,state,children_cnt,rx,tx",
            ),
            (s(250), "2026-12-04 21:00:00,0,100,400,0,0,0,0,0"),
            (s(250), "2026-12-04 21:00:00,1,0,0,0,0,0,0,0"),
            (
                s(251),
                "2026-12-04 21:00:00,simple_forward,1,1,-,0,running,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
            ),
            (
                s(251),
                "2026-12-04 21:00:00,simple_forward,2,2,-,0,running,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
            ),
            (s(300), "some NF's own output"),
            (s(500), "2026-12-04 21:00:00,0,5000000,19000000,0,0,0,0,0"),
            (s(500), "2026-12-04 21:00:00,1,0,0,4000000,16000000,0,0,0"),
            (
                s(501),
                "2026-12-04 21:00:00,simple_forward,1,1,-,0,running,0,4100000,4100000,0,0,0,0,0,0,0,0,0,0,0,0,0,0",
            ),
            (
                s(501),
                "2026-12-04 21:00:00,simple_forward,2,2,-,0,running,0,4000000,4000000,0,0,0,0,0,0,0,0,0,0,0,0,0,0,container abc",
            ),
        ];
        let v = samples(out.into_iter());
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].at, s(250));
        assert_eq!(v[0].nf_rx, vec![(1, 0), (2, 0)]);
        assert_eq!((v[1].port1_tx_pps, v[1].port1_tx), (16_000_000, 4_000_000));
        assert_eq!(v[1].nf_rx, vec![(1, 4_100_000), (2, 4_000_000)]);
        assert_eq!(parse_csv("a,b"), None);
        assert_eq!(parse_csv("ts,3,x,y"), None);
    }

    #[test]
    fn the_window_starts_after_warm_up_and_holds_at_most_max_intervals() {
        let v: Vec<Sample> = (1..=10)
            .map(|k| Sample {
                at: s(250 * k),
                port1_tx_pps: k * 1_000_000,
                port1_tx: 0,
                nf_rx: vec![],
            })
            .collect();
        // Intervals ending at 1000, 1250, 1500 ms: 4, 5, 6 Mpps.
        assert_eq!(window_rate(&v, s(1000), 3), Some((5.0, 3)));
        // Fewer left than asked for: what there is.
        assert_eq!(window_rate(&v, s(2250), 8), Some((9.5, 2)));
        assert_eq!(window_rate(&v, s(2600), 8), None);
    }

    #[test]
    fn packets_are_seen_once_a_sample_shows_both_nfs_with_some() {
        let at = |ms, nf_rx| Sample {
            at: s(ms),
            port1_tx_pps: 0,
            port1_tx: 0,
            nf_rx,
        };
        let v = vec![
            at(100, vec![(1, 5), (2, 5)]),
            at(250, vec![(1, 0), (2, 0)]),
            at(500, vec![(1, 9), (2, 0)]),
            at(750, vec![(1, 20), (2, 3)]),
        ];
        // Only samples after the ports opened count.
        assert_eq!(packets_seen(&v, s(200)), Some(s(750)));
        assert_eq!(packets_seen(&v, s(800)), None);
        assert_eq!(packets_seen(&[at(300, vec![(1, 1)])], s(0)), None);
    }

    #[test]
    fn events_are_read_from_the_manager_and_onvm_up() {
        let err = [
            (s(10), "onvm mgr: port 0: gen:64B,1024flows"),
            (
                s(400),
                "onvm up: NF simple_forward#0 started (container onvm-abc-simple_forward-0 0123456789ab)",
            ),
            (
                s(450),
                "onvm mgr: NF \"simple_forward\" registered: instance 1, service 1, core shared, container 0123456789ab",
            ),
            (
                s(800),
                "onvm mgr: NF \"simple_forward\" registered: instance 2, service 2, core shared",
            ),
            (s(801), "onvm mgr: ports receiving"),
            (s(900), "onvm mgr: ports receiving"),
        ];
        let e = Events::read(err.into_iter());
        assert_eq!(e.registered, vec![s(450), s(800)]);
        assert_eq!(e.in_containers, 1);
        assert_eq!(e.receiving, Some(s(801)));
        assert_eq!(e.started, vec![s(400)]);
        assert_eq!(e.short, None);
        // A bare NF's line between the manager's prefix and the rest of its line.
        let torn = Events::read(
            [
                (s(1), "onvm mgr: simple-forward: instance 2 of service 2 on core 1"),
                (s(2), "NF \"simple-forward\" registered: instance 2, service 2, core 1"),
                (s(3), "onvm mgr: ports receiving"),
            ]
            .into_iter(),
        );
        assert_eq!((torn.registered, torn.receiving), (vec![s(2)], Some(s(3))));
        let short =
            Events::read([(s(5), "onvm mgr: only 1 of 2 NFs running after 10s; ports start anyway")].into_iter());
        assert_eq!(short.short, Some(s(5)));
    }

    #[test]
    fn nf_cpu_per_packet_over_the_window() {
        let v: Vec<Sample> = (1..=6)
            .map(|k| Sample {
                at: s(250 * k),
                port1_tx: k * 1_000_000,
                ..Sample::default()
            })
            .collect();
        // CPU: 1 ms of it per 1 ms of time, read every 20 ms.
        let cpu: Vec<(Duration, Duration)> = (0..100).map(|k| (s(20 * k), s(20 * k))).collect();
        // Window from 750 ms, two intervals: 500 → 1000 ms, 2M packets, 500 ms of CPU
        // (readings at 500 and 1000 ms).
        assert_eq!(cpu_per_packet(&v, &cpu, s(750), 2), Some(250.0));
        // No sample before the window: no start.
        assert_eq!(cpu_per_packet(&v, &cpu, s(0), 2), None);
        assert_eq!(cpu_per_packet(&v, &[], s(750), 2), None);
    }

    #[test]
    fn cpu_time_is_read_from_proc() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        assert_eq!(busy_ticks("cpu  100 20 30 5000 7 0 4 1 0 0"), Some(155));
        assert_eq!(busy_ticks("cpu0 1 2 3 4 5 6 7 8"), None);
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime stime cutime cstime …
        let stat = "42 (onvm bench) S 1 42 42 0 -1 4194560 10 20 0 0 300 40 5000 600 20 0 3 0";
        assert_eq!(own_ticks(stat), Some(5940));
        assert_eq!(own_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![1.0, f64::NAN]), None);
    }

    #[test]
    fn the_config_runs_both_nfs_in_the_image_or_neither() {
        let bare = config_text(Path::new("/t/run/onvm.sock"), None, None);
        let cfg = onvm_proto::config::Config::from_toml(&bare).unwrap();
        assert_eq!(cfg.nfs.len(), 2);
        assert!(cfg.nfs.iter().all(|n| n.image.is_none()));
        assert_eq!(
            cfg.nfs.iter().map(|n| (n.name.as_str(), n.service)).collect::<Vec<_>>(),
            [("simple_forward", 1), ("simple_forward", 2)],
            "one NF for two services"
        );
        assert!(cfg.manager.shared_cores);
        let ct = config_text(
            Path::new("/t/run/onvm.sock"),
            Some(("onvm/nfs:bench", "unix:///tmp/dk/docker.sock")),
            None,
        );
        let cfg = onvm_proto::config::Config::from_toml(&ct).unwrap();
        assert!(cfg.nfs.iter().all(|n| n.image.as_deref() == Some("onvm/nfs:bench")));
        assert_eq!(cfg.manager.docker.as_deref(), Some("unix:///tmp/dk/docker.sock"));
        // Bare NFs in a cgroup: `sh` joins it, then becomes `onvm nf simple-forward`.
        let grouped = config_text(
            Path::new("/t/run/onvm.sock"),
            None,
            Some((Path::new("/x/onvm"), "onvm-bench-7")),
        );
        let cfg = onvm_proto::config::Config::from_toml(&grouped).unwrap();
        let n = &cfg.nfs[1];
        assert_eq!(n.binary.as_deref(), Some(Path::new("/bin/sh")));
        assert!(
            n.args[1].contains("/sys/fs/cgroup/$c/onvm-bench-7/tasks"),
            "{:?}",
            n.args
        );
        assert_eq!(
            n.args[2..],
            [
                "sh",
                "/x/onvm",
                "nf",
                "--service",
                "2",
                "--tag",
                "simple_forward",
                "--shared-core",
                "--socket",
                "/t/run/onvm.sock",
                "simple-forward"
            ]
        );
        assert!(selected(Some("container")) && selected(Some("container-chain2")));
        assert!(!selected(Some("chain2")) && !selected(None));
    }
}
