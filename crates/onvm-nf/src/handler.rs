//! The callbacks an NF implements.
//!
//! One trait with default methods rather than a builder of closures: an NF's
//! callbacks usually share state (a flow table, counters), and a struct implementing
//! [`Handler`] holds it without `Rc<RefCell<…>>`. Simple NFs wrap a closure with
//! [`handler_fn`].

use onvm_shm::{Buf, Holder, PacketMut};

use crate::action::Action;
use crate::ctx::Ctx;

/// A burst of received packets (up to 32) and the action chosen for each.
pub struct Batch<'b> {
    pub(crate) holder: &'b Holder,
    pub(crate) bufs: &'b mut [Buf],
    pub(crate) actions: &'b mut [Action],
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch").field("len", &self.bufs.len()).finish()
    }
}

impl Batch<'_> {
    /// Packets in the burst.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Whether the burst is empty (never, when a handler sees it).
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Packet `i`; `None` if its shared metadata is corrupt (it will be dropped).
    pub fn packet(&mut self, i: usize) -> Option<PacketMut<'_>> {
        self.holder.packet(&mut self.bufs[i]).ok()
    }

    /// The action chosen for packet `i` so far (default [`Action::Next`]).
    pub fn action(&self, i: usize) -> Action {
        self.actions[i]
    }

    /// Choose the action for packet `i`.
    pub fn set_action(&mut self, i: usize, a: Action) {
        self.actions[i] = a;
    }

    /// Set the same action for every packet.
    pub fn set_all(&mut self, a: Action) {
        self.actions.fill(a);
    }

    /// Choose every packet's action with `f`, which sees the packet in place (bytes and
    /// metadata); a packet whose shared metadata is corrupt is dropped without a call.
    /// What an NF that overrides `batch` usually wants: work once per burst (read the
    /// clock) around a decision per packet.
    pub fn map(&mut self, mut f: impl FnMut(&mut PacketMut<'_>) -> Action) {
        for (buf, a) in self.bufs.iter_mut().zip(self.actions.iter_mut()) {
            *a = match self.holder.packet(buf) {
                Ok(mut p) => f(&mut p),
                Err(_) => Action::Drop,
            };
        }
    }
}

/// An NF's callbacks. Implement [`Handler::packet`], or [`Handler::batch`] for NFs that
/// work on whole bursts; the rest are optional.
pub trait Handler {
    /// Once, after registration and before the first packet.
    fn setup(&mut self, _ctx: &mut Ctx<'_>) {}

    /// One packet: say where it goes.
    fn packet(&mut self, _pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        Action::Next
    }

    /// A burst. The default calls [`Handler::packet`] for each packet; a packet whose
    /// metadata is corrupt is dropped.
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        batch.map(|pkt| self.packet(pkt, ctx));
    }

    /// Periodically (the builder's tick interval), whether or not packets flow.
    fn tick(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A message from the manager (`from` = 0) or another NF.
    fn message(&mut self, _from: u16, _bytes: &[u8], _ctx: &mut Ctx<'_>) {}

    /// Once, when the NF stops (kept packets are still in `ctx` and are dropped after).
    fn stop(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// A handler from a per-packet closure.
pub fn handler_fn<F>(f: F) -> FnHandler<F>
where
    F: FnMut(&mut PacketMut<'_>, &mut Ctx<'_>) -> Action,
{
    FnHandler(f)
}

/// See [`handler_fn`].
#[derive(Debug)]
pub struct FnHandler<F>(F);

impl<F> Handler for FnHandler<F>
where
    F: FnMut(&mut PacketMut<'_>, &mut Ctx<'_>) -> Action,
{
    fn packet(&mut self, pkt: &mut PacketMut<'_>, ctx: &mut Ctx<'_>) -> Action {
        (self.0)(pkt, ctx)
    }
}

/// A handler borrowed mutably is a handler, so a caller can read its state (results,
/// counts) after [`Nf::run`](crate::Nf::run) returns.
impl<H: Handler + ?Sized> Handler for &mut H {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        (**self).setup(ctx)
    }
    fn packet(&mut self, pkt: &mut PacketMut<'_>, ctx: &mut Ctx<'_>) -> Action {
        (**self).packet(pkt, ctx)
    }
    fn batch(&mut self, batch: &mut Batch<'_>, ctx: &mut Ctx<'_>) {
        (**self).batch(batch, ctx)
    }
    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        (**self).tick(ctx)
    }
    fn message(&mut self, from: u16, bytes: &[u8], ctx: &mut Ctx<'_>) {
        (**self).message(from, bytes, ctx)
    }
    fn stop(&mut self, ctx: &mut Ctx<'_>) {
        (**self).stop(ctx)
    }
}
