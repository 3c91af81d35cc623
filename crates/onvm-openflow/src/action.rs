//! Actions: OUTPUT and SET_FIELD, the two the onvm switch performs.
//!
//! An action is `type:16 len:16` and a body, `len` a multiple of 8. Every other action
//! type (valid in the spec or not) is refused with `OFPBAC_BAD_TYPE`, which is what the
//! spec asks of a switch that does not support an action; a SET_FIELD of a field we
//! cannot rewrite gets `OFPBAC_BAD_SET_TYPE`.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, OfpError, ofpbac, ofpet};
use crate::oxm::{
    ETH_TYPE_IPV4, ETH_TYPE_IPV6, FieldValue, IP_PROTO_TCP, IP_PROTO_UDP, Match, OFPXMC_OPENFLOW_BASIC, Oxm, ofpxmt,
};
use crate::port::is_output_port;
use crate::wire::{Reader, Writer};

/// `ofp_action_type` values.
pub mod ofpat {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `ofp_controller_max_len`: `max_len` of an OUTPUT to the controller.
pub mod ofpcml {
    /// Largest length that may be asked for (buffer the rest).
    pub const MAX: u16 = 0xffe5;
    /// Send the whole packet, do not buffer it.
    pub const NO_BUFFER: u16 = 0xffff;
}

/// A field rewrite (SET_FIELD), one of those onvm can apply in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetField {
    EthDst([u8; 6]),
    EthSrc([u8; 6]),
    Ipv4Src(Ipv4Addr),
    Ipv4Dst(Ipv4Addr),
    TcpSrc(u16),
    TcpDst(u16),
    UdpSrc(u16),
    UdpDst(u16),
    Ipv6Src(Ipv6Addr),
    Ipv6Dst(Ipv6Addr),
}

/// One action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send out `port` (a real port or one of [`crate::ofpp`]'s reserved ones but ANY);
    /// `max_len` bytes of the packet go to the controller when `port` is CONTROLLER.
    Output {
        port: u32,
        max_len: u16,
    },
    SetField(SetField),
}

fn action_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::BAD_ACTION, code, message)
}

/// Reads the field value of a SET_FIELD, checking its length against `T`.
fn set_value<T: FieldValue>(mut f: Oxm<'_>) -> Result<T, OfpError> {
    if f.payload.remaining() != T::LEN {
        return Err(action_error(
            ofpbac::BAD_SET_LEN,
            format!("set-field value has {} bytes, needs {}", f.payload.remaining(), T::LEN),
        ));
    }
    T::read(&mut f.payload)
}

impl SetField {
    /// Reads the OXM TLV at the start of a SET_FIELD body (the rest is padding). A TLV
    /// that does not fit the action is a bad set-field length, not a bad action length.
    fn decode(body: &[u8]) -> Result<Self, OfpError> {
        let set_len = ErrorKind::new(ofpet::BAD_ACTION, ofpbac::BAD_SET_LEN);
        let f = Oxm::read(&mut Reader::new(body, set_len, "set-field"), set_len)?;
        if f.class != OFPXMC_OPENFLOW_BASIC {
            return Err(action_error(
                ofpbac::BAD_SET_TYPE,
                format!("set-field of OXM class {:#06x} is not supported", f.class),
            ));
        }
        if f.has_mask {
            return Err(action_error(
                ofpbac::BAD_SET_ARGUMENT,
                "set-field with a mask is not allowed in OpenFlow 1.3".into(),
            ));
        }
        Ok(match f.field {
            ofpxmt::ETH_DST => SetField::EthDst(set_value(f)?),
            ofpxmt::ETH_SRC => SetField::EthSrc(set_value(f)?),
            ofpxmt::IPV4_SRC => SetField::Ipv4Src(set_value(f)?),
            ofpxmt::IPV4_DST => SetField::Ipv4Dst(set_value(f)?),
            ofpxmt::TCP_SRC => SetField::TcpSrc(set_value(f)?),
            ofpxmt::TCP_DST => SetField::TcpDst(set_value(f)?),
            ofpxmt::UDP_SRC => SetField::UdpSrc(set_value(f)?),
            ofpxmt::UDP_DST => SetField::UdpDst(set_value(f)?),
            ofpxmt::IPV6_SRC => SetField::Ipv6Src(set_value(f)?),
            ofpxmt::IPV6_DST => SetField::Ipv6Dst(set_value(f)?),
            other => {
                return Err(action_error(
                    ofpbac::BAD_SET_TYPE,
                    format!("set-field of OXM field {other} is not supported"),
                ));
            }
        })
    }

    /// Whether `m` guarantees the header this rewrites exists (the spec's set-field
    /// prerequisites; without push actions only the match can provide them).
    pub fn prereqs_met(&self, m: &Match) -> bool {
        match self {
            SetField::EthDst(_) | SetField::EthSrc(_) => true,
            SetField::Ipv4Src(_) | SetField::Ipv4Dst(_) => m.eth_type == Some(ETH_TYPE_IPV4),
            SetField::Ipv6Src(_) | SetField::Ipv6Dst(_) => m.eth_type == Some(ETH_TYPE_IPV6),
            SetField::TcpSrc(_) | SetField::TcpDst(_) => m.ip_proto == Some(IP_PROTO_TCP),
            SetField::UdpSrc(_) | SetField::UdpDst(_) => m.ip_proto == Some(IP_PROTO_UDP),
        }
    }

    fn encode(&self, w: &mut Writer) {
        match self {
            SetField::EthDst(v) => Oxm::put(w, ofpxmt::ETH_DST, v),
            SetField::EthSrc(v) => Oxm::put(w, ofpxmt::ETH_SRC, v),
            SetField::Ipv4Src(v) => Oxm::put(w, ofpxmt::IPV4_SRC, v),
            SetField::Ipv4Dst(v) => Oxm::put(w, ofpxmt::IPV4_DST, v),
            SetField::TcpSrc(v) => Oxm::put(w, ofpxmt::TCP_SRC, v),
            SetField::TcpDst(v) => Oxm::put(w, ofpxmt::TCP_DST, v),
            SetField::UdpSrc(v) => Oxm::put(w, ofpxmt::UDP_SRC, v),
            SetField::UdpDst(v) => Oxm::put(w, ofpxmt::UDP_DST, v),
            SetField::Ipv6Src(v) => Oxm::put(w, ofpxmt::IPV6_SRC, v),
            SetField::Ipv6Dst(v) => Oxm::put(w, ofpxmt::IPV6_DST, v),
        }
    }
}

impl Action {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if len < 8 || len % 8 != 0 || len - 4 > r.remaining() {
            return Err(r.short_error(format_args!(
                "action type {ty} length {len} is not a multiple of 8 within the {} bytes left",
                r.remaining() + 4
            )));
        }
        let mut body = r.sub(len - 4, ErrorKind::BAD_ACTION_LEN, "action")?;
        match ty {
            ofpat::OUTPUT => {
                if len != 16 {
                    return Err(action_error(ofpbac::BAD_LEN, format!("OUTPUT length {len}, not 16")));
                }
                let port = body.u32()?;
                let max_len = body.u16()?;
                if !is_output_port(port) {
                    return Err(action_error(
                        ofpbac::BAD_OUT_PORT,
                        format!("OUTPUT to port {port:#x}, which is not a destination"),
                    ));
                }
                Ok(Action::Output { port, max_len })
            }
            ofpat::SET_FIELD => Ok(Action::SetField(SetField::decode(body.rest())?)),
            ofpat::EXPERIMENTER => Err(action_error(
                ofpbac::BAD_EXPERIMENTER,
                "experimenter actions are not supported".into(),
            )),
            other => Err(action_error(
                ofpbac::BAD_TYPE,
                format!("action type {other} is not supported by this switch"),
            )),
        }
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        match self {
            Action::Output { port, max_len } => {
                w.u16(ofpat::OUTPUT);
                let at = w.len_placeholder();
                w.u32(*port);
                w.u16(*max_len);
                w.zeros(6);
                w.patch_len(at, start);
            }
            Action::SetField(f) => {
                w.u16(ofpat::SET_FIELD);
                let at = w.len_placeholder();
                f.encode(w);
                w.pad8(start);
                w.patch_len(at, start);
            }
        }
    }

    /// Reads an action list that fills `r` exactly.
    pub(crate) fn decode_list(mut r: Reader<'_>) -> Result<Vec<Action>, OfpError> {
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Action::decode(&mut r)?);
        }
        Ok(out)
    }

    pub(crate) fn encode_list(actions: &[Action], w: &mut Writer) {
        for a in actions {
            a.encode(w);
        }
    }
}
