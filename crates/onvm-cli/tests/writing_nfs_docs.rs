//! docs/WRITING_NFS.md, run (see `common::docpage` for how a page is read): the
//! skeleton is built as a crate of its own outside the workspace (`cargo new`, `cargo
//! add` of the NF library by path), its offline unit test passes, and `onvm up` runs it
//! as an NF of one's own (`binary =`) in a chain, every packet accounted for.

mod common;

use common::docpage::{play, ran};

#[test]
fn the_skeleton_builds_as_a_crate_of_its_own_and_runs_in_a_chain() {
    let _g = common::serial();
    let (_runner, all) = play("docs/WRITING_NFS.md", 0);
    assert_eq!(all.len(), 3, "the page's scripts");

    let tests = ran(&all, "cargo test");
    assert!(
        tests.output.contains("1 passed") || tests.output.contains("test result: ok. 1 passed"),
        "the skeleton's offline test ran and passed\n{}",
        tests.output
    );

    let chain = ran(&all, "onvm up");
    let out = &chain.output;
    let line = out
        .lines()
        .find(|l| l.starts_with("conservation:"))
        .unwrap_or_else(|| panic!("no conservation line\n{out}"));
    assert!(
        line.starts_with("conservation: OK") && line.contains("pool whole"),
        "{line}\n{out}"
    );
    let own = out
        .lines()
        .find(|l| l.starts_with("my-nf (instance "))
        .unwrap_or_else(|| panic!("the NF printed no totals\n{out}"));
    let passed = common::field(own, "passed").unwrap_or(0);
    assert!(
        passed > 1000,
        "the generator's packets went through my-nf: {own}\n{out}"
    );
    assert!(own.ends_with("dropped 0"), "the generator sends IP only: {own}");
    assert!(
        !out.contains("no chain or rule sends packets"),
        "the chain reaches the NF\n{out}"
    );
}
