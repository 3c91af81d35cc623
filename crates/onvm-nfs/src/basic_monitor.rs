//! Count what passes: packets, bytes, IPv4/IPv6/other, TCP/UDP/other.

use onvm_nf::{Action, Ctx, Handler, PacketMut};
use onvm_packet::Headers;
use std::io::Write as _;

use crate::catalogue::{Catalogued, check_service};

/// What the monitor counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// IPv4 packets.
    pub ipv4: u64,
    /// IPv6 packets.
    pub ipv6: u64,
    /// TCP packets.
    pub tcp: u64,
    /// UDP packets.
    pub udp: u64,
    /// Frames that did not parse.
    pub malformed: u64,
}

/// openNetVM's `basic_monitor`: prints counts every tick and passes packets on.
#[derive(Debug, Clone, Default)]
pub struct BasicMonitor {
    /// Destination service (`-d`); `None` = the chain's next hop.
    pub dest: Option<u16>,
    /// Print on every tick.
    pub print: bool,
    /// Counts so far.
    pub counts: Counts,
    last: Counts,
}

impl BasicMonitor {
    /// A monitor that passes packets to `dest` (or next) and prints if `print`.
    pub fn new(dest: Option<u16>, print: bool) -> Self {
        BasicMonitor {
            dest,
            print,
            ..Default::default()
        }
    }

    /// Count one frame.
    pub fn count(&mut self, frame: &[u8]) {
        let c = &mut self.counts;
        c.packets += 1;
        c.bytes += frame.len() as u64;
        match Headers::parse(frame) {
            Ok(h) => {
                c.ipv4 += u64::from(h.ipv4().is_some());
                c.ipv6 += u64::from(h.ipv6().is_some());
                c.tcp += u64::from(h.tcp().is_some());
                c.udp += u64::from(h.udp().is_some());
            }
            Err(_) => c.malformed += 1,
        }
    }
}

impl Handler for BasicMonitor {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.count(pkt.data());
        self.dest.map_or(Action::Next, Action::ToService)
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.print {
            let c = self.counts;
            // Ignoring errors: a reader that went away (`onvm up | head`) is no reason
            // for the NF to die (`println!` would panic on EPIPE).
            let _ = writeln!(
                std::io::stdout().lock(),
                "basic_monitor[{}]: {} pkts (+{}), {} bytes; ipv4 {} ipv6 {} tcp {} udp {} malformed {}",
                ctx.instance(),
                c.packets,
                c.packets - self.last.packets,
                c.bytes,
                c.ipv4,
                c.ipv6,
                c.tcp,
                c.udp,
                c.malformed
            );
        }
        self.last = self.counts;
    }
}

/// `onvm nf basic-monitor [-d SERVICE] [--quiet]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Do not print every second.
    #[arg(long)]
    pub quiet: bool,
}

impl Catalogued for Args {
    const NAME: &'static str = "basic_monitor";
    type Nf = BasicMonitor;
    fn build(&self) -> Result<BasicMonitor, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        Ok(BasicMonitor::new(dest, !self.quiet))
    }
    fn report(nf: &BasicMonitor) -> Option<String> {
        Some(format!("basic_monitor: {:?}", nf.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_protocols_and_malformed_frames() {
        let mut m = BasicMonitor::new(None, false);
        let udp = onvm_packet::build_udp_for_flow_vec(3, 60).unwrap();
        m.count(&udp);
        m.count(&[0u8; 5]);
        assert_eq!(
            m.counts,
            Counts {
                packets: 2,
                bytes: 65,
                ipv4: 1,
                udp: 1,
                malformed: 1,
                ..Default::default()
            }
        );
    }
}
