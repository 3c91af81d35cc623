//! Starting, watching and restarting NFs under their restart policy.
//!
//! Split the way quinn-proto and smoltcp split protocol and I/O:
//!
//! - [`policy`] decides, in pure code with `now` passed in: after this exit, restart at
//!   time T (exponential backoff) or give up, and why.
//! - [`process`] acts: a [`Launcher`] starts one NF and returns a [`Handle`] to poll and
//!   stop it. [`ProcessLauncher`] runs processes; a container launcher fits the same
//!   traits.
//! - [`Supervisor`] is the thin driver between them. Call [`Supervisor::add`] for each
//!   NF, then [`Supervisor::poll`] every few tens of milliseconds (it never blocks; it
//!   reaps exits, asks the policy, and launches what is due), and log the
//!   [`SupervisorEvent`]s it returns. [`Supervisor::request_stop`] ends restarts;
//!   [`Supervisor::stop_all`] then stops what runs, politely first, and reaps it.
//!
//! The manager notices an NF's death on its own (its control socket closes) and
//! reclaims its buffers; the supervisor only deals with the process.

pub mod policy;
pub mod process;

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use onvm_proto::config::NfSpec;

pub use policy::{Backoff, Decision, GiveUp, Outcome, Poll, RestartMode, RestartPolicy, Restarts, STABLE_RUN};
pub use process::{Exit, Handle, Label, Launcher, NfInstance, NfOutput, ProcessHandle, ProcessLauncher};

/// How long [`Supervisor::stop_all`] waits for a SIGKILLed NF to be reaped. Only a
/// process stuck in the kernel (uninterruptible sleep) takes longer; it is left behind
/// and reported rather than waited for forever.
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often [`Supervisor::stop_all`] checks for exits.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Something the supervisor did or saw, for the log. `Display` gives a line without a
/// prefix.
#[derive(Debug)]
pub enum SupervisorEvent {
    /// An NF was launched: `restart` 0 for its first start.
    Started {
        /// Which.
        nf: Label,
        /// [`Handle::id`].
        id: String,
        /// Restarts so far, this one included.
        restart: u32,
    },
    /// An NF exited, and what follows.
    Exited {
        /// Which.
        nf: Label,
        /// [`Handle::id`] of the run that ended.
        id: String,
        /// How.
        exit: Exit,
        /// Restart (when) or not (why).
        then: Decision,
    },
    /// A restart could not launch; the policy counts it as a failure.
    LaunchFailed {
        /// Which.
        nf: Label,
        /// Why.
        error: io::Error,
        /// Another try (when) or not (why).
        then: Decision,
    },
    /// Polling, stopping or killing an NF failed; it is polled again later.
    HandleFailed {
        /// Which.
        nf: Label,
        /// [`Handle::id`].
        id: String,
        /// Why.
        error: io::Error,
    },
    /// An NF did not stop within the grace period of [`Supervisor::stop_all`] and was
    /// killed.
    Killed {
        /// Which.
        nf: Label,
        /// [`Handle::id`].
        id: String,
    },
    /// An instance scaled away was asked to stop.
    Retiring {
        /// Which.
        nf: Label,
        /// [`Handle::id`].
        id: String,
    },
    /// An NF did not go away even [`KILL_WAIT`] after SIGKILL; it is left behind.
    Unreaped {
        /// Which.
        nf: Label,
        /// [`Handle::id`].
        id: String,
    },
}

/// What an operator asks of a running supervisor (the HTTP endpoint's NF writes),
/// carried out by whoever drives it (`onvm up`) at its next poll.
#[derive(Debug)]
pub enum Command {
    /// Stop this NF for good ([`Supervisor::stop_one`]), by its handle's id.
    Stop(String),
    /// Restart it ([`Supervisor::restart_one`]).
    Restart(String),
    /// Run this many instances of the NF entry that serves this service.
    Scale { service: String, instances: u16 },
}

/// A [`Command`] and where its outcome goes (a line saying what was done, or why not).
#[derive(Debug)]
pub struct Request {
    pub command: Command,
    pub reply: tokio::sync::oneshot::Sender<Result<String, String>>,
}

impl fmt::Display for SupervisorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SupervisorEvent::Started { nf, id, restart: 0 } => write!(f, "NF {nf} started ({id})"),
            SupervisorEvent::Started { nf, id, restart } => write!(f, "NF {nf} restarted ({id}), restart {restart}"),
            SupervisorEvent::Exited { nf, exit, then, .. } => write!(f, "NF {nf} exited ({exit}); {}", Then(then)),
            SupervisorEvent::LaunchFailed { nf, error, then } => {
                write!(f, "cannot start NF {nf}: {error}; {}", Then(then))
            }
            SupervisorEvent::HandleFailed { nf, id, error } => write!(f, "NF {nf} ({id}): {error}"),
            SupervisorEvent::Killed { nf, id } => write!(f, "NF {nf} ({id}) did not stop in time; killed"),
            SupervisorEvent::Retiring { nf, id } => write!(f, "NF {nf} ({id}) scaled away: asked to stop"),
            SupervisorEvent::Unreaped { nf, id } => {
                write!(f, "NF {nf} ({id}) still there {KILL_WAIT:?} after SIGKILL; left behind")
            }
        }
    }
}

/// A [`Decision`] as the end of a log line.
struct Then<'a>(&'a Decision);

impl fmt::Display for Then<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Decision::Restart { delay, restart, .. } => {
                write!(f, "restart {restart} of its policy in {delay:?}")
            }
            Decision::GiveUp(why) => write!(f, "not restarted ({why})"),
        }
    }
}

/// One supervised NF instance.
#[derive(Debug)]
struct Slot<H> {
    nf: NfInstance,
    label: Label,
    restarts: Restarts,
    /// `Some` while it runs (launched, not yet reaped).
    handle: Option<H>,
    /// Scaled away: asked to stop, never restarted, forgotten once reaped.
    retiring: bool,
    /// An operator asked for a restart: launched again as soon as it has exited,
    /// whatever its policy, with a fresh restart count.
    restart_now: bool,
}

/// Owns launched NFs and keeps them running under their policies. See the module doc for
/// the order of calls.
///
/// Dropping it kills and reaps whatever still runs (as `stop_all` with no grace): an
/// error path that returns early leaves no orphans or zombies behind.
#[derive(Debug)]
pub struct Supervisor<L: Launcher> {
    launcher: L,
    slots: Vec<Slot<L::Handle>>,
}

impl<L: Launcher> Supervisor<L> {
    /// Nothing supervised yet.
    pub fn new(launcher: L) -> Self {
        Supervisor {
            launcher,
            slots: Vec::new(),
        }
    }

    /// Launch `nf` now and supervise it. A first launch that fails is returned, not
    /// retried: it is a setup error (a missing binary), which the caller reports.
    pub fn add(&mut self, nf: NfInstance, now: Instant) -> io::Result<SupervisorEvent> {
        let handle = self.launcher.launch(&nf)?;
        let label = nf.label();
        let event = SupervisorEvent::Started {
            nf: label.clone(),
            id: handle.id(),
            restart: 0,
        };
        self.slots.push(Slot {
            restarts: Restarts::new(nf.spec.restart, now),
            nf,
            label,
            handle: Some(handle),
            retiring: false,
            restart_now: false,
        });
        Ok(event)
    }

    /// Run `n` instances of the config entry `spec` (its slots are those whose spec
    /// equals it in everything but `instances`). Missing ones start now, numbered after
    /// the highest index; surplus ones, the highest indexes first, are asked to stop
    /// (SIGTERM, or `docker kill -s TERM`: the NF unregisters, and the manager moves its
    /// flows to the instances that stay), are not restarted, and are forgotten once
    /// they have exited. The others are not touched. Returns what it did; a start that
    /// fails is an error, after the starts before it.
    pub fn scale(&mut self, spec: &NfSpec, n: u16, now: Instant) -> (Vec<SupervisorEvent>, io::Result<()>) {
        let same = |s: &NfSpec| {
            NfSpec {
                instances: spec.instances,
                ..s.clone()
            } == *spec
        };
        let mut events = Vec::new();
        let mut live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| same(&self.slots[i].nf.spec) && !self.slots[i].retiring)
            .collect();
        live.sort_by_key(|&i| self.slots[i].nf.index);
        let have = live.len();
        let want = usize::from(n);
        if want > have {
            let first = self
                .slots
                .iter()
                .filter(|s| same(&s.nf.spec))
                .map(|s| s.nf.index + 1)
                .max()
                .unwrap_or(0);
            for index in (first..).take(want - have) {
                let nf = NfInstance {
                    spec: NfSpec {
                        instances: n,
                        ..spec.clone()
                    },
                    index,
                };
                match self.add(nf, now) {
                    Ok(e) => events.push(e),
                    Err(e) => return (events, Err(e)),
                }
            }
        }
        for &i in live.iter().skip(want).rev() {
            let slot = &mut self.slots[i];
            slot.retiring = true;
            slot.restarts.handle_stop();
            events.push(SupervisorEvent::Retiring {
                nf: slot.label.clone(),
                id: slot.handle.as_ref().map(Handle::id).unwrap_or_default(),
            });
            if let Some(h) = slot.handle.as_mut()
                && let Err(error) = h.stop()
            {
                events.push(slot.handle_failed(error));
            }
        }
        (events, Ok(()))
    }

    /// Reap exits, decide about them, and launch the restarts that are due at `now`.
    /// Never blocks (beyond what a launch takes).
    pub fn poll(&mut self, now: Instant) -> Vec<SupervisorEvent> {
        let mut events = Vec::new();
        for slot in &mut self.slots {
            slot.reap(now, &mut events);
            if slot.handle.is_none() && slot.restart_now {
                slot.restart_now = false;
                slot.restarts = Restarts::new(slot.nf.spec.restart, now);
                match self.launcher.launch(&slot.nf) {
                    Ok(handle) => {
                        events.push(SupervisorEvent::Started {
                            nf: slot.label.clone(),
                            id: handle.id(),
                            restart: 0,
                        });
                        slot.handle = Some(handle);
                    }
                    Err(error) => events.push(SupervisorEvent::LaunchFailed {
                        nf: slot.label.clone(),
                        error,
                        then: slot.restarts.handle_launch_failed(now),
                    }),
                }
                continue;
            }
            if slot.handle.is_none() && slot.restarts.poll_start(now) == Poll::Start {
                match self.launcher.launch(&slot.nf) {
                    Ok(handle) => {
                        slot.restarts.handle_started(now);
                        events.push(SupervisorEvent::Started {
                            nf: slot.label.clone(),
                            id: handle.id(),
                            restart: slot.restarts.restarts(),
                        });
                        slot.handle = Some(handle);
                    }
                    Err(error) => events.push(SupervisorEvent::LaunchFailed {
                        nf: slot.label.clone(),
                        error,
                        then: slot.restarts.handle_launch_failed(now),
                    }),
                }
            }
        }
        // Instances scaled away are forgotten once they have exited.
        self.slots.retain(|s| !(s.retiring && s.handle.is_none()));
        events
    }

    /// The running slot whose handle is `id` ([`Handle::id`]).
    fn running_slot(&mut self, id: &str) -> Result<&mut Slot<L::Handle>, String> {
        self.slots
            .iter_mut()
            .find(|s| !s.retiring && s.handle.as_ref().is_some_and(|h| h.id() == id))
            .ok_or_else(|| format!("no NF the supervisor runs is {id}"))
    }

    /// Stop the NF whose handle is `id` for good: asked to stop, not restarted,
    /// forgotten once it has exited (as an instance scaled away).
    pub fn stop_one(&mut self, id: &str) -> Result<SupervisorEvent, String> {
        let slot = self.running_slot(id)?;
        slot.retiring = true;
        slot.restarts.handle_stop();
        if let Some(h) = slot.handle.as_mut() {
            h.stop().map_err(|e| format!("{id}: {e}"))?;
        }
        Ok(SupervisorEvent::Retiring {
            nf: slot.label.clone(),
            id: id.to_string(),
        })
    }

    /// Restart the NF whose handle is `id`: asked to stop, launched again once it has
    /// exited (by [`Supervisor::poll`]), whatever its policy.
    pub fn restart_one(&mut self, id: &str) -> Result<String, String> {
        let slot = self.running_slot(id)?;
        slot.restart_now = true;
        if let Some(h) = slot.handle.as_mut() {
            h.stop().map_err(|e| format!("{id}: {e}"))?;
        }
        Ok(format!(
            "NF {} ({id}) asked to stop; restarting it when it has",
            slot.label
        ))
    }

    /// The earliest pending restart: a driver with nothing else to do may sleep until
    /// then (exits are only seen by polling, so not much longer).
    pub fn next_restart(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.restarts.due()).min()
    }

    /// NF instances running now.
    pub fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.handle.is_some()).count()
    }

    /// The instances supervised (running or not), in the order they were added, with
    /// their restart state.
    pub fn instances(&self) -> impl Iterator<Item = (&NfInstance, &Restarts)> {
        self.slots.iter().map(|s| (&s.nf, &s.restarts))
    }

    /// No restart from now on: pending ones are cancelled, and exits are answered with
    /// [`GiveUp::Stopping`]. What runs keeps running.
    pub fn request_stop(&mut self) {
        for slot in &mut self.slots {
            slot.restarts.handle_stop();
        }
    }

    /// Stop every NF: [`request_stop`](Self::request_stop), ask each running one to stop
    /// ([`Handle::stop`]), wait up to `grace` for them to exit, kill the rest and reap
    /// them. Blocks for up to `grace` + [`KILL_WAIT`]; returns the exits and kills.
    pub fn stop_all(&mut self, grace: Duration) -> Vec<SupervisorEvent> {
        self.request_stop();
        let mut events = Vec::new();
        for slot in &mut self.slots {
            if let Some(h) = slot.handle.as_mut()
                && let Err(error) = h.stop()
            {
                events.push(slot.handle_failed(error));
            }
        }
        let deadline = Instant::now() + grace;
        self.reap_until(deadline, &mut events);
        for slot in &mut self.slots {
            let Some(h) = slot.handle.as_mut() else { continue };
            let id = h.id();
            match h.kill() {
                Ok(()) => events.push(SupervisorEvent::Killed {
                    nf: slot.label.clone(),
                    id,
                }),
                Err(error) => events.push(slot.handle_failed(error)),
            }
        }
        self.reap_until(Instant::now() + KILL_WAIT, &mut events);
        for slot in &mut self.slots {
            if let Some(h) = slot.handle.take() {
                events.push(SupervisorEvent::Unreaped {
                    nf: slot.label.clone(),
                    id: h.id(),
                });
            }
        }
        events
    }

    /// Reap exits until none runs or `deadline` passes (checked at least once).
    fn reap_until(&mut self, deadline: Instant, events: &mut Vec<SupervisorEvent>) {
        loop {
            let now = Instant::now();
            for slot in &mut self.slots {
                slot.reap(now, events);
            }
            if self.running() == 0 || now >= deadline {
                return;
            }
            std::thread::sleep(STOP_POLL.min(deadline - now));
        }
    }
}

impl<H: Handle> Slot<H> {
    /// If it has exited: forget the handle, ask the policy, and report both.
    fn reap(&mut self, now: Instant, events: &mut Vec<SupervisorEvent>) {
        let Some(h) = self.handle.as_mut() else { return };
        match h.try_wait() {
            Ok(None) => {}
            Ok(Some(exit)) => {
                let id = h.id();
                self.handle = None;
                events.push(SupervisorEvent::Exited {
                    nf: self.label.clone(),
                    id,
                    exit,
                    then: self.restarts.handle_exit(exit.outcome(), now),
                });
            }
            Err(error) => events.push(self.handle_failed(error)),
        }
    }

    fn handle_failed(&self, error: io::Error) -> SupervisorEvent {
        SupervisorEvent::HandleFailed {
            nf: self.label.clone(),
            id: self.handle.as_ref().map(Handle::id).unwrap_or_default(),
            error,
        }
    }
}

impl<L: Launcher> Drop for Supervisor<L> {
    fn drop(&mut self) {
        if self.running() > 0 {
            self.stop_all(Duration::ZERO);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The driver against a scripted launcher: exits happen when the test says, so the
    //! timestamps are exact.
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// What the fake NFs do, shared between the test and the launcher.
    #[derive(Debug, Default)]
    struct World {
        /// Per launch (in order): its exit once set, and whether it was asked to stop.
        runs: Vec<(Option<Exit>, bool)>,
        /// Fail the next launches.
        fail_launches: u32,
        /// Runs that exit as soon as they are asked to stop.
        obey_stop: bool,
    }

    #[derive(Debug, Clone, Default)]
    struct Fake(Rc<RefCell<World>>);

    #[derive(Debug)]
    struct FakeHandle(Rc<RefCell<World>>, usize);

    impl Launcher for Fake {
        type Handle = FakeHandle;
        fn launch(&mut self, _nf: &NfInstance) -> io::Result<FakeHandle> {
            let mut w = self.0.borrow_mut();
            if w.fail_launches > 0 {
                w.fail_launches -= 1;
                return Err(io::Error::other("no such image"));
            }
            w.runs.push((None, false));
            Ok(FakeHandle(self.0.clone(), w.runs.len() - 1))
        }
    }

    impl Handle for FakeHandle {
        fn id(&self) -> String {
            format!("run {}", self.1)
        }
        fn try_wait(&mut self) -> io::Result<Option<Exit>> {
            Ok(self.0.borrow().runs[self.1].0)
        }
        fn stop(&mut self) -> io::Result<()> {
            let mut w = self.0.borrow_mut();
            let obey = w.obey_stop;
            let run = &mut w.runs[self.1];
            run.1 = true;
            if obey && run.0.is_none() {
                run.0 = Some(Exit::Code(0));
            }
            Ok(())
        }
        fn kill(&mut self) -> io::Result<()> {
            let run = &mut self.0.borrow_mut().runs[self.1];
            run.0.get_or_insert(Exit::Code(137));
            Ok(())
        }
    }

    const MS: Duration = Duration::from_millis(1);

    fn nf(mode: RestartMode, max: Option<u32>) -> NfInstance {
        NfInstance {
            spec: NfSpec {
                name: "fw".into(),
                binary: None,
                service: 1,
                instances: 1,
                args: Vec::new(),
                restart: RestartPolicy {
                    mode,
                    max_restarts: max,
                    backoff: Backoff {
                        initial: 100 * MS,
                        max: 400 * MS,
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

    fn exit(fake: &Fake, run: usize, code: i64) {
        fake.0.borrow_mut().runs[run].0 = Some(Exit::Code(code));
    }

    #[test]
    fn scaling_starts_new_indexes_and_retires_the_highest_without_restarting_them() {
        let fake = Fake::default();
        fake.0.borrow_mut().obey_stop = true;
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        let entry = nf(RestartMode::Always, None).spec;
        let mut other = nf(RestartMode::Always, None);
        other.spec.service = 9;
        sup.add(
            NfInstance {
                spec: entry.clone(),
                index: 0,
            },
            t,
        )
        .unwrap();
        sup.add(other, t).unwrap();
        let (ev, r) = sup.scale(&entry, 3, t);
        r.unwrap();
        let started: Vec<String> = ev.iter().map(ToString::to_string).collect();
        assert_eq!(started, ["NF fw #1 started (run 2)", "NF fw #2 started (run 3)"]);
        assert_eq!(sup.running(), 4);
        // Down to 1: #2 then #1 are asked to stop; the other entry is not touched.
        let (ev, r) = sup.scale(&entry, 1, t + MS);
        r.unwrap();
        let asked: Vec<String> = ev.iter().map(ToString::to_string).collect();
        assert_eq!(
            asked,
            [
                "NF fw #2 (run 3) scaled away: asked to stop",
                "NF fw #1 (run 2) scaled away: asked to stop"
            ]
        );
        assert!(fake.0.borrow().runs[2].1 && fake.0.borrow().runs[3].1 && !fake.0.borrow().runs[0].1);
        let ev = sup.poll(t + 2 * MS);
        assert!(
            ev.iter().all(|e| matches!(
                e,
                SupervisorEvent::Exited {
                    then: Decision::GiveUp(GiveUp::Stopping),
                    ..
                }
            )),
            "not restarted: {ev:?}"
        );
        assert_eq!(sup.running(), 2);
        assert_eq!(sup.instances().count(), 2, "retired instances are forgotten");
        assert!(sup.poll(t + 10_000 * MS).is_empty());
        // Up again: numbering goes on after the highest index still there.
        let (ev, _) = sup.scale(&entry, 2, t + 10_001 * MS);
        assert_eq!(ev[0].to_string(), "NF fw #1 started (run 4)");
    }

    #[test]
    fn crash_loop_restarts_with_backoff_then_gives_up() {
        let fake = Fake::default();
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        let started = sup.add(nf(RestartMode::OnFailure, Some(3)), t).unwrap();
        assert_eq!(started.to_string(), "NF fw #0 started (run 0)");
        assert!(sup.poll(t + MS).is_empty(), "running: nothing happens");

        let mut now = t + 10 * MS;
        for (run, delay) in [(0, 100), (1, 200), (2, 400)] {
            exit(&fake, run, 1);
            let ev = sup.poll(now);
            let [SupervisorEvent::Exited { then, .. }] = &ev[..] else {
                panic!("{ev:?}")
            };
            assert_eq!(
                *then,
                Decision::Restart {
                    at: now + delay * MS,
                    delay: delay * MS,
                    restart: run as u32 + 1
                }
            );
            assert_eq!(sup.next_restart(), Some(now + delay * MS));
            assert!(sup.poll(now + (delay - 1) * MS).is_empty(), "not before the backoff");
            assert_eq!(sup.running(), 0);
            now += delay * MS;
            let ev = sup.poll(now);
            assert!(
                matches!(&ev[..], [SupervisorEvent::Started { restart, .. }] if *restart == run as u32 + 1),
                "{ev:?}"
            );
            assert_eq!(sup.running(), 1);
            now += 10 * MS;
        }
        exit(&fake, 3, 1);
        let ev = sup.poll(now);
        assert_eq!(
            ev.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["NF fw #0 exited (exit status: 1); not restarted (max_restarts = 3 reached)"]
        );
        assert!(sup.poll(now + Duration::from_secs(60)).is_empty());
        assert_eq!(fake.0.borrow().runs.len(), 4);
        assert_eq!(sup.next_restart(), None);
    }

    #[test]
    fn restart_event_text_is_what_onvm_up_printed() {
        let fake = Fake::default();
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        sup.add(nf(RestartMode::OnFailure, Some(5)), t).unwrap();
        exit(&fake, 0, 2);
        let ev = sup.poll(t);
        assert_eq!(
            ev[0].to_string(),
            "NF fw #0 exited (exit status: 2); restart 1 of its policy in 100ms"
        );
        let ev = sup.poll(t + 100 * MS);
        assert_eq!(ev[0].to_string(), "NF fw #0 restarted (run 1), restart 1");
        exit(&fake, 1, 0);
        let ev = sup.poll(t + 200 * MS);
        assert_eq!(
            ev[0].to_string(),
            "NF fw #0 exited (exit status: 0); not restarted (clean exit, restart = on-failure)"
        );
    }

    #[test]
    fn failed_launches_count_and_back_off() {
        let fake = Fake::default();
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        sup.add(nf(RestartMode::Always, Some(2)), t).unwrap();
        exit(&fake, 0, 0);
        sup.poll(t);
        fake.0.borrow_mut().fail_launches = 5;
        let ev = sup.poll(t + 100 * MS);
        assert_eq!(
            ev.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["cannot start NF fw #0: no such image; restart 2 of its policy in 200ms"]
        );
        let ev = sup.poll(t + 300 * MS);
        assert!(
            matches!(
                &ev[..],
                [SupervisorEvent::LaunchFailed {
                    then: Decision::GiveUp(GiveUp::MaxRestarts(2)),
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert!(sup.poll(t + Duration::from_secs(60)).is_empty());
    }

    #[test]
    fn a_first_launch_that_fails_is_returned_not_supervised() {
        let fake = Fake::default();
        fake.0.borrow_mut().fail_launches = 1;
        let mut sup = Supervisor::new(fake.clone());
        assert!(sup.add(nf(RestartMode::Always, None), Instant::now()).is_err());
        assert_eq!(sup.instances().count(), 0);
    }

    #[test]
    fn request_stop_cancels_pending_restarts_and_stops_restarting() {
        let fake = Fake::default();
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        sup.add(nf(RestartMode::Always, None), t).unwrap();
        sup.add(nf(RestartMode::Always, None), t).unwrap();
        exit(&fake, 0, 1);
        assert_eq!(sup.poll(t).len(), 1);
        sup.request_stop();
        assert!(
            sup.poll(t + Duration::from_secs(1)).is_empty(),
            "the pending restart is cancelled"
        );
        exit(&fake, 1, 1);
        let ev = sup.poll(t + Duration::from_secs(1));
        assert!(
            matches!(
                &ev[..],
                [SupervisorEvent::Exited {
                    then: Decision::GiveUp(GiveUp::Stopping),
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert_eq!(fake.0.borrow().runs.len(), 2, "nothing relaunched");
    }

    #[test]
    fn stop_all_stops_politely_then_kills() {
        let fake = Fake::default();
        fake.0.borrow_mut().obey_stop = true;
        let mut sup = Supervisor::new(fake.clone());
        let t = Instant::now();
        sup.add(nf(RestartMode::Always, None), t).unwrap();
        let ev = sup.stop_all(Duration::from_secs(1));
        assert!(
            matches!(
                &ev[..],
                [SupervisorEvent::Exited {
                    exit: Exit::Code(0),
                    then: Decision::GiveUp(GiveUp::Stopping),
                    ..
                }]
            ),
            "{ev:?}"
        );
        assert!(fake.0.borrow().runs[0].1, "asked to stop");

        let fake = Fake::default();
        let mut sup = Supervisor::new(fake.clone());
        sup.add(nf(RestartMode::Always, None), t).unwrap();
        let ev = sup.stop_all(Duration::ZERO);
        let text: Vec<String> = ev.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "NF fw #0 (run 0) did not stop in time; killed",
                "NF fw #0 exited (exit status: 137); not restarted (stopping)"
            ]
        );
        assert_eq!(sup.running(), 0);
    }

    #[test]
    fn dropping_the_supervisor_kills_what_runs() {
        let fake = Fake::default();
        {
            let mut sup = Supervisor::new(fake.clone());
            sup.add(nf(RestartMode::Always, None), Instant::now()).unwrap();
        }
        assert_eq!(fake.0.borrow().runs[0].0, Some(Exit::Code(137)));
    }
}
