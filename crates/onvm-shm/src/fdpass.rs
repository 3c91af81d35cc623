//! Passing the region's file descriptor over a Unix socket (SCM_RIGHTS).
//!
//! This is how an NF gets the region: it connects to the manager's control socket and
//! receives the memfd with the reply. Works on stream and seqpacket sockets.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    recvmsg, sendmsg,
};

/// Send `payload` with `fd` attached.
pub fn send_fd(sock: impl AsFd, payload: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small for one fd"));
    }
    let n = sendmsg(sock, &[IoSlice::new(payload)], &mut control, SendFlags::NOSIGNAL)?;
    if n != payload.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {n} of {} bytes", payload.len()),
        ));
    }
    Ok(())
}

/// Receive a message into `buf`; returns its length and the fd attached to it, if any.
/// A length of 0 with no fd means the peer closed the socket.
pub fn recv_fd(sock: impl AsFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = recvmsg(sock, &mut [IoSliceMut::new(buf)], &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut fd = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            // Keep the first; any extra fds are closed when the iterator drops them.
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    Ok((msg.bytes, fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn fd_travels_with_its_message() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut f = tempfile_in_memory();
        f.write_all(b"hello region").unwrap();
        send_fd(&a, b"take this", f.as_fd()).unwrap();
        let mut buf = [0u8; 32];
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"take this");
        let mut g = std::fs::File::from(fd.expect("an fd came along"));
        g.rewind().unwrap();
        let mut s = String::new();
        g.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello region");
        drop(a);
        let (n, fd) = recv_fd(&b, &mut buf).unwrap();
        assert_eq!((n, fd.is_none()), (0, true), "closed peer reads as empty");
    }

    fn tempfile_in_memory() -> std::fs::File {
        std::fs::File::from(rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap())
    }
}
