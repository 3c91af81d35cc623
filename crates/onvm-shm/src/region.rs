//! The shared region: one memfd holding the header, the rings and every packet buffer.
//!
//! Why a memfd: the file descriptor *is* the capability. The manager passes it to an NF
//! over its control socket (SCM_RIGHTS); nothing needs a hugetlbfs mount, a path or a
//! fixed virtual address, so NFs in containers need only the socket's folder. The file
//! is sealed against shrinking and growing, so no NF can truncate it under the others
//! (which would turn their next access into SIGBUS); [`Region::open`] refuses an
//! unsealed one. Everything inside is addressed by offset, so each process maps it
//! wherever the kernel likes.
//!
//! Each mapping gets a process-wide unique [`Region::id`], which its holders stamp on the
//! [`Buf`] tokens they mint and check on every `Buf` they are given, so a buffer of one
//! region cannot be taken for the buffer with the same index in another.

use crate::buffer::{Buf, BufIdx, META_SIZE, Owner, OwnerId, PacketMut, PktMeta};
use crate::error::{BufError, RingError, ShmError};
use crate::layout::{BackingChoice, Header, Layout, RegionConfig};
use crate::ring::{Consumer, Producer, RingCtl, RingRef};
use memmap2::{Advice, MmapOptions, MmapRaw};
use rustix::fs::{MemfdFlags, SealFlags};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use zerocopy::{FromBytes, IntoBytes};

/// Which pages back a region, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    Hugetlb { page_size: u64 },
    Normal { why: String },
}

impl Backing {
    /// Size of the pages backing the region: the unit the kernel maps and places them in.
    pub fn page_size(&self) -> u64 {
        match self {
            Backing::Hugetlb { page_size } => *page_size,
            Backing::Normal { .. } => rustix::param::page_size() as u64,
        }
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Hugetlb { page_size } => write!(f, "hugepages ({} KiB)", page_size / 1024),
            Backing::Normal { why } => write!(f, "normal pages ({why})"),
        }
    }
}

/// Free hugepages and their size, from /proc/meminfo.
fn free_hugepages() -> Option<(u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("HugePages_Free:")?, field("Hugepagesize:")? * 1024))
}

/// Where the buffer slots are in this process's mapping. A plain copyable value, so hot
/// loops keep it in registers: the compiler must otherwise reload the layout through
/// `Region`/`Holder` (which contain cells) after every atomic store to a metadata line.
/// Only held inside a `Region` or a `Holder`, both of which keep the mapping alive.
///
/// Every `BufIdx` passed to its accessors must have been checked against *this* region:
/// made by [`Slots::idx`] from these slots, taken from a [`Buf`] whose region tag equals
/// `region`, or bounds-checked again ([`Region::meta`], [`Region::owner`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots {
    /// Address of slot 0.
    base: NonNull<u8>,
    stride: usize,
    count: u32,
    /// Address of the owner table (entry 0 unused).
    owners: NonNull<AtomicU32>,
    /// The region's id, stamped on every `Buf` minted from these slots.
    region: u32,
}

impl Slots {
    #[inline]
    pub(crate) fn idx(&self, raw: u32) -> Result<BufIdx, BufError> {
        if raw == 0 || raw > self.count {
            return Err(BufError::OutOfRange {
                index: raw,
                max: self.count,
            });
        }
        Ok(BufIdx(raw))
    }

    /// Whether `buf` was minted for this region (so its index is one of ours).
    #[inline(always)]
    fn minted(&self, buf: &Buf) -> bool {
        buf.region == self.region
    }

    #[inline]
    fn ptr(&self, idx: BufIdx) -> *mut u8 {
        // SAFETY: `idx` was checked against this region (see the struct doc: made by
        // `idx` here, from a Buf whose tag is ours, or re-checked), so 1 <= idx <= count
        // and the slot lies inside the validated layout, inside the mapping.
        unsafe { self.base.as_ptr().add(idx.0 as usize * self.stride) }
    }

    /// The owner entry of a buffer.
    #[inline]
    pub(crate) fn owner(&self, idx: BufIdx) -> &AtomicU32 {
        // SAFETY: the table has count + 1 entries (the layout reserves them) and
        // idx <= count (checked against this region, see the struct doc); it is 64-aligned inside the mapping, and AtomicU32 is valid for
        // any bits and shared access. The mapping outlives `self` (see `meta`).
        unsafe { &*self.owners.as_ptr().add(idx.0 as usize) }
    }

    #[inline]
    pub(crate) fn meta(&self, idx: BufIdx) -> &PktMeta {
        // SAFETY: the slot is in bounds and 64-aligned (slot 0 is page-aligned and the
        // stride a multiple of 64); PktMeta is all atomics, valid for any bits and shared
        // access. `self` lives inside a Region or Holder that keeps the mapping alive for
        // as long as the returned borrow.
        unsafe { &*(self.ptr(idx) as *const PktMeta) }
    }
}

/// The next [`Region::id`]; 0 is never handed out.
static NEXT_REGION_ID: AtomicU32 = AtomicU32::new(1);

/// A mapped region, in the manager or an NF.
pub struct Region {
    slots: Slots,
    file: File,
    map: MmapRaw,
    layout: Layout,
    backing: Backing,
    /// Owner ids with a live [`Holder`] in this process (one holder per id).
    holders: Mutex<HashSet<u16>>,
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Region")
            .field("id", &self.slots.region)
            .field("layout", &self.layout)
            .field("backing", &self.backing)
            .finish()
    }
}

impl Region {
    /// Create, size, seal and map a new region, and write its header.
    pub fn create(cfg: &RegionConfig) -> Result<Arc<Region>, ShmError> {
        let layout = Layout::from_config(cfg)?;
        let (file, map, backing) = match cfg.backing {
            BackingChoice::Normal => Self::map_normal(&layout, "normal pages requested".into())?,
            BackingChoice::Hugetlb => Self::map_huge(&layout)?,
            BackingChoice::Auto => match free_hugepages() {
                Some((free, size)) if free * size >= layout.file_size(size) => match Self::map_huge(&layout) {
                    Ok(m) => m,
                    Err(e) => Self::map_normal(&layout, format!("hugepages failed: {e}"))?,
                },
                Some((free, size)) => Self::map_normal(
                    &layout,
                    format!("{free} free hugepages, {} needed", layout.file_size(size) / size),
                )?,
                None => Self::map_normal(&layout, "no hugepage information".into())?,
            },
        };
        let page = match backing {
            Backing::Hugetlb { page_size } => page_size,
            Backing::Normal { .. } => 4096,
        };
        let hdr = layout.header(page);
        let bytes = hdr.as_bytes();
        // SAFETY: the mapping is at least one page long (layout puts the rings at 4096),
        // we are its only user (just created), and `bytes` is a local value.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.as_mut_ptr(), bytes.len()) };
        Self::assemble(file, map, layout, backing)
    }

    /// The region around a mapping whose layout has been computed (create) or validated
    /// (open), with a fresh id.
    fn assemble(file: File, map: MmapRaw, layout: Layout, backing: Backing) -> Result<Arc<Region>, ShmError> {
        // Never reused: a Buf of a dropped region must not match a later one. 2^32 - 1
        // mappings at one per ~10 us of syscalls take half a day; refuse rather than wrap.
        let region = NEXT_REGION_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| ShmError::NoRegionId)?;
        // SAFETY: bufs_offset is inside the mapping (the layout fits it), so the sum is a
        // non-null pointer into it.
        let base = unsafe { NonNull::new_unchecked(map.as_mut_ptr().add(layout.bufs_offset as usize)) };
        // SAFETY: as above, owners_offset is inside the mapping.
        let owners = unsafe { NonNull::new_unchecked(map.as_mut_ptr().add(layout.owners_offset as usize)) }.cast();
        let slots = Slots {
            base,
            stride: layout.buf_stride as usize,
            count: layout.buffers,
            owners,
            region,
        };
        Ok(Arc::new(Region {
            slots,
            file,
            map,
            layout,
            backing,
            holders: Mutex::default(),
        }))
    }

    fn map_huge(layout: &Layout) -> Result<(File, MmapRaw, Backing), ShmError> {
        let (_, page_size) = free_hugepages().unwrap_or((0, 2 << 20));
        let fd = rustix::fs::memfd_create(
            "onvm-region",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING | MemfdFlags::HUGETLB,
        )
        .map_err(|e| ShmError::io("memfd_create(MFD_HUGETLB)")(e.into()))?;
        // Hugetlb mappings reserve their pages at mmap time, so a shortage is an error
        // here, not a SIGBUS later.
        let (file, map) = Self::size_seal_map(fd, layout.file_size(page_size))?;
        Ok((file, map, Backing::Hugetlb { page_size }))
    }

    fn map_normal(layout: &Layout, why: String) -> Result<(File, MmapRaw, Backing), ShmError> {
        let fd = rustix::fs::memfd_create("onvm-region", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| ShmError::io("memfd_create")(e.into()))?;
        let (file, map) = Self::size_seal_map(fd, layout.file_size(4096))?;
        // Best effort: transparent hugepages for shmem depend on the system's settings.
        let _ = map.advise(Advice::HugePage);
        Ok((file, map, Backing::Normal { why }))
    }

    fn size_seal_map(fd: OwnedFd, size: u64) -> Result<(File, MmapRaw), ShmError> {
        rustix::fs::ftruncate(&fd, size).map_err(|e| ShmError::io("ftruncate region")(e.into()))?;
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|e| ShmError::io("seal region")(e.into()))?;
        let file = File::from(fd);
        let map = MmapOptions::new()
            .len(size as usize)
            .populate()
            .map_raw(&file)
            .map_err(ShmError::io("mmap region"))?;
        Ok((file, map))
    }

    /// Map a region from its file descriptor (as received from the manager) and check
    /// that it is one, of this ABI, sealed, and as large as its header says.
    pub fn open(fd: OwnedFd) -> Result<Arc<Region>, ShmError> {
        let seals = rustix::fs::fcntl_get_seals(&fd).map_err(|e| ShmError::io("read region seals")(e.into()))?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(ShmError::BadHeader("region file is not sealed against resizing".into()));
        }
        let file_size = rustix::fs::fstat(&fd)
            .map_err(|e| ShmError::io("fstat region")(e.into()))?
            .st_size as u64;
        if file_size < std::mem::size_of::<Header>() as u64 {
            return Err(ShmError::SizeMismatch {
                file: file_size,
                header: std::mem::size_of::<Header>() as u64,
            });
        }
        let file = File::from(fd);
        let map = MmapOptions::new()
            .len(file_size as usize)
            .map_raw(&file)
            .map_err(ShmError::io("mmap region"))?;
        let mut raw = [0u8; std::mem::size_of::<Header>()];
        // SAFETY: the mapping is at least `raw.len()` bytes (checked above) and `raw` is a
        // local buffer; copying bytes is valid whatever they are.
        unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), raw.as_mut_ptr(), raw.len()) };
        let hdr = Header::read_from_bytes(&raw).expect("buffer has the header's size");
        let layout = Layout::validate(&hdr, file_size)?;
        let backing = if hdr.page_size > 4096 {
            Backing::Hugetlb {
                page_size: hdr.page_size,
            }
        } else {
            Backing::Normal {
                why: "as created by the manager".into(),
            }
        };
        Self::assemble(file, map, layout, backing)
    }

    /// The file descriptor to pass to other processes.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// This mapping's id, unique in this process and never reused (ids are not shared
    /// between processes, and two mappings of one memfd get two). Every [`Buf`] carries
    /// the id of its region ([`Buf::region_id`]).
    pub fn id(&self) -> u32 {
        self.slots.region
    }

    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// Number of packet buffers (valid indices are 1..=this).
    pub fn buffers(&self) -> u32 {
        self.layout.buffers
    }

    /// Bytes mapped.
    pub fn size(&self) -> usize {
        self.map.len()
    }

    /// Start of this process's mapping (page-aligned), for registering the region with
    /// the kernel as memory it may write packets into (AF_XDP's UMEM). Using the pointer
    /// is the caller's unsafe business; this call itself reads nothing.
    pub fn base_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Prefer NUMA node `node` for the pages holding buffers `bufs` (`mbind(2)` with
    /// `MPOL_PREFERRED`, moving pages already faulted in). Call it before anything pins
    /// the pages (an AF_XDP UMEM registration does), or they stay where they are.
    ///
    /// Page-granular: a page that also holds buffers of the neighbouring range follows
    /// whichever call covered it last. An error is what the kernel refused (no such node,
    /// no NUMA support, a sandbox that forbids the call); the region works either way,
    /// only slower when packets cross nodes, so callers report it and carry on.
    pub fn prefer_node(&self, bufs: std::ops::RangeInclusive<u32>, node: u16) -> std::io::Result<()> {
        let (first, last) = (*bufs.start(), *bufs.end());
        if first == 0 || first > last || last > self.buffers() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("buffers {first}..={last} are not in 1..={}", self.buffers()),
            ));
        }
        let page = self.backing.page_size();
        let (stride, base) = (u64::from(self.layout.buf_stride), self.layout.bufs_offset);
        let lo = (base + u64::from(first) * stride) / page * page;
        let hi = (base + (u64::from(last) + 1) * stride).div_ceil(page) * page;
        let hi = hi.min(self.map.len() as u64);
        crate::mempolicy::prefer_node(
            self.map.as_mut_ptr().wrapping_add(lo as usize),
            (hi - lo) as usize,
            node,
        )
    }

    /// Ring `i`, bounds-checked.
    pub fn ring(&self, i: u32) -> Result<RingRef<'_>, RingError> {
        if i >= self.layout.rings {
            return Err(RingError::NoSuchRing(i));
        }
        let off = self.layout.rings_offset + i as u64 * self.layout.ring_stride;
        // SAFETY: `i < rings`, so `off + ring_stride <= bufs_offset <= mapping length`
        // (validated layout); the offset is 128-aligned in a page-aligned mapping, so both
        // casts are aligned. RingCtl and the slots are all atomics, valid for every bit
        // pattern and safe to share between threads and processes. The mapping lives as
        // long as `self`, which the returned references borrow.
        let (ctl, slots) = unsafe {
            let p = self.map.as_mut_ptr().add(off as usize);
            let ctl = &*(p as *const RingCtl);
            let slots = std::slice::from_raw_parts(
                p.add(std::mem::size_of::<RingCtl>()) as *const AtomicU32,
                self.layout.ring_capacity as usize,
            );
            (ctl, slots)
        };
        RingRef::new(ctl, slots)
    }

    /// The producing end of ring `i`. The caller must be its only producer (the manager's
    /// ring assignment ensures this across processes).
    pub fn producer(&self, i: u32) -> Result<Producer<'_>, RingError> {
        Ok(Producer::new(self.ring(i)?))
    }

    /// The consuming end of ring `i`; same rule as [`Region::producer`].
    pub fn consumer(&self, i: u32) -> Result<Consumer<'_>, RingError> {
        Ok(Consumer::new(self.ring(i)?))
    }

    /// Check a raw index read from shared memory.
    #[inline]
    pub fn buf_idx(&self, raw: u32) -> Result<BufIdx, BufError> {
        self.slots.idx(raw)
    }

    /// Metadata line of a buffer. Readable by anyone; the fields are atomics.
    ///
    /// # Panics
    /// If `idx` is past this region's last buffer: it was checked by another region's
    /// [`Region::buf_idx`] (a bug in this process), and using it would read outside
    /// the mapping.
    #[inline]
    pub fn meta(&self, idx: BufIdx) -> &PktMeta {
        self.slots.meta(self.own_idx(idx))
    }

    /// A buffer's owner entry; `None` if it holds a pattern no writer produces.
    ///
    /// # Panics
    /// As [`Region::meta`], for an index of a larger region.
    pub fn owner(&self, idx: BufIdx) -> Option<Owner> {
        Owner::decode(self.slots.owner(self.own_idx(idx)).load(Ordering::Relaxed))
    }

    /// `idx`, checked against this region (a `BufIdx` does not say which region's
    /// `buf_idx` made it).
    #[inline]
    fn own_idx(&self, idx: BufIdx) -> BufIdx {
        assert!(
            idx.0 <= self.slots.count,
            "buffer index {} is not in region #{} (1..={}): it was checked against another region",
            idx.0,
            self.slots.region,
            self.slots.count
        );
        idx
    }

    /// Attach owner `id` in this process. Only one holder per id may exist in a process:
    /// that is what makes the holder's buffer tokens unique.
    pub fn holder(self: &Arc<Self>, id: OwnerId) -> Result<Holder, BufError> {
        if id > OwnerId::MAX {
            return Err(BufError::BadOwner(id.0));
        }
        if !self.holders.lock().unwrap_or_else(|e| e.into_inner()).insert(id.0) {
            return Err(BufError::HolderTaken(id.0));
        }
        let (transit_mask, transit_to_me) = Owner::transit_to_pattern(id);
        Ok(Holder {
            slots: self.slots,
            region: self.clone(),
            id,
            held: Owner::Held(id).encode(),
            transit_mask,
            transit_to_me,
            rejected: Cell::new(0),
            last_reject: RefCell::new(None),
            foreign: Cell::new(0),
            scratch: PktMeta::zeroed(),
        })
    }
}

/// Most indices moved per ring operation by the holder's burst helpers.
pub const BURST: usize = 32;

/// One owner (the manager, or an NF instance) attached to a region in this process.
///
/// It is the only way to turn a raw index from a ring into a [`Buf`] token: it checks the
/// index is in range and that the buffer's owner entry says it is in transit *to this
/// owner*, and marks it held. Not `Sync`: one thread acts for one owner.
///
/// Every method that takes a [`Buf`] first checks that it is of this holder's region;
/// one of another region is refused, as each method's doc says, and counted in
/// [`Holder::foreign`].
pub struct Holder {
    /// Copy of the region's slot view (the `region` field keeps the mapping alive).
    slots: Slots,
    region: Arc<Region>,
    id: OwnerId,
    /// Precomputed owner words, so the per-packet check is one load, one compare, one store.
    held: u32,
    transit_mask: u32,
    transit_to_me: u32,
    rejected: Cell<u64>,
    last_reject: RefCell<Option<BufError>>,
    /// Bufs of another region refused.
    foreign: Cell<u64>,
    /// The metadata line `meta` gives for a Buf of another region: ours, in private memory.
    scratch: PktMeta,
}

impl fmt::Debug for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Holder")
            .field("id", &self.id)
            .field("region", &self.slots.region)
            .field("rejected", &self.rejected.get())
            .field("foreign", &self.foreign.get())
            .finish()
    }
}

// SAFETY: `Slots` is a pointer into the mapping plus sizes; the mapping is owned by
// `MmapRaw` (Send + Sync) and is only accessed through atomics or `&mut Buf`-gated
// slices, so moving a Region between threads or sharing it is as safe as for MmapRaw.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}
// SAFETY: a Holder may move to another thread (it is still used by one thread at a time:
// it is not Sync, because of its Cells); its Slots point into the mapping its Arc keeps.
unsafe impl Send for Holder {}

impl Drop for Holder {
    fn drop(&mut self) {
        self.region
            .holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id.0);
    }
}

impl Holder {
    pub fn id(&self) -> OwnerId {
        self.id
    }

    pub fn region(&self) -> &Arc<Region> {
        &self.region
    }

    /// Take ownership of a buffer whose index came from a ring towards us: checks that it
    /// is in transit to us, from anyone. [`Holder::dequeue`], which knows the ring, also
    /// checks the sender.
    #[inline]
    pub fn claim(&self, raw: u32) -> Result<Buf, BufError> {
        self.claim_in(self.slots, self.transit_mask, self.transit_to_me, self.held, raw)
    }

    /// The claim, with everything it reads passed in, so a burst loop keeps it in registers.
    #[inline(always)]
    fn claim_in(&self, slots: Slots, mask: u32, want: u32, held: u32, raw: u32) -> Result<Buf, BufError> {
        let idx = slots.idx(raw)?;
        let owner = slots.owner(idx);
        let word = owner.load(Ordering::Relaxed);
        if word & mask != want {
            return Err(self.not_for_me(raw, word));
        }
        owner.store(held, Ordering::Relaxed);
        Ok(Buf {
            idx,
            region: slots.region,
        })
    }

    #[cold]
    fn not_for_me(&self, raw: u32, word: u32) -> BufError {
        BufError::NotForMe {
            index: raw,
            me: self.id.0,
            found: Owner::decode(word).map_or_else(|| format!("garbage {word:#x}"), |o| o.to_string()),
        }
    }

    /// Mark a buffer as on its way to `to` and give back the index to enqueue. The
    /// buffer is no longer ours: if the enqueue then fails, the caller must not drop the
    /// index (use [`Holder::enqueue`], which only sends what fits).
    ///
    /// A `Buf` of another region is refused: nothing is written, it is counted in
    /// [`Holder::foreign`], and the result is 0, which is never a buffer index (a
    /// receiver rejects it). The token is gone, so its buffer stays held in its own
    /// region (see [`crate::Pool::free`] for why this does not panic).
    #[inline]
    pub fn send(&self, buf: Buf, to: OwnerId) -> u32 {
        if !self.slots.minted(&buf) {
            self.refuse(&buf);
            return 0;
        }
        self.slots
            .owner(buf.idx)
            .store(Owner::Transit { to, from: self.id }.encode(), Ordering::Relaxed);
        buf.idx.0
    }

    /// Take a buffer the manager's pool just handed us (owner entry `Held(self)`), empty:
    /// its metadata line says length 0 at `headroom` (the layout's). Used by the pool,
    /// which holds the manager's holder; `idx` is from its free list of this region, so
    /// there is no region check.
    #[inline(always)]
    pub(crate) fn adopt_empty(&self, idx: BufIdx, headroom: u32) -> Buf {
        self.slots.owner(idx).store(self.held, Ordering::Relaxed);
        self.slots.meta(idx).set_len_off(0, headroom);
        Buf {
            idx,
            region: self.slots.region,
        }
    }

    /// Mark a buffer of this region free (it is going back to the pool's free list).
    #[inline(always)]
    pub(crate) fn release(&self, idx: BufIdx) {
        self.slots.owner(idx).store(Owner::Free.encode(), Ordering::Relaxed);
    }

    /// Whether `buf` belongs to this holder's region.
    #[inline(always)]
    pub(crate) fn minted(&self, buf: &Buf) -> bool {
        self.slots.minted(buf)
    }

    /// Count `n` free buffers of another region refused by [`crate::Pool::take`].
    #[cold]
    pub(crate) fn refuse_many(&self, n: u64) {
        self.foreign.set(self.foreign.get() + n);
    }

    /// Count a Buf of another region and say what was wrong.
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&self, buf: &Buf) -> BufError {
        self.foreign.set(self.foreign.get() + 1);
        BufError::ForeignRegion {
            index: buf.idx.0,
            buf_region: buf.region,
            region: self.slots.region,
        }
    }

    /// Metadata of a buffer we hold.
    ///
    /// For a `Buf` of another region, which this signature cannot refuse with an error,
    /// it is counted in [`Holder::foreign`] and the result is a stand-in line in this
    /// holder's private memory: neither region's metadata is read or written, and the
    /// `Buf` is refused again wherever it goes next (`packet`, `enqueue`, `Pool::free`).
    #[inline]
    pub fn meta(&self, buf: &Buf) -> &PktMeta {
        if !self.slots.minted(buf) {
            self.refuse(buf);
            return &self.scratch;
        }
        self.slots.meta(buf.idx)
    }

    /// The bytes of a buffer we hold. Fails if the shared offset/length were corrupted
    /// (then the buffer should be dropped), or with [`BufError::ForeignRegion`] (also
    /// counted in [`Holder::foreign`]) for a `Buf` of another region.
    #[inline]
    pub fn packet<'b>(&'b self, buf: &'b mut Buf) -> Result<PacketMut<'b>, BufError> {
        if !self.slots.minted(buf) {
            return Err(self.refuse(buf));
        }
        let l = &self.region.layout;
        let room = (l.headroom + l.data_room) as usize;
        // SAFETY: the Buf was minted for this region (checked just above), so its index
        // is in 1..=count of this mapping and the area (after the metadata line) is
        // inside its slot, inside the mapping. `&mut Buf` is exclusive and a Buf token
        // exists once per buffer in this process (only the single Holder of an id mints
        // them, after flipping the owner entry from Transit-to-us to Held), so no other
        // `&mut` to these bytes exists here. Other processes do not touch a buffer while
        // we hold it (owner protocol; NFs are trusted not to be malicious, see DESIGN).
        let area = unsafe { std::slice::from_raw_parts_mut(self.slots.ptr(buf.idx).add(META_SIZE), room) };
        PacketMut::new(buf.idx, self.slots.meta(buf.idx), area, l.headroom)
    }

    /// The bytes of a buffer we hold, emptied: length 0 at the default headroom, written
    /// over whatever its metadata line said without reading it. For ports and
    /// generators that fill a fresh buffer anyway: a peer's stray write into the line
    /// cannot make this fail (the only error is [`BufError::ForeignRegion`], counted in
    /// [`Holder::foreign`]), and the bounds of the view come from the layout, not from
    /// shared memory.
    #[inline]
    pub fn packet_reset<'b>(&'b self, buf: &'b mut Buf) -> Result<PacketMut<'b>, BufError> {
        if !self.slots.minted(buf) {
            return Err(self.refuse(buf));
        }
        let l = &self.region.layout;
        let room = (l.headroom + l.data_room) as usize;
        // SAFETY: as in `packet`: the Buf is of this region (checked above), so the area
        // is inside its slot, inside the mapping, and `&mut Buf` makes this the only
        // `&mut` view of those bytes in this process.
        let area = unsafe { std::slice::from_raw_parts_mut(self.slots.ptr(buf.idx).add(META_SIZE), room) };
        Ok(PacketMut::reset_new(self.slots.meta(buf.idx), area, l.headroom))
    }

    /// A frame of `len` bytes received on `port` at `now` (a [`crate::now_ns`] reading):
    /// the buffer emptied as by [`Holder::packet_reset`], its length set and its metadata
    /// stamped with the port and the time. The bytes are whatever the buffer held; the
    /// view is returned for a port that writes them. Fails, leaving the buffer to the
    /// caller, when `len` does not fit the data room or `buf` is of another region.
    #[inline]
    pub fn received<'b>(
        &'b self,
        buf: &'b mut Buf,
        len: usize,
        port: u16,
        now: u64,
    ) -> Result<PacketMut<'b>, BufError> {
        let mut pkt = self.packet_reset(buf)?;
        pkt.set_len(len)?;
        let m = pkt.meta();
        m.set_in_port(port);
        m.set_timestamp(now);
        Ok(pkt)
    }

    /// Send as many of `bufs` (from the front) to owner `to` through `prod` as fit;
    /// returns how many went. The rest stay in `bufs`, still ours.
    ///
    /// If any of `bufs` belongs to another region, nothing is sent and the error is
    /// [`RingError::ForeignBuf`] (counted in [`Holder::foreign`]); `bufs` is unchanged.
    /// On a ring error, the buffers sent before it are gone from `bufs` and the rest
    /// stay.
    pub fn enqueue(&self, prod: &mut Producer<'_>, to: OwnerId, bufs: &mut Vec<Buf>) -> Result<usize, RingError> {
        // One pass of xors, no early exit, so it vectorises; the burst is in L1 anyway.
        let tag = self.slots.region;
        if bufs.iter().fold(0, |acc, b| acc | (b.region ^ tag)) != 0 {
            return Err(self.refuse_burst(bufs));
        }
        let mut raw = [0u32; BURST];
        let mut sent = 0;
        while sent < bufs.len() {
            let want = (bufs.len() - sent).min(BURST);
            let room = match prod.room(want as u32) {
                Ok(room) => room,
                Err(e) => {
                    // Those already published are the consumer's now, not the caller's.
                    bufs.drain(..sent);
                    return Err(e);
                }
            };
            let k = (room as usize).min(want);
            if k == 0 {
                break;
            }
            let word = Owner::Transit { to, from: self.id }.encode();
            let slots = self.slots;
            for (r, b) in raw.iter_mut().zip(&bufs[sent..sent + k]) {
                slots.owner(b.idx).store(word, Ordering::Relaxed);
                *r = b.idx.0;
            }
            prod.write(&raw[..k]);
            sent += k;
        }
        bufs.drain(..sent);
        Ok(sent)
    }

    /// The error for a burst with a Buf of another region in it.
    #[cold]
    #[inline(never)]
    fn refuse_burst(&self, bufs: &[Buf]) -> RingError {
        let b = bufs.iter().find(|b| !self.slots.minted(b)).expect("the caller saw one");
        self.foreign.set(self.foreign.get() + 1);
        RingError::ForeignBuf {
            index: b.idx.0,
            buf_region: b.region,
            region: self.slots.region,
        }
    }

    /// Dequeue up to `max` (at most [`BURST`]) buffers sent to us, claiming each before
    /// the ring slots are released (so a crash reclaim never races us). Indices that fail
    /// the checks are skipped and counted in [`Holder::rejected`]. Returns how many were
    /// pushed to `out`.
    ///
    /// The check is on the sender as well as the receiver: a buffer's owner entry must be
    /// exactly `Transit { to: us, from: producer }`, where the producer is the one the
    /// manager recorded for this ring ([`crate::RingRef::set_ends`]), read once per
    /// burst. So an NF cannot hand us a buffer that is on its way to someone else, nor
    /// pass its own off as another's. (Ends a peer overwrote make us refuse everything
    /// on that ring, counted; the buffers still name us, so the manager's reclaim gets
    /// them back.)
    pub fn dequeue(&self, cons: &mut Consumer<'_>, max: usize, out: &mut Vec<Buf>) -> Result<usize, RingError> {
        let mut raw = [0u32; BURST];
        cons.prefetch_slots();
        let n = cons.peek_burst(&mut raw[..max.min(BURST)])?;
        let before = out.len();
        out.reserve(n);
        let (producer, _) = cons.ring().ends();
        let want = match OwnerId(producer) {
            from if from <= OwnerId::MAX => Owner::Transit { to: self.id, from }.encode(),
            // No owner id: no entry matches (a Transit word never has both top bits set).
            _ => u32::MAX,
        };
        let (slots, mask, held) = (self.slots, u32::MAX, self.held);
        // The owner entries were last written on the sender's core. Ask for their lines
        // (for writing) before claiming the first, so the transfers overlap instead of
        // costing one cross-core round trip each.
        for &r in &raw[..n] {
            if let Ok(idx) = slots.idx(r) {
                crate::sync::prefetch_for_write(std::ptr::from_ref(slots.owner(idx)).cast());
            }
        }
        for &r in &raw[..n] {
            let claimed = self.claim_in(slots, mask, want, held, r);
            match claimed {
                Ok(b) => out.push(b),
                Err(e) => {
                    self.rejected.set(self.rejected.get() + 1);
                    *self.last_reject.borrow_mut() = Some(e);
                }
            }
        }
        cons.commit(n);
        Ok(out.len() - before)
    }

    /// Indices from rings that failed the checks, since this holder was attached.
    pub fn rejected(&self) -> u64 {
        self.rejected.get()
    }

    /// The most recent rejection, for the error message.
    pub fn last_rejection(&self) -> Option<BufError> {
        self.last_reject.borrow().clone()
    }

    /// [`Buf`]s of another region this holder (or its [`crate::Pool`]) refused, since it
    /// was attached. Anything but 0 is a bug in this process: tokens never cross
    /// processes, so a peer cannot cause it.
    pub fn foreign(&self) -> u64 {
        self.foreign.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pool;
    use std::os::unix::fs::FileExt;

    pub(crate) fn small() -> RegionConfig {
        RegionConfig {
            buffers: 256,
            rings: 4,
            ring_capacity: 64,
            backing: BackingChoice::Normal,
            ..Default::default()
        }
    }

    #[test]
    fn a_second_mapping_from_the_fd_sees_the_same_packets() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut buf = pool.alloc().unwrap();
        {
            let mut p = pool.holder().packet(&mut buf).unwrap();
            p.copy_from(b"zero copy").unwrap();
            p.meta().set_flow_hash(0xdead_beef);
        }
        let idx = buf.index();
        let other = Region::open(r.fd().try_clone_to_owned().unwrap()).unwrap();
        assert_eq!(other.layout(), r.layout());
        let m = other.meta(other.buf_idx(idx).unwrap());
        assert_eq!(m.flow_hash(), 0xdead_beef);
        // Hand it to owner 7 in the other mapping and read the bytes there.
        let raw = pool.holder().send(buf, OwnerId(7));
        let h7 = other.holder(OwnerId(7)).unwrap();
        let mut b7 = h7.claim(raw).unwrap();
        assert_eq!(h7.packet(&mut b7).unwrap().data(), b"zero copy");
    }

    /// Auto picks hugepages whenever enough are free, and says why when it does not.
    /// The test script reserves hugepages and sets ONVM_EXPECT_HUGEPAGES, so there the
    /// hugepage path must be taken.
    #[test]
    fn auto_backing_uses_hugepages_when_enough_are_free() {
        let cfg = RegionConfig {
            backing: BackingChoice::Auto,
            ..small()
        };
        let r = Region::create(&cfg).unwrap();
        match r.backing() {
            Backing::Hugetlb { page_size } => {
                assert!(*page_size >= 2 << 20);
                let again = Region::open(r.fd().try_clone_to_owned().unwrap()).unwrap();
                assert_eq!(again.backing(), r.backing());
            }
            Backing::Normal { why } => {
                assert!(
                    std::env::var_os("ONVM_EXPECT_HUGEPAGES").is_none(),
                    "hugepages are reserved but: {why}"
                );
                // "X free hugepages, N needed" with X < N.
                let nums: Vec<u64> = why
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|w| w.parse().ok())
                    .collect();
                assert!(nums.len() == 2 && nums[0] < nums[1], "fell back without cause: {why}");
            }
        }
        let forced = Region::create(&small()).unwrap();
        assert!(matches!(forced.backing(), Backing::Normal { .. }));
    }

    #[test]
    fn hugetlb_on_demand_fails_clearly_or_works() {
        let cfg = RegionConfig {
            backing: BackingChoice::Hugetlb,
            ..small()
        };
        match Region::create(&cfg) {
            Ok(r) => assert!(matches!(r.backing(), Backing::Hugetlb { .. })),
            Err(e) => {
                assert!(std::env::var_os("ONVM_EXPECT_HUGEPAGES").is_none(), "{e}");
                assert!(
                    e.to_string().contains("mmap region") || e.to_string().contains("MFD_HUGETLB"),
                    "{e}"
                );
            }
        }
    }

    /// A sealed memfd with a hand-written header, for the open-time checks.
    fn fake(hdr: Header, size: u64, seal: bool) -> OwnedFd {
        let fd = rustix::fs::memfd_create("fake", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, size).unwrap();
        let f = File::from(fd);
        f.write_all_at(hdr.as_bytes(), 0).unwrap();
        if seal {
            rustix::fs::fcntl_add_seals(&f, SealFlags::SHRINK | SealFlags::GROW).unwrap();
        }
        OwnedFd::from(f)
    }

    #[test]
    fn open_rejects_foreign_or_mismatched_regions_with_clear_errors() {
        let l = Layout::from_config(&small()).unwrap();
        let good = l.header(4096);
        let size = l.file_size(4096);
        assert!(Region::open(fake(good, size, true)).is_ok());
        let err = |h: Header, size: u64, seal: bool| Region::open(fake(h, size, seal)).unwrap_err().to_string();
        assert!(err(Header { magic: 42, ..good }, size, true).contains("not an onvm region"));
        assert!(
            err(
                Header {
                    abi_version: 99,
                    ..good
                },
                size,
                true
            )
            .contains("ABI version 99")
        );
        assert!(err(good, size + 4096, true).contains("bytes but its header says"));
        assert!(
            err(
                Header {
                    rings_offset: 0,
                    ..good
                },
                size,
                true
            )
            .contains("rings_offset")
        );
        assert!(err(good, size, false).contains("not sealed"));
        let tiny = rustix::fs::memfd_create("tiny", MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::fcntl_add_seals(&tiny, SealFlags::SHRINK | SealFlags::GROW).unwrap();
        assert!(Region::open(tiny).is_err());
    }

    #[test]
    fn region_cannot_be_resized_by_a_peer() {
        let r = Region::create(&small()).unwrap();
        assert!(rustix::fs::ftruncate(r.fd(), 4096).is_err(), "shrink is sealed");
        assert!(rustix::fs::ftruncate(r.fd(), 1 << 30).is_err(), "grow is sealed");
    }

    #[test]
    fn one_holder_per_owner_id_per_process() {
        let r = Region::create(&small()).unwrap();
        let h = r.holder(OwnerId(3)).unwrap();
        assert_eq!(r.holder(OwnerId(3)).unwrap_err(), BufError::HolderTaken(3));
        assert_eq!(r.holder(OwnerId(0x8000)).unwrap_err(), BufError::BadOwner(0x8000));
        drop(h);
        assert!(r.holder(OwnerId(3)).is_ok());
    }

    #[test]
    fn claim_refuses_bad_indices() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let h = r.holder(OwnerId(1)).unwrap();
        assert_eq!(h.claim(0).unwrap_err(), BufError::OutOfRange { index: 0, max: 256 });
        assert_eq!(h.claim(257).unwrap_err(), BufError::OutOfRange { index: 257, max: 256 });
        assert!(
            h.claim(5).unwrap_err().to_string().contains("free"),
            "a free buffer is not ours"
        );
        let b = pool.alloc().unwrap();
        let raw = pool.holder().send(b, OwnerId(2));
        assert!(
            h.claim(raw).unwrap_err().to_string().contains("nf2"),
            "sent to someone else"
        );
        r.slots
            .owner(r.buf_idx(9).unwrap())
            .store(0xffff_ffff, std::sync::atomic::Ordering::Relaxed);
        assert!(h.claim(9).unwrap_err().to_string().contains("garbage"));
    }

    /// Two NFs in one process: nf3 cannot pass its own buffer off as the manager's, nor
    /// put a buffer the manager sent nf2 on its own edge to nf2.
    #[test]
    fn dequeue_checks_the_sender_as_well_as_the_receiver() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let (nf2, nf3) = (r.holder(OwnerId(2)).unwrap(), r.holder(OwnerId(3)).unwrap());
        r.ring(0).unwrap().set_ends(0, 2); // manager -> nf2
        r.ring(1).unwrap().set_ends(3, 2); // nf3 -> nf2
        let (mut rx, mut edge) = (r.producer(0).unwrap(), r.producer(1).unwrap());
        let mut bufs = Vec::new();
        pool.alloc_burst(2, &mut bufs);
        let to_nf3 = pool.holder().send(bufs.pop().unwrap(), OwnerId(3));
        let mine = nf3.claim(to_nf3).unwrap();
        // nf3's buffer, written into the manager's ring towards nf2.
        let forged = nf3.send(mine, OwnerId(2));
        rx.enqueue_burst(&[forged]).unwrap();
        // A buffer on its way from the manager to nf2, copied onto nf3's edge first.
        let stolen = pool.holder().send(bufs.pop().unwrap(), OwnerId(2));
        edge.enqueue_burst(&[stolen]).unwrap();
        rx.enqueue_burst(&[stolen]).unwrap();
        let mut got = Vec::new();
        nf2.dequeue(&mut r.consumer(1).unwrap(), 32, &mut got).unwrap();
        assert!(got.is_empty(), "not sent by nf3");
        assert!(nf2.last_rejection().unwrap().to_string().contains("manager -> nf2"));
        nf2.dequeue(&mut r.consumer(0).unwrap(), 32, &mut got).unwrap();
        assert_eq!(got.iter().map(Buf::index).collect::<Vec<_>>(), vec![stolen]);
        assert_eq!(nf2.rejected(), 2, "the copy on the edge and the forged one");
        assert!(nf2.last_rejection().unwrap().to_string().contains("nf3 -> nf2"));
    }

    #[test]
    fn packet_headroom_and_tailroom_operations() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut b = pool.alloc().unwrap();
        let h = pool.holder();
        let mut p = h.packet(&mut b).unwrap();
        assert_eq!((p.len(), p.headroom(), p.tailroom()), (0, 128, 2048));
        p.copy_from(&[1, 2, 3, 4]).unwrap();
        p.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        assert_eq!(p.data(), [8, 9, 1, 2, 3, 4]);
        assert_eq!(p.headroom(), 126);
        p.append(1).unwrap()[0] = 5;
        assert_eq!(p.data(), [8, 9, 1, 2, 3, 4, 5]);
        p.strip(3).unwrap();
        p.trim(1).unwrap();
        assert_eq!(p.data(), [2, 3, 4]);
        assert!(matches!(p.prepend(1000), Err(BufError::NoRoom { .. })));
        assert!(matches!(p.strip(4), Err(BufError::NoRoom { .. })));
        assert!(matches!(p.copy_from(&[0; 3000]), Err(BufError::NoRoom { .. })));
        p.reset();
        assert_eq!((p.len(), p.headroom()), (0, 128));
        // Bytes written in place (by a kernel port) are framed where they landed.
        p.set_bounds(256, 100).unwrap();
        assert_eq!((p.len(), p.headroom(), p.tailroom()), (100, 256, 2176 - 356));
        assert!(matches!(p.set_bounds(2000, 177), Err(BufError::NoRoom { .. })));
        assert!(matches!(p.set_bounds(usize::MAX, 2), Err(BufError::NoRoom { .. })));
        assert_eq!((p.len(), p.headroom()), (100, 256), "a refused frame changes nothing");
        p.reset();
        // Metadata written through the view is what a second mapping reads.
        p.set_len(60).unwrap();
        assert_eq!(r.meta(r.buf_idx(b.index()).unwrap()).raw_len_off(), (60, 128));
        // Every metadata field round-trips.
        let m = h.meta(&b);
        m.set_in_port(3);
        m.set_src_instance(4);
        m.set_action(5);
        m.set_chain_pos(6);
        m.set_nf_flags(7);
        m.set_dest(8);
        m.set_timestamp(9);
        m.set_user(10);
        assert_eq!((m.in_port(), m.src_instance(), m.action(), m.chain_pos()), (3, 4, 5, 6));
        assert_eq!((m.nf_flags(), m.dest(), m.timestamp(), m.user()), (7, 8, 9, 10));
    }

    #[test]
    fn corrupt_length_in_metadata_is_an_error_not_a_wild_slice() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut b = pool.alloc().unwrap();
        pool.holder().meta(&b).set_len_off(4000, 128);
        assert!(matches!(
            pool.holder().packet(&mut b),
            Err(BufError::BadMeta { len: 4000, .. })
        ));
    }

    #[test]
    fn packet_reset_ignores_what_a_peer_scribbled_on_the_line() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut b = pool.alloc().unwrap();
        pool.holder().meta(&b).set_len_off(u32::MAX, u32::MAX);
        assert!(pool.holder().packet(&mut b).is_err());
        let mut p = pool.holder().packet_reset(&mut b).unwrap();
        assert_eq!((p.len(), p.headroom()), (0, 128));
        p.copy_from(b"fresh").unwrap();
        assert_eq!(pool.holder().packet(&mut b).unwrap().data(), b"fresh");
        pool.free(b);
    }

    #[test]
    fn received_frames_are_stamped_whatever_the_line_held() {
        let r = Region::create(&small()).unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut b = pool.alloc().unwrap();
        pool.holder().meta(&b).set_len_off(u32::MAX, u32::MAX);
        let p = pool.holder().received(&mut b, 60, 7, 1234).unwrap();
        assert_eq!((p.len(), p.headroom()), (60, 128));
        let m = pool.holder().meta(&b);
        assert_eq!((m.in_port(), m.timestamp()), (7, 1234));
        // A frame longer than the data room is refused; the buffer stays the caller's.
        assert!(matches!(
            pool.holder().received(&mut b, 2049, 7, 0),
            Err(BufError::NoRoom { .. })
        ));
        pool.free(b);
    }

    #[test]
    fn jumbo_data_room_is_configurable() {
        let r = Region::create(&RegionConfig {
            data_room: 9216,
            ..small()
        })
        .unwrap();
        let mut pool = Pool::new(&r).unwrap();
        let mut b = pool.alloc().unwrap();
        let mut p = pool.holder().packet(&mut b).unwrap();
        p.copy_from(&[7u8; 9000]).unwrap();
        assert_eq!(p.len(), 9000);
    }
}
