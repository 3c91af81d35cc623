//! Send a packet out of the other port of its pair.

use onvm_nf::{Action, Ctx, Handler, PacketMut};

use crate::catalogue::Catalogued;

/// openNetVM's `bridge`: a packet that came in on port `p` leaves on `p ^ 1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bridge;

impl Handler for Bridge {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        Action::Out(pkt.meta().in_port() ^ 1)
    }
}

/// `onvm nf bridge` (no flags of its own).
#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

impl Catalogued for Args {
    const NAME: &'static str = "bridge";
    type Nf = Bridge;
    fn build(&self) -> Result<Bridge, String> {
        Ok(Bridge)
    }
}
