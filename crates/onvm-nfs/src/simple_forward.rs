//! Forward everything to one service, or to the chain's next hop.

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};

/// openNetVM's `simple_forward`.
#[derive(Debug, Clone, Copy)]
pub struct SimpleForward {
    /// Destination service (`-d`); `None` = the chain's next hop.
    pub dest: Option<u16>,
}

impl Handler for SimpleForward {
    fn packet(&mut self, _pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.dest.map_or(Action::Next, Action::ToService)
    }

    /// The packets are not looked at, so a burst gets one action.
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        batch.set_all(self.dest.map_or(Action::Next, Action::ToService));
    }
}

/// `onvm nf simple-forward [-d SERVICE]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
}

impl Catalogued for Args {
    const NAME: &'static str = "simple_forward";
    type Nf = SimpleForward;
    fn build(&self) -> Result<SimpleForward, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        Ok(SimpleForward { dest })
    }
}
