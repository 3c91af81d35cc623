//! GROUP_MOD and METER_MOD, and the group and meter multipart replies: OpenFlow's view
//! of the flow table's groups and meters ([`onvm_proto::flow::group`],
//! [`onvm_proto::flow::meter`]), converted both ways.

use std::time::Duration;

use onvm_openflow::{self as of, GroupMod, GroupModCommand, MeterMod, MeterModCommand, OfpError, ofpet, ofpgmfc};
use onvm_proto::flow::group::{self, Bucket, GroupError, GroupType};
use onvm_proto::flow::meter::{self, Band, BandKind, MeterError};
use onvm_proto::flow::{FlowTable, Rule};

use super::translate::{of_action, of_port, onvm_port, rule_action};

fn group_error(e: GroupError) -> OfpError {
    let (ty, code) = e.ofp_error();
    OfpError::of(ty, code, e.to_string())
}

fn meter_error(e: MeterError) -> OfpError {
    let (ty, code) = e.ofp_error();
    OfpError::of(ty, code, e.to_string())
}

fn kind(k: of::GroupType) -> GroupType {
    match k {
        of::GroupType::All => GroupType::All,
        of::GroupType::Select => GroupType::Select,
        of::GroupType::Indirect => GroupType::Indirect,
        of::GroupType::FastFailover => GroupType::FastFailover,
    }
}

fn of_kind(k: GroupType) -> of::GroupType {
    match k {
        GroupType::All => of::GroupType::All,
        GroupType::Select => of::GroupType::Select,
        GroupType::Indirect => of::GroupType::Indirect,
        GroupType::FastFailover => of::GroupType::FastFailover,
    }
}

/// onvm's bucket for an OpenFlow one: its actions as a rule's, its watch port one of
/// this switch's (else `OFPGMFC_BAD_WATCH`).
fn bucket(b: &of::Bucket) -> Result<Bucket, OfpError> {
    let actions = b.actions.iter().map(rule_action).collect::<Result<Vec<_>, _>>()?;
    let mut out = Bucket::new(actions).with_weight(b.weight);
    if b.watch_port != of::ofpp::ANY {
        let p = onvm_port(b.watch_port).ok_or_else(|| {
            OfpError::of(
                ofpet::GROUP_MOD_FAILED,
                ofpgmfc::BAD_WATCH,
                format!("watch port {:#x} is no port of this switch", b.watch_port),
            )
        })?;
        out = out.with_watch_port(p);
    }
    if b.watch_group != of::OFPG_ANY {
        out = out.with_watch_group(b.watch_group);
    }
    Ok(out)
}

fn of_bucket(b: &Bucket) -> of::Bucket {
    of::Bucket {
        weight: b.weight,
        watch_port: b.watch_port.map_or(of::ofpp::ANY, of_port),
        watch_group: b.watch_group.unwrap_or(of::OFPG_ANY),
        actions: b.actions.iter().filter_map(|&a| of_action(a, false, None)).collect(),
    }
}

/// Carries out a GROUP_MOD at `now`. Returns the rules a delete removed with the
/// groups they sent to (for FLOW_REMOVED, reason GROUP_DELETE).
pub fn group_mod(table: &mut FlowTable, g: &GroupMod, now: Duration) -> Result<Vec<Rule>, OfpError> {
    let buckets = || g.buckets.iter().map(bucket).collect::<Result<Vec<_>, _>>();
    match g.command {
        GroupModCommand::Add => table
            .groups
            .add(g.group_id, kind(g.kind), buckets()?, now)
            .map_err(group_error)?,
        GroupModCommand::Modify => table
            .groups
            .modify(g.group_id, kind(g.kind), buckets()?)
            .map_err(group_error)?,
        GroupModCommand::Delete => return table.delete_group(g.group_id).map_err(group_error),
    }
    Ok(Vec::new())
}

fn band(b: &of::MeterBand) -> Band {
    let kind = match b.kind {
        of::MeterBandKind::Drop => BandKind::Drop,
        of::MeterBandKind::DscpRemark { prec_level } => BandKind::DscpRemark { prec_level },
    };
    Band::new(kind, b.rate, b.burst_size)
}

fn of_band(b: &Band) -> of::MeterBand {
    of::MeterBand {
        kind: match b.kind {
            BandKind::Drop => of::MeterBandKind::Drop,
            BandKind::DscpRemark { prec_level } => of::MeterBandKind::DscpRemark { prec_level },
        },
        rate: b.rate,
        burst_size: b.burst,
    }
}

/// Carries out a METER_MOD at `now`. Returns the rules a delete removed with the
/// meters they used (for FLOW_REMOVED, reason METER_DELETE).
pub fn meter_mod(table: &mut FlowTable, m: &MeterMod, now: Duration) -> Result<Vec<Rule>, OfpError> {
    let bands = || m.bands.iter().map(band).collect::<Vec<_>>();
    match m.command {
        MeterModCommand::Add => table
            .meters
            .add(m.meter_id, m.flags, bands(), now)
            .map_err(meter_error)?,
        MeterModCommand::Modify => table
            .meters
            .modify(m.meter_id, m.flags, bands(), now)
            .map_err(meter_error)?,
        MeterModCommand::Delete => return Ok(table.delete_meter(m.meter_id)),
    }
    Ok(Vec::new())
}

fn age(installed: Duration, now: Duration) -> (u32, u32) {
    let a = now.saturating_sub(installed);
    (u32::try_from(a.as_secs()).unwrap_or(u32::MAX), a.subsec_nanos())
}

/// GROUP stats of group `id` (every group for `OFPG_ALL`); an unknown id has none.
pub fn group_stats(table: &FlowTable, id: u32, now: Duration) -> Vec<of::GroupStats> {
    let refs = group::ref_counts(table.iter().map(|(_, r)| r));
    table
        .groups
        .iter()
        .filter(|&(g, _)| id == of::OFPG_ALL || g == id)
        .map(|(g, grp)| {
            let (duration_sec, duration_nsec) = age(grp.installed, now);
            of::GroupStats {
                group_id: g,
                ref_count: refs.get(&g).copied().unwrap_or(0),
                packet_count: grp.packets,
                byte_count: grp.bytes,
                duration_sec,
                duration_nsec,
                bucket_stats: grp
                    .buckets
                    .iter()
                    .map(|b| of::BucketCounter {
                        packet_count: b.packets,
                        byte_count: b.bytes,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// GROUP_DESC: every group as installed.
pub fn group_desc(table: &FlowTable) -> Vec<of::GroupDesc> {
    table
        .groups
        .iter()
        .map(|(g, grp)| of::GroupDesc {
            kind: of_kind(grp.kind),
            group_id: g,
            buckets: grp.buckets.iter().map(of_bucket).collect(),
        })
        .collect()
}

/// Every action a bucket may hold, as the bits of OpenFlow's `ofp_action_type` (all
/// but SET_QUEUE and PBB).
fn action_bits() -> u32 {
    use of::ofpat::*;
    [
        OUTPUT,
        COPY_TTL_OUT,
        COPY_TTL_IN,
        SET_MPLS_TTL,
        DEC_MPLS_TTL,
        PUSH_VLAN,
        POP_VLAN,
        PUSH_MPLS,
        POP_MPLS,
        GROUP,
        SET_NW_TTL,
        DEC_NW_TTL,
        SET_FIELD,
    ]
    .iter()
    .fold(0, |bits, &t| bits | (1 << t))
}

pub fn group_features() -> of::GroupFeatures {
    let f = group::FEATURES;
    of::GroupFeatures {
        types: f.types,
        capabilities: f.capabilities,
        max_groups: f.max_groups,
        actions: [action_bits(); 4],
    }
}

/// METER stats of meter `id` (every meter for `OFPM_ALL`).
pub fn meter_stats(table: &FlowTable, id: u32, now: Duration) -> Vec<of::MeterStats> {
    table
        .meters
        .iter()
        .filter(|&(m, _)| id == of::OFPM_ALL || m == id)
        .map(|(m, meter)| {
            let (duration_sec, duration_nsec) = age(meter.installed, now);
            of::MeterStats {
                meter_id: m,
                flow_count: table
                    .iter()
                    .filter(|(_, r)| r.instructions.meter == Some(m))
                    .count()
                    .try_into()
                    .unwrap_or(u32::MAX),
                packet_in_count: meter.packets,
                byte_in_count: meter.bytes,
                duration_sec,
                duration_nsec,
                band_stats: meter
                    .bands
                    .iter()
                    .map(|b| of::MeterBandStats {
                        packet_band_count: b.packets,
                        byte_band_count: b.bytes,
                    })
                    .collect(),
            }
        })
        .collect()
}

/// METER_CONFIG of meter `id` (every meter for `OFPM_ALL`).
pub fn meter_config(table: &FlowTable, id: u32) -> Vec<of::MeterConfig> {
    table
        .meters
        .iter()
        .filter(|&(m, _)| id == of::OFPM_ALL || m == id)
        .map(|(m, meter)| of::MeterConfig {
            flags: meter.flags(),
            meter_id: m,
            bands: meter.bands.iter().map(of_band).collect(),
        })
        .collect()
}

pub fn meter_features() -> of::MeterFeatures {
    let f = meter::FEATURES;
    of::MeterFeatures {
        max_meter: f.max_meters,
        band_types: f.band_types,
        capabilities: f.capabilities,
        max_bands: f.max_bands,
        max_color: f.max_color,
    }
}
