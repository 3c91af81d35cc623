//! What a packet handler answers.

use onvm_proto::verdict::Verdict;

/// The fate of a packet, returned by a handler (openNetVM's `ONVM_NF_ACTION_*`, plus
/// *keep*).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Free the buffer.
    Drop,
    /// Next hop of the chain (the manager's flow table from this NF's service port).
    Next,
    /// To an instance of a service, chosen by flow so both directions meet one instance.
    ToService(u16),
    /// To one instance.
    ToInstance(u16),
    /// Out of a physical port.
    Out(u16),
    /// The NF keeps the buffer and hands it on later with
    /// [`Ctx::return_pkt`](crate::Ctx::return_pkt).
    Keep,
}

impl Action {
    /// The verdict written into the buffer, or `None` for [`Action::Keep`].
    pub fn verdict(self) -> Option<Verdict> {
        Some(match self {
            Action::Drop => Verdict::Drop,
            Action::Next => Verdict::Next,
            Action::ToService(s) => Verdict::ToService(s),
            Action::ToInstance(i) => Verdict::ToInstance(i),
            Action::Out(p) => Verdict::Out(p),
            Action::Keep => return None,
        })
    }
}
