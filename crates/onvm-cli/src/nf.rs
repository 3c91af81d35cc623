//! `onvm nf NAME`: the built-in example NFs, with openNetVM's flags.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use onvm_nf::{Handler, Nf, NfBuilder, Summary};
use onvm_nfs::{basic_monitor::BasicMonitor, bridge::Bridge, simple_forward::SimpleForward, speed_tester};

use crate::CliResult;

/// Options every NF takes (openNetVM's NF flags).
#[derive(Args, Debug, Clone)]
pub struct NfCommon {
    /// Service ID (openNetVM -r).
    #[arg(short = 'r', long, default_value_t = 1)]
    pub service: u16,
    /// Instance ID to insist on (openNetVM -n).
    #[arg(short = 'n', long)]
    pub instance: Option<u16>,
    /// Stop after this many seconds (openNetVM -t).
    #[arg(short = 't', long)]
    pub ttl: Option<f64>,
    /// Stop after this many packets (openNetVM -l).
    #[arg(long)]
    pub packet_limit: Option<u64>,
    /// Share a core and sleep when idle (openNetVM -s).
    #[arg(long)]
    pub shared_core: bool,
    /// Run on this core (openNetVM -m with -l CORE).
    #[arg(long)]
    pub core: Option<u16>,
    /// Manager's control socket.
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Tag shown in stats (default: the NF's name).
    #[arg(long)]
    pub tag: Option<String>,
}

/// Which NF.
#[derive(Subcommand, Debug)]
pub enum NfKind {
    /// Circulate packets and measure Mpps (and latency with -l).
    SpeedTester {
        /// Destination service (default: itself).
        #[arg(short = 'd', long)]
        dest: Option<u16>,
        /// Packets in flight.
        #[arg(short = 'c', long, default_value_t = 128)]
        count: usize,
        /// Frame size in bytes (with FCS).
        #[arg(short = 's', long, default_value_t = 64)]
        size: usize,
        /// Measure per-packet round-trip latency.
        #[arg(short = 'l', long)]
        latency: bool,
    },
    /// Forward every packet to -d or the chain's next hop.
    SimpleForward {
        /// Destination service.
        #[arg(short = 'd', long)]
        dest: Option<u16>,
    },
    /// Count packets and protocols, print them every second.
    BasicMonitor {
        /// Destination service.
        #[arg(short = 'd', long)]
        dest: Option<u16>,
        /// Do not print.
        #[arg(long)]
        quiet: bool,
    },
    /// Send packets out of the other port of their pair (0↔1).
    Bridge,
}

/// The built-in NFs' names as `onvm nf` takes them (`simple-forward`, …), from the
/// subcommands themselves, so a new NF is listed without editing a list.
pub fn builtin_names() -> Vec<String> {
    NfKind::augment_subcommands(clap::Command::new("nf"))
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
}

impl NfKind {
    fn name(&self) -> &'static str {
        match self {
            NfKind::SpeedTester { .. } => "speed_tester",
            NfKind::SimpleForward { .. } => "simple_forward",
            NfKind::BasicMonitor { .. } => "basic_monitor",
            NfKind::Bridge => "bridge",
        }
    }
}

/// `onvm nf`.
#[derive(Args, Debug)]
pub struct NfCmd {
    #[command(flatten)]
    pub common: NfCommon,
    #[command(subcommand)]
    pub kind: NfKind,
}

/// The builder for these options.
pub fn builder(c: &NfCommon, default_tag: &str) -> Result<NfBuilder, String> {
    let mut b = Nf::builder(c.tag.clone().unwrap_or_else(|| default_tag.to_string()))
        .service(c.service)
        .shared_core(c.shared_core);
    if let Some(i) = c.instance {
        b = b.instance(i);
    }
    if let Some(t) = c.ttl {
        b = b.ttl(Duration::try_from_secs_f64(t).map_err(|_| "--ttl must be a non-negative number".to_string())?);
    }
    if let Some(l) = c.packet_limit {
        b = b.packet_limit(l);
    }
    if let Some(core) = c.core {
        b = b.core(core);
    }
    if let Some(s) = &c.socket {
        b = b.socket(s);
    }
    Ok(b)
}

fn go<H: Handler>(b: NfBuilder, h: H) -> Result<Summary, String> {
    let tag = b.tag().to_string();
    let nf = b.connect().map_err(|e| e.to_string())?;
    onvm_mgr::stats::emit_err(format_args!(
        "{tag}: instance {} of service {} on core {}\n",
        nf.instance(),
        nf.service(),
        nf.core().map_or_else(|| "any".into(), |c| c.to_string())
    ));
    nf.run(h).map_err(|e| e.to_string())
}

fn print_summary(s: &Summary) {
    let c = &s.counters;
    onvm_mgr::stats::emit(format_args!(
        "NF Activity summary: {} (instance {}, service {}) ran {:.1} s, {}: rx {} tx {} drop {} next {} tonf {} out {} buf {} ret {} tx_drop {}\n",
        s.tag,
        s.instance,
        s.service,
        s.elapsed.as_secs_f64(),
        s.reason,
        c.rx,
        c.tx,
        c.act_drop,
        c.act_next,
        c.act_tonf,
        c.act_out,
        c.act_buffer,
        c.act_returned,
        c.tx_drop
    ));
}

/// `onvm nf`.
pub fn run(a: NfCmd) -> CliResult {
    let b = builder(&a.common, a.kind.name())?;
    let summary = match a.kind {
        NfKind::SpeedTester {
            dest,
            count,
            size,
            latency,
        } => {
            let mut st = speed_tester::SpeedTester::new(speed_tester::Config {
                dest,
                count,
                size,
                latency,
                print: true,
            });
            let s = go(b, &mut st)?;
            if let Some(m) = st.result {
                onvm_mgr::stats::emit(format_args!(
                    "speed_tester: {:.2} Mpps over {:.1} s ({} packets in flight){}\n",
                    m.mpps,
                    m.window.as_secs_f64(),
                    m.in_flight,
                    match (m.p50_ns, m.p99_ns) {
                        (Some(a), Some(b)) => format!("; latency p50 {a} ns, p99 {b} ns"),
                        _ => String::new(),
                    }
                ));
            }
            s
        }
        NfKind::SimpleForward { dest } => go(b, SimpleForward { dest })?,
        NfKind::BasicMonitor { dest, quiet } => {
            let mut m = BasicMonitor::new(dest, !quiet);
            let s = go(b, &mut m)?;
            onvm_mgr::stats::emit(format_args!("basic_monitor: {:?}\n", m.counts));
            s
        }
        NfKind::Bridge => go(b, Bridge)?,
    };
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}
