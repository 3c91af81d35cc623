//! Run a handler over frames without a manager: unit tests and micro-benchmarks of an
//! NF's logic.
//!
//! [`Offline`] makes a small private packet region (ordinary memory, no hugepages) with
//! the same buffers, metadata, alloc ring and [`Ctx`] an NF gets from the manager, so a
//! handler runs exactly as it does in a chain: bursts of up to 32 go through
//! [`Handler::batch`], kept packets count against the quota, allocated packets come from
//! an alloc ring, and returned packets come out after the burst. What comes out is
//! copied out as [`Sent`] (the action and the bytes), and the buffers go back to the
//! pool, so a test can run millions of frames.
//!
//! ```
//! use onvm_nf::offline::Offline;
//! use onvm_nf::{Action, handler_fn};
//!
//! let mut drop_big = handler_fn(|pkt, _ctx| if pkt.len() > 100 { Action::Drop } else { Action::Next });
//! let mut off = Offline::new()?;
//! let mut sim = off.start(&mut drop_big);
//! let out = sim.frames(&mut drop_big, 0, &[vec![0u8; 60], vec![0u8; 200]])?;
//! assert_eq!(out[0].action, Action::Next);
//! assert_eq!(out[1].action, Action::Drop);
//! # Ok::<(), onvm_nf::NfError>(())
//! ```

use std::sync::Arc;

use onvm_proto::ctrl::{NfCounters, NfMsg};
use onvm_proto::verdict::Verdict;
use onvm_shm::{BURST, BackingChoice, Buf, Holder, OwnerId, Pool, Producer, Region, RegionConfig};

use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::NfError;
use crate::handler::{Batch, Handler};

/// The NF's owner ID in the private region (any valid ID but the manager's).
const NF: OwnerId = OwnerId(1);
/// Rings: the NF's alloc ring.
const ALLOC: u32 = 0;
/// Buffers kept in the alloc ring.
const ALLOC_LEVEL: usize = 64;

/// A private region and pool to run handlers in. See the [module docs](self).
#[derive(Debug)]
pub struct Offline {
    region: Arc<Region>,
    pool: Pool,
    nf: Holder,
    service: u16,
    instance: u16,
    quota: u32,
}

/// A packet that left the handler: where it was sent and its bytes then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The action it was given (never [`Action::Keep`]).
    pub action: Action,
    /// The frame as it left.
    pub frame: Vec<u8>,
    /// The port it came in on (for packets the NF allocated: whatever it set).
    pub in_port: u16,
}

impl Offline {
    /// A region of 4096 buffers of 2048 bytes (128 of headroom); the NF is instance 1 of
    /// service 1 with a quota of 1024 held buffers.
    pub fn new() -> Result<Offline, NfError> {
        let region = Region::create(&RegionConfig {
            buffers: 4096,
            rings: 1,
            ring_capacity: 256,
            backing: BackingChoice::Normal,
            ..Default::default()
        })?;
        region.ring(ALLOC)?.set_ends(OwnerId::MANAGER.0, NF.0);
        let pool = Pool::new(&region)?;
        let nf = region.holder(NF)?;
        Ok(Offline {
            region,
            pool,
            nf,
            service: 1,
            instance: 1,
            quota: 1024,
        })
    }

    /// The service ID the handler sees in [`Ctx::service`].
    pub fn service(mut self, id: u16) -> Self {
        self.service = id;
        self
    }

    /// How many buffers the NF may hold ([`Ctx::quota`]).
    pub fn quota(mut self, n: u32) -> Self {
        self.quota = n;
        self
    }

    /// Call the handler's `setup` and return the running NF.
    pub fn start<H: Handler>(&mut self, handler: &mut H) -> Running<'_> {
        let Offline {
            region,
            pool,
            nf,
            service,
            instance,
            quota,
        } = self;
        // The ring was made above with both ends set, so it opens.
        let alloc = region.consumer(ALLOC).expect("the alloc ring of a fresh region");
        let fill = region.producer(ALLOC).expect("the alloc ring of a fresh region");
        let mut run = Running {
            pool,
            nf,
            fill,
            ctx: Ctx::new(nf, *instance, *service, alloc, *quota),
        };
        run.top_up();
        handler.setup(&mut run.ctx);
        run
    }
}

/// Where packets that leave go: copied out, or only counted.
enum Sink<'a> {
    Copy(&'a mut Vec<Sent>),
    Count(&'a mut u64),
}

/// A handler's NF between [`Offline::start`] and [`Running::stop`].
#[derive(Debug)]
pub struct Running<'o> {
    pool: &'o mut Pool,
    nf: &'o Holder,
    fill: Producer<'o>,
    ctx: Ctx<'o>,
}

impl Running<'_> {
    /// Feed `frames` (arrived on `port`) through the handler in bursts of up to 32, then
    /// hand on what callbacks returned: what left, in order. A frame longer than a
    /// buffer is an error.
    pub fn frames<F: AsRef<[u8]>>(
        &mut self,
        handler: &mut impl Handler,
        port: u16,
        frames: &[F],
    ) -> Result<Vec<Sent>, NfError> {
        let mut out = Vec::with_capacity(frames.len());
        self.feed(handler, port, frames, &mut Sink::Copy(&mut out))?;
        Ok(out)
    }

    /// [`frames`](Self::frames) without copying what leaves: how many left (any
    /// action but keep). For measuring a handler's cost per packet: what is left is the
    /// handler, a frame's copy into its buffer and the library's bookkeeping.
    pub fn pass<F: AsRef<[u8]>>(
        &mut self,
        handler: &mut impl Handler,
        port: u16,
        frames: &[F],
    ) -> Result<u64, NfError> {
        let mut n = 0;
        self.feed(handler, port, frames, &mut Sink::Count(&mut n))?;
        Ok(n)
    }

    fn feed<F: AsRef<[u8]>>(
        &mut self,
        handler: &mut impl Handler,
        port: u16,
        frames: &[F],
        sink: &mut Sink<'_>,
    ) -> Result<(), NfError> {
        let mut bufs = Vec::with_capacity(BURST);
        let mut actions = Vec::with_capacity(BURST);
        for burst in frames.chunks(BURST) {
            for f in burst {
                match self.load(port, f.as_ref()) {
                    Ok(b) => bufs.push(b),
                    Err(e) => {
                        bufs.drain(..).for_each(|b| self.free(b));
                        return Err(e);
                    }
                }
            }
            actions.clear();
            actions.resize(bufs.len(), Action::Next);
            self.ctx.counters.rx += bufs.len() as u64;
            handler.batch(
                &mut Batch {
                    holder: self.nf,
                    bufs: &mut bufs,
                    actions: &mut actions,
                },
                &mut self.ctx,
            );
            for (buf, &a) in bufs.drain(..).zip(&actions) {
                match a.verdict() {
                    Some(v) => self.leave(buf, v, sink),
                    None if self.ctx.held < self.ctx.quota => {
                        self.ctx.counters.act_buffer += 1;
                        self.ctx.held += 1;
                        self.ctx.kept.push(buf);
                    }
                    // Over its quota a kept packet goes back, as the manager would drop it.
                    None => self.leave(buf, Verdict::OverQuota, sink),
                }
            }
            self.returned(sink);
        }
        Ok(())
    }

    /// Call the handler's `tick`: what it returned meanwhile.
    pub fn tick(&mut self, handler: &mut impl Handler) -> Vec<Sent> {
        handler.tick(&mut self.ctx);
        let mut out = Vec::new();
        self.returned(&mut Sink::Copy(&mut out));
        out
    }

    /// Deliver a message from `from` (0 = the manager): what the handler returned.
    pub fn message(&mut self, handler: &mut impl Handler, from: u16, bytes: &[u8]) -> Vec<Sent> {
        handler.message(from, bytes, &mut self.ctx);
        let mut out = Vec::new();
        self.returned(&mut Sink::Copy(&mut out));
        out
    }

    /// The NF's counters so far (rx, actions, allocations).
    pub fn counters(&self) -> NfCounters {
        self.ctx.counters
    }

    /// Packets the handler keeps now.
    pub fn kept(&self) -> usize {
        self.ctx.kept.len()
    }

    /// Messages the handler sent and nobody took yet, oldest first: taking them is what
    /// the runtime's housekeeping does (until then they wait, up to
    /// [`MAX_PENDING_MSGS`](crate::MAX_PENDING_MSGS)).
    pub fn take_messages(&mut self) -> Vec<NfMsg> {
        std::mem::take(&mut self.ctx.msgs)
    }

    /// Call the handler's `stop`; kept packets are dropped, as when an NF stops. Its
    /// final counters.
    pub fn stop(mut self, handler: &mut impl Handler) -> NfCounters {
        handler.stop(&mut self.ctx);
        let mut out = Vec::new();
        self.returned(&mut Sink::Copy(&mut out));
        for b in std::mem::take(&mut self.ctx.kept) {
            self.free(b);
        }
        self.ctx.counters
    }

    /// A pool buffer holding `frame`, handed to the NF as if from `port`.
    fn load(&mut self, port: u16, frame: &[u8]) -> Result<Buf, NfError> {
        let mut buf = self
            .pool
            .alloc()
            .ok_or_else(|| NfError::Option("the offline pool is empty (the handler keeps too many)".into()))?;
        let loaded = self.pool.holder().packet_reset(&mut buf).and_then(|mut p| {
            p.copy_from(frame)?;
            p.meta().set_in_port(port);
            Ok(())
        });
        if let Err(e) = loaded {
            self.pool.free(buf);
            return Err(e.into());
        }
        let raw = self.pool.holder().send(buf, NF);
        Ok(self.nf.claim(raw)?)
    }

    /// A packet leaves with `v`: counted, copied out if the sink wants it, its buffer
    /// given back.
    fn leave(&mut self, mut buf: Buf, v: Verdict, sink: &mut Sink<'_>) {
        self.count(v);
        match sink {
            Sink::Copy(out) => {
                let (frame, in_port) = match self.nf.packet(&mut buf) {
                    Ok(p) => (p.data().to_vec(), p.meta().in_port()),
                    Err(_) => (Vec::new(), 0),
                };
                out.push(Sent {
                    action: action_of(v),
                    frame,
                    in_port,
                });
            }
            Sink::Count(n) => **n += 1,
        }
        self.free(buf);
    }

    fn count(&mut self, v: Verdict) {
        let c = &mut self.ctx.counters;
        c.tx += 1;
        match v {
            Verdict::Drop | Verdict::OverQuota => c.act_drop += 1,
            Verdict::Next => c.act_next += 1,
            Verdict::ToService(_) | Verdict::ToInstance(_) | Verdict::EdgeFull(_) => c.act_tonf += 1,
            Verdict::Out(_) => c.act_out += 1,
        }
    }

    /// What callbacks returned with [`Ctx::return_pkt`], then the alloc ring topped up.
    fn returned(&mut self, sink: &mut Sink<'_>) {
        for (buf, v) in std::mem::take(&mut self.ctx.returned) {
            self.leave(buf, v, sink);
        }
        self.top_up();
    }

    /// An NF buffer back to the pool.
    fn free(&mut self, buf: Buf) {
        let raw = self.nf.send(buf, OwnerId::MANAGER);
        if let Ok(b) = self.pool.holder().claim(raw) {
            self.pool.free(b);
        }
    }

    /// Keep the alloc ring at its level, as the manager does.
    fn top_up(&mut self) {
        let cap = self.fill.capacity();
        let queued = self.fill.free().map_or(cap, |free| cap - free);
        let have = self.ctx.fresh.len() + queued as usize;
        let mut bufs = Vec::new();
        self.pool.alloc_burst(ALLOC_LEVEL.saturating_sub(have), &mut bufs);
        // The ring holds 256 and is kept at 64, so every buffer fits.
        let _ = self.pool.holder().enqueue(&mut self.fill, NF, &mut bufs);
        bufs.into_iter().for_each(|b| self.pool.free(b));
    }
}

/// The action a verdict stands for (`OverQuota` and a full edge read as what the
/// manager makes of them: a drop, a send to the instance).
fn action_of(v: Verdict) -> Action {
    match v {
        Verdict::Drop | Verdict::OverQuota => Action::Drop,
        Verdict::Next => Action::Next,
        Verdict::ToService(s) => Action::ToService(s),
        Verdict::ToInstance(i) | Verdict::EdgeFull(i) => Action::ToInstance(i),
        Verdict::Out(p) => Action::Out(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::handler_fn;

    /// Keeps every second packet and sends the kept ones out of port 3 on the tick,
    /// after stamping them.
    #[derive(Default)]
    struct Delay;

    impl Handler for Delay {
        fn packet(&mut self, pkt: &mut onvm_shm::PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
            if pkt.data()[0] % 2 == 1 {
                Action::Keep
            } else {
                Action::Next
            }
        }
        fn tick(&mut self, ctx: &mut Ctx<'_>) {
            for mut k in ctx.take_kept() {
                if let Ok(mut p) = ctx.packet(&mut k) {
                    p.data_mut()[1] = 0xee;
                }
                ctx.return_pkt(k, Action::Out(3));
            }
            let mut fresh = ctx.alloc().expect("an allocated buffer");
            ctx.packet(&mut fresh).unwrap().copy_from(&[9; 60]).unwrap();
            ctx.return_pkt(fresh, Action::ToService(4));
        }
    }

    #[test]
    fn kept_allocated_and_returned_packets_come_out_like_in_a_chain() {
        let mut off = Offline::new().unwrap();
        let mut h = Delay;
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 64]).collect();
        let out = sim.frames(&mut h, 2, &frames).unwrap();
        assert_eq!(out.len(), 50);
        assert!(
            out.iter()
                .all(|s| s.action == Action::Next && s.in_port == 2 && s.frame[0] % 2 == 0)
        );
        assert_eq!(sim.kept(), 50);
        let out = sim.tick(&mut h);
        assert_eq!(out.len(), 51);
        assert!(
            out[..50]
                .iter()
                .all(|s| s.action == Action::Out(3) && s.frame[1] == 0xee)
        );
        assert_eq!((out[50].action, out[50].frame.len()), (Action::ToService(4), 60));
        let c = sim.stop(&mut h);
        assert_eq!((c.rx, c.tx, c.act_buffer, c.allocated), (100, 101, 50, 1));
        // Every buffer is back: a million more frames run through the same pool.
        let mut pass = handler_fn(|_, _| Action::Next);
        let mut sim = off.start(&mut pass);
        for _ in 0..300 {
            assert_eq!(sim.frames(&mut pass, 0, &frames).unwrap().len(), 100);
            assert_eq!(sim.pass(&mut pass, 0, &frames).unwrap(), 100);
        }
        assert_eq!(sim.counters().tx, 60_000);
    }

    /// Sends one message per packet; remembers what `send_msg` said.
    #[derive(Default)]
    struct Chatty {
        refused: Vec<String>,
        size: usize,
    }

    impl Handler for Chatty {
        fn packet(&mut self, _pkt: &mut onvm_shm::PacketMut<'_>, ctx: &mut Ctx<'_>) -> Action {
            if let Err(e) = ctx.send_msg(onvm_proto::ctrl::Dest::Service(2), vec![7; self.size]) {
                self.refused.push(e.to_string());
            }
            Action::Next
        }
    }

    #[test]
    fn a_message_too_long_or_one_too_many_is_refused_not_fatal() {
        use onvm_proto::limits::MAX_MSG_PAYLOAD;
        let mut off = Offline::new().unwrap();
        let mut h = Chatty {
            size: MAX_MSG_PAYLOAD + 1,
            ..Default::default()
        };
        let mut sim = off.start(&mut h);
        sim.frames(&mut h, 0, &[vec![0u8; 60]]).unwrap();
        assert!(h.refused[0].contains("longer than a message may be"), "{:?}", h.refused);
        h.size = 10;
        h.refused.clear();
        // Nobody takes them here (no housekeeping): the queue fills and then refuses.
        let frames = vec![vec![0u8; 60]; crate::ctx::MAX_PENDING_MSGS + 5];
        sim.frames(&mut h, 0, &frames).unwrap();
        assert_eq!(h.refused.len(), 5, "{:?}", h.refused.first());
        assert!(h.refused[0].contains("still waiting"), "{}", h.refused[0]);
        assert_eq!(sim.take_messages().len(), crate::ctx::MAX_PENDING_MSGS);
        sim.frames(&mut h, 0, &frames[..3]).unwrap();
        assert_eq!((h.refused.len(), sim.take_messages().len()), (5, 3));
    }

    #[test]
    fn over_its_quota_a_kept_packet_is_dropped_and_a_huge_frame_is_an_error() {
        let mut off = Offline::new().unwrap().quota(10);
        let mut keep = handler_fn(|_, _| Action::Keep);
        let mut sim = off.start(&mut keep);
        let out = sim.frames(&mut keep, 0, &vec![vec![1u8; 60]; 12]).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|s| s.action == Action::Drop));
        assert_eq!(sim.kept(), 10);
        let e = sim.frames(&mut keep, 0, &[vec![0u8; 5000]]).unwrap_err();
        assert!(e.to_string().contains("buffer"), "{e}");
    }
}
