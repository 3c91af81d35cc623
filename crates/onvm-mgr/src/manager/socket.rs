//! The control socket's file: where it lives, who may reach it, and taking it over
//! from a dead manager (never from a live one, and never anything that is not a socket).
//!
//! Whoever can connect gets the packet region's memfd, so every packet on the machine:
//! the socket is the manager's whole access control. Three layers:
//! * its **directory** is one that only the manager's user (or root) can write to, so
//!   no one can put a socket of theirs there or swap ours. A directory the manager
//!   creates is 0700 (see [`SocketAccess::dir_mode`]); an existing one owned by
//!   another user, or writable by group or others (`/tmp` itself), is refused: for a
//!   non-root user's default `/tmp/onvm-UID`, another user could create it first and
//!   receive the victim's registrations.
//! * the **socket** is 0600 (0660 with a granted group), whatever the umask;
//! * every accepted connection's **peer credentials** (`SO_PEERCRED`) are checked, so
//!   loosened modes give no one else access; a refused peer is closed and logged.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use onvm_shm::seqpacket::SeqPacket;

use crate::error::MgrError;
use crate::options::SocketAccess;

/// The listening socket, with the check each connection must pass.
#[derive(Debug)]
pub(super) struct Listener {
    sock: SeqPacket,
    access: SocketAccess,
    /// The manager's effective user ID.
    me: u32,
    /// Connections refused so far.
    refused: u64,
    /// Refusals not yet taken by [`Listener::refusals`].
    reports: Vec<String>,
    /// Where it is, and the file it is there (device, inode): only that file is
    /// removed when the listener goes, never one put there since by someone else.
    path: std::path::PathBuf,
    file: (u64, u64),
}

impl Drop for Listener {
    /// Remove the socket, so that the next manager starts cleanly; whatever happened.
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What one [`Listener::accept`] took from the listening socket.
#[derive(Debug)]
pub(super) enum Accepted {
    /// A connection from an allowed peer.
    Allowed(SeqPacket),
    /// A connection from a peer that is not allowed: closed already, and counted.
    Refused,
    /// None waited.
    Empty,
}

impl Listener {
    /// Take at most one connection, if one waits: an allowed peer's is returned, a
    /// refused peer's is closed here and reported by [`Listener::refusals`] (the first
    /// ten, then at each power of two, so that a flood of them cannot flood the log).
    ///
    /// One call is one `accept` whatever the peer, so that the caller's budget
    /// ([`super::control::ACCEPTS_PER_TICK`]) bounds refused connections too: another
    /// local user connecting in a loop costs the switch thread no more per tick than
    /// NFs do.
    pub(super) fn accept(&mut self) -> io::Result<Accepted> {
        let Some(conn) = self.sock.accept()? else {
            return Ok(Accepted::Empty);
        };
        let why = match conn.peer_cred() {
            Ok(c) if self.access.allows(self.me, c.uid, c.gid, || c.supplementary_groups()) => {
                return Ok(Accepted::Allowed(conn));
            }
            Ok(c) => format!(
                "uid {} gid {} (pid {}) is neither the manager's user, root, nor granted by \
                 --socket-group/--socket-uid",
                c.uid, c.gid, c.pid
            ),
            Err(e) => format!("its credentials cannot be read: {e}"),
        };
        self.refused += 1;
        if super::control::worth_logging(self.refused) {
            self.reports
                .push(format!("refused a control connection ({} so far): {why}", self.refused));
        }
        Ok(Accepted::Refused)
    }
}

impl Listener {
    /// The refusals to report since the last call.
    pub(super) fn refusals(&mut self) -> std::vec::Drain<'_, String> {
        self.reports.drain(..)
    }
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Listen on `path` with `access`, refusing a directory others could tamper with,
/// refusing to take over a live manager's socket or anything that is not a socket,
/// and replacing a stale socket of this user (left by a manager that was killed).
pub(super) fn bind_socket(path: &Path, access: &SocketAccess) -> Result<Listener, MgrError> {
    let failed = |e| MgrError::Socket {
        path: path.into(),
        source: e,
    };
    let me = euid();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    prepare_dir(dir, access, me)?;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if SeqPacket::connect(path).is_ok() {
                return Err(MgrError::AlreadyRunning(path.into()));
            }
            if m.uid() != me {
                return Err(MgrError::NotOurSocket {
                    path: path.into(),
                    what: "a socket of this user",
                });
            }
            std::fs::remove_file(path).map_err(failed)?;
        }
        Ok(_) => {
            return Err(MgrError::NotOurSocket {
                path: path.into(),
                what: "a socket",
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed(e)),
    }
    // Bound under a temporary name, given its modes, then renamed into place: the path
    // never shows a socket with the umask's modes (connecting follows the inode, so
    // the listener keeps working under its final name).
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let fresh = dir.join(format!(".{name}.{}.new", std::process::id()));
    if std::fs::symlink_metadata(&fresh).is_ok_and(|m| m.file_type().is_socket() && m.uid() == me) {
        let _ = std::fs::remove_file(&fresh);
    }
    let sock = SeqPacket::listen(&fresh).map_err(failed)?;
    let set = || -> io::Result<()> {
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(access.socket_mode()))?;
        if let Some(g) = access.group {
            std::os::unix::fs::chown(&fresh, None, Some(g))?;
        }
        std::fs::rename(&fresh, path)
    };
    if let Err(e) = set() {
        let _ = std::fs::remove_file(&fresh);
        return Err(failed(e));
    }
    let m = std::fs::symlink_metadata(path).map_err(failed)?;
    Ok(Listener {
        sock,
        access: access.clone(),
        me,
        refused: 0,
        reports: Vec::new(),
        path: path.into(),
        file: (m.dev(), m.ino()),
    })
}

/// Create the socket's directory (mode and group from `access`), or check that an
/// existing one is safe: a directory, owned by `me` or root, writable by no one else.
fn prepare_dir(dir: &Path, access: &SocketAccess, me: u32) -> Result<(), MgrError> {
    let failed = |e| MgrError::Socket {
        path: dir.into(),
        source: e,
    };
    let refuse = |why: String| MgrError::SocketDir { path: dir.into(), why };
    let create = || std::fs::DirBuilder::new().mode(access.dir_mode()).create(dir);
    let mut made = create();
    if let Err(e) = &made
        && e.kind() == io::ErrorKind::NotFound
        && let Some(up) = dir.parent()
    {
        // Missing ancestors get the usual modes; only the last level is ours to guard.
        std::fs::create_dir_all(up).map_err(failed)?;
        made = create();
    }
    match made {
        Ok(()) => {
            // The umask may have taken bits away (a group's, say).
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(access.dir_mode())).map_err(failed)?;
            if let Some(g) = access.group {
                std::os::unix::fs::chown(dir, None, Some(g)).map_err(failed)?;
            }
            return Ok(());
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(failed(e)),
    }
    let link = std::fs::symlink_metadata(dir).map_err(failed)?;
    if link.file_type().is_symlink() && link.uid() != me && link.uid() != 0 {
        return Err(refuse(format!(
            "it is a symbolic link owned by uid {}, not by this user (uid {me}) or root",
            link.uid()
        )));
    }
    let m = std::fs::metadata(dir).map_err(failed)?;
    if !m.is_dir() {
        return Err(refuse("it is not a directory".into()));
    }
    if m.uid() != me && m.uid() != 0 {
        return Err(refuse(format!(
            "it is owned by uid {}, not by this user (uid {me}) or root: another user may have \
             created it to receive this manager's NFs (remove it, or use another --socket)",
            m.uid()
        )));
    }
    if m.mode() & 0o022 != 0 {
        return Err(refuse(format!(
            "its mode {:04o} lets group or others write to it, so they could replace the socket \
             (chmod go-w it, or use a directory of your own for --socket)",
            m.mode() & 0o7777
        )));
    }
    // A grant that the directory makes void would fail only when an NF tries.
    let others_search = m.mode() & 0o001 != 0;
    if let Some(g) = access.group
        && !others_search
        && (m.gid() != g || m.mode() & 0o010 == 0)
    {
        return Err(refuse(format!(
            "group {g} cannot reach a socket in it (group {}, mode {:04o}): chgrp {g} and chmod g+x it, \
             or remove it and the manager creates it",
            m.gid(),
            m.mode() & 0o7777
        )));
    }
    if !access.uids.is_empty() && !others_search {
        return Err(refuse(format!(
            "the users granted by --socket-uid cannot reach a socket in it (mode {:04o}): chmod o+x it, \
             or remove it and the manager creates it",
            m.mode() & 0o7777
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("onvm-sock-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_new_directory_is_0700_and_the_socket_0600_whatever_the_umask() {
        let d = tmp("modes");
        let path = d.join("run/onvm.sock");
        let l = bind_socket(&path, &SocketAccess::default()).unwrap();
        assert_eq!(mode(&d.join("run")), 0o700);
        assert_eq!(mode(&path), 0o600);
        drop(l);
        assert!(!path.exists(), "the socket goes with its listener");
        // A stale socket of ours (left by a killed manager) is replaced.
        let stale = SeqPacket::listen(&path).unwrap();
        drop(stale);
        let again = bind_socket(&path, &SocketAccess::default());
        assert!(again.is_ok(), "{again:?}");
        // What another manager put at the path since is not removed with ours.
        let mine = again.unwrap();
        std::fs::remove_file(&path).unwrap();
        let theirs = SeqPacket::listen(&path).unwrap();
        drop(mine);
        assert!(path.exists(), "another manager's socket was removed");
        drop(theirs);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_live_socket_is_not_taken_over() {
        let d = tmp("live");
        let path = d.join("onvm.sock");
        let _l = bind_socket(&path, &SocketAccess::default()).unwrap();
        let e = bind_socket(&path, &SocketAccess::default()).unwrap_err();
        assert!(matches!(e, MgrError::AlreadyRunning(_)), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn what_is_not_a_socket_is_refused_and_left_intact() {
        let d = tmp("file");
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("precious.txt");
        std::fs::write(&path, "keep me").unwrap();
        let e = bind_socket(&path, &SocketAccess::default()).unwrap_err();
        assert!(e.to_string().contains("is not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_to_is_refused() {
        let d = tmp("loose");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = bind_socket(&d.join("onvm.sock"), &SocketAccess::default()).unwrap_err();
        assert!(e.to_string().contains("lets group or others write"), "{e}");
        assert!(!d.join("onvm.sock").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_existing_directory_that_would_void_a_grant_is_refused() {
        let d = tmp("void");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let gid = std::fs::metadata(&d).unwrap().gid();
        let group = SocketAccess {
            group: Some(gid),
            uids: Vec::new(),
        };
        let e = bind_socket(&d.join("onvm.sock"), &group).unwrap_err();
        assert!(e.to_string().contains("cannot reach a socket in it"), "{e}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
        let ok = bind_socket(&d.join("onvm.sock"), &group);
        assert!(ok.is_ok(), "{ok:?}");
        drop(ok);
        let users = SocketAccess {
            group: None,
            uids: vec![4242],
        };
        let e = bind_socket(&d.join("onvm.sock"), &users).unwrap_err();
        assert!(e.to_string().contains("--socket-uid cannot reach"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// Connect `n` times to `path` as a peer `l` refuses: as root, from a thread that
    /// has dropped to uid 65534 (credentials are per thread for the kernel, and
    /// `SO_PEERCRED` records the connecting thread's); otherwise as ourselves, with the
    /// listener told that its user is another.
    fn connect_refused(l: &mut Listener, path: &Path, n: usize) -> Vec<SeqPacket> {
        if l.me != 0 {
            l.me += 1;
            return (0..n).map(|_| SeqPacket::connect(path).unwrap()).collect();
        }
        // The dropped thread must be able to reach the socket.
        let dir = path.parent().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let nobody = rustix::process::Uid::from_raw(65534);
            rustix::thread::set_thread_res_uid(nobody, nobody, nobody).unwrap();
            (0..n).map(|_| SeqPacket::connect(&path).unwrap()).collect()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn each_accept_takes_one_connection_refused_or_not() {
        let d = tmp("flood");
        let path = d.join("onvm.sock");
        let mut l = bind_socket(&path, &SocketAccess::default()).unwrap();
        let peers = connect_refused(&mut l, &path, 40);
        // One call, one connection: a flood of refused peers cannot make one call (and
        // so one control tick) do unbounded work.
        assert!(matches!(l.accept().unwrap(), Accepted::Refused));
        assert_eq!(l.refused, 1);
        let mut calls = 1;
        loop {
            match l.accept().unwrap() {
                Accepted::Refused => calls += 1,
                Accepted::Empty => break,
                Accepted::Allowed(_) => panic!("a refused peer was allowed"),
            }
        }
        assert_eq!((calls, l.refused), (40, 40));
        // Reported: the first ten, then each power of two (16, 32).
        assert_eq!(l.refusals().count(), 12);
        drop(peers);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_peer_check_allows_the_owner_root_granted_uids_and_the_group() {
        let none = SocketAccess::default();
        assert!(none.allows(1000, 1000, 1000, Vec::new));
        assert!(none.allows(1000, 0, 0, Vec::new));
        assert!(!none.allows(1000, 1001, 1000, || vec![1000]));
        let grant = SocketAccess {
            group: Some(50),
            uids: vec![1002],
        };
        assert!(grant.allows(0, 1002, 1002, Vec::new));
        assert!(grant.allows(0, 1001, 50, Vec::new));
        assert!(grant.allows(0, 1001, 1001, || vec![7, 50]));
        assert!(!grant.allows(0, 1001, 1001, || vec![7]));
        assert_eq!((grant.dir_mode(), grant.socket_mode()), (0o751, 0o666));
        let group = SocketAccess {
            group: Some(50),
            uids: Vec::new(),
        };
        assert_eq!((group.dir_mode(), group.socket_mode()), (0o750, 0o660));
    }
}
