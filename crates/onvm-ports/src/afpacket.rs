//! The AF_PACKET port (`afpacket:IFACE[,queues=N][,...]`): any Linux interface, through
//! raw packet sockets.
//!
//! It works on every interface and kernel, which makes it the fallback when AF_XDP is not
//! available. Receiving reads a TPACKET_V3 ring ([`ring`]) per socket and copies each
//! frame into a pool buffer (the ring is the kernel's memory, not the shared region; zero
//! copy is AF_XDP's job). With `queues=N` the port opens N sockets joined in one fanout
//! group that spreads flows over them by hash, as RSS spreads them over NIC queues.
//! Sending is batched: one `sendmmsg` per burst. The port holds the interface in
//! promiscuous mode while it is open (unless `promisc=off`), and ignores the packets it
//! (or anyone else) sends out of the interface.
//!
//! The packets it hands on are the frames as they were on the wire, although the kernel
//! gives a packet socket something else ([`offload`] has the details):
//! - **VLAN tags** (802.1Q and 802.1ad) the kernel moved into the ring frame's header
//!   are put back after the MAC addresses, so a tagged frame is 4 bytes longer in its
//!   buffer than in the ring (a frame that no longer fits the data room is dropped and
//!   counted in `errors`). An inner tag of a QinQ frame was never taken out.
//! - **Partial checksums** (`TP_STATUS_CSUMNOTREADY`: the sender left checksumming to
//!   the hardware, as veth and a host's own traffic do by default) are completed: the
//!   TCP or UDP checksum is computed, so receivers beyond the platform accept the frame.
//! - **Super-frames** (a TCP frame longer than the interface's MTU: a sender's
//!   segmentation offload on veth, GRO on a NIC) are cut into segments whose IP
//!   packets fit the MTU (read at open), each a frame of its own in its own buffer.
//!
//! [`AfPacketPort::offloads`] counts each. Transmitting needs none of this: a packet
//! socket sends the bytes it is given, a tagged frame stays tagged on the wire, and the
//! checksums are what the NFs left (the kernel computes none for a packet socket).

pub(crate) mod offload;
mod ring;

use std::cell::Cell;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use onvm_proto::port::IfaceSpec;
use onvm_shm::{Buf, Pool};

use crate::netif::{self, setsockopt};
use crate::{BadBuffers, Port, PortError, PortStats, now_ns};
use offload::{TAG_LEN, TcpSplit, VlanTag, complete_checksum, write_tagged};
use ring::RxRing;

/// `TP_STATUS_GSO_TCP` (Linux 5.10): the frame is a TCP super-frame (not in libc yet).
const TP_STATUS_GSO_TCP: u32 = 1 << 8;
/// Length of an Ethernet header without tags.
const ETH_HLEN: usize = 14;

/// What an [`AfPacketPort`] undid of the kernel's offloads since open (see the module
/// doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// VLAN tags put back into received frames.
    pub tags_restored: u64,
    /// Partial TCP/UDP checksums completed (a super-frame's segments count one each).
    pub checksums_completed: u64,
    /// Frames flagged partial that carry no whole TCP or UDP segment (SCTP, a
    /// fragment): passed on as they came.
    pub checksums_left: u64,
    /// TCP super-frames cut into segments.
    pub super_frames: u64,
    /// Segments they were cut into.
    pub segments: u64,
}

/// One socket of the port and its receive ring.
#[derive(Debug)]
struct Queue {
    ring: RxRing,
    fd: OwnedFd,
    /// Packets received through this socket.
    rx: u64,
    /// Segments of the super-frame at the head of the ring already received: the frame
    /// stays in the ring until its last segment has a buffer.
    split_next: usize,
}

/// Receives from and sends to one interface (`afpacket:IFACE`).
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    port_no: u16,
    queues: Vec<Queue>,
    /// Queue the next `rx_burst` starts with, so no queue starves.
    next: usize,
    stats: PortStats,
    bad: BadBuffers,
    /// Frames the kernel dropped because a ring was full, summed: reading the kernel's
    /// counter resets it, and [`Port::stats`] takes `&self`.
    kernel_drops: Cell<u64>,
    /// The interface's MTU at open: the IP length super-frames are cut to.
    mtu: usize,
    offloads: OffloadStats,
}

/// A fanout group id no other port of this machine uses at the same time.
fn fanout_group(ifindex: u32, port_no: u16) -> u16 {
    (std::process::id() as u16) ^ (ifindex as u16).rotate_left(8) ^ port_no.wrapping_mul(0x9e37)
}

impl AfPacketPort {
    /// Open the port's packet sockets on `iface`, with their receive rings. Needs
    /// CAP_NET_RAW (and CAP_NET_ADMIN for the MTU and MAC options).
    pub fn open(iface: &IfaceSpec, port_no: u16) -> Result<AfPacketPort, PortError> {
        let name = format!("afpacket:{iface}");
        let err = netif::os_err(&name);
        // Check privileges before looking the interface up, so a user without them is
        // told that rather than about the interface.
        drop(netif::packet_socket(&name)?);
        let ifindex = netif::index(&name, &iface.name)?;
        netif::configure(&name, iface)?;
        let mut queues = Vec::new();
        for _ in 0..iface.queues {
            let fd = netif::packet_socket(&name)?;
            // Without this, every packet sent out of the interface comes back on RX.
            // Kernels before 4.20 lack it; `rx_burst` also skips outgoing frames.
            let _ = setsockopt(
                fd.as_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                &1 as &libc::c_int,
            );
            let ring = RxRing::new(fd.as_fd()).map_err(|e| err("cannot set up the TPACKET_V3 receive ring", e))?;
            if iface.promisc && queues.is_empty() {
                netif::hold_promisc(&name, fd.as_fd(), ifindex)?;
            }
            let addr = libc::sockaddr_ll {
                sll_family: libc::AF_PACKET as u16,
                sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
                sll_ifindex: ifindex as libc::c_int,
                sll_hatype: 0,
                sll_pkttype: 0,
                sll_halen: 0,
                sll_addr: [0; 8],
            };
            // SAFETY: `addr` is a live sockaddr_ll of the size passed; the kernel only reads it.
            let r = unsafe {
                libc::bind(
                    fd.as_raw_fd(),
                    (&addr as *const libc::sockaddr_ll).cast(),
                    size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if r != 0 {
                return Err(err("cannot bind to the interface", io::Error::last_os_error()));
            }
            if iface.queues > 1 {
                let arg = u32::from(fanout_group(ifindex, port_no)) | (libc::PACKET_FANOUT_HASH << 16);
                setsockopt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                    .map_err(|e| err("cannot join the fanout group", e))?;
            }
            queues.push(Queue {
                ring,
                fd,
                rx: 0,
                split_next: 0,
            });
        }
        let mut ifr = netif::ifreq(&iface.name);
        netif::ioctl_ifreq(queues[0].fd.as_fd(), libc::SIOCGIFMTU as libc::Ioctl, &mut ifr)
            .map_err(|e| err("cannot read the interface's MTU", e))?;
        // SAFETY: SIOCGIFMTU succeeded, so it filled the mtu member of the union.
        let mtu = unsafe { ifr.ifr_ifru.ifru_mtu }.max(0) as usize;
        Ok(AfPacketPort {
            name,
            port_no,
            queues,
            next: 0,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
            kernel_drops: Cell::new(0),
            mtu,
            offloads: OffloadStats::default(),
        })
    }

    /// What the port undid of the kernel's offloads so far.
    pub fn offloads(&self) -> OffloadStats {
        self.offloads
    }

    /// Packets each queue (socket of the fanout group) has received so far.
    pub fn queue_rx(&self) -> Vec<u64> {
        self.queues.iter().map(|q| q.rx).collect()
    }

    /// Read (and so reset) a socket's kernel counters; adds its drops to `kernel_drops`.
    fn collect_kernel_drops(&self, q: &Queue) {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are live and `len` is the size of `st`; the kernel writes
        // at most `len` bytes into `st`.
        let r = unsafe {
            libc::getsockopt(
                q.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if r == 0 {
            self.kernel_drops.set(self.kernel_drops.get() + u64::from(st.tp_drops));
        }
    }

    /// Receive from one queue.
    fn rx_queue(&mut self, q: usize, pool: &mut Pool, out: &mut Vec<Buf>, max: usize, now: u64) -> usize {
        let room = pool.region().layout().data_room as usize;
        let (port_no, mtu) = (self.port_no, self.mtu);
        let queue = &mut self.queues[q];
        let ring = &mut queue.ring;
        let split_next = &mut queue.split_next;
        let mut n = 0;
        'frames: while n < max {
            let Some(frame) = ring.peek() else { break };
            if frame.pkttype == libc::PACKET_OUTGOING {
                ring.advance();
                continue;
            }
            let tag = VlanTag::from_ring(frame.status, frame.vlan_tci, frame.vlan_tpid);
            let len = frame.data.len() + if tag.is_some() { TAG_LEN } else { 0 };
            // A super-frame: longer than the MTU allows (the flag alone would miss GRO's).
            let split = if frame.data.len() > mtu + ETH_HLEN || frame.status & TP_STATUS_GSO_TCP != 0 {
                TcpSplit::plan(frame.data, tag, mtu).filter(|s| s.len(0) <= room)
            } else {
                None
            };
            if frame.data.len() < frame.wire_len || (split.is_none() && len > room) || frame.data.len() < ETH_HLEN {
                self.stats.errors += 1;
                ring.advance();
                continue;
            }
            let partial = frame.status & libc::TP_STATUS_CSUMNOTREADY != 0;
            let Some(split) = split else {
                let Some(mut buf) = pool.alloc() else { break };
                let mut completed = None;
                let filled = fill_with(pool, &mut buf, len, port_no, now, |d| {
                    match tag {
                        Some(tag) => write_tagged(frame.data, tag, d),
                        None => {
                            d.copy_from_slice(frame.data);
                            true
                        }
                    };
                    if partial {
                        completed = Some(complete_checksum(d));
                    }
                });
                ring.advance();
                if let Err(e) = filled {
                    self.bad.count(&mut self.stats, "receiving into", buf.index(), &e);
                    pool.free(buf);
                    continue;
                }
                let o = &mut self.offloads;
                o.tags_restored += u64::from(tag.is_some());
                match completed {
                    Some(true) => o.checksums_completed += 1,
                    Some(false) => o.checksums_left += 1,
                    None => {}
                }
                out.push(buf);
                n += 1;
                self.stats.rx_bytes += len as u64;
                continue;
            };
            while *split_next < split.count() {
                if n == max {
                    break 'frames;
                }
                let Some(mut buf) = pool.alloc() else { break 'frames };
                let i = *split_next;
                *split_next += 1;
                let len = split.len(i);
                if let Err(e) = fill_with(pool, &mut buf, len, port_no, now, |d| split.write(frame.data, i, d)) {
                    self.bad.count(&mut self.stats, "receiving into", buf.index(), &e);
                    pool.free(buf);
                    continue;
                }
                let o = &mut self.offloads;
                o.tags_restored += u64::from(tag.is_some());
                o.checksums_completed += u64::from(partial);
                o.segments += 1;
                out.push(buf);
                n += 1;
                self.stats.rx_bytes += len as u64;
            }
            self.offloads.super_frames += 1;
            *split_next = 0;
            ring.advance();
        }
        queue.rx += n as u64;
        n
    }
}

/// Give `buf` the `len` bytes `write` writes (into the packet, at the default headroom)
/// and stamp it as received now on `port_no`; like [`crate::fill`], whose checks it
/// makes, without a copy in between.
fn fill_with(
    pool: &Pool,
    buf: &mut Buf,
    len: usize,
    port_no: u16,
    now: u64,
    write: impl FnOnce(&mut [u8]),
) -> Result<(), onvm_shm::BufError> {
    write(pool.holder().received(buf, len, port_no, now)?.data_mut());
    Ok(())
}

/// Most packets one `sendmmsg` carries.
const TX_BATCH: usize = 64;

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// Frames wait in the rings while the pool is empty (the kernel drops what no longer
    /// fits, counted in `rx_drop`); frames longer than a buffer are dropped and counted
    /// in `errors`. Never blocks.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        let now = now_ns();
        let nq = self.queues.len();
        let mut n = 0;
        for i in 0..nq {
            if n == max {
                break;
            }
            n += self.rx_queue((self.next + i) % nq, pool, out, max - n, now);
        }
        self.next = (self.next + 1) % nq;
        self.stats.rx += n as u64;
        n
    }

    /// One `sendmmsg` per up to 64 packets on the first socket. What the socket cannot
    /// take now (its buffer is full) counts in `tx_drop`; a packet the kernel refuses
    /// (too long for the MTU) in `tx_drop` and `errors`.
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        let fd = self.queues[0].fd.as_raw_fd();
        let mut sent = 0;
        while !bufs.is_empty() {
            let mut batch: Vec<Buf> = Vec::with_capacity(TX_BATCH);
            let mut iovs: Vec<libc::iovec> = Vec::with_capacity(TX_BATCH);
            for mut b in bufs.drain(..bufs.len().min(TX_BATCH)) {
                let index = b.index();
                // The metadata is read once, here: the bounds checked are the bounds sent.
                let iov = pool.holder().packet(&mut b).map(|p| {
                    let d = p.data();
                    libc::iovec {
                        iov_base: d.as_ptr() as *mut libc::c_void,
                        iov_len: d.len(),
                    }
                });
                match iov {
                    Ok(iov) => {
                        iovs.push(iov);
                        batch.push(b);
                    }
                    Err(e) => {
                        // Corrupt metadata: nothing sensible to send.
                        self.stats.tx_drop += 1;
                        self.bad.count(&mut self.stats, "sending", index, &e);
                        pool.free(b);
                    }
                }
            }
            // SAFETY: an all-zero mmsghdr is valid (null name, no control data).
            let mut msgs: Vec<libc::mmsghdr> = (0..iovs.len()).map(|_| unsafe { std::mem::zeroed() }).collect();
            for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
                m.msg_hdr.msg_iov = iov;
                m.msg_hdr.msg_iovlen = 1;
            }
            let mut done = 0;
            while done < msgs.len() {
                // SAFETY: `msgs[done..]` are live headers whose iovecs point at packet bytes
                // of buffers this port holds (`batch`, freed only after the loop); the
                // kernel only reads them and writes each header's `msg_len`.
                let r = unsafe {
                    libc::sendmmsg(
                        fd,
                        msgs[done..].as_mut_ptr(),
                        (msgs.len() - done) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r > 0 {
                    let r = r as usize;
                    self.stats.tx_bytes += iovs[done..done + r].iter().map(|v| v.iov_len as u64).sum::<u64>();
                    sent += r;
                    done += r;
                    continue;
                }
                // The first remaining packet failed: count it and go on with the rest.
                let e = io::Error::last_os_error();
                self.stats.tx_drop += 1;
                if !matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOBUFS)) {
                    self.stats.errors += 1;
                }
                done += 1;
            }
            for b in batch {
                pool.free(b);
            }
        }
        self.stats.tx += sent as u64;
        sent
    }

    /// `rx_drop` includes the frames the kernel dropped because a ring was full.
    fn stats(&self) -> PortStats {
        for q in &self.queues {
            self.collect_kernel_drops(q);
        }
        self.stats.plus(self.kernel_drops.get(), 0)
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testlink::{self, Veth};
    use crate::testutil;

    #[test]
    fn missing_interface_is_named() {
        // Without CAP_NET_RAW the socket is refused before the interface is looked up.
        if !testlink::require_root() {
            return;
        }
        let e = AfPacketPort::open(&IfaceSpec::new("onvmnosuch0"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("port afpacket:onvmnosuch0: no such interface"), "{e}");
    }

    #[test]
    fn frames_cross_a_veth_pair_both_ways() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let mut b = AfPacketPort::open(&IfaceSpec::new(&veth.b), 2).unwrap();
        let n = 200;
        testlink::one_way(&mut a, &mut b, &mut pool, n, 1);
        testlink::one_way(&mut b, &mut a, &mut pool, n, 2);
        for p in [&a, &b] {
            let s = p.stats();
            assert_eq!((s.tx, s.tx_drop, s.errors, s.rx_drop), (n as u64, 0, 0, 0), "{s:?}");
            assert!(
                s.rx >= n as u64 && s.tx_bytes == s.tx * testlink::FRAME_LEN as u64,
                "{s:?}"
            );
        }
        testutil::assert_whole(&pool);
    }

    #[test]
    fn frames_wait_in_the_ring_while_the_pool_is_empty() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(64, 2048);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let mut b = AfPacketPort::open(&IfaceSpec::new(&veth.b), 2).unwrap();
        let frames = testlink::frames(20, 4);
        assert_eq!(testlink::send(&mut a, &mut pool, &frames), 20);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut held = Vec::new();
        pool.alloc_burst(64, &mut held);
        let mut out = Vec::new();
        assert_eq!(b.rx_burst(&mut pool, &mut out, 32), 0);
        testutil::take(&mut pool, &mut held);
        assert_eq!(testlink::receive_marked(&mut b, &mut pool, 20), frames);
        assert_eq!(b.stats().rx_drop, 0);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn options_set_the_interface_and_fanout_spreads_flows() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(1024, 2048);
        let spec = match format!("afpacket:{},queues=2,mtu=1400,mac=02:00:00:00:00:42", veth.b).parse() {
            Ok(onvm_proto::port::PortSpec::AfPacket(s)) => s,
            other => panic!("{other:?}"),
        };
        let mut b = AfPacketPort::open(&spec, 2).unwrap();
        assert_eq!(netif::mtu(&veth.b).unwrap(), 1400);
        assert_eq!(netif::mac(&veth.b).unwrap(), [2, 0, 0, 0, 0, 0x42]);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let n = 400;
        let frames = testlink::frames(n, 5);
        assert_eq!(testlink::send(&mut a, &mut pool, &frames), n);
        let mut got = testlink::receive_marked(&mut b, &mut pool, n);
        got.sort();
        let mut want = frames;
        want.sort();
        assert!(got == want, "received {} of {n}", got.len());
        let per = b.queue_rx();
        assert!(
            per.len() == 2 && per.iter().all(|&q| q > 0),
            "fanout left a socket idle: {per:?}"
        );
        // A frame longer than the MTU is refused by the kernel and counted.
        let big = vec![0u8; 1500];
        assert_eq!(testlink::send(&mut b, &mut pool, &[big]), 0);
        let s = b.stats();
        assert_eq!((s.tx_drop, s.errors), (1, 1), "{s:?}");
        testutil::assert_whole(&pool);
    }

    /// `frames` with a tag after the MAC addresses: 802.1Q, 802.1ad, or both (QinQ), by index.
    pub(crate) fn tagged(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let tags: &[[u8; 4]] = match i % 3 {
                    0 => &[[0x81, 0x00, 0x60, 100]],
                    1 => &[[0x88, 0xa8, 0x0f, 0xff]],
                    _ => &[[0x88, 0xa8, 0x00, 10], [0x81, 0x00, 0x20, 20]],
                };
                let mut v = f[..12].to_vec();
                v.extend(tags.iter().flatten());
                v.extend_from_slice(&f[12..]);
                v
            })
            .collect()
    }

    #[test]
    fn vlan_tags_cross_a_veth_pair_intact() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let mut b = AfPacketPort::open(&IfaceSpec::new(&veth.b), 2).unwrap();
        // Sent as they are, tags inline; the receiving kernel takes the outer tag out
        // into the ring header, and the port puts it back.
        let frames = tagged(&testlink::frames(90, 6));
        assert_eq!(testlink::send(&mut a, &mut pool, &frames), 90);
        let got = testlink::receive_marked(&mut b, &mut pool, 90);
        assert_eq!(got.len(), 90);
        for (i, (g, f)) in got.iter().zip(&frames).enumerate() {
            assert!(g == f, "frame {i}: sent {f:02x?}\nreceived {g:02x?}");
        }
        assert_eq!(b.offloads().tags_restored, 90, "{:?}", b.offloads());
        // A frame a tag makes too long for the data room is dropped and counted.
        let (_r, mut small) = testutil::pool(64, testlink::FRAME_LEN as u32 + 2);
        let frames = testlink::frames(2, 7);
        assert_eq!(testlink::send(&mut a, &mut pool, &tagged(&frames)[..1]), 1);
        assert_eq!(testlink::send(&mut a, &mut pool, &frames[1..]), 1);
        assert_eq!(testlink::receive_marked(&mut b, &mut small, 1), &frames[1..]);
        assert_eq!(b.stats().errors, 1);
        testutil::assert_whole(&pool);
        testutil::assert_whole(&small);
    }

    /// The two addresses of a /30 for the host's own traffic in test `test` (each test
    /// its own, and each process its own block): in 198.18.0.0/15, the range set aside
    /// for tests (RFC 2544), so the route it adds in the host's namespace takes no real
    /// traffic, and two tests never route through each other's interface.
    pub(crate) fn host_net(test: u8) -> (String, String) {
        let block = 4 * (std::process::id() % 63) + 1;
        (format!("198.18.{test}.{block}"), format!("198.18.{test}.{}", block + 1))
    }

    /// The host's own UDP traffic out of `dev`, which the kernel sends with checksum
    /// offload where the device offers it (veth: a partial checksum). (A VLAN device on
    /// it would add frames whose tag is in the skb; kernels without 8021q, as some CI
    /// VMs run, cannot make one.)
    pub(crate) struct HostTraffic {
        sock: std::net::UdpSocket,
        peer: String,
    }

    impl HostTraffic {
        /// The first address of [`host_net`]`(test)` for `dev`, with a static neighbour
        /// for the second (no ARP); they go with the interface.
        pub fn new(dev: &str, test: u8) -> HostTraffic {
            let (local, peer) = host_net(test);
            let cidr = format!("{local}/30");
            #[rustfmt::skip]
            let steps: [&[&str]; 2] = [
                &["addr", "add", &cidr, "dev", dev],
                &["neigh", "replace", &peer, "lladdr", "02:00:00:00:00:02", "dev", dev],
            ];
            for args in steps {
                assert!(testlink::ip(args), "ip {args:?}");
            }
            let sock = std::net::UdpSocket::bind((local.as_str(), 0)).unwrap();
            HostTraffic { sock, peer }
        }

        /// Send `n` marked datagrams of `len` payload bytes.
        pub fn send(&self, n: usize, len: usize) {
            for i in 0..n {
                let mut p = vec![0x3c; len];
                p[..4].copy_from_slice(&(i as u32).to_be_bytes());
                self.sock
                    .send_to(&p, (self.peer.as_str(), testlink::MARK_PORT))
                    .unwrap();
            }
        }
    }

    /// Whether the UDP checksum of `frame` (after any tags) is whole and right.
    pub(crate) fn udp_checksum_ok(frame: &[u8]) -> bool {
        offload::checksum_is_partial(frame) == Some(false) && {
            let mut f = frame.to_vec();
            offload::complete_checksum(&mut f);
            f == frame
        }
    }

    #[test]
    fn the_hosts_own_traffic_comes_with_whole_checksums() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let host = HostTraffic::new(&veth.b, 1);
        host.send(20, 100);
        host.send(20, 1001);
        let got = testlink::receive_marked(&mut a, &mut pool, 40);
        assert_eq!(got.len(), 40);
        for (i, f) in got.iter().enumerate() {
            assert!(udp_checksum_ok(f), "frame {i}: {f:02x?}");
        }
        let o = a.offloads();
        assert_eq!(o.checksums_completed, 40, "{o:?}");
        testutil::assert_whole(&pool);
    }

    /// Rough figure, printed: packets/s one port sends to the other over a veth pair.
    #[test]
    fn veth_throughput() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(4096, 2048);
        let mut a = AfPacketPort::open(&IfaceSpec::new(&veth.a), 1).unwrap();
        let mut b = AfPacketPort::open(&IfaceSpec::new(&veth.b), 2).unwrap();
        let frame = &testlink::frames(1, 3)[0];
        let start = std::time::Instant::now();
        let (mut sent, mut got) = (0u64, 0u64);
        let mut bufs = Vec::new();
        // 500 ms, and on (10 s at most) until something arrived: on a busy machine the
        // kernel's softirq may not have run yet.
        let busy = |got| {
            let t = start.elapsed();
            t < std::time::Duration::from_millis(500) || (got == 0 && t < std::time::Duration::from_secs(10))
        };
        while busy(got) {
            pool.alloc_burst(32, &mut bufs);
            for buf in &mut bufs {
                pool.holder().packet(buf).unwrap().copy_from(frame).unwrap();
            }
            sent += a.tx_burst(&mut pool, &mut bufs) as u64;
            while b.rx_burst(&mut pool, &mut bufs, 256) > 0 {
                got += bufs.len() as u64;
                testutil::take(&mut pool, &mut bufs);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "afpacket over veth: sent {:.0} pkt/s, received {:.0} pkt/s, kernel drops {}",
            sent as f64 / secs,
            got as f64 / secs,
            b.stats().rx_drop
        );
        assert!(got > 0);
        drop(b);
        testutil::assert_whole(&pool);
    }
}
