//! PACKET_IN (switch → controller: a packet the controller should see) and PACKET_OUT
//! (controller → switch: send this packet, or this buffered one, through these actions).

use crate::action::Action;
use crate::error::{ErrorKind, OfpError, ofpbrc, ofpet};
use crate::oxm::Match;
use crate::port::ofpp;
use crate::wire::{Reader, Writer};

/// `ofp_packet_in_reason`.
pub mod ofpr {
    pub const NO_MATCH: u8 = 0;
    pub const ACTION: u8 = 1;
    pub const INVALID_TTL: u8 = 2;
}

/// `ofp_packet_in` (after the header). The match carries at least `in_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    /// Where the switch keeps the whole packet, or [`crate::OFP_NO_BUFFER`].
    pub buffer_id: u32,
    /// Length of the whole frame (`data` may be only its start).
    pub total_len: u16,
    /// [`ofpr`] value.
    pub reason: u8,
    pub table_id: u8,
    /// Cookie of the flow that sent it (all ones on a table miss without a flow).
    pub cookie: u64,
    pub match_: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let buffer_id = r.u32()?;
        let total_len = r.u16()?;
        let reason = r.u8()?;
        let table_id = r.u8()?;
        let cookie = r.u64()?;
        let match_ = Match::decode(r)?;
        r.skip(2)?;
        Ok(PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.buffer_id);
        w.u16(self.total_len);
        w.u8(self.reason);
        w.u8(self.table_id);
        w.u64(self.cookie);
        self.match_.encode(w);
        w.zeros(2);
        w.bytes(&self.data);
    }
}

/// `ofp_packet_out` (after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut {
    /// A packet buffered at the switch, or [`crate::OFP_NO_BUFFER`] to send `data`.
    pub buffer_id: u32,
    /// The port the packet counts as coming from: a real port, CONTROLLER, LOCAL or ANY.
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let buffer_id = r.u32()?;
        let in_port = r.u32()?;
        let actions_len = usize::from(r.u16()?);
        r.skip(6)?;
        if !matches!(in_port, 1..=ofpp::MAX | ofpp::CONTROLLER | ofpp::LOCAL | ofpp::ANY) {
            return Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BAD_PORT,
                format!("PACKET_OUT in_port {in_port:#x} is not a port a packet can come from"),
            ));
        }
        let actions = Action::decode_list(r.sub(actions_len, ErrorKind::BAD_ACTION_LEN, "action")?)?;
        Ok(PacketOut {
            buffer_id,
            in_port,
            actions,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.buffer_id);
        w.u32(self.in_port);
        let at = w.len_placeholder();
        w.zeros(6);
        let start = w.pos();
        Action::encode_list(&self.actions, w);
        w.patch_len(at, start);
        w.bytes(&self.data);
    }
}
