//! The control socket: the manager's messages, and the edge protocol's answers.
//!
//! The edge protocol itself is [`NfEdges`](onvm_proto::edge::NfEdges), pure; this file
//! feeds it the messages and the facts the runtime sees (the tx ring was just flushed,
//! a closing edge is empty) and does what it says: open or drop a ring's producer or
//! consumer, send an answer.

use onvm_proto::ctrl::{MgrMsg, NfMsg};
use onvm_proto::edge::{EdgeError, NfEvent};
use onvm_shm::seqpacket::{Received, SeqPacket};
use onvm_shm::{BURST, OwnerId};

use super::Runtime;
use super::out::OutEdge;
use super::policy::StopReason;
use crate::error::NfError;
use crate::handler::Handler;

/// Send one control message to the manager.
pub(super) fn tell(sock: &SeqPacket, m: &NfMsg) -> Result<(), NfError> {
    sock.send(&m.encode().map_err(|e| NfError::Protocol(e.to_string()))?)?;
    Ok(())
}

fn refused(e: EdgeError) -> NfError {
    NfError::Protocol(format!("edge: {e}"))
}

impl<'r> Runtime<'r> {
    /// Handle every message waiting on the control socket, then the edge protocol's
    /// facts. Called right after a flush, so everything routed so far is in the tx ring.
    pub(super) fn poll_control<H: Handler>(&mut self, handler: &mut H) -> Result<(), NfError> {
        loop {
            let n = match self.sock.recv(&mut self.msg_buf)? {
                Received::Empty => break,
                Received::Closed => {
                    self.manager_gone = true;
                    break;
                }
                Received::Msg(n, _) => n,
            };
            match MgrMsg::decode(&self.msg_buf[..n])? {
                MgrMsg::Stop => {
                    self.stopped_by = StopReason::Manager;
                    self.ctx.stop = true;
                }
                MgrMsg::Left => {
                    let waiting = self.rx.ready().unwrap_or(0);
                    if let Some(l) = &mut self.leaving {
                        l.left = Some(self.ctx.counters.rx + u64::from(waiting));
                    }
                }
                MgrMsg::Msg { from, bytes } => handler.message(from, &bytes, &mut self.ctx),
                MgrMsg::EdgeOut {
                    service,
                    instance,
                    ring,
                    bell,
                } => self
                    .edges
                    .handle_edge_out(service, instance, ring, bell)
                    .map_err(refused)?,
                MgrMsg::EdgeIn { ring } => self.edges.handle_edge_in(ring).map_err(refused)?,
                MgrMsg::EdgeClosed { ring } => self.edges.handle_edge_closed(ring).map_err(refused)?,
                MgrMsg::PortQueue(q) => {
                    // What it counted on the old queue is reported under the old ports.
                    if self.out.port.stop() {
                        self.report_port()?;
                    }
                    if let Some(q) = q {
                        self.out.port.start(q);
                    }
                }
                other @ (MgrMsg::Registered(_) | MgrMsg::Refused(_)) => {
                    return Err(NfError::Protocol(format!(
                        "unexpected message while running: {other:?}"
                    )));
                }
            }
            self.apply_edge_events()?;
        }
        // Everything sent the old way is in the tx ring (the flush before this waits
        // until the manager's ring takes it all): edges switched to are answered, and
        // the manager moves those packets on before the receiver reads the edge, which
        // keeps flows in order.
        self.edges.handle_tx_flushed();
        // Inbound edges being closed go once they are empty.
        for ring in self.edges.draining() {
            if self.inbound.is_empty(ring) {
                self.drained.push(ring);
            }
        }
        for ring in self.drained.drain(..) {
            self.edges.handle_drained(ring);
        }
        self.apply_edge_events()
    }

    /// Do what the edge protocol says, in its order.
    fn apply_edge_events(&mut self) -> Result<(), NfError> {
        while let Some(ev) = self.edges.poll() {
            match ev {
                NfEvent::StartWriting { key, ring, to, bell } => {
                    // An edge never holds more than a quota of buffers: a receiver that
                    // stops reading (stopped, hung) cannot take a ring's worth of the
                    // pool before the watchdog closes its edges. (The receiver's quota
                    // is not ours to know; ours is the same unless set per service.)
                    let mut prod = self.region.producer(ring)?;
                    prod.limit_to(self.reg.quota);
                    self.out.add(OutEdge {
                        key,
                        ring,
                        to: OwnerId(to),
                        prod,
                        bell: bell.map(|b| self.region.producer(b)).transpose()?,
                        unrung: 0,
                        pending: Vec::with_capacity(BURST),
                    });
                }
                NfEvent::StopWriting { ring, .. } => self.out.remove(self.holder, ring),
                NfEvent::StartReading { ring } => self.inbound.add(ring, self.region.consumer(ring)?),
                NfEvent::StopReading { ring } => self.inbound.remove(ring),
                // Nobody is left to tell once the socket closed.
                NfEvent::Send(a) if !self.manager_gone => tell(self.sock, &a.into())?,
                NfEvent::Send(_) => {}
            }
        }
        Ok(())
    }
}
