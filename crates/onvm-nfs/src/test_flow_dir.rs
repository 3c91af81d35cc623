//! openNetVM's flow-director demo: a flow's first packet goes to `-d`, and the flow is
//! remembered; its later packets go to the chain's next hop.
//!
//! `onvm nf test-flow-dir -d SERVICE [--max-flows N]`
//!
//! In openNetVM the NF writes the entry (action "to service `-d`") into the manager's
//! shared flow director table, which then steers the flow's later packets itself. The
//! platform here has no API for an NF to install flow rules in the manager, so the
//! table is the NF's own: the NF records the flow (5-tuple, IPv4 or IPv6) on its first
//! packet, sends that packet to `-d` (counted `new`), and sends packets of a known flow
//! to the next hop (counted `hits`); so the first packet of each flow takes the
//! detour and the rest follow the chain. Frames that are not IP go to the next hop
//! (`other`). The table holds at most `--max-flows` (default 65536) flows, evicting
//! the least recently seen eighth when full (`evicted`): an evicted flow's next packet
//! is new again.
//!
//! Differs from openNetVM's, whose table is never cleaned (it stops adding when full),
//! and which segfaults on a lookup error (its issue #247).

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};
use crate::flow::{FlowKey, FlowTable, Lookup};

/// What the demo counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirCounts {
    /// First packets of flows (sent to `-d`).
    pub new: u64,
    /// Packets of known flows (sent to the next hop).
    pub hits: u64,
    /// Frames that are not IP.
    pub other: u64,
}

/// The flow-director demo NF. See the [module docs](self).
#[derive(Debug)]
pub struct TestFlowDir {
    table: FlowTable<FlowKey, ()>,
    dest: u16,
    /// What it counted.
    pub counts: DirCounts,
}

impl TestFlowDir {
    /// The demo sending new flows to `dest`, remembering at most `max_flows`.
    pub fn new(dest: u16, max_flows: usize) -> Self {
        TestFlowDir {
            table: FlowTable::new(max_flows),
            dest,
            counts: DirCounts::default(),
        }
    }

    /// Where a frame seen at `now` goes.
    pub fn direct(&mut self, frame: &[u8], now: u64) -> Action {
        let Some(key) = FlowKey::of(frame) else {
            self.counts.other += 1;
            return Action::Next;
        };
        match self.table.get_or_insert(key, now, || ()).1 {
            Lookup::New => {
                self.counts.new += 1;
                Action::ToService(self.dest)
            }
            Lookup::Hit => {
                self.counts.hits += 1;
                Action::Next
            }
        }
    }

    /// Flows evicted to make room.
    pub fn evicted(&self) -> u64 {
        self.table.evicted
    }
}

impl Handler for TestFlowDir {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.direct(pkt.data(), crate::now_ns())
    }

    /// One clock read per burst.
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        let now = crate::now_ns();
        for i in 0..batch.len() {
            let a = match batch.packet(i) {
                Some(p) => self.direct(p.data(), now),
                None => Action::Drop,
            };
            batch.set_action(i, a);
        }
    }
}

/// `onvm nf test-flow-dir -d SERVICE [--max-flows N]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Service a flow's first packet goes to.
    #[arg(short = 'd', long)]
    pub dest: u16,
    /// Most flows remembered.
    #[arg(long, default_value_t = 65536)]
    pub max_flows: usize,
}

impl Catalogued for Args {
    const NAME: &'static str = "test_flow_dir";
    type Nf = TestFlowDir;
    fn build(&self) -> Result<TestFlowDir, String> {
        let dest = check_service("--dest", self.dest)?;
        if !(1..=1 << 24).contains(&self.max_flows) {
            return Err(format!("--max-flows {}: must be 1..={}", self.max_flows, 1 << 24));
        }
        Ok(TestFlowDir::new(dest, self.max_flows))
    }
    fn report(nf: &TestFlowDir) -> Option<String> {
        let c = nf.counts;
        Some(format!(
            "test_flow_dir: new {}, hits {}, other {}, evicted {}",
            c.new,
            c.hits,
            c.other,
            nf.evicted()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_packets_take_the_detour_and_the_rest_go_next() {
        let mut d = TestFlowDir::new(7, 100);
        let f = |i: u32| onvm_packet::build_udp_for_flow_vec(i, 60).unwrap();
        let acts: Vec<Action> = [0, 1, 0, 1, 2, 0].iter().map(|&i| d.direct(&f(i), 1)).collect();
        use Action::{Next, ToService};
        assert_eq!(acts, [ToService(7), ToService(7), Next, Next, ToService(7), Next]);
        assert_eq!(d.direct(&[0u8; 30], 1), Next);
        assert_eq!(
            d.counts,
            DirCounts {
                new: 3,
                hits: 3,
                other: 1
            }
        );
        let mut small = TestFlowDir::new(7, 8);
        for i in 0..100 {
            small.direct(&f(i), u64::from(i));
        }
        assert_eq!(small.evicted(), 100 - small.table.len() as u64);
        assert!(
            Args { dest: 0, max_flows: 1 }
                .build()
                .unwrap_err()
                .starts_with("--dest 0")
        );
        assert!(
            Args { dest: 1, max_flows: 0 }
                .build()
                .unwrap_err()
                .starts_with("--max-flows 0")
        );
    }

    #[test]
    fn malformed_frames_never_panic() {
        let mut d = TestFlowDir::new(7, 100);
        let mut off = onvm_nf::offline::Offline::new().unwrap();
        let mut sim = off.start(&mut d);
        let frames = crate::aes_encrypt::tests::malformed_frames();
        assert_eq!(sim.frames(&mut d, 0, &frames).unwrap().len(), frames.len());
    }
}
