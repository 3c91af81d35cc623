//! OpenFlow meters: token-bucket rate limiters with drop and DSCP-remark bands.
//!
//! A rule's meter instruction sends each packet through a meter before its actions.
//! This module holds the meter table (what a METER_MOD builds, with OpenFlow's errors)
//! and the per-packet decision, [`MeterTable::admit`]; remarking the DSCP field and
//! dropping are the forwarding code's job.
//!
//! Open vSwitch's userspace datapath is the reference (`dp_netdev_run_meter` and
//! `dpif_netdev_meter_set` in `lib/dpif-netdev.c`, `dpif_meter_set` in `lib/dpif.c`,
//! `handle_meter_mod` in `ofproto/ofproto.c`):
//!
//! * Each band has a token bucket of `burst` kilobits (KBPS) or packets (PKTPS), or of
//!   `rate` (one second's worth) when `burst` is 0. As in OVS the BURST flag is only
//!   kept and read back: a non-zero `burst` counts with or without it.
//! * Buckets start full, refill at `rate` for the time since the meter was last used
//!   (never above their size), and a packet takes its size in bits (KBPS) or one packet
//!   (PKTPS) from every band that has that much. Of the bands that had not, the one
//!   with the highest rate applies (ties: the first); none: the packet passes. As in OVS
//!   a packet a band drops still drained the bands that had enough.
//! * OVS counts time in milliseconds; here it is nanoseconds, in integers: a bucket
//!   holds billionths of a kilobit or of a packet, so `rate` per second is `rate` per
//!   nanosecond of those and nothing is lost to rounding. At whole milliseconds the two
//!   agree.
//! * A modify replaces the meter as OVS's datapath does: buckets full again, counters
//!   from zero; the creation time stays.
//! * Unlike OVS's userspace datapath (which answers `OFPMMFC_BAD_BAND`), DSCP-remark
//!   bands are supported: the verdict carries the precedence levels to add.
//! * Counters always count (OVS ignores the STATS flag too).

use std::time::Duration;

use rustc_hash::FxHashMap;
use thiserror::Error;

use super::Rule;

/// The largest meter id of a flow meter (`OFPM_MAX`).
pub const OFPM_MAX: u32 = 0xffff_0000;
/// The virtual meter of packets sent through the slow path (`OFPM_SLOWPATH`).
pub const OFPM_SLOWPATH: u32 = 0xffff_fffd;
/// The virtual meter of packets sent to the controller (`OFPM_CONTROLLER`).
pub const OFPM_CONTROLLER: u32 = 0xffff_fffe;
/// All meters, in a delete or a stats request (`OFPM_ALL`).
pub const OFPM_ALL: u32 = 0xffff_ffff;

/// Rates in kilobits per second (`OFPMF_KBPS`).
pub const OFPMF_KBPS: u16 = 1 << 0;
/// Rates in packets per second (`OFPMF_PKTPS`).
pub const OFPMF_PKTPS: u16 = 1 << 1;
/// Burst sizes given (`OFPMF_BURST`).
pub const OFPMF_BURST: u16 = 1 << 2;
/// Collect statistics (`OFPMF_STATS`).
pub const OFPMF_STATS: u16 = 1 << 3;

/// `OFPMBT_DROP`.
pub const OFPMBT_DROP: u16 = 1;
/// `OFPMBT_DSCP_REMARK`.
pub const OFPMBT_DSCP_REMARK: u16 = 2;

/// Most meters in one table (OVS's userspace datapath: `MAX_METERS`, `1 << 18`).
pub const MAX_METERS: usize = 1 << 18;
/// Most bands in one meter (OVS: `MAX_BANDS`, 8).
pub const MAX_BANDS: usize = 8;

/// What a METER_FEATURES reply says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterFeatures {
    /// Most meters.
    pub max_meters: u32,
    /// Bitmap of band types, bit `1 << OFPMBT_*`.
    pub band_types: u32,
    /// Bitmap of `OFPMF_*` flags supported.
    pub capabilities: u32,
    /// Most bands per meter.
    pub max_bands: u8,
    /// Most color values (0: no color-aware bands).
    pub max_color: u8,
}

/// This implementation's features: OVS's, plus DSCP remark.
pub const FEATURES: MeterFeatures = MeterFeatures {
    max_meters: MAX_METERS as u32,
    band_types: (1 << OFPMBT_DROP) | (1 << OFPMBT_DSCP_REMARK),
    capabilities: (OFPMF_KBPS | OFPMF_PKTPS | OFPMF_BURST | OFPMF_STATS) as u32,
    max_bands: MAX_BANDS as u8,
    max_color: 0,
};

/// What a meter's rates and bursts count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterUnit {
    /// Rates in kilobits per second, bursts in kilobits (of the whole frame).
    Kbps,
    /// Rates in packets per second, bursts in packets.
    Pktps,
}

/// What a band does to a packet over its rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BandKind {
    /// Drop it.
    Drop,
    /// Raise the drop precedence of its DSCP by `prec_level` (1 or more).
    DscpRemark { prec_level: u8 },
}

impl BandKind {
    /// From OpenFlow's band type and the remark band's `prec_level` (ignored for other
    /// types). An unknown type (experimenter included) is [`MeterError::BadBand`].
    pub fn from_ofp(band_type: u16, prec_level: u8) -> Result<BandKind, MeterError> {
        match band_type {
            OFPMBT_DROP => Ok(BandKind::Drop),
            OFPMBT_DSCP_REMARK => Ok(BandKind::DscpRemark { prec_level }),
            t => Err(MeterError::BadBand(t)),
        }
    }

    /// OpenFlow's band type.
    pub fn ofp_type(self) -> u16 {
        match self {
            BandKind::Drop => OFPMBT_DROP,
            BandKind::DscpRemark { .. } => OFPMBT_DSCP_REMARK,
        }
    }
}

/// One band of a meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// What it does to packets over its rate.
    pub kind: BandKind,
    /// Its rate, in the meter's [`MeterUnit`] per second (not 0).
    pub rate: u32,
    /// Its bucket, in kilobits or packets; 0: `rate` (one second's worth).
    pub burst: u32,
    /// Packets this band applied to.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
}

impl Band {
    /// A band with zero counters.
    pub fn new(kind: BandKind, rate: u32, burst: u32) -> Band {
        Band {
            kind,
            rate,
            burst,
            packets: 0,
            bytes: 0,
        }
    }

    /// The size of its bucket, in billionths of a kilobit or a packet.
    fn capacity(&self) -> u64 {
        let burst = if self.burst == 0 { self.rate } else { self.burst };
        u64::from(burst) * NANO
    }
}

/// Billionths per unit: the tokens' resolution.
const NANO: u64 = 1_000_000_000;

/// An installed meter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meter {
    /// What rates and bursts count.
    pub unit: MeterUnit,
    /// Whether the installer set `OFPMF_BURST` (read back only; see the module doc).
    pub burst_flag: bool,
    /// Whether the installer set `OFPMF_STATS` (read back only; counters always count).
    pub stats_flag: bool,
    /// Its bands, in the order given.
    pub bands: Vec<Band>,
    /// Packets that went into the meter.
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// When it was added (a modify keeps it), on the caller's clock.
    pub installed: Duration,
    /// Per band, the tokens in its bucket, in billionths of a kilobit or packet.
    tokens: Vec<u64>,
    /// When the buckets were last refilled.
    last: Duration,
}

impl Meter {
    /// Its flags as OpenFlow's `OFPMF_*` bits (for a METER_CONFIG reply).
    pub fn flags(&self) -> u16 {
        let unit = match self.unit {
            MeterUnit::Kbps => OFPMF_KBPS,
            MeterUnit::Pktps => OFPMF_PKTPS,
        };
        let burst = if self.burst_flag { OFPMF_BURST } else { 0 };
        let stats = if self.stats_flag { OFPMF_STATS } else { 0 };
        unit | burst | stats
    }

    /// A fresh meter: full buckets, zero counters.
    fn new(config: Config, bands: Vec<Band>, now: Duration) -> Meter {
        let bands: Vec<Band> = bands.into_iter().map(|b| Band::new(b.kind, b.rate, b.burst)).collect();
        Meter {
            unit: config.unit,
            burst_flag: config.burst_flag,
            stats_flag: config.stats_flag,
            tokens: bands.iter().map(Band::capacity).collect(),
            bands,
            packets: 0,
            bytes: 0,
            installed: now,
            last: now,
        }
    }
}

/// What to do with a packet, by [`MeterTable::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterVerdict {
    /// Under every band's rate: forward it as it is.
    Pass,
    /// A drop band applies: free it.
    Drop,
    /// A DSCP-remark band applies: raise its drop precedence by `prec_level`, then
    /// forward it.
    Remark { prec_level: u8 },
}

/// Why a meter mod was refused. Each variant's doc names the `OFPMMFC_*` code (error
/// type `OFPET_METER_MOD_FAILED`) it becomes, which [`MeterError::ofp_error`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum MeterError {
    /// An add for an id in use. `OFPMMFC_METER_EXISTS`.
    #[error("meter {0} exists")]
    Exists(u32),
    /// A modify of a meter that does not exist. `OFPMMFC_UNKNOWN_METER`.
    #[error("no meter {0}")]
    Unknown(u32),
    /// Id 0, or above `OFPM_MAX` other than the slow-path and controller meters, in an
    /// add or modify. `OFPMMFC_INVALID_METER`.
    #[error("invalid meter id {0:#x}")]
    InvalidMeter(u32),
    /// Both or neither of KBPS and PKTPS, or an unknown flag bit. `OFPMMFC_BAD_FLAGS`
    /// (OVS's `dpif_meter_set`, `DP_SUPPORTED_METER_FLAGS_MASK`).
    #[error("bad meter flags {0:#x}")]
    BadFlags(u16),
    /// A band with rate 0. `OFPMMFC_BAD_RATE`.
    #[error("a band's rate is 0")]
    BadRate,
    /// An unknown band type. `OFPMMFC_BAD_BAND`.
    #[error("unknown band type {0}")]
    BadBand(u16),
    /// A DSCP-remark band with `prec_level` 0 (it would do nothing; `ovs-ofctl` refuses
    /// it too). `OFPMMFC_BAD_BAND_VALUE`.
    #[error("a DSCP remark band needs a prec_level")]
    BadBandValue,
    /// Already [`MAX_METERS`] meters. `OFPMMFC_OUT_OF_METERS`.
    #[error("out of meters (at most {MAX_METERS})")]
    OutOfMeters,
    /// More than [`MAX_BANDS`] bands. `OFPMMFC_OUT_OF_BANDS`.
    #[error("out of bands (at most {MAX_BANDS} per meter)")]
    OutOfBands,
    /// No band at all. `OFPMMFC_OUT_OF_BANDS`, as OVS answers it (`dpif_meter_set`).
    #[error("a meter has at least one band")]
    NoBands,
}

/// `OFPET_METER_MOD_FAILED`.
const OFPET_METER_MOD_FAILED: u16 = 12;

impl MeterError {
    /// OpenFlow's (error type, code) for this refusal.
    pub fn ofp_error(&self) -> (u16, u16) {
        let code = match self {
            MeterError::Exists(_) => 1,
            MeterError::InvalidMeter(_) => 2,
            MeterError::Unknown(_) => 3,
            MeterError::BadFlags(_) => 5,
            MeterError::BadRate => 6,
            MeterError::BadBand(_) => 8,
            MeterError::BadBandValue => 9,
            MeterError::OutOfMeters => 10,
            MeterError::OutOfBands | MeterError::NoBands => 11,
        };
        (OFPET_METER_MOD_FAILED, code)
    }
}

/// The parts of a meter mod's flags that a meter keeps.
#[derive(Clone, Copy, Debug)]
struct Config {
    unit: MeterUnit,
    burst_flag: bool,
    stats_flag: bool,
}

/// Checks a meter mod (add or modify) the way OVS does, in OVS's order.
fn check(id: u32, flags: u16, bands: &[Band]) -> Result<Config, MeterError> {
    if id == 0 || (id > OFPM_MAX && id != OFPM_SLOWPATH && id != OFPM_CONTROLLER) {
        return Err(MeterError::InvalidMeter(id));
    }
    if bands.len() > MAX_BANDS {
        return Err(MeterError::OutOfBands);
    }
    let known = OFPMF_KBPS | OFPMF_PKTPS | OFPMF_BURST | OFPMF_STATS;
    let unit = match (flags & OFPMF_KBPS != 0, flags & OFPMF_PKTPS != 0) {
        _ if flags & !known != 0 => return Err(MeterError::BadFlags(flags)),
        (true, false) => MeterUnit::Kbps,
        (false, true) => MeterUnit::Pktps,
        _ => return Err(MeterError::BadFlags(flags)),
    };
    if bands.is_empty() {
        return Err(MeterError::NoBands);
    }
    for b in bands {
        if b.rate == 0 {
            return Err(MeterError::BadRate);
        }
        if b.kind == (BandKind::DscpRemark { prec_level: 0 }) {
            return Err(MeterError::BadBandValue);
        }
    }
    Ok(Config {
        unit,
        burst_flag: flags & OFPMF_BURST != 0,
        stats_flag: flags & OFPMF_STATS != 0,
    })
}

/// Per meter, how many of `rules` use it (the `flow_count` of METER_STATS).
pub fn flow_counts<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> FxHashMap<u32, u32> {
    let mut counts: FxHashMap<u32, u32> = FxHashMap::default();
    for m in rules.into_iter().filter_map(|r| r.instructions.meter) {
        let n = counts.entry(m).or_insert(0);
        *n = n.saturating_add(1);
    }
    counts
}

/// Whether `rule` uses one of the meters `ids` (after a delete: which rules go, with
/// reason `OFPRR_METER_DELETE`, as OVS's `meter_destroy`).
pub fn refers_to(rule: &Rule, ids: &[u32]) -> bool {
    rule.instructions.meter.is_some_and(|m| ids.contains(&m))
}

/// The meter table: meters by id, with OpenFlow's METER_MOD semantics.
#[derive(Debug, Default)]
pub struct MeterTable {
    meters: FxHashMap<u32, Meter>,
}

impl MeterTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of meters.
    pub fn len(&self) -> usize {
        self.meters.len()
    }

    /// Whether there are no meters.
    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    /// The meter with this id.
    pub fn get(&self, id: u32) -> Option<&Meter> {
        self.meters.get(&id)
    }

    /// All meters, by ascending id (for METER_CONFIG and METER_STATS replies).
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Meter)> {
        let mut all: Vec<(u32, &Meter)> = self.meters.iter().map(|(&id, m)| (id, m)).collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all.into_iter()
    }

    /// Checks a rule's meter instruction before it is installed: the meter exists, or
    /// [`MeterError::InvalidMeter`] (`OFPMMFC_INVALID_METER`, as OVS's
    /// `ofproto_check_ofpacts`).
    pub fn check_rule(&self, rule: &Rule) -> Result<(), MeterError> {
        match rule.instructions.meter {
            Some(m) if !self.meters.contains_key(&m) => Err(MeterError::InvalidMeter(m)),
            _ => Ok(()),
        }
    }

    /// METER_MOD add: installs meter `id` with OpenFlow's `flags` (`OFPMF_*`) and
    /// `bands` at `now`, buckets full, counters zero (the bands' own are ignored).
    pub fn add(&mut self, id: u32, flags: u16, bands: Vec<Band>, now: Duration) -> Result<(), MeterError> {
        let config = check(id, flags, &bands)?;
        if self.meters.contains_key(&id) {
            return Err(MeterError::Exists(id));
        }
        if self.meters.len() >= MAX_METERS {
            return Err(MeterError::OutOfMeters);
        }
        self.meters.insert(id, Meter::new(config, bands, now));
        Ok(())
    }

    /// METER_MOD modify: gives meter `id` these flags and bands. As OVS's datapath, the
    /// buckets start full and the counters from zero at `now`; the creation time stays.
    pub fn modify(&mut self, id: u32, flags: u16, bands: Vec<Band>, now: Duration) -> Result<(), MeterError> {
        let config = check(id, flags, &bands)?;
        let Some(meter) = self.meters.get_mut(&id) else {
            return Err(MeterError::Unknown(id));
        };
        let installed = meter.installed;
        *meter = Meter::new(config, bands, now);
        meter.installed = installed;
        Ok(())
    }

    /// METER_MOD delete: removes meter `id`, or every meter for [`OFPM_ALL`], and returns
    /// the ids removed, ascending (the caller then deletes the rules that use them, as
    /// OVS does, reason `OFPRR_METER_DELETE`). Id 0 or one that names no meter removes
    /// nothing and is no error (as OVS).
    pub fn delete(&mut self, id: u32) -> Vec<u32> {
        if id == OFPM_ALL {
            let mut ids: Vec<u32> = self.meters.drain().map(|(id, _)| id).collect();
            ids.sort_unstable();
            return ids;
        }
        match self.meters.remove(&id) {
            Some(_) => vec![id],
            None => Vec::new(),
        }
    }

    /// Meters one packet of `bytes` bytes (the whole frame) at `now` through meter `id`
    /// (`None`: no such meter, which OVS's datapath lets pass). Counts it in the meter
    /// and in the band that applies. `now` earlier than a previous call refills nothing.
    pub fn admit(&mut self, id: u32, bytes: usize, now: Duration) -> Option<MeterVerdict> {
        let m = self.meters.get_mut(&id)?;
        if now > m.last {
            let ns = u64::try_from((now - m.last).as_nanos()).unwrap_or(u64::MAX);
            for (tokens, band) in m.tokens.iter_mut().zip(&m.bands) {
                let added = u64::from(band.rate).saturating_mul(ns);
                *tokens = tokens.saturating_add(added).min(band.capacity());
            }
            m.last = now;
        }
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        m.packets = m.packets.saturating_add(1);
        m.bytes = m.bytes.saturating_add(bytes);
        let cost = match m.unit {
            // 8 bits a byte, a million billionths of a kilobit a bit.
            MeterUnit::Kbps => bytes.saturating_mul(8_000_000),
            MeterUnit::Pktps => NANO,
        };
        // OVS's dp_netdev_run_meter: every band that can pays; the highest-rate band
        // that cannot applies.
        let mut hit: Option<usize> = None;
        for (i, (tokens, band)) in m.tokens.iter_mut().zip(&m.bands).enumerate() {
            if *tokens >= cost {
                *tokens -= cost;
            } else if hit.is_none_or(|h| band.rate > m.bands[h].rate) {
                hit = Some(i);
            }
        }
        let Some(band) = hit.and_then(|i| m.bands.get_mut(i)) else {
            return Some(MeterVerdict::Pass);
        };
        band.packets = band.packets.saturating_add(1);
        band.bytes = band.bytes.saturating_add(bytes);
        Some(match band.kind {
            BandKind::Drop => MeterVerdict::Drop,
            BandKind::DscpRemark { prec_level } => MeterVerdict::Remark { prec_level },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::ZERO;
    const PKTPS: u16 = OFPMF_PKTPS | OFPMF_BURST | OFPMF_STATS;
    const KBPS: u16 = OFPMF_KBPS | OFPMF_BURST;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drop_band(rate: u32, burst: u32) -> Band {
        Band::new(BandKind::Drop, rate, burst)
    }

    /// How many of `n` packets of `bytes` at `now` pass.
    fn passes(t: &mut MeterTable, id: u32, n: usize, bytes: usize, now: Duration) -> usize {
        (0..n)
            .filter(|_| t.admit(id, bytes, now) == Some(MeterVerdict::Pass))
            .count()
    }

    #[test]
    fn pktps_burst_then_refill() {
        let mut t = MeterTable::new();
        t.add(1, PKTPS, vec![drop_band(100, 10)], T0).unwrap();
        // The bucket starts full: 10 of 200 simultaneous packets pass.
        assert_eq!(passes(&mut t, 1, 200, 64, T0), 10);
        // 100 ms at 100 pps refills 10.
        assert_eq!(passes(&mut t, 1, 200, 64, ms(100)), 10);
        // 35 ms: 3.5 packets' worth; the half packet is kept for later.
        assert_eq!(passes(&mut t, 1, 10, 64, ms(135)), 3);
        assert_eq!(passes(&mut t, 1, 10, 64, ms(140)), 1);
        // An hour refills no more than the burst.
        assert_eq!(passes(&mut t, 1, 200, 64, ms(3_600_000)), 10);
        let m = t.get(1).unwrap();
        assert_eq!((m.packets, m.bytes), (620, 620 * 64));
        assert_eq!((m.bands[0].packets, m.bands[0].bytes), (620 - 34, (620 - 34) * 64));
        // A steady 100 pps all pass.
        let start = 4_000_000;
        assert_eq!(
            (0..1000)
                .filter(|i| passes(&mut t, 1, 1, 64, ms(start + i * 10)) == 1)
                .count(),
            1000
        );
    }

    #[test]
    fn kbps_counts_frame_bits() {
        let mut t = MeterTable::new();
        // 1000 kbps, 100 kbit bucket = 12 500 bytes.
        t.add(7, KBPS, vec![drop_band(1000, 100)], T0).unwrap();
        assert_eq!(passes(&mut t, 7, 20, 1000, T0), 12, "12 × 8000 bits fit, 13 do not");
        // 4000 bits left; 8 ms at 1 Mbit/s adds 8000: one more 1000-byte frame.
        assert_eq!(passes(&mut t, 7, 5, 1000, ms(8)), 1);
        // Small frames still fit in what is left (4000 bits = 500 bytes).
        assert_eq!(passes(&mut t, 7, 10, 100, ms(8)), 5);
        // A frame larger than the bucket never passes.
        assert_eq!(passes(&mut t, 7, 1, 12_501, ms(10_000)), 0);
        assert_eq!(passes(&mut t, 7, 1, 12_500, ms(10_000)), 1);
    }

    #[test]
    fn burst_zero_means_one_second_and_flag_is_only_read_back() {
        let mut t = MeterTable::new();
        t.add(1, OFPMF_PKTPS, vec![drop_band(50, 0)], T0).unwrap();
        assert_eq!(passes(&mut t, 1, 100, 64, T0), 50);
        // Without OFPMF_BURST a burst still counts (OVS's datapath).
        t.add(2, OFPMF_PKTPS, vec![drop_band(50, 5)], T0).unwrap();
        assert_eq!(passes(&mut t, 2, 100, 64, T0), 5);
        assert_eq!(t.get(2).unwrap().flags(), OFPMF_PKTPS);
        assert!(!t.get(2).unwrap().burst_flag);
        t.add(3, PKTPS, vec![drop_band(50, 5)], T0).unwrap();
        assert_eq!(t.get(3).unwrap().flags(), PKTPS);
    }

    #[test]
    fn highest_rate_exceeded_band_applies() {
        let mut t = MeterTable::new();
        let bands = vec![
            drop_band(1000, 100),
            Band::new(BandKind::DscpRemark { prec_level: 2 }, 100, 10),
        ];
        t.add(1, PKTPS, bands, T0).unwrap();
        let verdicts: Vec<MeterVerdict> = (0..120).map(|_| t.admit(1, 64, T0).unwrap()).collect();
        // Under both: pass; over the remark band only: remark; over both: the drop
        // band, which has the higher rate. Remarked packets drained the drop band.
        assert!(verdicts[..10].iter().all(|&v| v == MeterVerdict::Pass));
        assert!(
            verdicts[10..100]
                .iter()
                .all(|&v| v == MeterVerdict::Remark { prec_level: 2 })
        );
        assert!(verdicts[100..].iter().all(|&v| v == MeterVerdict::Drop));
        let m = t.get(1).unwrap();
        assert_eq!((m.bands[0].packets, m.bands[1].packets), (20, 90));
    }

    #[test]
    fn validation_matches_ovs() {
        let mut t = MeterTable::new();
        let one = || vec![drop_band(10, 0)];
        assert_eq!(t.add(0, PKTPS, one(), T0), Err(MeterError::InvalidMeter(0)));
        assert_eq!(
            t.add(OFPM_MAX + 1, PKTPS, one(), T0),
            Err(MeterError::InvalidMeter(OFPM_MAX + 1))
        );
        assert_eq!(
            t.add(OFPM_ALL, PKTPS, one(), T0),
            Err(MeterError::InvalidMeter(OFPM_ALL))
        );
        let both = OFPMF_KBPS | OFPMF_PKTPS;
        assert_eq!(t.add(1, both, one(), T0), Err(MeterError::BadFlags(both)));
        assert_eq!(t.add(1, OFPMF_STATS, one(), T0), Err(MeterError::BadFlags(OFPMF_STATS)));
        assert_eq!(
            t.add(1, PKTPS | 0x10, one(), T0),
            Err(MeterError::BadFlags(PKTPS | 0x10))
        );
        assert_eq!(t.add(1, PKTPS, vec![], T0), Err(MeterError::NoBands));
        assert_eq!(
            t.add(1, PKTPS, vec![drop_band(1, 1); MAX_BANDS + 1], T0),
            Err(MeterError::OutOfBands)
        );
        assert_eq!(t.add(1, PKTPS, vec![drop_band(0, 1)], T0), Err(MeterError::BadRate));
        let no_op = Band::new(BandKind::DscpRemark { prec_level: 0 }, 10, 0);
        assert_eq!(t.add(1, PKTPS, vec![no_op], T0), Err(MeterError::BadBandValue));
        assert_eq!(BandKind::from_ofp(0xffff, 0), Err(MeterError::BadBand(0xffff)));
        assert_eq!(
            BandKind::from_ofp(OFPMBT_DSCP_REMARK, 3).map(BandKind::ofp_type),
            Ok(OFPMBT_DSCP_REMARK)
        );
        assert!(t.is_empty(), "a refused add installs nothing");
        assert_eq!(t.modify(1, PKTPS, one(), T0), Err(MeterError::Unknown(1)));
        // The virtual meters are meters.
        t.add(OFPM_CONTROLLER, PKTPS, one(), T0).unwrap();
        t.add(OFPM_SLOWPATH, PKTPS, one(), T0).unwrap();
        t.add(OFPM_MAX, OFPMF_KBPS, vec![drop_band(1, 1); MAX_BANDS], T0)
            .unwrap();
        assert_eq!(t.add(OFPM_MAX, PKTPS, one(), T0), Err(MeterError::Exists(OFPM_MAX)));
        assert_eq!(MeterError::Exists(1).ofp_error(), (12, 1));
        assert_eq!(MeterError::NoBands.ofp_error(), (12, 11));
        assert_eq!(FEATURES.band_types, 0b110);
    }

    #[test]
    fn out_of_meters() {
        let mut t = MeterTable::new();
        for id in 1..=MAX_METERS as u32 {
            t.add(id, PKTPS, vec![drop_band(1, 1)], T0).unwrap();
        }
        let next = MAX_METERS as u32 + 1;
        assert_eq!(
            t.add(next, PKTPS, vec![drop_band(1, 1)], T0),
            Err(MeterError::OutOfMeters)
        );
        assert_eq!(t.delete(5), vec![5]);
        t.add(next, PKTPS, vec![drop_band(1, 1)], T0).unwrap();
    }

    #[test]
    fn modify_refills_and_resets_counters_delete_returns_ids() {
        let mut t = MeterTable::new();
        t.add(3, PKTPS, vec![drop_band(10, 2)], ms(500)).unwrap();
        assert_eq!(passes(&mut t, 3, 5, 64, ms(500)), 2);
        t.modify(3, KBPS, vec![drop_band(8, 8)], ms(600)).unwrap();
        let m = t.get(3).unwrap();
        assert_eq!((m.unit, m.packets, m.bands[0].packets), (MeterUnit::Kbps, 0, 0));
        assert_eq!(m.installed, ms(500), "a modify keeps the creation time");
        // Full again: 8 kbit = 1000 bytes.
        assert_eq!(passes(&mut t, 3, 5, 500, ms(600)), 2);
        t.add(1, PKTPS, vec![drop_band(1, 1)], T0).unwrap();
        t.add(2, PKTPS, vec![drop_band(1, 1)], T0).unwrap();
        assert_eq!(t.iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(t.delete(0), Vec::<u32>::new());
        assert_eq!(t.delete(9), Vec::<u32>::new());
        assert_eq!(t.delete(2), vec![2]);
        assert_eq!(t.delete(OFPM_ALL), vec![1, 3]);
        assert_eq!(t.admit(1, 64, T0), None, "no meter");
    }

    #[test]
    fn rules_using_meters() {
        let mut t = MeterTable::new();
        t.add(1, PKTPS, vec![drop_band(1, 1)], T0).unwrap();
        let rule = |meter| {
            let mut r = Rule::new(1, crate::flow::Match::any(), vec![]);
            r.instructions.meter = meter;
            r
        };
        let rules = [rule(Some(1)), rule(Some(1)), rule(Some(2)), rule(None)];
        assert_eq!(t.check_rule(&rules[0]), Ok(()));
        assert_eq!(t.check_rule(&rules[2]), Err(MeterError::InvalidMeter(2)));
        assert_eq!(t.check_rule(&rules[3]), Ok(()));
        let counts = flow_counts(&rules);
        assert_eq!((counts.get(&1), counts.get(&2), counts.len()), (Some(&2), Some(&1), 2));
        assert!(refers_to(&rules[0], &[1]) && !refers_to(&rules[2], &[1]) && !refers_to(&rules[3], &[1]));
    }

    mod random_traffic {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Whatever the rate, burst and arrival times: no more passes than the
            /// bucket held plus what the rate refilled, and every packet is counted once.
            #[test]
            fn passes_at_most_burst_plus_rate(
                rate in 1u32..5000,
                burst in 0u32..200,
                kbps: bool,
                gaps in prop::collection::vec((0u64..5_000_000, 0usize..2000), 1..300),
            ) {
                let mut t = MeterTable::new();
                let flags = if kbps { OFPMF_KBPS } else { OFPMF_PKTPS };
                t.add(1, flags, vec![drop_band(rate, burst)], T0).unwrap();
                let mut now = T0;
                let mut passed_units = 0u128; // bits or packets
                let mut passes = 0u64;
                for &(gap_ns, bytes) in &gaps {
                    now += Duration::from_nanos(gap_ns);
                    if t.admit(1, bytes, now) == Some(MeterVerdict::Pass) {
                        passes += 1;
                        passed_units += if kbps { bytes as u128 * 8 } else { 1 };
                    }
                }
                let size = u128::from(if burst == 0 { rate } else { burst });
                let (size, per_sec) = if kbps { (size * 1000, u128::from(rate) * 1000) } else { (size, u128::from(rate)) };
                let allowed = size + per_sec * now.as_nanos() / 1_000_000_000;
                prop_assert!(passed_units <= allowed, "{passed_units} > {allowed}");
                let m = t.get(1).unwrap();
                prop_assert_eq!(m.packets, gaps.len() as u64);
                prop_assert_eq!(m.bands[0].packets + passes, gaps.len() as u64);
            }
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let mut t = MeterTable::new();
        let big = Band::new(BandKind::Drop, u32::MAX, u32::MAX);
        t.add(1, KBPS, vec![big.clone()], Duration::MAX).unwrap();
        t.add(2, PKTPS, vec![big], T0).unwrap();
        assert_eq!(t.admit(1, usize::MAX, Duration::MAX), Some(MeterVerdict::Drop));
        assert_eq!(t.admit(1, 0, T0), Some(MeterVerdict::Pass), "time going back");
        assert_eq!(t.admit(2, usize::MAX, Duration::MAX), Some(MeterVerdict::Pass));
        assert_eq!(t.get(1).unwrap().bytes, u64::MAX);
        // Time going back refills nothing and does not move the clock back.
        t.add(3, PKTPS, vec![drop_band(1000, 1)], ms(100)).unwrap();
        assert_eq!(passes(&mut t, 3, 2, 64, ms(100)), 1);
        assert_eq!(passes(&mut t, 3, 2, 64, ms(50)), 0);
        assert_eq!(passes(&mut t, 3, 2, 64, ms(100)), 0);
        assert_eq!(passes(&mut t, 3, 2, 64, ms(101)), 1);
    }
}
