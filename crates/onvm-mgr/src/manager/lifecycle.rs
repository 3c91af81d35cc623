//! An NF's life as the manager sees it: registration, ready, alloc top-ups, and what
//! happens when it goes (cleanly or not): its packets routed or reclaimed, its rings
//! reset, its ID freed.

use std::os::fd::AsFd;
use std::time::Instant;

use onvm_proto::ctrl::{MgrMsg, Register, Registered};
use onvm_proto::flow::PortNo;
use onvm_shm::OwnerId;

use super::control::ControlError;
use super::{ALLOC_LEVEL, DropReason, Mgr, NfRings};
use crate::error::MgrError;
use crate::registry::{State, rings_of};

impl Mgr<'_> {
    /// Instance `id` asked to leave (`NfMsg::Leaving`: a signal, a scale-down): it
    /// leaves its service's table (its flows go to the other instances once it has
    /// handled what it was sent: a handover), the edges into it close and none opens
    /// again; [`Mgr::settle_leaving`] answers once nothing more is on its way to it.
    pub(super) fn leave(&mut self, id: u16) {
        let now = Instant::now();
        let fwd = &mut self.fwd;
        // Asked once: a repeat (a buggy or hostile NF) changes nothing, not even the
        // edges of everyone else, which a table change closes.
        let Some((tag, service)) = fwd
            .reg
            .get(id)
            .filter(|i| !i.leaving)
            .map(|i| (i.tag.clone(), i.service))
        else {
            return;
        };
        let before = fwd.reta_now(service);
        let moved = fwd.reg.set_leaving(id);
        fwd.hand_over(service, before, now);
        fwd.topology_changed();
        let flows = if moved {
            format!("its flows go to the other instances of service {service} once it has handled what it was sent")
        } else {
            format!("service {service} has no other instance to take its flows")
        };
        fwd.acct
            .event(format!("NF {tag:?} (instance {id}) is leaving; {flows}"));
        self.ctl.leaving.push((id, now));
    }

    /// Answer the leaving instances to which nothing more is on its way (no edge into
    /// them left, nothing queued for them): `MgrMsg::Left`, after which they empty
    /// their rings and stop. Every control tick.
    pub(super) fn settle_leaving(&mut self, now: Instant) {
        if self.ctl.leaving.is_empty() {
            return;
        }
        let fwd = &mut self.fwd;
        let mut leaving = std::mem::take(&mut self.ctl.leaving);
        leaving.retain(|&(id, since)| {
            let Some(service) = fwd.reg.get(id).map(|i| i.service) else {
                return false;
            };
            // The only instance of its service stays in the table: its packets keep
            // coming, so waiting would not empty anything. Answered at once.
            let listed = fwd.reg.reta(service).is_some_and(|r| r.instances().contains(&id));
            let edges_in = fwd.direct.edges.iter().any(|e| e.to == id);
            let queued = fwd.to_nf.get(usize::from(id) - 1).is_some_and(|q| !q.is_empty());
            if !listed && (edges_in || queued) {
                return true;
            }
            self.ctl.send_to(id, &MgrMsg::Left);
            let tag = fwd.reg.get(id).map_or("", |i| i.tag.as_str());
            fwd.acct.event(format!(
                "NF {tag:?} (instance {id}) left after {:.1} ms: nothing more is sent to it",
                now.duration_since(since).as_secs_f64() * 1e3
            ));
            false
        });
        self.ctl.leaving = leaving;
    }

    /// A registration on connection `k`: an instance ID, its rings, the region's fd.
    pub(super) fn register(&mut self, k: usize, req: &Register) -> Result<(), ControlError> {
        let before = self.fwd.reta_now(req.service);
        let inst = match self.fwd.reg.register(req) {
            Ok(inst) => inst,
            Err(why) => {
                self.fwd.acct.event(format!("NF {:?} refused: {why}", req.tag));
                if let Ok(b) = MgrMsg::Refused(why.clone()).encode() {
                    let _ = self.ctl.conns[k].sock.send(&b);
                }
                return Err(ControlError::Refused(why));
            }
        };
        let (id, service, core) = (inst.id, inst.service, inst.core);
        self.fwd.hand_over(service, before, std::time::Instant::now());
        let rings = rings_of(id);
        for (r, ends) in [(rings.rx, (0, id)), (rings.tx, (id, 0)), (rings.alloc, (0, id))] {
            if let Ok(ring) = self.fwd.region.ring(r) {
                ring.set_ends(ends.0, ends.1);
            }
        }
        let quota = self.opts.quota_of(service, self.fwd.region.buffers());
        if let Some(i) = self.fwd.reg.get_mut(id) {
            i.quota = quota;
        }
        let reply = MgrMsg::Registered(Registered {
            instance: id,
            service,
            core,
            rings,
            quota,
        });
        self.ctl.conns[k]
            .sock
            .send_with_fd(&reply.encode()?, self.fwd.region.fd().as_fd())
            .map_err(ControlError::Reply)?;
        self.ctl.conns[k].instance = Some(id);
        let pid = self.ctl.conns[k].sock.peer_cred().ok().map(|c| c.pid);
        let container = pid.and_then(container_of);
        self.fwd.acct.event(format!(
            "NF {:?} registered: instance {id}, service {service}, core {}{}",
            req.tag,
            core.map_or_else(|| "shared".into(), |c| c.to_string()),
            container
                .as_ref()
                .map_or_else(String::new, |c| format!(", container {c}"))
        ));
        if let Some(i) = self.fwd.reg.get_mut(id) {
            i.container = container;
            i.pid = pid;
        }
        // The README's old two-shell recipe started an NF no chain reached: it idled
        // while the manager dropped everything as `no-rule`. Say so where it shows.
        if !self.fwd.table.reaches(PortNo::service(service)) {
            self.fwd.acct.event(format!(
                "NF {:?} (instance {id}): no chain or rule sends packets to service {service} yet; \
                 it idles until one does (a [[chains]] entry, a controller's rule, the HTTP API) \
                 or another NF sends to it",
                req.tag
            ));
        }
        Ok(())
    }

    /// Instance `id` is ready for packets. A repeated `Ready` changes nothing: each one
    /// used to close every direct edge in the switch (issue 12: a client repeating it
    /// reopened an unrelated chain's edge 85 times in 1.5 s).
    pub(super) fn ready(&mut self, id: u16) {
        if let Some(i) = self.fwd.reg.get_mut(id) {
            if i.state == State::Running {
                return;
            }
            i.state = State::Running;
        }
        if let Err(at) = self.io.active.binary_search(&id) {
            self.io.active.insert(at, id);
        }
        self.fwd.topology_changed();
    }

    /// Keep every running NF's alloc ring at [`ALLOC_LEVEL`].
    pub(super) fn top_up_allocs(&mut self) -> Result<(), MgrError> {
        let (io, fwd, watchdog) = (&mut self.io, &mut self.fwd, &mut self.watchdog);
        // Corrupt indices (some process scribbled them) are not the NF's doing, as far
        // as anyone knows: no top-up this time, counted and reported; the NF is not
        // disconnected, and the ring mends when either end next publishes its index.
        let mut corrupt = |fwd: &mut super::Fwd, id: u16, e: &onvm_shm::RingError| {
            let times = watchdog.ring_corrupt(id);
            if super::control::worth_logging(times) {
                let tag = fwd.reg.get(id).map_or("", |i| i.tag.as_str());
                fwd.acct.event(format!(
                    "NF {tag:?} (instance {id}): its alloc ring (ring {}) is corrupt, not topped up ({times} times so far): {e}",
                    rings_of(id).alloc
                ));
            }
        };
        for &id in &io.active {
            let i = usize::from(id) - 1;
            let have = match fwd.region.ring(rings_of(id).alloc)?.len() {
                Ok(n) => n,
                Err(e) => {
                    io.rings[i].alloc.heal();
                    corrupt(fwd, id, &e);
                    continue;
                }
            };
            if have >= ALLOC_LEVEL / 2 {
                continue;
            }
            // Buffers an NF allocates come from its core's node, where it writes them.
            let node = fwd
                .reg
                .get(id)
                .and_then(|i| i.core)
                .and_then(|c| self.topo.node_of_cpu(c));
            fwd.pool.prefer_node(node.unwrap_or(self.place.node));
            fwd.pool.alloc_burst((ALLOC_LEVEL - have) as usize, &mut io.burst);
            let n = match fwd
                .pool
                .holder()
                .enqueue(&mut io.rings[i].alloc, OwnerId(id), &mut io.burst)
            {
                Ok(n) => n,
                Err(e) => {
                    corrupt(fwd, id, &e);
                    0
                }
            };
            fwd.acct.alloc_given += n as u64;
            for buf in io.burst.drain(..) {
                fwd.pool.free(buf);
            }
        }
        Ok(())
    }

    /// Empty edge rings whose consumer is gone.
    pub(super) fn drain_orphans(&mut self) -> Result<(), MgrError> {
        self.settle_manager_edges();
        let fwd = &mut self.fwd;
        for (ring, dead, done) in fwd.direct.edges.orphaned() {
            let n = fwd.pool.drain_ring(ring, OwnerId(dead))?;
            fwd.acct.drops.add(DropReason::Reclaimed, u64::from(n));
            if done {
                fwd.direct.edges.finish(ring);
                fwd.region.ring(ring)?.set_ends(0, 0);
            }
        }
        Ok(())
    }

    /// Instance `id`'s socket closed: route what it already sent, take back everything
    /// else it had, free its ID.
    pub(super) fn nf_gone(&mut self, id: u16) -> Result<(), MgrError> {
        let clean = self.fwd.reg.get(id).is_some_and(|i| i.state == State::Stopping);
        // Packets it handed on before going are still good.
        self.drain_nf_fully(id);
        self.drain_edges_from(id);
        self.io.active.retain(|&a| a != id);
        self.watchdog.forget(id);
        self.fwd.pressure.forget(id);
        self.nfq.forget(id);
        self.fwd.settle_pressure(&self.io.active);
        self.fwd.drop_queued_for(id);
        self.fwd.direct.edges.instance_gone(id, &mut self.fwd.outbox);
        self.fwd.topology_changed();
        let fwd = &mut self.fwd;
        let rings = rings_of(id);
        // A corrupt alloc ring reads as empty here; its buffers are then reclaimed below
        // or, if unreadable, reported by the audit.
        let unused = fwd.pool.drain_ring(rings.alloc, OwnerId(id)).unwrap_or(0);
        fwd.acct.alloc_given -= u64::from(unused);
        let got = fwd.pool.reclaim(OwnerId(id))?;
        // Its rings are the next holder of this ID's: leave them empty and consistent,
        // whatever the NF did to them, and start our ends afresh.
        for r in [rings.rx, rings.tx, rings.alloc] {
            let ring = fwd.region.ring(r)?;
            ring.reset();
            ring.set_ends(0, 0);
        }
        self.io.rings[usize::from(id) - 1] = NfRings::of(fwd.region, id)?;
        let n = got.total();
        fwd.acct.drops.add(DropReason::Reclaimed, u64::from(n));
        let children: Vec<u16> = fwd.reg.iter().filter(|i| i.parent == Some(id)).map(|i| i.id).collect();
        if let Some(inst) = fwd.reg.remove(id) {
            if clean {
                fwd.acct.event(format!(
                    "NF {:?} (instance {id}) stopped; {n} buffers given back",
                    inst.tag
                ));
            } else {
                fwd.acct.crashes += 1;
                let corrupt = match got.corrupt_rings {
                    0 => String::new(),
                    c => format!("; {c} corrupt ring(s) reset"),
                };
                fwd.acct.event(format!(
                    "NF {:?} (instance {id}) died without stopping; reclaimed {n} buffers ({} in rings, {} held, {} half-sent, {} skipped unclaimed){corrupt}; instance ID free",
                    inst.tag, got.from_rings, got.held, got.torn, got.stranded,
                ));
            }
            fwd.acct.exited.push(super::report::nf_row(&inst));
        }
        fwd.settle_handovers(std::time::Instant::now());
        for c in children {
            self.ctl.send_to(c, &MgrMsg::Stop);
        }
        Ok(())
    }
}

/// The container process `pid` runs in, as `NAME (ID)` (or `ID`): the ID from its
/// cgroup, the name from the `ONVM_CONTAINER` its launcher set (`onvm up` does; a
/// display name only, trusted for nothing).
fn container_of(pid: u32) -> Option<String> {
    let id = container_id(&std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?)?;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    Some(match container_name(&environ) {
        Some(name) => format!("{name} ({id})"),
        None => id,
    })
}

/// `ONVM_CONTAINER`'s value in a `/proc/PID/environ` (NUL-separated), if it is there and
/// a plausible container name.
fn container_name(environ: &[u8]) -> Option<String> {
    let key = format!("{}=", onvm_proto::ctrl::env::CONTAINER);
    environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(key.as_bytes()))
        .and_then(|v| std::str::from_utf8(v).ok())
        .filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(String::from)
}

/// The short ID (12 hex digits) of the Docker container whose cgroup is in `cgroup`
/// (a `/proc/PID/cgroup`): the 64-hex-digit component of the path, which Docker names
/// `docker-ID.scope` (systemd driver) or `docker/ID` (cgroupfs driver). `None` for a
/// process outside a container.
fn container_id(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split(['/', '-', '.'])
            .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|w| w[..12].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::{container_id, container_name};

    #[test]
    fn the_container_name_is_read_from_the_environment_when_plausible() {
        assert_eq!(
            container_name(b"PATH=/x\0ONVM_CONTAINER=onvm-fw-s1-0-1a2b3c4d\0ONVM_TAG=fw\0").as_deref(),
            Some("onvm-fw-s1-0-1a2b3c4d")
        );
        assert_eq!(container_name(b"PATH=/x\0"), None);
        assert_eq!(container_name(b"ONVM_CONTAINER=a b\0"), None, "not a name");
        assert_eq!(container_name(b"ONVM_CONTAINER=\0"), None);
    }

    #[test]
    fn the_container_is_read_from_either_cgroup_driver_and_a_bare_process_has_none() {
        let id = "5fb4a8513dbf0f0ac2a7e0d5c0c4e34c2c7d1a9e4b3f6a2d8e7c1b0a9f8e7d6c";
        assert_eq!(
            container_id(&format!("0::/system.slice/docker-{id}.scope\n")).as_deref(),
            Some("5fb4a8513dbf")
        );
        assert_eq!(
            container_id(&format!("0::/docker/{id}\n")).as_deref(),
            Some("5fb4a8513dbf")
        );
        assert_eq!(
            container_id(&format!("12:cpuset:/docker/{id}\n1:name=systemd:/docker/{id}\n")).as_deref(),
            Some("5fb4a8513dbf")
        );
        assert_eq!(container_id("0::/user.slice/user-0.slice/session-1.scope\n"), None);
        assert_eq!(container_id(""), None);
    }
}
