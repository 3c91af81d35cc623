//! docs/CONTAINERS.md, run (see `common::docpage` for how a page is read): every
//! command on the page, in order, against the Docker engine at `DOCKER_HOST`
//! (scripts/test.sh starts a private dockerd), then checks that the outputs say what the
//! page says they do. `cargo build --release -p count-nf` really builds into the
//! workspace's `target/release`, and the code shown is checked to be examples/count-nf's.

mod common;

use common::docpage::{Ran, Step, blocks, play, ran};
use common::field;

/// Blocks the test may leave out; more means the page is no longer tested.
const MAX_SKIPPED: usize = 1;

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
    let (_runner, all) = play("docs/CONTAINERS.md", MAX_SKIPPED);
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
    let b = blocks("page", page);
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
        assert!(std::panic::catch_unwind(|| blocks("page", bad)).is_err(), "{bad:?}");
    }
}
