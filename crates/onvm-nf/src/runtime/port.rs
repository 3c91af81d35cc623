//! A port queue the NF polls itself (`onvm mgr --nf-queues`, [`MgrMsg::PortQueue`]).
//!
//! On the port path (port → NF → port) the manager's switch thread and the NF sit on
//! two cores, and every packet's buffer, metadata line, owner entry and ring slot cross
//! between them twice: on a machine where one core-to-core transfer costs hundreds of
//! cycles that, not the work, bounds the rate (docs/ARCHITECTURE.md, "The port path").
//! When the manager's fixed rules send everything a `null` port receives to one NF and
//! that NF's `Next` out of a `null` port, the NF can be the whole path: it receives the
//! frames into buffers it holds, handles them, and "sends" them by taking the buffers
//! back. Nothing crosses cores; the manager stops polling that port meanwhile.
//!
//! The buffers it receives into are its own, `Held` by it in the owner table: taken
//! from its alloc ring (counted as allocations) and kept in a spare stack between
//! packets (at most [`SPARE_AT_MOST`]), so a crash or a stop gives them back through
//! the manager's reclaim like anything else it held. What the handler sends elsewhere
//! (another NF, another port, a drop) takes the usual way and the stack refills from
//! the alloc ring.
//!
//! [`MgrMsg::PortQueue`]: onvm_proto::ctrl::MgrMsg::PortQueue

use onvm_proto::ctrl::{PortCounts, PortQueue};
use onvm_shm::{BURST, Buf, Consumer, Holder, now_ns};

/// Most spare buffers the NF keeps. Receiving a burst takes what sending the last one
/// gave back, so the stack stays near a burst or two; packets the switch put in the
/// rx ring before the NF had the queue also leave by it, and past this many they take
/// the switch's way out instead of piling up here, out of the pool's reach.
const SPARE_AT_MOST: usize = 4 * BURST;

/// The queue the NF polls, and its counts. Only the queue sits in the NF's `Out`
/// (checked once per burst on every NF's path); the rest is boxed, out of the way of
/// the NFs that never poll one.
#[derive(Debug, Default)]
pub(super) struct PortPoll {
    /// The queue, while the manager lets this NF poll it.
    queue: Option<PortQueue>,
    held: Box<Held>,
}

#[derive(Debug, Default)]
struct Held {
    /// Free buffers this NF holds for receiving into.
    spare: Vec<Buf>,
    /// Totals over every queue polled, with the ports of the last one.
    counts: PortCounts,
}

impl PortPoll {
    /// Stop polling. Whether it polled a queue: its counts must then be reported before
    /// another starts, since each report's increase must belong to the ports it names.
    pub(super) fn stop(&mut self) -> bool {
        self.queue.take().is_some()
    }

    /// Start polling `q`.
    pub(super) fn start(&mut self, q: PortQueue) {
        self.queue = Some(q);
        (self.held.counts.port, self.held.counts.out) = (q.port, q.out);
    }

    /// The counts to report, if this NF ever polled a queue.
    pub(super) fn counts(&self) -> Option<PortCounts> {
        (self.held.counts.rx > 0 || self.queue.is_some()).then_some(self.held.counts)
    }

    /// Whether this NF polls a queue.
    #[inline]
    pub(super) fn polls(&self) -> bool {
        self.queue.is_some()
    }

    /// Whether `n` packets sent as `Next` leave through this NF's own queue (else they
    /// take the usual way: the switch sends them out of the same port).
    #[inline]
    pub(super) fn takes(&self, n: usize) -> bool {
        self.queue.is_some() && self.held.spare.len() + n <= SPARE_AT_MOST
    }

    /// Receive up to `max` frames into `out`, as the manager's `null` port would (the
    /// metadata line written, never read; the bytes whatever the buffer held), stamped
    /// with the port and the time. Spare buffers first; when those run out, fresh ones
    /// from `alloc` (counted in `allocated`). The number received.
    #[inline]
    pub(super) fn rx_burst(
        &mut self,
        holder: &Holder,
        alloc: &mut Consumer<'_>,
        allocated: &mut u64,
        out: &mut Vec<Buf>,
        max: usize,
    ) -> usize {
        let Some(q) = self.queue else { return 0 };
        if self.held.spare.len() < max {
            let before = self.held.spare.len();
            // A corrupt alloc ring reads as "nothing now"; the manager's audit names it.
            let _ = holder.dequeue(alloc, BURST, &mut self.held.spare);
            *allocated += (self.held.spare.len() - before) as u64;
        }
        let n = max.min(self.held.spare.len());
        let now = now_ns();
        let len = usize::from(q.frame_len);
        let start = out.len();
        for _ in 0..n {
            let Some(mut buf) = self.held.spare.pop() else { break };
            // Only a buffer of another region fails, and ours are all of this one; a
            // frame longer than the buffer was refused by the manager. Either way the
            // buffer stays ours, unused, and is reclaimed when this NF goes.
            if holder.received(&mut buf, len, q.port, now).is_ok() {
                out.push(buf);
            } else {
                // At the bottom of the stack, out of this burst's way.
                self.held.spare.insert(0, buf);
            }
        }
        let got = out.len() - start;
        self.held.counts.rx += got as u64;
        self.held.counts.rx_bytes += (got * len) as u64;
        got
    }

    /// Send `bufs` out of the queue's port (a sink): counted, and kept to receive into
    /// (only as many as [`PortPoll::takes`] allowed).
    #[inline]
    pub(super) fn tx(&mut self, holder: &Holder, bufs: impl Iterator<Item = Buf>) {
        for mut buf in bufs {
            // A buffer whose metadata a peer scribbled still goes (it adds no bytes).
            if let Ok(p) = holder.packet(&mut buf) {
                self.held.counts.tx_bytes += p.len() as u64;
            }
            self.held.counts.tx += 1;
            self.held.spare.push(buf);
        }
    }
}
