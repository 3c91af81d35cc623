//! The NFs `onvm nf NAME` runs and `onvm up` starts by name: one list, one trait.
//!
//! Each NF module has an `Args` struct (its own flags, `clap`) that implements
//! [`Catalogued`]: its name and how to make its handler from the flags. The
//! [`Catalogue`] enum, made from the list at the bottom of this file, is `onvm nf`'s
//! subcommands, so adding an NF is a module and one line here.

use onvm_nf::{Handler, Nf, NfBuilder, Summary};

/// What a catalogued NF's run ended with.
#[derive(Debug)]
pub struct Launched {
    /// The NF library's summary.
    pub summary: Summary,
    /// What the NF counted, as one line (`NAME: key value, …`), if it reports.
    pub report: Option<String>,
}

/// An NF of the catalogue: its flags and how to run it.
pub trait Catalogued: clap::Args + Sized {
    /// Its name in `onvm up` configs and as its default tag (`l3fwd`, `basic_monitor`).
    const NAME: &'static str;
    /// Its handler.
    type Nf: Handler;

    /// The handler for these flags, or what is wrong with them (naming the flag).
    fn build(&self) -> Result<Self::Nf, String>;

    /// One line of what it counted, printed when it stops (the golden tests read it).
    fn report(_nf: &Self::Nf) -> Option<String> {
        None
    }

    /// Register and run until stopped. `connected` is told the registration first.
    /// NFs that need the registered [`Nf`] itself (to start children) override this.
    fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        let mut h = self.build()?;
        let nf = b.connect().map_err(|e| e.to_string())?;
        connected(&nf);
        let summary = nf.run(&mut h).map_err(|e| e.to_string())?;
        Ok(Launched {
            summary,
            report: Self::report(&h),
        })
    }
}

/// A service ID given as a flag must be one (1..MAX_SERVICES).
pub fn check_service(flag: &str, id: u16) -> Result<u16, String> {
    let max = onvm_proto::limits::MAX_SERVICES;
    if (1..max).contains(&id) {
        Ok(id)
    } else {
        Err(format!("{flag} {id}: out of range, must be 1..={}", max - 1))
    }
}

macro_rules! catalogue {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)*) => {
        /// Every NF of the catalogue, as `onvm nf` subcommands.
        #[derive(clap::Subcommand, Debug)]
        pub enum Catalogue {
            $($(#[$doc])* $variant(crate::$module::Args),)*
        }

        impl Catalogue {
            /// The NF's name (its default tag).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Catalogue::$variant(_) => <crate::$module::Args as Catalogued>::NAME,)*
                }
            }

            /// Check the flags, register with `b` and run until stopped.
            pub fn launch(self, b: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
                match self {
                    $(Catalogue::$variant(a) => a.launch(b, connected),)*
                }
            }

            /// Check the flags without running (what `build` would refuse).
            pub fn check(&self) -> Result<(), String> {
                match self {
                    $(Catalogue::$variant(a) => a.build().map(drop),)*
                }
            }
        }
    };
}

catalogue! {
    /// Circulate packets and measure Mpps (and latency with -l).
    SpeedTester => speed_tester,
    /// Forward every packet to -d or the chain's next hop.
    SimpleForward => simple_forward,
    /// Count packets and protocols, print them every second.
    BasicMonitor => basic_monitor,
    /// Send packets out of the other port of their pair (0↔1).
    Bridge => bridge,
    /// The template NF: every callback documented; counts packets, passes them on.
    Skeleton => skeleton,
    /// Token-bucket shaper: -D depth, -R MB/s; waiting packets leave in order.
    Tbf => tbf,
    /// Hash flows into -n queues, send them by deficit round robin (--rate to pace).
    FairQueue => fair_queue,
    /// Count-min sketch and top-K: keys over --threshold per --window (drop or divert them).
    HeavyHitter => heavy_hitter,
    /// Drop UDP floods to a victim and DNS responses that answer no query seen.
    FloodMitigator => flood_mitigator,
    /// Test NF-to-self messages (single, batch, size limit, volume); packets pass meanwhile.
    Messaging => messaging,
    /// Generate UDP flows at -t pps to -d or out of -o; measure what comes back.
    LoadGenerator => load_generator,
    /// Start -n more instances of this NF's service on threads (the scaling API).
    Scaling => scaling,
}
