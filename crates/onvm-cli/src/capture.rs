//! `onvm capture`: the packets passing a port or an NF of a running manager, written to
//! a pcap file (tcpdump, tshark and Wireshark read it) while traffic flows.
//!
//! The manager copies them as they pass (`onvm_mgr::capture`) and streams them over its
//! HTTP endpoint (`--http`) as a pcap file; this command writes each packet as it comes,
//! so the file is whole up to the last packet whenever it is read or the command is
//! stopped. Nothing is copied at points nobody captures.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use pcap_file::pcap::{PcapReader, PcapWriter};

use crate::CliResult;

/// `onvm capture`.
#[derive(Args, Debug)]
pub struct CaptureArgs {
    /// The manager's HTTP endpoint (`onvm mgr --http`): a URL, ADDR:PORT or a port on
    /// 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub url: String,
    /// Where: `port:N` (a port) or `nf:ID` (an NF instance).
    #[arg(long)]
    pub at: String,
    /// Which way: `rx` (received by the port, given to the NF) or `tx` (sent out of the
    /// port, handed on by the NF).
    #[arg(long, default_value = "rx")]
    pub dir: String,
    /// Stop after this many packets (default: until interrupted).
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Bytes kept of each packet (64..=65535).
    #[arg(long, default_value_t = 65535)]
    pub snaplen: u32,
    /// The pcap file to write (`-`: standard output, e.g. `| tcpdump -r -`).
    #[arg(short = 'w', long)]
    pub write: PathBuf,
}

/// `onvm capture`.
pub fn run(a: CaptureArgs) -> CliResult {
    let base = crate::top::base_url(&a.url);
    let mut url = format!("{base}/api/v1/capture?at={}&dir={}&snaplen={}", a.at, a.dir, a.snaplen);
    if let Some(c) = a.count {
        url += &format!("&count={c}");
    }
    let http: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut resp = http.get(&url).call().map_err(|e| format!("{base}: {e}"))?;
    if resp.status() != 200 {
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        let why = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(String::from))
            .unwrap_or(body);
        return Err(format!("capture at {} {}: {why}", a.at, a.dir));
    }
    let out: Box<dyn std::io::Write + Send> = if a.write.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::fs::File::create(&a.write).map_err(|e| format!("{}: {e}", a.write.display()))?)
    };
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let reader = resp.into_body().into_reader();
    let copy = std::thread::spawn(move || -> Result<(), String> {
        let mut out = out;
        let mut from = PcapReader::new(reader).map_err(|e| format!("the manager's stream: {e}"))?;
        // Each record is put together here and written with one call, so the file is
        // whole up to the last packet whenever it is read or we are stopped.
        let staged = onvm_mgr::capture::Staged::default();
        let mut to = PcapWriter::with_header(staged.clone(), from.header()).map_err(|e| e.to_string())?;
        let put = |out: &mut Box<dyn std::io::Write + Send>| {
            out.write_all(&staged.take())
                .and_then(|()| out.flush())
                .map_err(|e| e.to_string())
        };
        put(&mut out)?;
        while let Some(p) = from.next_packet() {
            let p = p.map_err(|e| format!("the manager's stream: {e}"))?;
            to.write_packet(&p).map_err(|e| e.to_string())?;
            put(&mut out)?;
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let stop = crate::stop_on_signals();
    let result = loop {
        if copy.is_finished() {
            break copy
                .join()
                .unwrap_or_else(|_| Err("the copying thread panicked".into()));
        }
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let n = written.load(Ordering::Relaxed);
    onvm_mgr::stats::emit_err(format_args!(
        "onvm capture: {n} packets at {} {} written to {}\n",
        a.at,
        a.dir,
        a.write.display()
    ));
    result.map(|()| ExitCode::SUCCESS)
}
