//! The control socket's file: where it lives, and taking it over from a dead manager
//! (never from a live one).

use std::path::Path;

use onvm_shm::seqpacket::SeqPacket;

use crate::error::MgrError;

/// Listen on `path`, refusing to take over a live manager's socket and replacing a
/// stale one (left by a manager that was killed).
pub(super) fn bind_socket(path: &Path) -> Result<SeqPacket, MgrError> {
    let failed = |e| MgrError::Socket {
        path: path.into(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    if path.exists() {
        if SeqPacket::connect(path).is_ok() {
            return Err(MgrError::AlreadyRunning(path.into()));
        }
        let _ = std::fs::remove_file(path);
    }
    SeqPacket::listen(path).map_err(failed)
}
