//! The AF_PACKET port (`afpacket:IFACE`): any Linux interface, through a raw packet socket.
//!
//! It works on every interface and kernel, which makes it the fallback when AF_XDP is not
//! available. Receiving reads a TPACKET_V3 ring ([`ring`]) and copies each frame into a
//! pool buffer (the ring is the kernel's memory, not the shared region; zero copy is
//! AF_XDP's job). Sending is one non-blocking `send` per packet on the bound socket. The
//! socket puts the interface in promiscuous mode for as long as it is open, and ignores
//! the packets it (or anyone else) sends out of the interface.

mod ring;

use std::cell::Cell;
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use onvm_shm::{Buf, Pool};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SendFlags, SocketFlags, SocketType};

use crate::{Port, PortError, PortStats, fill, now_ns};
use ring::RxRing;

/// `setsockopt(fd, level, name, val)` for a plain-data option value.
fn setsockopt<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: `val` points to a live `T` of the size passed; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Receives from and sends to one interface (`afpacket:IFACE`).
#[derive(Debug)]
pub struct AfPacketPort {
    name: String,
    port_no: u16,
    ring: RxRing,
    fd: OwnedFd,
    stats: PortStats,
    /// Frames the kernel dropped because the ring was full, summed: reading the kernel's
    /// counter resets it, and [`Port::stats`] takes `&self`.
    kernel_drops: Cell<u64>,
}

impl AfPacketPort {
    /// Open a packet socket on `iface`, with its receive ring, in promiscuous mode.
    /// Needs CAP_NET_RAW.
    pub fn open(iface: &str, port_no: u16) -> Result<AfPacketPort, PortError> {
        let name = format!("afpacket:{iface}");
        let err = |what: &str, source: io::Error| PortError::Os {
            spec: name.clone(),
            what: what.to_string(),
            source,
        };
        // Protocol 0: the socket receives nothing until it is bound to the interface,
        // after its ring is ready.
        let fd = rustix::net::socket_with(
            AddressFamily::PACKET,
            SocketType::RAW,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| match e {
            Errno::PERM | Errno::ACCESS => err("needs root (CAP_NET_RAW)", e.into()),
            e => err("cannot open a packet socket", e.into()),
        })?;
        let ifindex = rustix::net::netdevice::name_to_index(&fd, iface).map_err(|e| match e {
            Errno::NODEV | Errno::NXIO | Errno::INVAL => err("no such interface", e.into()),
            e => err("cannot look the interface up", e.into()),
        })?;
        // Without this, every packet sent out of the interface comes back on RX. Kernels
        // before 4.20 lack it; `rx_burst` also skips outgoing frames, so that is fine.
        let _ = setsockopt(
            fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &1 as &libc::c_int,
        );
        let ring = RxRing::new(fd.as_fd()).map_err(|e| err("cannot set up the TPACKET_V3 receive ring", e))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(fd.as_fd(), libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| err("cannot turn promiscuous mode on", e))?;
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
        Ok(AfPacketPort {
            name,
            port_no,
            ring,
            fd,
            stats: PortStats::default(),
            kernel_drops: Cell::new(0),
        })
    }

    /// Read (and so reset) the kernel's drop counter into `kernel_drops`.
    fn collect_kernel_drops(&self) {
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
                self.fd.as_raw_fd(),
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
}

impl Port for AfPacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// Frames wait in the ring while the pool is empty (the kernel drops what no longer
    /// fits, counted in `rx_drop`); frames longer than a buffer are dropped and counted
    /// in `errors`. Never blocks.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        let room = pool.region().layout().data_room as usize;
        let now = now_ns();
        let mut n = 0;
        while n < max {
            let Some(frame) = self.ring.peek() else { break };
            if frame.pkttype == libc::PACKET_OUTGOING {
                self.ring.advance();
                continue;
            }
            if frame.data.len() > room || frame.data.len() < frame.wire_len {
                self.stats.errors += 1;
                self.ring.advance();
                continue;
            }
            let Some(mut buf) = pool.alloc() else { break };
            let len = frame.data.len();
            fill(pool, &mut buf, frame.data, self.port_no, now).expect("a fresh buffer has room for data_room bytes");
            self.ring.advance();
            out.push(buf);
            n += 1;
            self.stats.rx_bytes += len as u64;
        }
        self.stats.rx += n as u64;
        n
    }

    /// A packet the socket cannot take now (`EAGAIN`, `ENOBUFS`) counts in `tx_drop`;
    /// any other failure in `tx_drop` and `errors`.
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        let mut sent = 0;
        for mut b in bufs.drain(..) {
            match pool.holder().packet(&mut b) {
                Ok(p) => match rustix::net::send(&self.fd, p.data(), SendFlags::DONTWAIT) {
                    Ok(_) => {
                        sent += 1;
                        self.stats.tx_bytes += p.len() as u64;
                    }
                    Err(Errno::AGAIN | Errno::NOBUFS) => self.stats.tx_drop += 1,
                    Err(_) => {
                        self.stats.tx_drop += 1;
                        self.stats.errors += 1;
                    }
                },
                Err(_) => self.stats.errors += 1,
            }
            pool.free(b);
        }
        self.stats.tx += sent as u64;
        sent
    }

    /// `rx_drop` includes the frames the kernel dropped because the ring was full.
    fn stats(&self) -> PortStats {
        self.collect_kernel_drops();
        PortStats {
            rx_drop: self.stats.rx_drop + self.kernel_drops.get(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testlink::{self, Veth};
    use crate::testutil;

    #[test]
    fn missing_interface_is_named() {
        let e = AfPacketPort::open("onvmnosuch0", 0).unwrap_err().to_string();
        if e.contains("CAP_NET_RAW") {
            eprintln!("skipped: not root ({e})");
            return;
        }
        assert!(e.starts_with("port afpacket:onvmnosuch0: no such interface"), "{e}");
    }

    #[test]
    fn frames_cross_a_veth_pair_both_ways() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut a = AfPacketPort::open(&veth.a, 1).unwrap();
        let mut b = AfPacketPort::open(&veth.b, 2).unwrap();
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
        let mut a = AfPacketPort::open(&veth.a, 1).unwrap();
        let mut b = AfPacketPort::open(&veth.b, 2).unwrap();
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

    /// Rough figure, printed: packets/s one port sends to the other over a veth pair.
    #[test]
    fn veth_throughput() {
        let Some(veth) = Veth::create() else { return };
        let (_r, mut pool) = testutil::pool(4096, 2048);
        let mut a = AfPacketPort::open(&veth.a, 1).unwrap();
        let mut b = AfPacketPort::open(&veth.b, 2).unwrap();
        let frame = &testlink::frames(1, 3)[0];
        let start = std::time::Instant::now();
        let (mut sent, mut got) = (0u64, 0u64);
        let mut bufs = Vec::new();
        while start.elapsed() < std::time::Duration::from_millis(500) {
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
