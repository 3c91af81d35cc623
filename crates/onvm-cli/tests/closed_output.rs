//! A manager whose reader goes away (`onvm mgr | head -3`) keeps running: its stats and
//! events hit `EPIPE`, which it ignores, and it still stops cleanly with its
//! conservation result as the exit code.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Proc, SOON, TempDir, onvm, serial, wait_for};

/// A manager with a generator and a console table every 0.1 s, its stdout and stderr
/// piped to us; stdin closed.
fn spawn_mgr(dir: &TempDir) -> Child {
    let mut cmd = onvm();
    cmd.args(["mgr", "--stats", "console", "--stats-every", "0.1", "--buffers", "4095"])
        .args(["--port", "gen:64B,4flows,rate=20k", "--port", "null", "--socket"])
        .arg(dir.socket())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("start onvm mgr")
}

/// Everything `stream` says, collected by a thread.
fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut t = sink.lock().unwrap();
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

/// Read three lines of `child`'s stdout, then close it, as `head -3` does.
fn head_3(child: &mut Child) -> Vec<String> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        out.read_line(&mut l).expect("read the manager's stdout");
        lines.push(l);
    }
    drop(out);
    lines
}

/// Kills and reaps the manager whatever happens.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Reap {
    fn exit_code(&mut self, why: &str, err: &Mutex<String>) -> i32 {
        let mut status = None;
        let exited = wait_for(SOON, || {
            status = self.0.try_wait().ok().flatten();
            status.is_some()
        });
        assert!(exited, "the manager did not exit {why}\n{}", err.lock().unwrap());
        let st = status.unwrap();
        st.code()
            .unwrap_or_else(|| panic!("the manager died by a signal: {st:?}\n{}", err.lock().unwrap()))
    }
}

#[test]
fn a_manager_whose_stdout_reader_left_keeps_running_and_stops_cleanly() {
    let _one = serial();
    let dir = TempDir::new("closed-stdout");
    let mut mgr = Reap(spawn_mgr(&dir));
    let err = collect(mgr.0.stderr.take().unwrap());
    let first = head_3(&mut mgr.0);
    assert!(first.iter().all(|l| !l.is_empty()), "{first:?}");
    // Several stats intervals with nobody reading: each write fails with EPIPE.
    std::thread::sleep(Duration::from_millis(800));
    assert!(
        mgr.0.try_wait().unwrap().is_none(),
        "the manager died when its reader left\n{}",
        err.lock().unwrap()
    );
    // It still serves NFs.
    let nf = Proc::spawn(
        "fwd",
        common::nf_command(&dir.socket(), 1, "fwd", &[], &["simple-forward"]),
    );
    let registered = wait_for(SOON, || err.lock().unwrap().contains("NF \"fwd\" registered"));
    assert!(
        registered,
        "the NF did not register\n{}{}",
        err.lock().unwrap(),
        nf.output()
    );
    drop(nf);
    common::signal(mgr.0.id(), "INT");
    let code = mgr.exit_code("on SIGINT", &err);
    let err = err.lock().unwrap().clone();
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    // Packets were conserved: the summary could not be printed, the exit code says so.
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_manager_whose_stderr_reader_left_keeps_running_and_stops_cleanly() {
    let _one = serial();
    let dir = TempDir::new("closed-stderr");
    let mut mgr = Reap(spawn_mgr(&dir));
    drop(mgr.0.stderr.take());
    let out = collect(mgr.0.stdout.take().unwrap());
    // Events (an NF registered, crashed) go to stderr, now closed.
    let up = wait_for(SOON, || out.lock().unwrap().lines().count() >= 3);
    assert!(up, "no stats\n{}", out.lock().unwrap());
    let mut nf = Proc::spawn(
        "fwd",
        common::nf_command(&dir.socket(), 1, "fwd", &[], &["simple-forward"]),
    );
    std::thread::sleep(Duration::from_millis(500));
    nf.kill();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        mgr.0.try_wait().unwrap().is_none(),
        "the manager died when stderr closed"
    );
    common::signal(mgr.0.id(), "INT");
    let code = mgr.exit_code("on SIGINT", &Mutex::new(String::new()));
    let out = out.lock().unwrap().clone();
    assert!(out.contains("conservation: OK"), "{out}");
    assert_eq!(code, 0, "{out}");
}

#[test]
fn under_onvm_up_neither_the_manager_nor_a_printing_nf_dies_when_the_reader_leaves() {
    let _one = serial();
    let dir = TempDir::new("closed-up");
    // basic_monitor prints a line every second on the stdout it shares with `onvm up`.
    let config = dir.write(
        "up.toml",
        r#"[manager]
ports = ["gen:64B,4flows,rate=20k", "null"]
shared_cores = true

[services]
mon = 1

[[nfs]]
name = "basic_monitor"
service = "mon"
restart = "on-failure"

[[chains]]
name = "m"
chain = ["mon", "out:1"]
in_port = 0
"#,
    );
    let mut cmd = onvm();
    cmd.args([
        "up",
        "--stats",
        "console",
        "--stats-every",
        "0.1",
        "--buffers",
        "4095",
        "--socket",
    ])
    .arg(dir.socket())
    .arg(&config)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut up = Reap(cmd.spawn().expect("start onvm up"));
    let err = collect(up.0.stderr.take().unwrap());
    head_3(&mut up.0);
    // The monitor registers, then prints (each second) into the closed pipe.
    let registered = wait_for(SOON, || err.lock().unwrap().contains("registered"));
    assert!(registered, "the NF did not register\n{}", err.lock().unwrap());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        up.0.try_wait().unwrap().is_none(),
        "onvm up died\n{}",
        err.lock().unwrap()
    );
    common::signal(up.0.id(), "INT");
    let code = up.exit_code("on SIGINT", &err);
    let err = err.lock().unwrap().clone();
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert!(
        !err.contains("exited (") && !err.contains("crash"),
        "the NF died:\n{err}"
    );
    assert_eq!(code, 0, "{err}");
}
