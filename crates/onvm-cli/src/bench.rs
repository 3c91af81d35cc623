//! `onvm bench` (placeholder until the harness lands).

use clap::Args;

use crate::CliResult;

/// `onvm bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Write the results as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// `onvm bench`.
pub fn run(_a: BenchArgs) -> CliResult {
    Err("onvm bench: not implemented yet".into())
}
