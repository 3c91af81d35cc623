//! TABLE_FEATURES multipart: what each flow table can match, do and jump to.
//!
//! Why a switch that refuses other optional multiparts answers this one: `ovs-ofctl -O
//! OpenFlow13` (Open vSwitch 3.1) asks for table features before add-flow, mod-flows and
//! del-flows, to resolve table names, and gives up if the switch answers with an ERROR
//! or with features missing any of the eight required properties (checked against a
//! fake switch, 2026-12-01; `--no-names` skips the query). Setting features (a request
//! with a body) is refused with `OFPET_TABLE_FEATURES_FAILED/OFPTFFC_EPERM`.
//!
//! Properties are kept as `(type, data)`, which round-trips every property, including
//! experimenter ones; [`TableFeatureProp`]'s constructors build the standard lists.

use crate::action::ofpat;
use crate::error::{ErrorKind, OfpError};
use crate::instruction::ofpit;
use crate::oxm::OFPXMC_OPENFLOW_BASIC;
use crate::oxm::ofpxmt;
use crate::wire::{Reader, Writer, fixed_str, pad8};

/// `ofp_table_feature_prop_type` values.
pub mod ofptfpt {
    pub const INSTRUCTIONS: u16 = 0;
    pub const INSTRUCTIONS_MISS: u16 = 1;
    pub const NEXT_TABLES: u16 = 2;
    pub const NEXT_TABLES_MISS: u16 = 3;
    pub const WRITE_ACTIONS: u16 = 4;
    pub const WRITE_ACTIONS_MISS: u16 = 5;
    pub const APPLY_ACTIONS: u16 = 6;
    pub const APPLY_ACTIONS_MISS: u16 = 7;
    pub const MATCH: u16 = 8;
    pub const WILDCARDS: u16 = 10;
    pub const WRITE_SETFIELD: u16 = 12;
    pub const WRITE_SETFIELD_MISS: u16 = 13;
    pub const APPLY_SETFIELD: u16 = 14;
    pub const APPLY_SETFIELD_MISS: u16 = 15;
    pub const EXPERIMENTER: u16 = 0xfffe;
    pub const EXPERIMENTER_MISS: u16 = 0xffff;
}

/// `ofp_table_feature_prop_*`: a type and its payload (without header and padding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatureProp {
    /// An [`ofptfpt`] value.
    pub ty: u16,
    pub data: Vec<u8>,
}

impl TableFeatureProp {
    /// INSTRUCTIONS / WRITE_ACTIONS / APPLY_ACTIONS (and their _MISS): a list of
    /// instruction or action types, each written as a 4-byte `type, len = 4` header.
    pub fn types(ty: u16, ids: &[u16]) -> Self {
        TableFeatureProp {
            ty,
            data: ids
                .iter()
                .flat_map(|&id| [id.to_be_bytes(), 4u16.to_be_bytes()].concat())
                .collect(),
        }
    }

    /// NEXT_TABLES (and _MISS): the tables GOTO_TABLE may name.
    pub fn next_tables(ty: u16, tables: &[u8]) -> Self {
        TableFeatureProp {
            ty,
            data: tables.to_vec(),
        }
    }

    /// MATCH / WILDCARDS / *_SETFIELD: a list of OXM headers (class OPENFLOW_BASIC),
    /// each `(field, has_mask, value length)`. Only MATCH may flag fields as maskable;
    /// OVS refuses masked headers in the other lists with OFPBMC_BAD_MASK.
    pub fn oxms(ty: u16, fields: &[(u8, bool, u8)]) -> Self {
        let data = fields
            .iter()
            .flat_map(|&(field, has_mask, len)| {
                let len = u32::from(len) * if has_mask { 2 } else { 1 };
                ((u32::from(OFPXMC_OPENFLOW_BASIC) << 16) | (u32::from(field) << 9) | (u32::from(has_mask) << 8) | len)
                    .to_be_bytes()
            })
            .collect();
        TableFeatureProp { ty, data }
    }
}

/// Size of `ofp_table_features.name`, NUL included.
pub const MAX_TABLE_NAME_LEN: usize = 32;
/// `ofp_table_features` up to its properties.
const TABLE_FEATURES_FIXED_LEN: usize = 64;

/// `ofp_table_features`: one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableFeatures {
    pub table_id: u8,
    /// At most 31 bytes go on the wire.
    pub name: String,
    pub metadata_match: u64,
    pub metadata_write: u64,
    pub config: u32,
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp>,
}

impl TableFeatures {
    /// What a table of onvm's pipeline can do, with the eight properties OVS requires:
    /// every match field the flow table has (masks where it takes them), the six
    /// instructions, every action but SET_QUEUE and PBB's, SET_FIELD of every header
    /// field it matches, and goto to any later table of `n_tables`.
    pub fn onvm(table_id: u8, n_tables: u8) -> TableFeatures {
        use ofptfpt::*;
        let instructions = [
            ofpit::GOTO_TABLE,
            ofpit::WRITE_ACTIONS,
            ofpit::APPLY_ACTIONS,
            ofpit::CLEAR_ACTIONS,
            ofpit::WRITE_METADATA,
            ofpit::METER,
        ];
        let actions = [
            ofpat::OUTPUT,
            ofpat::COPY_TTL_OUT,
            ofpat::COPY_TTL_IN,
            ofpat::SET_MPLS_TTL,
            ofpat::DEC_MPLS_TTL,
            ofpat::PUSH_VLAN,
            ofpat::POP_VLAN,
            ofpat::PUSH_MPLS,
            ofpat::POP_MPLS,
            ofpat::GROUP,
            ofpat::SET_NW_TTL,
            ofpat::DEC_NW_TTL,
            ofpat::SET_FIELD,
        ];
        let next: Vec<u8> = (table_id.saturating_add(1)..n_tables).collect();
        // Every field a match may hold (`Match::decode`): (field, maskable, length).
        let matchable = [
            (ofpxmt::IN_PORT, false, 4),
            (ofpxmt::IN_PHY_PORT, false, 4),
            (ofpxmt::METADATA, true, 8),
            (ofpxmt::ETH_DST, true, 6),
            (ofpxmt::ETH_SRC, true, 6),
            (ofpxmt::ETH_TYPE, false, 2),
            (ofpxmt::VLAN_VID, true, 2),
            (ofpxmt::VLAN_PCP, false, 1),
            (ofpxmt::IP_DSCP, false, 1),
            (ofpxmt::IP_ECN, false, 1),
            (ofpxmt::IP_PROTO, false, 1),
            (ofpxmt::IPV4_SRC, true, 4),
            (ofpxmt::IPV4_DST, true, 4),
            (ofpxmt::TCP_SRC, false, 2),
            (ofpxmt::TCP_DST, false, 2),
            (ofpxmt::UDP_SRC, false, 2),
            (ofpxmt::UDP_DST, false, 2),
            (ofpxmt::SCTP_SRC, false, 2),
            (ofpxmt::SCTP_DST, false, 2),
            (ofpxmt::ICMPV4_TYPE, false, 1),
            (ofpxmt::ICMPV4_CODE, false, 1),
            (ofpxmt::ARP_OP, false, 2),
            (ofpxmt::ARP_SPA, true, 4),
            (ofpxmt::ARP_TPA, true, 4),
            (ofpxmt::ARP_SHA, true, 6),
            (ofpxmt::ARP_THA, true, 6),
            (ofpxmt::IPV6_SRC, true, 16),
            (ofpxmt::IPV6_DST, true, 16),
            (ofpxmt::IPV6_FLABEL, true, 4),
            (ofpxmt::ICMPV6_TYPE, false, 1),
            (ofpxmt::ICMPV6_CODE, false, 1),
            (ofpxmt::IPV6_ND_TARGET, false, 16),
            (ofpxmt::IPV6_ND_SLL, false, 6),
            (ofpxmt::IPV6_ND_TLL, false, 6),
            (ofpxmt::MPLS_LABEL, false, 4),
            (ofpxmt::MPLS_TC, false, 1),
            (ofpxmt::MPLS_BOS, false, 1),
            (ofpxmt::TUNNEL_ID, true, 8),
        ];
        // Every header field it matches is settable; the pipeline's own (ports,
        // metadata), the EtherType and IP protocol (the headers' shape) and the tunnel
        // ID (no tunnels) are not.
        let fixed = [
            ofpxmt::IN_PORT,
            ofpxmt::IN_PHY_PORT,
            ofpxmt::METADATA,
            ofpxmt::ETH_TYPE,
            ofpxmt::IP_PROTO,
            ofpxmt::TUNNEL_ID,
        ];
        let settable: Vec<_> = matchable
            .iter()
            .filter(|(field, ..)| !fixed.contains(field))
            .map(|&(field, _, len)| (field, false, len))
            .collect();
        // WILDCARDS lists fields that may be left out, unmasked: OVS refuses masked ids there.
        let wildcards: Vec<_> = matchable.iter().map(|&(field, _, len)| (field, false, len)).collect();
        TableFeatures {
            table_id,
            name: format!("table{table_id}"),
            // Packets' metadata is matchable in every bit (it is 0 until written).
            metadata_match: u64::MAX,
            metadata_write: 0,
            config: 0,
            max_entries: 65536,
            properties: vec![
                TableFeatureProp::types(INSTRUCTIONS, &instructions),
                TableFeatureProp::next_tables(NEXT_TABLES, &next),
                TableFeatureProp::types(WRITE_ACTIONS, &actions),
                TableFeatureProp::types(APPLY_ACTIONS, &actions),
                TableFeatureProp::oxms(MATCH, &matchable),
                TableFeatureProp::oxms(WILDCARDS, &wildcards),
                TableFeatureProp::oxms(WRITE_SETFIELD, &settable),
                TableFeatureProp::oxms(APPLY_SETFIELD, &settable),
            ],
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.clone().u16()?);
        if len < TABLE_FEATURES_FIXED_LEN {
            return Err(r.short_error(format_args!("table features entry length {len} is below 64")));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "table features entry")?;
        e.skip(2)?;
        let table_id = e.u8()?;
        e.skip(5)?;
        let name = fixed_str(e.bytes(MAX_TABLE_NAME_LEN)?);
        let (metadata_match, metadata_write) = (e.u64()?, e.u64()?);
        let (config, max_entries) = (e.u32()?, e.u32()?);
        let mut properties = Vec::new();
        while !e.is_empty() {
            let ty = e.u16()?;
            let plen = usize::from(e.u16()?);
            if plen < 4 {
                return Err(e.short_error(format_args!("table feature property length {plen} below 4")));
            }
            let data = e.bytes(plen - 4)?.to_vec();
            // The last property's padding is sometimes left out; tolerate that.
            e.skip(pad8(plen).min(e.remaining()))?;
            properties.push(TableFeatureProp { ty, data });
        }
        Ok(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.u8(self.table_id);
        w.zeros(5);
        w.fixed_str(&self.name, MAX_TABLE_NAME_LEN);
        w.u64(self.metadata_match);
        w.u64(self.metadata_write);
        w.u32(self.config);
        w.u32(self.max_entries);
        for p in &self.properties {
            let pstart = w.pos();
            w.u16(p.ty);
            let pat = w.len_placeholder();
            w.bytes(&p.data);
            w.patch_len(pat, pstart);
            w.pad8(pstart);
        }
        w.patch_len(at, start);
    }
}
