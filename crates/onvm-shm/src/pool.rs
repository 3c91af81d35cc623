//! The manager's packet pool: the free lists, the audit and crash reclaim.
//!
//! The free lists are plain `Vec`s in the manager's own memory, not in the region: one
//! party uses them, so they need no synchronisation, and no NF can corrupt them. NFs get
//! buffers through rings the manager fills.
//!
//! The buffers are split into one contiguous [`Slice`] per NUMA node in use, each with
//! its own free list, so that a port's packets can land in memory of the port's node
//! ([`Pool::prefer_node`]) while every party still sees one region and one index space
//! (rings and NFs do not know about nodes). A freed buffer goes back to the slice its
//! index lies in; an allocation takes from the preferred slice and, when that is empty,
//! from the others in order, so splitting never makes the pool smaller.

use crate::buffer::{Buf, BufIdx, Owner, OwnerId};
use crate::error::{RingError, ShmError};
use crate::region::{Holder, Region};
use std::fmt;
use std::io;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Where the audit found one buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Nowhere,
    Free,
    Ring,
}

/// The result of [`Pool::audit`]: where every buffer is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub total: u32,
    pub free: u32,
    pub in_rings: u32,
    /// Held by the manager or a live NF.
    pub held: u32,
    /// Buffers found nowhere: not free, in no ring, not held by anyone alive.
    pub missing: Vec<(u32, Option<Owner>)>,
    /// Buffers found in two places (two rings, twice in one ring, ring and free list).
    pub duplicated: Vec<u32>,
    /// Ring entries that are not buffer indices at all.
    pub garbage: Vec<(u32, u32)>,
    /// Rings whose indices are corrupt (their entries could not be counted).
    pub bad_rings: Vec<(u32, RingError)>,
}

impl Audit {
    /// Every buffer is in exactly one place: free + in rings + held == pool size.
    pub fn is_whole(&self) -> bool {
        self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.garbage.is_empty()
            && self.bad_rings.is_empty()
            && self.free + self.in_rings + self.held == self.total
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool {}: {} buffers = {} free + {} in rings + {} held",
            if self.is_whole() { "whole" } else { "NOT whole" },
            self.total,
            self.free,
            self.in_rings,
            self.held
        )?;
        let few = |v: Vec<String>| {
            let n = v.len();
            let mut s = v.into_iter().take(8).collect::<Vec<_>>().join(", ");
            if n > 8 {
                s += &format!(", ... ({n} in all)");
            }
            s
        };
        if !self.missing.is_empty() {
            let v = self
                .missing
                .iter()
                .map(|(i, o)| format!("{i} ({})", o.map_or("garbage owner".into(), |o| o.to_string())));
            write!(f, "; missing: {}", few(v.collect()))?;
        }
        if !self.duplicated.is_empty() {
            write!(
                f,
                "; duplicated: {}",
                few(self.duplicated.iter().map(u32::to_string).collect())
            )?;
        }
        if !self.garbage.is_empty() {
            write!(
                f,
                "; garbage in rings: {}",
                few(self.garbage.iter().map(|(r, v)| format!("ring {r}: {v}")).collect())
            )?;
        }
        for (r, e) in &self.bad_rings {
            write!(f, "; ring {r}: {e}")?;
        }
        Ok(())
    }
}

/// What [`Pool::reclaim`] got back from a dead owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Buffers waiting in rings towards the dead owner.
    pub from_rings: u32,
    /// Buffers the dead owner held.
    pub held: u32,
    /// Buffers it was enqueueing when it died (owner entry written, index not published),
    /// or that it sent where no consumer will take them.
    pub torn: u32,
    /// Buffers sent to it that are in no ring any more and that it never claimed: it
    /// moved its consumer index past them, or they sat in a ring of its that it
    /// corrupted (and whose entries could not be read).
    pub stranded: u32,
    /// Rings of the dead owner whose indices were corrupt (their entries could not be
    /// read; the audit lists them until the manager resets them).
    pub corrupt_rings: u32,
}

impl Reclaimed {
    pub fn total(&self) -> u32 {
        self.from_rings + self.held + self.torn + self.stranded
    }
}

/// One NUMA node's share of the buffers: indices `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// The node its pages should live on.
    pub node: u16,
    pub first: u32,
    pub last: u32,
}

impl Slice {
    pub fn range(&self) -> RangeInclusive<u32> {
        self.first..=self.last
    }

    /// Buffers in it (at least one).
    pub fn count(&self) -> u32 {
        self.last - self.first + 1
    }
}

/// Free buffers on their way from one [`Pool`] of a region to another of the same
/// region ([`Pool::give`], [`Pool::take`]): their owner entries say `Free` all along.
#[derive(Debug, Default)]
pub struct FreeBufs {
    region: u32,
    idx: Vec<u32>,
}

impl FreeBufs {
    /// How many.
    pub fn len(&self) -> usize {
        self.idx.len()
    }

    /// None.
    pub fn is_empty(&self) -> bool {
        self.idx.is_empty()
    }
}

/// The manager's side of the region: the free lists and the manager's [`Holder`].
#[derive(Debug)]
pub struct Pool {
    holder: Holder,
    /// Ascending, adjacent index ranges covering 1..=N.
    slices: Vec<Slice>,
    /// One free list per slice.
    free: Vec<Vec<u32>>,
    /// The slice allocations come from first.
    preferred: usize,
}

impl Pool {
    /// Take charge of a freshly created region: every buffer starts free, in one slice
    /// for node 0. Fails if this process already attached the manager's owner id.
    pub fn new(region: &Arc<Region>) -> Result<Pool, ShmError> {
        Pool::with_nodes(region, &[0])
    }

    /// As [`Pool::new`], with the buffers split into one contiguous slice per node of
    /// `nodes`, in that order and as even as can be (the first slices get the
    /// remainder); the first node's slice is preferred until [`Pool::prefer_node`].
    pub fn with_nodes(region: &Arc<Region>, nodes: &[u16]) -> Result<Pool, ShmError> {
        let n = region.buffers();
        if nodes.is_empty() || nodes.len() > n as usize {
            return Err(ShmError::Config(format!(
                "{} NUMA slices for {n} buffers: need 1..={n}",
                nodes.len()
            )));
        }
        if let Some(twice) = nodes.iter().enumerate().find(|(i, n)| nodes[..*i].contains(n)) {
            return Err(ShmError::Config(format!("node {} has two slices", twice.1)));
        }
        let holder = region.holder(OwnerId::MANAGER)?;
        for i in 1..=n {
            if region.owner(BufIdx(i)) != Some(Owner::Free) {
                return Err(ShmError::BadHeader(format!("buffer {i} of a new region is not free")));
            }
        }
        let k = nodes.len() as u32;
        let mut first = 1;
        let slices: Vec<Slice> = nodes
            .iter()
            .enumerate()
            .map(|(i, &node)| {
                let len = n / k + u32::from((i as u32) < n % k);
                let s = Slice {
                    node,
                    first,
                    last: first + len - 1,
                };
                first += len;
                s
            })
            .collect();
        // Popped from the end: hand out low indices first (nicer to read in traces).
        let free = slices.iter().map(|s| s.range().rev().collect()).collect();
        Ok(Pool {
            holder,
            slices,
            free,
            preferred: 0,
        })
    }

    pub fn region(&self) -> &Arc<Region> {
        self.holder.region()
    }

    /// The manager's holder, for claiming from and sending to rings.
    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The slices, in index order.
    pub fn slices(&self) -> &[Slice] {
        &self.slices
    }

    /// Take the next allocations from `node`'s slice (while it has buffers); a node
    /// without a slice means the first slice. Cheap enough to call before every port
    /// poll.
    #[inline]
    pub fn prefer_node(&mut self, node: u16) {
        self.preferred = self.slices.iter().position(|s| s.node == node).unwrap_or(0);
    }

    /// The node allocations come from first.
    pub fn preferred_node(&self) -> u16 {
        self.slices[self.preferred].node
    }

    /// Ask the kernel to keep each slice's pages on its node ([`Region::prefer_node`]);
    /// each slice with what the kernel said.
    pub fn bind_slices(&self) -> Vec<(Slice, io::Result<()>)> {
        self.slices
            .iter()
            .map(|s| (*s, self.region().prefer_node(s.range(), s.node)))
            .collect()
    }

    pub fn free_count(&self) -> u32 {
        self.free.iter().map(|f| f.len() as u32).sum()
    }

    /// Free buffers in `node`'s slice (0 if it has none).
    pub fn free_on(&self, node: u16) -> u32 {
        self.slices
            .iter()
            .position(|s| s.node == node)
            .map_or(0, |i| self.free[i].len() as u32)
    }

    /// A fresh buffer held by the manager, empty, with the default headroom: from the
    /// preferred slice, else from the first other slice that has one.
    #[inline]
    pub fn alloc(&mut self) -> Option<Buf> {
        let i = match self.free[self.preferred].pop() {
            Some(i) => i,
            None => self.free.iter_mut().find_map(Vec::pop)?,
        };
        Some(self.holder.adopt_empty(BufIdx(i), self.region().layout().headroom))
    }

    /// Up to `n` fresh buffers appended to `out`, each as [`Pool::alloc`] makes it and in
    /// the order repeated `alloc`s would give; returns how many.
    ///
    /// A port receives a burst at a time, so this takes each slice's share off the end
    /// of its free list in one pass (no call, no slice search per buffer): it is most of
    /// a receive's cost on ports that copy nothing (`null:64B`, DPDK's `net_null`).
    pub fn alloc_burst(&mut self, n: usize, out: &mut Vec<Buf>) -> usize {
        let headroom = self.region().layout().headroom;
        let (holder, free) = (&self.holder, &mut self.free);
        out.reserve(n);
        let mut got = 0;
        // The preferred slice, then the others in index order (as `alloc` falls back).
        let others = (0..free.len()).filter(|&s| s != self.preferred);
        for s in std::iter::once(self.preferred).chain(others) {
            if got == n {
                break;
            }
            let list = &mut free[s];
            let k = (n - got).min(list.len());
            let from = list.len() - k;
            // Popped from the end: the last index first.
            out.extend(
                list.drain(from..)
                    .rev()
                    .map(|i| holder.adopt_empty(BufIdx(i), headroom)),
            );
            got += k;
        }
        got
    }

    /// A pool of its own for another thread of this process: owner `id` (it must not
    /// be attached here yet), the same slices, and up to `n` of this pool's free
    /// buffers. A switch thread beside the manager's main one allocates and frees
    /// through it without touching this pool (DPDK's per-lcore mempool cache, but one
    /// that another thread refills through [`Pool::give`] and [`Pool::take`]). The
    /// buffers it holds are `Held(id)` in the owner table, so an audit here must list
    /// `id` as live while the share exists, and the share must be handed back whole
    /// ([`Pool::give`] of all, then [`Pool::take`] here) before this pool's final audit.
    pub fn share(&mut self, id: OwnerId, n: u32) -> Result<Pool, ShmError> {
        let holder = self.region().holder(id).map_err(|e| ShmError::Config(e.to_string()))?;
        let mut share = Pool {
            holder,
            slices: self.slices.clone(),
            free: vec![Vec::new(); self.slices.len()],
            preferred: self.preferred,
        };
        share.take(self.give(n));
        Ok(share)
    }

    /// Up to `n` free buffers out of this pool, for another pool of the region
    /// ([`Pool::take`]): from the preferred slice first, as allocations are.
    pub fn give(&mut self, n: u32) -> FreeBufs {
        let mut left = n as usize;
        let mut idx = Vec::with_capacity(left.min(self.free_count() as usize));
        let others = (0..self.free.len()).filter(|&s| s != self.preferred);
        for s in std::iter::once(self.preferred).chain(others) {
            let list = &mut self.free[s];
            let k = left.min(list.len());
            idx.extend(list.drain(list.len() - k..));
            left -= k;
        }
        FreeBufs {
            region: self.holder.region().id(),
            idx,
        }
    }

    /// Free buffers [`Pool::give`] took out of another pool of this region. Ones of
    /// another region are refused (they would name buffers of ours someone may hold):
    /// counted in the holder's [`Holder::foreign`], as [`Pool::free`] does.
    pub fn take(&mut self, bufs: FreeBufs) {
        if bufs.region != self.holder.region().id() {
            self.holder.refuse_many(bufs.idx.len() as u64);
            return;
        }
        for i in bufs.idx {
            let s = self.slice_of(i);
            self.free[s].push(i);
        }
    }

    /// Give every buffer of `bufs` back (it is left empty), each as [`Pool::free`] does:
    /// a port's transmit frees its burst in one call.
    pub fn free_burst(&mut self, bufs: &mut Vec<Buf>) {
        for b in bufs.drain(..) {
            self.free(b);
        }
    }

    /// Give a buffer back to the free list of its slice.
    ///
    /// A `Buf` of another region is refused: it does not enter this pool (its index would
    /// name one of our buffers, which someone may hold, or none at all), no owner entry
    /// is written, and it is counted in the holder's [`Holder::foreign`]. It is a bug in
    /// this process (tokens never cross processes), so a panic would be fair; but this
    /// is the manager's pool, whose panic stops every NF, while a refusal loses one
    /// buffer of the other region: it stays `Held` there by whoever held it (the
    /// manager, or an NF whose buffers are reclaimed when it goes), never double-owned.
    #[inline]
    pub fn free(&mut self, buf: Buf) {
        if !self.holder.minted(&buf) {
            self.holder.refuse(&buf);
            return;
        }
        self.free_idx(buf.idx);
    }

    /// The slice index `i` lies in (every valid index lies in one).
    #[inline]
    fn slice_of(&self, i: u32) -> usize {
        self.slices
            .iter()
            .position(|s| i <= s.last)
            .unwrap_or(self.slices.len() - 1)
    }

    /// Put a buffer back in its free list (also for buffers found abandoned by reclaim).
    /// `idx` is an index of this region.
    fn free_idx(&mut self, idx: BufIdx) {
        self.holder.release(idx);
        let s = self.slice_of(idx.get());
        self.free[s].push(idx.get());
    }

    /// Account for every buffer: in the free list, in a ring, or held by an owner in
    /// `live` (the manager is always live). Exact when the rings are quiescent; while
    /// packets move, buffers between a ring and a holder can show as missing.
    pub fn audit(&self, live: &[OwnerId]) -> Audit {
        let region = self.region();
        let n = region.buffers();
        let mut seen = vec![Seen::Nowhere; n as usize + 1];
        let mut a = Audit {
            total: n,
            ..Default::default()
        };
        for &i in self.free.iter().flatten() {
            if seen[i as usize] != Seen::Nowhere || region.owner(BufIdx(i)) != Some(Owner::Free) {
                a.duplicated.push(i);
            }
            seen[i as usize] = Seen::Free;
            a.free += 1;
        }
        let mut entries = Vec::new();
        for r in 0..region.layout().rings {
            entries.clear();
            let ring = region.ring(r).expect("r < rings");
            if let Err(e) = ring.snapshot(&mut entries) {
                a.bad_rings.push((r, e));
                continue;
            }
            for &raw in &entries {
                match region.buf_idx(raw) {
                    Err(_) => a.garbage.push((r, raw)),
                    Ok(idx) => {
                        if seen[idx.get() as usize] != Seen::Nowhere {
                            a.duplicated.push(raw);
                        } else {
                            a.in_rings += 1;
                        }
                        seen[idx.get() as usize] = Seen::Ring;
                    }
                }
            }
        }
        for i in 1..=n {
            if seen[i as usize] != Seen::Nowhere {
                continue;
            }
            match region.owner(BufIdx(i)) {
                Some(Owner::Held(id)) if id == OwnerId::MANAGER || live.contains(&id) => a.held += 1,
                other => a.missing.push((i, other)),
            }
        }
        a
    }

    /// Take the consumer's place on ring `r`, whose consumer `dead` is gone, and free
    /// every buffer in it that is in transit to `dead`; returns how many. The manager
    /// calls it again for a ring whose producer may still enqueue (a direct NF→NF edge
    /// towards a crashed NF, until the sender lets go of it).
    ///
    /// Only entries whose owner entry is exactly `Transit { to: dead, from: producer }`
    /// (the ring's recorded producer) are freed, as a consumer would claim them: anything
    /// else in the ring is stale (an index published after [`Pool::reclaim`] freed it,
    /// and perhaps since sent to a new NF with the dead one's ID) or garbage, and
    /// whatever buffer it names is someone else's to account for.
    ///
    /// A ring whose indices are corrupt (the dead consumer, or a live producer, wrote
    /// garbage) is not an error here (the manager calls this from its control loop,
    /// where an error would stop it): its entries cannot be read, so the ring is reset
    /// (we are its consumer now). If an NF produces into it (a direct edge), every buffer
    /// whose entry is `Transit { to: dead, from: that NF }` is freed, wherever it is:
    /// such a buffer is in no ring a live consumer reads, and a copy of its index read
    /// later from some ring no longer matches its entry, so nothing is freed twice (an
    /// O(buffers) sweep, only on corruption). If the manager produces into it (the dead
    /// NF's rx or alloc ring), nothing is freed here: [`Pool::reclaim`]'s sweep frees
    /// those buffers, and the caller counts them there. The only error is
    /// [`RingError::NoSuchRing`].
    ///
    /// It takes at most one ring's capacity of entries per call, so a producer that
    /// never stops cannot hold the caller; call again (the manager does, every tick).
    pub fn drain_ring(&mut self, r: u32, dead: OwnerId) -> Result<u32, RingError> {
        let region = self.region().clone();
        let ring = region.ring(r)?;
        let (producer, _) = ring.ends();
        let mut cons = crate::ring::Consumer::new(ring);
        let mut raw = [0u32; 64];
        let mut freed = 0;
        // At most one ring's worth per call: a live producer that keeps enqueueing (the
        // same index over and over, say) cannot keep the manager here; the rest waits
        // for the next call.
        let mut budget = ring.capacity();
        loop {
            if budget == 0 {
                return Ok(freed);
            }
            let want = raw.len().min(budget as usize);
            let k = match cons.peek_burst(&mut raw[..want]) {
                Ok(k) => k,
                Err(_) => return Ok(freed + self.recover_corrupt(r, dead, producer)),
            };
            if k == 0 {
                return Ok(freed);
            }
            for &v in &raw[..k] {
                if let Ok(idx) = region.buf_idx(v)
                    && matches!(region.owner(idx), Some(Owner::Transit { to, from }) if to == dead && from.0 == producer)
                {
                    self.free_idx(idx);
                    freed += 1;
                }
            }
            cons.commit(k);
            budget -= k as u32;
        }
    }

    /// [`Pool::drain_ring`] on a corrupt ring: reset it and, for an NF's ring, free what
    /// that NF sent the dead owner; how many.
    #[cold]
    fn recover_corrupt(&mut self, r: u32, dead: OwnerId, producer: u16) -> u32 {
        let region = self.region().clone();
        if let Ok(ring) = region.ring(r) {
            ring.reset();
        }
        if producer == OwnerId::MANAGER.0 {
            return 0;
        }
        let mut freed = 0;
        for i in 1..=region.buffers() {
            let idx = BufIdx(i);
            if matches!(region.owner(idx), Some(Owner::Transit { to, from }) if to == dead && from.0 == producer) {
                self.free_idx(idx);
                freed += 1;
            }
        }
        freed
    }

    /// Take back everything owner `dead` had: every buffer whose owner entry names it
    /// (held by it, in transit to it, in transit from it), wherever the buffer is, except
    /// those that `dead` published to a live consumer, which are left to that consumer.
    ///
    /// Call once the owner is known dead (its control socket closed). Rings are found by
    /// their recorded ends ([`crate::RingRef::set_ends`]). First the rings towards `dead`
    /// are drained ([`Pool::drain_ring`]); then every other ring is read, and a buffer
    /// counts as in flight when it sits in a ring whose consumer would accept it (its
    /// entry is `Transit { to: consumer, from: producer }` of that ring, the check
    /// [`Holder::dequeue`] makes); then the owner table is swept once. So nothing is
    /// lost whatever `dead` did to its rings: entries it skipped without claiming, rings
    /// whose indices it corrupted (unreadable, so their entries are in no ring we know;
    /// the caller resets such rings), indices it wrote where no consumer takes them.
    ///
    /// Safe against live consumers and producers running meanwhile: a consumer marks a
    /// buffer held before it releases the slot, and we read the rings before the owner
    /// entries, so a buffer taken in between is `Held` by its taker and left alone. A
    /// live producer that marks a buffer `Transit { to: dead }` and publishes it after our
    /// sweep freed it leaves a stale index in a ring towards `dead`: every later reader of
    /// that ring (the drain of orphaned edges, a consumer) checks the owner entry and
    /// skips it, so the buffer is never freed or claimed twice. O(buffers + ring slots);
    /// deaths are rare.
    pub fn reclaim(&mut self, dead: OwnerId) -> Result<Reclaimed, RingError> {
        assert_ne!(dead, OwnerId::MANAGER, "the manager cannot reclaim from itself");
        let region = self.region().clone();
        let n = region.buffers();
        let mut got = Reclaimed::default();
        // Per buffer seen in a ring: the owner word that ring's consumer accepts. 0 (the
        // word of `Free`, never a `Transit`) for a buffer in no readable ring.
        let mut in_flight = vec![0u32; n as usize + 1];
        let mut entries = Vec::new();
        for r in 0..region.layout().rings {
            let ring = region.ring(r)?;
            let (producer, consumer) = ring.ends();
            if consumer == dead.0 {
                // Nobody will consume these: take the consumer's place and drain (a
                // corrupt ring is reset and its buffers found through their entries).
                if ring.len().is_err() {
                    got.corrupt_rings += 1;
                }
                got.from_rings += self.drain_ring(r, dead)?;
                continue;
            }
            entries.clear();
            if ring.snapshot(&mut entries).is_err() {
                if producer == dead.0 {
                    got.corrupt_rings += 1;
                }
                continue;
            }
            let accepted = match (OwnerId(producer), OwnerId(consumer)) {
                (p, c) if p <= OwnerId::MAX && c <= OwnerId::MAX => Owner::Transit { to: c, from: p }.encode(),
                _ => continue, // garbage ends: no consumer accepts anything from it
            };
            for &v in &entries {
                if let Ok(idx) = region.buf_idx(v) {
                    in_flight[idx.get() as usize] = accepted;
                }
            }
        }
        for i in 1..=n {
            let idx = BufIdx(i);
            match region.owner(idx) {
                Some(Owner::Held(id)) if id == dead => {
                    self.free_idx(idx);
                    got.held += 1;
                }
                Some(o @ Owner::Transit { to, from })
                    if (to == dead || from == dead) && in_flight[i as usize] != o.encode() =>
                {
                    self.free_idx(idx);
                    if from == dead {
                        got.torn += 1;
                    } else {
                        got.stranded += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BackingChoice, RegionConfig};

    fn region(buffers: u32) -> Arc<Region> {
        let cfg = RegionConfig {
            buffers,
            rings: 4,
            ring_capacity: 64,
            backing: BackingChoice::Normal,
            ..Default::default()
        };
        Region::create(&cfg).unwrap()
    }

    fn setup() -> (Arc<Region>, Pool) {
        let r = region(128);
        let p = Pool::new(&r).unwrap();
        (r, p)
    }

    #[test]
    fn a_fresh_pool_is_whole_and_allocations_are_counted_as_held() {
        let (_r, mut pool) = setup();
        let a = pool.audit(&[]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.held), (128, 0));
        let mut bufs = Vec::new();
        assert_eq!(pool.alloc_burst(200, &mut bufs), 128);
        assert!(pool.alloc().is_none());
        let a = pool.audit(&[]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.held), (0, 128));
        for b in bufs {
            pool.free(b);
        }
        assert_eq!(pool.audit(&[]).free, 128);
    }

    #[test]
    fn a_share_allocates_as_its_own_owner_and_comes_back_whole() {
        let r = region(128);
        let mut pool = Pool::with_nodes(&r, &[0, 1]).unwrap();
        let lane = OwnerId(0x7f01);
        let mut share = pool.share(lane, 40).unwrap();
        assert!(pool.share(lane, 1).is_err(), "one holder per owner id");
        assert_eq!((pool.free_count(), share.free_count()), (88, 40));
        let mut bufs = Vec::new();
        assert_eq!(share.alloc_burst(50, &mut bufs), 40, "only its own buffers");
        assert!(
            bufs.iter()
                .all(|b| r.owner(BufIdx(b.index())) == Some(Owner::Held(lane)))
        );
        let a = pool.audit(&[lane]);
        assert_eq!((a.free, a.held, a.missing.len()), (88, 40, 0), "{a}");
        // A buffer the share allocated may be freed by the main pool (sent out by
        // another thread): the free lists drift, `give` and `take` even them out.
        pool.free(bufs.pop().unwrap());
        share.free_burst(&mut bufs);
        assert_eq!((pool.free_count(), share.free_count()), (89, 39));
        share.take(pool.give(11));
        assert_eq!((pool.free_count(), share.free_count()), (78, 50));
        pool.take(share.give(u32::MAX));
        assert_eq!(share.free_count(), 0);
        drop(share);
        let a = pool.audit(&[]);
        assert!(a.is_whole() && a.free == 128, "{a}");
        assert_eq!(
            (pool.free_on(0), pool.free_on(1)),
            (64, 64),
            "each index back in its slice"
        );
        // Free buffers of another region are refused, counted.
        let other = region(8);
        let mut theirs = Pool::new(&other).unwrap();
        pool.take(theirs.give(8));
        assert_eq!((pool.free_count(), pool.holder().foreign()), (128, 8));
    }

    #[test]
    fn two_slices_prefer_their_node_fall_back_when_empty_and_stay_whole() {
        let r = region(127);
        let mut pool = Pool::with_nodes(&r, &[0, 1]).unwrap();
        let (s0, s1) = (pool.slices()[0], pool.slices()[1]);
        assert_eq!((s0.node, s0.range(), s1.node, s1.range()), (0, 1..=64, 1, 65..=127));
        assert_eq!(pool.preferred_node(), 0, "the first node's slice is preferred");
        pool.prefer_node(1);
        let mut bufs = Vec::new();
        assert_eq!(pool.alloc_burst(63, &mut bufs), 63);
        assert!(
            bufs.iter().all(|b| s1.range().contains(&b.index())),
            "from node 1's range"
        );
        assert_eq!((pool.free_on(1), pool.free_on(0)), (0, 64));
        // Node 1 is empty: the next ones come from node 0, none is lost.
        let more = pool.alloc().unwrap();
        assert!(s0.range().contains(&more.index()));
        assert!(pool.audit(&[]).is_whole());
        // Frees go back to the slice the index lies in, whichever node is preferred.
        pool.prefer_node(7);
        assert_eq!(pool.preferred_node(), 0, "a node without a slice means the first");
        pool.free(more);
        for b in bufs.drain(..10) {
            pool.free(b);
        }
        assert_eq!((pool.free_on(0), pool.free_on(1)), (64, 10));
        pool.prefer_node(1);
        let b = pool.alloc().unwrap();
        assert!(s1.range().contains(&b.index()));
        bufs.push(b);
        let a = pool.audit(&[]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.held), (73, 54));
        for b in bufs {
            pool.free(b);
        }
        assert_eq!(pool.audit(&[]).free, 127);
    }

    /// The burst paths hand out and take back exactly what the one-at-a-time paths do:
    /// the same buffers in the same order, empty, the slices' fallback kept.
    #[test]
    fn bursts_give_what_single_allocations_give_and_free_as_free_does() {
        let (ra, rb) = (region(127), region(127));
        let mut a = Pool::with_nodes(&ra, &[0, 1]).unwrap();
        let mut b = Pool::with_nodes(&rb, &[0, 1]).unwrap();
        a.prefer_node(1);
        b.prefer_node(1);
        // 70 spans node 1's 63 and 7 of node 0's.
        let mut burst = Vec::new();
        assert_eq!(a.alloc_burst(70, &mut burst), 70);
        let singles: Vec<Buf> = (0..70).map(|_| b.alloc().unwrap()).collect();
        let idx = |v: &[Buf]| v.iter().map(Buf::index).collect::<Vec<_>>();
        assert_eq!(idx(&burst), idx(&singles));
        for buf in &mut burst {
            let p = a.holder().packet(buf).unwrap();
            assert_eq!((p.len(), p.headroom()), (0, 128), "empty, at the default headroom");
        }
        // Back in one call; the next burst reuses them as after `free`s (each slice's
        // last freed first, the preferred slice first).
        let mut back: Vec<Buf> = burst.drain(60..).collect();
        a.free_burst(&mut back);
        assert!(back.is_empty());
        let mut singles = singles;
        for buf in singles.drain(60..) {
            b.free(buf);
        }
        let mut again = Vec::new();
        a.alloc_burst(10, &mut again);
        let singles_again: Vec<Buf> = (0..10).map(|_| b.alloc().unwrap()).collect();
        assert_eq!(idx(&again), idx(&singles_again));
        burst.append(&mut again);
        a.free_burst(&mut burst);
        let audit = a.audit(&[]);
        assert!(audit.is_whole(), "{audit}");
        assert_eq!(audit.free, 127);

        // A foreign Buf in the burst is refused and counted, the rest go back.
        let (_r, mut one) = setup();
        let mut mixed = Vec::new();
        one.alloc_burst(5, &mut mixed);
        mixed.push(b.alloc().unwrap());
        one.free_burst(&mut mixed);
        assert_eq!((one.free_count(), one.holder().foreign()), (128, 1));
        assert!(one.audit(&[]).is_whole());
    }

    #[test]
    fn slices_must_be_one_per_node_and_fit() {
        let r = region(2);
        assert!(Pool::with_nodes(&r, &[]).is_err());
        assert!(Pool::with_nodes(&r, &[0, 1, 2]).is_err());
        let e = Pool::with_nodes(&r, &[1, 1]).unwrap_err();
        assert!(e.to_string().contains("node 1 has two slices"), "{e}");
    }

    #[test]
    fn binding_a_slice_to_node_0_works_and_a_missing_node_is_an_error() {
        let (r, mut pool) = setup();
        for (slice, got) in pool.bind_slices() {
            match got {
                Ok(()) => {}
                // A kernel without NUMA, or a sandbox that forbids mbind: the test cannot
                // run, and says so (it fails unless skips are allowed).
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
                    let what = format!("mbind(2) on this kernel ({e})");
                    if !onvm_testkit::require(false, &what, "a kernel with NUMA support") {
                        return;
                    }
                }
                Err(e) => panic!("binding {slice:?} to node 0: {e}"),
            }
        }
        // The kernel says so too: the mapping holding the buffers prefers node 0.
        let maps = std::fs::read_to_string("/proc/self/numa_maps").unwrap();
        let base = r.base_ptr() as usize;
        let ours = maps
            .lines()
            .filter_map(|l| Some((usize::from_str_radix(l.split(' ').next()?, 16).ok()?, l)))
            .filter(|(a, _)| (base..base + r.size()).contains(a))
            .map(|(_, l)| l.to_string())
            .collect::<Vec<_>>();
        assert!(ours.iter().any(|l| l.contains("prefer:0")), "{ours:#?}");
        // Node 1000 does not exist: reported, and the region is as usable as before.
        let e = r.prefer_node(1..=128, 1000).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
        assert!(r.prefer_node(0..=3, 0).is_err(), "index 0 is no buffer");
        assert!(r.prefer_node(5..=129, 0).is_err(), "past the last buffer");
        let mut b = pool.alloc().unwrap();
        pool.holder().packet(&mut b).unwrap().copy_from(&[7; 60]).unwrap();
        pool.free(b);
        assert!(pool.audit(&[]).is_whole());
    }

    #[test]
    fn audit_counts_rings_and_finds_missing_duplicated_and_garbage() {
        let (r, mut pool) = setup();
        let ring = r.ring(1).unwrap();
        ring.set_ends(0, 5);
        let mut prod = r.producer(1).unwrap();
        let mut bufs = Vec::new();
        pool.alloc_burst(10, &mut bufs);
        let sent = pool.holder().enqueue(&mut prod, OwnerId(5), &mut bufs).unwrap();
        assert_eq!(sent, 10);
        let a = pool.audit(&[OwnerId(5)]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.in_rings), (118, 10));

        // A buffer held by an owner that is not alive is missing.
        let b = pool.alloc().unwrap();
        let idx = b.index();
        let raw = pool.holder().send(b, OwnerId(9));
        let h9 = r.holder(OwnerId(9)).unwrap();
        let _held = h9.claim(raw).unwrap();
        assert!(pool.audit(&[OwnerId(5), OwnerId(9)]).is_whole());
        let a = pool.audit(&[OwnerId(5)]);
        assert!(!a.is_whole());
        assert_eq!(a.missing, vec![(idx, Some(Owner::Held(OwnerId(9))))]);
        assert!(a.to_string().contains("held by nf9"), "{a}");

        // The same index twice in a ring, and numbers that are no buffer at all.
        let mut p2 = r.producer(2).unwrap();
        p2.enqueue_burst(&[1, 0, 4000]).unwrap();
        let a = pool.audit(&[OwnerId(5), OwnerId(9)]);
        assert_eq!(a.duplicated, vec![1]);
        assert_eq!(a.garbage, vec![(2, 0), (2, 4000)]);
        assert!(!a.is_whole());
    }

    #[test]
    fn audit_reports_a_corrupt_ring() {
        let (r, pool) = setup();
        r.ring(3)
            .unwrap()
            .ctl
            .tail
            .word
            .store(9999, std::sync::atomic::Ordering::Release);
        let a = pool.audit(&[]);
        assert_eq!(a.bad_rings.len(), 1);
        assert!(a.to_string().contains("ring 3: ring corrupted"), "{a}");
    }

    #[test]
    fn a_duplicated_index_is_delivered_once() {
        let (r, mut pool) = setup();
        let b = pool.alloc().unwrap();
        let raw = pool.holder().send(b, OwnerId(1));
        r.producer(0).unwrap().enqueue_burst(&[raw, raw, 0, 77]).unwrap();
        let h = r.holder(OwnerId(1)).unwrap();
        let mut out = Vec::new();
        let n = h.dequeue(&mut r.consumer(0).unwrap(), 32, &mut out).unwrap();
        assert_eq!(n, 1);
        assert_eq!(out[0].index(), raw);
        assert_eq!(h.rejected(), 3, "the duplicate, index 0 and a free buffer");
        assert!(r.ring(0).unwrap().is_empty().unwrap(), "rejected entries are consumed");
    }

    #[test]
    fn reclaim_recovers_rings_held_and_torn_buffers_of_a_dead_owner() {
        let (r, mut pool) = setup();
        let dead = OwnerId(4);
        r.ring(0).unwrap().set_ends(0, dead.0); // manager -> nf4
        r.ring(1).unwrap().set_ends(dead.0, 0); // nf4 -> manager
        let mut bufs = Vec::new();
        pool.alloc_burst(40, &mut bufs);
        let mut to_nf = r.producer(0).unwrap();
        pool.holder().enqueue(&mut to_nf, dead, &mut bufs).unwrap();
        {
            let h = r.holder(dead).unwrap();
            let mut got = Vec::new();
            h.dequeue(&mut r.consumer(0).unwrap(), 30, &mut got).unwrap();
            assert_eq!(got.len(), 30);
            // Sends 10 back, marks 5 for sending without publishing (dies mid-enqueue),
            // and keeps 15.
            let mut back: Vec<Buf> = got.drain(..10).collect();
            h.enqueue(&mut r.producer(1).unwrap(), OwnerId::MANAGER, &mut back)
                .unwrap();
            for b in got.drain(..5) {
                let _unpublished = h.send(b, OwnerId::MANAGER);
            }
            assert_eq!(got.len(), 15);
        } // the holder goes away with its buffers: the NF died
        let before = pool.audit(&[]);
        assert!(!before.is_whole());
        assert_eq!(before.missing.len(), 20, "15 held + 5 torn: {before}");
        let got = pool.reclaim(dead).unwrap();
        assert_eq!(
            got,
            Reclaimed {
                from_rings: 10,
                held: 15,
                torn: 5,
                stranded: 0,
                corrupt_rings: 0
            }
        );
        // The 10 it published to the manager are still in their ring, for the manager.
        let a = pool.audit(&[]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.in_rings), (118, 10));
        let mut back = Vec::new();
        pool.holder()
            .dequeue(&mut r.consumer(1).unwrap(), 32, &mut back)
            .unwrap();
        assert_eq!(back.len(), 10);
        for b in back {
            pool.free(b);
        }
        assert_eq!(pool.audit(&[]).free, 128);
    }

    /// An NF that moves its consumer index past what it was sent without claiming it
    /// (from the manager and from a live peer), then dies: every one comes back.
    #[test]
    fn reclaim_recovers_buffers_a_dead_owner_skipped_without_claiming() {
        let (r, mut pool) = setup();
        let (dead, peer) = (OwnerId(4), OwnerId(5));
        r.ring(0).unwrap().set_ends(0, dead.0); // manager -> nf4
        r.ring(2).unwrap().set_ends(peer.0, dead.0); // nf5 -> nf4 (a direct edge)
        let mut bufs = Vec::new();
        pool.alloc_burst(40, &mut bufs);
        pool.holder()
            .enqueue(&mut r.producer(0).unwrap(), dead, &mut bufs)
            .unwrap();
        let h5 = r.holder(peer).unwrap();
        pool.alloc_burst(10, &mut bufs);
        let raws: Vec<u32> = bufs.drain(..).map(|b| pool.holder().send(b, peer)).collect();
        let mut mine: Vec<Buf> = raws.iter().map(|&v| h5.claim(v).unwrap()).collect();
        h5.enqueue(&mut r.producer(2).unwrap(), dead, &mut mine).unwrap();
        // nf4 reads both rings raw: the indices are gone from the rings, never claimed.
        let mut raw = [0u32; 64];
        assert_eq!(r.consumer(0).unwrap().dequeue_burst(&mut raw).unwrap(), 40);
        assert_eq!(r.consumer(2).unwrap().dequeue_burst(&mut raw).unwrap(), 10);
        assert_eq!(pool.audit(&[peer]).missing.len(), 50);
        let got = pool.reclaim(dead).unwrap();
        assert_eq!((got.stranded, got.total(), got.corrupt_rings), (50, 50, 0), "{got:?}");
        let a = pool.audit(&[peer]);
        assert!(a.is_whole(), "{a}");
        assert_eq!(a.free, 128);
    }

    /// A live sender publishes, on its edge to a dead NF, an index the reclaim already
    /// freed; the manager then gives that buffer to the NF that reuses the dead one's ID.
    /// Draining the orphaned edge leaves it alone: it is the new NF's now.
    #[test]
    fn draining_an_orphaned_edge_skips_a_stale_index_now_sent_to_the_reused_id() {
        let (r, mut pool) = setup();
        let (dead, peer) = (OwnerId(4), OwnerId(5));
        r.ring(0).unwrap().set_ends(0, dead.0); // manager -> nf4 (the new one's rx)
        r.ring(2).unwrap().set_ends(peer.0, dead.0); // nf5 -> nf4
        let h5 = r.holder(peer).unwrap();
        let b = pool.alloc().unwrap();
        let b = h5.claim(pool.holder().send(b, peer)).unwrap();
        // nf5 marks it for nf4; nf4 dies before nf5 publishes.
        let raw = h5.send(b, dead);
        assert_eq!(pool.reclaim(dead).unwrap().stranded, 1);
        r.producer(2).unwrap().enqueue_burst(&[raw]).unwrap();
        // A new nf4 registers; the manager sends it that very buffer.
        let b = pool.alloc().unwrap();
        assert_eq!(b.index(), raw, "the freed buffer is the next one handed out");
        let mut one = vec![b];
        pool.holder()
            .enqueue(&mut r.producer(0).unwrap(), dead, &mut one)
            .unwrap();
        assert_eq!(pool.drain_ring(2, dead).unwrap(), 0, "not nf5's send any more");
        let h4 = r.holder(dead).unwrap();
        let mut got = Vec::new();
        h4.dequeue(&mut r.consumer(0).unwrap(), 32, &mut got).unwrap();
        assert_eq!(got.len(), 1);
        assert!(pool.audit(&[peer, dead]).is_whole());
    }

    /// A live sender corrupts its edge towards a dead NF: draining the orphaned edge is
    /// no error (the manager would stop), the ring is reset, and what the sender had sent
    /// the dead NF comes back; a copy of such an index seen later frees nothing twice.
    #[test]
    fn draining_a_corrupt_orphaned_edge_recovers_it() {
        let (r, mut pool) = setup();
        let (dead, peer) = (OwnerId(4), OwnerId(5));
        let ring = r.ring(2).unwrap();
        ring.set_ends(peer.0, dead.0);
        let h5 = r.holder(peer).unwrap();
        let mut bufs = Vec::new();
        pool.alloc_burst(20, &mut bufs);
        let raws: Vec<u32> = bufs.drain(..).map(|b| pool.holder().send(b, peer)).collect();
        let mut mine: Vec<Buf> = raws.iter().map(|&v| h5.claim(v).unwrap()).collect();
        h5.enqueue(&mut r.producer(2).unwrap(), dead, &mut mine).unwrap();
        ring.ctl
            .tail
            .word
            .store(0x4000_0000, std::sync::atomic::Ordering::Release);
        assert_eq!(pool.drain_ring(2, dead), Ok(20));
        assert_eq!(ring.len(), Ok(0), "reset");
        assert!(pool.audit(&[peer]).is_whole());
        // The same indices published again (a confused sender): nothing more is freed.
        r.producer(2).unwrap().enqueue_burst(&raws).unwrap();
        assert_eq!(pool.drain_ring(2, dead), Ok(0));
        let a = pool.audit(&[peer]);
        assert!(a.is_whole(), "{a}");
        assert_eq!(a.free, 128);
        assert_eq!(pool.drain_ring(99, dead), Err(RingError::NoSuchRing(99)));
    }

    /// A live sender that never stops enqueueing (one stale index, over and over) into
    /// its edge to a dead NF cannot hold the drain: each call takes at most a ring's
    /// worth.
    #[test]
    fn draining_an_edge_whose_sender_never_stops_returns() {
        let (r, mut pool) = setup();
        let (dead, peer) = (OwnerId(4), OwnerId(5));
        r.ring(2).unwrap().set_ends(peer.0, dead.0);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = {
            let (r, stop) = (r.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut p = r.producer(2).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = p.enqueue_burst(&[7; 32]);
                }
            })
        };
        for _ in 0..3 {
            assert_eq!(pool.drain_ring(2, dead), Ok(0), "buffer 7 is free, not sent");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        sender.join().unwrap();
        assert_eq!(pool.free_count(), 128);
    }

    /// An NF that corrupts its alloc ring's indices and dies: the ring cannot be read,
    /// but its buffers still say they were on their way to the dead owner.
    #[test]
    fn reclaim_recovers_the_buffers_of_a_corrupt_ring() {
        let (r, mut pool) = setup();
        let dead = OwnerId(4);
        let ring = r.ring(1).unwrap();
        ring.set_ends(0, dead.0);
        let mut bufs = Vec::new();
        pool.alloc_burst(64, &mut bufs);
        pool.holder()
            .enqueue(&mut r.producer(1).unwrap(), dead, &mut bufs)
            .unwrap();
        ring.ctl
            .head
            .word
            .store(0x8000_0000, std::sync::atomic::Ordering::Release);
        let got = pool.reclaim(dead).unwrap();
        assert_eq!((got.corrupt_rings, got.stranded), (1, 64), "{got:?}");
        assert_eq!(ring.len(), Ok(0), "reset");
        let a = pool.audit(&[]);
        assert!(a.is_whole(), "{a}");
        assert_eq!(a.free, 128);
    }

    /// What a dead owner published to a live consumer stays the consumer's (no double
    /// free); what it wrote where no consumer would accept it comes back.
    #[test]
    fn reclaim_leaves_what_a_live_consumer_will_take_and_frees_what_it_would_refuse() {
        let (r, mut pool) = setup();
        let (dead, live) = (OwnerId(4), OwnerId(5));
        r.ring(2).unwrap().set_ends(dead.0, live.0); // nf4 -> nf5
        r.ring(3).unwrap().set_ends(0, live.0); // manager -> nf5
        let mut bufs = Vec::new();
        pool.alloc_burst(12, &mut bufs);
        let raws: Vec<u32> = bufs.drain(..).map(|b| pool.holder().send(b, dead)).collect();
        let forged;
        {
            let h4 = r.holder(dead).unwrap();
            let mut mine: Vec<Buf> = raws.iter().map(|&v| h4.claim(v).unwrap()).collect();
            // Two into the manager's ring towards nf5, claiming to be from nf4: a
            // consumer that checks the sender refuses them.
            let two: Vec<u32> = mine.drain(..2).map(|b| h4.send(b, live)).collect();
            r.producer(3).unwrap().enqueue_burst(&two).unwrap();
            forged = two;
            h4.enqueue(&mut r.producer(2).unwrap(), live, &mut mine).unwrap();
        }
        let got = pool.reclaim(dead).unwrap();
        assert_eq!((got.torn, got.total()), (2, 2), "{got:?}");
        let h5 = r.holder(live).unwrap();
        let mut out = Vec::new();
        h5.dequeue(&mut r.consumer(2).unwrap(), 32, &mut out).unwrap();
        assert_eq!(out.len(), 10, "the published ones are nf5's");
        h5.dequeue(&mut r.consumer(3).unwrap(), 32, &mut out).unwrap();
        assert_eq!(out.len(), 10, "the forged ones were freed, and refused");
        assert_eq!(h5.rejected(), 2);
        assert!(
            forged
                .iter()
                .all(|&v| r.owner(r.buf_idx(v).unwrap()) == Some(Owner::Free))
        );
        let a = pool.audit(&[live]);
        assert!(a.is_whole(), "{a}");
        assert_eq!((a.free, a.held), (118, 10));
    }
}
