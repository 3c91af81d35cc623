//! Flows that move between instances keep their order.
//!
//! When an instance joins a service (a new replica, a hung one reading again), the
//! service's RETA gives it buckets of the other instances. Packets of those flows may
//! still wait for the old instance: in its rx ring, in edges into it. Had the new
//! packets gone straight to the new instance, both instances would handle the flow at
//! once for a while (measured: tens of ms when the old one is the overloaded one that
//! called for the replica), and its order would break. So a moved bucket's packets wait
//! in the manager, a *handover*, until the old instance has read what was queued for it
//! when the table changed: its rx ring past a mark, and no edge into it left (closing an
//! edge waits for its reader to empty it). Then they go to the new instance, ahead of
//! anything after them.
//!
//! Order is worth a short wait, not a stall or a loss: an old instance that does not
//! get there within [`WAIT`] (hung, very slow), or a hold that reaches [`HOLD_MAX`]
//! packets, lets its packets go anyway, and an event says so; an old instance that went
//! lets them go at once.
//!
//! [`Handovers`] is the pure policy (which buckets moved, which packets wait, when a
//! wait ends); the `Fwd` methods at the end read the rings and move the buffers.

use std::time::{Duration, Instant};

use onvm_proto::limits::RETA_SIZE;

use super::{DropReason, Fwd};
use crate::registry::rings_of;

/// The longest a moved flow's packets wait for the old instance.
pub(super) const WAIT: Duration = Duration::from_millis(200);
/// The most packets one handover holds (a ring's worth at the default size).
pub(super) const HOLD_MAX: usize = 4096;

/// One old instance handing buckets of one service to a new instance.
#[derive(Debug)]
pub(super) struct Handover<T> {
    pub(super) service: u16,
    pub(super) from: u16,
    pub(super) to: u16,
    /// The RETA buckets that moved (index: flow hash modulo [`RETA_SIZE`]).
    buckets: Vec<bool>,
    /// The old instance's rx ring index it must consume up to (what the manager had
    /// written or queued for it when the table changed).
    pub(super) mark: u32,
    pub(super) since: Instant,
    /// Packets of moved flows, in arrival order; at [`HOLD_MAX`] no more wait.
    pub(super) held: Vec<T>,
    /// Where the old instance's rx ring index was when first seen past the mark.
    past: Option<u32>,
}

/// What the switch sees of a handover's instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// It is over for a reason of the instances' own ([`End::OldGone`], [`End::NewGone`]).
    Over(End),
    /// The old instance's rx ring: its consumer index, whether it is empty; and whether
    /// an edge still leads into the old instance.
    Old { consumed: u32, empty: bool, edges: bool },
}

/// Why a handover ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// The old instance read past its mark (the normal end).
    Read,
    /// The old instance went or hung: nothing of it is left to wait for.
    OldGone,
    /// The new instance went: its held packets have nowhere to go.
    NewGone,
    /// The old instance did not get there in [`WAIT`].
    TimedOut,
    /// [`HOLD_MAX`] packets waited.
    Full,
}

/// The handovers in progress; `T` is what waits (the switch's buffers).
#[derive(Debug)]
pub(super) struct Handovers<T> {
    list: Vec<Handover<T>>,
}

impl<T> Default for Handovers<T> {
    fn default() -> Self {
        Handovers { list: Vec::new() }
    }
}

impl<T> Handovers<T> {
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A service's table changed from `before` to `after` (its RETA entries): start a
    /// handover for each old instance that gave buckets to another, with `mark_of` its
    /// mark. Buckets that had no instance, or whose old instance is `gone`, wait for
    /// nothing.
    pub(super) fn table_changed(
        &mut self,
        service: u16,
        before: &[Option<u16>],
        after: &[Option<u16>],
        now: Instant,
        mut mark_of: impl FnMut(u16) -> Option<u32>,
    ) {
        for (bucket, (&old, &new)) in before.iter().zip(after).enumerate() {
            let (Some(from), Some(to)) = (old, new) else {
                continue;
            };
            if from == to {
                continue;
            }
            let h = match self.list.iter_mut().position(|h| h.from == from && h.to == to) {
                Some(i) => &mut self.list[i],
                None => {
                    let Some(mark) = mark_of(from) else {
                        continue;
                    };
                    self.list.push(Handover {
                        service,
                        from,
                        to,
                        buckets: vec![false; RETA_SIZE],
                        mark,
                        since: now,
                        held: Vec::new(),
                        past: None,
                    });
                    self.list.last_mut().expect("just pushed")
                }
            };
            h.buckets[bucket] = true;
        }
    }

    /// A packet for instance `to` with flow hash `hash`: `None` if it waits (it is
    /// kept), else the packet back, to go on.
    #[inline]
    pub(super) fn hold(&mut self, to: u16, hash: u32, buf: T) -> Option<T> {
        let bucket = hash as usize % RETA_SIZE;
        match self.list.iter_mut().find(|h| h.to == to && h.buckets[bucket]) {
            Some(h) if h.held.len() < HOLD_MAX => {
                h.held.push(buf);
                None
            }
            _ => Some(buf),
        }
    }

    /// End the handovers that are over, in the order they started, given what `look`
    /// sees of each; each is given to `done` with why.
    ///
    /// The old instance publishes its rx index when it takes a burst, not when it has
    /// handled it: seen past its mark, it may still be handling the packet at the mark.
    /// So the handover ends when the index moves on once more (it came back for more,
    /// so that burst is done), or, if nothing is left to read, at the next settle (a
    /// control tick later).
    pub(super) fn settle(
        &mut self,
        now: Instant,
        mut look: impl FnMut(&Handover<T>) -> Look,
        mut done: impl FnMut(Handover<T>, End),
    ) {
        let mut i = 0;
        while i < self.list.len() {
            let h = &mut self.list[i];
            let why = match look(h) {
                _ if h.held.len() >= HOLD_MAX => Some(End::Full),
                Look::Over(why) => Some(why),
                Look::Old { edges: true, .. } => None,
                Look::Old { consumed, .. } if !read_past(consumed, h.mark) => None,
                Look::Old { consumed, empty, .. } => match h.past {
                    Some(at) if at != consumed || empty => Some(End::Read),
                    _ => {
                        h.past = Some(consumed);
                        None
                    }
                },
            };
            match why.or((now.duration_since(h.since) >= WAIT).then_some(End::TimedOut)) {
                Some(why) => done(self.list.remove(i), why),
                None => i += 1,
            }
        }
    }

    /// Every handover, ended (the manager stops: what waits goes where it was going).
    pub(super) fn take_all(&mut self) -> Vec<Handover<T>> {
        std::mem::take(&mut self.list)
    }
}

/// Whether a consumer at `consumed` has read up to `mark` (free-running indices).
pub(super) fn read_past(consumed: u32, mark: u32) -> bool {
    consumed.wrapping_sub(mark) as i32 >= 0
}

impl Fwd<'_> {
    /// The RETA entries of `service` now, to give [`Fwd::hand_over`] after a change.
    pub(super) fn reta_now(&self, service: u16) -> Option<Vec<Option<u16>>> {
        self.reg.reta(service).map(|r| r.entries().to_vec())
    }

    /// `service`'s table changed from `before`: flows that moved from a running
    /// instance wait for it to read what it had been sent (see the module doc).
    pub(super) fn hand_over(&mut self, service: u16, before: Option<Vec<Option<u16>>>, now: Instant) {
        let Fwd {
            reg,
            region,
            to_nf,
            handovers,
            ..
        } = self;
        let (Some(before), Some(after)) = (before, reg.reta(service)) else {
            return;
        };
        handovers.table_changed(service, &before, after.entries(), now, |from| {
            reg.get(from).filter(|i| !i.hung)?;
            let queued = to_nf.get(usize::from(from) - 1).map_or(0, Vec::len) as u32;
            Some(region.ring(rings_of(from).rx).ok()?.produced().wrapping_add(queued))
        });
    }

    /// End the handovers that are over: their packets go on to the new instance (or
    /// are dropped, `no-instance`, if it went). Every control tick, and when an
    /// instance goes.
    pub(super) fn settle_handovers(&mut self, now: Instant) {
        if self.handovers.is_empty() {
            return;
        }
        let Fwd {
            reg,
            region,
            direct,
            handovers,
            to_nf,
            acct,
            pool,
            ..
        } = self;
        handovers.settle(
            now,
            |h| {
                if reg.get(h.to).is_none() {
                    return Look::Over(End::NewGone);
                }
                if reg.get(h.from).is_none_or(|i| i.hung) {
                    return Look::Over(End::OldGone);
                }
                // Indices read here are not trusted: a scribbled one ends the wait early
                // (that flow's order, no more) or late (the timeout bounds it).
                let Ok(rx) = region.ring(rings_of(h.from).rx) else {
                    return Look::Over(End::OldGone);
                };
                Look::Old {
                    consumed: rx.consumed(),
                    empty: rx.len().is_ok_and(|n| n == 0),
                    edges: direct.edges.iter().any(|e| e.to == h.from),
                }
            },
            |h, why| {
                let (n, waited) = (h.held.len(), now.duration_since(h.since));
                let what = match why {
                    End::Read => "it had read what was queued for it",
                    End::OldGone => "it went or hung",
                    End::NewGone => "the new instance went: the held packets are dropped as no-instance",
                    End::TimedOut => "it did not read its queue in time: order may break",
                    End::Full => "too many packets waited: order may break",
                };
                acct.event(format!(
                    "service {}: flows moved from instance {} to {} after {waited:.1?} ({what}; {n} packets waited)",
                    h.service, h.from, h.to
                ));
                match (why, to_nf.get_mut(usize::from(h.to) - 1)) {
                    (End::NewGone, _) | (_, None) => acct.drop_all(pool, h.held, DropReason::NoInstance),
                    (_, Some(q)) => q.extend(h.held),
                }
            },
        );
    }

    /// The manager stops: what waits goes to the queues it was bound for.
    pub(super) fn end_handovers(&mut self) {
        for h in self.handovers.take_all() {
            match self.to_nf.get_mut(usize::from(h.to).wrapping_sub(1)) {
                Some(q) => q.extend(h.held),
                None => self.acct.drop_all(&mut self.pool, h.held, DropReason::NoInstance),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: fn() -> Instant = Instant::now;

    fn table(f: impl Fn(usize) -> u16) -> Vec<Option<u16>> {
        (0..RETA_SIZE).map(|b| Some(f(b))).collect()
    }

    #[test]
    fn moved_buckets_wait_for_their_old_instance_and_others_pass() {
        let mut h = Handovers::<u32>::default();
        let t = NOW();
        // Instance 1 had every bucket; instance 2 takes the odd ones.
        let before = table(|_| 1);
        let after = table(|b| if b % 2 == 1 { 2 } else { 1 });
        h.table_changed(4, &before, &after, t, |from| (from == 1).then_some(1000));
        assert_eq!(h.list.len(), 1);
        assert_eq!((h.list[0].from, h.list[0].to, h.list[0].mark), (1, 2, 1000));
        // A moved flow's packet waits; an unmoved flow's (to instance 1) and another
        // instance's pass.
        assert!(h.hold(2, 3, 7).is_none());
        assert!(h.hold(1, 2, 8).is_some());
        assert!(h.hold(3, 3, 9).is_some());
        let mut ended = Vec::new();
        let old = |consumed, empty, edges| move |_: &Handover<u32>| Look::Old { consumed, empty, edges };
        h.settle(t, old(990, false, false), |h, why| ended.push((h, why)));
        assert!(ended.is_empty(), "it waits while the old instance has not read");
        h.settle(t, old(1010, false, false), |h, why| ended.push((h, why)));
        assert!(
            ended.is_empty(),
            "read once: it may still be handling the packet at the mark"
        );
        h.settle(t, old(1010, false, true), |h, why| ended.push((h, why)));
        assert!(ended.is_empty(), "an edge into the old instance is still open");
        h.settle(t, old(1010, false, false), |h, why| ended.push((h, why)));
        assert!(ended.is_empty(), "it has not come back for more yet");
        h.settle(t, old(1042, false, false), |h, why| ended.push((h, why)));
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1, End::Read);
        assert_eq!(ended[0].0.held.len(), 1);
        assert!(h.is_empty());
        assert!(h.hold(2, 3, 10).is_some(), "no wait once handed over");
    }

    #[test]
    fn a_wait_ends_in_time_or_when_full_and_several_donors_each_get_one() {
        let mut h = Handovers::<u32>::default();
        let t = NOW();
        let before = table(|b| if b % 2 == 0 { 1 } else { 2 });
        let after = table(|b| {
            if b % 3 == 0 {
                3
            } else if b % 2 == 0 {
                1
            } else {
                2
            }
        });
        h.table_changed(4, &before, &after, t, |from| Some(u32::from(from)));
        assert_eq!(h.list.len(), 2, "one handover per donor: {:?}", h.list);
        for n in 0..HOLD_MAX as u32 {
            assert!(h.hold(3, 0, n).is_none());
        }
        assert!(h.hold(3, 0, 0).is_some(), "a full hold waits no more");
        let mut ended = Vec::new();
        let unread = |_: &Handover<u32>| Look::Old {
            consumed: 0,
            empty: false,
            edges: false,
        };
        h.settle(t, unread, |h, why| ended.push((h.from, why)));
        assert_eq!(ended, [(1, End::Full)]);
        h.settle(t + WAIT, unread, |h, why| ended.push((h.from, why)));
        assert_eq!(ended[1], (2, End::TimedOut));
    }

    #[test]
    fn an_old_instance_with_nothing_left_to_read_or_gone_ends_the_wait() {
        let mut h = Handovers::<u32>::default();
        let t = NOW();
        let (before, after) = (table(|_| 1), table(|b| 1 + (b % 2) as u16));
        h.table_changed(4, &before, &after, t, |_| Some(5));
        let mut ended = Vec::new();
        let idle = |_: &Handover<u32>| Look::Old {
            consumed: 5,
            empty: true,
            edges: false,
        };
        h.settle(t, idle, |_, why| ended.push(why));
        h.settle(t, idle, |_, why| ended.push(why));
        assert_eq!(ended, [End::Read], "a settle after it was seen with nothing to read");
        h.table_changed(4, &before, &after, t, |_| Some(5));
        h.settle(t, |_| Look::Over(End::OldGone), |_, why| ended.push(why));
        assert_eq!(ended[1], End::OldGone);
    }

    #[test]
    fn marks_compare_across_the_wrap() {
        assert!(read_past(5, u32::MAX - 2));
        assert!(!read_past(u32::MAX - 3, u32::MAX - 2));
        assert!(read_past(7, 7));
    }
}
