//! [`Message`]: every message this codec knows, and the top-level decode/encode.
//!
//! Decoding takes exactly one message (use [`crate::frame_len`] to cut a TCP stream)
//! and checks, in this order: the header length equals the bytes given
//! (`OFPBRC_BAD_LEN`), the version is 0x04 (`OFPBRC_BAD_VERSION`; HELLO is exempt, it
//! is how versions are negotiated), the type is one we handle (`OFPBRC_BAD_TYPE`), then
//! the body, which must be used up exactly.

use thiserror::Error;

use crate::OFP_VERSION;
use crate::async_config::AsyncConfig;
use crate::config::SwitchConfig;
use crate::error::{ErrorKind, ErrorMsg, OfpError, ofpbrc, ofpet};
use crate::features::FeaturesReply;
use crate::flow_mod::FlowMod;
use crate::flow_removed::FlowRemoved;
use crate::group::GroupMod;
use crate::header::{HEADER_LEN, Header, ofpt};
use crate::hello::Hello;
use crate::meter::MeterMod;
use crate::multipart::{MultipartReply, MultipartRequest};
use crate::packet::{PacketIn, PacketOut};
use crate::port::PortStatus;
use crate::role::RoleMsg;
use crate::table_mod::TableMod;
use crate::wire::{Reader, Writer};

/// An OpenFlow 1.3 message, either direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Error(ErrorMsg),
    EchoRequest(Vec<u8>),
    EchoReply(Vec<u8>),
    FeaturesRequest,
    FeaturesReply(FeaturesReply),
    GetConfigRequest,
    GetConfigReply(SwitchConfig),
    SetConfig(SwitchConfig),
    PacketIn(PacketIn),
    FlowRemoved(FlowRemoved),
    PortStatus(PortStatus),
    PacketOut(PacketOut),
    FlowMod(FlowMod),
    GroupMod(GroupMod),
    MultipartRequest(MultipartRequest),
    MultipartReply(MultipartReply),
    BarrierRequest,
    BarrierReply,
    RoleRequest(RoleMsg),
    RoleReply(RoleMsg),
    TableMod(TableMod),
    GetAsyncRequest,
    GetAsyncReply(AsyncConfig),
    SetAsync(AsyncConfig),
    MeterMod(MeterMod),
}

/// A message too long for OpenFlow's 16-bit length (split multipart replies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("message of {0} bytes exceeds the 65535-byte OpenFlow limit")]
pub struct EncodeError(pub usize);

/// The spec's name of a message type, for messages and logs.
pub fn type_name(ty: u8) -> &'static str {
    const NAMES: [&str; 30] = [
        "HELLO",
        "ERROR",
        "ECHO_REQUEST",
        "ECHO_REPLY",
        "EXPERIMENTER",
        "FEATURES_REQUEST",
        "FEATURES_REPLY",
        "GET_CONFIG_REQUEST",
        "GET_CONFIG_REPLY",
        "SET_CONFIG",
        "PACKET_IN",
        "FLOW_REMOVED",
        "PORT_STATUS",
        "PACKET_OUT",
        "FLOW_MOD",
        "GROUP_MOD",
        "PORT_MOD",
        "TABLE_MOD",
        "MULTIPART_REQUEST",
        "MULTIPART_REPLY",
        "BARRIER_REQUEST",
        "BARRIER_REPLY",
        "QUEUE_GET_CONFIG_REQUEST",
        "QUEUE_GET_CONFIG_REPLY",
        "ROLE_REQUEST",
        "ROLE_REPLY",
        "GET_ASYNC_REQUEST",
        "GET_ASYNC_REPLY",
        "SET_ASYNC",
        "METER_MOD",
    ];
    NAMES.get(usize::from(ty)).copied().unwrap_or("unknown message type")
}

impl Message {
    /// The `ofp_type` of this message.
    pub fn ty(&self) -> u8 {
        match self {
            Message::Hello(_) => ofpt::HELLO,
            Message::Error(_) => ofpt::ERROR,
            Message::EchoRequest(_) => ofpt::ECHO_REQUEST,
            Message::EchoReply(_) => ofpt::ECHO_REPLY,
            Message::FeaturesRequest => ofpt::FEATURES_REQUEST,
            Message::FeaturesReply(_) => ofpt::FEATURES_REPLY,
            Message::GetConfigRequest => ofpt::GET_CONFIG_REQUEST,
            Message::GetConfigReply(_) => ofpt::GET_CONFIG_REPLY,
            Message::SetConfig(_) => ofpt::SET_CONFIG,
            Message::PacketIn(_) => ofpt::PACKET_IN,
            Message::FlowRemoved(_) => ofpt::FLOW_REMOVED,
            Message::PortStatus(_) => ofpt::PORT_STATUS,
            Message::PacketOut(_) => ofpt::PACKET_OUT,
            Message::FlowMod(_) => ofpt::FLOW_MOD,
            Message::GroupMod(_) => ofpt::GROUP_MOD,
            Message::MultipartRequest(_) => ofpt::MULTIPART_REQUEST,
            Message::MultipartReply(_) => ofpt::MULTIPART_REPLY,
            Message::BarrierRequest => ofpt::BARRIER_REQUEST,
            Message::BarrierReply => ofpt::BARRIER_REPLY,
            Message::RoleRequest(_) => ofpt::ROLE_REQUEST,
            Message::RoleReply(_) => ofpt::ROLE_REPLY,
            Message::TableMod(_) => ofpt::TABLE_MOD,
            Message::GetAsyncRequest => ofpt::GET_ASYNC_REQUEST,
            Message::GetAsyncReply(_) => ofpt::GET_ASYNC_REPLY,
            Message::SetAsync(_) => ofpt::SET_ASYNC,
            Message::MeterMod(_) => ofpt::METER_MOD,
        }
    }

    /// Decodes one whole message; returns its xid and the message.
    pub fn decode(buf: &[u8]) -> Result<(u32, Message), OfpError> {
        let header = Header::parse(buf)?;
        if usize::from(header.length) != buf.len() {
            return Err(OfpError::new(
                ErrorKind::BAD_REQUEST_LEN,
                format!(
                    "header length {} but the message has {} bytes",
                    header.length,
                    buf.len()
                ),
            ));
        }
        if header.ty != ofpt::HELLO && header.version != OFP_VERSION {
            return Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BAD_VERSION,
                format!("version {:#04x}, this switch speaks {OFP_VERSION:#04x}", header.version),
            ));
        }
        let name = type_name(header.ty);
        let mut r = Reader::new(&buf[HEADER_LEN..], ErrorKind::BAD_REQUEST_LEN, name);
        let r = &mut r;
        let msg = match header.ty {
            ofpt::HELLO => Message::Hello(Hello::decode(header.version, r)?),
            ofpt::ERROR => Message::Error(ErrorMsg::decode(r)?),
            ofpt::ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
            ofpt::ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
            ofpt::FEATURES_REQUEST => Message::FeaturesRequest,
            ofpt::FEATURES_REPLY => Message::FeaturesReply(FeaturesReply::decode(r)?),
            ofpt::GET_CONFIG_REQUEST => Message::GetConfigRequest,
            ofpt::GET_CONFIG_REPLY => Message::GetConfigReply(SwitchConfig::decode(r)?),
            ofpt::SET_CONFIG => Message::SetConfig(SwitchConfig::decode(r)?),
            ofpt::PACKET_IN => Message::PacketIn(PacketIn::decode(r)?),
            ofpt::FLOW_REMOVED => Message::FlowRemoved(FlowRemoved::decode(r)?),
            ofpt::PORT_STATUS => Message::PortStatus(PortStatus::decode(r)?),
            ofpt::PACKET_OUT => Message::PacketOut(PacketOut::decode(r)?),
            ofpt::FLOW_MOD => Message::FlowMod(FlowMod::decode(r)?),
            ofpt::GROUP_MOD => Message::GroupMod(GroupMod::decode(r)?),
            ofpt::MULTIPART_REQUEST => Message::MultipartRequest(MultipartRequest::decode(r)?),
            ofpt::MULTIPART_REPLY => Message::MultipartReply(MultipartReply::decode(r)?),
            ofpt::BARRIER_REQUEST => Message::BarrierRequest,
            ofpt::BARRIER_REPLY => Message::BarrierReply,
            ofpt::ROLE_REQUEST => Message::RoleRequest(RoleMsg::decode(r)?),
            ofpt::ROLE_REPLY => Message::RoleReply(RoleMsg::decode(r)?),
            ofpt::TABLE_MOD => Message::TableMod(TableMod::decode(r)?),
            ofpt::GET_ASYNC_REQUEST => Message::GetAsyncRequest,
            ofpt::GET_ASYNC_REPLY => Message::GetAsyncReply(AsyncConfig::decode(r)?),
            ofpt::SET_ASYNC => Message::SetAsync(AsyncConfig::decode(r)?),
            ofpt::METER_MOD => Message::MeterMod(MeterMod::decode(r)?),
            ofpt::EXPERIMENTER => {
                return Err(OfpError::of(
                    ofpet::BAD_REQUEST,
                    ofpbrc::BAD_EXPERIMENTER,
                    "experimenter messages are not supported",
                ));
            }
            other => {
                return Err(OfpError::of(
                    ofpet::BAD_REQUEST,
                    ofpbrc::BAD_TYPE,
                    format!("message type {other} ({}) is not supported", type_name(other)),
                ));
            }
        };
        if !r.is_empty() {
            return Err(r.short_error(format_args!("{} bytes left over after the body", r.remaining())));
        }
        Ok((header.xid, msg))
    }

    /// Encodes the message with transaction id `xid`.
    pub fn encode(&self, xid: u32) -> Result<Vec<u8>, EncodeError> {
        let mut w = Writer::default();
        let version = match self {
            Message::Hello(h) => h.version,
            _ => OFP_VERSION,
        };
        Header::start(&mut w, version, self.ty(), xid);
        match self {
            Message::Hello(h) => h.encode(&mut w),
            Message::Error(e) => e.encode(&mut w),
            Message::EchoRequest(data) | Message::EchoReply(data) => w.bytes(data),
            Message::FeaturesRequest
            | Message::GetConfigRequest
            | Message::BarrierRequest
            | Message::BarrierReply
            | Message::GetAsyncRequest => {}
            Message::FeaturesReply(f) => f.encode(&mut w),
            Message::GetConfigReply(c) | Message::SetConfig(c) => c.encode(&mut w),
            Message::PacketIn(p) => p.encode(&mut w),
            Message::FlowRemoved(f) => f.encode(&mut w),
            Message::PortStatus(p) => p.encode(&mut w),
            Message::PacketOut(p) => p.encode(&mut w),
            Message::FlowMod(f) => f.encode(&mut w),
            Message::GroupMod(g) => g.encode(&mut w),
            Message::MeterMod(m) => m.encode(&mut w),
            Message::MultipartRequest(m) => m.encode(&mut w),
            Message::MultipartReply(m) => m.encode(&mut w),
            Message::RoleRequest(r) | Message::RoleReply(r) => r.encode(&mut w),
            Message::TableMod(t) => t.encode(&mut w),
            Message::GetAsyncReply(a) | Message::SetAsync(a) => a.encode(&mut w),
        }
        if w.pos() > usize::from(u16::MAX) {
            return Err(EncodeError(w.pos()));
        }
        Header::finish(&mut w);
        Ok(w.buf)
    }
}
