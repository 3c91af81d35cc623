//! The TAP port (`tap:NAME`): a virtual Ethernet interface the port creates.
//!
//! What the platform sends out of the port, the kernel receives on interface NAME; what
//! the kernel (or a program bound to NAME) sends out of NAME, the port receives. It lets
//! the host's own stack, tools and containers talk to NFs without any hardware. The
//! interface exists while the port is open and is brought up at open, so it is usable
//! at once (addresses and routes are left to the user).
//!
//! The device is opened without `IFF_VNET_HDR` and no offloads are turned on
//! (`TUNSETOFFLOAD`), so the frames the port reads are as they would be on a wire, as
//! AF_PACKET and AF_XDP ports give them:
//! - **VLAN tags**: the kernel writes a frame's tag into the bytes the port reads (also
//!   a tag it kept in the skb), and takes a tag the port writes as part of the frame:
//!   802.1Q, 802.1ad and QinQ frames cross both ways intact.
//! - **Checksums**: the device offers no checksum offload, so the kernel completes every
//!   checksum before handing a frame to it; no frame comes with a partial one.
//! - **Super-frames**: no segmentation offload either: the kernel segments TCP to the
//!   device's MTU before the port reads it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use onvm_proto::port::IfaceSpec;
use onvm_shm::{Buf, Pool};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::netif::{self, ifreq, ioctl_ifreq};
use crate::{BadBuffers, Port, PortError, PortStats, fill, now_ns};

/// Largest frame read from the device: its MTU can be raised up to 64 KiB.
const MAX_FRAME: usize = 65_536 + 14;

/// Receives what the kernel sends out of a TAP interface, and the reverse (`tap:NAME`).
#[derive(Debug)]
pub struct TapPort {
    name: String,
    port_no: u16,
    fd: OwnedFd,
    /// One frame read from the device, before it is copied into a buffer (so that a
    /// frame too long for a buffer is seen as such, not cut).
    scratch: Vec<u8>,
    stats: PortStats,
    bad: BadBuffers,
}

impl TapPort {
    /// Create TAP interface `iface.name` (or attach to the persistent one of that name),
    /// apply its MTU and MAC options and bring it up. Needs CAP_NET_ADMIN. (A TAP device
    /// takes every frame written to it, so `promisc` changes nothing; `queues` is 1.)
    pub fn open(iface: &IfaceSpec, port_no: u16) -> Result<TapPort, PortError> {
        let name = format!("tap:{iface}");
        let err = netif::os_err(&name);
        let dev = iface.name.as_str();
        if dev.len() >= libc::IFNAMSIZ || dev.contains(['/', ' ', '\0']) {
            return Err(err(
                "not a valid interface name (at most 15 bytes, no '/' or space)",
                io::ErrorKind::InvalidInput.into(),
            ));
        }
        let fd = rustix::fs::open(
            "/dev/net/tun",
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOENT | Errno::NODEV => err("no /dev/net/tun (is the tun module loaded?)", e.into()),
            Errno::PERM | Errno::ACCESS => err("needs root (CAP_NET_ADMIN) to open /dev/net/tun", e.into()),
            e => err("cannot open /dev/net/tun", e.into()),
        })?;
        if iface.queues != 1 {
            return Err(err("a TAP port has one queue", io::ErrorKind::InvalidInput.into()));
        }
        let mut ifr = ifreq(dev);
        ifr.ifr_ifru.ifru_flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        ioctl_ifreq(fd.as_fd(), libc::TUNSETIFF, &mut ifr).map_err(|e| match e.raw_os_error() {
            Some(libc::EPERM) => err("needs root (CAP_NET_ADMIN) to create a TAP interface", e),
            Some(libc::EBUSY) => err("the interface is in use", e),
            Some(libc::EINVAL) => err("an interface of that name exists and is not a TAP", e),
            _ => err("cannot create the TAP interface", e),
        })?;
        netif::configure(&name, iface)?;
        netif::set_up(dev).map_err(|e| err("cannot bring the interface up", e))?;
        Ok(TapPort {
            name,
            port_no,
            fd,
            scratch: vec![0; MAX_FRAME],
            stats: PortStats::default(),
            bad: BadBuffers::default(),
        })
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// One `read` per frame; frames wait in the device's queue while the pool is empty.
    /// Frames longer than a buffer are dropped and counted in `errors`. Never blocks.
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        let room = pool.region().layout().data_room as usize;
        let now = now_ns();
        let mut n = 0;
        while n < max {
            let Some(mut buf) = pool.alloc() else { break };
            let len = match rustix::io::read(&self.fd, &mut self.scratch[..]) {
                Ok(len) => len,
                Err(e) => {
                    pool.free(buf);
                    if e != Errno::AGAIN {
                        self.stats.errors += 1;
                    }
                    break;
                }
            };
            if len > room {
                pool.free(buf);
                self.stats.errors += 1;
                continue;
            }
            if let Err(e) = fill(pool, &mut buf, &self.scratch[..len], self.port_no, now) {
                self.bad.count(&mut self.stats, "receiving into", buf.index(), &e);
                pool.free(buf);
                continue;
            }
            out.push(buf);
            n += 1;
            self.stats.rx_bytes += len as u64;
        }
        self.stats.rx += n as u64;
        n
    }

    /// One `write` per frame. A frame the device cannot take now counts in `tx_drop`;
    /// any other failure (the interface was set down: `EIO`) in `tx_drop` and `errors`.
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        let mut sent = 0;
        for mut b in bufs.drain(..) {
            let index = b.index();
            match pool.holder().packet(&mut b) {
                Ok(p) => match rustix::io::write(&self.fd, p.data()) {
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
                Err(e) => self.bad.count(&mut self.stats, "sending", index, &e),
            }
            pool.free(b);
        }
        self.stats.tx += sent as u64;
        sent
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AfPacketPort;
    use crate::testlink;
    use crate::testutil;

    #[test]
    fn frames_pass_between_the_port_and_the_interface() {
        if !testlink::require_root() {
            return;
        }
        let dev = testlink::unique_name("t");
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut tap = TapPort::open(&IfaceSpec::new(&dev), 1).unwrap();
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        testlink::wait_up(&dev);
        let mut sock = AfPacketPort::open(&IfaceSpec::new(&dev), 2).unwrap();
        let n = 100;
        testlink::one_way(&mut tap, &mut sock, &mut pool, n, 1);
        testlink::one_way(&mut sock, &mut tap, &mut pool, n, 2);
        let s = tap.stats();
        assert_eq!((s.tx, s.tx_drop, s.errors), (n as u64, 0, 0), "{s:?}");
        assert!(s.rx >= n as u64, "{s:?}");
        drop(sock);
        drop(tap);
        // The interface goes with the port.
        testlink::wait_gone(&dev);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn tags_cross_both_ways_and_checksums_come_whole() {
        use crate::afpacket::tests::{HostTraffic, tagged, udp_checksum_ok};
        if !testlink::require_root() {
            return;
        }
        let dev = testlink::unique_name("t");
        let (_r, mut pool) = testutil::pool(512, 2048);
        let mut tap = TapPort::open(&IfaceSpec::new(&dev), 1).unwrap();
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        testlink::wait_up(&dev);
        let mut sock = AfPacketPort::open(&IfaceSpec::new(&dev), 2).unwrap();
        let frames = tagged(&testlink::frames(30, 3));
        assert_eq!(testlink::send(&mut tap, &mut pool, &frames), 30);
        assert!(testlink::receive_marked(&mut sock, &mut pool, 30) == frames);
        assert_eq!(testlink::send(&mut sock, &mut pool, &frames), 30);
        assert!(testlink::receive_marked(&mut tap, &mut pool, 30) == frames);
        // The host's own UDP out of the device: whole checksums, segmented to the MTU.
        let host = HostTraffic::new(&dev, 3);
        for len in [100, 1001, 1472] {
            host.send(1, len);
        }
        let got = testlink::receive_marked(&mut tap, &mut pool, 3);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|f| udp_checksum_ok(f)), "{got:02x?}");
        drop(sock);
        drop(tap);
        testlink::wait_gone(&dev);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn bad_names_are_refused() {
        let e = TapPort::open(&IfaceSpec::new("a/b"), 0).unwrap_err().to_string();
        assert!(e.starts_with("port tap:a/b: not a valid interface name"), "{e}");
        let e = TapPort::open(&IfaceSpec::new("sixteen-bytes-xx"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid interface name"), "{e}");
    }
}
