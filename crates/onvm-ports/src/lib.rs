//! Port backends of the onvm-rs manager.
//!
//! A port is where packets enter and leave the platform. The manager polls each port's
//! [`Port::rx_burst`] for packets, which land in buffers of the shared [`Pool`], and
//! hands packets leaving the platform to [`Port::tx_burst`], which gives the buffers
//! back. The first four backends need no privileges, so the whole platform can run and
//! be tested anywhere; the kernel-backed ones reach real interfaces:
//!
//! | Spec | Backend |
//! |---|---|
//! | `gen:64B,1000flows,rate=5M` | [`GenPort`]: built-in UDP traffic generator |
//! | `pcap:FILE[,loop][,timing=file]` | [`PcapInPort`]: replay a capture |
//! | `pcapout:FILE[,count=N]` | [`PcapOutPort`]: write what is sent to a capture |
//! | `null[:64B]` | [`NullPort`]: drops what is sent; receives nothing, or frames of the size given, as fast as polled (DPDK's `net_null`) |
//! | `afpacket:IFACE[,opts]` | [`AfPacketPort`]: any interface, through packet sockets (CAP_NET_RAW) |
//! | `afxdp:IFACE[,opts]` | [`AfXdpPort`]: AF_XDP sockets whose UMEM is the packet region (root) |
//! | `tap:NAME[,opts]` | [`TapPort`]: a TAP interface the port creates (CAP_NET_ADMIN) |
//! | `dpdk:DEVARGS` | `DpdkPort` (cargo feature `dpdk`): a DPDK ethdev, mbufs over the packet region |
//!
//! Interface options (`queues=N`, `promisc=on|off`, `mtu=N`, `mac=..`, AF_XDP's
//! `mode=auto|copy|zc`) are parsed in [`onvm_proto::port::IfaceSpec`].
//!
//! Unsafe code is confined to the kernel-backed modules (socket options, the mapped
//! receive ring, interface ioctls), each block with the reason it is sound.
//!
//! Every port is single-threaded (`Send`, not `Sync`): the manager polls it from one
//! thread, like a DPDK queue.
#![deny(unsafe_op_in_unsafe_fn)]

mod afpacket;
mod afxdp;
#[cfg(feature = "dpdk")]
mod dpdk;
mod generator;
mod netif;
mod null;
mod pcap;
mod tap;
#[cfg(test)]
mod testlink;

use std::path::PathBuf;
use std::sync::Arc;

use onvm_proto::port::{GenSpec, PortSpec};
use onvm_shm::{Buf, Pool, Region};
use thiserror::Error;

pub use afpacket::AfPacketPort;
pub use afxdp::{AfXdpPort, XDP_HEADROOM};
#[cfg(feature = "dpdk")]
pub use dpdk::DpdkPort;
pub use generator::GenPort;
pub use null::NullPort;
pub use pcap::{PcapInPort, PcapOutPort};
pub use tap::TapPort;

/// Per-port counters (monotonic).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received (handed to the caller).
    pub rx: u64,
    /// Packets transmitted.
    pub tx: u64,
    /// Bytes of the received packets.
    pub rx_bytes: u64,
    /// Bytes of the transmitted packets.
    pub tx_bytes: u64,
    /// Packets that arrived but found no free buffer.
    pub rx_drop: u64,
    /// Packets that could not be transmitted.
    pub tx_drop: u64,
    /// Anything else that went wrong (a packet too big for a buffer, a write error).
    pub errors: u64,
}

/// Counters of two parts of one port (its queues) added up.
impl std::ops::AddAssign for PortStats {
    fn add_assign(&mut self, o: PortStats) {
        self.rx += o.rx;
        self.tx += o.tx;
        self.rx_bytes += o.rx_bytes;
        self.tx_bytes += o.tx_bytes;
        self.rx_drop += o.rx_drop;
        self.tx_drop += o.tx_drop;
        self.errors += o.errors;
    }
}

impl PortStats {
    /// These counters plus drops and errors counted elsewhere (by the kernel or a NIC).
    pub fn plus(self, rx_drop: u64, errors: u64) -> PortStats {
        PortStats {
            rx_drop: self.rx_drop + rx_drop,
            errors: self.errors + errors,
            ..self
        }
    }
}

/// What an NF needs to poll a port's queue itself ([`Port::nf_queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NfQueue {
    /// Bytes of each frame a receive gives (FCS excluded); `None`: it receives nothing,
    /// and sending to it frees what is sent (a sink).
    pub frame_len: Option<u16>,
}

/// One port backend, polled by the manager.
pub trait Port: Send {
    /// Short description, e.g. "gen:64B,4flows" or "pcap:in.pcap".
    fn name(&self) -> &str;
    /// Receive up to `max` packets into buffers taken from `pool`, push them on `out`, return how many.
    /// Sets meta in_port (the port number given at open) and timestamp (ns, monotonic clock) on each.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize;
    /// Transmit every buffer in `bufs` (drain it): sent ones and failed ones go back to `pool.free`. Returns sent.
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize;
    /// Queues beyond this one, for switch threads of their own: up to `n` of them
    /// (queues 1..=n; this port object keeps queue 0), each a port that receives what
    /// its queue gets (if the port receives at all) and transmits on its queue, and
    /// counts its own [`PortStats`], which the manager adds to this port's. Empty
    /// where the backend cannot split: the main switch thread alone then serves it.
    /// Only before the first poll.
    fn queues(&mut self, _n: usize) -> Vec<Box<dyn Port>> {
        Vec::new()
    }
    /// A queue of this port an NF process can poll itself (`onvm mgr --nf-queues`):
    /// `Some` only where the port is pure software, needing no device, socket or
    /// thread of the manager's (`null` ports).
    fn nf_queue(&self) -> Option<NfQueue> {
        None
    }
    /// Counters since open.
    fn stats(&self) -> PortStats;
    /// True when the port will never receive again (pcap file read once, generator count reached).
    fn rx_done(&self) -> bool {
        false
    }
    /// Flush buffered output (pcap writer).
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    /// One line saying what the port is and how it runs (AF_XDP: copy or zero-copy).
    fn describe(&self) -> String {
        self.name().to_string()
    }
    /// Close the port and give back every buffer it keeps for the kernel (AF_XDP's fill
    /// and TX rings). The manager calls it once, at the end, before its pool audit.
    fn release(&mut self, _pool: &mut Pool) {}
    /// Move the port's bad buffers named since the last call to `out` (see
    /// [`BadBuffers`]); the manager logs them, throttled, off the fast path.
    fn take_bad_buffers(&mut self, _out: &mut Vec<String>) {}
}

/// The buffers a port found bad, named: a buffer whose metadata line (written by the
/// NFs, in shared memory) gives a length or offset outside the buffer, or a buffer of
/// another region. Each is counted in [`PortStats::errors`] at once; the first
/// [`BadBuffers::NAMED`] since the manager last took them are kept with the buffer's
/// index and what was wrong, the rest only counted, so a scribbler costs no more than
/// a counter. The NF that sent the buffer is named by the manager, which read the same
/// metadata when it routed the buffer (its complaint names the same index); by the time
/// a port has it, the owner table says only that the manager holds it.
///
/// This is the one place ports count a bad buffer: their receive paths (after
/// `fill`), `swallow` and their transmit paths use it.
#[derive(Debug, Default)]
pub struct BadBuffers {
    named: Vec<String>,
}

impl BadBuffers {
    /// Bad buffers named between two [`Port::take_bad_buffers`] (the stats interval).
    pub const NAMED: usize = 16;

    /// Count buffer `index`, found bad with `e` while `doing` ("receiving into",
    /// "sending"), in `stats.errors`, and name it if fewer than [`BadBuffers::NAMED`]
    /// wait to be taken.
    #[cold]
    pub fn count(&mut self, stats: &mut PortStats, doing: &str, index: u32, e: &onvm_shm::BufError) {
        stats.errors += 1;
        if self.named.len() < Self::NAMED {
            self.named.push(format!("{doing} buffer {index}: {e}"));
        }
    }

    /// Move what was named to `out`.
    pub fn take(&mut self, out: &mut Vec<String>) {
        out.append(&mut self.named);
    }
}

/// A port that cannot be opened; the message names the spec or the file.
#[derive(Debug, Error)]
pub enum PortError {
    /// The backend exists as a spec but is not compiled into this build.
    #[error("port {spec}: this build has no DPDK support (build with `--features dpdk`, which needs libdpdk-dev)")]
    Unsupported { spec: String },
    /// A file could not be opened, read or created.
    #[error("port {spec}: cannot {what} {path:?}: {source}")]
    Io {
        spec: String,
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that should be a classic pcap capture is not one, or is damaged.
    #[error("port {spec}: {path:?} is not a usable pcap file: {reason}")]
    BadPcap {
        spec: String,
        path: PathBuf,
        reason: String,
    },
    /// The spec asks for something the packet region cannot hold (a generated frame
    /// longer than a buffer's data room): refused at open, not a port that never sends.
    #[error("port {spec}: {reason}")]
    DoesNotFit { spec: String, reason: String },
    /// The kernel refused to set up the port: `what` says what failed or why (a missing
    /// interface, a missing privilege), `source` is the OS error.
    #[error("port {spec}: {what}: {source}")]
    Os {
        spec: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Headroom the region's buffers need for these ports, at least `configured`: the
/// kernel writes AF_XDP frames [`XDP_HEADROOM`] bytes into a buffer's area, and with
/// that much headroom a received frame may still use the whole data room.
pub fn headroom_for(ports: &[PortSpec], configured: u32) -> u32 {
    if ports.iter().any(|p| matches!(p, PortSpec::AfXdp(_))) {
        configured.max(XDP_HEADROOM)
    } else {
        configured
    }
}

/// Open the backend `spec` names as port number `port_no` (stamped as `in_port` on every
/// received packet), on packet region `region` (AF_XDP registers it with the kernel).
pub fn open(spec: &PortSpec, port_no: u16, region: &Arc<Region>) -> Result<Box<dyn Port>, PortError> {
    Ok(match spec {
        PortSpec::Gen(g) => {
            fits(spec, g.frame_size, region)?;
            Box::new(GenPort::new(g, port_no, g.count))
        }
        PortSpec::PcapIn(p) => Box::new(PcapInPort::open(p, port_no)?),
        PortSpec::PcapOut(spec) => Box::new(PcapOutPort::create(&spec.path)?.with_count(spec.count)),
        PortSpec::Null(None) => Box::new(NullPort::new()),
        PortSpec::Null(Some(size)) => {
            fits(spec, *size, region)?;
            Box::new(NullPort::receiving(port_no, *size))
        }
        PortSpec::AfPacket(iface) => Box::new(AfPacketPort::open(iface, port_no)?),
        PortSpec::Tap(dev) => Box::new(TapPort::open(dev, port_no)?),
        PortSpec::AfXdp(iface) => Box::new(AfXdpPort::open(iface, port_no, region)?),
        #[cfg(feature = "dpdk")]
        PortSpec::Dpdk(d) => Box::new(DpdkPort::open(d, port_no, region)?),
        #[cfg(not(feature = "dpdk"))]
        PortSpec::Dpdk(_) => return Err(PortError::Unsupported { spec: spec.to_string() }),
    })
}

/// Refuse at open a port that would receive `frame_size`-byte frames (FCS included;
/// the frame without it is stored) into buffers too small for them.
fn fits(spec: &PortSpec, frame_size: u16, region: &Region) -> Result<(), PortError> {
    let room = region.layout().data_room;
    let bytes = u32::from(frame_size).saturating_sub(4);
    if bytes > room {
        return Err(PortError::DoesNotFit {
            spec: spec.to_string(),
            reason: format!(
                "{frame_size}-byte frames ({bytes} bytes without the FCS) do not fit the {room}-byte data room \
                 of a buffer: give at most {}B, or a larger --data-room",
                room.saturating_add(4).min(u32::from(GenSpec::MAX_FRAME))
            ),
        });
    }
    Ok(())
}

/// The clock of packet timestamps, re-exported: ports and NFs stamp with one clock.
pub use onvm_shm::now_ns;

/// Copy `bytes` into `buf` and stamp it as received now on `port_no`. Fails (leaving the
/// buffer to the caller, who frees it and counts it with [`BadBuffers::count`]) when the
/// packet does not fit the buffer's data room (ports check the length first) or `buf`
/// is of another region.
///
/// The buffer's metadata line is rewritten, never read ([`onvm_shm::Holder::packet_reset`]),
/// so a stray write into it by an NF cannot fail this.
fn fill(pool: &Pool, buf: &mut Buf, bytes: &[u8], port_no: u16, now: u64) -> Result<(), onvm_shm::BufError> {
    let mut pkt = pool.holder().received(buf, bytes.len(), port_no, now)?;
    pkt.data_mut().copy_from_slice(bytes);
    Ok(())
}

/// Transmit for ports that have nowhere to send: count everything as sent and free it.
/// Source ports (generator, pcap in) use it too, so a chain that sends packets back out
/// of the port they came in on works as a loopback benchmark.
fn swallow(pool: &mut Pool, bufs: &mut Vec<Buf>, stats: &mut PortStats, bad: &mut BadBuffers) -> usize {
    let n = bufs.len();
    for b in bufs.iter_mut() {
        // A buffer with corrupt metadata still goes back (and counts as sent: nothing
        // was to be done with it); it adds no bytes, and is counted and named.
        let index = b.index();
        match pool.holder().packet(b) {
            Ok(p) => stats.tx_bytes += p.len() as u64,
            Err(e) => bad.count(stats, "sending", index, &e),
        }
    }
    pool.free_burst(bufs);
    stats.tx += n as u64;
    n
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::sync::Arc;

    use onvm_shm::{BackingChoice, Buf, Pool, Region, RegionConfig};

    /// A small region (normal pages) and its pool.
    pub fn pool(buffers: u32, data_room: u32) -> (Arc<Region>, Pool) {
        let cfg = RegionConfig {
            buffers,
            data_room,
            rings: 1,
            ring_capacity: 64,
            backing: BackingChoice::Normal,
            ..Default::default()
        };
        let r = Region::create(&cfg).unwrap();
        let p = Pool::new(&r).unwrap();
        (r, p)
    }

    /// Copy out the packets' bytes and free the buffers.
    pub fn take(pool: &mut Pool, bufs: &mut Vec<Buf>) -> Vec<Vec<u8>> {
        bufs.drain(..)
            .map(|mut b| {
                let v = pool.holder().packet(&mut b).unwrap().data().to_vec();
                pool.free(b);
                v
            })
            .collect()
    }

    /// Write `len` and `off` into `buf`'s metadata line as another process can: through
    /// the region's file, past every check of the API.
    pub fn scribble(r: &Region, buf: &Buf, len: u32, off: u32) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::File::from(r.fd().try_clone_to_owned().unwrap());
        let l = r.layout();
        // Bytes 4..12 of the 64-byte metadata line: length, data offset.
        let at = l.bufs_offset + u64::from(buf.index()) * u64::from(l.buf_stride) + 4;
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&len.to_le_bytes());
        bytes[4..].copy_from_slice(&off.to_le_bytes());
        file.write_at(&bytes, at).unwrap();
    }

    /// The bad buffers `port` named.
    pub fn bad_buffers(port: &mut dyn crate::Port) -> Vec<String> {
        let mut v = Vec::new();
        port.take_bad_buffers(&mut v);
        v
    }

    pub fn assert_whole(pool: &Pool) {
        let a = pool.audit(&[]);
        assert!(a.is_whole() && a.held == 0, "{a}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_dispatches_every_backend() {
        let (r, _pool) = testutil::pool(64, 2048);
        let p = open(&"gen:64B,4flows".parse().unwrap(), 0, &r).unwrap();
        assert_eq!(p.name(), "gen:64B,4flows");
        assert_eq!(open(&PortSpec::Null(None), 1, &r).unwrap().name(), "null");
        // Kernel backends are dispatched: opening fails on the missing interface (or the
        // missing privilege), naming the spec.
        // (The spec parser refuses "bad/name"; a hand-built spec reaches the port.)
        for spec in [
            PortSpec::AfPacket(onvm_proto::port::IfaceSpec::new("onvmnosuch1")),
            PortSpec::AfXdp(onvm_proto::port::IfaceSpec::new("onvmnosuch2")),
            PortSpec::Tap(onvm_proto::port::IfaceSpec::new("bad/name")),
        ] {
            let s = spec.to_string();
            let e = open(&spec, 0, &r).err().unwrap();
            assert!(matches!(e, PortError::Os { .. }), "{e}");
            assert!(e.to_string().starts_with(&format!("port {s}: ")), "{e}");
        }
    }

    #[test]
    fn a_generator_whose_frames_do_not_fit_a_buffer_is_refused() {
        let (r, _pool) = testutil::pool(8, 2048);
        assert!(open(&"null:2052B".parse().unwrap(), 0, &r).is_ok());
        let e = open(&"null:2053B".parse().unwrap(), 0, &r).err().unwrap();
        assert!(e.to_string().starts_with("port null:2053B: 2053-byte frames"), "{e}");
        // 2052 bytes with the FCS is 2048 without: it fits exactly.
        assert!(open(&"gen:2052B".parse().unwrap(), 0, &r).is_ok());
        let e = open(&"gen:2053B,4flows".parse().unwrap(), 0, &r).err().unwrap();
        assert!(matches!(e, PortError::DoesNotFit { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "port gen:2053B,4flows: 2053-byte frames (2049 bytes without the FCS) do not fit the \
             2048-byte data room of a buffer: give at most 2052B, or a larger --data-room"
        );
    }

    #[test]
    fn afxdp_ports_get_the_kernels_headroom() {
        let specs = |s: &[&str]| s.iter().map(|s| s.parse().unwrap()).collect::<Vec<PortSpec>>();
        assert_eq!(headroom_for(&specs(&["gen:64B,4flows", "null"]), 128), 128);
        assert_eq!(headroom_for(&specs(&["null", "afxdp:veth0"]), 128), XDP_HEADROOM);
        assert_eq!(headroom_for(&specs(&["afxdp:veth0"]), 512), 512);
    }

    #[test]
    fn a_buffer_with_scribbled_metadata_is_counted_and_named() {
        let (r, mut pool) = testutil::pool(16, 256);
        let dir = tempfile::tempdir().unwrap();
        let out_spec: PortSpec = format!("pcapout:{}", dir.path().join("o.pcap").display())
            .parse()
            .unwrap();
        for spec in [PortSpec::Null(None), "gen:64B,4flows".parse().unwrap(), out_spec] {
            let mut port = open(&spec, 0, &r).unwrap();
            let mut bufs = Vec::new();
            pool.alloc_burst(3, &mut bufs);
            for b in &mut bufs {
                pool.holder().packet_reset(b).unwrap().copy_from(&[1; 60]).unwrap();
            }
            // What a stray write by an NF does: a length past the buffer's end.
            let idx = bufs[1].index();
            testutil::scribble(&r, &bufs[1], 4000, 128);
            port.tx_burst(&mut pool, &mut bufs);
            assert_eq!(port.stats().errors, 1, "{spec}");
            let named = testutil::bad_buffers(&mut *port);
            assert_eq!(named.len(), 1, "{spec}: {named:?}");
            assert!(
                named[0].starts_with(&format!("sending buffer {idx}: buffer {idx} has corrupt metadata")),
                "{spec}: {named:?}"
            );
            assert!(testutil::bad_buffers(&mut *port).is_empty(), "taken once");
            testutil::assert_whole(&pool);
        }
    }

    #[test]
    fn a_flood_of_bad_buffers_is_counted_but_named_only_so_often() {
        let (r, mut pool) = testutil::pool(64, 256);
        let mut port = NullPort::new();
        let mut bufs = Vec::new();
        pool.alloc_burst(40, &mut bufs);
        for b in &bufs {
            testutil::scribble(&r, b, u32::MAX, u32::MAX);
        }
        port.tx_burst(&mut pool, &mut bufs);
        assert_eq!(port.stats().errors, 40);
        assert_eq!(testutil::bad_buffers(&mut port).len(), BadBuffers::NAMED);
        testutil::assert_whole(&pool);
    }
}
