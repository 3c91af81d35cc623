//! OpenFlow errors: the `(type, code)` pairs of OFPT_ERROR, the decoder's error, and the
//! ERROR reply a switch sends back for a message it could not accept.
//!
//! A decoder that fails says *which* OFPT_ERROR the switch owes the controller, not just
//! "malformed": a controller (and `ovs-ofctl`) shows the pair to its user, and tests of
//! stock controllers expect the spec's pair. So every decode error is an [`OfpError`]
//! carrying an [`ErrorKind`] with the numbers of the OpenFlow 1.3.5 spec (section 7.4.4),
//! plus a message for logs. [`error_reply`] turns one into the wire reply.

use thiserror::Error;

use crate::header::{Header, ofpt};
use crate::wire::{Reader, Writer};

/// `ofp_error_type` values.
pub mod ofpet {
    pub const HELLO_FAILED: u16 = 0;
    pub const BAD_REQUEST: u16 = 1;
    pub const BAD_ACTION: u16 = 2;
    pub const BAD_INSTRUCTION: u16 = 3;
    pub const BAD_MATCH: u16 = 4;
    pub const FLOW_MOD_FAILED: u16 = 5;
    pub const GROUP_MOD_FAILED: u16 = 6;
    pub const PORT_MOD_FAILED: u16 = 7;
    pub const TABLE_MOD_FAILED: u16 = 8;
    pub const QUEUE_OP_FAILED: u16 = 9;
    pub const SWITCH_CONFIG_FAILED: u16 = 10;
    pub const ROLE_REQUEST_FAILED: u16 = 11;
    pub const METER_MOD_FAILED: u16 = 12;
    pub const TABLE_FEATURES_FAILED: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `ofp_hello_failed_code` values.
pub mod ofphfc {
    pub const INCOMPATIBLE: u16 = 0;
    pub const EPERM: u16 = 1;
}

/// `ofp_bad_request_code` values.
pub mod ofpbrc {
    pub const BAD_VERSION: u16 = 0;
    pub const BAD_TYPE: u16 = 1;
    pub const BAD_MULTIPART: u16 = 2;
    pub const BAD_EXPERIMENTER: u16 = 3;
    pub const BAD_EXP_TYPE: u16 = 4;
    pub const EPERM: u16 = 5;
    pub const BAD_LEN: u16 = 6;
    pub const BUFFER_EMPTY: u16 = 7;
    pub const BUFFER_UNKNOWN: u16 = 8;
    pub const BAD_TABLE_ID: u16 = 9;
    pub const IS_SLAVE: u16 = 10;
    pub const BAD_PORT: u16 = 11;
    pub const BAD_PACKET: u16 = 12;
    pub const MULTIPART_BUFFER_OVERFLOW: u16 = 13;
}

/// `ofp_bad_action_code` values.
pub mod ofpbac {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_EXPERIMENTER: u16 = 2;
    pub const BAD_EXP_TYPE: u16 = 3;
    pub const BAD_OUT_PORT: u16 = 4;
    pub const BAD_ARGUMENT: u16 = 5;
    pub const EPERM: u16 = 6;
    pub const TOO_MANY: u16 = 7;
    pub const BAD_QUEUE: u16 = 8;
    pub const BAD_OUT_GROUP: u16 = 9;
    pub const MATCH_INCONSISTENT: u16 = 10;
    pub const UNSUPPORTED_ORDER: u16 = 11;
    pub const BAD_TAG: u16 = 12;
    pub const BAD_SET_TYPE: u16 = 13;
    pub const BAD_SET_LEN: u16 = 14;
    pub const BAD_SET_ARGUMENT: u16 = 15;
}

/// `ofp_bad_instruction_code` values.
pub mod ofpbic {
    pub const UNKNOWN_INST: u16 = 0;
    pub const UNSUP_INST: u16 = 1;
    pub const BAD_TABLE_ID: u16 = 2;
    pub const UNSUP_METADATA: u16 = 3;
    pub const UNSUP_METADATA_MASK: u16 = 4;
    pub const BAD_EXPERIMENTER: u16 = 5;
    pub const BAD_EXP_TYPE: u16 = 6;
    pub const BAD_LEN: u16 = 7;
    pub const EPERM: u16 = 8;
}

/// `ofp_bad_match_code` values.
pub mod ofpbmc {
    pub const BAD_TYPE: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const BAD_TAG: u16 = 2;
    pub const BAD_DL_ADDR_MASK: u16 = 3;
    pub const BAD_NW_ADDR_MASK: u16 = 4;
    pub const BAD_WILDCARDS: u16 = 5;
    pub const BAD_FIELD: u16 = 6;
    pub const BAD_VALUE: u16 = 7;
    pub const BAD_MASK: u16 = 8;
    pub const BAD_PREREQ: u16 = 9;
    pub const DUP_FIELD: u16 = 10;
    pub const EPERM: u16 = 11;
}

/// `ofp_flow_mod_failed_code` values.
pub mod ofpfmfc {
    pub const UNKNOWN: u16 = 0;
    pub const TABLE_FULL: u16 = 1;
    pub const BAD_TABLE_ID: u16 = 2;
    pub const OVERLAP: u16 = 3;
    pub const EPERM: u16 = 4;
    pub const BAD_TIMEOUT: u16 = 5;
    pub const BAD_COMMAND: u16 = 6;
    pub const BAD_FLAGS: u16 = 7;
}

/// `ofp_group_mod_failed_code` values (type [`ofpet::GROUP_MOD_FAILED`]).
pub mod ofpgmfc {
    pub const GROUP_EXISTS: u16 = 0;
    pub const INVALID_GROUP: u16 = 1;
    pub const WEIGHT_UNSUPPORTED: u16 = 2;
    pub const OUT_OF_GROUPS: u16 = 3;
    pub const OUT_OF_BUCKETS: u16 = 4;
    pub const CHAINING_UNSUPPORTED: u16 = 5;
    pub const WATCH_UNSUPPORTED: u16 = 6;
    pub const LOOP: u16 = 7;
    pub const UNKNOWN_GROUP: u16 = 8;
    pub const CHAINED_GROUP: u16 = 9;
    pub const BAD_TYPE: u16 = 10;
    pub const BAD_COMMAND: u16 = 11;
    pub const BAD_BUCKET: u16 = 12;
    pub const BAD_WATCH: u16 = 13;
    pub const EPERM: u16 = 14;
}

/// `ofp_meter_mod_failed_code` values (type [`ofpet::METER_MOD_FAILED`]).
pub mod ofpmmfc {
    pub const UNKNOWN: u16 = 0;
    pub const METER_EXISTS: u16 = 1;
    pub const INVALID_METER: u16 = 2;
    pub const UNKNOWN_METER: u16 = 3;
    pub const BAD_COMMAND: u16 = 4;
    pub const BAD_FLAGS: u16 = 5;
    pub const BAD_RATE: u16 = 6;
    pub const BAD_BURST: u16 = 7;
    pub const BAD_BAND: u16 = 8;
    pub const BAD_BAND_VALUE: u16 = 9;
    pub const OUT_OF_METERS: u16 = 10;
    pub const OUT_OF_BANDS: u16 = 11;
}

/// `ofp_table_mod_failed_code` values.
pub mod ofptmfc {
    pub const BAD_TABLE: u16 = 0;
    pub const BAD_CONFIG: u16 = 1;
    pub const EPERM: u16 = 2;
}

/// `ofp_switch_config_failed_code` values.
pub mod ofpscfc {
    pub const BAD_FLAGS: u16 = 0;
    pub const BAD_LEN: u16 = 1;
    pub const EPERM: u16 = 2;
}

/// `ofp_role_request_failed_code` values.
pub mod ofprrfc {
    pub const STALE: u16 = 0;
    pub const UNSUP: u16 = 1;
    pub const BAD_ROLE: u16 = 2;
}

/// `ofp_table_features_failed_code` values.
pub mod ofptffc {
    pub const BAD_TABLE: u16 = 0;
    pub const BAD_METADATA: u16 = 1;
    pub const BAD_TYPE: u16 = 2;
    pub const BAD_LEN: u16 = 3;
    pub const BAD_ARGUMENT: u16 = 4;
    pub const EPERM: u16 = 5;
}

/// One OFPT_ERROR `(type, code)` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorKind {
    /// An [`ofpet`] value.
    pub ty: u16,
    /// A code of that type (e.g. an [`ofpbrc`] value).
    pub code: u16,
}

impl ErrorKind {
    pub const fn new(ty: u16, code: u16) -> Self {
        ErrorKind { ty, code }
    }

    pub(crate) const BAD_REQUEST_LEN: ErrorKind = ErrorKind::new(ofpet::BAD_REQUEST, ofpbrc::BAD_LEN);
    pub(crate) const BAD_MATCH_LEN: ErrorKind = ErrorKind::new(ofpet::BAD_MATCH, ofpbmc::BAD_LEN);
    pub(crate) const BAD_ACTION_LEN: ErrorKind = ErrorKind::new(ofpet::BAD_ACTION, ofpbac::BAD_LEN);
    pub(crate) const BAD_INSTRUCTION_LEN: ErrorKind = ErrorKind::new(ofpet::BAD_INSTRUCTION, ofpbic::BAD_LEN);
}

/// Why a message could not be decoded (or accepted): the OFPT_ERROR the switch answers
/// with, and a human explanation.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message} (OpenFlow error type {}, code {})", kind.ty, kind.code)]
pub struct OfpError {
    pub kind: ErrorKind,
    pub message: String,
}

impl OfpError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        OfpError {
            kind,
            message: message.into(),
        }
    }

    /// Shorthand for `OfpError::new(ErrorKind::new(ty, code), message)`.
    pub fn of(ty: u16, code: u16, message: impl Into<String>) -> Self {
        OfpError::new(ErrorKind::new(ty, code), message)
    }
}

/// The body of an OFPT_ERROR message.
///
/// Experimenter errors (`ty = 0xffff`) carry `exp_type` where the others carry `code`,
/// and the experimenter id as the first 4 bytes of `data`; they are kept in that raw form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    pub ty: u16,
    pub code: u16,
    /// For most errors, the start of the offending message; for HELLO_FAILED, ASCII text.
    pub data: Vec<u8>,
}

/// How much of an offending message an ERROR reply echoes (the spec's "at least 64 bytes").
pub const ERROR_DATA_LEN: usize = 64;

impl ErrorMsg {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        Ok(ErrorMsg {
            ty: r.u16()?,
            code: r.u16()?,
            data: r.rest().to_vec(),
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.ty);
        w.u16(self.code);
        w.bytes(&self.data);
    }
}

/// Builds the OFPT_ERROR message a switch sends for `failed`, a message it received and
/// could not accept because of `err`: same xid, and as data the first
/// [`ERROR_DATA_LEN`] bytes of the message — or, for HELLO_FAILED, the explanation as
/// text, as the spec asks. Works on any bytes, even ones too short for a header (xid 0).
pub fn error_reply(failed: &[u8], err: &OfpError) -> Vec<u8> {
    let xid = failed
        .get(4..8)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    let data = if err.kind.ty == ofpet::HELLO_FAILED {
        let text = err.message.as_bytes();
        text[..text.len().min(256)].to_vec()
    } else {
        failed[..failed.len().min(ERROR_DATA_LEN)].to_vec()
    };
    let body = ErrorMsg {
        ty: err.kind.ty,
        code: err.kind.code,
        data,
    };
    let mut w = Writer::default();
    Header::start(&mut w, crate::OFP_VERSION, ofpt::ERROR, xid);
    body.encode(&mut w);
    Header::finish(&mut w);
    w.buf
}
