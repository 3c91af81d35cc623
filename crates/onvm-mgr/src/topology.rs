//! The machine's CPUs and NUMA nodes, as sysfs describes them.
//!
//! Read through a root directory (`/` on a real machine) so that tests, and anyone
//! checking a placement for another machine, can point it at a fake tree. The files:
//!
//! * `ROOT/sys/devices/system/cpu/online`: the online CPUs (Linux cpulist syntax,
//!   `0-3,8,10-11`);
//! * `ROOT/sys/devices/system/node/nodeN/cpulist`: the CPUs of node `N`;
//! * `ROOT/sys/class/net/IFACE/device/numa_node`: the node of a network interface's
//!   device (`-1`, or no file at all for virtual interfaces such as veth and TAP, when
//!   the kernel does not know).
//!
//! Some containers and small VMs have no `node` directories: that reads as one node 0
//! holding every online CPU, which is what such a machine is.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// A sysfs file that could not be read or does not say what it should.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}: {why}", path.display())]
pub struct TopologyError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong, with the text that was found.
    pub why: String,
}

/// One NUMA node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its number.
    pub id: u16,
    /// Its online CPUs, ascending (empty for a node with memory only).
    pub cpus: Vec<u16>,
}

/// CPUs and NUMA nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    root: PathBuf,
    online: Vec<u16>,
    nodes: Vec<Node>,
    note: Option<String>,
}

impl Topology {
    /// Read the topology under `root` (`/` for this machine).
    pub fn read(root: &Path) -> Result<Topology, TopologyError> {
        let mut note = None;
        let online_file = root.join("sys/devices/system/cpu/online");
        let online = match read_optional(&online_file)? {
            Some(text) => parse_cpulist(&text).map_err(|why| TopologyError {
                path: online_file.clone(),
                why,
            })?,
            None => {
                let n = std::thread::available_parallelism().map_or(1, |n| n.get());
                let cpus: Vec<u16> = (0..n.min(usize::from(u16::MAX)) as u16).collect();
                note = Some(format!(
                    "{} missing: assuming CPUs {}",
                    online_file.display(),
                    format_cpulist(&cpus)
                ));
                cpus
            }
        };
        let node_dir = root.join("sys/devices/system/node");
        let mut ids = Vec::new();
        match std::fs::read_dir(&node_dir) {
            Ok(entries) => {
                for e in entries.flatten() {
                    let name = e.file_name();
                    if let Some(id) = name
                        .to_str()
                        .and_then(|n| n.strip_prefix("node"))
                        .and_then(|n| n.parse().ok())
                    {
                        ids.push(id);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&node_dir, &e)),
        }
        ids.sort_unstable();
        let mut nodes = Vec::with_capacity(ids.len());
        for id in ids {
            let file = node_dir.join(format!("node{id}/cpulist"));
            let text = std::fs::read_to_string(&file).map_err(|e| io_error(&file, &e))?;
            let mut cpus = parse_cpulist(&text).map_err(|why| TopologyError { path: file, why })?;
            cpus.retain(|c| online.binary_search(c).is_ok());
            nodes.push(Node { id, cpus });
        }
        if nodes.is_empty() {
            nodes.push(Node {
                id: 0,
                cpus: online.clone(),
            });
            note.get_or_insert_with(|| format!("no NUMA nodes in {}: one node", node_dir.display()));
        }
        Ok(Topology {
            root: root.to_path_buf(),
            online,
            nodes,
            note,
        })
    }

    /// The online CPUs, ascending.
    pub fn online(&self) -> &[u16] {
        &self.online
    }

    /// Whether `cpu` is online.
    pub fn is_online(&self, cpu: u16) -> bool {
        self.online.binary_search(&cpu).is_ok()
    }

    /// The nodes, ascending.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `id`, if the machine has it.
    pub fn node(&self, id: u16) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node an online CPU belongs to.
    pub fn node_of_cpu(&self, cpu: u16) -> Option<u16> {
        self.nodes.iter().find(|n| n.cpus.contains(&cpu)).map(|n| n.id)
    }

    /// Something worth saying about how the topology was found (a missing file that
    /// was replaced by a guess), if anything.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// The node of network interface `iface`'s device: `None` when the kernel does not
    /// know (`-1`), the interface has no device (veth, TAP, loopback) or does not exist
    /// (yet), or names a node this topology lacks.
    pub fn iface_node(&self, iface: &str) -> Result<Option<u16>, TopologyError> {
        let file = self.root.join("sys/class/net").join(iface).join("device/numa_node");
        let Some(text) = read_optional(&file)? else {
            return Ok(None);
        };
        let bad = |why: String| TopologyError {
            path: file.clone(),
            why,
        };
        let n: i64 = text
            .trim()
            .parse()
            .map_err(|_| bad(format!("{:?} is not a node number", text.trim())))?;
        if n < 0 {
            return Ok(None);
        }
        Ok(u16::try_from(n).ok().filter(|&n| self.node(n).is_some()))
    }

    /// One line: nodes and their CPUs.
    pub fn summary(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("node {}: CPUs {}", n.id, format_cpulist(&n.cpus)))
            .collect();
        format!("{} node(s) ({})", self.nodes.len(), nodes.join("; "))
    }
}

/// The contents of `path`, or `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, TopologyError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

fn io_error(path: &Path, e: &io::Error) -> TopologyError {
    TopologyError {
        path: path.to_path_buf(),
        why: format!("cannot read: {e}"),
    }
}

/// Parse a Linux CPU list (`0-3,8,10-11`; empty for none) into ascending CPU numbers.
/// The error quotes the text and the part that is wrong.
pub fn parse_cpulist(text: &str) -> Result<Vec<u16>, String> {
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Ok(cpus);
    }
    let cpu = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| format!("bad CPU list {text:?}: {s:?} is not a CPU number"))
    };
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (cpu(a)?, cpu(b)?);
                if a > b {
                    return Err(format!("bad CPU list {text:?}: range {part:?} runs backwards"));
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(cpu(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// CPU numbers in Linux CPU list syntax, runs as ranges (`0-3,8`); `none` for none.
pub fn format_cpulist(cpus: &[u16]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut k = 0;
    while k < sorted.len() {
        let start = sorted[k];
        while k + 1 < sorted.len() && sorted[k + 1] == sorted[k] + 1 {
            k += 1;
        }
        parts.push(if sorted[k] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[k])
        });
        k += 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

/// Fake sysfs trees for tests (here and in the placement tests).
#[cfg(test)]
pub(crate) mod fake {
    use std::path::Path;

    /// Write `text` to `root/rel`, creating the folders.
    pub fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Two nodes (node0: CPUs 0-1, node1: CPUs 2-3), interface `eth1` on node 1,
    /// `eth0` whose node the kernel does not know, `veth0` without a device.
    pub fn two_nodes() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "sys/devices/system/cpu/online", "0-3\n");
        write(r, "sys/devices/system/node/node0/cpulist", "0-1\n");
        write(r, "sys/devices/system/node/node1/cpulist", "2-3\n");
        write(r, "sys/devices/system/node/online", "0-1\n");
        write(r, "sys/class/net/eth1/device/numa_node", "1\n");
        write(r, "sys/class/net/eth0/device/numa_node", "-1\n");
        std::fs::create_dir_all(r.join("sys/class/net/veth0")).unwrap();
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{two_nodes, write};
    use super::*;

    #[test]
    fn cpulists_parse_and_format_both_ways() {
        assert_eq!(parse_cpulist("0-3,8,10-11\n").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpulist("5").unwrap(), vec![5]);
        assert_eq!(parse_cpulist("\n").unwrap(), Vec::<u16>::new());
        assert_eq!(parse_cpulist("3,1-2,2").unwrap(), vec![1, 2, 3]);
        let e = parse_cpulist("0-x").unwrap_err();
        assert!(e.contains("\"0-x\"") && e.contains("\"x\" is not a CPU number"), "{e}");
        assert!(parse_cpulist("4-2").unwrap_err().contains("runs backwards"));
        assert!(parse_cpulist("1,,2").is_err());
        assert!(parse_cpulist("70000").is_err());
        assert_eq!(format_cpulist(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format_cpulist(&[2]), "2");
        assert_eq!(format_cpulist(&[]), "none");
        for text in ["0-3,8,10-11", "0", "1,3,5-6"] {
            assert_eq!(format_cpulist(&parse_cpulist(text).unwrap()), text);
        }
    }

    #[test]
    fn a_two_node_tree_reads_with_cpus_and_interface_nodes() {
        let dir = two_nodes();
        let t = Topology::read(dir.path()).unwrap();
        assert_eq!(t.online(), &[0, 1, 2, 3]);
        assert_eq!(
            t.nodes(),
            &[
                Node {
                    id: 0,
                    cpus: vec![0, 1]
                },
                Node {
                    id: 1,
                    cpus: vec![2, 3]
                }
            ]
        );
        assert_eq!(
            (t.node_of_cpu(3), t.node_of_cpu(1), t.node_of_cpu(9)),
            (Some(1), Some(0), None)
        );
        assert_eq!(t.iface_node("eth1").unwrap(), Some(1));
        assert_eq!(t.iface_node("eth0").unwrap(), None, "-1: the kernel does not know");
        assert_eq!(t.iface_node("veth0").unwrap(), None, "no device");
        assert_eq!(t.iface_node("ghost").unwrap(), None, "no such interface (yet)");
        assert_eq!(t.note(), None);
        assert_eq!(t.summary(), "2 node(s) (node 0: CPUs 0-1; node 1: CPUs 2-3)");
    }

    #[test]
    fn offline_cpus_are_left_out_of_their_node() {
        let dir = two_nodes();
        write(dir.path(), "sys/devices/system/cpu/online", "0-2\n");
        let t = Topology::read(dir.path()).unwrap();
        assert_eq!(t.node(1).unwrap().cpus, vec![2]);
        assert!(!t.is_online(3));
    }

    #[test]
    fn no_node_directories_mean_one_node_with_every_online_cpu() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "sys/devices/system/cpu/online", "0-5\n");
        let t = Topology::read(dir.path()).unwrap();
        assert_eq!(
            t.nodes(),
            &[Node {
                id: 0,
                cpus: (0..6).collect()
            }]
        );
        assert!(t.note().unwrap().contains("no NUMA nodes"), "{:?}", t.note());
    }

    #[test]
    fn bad_files_are_named_with_their_text() {
        let dir = two_nodes();
        write(dir.path(), "sys/devices/system/node/node1/cpulist", "2-three\n");
        let e = Topology::read(dir.path()).unwrap_err();
        assert!(e.path.ends_with("sys/devices/system/node/node1/cpulist"), "{e}");
        assert!(e.to_string().contains("\"2-three\""), "{e}");

        let dir = two_nodes();
        write(dir.path(), "sys/class/net/eth1/device/numa_node", "one\n");
        let t = Topology::read(dir.path()).unwrap();
        let e = t.iface_node("eth1").unwrap_err();
        assert!(
            e.to_string().contains("eth1/device/numa_node") && e.to_string().contains("\"one\""),
            "{e}"
        );
    }

    #[test]
    fn this_machine_reads() {
        let t = Topology::read(Path::new("/")).unwrap();
        assert!(!t.online().is_empty());
        assert!(t.nodes().iter().any(|n| !n.cpus.is_empty()), "{}", t.summary());
    }
}
