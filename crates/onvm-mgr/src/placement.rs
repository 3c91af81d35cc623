//! Where the switch thread and NFs run and which nodes get packet buffers, from the
//! topology and the ports' nodes. Pure functions, so every rule is tested on fake
//! machines.
//!
//! The rules (openNetVM's shape — the manager takes the first core, NFs the rest — made
//! NUMA-aware):
//!
//! 1. The switch's node is port 0's node if known, else the node of the first port with
//!    one, else the node of the first online CPU (node 0 on nearly every machine).
//! 2. The manager thread, unless told otherwise, is pinned to the first online CPU of
//!    that node (of the machine, if the node has none).
//! 3. The default NF cores are every online CPU: the switch node's first, then the other
//!    nodes' (by node, then CPU), and the manager's own core last, so that on a small
//!    machine a last NF can still share it with the manager (which sleeps when idle).
//! 4. Buffers get one slice per node in use: the switch's node first, then every other
//!    node a port is on.
//!
//! Cores given explicitly must be online CPUs and may be listed once; anything else is
//! an error at start, never a silent oversubscription.

use onvm_proto::port::PortSpec;
use thiserror::Error;

use crate::options::ManagerCore;
use crate::topology::{Topology, TopologyError, format_cpulist};

/// A core setting the machine cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlacementError {
    /// The manager's core is not an online CPU.
    #[error("manager core {core} is not an online CPU of this machine (online CPUs: {online})")]
    ManagerCore {
        /// The core asked for.
        core: u16,
        /// The online CPUs, as a CPU list.
        online: String,
    },
    /// An NF core is not an online CPU.
    #[error("NF core {core} (--nf-cores) is not an online CPU of this machine (online CPUs: {online})")]
    NfCore {
        /// The core asked for.
        core: u16,
        /// The online CPUs, as a CPU list.
        online: String,
    },
    /// An NF core is listed twice.
    #[error("NF core {0} is listed twice in --nf-cores (each core is handed out once)")]
    NfCoreTwice(u16),
}

/// Where things run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The switch's node.
    pub node: u16,
    /// The core the manager thread is pinned to (`None`: not pinned).
    pub manager_core: Option<u16>,
    /// Cores handed out to NFs, in order.
    pub nf_cores: Vec<u16>,
    /// Nodes that get a slice of the buffers, the switch's first.
    pub buffer_nodes: Vec<u16>,
    /// Each port's node, where known.
    pub port_nodes: Vec<Option<u16>>,
    /// Things a reader should know (a pinned manager away from its ports' node, ...).
    pub notes: Vec<String>,
}

impl Placement {
    /// The node whose buffers packets from port `p` should use: its own, else the
    /// switch's.
    pub fn port_buffer_node(&self, p: usize) -> u16 {
        self.port_nodes.get(p).copied().flatten().unwrap_or(self.node)
    }

    /// One line: the switch's node and core, the NF cores.
    pub fn summary(&self) -> String {
        let core = self
            .manager_core
            .map_or_else(|| "not pinned".into(), |c| format!("core {c}"));
        let nfs: Vec<String> = self.nf_cores.iter().map(u16::to_string).collect();
        let mut s = format!("switch on node {} {core}; NF cores [{}]", self.node, nfs.join(", "));
        for n in &self.notes {
            s += "; ";
            s += n;
        }
        s
    }
}

/// Each port's node: a kernel interface's (`afpacket:`, `afxdp:`, `tap:`, and DPDK vdevs
/// on an interface: `iface=` in their device arguments) where sysfs knows it;
/// generator, pcap and null ports have none, nor other DPDK devices.
pub fn port_nodes(topo: &Topology, ports: &[PortSpec]) -> Result<Vec<Option<u16>>, TopologyError> {
    ports
        .iter()
        .map(|p| match p {
            PortSpec::AfPacket(i) | PortSpec::AfXdp(i) | PortSpec::Tap(i) => topo.iface_node(&i.name),
            PortSpec::Dpdk(d) => match d.devargs.split(',').find_map(|kv| kv.strip_prefix("iface=")) {
                Some(iface) => topo.iface_node(iface),
                None => Ok(None),
            },
            _ => Ok(None),
        })
        .collect()
}

/// Place the manager and NFs on `topo` for ports on `port_nodes`; `nf_cores` = the
/// cores given explicitly, if any.
pub fn place(
    topo: &Topology,
    port_nodes: &[Option<u16>],
    core: ManagerCore,
    nf_cores: Option<&[u16]>,
) -> Result<Placement, PlacementError> {
    let online = || format_cpulist(topo.online());
    let mut notes = Vec::new();
    let first_cpu = topo.online().first().copied();
    let node = port_nodes
        .iter()
        .flatten()
        .next()
        .copied()
        .or_else(|| first_cpu.and_then(|c| topo.node_of_cpu(c)))
        .unwrap_or(0);
    let manager_core = match core {
        ManagerCore::Unpinned => None,
        ManagerCore::Core(c) => {
            if !topo.is_online(c) {
                return Err(PlacementError::ManagerCore {
                    core: c,
                    online: online(),
                });
            }
            if topo.node_of_cpu(c) != Some(node) {
                notes.push(format!("manager core {c} is not on node {node}, where its packets are"));
            }
            Some(c)
        }
        ManagerCore::Auto => {
            let local = topo.node(node).and_then(|n| n.cpus.first().copied());
            if local.is_none() {
                notes.push(format!("node {node} has no online CPU"));
            }
            local.or(first_cpu)
        }
    };
    let nf_cores = match nf_cores {
        Some(list) => {
            for (i, &c) in list.iter().enumerate() {
                if !topo.is_online(c) {
                    return Err(PlacementError::NfCore {
                        core: c,
                        online: online(),
                    });
                }
                if list[..i].contains(&c) {
                    return Err(PlacementError::NfCoreTwice(c));
                }
            }
            list.to_vec()
        }
        None => {
            let mut v = topo.online().to_vec();
            v.sort_by_key(|&c| {
                let n = topo.node_of_cpu(c);
                (Some(c) == manager_core, n != Some(node), n, c)
            });
            v
        }
    };
    let mut buffer_nodes = vec![node];
    for &n in port_nodes.iter().flatten() {
        if !buffer_nodes.contains(&n) {
            buffer_nodes.push(n);
        }
    }
    Ok(Placement {
        node,
        manager_core,
        nf_cores,
        buffer_nodes,
        port_nodes: port_nodes.to_vec(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::fake::{two_nodes, write};

    /// The fake two-node machine (keep the folder while the topology reads from it).
    fn two() -> (tempfile::TempDir, Topology) {
        let dir = two_nodes();
        let t = Topology::read(dir.path()).unwrap();
        (dir, t)
    }

    #[test]
    fn a_port_on_node_1_puts_the_switch_and_first_nfs_there() {
        let (_dir, t) = two();
        let p = place(&t, &[t.iface_node("eth1").unwrap()], ManagerCore::Auto, None).unwrap();
        assert_eq!((p.node, p.manager_core), (1, Some(2)));
        assert_eq!(p.nf_cores, vec![3, 0, 1, 2], "node 1 first, the manager's core last");
        assert_eq!(p.buffer_nodes, vec![1]);
        assert_eq!(p.port_buffer_node(0), 1);
        assert_eq!(p.summary(), "switch on node 1 core 2; NF cores [3, 0, 1, 2]");
    }

    #[test]
    fn port_0_decides_then_the_first_port_with_a_node_then_node_0() {
        let (_dir, t) = two();
        // Port 0 (a generator) has no node: port 1's decides; both nodes get buffers.
        let p = place(&t, &[None, Some(1), Some(0)], ManagerCore::Auto, None).unwrap();
        assert_eq!((p.node, p.buffer_nodes.as_slice()), (1, &[1, 0][..]));
        assert_eq!(p.port_buffer_node(0), 1, "a port without a node uses the switch's");
        assert_eq!(p.port_buffer_node(2), 0);
        let p = place(&t, &[Some(0), Some(1)], ManagerCore::Auto, None).unwrap();
        assert_eq!((p.node, p.manager_core), (0, Some(0)));
        assert_eq!(p.nf_cores, vec![1, 2, 3, 0]);
        let p = place(&t, &[None, None], ManagerCore::Auto, None).unwrap();
        assert_eq!(
            (p.node, p.manager_core, p.buffer_nodes.as_slice()),
            (0, Some(0), &[0][..])
        );
    }

    #[test]
    fn kernel_ports_have_their_interfaces_node_and_others_none() {
        let (_dir, t) = two();
        let specs: Vec<PortSpec> = [
            "gen:64B,4flows",
            "afpacket:eth1",
            "afxdp:eth0",
            "tap:veth0",
            "null",
            "dpdk:net_af_xdp0,iface=eth1,start_queue=0",
            "dpdk:net_null0",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        assert_eq!(
            port_nodes(&t, &specs).unwrap(),
            vec![None, Some(1), None, None, None, Some(1), None]
        );
        let p = place(&t, &port_nodes(&t, &specs).unwrap(), ManagerCore::Auto, None).unwrap();
        assert_eq!((p.node, p.manager_core), (1, Some(2)));
    }

    #[test]
    fn explicit_cores_are_kept_when_online_and_refused_otherwise() {
        let (_dir, t) = two();
        let p = place(&t, &[Some(1)], ManagerCore::Core(0), Some(&[3, 2])).unwrap();
        assert_eq!((p.manager_core, p.nf_cores.as_slice()), (Some(0), &[3, 2][..]));
        assert!(
            p.summary().contains("manager core 0 is not on node 1"),
            "{}",
            p.summary()
        );
        let e = place(&t, &[], ManagerCore::Core(99), None).unwrap_err();
        assert_eq!(
            e,
            PlacementError::ManagerCore {
                core: 99,
                online: "0-3".into()
            }
        );
        assert!(
            e.to_string().contains("core 99") && e.to_string().contains("0-3"),
            "{e}"
        );
        let e = place(&t, &[], ManagerCore::Auto, Some(&[1, 4])).unwrap_err();
        assert_eq!(
            e,
            PlacementError::NfCore {
                core: 4,
                online: "0-3".into()
            }
        );
        let e = place(&t, &[], ManagerCore::Auto, Some(&[1, 2, 1])).unwrap_err();
        assert_eq!(e, PlacementError::NfCoreTwice(1));
        let p = place(&t, &[], ManagerCore::Unpinned, None).unwrap();
        assert_eq!((p.manager_core, p.nf_cores.as_slice()), (None, &[0, 1, 2, 3][..]));
    }

    #[test]
    fn offline_cpus_are_never_handed_out() {
        let dir = two_nodes();
        write(dir.path(), "sys/devices/system/cpu/online", "0,2-3\n");
        let t = Topology::read(dir.path()).unwrap();
        let p = place(&t, &[None], ManagerCore::Auto, None).unwrap();
        assert_eq!((p.manager_core, p.nf_cores.as_slice()), (Some(0), &[2, 3, 0][..]));
        assert!(place(&t, &[], ManagerCore::Core(1), None).is_err());
    }

    #[test]
    fn a_node_without_cpus_still_gets_a_pinned_manager() {
        let dir = two_nodes();
        write(dir.path(), "sys/devices/system/node/node1/cpulist", "\n");
        write(dir.path(), "sys/devices/system/cpu/online", "0-1\n");
        let t = Topology::read(dir.path()).unwrap();
        let p = place(&t, &[Some(1)], ManagerCore::Auto, None).unwrap();
        assert_eq!(
            (p.node, p.manager_core, p.nf_cores.as_slice()),
            (1, Some(0), &[1, 0][..])
        );
        assert!(p.summary().contains("node 1 has no online CPU"), "{}", p.summary());
    }
}
