//! Forward everything to one service, or to the chain's next hop.
//!
//! `--busy-ns` makes it spend that long per packet (busy-waiting) before it forwards:
//! a stand-in for a costly NF when measuring what the platform does around one
//! (backpressure, shared cores). openNetVM's has no such flag.

use std::time::{Duration, Instant};

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};

/// openNetVM's `simple_forward`.
#[derive(Debug, Clone, Copy)]
pub struct SimpleForward {
    /// Destination service (`-d`); `None` = the chain's next hop.
    pub dest: Option<u16>,
    /// Time spent per packet before forwarding it (`--busy-ns`).
    pub busy: Duration,
}

impl SimpleForward {
    /// Forward to `dest` (`None`: the chain's next hop) at once.
    pub fn new(dest: Option<u16>) -> Self {
        SimpleForward {
            dest,
            busy: Duration::ZERO,
        }
    }

    /// Busy-wait `busy` for each of `n` packets.
    fn work(&self, n: usize) {
        if self.busy.is_zero() {
            return;
        }
        let until = Instant::now() + self.busy * n as u32;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

impl Handler for SimpleForward {
    fn packet(&mut self, _pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.work(1);
        self.dest.map_or(Action::Next, Action::ToService)
    }

    /// The packets are not looked at, so a burst gets one action.
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        self.work(batch.len());
        batch.set_all(self.dest.map_or(Action::Next, Action::ToService));
    }
}

/// `onvm nf simple-forward [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Spend this many nanoseconds per packet (busy-waiting) before forwarding it:
    /// a stand-in for a costly NF in measurements.
    #[arg(long, value_name = "NS", default_value_t = 0)]
    pub busy_ns: u64,
}

impl Catalogued for Args {
    const NAME: &'static str = "simple_forward";
    type Nf = SimpleForward;
    fn build(&self) -> Result<SimpleForward, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        Ok(SimpleForward {
            dest,
            busy: Duration::from_nanos(self.busy_ns),
        })
    }
}
