//! The numbers each command takes, checked before anything starts.
//!
//! Clap checks that a number parses; this checks that it makes sense (issue 12:
//! `--stats-every 0` was accepted). Each refusal names the flag, the value and the range
//! allowed, e.g. `--stats-every 0: out of range, must be 0.01..=3600 seconds`. Ranges are wide: they
//! refuse what cannot be meant (zero, negative, NaN, "forever"), not what is unusual.
//!
//! This module owns the bounds that only flags have (durations). The others are owned
//! where they are enforced, and taken from there: the packet region's sizes
//! (`--buffers`, `--data-room`) from [`onvm_shm::Layout`], so the flag is named before
//! the region is made; IDs from [`onvm_proto::limits`]; an NF's own flags from the NF (`Catalogued::build`);
//! the watchdog time and the NF quota, which the config file also sets, from
//! [`onvm_proto::config`], which checks the file's values with the same functions.

use onvm_proto::config::{check_nf_quota, check_watchdog_ms};
use onvm_proto::limits::{MAX_INSTANCES, MAX_SERVICES};
use onvm_shm::Layout;

use crate::mgr::CommonMgr;
use crate::nf::NfCmd;

/// A year, in seconds: the longest run any duration flag takes.
const YEAR_S: f64 = 365.0 * 24.0 * 3600.0;

/// Seconds in `lo..=hi` (`lo` > 0: zero is refused), finite.
fn secs(flag: &str, v: f64, lo: f64, hi: f64) -> Result<(), String> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{flag} {v}: out of range, must be {lo}..={hi} seconds"))
    }
}

/// A count in `lo..=hi`.
fn count(flag: &str, v: u64, lo: u64, hi: u64) -> Result<(), String> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(format!("{flag} {v}: out of range, must be {lo}..={hi}"))
    }
}

/// `onvm mgr`, `onvm up`: the manager's numbers.
pub fn check_mgr(c: &CommonMgr) -> Result<(), String> {
    secs("--stats-every", c.stats_every, 0.01, 3600.0)?;
    if let Some(s) = c.run_for {
        secs("--run-for", s, 0.001, YEAR_S)?;
    }
    if let Some(s) = c.exit_when_drained {
        secs("--exit-when-drained", s, 0.001, 3600.0)?;
    }
    if let Some(b) = c.buffers {
        count("--buffers", u64::from(b), 1, u64::from(Layout::MAX_BUFFERS))?;
    }
    if let Some(d) = c.data_room {
        count(
            "--data-room",
            u64::from(d),
            u64::from(Layout::MIN_DATA_ROOM),
            u64::from(Layout::MAX_DATA_ROOM),
        )?;
    }
    if let Some(n) = c.wait_for_nfs {
        // 0 = receive at once (what a script that computes the count may pass).
        count("--wait-for-nfs", n as u64, 0, u64::from(MAX_INSTANCES) - 1)?;
    }
    if let Some(ms) = c.watchdog_ms {
        check_watchdog_ms(ms).map_err(|e| format!("--watchdog-ms {ms}: {e}"))?;
    }
    if let Some(q) = c.nf_quota {
        check_nf_quota(q).map_err(|e| format!("--nf-quota {q}: {e}"))?;
    }
    Ok(())
}

/// A service ID an NF may name (`-r`, `-d`): `1..MAX_SERVICES`.
fn service(flag: &str, s: u16) -> Result<(), String> {
    count(flag, u64::from(s), 1, u64::from(MAX_SERVICES) - 1)
}

/// `onvm nf`: the NF's numbers and its kind's (each NF checks its own flags).
pub fn check_nf(a: &NfCmd) -> Result<(), String> {
    let c = &a.common;
    if let Some(s) = c.service {
        service("--service", s)?;
    }
    if let Some(i) = c.instance {
        count("--instance", u64::from(i), 1, u64::from(MAX_INSTANCES) - 1)?;
    }
    if let Some(t) = c.ttl {
        secs("--ttl", t, 0.001, YEAR_S)?;
    }
    if let Some(l) = c.packet_limit {
        count("--packet-limit", l, 1, u64::MAX)?;
    }
    a.kind.check()
}

/// `onvm bench --seconds`: per scenario.
pub fn check_bench(seconds: f64) -> Result<(), String> {
    secs("--seconds", seconds, 0.1, 3600.0)
}

/// `onvm demo --seconds`.
pub fn check_demo(seconds: f64) -> Result<(), String> {
    secs("--seconds", seconds, 0.1, YEAR_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_negative_nan_and_forever_are_refused_naming_flag_and_range() {
        assert_eq!(
            secs("--stats-every", 0.0, 0.01, 3600.0).unwrap_err(),
            "--stats-every 0: out of range, must be 0.01..=3600 seconds"
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            assert!(secs("--ttl", bad, 0.001, YEAR_S).is_err(), "{bad}");
        }
        assert!(secs("--ttl", 0.5, 0.001, YEAR_S).is_ok());
        assert_eq!(
            count("--wait-for-nfs", 128, 0, 127).unwrap_err(),
            "--wait-for-nfs 128: out of range, must be 0..=127"
        );
        assert!(count("--buffers", 4095, 1, u64::from(Layout::MAX_BUFFERS)).is_ok());
    }
}
