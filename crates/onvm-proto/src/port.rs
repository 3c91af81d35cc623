//! Port specs: the short strings that name a port backend (`gen:64B,1000flows`,
//! `pcap:in.pcap`, `afxdp:veth0`, ...).
//!
//! One string per port keeps the CLI and the config file identical and greppable.
//! Parsing lives here, apart from the backends, so `onvm up` can reject a typo before it
//! starts anything, and so [`PortSpec`]'s `Display` gives back a string that parses to
//! the same spec (tests check the round trip).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use thiserror::Error;

/// Longest interface name Linux accepts (`IFNAMSIZ - 1`).
const MAX_IFNAME: usize = 15;

/// Settings of the built-in traffic generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenSpec {
    /// Frame size in bytes, FCS included as in the usual "64B" (`<N>B`).
    pub frame_size: u16,
    /// Number of distinct flows cycled through (`<N>flows`).
    pub flows: u32,
    /// Packets per second (`rate=<N>[k|M|G]`); `None` = as fast as possible.
    pub rate_pps: Option<u64>,
}

impl GenSpec {
    /// Smallest Ethernet frame (with FCS).
    pub const MIN_FRAME: u16 = 64;
    /// Largest jumbo frame accepted.
    pub const MAX_FRAME: u16 = 9216;
}

impl Default for GenSpec {
    fn default() -> Self {
        GenSpec {
            frame_size: 64,
            flows: 1,
            rate_pps: None,
        }
    }
}

/// A port backend and its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `gen[:items]`: built-in traffic generator.
    Gen(GenSpec),
    /// `pcap:FILE`: replay a capture.
    PcapIn(PathBuf),
    /// `pcapout:FILE`: write what is sent to a capture.
    PcapOut(PathBuf),
    /// `null`: receives nothing, drops what is sent.
    Null,
    /// `afpacket:IFACE`: Linux AF_PACKET (TPACKET_V3).
    AfPacket(String),
    /// `afxdp:IFACE`: AF_XDP with the packet region as UMEM.
    AfXdp(String),
    /// `tap:NAME`: a TAP device.
    Tap(String),
}

/// A port spec that does not parse; the message names the spec and the problem.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("bad port spec {spec:?}: {reason}")]
pub struct PortSpecError {
    /// The whole spec.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

fn parse_rate(v: &str) -> Option<u64> {
    let (num, mul) = match v.as_bytes().last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1_000),
        b'M' => (&v[..v.len() - 1], 1_000_000),
        b'G' => (&v[..v.len() - 1], 1_000_000_000),
        _ => (v, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul).filter(|&r| r > 0)
}

fn parse_gen(args: &str) -> Result<GenSpec, String> {
    let mut g = GenSpec::default();
    let (mut size, mut flows, mut rate) = (false, false, false);
    for item in args.split(',').filter(|i| !i.is_empty()) {
        let dup = |seen: &mut bool| {
            if std::mem::replace(seen, true) {
                Err(format!("{item:?} repeats a setting"))
            } else {
                Ok(())
            }
        };
        if let Some(v) = item.strip_prefix("rate=") {
            dup(&mut rate)?;
            g.rate_pps = Some(
                parse_rate(v).ok_or_else(|| format!("rate {v:?} must be a positive number of packets/s, e.g. 5M"))?,
            );
        } else if let Some(v) = item.strip_suffix("flows") {
            dup(&mut flows)?;
            g.flows = v
                .parse()
                .ok()
                .filter(|&f| f > 0)
                .ok_or_else(|| format!("flow count {v:?} must be a positive number"))?;
        } else if let Some(v) = item.strip_suffix('B') {
            dup(&mut size)?;
            g.frame_size = v
                .parse()
                .ok()
                .filter(|s| (GenSpec::MIN_FRAME..=GenSpec::MAX_FRAME).contains(s))
                .ok_or_else(|| {
                    format!(
                        "frame size {v:?} must be {}..={} bytes",
                        GenSpec::MIN_FRAME,
                        GenSpec::MAX_FRAME
                    )
                })?;
        } else {
            return Err(format!(
                "unknown generator setting {item:?} (expected <N>B, <N>flows or rate=<N>)"
            ));
        }
    }
    Ok(g)
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(s: &str) -> Result<Self, PortSpecError> {
        let err = |reason: String| PortSpecError {
            spec: s.to_string(),
            reason,
        };
        let (kind, arg) = match s.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (s, None),
        };
        let need = |what: &str| match arg {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(err(format!("{kind} needs {what} after \"{kind}:\""))),
        };
        let iface = |what: &str| {
            let a = need(what)?;
            if a.len() > MAX_IFNAME || a.contains(['/', ' ']) {
                return Err(err(format!(
                    "{a:?} is not a valid interface name (at most {MAX_IFNAME} bytes, no '/' or space)"
                )));
            }
            Ok(a.to_string())
        };
        match kind {
            "gen" => parse_gen(arg.unwrap_or("")).map(PortSpec::Gen).map_err(err),
            "pcap" => Ok(PortSpec::PcapIn(need("a file")?.into())),
            "pcapout" => Ok(PortSpec::PcapOut(need("a file")?.into())),
            "null" if arg.is_none() => Ok(PortSpec::Null),
            "null" => Err(err("null takes no argument".into())),
            "afpacket" => Ok(PortSpec::AfPacket(iface("an interface")?)),
            "afxdp" => Ok(PortSpec::AfXdp(iface("an interface")?)),
            "tap" => Ok(PortSpec::Tap(iface("a device name")?)),
            _ => Err(err(format!(
                "unknown port kind {kind:?} (expected gen, pcap, pcapout, null, afpacket, afxdp or tap)"
            ))),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Gen(g) => {
                write!(f, "gen:{}B,{}flows", g.frame_size, g.flows)?;
                if let Some(r) = g.rate_pps {
                    write!(f, ",rate={r}")?;
                }
                Ok(())
            }
            PortSpec::PcapIn(p) => write!(f, "pcap:{}", p.display()),
            PortSpec::PcapOut(p) => write!(f, "pcapout:{}", p.display()),
            PortSpec::Null => f.write_str("null"),
            PortSpec::AfPacket(i) => write!(f, "afpacket:{i}"),
            PortSpec::AfXdp(i) => write!(f, "afxdp:{i}"),
            PortSpec::Tap(i) => write!(f, "tap:{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reason(s: &str) -> String {
        s.parse::<PortSpec>().unwrap_err().reason
    }

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            "gen:64B,1000flows".parse(),
            Ok(PortSpec::Gen(GenSpec {
                frame_size: 64,
                flows: 1000,
                rate_pps: None
            }))
        );
        assert_eq!(
            "gen:rate=5M,1500B".parse(),
            Ok(PortSpec::Gen(GenSpec {
                frame_size: 1500,
                flows: 1,
                rate_pps: Some(5_000_000)
            }))
        );
        assert_eq!("gen".parse(), Ok(PortSpec::Gen(GenSpec::default())));
        assert_eq!("pcap:in.pcap".parse(), Ok(PortSpec::PcapIn("in.pcap".into())));
        assert_eq!(
            "pcapout:/tmp/o.pcap".parse(),
            Ok(PortSpec::PcapOut("/tmp/o.pcap".into()))
        );
        assert_eq!("null".parse(), Ok(PortSpec::Null));
        assert_eq!("afxdp:veth0".parse(), Ok(PortSpec::AfXdp("veth0".into())));
        assert_eq!("afpacket:eth1".parse(), Ok(PortSpec::AfPacket("eth1".into())));
        assert_eq!("tap:tap0".parse(), Ok(PortSpec::Tap("tap0".into())));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(reason("gen:10B").contains("frame size"));
        assert!(reason("gen:0flows").contains("flow count"));
        assert!(reason("gen:rate=fast").contains("rate"));
        assert!(reason("gen:64B,128B").contains("repeats"));
        assert!(reason("gen:jumbo").contains("unknown generator setting"));
        assert!(reason("pcap:").contains("needs a file"));
        assert!(reason("pcap").contains("needs a file"));
        assert!(reason("null:x").contains("no argument"));
        assert!(reason("afxdp:averyveryverylongname").contains("interface name"));
        assert!(reason("dpdk:0000:01:00.0").contains("unknown port kind \"dpdk\""));
        let e = "foo".parse::<PortSpec>().unwrap_err();
        assert_eq!(e.spec, "foo");
        assert!(e.to_string().starts_with("bad port spec \"foo\""));
    }

    proptest! {
        #[test]
        fn display_round_trips(size in GenSpec::MIN_FRAME..=GenSpec::MAX_FRAME, flows in 1u32.., rate in proptest::option::of(1u64..u64::MAX / 2)) {
            let spec = PortSpec::Gen(GenSpec { frame_size: size, flows, rate_pps: rate });
            prop_assert_eq!(spec.to_string().parse::<PortSpec>(), Ok(spec));
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            if let Ok(spec) = s.parse::<PortSpec>() {
                prop_assert_eq!(spec.to_string().parse::<PortSpec>(), Ok(spec));
            }
        }
    }
}
