//! Port numbers, `ofp_port` (a port's description) and PORT_STATUS.
//!
//! Ports are plain `u32`s as on the wire; the reserved numbers are in [`ofpp`]. How
//! onvm ports and service ports map onto OpenFlow numbers is the agent's business.

use crate::error::OfpError;
use crate::wire::{Reader, Writer, fixed_str};

/// Port numbers (`ofp_port_no`).
pub mod ofpp {
    /// Highest number of a real port.
    pub const MAX: u32 = 0xffff_ff00;
    /// Send the packet out the port it came in on.
    pub const IN_PORT: u32 = 0xffff_fff8;
    /// Submit the packet to the first flow table (PACKET_OUT only).
    pub const TABLE: u32 = 0xffff_fff9;
    pub const NORMAL: u32 = 0xffff_fffa;
    /// All ports but the input port and those with OFPPC_NO_FWD.
    pub const FLOOD: u32 = 0xffff_fffb;
    /// All ports but the input port.
    pub const ALL: u32 = 0xffff_fffc;
    pub const CONTROLLER: u32 = 0xffff_fffd;
    pub const LOCAL: u32 = 0xffff_fffe;
    /// "Any port" in requests and filters; not a destination.
    pub const ANY: u32 = 0xffff_ffff;
}

/// Whether `port` may be the destination of an OUTPUT action.
pub fn is_output_port(port: u32) -> bool {
    matches!(port, 1..=ofpp::MAX) || (ofpp::IN_PORT..=ofpp::LOCAL).contains(&port)
}

/// `ofp_port_config` bits.
pub mod ofppc {
    pub const PORT_DOWN: u32 = 1 << 0;
    pub const NO_RECV: u32 = 1 << 2;
    pub const NO_FWD: u32 = 1 << 5;
    pub const NO_PACKET_IN: u32 = 1 << 6;
}

/// `ofp_port_state` bits.
pub mod ofpps {
    pub const LINK_DOWN: u32 = 1 << 0;
    pub const BLOCKED: u32 = 1 << 1;
    pub const LIVE: u32 = 1 << 2;
}

/// `ofp_port_features` bits.
pub mod ofppf {
    pub const TEN_MB_HD: u32 = 1 << 0;
    pub const TEN_MB_FD: u32 = 1 << 1;
    pub const HUNDRED_MB_HD: u32 = 1 << 2;
    pub const HUNDRED_MB_FD: u32 = 1 << 3;
    pub const ONE_GB_HD: u32 = 1 << 4;
    pub const ONE_GB_FD: u32 = 1 << 5;
    pub const TEN_GB_FD: u32 = 1 << 6;
    pub const FORTY_GB_FD: u32 = 1 << 7;
    pub const HUNDRED_GB_FD: u32 = 1 << 8;
    pub const ONE_TB_FD: u32 = 1 << 9;
    pub const OTHER: u32 = 1 << 10;
    pub const COPPER: u32 = 1 << 11;
    pub const FIBER: u32 = 1 << 12;
    pub const AUTONEG: u32 = 1 << 13;
    pub const PAUSE: u32 = 1 << 14;
    pub const PAUSE_ASYM: u32 = 1 << 15;
}

/// Length of `ofp_port` on the wire.
pub const PORT_LEN: usize = 64;
/// Size of `ofp_port.name`, NUL included.
pub const MAX_PORT_NAME_LEN: usize = 16;

/// `ofp_port`: one port's description (PORT_DESC, PORT_STATUS).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    /// At most 15 bytes go on the wire (the field is `char[16]` with a NUL).
    pub name: String,
    /// [`ofppc`] bits.
    pub config: u32,
    /// [`ofpps`] bits.
    pub state: u32,
    /// [`ofppf`] bits.
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    /// kbit/s.
    pub curr_speed: u32,
    pub max_speed: u32,
}

impl Port {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        let hw_addr = r.array()?;
        r.skip(2)?;
        let name = fixed_str(r.bytes(MAX_PORT_NAME_LEN)?);
        Ok(Port {
            port_no,
            hw_addr,
            name,
            config: r.u32()?,
            state: r.u32()?,
            curr: r.u32()?,
            advertised: r.u32()?,
            supported: r.u32()?,
            peer: r.u32()?,
            curr_speed: r.u32()?,
            max_speed: r.u32()?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.port_no);
        w.zeros(4);
        w.bytes(&self.hw_addr);
        w.zeros(2);
        w.fixed_str(&self.name, MAX_PORT_NAME_LEN);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            w.u32(v);
        }
    }
}

/// `ofp_port_reason`.
pub mod ofppr {
    pub const ADD: u8 = 0;
    pub const DELETE: u8 = 1;
    pub const MODIFY: u8 = 2;
}

/// PORT_STATUS: a port was added, removed or changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// [`ofppr`] value.
    pub reason: u8,
    pub desc: Port,
}

impl PortStatus {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let reason = r.u8()?;
        r.skip(7)?;
        Ok(PortStatus {
            reason,
            desc: Port::decode(r)?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u8(self.reason);
        w.zeros(7);
        self.desc.encode(w);
    }
}
