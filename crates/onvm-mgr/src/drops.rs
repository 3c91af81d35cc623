//! Why the manager freed a packet, and how many times each reason happened.
//!
//! Every packet that enters the manager leaves through a port, a controller, or one of
//! these reasons: together they make the conservation line of [`crate::Report`] add up.

/// Why the manager freed a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum DropReason {
    /// No flow rule matched.
    NoRule,
    /// A rule said drop.
    Rule,
    /// An NF said drop.
    Nf,
    /// The destination service has no running instance.
    NoInstance,
    /// The destination NF's rx ring was full.
    RingFull,
    /// An NF wrote a verdict that names nothing.
    BadVerdict,
    /// Output to a port that does not exist.
    NoSuchPort,
    /// A rule sends to the controller and there is none.
    NoController,
    /// Reclaimed from an NF that exited or crashed.
    Reclaimed,
    /// Shared metadata of the buffer was corrupt.
    BadBuffer,
    /// Buffered for the controller, which did not claim it in time.
    BufferExpired,
    /// The controller let a packet go (a PACKET_OUT without outputs).
    ControllerDrop,
    /// The destination NF's rx ring was full because the NF stopped reading it (the
    /// watchdog found it hung; the event names it).
    HungNf,
    /// An NF was told to keep a packet while holding its quota of buffers already.
    OverQuota,
    /// The destination NF's rx ring had corrupt indices (some process scribbled them;
    /// the event names the ring and the NF): treated as full until the ring heals.
    RingCorrupt,
    /// A rule or PACKET_OUT output a packet to the physical port it came in on by that
    /// port's number: OpenFlow sends it back only through IN_PORT.
    OutputInPort,
    /// A meter's drop band: the packet's flow is over the meter's rate.
    Meter,
    /// A decrement found the TTL at 0 or 1 and no controller took the packet
    /// (OpenFlow's invalid TTL).
    InvalidTtl,
    /// A group had no live bucket for it (SELECT, FAST_FAILOVER), or is gone.
    NoLiveBucket,
    /// A push, pop or TTL action could not be done to this packet: no room in front
    /// of it for a tag, or no such header (the event says which).
    BadEdit,
    /// Backpressure: an NF on the packet's chain was behind, so the packet was dropped
    /// where it entered the chain (`--backpressure`).
    Backpressure,
    /// A receive thread's packets that need the main switch thread (no fixed route, or
    /// a route whose edge was not open yet) found its queue to it full: the main thread
    /// was behind (`--rx-threads`).
    SwitchBehind,
}

impl DropReason {
    /// Every reason, in the order stats list them.
    pub const ALL: [DropReason; 22] = [
        DropReason::NoRule,
        DropReason::Rule,
        DropReason::Nf,
        DropReason::NoInstance,
        DropReason::RingFull,
        DropReason::BadVerdict,
        DropReason::NoSuchPort,
        DropReason::NoController,
        DropReason::Reclaimed,
        DropReason::BadBuffer,
        DropReason::BufferExpired,
        DropReason::ControllerDrop,
        DropReason::HungNf,
        DropReason::OverQuota,
        DropReason::RingCorrupt,
        DropReason::OutputInPort,
        DropReason::Meter,
        DropReason::InvalidTtl,
        DropReason::NoLiveBucket,
        DropReason::BadEdit,
        DropReason::Backpressure,
        DropReason::SwitchBehind,
    ];

    /// Short name used in stats.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::NoRule => "no-rule",
            DropReason::Rule => "rule-drop",
            DropReason::Nf => "nf-drop",
            DropReason::NoInstance => "no-instance",
            DropReason::RingFull => "nf-ring-full",
            DropReason::BadVerdict => "bad-verdict",
            DropReason::NoSuchPort => "no-such-port",
            DropReason::NoController => "no-controller",
            DropReason::Reclaimed => "reclaimed",
            DropReason::BadBuffer => "bad-buffer",
            DropReason::BufferExpired => "buffer-expired",
            DropReason::ControllerDrop => "controller-drop",
            DropReason::HungNf => "nf-hung",
            DropReason::OverQuota => "nf-over-quota",
            DropReason::RingCorrupt => "ring-corrupt",
            DropReason::OutputInPort => "output-in-port",
            DropReason::Meter => "meter",
            DropReason::InvalidTtl => "invalid-ttl",
            DropReason::NoLiveBucket => "group-no-live-bucket",
            DropReason::BadEdit => "bad-edit",
            DropReason::Backpressure => "backpressure",
            DropReason::SwitchBehind => "switch-behind",
        }
    }
}

/// Drop counters, one per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops([u64; DropReason::ALL.len()]);

impl Drops {
    /// Count `n` drops for `why`.
    #[inline]
    pub fn add(&mut self, why: DropReason, n: u64) {
        self.0[why as usize] += n;
    }

    /// Drops for `why`.
    pub fn get(&self, why: DropReason) -> u64 {
        self.0[why as usize]
    }

    /// Add what `now` counts beyond `before` (a later reading of the same counters).
    pub fn add_since(&mut self, now: &Drops, before: &Drops) {
        for (k, d) in self.0.iter_mut().enumerate() {
            *d += now.0[k].saturating_sub(before.0[k]);
        }
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The reasons that happened, by name, in [`DropReason::ALL`] order.
    pub fn list(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .filter(|r| self.get(**r) > 0)
            .map(|r| (r.name(), self.get(*r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_is_listed_once_in_its_slot_with_its_own_name() {
        let mut names = std::collections::HashSet::new();
        for (k, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, k, "{r:?} sits in its own counter");
            assert!(names.insert(r.name()), "{} named twice", r.name());
        }
        let mut d = Drops::default();
        d.add(DropReason::RingCorrupt, 3);
        d.add(DropReason::HungNf, 1);
        assert_eq!(d.list(), [("nf-hung", 1), ("ring-corrupt", 3)]);
        assert_eq!(d.total(), 4);
    }
}
