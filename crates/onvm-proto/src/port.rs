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
    /// Highest `rate=` accepted, packets/s: far above what any link carries (400 Gb/s
    /// is 595 Mpps of 64-byte frames); more is a typo, not a wish.
    pub const MAX_RATE_PPS: u64 = 10_000_000_000;
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

/// Settings of a capture output port: `pcapout:FILE[,count=N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapOutSpec {
    /// The capture written.
    pub path: PathBuf,
    /// Write the first `count` packets only (as `tcpdump -c`); the rest are sent on
    /// without being written, so a long run leaves a bounded file.
    pub count: Option<u64>,
}

impl PcapOutSpec {
    /// Write every packet to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PcapOutSpec {
            path: path.into(),
            count: None,
        }
    }
}

/// `FILE[,count=N]`.
fn parse_pcap_out(arg: &str) -> Result<PcapOutSpec, String> {
    let Some((path, v)) = arg.rsplit_once(",count=") else {
        return Ok(PcapOutSpec::new(arg));
    };
    let count = v
        .parse::<u64>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("count {v:?} must be a number of packets, 1 or more"))?;
    if path.is_empty() {
        return Err("pcapout needs a file before \",count=\"".into());
    }
    Ok(PcapOutSpec {
        path: path.into(),
        count: Some(count),
    })
}

/// How an AF_XDP port binds its sockets (`mode=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Zero-copy when the driver has it, else copy (`mode=auto`, the default).
    #[default]
    Auto,
    /// Always copy mode (`mode=copy`).
    Copy,
    /// Zero-copy or fail (`mode=zc`).
    ZeroCopy,
}

/// A port on a kernel network interface (`afpacket:`, `afxdp:`, `tap:`) and its options:
/// `NAME[,queues=N][,promisc=on|off][,mtu=N][,mac=XX:XX:XX:XX:XX:XX][,mode=auto|copy|zc]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfaceSpec {
    /// The interface (for TAP: the interface the port creates).
    pub name: String,
    /// Receive queues to serve (AF_XDP: one socket per queue; AF_PACKET: a fanout
    /// group of that many sockets). Default 1.
    pub queues: u16,
    /// Receive frames addressed to any MAC (default on, as a switch port must).
    pub promisc: bool,
    /// MTU to set on the interface at open (jumbo frames need the buffers' data room too).
    pub mtu: Option<u32>,
    /// MAC address to set on the interface at open.
    pub mac: Option<[u8; 6]>,
    /// AF_XDP only: how to bind.
    pub xdp_mode: XdpMode,
}

impl IfaceSpec {
    /// Most queues a port may serve.
    pub const MAX_QUEUES: u16 = 64;

    /// Interface `name` with the default options.
    pub fn new(name: impl Into<String>) -> Self {
        IfaceSpec {
            name: name.into(),
            queues: 1,
            promisc: true,
            mtu: None,
            mac: None,
            xdp_mode: XdpMode::Auto,
        }
    }
}

impl fmt::Display for IfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.queues != 1 {
            write!(f, ",queues={}", self.queues)?;
        }
        if !self.promisc {
            f.write_str(",promisc=off")?;
        }
        if let Some(m) = self.mtu {
            write!(f, ",mtu={m}")?;
        }
        if let Some(m) = self.mac {
            write!(
                f,
                ",mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )?;
        }
        match self.xdp_mode {
            XdpMode::Auto => Ok(()),
            XdpMode::Copy => f.write_str(",mode=copy"),
            XdpMode::ZeroCopy => f.write_str(",mode=zc"),
        }
    }
}

fn parse_mac(v: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = v.split(':');
    for b in &mut mac {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `NAME[,option=value]...`; `xdp` says whether `mode=` is allowed (AF_XDP only).
fn parse_iface(arg: &str, xdp: bool) -> Result<IfaceSpec, String> {
    let mut items = arg.split(',');
    let name = items.next().unwrap_or("");
    if name.is_empty() {
        return Err("needs an interface name".into());
    }
    if name.len() > MAX_IFNAME || name.contains(['/', ' ']) {
        return Err(format!(
            "{name:?} is not a valid interface name (at most {MAX_IFNAME} bytes, no '/' or space)"
        ));
    }
    let mut spec = IfaceSpec::new(name);
    let mut seen: Vec<&str> = Vec::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("interface option {item:?} is not key=value"));
        };
        if seen.contains(&k) {
            return Err(format!("interface option {k:?} repeats"));
        }
        seen.push(k);
        match k {
            "queues" => match v.parse::<u16>() {
                Ok(q) if (1..=IfaceSpec::MAX_QUEUES).contains(&q) => spec.queues = q,
                _ => return Err(format!("queues {v:?} must be 1..={}", IfaceSpec::MAX_QUEUES)),
            },
            "promisc" => {
                spec.promisc = match v {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("promisc {v:?} must be on or off")),
                }
            }
            "mtu" => match v.parse::<u32>() {
                Ok(m) if (68..=65535).contains(&m) => spec.mtu = Some(m),
                _ => return Err(format!("mtu {v:?} must be 68..=65535")),
            },
            "mac" => match parse_mac(v) {
                Some(m) if m[0] & 1 == 0 => spec.mac = Some(m),
                Some(_) => return Err(format!("mac {v:?} is a multicast address")),
                None => return Err(format!("mac {v:?} is not six hex bytes like 02:00:00:00:00:01")),
            },
            "mode" if xdp => {
                spec.xdp_mode = match v {
                    "auto" => XdpMode::Auto,
                    "copy" => XdpMode::Copy,
                    "zc" => XdpMode::ZeroCopy,
                    _ => return Err(format!("mode {v:?} must be auto, copy or zc")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown interface option {k:?} (expected queues, promisc, mtu, mac{})",
                    if xdp { " or mode" } else { "" }
                ));
            }
        }
    }
    Ok(spec)
}

/// A DPDK port: the device arguments EAL takes, and after a `;` the port options of
/// [`IfaceSpec`] (`queues`, `promisc`, `mtu`, `mac`; not `mode`). A separator of its own
/// because PMDs have device arguments of the same names (net_tap's `mac=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkSpec {
    /// E.g. `net_af_packet0,iface=veth0`.
    pub devargs: String,
    /// The port options (`name` is the device name, the part before the first comma).
    pub opts: IfaceSpec,
}

impl fmt::Display for DpdkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.devargs)?;
        let opts = self.opts.to_string();
        match opts.split_once(',') {
            Some((_, rest)) => write!(f, ";{rest}"),
            None => Ok(()),
        }
    }
}

fn parse_dpdk(a: &str) -> Result<DpdkSpec, String> {
    let (devargs, opts) = a.split_once(';').unwrap_or((a, ""));
    let name = devargs.split(',').next().unwrap_or("");
    if !name.starts_with("net_") || name.len() <= 4 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "{name:?} is not a DPDK virtual device name (net_null0, net_ring0, net_pcap0, net_af_packet0, net_af_xdp0, net_tap0, ...)"
        ));
    }
    // The options go through the interface-option parser, with the device name in front.
    let opts = if opts.is_empty() {
        IfaceSpec::new(name)
    } else {
        let mut o = parse_iface(&format!("dpdkdev,{opts}"), false)?;
        o.name = name.to_string();
        o
    };
    Ok(DpdkSpec {
        devargs: devargs.to_string(),
        opts,
    })
}

/// A port backend and its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `gen[:items]`: built-in traffic generator.
    Gen(GenSpec),
    /// `pcap:FILE[,loop][,timing=file]`: replay a capture.
    PcapIn(PcapInSpec),
    /// `pcapout:FILE[,count=N]`: write what is sent to a capture (the first N packets).
    PcapOut(PcapOutSpec),
    /// `null[:<N>B]`: drops what is sent; with a frame size, also receives frames of
    /// that size as fast as it is polled, as DPDK's `net_null` does (buffers taken from
    /// the pool, length set, bytes left as they are): a port that costs nothing, to
    /// measure the platform's own cost per packet.
    Null(Option<u16>),
    /// `afpacket:IFACE[,options]`: Linux AF_PACKET (TPACKET_V3).
    AfPacket(IfaceSpec),
    /// `afxdp:IFACE[,options]`: AF_XDP with the packet region as UMEM.
    AfXdp(IfaceSpec),
    /// `tap:NAME[,options]`: a TAP device.
    Tap(IfaceSpec),
    /// `dpdk:DEVARGS[;options]`: a DPDK port (cargo feature `dpdk`), the device
    /// arguments as EAL takes them, e.g. `dpdk:net_af_packet0,iface=veth0` or
    /// `dpdk:net_tap0,iface=t0;queues=2,mtu=9000`.
    Dpdk(DpdkSpec),
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

/// A frame size of `<N>B` (without the `B`), FCS included.
fn parse_frame_size(v: &str) -> Result<u16, String> {
    v.parse()
        .ok()
        .filter(|s| (GenSpec::MIN_FRAME..=GenSpec::MAX_FRAME).contains(s))
        .ok_or_else(|| {
            format!(
                "frame size {v:?} must be {}..={} bytes",
                GenSpec::MIN_FRAME,
                GenSpec::MAX_FRAME
            )
        })
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
                parse_rate(v)
                    .filter(|&r| r <= GenSpec::MAX_RATE_PPS)
                    .ok_or_else(|| format!("rate {v:?} must be 1..=10G packets/s (k, M, G allowed), e.g. 5M"))?,
            );
        } else if let Some(v) = item.strip_prefix("count=") {
            dup(&mut count)?;
            g.count = Some(
                parse_rate(v)
                    .ok_or_else(|| format!("count {v:?} must be 1..={} (k, M, G allowed), e.g. 10M", u64::MAX))?,
            );
        } else if let Some(v) = item.strip_suffix("flows") {
            dup(&mut flows)?;
            g.flows = v
                .parse()
                .ok()
                .filter(|&f| f > 0)
                .ok_or_else(|| format!("flow count {v:?} must be 1..={}", u32::MAX))?;
        } else if let Some(v) = item.strip_suffix('B') {
            dup(&mut size)?;
            g.frame_size = parse_frame_size(v)?;
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
        let iface = |what: &str, xdp: bool| parse_iface(need(what)?, xdp).map_err(err);
        match kind {
            "gen" => parse_gen(arg.unwrap_or("")).map(PortSpec::Gen).map_err(err),
            "pcap" => parse_pcap_in(need("a file")?).map(PortSpec::PcapIn).map_err(err),
            "pcapout" => parse_pcap_out(need("a file")?).map(PortSpec::PcapOut).map_err(err),
            "null" => match arg {
                None => Ok(PortSpec::Null(None)),
                Some(a) => parse_frame_size(a.strip_suffix('B').unwrap_or("-"))
                    .map(|f| PortSpec::Null(Some(f)))
                    .map_err(|e| err(format!("null takes a receive frame size <N>B, e.g. null:64B: {e}"))),
            },
            "afpacket" => Ok(PortSpec::AfPacket(iface("an interface", false)?)),
            "afxdp" => Ok(PortSpec::AfXdp(iface("an interface", true)?)),
            "tap" => Ok(PortSpec::Tap(iface("a device name", false)?)),
            "dpdk" => parse_dpdk(need("device arguments like net_af_packet0,iface=eth0")?)
                .map(PortSpec::Dpdk)
                .map_err(err),
            _ => Err(err(format!(
                "unknown port kind {kind:?} (expected gen, pcap, pcapout, null, afpacket, afxdp, tap or dpdk)"
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
            PortSpec::PcapOut(p) => {
                write!(f, "pcapout:{}", p.path.display())?;
                match p.count {
                    Some(n) => write!(f, ",count={n}"),
                    None => Ok(()),
                }
            }
            PortSpec::Null(None) => f.write_str("null"),
            PortSpec::Null(Some(size)) => write!(f, "null:{size}B"),
            PortSpec::AfPacket(i) => write!(f, "afpacket:{i}"),
            PortSpec::AfXdp(i) => write!(f, "afxdp:{i}"),
            PortSpec::Tap(i) => write!(f, "tap:{i}"),
            PortSpec::Dpdk(a) => write!(f, "dpdk:{a}"),
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
            Ok(PortSpec::PcapOut(PcapOutSpec::new("/tmp/o.pcap")))
        );
        assert_eq!(
            "pcapout:/tmp/o,x.pcap,count=100".parse(),
            Ok(PortSpec::PcapOut(PcapOutSpec {
                path: "/tmp/o,x.pcap".into(),
                count: Some(100)
            }))
        );
        assert_eq!(
            "pcapout:/tmp/o.pcap,count=100".parse::<PortSpec>().unwrap().to_string(),
            "pcapout:/tmp/o.pcap,count=100"
        );
        assert!(
            "pcapout:o.pcap,count=0"
                .parse::<PortSpec>()
                .unwrap_err()
                .to_string()
                .contains("count \"0\"")
        );
        assert_eq!("null".parse(), Ok(PortSpec::Null(None)));
        assert_eq!("null:64B".parse(), Ok(PortSpec::Null(Some(64))));
        assert_eq!(PortSpec::Null(Some(128)).to_string(), "null:128B");
        assert_eq!("afxdp:veth0".parse(), Ok(PortSpec::AfXdp(IfaceSpec::new("veth0"))));
        assert_eq!("afpacket:eth1".parse(), Ok(PortSpec::AfPacket(IfaceSpec::new("eth1"))));
        assert_eq!("tap:tap0".parse(), Ok(PortSpec::Tap(IfaceSpec::new("tap0"))));
    }

    #[test]
    fn interface_options() {
        let Ok(PortSpec::AfXdp(x)) =
            "afxdp:veth0,queues=4,mode=copy,mtu=9000,mac=02:aB:00:00:00:01,promisc=off".parse()
        else {
            panic!()
        };
        assert_eq!(
            x,
            IfaceSpec {
                name: "veth0".into(),
                queues: 4,
                promisc: false,
                mtu: Some(9000),
                mac: Some([2, 0xab, 0, 0, 0, 1]),
                xdp_mode: XdpMode::Copy,
            }
        );
        for s in [
            "afxdp:veth0,queues=4,promisc=off,mtu=9000,mac=02:ab:00:00:00:01,mode=copy",
            "afxdp:v,mode=zc",
            "afpacket:eth0,queues=2",
            "tap:t0,mtu=1400",
        ] {
            assert_eq!(s.parse::<PortSpec>().unwrap().to_string(), s);
        }
        assert!(reason("afxdp:v,queues=0").contains("queues \"0\" must be 1..=64"));
        assert!(reason("afxdp:v,queues=65").contains("must be 1..=64"));
        assert!(reason("afxdp:v,mtu=20").contains("mtu"));
        assert!(reason("afxdp:v,mac=01:00:00:00:00:01").contains("multicast"));
        assert!(reason("afxdp:v,mac=02:00:00:00:00").contains("six hex bytes"));
        assert!(reason("afxdp:v,mac=02:00:00:00:00:01:02").contains("six hex bytes"));
        assert!(reason("afxdp:v,mode=fast").contains("auto, copy or zc"));
        assert!(reason("afpacket:v,mode=copy").contains("unknown interface option \"mode\""));
        assert!(reason("tap:v,queues=1,queues=2").contains("repeats"));
        assert!(reason("afxdp:v,promisc").contains("key=value"));
        assert!(reason("afxdp:,queues=2").contains("interface name"));
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(reason("gen:10B").contains("frame size"));
        assert!(reason("gen:0flows").contains("flow count"));
        assert!(reason("gen:rate=fast").contains("rate"));
        assert!(reason("gen:count=x").contains("count"));
        // Zero, overflow and absurd numbers name the range allowed (issue 12).
        assert_eq!(reason("gen:0flows"), "flow count \"0\" must be 1..=4294967295");
        assert!(reason("gen:5000000000flows").contains("must be 1..=4294967295"));
        for r in ["0", "11G", "99999999999G", "-1", "1.5M"] {
            let why = reason(&format!("gen:rate={r}"));
            assert!(why.contains("must be 1..=10G packets/s"), "{r}: {why}");
        }
        assert!("gen:rate=10G".parse::<PortSpec>().is_ok());
        assert!(reason("gen:count=0").contains("must be 1..=18446744073709551615"));
        assert!(reason("gen:0B").contains("must be 64..=9216 bytes"));
        assert!(reason("afpacket:eth0,queues=0").contains("must be 1..="));
        assert!(reason("afpacket:eth0,mtu=0").contains("must be 68..=65535"));
        assert_eq!(
            "gen:64B,count=10k".parse::<PortSpec>().unwrap().to_string(),
            "gen:64B,1flows,count=10000"
        );
        assert!(reason("gen:64B,128B").contains("repeats"));
        assert!(reason("gen:jumbo").contains("unknown generator setting"));
        assert!(reason("pcap:").contains("needs a file"));
        assert!(reason("pcap").contains("needs a file"));
        assert!(reason("null:x").contains("receive frame size <N>B"));
        assert!(reason("null:10B").contains("frame size \"10\" must be 64..=9216"));
        assert!(reason("afxdp:averyveryverylongname").contains("interface name"));
        assert!(reason("dpdk:0000:01:00.0").contains("not a DPDK virtual device name"));
        assert!(reason("dpdk:").contains("device arguments"));
        assert!(reason("mystery:x").contains("unknown port kind \"mystery\""));
        let Ok(PortSpec::Dpdk(d)) = "dpdk:net_af_packet0,iface=veth0".parse() else {
            panic!()
        };
        assert_eq!(d.devargs, "net_af_packet0,iface=veth0");
        assert_eq!(d.opts, IfaceSpec::new("net_af_packet0"));
        let Ok(PortSpec::Dpdk(d)) = "dpdk:net_tap0,iface=t0,mac=02:00:00:00:00:07;queues=2,mtu=9000".parse() else {
            panic!()
        };
        assert_eq!(
            d.devargs, "net_tap0,iface=t0,mac=02:00:00:00:00:07",
            "the PMD's own mac= stays its own"
        );
        assert_eq!((d.opts.queues, d.opts.mtu, d.opts.mac), (2, Some(9000), None));
        for s in [
            "dpdk:net_null0",
            "dpdk:net_tap0,iface=t0;queues=2,mtu=9000",
            "dpdk:net_ring0;promisc=off",
        ] {
            assert_eq!(s.parse::<PortSpec>().unwrap().to_string(), s);
        }
        assert!(reason("dpdk:net_null0;mode=zc").contains("unknown interface option \"mode\""));
        assert!(reason("dpdk:net_null0;queues=0").contains("queues"));
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
        fn display_round_trips(size in GenSpec::MIN_FRAME..=GenSpec::MAX_FRAME, flows in 1u32.., rate in proptest::option::of(1u64..=GenSpec::MAX_RATE_PPS)) {
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
