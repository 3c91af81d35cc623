//! An L2 forwarder like DPDK's `l2fwd`: out of the other port of the pair.
//!
//! `onvm nf l2fwd [-n]`
//!
//! A frame that came in on port `p` leaves on `p ^ 1` (0↔1, 2↔3, …). Unless `-n`, its
//! destination MAC becomes `02:00:00:00:00:<tx>` (the peer, as DPDK's l2fwd addresses
//! it) and its source MAC `02:00:00:00:00:<tx + 0x10>` (the port's own in this
//! catalogue: [`crate::net::port_mac`]). Frames shorter than an Ethernet header are
//! dropped (`malformed`).
//!
//! Counters: `forwarded`, `malformed`.
//!
//! Differences from openNetVM's `l2fwd`: the source MAC is rewritten too (openNetVM
//! rewrites only the destination); no portmask (every port has its pair); `-m`
//! (printing the MACs) and `-p` are left out.

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::Catalogued;
use crate::net::{peer_mac, port_mac};

/// What l2fwd counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames sent out of the paired port.
    pub forwarded: u64,
    /// Dropped: shorter than an Ethernet header.
    pub malformed: u64,
}

/// The l2fwd handler.
#[derive(Debug, Clone, Default)]
pub struct L2fwd {
    rewrite_macs: bool,
    /// Counts so far.
    pub counts: Counts,
}

impl L2fwd {
    /// A forwarder that rewrites MACs if `rewrite_macs`.
    pub fn new(rewrite_macs: bool) -> Self {
        L2fwd {
            rewrite_macs,
            counts: Counts::default(),
        }
    }

    /// Forward `frame`, arrived on `in_port` (rewritten in place): its action, counted.
    #[inline]
    pub fn forward(&mut self, in_port: u16, frame: &mut [u8]) -> Action {
        let tx = in_port ^ 1;
        let Some(eth) = frame.get_mut(..onvm_packet::ETHERNET_HEADER_LEN) else {
            self.counts.malformed += 1;
            return Action::Drop;
        };
        if self.rewrite_macs {
            eth[..6].copy_from_slice(&peer_mac(tx));
            eth[6..12].copy_from_slice(&port_mac(tx));
        }
        self.counts.forwarded += 1;
        Action::Out(tx)
    }
}

impl Handler for L2fwd {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        let in_port = pkt.meta().in_port();
        self.forward(in_port, pkt.data_mut())
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        batch.map(|p| self.forward(p.meta().in_port(), p.data_mut()));
    }
}

/// `onvm nf l2fwd [-n]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Leave the MAC addresses as they are.
    #[arg(short = 'n', long)]
    pub no_mac_rewrite: bool,
}

impl Catalogued for Args {
    const NAME: &'static str = "l2fwd";
    type Nf = L2fwd;
    fn build(&self) -> Result<L2fwd, String> {
        Ok(L2fwd::new(!self.no_mac_rewrite))
    }
    fn report(nf: &L2fwd) -> Option<String> {
        Some(format!(
            "l2fwd: forwarded {}, malformed {}",
            nf.counts.forwarded, nf.counts.malformed
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::{garbage, prefixes, udp};
    use onvm_nf::offline::Offline;

    #[test]
    fn out_of_the_paired_port_with_its_macs() {
        let mut f = L2fwd::new(true);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        let frame = udp("10.0.0.1", "10.0.0.2", 64);
        for (rx, tx) in [(0u16, 1u16), (1, 0), (2, 3), (3, 2)] {
            let out = sim.frames(&mut f, rx, std::slice::from_ref(&frame)).unwrap();
            assert_eq!(out[0].action, Action::Out(tx));
            let mut want = frame.clone();
            want[..12].copy_from_slice(&[2, 0, 0, 0, 0, tx as u8, 2, 0, 0, 0, 0, tx as u8 + 0x10]);
            assert_eq!(out[0].frame, want);
        }
        let mut n = L2fwd::new(false);
        let mut sim = off.start(&mut n);
        let out = sim.frames(&mut n, 5, std::slice::from_ref(&frame)).unwrap();
        assert_eq!((out[0].action, &out[0].frame), (Action::Out(4), &frame));
    }

    #[test]
    fn runts_are_dropped_never_panic() {
        let mut f = L2fwd::new(true);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut f);
        let frame = udp("10.0.0.1", "10.0.0.2", 64);
        let cuts = prefixes(&frame);
        let out = sim.frames(&mut f, 0, &cuts).unwrap();
        assert!(out[..14].iter().all(|s| s.action == Action::Drop));
        assert!(out[14..].iter().all(|s| s.action == Action::Out(1)));
        assert_eq!(sim.frames(&mut f, 0, &garbage(300)).unwrap().len(), 300);
        assert_eq!(
            f.counts.malformed,
            14 + garbage(300).iter().filter(|g| g.len() < 14).count() as u64
        );
    }
}
