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
    /// Packets to send before stopping (`count=<N>[k|M|G]`); `None` = no end.
    pub count: Option<u64>,
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
            count: None,
        }
    }
}

/// How a pcap input port paces its packets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PcapTiming {
    /// As fast as the manager polls (`timing=fast`, the default): for throughput tests.
    #[default]
    Fast,
    /// Keep the capture's inter-packet gaps (`timing=file`): for replaying real traffic.
    File,
}

/// Settings of a pcap input port: `pcap:FILE[,loop|,once][,timing=fast|file]`.
///
/// Options are recognised only at the end of the argument, so a file name may contain
/// commas as long as its last part is not itself an option word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapInSpec {
    /// The capture (classic pcap, Ethernet link type).
    pub path: PathBuf,
    /// Start again from the first packet at the end of the file (`loop`) instead of
    /// stopping (`once`, the default).
    pub repeat: bool,
    /// Pacing.
    pub timing: PcapTiming,
}

impl PcapInSpec {
    /// Read `path` once, at top speed.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PcapInSpec {
            path: path.into(),
            repeat: false,
            timing: PcapTiming::Fast,
        }
    }
}

/// A port backend and its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `gen[:items]`: built-in traffic generator.
    Gen(GenSpec),
    /// `pcap:FILE[,loop][,timing=file]`: replay a capture.
    PcapIn(PcapInSpec),
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
    let (mut size, mut flows, mut rate, mut count) = (false, false, false, false);
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
        } else if let Some(v) = item.strip_prefix("count=") {
            dup(&mut count)?;
            g.count = Some(parse_rate(v).ok_or_else(|| format!("count {v:?} must be a positive number, e.g. 10M"))?);
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
                "unknown generator setting {item:?} (expected <N>B, <N>flows, rate=<N> or count=<N>)"
            ));
        }
    }
    Ok(g)
}

/// Split trailing options off a `pcap:` argument (see [`PcapInSpec`]).
fn parse_pcap_in(arg: &str) -> Result<PcapInSpec, String> {
    let mut rest = arg;
    let (mut repeat, mut timing) = (None, None);
    while let Some((head, item)) = rest.rsplit_once(',') {
        let dup = |seen: bool| {
            if seen {
                Err(format!("{item:?} repeats a setting"))
            } else {
                Ok(())
            }
        };
        match item {
            "loop" | "once" => {
                dup(repeat.is_some())?;
                repeat = Some(item == "loop");
            }
            _ => match item.strip_prefix("timing=") {
                Some(v) => {
                    dup(timing.is_some())?;
                    timing = Some(match v {
                        "fast" => PcapTiming::Fast,
                        "file" => PcapTiming::File,
                        _ => return Err(format!("timing {v:?} must be \"fast\" or \"file\"")),
                    });
                }
                // Not an option: the rest, commas included, is the file name.
                None => break,
            },
        }
        rest = head;
    }
    if rest.is_empty() {
        return Err("pcap needs a file after \"pcap:\"".into());
    }
    Ok(PcapInSpec {
        path: rest.into(),
        repeat: repeat.unwrap_or(false),
        timing: timing.unwrap_or_default(),
    })
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
            "pcap" => parse_pcap_in(need("a file")?).map(PortSpec::PcapIn).map_err(err),
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
                if let Some(c) = g.count {
                    write!(f, ",count={c}")?;
                }
                Ok(())
            }
            PortSpec::PcapIn(p) => {
                write!(f, "pcap:{}", p.path.display())?;
                if p.repeat {
                    f.write_str(",loop")?;
                }
                if p.timing == PcapTiming::File {
                    f.write_str(",timing=file")?;
                }
                Ok(())
            }
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
                rate_pps: None,
                count: None
            }))
        );
        assert_eq!(
            "gen:rate=5M,1500B".parse(),
            Ok(PortSpec::Gen(GenSpec {
                frame_size: 1500,
                flows: 1,
                rate_pps: Some(5_000_000),
                count: None
            }))
        );
        assert_eq!("gen".parse(), Ok(PortSpec::Gen(GenSpec::default())));
        assert_eq!("pcap:in.pcap".parse(), Ok(PortSpec::PcapIn(PcapInSpec::new("in.pcap"))));
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
        assert!(reason("gen:count=x").contains("count"));
        assert_eq!(
            "gen:64B,count=10k".parse::<PortSpec>().unwrap().to_string(),
            "gen:64B,1flows,count=10000"
        );
        assert!(reason("gen:64B,128B").contains("repeats"));
        assert!(reason("gen:jumbo").contains("unknown generator setting"));
        assert!(reason("pcap:").contains("needs a file"));
        assert!(reason("pcap").contains("needs a file"));
        assert!(reason("null:x").contains("no argument"));
        assert!(reason("afxdp:averyveryverylongname").contains("interface name"));
        assert!(reason("dpdk:0000:01:00.0").contains("unknown port kind \"dpdk\""));
        assert!(reason("pcap:,loop").contains("needs a file"));
        assert!(reason("pcap:a.pcap,loop,once").contains("repeats"));
        assert!(reason("pcap:a.pcap,timing=slow").contains("timing \"slow\""));
        let e = "foo".parse::<PortSpec>().unwrap_err();
        assert_eq!(e.spec, "foo");
        assert!(e.to_string().starts_with("bad port spec \"foo\""));
    }

    #[test]
    fn pcap_in_options() {
        let spec = |s: &str| match s.parse::<PortSpec>() {
            Ok(PortSpec::PcapIn(p)) => p,
            other => panic!("{s}: {other:?}"),
        };
        let p = spec("pcap:/tmp/a.pcap,loop,timing=file");
        assert_eq!(p.path, PathBuf::from("/tmp/a.pcap"));
        assert!(p.repeat);
        assert_eq!(p.timing, PcapTiming::File);
        let p = spec("pcap:a.pcap,timing=fast,once");
        assert_eq!((p.repeat, p.timing), (false, PcapTiming::Fast));
        // A comma that does not start an option belongs to the file name.
        assert_eq!(spec("pcap:run,2.pcap,loop").path, PathBuf::from("run,2.pcap"));
        for s in [
            "pcap:a.pcap",
            "pcap:a.pcap,loop",
            "pcap:a.pcap,timing=file",
            "pcap:a.pcap,loop,timing=file",
        ] {
            assert_eq!(s.parse::<PortSpec>().unwrap().to_string(), s);
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(size in GenSpec::MIN_FRAME..=GenSpec::MAX_FRAME, flows in 1u32.., rate in proptest::option::of(1u64..u64::MAX / 2)) {
            let spec = PortSpec::Gen(GenSpec { frame_size: size, flows, rate_pps: rate, count: None });
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
