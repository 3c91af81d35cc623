//! The NF control socket: connections, messages, and the control tick that serves them.
//!
//! Each NF holds one `SOCK_SEQPACKET` connection; its first message must be a
//! registration, and the connection closing is how the manager learns that the NF is
//! gone (`lifecycle.rs` reclaims what it held). A message that does not decode, or
//! breaks the protocol, closes the connection with a [`ControlError`] naming why.

use onvm_proto::ctrl::{DecodeError, Dest, EncodeError, MAX_MESSAGE_LEN, MgrMsg, NfMsg, RefuseReason};
use onvm_shm::seqpacket::{Received, SeqPacket};
use thiserror::Error;

use super::Mgr;
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

/// One NF's connection.
#[derive(Debug)]
pub(super) struct Conn {
    pub(super) sock: SeqPacket,
    /// Its instance, once registered.
    pub(super) instance: Option<u16>,
}

/// The listening socket and every connection to it.
#[derive(Debug)]
pub(super) struct Control {
    listener: super::socket::Listener,
    pub(super) conns: Vec<Conn>,
    /// Receive buffer, one byte longer than any message (a longer one shows as such).
    buf: Vec<u8>,
}

impl Control {
    pub(super) fn new(listener: super::socket::Listener) -> Control {
        Control {
            listener,
            conns: Vec::new(),
            buf: vec![0u8; MAX_MESSAGE_LEN + 1],
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

    /// Close instance `id`'s connection; whether it had one.
    fn disconnect(&mut self, id: u16) -> bool {
        match self.conns.iter().position(|c| c.instance == Some(id)) {
            Some(k) => {
                self.conns.swap_remove(k);
                true
            }
            None => false,
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
    Unreadable(String),
    /// The connection is gone (closed, or failed: the reason for the log).
    Gone(Option<String>),
}

impl Mgr<'_> {
    /// Disconnect NFs that broke a ring, accept connections, serve every message,
    /// notice dead NFs; then the planes, edges, alloc rings.
    pub(super) fn control_tick(&mut self) -> Result<(), MgrError> {
        for (id, what) in std::mem::take(&mut self.io.broken.0) {
            if self.ctl.disconnect(id) {
                self.fwd
                    .acct
                    .event(format!("instance {id} corrupted {what}; disconnecting it"));
                self.nf_gone(id)?;
            }
        }
        while let Ok(Some(sock)) = self.ctl.listener.accept() {
            self.ctl.conns.push(Conn { sock, instance: None });
        }
        for refused in self.ctl.listener.refusals() {
            self.fwd.acct.event(refused);
        }
        let mut k = 0;
        while k < self.ctl.conns.len() {
            let gone = loop {
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
                        self.fwd
                            .acct
                            .event(format!("bad control message from instance {id} ignored: {why}"));
                    }
                    Turn::Msg(Err(e)) if self.ctl.conns[k].instance.is_some() => {
                        let id = self.ctl.conns[k].instance.unwrap_or_default();
                        let why = ControlError::from(e);
                        self.fwd
                            .acct
                            .event(format!("bad control message from instance {id} ignored: {why}"));
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
            if gone {
                let c = self.ctl.conns.swap_remove(k);
                if let Some(id) = c.instance {
                    self.nf_gone(id)?;
                }
            } else {
                k += 1;
            }
        }
        self.poll_planes();
        if self.fwd.table.generation() != self.fwd.direct.generation {
            // A rule changed (a controller, an expiry): where a service's packets go may
            // have too, so the edges that bypass the table close and are learnt anew.
            self.fwd.direct.generation = self.fwd.table.generation();
            self.fwd.topology_changed();
        }
        self.ctl.flush_outbox(&mut self.fwd.outbox);
        self.top_up_allocs()?;
        self.drain_orphans()
    }

    fn next_message(&mut self, k: usize) -> Turn {
        let ctl = &mut self.ctl;
        match ctl.conns[k].sock.recv(&mut ctl.buf) {
            Ok(Received::Empty) => Turn::Idle,
            Ok(Received::Closed) => Turn::Gone(None),
            Ok(Received::Msg(n, _)) => Turn::Msg(NfMsg::decode(&ctl.buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Turn::Unreadable(e.to_string()),
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
            (NfMsg::EdgeSwitched { ring }, Some(id)) => {
                // What it sent through the manager before the switch goes on first, into
                // the consumer's rx ring; then the consumer learns of the edge.
                self.drain_nf_fully(id);
                self.flush();
                self.fwd.direct.edges.switched(id, ring, &mut self.fwd.outbox);
                Ok(())
            }
            (NfMsg::EdgeReleased { ring }, Some(id)) => {
                if let Some(r) = self.fwd.direct.edges.released(id, ring, &mut self.fwd.outbox)
                    && let Ok(ring) = self.fwd.region.ring(r)
                {
                    ring.set_ends(0, 0);
                }
                Ok(())
            }
            (NfMsg::Msg { to, bytes }, Some(id)) => {
                let target = match to {
                    Dest::Instance(i) => self.fwd.reg.get(i).map(|i| i.id),
                    Dest::Service(s) => self.fwd.reg.instances_of(s).first().copied(),
                };
                match target {
                    Some(t) => self.ctl.send_to(t, &MgrMsg::Msg { from: id, bytes }),
                    None => self
                        .fwd
                        .acct
                        .event(format!("message from instance {id} to {to:?}: no such NF, dropped")),
                }
                Ok(())
            }
        }
    }
}
