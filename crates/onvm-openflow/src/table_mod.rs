//! TABLE_MOD: a table's configuration. In OpenFlow 1.3 the only bits are the two of
//! `OFPTC_DEPRECATED_MASK` (1.1/1.2's table-miss behaviour), which a 1.3 switch ignores;
//! Open vSwitch accepts them and 0 alike, and so does this switch. Whether the table
//! exists is for the switch to say (`OFPTMFC_BAD_TABLE`), not the codec.

use crate::error::OfpError;
use crate::wire::{Reader, Writer};

/// `OFPTC_DEPRECATED_MASK`: the only config bits of OpenFlow 1.3.
pub const OFPTC_DEPRECATED_MASK: u32 = 3;

/// `ofp_table_mod` after the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableMod {
    /// A table or [`crate::OFPTT_ALL`].
    pub table_id: u8,
    pub config: u32,
}

impl TableMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        Ok(TableMod {
            table_id,
            config: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.table_id);
        w.zeros(3);
        w.u32(self.config);
    }
}
