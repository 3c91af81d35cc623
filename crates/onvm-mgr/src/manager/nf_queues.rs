//! Port queues NFs poll themselves (`Options::nf_queues`; the NF's side is
//! `onvm-nf`'s `runtime/port.rs`).
//!
//! At each control tick the main thread looks for the one shape where the NF can be
//! the whole port path: a port whose queue an NF process can poll (`Port::nf_queue`,
//! `null` ports), whose fixed rule sends every packet to one running instance that
//! needs nothing else of the switch (`Fwd::plain_route`), and whose service's fixed
//! rule sends `Next` out of a port an NF can send to, not captured. That instance is
//! told to poll the queue ([`MgrMsg::PortQueue`]) and the switch stops polling the
//! port; when the shape goes (a second instance, a rule change, a capture, the NF
//! hangs or leaves) the queue is taken back and the switch polls it again.
//!
//! The NF reports what it received and sent ([`NfMsg::PortCounts`], totals since it
//! started, with the ports they belong to); the increases are added to the ports'
//! rows. For the conservation line the NF's queue is one more port whose buffers come
//! from its alloc ring: what it received reuses buffers already counted in when they
//! were allocated, so the packets in are what it *sent* (see [`NfQueues::count`]);
//! what it holds when it goes is reclaimed like anything else an NF held.
//!
//! [`NfMsg::PortCounts`]: onvm_proto::ctrl::NfMsg::PortCounts

use onvm_ports::PortStats;
use onvm_proto::ctrl::{MgrMsg, PortCounts, PortQueue};
use onvm_proto::flow::PortNo;
use onvm_proto::limits::MAX_INSTANCES;

use super::Mgr;
use crate::capture::Point;
use crate::router::Target;
use crate::stats::PortRow;

/// One instance's queue, as the main thread sees it.
#[derive(Clone, Debug, Default)]
struct Given {
    /// The queue it was last told to poll.
    now: Option<PortQueue>,
    /// Every (port, out) it was ever given: a report naming others is refused.
    ever: Vec<(u16, u16)>,
    /// Its last report (each field the highest seen).
    seen: PortCounts,
    /// Reports refused.
    refused: u64,
}

/// The queues NFs poll, and what they counted.
#[derive(Debug, Default)]
pub(super) struct NfQueues {
    /// Per instance ID (index `id - 1`).
    given: Vec<Given>,
    /// Per port: an NF polls it, so the switch does not.
    pub(super) polled: Vec<bool>,
    /// Per port: what NFs received from and sent to it.
    stats: Vec<PortStats>,
    /// Packets NFs received on their queues, and sent (see the module docs).
    pub(super) rx: u64,
    pub(super) tx: u64,
}

impl NfQueues {
    pub(super) fn new(ports: usize) -> Self {
        NfQueues {
            given: vec![Given::default(); usize::from(MAX_INSTANCES)],
            polled: vec![false; ports],
            stats: vec![PortStats::default(); ports],
            rx: 0,
            tx: 0,
        }
    }

    /// Add what NFs counted to the ports' rows.
    pub(super) fn add_port_stats(&self, rows: &mut [PortRow]) {
        for (r, s) in rows.iter_mut().zip(&self.stats) {
            r.stats += *s;
        }
    }

    /// Instance `id` reported `c`: the increases go to the ports it names, if it was
    /// ever given them. Whether it was refused (for the first time, or a power of two).
    pub(super) fn count(&mut self, id: u16, c: PortCounts) -> Option<u64> {
        let g = self.given.get_mut(usize::from(id).wrapping_sub(1))?;
        let (port, out) = (usize::from(c.port), usize::from(c.out));
        if !g.ever.contains(&(c.port, c.out)) || port >= self.stats.len() || out >= self.stats.len() {
            g.refused += 1;
            return super::control::worth_logging(g.refused).then_some(g.refused);
        }
        // Totals only grow; a report that says less adds nothing (and the next one
        // counts from the highest seen, so nothing is counted twice).
        let up = |now: u64, seen: &mut u64| {
            let d = now.saturating_sub(*seen);
            *seen = (*seen).max(now);
            d
        };
        let s = &mut g.seen;
        let (rx, rx_bytes) = (up(c.rx, &mut s.rx), up(c.rx_bytes, &mut s.rx_bytes));
        let (tx, tx_bytes) = (up(c.tx, &mut s.tx), up(c.tx_bytes, &mut s.tx_bytes));
        self.stats[port].rx += rx;
        self.stats[port].rx_bytes += rx_bytes;
        self.stats[out].tx += tx;
        self.stats[out].tx_bytes += tx_bytes;
        self.rx += rx;
        self.tx += tx;
        None
    }

    /// Instance `id` is gone: its queue is polled by the switch again.
    pub(super) fn forget(&mut self, id: u16) {
        if let Some(g) = self.given.get_mut(usize::from(id).wrapping_sub(1)) {
            *g = Given::default();
        }
        self.mark_polled();
    }

    fn mark_polled(&mut self) {
        self.polled.fill(false);
        for q in self.given.iter().filter_map(|g| g.now) {
            if let Some(p) = self.polled.get_mut(usize::from(q.port)) {
                *p = true;
            }
        }
    }
}

impl Mgr<'_> {
    /// At the control tick: give each NF the queue the rules let it poll, take back
    /// the ones they no longer do.
    pub(super) fn settle_nf_queues(&mut self) {
        if !self.opts.nf_queues {
            return;
        }
        let mut want: Vec<Option<PortQueue>> = vec![None; usize::from(MAX_INSTANCES)];
        for p in 0..self.io.ports.len() as u16 {
            let Some(frame_len) = self.io.ports[usize::from(p)].nf_queue().and_then(|q| q.frame_len) else {
                continue;
            };
            let Some(id) = self.fwd.plain_route(p) else { continue };
            let Some(out) = self.nf_sends_to(id) else { continue };
            let slot = &mut want[usize::from(id) - 1];
            if slot.is_none() {
                *slot = Some(PortQueue {
                    port: p,
                    frame_len,
                    out,
                });
            }
        }
        let mut changed = false;
        for (i, w) in want.into_iter().enumerate() {
            let id = i as u16 + 1;
            let g = &mut self.nfq.given[i];
            if g.now == w {
                continue;
            }
            changed = true;
            g.now = w;
            if let Some(q) = w
                && !g.ever.contains(&(q.port, q.out))
            {
                g.ever.push((q.port, q.out));
            }
            self.ctl.send_to(id, &MgrMsg::PortQueue(w));
            self.fwd.acct.event(match w {
                Some(q) => format!(
                    "instance {id} polls port {} itself and sends its next hop out of port {} (--nf-queues)",
                    q.port, q.out
                ),
                None => format!("instance {id} no longer polls a port queue; the switch does"),
            });
        }
        if changed {
            self.nfq.mark_polled();
        }
    }

    /// The port instance `id`'s `Next` leaves by, if an NF can send to it itself and
    /// no capture watches its transmit.
    fn nf_sends_to(&mut self, id: u16) -> Option<u16> {
        let fwd = &mut self.fwd;
        let service = fwd.reg.get(id)?.service;
        let f = fwd
            .router
            .fixed_target(&fwd.table, &fwd.reg, PortNo::service(service))?;
        let Target::Port(q) = f.target else { return None };
        let sink = self.io.ports.get(usize::from(q))?.nf_queue().is_some();
        (sink && !fwd.taps.on(Point::PortTx(q))).then_some(q)
    }

    /// Instance `id` reported its queue's counts.
    pub(super) fn nf_port_counts(&mut self, id: u16, c: PortCounts) {
        if let Some(n) = self.nfq.count(id, c) {
            self.fwd.acct.event(format!(
                "instance {id} reported counts for ports {} → {} it was never given to poll; ignored ({n} times so far)",
                c.port, c.out
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(port: u16, out: u16, rx: u64, tx: u64) -> PortCounts {
        PortCounts {
            port,
            out,
            rx,
            rx_bytes: rx * 60,
            tx,
            tx_bytes: tx * 60,
        }
    }

    #[test]
    fn reports_add_what_grew_to_the_ports_they_name() {
        let mut q = NfQueues::new(3);
        q.given[0].ever.push((0, 1));
        assert_eq!(q.count(1, counts(0, 1, 100, 90)), None);
        assert_eq!(q.count(1, counts(0, 1, 150, 150)), None);
        assert_eq!((q.stats[0].rx, q.stats[1].tx, q.stats[0].tx), (150, 150, 0));
        assert_eq!((q.rx, q.tx), (150, 150));
        // A report that says less adds nothing, and the next counts from the highest.
        q.count(1, counts(0, 1, 10, 10));
        q.count(1, counts(0, 1, 160, 160));
        assert_eq!((q.stats[0].rx, q.stats[1].tx, q.stats[0].rx_bytes), (160, 160, 9600));
    }

    #[test]
    fn reports_for_ports_never_given_or_of_no_instance_are_refused() {
        let mut q = NfQueues::new(2);
        q.given[0].ever.push((0, 1));
        assert_eq!(q.count(1, counts(1, 0, 5, 5)), Some(1), "never given");
        assert_eq!(q.count(0, counts(0, 1, 5, 5)), None, "no instance 0: nothing");
        assert_eq!(q.count(200, counts(0, 1, 5, 5)), None);
        q.given[1].ever.push((0, 7));
        assert_eq!(q.count(2, counts(0, 7, 5, 5)), Some(1), "no port 7");
        assert_eq!((q.rx, q.tx), (0, 0));
    }

    #[test]
    fn a_gone_instance_gives_its_port_back_to_the_switch() {
        let mut q = NfQueues::new(2);
        q.given[2].now = Some(PortQueue {
            port: 1,
            frame_len: 60,
            out: 0,
        });
        q.mark_polled();
        assert_eq!(q.polled, [false, true]);
        q.forget(3);
        assert_eq!(q.polled, [false, false]);
        assert_eq!(q.given[2].ever, []);
    }
}
