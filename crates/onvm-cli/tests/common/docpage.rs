//! Documentation pages, run: every command on a page, in order, for real, so what the
//! page says cannot drift from what the code does. A command of the page that fails
//! fails the test, and so does a code block that nothing accounts for.
//!
//! How a page is read (the same convention is in a comment at the top of each page):
//! - Each ```` ```sh ```` block is one script, run with `sh -e` (so any failing command
//!   fails it) from the workspace root, its stdout and stderr kept together.
//! - Two substitutions, in scripts and files alike: `/tmp/onvm-docs` becomes the test's
//!   temp dir, and `onvm` is the binary under test (its folder goes first on `PATH`;
//!   the page's reader has `target/release` there). Nothing else is rewritten.
//! - An HTML comment on the line before a block: `<!-- test: skip (WHY) -->` leaves an
//!   sh block out; `<!-- test: file PATH -->` writes a block to PATH when its turn comes;
//!   `<!-- test: excerpt of PATH -->` asserts that a block is, verbatim, in that file of
//!   the repository (so code shown cannot drift from the code it shows).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// The page's own working folder, replaced by the test's temp dir.
const WORK: &str = "/tmp/onvm-docs";

/// Longest a script may take (a first one may build an NF crate in release mode).
const SCRIPT_LIMIT: Duration = Duration::from_secs(600);

/// What the test does with one fenced block of the page.
#[derive(Debug)]
pub enum Step {
    Run(String),
    Skip,
    File(String, String),
    Excerpt(String, String),
}

/// A block: the page line of its fence, and what to do with it.
#[derive(Debug)]
pub struct Block {
    pub line: usize,
    pub step: Step,
}

/// The fenced blocks of `page`, each with the step its marker (or its language) asks for.
pub fn blocks(name: &str, page: &str) -> Vec<Block> {
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
            .unwrap_or_else(|| panic!("{name}:{start}: a block that never ends"));
        let text: String = lines[start..end].iter().map(|l| format!("{l}\n")).collect();
        let marker = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- test:"))
            .and_then(|m| m.strip_suffix("-->"))
            .map(str::trim);
        let at = format!("{name}:{start}");
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
pub struct Ran {
    pub script: String,
    pub output: String,
}

/// Runs the page's scripts in a temp dir and cleans up after them.
pub struct Runner {
    /// The page, as messages name it (`docs/CONTAINERS.md`).
    pub name: String,
    pub root: PathBuf,
    dir: TempDir,
    path: String,
    /// The process group of the script running, killed on drop if it is still there.
    running: Option<u32>,
}

impl Runner {
    pub fn new(name: &str) -> Runner {
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
            name: name.to_string(),
            root,
            dir: TempDir::new(&format!("docs-{}", name.replace(['/', '.'], "-"))),
            path,
            running: None,
        }
    }

    /// The page's text with its working folder replaced by the temp dir.
    pub fn local(&self, text: &str) -> String {
        text.replace(WORK, &self.dir.path().display().to_string())
    }

    /// Run `script` with `sh -e` from the workspace root; its output. Panics, with the
    /// output and the logs the script wrote, if it fails or outlives [`SCRIPT_LIMIT`].
    pub fn run(&mut self, at: usize, script: &str) -> Ran {
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
                "{}:{at}: the script {}:\n{script}\n--- its output\n{output}{}",
                self.name,
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
        // Containers of a manager killed with its script would otherwise stay (a page
        // without containers finds none, or no docker).
        let filter = format!("label=org.onvm-rs.socket={}/run/onvm.sock", self.dir.path().display());
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
    }
}

/// The first script that contains `command`, from those that ran.
pub fn ran<'a>(all: &'a [Ran], command: &str) -> &'a Ran {
    all.iter()
        .find(|r| r.script.contains(command))
        .unwrap_or_else(|| panic!("no script of the page runs {command:?}"))
}

/// Play the page `name` (a path from the workspace root): run its scripts, write its
/// files, check its excerpts, in order; at most `max_skipped` blocks may be left out.
/// The runner (its temp dir lives as long as it) and what each script printed.
pub fn play(name: &str, max_skipped: usize) -> (Runner, Vec<Ran>) {
    let mut runner = Runner::new(name);
    let page = std::fs::read_to_string(runner.root.join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"));
    let blocks = blocks(name, &page);
    let skipped = blocks.iter().filter(|b| matches!(b.step, Step::Skip)).count();
    assert!(skipped <= max_skipped, "{skipped} blocks of {name} are not run");
    let mut all = Vec::new();
    for b in &blocks {
        match &b.step {
            Step::Run(script) => all.push(runner.run(b.line, script)),
            Step::Skip => {}
            Step::File(path, text) => {
                let path = runner.local(path);
                if let Some(dir) = std::path::Path::new(&path).parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                std::fs::write(&path, runner.local(text))
                    .unwrap_or_else(|e| panic!("{name}:{}: writing {path}: {e}", b.line));
            }
            Step::Excerpt(path, text) => {
                let file = std::fs::read_to_string(runner.root.join(path))
                    .unwrap_or_else(|e| panic!("{name}:{}: {path}: {e}", b.line));
                assert!(
                    file.contains(text.as_str()),
                    "{name}:{}: this block is not in {path} as it is:\n{text}",
                    b.line
                );
            }
        }
    }
    (runner, all)
}
