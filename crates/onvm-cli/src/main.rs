//! `onvm`: one command for the NF manager, the example NFs, whole deployments from a
//! config file, the demo and the benchmarks.
#![forbid(unsafe_code)]

mod bench;
mod bounds;
mod capture;
mod image;
mod mgr;
mod nf;
mod top;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// onvm-rs: network functions on shared memory, chained and scaled.
#[derive(Parser, Debug)]
#[command(name = "onvm", version)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the NF manager.
    Mgr(mgr::MgrArgs),
    /// Run a built-in example NF.
    Nf(nf::NfCmd),
    /// Start a manager, its ports, NFs and chains from one TOML file.
    Up(up::UpArgs),
    /// Run the built-in demo: generator → monitor → forwarder → out, with live stats.
    Demo(up::DemoArgs),
    /// Measure throughput and latency (speed_tester self-loop and chains).
    Bench(bench::BenchArgs),
    /// Build container images of NFs.
    Image(image::ImageCmd),
    /// Write the packets passing a port or an NF of a running manager (its `--http`
    /// endpoint) to a pcap file.
    Capture(capture::CaptureArgs),
    /// Watch a running manager live (its `--http` endpoint): ports, NFs, services, drops.
    Top(top::TopArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Numbers are checked before anything starts (see `bounds`).
    let result = match cli.cmd {
        Cmd::Mgr(a) => bounds::check_mgr(&a.common).and_then(|()| mgr::run(a)),
        Cmd::Nf(a) => bounds::check_nf(&a).and_then(|()| nf::run(a)),
        Cmd::Up(a) => bounds::check_mgr(&a.common).and_then(|()| up::run_file(a)),
        Cmd::Demo(a) => bounds::check_demo(a.seconds).and_then(|()| up::demo(a)),
        Cmd::Bench(a) => bounds::check_bench(a.seconds).and_then(|()| bench::run(a)),
        Cmd::Image(a) => image::run(a),
        Cmd::Top(a) => top::run(a),
        Cmd::Capture(a) => capture::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            onvm_mgr::stats::emit_err(format_args!("onvm: error: {e}\n"));
            ExitCode::from(2)
        }
    }
}

/// Errors of the command line tool: a message for the user.
pub type CliResult = Result<ExitCode, String>;

/// A stop flag raised by SIGINT or SIGTERM.
pub fn stop_on_signals() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    stop
}
