//! MULTIPART_REQUEST / MULTIPART_REPLY: statistics and descriptions, possibly spread
//! over several messages (the REQ_MORE / REPLY_MORE flag says "more follows").
//!
//! Supported kinds: DESC, FLOW, AGGREGATE, TABLE, PORT_STATS, PORT_DESC, TABLE_FEATURES
//! (query only, see `table_features.rs`), GROUP, GROUP_DESC, GROUP_FEATURES (entries in
//! `group.rs`), METER, METER_CONFIG and METER_FEATURES (entries in `meter.rs`). Any
//! other kind (QUEUE, EXPERIMENTER) is `OFPBRC_BAD_MULTIPART`.
//!
//! Encoding a reply never splits it: one over 64 KiB fails ([`crate::EncodeError`]).
//! The agent either cuts its entries into parts itself (a count per part that fits,
//! for fixed-size entries) or has [`MultipartReply::split`] pack them by their encoded
//! size, which entries whose size varies (flows, group descriptions with many buckets,
//! meter configs) need; either way REPLY_MORE is on all parts but the last.

use crate::error::{ErrorKind, OfpError, ofpbrc, ofpet, ofptffc};
use crate::group::{GroupDesc, GroupFeatures, GroupStats};
use crate::instruction::Instruction;
use crate::meter::{MeterConfig, MeterFeatures, MeterStats};
use crate::oxm::Match;
use crate::port::{PORT_LEN, Port};
use crate::table_features::TableFeatures;
use crate::wire::{Reader, Writer, fixed_str};

/// `ofp_multipart_type` values.
pub mod ofpmp {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `OFPMPF_REQ_MORE` / `OFPMPF_REPLY_MORE`: more parts follow.
pub const OFPMPF_MORE: u16 = 1;

/// Sizes of the text fields of `ofp_desc`.
pub const DESC_STR_LEN: usize = 256;
pub const SERIAL_NUM_LEN: usize = 32;

/// A multipart request: its flags and what it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartRequest {
    /// [`OFPMPF_MORE`] or 0.
    pub flags: u16,
    pub body: MultipartRequestBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartRequestBody {
    Desc,
    Flow(FlowStatsRequest),
    Aggregate(FlowStatsRequest),
    Table,
    /// Counters of one port, or of all with [`crate::ofpp::ANY`].
    PortStats {
        port_no: u32,
    },
    PortDesc,
    /// A query of every table's features (setting them is refused).
    TableFeatures,
    /// Counters of one group, or of all with [`crate::OFPG_ALL`].
    Group {
        group_id: u32,
    },
    GroupDesc,
    GroupFeatures,
    /// Counters of one meter, or of all with [`crate::OFPM_ALL`].
    Meter {
        meter_id: u32,
    },
    /// Configuration of one meter, or of all with [`crate::OFPM_ALL`].
    MeterConfig {
        meter_id: u32,
    },
    MeterFeatures,
}

/// A multipart reply: its flags and what it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartReply {
    /// [`OFPMPF_MORE`] or 0.
    pub flags: u16,
    pub body: MultipartReplyBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MultipartReplyBody {
    Desc(Desc),
    Flow(Vec<FlowStats>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    PortDesc(Vec<Port>),
    TableFeatures(Vec<TableFeatures>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig>),
    MeterFeatures(MeterFeatures),
}

/// `ofp_flow_stats_request` (also the aggregate request): which flows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// A table or [`crate::OFPTT_ALL`].
    pub table_id: u8,
    pub out_port: u32,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    pub match_: Match,
}

/// `ofp_desc`: who made the switch. Each text is cut to fit its NUL-terminated field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desc {
    pub mfr_desc: String,
    pub hw_desc: String,
    pub sw_desc: String,
    pub serial_num: String,
    pub dp_desc: String,
}

/// `ofp_flow_stats`: one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

/// `ofp_aggregate_stats_reply`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

/// `ofp_table_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

/// `ofp_port_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    pub port_no: u32,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

/// Wire sizes of the fixed-size entries.
const TABLE_STATS_LEN: usize = 24;
const GROUP_FEATURES_LEN: usize = 40;
const METER_FEATURES_LEN: usize = 16;
const PORT_STATS_LEN: usize = 112;
/// `ofp_flow_stats` up to its match.
const FLOW_STATS_FIXED_LEN: usize = 48;

fn unsupported(ty: u16) -> OfpError {
    if ty == ofpmp::EXPERIMENTER {
        OfpError::of(
            ofpet::BAD_REQUEST,
            ofpbrc::BAD_EXPERIMENTER,
            "experimenter multipart is not supported",
        )
    } else {
        OfpError::of(
            ofpet::BAD_REQUEST,
            ofpbrc::BAD_MULTIPART,
            format!("multipart type {ty} is not supported"),
        )
    }
}

/// A body that must be empty (DESC, TABLE, PORT_DESC, ... requests).
fn empty(r: &mut Reader<'_>) -> Result<(), OfpError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(r.short_error(format_args!(
            "{} unexpected bytes in an empty multipart body",
            r.remaining()
        )))
    }
}

/// The body of a request for one port, group or meter: `id:32 pad:32`.
fn id_pad(r: &mut Reader<'_>) -> Result<u32, OfpError> {
    let id = r.u32()?;
    r.skip(4)?;
    empty(r)?;
    Ok(id)
}

/// Reads variable-length entries until the body is used up.
fn entries<T>(r: &mut Reader<'_>, decode: impl Fn(&mut Reader<'_>) -> Result<T, OfpError>) -> Result<Vec<T>, OfpError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(decode(r)?);
    }
    Ok(out)
}

/// Reads entries of one fixed size until the body is used up.
fn fixed_entries<T>(
    r: &mut Reader<'_>,
    len: usize,
    decode: impl Fn(&mut Reader<'_>) -> Result<T, OfpError>,
) -> Result<Vec<T>, OfpError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let mut entry = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "multipart entry")?;
        out.push(decode(&mut entry)?);
    }
    Ok(out)
}

impl MultipartRequest {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match ty {
            ofpmp::DESC => empty(r).map(|()| MultipartRequestBody::Desc)?,
            ofpmp::FLOW => MultipartRequestBody::Flow(FlowStatsRequest::decode(r)?),
            ofpmp::AGGREGATE => MultipartRequestBody::Aggregate(FlowStatsRequest::decode(r)?),
            ofpmp::TABLE => empty(r).map(|()| MultipartRequestBody::Table)?,
            ofpmp::PORT_STATS => MultipartRequestBody::PortStats { port_no: id_pad(r)? },
            ofpmp::PORT_DESC => empty(r).map(|()| MultipartRequestBody::PortDesc)?,
            ofpmp::GROUP => MultipartRequestBody::Group { group_id: id_pad(r)? },
            ofpmp::GROUP_DESC => empty(r).map(|()| MultipartRequestBody::GroupDesc)?,
            ofpmp::GROUP_FEATURES => empty(r).map(|()| MultipartRequestBody::GroupFeatures)?,
            ofpmp::METER => MultipartRequestBody::Meter { meter_id: id_pad(r)? },
            ofpmp::METER_CONFIG => MultipartRequestBody::MeterConfig { meter_id: id_pad(r)? },
            ofpmp::METER_FEATURES => empty(r).map(|()| MultipartRequestBody::MeterFeatures)?,
            ofpmp::TABLE_FEATURES if r.is_empty() => MultipartRequestBody::TableFeatures,
            ofpmp::TABLE_FEATURES => {
                return Err(OfpError::of(
                    ofpet::TABLE_FEATURES_FAILED,
                    ofptffc::EPERM,
                    "this switch does not let a controller change its table features",
                ));
            }
            other => return Err(unsupported(other)),
        };
        Ok(MultipartRequest { flags, body })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let ty = match &self.body {
            MultipartRequestBody::Desc => ofpmp::DESC,
            MultipartRequestBody::Flow(_) => ofpmp::FLOW,
            MultipartRequestBody::Aggregate(_) => ofpmp::AGGREGATE,
            MultipartRequestBody::Table => ofpmp::TABLE,
            MultipartRequestBody::PortStats { .. } => ofpmp::PORT_STATS,
            MultipartRequestBody::PortDesc => ofpmp::PORT_DESC,
            MultipartRequestBody::TableFeatures => ofpmp::TABLE_FEATURES,
            MultipartRequestBody::Group { .. } => ofpmp::GROUP,
            MultipartRequestBody::GroupDesc => ofpmp::GROUP_DESC,
            MultipartRequestBody::GroupFeatures => ofpmp::GROUP_FEATURES,
            MultipartRequestBody::Meter { .. } => ofpmp::METER,
            MultipartRequestBody::MeterConfig { .. } => ofpmp::METER_CONFIG,
            MultipartRequestBody::MeterFeatures => ofpmp::METER_FEATURES,
        };
        w.u16(ty);
        w.u16(self.flags);
        w.zeros(4);
        match &self.body {
            MultipartRequestBody::Flow(f) | MultipartRequestBody::Aggregate(f) => f.encode(w),
            MultipartRequestBody::PortStats { port_no: id }
            | MultipartRequestBody::Group { group_id: id }
            | MultipartRequestBody::Meter { meter_id: id }
            | MultipartRequestBody::MeterConfig { meter_id: id } => {
                w.u32(*id);
                w.zeros(4);
            }
            MultipartRequestBody::Desc
            | MultipartRequestBody::Table
            | MultipartRequestBody::PortDesc
            | MultipartRequestBody::TableFeatures
            | MultipartRequestBody::GroupDesc
            | MultipartRequestBody::GroupFeatures
            | MultipartRequestBody::MeterFeatures => {}
        }
    }
}

impl FlowStatsRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let table_id = r.u8()?;
        r.skip(3)?;
        let out_port = r.u32()?;
        let out_group = r.u32()?;
        r.skip(4)?;
        let cookie = r.u64()?;
        let cookie_mask = r.u64()?;
        let match_ = Match::decode(r)?;
        empty(r)?;
        Ok(FlowStatsRequest {
            table_id,
            out_port,
            out_group,
            cookie,
            cookie_mask,
            match_,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(self.table_id);
        w.zeros(3);
        w.u32(self.out_port);
        w.u32(self.out_group);
        w.zeros(4);
        w.u64(self.cookie);
        w.u64(self.cookie_mask);
        self.match_.encode(w);
    }
}

impl MultipartReply {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let flags = r.u16()?;
        r.skip(4)?;
        let body = match ty {
            ofpmp::DESC => {
                let mut text = |n| r.bytes(n).map(fixed_str);
                let desc = Desc {
                    mfr_desc: text(DESC_STR_LEN)?,
                    hw_desc: text(DESC_STR_LEN)?,
                    sw_desc: text(DESC_STR_LEN)?,
                    serial_num: text(SERIAL_NUM_LEN)?,
                    dp_desc: text(DESC_STR_LEN)?,
                };
                empty(r)?;
                MultipartReplyBody::Desc(desc)
            }
            ofpmp::FLOW => MultipartReplyBody::Flow(entries(r, FlowStats::decode)?),
            ofpmp::AGGREGATE => {
                let agg = AggregateStats {
                    packet_count: r.u64()?,
                    byte_count: r.u64()?,
                    flow_count: r.u32()?,
                };
                r.skip(4)?;
                empty(r)?;
                MultipartReplyBody::Aggregate(agg)
            }
            ofpmp::TABLE => MultipartReplyBody::Table(fixed_entries(r, TABLE_STATS_LEN, |e| {
                let table_id = e.u8()?;
                e.skip(3)?;
                Ok(TableStats {
                    table_id,
                    active_count: e.u32()?,
                    lookup_count: e.u64()?,
                    matched_count: e.u64()?,
                })
            })?),
            ofpmp::PORT_STATS => MultipartReplyBody::PortStats(fixed_entries(r, PORT_STATS_LEN, PortStats::decode)?),
            ofpmp::PORT_DESC => MultipartReplyBody::PortDesc(fixed_entries(r, PORT_LEN, Port::decode)?),
            ofpmp::TABLE_FEATURES => MultipartReplyBody::TableFeatures(entries(r, TableFeatures::decode)?),
            ofpmp::GROUP => MultipartReplyBody::Group(entries(r, GroupStats::decode)?),
            ofpmp::GROUP_DESC => MultipartReplyBody::GroupDesc(entries(r, GroupDesc::decode)?),
            ofpmp::GROUP_FEATURES => {
                let mut e = r.sub(GROUP_FEATURES_LEN, ErrorKind::BAD_REQUEST_LEN, "group features")?;
                empty(r)?;
                MultipartReplyBody::GroupFeatures(GroupFeatures::decode(&mut e)?)
            }
            ofpmp::METER => MultipartReplyBody::Meter(entries(r, MeterStats::decode)?),
            ofpmp::METER_CONFIG => MultipartReplyBody::MeterConfig(entries(r, MeterConfig::decode)?),
            ofpmp::METER_FEATURES => {
                let mut e = r.sub(METER_FEATURES_LEN, ErrorKind::BAD_REQUEST_LEN, "meter features")?;
                empty(r)?;
                MultipartReplyBody::MeterFeatures(MeterFeatures::decode(&mut e)?)
            }
            other => return Err(unsupported(other)),
        };
        Ok(MultipartReply { flags, body })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let ty = match &self.body {
            MultipartReplyBody::Desc(_) => ofpmp::DESC,
            MultipartReplyBody::Flow(_) => ofpmp::FLOW,
            MultipartReplyBody::Aggregate(_) => ofpmp::AGGREGATE,
            MultipartReplyBody::Table(_) => ofpmp::TABLE,
            MultipartReplyBody::PortStats(_) => ofpmp::PORT_STATS,
            MultipartReplyBody::PortDesc(_) => ofpmp::PORT_DESC,
            MultipartReplyBody::TableFeatures(_) => ofpmp::TABLE_FEATURES,
            MultipartReplyBody::Group(_) => ofpmp::GROUP,
            MultipartReplyBody::GroupDesc(_) => ofpmp::GROUP_DESC,
            MultipartReplyBody::GroupFeatures(_) => ofpmp::GROUP_FEATURES,
            MultipartReplyBody::Meter(_) => ofpmp::METER,
            MultipartReplyBody::MeterConfig(_) => ofpmp::METER_CONFIG,
            MultipartReplyBody::MeterFeatures(_) => ofpmp::METER_FEATURES,
        };
        w.u16(ty);
        w.u16(self.flags);
        w.zeros(4);
        match &self.body {
            MultipartReplyBody::Desc(d) => {
                w.fixed_str(&d.mfr_desc, DESC_STR_LEN);
                w.fixed_str(&d.hw_desc, DESC_STR_LEN);
                w.fixed_str(&d.sw_desc, DESC_STR_LEN);
                w.fixed_str(&d.serial_num, SERIAL_NUM_LEN);
                w.fixed_str(&d.dp_desc, DESC_STR_LEN);
            }
            MultipartReplyBody::Flow(flows) => flows.iter().for_each(|f| f.encode(w)),
            MultipartReplyBody::Aggregate(a) => {
                w.u64(a.packet_count);
                w.u64(a.byte_count);
                w.u32(a.flow_count);
                w.zeros(4);
            }
            MultipartReplyBody::Table(tables) => {
                for t in tables {
                    w.u8(t.table_id);
                    w.zeros(3);
                    w.u32(t.active_count);
                    w.u64(t.lookup_count);
                    w.u64(t.matched_count);
                }
            }
            MultipartReplyBody::PortStats(ports) => ports.iter().for_each(|p| p.encode(w)),
            MultipartReplyBody::PortDesc(ports) => ports.iter().for_each(|p| p.encode(w)),
            MultipartReplyBody::TableFeatures(tables) => tables.iter().for_each(|t| t.encode(w)),
            MultipartReplyBody::Group(groups) => groups.iter().for_each(|g| g.encode(w)),
            MultipartReplyBody::GroupDesc(groups) => groups.iter().for_each(|g| g.encode(w)),
            MultipartReplyBody::GroupFeatures(f) => f.encode(w),
            MultipartReplyBody::Meter(meters) => meters.iter().for_each(|m| m.encode(w)),
            MultipartReplyBody::MeterConfig(meters) => meters.iter().for_each(|m| m.encode(w)),
            MultipartReplyBody::MeterFeatures(f) => f.encode(w),
        }
    }
}

/// Most bytes of entries one MULTIPART_REPLY carries: what its 16-bit length leaves
/// after the message and multipart headers.
pub const MAX_REPLY_BODY: usize = u16::MAX as usize - MULTIPART_HEAD_LEN;

impl MultipartReply {
    /// `body` as the replies that carry it (spec 7.3.5): entries packed in order, as
    /// many per message as fit in [`MAX_REPLY_BODY`] bytes, REPLY_MORE on all parts but
    /// the last; a body that is not a list, or an empty list, is one reply. An entry
    /// too large for any message (a group of thousands of buckets) gets a part of its
    /// own, which then fails to encode ([`crate::EncodeError`]) rather than being cut.
    pub fn split(body: MultipartReplyBody) -> Vec<MultipartReply> {
        use MultipartReplyBody as B;
        match body {
            B::Flow(v) => pack(v, B::Flow),
            B::Table(v) => pack(v, B::Table),
            B::PortStats(v) => pack(v, B::PortStats),
            B::PortDesc(v) => pack(v, B::PortDesc),
            B::TableFeatures(v) => pack(v, B::TableFeatures),
            B::Group(v) => pack(v, B::Group),
            B::GroupDesc(v) => pack(v, B::GroupDesc),
            B::Meter(v) => pack(v, B::Meter),
            B::MeterConfig(v) => pack(v, B::MeterConfig),
            one @ (B::Desc(_) | B::Aggregate(_) | B::GroupFeatures(_) | B::MeterFeatures(_)) => {
                vec![MultipartReply { flags: 0, body: one }]
            }
        }
    }
}

/// Packs `entries` into parts of at most [`MAX_REPLY_BODY`] encoded bytes.
fn pack<T: Clone>(entries: Vec<T>, wrap: fn(Vec<T>) -> MultipartReplyBody) -> Vec<MultipartReply> {
    // An entry's size is what it adds to a reply's 8-byte multipart header.
    let size = |e: &T| {
        let mut w = Writer::default();
        MultipartReply {
            flags: 0,
            body: wrap(vec![e.clone()]),
        }
        .encode(&mut w);
        w.pos() - (MULTIPART_HEAD_LEN - crate::header::HEADER_LEN)
    };
    let mut parts = Vec::new();
    let (mut part, mut used) = (Vec::new(), 0);
    for e in entries {
        let n = size(&e);
        if !part.is_empty() && used + n > MAX_REPLY_BODY {
            parts.push(MultipartReply {
                flags: OFPMPF_MORE,
                body: wrap(std::mem::take(&mut part)),
            });
            used = 0;
        }
        used += n;
        part.push(e);
    }
    parts.push(MultipartReply {
        flags: 0,
        body: wrap(part),
    });
    parts
}

impl FlowStats {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.clone().u16()?);
        if len < FLOW_STATS_FIXED_LEN + 8 {
            return Err(r.short_error(format_args!("flow stats entry length {len} is too short")));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "flow stats entry")?;
        e.skip(2)?;
        let table_id = e.u8()?;
        e.skip(1)?;
        let duration_sec = e.u32()?;
        let duration_nsec = e.u32()?;
        let priority = e.u16()?;
        let idle_timeout = e.u16()?;
        let hard_timeout = e.u16()?;
        let flags = e.u16()?;
        e.skip(4)?;
        Ok(FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie: e.u64()?,
            packet_count: e.u64()?,
            byte_count: e.u64()?,
            match_: Match::decode(&mut e)?,
            instructions: Instruction::decode_list(e.rest())?,
        })
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.u8(self.table_id);
        w.zeros(1);
        w.u32(self.duration_sec);
        w.u32(self.duration_nsec);
        w.u16(self.priority);
        w.u16(self.idle_timeout);
        w.u16(self.hard_timeout);
        w.u16(self.flags);
        w.zeros(4);
        w.u64(self.cookie);
        w.u64(self.packet_count);
        w.u64(self.byte_count);
        self.match_.encode(w);
        Instruction::encode_list(&self.instructions, w);
        w.patch_len(at, start);
    }
}

impl PortStats {
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let port_no = r.u32()?;
        r.skip(4)?;
        Ok(PortStats {
            port_no,
            rx_packets: r.u64()?,
            tx_packets: r.u64()?,
            rx_bytes: r.u64()?,
            tx_bytes: r.u64()?,
            rx_dropped: r.u64()?,
            tx_dropped: r.u64()?,
            rx_errors: r.u64()?,
            tx_errors: r.u64()?,
            rx_frame_err: r.u64()?,
            rx_over_err: r.u64()?,
            rx_crc_err: r.u64()?,
            collisions: r.u64()?,
            duration_sec: r.u32()?,
            duration_nsec: r.u32()?,
        })
    }

    fn encode(&self, w: &mut Writer) {
        w.u32(self.port_no);
        w.zeros(4);
        for v in [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ] {
            w.u64(v);
        }
        w.u32(self.duration_sec);
        w.u32(self.duration_nsec);
    }
}

/// `ofp_multipart_request` up to its body: the header, type, flags and padding.
const MULTIPART_HEAD_LEN: usize = crate::header::HEADER_LEN + 8;

/// Most body bytes one connection's unfinished REQ_MORE requests may hold together: an
/// assembled request must fit one message (its 16-bit length), and none of the
/// requests this switch answers is longer. Over it: `OFPBRC_MULTIPART_BUFFER_OVERFLOW`.
pub const MAX_ASSEMBLED: usize = u16::MAX as usize - MULTIPART_HEAD_LEN;

/// Most unfinished requests (distinct xids) one connection may have at once; parts
/// with empty bodies cost no bytes, so the count is bounded too.
pub const MAX_ASSEMBLING: usize = 16;

/// Puts a multipart request split over several messages with `OFPMPF_REQ_MORE` back
/// together (spec 7.3.5: the parts share an xid and a type; the last lacks the flag).
///
/// One per connection. [`RequestAssembler::push`] takes every whole message as framed:
/// anything but a multipart request part passes through; a part with REQ_MORE is kept
/// (`Ok(None)`); the last part yields one request with every part's body in order and
/// the flag clear, for [`crate::Message::decode`]. What it holds is bounded by
/// [`MAX_ASSEMBLED`] bytes and [`MAX_ASSEMBLING`] requests, so a peer that never sends
/// the last part cannot grow it.
#[derive(Clone, Debug, Default)]
pub struct RequestAssembler {
    /// (xid, multipart type, bodies so far), oldest first.
    pending: Vec<(u32, u16, Vec<u8>)>,
}

impl RequestAssembler {
    /// Bytes of bodies held.
    pub fn held(&self) -> usize {
        self.pending.iter().map(|(_, _, b)| b.len()).sum()
    }

    /// One whole message `msg`: `Ok(Some(bytes))` to decode now (`msg` itself, or the
    /// assembled request), `Ok(None)` while a request waits for more parts, or the
    /// error to answer (the request is then dropped).
    pub fn push<'m>(&mut self, msg: &'m [u8]) -> Result<Option<std::borrow::Cow<'m, [u8]>>, OfpError> {
        use std::borrow::Cow;
        let is_part = msg.len() >= MULTIPART_HEAD_LEN
            && msg[0] == crate::OFP_VERSION
            && msg[1] == crate::header::ofpt::MULTIPART_REQUEST;
        if !is_part {
            return Ok(Some(Cow::Borrowed(msg)));
        }
        let xid = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let ty = u16::from_be_bytes([msg[8], msg[9]]);
        let more = u16::from_be_bytes([msg[10], msg[11]]) & OFPMPF_MORE != 0;
        let body = &msg[MULTIPART_HEAD_LEN..];
        let at = self.pending.iter().position(|(x, _, _)| *x == xid);
        if at.is_none() && !more {
            return Ok(Some(Cow::Borrowed(msg)));
        }
        let overflow = |detail: String| OfpError::of(ofpet::BAD_REQUEST, ofpbrc::MULTIPART_BUFFER_OVERFLOW, detail);
        let k = match at {
            Some(k) => k,
            None if self.pending.len() >= MAX_ASSEMBLING => {
                return Err(overflow(format!(
                    "{MAX_ASSEMBLING} multipart requests are already waiting for their last part"
                )));
            }
            None => {
                self.pending.push((xid, ty, Vec::new()));
                self.pending.len() - 1
            }
        };
        if self.pending[k].1 != ty {
            let was = self.pending.remove(k).1;
            return Err(OfpError::of(
                ofpet::BAD_REQUEST,
                ofpbrc::BAD_MULTIPART,
                format!("xid {xid:#x}: a part of multipart type {ty} continues a request of type {was}"),
            ));
        }
        if self.held() + body.len() > MAX_ASSEMBLED {
            self.pending.remove(k);
            return Err(overflow(format!(
                "multipart request parts exceed the {MAX_ASSEMBLED} bytes a connection may hold"
            )));
        }
        self.pending[k].2.extend_from_slice(body);
        if more {
            return Ok(None);
        }
        let (_, _, bodies) = self.pending.remove(k);
        let mut w = Writer::default();
        crate::header::Header::start(&mut w, crate::OFP_VERSION, crate::header::ofpt::MULTIPART_REQUEST, xid);
        w.u16(ty);
        w.u16(0);
        w.zeros(4);
        w.bytes(&bodies);
        crate::header::Header::finish(&mut w);
        Ok(Some(Cow::Owned(w.buf)))
    }
}
