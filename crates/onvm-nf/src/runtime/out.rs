//! Where outgoing packets go: the tx ring to the manager, or an edge ring to another NF.
//!
//! Packets wait here for the end of the burst, then [`Out::flush`] enqueues them. A
//! burst is routed by runs of equal actions, so a burst with one verdict costs one
//! lookup.

use onvm_proto::ctrl::NfCounters;
use onvm_proto::limits::MAX_SERVICES;
use onvm_proto::verdict::Verdict;
use onvm_shm::{BURST, Buf, Holder, OwnerId, Producer};

use crate::action::Action;
use crate::ctx::Ctx;
use crate::error::NfError;

/// Whether the manager still drains the tx ring (a full ring is then waited on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Manager {
    /// It drains the ring: wait for room.
    Draining,
    /// It went away: nobody will make room.
    Gone,
}

/// An edge this NF writes.
pub(super) struct OutEdge<'r> {
    /// What it is for: 0 = `Next`, else a service.
    pub(super) key: u16,
    pub(super) ring: u32,
    pub(super) to: OwnerId,
    pub(super) prod: Producer<'r>,
    /// The receiver's rx ring, only to ring its doorbell (it sleeps: shared core).
    pub(super) bell: Option<Producer<'r>>,
    pub(super) pending: Vec<Buf>,
}

/// Where outgoing packets wait for the end of the burst.
pub(super) struct Out<'r> {
    tx: Producer<'r>,
    /// The manager's wake-up ring: rung after packets go to the manager.
    wake: Producer<'r>,
    to_mgr: Vec<Buf>,
    /// Index into `edges` per key (0 = Next); `u8::MAX` = none.
    by_key: [u8; MAX_SERVICES as usize],
    edges: Vec<OutEdge<'r>>,
}

/// Count `n` packets with verdict `v`; the edge key they may take (0 = `Next`, else a
/// service), if any.
#[inline]
fn tally(counters: &mut NfCounters, v: Verdict, n: u64) -> Option<u16> {
    let key = match v {
        Verdict::Drop => {
            counters.act_drop += n;
            return None;
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
    counters.tx += n;
    key
}

/// Length of the run of equal actions that starts `actions`.
#[inline]
fn run_len(actions: &[Action]) -> usize {
    match actions.first() {
        Some(&a) => actions.iter().position(|&b| b != a).unwrap_or(actions.len()),
        None => 0,
    }
}

impl<'r> Out<'r> {
    pub(super) fn new(tx: Producer<'r>, wake: Producer<'r>) -> Self {
        Out {
            tx,
            wake,
            to_mgr: Vec::with_capacity(4 * BURST),
            by_key: [u8::MAX; MAX_SERVICES as usize],
            edges: Vec::new(),
        }
    }

    pub(super) fn route(&mut self, holder: &Holder, counters: &mut NfCounters, buf: Buf, v: Verdict) {
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
        if let Some(k) = tally(counters, v, n)
            && let Some(&e) = self.by_key.get(usize::from(k))
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
    #[inline]
    pub(super) fn route_burst(&mut self, holder: &Holder, ctx: &mut Ctx<'_>, bufs: &mut Vec<Buf>, actions: &[Action]) {
        let mut start = 0;
        while start < actions.len() {
            let a = actions[start];
            let n = run_len(&actions[start..]);
            let run = bufs.drain(..n);
            match a.verdict() {
                Some(v) => self.route_run(holder, &mut ctx.counters, run, n as u64, v),
                None => {
                    ctx.counters.act_buffer += n as u64;
                    ctx.kept.extend(run);
                }
            }
            start += n;
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
    /// drains it, unless it is gone.
    #[inline]
    pub(super) fn flush(
        &mut self,
        holder: &Holder,
        counters: &mut NfCounters,
        manager: Manager,
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
        if self.to_mgr.is_empty() {
            return Ok(());
        }
        let mut spins = 0u32;
        while !self.to_mgr.is_empty() {
            if holder.enqueue(&mut self.tx, OwnerId::MANAGER, &mut self.to_mgr)? == 0 {
                self.wake.notify();
                spins += 1;
                if spins.is_multiple_of(1024) && manager == Manager::Gone {
                    return Err(NfError::Protocol("the manager went away".into()));
                }
                std::thread::yield_now();
            }
        }
        // Wakes the manager if it sleeps (a fence and a load otherwise).
        self.wake.notify();
        Ok(())
    }

    /// Start writing an edge.
    pub(super) fn add(&mut self, e: OutEdge<'r>) {
        // `NfEdges` accepts only keys below MAX_SERVICES, one edge each.
        debug_assert!(usize::from(e.key) < self.by_key.len() && self.edges.len() < usize::from(u8::MAX));
        let Some(slot) = self.by_key.get_mut(usize::from(e.key)) else {
            return;
        };
        *slot = self.edges.len() as u8;
        self.edges.push(e);
    }

    /// Stop writing the edge on `ring`; its unsent packets go to the manager instead.
    pub(super) fn remove(&mut self, holder: &Holder, ring: u32) {
        let Some(i) = self.edges.iter().position(|e| e.ring == ring) else {
            return;
        };
        let e = self.edges.remove(i);
        self.by_key = [u8::MAX; MAX_SERVICES as usize];
        for (k, e) in self.edges.iter().enumerate() {
            self.by_key[usize::from(e.key)] = k as u8;
        }
        let v = match e.key {
            0 => Verdict::Next,
            s => Verdict::ToService(s),
        };
        for buf in e.pending {
            self.via_manager(holder, buf, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_maximal_stretches_of_one_action() {
        use Action::*;
        assert_eq!(run_len(&[]), 0);
        assert_eq!(run_len(&[Next; 32]), 32);
        assert_eq!(run_len(&[Next, Next, Drop, Next]), 2);
        assert_eq!(run_len(&[ToService(2), ToService(3)]), 1);
        assert_eq!(run_len(&[Keep, Keep, Keep]), 3);
    }

    #[test]
    fn each_verdict_is_counted_once_per_packet_and_may_take_an_edge() {
        let mut c = NfCounters::default();
        assert_eq!(tally(&mut c, Verdict::Next, 3), Some(0));
        assert_eq!(tally(&mut c, Verdict::ToService(5), 2), Some(5));
        assert_eq!(tally(&mut c, Verdict::ToInstance(9), 1), None);
        assert_eq!(tally(&mut c, Verdict::Out(1), 4), None);
        assert_eq!(tally(&mut c, Verdict::Drop, 6), None);
        let want = NfCounters {
            act_next: 3,
            act_tonf: 3,
            act_out: 4,
            act_drop: 6,
            tx: 10,
            ..NfCounters::default()
        };
        assert_eq!(c, want, "dropped packets are not sent");
    }
}
