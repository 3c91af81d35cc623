//! FEATURES_REPLY: who the switch is (datapath id) and what it can do.

use crate::error::OfpError;
use crate::wire::{Reader, Writer};

/// `ofp_capabilities` bits.
pub mod ofpc {
    pub const FLOW_STATS: u32 = 1 << 0;
    pub const TABLE_STATS: u32 = 1 << 1;
    pub const PORT_STATS: u32 = 1 << 2;
    pub const GROUP_STATS: u32 = 1 << 3;
    pub const IP_REASM: u32 = 1 << 5;
    pub const QUEUE_STATS: u32 = 1 << 6;
    pub const PORT_BLOCKED: u32 = 1 << 8;
}

/// `ofp_switch_features` (after the header). Ports are not listed here in 1.3; the
/// controller asks for them with a PORT_DESC multipart request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    /// 0 on the main connection.
    pub auxiliary_id: u8,
    /// [`ofpc`] bits.
    pub capabilities: u32,
    pub reserved: u32,
}

impl FeaturesReply {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let datapath_id = r.u64()?;
        let n_buffers = r.u32()?;
        let n_tables = r.u8()?;
        let auxiliary_id = r.u8()?;
        r.skip(2)?;
        Ok(FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities: r.u32()?,
            reserved: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.datapath_id);
        w.u32(self.n_buffers);
        w.u8(self.n_tables);
        w.u8(self.auxiliary_id);
        w.zeros(2);
        w.u32(self.capabilities);
        w.u32(self.reserved);
    }
}
