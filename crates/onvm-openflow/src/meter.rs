//! METER_MOD and the meter parts of MULTIPART: a meter measures the rate of the
//! packets a flow sends through it (METER instruction) and, over a band's rate, drops
//! them or raises their drop precedence (DSCP remark).
//!
//! Decoding checks what the message alone can say: a known command
//! (`OFPMMFC_BAD_COMMAND`), flags (`OFPMMFC_BAD_FLAGS`: unknown bits, or both KBPS and
//! PKTPS, as Open vSwitch answers), a meter id that names a meter
//! (`OFPMMFC_INVALID_METER`: 0 and the reserved ids; [`OFPM_ALL`] only deletes) and
//! bands of a known type and length (`OFPMMFC_BAD_BAND`: experimenter bands are not
//! supported). Whether the meter exists or the rates are possible is for the meter
//! table to say.

use crate::error::{ErrorKind, OfpError, ofpet, ofpmmfc};
use crate::wire::{Reader, Writer};

/// Highest meter id a controller may use for a meter of its own.
pub const OFPM_MAX: u32 = 0xffff_0000;
/// The virtual meter of the slow datapath.
pub const OFPM_SLOWPATH: u32 = 0xffff_fffd;
/// The virtual meter of packets sent to the controller.
pub const OFPM_CONTROLLER: u32 = 0xffff_fffe;
/// "All meters", in a meter delete or a stats / config request.
pub const OFPM_ALL: u32 = 0xffff_ffff;

/// `ofp_meter_mod_command` values.
pub mod ofpmc {
    pub const ADD: u16 = 0;
    pub const MODIFY: u16 = 1;
    pub const DELETE: u16 = 2;
}

/// `ofp_meter_flags` bits.
pub mod ofpmf {
    /// Rates in kb/s.
    pub const KBPS: u16 = 1 << 0;
    /// Rates in packets/s.
    pub const PKTPS: u16 = 1 << 1;
    /// `burst_size` of the bands applies.
    pub const BURST: u16 = 1 << 2;
    /// Keep statistics.
    pub const STATS: u16 = 1 << 3;
    /// Every flag 1.3 defines.
    pub const ALL: u16 = 0xf;
}

/// `ofp_meter_band_type` values.
pub mod ofpmbt {
    pub const DROP: u16 = 1;
    pub const DSCP_REMARK: u16 = 2;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// `ofp_meter_mod_command`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterModCommand {
    Add = 0,
    Modify = 1,
    Delete = 2,
}

/// What a band does to packets over its rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterBandKind {
    Drop,
    /// Raise the drop precedence of the DSCP by `prec_level`.
    DscpRemark {
        prec_level: u8,
    },
}

/// `ofp_meter_band_drop` / `ofp_meter_band_dscp_remark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MeterBand {
    pub kind: MeterBandKind,
    /// In kb/s or packets/s, as the meter's flags say.
    pub rate: u32,
    /// In kilobits or packets; used with [`ofpmf::BURST`].
    pub burst_size: u32,
}

/// `ofp_meter_mod` (after the header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterMod {
    pub command: MeterModCommand,
    /// [`ofpmf`] bits.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

/// `ofp_meter_band_stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MeterBandStats {
    pub packet_band_count: u64,
    pub byte_band_count: u64,
}

/// `ofp_meter_stats`: one meter's counters (MULTIPART METER).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterStats {
    pub meter_id: u32,
    /// Flows that use the meter.
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    /// One per band, in band order.
    pub band_stats: Vec<MeterBandStats>,
}

/// `ofp_meter_config`: one meter as configured (MULTIPART METER_CONFIG).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// [`ofpmf`] bits.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand>,
}

/// `ofp_meter_features` (MULTIPART METER_FEATURES).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MeterFeatures {
    /// Most meters.
    pub max_meter: u32,
    /// Bit `1 << t` for each supported [`ofpmbt`] type `t`.
    pub band_types: u32,
    /// [`ofpmf`] bits supported.
    pub capabilities: u32,
    /// Most bands per meter.
    pub max_bands: u8,
    /// Most colours (drop precedences) of a DSCP remark.
    pub max_color: u8,
}

/// The length of every band this codec knows.
const BAND_LEN: usize = 16;
/// `ofp_meter_stats` before its band counters, and one counter.
const METER_STATS_FIXED_LEN: usize = 40;
const BAND_STATS_LEN: usize = 16;
/// `ofp_meter_config` before its bands.
const METER_CONFIG_FIXED_LEN: usize = 8;

fn meter_error(code: u16, message: String) -> OfpError {
    OfpError::of(ofpet::METER_MOD_FAILED, code, message)
}

const BAD_BAND: ErrorKind = ErrorKind::new(ofpet::METER_MOD_FAILED, ofpmmfc::BAD_BAND);

impl MeterBand {
    /// Reads one band: a type this switch knows, of exactly its length (a band that
    /// does not add up is `OFPMMFC_BAD_BAND`, there being no BAD_LEN of its own).
    fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let ty = r.u16()?;
        let len = usize::from(r.u16()?);
        if ty != ofpmbt::DROP && ty != ofpmbt::DSCP_REMARK {
            return Err(meter_error(
                ofpmmfc::BAD_BAND,
                format!("meter band type {ty:#x} is not supported (drop and dscp_remark are)"),
            ));
        }
        if len != BAND_LEN || len - 4 > r.remaining() {
            return Err(r.short_error(format_args!(
                "meter band length {len}, needs {BAND_LEN} within the {} bytes left",
                r.remaining() + 4
            )));
        }
        let mut b = r.sub(len - 4, BAD_BAND, "meter band")?;
        let rate = b.u32()?;
        let burst_size = b.u32()?;
        let kind = if ty == ofpmbt::DROP {
            MeterBandKind::Drop
        } else {
            MeterBandKind::DscpRemark { prec_level: b.u8()? }
        };
        Ok(MeterBand { kind, rate, burst_size })
    }

    /// Reads the bands that fill `bytes`.
    pub(crate) fn decode_list(bytes: &[u8]) -> Result<Vec<MeterBand>, OfpError> {
        let mut r = Reader::new(bytes, BAD_BAND, "meter band");
        let mut out = Vec::new();
        while !r.is_empty() {
            out.push(MeterBand::decode(&mut r)?);
        }
        Ok(out)
    }

    fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        w.u16(match self.kind {
            MeterBandKind::Drop => ofpmbt::DROP,
            MeterBandKind::DscpRemark { .. } => ofpmbt::DSCP_REMARK,
        });
        let at = w.len_placeholder();
        w.u32(self.rate);
        w.u32(self.burst_size);
        match self.kind {
            MeterBandKind::Drop => w.zeros(4),
            MeterBandKind::DscpRemark { prec_level } => {
                w.u8(prec_level);
                w.zeros(3);
            }
        }
        w.patch_len(at, start);
    }

    pub(crate) fn encode_list(bands: &[MeterBand], w: &mut Writer) {
        bands.iter().for_each(|b| b.encode(w));
    }
}

impl MeterMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let command = match r.u16()? {
            ofpmc::ADD => MeterModCommand::Add,
            ofpmc::MODIFY => MeterModCommand::Modify,
            ofpmc::DELETE => MeterModCommand::Delete,
            other => {
                return Err(meter_error(
                    ofpmmfc::BAD_COMMAND,
                    format!("unknown meter-mod command {other}"),
                ));
            }
        };
        let flags = r.u16()?;
        let meter_id = r.u32()?;
        let deletes = command == MeterModCommand::Delete;
        if flags & !ofpmf::ALL != 0 || (!deletes && flags & ofpmf::KBPS != 0 && flags & ofpmf::PKTPS != 0) {
            return Err(meter_error(
                ofpmmfc::BAD_FLAGS,
                format!("meter flags {flags:#06x}: unknown bits, or both KBPS and PKTPS"),
            ));
        }
        let valid =
            matches!(meter_id, 1..=OFPM_MAX | OFPM_SLOWPATH | OFPM_CONTROLLER) || (deletes && meter_id == OFPM_ALL);
        if !valid {
            return Err(meter_error(
                ofpmmfc::INVALID_METER,
                format!("meter id {meter_id:#x} is not a meter (1 to {OFPM_MAX:#x}, or a virtual one)"),
            ));
        }
        Ok(MeterMod {
            command,
            flags,
            meter_id,
            bands: MeterBand::decode_list(r.rest())?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(self.command as u16);
        w.u16(self.flags);
        w.u32(self.meter_id);
        MeterBand::encode_list(&self.bands, w);
    }
}

impl MeterStats {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let mut head = r.clone();
        head.skip(4)?;
        let len = usize::from(head.u16()?);
        if len < METER_STATS_FIXED_LEN || !(len - METER_STATS_FIXED_LEN).is_multiple_of(BAND_STATS_LEN) {
            return Err(r.short_error(format_args!(
                "meter stats entry length {len} is not {METER_STATS_FIXED_LEN} plus 16 per band"
            )));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "meter stats entry")?;
        let meter_id = e.u32()?;
        e.skip(8)?;
        let mut stats = MeterStats {
            meter_id,
            flow_count: e.u32()?,
            packet_in_count: e.u64()?,
            byte_in_count: e.u64()?,
            duration_sec: e.u32()?,
            duration_nsec: e.u32()?,
            band_stats: Vec::new(),
        };
        while !e.is_empty() {
            stats.band_stats.push(MeterBandStats {
                packet_band_count: e.u64()?,
                byte_band_count: e.u64()?,
            });
        }
        Ok(stats)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        w.u32(self.meter_id);
        let at = w.len_placeholder();
        w.zeros(6);
        w.u32(self.flow_count);
        w.u64(self.packet_in_count);
        w.u64(self.byte_in_count);
        w.u32(self.duration_sec);
        w.u32(self.duration_nsec);
        for b in &self.band_stats {
            w.u64(b.packet_band_count);
            w.u64(b.byte_band_count);
        }
        w.patch_len(at, start);
    }
}

impl MeterConfig {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let len = usize::from(r.clone().u16()?);
        if len < METER_CONFIG_FIXED_LEN {
            return Err(r.short_error(format_args!("meter config entry length {len} is too short")));
        }
        let mut e = r.sub(len, ErrorKind::BAD_REQUEST_LEN, "meter config entry")?;
        e.skip(2)?;
        Ok(MeterConfig {
            flags: e.u16()?,
            meter_id: e.u32()?,
            bands: MeterBand::decode_list(e.rest())?,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        let start = w.pos();
        let at = w.len_placeholder();
        w.u16(self.flags);
        w.u32(self.meter_id);
        MeterBand::encode_list(&self.bands, w);
        w.patch_len(at, start);
    }
}

impl MeterFeatures {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let features = MeterFeatures {
            max_meter: r.u32()?,
            band_types: r.u32()?,
            capabilities: r.u32()?,
            max_bands: r.u8()?,
            max_color: r.u8()?,
        };
        r.skip(2)?;
        Ok(features)
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u32(self.max_meter);
        w.u32(self.band_types);
        w.u32(self.capabilities);
        w.u8(self.max_bands);
        w.u8(self.max_color);
        w.zeros(2);
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::{hex, round_trip};
    use crate::*;

    /// `ofp_meter_mod` with a drop and a DSCP remark band, as the spec lays them out.
    #[test]
    fn meter_mod_layout() {
        let m = Message::MeterMod(MeterMod {
            command: MeterModCommand::Add,
            flags: ofpmf::PKTPS | ofpmf::BURST,
            meter_id: 1,
            bands: vec![
                MeterBand {
                    kind: MeterBandKind::Drop,
                    rate: 1000,
                    burst_size: 100,
                },
                MeterBand {
                    kind: MeterBandKind::DscpRemark { prec_level: 2 },
                    rate: 10,
                    burst_size: 0,
                },
            ],
        });
        let want = hex("04 1d 00 30 00 00 00 05  00 00 00 06 00 00 00 01
             00 01 00 10 00 00 03 e8 00 00 00 64 00 00 00 00
             00 02 00 10 00 00 00 0a 00 00 00 00 02 00 00 00");
        assert_eq!(round_trip(&m, 5), want);
    }

    #[test]
    fn meter_stats_config_and_features_layouts() {
        let stats = Message::MultipartReply(MultipartReply {
            flags: OFPMPF_MORE,
            body: MultipartReplyBody::Meter(vec![MeterStats {
                meter_id: 1,
                flow_count: 2,
                packet_in_count: 3,
                byte_in_count: 4,
                duration_sec: 5,
                duration_nsec: 6,
                band_stats: vec![MeterBandStats {
                    packet_band_count: 7,
                    byte_band_count: 8,
                }],
            }]),
        });
        let want = hex("04 13 00 48 00 00 00 01  00 09 00 01 00 00 00 00
             00 00 00 01 00 38 00 00 00 00 00 00 00 00 00 02
             00 00 00 00 00 00 00 03 00 00 00 00 00 00 00 04
             00 00 00 05 00 00 00 06
             00 00 00 00 00 00 00 07 00 00 00 00 00 00 00 08");
        assert_eq!(round_trip(&stats, 1), want);
        let config = Message::MultipartReply(MultipartReply {
            flags: 0,
            body: MultipartReplyBody::MeterConfig(vec![MeterConfig {
                flags: ofpmf::KBPS,
                meter_id: 3,
                bands: vec![MeterBand {
                    kind: MeterBandKind::Drop,
                    rate: 1,
                    burst_size: 2,
                }],
            }]),
        });
        let want = hex("04 13 00 28 00 00 00 01  00 0a 00 00 00 00 00 00
             00 18 00 01 00 00 00 03
             00 01 00 10 00 00 00 01 00 00 00 02 00 00 00 00");
        assert_eq!(round_trip(&config, 1), want);
        let features = Message::MultipartReply(MultipartReply {
            flags: 0,
            body: MultipartReplyBody::MeterFeatures(MeterFeatures {
                max_meter: 1024,
                band_types: 6,
                capabilities: 0xf,
                max_bands: 2,
                max_color: 0,
            }),
        });
        let want = hex("04 13 00 20 00 00 00 01  00 0b 00 00 00 00 00 00
             00 00 04 00 00 00 00 06 00 00 00 0f 02 00 00 00");
        assert_eq!(round_trip(&features, 1), want);
    }
}
