//! The 8-byte header every OpenFlow message starts with, and stream framing.
//!
//! OpenFlow runs over TCP, so the header's `length` is the only framing there is:
//! [`frame_len`] tells a driver how many bytes the next message takes before it has
//! all of them, and refuses a length below 8 (which would otherwise stall the stream).

use crate::error::{ErrorKind, OfpError, ofpbrc, ofpet};
use crate::wire::Writer;

/// `ofp_type` values of OpenFlow 1.3.
pub mod ofpt {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// Length of [`Header`] on the wire.
pub const HEADER_LEN: usize = 8;

/// `ofp_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub ty: u8,
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads the header at the start of `buf` (which may hold more than one message).
    pub fn parse(buf: &[u8]) -> Result<Header, OfpError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BAD_LEN,
                format!("message of {} bytes is shorter than the 8-byte header", buf.len()),
            ));
        };
        let header = Header {
            version: h[0],
            ty: h[1],
            length: u16::from_be_bytes([h[2], h[3]]),
            xid: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        };
        if usize::from(header.length) < HEADER_LEN {
            return Err(OfpError::new(
                ErrorKind::BAD_REQUEST_LEN,
                format!("header length {} is shorter than the header", header.length),
            ));
        }
        Ok(header)
    }

    /// Writes a header with a length placeholder; [`Header::finish`] fills it in.
    pub(crate) fn start(w: &mut Writer, version: u8, ty: u8, xid: u32) {
        w.u8(version);
        w.u8(ty);
        w.u16(0);
        w.u32(xid);
    }

    /// Fills the length of the message that starts at byte 0 of `w`.
    pub(crate) fn finish(w: &mut Writer) {
        w.patch_len(2, 0);
    }
}

/// Framing for a byte stream: `Ok(Some(n))` when `buf` starts with a whole message of
/// `n` bytes, `Ok(None)` when more bytes are needed, and an error for a header whose
/// length is impossible (the connection cannot be resynchronised after that).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, OfpError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = usize::from(Header::parse(buf)?.length);
    Ok((buf.len() >= len).then_some(len))
}
