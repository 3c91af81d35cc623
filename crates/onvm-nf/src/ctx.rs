//! What a callback may do besides answering an action.

use std::time::{Duration, Instant};

use onvm_proto::ctrl::{Dest, NfCounters, NfMsg};
use onvm_proto::limits::MAX_MSG_PAYLOAD;
use onvm_proto::verdict::Verdict;
use onvm_shm::{Buf, Consumer, Holder, PacketMut};

use crate::action::Action;
use crate::error::NfError;

/// Messages an NF may have waiting for the manager (sent at housekeeping, every 256
/// passes; while the control socket is full they wait).
pub const MAX_PENDING_MSGS: usize = 1024;

/// A packet the NF holds outside the handler: one it kept ([`Action::Keep`]) or
/// allocated. It must be handed on with [`Ctx::return_pkt`]; one still held when the
/// NF stops is dropped (given back to the manager), never lost.
#[derive(Debug)]
pub struct Kept(pub(crate) Buf);

/// The NF's side of the platform, passed to every callback.
#[derive(Debug)]
pub struct Ctx<'r> {
    pub(crate) holder: &'r Holder,
    pub(crate) instance: u16,
    pub(crate) service: u16,
    pub(crate) counters: NfCounters,
    pub(crate) kept: Vec<Buf>,
    pub(crate) returned: Vec<(Buf, Verdict)>,
    pub(crate) alloc: Consumer<'r>,
    pub(crate) fresh: Vec<Buf>,
    pub(crate) msgs: Vec<NfMsg>,
    pub(crate) stop: bool,
    pub(crate) started: Instant,
    /// Buffers the NF may hold outside its rings (the manager says, at registration).
    pub(crate) quota: u32,
    /// Buffers it holds: kept or allocated, not yet handed on.
    pub(crate) held: u32,
}

impl<'r> Ctx<'r> {
    pub(crate) fn new(holder: &'r Holder, instance: u16, service: u16, alloc: Consumer<'r>, quota: u32) -> Self {
        Ctx {
            holder,
            instance,
            service,
            counters: NfCounters::default(),
            kept: Vec::new(),
            returned: Vec::new(),
            alloc,
            fresh: Vec::new(),
            msgs: Vec::new(),
            stop: false,
            started: Instant::now(),
            quota,
            held: 0,
        }
    }

    /// This NF's instance ID.
    pub fn instance(&self) -> u16 {
        self.instance
    }

    /// This NF's service ID.
    pub fn service(&self) -> u16 {
        self.service
    }

    /// Counters so far.
    pub fn counters(&self) -> NfCounters {
        self.counters
    }

    /// Time since the NF started running.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// How many buffers this NF may hold outside its rings (kept and allocated, not
    /// yet handed on), as the manager set it; packets it is told to keep beyond that
    /// go back to the manager, counted as `nf-over-quota`, and [`Ctx::alloc`] says no.
    pub fn quota(&self) -> u32 {
        self.quota
    }

    /// Buffers it holds now against its quota.
    pub fn held(&self) -> u32 {
        self.held
    }

    /// Packets kept so far and not yet taken.
    pub fn kept_count(&self) -> usize {
        self.kept.len()
    }

    /// Take the kept packets, oldest first.
    pub fn take_kept(&mut self) -> Vec<Kept> {
        self.kept.drain(..).map(Kept).collect()
    }

    /// The bytes of a kept or allocated packet.
    pub fn packet<'a>(&self, k: &'a mut Kept) -> Result<PacketMut<'a>, NfError>
    where
        'r: 'a,
    {
        Ok(self.holder.packet(&mut k.0)?)
    }

    /// Hand on a kept or allocated packet (openNetVM's `onvm_nflib_return_pkt`);
    /// [`Action::Keep`] keeps it again.
    pub fn return_pkt(&mut self, k: Kept, action: Action) {
        match action.verdict() {
            Some(v) => {
                self.counters.act_returned += 1;
                self.held = self.held.saturating_sub(1);
                self.returned.push((k.0, v));
            }
            None => self.kept.push(k.0),
        }
    }

    /// A fresh, empty packet buffer from the manager's pool, or `None` if none is
    /// ready right now (the manager tops the NF's alloc ring up continuously) or the NF
    /// holds its quota of buffers already (see [`Ctx::quota`]).
    pub fn alloc(&mut self) -> Option<Kept> {
        if self.held >= self.quota {
            return None;
        }
        if self.fresh.is_empty() {
            // A corrupt alloc ring reads as "nothing ready"; the manager's audit reports it.
            let _ = self.holder.dequeue(&mut self.alloc, onvm_shm::BURST, &mut self.fresh);
            self.fresh.reverse();
        }
        let mut buf = self.fresh.pop()?;
        // Written over without reading: whatever a peer left on the line, the buffer
        // comes out empty and usable (the only error, a buffer of another region, cannot
        // come from our own holder).
        let _ = self.holder.packet_reset(&mut buf);
        self.counters.allocated += 1;
        self.held += 1;
        Some(Kept(buf))
    }

    /// Send a message to another NF (through the manager), at the next housekeeping.
    /// Refused, and not sent, when it is longer than the control path carries
    /// ([`MAX_MSG_PAYLOAD`] bytes) or [`MAX_PENDING_MSGS`] are still waiting for the
    /// manager to take them: a message never makes the NF stop.
    pub fn send_msg(&mut self, to: Dest, bytes: Vec<u8>) -> Result<(), NfError> {
        if bytes.len() > MAX_MSG_PAYLOAD {
            return Err(NfError::Message(format!(
                "{} bytes is longer than a message may be ({MAX_MSG_PAYLOAD} bytes)",
                bytes.len()
            )));
        }
        if self.msgs.len() >= MAX_PENDING_MSGS {
            return Err(NfError::Message(format!(
                "{MAX_PENDING_MSGS} messages are still waiting for the manager to take them"
            )));
        }
        self.msgs.push(NfMsg::Msg { to, bytes });
        Ok(())
    }

    /// Stop after this callback.
    pub fn stop(&mut self) {
        self.stop = true;
    }
}
