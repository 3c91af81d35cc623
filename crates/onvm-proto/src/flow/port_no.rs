//! Port numbers of the switch: physical ports, one logical port per service, and
//! OpenFlow's reserved ports, in one space so a rule's `in_port` and `Output` can name
//! any of them.

use std::fmt;

use crate::limits::{MAX_PORTS, MAX_SERVICES};

/// A port of the switch, numbered in one 32-bit space like OpenFlow's:
///
/// | Range | Meaning |
/// |---|---|
/// | `0 ..= 0x0fff` | physical/virtual port `p` (the manager's port index) |
/// | `0x1000 + s` | the logical port of service `s` (`s < MAX_SERVICES`) |
/// | `0xffff_fff8` | the port the packet came in on (OpenFlow's `OFPP_IN_PORT`) |
/// | `0xffff_fffc` | every physical port but the one the packet came in on (`OFPP_ALL`) |
/// | `0xffff_fffd` | the controller (OpenFlow's `OFPP_CONTROLLER`) |
///
/// Services sit above every possible port index so the two can never collide, and the
/// reserved values keep OpenFlow's numbers so the OpenFlow agent passes them through.
/// (OpenFlow controllers number ports from 1; the agent maps `p` ↔ `p + 1` at its edge.)
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortNo(pub u32);

/// What a [`PortNo`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// Physical or virtual port (index into the manager's ports).
    Physical(u16),
    /// The logical port of a service.
    Service(u16),
    /// The port the packet came in on.
    InPort,
    /// Every physical port but the one it came in on.
    All,
    /// The controller.
    Controller,
    /// A number outside the ranges above.
    Other(u32),
}

impl PortNo {
    /// First logical service port.
    pub const SERVICE_BASE: u32 = 0x1000;
    /// The controller (`OFPP_CONTROLLER`).
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// Where the packet came from (`OFPP_IN_PORT`), as an output.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Every physical port but the in-port (`OFPP_ALL`; onvm's FLOOD is the same).
    pub const ALL: PortNo = PortNo(0xffff_fffc);

    /// Physical port `p`.
    ///
    /// # Panics
    /// If `p >= MAX_PORTS` (it would collide with the service ports).
    pub const fn physical(p: u16) -> PortNo {
        assert!(p < MAX_PORTS, "physical port index out of range");
        PortNo(p as u32)
    }

    /// Logical port of service `s`.
    ///
    /// # Panics
    /// If `s >= MAX_SERVICES`.
    pub const fn service(s: u16) -> PortNo {
        assert!(s < MAX_SERVICES, "service id out of range");
        PortNo(Self::SERVICE_BASE + s as u32)
    }

    /// What this number names.
    pub fn kind(self) -> PortKind {
        match self.0 {
            p if p < u32::from(MAX_PORTS) => PortKind::Physical(p as u16),
            p if (Self::SERVICE_BASE..Self::SERVICE_BASE + u32::from(MAX_SERVICES)).contains(&p) => {
                PortKind::Service((p - Self::SERVICE_BASE) as u16)
            }
            p if p == Self::CONTROLLER.0 => PortKind::Controller,
            p if p == Self::IN_PORT.0 => PortKind::InPort,
            p if p == Self::ALL.0 => PortKind::All,
            p => PortKind::Other(p),
        }
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind() {
            PortKind::Physical(p) => write!(f, "port {p}"),
            PortKind::Service(s) => write!(f, "service {s}"),
            PortKind::Controller => f.write_str("controller"),
            PortKind::InPort => f.write_str("in-port"),
            PortKind::All => f.write_str("all ports"),
            PortKind::Other(p) => write!(f, "port {p:#x}"),
        }
    }
}

impl fmt::Debug for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortNo({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_numbering() {
        assert_eq!(PortNo::physical(3).kind(), PortKind::Physical(3));
        assert_eq!(PortNo::service(5), PortNo(0x1005));
        assert_eq!(PortNo::service(5).kind(), PortKind::Service(5));
        assert_eq!(PortNo::CONTROLLER.kind(), PortKind::Controller);
        assert_eq!(PortNo(0x2000).kind(), PortKind::Other(0x2000));
        assert_eq!(PortNo::service(2).to_string(), "service 2");
        assert_eq!(PortNo::physical(1).to_string(), "port 1");
    }
}
