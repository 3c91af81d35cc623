//! GROUP_MOD and the group parts of MULTIPART: groups are action sets a flow reaches
//! through a GROUP action — all buckets (flooding, multicast), one chosen bucket
//! (load balancing), one indirection, or the first live bucket (fast failover).
//!
//! Decoding checks what the message alone can say: a known command
//! (`OFPGMFC_BAD_COMMAND`) and type (`OFPGMFC_BAD_TYPE`), a group id that names a group
//! (`OFPGMFC_INVALID_GROUP`; [`OFPG_ALL`] only for deletes), at most one bucket in an
//! indirect group (`INVALID_GROUP`, as Open vSwitch answers), bucket lengths
//! (`OFPGMFC_BAD_BUCKET`) and the actions inside (their own `OFPBAC_*` codes). Whether
//! the group exists, loops or fits is for the group table to say.

use crate::action::Action;
use crate::error::{ErrorKind, OfpError, ofpet, ofpgmfc};
use crate::wire::{Reader, Writer};

/// Highest group id a controller may use.
pub const OFPG_MAX: u32 = 0xffff_ff00;
/// "All groups", in a group delete or a group stats request.
pub const OFPG_ALL: u32 = 0xffff_fffc;
/// "Any group": the wildcard of `out_group` filters (no group).
pub const OFPG_ANY: u32 = 0xffff_ffff;

/// `ofp_group_type` values.
pub mod ofpgt {
    pub const ALL: u8 = 0;
    pub const SELECT: u8 = 1;
    pub const INDIRECT: u8 = 2;
    pub const FF: u8 = 3;
}

/// `ofp_group_mod_command` values.
pub mod ofpgc {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const DELETE: u16 = 2;
}

/// `ofp_group_capabilities` bits (GROUP_FEATURES).
pub mod ofpgfc {
    pub const SELECT_WEIGHT: u32 = 1 << 0;
    pub const SELECT_LIVENESS: u32 = 1 << 1;
    pub const CHAINING: u32 = 1 << 2;
    pub const CHAINING_CHECKS: u32 = 1 << 3;
}

/// `ofp_group_mod_command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

/// `ofp_group_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// Every bucket runs (on its own copy of the packet).
    All = 0,
    /// One bucket runs, chosen by the switch (weighted).
    Select = 1,
    /// The one bucket runs.
    Indirect = 2,
    /// The first live bucket runs.
    FastFailover = 3,
}

impl GroupType {
    fn from_wire(ty: u8) -> Result<Self, OfpError> {
        Ok(match ty {
            ofpgt::ALL => GroupType::All,
            ofpgt::SELECT => GroupType::Select,
            ofpgt::INDIRECT => GroupType::Indirect,
            ofpgt::FF => GroupType::FastFailover,
            other => {
                return Err(group_error(ofpgmfc::BAD_TYPE, format!("unknown group type {other}")));
            }
        })
    }
}

/// `ofp_bucket`: actions and when they apply.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Share of a select group's traffic (0 elsewhere).
    pub weight: u16,
    /// The port whose liveness a fast-failover bucket follows ([`crate::ofpp::ANY`]: none).
    pub watch_port: u32,
    /// The group whose liveness it follows ([`OFPG_ANY`]: none).
    pub watch_group: u32,
    pub actions: Vec<Action>,
}

/// `ofp_group_mod` (after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMod {
    pub command: GroupModCommand,
    pub kind: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

/// `ofp_bucket_counter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BucketCounter {
    pub packet_count: u64,
    pub byte_count: u64,
}

/// `ofp_group_stats`: one group's counters (MULTIPART GROUP).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    pub group_id: u32,
    /// Flows and groups that forward to this group.
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// One per bucket, in bucket order.
    pub bucket_stats: Vec<BucketCounter>,
}

/// `ofp_group_desc`: one group as configured (MULTIPART GROUP_DESC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDesc {
    pub kind: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket>,
}

/// `ofp_group_features` (MULTIPART GROUP_FEATURES).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct GroupFeatures {
    /// Bit `1 << t` for each supported [`ofpgt`] type `t`.
    pub types: u32,
    /// [`ofpgfc`] bits.
    pub capabilities: u32,
    /// Most groups of each type, indexed by [`ofpgt`].
    pub max_groups: [u32; 4],
    /// Bit `1 << a` for each [`crate::ofpat`] action `a` supported, per type.
    pub actions: [u32; 4],
}

/// `ofp_bucket` before its actions.
const BUCKET_FIXED_LEN: usize = 16;
/// `ofp_group_stats` before its bucket counters, and one counter.
const GROUP_STATS_FIXED_LEN: usize = 40;
const BUCKET_COUNTER_LEN: usize = 16;
/// `ofp_group_desc` before its buckets.
const GROUP_DESC_FIXED_LEN: usize = 8;

fn group_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::GROUP_MOD_FAILED, code, message)
}

const BAD_BUCKET: ErrorKind = ErrorKind::new(ofpet::GROUP_MOD_FAILED, ofpgmfc::BAD_BUCKET);

impl Bucket {
    /// Reads one bucket; lengths that do not add up are `OFPGMFC_BAD_BUCKET`.
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.u16()?);
        if len < BUCKET_FIXED_LEN || len % 8 != 0 || len - 2 > r.remaining() {
            return Err(r.short_error(format_args!(
                "bucket length {len} is not a multiple of 8 of at least {BUCKET_FIXED_LEN} within the {} bytes left",
                r.remaining() + 2
            )));
        }
        let mut b = r.sub(len - 2, BAD_BUCKET, "bucket")?;
        let weight = b.u16()?;
        let watch_port = b.u32()?;
        let watch_group = b.u32()?;
        b.skip(4)?;
        let actions = Action::decode_list(Reader::new(b.rest(), ErrorKind::BAD_ACTION_LEN, "action"))?;
        Ok(Bucket {
            weight,
            watch_port,
            watch_group,
            actions,
        })
    }

    /// Reads the buckets that fill `bytes`.
    pub(crate) fn decode_list(bytes: &[u8]) -> Result<Vec<Bucket>, OfpError> {
        let mut r = Reader::new(bytes, BAD_BUCKET, "bucket");
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(Bucket::decode(&mut r)?);
        }
        Ok(out)
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.u16(self.weight);
        w.u32(self.watch_port);
        w.u32(self.watch_group);
        w.zeros(4);
        Action::encode_list(&self.actions, w);
        w.patch_len(at, start);
    }

    pub(crate) fn encode_list(buckets: &[Bucket], w: &mut Writer) {
        buckets.iter().for_each(|b| b.encode(w));
    }
}

impl GroupMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let command = match r.u16()? {
            ofpgc::ADD => GroupModCommand::Add,
            ofpgc::MODIFY => GroupModCommand::Modify,
            ofpgc::DELETE => GroupModCommand::Delete,
            other => {
                return Err(group_error(
                    ofpgmfc::BAD_COMMAND,
                    format!("unknown group-mod command {other}"),
                ));
            }
        };
        let kind = GroupType::from_wire(r.u8()?)?;
        r.skip(1)?;
        let group_id = r.u32()?;
        let deletes = command == GroupModCommand::Delete;
        if group_id > OFPG_MAX && !(deletes && group_id == OFPG_ALL) {
            return Err(group_error(
                ofpgmfc::INVALID_GROUP,
                format!("group id {group_id:#x} is reserved (ids end at {OFPG_MAX:#x}; OFPG_ALL only deletes)"),
            ));
        }
        let buckets = Bucket::decode_list(r.rest())?;
        if kind == GroupType::Indirect && buckets.len() > 1 && !deletes {
            return Err(group_error(
                ofpgmfc::INVALID_GROUP,
                format!("an indirect group has one bucket, not {}", buckets.len()),
            ));
        }
        Ok(GroupMod {
            command,
            kind,
            group_id,
            buckets,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.command as u16);
        w.u8(self.kind as u8);
        w.zeros(1);
        w.u32(self.group_id);
        Bucket::encode_list(&self.buckets, w);
    }
}

impl GroupStats {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.clone().u16()?);
        if len < GROUP_STATS_FIXED_LEN || !(len - GROUP_STATS_FIXED_LEN).is_multiple_of(BUCKET_COUNTER_LEN) {
            return Err(r.short_error(format_args!(
                "group stats entry length {len} is not {GROUP_STATS_FIXED_LEN} plus 16 per bucket"
            )));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "group stats entry")?;
        e.skip(4)?;
        let group_id = e.u32()?;
        let ref_count = e.u32()?;
        e.skip(4)?;
        let mut stats = GroupStats {
            group_id,
            ref_count,
            packet_count: e.u64()?,
            byte_count: e.u64()?,
            duration_sec: e.u32()?,
            duration_nsec: e.u32()?,
            bucket_stats: Vec::new(),
        };
        while !e.is_empty() {
            stats.bucket_stats.push(BucketCounter {
                packet_count: e.u64()?,
                byte_count: e.u64()?,
            });
        }
        Ok(stats)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.zeros(2);
        w.u32(self.group_id);
        w.u32(self.ref_count);
        w.zeros(4);
        w.u64(self.packet_count);
        w.u64(self.byte_count);
        w.u32(self.duration_sec);
        w.u32(self.duration_nsec);
        for b in &self.bucket_stats {
            w.u64(b.packet_count);
            w.u64(b.byte_count);
        }
        w.patch_len(at, start);
    }
}

impl GroupDesc {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.clone().u16()?);
        if len < GROUP_DESC_FIXED_LEN {
            return Err(r.short_error(format_args!("group desc entry length {len} is too short")));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "group desc entry")?;
        e.skip(2)?;
        let kind = GroupType::from_wire(e.u8()?)?;
        e.skip(1)?;
        Ok(GroupDesc {
            kind,
            group_id: e.u32()?,
            buckets: Bucket::decode_list(e.rest())?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.u8(self.kind as u8);
        w.zeros(1);
        w.u32(self.group_id);
        Bucket::encode_list(&self.buckets, w);
        w.patch_len(at, start);
    }
}

impl GroupFeatures {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let types = r.u32()?;
        let capabilities = r.u32()?;
        let mut four = || -> Result<[u32; 4], OfpError> { Ok([r.u32()?, r.u32()?, r.u32()?, r.u32()?]) };
        let max_groups = four()?;
        let actions = four()?;
        Ok(GroupFeatures {
            types,
            capabilities,
            max_groups,
            actions,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.types);
        w.u32(self.capabilities);
        self.max_groups.iter().chain(&self.actions).for_each(|v| w.u32(*v));
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{hex, round_trip};
    use crate::*;

    /// `ofp_group_mod` and `ofp_bucket` as the spec lays them out.
    #[test]
    fn group_mod_layout() {
        let g = Message::GroupMod(GroupMod {
            command: GroupModCommand::Add,
            kind: GroupType::Select,
            group_id: 1,
            buckets: vec![Bucket {
                weight: 10,
                watch_port: ofpp::ANY,
                watch_group: OFPG_ANY,
                actions: vec![Action::Output { port: 2, max_len: 0 }],
            }],
        });
        let want = hex("04 0f 00 30 00 00 00 05  00 00 01 00 00 00 00 01
             00 20 00 0a ff ff ff ff ff ff ff ff 00 00 00 00
             00 00 00 10 00 00 00 02 00 00 00 00 00 00 00 00");
        assert_eq!(round_trip(&g, 5), want);
    }

    #[test]
    fn group_stats_desc_and_features_layouts() {
        let stats = Message::MultipartReply(MultipartReply {
            flags: 0,
            body: MultipartReplyBody::Group(vec![GroupStats {
                group_id: 1,
                ref_count: 2,
                packet_count: 3,
                byte_count: 4,
                duration_sec: 5,
                duration_nsec: 6,
                bucket_stats: vec![BucketCounter {
                    packet_count: 7,
                    byte_count: 8,
                }],
            }]),
        });
        let want = hex("04 13 00 48 00 00 00 01  00 06 00 00 00 00 00 00
             00 38 00 00 00 00 00 01 00 00 00 02 00 00 00 00
             00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 04
             00 00 00 05 00 00 00 06
             00 00 00 00 00 00 00 07 00 00 00 00 00 00 00 08");
        assert_eq!(round_trip(&stats, 1), want);
        let desc = Message::MultipartReply(MultipartReply {
            flags: 0,
            body: MultipartReplyBody::GroupDesc(vec![GroupDesc {
                kind: GroupType::FastFailover,
                group_id: 9,
                buckets: vec![Bucket {
                    weight: 0,
                    watch_port: 3,
                    watch_group: OFPG_ANY,
                    actions: vec![],
                }],
            }]),
        });
        let want = hex("04 13 00 28 00 00 00 01  00 07 00 00 00 00 00 00
             00 18 03 00 00 00 00 09
             00 10 00 00 00 00 00 03 ff ff ff ff 00 00 00 00");
        assert_eq!(round_trip(&desc, 1), want);
        let features = Message::MultipartReply(MultipartReply {
            flags: 0,
            body: MultipartReplyBody::GroupFeatures(GroupFeatures {
                types: 0xf,
                capabilities: ofpgfc::SELECT_WEIGHT,
                max_groups: [1, 2, 3, 4],
                actions: [5, 6, 7, 8],
            }),
        });
        let bytes = round_trip(&features, 1);
        assert_eq!(bytes.len(), 16 + 40);
        assert_eq!(&bytes[16..24], &hex("00 00 00 0f 00 00 00 01"));
        assert_eq!(&bytes[52..56], &hex("00 00 00 08"));
    }
}
