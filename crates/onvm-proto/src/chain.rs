//! Service chains and their compilation into flow rules.
//!
//! openNetVM keeps chains as a separate structure with 3 usable hops and a hard-coded
//! default. Here a chain is only a convenient way to write flow rules: each hop becomes
//! one rule keyed on the logical port of the previous hop, so the manager, the REST API
//! and an SDN controller all see (and can override) the same table.
//!
//! `chain = ["firewall", "monitor", "out:1"]` arriving on port 0 compiles to
//!
//! ```text
//! in_port=port 0            -> Output(service firewall)
//! in_port=service firewall  -> Output(service monitor)
//! in_port=service monitor   -> Output(port 1)
//! ```
//!
//! Every rule of a chain also carries the chain's header match. Once a packet is inside
//! a chain its physical in_port is gone (in_port is now a service), so chains that share
//! a service are told apart by header fields only. Two chains that would send the same
//! packets from the same service to different places are rejected as a conflict, and
//! the services of all chains together must not form a cycle: a packet can then never
//! loop, whatever headers it carries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::flow::{Action, Match, PortNo, Rule};
use crate::limits::MAX_PORTS;

/// Priority of the rules of the default chain: below every other chain.
pub const DEFAULT_CHAIN_PRIORITY: u16 = 1;
/// Priority of the rules of the other chains, unless the chain sets one.
pub const CHAIN_PRIORITY: u16 = 100;

/// One hop of a chain as written: a service name, `out:N` or `drop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HopSpec {
    /// A service by name.
    Service(String),
    /// Out of physical port N.
    Out(u16),
    /// Free the packet.
    Drop,
}

impl FromStr for HopSpec {
    type Err = ChainError;

    fn from_str(s: &str) -> Result<Self, ChainError> {
        let bad = |reason: &str| ChainError::BadHop {
            hop: s.to_string(),
            reason: reason.to_string(),
        };
        if s == "drop" {
            return Ok(HopSpec::Drop);
        }
        if let Some(port) = s.strip_prefix("out:") {
            let p: u16 = port
                .parse()
                .map_err(|_| bad("the port after \"out:\" must be a number"))?;
            if p >= MAX_PORTS {
                return Err(bad(&format!("port must be below {MAX_PORTS}")));
            }
            return Ok(HopSpec::Out(p));
        }
        if s.is_empty() {
            return Err(bad("empty hop"));
        }
        if s.contains(':') {
            return Err(bad("expected a service name, \"out:N\" or \"drop\""));
        }
        Ok(HopSpec::Service(s.to_string()))
    }
}

/// One hop with its service resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// A service: its ID and (for messages) its name.
    Service {
        /// Service ID.
        id: u16,
        /// Service name.
        name: String,
    },
    /// Out of physical port N.
    Out(u16),
    /// Free the packet.
    Drop,
}

impl Hop {
    fn action(&self) -> Action {
        match self {
            Hop::Service { id, .. } => Action::Output(PortNo::service(*id)),
            Hop::Out(p) => Action::Output(PortNo::physical(*p)),
            Hop::Drop => Action::Drop,
        }
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hop::Service { name, .. } => f.write_str(name),
            Hop::Out(p) => write!(f, "out:{p}"),
            Hop::Drop => f.write_str("drop"),
        }
    }
}

/// A chain ready to compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Name used in messages.
    pub name: String,
    /// The hops, in order. Only the last may be `Out` or `Drop`.
    pub hops: Vec<Hop>,
    /// Physical port whose packets enter the chain; `None` = every port.
    pub in_port: Option<u16>,
    /// Header match every rule of the chain carries (its `in_port` must be `None`).
    pub matcher: Match,
    /// The fallback chain: its rules get [`DEFAULT_CHAIN_PRIORITY`].
    pub default: bool,
    /// Rule priority; `None` = [`CHAIN_PRIORITY`] (or the default one).
    pub priority: Option<u16>,
}

impl Chain {
    /// The priority its rules get.
    pub fn effective_priority(&self) -> u16 {
        self.priority.unwrap_or(if self.default {
            DEFAULT_CHAIN_PRIORITY
        } else {
            CHAIN_PRIORITY
        })
    }
}

/// Why chains cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChainError {
    /// A hop's text is not a service name, `out:N` or `drop`.
    #[error("bad hop {hop:?}: {reason}")]
    BadHop {
        /// The hop text.
        hop: String,
        /// What is wrong.
        reason: String,
    },
    /// A chain without hops.
    #[error("chain {chain:?} is empty")]
    Empty {
        /// Chain name.
        chain: String,
    },
    /// `out:N` or `drop` before the last hop.
    #[error("chain {chain:?}: {hop} must be the last hop (packets never come back from it)")]
    HopAfterEnd {
        /// Chain name.
        chain: String,
        /// The hop.
        hop: String,
    },
    /// A chain names a service twice.
    #[error("chain {chain:?} loops: it visits service {service:?} twice")]
    Loop {
        /// Chain name.
        chain: String,
        /// The service.
        service: String,
    },
    /// Several chains together form a cycle of services.
    #[error("chains {chains:?} loop together: {}", path.join(" -> "))]
    CrossLoop {
        /// The services of the cycle; the first is repeated at the end.
        path: Vec<String>,
        /// The chains whose hops make the cycle.
        chains: Vec<String>,
    },
    /// A port number beyond the configured ports.
    #[error("chain {chain:?} uses port {port}, but only {ports} port(s) are configured")]
    PortOutOfRange {
        /// Chain name.
        chain: String,
        /// The port.
        port: u16,
        /// How many ports exist.
        ports: u16,
    },
    /// The chain's match sets `in_port` (use the chain's `in_port` instead).
    #[error("chain {chain:?}: set the chain's in_port, not an in_port inside its match")]
    InPortInMatch {
        /// Chain name.
        chain: String,
    },
    /// More than one chain has `default = true`.
    #[error("chains {first:?} and {second:?} are both marked default")]
    MultipleDefaults {
        /// First default chain.
        first: String,
        /// Second default chain.
        second: String,
    },
    /// Two chains send the same packets from the same place to different hops.
    #[error(
        "chains {first:?} and {second:?} conflict: both take packets from {from} \
         (same match, priority {priority}) to different next hops"
    )]
    Conflict {
        /// Chain of the rule installed first.
        first: String,
        /// Chain of the conflicting rule.
        second: String,
        /// Where the packets come from.
        from: String,
        /// The priority of both rules.
        priority: u16,
    },
}

/// Checks `chains` and compiles them into flow rules, in order; `ports` is how many
/// physical ports exist (a chain without `in_port` gets one entry rule per port).
/// Rules that two chains share exactly (a common tail) appear once.
pub fn compile(chains: &[Chain], ports: u16) -> Result<Vec<Rule>, ChainError> {
    let mut default: Option<&str> = None;
    for c in chains {
        check_one(c, ports)?;
        if c.default {
            if let Some(first) = default {
                return Err(ChainError::MultipleDefaults {
                    first: first.to_string(),
                    second: c.name.clone(),
                });
            }
            default = Some(&c.name);
        }
    }
    check_cycles(chains)?;

    let mut rules: Vec<(Rule, &str)> = Vec::new();
    for c in chains {
        let prio = c.effective_priority();
        let mut push = |in_port: PortNo, action: Action| -> Result<(), ChainError> {
            let matcher = Match {
                in_port: Some(in_port),
                ..c.matcher.clone()
            };
            if let Some((old, chain)) = rules.iter().find(|(r, _)| r.priority == prio && r.matcher == matcher) {
                if old.actions == [action] {
                    return Ok(());
                }
                return Err(ChainError::Conflict {
                    first: chain.to_string(),
                    second: c.name.clone(),
                    from: in_port.to_string(),
                    priority: prio,
                });
            }
            rules.push((Rule::new(prio, matcher, vec![action]), &c.name));
            Ok(())
        };
        let first = c.hops[0].action();
        match c.in_port {
            Some(p) => push(PortNo::physical(p), first)?,
            None => {
                for p in 0..ports {
                    push(PortNo::physical(p), first)?;
                }
            }
        }
        for pair in c.hops.windows(2) {
            if let Hop::Service { id, .. } = pair[0] {
                push(PortNo::service(id), pair[1].action())?;
            }
        }
    }
    Ok(rules.into_iter().map(|(r, _)| r).collect())
}

fn check_one(c: &Chain, ports: u16) -> Result<(), ChainError> {
    if c.hops.is_empty() {
        return Err(ChainError::Empty { chain: c.name.clone() });
    }
    if c.matcher.in_port.is_some() {
        return Err(ChainError::InPortInMatch { chain: c.name.clone() });
    }
    let out_of_range = |port: u16| ChainError::PortOutOfRange {
        chain: c.name.clone(),
        port,
        ports,
    };
    if let Some(p) = c.in_port
        && p >= ports
    {
        return Err(out_of_range(p));
    }
    let mut seen = BTreeSet::new();
    for (i, hop) in c.hops.iter().enumerate() {
        match hop {
            Hop::Service { id, name } => {
                if !seen.insert(*id) {
                    return Err(ChainError::Loop {
                        chain: c.name.clone(),
                        service: name.clone(),
                    });
                }
            }
            Hop::Out(_) | Hop::Drop if i + 1 < c.hops.len() => {
                return Err(ChainError::HopAfterEnd {
                    chain: c.name.clone(),
                    hop: hop.to_string(),
                });
            }
            Hop::Out(p) if *p >= ports => return Err(out_of_range(*p)),
            Hop::Out(_) | Hop::Drop => {}
        }
    }
    Ok(())
}

/// Finds a cycle in the graph "service a is followed by service b in some chain".
fn check_cycles(chains: &[Chain]) -> Result<(), ChainError> {
    // edges[a] = [(b, chain name)]
    let mut edges: BTreeMap<u16, Vec<(u16, &str)>> = BTreeMap::new();
    let mut names: BTreeMap<u16, &str> = BTreeMap::new();
    for c in chains {
        for pair in c.hops.windows(2) {
            if let (Hop::Service { id: a, name: na }, Hop::Service { id: b, name: nb }) = (&pair[0], &pair[1]) {
                edges.entry(*a).or_default().push((*b, &c.name));
                names.insert(*a, na);
                names.insert(*b, nb);
            }
        }
    }
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark: BTreeMap<u16, Mark> = names.keys().map(|&k| (k, Mark::New)).collect();
    // Iterative DFS; `path` holds (node, edge index, chain that led here).
    for &start in names.keys() {
        if mark[&start] != Mark::New {
            continue;
        }
        let mut path: Vec<(u16, usize, &str)> = vec![(start, 0, "")];
        mark.insert(start, Mark::OnPath);
        while let Some(&mut (node, ref mut next, _)) = path.last_mut() {
            let out = edges.get(&node).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(&(to, chain)) = out.get(*next) {
                *next += 1;
                match mark[&to] {
                    Mark::New => {
                        mark.insert(to, Mark::OnPath);
                        path.push((to, 0, chain));
                    }
                    Mark::OnPath => {
                        let from = path.iter().position(|p| p.0 == to).unwrap_or(0);
                        let mut names_path: Vec<String> =
                            path[from..].iter().map(|p| names[&p.0].to_string()).collect();
                        names_path.push(names[&to].to_string());
                        let mut cs: Vec<String> = path[from + 1..]
                            .iter()
                            .map(|p| p.2.to_string())
                            .chain(std::iter::once(chain.to_string()))
                            .collect();
                        cs.sort();
                        cs.dedup();
                        return Err(ChainError::CrossLoop {
                            path: names_path,
                            chains: cs,
                        });
                    }
                    Mark::Done => {}
                }
            } else {
                mark.insert(node, Mark::Done);
                path.pop();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowTable, PacketKey};
    use std::time::Duration;

    fn svc(id: u16, name: &str) -> Hop {
        Hop::Service { id, name: name.into() }
    }

    fn chain(name: &str, hops: Vec<Hop>) -> Chain {
        Chain {
            name: name.into(),
            hops,
            in_port: Some(0),
            matcher: Match::any(),
            default: false,
            priority: None,
        }
    }

    #[test]
    fn hop_specs() {
        assert_eq!("out:1".parse(), Ok(HopSpec::Out(1)));
        assert_eq!("drop".parse(), Ok(HopSpec::Drop));
        assert_eq!("fw".parse(), Ok(HopSpec::Service("fw".into())));
        assert!(matches!("out:x".parse::<HopSpec>(), Err(ChainError::BadHop { .. })));
        assert!(matches!("out:5000".parse::<HopSpec>(), Err(ChainError::BadHop { .. })));
        assert!(matches!("in:1".parse::<HopSpec>(), Err(ChainError::BadHop { .. })));
        assert!("".parse::<HopSpec>().is_err());
    }

    #[test]
    fn firewall_monitor_out_compiles_to_three_rules() {
        let c = chain("main", vec![svc(1, "firewall"), svc(2, "monitor"), Hop::Out(1)]);
        let rules = compile(&[c], 2).unwrap();
        let got: Vec<(Option<PortNo>, Vec<Action>)> =
            rules.iter().map(|r| (r.matcher.in_port, r.actions.clone())).collect();
        assert_eq!(
            got,
            vec![
                (Some(PortNo::physical(0)), vec![Action::Output(PortNo::service(1))]),
                (Some(PortNo::service(1)), vec![Action::Output(PortNo::service(2))]),
                (Some(PortNo::service(2)), vec![Action::Output(PortNo::physical(1))]),
            ]
        );
        assert!(rules.iter().all(|r| r.priority == CHAIN_PRIORITY));
    }

    #[test]
    fn walking_the_compiled_table_follows_the_chain() {
        let web = Match {
            l4_dst: Some(80),
            ..Match::any()
        };
        let mut special = chain("web", vec![svc(3, "cache"), Hop::Out(0)]);
        special.matcher = web;
        special.in_port = None;
        let mut dflt = chain("main", vec![svc(1, "fw"), svc(2, "mon"), Hop::Drop]);
        dflt.default = true;
        dflt.in_port = None;
        let mut t = FlowTable::new();
        for r in compile(&[dflt, special], 2).unwrap() {
            t.add(r, Duration::ZERO);
        }
        let walk = |l4_dst: u16| {
            let mut k = PacketKey::new(PortNo::physical(1));
            k.l4_dst = Some(l4_dst);
            let mut seen = vec![];
            while let Some((_, r)) = t.lookup(&k) {
                let a = r.actions[0];
                seen.push(a);
                match a {
                    Action::Output(p) if matches!(p.kind(), crate::flow::PortKind::Service(_)) => k.in_port = p,
                    _ => break,
                }
            }
            seen
        };
        assert_eq!(
            walk(80),
            vec![Action::Output(PortNo::service(3)), Action::Output(PortNo::physical(0))]
        );
        assert_eq!(
            walk(22),
            vec![
                Action::Output(PortNo::service(1)),
                Action::Output(PortNo::service(2)),
                Action::Drop
            ]
        );
    }

    #[test]
    fn no_in_port_means_every_port() {
        let mut c = chain("all", vec![Hop::Out(0)]);
        c.in_port = None;
        let rules = compile(&[c], 3).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[2].matcher.in_port, Some(PortNo::physical(2)));
    }

    #[test]
    fn structural_errors() {
        assert_eq!(
            compile(&[chain("e", vec![])], 1),
            Err(ChainError::Empty { chain: "e".into() })
        );
        assert!(matches!(
            compile(&[chain("c", vec![Hop::Out(0), svc(1, "a")])], 1),
            Err(ChainError::HopAfterEnd { .. })
        ));
        assert_eq!(
            compile(&[chain("c", vec![svc(1, "a"), svc(2, "b"), svc(1, "a")])], 1),
            Err(ChainError::Loop {
                chain: "c".into(),
                service: "a".into()
            })
        );
        assert_eq!(
            compile(&[chain("c", vec![Hop::Out(2)])], 2),
            Err(ChainError::PortOutOfRange {
                chain: "c".into(),
                port: 2,
                ports: 2
            })
        );
        let mut c = chain("c", vec![Hop::Drop]);
        c.in_port = Some(5);
        assert!(matches!(
            compile(&[c], 2),
            Err(ChainError::PortOutOfRange { port: 5, .. })
        ));
        let mut c = chain("c", vec![Hop::Drop]);
        c.matcher.in_port = Some(PortNo(0));
        assert!(matches!(compile(&[c], 1), Err(ChainError::InPortInMatch { .. })));
        let mut a = chain("a", vec![Hop::Drop]);
        a.default = true;
        let mut b = chain("b", vec![Hop::Out(0)]);
        b.default = true;
        b.in_port = None;
        assert_eq!(
            compile(&[a, b], 1),
            Err(ChainError::MultipleDefaults {
                first: "a".into(),
                second: "b".into()
            })
        );
    }

    #[test]
    fn chains_that_loop_together_are_rejected() {
        let mut a = chain("a", vec![svc(1, "fw"), svc(2, "mon"), Hop::Out(0)]);
        a.matcher.l4_dst = Some(80);
        let mut b = chain("b", vec![svc(2, "mon"), svc(3, "nat"), svc(1, "fw")]);
        b.matcher.l4_dst = Some(443);
        let err = compile(&[a, b], 1).unwrap_err();
        let ChainError::CrossLoop { path, chains } = &err else {
            panic!("{err}");
        };
        assert_eq!(path.first(), path.last());
        assert_eq!(path.len(), 4);
        assert_eq!(chains, &vec!["a".to_string(), "b".to_string()]);
        assert!(err.to_string().contains("fw -> mon -> nat -> fw"), "{err}");
    }

    #[test]
    fn conflicts_and_shared_tails() {
        // Same service, same match, different next hop: conflict.
        let a = chain("a", vec![svc(1, "fw"), Hop::Out(0)]);
        let mut b = chain("b", vec![svc(1, "fw"), Hop::Drop]);
        b.in_port = Some(1);
        let err = compile(&[a.clone(), b], 2).unwrap_err();
        assert_eq!(
            err,
            ChainError::Conflict {
                first: "a".into(),
                second: "b".into(),
                from: "service 1".into(),
                priority: CHAIN_PRIORITY
            }
        );
        // Same tail from two ports: shared rule appears once.
        let mut c = a.clone();
        c.name = "c".into();
        c.in_port = Some(1);
        assert_eq!(compile(&[a, c], 2).unwrap().len(), 3);
    }
}
