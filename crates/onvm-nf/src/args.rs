//! openNetVM's NF flags, for the command line of any NF.
//!
//! Every openNetVM NF takes the same flags before its own (`-r` service, `-n` instance,
//! `-t` time to live, …). [`NfArgs`] is them as a `clap` argument group: flatten it into
//! an NF's own options and make its builder with [`NfArgs::builder`], which starts from
//! what a launcher set ([`NfBuilder::from_env`]: `onvm up` sets the service, tag and core
//! mode) and lets the flags override it.
//!
//! ```
//! use clap::Parser;
//! use onvm_nf::NfArgs;
//!
//! /// Drop frames longer than a limit.
//! #[derive(Parser)]
//! struct Opts {
//!     #[command(flatten)]
//!     nf: NfArgs,
//!     /// Longest frame passed on.
//!     #[arg(short = 'm', long, default_value_t = 1500)]
//!     max: usize,
//! }
//!
//! let o = Opts::parse_from(["my-nf", "-r", "3", "-m", "64"]);
//! let b = o.nf.builder("my_nf")?;
//! assert_eq!((b.tag(), o.max), ("my_nf", 64));
//! # Ok::<(), onvm_nf::NfError>(())
//! ```

use std::path::PathBuf;
use std::time::Duration;

use crate::builder::NfBuilder;
use crate::error::NfError;

/// openNetVM's NF flags; see the [module docs](self).
#[derive(clap::Args, Debug, Clone, Default, PartialEq)]
pub struct NfArgs {
    /// Service ID (openNetVM -r; default: $ONVM_SERVICE, else 1).
    #[arg(short = 'r', long)]
    pub service: Option<u16>,
    /// Instance ID to insist on (openNetVM -n).
    #[arg(short = 'n', long)]
    pub instance: Option<u16>,
    /// Stop after this many seconds (openNetVM -t).
    #[arg(short = 't', long)]
    pub ttl: Option<f64>,
    /// Stop after this many packets (openNetVM -l).
    #[arg(long)]
    pub packet_limit: Option<u64>,
    /// Share a core and sleep when idle (openNetVM -s; default: $ONVM_SHARED_CORE).
    #[arg(long)]
    pub shared_core: bool,
    /// Run on this core (openNetVM -m with -l CORE).
    #[arg(long)]
    pub core: Option<u16>,
    /// CPU weight against the NFs sharing its core, cgroup v2's `cpu.weight` scale
    /// (1..=10000, 100 = default; above 100 needs root) [default: $ONVM_WEIGHT].
    #[arg(long, value_name = "WEIGHT")]
    pub weight: Option<u32>,
    /// Manager's control socket (default: $ONVM_SOCKET, else the per-user default).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Tag shown in stats (default: $ONVM_TAG, else the NF's name).
    #[arg(long)]
    pub tag: Option<String>,
}

impl NfArgs {
    /// The builder: the launcher's settings ([`NfBuilder::from_env`], with `default_tag`),
    /// overridden by the flags given.
    pub fn builder(&self, default_tag: &str) -> Result<NfBuilder, NfError> {
        let mut b = NfBuilder::from_env(default_tag);
        if let Some(tag) = &self.tag {
            b = b.with_tag(tag.clone());
        }
        if let Some(s) = self.service {
            b = b.service(s);
        }
        if self.shared_core {
            b = b.shared_core(true);
        }
        if let Some(i) = self.instance {
            b = b.instance(i);
        }
        if let Some(t) = self.ttl {
            let ttl = Duration::try_from_secs_f64(t)
                .map_err(|_| NfError::Option(format!("--ttl {t} must be a non-negative number of seconds")))?;
            b = b.ttl(ttl);
        }
        if let Some(l) = self.packet_limit {
            b = b.packet_limit(l);
        }
        if let Some(w) = self.weight {
            b = b.weight(w);
        }
        if let Some(core) = self.core {
            b = b.core(core);
        }
        if let Some(s) = &self.socket {
            b = b.socket(s);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Opts {
        #[command(flatten)]
        nf: NfArgs,
    }

    #[test]
    fn opennetvm_s_short_flags_parse_and_a_bad_ttl_is_named() {
        let o = Opts::parse_from(["nf", "-r", "4", "-n", "9", "-t", "2.5", "--tag", "fw"]);
        let b = o.nf.builder("x").unwrap();
        assert_eq!(
            (b.tag(), b.service, b.instance, b.ttl),
            ("fw", 4, Some(9), Some(Duration::from_millis(2500)))
        );
        let o = Opts::parse_from(["nf", "--ttl=-1"]);
        let e = o.nf.builder("x").unwrap_err().to_string();
        assert!(e.contains("--ttl -1"), "{e}");
    }
}
