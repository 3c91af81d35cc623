//! GET_CONFIG_REPLY / SET_CONFIG: IP fragment handling and how much of a packet a
//! PACKET_IN carries when the output action does not say (`miss_send_len`).

use crate::error::{OfpError, ofpet, ofpscfc};
use crate::wire::{Reader, Writer};

/// `ofp_config_flags`.
pub mod ofpc_frag {
    pub const NORMAL: u16 = 0;
    pub const DROP: u16 = 1;
    pub const REASM: u16 = 2;
    pub const MASK: u16 = 3;
}

/// `ofp_switch_config` (after the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// [`ofpc_frag`] value.
    pub flags: u16,
    pub miss_send_len: u16,
}

impl SwitchConfig {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let flags = r.u16()?;
        if flags & !ofpc_frag::MASK != 0 {
            return Err(OfpError::of(
                ofpet::SWITCH_CONFIG_FAILED,
                ofpscfc::BAD_FLAGS,
                format!("switch config flags {flags:#06x} have bits beyond OFPC_FRAG_MASK"),
            ));
        }
        Ok(SwitchConfig {
            flags,
            miss_send_len: r.u16()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.flags);
        w.u16(self.miss_send_len);
    }
}
