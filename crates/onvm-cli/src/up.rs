//! `onvm up FILE` and `onvm demo`: a manager plus supervised NF processes.
//!
//! The manager runs on a thread of this process; every NF is a child process (`onvm nf
//! NAME …`, or the config's own binary) that finds the manager through `ONVM_SOCKET`.
//! [`onvm_mgr::supervisor`] restarts an NF that exits according to its restart policy,
//! after a backoff; the manager itself notices the exit through the NF's control socket
//! and reclaims its buffers before the restarted NF registers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use onvm_container::{ContainerLauncher, Engine, Limits, NF_USER, NfLauncher};
use onvm_mgr::supervisor::{
    Command, Decision, GiveUp, NfInstance, NfOutput, Outcome, ProcessLauncher, Supervisor, SupervisorEvent,
};
use onvm_proto::config::{Config, NfSpec};

use crate::CliResult;
use crate::mgr::{CommonMgr, load_config, options, print_report};

/// `onvm up`.
#[derive(Args, Debug)]
pub struct UpArgs {
    /// The config file.
    pub file: PathBuf,
    #[command(flatten)]
    pub common: CommonMgr,
}

/// `onvm demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// Print the embedded config and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Control socket (default: a private one in the temp dir).
    #[arg(long)]
    pub socket: Option<PathBuf>,
}

/// The demo: a rate-limited generator feeds a monitor and a forwarder; packets leave on
/// port 1, a pcap file in the temp dir that tcpdump can read.
pub const DEMO_CONFIG: &str = r#"# onvm demo: generator -> basic_monitor -> simple_forward -> port 1
[manager]
ports = ["gen:64B,64flows,rate=1M", "pcapout:{OUT},count={KEEP}"]
shared_cores = true

[services]
monitor = 1
forward = 2

[[nfs]]
name = "basic_monitor"
service = "monitor"
args = ["--quiet"]
restart = "on-failure"

[[nfs]]
name = "simple_forward"
service = "forward"
restart = "on-failure"

[[chains]]
name = "demo"
chain = ["monitor", "forward", "out:1"]
in_port = 0
"#;

/// Check that every NF of `cfg` can be launched before anything starts: a built-in NF
/// must exist and take its `args` (also when it runs from an image of the `onvm`
/// binary), a `binary` must be an executable file (on `PATH` if it names no directory),
/// an `image` must be on the engine. Without this an unknown NF failed at launch, was
/// retried per its restart policy, and the run went on without it and still ended "OK"
/// (issue 12).
pub fn preflight(cfg: &Config, launcher: &mut NfLauncher) -> Result<(), String> {
    for spec in &cfg.nfs {
        let name = &spec.name;
        let nf = NfInstance {
            spec: spec.clone(),
            index: 0,
        };
        let builtin = match (&spec.image, &launcher.containers) {
            (Some(_), Some(c)) => launcher.check_image(&c.engine().clone(), &nf)?,
            (Some(_), None) => return Err(format!("NF {name:?} has an image but no Docker engine is connected")),
            (None, _) => spec.binary.is_none(),
        };
        if let Some(bin) = &spec.binary {
            executable(bin).map_err(|why| format!("NF {name:?}: binary {}: {why}", bin.display()))?;
        }
        if !builtin {
            continue;
        }
        let known = crate::nf::builtin_names();
        if !known.contains(&spec.name.replace('_', "-")) {
            let what = if spec.image.is_some() {
                "runs from an image of the onvm binary but is not a built-in NF"
            } else {
                "is neither a built-in NF nor has a `binary` or `image`"
            };
            return Err(format!(
                "NF {name:?} {what} (built-in: {})",
                known.join(", ").replace('-', "_")
            ));
        }
        // The very command line the NF will get, parsed as `onvm` would.
        let cmd = launcher.process.command(&nf);
        let argv = std::iter::once(std::ffi::OsStr::new("onvm")).chain(cmd.get_args());
        let refused = |why: &str| format!("NF {name:?}: its args {:?} are refused: {why}", spec.args);
        match <crate::Cli as clap::Parser>::try_parse_from(argv) {
            Err(e) => {
                let msg = e.to_string();
                return Err(refused(
                    msg.lines().next().unwrap_or_default().trim_start_matches("error: "),
                ));
            }
            Ok(crate::Cli { cmd: crate::Cmd::Nf(a) }) => crate::bounds::check_nf(&a).map_err(|e| refused(&e))?,
            Ok(_) => return Err(refused("not an `onvm nf` command line")),
        }
    }
    Ok(())
}

/// The container launcher for a config with `image` NFs (`None` without): connected to
/// its engine, granting the socket to the image user's group unless the config grants
/// another (which the containers then join), with the manager's NF cores as cpuset.
fn container_launcher(cfg: &Config, opts: &mut onvm_mgr::Options) -> Result<Option<ContainerLauncher>, String> {
    if cfg.nfs.iter().all(|n| n.image.is_none()) {
        return Ok(None);
    }
    let engine = Engine::connect(cfg.manager.docker.as_deref()).map_err(|e| e.to_string())?;
    let group = *opts.socket_access.group.get_or_insert(NF_USER);
    // The cores the manager will hand out to NFs: an NF's core is always in its cpuset.
    let cpuset = onvm_mgr::topology::Topology::read(&opts.sysfs_root)
        .ok()
        .and_then(|topo| {
            let nodes = onvm_mgr::placement::port_nodes(&topo, &opts.ports).ok()?;
            let place = onvm_mgr::placement::place(&topo, &nodes, opts.core, opts.nf_cores.as_deref()).ok()?;
            Some(onvm_mgr::topology::format_cpulist(&place.nf_cores))
        });
    let limits = Limits {
        cpuset,
        memory: Some(DEFAULT_CONTAINER_MEMORY),
        pids: Some(256),
    };
    Ok(Some(ContainerLauncher::new(
        std::sync::Arc::new(engine),
        opts.socket.clone(),
        Some(group),
        limits,
    )))
}

/// A container NF's memory limit unless its entry sets `memory`: NFs keep their packets
/// in the manager's region, so they need little of their own.
const DEFAULT_CONTAINER_MEMORY: u64 = 256 << 20;

/// Whether `bin` names an executable file, looked up on `PATH` as `Command` will when
/// it has no `/`.
fn executable(bin: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if bin.as_os_str().as_encoded_bytes().contains(&b'/') {
        return match std::fs::metadata(bin) {
            Err(e) => Err(format!("{e}")),
            Ok(m) if !m.is_file() => Err("not a file".into()),
            Ok(_) if !is_exec(bin) => Err("not executable".into()),
            Ok(_) => Ok(()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|d| is_exec(&d.join(bin))) {
        Ok(())
    } else {
        Err("no such executable on PATH".into())
    }
}

/// Run a config: manager thread + supervised NF processes, until the manager stops.
pub fn run_config(cfg: &Config, file: Option<&Path>, common: &CommonMgr, quiet_nfs: bool) -> CliResult {
    let mut opts = options(common, Some(cfg), &[])?;
    let process = ProcessLauncher {
        program: std::env::current_exe().map_err(|e| format!("cannot find the onvm binary: {e}"))?,
        socket: opts.socket.clone(),
        shared_cores: cfg.manager.shared_cores,
        stdout: if quiet_nfs { NfOutput::Null } else { NfOutput::Inherit },
    };
    let mut containers = container_launcher(cfg, &mut opts)?;
    if let Some(c) = containers.as_mut() {
        c.stdout = !quiet_nfs;
    }
    let mut launcher = NfLauncher::new(process, containers.clone());
    preflight(cfg, &mut launcher)?;
    // Containers of a manager that died on this socket serve no one: they go first.
    if let Some(c) = &containers {
        let gone = c.remove_ours().map_err(|e| e.to_string())?;
        if !gone.is_empty() {
            onvm_mgr::stats::emit_err(format_args!(
                "onvm up: removed {} container(s) left by an earlier manager on this socket: {}\n",
                gone.len(),
                gone.join(", ")
            ));
        }
    }
    // Ports start once the config's NFs are all up, so no packet meets a missing chain.
    let expected: usize = cfg.nfs.iter().map(|n| usize::from(n.instances)).sum();
    if expected > 0 {
        opts.wait_for_nfs = Some((expected, Duration::from_secs(10)));
    }
    // A hung NF is killed here unless the config says otherwise: its restart policy
    // then brings it back, which a manager alone cannot do.
    opts.kill_hung |= cfg.manager.kill_hung.is_none();
    // Entries with `autoscale`: the manager asks this loop's supervisor for instances.
    for nf in &cfg.nfs {
        if let Some(policy) = nf.autoscale
            && let Some((name, _)) = cfg.services.iter().find(|(_, id)| **id == nf.service)
        {
            opts.autoscale.push(onvm_mgr::AutoscaleRule {
                service: nf.service,
                name: name.clone(),
                min: nf.instances,
                policy,
            });
        }
    }
    let socket = opts.socket.clone();
    let stop = crate::stop_on_signals();
    // SIGHUP reloads the file (scaling); taken from the start, so that an early one
    // cannot end `onvm up` with the signal's default action.
    let reload = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if file.is_some() {
        let _ = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone());
    }
    // The HTTP endpoint's NF stops, restarts and scaling come to this loop.
    let (to_supervisor, requests) = std::sync::mpsc::channel();
    opts.supervisor = Some(to_supervisor);
    let mgr_stop = stop.clone();
    let mgr = std::thread::spawn(move || onvm_mgr::run(opts, &mgr_stop));
    let t = Instant::now();
    while !socket.exists() {
        if mgr.is_finished() || t.elapsed() > Duration::from_secs(10) {
            return match mgr.join() {
                Ok(Err(e)) => Err(e.to_string()),
                _ => Err("the manager did not start".into()),
            };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut nfs = Supervisor::new(launcher);
    for spec in &cfg.nfs {
        for index in 0..spec.instances {
            let nf = NfInstance {
                spec: spec.clone(),
                index,
            };
            let label = nf.label();
            // On an error, dropping `nfs` kills the NFs already started.
            let started = nfs
                .add(nf, Instant::now())
                .map_err(|e| format!("cannot start NF {label}: {e}"))?;
            log(&started);
        }
    }
    let mut abandoned = 0u32;
    let mut running = cfg.clone();
    while !mgr.is_finished() {
        if stop.load(Ordering::Relaxed) {
            nfs.request_stop();
        }
        if let Some(path) = file
            && reload.swap(false, Ordering::Relaxed)
            && !stop.load(Ordering::Relaxed)
        {
            rescale(&mut nfs, &mut running, path);
        }
        while let Ok(r) = requests.try_recv() {
            let done = if stop.load(Ordering::Relaxed) {
                Err("stopping: no NF starts or stops on request now".into())
            } else {
                operate(&mut nfs, &mut running, r.command)
            };
            if let Ok(d) = &done {
                onvm_mgr::stats::emit_err(format_args!("onvm up: on request: {d}\n"));
            }
            let _ = r.reply.send(done);
        }
        for event in nfs.poll(Instant::now()) {
            log(&event);
            abandoned += u32::from(abandons_a_failed_nf(&event));
        }
        std::thread::sleep(POLL);
    }
    let report = mgr
        .join()
        .map_err(|_| "the manager thread panicked".to_string())?
        .map_err(|e| e.to_string())?;
    // The manager told every NF to stop and waited for them; what is left gets SIGTERM,
    // then SIGKILL after the grace period.
    for event in nfs.stop_all(STOP_GRACE) {
        log(&event);
    }
    // Every container was removed when its exit was seen; one that could not be is
    // removed now, so nothing of ours stays behind.
    if let Some(c) = &containers {
        match c.remove_ours() {
            Ok(gone) if !gone.is_empty() => onvm_mgr::stats::emit_err(format_args!(
                "onvm up: removed {} container(s) still there at the end: {}\n",
                gone.len(),
                gone.join(", ")
            )),
            Ok(_) => {}
            Err(e) => onvm_mgr::stats::emit_err(format_args!("onvm up: cannot clean up containers: {e}\n")),
        }
    }
    let code = print_report(&report);
    if abandoned > 0 {
        // Packets may all be accounted for, but the config did not run as written.
        onvm_mgr::stats::emit_err(format_args!(
            "onvm up: {abandoned} NF(s) failed and were not restarted (see above)\n"
        ));
        return Ok(ExitCode::FAILURE);
    }
    Ok(code)
}

/// SIGHUP: read the config file again and apply what can change while running, which is
/// each NF entry's `instances` (scaling a service up or down without touching its
/// other instances or any other NF). Any other change is reported and not applied.
fn rescale(nfs: &mut Supervisor<NfLauncher>, running: &mut Config, path: &Path) {
    let say = |m: std::fmt::Arguments<'_>| onvm_mgr::stats::emit_err(format_args!("onvm up: reload: {m}\n"));
    let new = match crate::mgr::load_config(path, &[]) {
        Ok(c) => c,
        Err(e) => return say(format_args!("{e}; nothing changed")),
    };
    let same_but_instances = |a: &NfSpec, b: &NfSpec| {
        NfSpec {
            instances: b.instances,
            ..a.clone()
        } == *b
    };
    let comparable = Config {
        nfs: running.nfs.clone(),
        ..new.clone()
    };
    if new.nfs.len() != running.nfs.len()
        || !new.nfs.iter().zip(&running.nfs).all(|(n, r)| same_but_instances(r, n))
        || comparable != *running
    {
        return say(format_args!(
            "only the `instances` of existing NF entries can change while running (restart onvm up for \
             anything else); nothing changed"
        ));
    }
    for (k, (n, r)) in new.nfs.iter().zip(running.nfs.iter_mut()).enumerate() {
        if n.instances == r.instances {
            continue;
        }
        say(format_args!(
            "NF entry {k} ({}): {} -> {} instance(s)",
            n.name, r.instances, n.instances
        ));
        let (events, result) = nfs.scale(r, n.instances, Instant::now());
        for e in &events {
            say(format_args!("{e}"));
        }
        if let Err(e) = result {
            say(format_args!("NF entry {k} ({}): cannot start an instance: {e}", n.name));
        }
        r.instances = n.instances;
    }
}

/// An operator's request from the HTTP endpoint: what was done, or why not.
fn operate(nfs: &mut Supervisor<NfLauncher>, running: &mut Config, c: Command) -> Result<String, String> {
    match c {
        Command::Stop(id) => nfs.stop_one(&id).map(|e| e.to_string()),
        Command::Restart(id) => nfs.restart_one(&id),
        Command::Scale { service, instances } => {
            let id = running.services.get(&service).copied();
            let mut serving = running.nfs.iter_mut().filter(|n| Some(n.service) == id);
            let (Some(entry), None) = (serving.next(), serving.next()) else {
                return Err(match id {
                    None => format!("no service {service:?} in the config"),
                    Some(_) => format!("service {service:?} is not served by exactly one NF entry of the config"),
                });
            };
            if instances == 0 {
                return Err("instances must be at least 1 (stop an instance to have none)".into());
            }
            let from = entry.instances;
            let (events, result) = nfs.scale(entry, instances, Instant::now());
            entry.instances = instances;
            for e in &events {
                log(e);
            }
            result
                .map(|()| format!("NF {} ({service}): {from} -> {instances} instance(s)", entry.name))
                .map_err(|e| format!("NF {} ({service}): cannot start an instance: {e}", entry.name))
        }
    }
}

/// An NF failed and its policy does not restart it (again): `onvm up` then ends with
/// a failure, even though it ran on with the NFs it had.
fn abandons_a_failed_nf(event: &SupervisorEvent) -> bool {
    match event {
        SupervisorEvent::Exited {
            exit,
            then: Decision::GiveUp(why),
            ..
        } => match why {
            GiveUp::MaxRestarts(_) => true,
            GiveUp::Never => exit.outcome() == Outcome::Failure,
            GiveUp::CleanExit | GiveUp::Stopping => false,
        },
        SupervisorEvent::LaunchFailed {
            then: Decision::GiveUp(GiveUp::MaxRestarts(_) | GiveUp::Never),
            ..
        } => true,
        _ => false,
    }
}

/// How often the supervisor looks at the NFs: exits are noticed and due restarts made
/// within this.
const POLL: Duration = Duration::from_millis(20);

/// How long NFs still running after the manager stopped get before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Print what the log has always shown: exits while running, and their consequence.
/// Starts, and exits while stopping (every NF's), are not news.
fn log(event: &SupervisorEvent) {
    match event {
        // A container's name and ID are news: they are how `docker` knows it.
        SupervisorEvent::Started { id, .. } if id.starts_with("container") => {
            onvm_mgr::stats::emit_err(format_args!("onvm up: {event}\n"))
        }
        SupervisorEvent::Started { .. }
        | SupervisorEvent::Exited {
            then: Decision::GiveUp(GiveUp::Stopping),
            ..
        } => {}
        _ => onvm_mgr::stats::emit_err(format_args!("onvm up: {event}\n")),
    }
}

/// `onvm up FILE`.
pub fn run_file(a: UpArgs) -> CliResult {
    let cfg = load_config(&a.file, &[])?;
    run_config(&cfg, Some(&a.file), &a.common, false)
}

/// `onvm demo`.
pub fn demo(a: DemoArgs) -> CliResult {
    remove_old_demos(&std::env::temp_dir());
    let dir = std::env::temp_dir().join(format!("onvm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join("demo-out.pcap");
    let text = DEMO_CONFIG
        .replace("{OUT}", &out.display().to_string())
        .replace("{KEEP}", &DEMO_CAPTURE_PACKETS.to_string());
    if a.print_config {
        onvm_mgr::stats::emit(format_args!("{text}"));
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = Config::from_toml(&text).map_err(|e| format!("embedded demo config: {e}"))?;
    onvm_mgr::stats::emit(format_args!(
        "onvm demo: generator (1 Mpps, 64 flows) -> basic_monitor -> simple_forward -> {}\n\
         onvm demo: running for {} s; live stats every second\n\n",
        out.display(),
        a.seconds
    ));
    let common = CommonMgr {
        socket: Some(a.socket.unwrap_or_else(|| dir.join("onvm.sock"))),
        socket_group: None,
        socket_uids: Vec::new(),
        stats: crate::mgr::StatsArg::Console,
        stats_every: 1.0,
        run_for: Some(a.seconds),
        exit_when_drained: None,
        profile: false,
        rx_threads: None,
        nf_queues: false,
        http: None,
        nf_cores: None,
        mgr_core: None,
        rx_cores: None,
        sysfs_root: None,
        buffers: None,
        data_room: None,
        wait_for_nfs: None,
        watchdog_ms: None,
        kill_hung: false,
        backpressure: false,
        nf_quota: None,
        openflow_listen: None,
        controllers: Vec::new(),
        fail_mode: None,
        datapath_id: None,
        ssl: Default::default(),
    };
    let code = run_config(&cfg, None, &common, true)?;
    onvm_mgr::stats::emit(format_args!(
        "onvm demo: the first {DEMO_CAPTURE_PACKETS} packets sent out are in {} (try: tcpdump -r {} | head); \
         the next demo removes it\n",
        out.display(),
        out.display()
    ));
    Ok(code)
}

/// Packets the demo's capture keeps (about 8 MB of 64-byte frames; a run sends
/// millions).
const DEMO_CAPTURE_PACKETS: u64 = 100_000;

/// Remove the folders earlier demos left in `tmp` (`onvm-demo-PID`), except those of a
/// demo still running, so demos do not pile captures up.
fn remove_old_demos(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix("onvm-demo-")) else {
            continue;
        };
        let running = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !running {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
