//! What the tests of onvm-rs need from the machine — a tool, root, a Python module —
//! checked in one place, so that no test passes without what it tests.
//!
//! A test calls one of the `require_*` functions before it uses what it needs. When the
//! need is met they return `true`. When it is not, the test fails: they panic with what
//! is missing and how to get it (`scripts/deps.sh` installs every tool; `scripts/test.sh`
//! runs as root).
//!
//! The one way out is for a developer's machine that cannot have everything: with
//! `ONVM_ALLOW_SKIP=1` in the environment they print `SKIPPED: <test>: <reason>` and
//! return `false`, and the test returns at once. Each such skip is also appended, as one
//! line, to the file named by `ONVM_SKIP_LOG`; `scripts/test.sh` sets it and counts the
//! lines as skipped (not passed) in its closing line. CI never sets `ONVM_ALLOW_SKIP`.
//!
//! ```no_run
//! #[test]
//! fn ovs_reads_what_we_send() {
//!     if !onvm_testkit::require_tool("ovs-ofctl", "apt install openvswitch-common") {
//!         return; // only with ONVM_ALLOW_SKIP=1
//!     }
//!     // ... run ovs-ofctl ...
//! }
//! ```

use std::io::Write;
use std::path::Path;
use std::process::Command;

/// The environment variable that turns a missing need into a skip instead of a failure.
pub const ALLOW_SKIP: &str = "ONVM_ALLOW_SKIP";
/// The environment variable naming the file each skip appends a line to.
pub const SKIP_LOG: &str = "ONVM_SKIP_LOG";

/// `true` when `have`; otherwise fails the test with "needs WHAT: HOW", or, with
/// `ONVM_ALLOW_SKIP=1`, reports a skip and returns `false`.
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require(have: bool, what: &str, how: &str) -> bool {
    if have {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let reason = format!("needs {what}: {how}");
    if std::env::var_os(ALLOW_SKIP).is_some_and(|v| v == "1") {
        eprintln!("SKIPPED: {test}: {reason}");
        if let Some(log) = std::env::var_os(SKIP_LOG) {
            // One write of one line to a file opened for appending: lines from tests
            // running at the same time (threads or processes) do not interleave.
            let line = format!("{test}: {reason}\n");
            let wrote = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = wrote {
                panic!(
                    "{test} skipped but cannot record it in {}: {e}",
                    Path::new(&log).display()
                );
            }
        }
        return false;
    }
    panic!("{test} {reason} (or set {ALLOW_SKIP}=1 to skip such tests on a machine that cannot have it)");
}

/// Whether `tool` is an executable file in a directory of `$PATH`.
pub fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(tool)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Requires the program `tool` on `$PATH`; `install` says how to get it
/// (e.g. `"apt install openvswitch-common"`).
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require_tool(tool: &str, install: &str) -> bool {
    require(
        on_path(tool),
        &format!("`{tool}`, which is not installed"),
        &format!("{install} (scripts/deps.sh installs it)"),
    )
}

/// Whether this process runs as root (effective user id 0).
pub fn is_root() -> bool {
    // The second field of "Uid:" is the effective user id.
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Requires root; `for_what` says what the test does with it (e.g. "to create veth
/// pairs and raw sockets").
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require_root(for_what: &str) -> bool {
    require(
        is_root(),
        &format!("root {for_what}"),
        "run the tests as root (sudo -E scripts/test.sh)",
    )
}

/// Requires `python3` able to import `module`; `install` says how to get it
/// (e.g. `"python3 -m pip install os-ken"`).
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require_python_module(module: &str, install: &str) -> bool {
    let have = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    require(
        have,
        &format!("python3 with the `{module}` module, which cannot be imported"),
        &format!("{install} (scripts/deps.sh installs it)"),
    )
}

/// The Docker engine of the container tests: `DOCKER_HOST` (`unix:///PATH`), which
/// `scripts/test.sh` points at a private `dockerd` it starts (its own data and exec
/// roots, no bridge, no iptables). Requires that it answers `GET /_ping`.
#[must_use = "the test must return when this is false"]
#[track_caller]
pub fn require_docker() -> bool {
    let host = std::env::var("DOCKER_HOST").unwrap_or_default();
    let answer = match host.strip_prefix("unix://") {
        None if host.is_empty() => Err("DOCKER_HOST is not set".to_string()),
        None => Err(format!("DOCKER_HOST={host} is not a unix socket")),
        Some(path) => ping(Path::new(path)).map_err(|e| format!("the engine at {host} does not answer: {e}")),
    };
    let how = "run the tests with scripts/test.sh, which installs docker.io and starts a private dockerd, \
               or start one and set DOCKER_HOST=unix:///PATH";
    match answer {
        Ok(()) => true,
        Err(why) => require(false, &format!("a Docker engine ({why})"), how),
    }
}

/// `GET /_ping` on the Engine API socket at `path`.
fn ping(path: &Path) -> std::io::Result<()> {
    use std::io::Read;
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    if reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "it answered {:?}",
            reply.lines().next().unwrap_or("nothing")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_there_is_found() {
        assert!(on_path("sh"));
        assert!(!on_path("onvm-no-such-tool"));
        assert!(require(true, "nothing", "nothing"));
    }

    #[test]
    fn a_missing_need_fails_and_says_how_to_get_it() {
        // Run in a child process so that ONVM_ALLOW_SKIP of the caller does not matter.
        if std::env::var_os("ONVM_TESTKIT_CHILD").is_some() {
            let _ = require_tool("onvm-no-such-tool", "apt install onvm-no-such-tool");
            return;
        }
        let exe = std::env::current_exe().unwrap();
        let run = |allow: Option<&str>, log: Option<&Path>| {
            let mut c = Command::new(&exe);
            c.args([
                "--exact",
                "tests::a_missing_need_fails_and_says_how_to_get_it",
                "--nocapture",
            ])
            .env("ONVM_TESTKIT_CHILD", "1")
            .env_remove(ALLOW_SKIP)
            .env_remove(SKIP_LOG);
            if let Some(a) = allow {
                c.env(ALLOW_SKIP, a);
            }
            if let Some(l) = log {
                c.env(SKIP_LOG, l);
            }
            let o = c.output().unwrap();
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
            )
        };
        let (ok, out) = run(None, None);
        assert!(!ok, "a missing tool must fail the test:\n{out}");
        assert!(
            out.contains("needs `onvm-no-such-tool`, which is not installed: apt install onvm-no-such-tool"),
            "{out}"
        );
        // Anything but "1" does not skip either.
        assert!(!run(Some("yes"), None).0);
        let dir = std::env::temp_dir().join(format!("onvm-testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("skipped");
        for _ in 0..2 {
            let (ok, out) = run(Some("1"), Some(&log));
            assert!(ok, "{out}");
            assert!(
                out.contains("SKIPPED: tests::a_missing_need_fails_and_says_how_to_get_it: needs `onvm-no-such-tool`"),
                "{out}"
            );
        }
        let lines = std::fs::read_to_string(&log).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(lines.lines().count(), 2, "{lines}");
    }
}
