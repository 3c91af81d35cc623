//! `onvm nf NAME`: the NF catalogue (`onvm_nfs::Catalogue`), with openNetVM's flags.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use onvm_nf::{NfArgs, Summary};
use onvm_nfs::Catalogue;

use crate::CliResult;

/// `onvm nf`.
#[derive(Args, Debug)]
pub struct NfCmd {
    #[command(flatten)]
    pub common: NfArgs,
    #[command(subcommand)]
    pub kind: Catalogue,
}

/// The built-in NFs' names as `onvm nf` takes them (`simple-forward`, …), from the
/// subcommands themselves, so a new NF is listed without editing a list.
pub fn builtin_names() -> Vec<String> {
    Catalogue::augment_subcommands(clap::Command::new("nf"))
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect()
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
    let b = a.common.builder(a.kind.name()).map_err(|e| e.to_string())?;
    let tag = b.tag().to_string();
    let launched = a.kind.launch(b, &|nf| {
        onvm_mgr::stats::emit_err(format_args!(
            "{tag}: instance {} of service {} on core {}\n",
            nf.instance(),
            nf.service(),
            nf.core().map_or_else(|| "any".into(), |c| c.to_string())
        ))
    })?;
    if let Some(r) = &launched.report {
        onvm_mgr::stats::emit(format_args!("{r}\n"));
    }
    print_summary(&launched.summary);
    Ok(ExitCode::SUCCESS)
}
