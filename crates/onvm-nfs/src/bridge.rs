//! Send a packet out of the other port of its pair.

use onvm_nf::{Action, Ctx, Handler, PacketMut};

/// openNetVM's `bridge`: a packet that came in on port `p` leaves on `p ^ 1`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bridge;

impl Handler for Bridge {
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        Action::Out(pkt.meta().in_port() ^ 1)
    }
}
