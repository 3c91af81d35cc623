//! The manager's half ([`Edges`](super::Edges)) and the NF's half ([`NfEdges`](super::NfEdges)) driven against each
//! other through every interleaving of a few small scenarios (quinn's `Pair`, made
//! exhaustive).
//!
//! A [`World`] (in `world.rs`) holds one manager, a few NFs, the control messages in flight (one FIFO
//! per direction and NF, as on a `SOCK_SEQPACKET` socket), and the rings as queues of
//! packets. Each [`Step`] is one thing one party can do next: an NF sends a packet or
//! reads one, handles its control messages, checks its draining rings; the manager
//! routes a packet, handles an NF's message, opens an edge, closes all, drains a dead
//! consumer's rings; an NF dies. The search visits every state reachable from the
//! start (states are deduplicated by hash) and checks, at every step:
//!
//! * a producer never writes a ring after it answered that it let go of it;
//! * no consumer stops reading, and the manager frees no ring, with packets in it;
//! * a flow's packets reach the consumer in order, except that packets sent after the
//!   producer stopped writing an edge may overtake ones still in that edge (closing
//!   does not keep order, see the [module docs](super));
//!
//! and, where nothing can move any more: every packet reached its consumer, or was
//! reclaimed because the consumer died; no packet is left in any ring; no edge is stuck
//! half-closed; both ends of every open edge use it.
//!
//! The manager's side beyond `Edges` (moving a producer's tx ring on before
//! `switched`, draining a dead NF, `close_all` when an NF goes) follows `onvm-mgr`'s
//! `manager.rs`.

mod world;

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use self::world::{Check, Fault, Flow, Scenario, Step, World};

fn digest(w: &World) -> u64 {
    let mut h = DefaultHasher::new();
    w.hash(&mut h);
    h.finish()
}

/// Visit every state reachable in `sc`; the number of states, or the first broken
/// invariant with the steps that led to it.
fn explore(sc: &Scenario) -> usize {
    fn dfs(sc: &Scenario, w: &World, path: &mut Vec<Step>, seen: &mut HashSet<u64>) -> Check {
        if !seen.insert(digest(w)) {
            return Ok(());
        }
        let steps = w.enabled(sc);
        if steps.is_empty() {
            return w.check_end(sc).map_err(|e| format!("at the end: {e}"));
        }
        for s in steps {
            let mut next = w.clone();
            path.push(s);
            next.apply(sc, s)?;
            dfs(sc, &next, path, seen)?;
            path.pop();
        }
        Ok(())
    }
    let mut seen = HashSet::new();
    let mut path = Vec::new();
    if let Err(e) = dfs(sc, &World::new(sc), &mut path, &mut seen) {
        panic!("{e}\nafter {} steps: {path:?}", path.len());
    }
    seen.len()
}

fn one_flow(count: u16) -> Scenario {
    Scenario {
        nfs: 2,
        flows: vec![Flow {
            from: 1,
            key: 2,
            to: 2,
            count,
        }],
        rings: 2,
        opens: 1,
        closes: 0,
        deaths: 0,
        batches: true,
        fault: None,
    }
}

#[test]
fn open_keeps_order_in_every_interleaving() {
    let n = explore(&one_flow(4));
    assert!(n > 100, "{n} states");
}

#[test]
fn open_then_close_in_every_interleaving() {
    explore(&Scenario {
        closes: 1,
        ..one_flow(4)
    });
}

#[test]
fn reopen_after_a_close_in_every_interleaving() {
    explore(&Scenario {
        opens: 2,
        closes: 1,
        ..one_flow(3)
    });
}

#[test]
fn a_topology_change_twice_with_one_ring_in_every_interleaving() {
    explore(&Scenario {
        rings: 1,
        opens: 3,
        closes: 2,
        ..one_flow(2)
    });
}

#[test]
fn a_dead_producer_or_consumer_in_every_interleaving() {
    explore(&Scenario {
        deaths: 1,
        opens: 2,
        closes: 1,
        ..one_flow(3)
    });
}

#[test]
#[should_panic(expected = "on the same path")]
fn the_checks_catch_a_consumer_that_reads_edges_first() {
    explore(&Scenario {
        fault: Some(Fault::EdgesFirst),
        ..one_flow(3)
    });
}

#[test]
#[should_panic(expected = "stopped reading ring 400 with packets in it")]
fn the_checks_catch_a_consumer_that_lets_go_of_packets() {
    explore(&Scenario {
        fault: Some(Fault::ReleaseUnread),
        closes: 1,
        ..one_flow(3)
    });
}

#[test]
fn a_self_loop_in_every_interleaving() {
    explore(&Scenario {
        nfs: 1,
        flows: vec![Flow {
            from: 1,
            key: 1,
            to: 1,
            count: 3,
        }],
        opens: 2,
        closes: 1,
        deaths: 1,
        ..one_flow(0)
    });
}

#[test]
fn two_way_traffic_with_a_death_in_every_interleaving() {
    explore(&Scenario {
        flows: vec![
            Flow {
                from: 1,
                key: 2,
                to: 2,
                count: 2,
            },
            Flow {
                from: 2,
                key: 1,
                to: 1,
                count: 1,
            },
        ],
        opens: 2,
        closes: 1,
        deaths: 1,
        ..one_flow(0)
    });
}

#[test]
fn a_chain_of_three_with_a_dead_middle_in_every_interleaving() {
    explore(&Scenario {
        nfs: 3,
        flows: vec![
            Flow {
                from: 1,
                key: 2,
                to: 2,
                count: 1,
            },
            Flow {
                from: 2,
                key: 0,
                to: 3,
                count: 2,
            },
        ],
        opens: 2,
        closes: 1,
        deaths: 1,
        ..one_flow(0)
    });
}
