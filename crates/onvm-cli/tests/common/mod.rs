//! Helpers shared by the `onvm` integration tests: private temp dirs, child processes
//! whose output is read line by line (with the time each line arrived) and that are
//! killed and reaped whatever happens, polling with a timeout, and pcap files.
#![allow(dead_code)] // Each test binary uses a different part of this module.

pub mod docpage;
pub mod golden;
pub mod netns;
pub mod openflow;
pub mod ovs;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous limit for anything that should happen "soon".
pub const SOON: Duration = Duration::from_secs(15);

/// The `onvm` binary under test.
pub fn onvm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_onvm"))
}

/// Tests of one binary share 2 cores; the ones that busy-poll take turns.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Poll `cond` every few ms until it holds or `timeout` passes; whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A private directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("onvm-itest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the test's temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// The control socket of this test's manager.
    pub fn socket(&self) -> PathBuf {
        self.join("onvm.sock")
    }

    /// Write `text` to `name` in this dir; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        std::fs::write(&p, text).expect("write a test file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines of one output stream, each with the time it was read.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<(Instant, String)>>>);

impl Lines {
    fn follow(stream: impl Read + Send + 'static) -> (Lines, JoinHandle<()>) {
        let lines = Lines::default();
        let sink = lines.clone();
        let h = std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                sink.0.lock().unwrap().push((Instant::now(), line));
            }
        });
        (lines, h)
    }

    /// Everything so far, one string.
    pub fn text(&self) -> String {
        let v = self.0.lock().unwrap();
        v.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// The first line matching `pred`, with its arrival time.
    pub fn find(&self, pred: impl Fn(&str) -> bool) -> Option<(Instant, String)> {
        self.0.lock().unwrap().iter().find(|(_, l)| pred(l)).cloned()
    }

    /// How many lines match `pred`.
    pub fn count(&self, pred: impl Fn(&str) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|(_, l)| pred(l)).count()
    }

    /// Wait up to `timeout` for a line matching `pred`.
    pub fn wait(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<(Instant, String)> {
        let mut found = None;
        wait_for(timeout, || {
            found = self.find(&pred);
            found.is_some()
        });
        found
    }
}

/// A child process with piped, followed stdout and stderr; killed and reaped on drop.
pub struct Proc {
    pub name: String,
    child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Start `cmd` (stdin closed, stdout and stderr piped).
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let (stdout, ho) = Lines::follow(child.stdout.take().unwrap());
        let (stderr, he) = Lines::follow(child.stderr.take().unwrap());
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            readers: vec![ho, he],
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal (`TERM`, `INT`, `KILL`, ...) with kill(1).
    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// SIGKILL, returning the instant just before it was sent.
    pub fn kill(&mut self) -> Instant {
        let t = Instant::now();
        let _ = self.child.kill();
        t
    }

    /// Whether it has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_some()
    }

    /// Wait up to `timeout` for it to exit, then for its output to be read to the end;
    /// panics with its output if it does not exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if !wait_for(timeout, || self.exited()) {
            panic!(
                "{} did not exit within {timeout:?}\n--- stdout\n{}--- stderr\n{}",
                self.name,
                self.stdout.text(),
                self.stderr.text()
            );
        }
        for h in self.readers.drain(..) {
            let _ = h.join();
        }
        self.status.unwrap()
    }

    /// Wait for the exit and return its code (panics on death by signal).
    pub fn exit_code(&mut self, timeout: Duration) -> i32 {
        let st = self.wait_exit(timeout);
        st.code()
            .unwrap_or_else(|| panic!("{} died by a signal: {st:?}\n{}", self.name, self.output()))
    }

    /// Both streams, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "--- {} stdout\n{}--- {} stderr\n{}",
            self.name,
            self.stdout.text(),
            self.name,
            self.stderr.text()
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Send `sig` to `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill(1)");
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Run `cmd` to completion (up to [`SOON`]); the finished process.
pub fn run_to_end(name: &str, cmd: Command) -> Proc {
    let mut p = Proc::spawn(name, cmd);
    p.wait_exit(SOON);
    p
}

/// `onvm mgr` on `socket` with stats off, a small pool and these extra arguments;
/// returns once it listens.
pub fn start_mgr(socket: &Path, extra: &[&str]) -> Proc {
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "off", "--buffers", "4095", "--socket"])
        .arg(socket)
        .args(extra);
    let mut p = Proc::spawn("onvm mgr", cmd);
    let up = wait_for(SOON, || socket.exists() || p.exited());
    assert!(up && socket.exists(), "the manager did not start\n{}", p.output());
    p
}

/// `onvm up CONFIG` with stats off, a small pool and `socket`; returns once `nfs` NFs
/// have registered.
pub fn start_up(config: &Path, socket: &Path, nfs: usize) -> Proc {
    let mut cmd = onvm();
    cmd.arg("up")
        .arg(config)
        .args(["--stats", "off", "--buffers", "4095", "--socket"])
        .arg(socket);
    let up = Proc::spawn("onvm up", cmd);
    assert!(
        wait_for(SOON, || registered(&up) >= nfs),
        "{nfs} NF(s) did not register\n{}",
        up.output()
    );
    up
}

/// How many NF registrations a manager (or `onvm up`) has reported.
pub fn registered(p: &Proc) -> usize {
    p.stderr.count(|l| l.contains("registered: instance"))
}

/// `onvm nf --socket S --service N --tag TAG --shared-core [flags] KIND [args]`.
pub fn nf_command(socket: &Path, service: u16, tag: &str, flags: &[&str], kind_and_args: &[&str]) -> Command {
    let mut cmd = onvm();
    cmd.arg("nf")
        .arg("--socket")
        .arg(socket)
        .args(["--service", &service.to_string(), "--tag", tag, "--shared-core"])
        .args(flags)
        .args(kind_and_args);
    cmd
}

/// Start a `simple-forward` NF and wait until the manager reports it registered.
pub fn start_forwarder(mgr: &Proc, socket: &Path, service: u16, tag: &str) -> (Proc, String) {
    let nf = Proc::spawn(tag, nf_command(socket, service, tag, &[], &["simple-forward"]));
    let line = wait_registered(mgr, tag, &nf);
    (nf, line)
}

/// Wait for the manager's `NF "TAG" registered` event; the line.
pub fn wait_registered(mgr: &Proc, tag: &str, nf: &Proc) -> String {
    let needle = format!("NF {tag:?} registered");
    match mgr.stderr.wait(SOON, |l| l.contains(&needle)) {
        Some((_, l)) => l,
        None => panic!("{tag} did not register\n{}{}", mgr.output(), nf.output()),
    }
}

/// `examples/port-path.toml`: a `null:64B` port through one `fwd` (service 1) into a
/// `null` port.
pub const PORT_PATH: &str = include_str!("../../../../examples/port-path.toml");

/// SIGKILL the NF `nf` tagged `tag` and wait until the manager reports it died.
pub fn kill_nf(mgr: &Proc, nf: &mut Proc, tag: &str) {
    nf.signal("KILL");
    nf.wait_exit(SOON);
    let needle = format!("{tag:?}");
    assert!(
        mgr.stderr
            .wait(SOON, |l| l.contains(&needle) && l.contains("died"))
            .is_some(),
        "the manager did not report {tag} dead
{}",
        mgr.output()
    );
}

/// The `port N ...` line of the manager's final summary.
pub fn port_line(mgr: &Proc, n: u16) -> String {
    let out = mgr.stdout.text();
    out.lines()
        .find(|l| l.starts_with(&format!("port {n} ")))
        .unwrap_or_else(|| {
            panic!(
                "no port {n} line
{out}"
            )
        })
        .to_string()
}

/// The instance ID in a `NF "x" registered: instance N, ...` event.
pub fn instance_of(registered: &str) -> u16 {
    let rest = registered.split("instance ").nth(1).expect("an instance in the event");
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no instance number in {registered:?}"))
}

/// From the manager's summary, the `rx` of the NF tagged `tag` (first such line).
pub fn summary_rx(stdout: &str, tag: &str) -> Option<u64> {
    let prefix = format!("NF {tag} ");
    let line = stdout.lines().find(|l| l.starts_with(&prefix))?;
    field(line, "rx")
}

/// The number after `name ` in a `... name N ...` line.
pub fn field(line: &str, name: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == name {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// SIGTERM the manager; it must exit 0 with every packet accounted for.
pub fn stop_cleanly(mgr: &mut Proc) {
    mgr.signal("TERM");
    assert_eq!(mgr.exit_code(SOON), 0, "the manager failed\n{}", mgr.output());
    assert_conserved(mgr);
}

/// Assert the manager summary in `stdout` says every packet was accounted for.
pub fn assert_conserved(p: &Proc) {
    let out = p.stdout.text();
    let line = out
        .lines()
        .find(|l| l.starts_with("conservation:"))
        .unwrap_or_else(|| panic!("no conservation line\n{}", p.output()));
    assert!(line.starts_with("conservation: OK"), "{line}\n{}", p.output());
    assert!(line.contains("pool whole"), "{line}");
}

/// Write a classic pcap (Ethernet, microseconds) holding `frames`, the i-th stamped
/// `start + i µs`.
pub fn write_pcap(path: &Path, frames: &[Vec<u8>], start: Duration) {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let file = std::fs::File::create(path).expect("create a pcap");
    let header = PcapHeader {
        datalink: pcap_file::DataLink::ETHERNET,
        ..Default::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("write a pcap header");
    for (i, f) in frames.iter().enumerate() {
        let ts = start + Duration::from_micros(i as u64);
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .expect("write a pcap record");
    }
}

/// The frames of a classic pcap, in file order.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut r = pcap_file::pcap::PcapReader::new(file).expect("a pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("a whole pcap record");
        assert_eq!(p.data.len() as u32, p.orig_len, "a record cut by the snaplen");
        out.push(p.data.into_owned());
    }
    out
}

/// Distinct UDP frames: flow `i % flows`, lengths cycling over 60..=1514, the index in
/// the payload so that no two frames are equal.
pub fn distinct_udp_frames(n: usize, flows: u32) -> Vec<Vec<u8>> {
    udp_frames_up_to(n, flows, 1514)
}

/// Like [`distinct_udp_frames`], with lengths spread over 60..=`max_len` bytes.
pub fn udp_frames_up_to(n: usize, flows: u32, max_len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let len = 60 + (i * 97) % (max_len - 60 + 1);
            let tag = (i as u32).to_be_bytes();
            let spec = onvm_packet::UdpSpec {
                payload: &tag,
                frame_len: Some(len),
                ..onvm_packet::FlowTuple::for_index(i as u32 % flows).udp_spec()
            };
            spec.to_vec().expect("a valid UDP frame")
        })
        .collect()
}

/// The pids of processes whose argument list contains every group of `groups` as
/// consecutive arguments (e.g. `&[&["--service", "2"], &["--socket", "/x/onvm.sock"]]`).
pub fn pids_with_args(groups: &[&[&str]]) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let has = |g: &[&str]| args.windows(g.len()).any(|w| w.iter().zip(g).all(|(a, b)| a == b));
        if groups.iter().all(|g| has(g)) {
            pids.push(pid);
        }
    }
    pids
}

/// On drop, SIGKILLs every process started with `--socket PATH` (the NFs an `onvm up`
/// started, should the test fail before they are stopped).
pub struct KillBySocket(pub PathBuf);

impl Drop for KillBySocket {
    fn drop(&mut self) {
        let path = self.0.display().to_string();
        for pid in pids_with_args(&[&["--socket", &path]]) {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}
