//! ROLE_REQUEST / ROLE_REPLY: which controller may change the switch when several are
//! connected. The generation id lets the switch refuse a stale master claim.

use crate::error::{OfpError, ofpet, ofprrfc};
use crate::wire::{Reader, Writer};

/// `ofp_controller_role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    NoChange = 0,
    Equal = 1,
    Master = 2,
    Slave = 3,
}

/// `ofp_role_request` (after the header); the reply has the same layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleMsg {
    pub role: Role,
    pub generation_id: u64,
}

impl RoleMsg {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let role = match r.u32()? {
            0 => Role::NoChange,
            1 => Role::Equal,
            2 => Role::Master,
            3 => Role::Slave,
            other => {
                return Err(OfpError::of(
                    ofpet::ROLE_REQUEST_FAILED,
                    ofprrfc::BAD_ROLE,
                    format!("unknown controller role {other}"),
                ));
            }
        };
        r.skip(4)?;
        Ok(RoleMsg {
            role,
            generation_id: r.u64()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.role as u32);
        w.zeros(4);
        w.u64(self.generation_id);
    }
}
