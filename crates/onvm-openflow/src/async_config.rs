//! SET_ASYNC / GET_ASYNC_REQUEST / GET_ASYNC_REPLY: which asynchronous messages a
//! connection wants, by reason, for each role.
//!
//! `ofp_async_config` holds three pairs of reason bitmaps (PACKET_IN, PORT_STATUS,
//! FLOW_REMOVED); element 0 applies while the connection is MASTER or EQUAL, element 1
//! while it is SLAVE. Bit `r` set means "send the message when its reason is `r`".
//! Unknown bits are kept as given (Open vSwitch does too): they name no reason this
//! switch sends, so they change nothing.

use crate::header::ofpt;
use crate::wire::{Reader, Writer};

/// Wire size of `ofp_async_config` after the header.
pub const ASYNC_CONFIG_LEN: usize = 24;

/// `ofp_async_config`: reason masks, `[master or equal, slave]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

impl Default for AsyncConfig {
    /// The spec's defaults (1.3.5, 6.1.1): a master or equal controller gets PACKET_IN
    /// for NO_MATCH and ACTION (not INVALID_TTL), every PORT_STATUS and FLOW_REMOVED;
    /// a slave gets PORT_STATUS only.
    fn default() -> Self {
        AsyncConfig {
            packet_in_mask: [0b011, 0],
            port_status_mask: [0b111, 0b111],
            flow_removed_mask: [0b1111, 0],
        }
    }
}

impl AsyncConfig {
    /// Whether a message of type `ty` ([`ofpt::PACKET_IN`], [`ofpt::PORT_STATUS`] or
    /// [`ofpt::FLOW_REMOVED`]) with `reason` goes to a connection in this role (`slave`).
    /// Any other type is not governed by the masks: `true`.
    pub fn wants(&self, ty: u8, reason: u8, slave: bool) -> bool {
        let masks = match ty {
            ofpt::PACKET_IN => self.packet_in_mask,
            ofpt::PORT_STATUS => self.port_status_mask,
            ofpt::FLOW_REMOVED => self.flow_removed_mask,
            _ => return true,
        };
        let mask = masks[usize::from(slave)];
        reason < 32 && mask & (1 << reason) != 0
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, crate::OfpError> {
        Ok(AsyncConfig {
            packet_in_mask: [r.u32()?, r.u32()?],
            port_status_mask: [r.u32()?, r.u32()?],
            flow_removed_mask: [r.u32()?, r.u32()?],
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        for m in self
            .packet_in_mask
            .iter()
            .chain(&self.port_status_mask)
            .chain(&self.flow_removed_mask)
        {
            w.u32(*m);
        }
    }
}
