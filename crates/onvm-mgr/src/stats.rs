//! The stats views: openNetVM's console table, its raw CSV, and the exit summary.
//!
//! Pure formatting over [`Snapshot`]s taken by the manager once per interval; rates
//! are differences between two snapshots, so nothing on the data path computes them.
//!
//! What the manager and the `onvm` command print goes through [`emit`] and [`emit_err`]:
//! a reader that went away (`onvm mgr | head -3`) makes a write fail with `EPIPE`
//! (Rust ignores `SIGPIPE`), which `println!` turns into a panic. The manager has NFs
//! and a pool to look after; losing its audience is no reason to stop.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, SystemTime};

use onvm_ports::PortStats;
use onvm_proto::ctrl::NfCounters;

/// One port's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortRow {
    /// Port number.
    pub no: u16,
    /// Its spec.
    pub name: String,
    /// Counters.
    pub stats: PortStats,
}

/// One NF's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfRow {
    /// Tag.
    pub tag: String,
    /// Instance ID.
    pub id: u16,
    /// Service ID.
    pub service: u16,
    /// Core, if pinned.
    pub core: Option<u16>,
    /// Parent instance.
    pub parent: Option<u16>,
    /// Life state, as text.
    pub state: &'static str,
    /// Counters the NF reported.
    pub counters: NfCounters,
    /// Packets the manager could not enqueue to it.
    pub rx_drop: u64,
    /// The container it runs in (`NAME (ID)`, or the short ID), if any.
    pub container: Option<String>,
    /// What a supervisor calls it (`pid N`, `container NAME (ID)`), when known.
    pub supervised_as: Option<String>,
}

/// Everything the views show at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Time since the manager started.
    pub uptime: Duration,
    /// Ports.
    pub ports: Vec<PortRow>,
    /// NFs.
    pub nfs: Vec<NfRow>,
    /// Packets the manager dropped, by reason (only non-zero ones).
    pub drops: Vec<(&'static str, u64)>,
    /// Recent events (NF started, stopped, crashed and reclaimed, …).
    pub events: Vec<String>,
}

impl Snapshot {
    fn port(&self, no: u16) -> Option<&PortRow> {
        self.ports.iter().find(|q| q.no == no)
    }

    /// The same NF (same instance and tag) in this snapshot.
    fn nf(&self, n: &NfRow) -> Option<&NfRow> {
        self.nfs.iter().find(|m| m.id == n.id && m.tag == n.tag)
    }

    /// Seconds between `prev` and this snapshot (0 without one: rates read 0).
    fn seconds_since(&self, prev: Option<&Snapshot>) -> f64 {
        prev.map_or(0.0, |p| self.uptime.saturating_sub(p.uptime).as_secs_f64())
    }
}

/// Write `args` to stdout, as `print!` does, ignoring errors (a closed pipe, a full
/// disk): output is a courtesy, never a reason to stop.
pub fn emit(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.flush();
}

/// Write `args` to stderr, as `eprint!` does, ignoring errors (see [`emit`]).
pub fn emit_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

fn rate(cur: u64, prev: Option<u64>, dt: f64) -> u64 {
    match prev {
        Some(p) if dt > 0.0 => (cur.saturating_sub(p) as f64 / dt) as u64,
        _ => 0,
    }
}

fn core_text(c: Option<u16>) -> String {
    c.map_or_else(|| "-".into(), |c| c.to_string())
}

/// The console view (openNetVM's default columns plus next/buf/ret).
pub fn console(prev: Option<&Snapshot>, cur: &Snapshot) -> String {
    let dt = cur.seconds_since(prev);
    let mut s = String::new();
    let _ = writeln!(s, "PORTS\n-----");
    for p in &cur.ports {
        let old = prev.and_then(|x| x.port(p.no)).map(|q| q.stats);
        let _ = writeln!(
            s,
            "Port {} ({}) - rx: {:>12} ({:>10} pps)  tx: {:>12} ({:>10} pps)  rx_drop: {} tx_drop: {} err: {}",
            p.no,
            p.name,
            p.stats.rx,
            rate(p.stats.rx, old.map(|o| o.rx), dt),
            p.stats.tx,
            rate(p.stats.tx, old.map(|o| o.tx), dt),
            p.stats.rx_drop,
            p.stats.tx_drop,
            p.stats.errors,
        );
    }
    let _ = writeln!(
        s,
        "\n{:<16} {:>4} / {:>3} / {:>4}  {:>10} / {:<10}  {:>9} / {:<9}  {:>12} / {:>12} / {:>10}  {:>10} / {:>6} / {:>6}  {:>5} {:>9}",
        "NF TAG",
        "IID",
        "SID",
        "CORE",
        "rx_pps",
        "tx_pps",
        "rx_drop",
        "tx_drop",
        "out",
        "tonf",
        "drop",
        "next",
        "buf",
        "ret",
        "cpu%",
        "sleeps/s"
    );
    let _ = writeln!(s, "{}", "-".repeat(166));
    for n in &cur.nfs {
        let old = prev.and_then(|x| x.nf(n));
        let c = &n.counters;
        let _ = writeln!(
            s,
            "{:<16} {:>4} / {:>3} / {:>4}  {:>10} / {:<10}  {:>9} / {:<9}  {:>12} / {:>12} / {:>10}  {:>10} / {:>6} / {:>6}  {:>5.1} {:>9}",
            n.tag,
            n.id,
            n.service,
            core_text(n.core),
            rate(c.rx, old.map(|o| o.counters.rx), dt),
            rate(c.tx, old.map(|o| o.counters.tx), dt),
            n.rx_drop,
            c.tx_drop,
            c.act_out,
            c.act_tonf,
            c.act_drop,
            c.act_next,
            c.act_buffer,
            c.act_returned,
            100.0 * cpu_share(c.cpu_ns, old.map(|o| o.counters.cpu_ns), dt),
            rate(c.sleeps, old.map(|o| o.counters.sleeps), dt),
        );
        if let Some(id) = &n.container {
            // The row's end: the container it runs in.
            s.pop();
            let _ = writeln!(s, "  container {id}");
        }
    }
    // Per-service totals whenever a service has several instances (as openNetVM).
    let mut services: Vec<u16> = cur.nfs.iter().map(|n| n.service).collect();
    services.sort_unstable();
    services.dedup();
    let multi: Vec<u16> = services
        .into_iter()
        .filter(|&sid| cur.nfs.iter().filter(|n| n.service == sid).count() > 1)
        .collect();
    if !multi.is_empty() {
        let _ = writeln!(s, "\nService id totals");
        for sid in multi {
            let members: Vec<&NfRow> = cur.nfs.iter().filter(|n| n.service == sid).collect();
            let sum = |f: fn(&NfRow) -> u64| members.iter().map(|n| f(n)).sum::<u64>();
            let _ = writeln!(
                s,
                "SID {sid:>3} {} NFs - rx: {} tx: {} rx_drop: {} tx_drop: {} out: {} tonf: {} drop: {}",
                members.len(),
                sum(|n| n.counters.rx),
                sum(|n| n.counters.tx),
                sum(|n| n.rx_drop),
                sum(|n| n.counters.tx_drop),
                sum(|n| n.counters.act_out),
                sum(|n| n.counters.act_tonf),
                sum(|n| n.counters.act_drop),
            );
        }
    }
    if !cur.drops.is_empty() {
        let list: Vec<String> = cur.drops.iter().map(|(r, n)| format!("{r}={n}")).collect();
        let _ = writeln!(s, "\nmanager drops: {}", list.join(" "));
    }
    for e in &cur.events {
        let _ = writeln!(s, "event: {e}");
    }
    s
}

fn timestamp(at: SystemTime) -> String {
    let t = humantime::format_rfc3339_seconds(at).to_string();
    t.trim_end_matches('Z').replacen('T', " ", 1)
}

/// The raw CSV header lines (openNetVM's `-v 3`).
pub fn csv_header() -> &'static str {
    "#YYYY-MM-DD HH:MM:SS,nic_rx_pkts,nic_rx_pps,nic_tx_pkts,nic_tx_pps,nic_rx_drop,nic_tx_drop,nic_errors\n\
     #YYYY-MM-DD HH:MM:SS,nf_tag,instance_id,service_id,core,parent,state,children_cnt,rx,tx,rx_pps,tx_pps,rx_drop,tx_drop,rx_drop_rate,tx_drop_rate,act_out,act_tonf,act_drop,act_next,act_buffer,act_returned,num_wakeups,wakeup_rate\n"
}

/// One interval's CSV lines: `ts,port,rx,rx_pps,tx,tx_pps,rx_drop,tx_drop,errors` per
/// port (openNetVM's NIC columns with the port number and our drop/error counters
/// added), then one line per NF.
pub fn csv_lines(prev: Option<&Snapshot>, cur: &Snapshot, at: SystemTime) -> String {
    let dt = cur.seconds_since(prev);
    let ts = timestamp(at);
    let mut s = String::new();
    for p in &cur.ports {
        let old = prev.and_then(|x| x.port(p.no)).map(|q| q.stats);
        let _ = writeln!(
            s,
            "{ts},{},{},{},{},{},{},{},{}",
            p.no,
            p.stats.rx,
            rate(p.stats.rx, old.map(|o| o.rx), dt),
            p.stats.tx,
            rate(p.stats.tx, old.map(|o| o.tx), dt),
            p.stats.rx_drop,
            p.stats.tx_drop,
            p.stats.errors,
        );
    }
    for n in &cur.nfs {
        let old = prev.and_then(|x| x.nf(n));
        let c = &n.counters;
        let children = cur.nfs.iter().filter(|m| m.parent == Some(n.id)).count();
        let rx_drop_rate = rate(n.rx_drop, old.map(|o| o.rx_drop), dt);
        let tx_drop_rate = rate(c.tx_drop, old.map(|o| o.counters.tx_drop), dt);
        let _ = writeln!(
            s,
            "{ts},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            n.tag,
            n.id,
            n.service,
            core_text(n.core),
            n.parent.unwrap_or(0),
            n.state,
            children,
            c.rx,
            c.tx,
            rate(c.rx, old.map(|o| o.counters.rx), dt),
            rate(c.tx, old.map(|o| o.counters.tx), dt),
            n.rx_drop,
            c.tx_drop,
            rx_drop_rate,
            tx_drop_rate,
            c.act_out,
            c.act_tonf,
            c.act_drop,
            c.act_next,
            c.act_buffer,
            c.act_returned,
            c.sleeps,
            rate(c.sleeps, old.map(|o| o.counters.sleeps), dt),
        );
    }
    s
}

/// The share of one core a thread used between two readings of its CPU time
/// (nanoseconds) `dt` seconds apart; 0 without an earlier reading.
pub fn cpu_share(now_ns: u64, before_ns: Option<u64>, dt: f64) -> f64 {
    match before_ns {
        Some(b) if dt > 0.0 => now_ns.saturating_sub(b) as f64 / 1e9 / dt,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(secs: u64, rx: u64) -> Snapshot {
        Snapshot {
            uptime: Duration::from_secs(secs),
            ports: vec![PortRow {
                no: 0,
                name: "gen:64B".into(),
                stats: PortStats {
                    rx,
                    tx: rx / 2,
                    rx_drop: 4,
                    tx_drop: 5,
                    errors: 6,
                    ..Default::default()
                },
            }],
            nfs: vec![
                NfRow {
                    container: None,
                    supervised_as: None,
                    tag: "fwd".into(),
                    id: 1,
                    service: 1,
                    core: Some(1),
                    parent: None,
                    state: "running",
                    counters: NfCounters {
                        rx,
                        tx: rx,
                        act_next: rx,
                        ..Default::default()
                    },
                    rx_drop: 0,
                },
                NfRow {
                    container: None,
                    supervised_as: None,
                    tag: "fwd".into(),
                    id: 2,
                    service: 1,
                    core: None,
                    parent: Some(1),
                    state: "running",
                    counters: NfCounters::default(),
                    rx_drop: 3,
                },
            ],
            drops: vec![("no-rule", 7)],
            events: vec!["NF fwd (instance 2) crashed; 64 buffers reclaimed".into()],
        }
    }

    #[test]
    fn console_has_open_netvm_columns_rates_and_service_totals() {
        let a = snap(1, 1000);
        let b = snap(3, 5000);
        let text = console(Some(&a), &b);
        for col in [
            "rx_pps", "tx_pps", "rx_drop", "tx_drop", "out", "tonf", "drop", "next", "buf", "ret", "IID", "SID", "CORE",
        ] {
            assert!(text.contains(col), "missing column {col}:\n{text}");
        }
        assert!(text.contains("(      2000 pps)"), "port rate over 2 s:\n{text}");
        assert!(
            text.contains("rx_drop: 4 tx_drop: 5 err: 6"),
            "port drops and errors:\n{text}"
        );
        assert!(text.contains("Service id totals"), "{text}");
        assert!(text.contains("SID   1 2 NFs"), "{text}");
        assert!(text.contains("no-rule=7"));
        assert!(text.contains("crashed"));
    }

    #[test]
    fn csv_lines_match_the_header() {
        let a = snap(1, 1000);
        let b = snap(2, 3000);
        let header_cols = csv_header().lines().nth(1).unwrap().split(',').count();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let lines = csv_lines(Some(&a), &b, at);
        let mut it = lines.lines();
        assert_eq!(it.next().unwrap(), "2023-11-14 22:13:20,0,3000,2000,1500,1000,4,5,6");
        let nf = it.next().unwrap();
        assert_eq!(nf.split(',').count(), header_cols, "{nf}");
        assert!(nf.starts_with("2023-11-14 22:13:20,fwd,1,1,1,0,running,1,3000,3000,2000,2000,"));
    }
}
