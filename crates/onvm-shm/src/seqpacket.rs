//! The control channel's socket: Unix `SOCK_SEQPACKET`.
//!
//! Seqpacket keeps message boundaries (one `send` = one message, no framing to get
//! wrong) and, like a stream, tells the other side when a peer goes away: the manager
//! learns that an NF died — however it died — from a read of 0 bytes or `ECONNRESET`
//! on its socket. Nothing here is `unsafe`; it sits next to [`crate::fdpass`] because
//! the region's memfd travels over this socket.
//!
//! A read of 0 bytes is also what an *empty message* gives (`send(fd, "", 0)` is a
//! valid seqpacket datagram), so 0 bytes alone does not mean the peer went away: a
//! live NF could otherwise get itself (or, through a bug, be) declared dead by one
//! empty send. [`SeqPacket::recv`] tells them apart by the socket's shutdown state:
//! when the peer closes, the kernel marks our end shut for reading (`POLLRDHUP`, with
//! `POLLHUP` once both directions are); a live peer's empty datagram leaves it open.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType, accept_with, bind, connect, listen,
    send, socket_with,
};

use crate::fdpass;

/// What one receive got.
#[derive(Debug)]
pub enum Received {
    /// A message of this many bytes (and a file descriptor, if one came along).
    Msg(usize, Option<OwnedFd>),
    /// Nothing waiting (non-blocking sockets only).
    Empty,
    /// The peer closed its end (or died).
    Closed,
}

/// The error [`SeqPacket::recv`] gives for an empty message from a live peer
/// (`InvalidData`, like a message too long): a bad message, not a close.
fn empty_message() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "empty control message (0 bytes)")
}

/// Who is at the other end of a connection, as the kernel saw it when the peer
/// connected (`SO_PEERCRED`): it cannot be forged by the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Process ID of the peer when it connected.
    pub pid: u32,
    /// Its effective user ID.
    pub uid: u32,
    /// Its effective (primary) group ID.
    pub gid: u32,
}

impl PeerCred {
    /// The peer's supplementary groups, read from `/proc/PID/status` (`SO_PEERCRED`
    /// carries only the primary group). Empty when the process is gone; a PID reused
    /// since can only name a process that the kernel already let through the socket's
    /// file modes, so the answer widens nothing the modes had not allowed.
    pub fn supplementary_groups(&self) -> Vec<u32> {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Groups:"))
                    .map(|g| g.split_whitespace().filter_map(|n| n.parse().ok()).collect())
            })
            .unwrap_or_default()
    }
}

/// One end of a control connection, or the manager's listening socket.
#[derive(Debug)]
pub struct SeqPacket {
    fd: OwnedFd,
}

fn new_socket(nonblocking: bool) -> io::Result<OwnedFd> {
    let mut flags = SocketFlags::CLOEXEC;
    if nonblocking {
        flags |= SocketFlags::NONBLOCK;
    }
    Ok(socket_with(AddressFamily::UNIX, SocketType::SEQPACKET, flags, None)?)
}

impl SeqPacket {
    /// Bind and listen at `path` (non-blocking, for the manager's poll loop).
    pub fn listen(path: &Path) -> io::Result<SeqPacket> {
        let fd = new_socket(true)?;
        bind(&fd, &SocketAddrUnix::new(path)?)?;
        listen(&fd, 128)?;
        Ok(SeqPacket { fd })
    }

    /// Connect to the listener at `path` (blocking socket).
    pub fn connect(path: &Path) -> io::Result<SeqPacket> {
        let fd = new_socket(false)?;
        connect(&fd, &SocketAddrUnix::new(path)?)?;
        Ok(SeqPacket { fd })
    }

    /// A connected pair (tests, and NF children of one process).
    pub fn pair() -> io::Result<(SeqPacket, SeqPacket)> {
        let (a, b) = rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        Ok((SeqPacket { fd: a }, SeqPacket { fd: b }))
    }

    /// Accept a waiting connection (non-blocking); `None` if there is none.
    pub fn accept(&self) -> io::Result<Option<SeqPacket>> {
        match accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => Ok(Some(SeqPacket { fd })),
            Err(rustix::io::Errno::AGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The credentials of the connected peer (`SO_PEERCRED`).
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        let c = rustix::net::sockopt::socket_peercred(&self.fd)?;
        Ok(PeerCred {
            pid: c.pid.as_raw_nonzero().get().unsigned_abs(),
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        })
    }

    /// Whether the peer runs as this process's effective user or as root. An NF that
    /// found its manager at the default path asks this before registering: another user
    /// could have created the per-user directory first and listen there for the packets
    /// of every NF that trusts it.
    pub fn peer_is_self_or_root(&self) -> io::Result<bool> {
        let uid = self.peer_cred()?.uid;
        Ok(uid == 0 || uid == rustix::process::geteuid().as_raw())
    }

    /// Make receives on this socket non-blocking (or blocking again).
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        let mut fl = rustix::fs::fcntl_getfl(&self.fd)?;
        fl.set(rustix::fs::OFlags::NONBLOCK, on);
        rustix::fs::fcntl_setfl(&self.fd, fl)?;
        Ok(())
    }

    /// Send one message.
    pub fn send(&self, msg: &[u8]) -> io::Result<()> {
        let n = send(&self.fd, msg, SendFlags::NOSIGNAL)?;
        if n != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "message cut short"));
        }
        Ok(())
    }

    /// Send one message with a file descriptor attached.
    pub fn send_with_fd(&self, msg: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
        fdpass::send_fd(&self.fd, msg, fd)
    }

    /// Receive one message into `buf`, which must be at least one byte longer than the
    /// longest valid message: a message that fills it may have been cut by the kernel,
    /// so it is an error (`InvalidData`), never a silently truncated message.
    ///
    /// An empty message from a peer that is still connected is an `InvalidData` error
    /// too (see the module doc), never [`Received::Closed`].
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        match fdpass::recv_fd(&self.fd, buf) {
            Ok((0, None)) if self.peer_open()? || self.more_queued() => Err(empty_message()),
            Ok((0, None)) => Ok(Received::Closed),
            Ok((n, _)) if n >= buf.len() => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("control message too long (over {} bytes)", buf.len() - 1),
            )),
            Ok((n, fd)) => Ok(Received::Msg(n, fd)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Received::Empty),
            // A peer that closes with messages of ours unread makes the kernel report
            // ECONNRESET *before* the messages it sent us are read (the error is taken
            // first, then cleared): read on, or its last words (`Stopping`) are lost.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::CONNRESET.raw_os_error()) => {
                match fdpass::recv_fd(&self.fd, buf) {
                    Ok((0, None)) | Err(_) => Ok(Received::Closed),
                    Ok((n, _)) if n >= buf.len() => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("control message too long (over {} bytes)", buf.len() - 1),
                    )),
                    Ok((n, fd)) => Ok(Received::Msg(n, fd)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the peer may still send: our end is not shut for reading. Checked after a
    /// read of 0 bytes, which an empty datagram gives as well as the end of the stream.
    fn peer_open(&self) -> io::Result<bool> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::RDHUP)];
        let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
        poll(&mut fds, Some(&zero))?;
        Ok(!fds[0].revents().intersects(PollFlags::RDHUP | PollFlags::HUP))
    }

    /// After a read of 0 bytes from a peer that has gone: whether messages it sent before
    /// going are still queued (so the 0 bytes were an empty message, and its last words
    /// are still to be read). An empty message followed only by empty ones and the close
    /// reads as the close: nothing is lost but empty messages.
    fn more_queued(&self) -> bool {
        let mut one = [0u8; 1];
        matches!(
            rustix::net::recv(&self.fd, &mut one[..], RecvFlags::PEEK | RecvFlags::DONTWAIT),
            Ok((_, n)) if n > 0
        )
    }

    /// Wait until the socket is readable or `timeout_ms` passes; true if readable.
    pub fn wait_readable(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        let ts = rustix::time::Timespec {
            tv_sec: i64::from(timeout_ms / 1000),
            tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
        };
        let n = poll(&mut fds, (timeout_ms >= 0).then_some(&ts))?;
        Ok(n > 0)
    }
}

impl AsFd for SeqPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Where the manager's control socket lives unless told otherwise: `$ONVM_SOCKET`,
/// else `onvm.sock` in `$ONVM_RUN_DIR`, else in `/run/onvm` for root, else in a
/// per-user folder under the temp dir. Manager and NFs call the same function, so
/// they meet without configuration.
pub fn default_socket_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("ONVM_SOCKET") {
        return p.into();
    }
    let dir = match std::env::var_os("ONVM_RUN_DIR") {
        Some(d) => d.into(),
        None if rustix::process::geteuid().is_root() => std::path::PathBuf::from("/run/onvm"),
        None => std::env::temp_dir().join(format!("onvm-{}", rustix::process::geteuid().as_raw())),
    };
    dir.join("onvm.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_boundaries_and_close_is_seen() {
        let (a, b) = SeqPacket::pair().unwrap();
        a.send(b"one").unwrap();
        a.send(b"two!").unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Msg(3, None)));
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Msg(4, None)));
        a.send(&[7u8; 40]).unwrap();
        let e = b.recv(&mut buf).unwrap_err();
        assert!(e.to_string().contains("too long"), "{e}");
        b.set_nonblocking(true).unwrap();
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Empty));
        drop(a);
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Closed));
    }

    #[test]
    fn last_messages_of_a_peer_that_closed_with_unread_data_are_not_lost() {
        let (a, b) = SeqPacket::pair().unwrap();
        b.send(b"for a, never read").unwrap();
        a.send(b"stopping").unwrap();
        drop(a); // closes with an unread message: the kernel flags ECONNRESET on `b`
        b.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 32];
        match b.recv(&mut buf).unwrap() {
            Received::Msg(n, _) => assert_eq!(&buf[..n], b"stopping"),
            other => panic!("the last message was lost: {other:?}"),
        }
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Closed));
    }

    #[test]
    fn an_empty_message_from_a_live_peer_is_an_error_not_a_close() {
        let (a, b) = SeqPacket::pair().unwrap();
        let mut buf = [0u8; 16];
        for _ in 0..3 {
            a.send(b"").unwrap();
            let e = b.recv(&mut buf).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            assert!(e.to_string().contains("empty"), "{e}");
        }
        // The connection still works both ways.
        a.send(b"after").unwrap();
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Msg(5, None)));
        b.send(b"back").unwrap();
        assert!(matches!(a.recv(&mut buf).unwrap(), Received::Msg(4, None)));
        // An empty message, then last words, then the close: the last words are read.
        a.send(b"").unwrap();
        a.send(b"bye").unwrap();
        drop(a);
        assert!(b.recv(&mut buf).is_err(), "the empty message");
        match b.recv(&mut buf).unwrap() {
            Received::Msg(n, _) => assert_eq!(&buf[..n], b"bye"),
            other => panic!("the last message was lost: {other:?}"),
        }
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Closed));
    }

    #[test]
    fn a_peer_that_shuts_down_writing_reads_as_closed() {
        let (a, b) = SeqPacket::pair().unwrap();
        rustix::net::shutdown(&a, rustix::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(b.recv(&mut buf).unwrap(), Received::Closed));
    }

    #[test]
    fn listener_accepts_and_path_is_a_socket() {
        let dir = std::env::temp_dir().join(format!("onvm-seqp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ctl.sock");
        let _ = std::fs::remove_file(&path);
        let l = SeqPacket::listen(&path).unwrap();
        assert!(l.accept().unwrap().is_none());
        let c = SeqPacket::connect(&path).unwrap();
        let s = l.accept().unwrap().expect("a connection waits");
        c.send(b"hi").unwrap();
        assert!(s.wait_readable(1000).unwrap());
        let mut buf = [0u8; 4];
        assert!(matches!(s.recv(&mut buf).unwrap(), Received::Msg(2, None)));
        let me = s.peer_cred().unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.uid, rustix::process::geteuid().as_raw());
        assert_eq!(me.gid, rustix::process::getegid().as_raw());
        assert!(c.peer_is_self_or_root().unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
