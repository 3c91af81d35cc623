//! The template NF: copy this file to start a new one.
//!
//! It counts packets and bytes, prints the count every `-p SECONDS` (0 = never) and
//! passes every packet to `-d SERVICE` or the chain's next hop. Every callback of
//! [`Handler`] is here, with when it runs and what belongs in it, so a new NF only
//! fills in the bodies. openNetVM's `skeleton` (develop branch) also takes `-v` (print
//! every N packets); that is left out: printing from the packet path stalls it.
//!
//! To make a copy a catalogue NF: rename the module and `NAME`, add `pub mod NAME;` to
//! `lib.rs` and a line to the `catalogue!` list in `catalogue.rs`.

use std::io::Write as _;
use std::time::Duration;

use onvm_nf::{Action, Batch, Ctx, Handler, PacketMut};

use crate::catalogue::{Catalogued, check_service};

/// The NF's state: everything its callbacks share lives here (no globals, no locks:
/// one thread runs every callback).
#[derive(Debug, Clone, Default)]
pub struct Skeleton {
    /// Where packets go (`-d`); `None` = the chain's next hop.
    pub dest: Option<u16>,
    /// Print every this often; `None` = never.
    pub print_every: Option<Duration>,
    /// Packets seen.
    pub packets: u64,
    /// Bytes seen.
    pub bytes: u64,
    /// Ticks so far (the runtime's tick interval, 1 s by default).
    ticks: u64,
    /// When it last printed, in ticks' time.
    printed_at: Duration,
}

impl Skeleton {
    /// The action every packet gets.
    fn action(&self) -> Action {
        self.dest.map_or(Action::Next, Action::ToService)
    }
}

impl Handler for Skeleton {
    /// Runs once, after the manager registered the NF and before the first packet.
    /// Allocate tables, open files, send the first packets of a generator here: `ctx`
    /// knows the instance and service IDs now.
    fn setup(&mut self, ctx: &mut Ctx<'_>) {
        let _ = writeln!(
            std::io::stdout().lock(),
            "skeleton[{}]: service {}, ready",
            ctx.instance(),
            ctx.service()
        );
    }

    /// Runs for each packet when [`Handler::batch`] is not overridden. Look at or edit
    /// the packet and answer where it goes; keep this path free of allocation, locks,
    /// syscalls and printing (it runs millions of times a second).
    fn packet(&mut self, pkt: &mut PacketMut<'_>, _ctx: &mut Ctx<'_>) -> Action {
        self.packets += 1;
        self.bytes += pkt.len() as u64;
        self.action()
    }

    /// Runs for each burst (up to 32 packets) as it arrives. Override it when a burst
    /// can be handled at once (here: one action for all); the default calls
    /// [`Handler::packet`] per packet.
    fn batch(&mut self, batch: &mut Batch<'_>, _ctx: &mut Ctx<'_>) {
        for i in 0..batch.len() {
            if let Some(p) = batch.packet(i) {
                self.bytes += p.len() as u64;
            }
        }
        self.packets += batch.len() as u64;
        batch.set_all(self.action());
    }

    /// Runs every tick interval (builder's `.tick`, 1 s by default), whether packets
    /// flow or not: print, age tables, release kept packets, send messages.
    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        self.ticks += 1;
        let Some(every) = self.print_every else { return };
        let now = ctx.elapsed();
        if now.saturating_sub(self.printed_at) >= every {
            self.printed_at = now;
            // A reader that went away (`onvm up | head`) is no reason to die.
            let _ = writeln!(
                std::io::stdout().lock(),
                "skeleton[{}]: {} packets, {} bytes",
                ctx.instance(),
                self.packets,
                self.bytes
            );
        }
    }

    /// Runs when a message arrives from the manager (`from` = 0) or another NF
    /// ([`Ctx::send_msg`]): reconfigure, answer a query.
    fn message(&mut self, from: u16, bytes: &[u8], ctx: &mut Ctx<'_>) {
        let _ = writeln!(
            std::io::stdout().lock(),
            "skeleton[{}]: {} bytes from {from}",
            ctx.instance(),
            bytes.len()
        );
    }

    /// Runs once when the NF stops (signal, manager, TTL, packet limit, `ctx.stop()`):
    /// flush what it holds. Packets it kept and did not return are dropped after this.
    fn stop(&mut self, ctx: &mut Ctx<'_>) {
        let _ = writeln!(
            std::io::stdout().lock(),
            "skeleton[{}]: stopping after {} ticks",
            ctx.instance(),
            self.ticks
        );
    }
}

/// `onvm nf skeleton [-d SERVICE] [-p SECONDS]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Destination service (default: the chain's next hop).
    #[arg(short = 'd', long)]
    pub dest: Option<u16>,
    /// Print the counts every this many seconds (0 = never).
    #[arg(short = 'p', long = "print-delay", default_value_t = 1.0)]
    pub print_delay: f64,
}

impl Catalogued for Args {
    const NAME: &'static str = "skeleton";
    type Nf = Skeleton;

    /// Check every flag; an error names the flag and its value.
    fn build(&self) -> Result<Skeleton, String> {
        let dest = self.dest.map(|d| check_service("--dest", d)).transpose()?;
        if !(0.0..=86_400.0).contains(&self.print_delay) {
            return Err(format!(
                "--print-delay {}: out of range, must be 0..=86400 seconds",
                self.print_delay
            ));
        }
        let print_every = (self.print_delay > 0.0).then(|| Duration::from_secs_f64(self.print_delay));
        Ok(Skeleton {
            dest,
            print_every,
            ..Default::default()
        })
    }

    /// The line the golden tests read: `skeleton: packets N, bytes N`.
    fn report(nf: &Skeleton) -> Option<String> {
        Some(format!("skeleton: packets {}, bytes {}", nf.packets, nf.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use onvm_nf::offline::Offline;

    fn build(flags: &[&str]) -> Result<Skeleton, String> {
        crate::parse_flags::<Args>(flags)?.build()
    }

    #[test]
    fn counts_and_passes_every_packet_to_next_or_dest() {
        for (flags, want) in [(&[][..], Action::Next), (&["-d", "7"][..], Action::ToService(7))] {
            let mut h = build(flags).unwrap();
            let mut off = Offline::new().unwrap();
            let mut sim = off.start(&mut h);
            let frames: Vec<Vec<u8>> = (0..70).map(|i| vec![0u8; 60 + i]).collect();
            let out = sim.frames(&mut h, 0, &frames).unwrap();
            assert!(out.iter().all(|s| s.action == want));
            assert_eq!(out.len(), 70);
            sim.tick(&mut h);
            sim.message(&mut h, 0, b"hi");
            sim.stop(&mut h);
            assert_eq!((h.packets, h.bytes), (70, (60..130).sum::<u64>()));
        }
    }

    #[test]
    fn bad_flags_are_named() {
        assert!(build(&["-d", "0"]).unwrap_err().contains("--dest 0"));
        assert!(build(&["-p", "-1"]).is_err());
        assert!(build(&["-p", "1e9"]).unwrap_err().contains("--print-delay"));
        assert_eq!(build(&["-p", "0"]).unwrap().print_every, None);
    }

    #[test]
    fn any_bytes_pass() {
        let mut h = build(&[]).unwrap();
        let mut off = Offline::new().unwrap();
        let mut sim = off.start(&mut h);
        let frames: Vec<Vec<u8>> = (0..64).map(|n| vec![0xa5; n]).collect();
        assert_eq!(sim.frames(&mut h, 0, &frames).unwrap().len(), 64);
    }
}
