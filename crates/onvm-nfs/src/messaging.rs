//! Tests of NF messaging (openNetVM's `test_messaging`): the NF sends messages to
//! itself through the manager and checks that each arrives intact and in order.
//!
//! The tests run one after another from setup, each within 5 seconds:
//! 1. `single`: one 64-byte message;
//! 2. `batch`: 32 messages of different lengths sent in one callback;
//! 3. `oversize`: a message one byte over the control path's limit
//!    ([`MAX_MSG_PAYLOAD`], 16 KiB) is refused before it is sent;
//! 4. `max`: a message of exactly the limit arrives whole;
//! 5. `volume`: 256 messages of 4 KiB (1 MiB, several times what a control socket
//!    buffers), at most 16 in flight.
//!
//! Packets meanwhile pass to `-d SERVICE` or the chain's next hop. The report says
//! `messaging: passed N, failed N, …` and names what failed.
//!
//! Differences from openNetVM: there, messages go through a ring of 128 in shared
//! memory and the overflow test checks that enqueueing past it fails without leaking
//! mempool objects. Here messages go over the NF's control socket, which the manager
//! relays ([`onvm_proto::ctrl::NfMsg::Msg`]); the limit is per message size, and a
//! sender must pace itself: the runtime sends queued messages at housekeeping on a
//! non-blocking socket, and a message over the limit or a full socket is an error that
//! stops the NF, so [`Messaging`] checks the size first ([`try_send`]) and keeps at most
//! 16 messages in flight.

use std::io::Write as _;
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Dest, Handler};
use onvm_proto::limits::MAX_MSG_PAYLOAD;

use crate::catalogue::{Catalogued, check_service};

/// How long each test may take.
pub const DEADLINE: Duration = Duration::from_secs(5);
/// Messages of the batch test.
pub const BATCH: u32 = 32;
/// Messages of the volume test, their size, and how many may be in flight.
pub const VOLUME: u32 = 256;
const VOLUME_LEN: usize = 4096;
const WINDOW: u32 = 16;

/// The tests, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// One message.
    Single,
    /// Many at once.
    Batch,
    /// Over the size limit: refused.
    Oversize,
    /// At the size limit.
    Max,
    /// More than the socket holds, paced.
    Volume,
    /// All run.
    Done,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Single => "single",
            Stage::Batch => "batch",
            Stage::Oversize => "oversize",
            Stage::Max => "max",
            Stage::Volume => "volume",
            Stage::Done => "done",
        }
    }

    fn next(self) -> Stage {
        match self {
            Stage::Single => Stage::Batch,
            Stage::Batch => Stage::Oversize,
            Stage::Oversize => Stage::Max,
            Stage::Max => Stage::Volume,
            Stage::Volume | Stage::Done => Stage::Done,
        }
    }

    /// Messages it sends.
    fn total(self) -> u32 {
        match self {
            Stage::Single | Stage::Max => 1,
            Stage::Batch => BATCH,
            Stage::Volume => VOLUME,
            Stage::Oversize | Stage::Done => 0,
        }
    }

    /// The bytes of message `seq`: the stage, `seq`, then a pattern of both.
    pub fn message(self, seq: u32) -> Vec<u8> {
        let len = match self {
            Stage::Single => 64,
            Stage::Batch => 5 + seq as usize * 37,
            Stage::Oversize => MAX_MSG_PAYLOAD + 1,
            Stage::Max => MAX_MSG_PAYLOAD,
            Stage::Volume => VOLUME_LEN,
            Stage::Done => 5,
        };
        let mut m = Vec::with_capacity(len);
        m.push(self as u8);
        m.extend_from_slice(&seq.to_be_bytes());
        m.extend((5..len).map(|i| (i as u32 ^ seq.wrapping_mul(31) ^ self as u32) as u8));
        m
    }
}

/// Why a message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong(pub usize);

/// Queue a message unless it is over the control path's limit.
pub fn try_send(ctx: &mut Ctx<'_>, to: Dest, bytes: Vec<u8>) -> Result<(), TooLong> {
    let len = bytes.len();
    ctx.send_msg(to, bytes).map_err(|_| TooLong(len))
}

/// The NF.
#[derive(Debug)]
pub struct Messaging {
    /// Where packets go.
    pub out: Action,
    /// The test running.
    pub stage: Stage,
    /// Tests passed.
    pub passed: u32,
    /// Tests failed, with why.
    pub failed: Vec<String>,
    /// Messages received from itself.
    pub received: u64,
    /// Messages from others (ignored).
    pub foreign: u64,
    /// Packets passed.
    pub packets: u64,
    /// Print the result when done.
    pub print: bool,
    sent: u32,
    next_rx: u32,
    deadline: Duration,
}

impl Messaging {
    /// A tester passing packets to `out`.
    pub fn new(out: Action, print: bool) -> Self {
        Messaging {
            out,
            stage: Stage::Single,
            passed: 0,
            failed: Vec::new(),
            received: 0,
            foreign: 0,
            packets: 0,
            print,
            sent: 0,
            next_rx: 0,
            deadline: Duration::ZERO,
        }
    }

    fn own(ctx: &Ctx<'_>) -> Dest {
        Dest::Instance(ctx.instance())
    }

    /// Start `stage`: send what it sends first.
    fn start(&mut self, stage: Stage, ctx: &mut Ctx<'_>) {
        self.stage = stage;
        self.sent = 0;
        self.next_rx = 0;
        self.deadline = ctx.elapsed() + DEADLINE;
        match stage {
            Stage::Oversize => {
                let ok = try_send(ctx, Self::own(ctx), stage.message(0)) == Err(TooLong(MAX_MSG_PAYLOAD + 1));
                self.result(ok, "a message over the limit was not refused", ctx);
            }
            Stage::Done => {
                if self.print {
                    let _ = writeln!(
                        std::io::stdout().lock(),
                        "messaging[{}]: {}",
                        ctx.instance(),
                        self.summary()
                    );
                }
            }
            _ => self.send_more(ctx),
        }
    }

    /// Send the stage's messages: all at once, but at most [`WINDOW`] in flight in the
    /// volume test.
    fn send_more(&mut self, ctx: &mut Ctx<'_>) {
        let window = if self.stage == Stage::Volume { WINDOW } else { u32::MAX };
        while self.sent < self.stage.total() && self.sent - self.next_rx < window {
            if try_send(ctx, Self::own(ctx), self.stage.message(self.sent)).is_err() {
                return self.result(false, "refused its own message", ctx);
            }
            self.sent += 1;
        }
    }

    /// The stage ended: count it and start the next.
    fn result(&mut self, ok: bool, why: &str, ctx: &mut Ctx<'_>) {
        if ok {
            self.passed += 1;
        } else {
            self.failed.push(format!("{} ({why})", self.stage.name()));
        }
        self.start(self.stage.next(), ctx);
    }

    /// `passed N, failed N, received N[; failed: …]`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "passed {}, failed {}, received {}, foreign {}, packets {}",
            self.passed,
            self.failed.len(),
            self.received,
            self.foreign,
            self.packets
        );
        if !self.failed.is_empty() {
            s.push_str("; failed: ");
            s.push_str(&self.failed.join(", "));
        }
        s
    }
}

impl Handler for Messaging {
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        self.start(Stage::Single, ctx);
    }

    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        self.packets += batch.len() as u64;
        batch.set_all(self.out);
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        if self.stage != Stage::Done && ctx.elapsed() > self.deadline {
            let why = format!("{} of {} arrived in {DEADLINE:?}", self.next_rx, self.stage.total());
            self.result(false, &why, ctx);
        }
    }

    fn message(&mut self, from: u16, bytes: &[u8], ctx: &mut Ctx<'_>) {
        if from != ctx.instance() {
            self.foreign += 1;
            return;
        }
        self.received += 1;
        if self.stage == Stage::Done || bytes.first() != Some(&(self.stage as u8)) {
            // A late message of a test that already ended (it failed).
            return;
        }
        if bytes != self.stage.message(self.next_rx) {
            let why = format!(
                "message {} of {} differs or is out of order",
                self.next_rx,
                self.stage.total()
            );
            return self.result(false, &why, ctx);
        }
        self.next_rx += 1;
        if self.next_rx == self.stage.total() {
            self.result(true, "", ctx);
        } else {
            self.send_more(ctx);
        }
    }
}

/// `onvm nf messaging [-d SERVICE] [--quiet]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service of packets (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Do not print the result when the tests end.
    #[arg(long)]
    pub quiet: bool,
}

impl Catalogued for Args {
    const NAME: &'static str = "messaging";
    type Nf = Messaging;

    fn build(&self) -> Result<Messaging, String> {
        let out = match self.dest {
            Some(d) => Action::ToService(check_service("--dest", d)?),
            None => Action::Next,
        };
        Ok(Messaging::new(out, !self.quiet))
    }

    fn report(nf: &Messaging) -> Option<String> {
        Some(format!("messaging: {}", nf.summary()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_nf::offline::Offline;
    use onvm_proto::ctrl::NfMsg;

    /// Relay what the NF sent to itself, as the manager does, until it is quiet; the
    /// most messages in flight at once.
    fn relay(h: &mut Messaging, sim: &mut onvm_nf::offline::Running<'_>, mangle: impl Fn(u32, &mut Vec<u8>)) -> usize {
        let mut most = 0;
        let mut n = 0;
        loop {
            let msgs = sim.take_messages();
            if msgs.is_empty() {
                return most;
            }
            most = most.max(msgs.len());
            for m in msgs {
                let NfMsg::Msg { to, mut bytes } = m else {
                    panic!("{m:?}")
                };
                assert_eq!(to, Dest::Instance(1));
                mangle(n, &mut bytes);
                n += 1;
                sim.message(h, 1, &bytes);
            }
        }
    }

    #[test]
    fn every_test_passes_through_a_faithful_relay_and_packets_pass() {
        let mut h = Args {
            dest: Some(3),
            quiet: true,
        }
        .build()
        .unwrap();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let out = sim.frames(&mut h, 0, &vec![vec![1u8; 60]; 40]).unwrap();
        assert!(out.iter().all(|s| s.action == Action::ToService(3)));
        let most = relay(&mut h, &mut sim, |_, _| {});
        assert_eq!(most, BATCH as usize);
        sim.message(&mut h, 9, b"from another NF");
        assert_eq!(h.stage, Stage::Done);
        assert_eq!(
            Args::report(&h).unwrap(),
            format!(
                "messaging: passed 5, failed 0, received {}, foreign 1, packets 40",
                1 + BATCH + 1 + VOLUME
            )
        );
    }

    #[test]
    fn a_changed_or_lost_message_fails_its_test_and_the_rest_go_on() {
        let mut h = Messaging::new(Action::Next, false);
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        // The 5th message overall is batch message 3: one byte flipped.
        relay(&mut h, &mut sim, |n, b| {
            if n == 4 {
                let last = b.len() - 1;
                b[last] ^= 1;
            }
        });
        assert_eq!(h.passed, 4);
        assert_eq!(h.failed, ["batch (message 3 of 32 differs or is out of order)"]);
        // Lost messages: the deadline fails the test on a tick.
        let mut h = Messaging::new(Action::Next, false);
        let mut sim = off.start(&mut h);
        assert_eq!(sim.take_messages().len(), 1);
        h.deadline = Duration::ZERO;
        sim.tick(&mut h);
        assert_eq!(h.failed, ["single (0 of 1 arrived in 5s)"]);
        assert_eq!(h.stage, Stage::Batch);
    }

    #[test]
    fn messages_fit_the_limit_and_differ() {
        assert_eq!(Stage::Max.message(0).len(), MAX_MSG_PAYLOAD);
        assert!(Stage::Batch.message(BATCH - 1).len() <= MAX_MSG_PAYLOAD);
        assert_ne!(Stage::Volume.message(1), Stage::Volume.message(2));
        assert!(
            Args {
                dest: Some(0),
                quiet: true
            }
            .build()
            .unwrap_err()
            .contains("--dest 0")
        );
    }
}
