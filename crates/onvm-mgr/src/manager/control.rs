//! The NF control socket: connections, messages, and the control tick that serves them.
//!
//! Each NF holds one `SOCK_SEQPACKET` connection; its first message must be a
//! registration, and the connection closing is how the manager learns that the NF is
//! gone (`lifecycle.rs` reclaims what it held). A message that does not decode, or
//! breaks the protocol, closes the connection with a [`ControlError`] naming why.
//!
//! The control plane must not starve the data plane (issue 12: a repeated `Ready`, a
//! flood of counters or 3,000 idle connections took unrelated chains from 1.0 Mpps to
//! 0.01–0.12), so one tick's work is bounded whatever clients do: each connection gets at
//! most [`MSGS_PER_CONN`] messages per tick, the whole tick [`RECVS_PER_TICK`] receive
//! calls (starting where the last tick stopped, so every connection gets its turn),
//! [`ACCEPTS_PER_TICK`] new connections; at most [`MAX_UNREGISTERED`] connections may
//! wait to register, each for [`REGISTER_WITHIN`]. What exceeds a budget waits in its
//! socket for the next tick; connections over the cap are closed. Those closures are
//! reported at most once per [`TALLY_EVERY`], not once each.

use std::time::{Duration, Instant};

use onvm_proto::ctrl::{DecodeError, Dest, EncodeError, MAX_MESSAGE_LEN, MgrMsg, NfMsg, RefuseReason};
use onvm_shm::seqpacket::{Received, SeqPacket};
use thiserror::Error;

use super::Mgr;
use super::socket::Accepted;
use crate::edges::Outbox;
use crate::error::MgrError;
use crate::registry::State;

/// Why the manager closed an NF's control connection.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The bytes are no control message.
    #[error("malformed control message: {0}")]
    Malformed(#[from] DecodeError),
    /// Something other than a registration came first.
    #[error("the first message must be a registration")]
    NotRegistered,
    /// A second registration on one connection.
    #[error("registered twice")]
    RegisteredTwice,
    /// The registry said no (the NF was told why).
    #[error("registration refused: {0}")]
    Refused(RefuseReason),
    /// The answer to a registration could not be sent.
    #[error("cannot answer the registration: {0}")]
    Reply(std::io::Error),
    /// The answer could not be encoded.
    #[error("cannot encode the answer: {0}")]
    Encode(#[from] EncodeError),
}

/// Messages one connection may have served per control tick; the rest wait in its
/// socket for the next tick. A well-behaved NF sends a few per second (counters, edge
/// switches and releases, one per edge), so 32 per millisecond tick (32,000/s) never holds
/// one back, while a flooding NF costs the switch at most ~32 receives (~30 µs) a tick.
pub(super) const MSGS_PER_CONN: u32 = 32;
/// Receive calls (a message or an empty socket) per control tick over all connections:
/// at ~1 µs each, a tick stays under ~0.3 ms even with every one of the 128 instances
/// flooding. Connections are taken in turn from where the last tick stopped, so with one
/// flooding NF the others are still served in the same tick.
pub(super) const RECVS_PER_TICK: u32 = 256;
/// New connections taken from the listening socket per control tick (more wait in its
/// backlog): NFs start a few at a time, and a connect flood costs at most this many
/// accept and close calls a tick.
pub(super) const ACCEPTS_PER_TICK: u32 = 16;
/// Connections that may wait to register at once; more are closed as they come. Every
/// connection is polled each tick, so 3,000 idle ones made each tick take milliseconds;
/// 64 is more than any number of NFs that start together (`onvm up` starts them one
/// after another) and costs at most 64 empty receives a tick.
pub(super) const MAX_UNREGISTERED: usize = 64;
/// How long a connection may wait before registering: an NF sends `Register` as soon as
/// it has connected (milliseconds), so 2 s is generous on a busy machine and still frees
/// a slot of [`MAX_UNREGISTERED`] soon.
pub(super) const REGISTER_WITHIN: Duration = Duration::from_secs(2);
/// Closures of misbehaving connections are reported at most this often, with their
/// count, so a flood of them cannot flood the events too.
pub(super) const TALLY_EVERY: Duration = Duration::from_secs(1);
/// A registered NF's faults that do not close its connection (a bad message, a message
/// to no such NF) are each reported up to this many times, then only the 16th, 32nd,
/// 64th, …: a bug shows, and a flood of them costs neither an event nor an allocation
/// per message.
pub(super) const COMPLAINTS_IN_FULL: u64 = 10;

/// Whether the `n`th complaint of a kind is logged (see [`COMPLAINTS_IN_FULL`]).
pub(super) fn worth_logging(n: u64) -> bool {
    n <= COMPLAINTS_IN_FULL || n.is_power_of_two()
}

/// One NF's connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) sock: SeqPacket,
    /// Its instance, once registered.
    pub(super) instance: Option<u16>,
    /// When it was accepted (it must register within [`REGISTER_WITHIN`]).
    since: Instant,
    /// Its faults so far that did not close it (see [`COMPLAINTS_IN_FULL`]).
    complaints: u64,
}

/// Occurrences of one kind of closure, reported together at most every [`TALLY_EVERY`].
#[derive(Debug, Default)]
struct Tally {
    /// Not reported yet.
    pending: u64,
    /// When they were last reported.
    last: Option<Instant>,
}

impl Tally {
    /// The count to report now, if any is pending and the last report is old enough.
    fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 || self.last.is_some_and(|t| now.duration_since(t) < TALLY_EVERY) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }
}

/// The listening socket and every connection to it.
#[derive(Debug)]
pub(super) struct Control {
    listener: super::socket::Listener,
    pub(super) conns: Vec<Conn>,
    /// Receive buffer, one byte longer than any message (a longer one shows as such).
    buf: Vec<u8>,
    /// The connection the next tick serves first.
    cursor: usize,
    /// Indices of connections closed in this tick, removed at its end so that indices
    /// stay put while messages are served (scratch, reused).
    gone: Vec<usize>,
    /// Connections closed because [`MAX_UNREGISTERED`] others waited to register.
    over_cap: Tally,
    /// Connections closed for not registering within [`REGISTER_WITHIN`].
    timed_out: Tally,
    /// Instances that asked to leave and have not been answered yet, and since when.
    pub(super) leaving: Vec<(u16, Instant)>,
}

impl Control {
    pub(super) fn new(listener: super::socket::Listener) -> Control {
        Control {
            listener,
            conns: Vec::new(),
            buf: vec![0u8; MAX_MESSAGE_LEN + 1],
            cursor: 0,
            gone: Vec::new(),
            over_cap: Tally::default(),
            timed_out: Tally::default(),
            leaving: Vec::new(),
        }
    }

    /// Take up to [`ACCEPTS_PER_TICK`] new connections; those beyond
    /// [`MAX_UNREGISTERED`] waiting ones are closed at once.
    fn accept(&mut self, now: Instant) {
        let mut waiting = self.conns.iter().filter(|c| c.instance.is_none()).count();
        // Refused peers count against the budget as allowed ones do (one accept each).
        for _ in 0..ACCEPTS_PER_TICK {
            let sock = match self.listener.accept() {
                Ok(Accepted::Allowed(sock)) => sock,
                Ok(Accepted::Refused) => continue,
                Ok(Accepted::Empty) | Err(_) => break,
            };
            if waiting >= MAX_UNREGISTERED {
                self.over_cap.pending += 1;
                continue; // dropped: closed
            }
            waiting += 1;
            self.conns.push(Conn {
                sock,
                instance: None,
                since: now,
                complaints: 0,
            });
        }
    }

    /// Whether any NF (or client) is still connected.
    pub(super) fn has_connections(&self) -> bool {
        !self.conns.is_empty()
    }

    /// Send `msg` to instance `id`. A failed send means the NF is going away; its
    /// socket's close handles that.
    pub(super) fn send_to(&self, id: u16, msg: &MgrMsg) {
        let Ok(bytes) = msg.encode() else { return };
        if let Some(c) = self.conns.iter().find(|c| c.instance == Some(id)) {
            let _ = c.sock.send(&bytes);
        }
    }

    /// Send everything queued for NFs.
    pub(super) fn flush_outbox(&self, outbox: &mut Outbox) {
        for (id, msg) in outbox.drain(..) {
            self.send_to(id, &msg);
        }
    }

    /// Close every connection; the instances they belonged to.
    pub(super) fn close_all(&mut self) -> Vec<u16> {
        self.conns.drain(..).filter_map(|c| c.instance).collect()
    }
}

/// What one connection's turn brought.
enum Turn {
    /// Nothing more for now.
    Idle,
    /// A message (decoded or not).
    Msg(Result<NfMsg, DecodeError>),
    /// A message that could not be read (empty, too long): the reason for the log.
    Unreadable(std::io::Error),
    /// The connection is gone (closed, or failed: the reason for the log).
    Gone(Option<String>),
}

impl Mgr<'_> {
    /// Accept connections, serve every message, notice dead NFs; then the planes,
    /// edges, alloc rings. (A corrupt ring never disconnects an NF: anyone may have
    /// scribbled it; see `switch.rs` and `top_up_allocs`.)
    pub(super) fn control_tick(&mut self) -> Result<(), MgrError> {
        let now = Instant::now();
        self.ctl.accept(now);
        for refused in self.ctl.listener.refusals() {
            self.fwd.acct.event(refused);
        }
        self.serve_conns(now)?;
        if let Some(n) = self.ctl.over_cap.due(now) {
            self.fwd.acct.event(format!(
                "closed {n} new control connection(s): {MAX_UNREGISTERED} others were waiting to register"
            ));
        }
        if let Some(n) = self.ctl.timed_out.due(now) {
            self.fwd.acct.event(format!(
                "closed {n} control connection(s) that did not register within {REGISTER_WITHIN:?}"
            ));
        }
        self.poll_planes();
        self.fwd.settle_handovers(now);
        self.settle_leaving(now);
        if self.fwd.table.generation() != self.fwd.direct.generation {
            // A rule changed (a controller, an expiry): where a service's packets go may
            // have too, so the edges that bypass the table close and are learnt anew.
            self.fwd.direct.generation = self.fwd.table.generation();
            self.fwd.topology_changed();
        }
        self.settle_lanes();
        self.settle_nf_queues();
        self.ctl.flush_outbox(&mut self.fwd.outbox);
        self.top_up_allocs()?;
        self.drain_orphans()
    }

    /// Serve connections in turn from the cursor, each up to [`MSGS_PER_CONN`] messages,
    /// all of them up to [`RECVS_PER_TICK`] receives; close the ones that went, broke the
    /// protocol or waited too long to register, then reclaim what their NFs held.
    fn serve_conns(&mut self, now: Instant) -> Result<(), MgrError> {
        let n = self.ctl.conns.len();
        let mut budget = RECVS_PER_TICK;
        let mut served = 0;
        let mut k = if n == 0 { 0 } else { self.ctl.cursor % n };
        while served < n && budget > 0 {
            let mut quota = MSGS_PER_CONN.min(budget);
            let gone = loop {
                if quota == 0 {
                    break false;
                }
                quota -= 1;
                budget -= 1;
                match self.next_message(k) {
                    Turn::Idle => break false,
                    Turn::Gone(why) => {
                        if let Some(why) = why {
                            let who = self.ctl.conns[k].instance;
                            self.fwd.acct.event(format!("control socket of {who:?} failed: {why}"));
                        }
                        break true;
                    }
                    // A registered NF's bad message is an error in that message, not
                    // its death (issue 12): it is reported and the NF keeps its place.
                    // An unregistered client that cannot speak the protocol is hung up on.
                    Turn::Unreadable(why) => {
                        let Some(id) = self.ctl.conns[k].instance else {
                            self.fwd
                                .acct
                                .event(format!("closing the connection of an unregistered client: {why}"));
                            break true;
                        };
                        self.complain(k, || format!("bad control message from instance {id} ignored: {why}"));
                    }
                    Turn::Msg(Err(e)) if self.ctl.conns[k].instance.is_some() => {
                        let id = self.ctl.conns[k].instance.unwrap_or_default();
                        self.complain(k, || {
                            let why = ControlError::from(e);
                            format!("bad control message from instance {id} ignored: {why}")
                        });
                    }
                    Turn::Msg(msg) => {
                        if let Err(why) = self.handle(k, msg) {
                            let who = self.ctl.conns[k]
                                .instance
                                .map_or_else(|| "an unregistered client".to_string(), |i| format!("instance {i}"));
                            self.fwd.acct.event(format!("closing the connection of {who}: {why}"));
                            break true;
                        }
                    }
                }
            };
            let c = &self.ctl.conns[k];
            let late = !gone && c.instance.is_none() && now.duration_since(c.since) >= REGISTER_WITHIN;
            if late {
                self.ctl.timed_out.pending += 1;
            }
            if gone || late {
                self.ctl.gone.push(k);
            }
            served += 1;
            k = (k + 1) % n;
        }
        // Where the budget ran out, the next tick goes on.
        self.ctl.cursor = k;
        // Highest index first: each swap_remove then moves a connection that stays.
        self.ctl.gone.sort_unstable();
        while let Some(k) = self.ctl.gone.pop() {
            let c = self.ctl.conns.swap_remove(k);
            if let Some(id) = c.instance
                && let Err(e) = self.nf_gone(id)
            {
                // No stale index may outlive this tick.
                self.ctl.gone.clear();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Report a fault of connection `k` that does not close it, unless it has had
    /// [`COMPLAINTS_IN_FULL`] already (then only at each power of two, with the count).
    fn complain(&mut self, k: usize, what: impl FnOnce() -> String) {
        let c = &mut self.ctl.conns[k];
        c.complaints += 1;
        let n = c.complaints;
        if n <= COMPLAINTS_IN_FULL {
            self.fwd.acct.event(what());
        } else if n.is_power_of_two() {
            self.fwd
                .acct
                .event(format!("{} ({n} faults of this connection so far)", what()));
        }
    }

    fn next_message(&mut self, k: usize) -> Turn {
        let ctl = &mut self.ctl;
        match ctl.conns[k].sock.recv(&mut ctl.buf) {
            Ok(Received::Empty) => Turn::Idle,
            Ok(Received::Closed) => Turn::Gone(None),
            Ok(Received::Msg(n, _)) => Turn::Msg(NfMsg::decode(&ctl.buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Turn::Unreadable(e),
            Err(e) => Turn::Gone(Some(e.to_string())),
        }
    }

    /// One control message from connection `k`; an error closes the connection.
    fn handle(&mut self, k: usize, msg: Result<NfMsg, DecodeError>) -> Result<(), ControlError> {
        let msg = msg?;
        let me = self.ctl.conns[k].instance;
        match (msg, me) {
            (NfMsg::Register(req), None) => self.register(k, &req),
            (_, None) => Err(ControlError::NotRegistered),
            (NfMsg::Register(_), Some(_)) => Err(ControlError::RegisteredTwice),
            (NfMsg::Ready, Some(id)) => {
                self.ready(id);
                Ok(())
            }
            (NfMsg::Leaving, Some(id)) => {
                self.leave(id);
                Ok(())
            }
            (NfMsg::Stopping, Some(id)) => {
                if let Some(i) = self.fwd.reg.get_mut(id) {
                    i.state = State::Stopping;
                }
                Ok(())
            }
            (NfMsg::Counters(c), Some(id)) => {
                if let Some(i) = self.fwd.reg.get_mut(id) {
                    i.counters = c;
                }
                Ok(())
            }
            (NfMsg::PortCounts(c), Some(id)) => {
                self.nf_port_counts(id, c);
                Ok(())
            }
            (NfMsg::EdgeSwitched { ring }, Some(id)) => {
                // What it sent through the manager before the switch goes on first, into
                // the consumer's rx ring; then the consumer learns of the edge.
                self.drain_nf_fully(id);
                self.flush();
                self.fwd.direct.edges.switched(id, ring, &mut self.fwd.outbox);
                // An edge to the manager is read from now on (no consumer to tell).
                self.settle_manager_edges();
                Ok(())
            }
            (NfMsg::EdgeReleased { ring }, Some(id)) => {
                self.fwd.edge_released(id, ring);
                self.settle_manager_edges();
                Ok(())
            }
            (NfMsg::Msg { to, bytes }, Some(id)) => {
                let target = match to {
                    Dest::Instance(i) => self.fwd.reg.get(i).map(|i| i.id),
                    Dest::Service(s) => self.fwd.reg.instances_of(s).first().copied(),
                };
                match target {
                    Some(t) => self.ctl.send_to(t, &MgrMsg::Msg { from: id, bytes }),
                    None => self.complain(k, || {
                        format!("message from instance {id} to {to:?}: no such NF, dropped")
                    }),
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_reports_at_once_then_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut t = Tally::default();
        assert_eq!(t.due(t0), None, "nothing to report");
        t.pending = 3;
        assert_eq!(t.due(t0), Some(3), "the first report is at once");
        t.pending = 5;
        assert_eq!(t.due(t0 + TALLY_EVERY / 2), None, "too soon after the last");
        t.pending += 1;
        assert_eq!(t.due(t0 + TALLY_EVERY), Some(6), "the rest together");
        assert_eq!(t.due(t0 + TALLY_EVERY * 3), None);
    }
}
