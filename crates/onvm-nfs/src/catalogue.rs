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

/// Something done with a catalogued NF's flags whatever NF it is (run it, check it,
/// benchmark its handler): [`Catalogue::visit`] calls `visit` with the NF's own `Args`.
pub trait Visit {
    /// What it gives back.
    type Out;
    /// Do it with these flags.
    fn visit<A: Catalogued>(self, args: A) -> Self::Out;
}

/// [`Catalogued::launch`], as a [`Visit`].
struct Launch<'c> {
    builder: NfBuilder,
    connected: &'c dyn Fn(&Nf),
}

impl Visit for Launch<'_> {
    type Out = Result<Launched, String>;
    fn visit<A: Catalogued>(self, args: A) -> Self::Out {
        args.launch(self.builder, self.connected)
    }
}

/// [`Catalogued::build`], its handler dropped, as a [`Visit`].
struct Check;

impl Visit for Check {
    type Out = Result<(), String>;
    fn visit<A: Catalogued>(self, args: A) -> Self::Out {
        args.build().map(drop)
    }
}

macro_rules! catalogue {
    ($($(#[$doc:meta])* $variant:ident => $module:ident,)*) => {
        /// Every NF of the catalogue, as `onvm nf` subcommands.
        #[derive(clap::Subcommand, Debug, Clone)]
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

            /// Call `v` with the NF's own flags.
            pub fn visit<V: Visit>(self, v: V) -> V::Out {
                match self {
                    $(Catalogue::$variant(a) => v.visit(a),)*
                }
            }
        }
    };
}

impl Catalogue {
    /// Check the flags, register with `b` and run until stopped.
    pub fn launch(self, builder: NfBuilder, connected: &dyn Fn(&Nf)) -> Result<Launched, String> {
        self.visit(Launch { builder, connected })
    }

    /// Check the flags without running (what `build` would refuse).
    pub fn check(&self) -> Result<(), String> {
        self.clone().visit(Check)
    }

    /// The NF `words` name, with its flags (`["firewall", "-f", "rules.txt"]`), as
    /// `onvm nf` would parse them (the name with `_` or `-`).
    pub fn parse(words: &[&str]) -> Result<Catalogue, String> {
        #[derive(clap::Parser, Debug)]
        struct One {
            #[command(subcommand)]
            nf: Catalogue,
        }
        use clap::Parser as _;
        // The name as configs write it (`simple_forward`) or as `onvm nf` takes it.
        let name = words.first().map(|w| w.replace('_', "-"));
        let rest = words.iter().skip(1).map(|w| w.to_string());
        One::try_parse_from(std::iter::once("nf".to_string()).chain(name).chain(rest))
            .map(|o| o.nf)
            .map_err(|e| e.to_string())
    }
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
    /// Stateless ACL on IPv4/IPv6 prefixes (longest match on the source, or --dst).
    Firewall => firewall,
    /// Forward on the destination IP (LPM, or -e exact 5-tuple) to a port, TTL decremented.
    L3fwd => l3fwd,
    /// Route on the destination IP to a service from openNetVM's route.conf.
    NfRouter => nf_router,
    /// Send packets out of the paired port (0↔1), rewriting their MACs (-n: not).
    L2fwd => l2fwd,
    /// Answer ARP requests for each port's IPv4 address (-s ip0,ip1,…).
    ArpResponse => arp_response,
    /// Connection tracking: outbound opens connections, inbound passes only on one.
    StatefulFirewall => stateful_firewall,
    /// NAT44: inside sources out through one public IPv4 address, replies back; static DNAT.
    Nat => nat,
    /// VXLAN: --mode encap wraps frames for a remote tunnel end, --mode decap unwraps them.
    Vxlan => vxlan,
    /// Police packets (or bytes) per second per flow, source, destination or prefix.
    RateLimiter => rate_limiter,
    /// Encrypt UDP payloads with AES-GCM (nonce and tag added).
    AesEncrypt => aes_encrypt,
    /// Decrypt AES-GCM UDP payloads; drop those whose tag does not verify.
    AesDecrypt => aes_decrypt,
    /// Forward TCP/UDP packets whose payload holds one of the strings; drop the rest.
    PayloadScan => payload_scan,
    /// Track flows in a bounded table (idle expiry); print the top flows every -p seconds.
    FlowTracker => flow_tracker,
    /// Flow-director demo: a flow's first packet to -d, later ones to the next hop.
    TestFlowDir => test_flow_dir,
    /// L3 load balancer for a virtual IP: flows spread over backends, replies rewritten back.
    LoadBalancer => load_balancer,
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
