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
//! the ring.
//!
//! Control messages are polled from the loop (non-blocking), at most every 64 bursts
//! or when idle, so the hot path pays no syscall.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use onvm_proto::ctrl::{MAX_MESSAGE_LEN, MgrMsg, NfCounters, NfMsg};
use onvm_proto::limits::MAX_SERVICES;
use onvm_proto::verdict::Verdict;
use onvm_shm::seqpacket::Received;
use onvm_shm::{BURST, Buf, Consumer, Holder, OwnerId, Producer};

use crate::action::Action;
use crate::builder::{Nf, signal_flag};
use crate::ctx::Ctx;
use crate::error::NfError;
use crate::handler::{Batch, Handler};

/// Empty polls before a shared-core NF sleeps on its doorbell.
const SPIN_BEFORE_SLEEP: u32 = 16;
/// Empty polls before an NF without a core of its own yields the CPU.
const YIELD_AFTER: u32 = 4096;

/// How often the NF reports its counters to the manager.
const REPORT_EVERY: Duration = Duration::from_millis(100);

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

struct OutEdge<'r> {
    /// Service the edge serves (0 = `Next`).
    service: u16,
    ring: u32,
    to: OwnerId,
    prod: Producer<'r>,
    /// The receiver's rx ring, only to ring its doorbell (it sleeps: shared core).
    bell: Option<Producer<'r>>,
    pending: Vec<Buf>,
}

struct InEdge<'r> {
    ring: u32,
    cons: Consumer<'r>,
    closing: bool,
}

/// Where outgoing packets wait for the end of the burst.
struct Out<'r> {
    tx: Producer<'r>,
    /// The manager's wake-up ring: rung after packets go to the manager.
    wake: Producer<'r>,
    to_mgr: Vec<Buf>,
    /// Index into `edges` per service (0 = Next); `u8::MAX` = none.
    by_service: [u8; MAX_SERVICES as usize],
    edges: Vec<OutEdge<'r>>,
}

impl<'r> Out<'r> {
    fn route(&mut self, holder: &Holder, counters: &mut NfCounters, buf: Buf, v: Verdict) {
        self.route_run(holder, counters, std::iter::once(buf), 1, v);
    }

    /// Route `n` buffers that share one verdict: the counting and the destination
    /// lookup happen once per run, not once per packet (a burst usually is one run).
    #[inline]
    fn route_run(
        &mut self,
        holder: &Holder,
        counters: &mut NfCounters,
        bufs: impl Iterator<Item = Buf>,
        n: u64,
        v: Verdict,
    ) {
        let edge_key = match v {
            Verdict::Drop => {
                counters.act_drop += n;
                None
            }
            Verdict::Next => {
                counters.act_next += n;
                Some(0)
            }
            Verdict::ToService(s) => {
                counters.act_tonf += n;
                Some(s)
            }
            Verdict::ToInstance(_) => {
                counters.act_tonf += n;
                None
            }
            Verdict::Out(_) => {
                counters.act_out += n;
                None
            }
        };
        if v != Verdict::Drop {
            counters.tx += n;
        }
        if let Some(k) = edge_key
            && let Some(&e) = self.by_service.get(usize::from(k))
            && e != u8::MAX
        {
            self.edges[usize::from(e)].pending.extend(bufs);
            return;
        }
        for buf in bufs {
            self.via_manager(holder, buf, v);
        }
    }

    /// Route a handled burst: runs of equal actions together; kept packets to `kept`.
    fn route_burst(&mut self, holder: &Holder, ctx: &mut Ctx<'_>, bufs: &mut Vec<Buf>, actions: &[Action]) {
        let mut start = 0;
        while start < actions.len() {
            let a = actions[start];
            let end = actions[start..]
                .iter()
                .position(|&b| b != a)
                .map_or(actions.len(), |k| start + k);
            let run = bufs.drain(..end - start);
            match a.verdict() {
                Some(v) => self.route_run(holder, &mut ctx.counters, run, (end - start) as u64, v),
                None => {
                    ctx.counters.act_buffer += (end - start) as u64;
                    ctx.kept.extend(run);
                }
            }
            start = end;
        }
    }

    /// Queue a buffer for the manager with its verdict (no counting).
    fn via_manager(&mut self, holder: &Holder, buf: Buf, v: Verdict) {
        let (a, d) = v.encode();
        let m = holder.meta(&buf);
        m.set_action(a);
        m.set_dest(d);
        self.to_mgr.push(buf);
    }

    /// Push everything out. Edge overflow is dropped (openNetVM's tx_drop): the buffers
    /// go to the manager marked Drop. The manager ring is waited on: the manager always
    /// drains it, unless it is gone, which `alive` reports.
    fn flush(
        &mut self,
        holder: &Holder,
        counters: &mut NfCounters,
        alive: &mut dyn FnMut() -> bool,
    ) -> Result<(), NfError> {
        for e in &mut self.edges {
            if e.pending.is_empty() {
                continue;
            }
            holder.enqueue(&mut e.prod, e.to, &mut e.pending)?;
            if let Some(b) = &e.bell {
                b.notify();
            }
            for buf in e.pending.drain(..) {
                counters.tx_drop += 1;
                let (a, d) = Verdict::Drop.encode();
                holder.meta(&buf).set_action(a);
                holder.meta(&buf).set_dest(d);
                self.to_mgr.push(buf);
            }
        }
        let mut spins = 0u32;
        let rang = !self.to_mgr.is_empty();
        while !self.to_mgr.is_empty() {
            if holder.enqueue(&mut self.tx, OwnerId::MANAGER, &mut self.to_mgr)? == 0 {
                self.wake.notify();
                spins += 1;
                if spins.is_multiple_of(1024) && !alive() {
                    return Err(NfError::Protocol("the manager went away".into()));
                }
                std::thread::yield_now();
            }
        }
        if rang {
            // Wakes the manager if it sleeps (a fence and a load otherwise).
            self.wake.notify();
        }
        Ok(())
    }

    fn add(&mut self, e: OutEdge<'r>) {
        if usize::from(e.service) >= self.by_service.len() || self.edges.len() >= usize::from(u8::MAX) {
            return;
        }
        self.by_service[usize::from(e.service)] = self.edges.len() as u8;
        self.edges.push(e);
    }

    /// Remove the edge on `ring`; its unsent packets go to the manager instead.
    fn remove(&mut self, holder: &Holder, ring: u32) -> bool {
        let Some(i) = self.edges.iter().position(|e| e.ring == ring) else {
            return false;
        };
        let e = self.edges.remove(i);
        self.by_service = [u8::MAX; MAX_SERVICES as usize];
        for (k, e) in self.edges.iter().enumerate() {
            self.by_service[usize::from(e.service)] = k as u8;
        }
        let v = match e.service {
            0 => Verdict::Next,
            s => Verdict::ToService(s),
        };
        for buf in e.pending {
            self.via_manager(holder, buf, v);
        }
        true
    }
}

pub(crate) fn run<H: Handler>(nf: Nf, handler: &mut H) -> Result<Summary, NfError> {
    let Nf {
        opts,
        sock,
        region,
        reg,
    } = nf;
    let dedicated = match (reg.core, opts.pin, opts.shared_core) {
        (Some(core), true, false) => core_affinity::set_for_current(core_affinity::CoreId { id: usize::from(core) }),
        _ => false,
    };
    let holder = region.holder(OwnerId(reg.instance))?;
    let mut rx = region.consumer(reg.rings.rx)?;
    let mut out = Out {
        tx: region.producer(reg.rings.tx)?,
        wake: region.producer(reg.rings.wake)?,
        to_mgr: Vec::with_capacity(4 * BURST),
        by_service: [u8::MAX; MAX_SERVICES as usize],
        edges: Vec::new(),
    };
    let mut inbound: Vec<InEdge<'_>> = Vec::new();
    let mut ctx = Ctx::new(&holder, reg.instance, reg.service, region.consumer(reg.rings.alloc)?);
    sock.set_nonblocking(true)?;
    let send = |m: &NfMsg| -> Result<(), NfError> {
        sock.send(&m.encode().map_err(|e| NfError::Protocol(e.to_string()))?)?;
        Ok(())
    };
    send(&NfMsg::Ready)?;
    handler.setup(&mut ctx);

    let stop_signal = signal_flag();
    let mut bufs: Vec<Buf> = Vec::with_capacity(BURST);
    let mut actions: Vec<Action> = Vec::with_capacity(BURST);
    let mut msg_buf = vec![0u8; MAX_MESSAGE_LEN + 1];
    let mut iter = 0u32;
    let mut idle = 0u32;
    let started = Instant::now();
    let mut next_report = started + REPORT_EVERY;
    let mut next_tick = started + opts.tick;
    let mut reason = String::from("stopped by the NF");
    let mut manager_gone = false;
    let mut next_in = 0usize;

    while !ctx.stop {
        bufs.clear();
        holder.dequeue(&mut rx, BURST, &mut bufs)?;
        if bufs.len() < BURST && !inbound.is_empty() {
            // Round-robin over edges so one busy sender cannot starve another.
            let n_in = inbound.len();
            for k in 0..n_in {
                let e = &mut inbound[(next_in + k) % n_in];
                holder.dequeue(&mut e.cons, BURST - bufs.len(), &mut bufs)?;
                if bufs.len() == BURST {
                    break;
                }
            }
            next_in = next_in.wrapping_add(1);
        }
        if !bufs.is_empty() {
            idle = 0;
            ctx.counters.rx += bufs.len() as u64;
            actions.clear();
            actions.resize(bufs.len(), Action::Next);
            handler.batch(
                &mut Batch {
                    holder: &holder,
                    bufs: &mut bufs,
                    actions: &mut actions,
                },
                &mut ctx,
            );
            out.route_burst(&holder, &mut ctx, &mut bufs, &actions);
        } else {
            idle = idle.saturating_add(1);
        }
        for (buf, v) in std::mem::take(&mut ctx.returned) {
            out.route(&holder, &mut ctx.counters, buf, v);
        }
        out.flush(&holder, &mut ctx.counters, &mut || !manager_gone)?;

        iter = iter.wrapping_add(1);
        // Housekeeping (clock, control socket: a syscall) every 256 passes, busy or
        // idle: an idle pass must stay cheap, because it is the delay before the NF
        // sees the next packet. A shared-core NF about to sleep checks first.
        let sleepy = idle > SPIN_BEFORE_SLEEP && opts.shared_core;
        if !iter.is_multiple_of(256) && !sleepy {
            continue;
        }
        // Housekeeping.
        let now = Instant::now();
        if let Some(limit) = opts.packet_limit
            && ctx.counters.rx >= limit
        {
            reason = format!("packet limit of {limit} reached");
            break;
        }
        if let Some(ttl) = opts.ttl
            && now.duration_since(started) >= ttl
        {
            reason = format!("time to live of {ttl:?} reached");
            break;
        }
        if stop_signal.load(Ordering::Relaxed) {
            reason = "stopped by a signal".into();
            break;
        }
        if now >= next_tick {
            next_tick = now + opts.tick;
            handler.tick(&mut ctx);
        }
        // Control messages.
        loop {
            let n = match sock.recv(&mut msg_buf)? {
                Received::Empty => break,
                Received::Closed => {
                    manager_gone = true;
                    break;
                }
                Received::Msg(n, _) => n,
            };
            match MgrMsg::decode(&msg_buf[..n])? {
                MgrMsg::Stop => {
                    reason = "stopped by the manager".into();
                    ctx.stop = true;
                }
                MgrMsg::Msg { from, bytes } => handler.message(from, &bytes, &mut ctx),
                MgrMsg::EdgeOut {
                    service,
                    instance,
                    ring,
                    bell,
                } => {
                    out.add(OutEdge {
                        service,
                        ring,
                        to: OwnerId(instance),
                        prod: region.producer(ring)?,
                        bell: bell.map(|b| region.producer(b)).transpose()?,
                        pending: Vec::with_capacity(BURST),
                    });
                    // Everything sent the old way is in the tx ring already (the flush
                    // above waits until the manager's ring takes it all): say so, and
                    // the manager moves it on before the receiver reads the edge,
                    // which keeps flows in order.
                    send(&NfMsg::EdgeSwitched { ring })?;
                }
                MgrMsg::EdgeIn { ring } => inbound.push(InEdge {
                    ring,
                    cons: region.consumer(ring)?,
                    closing: false,
                }),
                MgrMsg::EdgeClosed { ring } => {
                    if out.remove(&holder, ring) {
                        send(&NfMsg::EdgeReleased { ring })?;
                    } else if let Some(e) = inbound.iter_mut().find(|e| e.ring == ring) {
                        e.closing = true;
                    }
                }
                other @ (MgrMsg::Registered(_) | MgrMsg::Refused(_)) => {
                    return Err(NfError::Protocol(format!(
                        "unexpected message while running: {other:?}"
                    )));
                }
            }
        }
        if manager_gone {
            reason = "the manager went away".into();
            break;
        }
        // Inbound edges being closed go once they are empty.
        let mut k = 0;
        while k < inbound.len() {
            if inbound[k].closing && inbound[k].cons.ready()? == 0 {
                let e = inbound.swap_remove(k);
                send(&NfMsg::EdgeReleased { ring: e.ring })?;
            } else {
                k += 1;
            }
        }
        for m in ctx.msgs.drain(..) {
            send(&m)?;
        }
        if now >= next_report {
            next_report = now + REPORT_EVERY;
            send(&NfMsg::Counters(ctx.counters))?;
        }
        if sleepy {
            // Senders on edges ring the same doorbell as the manager, so one sleep
            // covers every ring this NF reads.
            rx.wait_until(
                |c| {
                    c.ready().map_or(true, |n| n > 0)
                        || inbound.iter_mut().any(|e| e.cons.ready().map_or(true, |n| n > 0))
                },
                Some(Duration::from_millis(5)),
            );
        } else if idle > YIELD_AFTER && !dedicated {
            // Nothing to do for a while: let a thread that shares this core run.
            std::thread::yield_now();
        }
    }

    handler.stop(&mut ctx);
    if manager_gone {
        // Nobody to give buffers back to; the manager's crash path (if it restarts) or
        // the region's end takes care of them.
        return Ok(summary(&opts, &reg, &ctx, started, reason));
    }
    // Give back everything still held: kept, returned, fresh allocations.
    let leftovers: Vec<Buf> = ctx.kept.drain(..).chain(ctx.fresh.drain(..)).collect();
    for buf in leftovers {
        out.route(&holder, &mut ctx.counters, buf, Verdict::Drop);
    }
    for (buf, v) in std::mem::take(&mut ctx.returned) {
        out.route(&holder, &mut ctx.counters, buf, v);
    }
    out.flush(&holder, &mut ctx.counters, &mut || true)?;
    for m in ctx.msgs.drain(..) {
        send(&m)?;
    }
    send(&NfMsg::Counters(ctx.counters))?;
    send(&NfMsg::Stopping)?;
    Ok(summary(&opts, &reg, &ctx, started, reason))
}

fn summary(
    opts: &crate::builder::NfBuilder,
    reg: &onvm_proto::ctrl::Registered,
    ctx: &Ctx<'_>,
    started: Instant,
    reason: String,
) -> Summary {
    Summary {
        tag: opts.tag.clone(),
        instance: reg.instance,
        service: reg.service,
        counters: ctx.counters,
        elapsed: started.elapsed(),
        reason,
    }
}
