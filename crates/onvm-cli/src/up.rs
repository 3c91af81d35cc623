//! `onvm up FILE` and `onvm demo`: a manager plus supervised NF processes.
//!
//! The manager runs on a thread of this process; every NF is a child process (`onvm nf
//! NAME …`, or the config's own binary) that finds the manager through `ONVM_SOCKET`.
//! The supervisor restarts an NF that exits according to its restart policy; the
//! manager itself notices the exit through the NF's control socket and reclaims its
//! buffers before the restarted NF registers.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
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
ports = ["gen:64B,64flows,rate=1M", "pcapout:{OUT}"]
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

struct Supervised {
    spec: NfSpec,
    index: u16,
    child: Option<Child>,
    restarts: u32,
}

fn nf_command(spec: &NfSpec, shared: bool, socket: &std::path::Path) -> Result<Command, String> {
    let mut cmd = match &spec.binary {
        Some(bin) => Command::new(bin),
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot find the onvm binary: {e}"))?;
            let mut c = Command::new(exe);
            c.arg("nf");
            c.args(["--service", &spec.service.to_string(), "--tag", &spec.name]);
            if shared {
                c.arg("--shared-core");
            }
            c.args(["--socket", &socket.display().to_string()]);
            c.arg(spec.name.replace('_', "-"));
            c
        }
    };
    cmd.args(&spec.args);
    cmd.env("ONVM_SOCKET", socket);
    cmd.stdin(Stdio::null());
    Ok(cmd)
}

/// Run a config: manager thread + supervised NF processes, until the manager stops.
pub fn run_config(cfg: &Config, common: &CommonMgr, quiet_nfs: bool) -> CliResult {
    let mut opts = options(common, Some(cfg), &[])?;
    // Ports start once the config's NFs are all up, so no packet meets a missing chain.
    let expected: usize = cfg.nfs.iter().map(|n| usize::from(n.instances)).sum();
    if expected > 0 {
        opts.wait_for_nfs = Some((expected, Duration::from_secs(10)));
    }
    let socket = opts.socket.clone();
    let stop = crate::stop_on_signals();
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
    let mut nfs: Vec<Supervised> = Vec::new();
    for spec in &cfg.nfs {
        for index in 0..spec.instances {
            nfs.push(Supervised {
                spec: spec.clone(),
                index,
                child: None,
                restarts: 0,
            });
        }
    }
    let spawn = |s: &mut Supervised| -> Result<(), String> {
        let mut cmd = nf_command(&s.spec, cfg.manager.shared_cores, &socket)?;
        if quiet_nfs {
            cmd.stdout(Stdio::null());
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start NF {} #{}: {e}", s.spec.name, s.index))?;
        s.child = Some(child);
        Ok(())
    };
    for s in &mut nfs {
        spawn(s)?;
    }
    supervise(&mut nfs, &mgr, &stop, spawn);
    let report = mgr
        .join()
        .map_err(|_| "the manager thread panicked".to_string())?
        .map_err(|e| e.to_string())?;
    reap(&mut nfs);
    Ok(print_report(&report))
}

fn supervise(
    nfs: &mut [Supervised],
    mgr: &std::thread::JoinHandle<Result<onvm_mgr::Report, onvm_mgr::MgrError>>,
    stop: &Arc<AtomicBool>,
    mut spawn: impl FnMut(&mut Supervised) -> Result<(), String>,
) {
    while !mgr.is_finished() {
        for s in nfs.iter_mut() {
            let Some(child) = s.child.as_mut() else { continue };
            let Ok(Some(status)) = child.try_wait() else { continue };
            s.child = None;
            if stop.load(Ordering::Relaxed) || mgr.is_finished() {
                continue;
            }
            if s.spec.restart.should_restart(status.success(), s.restarts) {
                s.restarts += 1;
                eprintln!(
                    "onvm up: NF {} #{} exited ({status}); restart {} of its policy",
                    s.spec.name, s.index, s.restarts
                );
                if let Err(e) = spawn(s) {
                    eprintln!("onvm up: {e}");
                }
            } else {
                eprintln!(
                    "onvm up: NF {} #{} exited ({status}); not restarted",
                    s.spec.name, s.index
                );
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait for NF processes to finish after the manager told them to stop; kill stragglers.
fn reap(nfs: &mut [Supervised]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    for s in nfs.iter_mut() {
        if let Some(mut c) = s.child.take() {
            loop {
                match c.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

/// `onvm up FILE`.
pub fn run_file(a: UpArgs) -> CliResult {
    let cfg = load_config(&a.file, &[])?;
    run_config(&cfg, &a.common, false)
}

/// `onvm demo`.
pub fn demo(a: DemoArgs) -> CliResult {
    let dir = std::env::temp_dir().join(format!("onvm-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = dir.join("demo-out.pcap");
    let text = DEMO_CONFIG.replace("{OUT}", &out.display().to_string());
    if a.print_config {
        print!("{text}");
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = Config::from_toml(&text).map_err(|e| format!("embedded demo config: {e}"))?;
    println!(
        "onvm demo: generator (1 Mpps, 64 flows) -> basic_monitor -> simple_forward -> {}",
        out.display()
    );
    println!("onvm demo: running for {} s; live stats every second\n", a.seconds);
    let common = CommonMgr {
        socket: Some(a.socket.unwrap_or_else(|| dir.join("onvm.sock"))),
        stats: crate::mgr::StatsArg::Console,
        stats_every: 1.0,
        run_for: Some(a.seconds),
        exit_when_drained: None,
        nf_cores: None,
        mgr_core: None,
        sysfs_root: None,
        buffers: None,
        data_room: None,
        wait_for_nfs: None,
        openflow_listen: None,
        controllers: Vec::new(),
        fail_mode: None,
        datapath_id: None,
    };
    let code = run_config(&cfg, &common, true)?;
    println!(
        "onvm demo: packets sent out are in {} (try: tcpdump -r {} | head)",
        out.display(),
        out.display()
    );
    Ok(code)
}
