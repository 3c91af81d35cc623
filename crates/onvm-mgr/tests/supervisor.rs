//! The supervisor with real processes: `/bin/sh` that fails, exits cleanly, or ignores
//! SIGTERM, and `sleep`. Delays are checked from below (a backoff is never shorter than
//! its policy says); upper bounds are generous, for a busy machine.

use std::path::Path;
use std::time::{Duration, Instant};

use onvm_mgr::supervisor::{
    Backoff, Decision, Exit, GiveUp, NfInstance, NfOutput, ProcessLauncher, RestartMode, RestartPolicy, Supervisor,
    SupervisorEvent,
};
use onvm_proto::config::NfSpec;

const MS: Duration = Duration::from_millis(1);

/// Far more than any of these tests needs on an idle machine.
const PATIENCE: Duration = Duration::from_secs(30);

fn launcher() -> ProcessLauncher {
    ProcessLauncher {
        program: "/nonexistent/onvm".into(), // every NF here has a binary
        socket: "/nonexistent/onvm.sock".into(),
        shared_cores: false,
        stdout: NfOutput::Null,
    }
}

fn sh(script: &str, mode: RestartMode, max_restarts: Option<u32>) -> NfInstance {
    NfInstance {
        spec: NfSpec {
            name: "sh".into(),
            binary: Some("/bin/sh".into()),
            service: 1,
            instances: 1,
            args: vec!["-c".into(), script.into()],
            restart: RestartPolicy {
                mode,
                max_restarts,
                backoff: Backoff {
                    initial: 50 * MS,
                    max: 200 * MS,
                    factor: 2,
                },
            },
            image: None,
            memory: None,
            weight: None,
            autoscale: None,
        },
        index: 0,
    }
}

/// The PID in a process handle's ID (`pid 1234`).
fn pid(id: &str) -> u32 {
    id.strip_prefix("pid ").and_then(|p| p.parse().ok()).expect(id)
}

/// Whether a process is gone, reaped included: a zombie still has its `/proc` entry.
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Poll until `done` says so or [`PATIENCE`] runs out; every event with its time.
fn run_until(
    sup: &mut Supervisor<ProcessLauncher>,
    mut done: impl FnMut(&SupervisorEvent) -> bool,
) -> Vec<(Instant, SupervisorEvent)> {
    let t = Instant::now();
    let mut seen = Vec::new();
    while t.elapsed() < PATIENCE {
        let now = Instant::now();
        for e in sup.poll(now) {
            let stop = done(&e);
            seen.push((now, e));
            if stop {
                return seen;
            }
        }
        std::thread::sleep(2 * MS);
    }
    panic!("not done in {PATIENCE:?}: {seen:#?}");
}

#[test]
fn a_crash_loop_is_restarted_with_growing_delays_then_given_up() {
    let mut sup = Supervisor::new(launcher());
    let first = Instant::now();
    let SupervisorEvent::Started { id, .. } = sup.add(sh("exit 3", RestartMode::OnFailure, Some(4)), first).unwrap()
    else {
        panic!()
    };
    let mut pids = vec![pid(&id)];
    let events = run_until(&mut sup, |e| {
        matches!(
            e,
            SupervisorEvent::Exited {
                then: Decision::GiveUp(_),
                ..
            }
        )
    });

    let mut starts = vec![first];
    let mut delays = Vec::new();
    for (at, e) in &events {
        match e {
            SupervisorEvent::Started { id, restart, .. } => {
                assert_eq!(*restart as usize, starts.len());
                starts.push(*at);
                pids.push(pid(id));
            }
            SupervisorEvent::Exited { exit, then, .. } => {
                assert_eq!(exit.to_string(), "exit status: 3");
                if let Decision::Restart { delay, .. } = then {
                    delays.push(delay.as_millis());
                }
            }
            other => panic!("{other}"),
        }
    }
    // Each run is far shorter than a stable run: 50, 100, 200, then capped at 200.
    assert_eq!(delays, [50, 100, 200, 200], "{events:#?}");
    assert_eq!(starts.len(), 5, "the first start and 4 restarts");
    for (i, pair) in starts.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let want = Duration::from_millis(delays[i] as u64);
        assert!(
            gap >= want,
            "restart {} came {gap:?} after the last start, before its {want:?} backoff",
            i + 1
        );
    }
    let Some((_, SupervisorEvent::Exited { then, .. })) = events.last() else {
        panic!()
    };
    assert_eq!(*then, Decision::GiveUp(GiveUp::MaxRestarts(4)));
    assert_eq!(sup.running(), 0);
    for p in pids {
        assert!(gone(p), "pid {p} was reaped");
    }
    // Given up: nothing more happens.
    std::thread::sleep(300 * MS);
    assert!(sup.poll(Instant::now()).is_empty());
}

#[test]
fn clean_exits_are_restarted_only_under_always() {
    let mut sup = Supervisor::new(launcher());
    sup.add(sh("exit 0", RestartMode::OnFailure, Some(5)), Instant::now())
        .unwrap();
    let events = run_until(&mut sup, |e| matches!(e, SupervisorEvent::Exited { .. }));
    let (_, SupervisorEvent::Exited { then, .. }) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(*then, Decision::GiveUp(GiveUp::CleanExit));

    let mut sup = Supervisor::new(launcher());
    sup.add(sh("exit 0", RestartMode::Always, Some(2)), Instant::now())
        .unwrap();
    let events = run_until(&mut sup, |e| {
        matches!(
            e,
            SupervisorEvent::Exited {
                then: Decision::GiveUp(_),
                ..
            }
        )
    });
    let restarts = events
        .iter()
        .filter(|(_, e)| matches!(e, SupervisorEvent::Started { .. }))
        .count();
    assert_eq!(restarts, 2, "{events:#?}");
}

#[test]
fn a_missing_binary_fails_the_first_launch() {
    let mut sup = Supervisor::new(launcher());
    let mut nf = sh("exit 0", RestartMode::Always, None);
    nf.spec.binary = Some("/nonexistent/nf".into());
    let e = sup.add(nf, Instant::now()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert_eq!(sup.running(), 0);
}

#[test]
fn stop_all_terminates_politely_and_reaps() {
    let mut sup = Supervisor::new(launcher());
    let mut pids = Vec::new();
    for _ in 0..3 {
        let started = sup
            .add(sh("exec sleep 60", RestartMode::Always, None), Instant::now())
            .unwrap();
        let SupervisorEvent::Started { id, .. } = started else {
            panic!()
        };
        pids.push(pid(&id));
    }
    std::thread::sleep(50 * MS);
    assert!(sup.poll(Instant::now()).is_empty(), "they run");
    let t = Instant::now();
    let events = sup.stop_all(PATIENCE);
    assert!(t.elapsed() < PATIENCE, "SIGTERM ends sleep at once: {:?}", t.elapsed());
    assert_eq!(events.len(), 3, "{events:#?}");
    for e in &events {
        let SupervisorEvent::Exited { exit, then, .. } = e else {
            panic!("only exits: {e}")
        };
        assert_eq!(exit.to_string(), "signal: 15 (SIGTERM)");
        assert_eq!(*then, Decision::GiveUp(GiveUp::Stopping), "no restart while stopping");
    }
    for p in pids {
        assert!(gone(p), "pid {p} was reaped");
    }
    assert_eq!(sup.running(), 0);
}

#[test]
fn stop_all_kills_what_ignores_sigterm_after_the_grace() {
    let mut sup = Supervisor::new(launcher());
    // The ignored disposition survives exec, so `sleep` itself ignores SIGTERM. The
    // marker file says the trap is in place before the stop is sent.
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let script = format!("trap '' TERM; touch {}; exec sleep 60", ready.display());
    let SupervisorEvent::Started { id, .. } = sup.add(sh(&script, RestartMode::Always, None), Instant::now()).unwrap()
    else {
        panic!()
    };
    let t = Instant::now();
    while !ready.exists() {
        assert!(t.elapsed() < PATIENCE, "the script never got going");
        std::thread::sleep(5 * MS);
    }
    let grace = 300 * MS;
    let t = Instant::now();
    let events = sup.stop_all(grace);
    let took = t.elapsed();
    assert!(took >= grace, "killed only after the grace period: {took:?}");
    let text: Vec<String> = events.iter().map(ToString::to_string).collect();
    assert_eq!(
        text,
        [
            format!("NF sh #0 ({id}) did not stop in time; killed"),
            "NF sh #0 exited (signal: 9 (SIGKILL)); not restarted (stopping)".to_string()
        ]
    );
    assert!(gone(pid(&id)));
}

#[test]
fn dropping_the_supervisor_leaves_no_process_behind() {
    let pid = {
        let mut sup = Supervisor::new(launcher());
        let SupervisorEvent::Started { id, .. } = sup
            .add(
                sh("trap '' TERM; exec sleep 60", RestartMode::Always, None),
                Instant::now(),
            )
            .unwrap()
        else {
            panic!()
        };
        pid(&id)
    };
    assert!(gone(pid));
}

#[test]
fn exits_of_real_processes_read_as_failures_or_successes() {
    let mut sup = Supervisor::new(launcher());
    sup.add(sh("kill -KILL $$", RestartMode::Never, None), Instant::now())
        .unwrap();
    let events = run_until(&mut sup, |e| matches!(e, SupervisorEvent::Exited { .. }));
    let (_, SupervisorEvent::Exited { exit, then, .. }) = &events[0] else {
        panic!()
    };
    assert!(matches!(exit, Exit::Status(_)));
    assert_eq!(exit.to_string(), "signal: 9 (SIGKILL)");
    assert_eq!(*then, Decision::GiveUp(GiveUp::Never));
}
