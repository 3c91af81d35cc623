//! What the kernel-backed ports share: socket options, interface ioctls, and applying a
//! port's interface options (MTU, MAC, promiscuous mode) at open.

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use onvm_proto::port::IfaceSpec;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::PortError;

/// `setsockopt(fd, level, name, val)` for a plain-data option value.
pub fn setsockopt<T>(fd: BorrowedFd<'_>, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
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

/// An `ifreq` naming `name` (the caller checked it fits), with the union zeroed.
pub fn ifreq(name: &str) -> libc::ifreq {
    let mut ifr = libc::ifreq {
        ifr_name: [0; libc::IFNAMSIZ],
        ifr_ifru: libc::__c_anonymous_ifr_ifru { ifru_flags: 0 },
    };
    for (d, s) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    ifr
}

/// `ioctl(fd, req, ifr)` for the interface requests (TUNSETIFF, SIOC[GS]IF*).
pub fn ioctl_ifreq(fd: BorrowedFd<'_>, req: libc::Ioctl, ifr: &mut libc::ifreq) -> io::Result<()> {
    // SAFETY: every request passed here reads and/or writes one `ifreq`, which `ifr` is,
    // alive and exclusively borrowed for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req, ifr as *mut libc::ifreq) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Interface request `req` on `name` through a datagram socket, `fill` setting the
/// union first; the `ifreq` as the kernel left it.
fn if_ioctl(name: &str, req: libc::c_ulong, fill: impl FnOnce(&mut libc::ifreq)) -> io::Result<libc::ifreq> {
    let sock = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)?;
    let mut ifr = ifreq(name);
    fill(&mut ifr);
    ioctl_ifreq(sock.as_fd(), req as libc::Ioctl, &mut ifr)?;
    Ok(ifr)
}

/// Set IFF_UP on interface `name` (like `ip link set NAME up`).
pub fn set_up(name: &str) -> io::Result<()> {
    let ifr = if_ioctl(name, libc::SIOCGIFFLAGS, |_| {})?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let flags = unsafe { ifr.ifr_ifru.ifru_flags } | libc::IFF_UP as libc::c_short;
    if_ioctl(name, libc::SIOCSIFFLAGS, |r| r.ifr_ifru.ifru_flags = flags).map(drop)
}

/// The interface's MTU.
#[cfg(test)]
pub fn mtu(name: &str) -> io::Result<u32> {
    let ifr = if_ioctl(name, libc::SIOCGIFMTU, |_| {})?;
    // SAFETY: SIOCGIFMTU filled the mtu member of the union.
    Ok(unsafe { ifr.ifr_ifru.ifru_mtu } as u32)
}

fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    if_ioctl(name, libc::SIOCSIFMTU, |r| r.ifr_ifru.ifru_mtu = mtu as libc::c_int).map(drop)
}

/// The interface's MAC address.
#[cfg(test)]
pub fn mac(name: &str) -> io::Result<[u8; 6]> {
    let ifr = if_ioctl(name, libc::SIOCGIFHWADDR, |_| {})?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let sa = unsafe { ifr.ifr_ifru.ifru_hwaddr };
    Ok(std::array::from_fn(|i| sa.sa_data[i] as u8))
}

fn set_mac(name: &str, mac: [u8; 6]) -> io::Result<()> {
    let mut sa = libc::sockaddr {
        sa_family: libc::ARPHRD_ETHER,
        sa_data: [0; 14],
    };
    for (d, s) in sa.sa_data.iter_mut().zip(mac) {
        *d = s as libc::c_char;
    }
    if_ioctl(name, libc::SIOCSIFHWADDR, |r| r.ifr_ifru.ifru_hwaddr = sa).map(drop)
}

/// Builds the [`PortError::Os`] of port `spec`.
pub fn os_err(spec: &str) -> impl Fn(&str, io::Error) -> PortError + use<> {
    let spec = spec.to_string();
    move |what, source| PortError::Os {
        spec: spec.clone(),
        what: what.to_string(),
        source,
    }
}

/// The index of interface `name`, or an error saying it does not exist.
pub fn index(spec: &str, name: &str) -> Result<u32, PortError> {
    let err = os_err(spec);
    let sock = rustix::net::socket(AddressFamily::INET, SocketType::DGRAM, None)
        .map_err(|e| err("cannot open a socket", e.into()))?;
    rustix::net::netdevice::name_to_index(&sock, name).map_err(|e| match e {
        Errno::NODEV | Errno::NXIO | Errno::INVAL => err("no such interface", e.into()),
        e => err("cannot look the interface up", e.into()),
    })
}

/// A non-blocking packet socket of protocol 0: it receives nothing until it is bound
/// to an interface (with ETH_P_ALL), so its ring can be set up first.
pub fn packet_socket(spec: &str) -> Result<OwnedFd, PortError> {
    let err = os_err(spec);
    rustix::net::socket_with(
        AddressFamily::PACKET,
        SocketType::RAW,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| match e {
        Errno::PERM | Errno::ACCESS => err("needs root (CAP_NET_RAW)", e.into()),
        e => err("cannot open a packet socket", e.into()),
    })
}

/// Turn promiscuous mode on through packet socket `fd` for as long as it stays open
/// (the kernel counts such requests and undoes them when the socket closes, also when
/// the manager is killed), so a port never leaves an interface promiscuous.
pub fn hold_promisc(spec: &str, fd: BorrowedFd<'_>, ifindex: u32) -> Result<(), PortError> {
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_PROMISC as u16,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
        .map_err(|e| os_err(spec)("cannot turn promiscuous mode on", e))
}

/// Apply the MTU and MAC options of `iface` (before the port binds to it).
pub fn configure(spec: &str, iface: &IfaceSpec) -> Result<(), PortError> {
    let err = os_err(spec);
    if let Some(m) = iface.mtu {
        set_mtu(&iface.name, m).map_err(|e| err(&format!("cannot set the MTU to {m}"), e))?;
    }
    if let Some(m) = iface.mac {
        set_mac(&iface.name, m).map_err(|e| err("cannot set the MAC address", e))?;
    }
    Ok(())
}
