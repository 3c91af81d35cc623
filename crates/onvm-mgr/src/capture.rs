//! Capture at any edge: the packets received or sent by a port, or taken or handed on by
//! an NF, copied as they pass the switch while traffic flows.
//!
//! A [`Tap`] names a [`Point`] and where the copies go (a bounded channel read by the
//! HTTP endpoint's thread, which writes them as pcap). The switch looks at its taps once
//! per burst at each point (`Taps::on`: a length check when there are none), so packets
//! nobody captures are neither copied nor delayed. A copy that finds the channel full is
//! not made (counted as missed, the packet goes on): capturing never drops or holds a
//! packet, and no buffer leaves the pool's accounting.
//!
//! An NF's packets pass the switch only when no direct NF→NF ring carries them, so while
//! an NF is tapped the switch opens no direct edge to or from it (and closes those there
//! are); they form again when the capture ends.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio::sync::mpsc;

/// Where packets are copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// Received on a port.
    PortRx(u16),
    /// Sent out of a port.
    PortTx(u16),
    /// Given to an NF instance (enqueued to its rx ring).
    NfRx(u16),
    /// Handed on by an NF instance.
    NfTx(u16),
}

impl Point {
    /// The NF instance this point is at, if any.
    pub fn instance(self) -> Option<u16> {
        match self {
            Point::NfRx(id) | Point::NfTx(id) => Some(id),
            _ => None,
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Point::PortRx(p) => write!(f, "port:{p} rx"),
            Point::PortTx(p) => write!(f, "port:{p} tx"),
            Point::NfRx(i) => write!(f, "nf:{i} rx"),
            Point::NfTx(i) => write!(f, "nf:{i} tx"),
        }
    }
}

/// `port:N` or `nf:ID`, and `rx` or `tx`, as a capture request names a point.
pub fn parse_point(at: &str, dir: &str) -> Result<Point, String> {
    let rx = match dir {
        "rx" => true,
        "tx" => false,
        d => return Err(format!("direction {d:?}: rx or tx")),
    };
    let num = |s: &str| s.parse::<u16>().map_err(|_| format!("{at:?}: {s:?} is not a number"));
    match at.split_once(':') {
        Some(("port", n)) => Ok(if rx {
            Point::PortRx(num(n)?)
        } else {
            Point::PortTx(num(n)?)
        }),
        Some(("nf", n)) => {
            let id = num(n)?;
            if id == 0 {
                return Err(format!("{at:?}: NF instances are numbered from 1"));
            }
            Ok(if rx { Point::NfRx(id) } else { Point::NfTx(id) })
        }
        _ => Err(format!("capture point {at:?}: port:N or nf:ID")),
    }
}

impl FromStr for Point {
    type Err = String;

    /// `port:N:rx`, `nf:ID:tx`, ...
    fn from_str(s: &str) -> Result<Point, String> {
        let (at, dir) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("{s:?}: port:N:rx|tx or nf:ID:rx|tx"))?;
        parse_point(at, dir)
    }
}

/// One copied packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Wall-clock time of the copy, since the Unix epoch.
    pub time: Duration,
    /// The packet's length.
    pub len: u32,
    /// Its first `snaplen` bytes.
    pub data: Vec<u8>,
}

/// A capture in progress.
#[derive(Debug)]
pub struct Tap {
    pub point: Point,
    /// Packets still to copy (`u64::MAX`: until the reader goes).
    pub remaining: u64,
    /// Bytes copied of each packet at most.
    pub snaplen: usize,
    pub to: mpsc::Sender<Record>,
    /// Copies not made because the reader was behind.
    pub missed: u64,
}

/// A tap that ended (at [`Taps::copy`] or [`Taps::prune`]); the switch notes them at its
/// control tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    pub point: Point,
    pub missed: u64,
    /// The reader went away (rather than the count being reached).
    pub reader_gone: bool,
}

/// A writer that keeps what is written until taken: pcap records are put together in
/// one and sent (or written to a file) whole, by the HTTP endpoint and `onvm capture`.
#[derive(Clone, Debug, Default)]
pub struct Staged(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Staged {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Staged {
    /// What was written since the last call.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The switch's taps.
#[derive(Debug, Default)]
pub struct Taps {
    taps: Vec<Tap>,
    ended: Vec<Ended>,
}

impl Taps {
    /// Whether any tap is at `p`: what the switch checks per burst.
    #[inline(always)]
    pub fn on(&self, p: Point) -> bool {
        !self.taps.is_empty() && self.taps.iter().any(|t| t.point == p)
    }

    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    pub fn add(&mut self, t: Tap) {
        self.taps.push(t);
    }

    /// Whether some tap is at NF instance `id` (no direct edge may bypass the switch).
    pub fn at_instance(&self, id: u16) -> bool {
        self.taps.iter().any(|t| t.point.instance() == Some(id))
    }

    /// Copy the packets of `bufs`, passing `p` now, to the taps at `p` (`on(p)` said
    /// some are). A buffer whose metadata is unusable is skipped: it is named where it
    /// is routed.
    #[inline(never)]
    pub fn copy_bufs(&mut self, p: Point, holder: &onvm_shm::Holder, bufs: &mut [onvm_shm::Buf]) {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        for b in bufs.iter_mut() {
            if let Ok(pkt) = holder.packet(b) {
                self.copy(p, pkt.data(), time);
            }
        }
    }

    /// Copy `frame`, passing `p` at `time`, to the taps at `p`. Taps that end (count
    /// reached or reader gone) are removed and kept for [`Taps::take_ended`].
    pub fn copy(&mut self, p: Point, frame: &[u8], time: Duration) {
        let ended = &mut self.ended;
        self.taps.retain_mut(|t| {
            if t.point != p {
                return true;
            }
            let rec = Record {
                time,
                len: frame.len() as u32,
                data: frame[..frame.len().min(t.snaplen)].to_vec(),
            };
            let reader_gone = match t.to.try_send(rec) {
                Ok(()) => {
                    t.remaining -= 1;
                    false
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    t.missed += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => true,
            };
            if reader_gone || t.remaining == 0 {
                ended.push(Ended {
                    point: p,
                    missed: t.missed,
                    reader_gone,
                });
                return false;
            }
            true
        });
    }

    /// The taps that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<Ended> {
        std::mem::take(&mut self.ended)
    }

    /// Remove taps whose reader went away while nothing passed their point.
    pub fn prune(&mut self) {
        let ended = &mut self.ended;
        self.taps.retain(|t| {
            let gone = t.to.is_closed();
            if gone {
                ended.push(Ended {
                    point: t.point,
                    missed: t.missed,
                    reader_gone: true,
                });
            }
            !gone
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(point: Point, remaining: u64, room: usize) -> (Tap, mpsc::Receiver<Record>) {
        let (to, rx) = mpsc::channel(room);
        (
            Tap {
                point,
                remaining,
                snaplen: 4,
                to,
                missed: 0,
            },
            rx,
        )
    }

    #[test]
    fn points_parse_from_what_a_request_says() {
        assert_eq!("port:1:rx".parse(), Ok(Point::PortRx(1)));
        assert_eq!("nf:3:tx".parse(), Ok(Point::NfTx(3)));
        assert!("nf:0:rx".parse::<Point>().is_err());
        assert!("port:x:rx".parse::<Point>().unwrap_err().contains("not a number"));
        assert!("port:1:up".parse::<Point>().unwrap_err().contains("rx or tx"));
        assert!("eth0:rx".parse::<Point>().unwrap_err().contains("port:N or nf:ID"));
    }

    #[test]
    fn copies_stop_at_the_count_and_a_full_reader_misses_copies_not_packets() {
        let mut taps = Taps::default();
        assert!(!taps.on(Point::PortRx(0)));
        let (t, mut rx) = tap(Point::PortRx(0), 3, 2);
        taps.add(t);
        assert!(taps.on(Point::PortRx(0)) && !taps.on(Point::PortTx(0)));
        let t0 = Duration::from_secs(1);
        let frames: Vec<Vec<u8>> = (0..2u8).map(|i| vec![i; 10]).collect();
        for f in &frames {
            taps.copy(Point::PortRx(0), f, t0);
        }
        taps.copy(Point::PortTx(0), &frames[0], t0);
        // The channel holds 2: the third copy is missed, and the tap goes on.
        taps.copy(Point::PortRx(0), &frames[0], t0);
        assert!(taps.take_ended().is_empty());
        let a = rx.try_recv().unwrap();
        assert_eq!(
            (a.len, a.data.as_slice()),
            (10, &[0u8; 4][..]),
            "snaplen bytes, true length"
        );
        rx.try_recv().unwrap();
        for f in &frames {
            taps.copy(Point::PortRx(0), f, t0);
        }
        let ended = taps.take_ended();
        assert_eq!(
            ended,
            [Ended {
                point: Point::PortRx(0),
                missed: 1,
                reader_gone: false
            }]
        );
        assert!(taps.is_empty());
    }

    #[test]
    fn a_reader_that_goes_ends_its_tap() {
        let mut taps = Taps::default();
        let (t, rx) = tap(Point::NfTx(2), u64::MAX, 8);
        taps.add(t);
        assert!(taps.at_instance(2) && !taps.at_instance(1));
        drop(rx);
        taps.prune();
        let ended = taps.take_ended();
        assert!(ended[0].reader_gone && taps.is_empty());
    }
}
