//! docs/CONTAINERS.md, run: every command on the page, in order, for real, against the
//! Docker engine at `DOCKER_HOST` (scripts/test.sh starts a private dockerd), then checks
//! that the outputs say what the page says they do. A command of the page that fails
//! fails the test, and so does a code block that nothing below accounts for.
//!
//! How the page is read (the same convention is in a comment at its top):
//! - Each ```` ```sh ```` block is one script, run with `sh -e` (so any failing command
//!   fails it) from the workspace root, its stdout and stderr kept together.
//! - Two substitutions, in scripts and files alike: `/tmp/onvm-docs` becomes this test's
//!   temp dir, and `onvm` is the binary under test (its folder goes first on `PATH`;
//!   the page's reader has `target/release` there). Nothing else is rewritten: `cargo
//!   build --release -p count-nf` really builds into the workspace's `target/release`.
//! - An HTML comment on the line before a block: `<!-- test: skip (WHY) -->` leaves an
//!   sh block out (a daemon to start as root; at most [`MAX_SKIPPED`] of them);
//!   `<!-- test: file PATH -->` writes a toml block to PATH when its turn comes;
//!   `<!-- test: excerpt of PATH -->` asserts that a block is, verbatim, in that file of
//!   the repository (so the code shown cannot drift from examples/count-nf).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, field};

/// The page's own working folder, replaced by the test's temp dir.
const WORK: &str = "/tmp/onvm-docs";

/// Blocks the test may leave out; more means the page is no longer tested.
const MAX_SKIPPED: usize = 1;

/// Longest a script may take (the first one builds count-nf in release mode).
const SCRIPT_LIMIT: Duration = Duration::from_secs(600);

/// What the test does with one fenced block of the page.
#[derive(Debug)]
enum Step {
    Run(String),
    Skip,
    File(String, String),
    Excerpt(String, String),
}

/// A block: the page line of its fence, and what to do with it.
#[derive(Debug)]
struct Block {
    line: usize,
    step: Step,
}

/// The fenced blocks of `page`, each with the step its marker (or its language) asks for.
fn blocks(page: &str) -> Vec<Block> {
    let lines: Vec<&str> = page.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(lang) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i + 1;
        let end = (start..lines.len())
            .find(|&j| lines[j] == "```")
            .unwrap_or_else(|| panic!("docs/CONTAINERS.md:{start}: a block that never ends"));
        let text: String = lines[start..end].iter().map(|l| format!("{l}\n")).collect();
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- test:"))
            .and_then(|m| m.strip_suffix("-->"))
            .map(str::trim);
        let at = format!("docs/CONTAINERS.md:{start}");
        let unknown = || panic!("{at}: a ```{lang} block marked {marker:?}: the test does not know what to do with it");
        let step = match (marker, lang) {
            (None, "sh") => Step::Run(text),
            (None, _) => unknown(),
            (Some(m), _) => {
                if let Some(path) = m.strip_prefix("file ") {
                    Step::File(path.to_string(), text)
                } else if let Some(path) = m.strip_prefix("excerpt of ") {
                    Step::Excerpt(path.to_string(), text)
                } else if let Some(why) = m.strip_prefix("skip (").and_then(|w| w.strip_suffix(')'))
                    && !why.is_empty()
                    && lang == "sh"
                {
                    Step::Skip
                } else {
                    unknown()
                }
            }
        };
        out.push(Block { line: start, step });
        i = end + 1;
    }
    out
}

/// One script's outcome.
struct Ran {
    script: String,
    output: String,
}

/// Runs the page's scripts in a temp dir and cleans up after them.
struct Runner {
    root: PathBuf,
    dir: TempDir,
    path: String,
    /// The process group of the script running, killed on drop if it is still there.
    running: Option<u32>,
}

impl Runner {
    fn new() -> Runner {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .expect("the workspace root");
        let bin = Path::new(env!("CARGO_BIN_EXE_onvm"))
            .parent()
            .expect("the onvm binary's folder")
            .to_path_buf();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        Runner {
            root,
            dir: TempDir::new("docs"),
            path,
            running: None,
        }
    }

    /// The page's text with its working folder replaced by the temp dir.
    fn local(&self, text: &str) -> String {
        text.replace(WORK, &self.dir.path().display().to_string())
    }

    /// Run `script` with `sh -e` from the workspace root; its output. Panics, with the
    /// output and the logs the script wrote, if it fails or outlives [`SCRIPT_LIMIT`].
    fn run(&mut self, at: usize, script: &str) -> Ran {
        use std::os::unix::process::CommandExt;
        let script = self.local(script);
        let out_path = self.dir.join(&format!("script-{at}.out"));
        let out = std::fs::File::create(&out_path).expect("create the script's output file");
        let mut child = Command::new("sh")
            .arg("-e")
            .arg("-c")
            .arg(&script)
            .current_dir(&self.root)
            .env("PATH", &self.path)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup the output file"))
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("run sh");
        self.running = Some(child.id());
        let t = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("wait for sh") {
                break Some(st);
            }
            if t.elapsed() > SCRIPT_LIMIT {
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        // Whatever it left running in the background goes too.
        self.kill_group();
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        match status {
            Some(st) if st.success() => Ran { script, output },
            st => panic!(
                "docs/CONTAINERS.md:{at}: the script {}:\n{script}\n--- its output\n{output}{}",
                st.map_or_else(
                    || format!("ran longer than {SCRIPT_LIMIT:?}"),
                    |s| format!("failed ({s})")
                ),
                self.logs()
            ),
        }
    }

    fn kill_group(&mut self) {
        if let Some(pgid) = self.running.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        }
    }

    /// The `*.log` files the scripts wrote, for failure messages.
    fn logs(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.dir.path()).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "log") {
                s += &format!(
                    "--- {}\n{}",
                    p.display(),
                    std::fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
        s
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.kill_group();
        // Containers of a manager killed with its script would otherwise stay.
        let filter = format!("label=org.onvm-rs.socket={}/run/onvm.sock", self.dir.path().display());
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
    }
}

/// The first script that contains `command`, from those that ran.
fn ran<'a>(all: &'a [Ran], command: &str) -> &'a Ran {
    all.iter()
        .find(|r| r.script.contains(command))
        .unwrap_or_else(|| panic!("no script of docs/CONTAINERS.md runs {command:?}"))
}

/// The summary lines `NF TAG …` in `output`.
fn summary<'a>(output: &'a str, tag: &str) -> Vec<&'a str> {
    let prefix = format!("NF {tag} ");
    output.lines().filter(|l| l.starts_with(&prefix)).collect()
}

fn assert_conserved(r: &Ran) {
    let line = r
        .output
        .lines()
        .find(|l| l.starts_with("conservation:"))
        .unwrap_or_else(|| panic!("no conservation line\n{}", r.output));
    assert!(
        line.starts_with("conservation: OK") && line.contains("pool whole"),
        "{line}\n{}",
        r.output
    );
}

#[test]
fn every_command_of_the_containers_page_works_as_it_says() {
    if !(onvm_testkit::require_docker() && onvm_testkit::require_tool("docker", "apt install docker.io")) {
        return;
    }
    let _g = common::serial();
    let mut runner = Runner::new();
    let page = std::fs::read_to_string(runner.root.join("docs/CONTAINERS.md")).expect("read docs/CONTAINERS.md");
    let blocks = blocks(&page);
    let skipped = blocks.iter().filter(|b| matches!(b.step, Step::Skip)).count();
    assert!(skipped <= MAX_SKIPPED, "{skipped} blocks of the page are not run");

    let mut all = Vec::new();
    for b in &blocks {
        match &b.step {
            Step::Run(script) => all.push(runner.run(b.line, script)),
            Step::Skip => {}
            Step::File(path, text) => {
                let path = runner.local(path);
                std::fs::write(&path, runner.local(text))
                    .unwrap_or_else(|e| panic!("docs/CONTAINERS.md:{}: writing {path}: {e}", b.line));
            }
            Step::Excerpt(path, text) => {
                let file = std::fs::read_to_string(runner.root.join(path))
                    .unwrap_or_else(|e| panic!("docs/CONTAINERS.md:{}: {path}: {e}", b.line));
                assert!(
                    file.contains(text.as_str()),
                    "docs/CONTAINERS.md:{}: this block is not in {path} as it is:\n{text}",
                    b.line
                );
            }
        }
    }
    assert!(all.len() >= 6, "the page's scripts: {}", all.len());

    // The images: ours, small, not root.
    let images = ran(&all, "docker image inspect");
    for tag in ["[count-nf:latest]", "[onvm/nfs:latest]"] {
        let line = images
            .output
            .lines()
            .find(|l| l.starts_with(tag))
            .unwrap_or_else(|| panic!("no {tag} image\n{}", images.output));
        assert!(line.ends_with("user 65532:65532"), "{line}");
    }

    // The chain: every packet accounted for; the built-in NF and count-nf in containers,
    // count-nf as a process, whose own totals match what the manager gave it.
    let chain = ran(&all, "--run-for");
    assert_conserved(chain);
    let out = &chain.output;
    for tag in ["basic_monitor", "count-nf"] {
        let lines = summary(out, tag);
        assert_eq!(lines.len(), 1, "{tag}\n{out}");
        assert!(
            lines[0].contains(" container "),
            "{tag} ran in a container: {}",
            lines[0]
        );
        assert!(field(lines[0], "rx").unwrap_or(0) > 1000, "{}", lines[0]);
    }
    let proc_line = summary(out, "count-proc");
    assert_eq!(proc_line.len(), 1, "{out}");
    assert!(!proc_line[0].contains("container"), "{}", proc_line[0]);
    let rx = field(proc_line[0], "rx").expect("count-proc's rx");
    assert!(rx > 1000, "{}", proc_line[0]);
    let own = |what: &str| {
        out.lines()
            .find(|l| l.starts_with("count-proc (instance ") && l.contains(&format!(") {what}: ")))
            .unwrap_or_else(|| panic!("count-proc printed no {what} line\n{out}"))
            .to_string()
    };
    let total = own("total");
    let udp = own("udp");
    assert!(total.contains(&format!(": {rx} packets, ")), "{total} (rx {rx})");
    assert!(
        udp.contains(&format!(": {rx} packets, ")),
        "the generator sends UDP: {udp}"
    );

    // Scaling: up to three containers and back to one, nothing lost uncounted.
    let scale = ran(&all, "kill -HUP");
    assert_conserved(scale);
    let out = &scale.output;
    for said in ["(count-nf): 1 -> 3 instance(s)", "(count-nf): 3 -> 1 instance(s)"] {
        assert!(out.contains(said), "{said}\n{out}");
    }
    assert_eq!(out.matches("scaled away: asked to stop").count(), 2, "{out}");
    let listed = out
        .lines()
        .filter(|l| l.starts_with("onvm-count-nf-") && l.contains(" Up "))
        .count();
    assert_eq!(listed, 3 + 1, "docker ps shows 3 containers, then 1\n{out}");
    assert_eq!(summary(out, "count-nf").len(), 3, "{out}");

    // docker kill, then docker stop: both noticed, the kill reclaimed, both restarted.
    let dead = ran(&all, "docker kill");
    assert_conserved(dead);
    let out = &dead.output;
    for said in [
        "died without stopping; reclaimed",
        "exited (exit status: 137); restart 1",
        "exited (exit status: 0); restart 2",
        "NF crashes noticed and reclaimed: 1",
    ] {
        assert!(out.contains(said), "{said}\n{out}");
    }
    let runs = summary(out, "count-nf");
    assert_eq!(runs.len(), 3, "{out}");
    assert!(
        runs.iter().all(|l| field(l, "rx").unwrap_or(0) > 0),
        "traffic resumed after each: {runs:?}"
    );

    // Nothing left behind.
    let left = ran(&all, "docker ps -a");
    assert_eq!(left.output.trim(), "", "containers left");
}

#[test]
fn the_page_reader_knows_each_marker_and_refuses_the_unknown() {
    let page = "intro\n```sh\necho hi\n```\n<!-- test: skip (needs root) -->\n\n```sh\ndockerd\n```\n\
                <!-- test: file /tmp/onvm-docs/a.toml -->\n```toml\nx = 1\n```\n\
                <!-- test: excerpt of README.md -->\n```rust\nfn f() {}\n```\n";
    let b = blocks(page);
    assert_eq!(b.len(), 4);
    assert!(matches!(&b[0].step, Step::Run(s) if s == "echo hi\n"));
    assert!(matches!(b[1].step, Step::Skip));
    assert!(matches!(&b[2].step, Step::File(p, t) if p == "/tmp/onvm-docs/a.toml" && t == "x = 1\n"));
    assert!(matches!(&b[3].step, Step::Excerpt(p, _) if p == "README.md"));
    for bad in [
        "```toml\nx = 1\n```\n",
        "<!-- test: skip -->\n```sh\nx\n```\n",
        "<!-- test: maybe -->\n```sh\nx\n```\n",
        "```sh\nnever ends\n",
    ] {
        assert!(std::panic::catch_unwind(|| blocks(bad)).is_err(), "{bad:?}");
    }
}
