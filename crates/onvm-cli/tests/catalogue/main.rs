//! Golden tests of the NF catalogue: each NF (with its inverse or peer where it has one)
//! gets frames crafted for it through a real `onvm up`, and its output capture is
//! compared packet by packet with the frames expected, plus the counters it reports.
//! One module per NF; `common::golden` runs them.

#[path = "../common/mod.rs"]
mod common;

mod basics;
mod examples;
mod payload;
mod routing;
mod stateful;
