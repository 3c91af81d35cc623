//! `count-nf`: an NF of one's own, written against the `onvm-nf` library as any user's
//! crate would be; a template to copy. docs/CONTAINERS.md builds it, puts it in an image
//! and runs it with `onvm up`.
//!
//! It counts packets and bytes per IP protocol, passes every packet on (to the chain's
//! next hop, or to `--to-service`) and prints its totals to stderr when it stops. Like
//! every NF it finds the manager through `ONVM_SOCKET`, which `onvm up` sets; `onvm up`
//! passes an NF of one's own only its config entry's `args`, so they name the service.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use onvm_nf::packet::Headers;
use onvm_nf::{Action, Ctx, Handler, NfBuilder, PacketMut};

/// Count packets and bytes per IP protocol, and pass them on. Service, tag and core
/// mode come from `onvm up` (ONVM_SERVICE, ONVM_TAG, ONVM_SHARED_CORE); the flags
/// override them, e.g. when it is started by hand.
#[derive(Parser, Debug)]
struct Args {
    /// Service ID to serve (default: ONVM_SERVICE, else 1).
    #[arg(long)]
    service: Option<u16>,
    /// Name shown in the manager's stats (default: ONVM_TAG, else `count-nf`).
    #[arg(long)]
    tag: Option<String>,
    /// Send packets to this service instead of the chain's next hop.
    #[arg(long)]
    to_service: Option<u16>,
    /// Share a core with other NFs and sleep when idle (default: ONVM_SHARED_CORE).
    #[arg(long)]
    shared_core: bool,
    /// Also count per flow (addresses, ports, protocol) and print one line per flow.
    #[arg(long)]
    per_flow: bool,
}

/// Packets and bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    packets: u64,
    bytes: u64,
}

impl Tally {
    fn add(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }
}

/// What passed, by the IP protocol of each frame (after IPv6 extension headers).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Counts {
    /// Indexed by protocol number (6 TCP, 17 UDP, …).
    ip: [Tally; 256],
    /// Frames that are not IP, or do not parse.
    not_ip: Tally,
    /// Per flow, when asked for (`--per-flow`).
    flows: Option<BTreeMap<Flow, Tally>>,
}

/// A flow: source and destination address and port (0 without ports), protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Flow {
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    proto: u8,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            ip: [Tally::default(); 256],
            not_ip: Tally::default(),
            flows: None,
        }
    }
}

impl Counts {
    /// Count one frame.
    fn count(&mut self, frame: &[u8]) {
        let h = Headers::parse(frame).ok();
        match h.as_ref().and_then(Headers::ip_proto) {
            Some(p) => self.ip[usize::from(p)].add(frame.len()),
            None => self.not_ip.add(frame.len()),
        }
        if let (Some(flows), Some(h)) = (self.flows.as_mut(), h)
            && let (Some(src), Some(dst), Some(proto)) = (h.src_ip(), h.dst_ip(), h.ip_proto())
        {
            let flow = Flow {
                src: (src, h.src_port().unwrap_or(0)),
                dst: (dst, h.dst_port().unwrap_or(0)),
                proto,
            };
            flows.entry(flow).or_default().add(frame.len());
        }
    }

    /// Everything counted.
    fn total(&self) -> Tally {
        self.ip
            .iter()
            .chain([&self.not_ip])
            .fold(Tally::default(), |t, c| Tally {
                packets: t.packets + c.packets,
                bytes: t.bytes + c.bytes,
            })
    }

    /// One line per protocol seen, after a total: `PREFIX total: N packets, N bytes`.
    fn report(&self, prefix: &str) -> String {
        let mut out = String::new();
        let mut line = |what: &str, t: Tally| {
            let _ = writeln!(out, "{prefix} {what}: {} packets, {} bytes", t.packets, t.bytes);
        };
        line("total", self.total());
        for (p, t) in self.ip.iter().enumerate().filter(|(_, t)| t.packets > 0) {
            line(&proto_name(p as u8), *t);
        }
        if self.not_ip.packets > 0 {
            line("not-ip", self.not_ip);
        }
        for (f, t) in self.flows.iter().flatten() {
            let what = format!(
                "flow {}:{} > {}:{} {}",
                f.src.0,
                f.src.1,
                f.dst.0,
                f.dst.1,
                proto_name(f.proto)
            );
            line(&what, *t);
        }
        out
    }
}

/// `tcp`, `udp`, … or `ip-proto-N`.
fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        _ => format!("ip-proto-{p}"),
    }
}

/// The NF: its state is the counts and where packets go.
#[derive(Debug)]
struct CountNf {
    tag: String,
    to: Action,
    counts: Counts,
}

impl Handler for CountNf {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.counts.count(pkt.data());
        self.to
    }

    fn stop(&mut self, ctx: &mut Ctx<'_>) {
        let report = self
            .counts
            .report(&format!("{} (instance {})", self.tag, ctx.instance()));
        // One write, and never a panic: stderr may be a pipe whose reader left.
        let _ = std::io::stderr().lock().write_all(report.as_bytes());
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut builder = NfBuilder::from_env("count-nf");
    if let Some(tag) = &args.tag {
        builder = builder.with_tag(tag);
    }
    if let Some(id) = args.service {
        builder = builder.service(id);
    }
    if args.shared_core {
        builder = builder.shared_core(true);
    }
    let tag = builder.tag().to_string();
    let nf = match builder.connect() {
        Ok(nf) => nf,
        Err(e) => {
            eprintln!("{tag}: cannot register with the manager: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handler = CountNf {
        tag,
        to: args.to_service.map_or(Action::Next, Action::ToService),
        counts: Counts {
            flows: args.per_flow.then(BTreeMap::new),
            ..Counts::default()
        },
    };
    match nf.run(handler) {
        Ok(_summary) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("count-nf: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_nf::packet::{TcpSpec, UdpSpec};

    #[test]
    fn counts_packets_and_bytes_per_ip_protocol() {
        let mut c = Counts::default();
        let udp = UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53).to_vec().unwrap();
        let tcp = TcpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 80).to_vec().unwrap();
        let tcp6 = TcpSpec::new(std::net::Ipv6Addr::LOCALHOST, std::net::Ipv6Addr::LOCALHOST, 1000, 443)
            .to_vec()
            .unwrap();
        for frame in [&udp, &tcp, &udp, &tcp6] {
            c.count(frame);
        }
        c.count(&[0u8; 20]);
        let bytes = |f: &[u8]| f.len() as u64;
        assert_eq!(
            c.ip[17],
            Tally {
                packets: 2,
                bytes: 2 * bytes(&udp)
            }
        );
        assert_eq!(
            c.ip[6],
            Tally {
                packets: 2,
                bytes: bytes(&tcp) + bytes(&tcp6)
            },
            "IPv4 and IPv6 alike"
        );
        assert_eq!(c.not_ip, Tally { packets: 1, bytes: 20 }, "a runt is not IP");
        assert_eq!(c.total().packets, 5);
        assert_eq!(c.total().bytes, 2 * bytes(&udp) + bytes(&tcp) + bytes(&tcp6) + 20);
    }

    #[test]
    fn per_flow_counts_are_kept_only_when_asked_and_print_one_line_each() {
        let udp = UdpSpec::new([10, 0, 0, 1], [10, 0, 0, 2], 1000, 53).to_vec().unwrap();
        let other = UdpSpec::new([10, 0, 0, 3], [10, 0, 0, 2], 1000, 53).to_vec().unwrap();
        let mut plain = Counts::default();
        plain.count(&udp);
        assert!(plain.flows.is_none());
        let mut c = Counts {
            flows: Some(BTreeMap::new()),
            ..Counts::default()
        };
        for f in [&udp, &other, &udp, &[0u8; 20][..]] {
            c.count(f);
        }
        let flows = c.flows.as_ref().unwrap();
        assert_eq!(flows.len(), 2, "the runt has no flow");
        let r = c.report("x");
        assert!(
            r.contains(&format!(
                "x flow 10.0.0.1:1000 > 10.0.0.2:53 udp: 2 packets, {} bytes\n",
                2 * udp.len()
            )),
            "{r}"
        );
        assert!(r.contains("x flow 10.0.0.3:1000 > 10.0.0.2:53 udp: 1 packets"), "{r}");
    }

    #[test]
    fn the_report_lists_the_total_then_each_protocol_seen() {
        let mut c = Counts::default();
        c.ip[17] = Tally { packets: 3, bytes: 180 };
        c.ip[47] = Tally { packets: 1, bytes: 100 };
        assert_eq!(
            c.report("count-nf (instance 2)"),
            "count-nf (instance 2) total: 4 packets, 280 bytes\n\
             count-nf (instance 2) udp: 3 packets, 180 bytes\n\
             count-nf (instance 2) ip-proto-47: 1 packets, 100 bytes\n"
        );
    }
}
