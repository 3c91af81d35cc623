//! Who is registered: instance IDs, services and their load-balancing tables, cores.
//!
//! Pure bookkeeping (no sockets, no shared memory), so every refusal reason is tested
//! directly. openNetVM's rules: an NF may insist on an instance ID; a service has at
//! most [`MAX_INSTANCES_PER_SERVICE`] instances; an NF gets a core of its own unless
//! it asks to share one; a core it asks for must be one the manager hands out and not
//! dedicated to another NF. Unlike openNetVM, a refused NF learns *why*.

use std::time::Instant;

use onvm_proto::ctrl::{ABI_VERSION, NfCounters, RefuseReason, Register, RegisterFlags, RingIds};
use onvm_proto::limits::{MAX_INSTANCES, MAX_INSTANCES_PER_SERVICE, MAX_SERVICES};
use onvm_proto::rss::Reta;

use crate::drops::DropReason;

/// The ring directory's layout is shared with the edge protocol (`onvm_proto::edge`).
pub use onvm_proto::limits::{EDGE_RINGS, FIRST_EDGE_RING, RINGS_PER_INSTANCE};

/// The manager's wake-up ring (only its doorbell is used: an idle manager sleeps on it).
pub const WAKE_RING: u32 = FIRST_EDGE_RING + EDGE_RINGS;
/// Rings the region needs.
pub const TOTAL_RINGS: u32 = WAKE_RING + 1;

/// The rings of instance `id` (fixed by the ID, so a restarted NF with the same ID
/// finds its rings where they were, and nothing needs allocating).
pub fn rings_of(id: u16) -> RingIds {
    let base = (u32::from(id) - 1) * RINGS_PER_INSTANCE;
    RingIds {
        rx: base,
        tx: base + 1,
        alloc: base + 2,
        wake: WAKE_RING,
    }
}

/// Life of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Registered, setting up.
    Starting,
    /// Receiving packets.
    Running,
    /// Told to stop, or said it stops.
    Stopping,
}

/// One registered NF instance.
#[derive(Clone, Debug)]
pub struct Instance {
    /// Instance ID.
    pub id: u16,
    /// Tag.
    pub tag: String,
    /// Service.
    pub service: u16,
    /// Core it runs on, if pinned.
    pub core: Option<u16>,
    /// Whether it has its core to itself.
    pub dedicated: bool,
    /// Shared-core mode: sleeps when idle, needs doorbells.
    pub shared: bool,
    /// Parent instance (children of a scaled NF).
    pub parent: Option<u16>,
    /// Life state.
    pub state: State,
    /// Counters it last reported.
    pub counters: NfCounters,
    /// Packets the manager could not give it (its rx ring was full).
    pub rx_drop: u64,
    /// The watchdog found it not reading its rx ring: its service's flows go to the
    /// other instances, if there are any.
    pub hung: bool,
    /// It asked to leave (`NfMsg::Leaving`): out of its service's table while another
    /// instance can take its flows, and never back (it is stopping).
    pub leaving: bool,
    /// Backpressure found its rings over the high watermark (and not yet under the
    /// low one): packets for it are dropped where they enter its chain.
    pub behind: bool,
    /// Buffers it may hold outside its rings, and at most what the manager queues in
    /// its rx ring (set when it registers; `u32::MAX` until then).
    pub quota: u32,
    /// When it registered.
    pub since: Instant,
    /// The Docker container it runs in, `NAME (ID)` (or the short ID), read from its
    /// process's cgroup and environment when it registered; `None` for a bare process.
    pub container: Option<String>,
    /// Its process (the kernel's word for who connected), when known.
    pub pid: Option<u32>,
}

/// The registry.
#[derive(Debug)]
pub struct Registry {
    slots: Vec<Option<Instance>>,
    services: Vec<Reta>,
    cores: Vec<u16>,
}

impl Registry {
    /// A registry handing out `cores` to NFs.
    pub fn new(cores: Vec<u16>) -> Self {
        Registry {
            slots: vec![None; usize::from(MAX_INSTANCES)],
            services: vec![Reta::default(); usize::from(MAX_SERVICES)],
            cores,
        }
    }

    /// Cores handed out to NFs.
    pub fn cores(&self) -> &[u16] {
        &self.cores
    }

    /// Instance `id`, if registered.
    pub fn get(&self, id: u16) -> Option<&Instance> {
        self.slots.get(usize::from(id).wrapping_sub(1))?.as_ref()
    }

    /// Mutable instance `id`.
    pub fn get_mut(&mut self, id: u16) -> Option<&mut Instance> {
        self.slots.get_mut(usize::from(id).wrapping_sub(1))?.as_mut()
    }

    /// All registered instances, by ID.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.slots.iter().flatten()
    }

    /// Instances of a service (in RETA order).
    pub fn instances_of(&self, service: u16) -> &[u16] {
        self.services.get(usize::from(service)).map_or(&[], |r| r.instances())
    }

    /// The instance of `service` that gets a packet with this flow hash.
    #[inline]
    pub fn pick(&self, service: u16, hash: u32) -> Option<u16> {
        self.services.get(usize::from(service))?.lookup(hash)
    }

    /// The load-balancing table of a service.
    pub fn reta(&self, service: u16) -> Option<&Reta> {
        self.services.get(usize::from(service))
    }

    fn core_users(&self, core: u16) -> impl Iterator<Item = &Instance> {
        self.iter().filter(move |i| i.core == Some(core))
    }

    fn choose_core(&self, req: &Register) -> Result<(Option<u16>, bool), RefuseReason> {
        let shared = req.flags.contains(RegisterFlags::SHARED_CORE);
        if let Some(c) = req.core {
            if !self.cores.contains(&c) {
                return Err(RefuseReason::CoreOutOfRange {
                    core: c,
                    cores: self.cores.len() as u16,
                });
            }
            let mut users = self.core_users(c);
            if shared {
                if users.any(|i| i.dedicated) {
                    return Err(RefuseReason::CoreBusy(c));
                }
                return Ok((Some(c), false));
            }
            if users.next().is_some() {
                return Err(RefuseReason::CoreBusy(c));
            }
            return Ok((Some(c), true));
        }
        if shared {
            // The non-dedicated core with the fewest NFs.
            let best = self
                .cores
                .iter()
                .filter(|&&c| !self.core_users(c).any(|i| i.dedicated))
                .min_by_key(|&&c| self.core_users(c).count());
            return Ok((best.copied(), false));
        }
        match self.cores.iter().find(|&&c| self.core_users(c).next().is_none()) {
            Some(&c) => Ok((Some(c), true)),
            None => Err(RefuseReason::NoFreeCore),
        }
    }

    /// Admit an NF, or say why not (openNetVM's `NF_*` states).
    pub fn register(&mut self, req: &Register) -> Result<&Instance, RefuseReason> {
        if req.abi_version != ABI_VERSION {
            return Err(RefuseReason::AbiMismatch {
                ours: ABI_VERSION,
                theirs: req.abi_version,
            });
        }
        if req.service == 0 || req.service >= MAX_SERVICES {
            return Err(RefuseReason::ServiceOutOfRange {
                service: req.service,
                max: MAX_SERVICES,
            });
        }
        let id = match req.instance {
            Some(id) if id == 0 || id > MAX_INSTANCES => {
                return Err(RefuseReason::InstanceOutOfRange {
                    instance: id,
                    max: MAX_INSTANCES + 1,
                });
            }
            Some(id) if self.get(id).is_some() => return Err(RefuseReason::InstanceTaken(id)),
            Some(id) => id,
            None => match self.slots.iter().position(Option::is_none) {
                Some(i) => i as u16 + 1,
                None => return Err(RefuseReason::NoFreeIds),
            },
        };
        if self.instances_of(req.service).len() >= MAX_INSTANCES_PER_SERVICE {
            return Err(RefuseReason::TooManyInstances {
                service: req.service,
                max: MAX_INSTANCES_PER_SERVICE as u16,
            });
        }
        let (core, dedicated) = self.choose_core(req)?;
        self.services[usize::from(req.service)]
            .add_instance(id)
            .map_err(|_| RefuseReason::TooManyInstances {
                service: req.service,
                max: MAX_INSTANCES_PER_SERVICE as u16,
            })?;
        let slot = &mut self.slots[usize::from(id) - 1];
        Ok(slot.insert(Instance {
            id,
            tag: req.tag.clone(),
            service: req.service,
            core,
            dedicated,
            shared: req.flags.contains(RegisterFlags::SHARED_CORE),
            parent: req.parent,
            state: State::Starting,
            counters: NfCounters::default(),
            rx_drop: 0,
            hung: false,
            leaving: false,
            behind: false,
            quota: u32::MAX,
            since: Instant::now(),
            container: None,
            pid: None,
        }))
    }

    /// Its rx ring had no room for `n` packets: counted against it, and why (a hung NF's
    /// full ring is its hang, not a burst it could not keep up with).
    pub fn ring_full(&mut self, id: u16, n: u64) -> DropReason {
        match self.get_mut(id) {
            Some(inst) => {
                inst.rx_drop += n;
                if inst.hung {
                    DropReason::HungNf
                } else {
                    DropReason::RingFull
                }
            }
            None => DropReason::RingFull,
        }
    }

    /// Mark instance `id` hung (or reading again). A hung instance leaves its service's
    /// table while another instance can take its flows, and comes back when it reads
    /// again; the only instance of a service stays (there is nowhere else to go).
    /// Whether the table changed.
    pub fn set_hung(&mut self, id: u16, hung: bool) -> bool {
        let Some((inst, reta)) = self.with_reta(id) else {
            return false;
        };
        inst.hung = hung;
        let leaving = inst.leaving;
        let listed = reta.instances().contains(&id);
        match (hung, listed) {
            (true, true) if reta.instances().len() > 1 => reta.remove_instance(id).is_ok(),
            (false, false) if !leaving => reta.add_instance(id).is_ok(),
            _ => false,
        }
    }

    /// Mark instance `id` leaving: it leaves its service's table for good while another
    /// instance can take its flows (the only instance stays: there is nowhere else to
    /// go). Whether the table changed.
    pub fn set_leaving(&mut self, id: u16) -> bool {
        let Some((inst, reta)) = self.with_reta(id) else {
            return false;
        };
        inst.leaving = true;
        reta.instances().contains(&id) && reta.instances().len() > 1 && reta.remove_instance(id).is_ok()
    }

    /// Instance `id` and its service's table, borrowed together.
    fn with_reta(&mut self, id: u16) -> Option<(&mut Instance, &mut Reta)> {
        let inst = self.slots.get_mut(usize::from(id).wrapping_sub(1))?.as_mut()?;
        let reta = self.services.get_mut(usize::from(inst.service))?;
        Some((inst, reta))
    }

    /// Forget an instance; its ID, core and RETA share are free again.
    pub fn remove(&mut self, id: u16) -> Option<Instance> {
        let inst = self.slots.get_mut(usize::from(id).wrapping_sub(1))?.take()?;
        // The instance is in its service's table by construction.
        let _ = self.services[usize::from(inst.service)].remove_instance(id);
        Some(inst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(service: u16) -> Register {
        Register {
            abi_version: ABI_VERSION,
            tag: "t".into(),
            service,
            instance: None,
            core: None,
            parent: None,
            flags: RegisterFlags::SHARED_CORE,
        }
    }

    #[test]
    fn ids_are_assigned_reused_and_conflicts_refused() {
        let mut r = Registry::new(vec![0, 1]);
        assert_eq!(r.register(&req(1)).unwrap().id, 1);
        assert_eq!(r.register(&req(1)).unwrap().id, 2);
        let mut want7 = req(2);
        want7.instance = Some(7);
        assert_eq!(r.register(&want7).unwrap().id, 7);
        assert_eq!(r.register(&want7).unwrap_err(), RefuseReason::InstanceTaken(7));
        want7.instance = Some(MAX_INSTANCES + 1);
        assert!(matches!(
            r.register(&want7).unwrap_err(),
            RefuseReason::InstanceOutOfRange { .. }
        ));
        r.remove(1).unwrap();
        assert_eq!(r.register(&req(3)).unwrap().id, 1, "a freed ID is reused");
        assert_eq!(rings_of(1).rx, 0);
        assert_eq!(rings_of(MAX_INSTANCES).alloc, FIRST_EDGE_RING - 1);
    }

    #[test]
    fn limits_are_at_least_open_netvms() {
        let mut r = Registry::new(vec![0]);
        for _ in 0..MAX_INSTANCES_PER_SERVICE {
            r.register(&req(5)).unwrap();
        }
        assert_eq!(
            r.register(&req(5)).unwrap_err(),
            RefuseReason::TooManyInstances {
                service: 5,
                max: MAX_INSTANCES_PER_SERVICE as u16
            }
        );
        for s in 1..=3 {
            for _ in 0..MAX_INSTANCES_PER_SERVICE {
                r.register(&req(5 + s)).unwrap();
            }
        }
        assert_eq!(r.iter().count(), usize::from(MAX_INSTANCES));
        assert_eq!(r.register(&req(20)).unwrap_err(), RefuseReason::NoFreeIds);
        assert!(matches!(
            r.register(&req(MAX_SERVICES)).unwrap_err(),
            RefuseReason::ServiceOutOfRange { .. }
        ));
        assert!(matches!(
            r.register(&req(0)).unwrap_err(),
            RefuseReason::ServiceOutOfRange { .. }
        ));
    }

    #[test]
    fn cores_dedicated_shared_busy_and_out_of_range() {
        let mut r = Registry::new(vec![0, 1]);
        let mut d = req(1);
        d.flags = RegisterFlags::NONE;
        let a = r.register(&d).unwrap();
        assert_eq!((a.core, a.dedicated), (Some(0), true));
        let b = r.register(&d).unwrap();
        assert_eq!(b.core, Some(1));
        assert_eq!(r.register(&d).unwrap_err(), RefuseReason::NoFreeCore);
        let mut manual = d.clone();
        manual.core = Some(1);
        r.remove(2);
        let m = r.register(&manual).unwrap();
        assert_eq!(m.core, Some(1));
        assert_eq!(r.register(&manual).unwrap_err(), RefuseReason::CoreBusy(1));
        manual.core = Some(9);
        assert_eq!(
            r.register(&manual).unwrap_err(),
            RefuseReason::CoreOutOfRange { core: 9, cores: 2 }
        );
        // A shared NF cannot sit on a dedicated core, and gets no core when all are taken.
        let mut s = req(1);
        s.core = Some(0);
        assert_eq!(r.register(&s).unwrap_err(), RefuseReason::CoreBusy(0));
        s.core = None;
        assert_eq!(r.register(&s).unwrap().core, None);
        let mut old = req(1);
        old.abi_version = ABI_VERSION + 1;
        assert!(matches!(
            r.register(&old).unwrap_err(),
            RefuseReason::AbiMismatch { .. }
        ));
    }

    #[test]
    fn service_table_balances_and_forgets() {
        let mut r = Registry::new(vec![0]);
        for _ in 0..3 {
            r.register(&req(4)).unwrap();
        }
        assert_eq!(r.instances_of(4), &[1, 2, 3]);
        let picks: std::collections::BTreeSet<u16> = (0..256).filter_map(|h| r.pick(4, h)).collect();
        assert_eq!(picks.len(), 3);
        r.remove(2);
        assert!((0..256).all(|h| r.pick(4, h) != Some(2)));
        assert_eq!(r.pick(9, 0), None);
    }

    #[test]
    fn a_leaving_instance_leaves_the_table_for_good_unless_it_is_the_only_one() {
        let mut r = Registry::new(vec![0]);
        for _ in 0..2 {
            r.register(&req(4)).unwrap();
        }
        assert!(r.set_leaving(2), "its flows go to instance 1");
        assert_eq!(r.instances_of(4), &[1]);
        assert!(r.get(2).unwrap().leaving);
        // A hang and its end do not bring it back, nor does a second ask change more.
        assert!(!r.set_hung(2, true) && !r.set_hung(2, false));
        assert!(!r.set_leaving(2));
        assert_eq!(r.instances_of(4), &[1]);
        // The only instance stays: there is nowhere else for its flows to go.
        assert!(!r.set_leaving(1));
        assert_eq!(r.instances_of(4), &[1]);
        assert!(!r.set_leaving(9), "no such instance");
    }
}
