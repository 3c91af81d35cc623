//! Chain-wide backpressure (NFVnice's, issue 18): when an NF falls behind, the packets
//! headed for it are dropped where they enter the chain, before the NFs in front of it
//! spend work on packets that would drop at its ring anyway.
//!
//! An instance is *congested* once the rings it reads (its rx ring and the edges into
//! it) hold more than [`HIGH`] of their room, and stays so until they hold less than
//! [`LOW`] (hysteresis). While one is, each chain entry that leads to it (the instance
//! a port's packets go to first, then its service's `Next` by the fixed rules) lets in
//! only what fits: the congested NF's high mark less its *backlog*, the packets in its
//! rings and in the rings of every instance in front of it on the way. That credit is
//! set at every round ([`Pressure::settle`], each control tick) and spent by the
//! packets let in ([`Pressure::admit`]); the rest are dropped at the entry, counted as
//! `backpressure`. An on/off gate, tried first, let a whole rx ring's worth in each
//! time it opened, which the NFs in front then handled only for it to drop at the
//! slow one. What is already inside the chain goes on. A hung instance (the
//! watchdog's) is not congested: its flows move to other instances, and its drops are
//! `nf-hung`. An instance is not held back by its own service's other instances.
//!
//! Pure: the switch passes ring occupancy and the chain's shape.

/// Congested above this fraction of the rings' room (numerator, denominator).
pub(super) const HIGH: (u32, u32) = (3, 4);
/// No longer congested below this fraction.
pub(super) const LOW: (u32, u32) = (1, 4);
/// Longest chain followed from an instance's service (a loop of services stops here).
const MAX_HOPS: usize = 64;

/// What the last round saw of an instance.
#[derive(Clone, Copy, Debug, Default)]
struct Seen {
    waiting: u32,
    room: u32,
    congested: bool,
}

/// Backpressure state, per instance (index `id - 1`).
#[derive(Debug)]
pub(super) struct Pressure {
    on: bool,
    seen: Vec<Seen>,
    /// Per entry instance: how many more packets may enter there (`None`: no limit).
    credit: Vec<Option<u32>>,
    /// Some entry is limited: the only field the switch reads per burst otherwise.
    any: bool,
}

/// A change of an instance's state, for the event log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Change {
    pub(super) id: u16,
    pub(super) congested: bool,
    pub(super) waiting: u32,
    pub(super) room: u32,
}

fn over(waiting: u32, room: u32, (n, d): (u32, u32)) -> bool {
    u64::from(waiting) * u64::from(d) > u64::from(room) * u64::from(n)
}

impl Pressure {
    /// Backpressure `on` or off, for up to `instances` instances.
    pub(super) fn new(on: bool, instances: usize) -> Self {
        Pressure {
            on,
            seen: vec![Seen::default(); instances],
            credit: vec![None; instances],
            any: false,
        }
    }

    /// Whether backpressure is on at all.
    pub(super) fn on(&self) -> bool {
        self.on
    }

    /// Whether some instance is congested (then [`Pressure::settle`] runs every round).
    pub(super) fn pressing(&self) -> bool {
        self.seen.iter().any(|s| s.congested)
    }

    /// Instance `id`'s rings hold `waiting` packets out of `room` (`hung`: the watchdog
    /// found it not reading): its new state, if it changed. Call [`Pressure::settle`]
    /// after a round of these.
    pub(super) fn observe(&mut self, id: u16, waiting: u32, room: u32, hung: bool) -> Option<Change> {
        let on = self.on;
        let s = self.seen.get_mut(usize::from(id).checked_sub(1)?)?;
        let was = s.congested;
        s.waiting = waiting;
        s.room = room;
        // Leaving is decided by `settle`, on the backlog in front of it too.
        s.congested = on && !hung && (was || over(waiting, room, HIGH));
        (s.congested != was).then_some(Change {
            id,
            congested: s.congested,
            waiting,
            room,
        })
    }

    /// Instance `id` is gone.
    pub(super) fn forget(&mut self, id: u16) {
        if let Some(s) = usize::from(id).checked_sub(1).and_then(|i| self.seen.get_mut(i)) {
            *s = Seen::default();
        }
    }

    fn seen(&self, id: u16) -> Seen {
        usize::from(id)
            .checked_sub(1)
            .and_then(|i| self.seen.get(i))
            .copied()
            .unwrap_or_default()
    }

    /// Set every entry's credit: `service_of(id)` for each running instance in `ids`,
    /// and `next(service)`, the service a `Next` from it goes to (its fixed rule), if one.
    /// A congested instance whose backlog (its rings and those in front of it) is under
    /// [`LOW`] of its room is congested no more: those changes are returned.
    pub(super) fn settle(
        &mut self,
        ids: &[u16],
        service_of: impl Fn(u16) -> Option<u16>,
        next: impl Fn(u16) -> Option<u16>,
    ) -> Vec<Change> {
        self.credit.fill(None);
        self.any = false;
        let mut cleared = Vec::new();
        let congested: Vec<u16> = ids.iter().copied().filter(|&id| self.seen(id).congested).collect();
        if congested.is_empty() {
            return cleared;
        }
        // Whether `c` is on the way from instance `i`: `i` itself, or of a service its
        // `Next`s lead to (not its own service's other instances).
        let leads = |i: u16, c: u16| {
            if i == c {
                return true;
            }
            let target = service_of(c);
            let mut s = service_of(i).and_then(&next);
            for _ in 0..MAX_HOPS {
                match s {
                    Some(svc) if Some(svc) == target => return true,
                    Some(svc) => s = next(svc),
                    None => return false,
                }
            }
            false
        };
        for &c in &congested {
            let seen = self.seen(c);
            let (n, d) = HIGH;
            let high = (u64::from(seen.room) * u64::from(n) / u64::from(d)) as u32;
            let upstream: Vec<u16> = ids.iter().copied().filter(|&i| leads(i, c)).collect();
            let backlog = upstream
                .iter()
                .filter(|&&i| i != c)
                .fold(seen.waiting, |b, &i| b.saturating_add(self.seen(i).waiting));
            if !over(backlog, seen.room, LOW) {
                if let Some(s) = usize::from(c).checked_sub(1).and_then(|k| self.seen.get_mut(k)) {
                    s.congested = false;
                }
                cleared.push(Change {
                    id: c,
                    congested: false,
                    waiting: backlog,
                    room: seen.room,
                });
                continue;
            }
            let left = high.saturating_sub(backlog);
            for i in upstream {
                if let Some(slot) = usize::from(i).checked_sub(1).and_then(|k| self.credit.get_mut(k)) {
                    *slot = Some(slot.map_or(left, |was| was.min(left)));
                    self.any = true;
                }
            }
        }
        cleared
    }

    /// Whether packets entering a chain at instance `id` are limited now (a switch lane
    /// then hands them to the main thread, which admits them).
    pub(super) fn limits(&self, id: u16) -> bool {
        self.any
            && usize::from(id)
                .checked_sub(1)
                .and_then(|i| self.credit.get(i))
                .is_some_and(Option::is_some)
    }

    /// `n` packets would enter a chain at instance `id`: how many of them may (the
    /// rest are dropped for backpressure).
    #[inline]
    pub(super) fn admit(&mut self, id: u16, n: usize) -> usize {
        if !self.any {
            return n;
        }
        match usize::from(id).checked_sub(1).and_then(|i| self.credit.get_mut(i)) {
            Some(Some(c)) => {
                let k = n.min(*c as usize);
                *c -= k as u32;
                k
            }
            _ => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instances 1, 2, 3 of services 1, 2, 3, chained 1 → 2 → 3.
    fn chain(p: &mut Pressure) {
        chain_cleared(p);
    }

    fn chain_cleared(p: &mut Pressure) -> Vec<Change> {
        p.settle(&[1, 2, 3], Some, |s| (s < 3).then_some(s + 1))
    }

    #[test]
    fn congestion_has_hysteresis() {
        let mut p = Pressure::new(true, 4);
        assert_eq!(p.observe(3, 3072, 4096, false), None, "exactly 3/4 is not over");
        let c = p.observe(3, 3073, 4096, false).unwrap();
        assert!(c.congested && c.waiting == 3073);
        assert_eq!(p.observe(3, 2000, 4096, false), None);
        p.observe(1, 500, 4096, false);
        assert_eq!(chain_cleared(&mut p), [], "2000 + 500 in front of it: above 1/4");
        p.observe(3, 600, 4096, false);
        assert_eq!(chain_cleared(&mut p), [], "600 + 500 in front of it: still above 1/4");
        p.observe(1, 0, 4096, false);
        let c = chain_cleared(&mut p);
        assert!(c.len() == 1 && !c[0].congested && c[0].waiting == 600);
        assert_eq!(p.observe(3, 2000, 4096, false), None, "below 3/4 stays clear");
    }

    #[test]
    fn entries_in_front_of_a_congested_nf_let_in_what_fits_behind_its_backlog() {
        let mut p = Pressure::new(true, 4);
        chain(&mut p);
        assert_eq!(p.admit(1, 32), 32, "nothing congested: no limit");
        p.observe(1, 100, 4096, false);
        p.observe(2, 50, 4096, false);
        p.observe(3, 3100, 4096, false);
        chain(&mut p);
        // High mark 3072; backlog 3100 + 100 + 50: nothing fits.
        assert_eq!(p.admit(1, 32), 0);
        assert_eq!(p.admit(2, 32), 0);
        p.observe(1, 0, 4096, false);
        p.observe(2, 0, 4096, false);
        p.observe(3, 3000, 4096, false);
        chain(&mut p);
        // Still congested (above 1/4): 72 fit, spent by what enters.
        assert_eq!(p.admit(1, 64), 64);
        assert_eq!(p.admit(1, 64), 8);
        assert_eq!(p.admit(1, 64), 0);
        assert_eq!(p.admit(3, 100), 72, "the congested NF's own entry too");
        // 3 caught up, but 2 fell behind: 3 stays limited while 2's packets are in
        // front of it; 2 limits what is in front of it, not what is behind it.
        p.observe(3, 0, 4096, false);
        p.observe(2, 3500, 4096, false);
        chain(&mut p);
        assert_eq!((p.admit(1, 32), p.admit(2, 32), p.admit(3, 32)), (0, 0, 0));
        p.observe(2, 0, 4096, false);
        assert_eq!(chain_cleared(&mut p).len(), 2, "both caught up");
        assert!(!p.pressing());
        assert_eq!(p.admit(1, 32), 32);
        // Only 2 behind: 3, behind it, takes packets from its own entry.
        p.observe(2, 3500, 4096, false);
        chain(&mut p);
        assert_eq!((p.admit(1, 32), p.admit(3, 32)), (0, 32));
    }

    #[test]
    fn off_hung_gone_own_service_and_loops() {
        let mut off = Pressure::new(false, 4);
        assert_eq!(off.observe(3, 4096, 4096, false), None);
        chain(&mut off);
        assert_eq!(off.admit(1, 32), 32);
        let mut p = Pressure::new(true, 4);
        assert_eq!(p.observe(3, 4096, 4096, true), None, "a hung NF is the watchdog's");
        p.observe(3, 4096, 4096, false);
        p.forget(3);
        chain(&mut p);
        assert_eq!(p.admit(1, 32), 32, "a gone NF limits nothing");
        // Instances 1 and 2 of one service: 2 behind does not hold 1 back.
        p.observe(2, 4096, 4096, false);
        let _ = p.settle(&[1, 2], |_| Some(1), |_| None);
        assert_eq!((p.admit(1, 32), p.admit(2, 32)), (32, 0));
        // Services that loop (1 → 2 → 1) end the walk; an unknown ID is no state.
        let _ = p.settle(&[1, 2], Some, |s| Some(3 - s));
        assert_eq!((p.admit(1, 32), p.admit(2, 32)), (0, 0));
        assert_eq!(p.observe(99, 1, 1, false), None);
        assert_eq!((p.admit(0, 5), p.admit(99, 5)), (5, 5));
    }
}
