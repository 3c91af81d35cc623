//! The NF's loop: receive a burst, let the handler decide, hand every packet on.
//!
//! Packets leave on one of two kinds of ring. The NF's *tx* ring goes to the manager,
//! which resolves the verdict with its flow table. An *edge* ring goes straight to
//! another NF: the manager creates one when it sees that everything this NF sends to
//! a service (or as `Next`) goes to one known instance, and tells the sender
//! (`EdgeOut`); the sender answers `EdgeSwitched` once what it sent the old way is in
//! its tx ring, and the receiver is told (`EdgeIn`) after the manager has moved those
//! on, so flows keep their order. That is openNetVM's NF-driven hand-off, but each edge is
//! its own single-producer ring, so a crashed sender can never leave a shared ring
//! half-written. The manager closes edges whenever the topology changes; the sender
//! answers `EdgeReleased` once it no longer writes, the receiver once it has emptied
//! the ring. The protocol's NF half is [`NfEdges`], pure and tested against the
//! manager's half in `onvm-proto`; the runtime feeds it and acts on what it says.
//!
//! One `Runtime` pass: `Runtime::rx_burst` (rx ring first, then the edges),
//! `Runtime::handle_burst` (the handler, then routing by runs of equal actions),
//! `Runtime::send` (returned packets, then every ring flushed). Every 256 passes, or
//! before a shared-core NF sleeps, `Runtime::housekeeping` reads the clock, checks
//! the limits, ticks, polls the control socket (non-blocking) and reports; then
//! `Runtime::idle` spins, sleeps or yields. So the hot path pays no syscall, no
//! allocation and no dynamic dispatch.
//!
//! | File | Holds |
//! |---|---|
//! | `out.rs` | the tx ring and the edges the NF writes; routing and flushing |
//! | `inbound.rs` | the edges the NF reads |
//! | `control.rs` | the control socket and the edge protocol's events |
//! | `policy.rs` | when to housekeep, sleep, yield, tick, report and stop (pure) |
//! | `port.rs` | a port queue the NF polls itself (`onvm mgr --nf-queues`) |

mod control;
mod inbound;
mod out;
mod policy;
mod port;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use onvm_proto::ctrl::{MAX_MESSAGE_LEN, NfCounters, NfMsg, Registered};
use onvm_proto::edge::NfEdges;
use onvm_proto::verdict::Verdict;
use onvm_shm::seqpacket::SeqPacket;
use onvm_shm::{BURST, Buf, Consumer, Holder, OwnerId, Region};

use self::control::tell;
use self::inbound::Inbound;
use self::out::{Manager, Out};
use self::policy::{CoreUse, Idle, Limits, Pace, Step, StopReason, Timers};
use crate::action::Action;
use crate::builder::{Nf, NfBuilder, signal_flag};
use crate::ctx::Ctx;
use crate::error::NfError;
use crate::handler::{Batch, Handler};

/// How long a shared-core NF sleeps on its doorbell at most, so housekeeping still runs.
const SLEEP_AT_MOST: Duration = Duration::from_millis(5);

/// How long an NF asked to stop by a signal waits for the manager's [`MgrMsg::Left`]
/// and for its rings to empty before it stops anyway (what is left in them is then
/// reclaimed by the manager, counted).
///
/// [`MgrMsg::Left`]: onvm_proto::ctrl::MgrMsg::Left
const LEAVE_AT_MOST: Duration = Duration::from_secs(1);

/// A stop asked for by a signal, while the NF hands on what was sent to it first
/// ([`NfMsg::Leaving`]): a scale-down or an operator's stop loses no packet.
#[derive(Clone, Copy, Debug)]
struct Leaving {
    /// When it stops even without the manager's answer.
    by: Instant,
    /// The manager answered (nothing more comes; what the rings hold is the last):
    /// the NF's rx count once it has taken what its rx ring held then. An NF that
    /// sends to itself (a self-looping generator) never sees its rings empty; it stops
    /// there instead.
    left: Option<u64>,
}

/// What an NF did, returned when it stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Tag.
    pub tag: String,
    /// Instance ID it had.
    pub instance: u16,
    /// Service ID.
    pub service: u16,
    /// Final counters.
    pub counters: NfCounters,
    /// Time it ran.
    pub elapsed: Duration,
    /// Why it stopped.
    pub reason: String,
}

pub(crate) fn run<H: Handler>(nf: Nf, handler: &mut H) -> Result<Summary, NfError> {
    let Nf {
        opts,
        sock,
        region,
        reg,
    } = nf;
    let pinned = |core: u16| core_affinity::set_for_current(core_affinity::CoreId { id: usize::from(core) });
    let core = if opts.shared_core {
        // A shared-core NF that names its core stays on it (openNetVM's `-s` with
        // `-l`): NFs told to share core 1 share it, rather than float.
        if opts.pin
            && let Some(core) = reg.core
        {
            pinned(core);
        }
        CoreUse::Shared
    } else if opts.pin
        && let Some(core) = reg.core
        && pinned(core)
    {
        CoreUse::Own
    } else {
        CoreUse::Unpinned
    };
    if let Some(w) = opts.weight {
        weigh(w)?;
    }
    let holder = region.holder(OwnerId(reg.instance))?;
    Runtime::new(&opts, &reg, &sock, &region, &holder, core)?.run(handler)
}

/// The nice value the kernel's scheduler weighs as `weight` against 100 (nice 0): each
/// nice step is 1.25× (the kernel's `sched_prio_to_weight`).
pub(crate) fn nice_for(weight: u32) -> i32 {
    let n = (100.0 / f64::from(weight.max(1))).ln() / 1.25f64.ln();
    (n.round() as i32).clamp(-20, 19)
}

/// Give this thread the scheduler weight `weight` (see [`crate::NfBuilder::weight`]).
/// Out of line and cold: it runs once, before the loop, and need not sit in `run`
/// (generic, built once per handler). (Moving it out did not bring back the self-loop
/// speed lost with the commit that added it: that was code placement, which the
/// loop alignment in `.cargo/config.toml` fixed.)
#[cold]
#[inline(never)]
fn weigh(weight: u32) -> Result<(), NfError> {
    let nice = nice_for(weight);
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), nice).map_err(|e| {
        NfError::Option(format!(
            "weight {weight} (nice {nice}) cannot be set: {e}{}",
            if nice < 0 {
                "; a weight above 100 needs CAP_SYS_NICE (root)"
            } else {
                ""
            }
        ))
    })
}

/// A running NF: its rings, its buffers, the edge protocol's state, its counters and
/// timers. Built by [`run`]; borrowed parts live in `run`'s frame.
pub(super) struct Runtime<'r> {
    opts: &'r NfBuilder,
    reg: &'r Registered,
    sock: &'r SeqPacket,
    region: &'r Region,
    holder: &'r Holder,
    rx: Consumer<'r>,
    inbound: Inbound<'r>,
    out: Out<'r>,
    edges: NfEdges,
    ctx: Ctx<'r>,
    /// The burst being handled, and its actions.
    bufs: Vec<Buf>,
    actions: Vec<Action>,
    /// Scratch: a control message; inbound edges found drained.
    msg_buf: Vec<u8>,
    drained: Vec<u32>,
    pace: Pace,
    timers: Timers,
    limits: Limits,
    started: Instant,
    /// Why the NF stops once `ctx.stop` is set.
    stopped_by: StopReason,
    manager_gone: bool,
    leaving: Option<Leaving>,
}

impl<'r> Runtime<'r> {
    fn new(
        opts: &'r NfBuilder,
        reg: &'r Registered,
        sock: &'r SeqPacket,
        region: &'r Region,
        holder: &'r Holder,
        core: CoreUse,
    ) -> Result<Self, NfError> {
        let mut out = Out::new(region.producer(reg.rings.tx)?, region.producer(reg.rings.wake)?);
        if core == CoreUse::Shared {
            out.ring_late();
        }
        let ctx = Ctx::new(
            holder,
            reg.instance,
            reg.service,
            region.consumer(reg.rings.alloc)?,
            reg.quota,
        );
        sock.set_nonblocking(true)?;
        let started = Instant::now();
        Ok(Runtime {
            opts,
            reg,
            sock,
            region,
            holder,
            rx: region.consumer(reg.rings.rx)?,
            inbound: Inbound::new(),
            out,
            edges: NfEdges::new(),
            ctx,
            bufs: Vec::with_capacity(BURST),
            actions: Vec::with_capacity(BURST),
            msg_buf: vec![0u8; MAX_MESSAGE_LEN + 1],
            drained: Vec::new(),
            pace: Pace::new(core),
            timers: Timers::new(started, opts.tick),
            limits: Limits {
                packets: opts.packet_limit,
                ttl: opts.ttl,
            },
            started,
            stopped_by: StopReason::Nf,
            manager_gone: false,
            leaving: None,
        })
    }

    /// Run until stopped, then give everything back.
    fn run<H: Handler>(mut self, handler: &mut H) -> Result<Summary, NfError> {
        tell(self.sock, &NfMsg::Ready)?;
        handler.setup(&mut self.ctx);
        let reason = loop {
            if self.ctx.stop {
                break self.stopped_by;
            }
            let got = self.rx_burst();
            if got > 0 {
                self.handle_burst(handler);
            }
            self.send()?;
            let now = match self.pace.pass(got) {
                Step::Poll => continue,
                Step::Idle => {
                    // A shared-core NF gives up its core: receivers' bells ring now.
                    self.out.ring_bells();
                    let now = Instant::now();
                    match self.pace.shared_idle(now) {
                        Idle::Yield => {
                            std::thread::yield_now();
                            continue;
                        }
                        Idle::Sleep => {
                            self.sleep();
                            continue;
                        }
                        Idle::Spin => now,
                    }
                }
                Step::Housekeep => Instant::now(),
            };
            self.pace.housekept(now);
            if let Some(reason) = self.housekeeping(handler, now)? {
                break reason;
            }
            // What `tick` or `message` returned or allocated leaves now, not after the
            // sleep that may follow (up to 5 ms on a shared core: a shaper's released
            // packets, a generator's new ones).
            self.send()?;
            self.idle();
        };
        handler.stop(&mut self.ctx);
        self.finish(reason)
    }

    /// Receive a burst: the rx ring first (older packets, see the module docs), then
    /// the edges. The number of packets.
    #[inline]
    fn rx_burst(&mut self) -> usize {
        self.bufs.clear();
        // A corrupt rx ring (a peer scribbled it) gives nothing this time, counted; the
        // manager's next write (or heal) and our own index's republishing mend it.
        if let Err(e) = self.holder.dequeue(&mut self.rx, BURST, &mut self.bufs) {
            self.inbound.count_corrupt(self.reg.rings.rx, e);
        }
        if self.bufs.len() < BURST {
            self.inbound.fill(self.holder, &mut self.bufs);
        }
        if self.bufs.len() < BURST && self.out.port.polls() {
            self.rx_port();
        }
        self.bufs.len()
    }

    /// Fill the rest of the burst from the port queue this NF polls. Out of line: the
    /// NFs that poll none (most) keep a short receive path.
    #[inline(never)]
    fn rx_port(&mut self) {
        let Ctx { alloc, counters, .. } = &mut self.ctx;
        let room = BURST - self.bufs.len();
        self.out
            .port
            .rx_burst(self.holder, alloc, &mut counters.allocated, &mut self.bufs, room);
    }

    /// Let the handler decide, then route the burst.
    #[inline]
    fn handle_burst<H: Handler>(&mut self, handler: &mut H) {
        self.ctx.counters.rx += self.bufs.len() as u64;
        self.actions.clear();
        self.actions.resize(self.bufs.len(), Action::Next);
        handler.batch(
            &mut Batch {
                holder: self.holder,
                bufs: &mut self.bufs,
                actions: &mut self.actions,
            },
            &mut self.ctx,
        );
        self.out
            .route_burst(self.holder, &mut self.ctx, &mut self.bufs, &self.actions);
    }

    /// Route what callbacks returned, then push everything out.
    #[inline]
    fn send(&mut self) -> Result<(), NfError> {
        let Ctx { returned, counters, .. } = &mut self.ctx;
        for (buf, v) in returned.drain(..) {
            self.out.route(self.holder, counters, buf, v);
        }
        let manager = if self.manager_gone {
            Manager::Gone
        } else {
            Manager::Draining
        };
        self.out.flush(self.holder, counters, manager)
    }

    /// Clock, limits, signals, tick, control socket, messages, report. Why to stop, if
    /// the NF must.
    fn housekeeping<H: Handler>(&mut self, handler: &mut H, now: Instant) -> Result<Option<StopReason>, NfError> {
        let ran = now.duration_since(self.started);
        if let Some(reason) = self.limits.reached(self.ctx.counters.rx, ran) {
            return Ok(Some(reason));
        }
        if signal_flag().load(Ordering::Relaxed) {
            let leaving = self.leaving;
            match leaving {
                None if !self.manager_gone => {
                    self.ctx.msgs.push(NfMsg::Leaving);
                    self.leaving = Some(Leaving {
                        by: now + LEAVE_AT_MOST,
                        left: None,
                    });
                }
                Some(Leaving { by, left }) if now < by && !left.is_some_and(|n| self.handed_on(n)) => {}
                _ => return Ok(Some(StopReason::Signal)),
            }
        }
        // Every ring this NF writes or reads republishes its index here (a peer may
        // have scribbled it): the rings' hot paths do not.
        self.out.heal();
        self.rx.heal();
        self.inbound.heal();
        let due = self.timers.due(now);
        if due.tick {
            handler.tick(&mut self.ctx);
        }
        self.poll_control(handler)?;
        if self.manager_gone {
            return Ok(Some(StopReason::ManagerGone));
        }
        // A full control socket (the manager is busy) keeps the rest for next time.
        let mut sent = 0;
        for m in &self.ctx.msgs {
            match tell(self.sock, m) {
                Ok(()) => sent += 1,
                Err(NfError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.ctx.msgs.drain(..sent);
        if due.report {
            self.report()?;
        }
        Ok(None)
    }

    /// Send the counters to the manager, with the CPU time this thread has used.
    fn report(&mut self) -> Result<(), NfError> {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        self.ctx.counters.cpu_ns = (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64;
        tell(self.sock, &NfMsg::Counters(self.ctx.counters))?;
        self.report_port()
    }

    /// Send what this NF received from and sent to port queues, if it ever polled one.
    pub(super) fn report_port(&mut self) -> Result<(), NfError> {
        match self.out.port.counts() {
            Some(c) => tell(self.sock, &NfMsg::PortCounts(c)),
            None => Ok(()),
        }
    }

    /// Nothing came for a while: sleep (shared core) or yield (no core of its own).
    fn idle(&mut self) {
        match self.pace.idle() {
            Idle::Spin => {}
            Idle::Sleep => self.sleep(),
            Idle::Yield => std::thread::yield_now(),
        }
    }

    /// Sleep on the rx doorbell until a ring this NF reads has packets, or at most
    /// [`SLEEP_AT_MOST`].
    fn sleep(&mut self) {
        self.out.ring_bells();
        // Senders on edges ring the same doorbell as the manager, so one sleep covers
        // every ring this NF reads.
        self.ctx.counters.sleeps += 1;
        let inbound = &mut self.inbound;
        self.rx.wait_until(
            // A corrupt ring is not ready: the manager's write that mends it rings the
            // bell.
            |c| c.ready().is_ok_and(|n| n > 0) || inbound.any_ready(),
            Some(SLEEP_AT_MOST),
        );
    }

    /// Whether a leaving NF is done: nothing waits in its rx ring or an inbound edge (a
    /// corrupt ring counts as empty), or it has taken `until` packets in all.
    fn handed_on(&mut self, until: u64) -> bool {
        self.ctx.counters.rx >= until || (self.rx.ready().is_ok_and(|n| n == 0) && !self.inbound.any_ready())
    }

    /// Give back everything still held (kept, returned, fresh allocations), say goodbye.
    fn finish(mut self, reason: StopReason) -> Result<Summary, NfError> {
        if self.manager_gone {
            // Nobody to give buffers back to; the manager's crash path (if it restarts)
            // or the region's end takes care of them.
            return Ok(self.summary(reason));
        }
        let Ctx {
            kept,
            fresh,
            returned,
            counters,
            msgs,
            ..
        } = &mut self.ctx;
        for buf in kept.drain(..).chain(fresh.drain(..)) {
            self.out.route(self.holder, counters, buf, Verdict::Drop);
        }
        for (buf, v) in returned.drain(..) {
            self.out.route(self.holder, counters, buf, v);
        }
        self.out.flush(self.holder, counters, Manager::Draining)?;
        for m in msgs.drain(..) {
            tell(self.sock, &m)?;
        }
        self.report()?;
        tell(self.sock, &NfMsg::Stopping)?;
        Ok(self.summary(reason))
    }

    fn summary(&self, reason: StopReason) -> Summary {
        Summary {
            tag: self.opts.tag.clone(),
            instance: self.reg.instance,
            service: self.reg.service,
            counters: self.ctx.counters,
            elapsed: self.started.elapsed(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::nice_for;

    #[test]
    fn weights_map_to_the_nice_values_the_scheduler_weighs_so() {
        // The kernel's table: nice 0 = 1024, -3 = 1991 (1.94x), 3 = 526 (0.51x).
        assert_eq!(nice_for(100), 0);
        assert_eq!(nice_for(200), -3);
        assert_eq!(nice_for(50), 3);
        assert_eq!(nice_for(125), -1);
        assert_eq!((nice_for(1), nice_for(10_000)), (19, -20), "clamped to nice's range");
    }
}
