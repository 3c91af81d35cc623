//! Capture-file ports: replay a classic pcap file (`pcap:`), write one (`pcapout:`).
//!
//! They make the platform testable end to end with files: a known input, and an output
//! that any tool (tcpdump, Wireshark, scapy) can check.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use onvm_proto::port::{PcapInSpec, PcapOutSpec, PcapTiming, PortSpec};
use onvm_shm::{Buf, Pool};
use pcap_file::pcap::{PcapHeader, PcapParser};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::{BadBuffers, Port, PortError, PortStats, fill, now_ns, swallow};

/// First bytes of a pcapng file (section header block type), to name the format in
/// the error: it is the usual reason a capture is "not pcap".
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Length of the classic pcap file header.
const FILE_HEADER_LEN: usize = 24;

/// Length of a record's header.
const RECORD_HEADER_LEN: usize = 16;

/// How much of the file is read at a time; the buffer grows past it only for a record
/// longer than this, up to [`MAX_RECORD`].
const READ_BUF: usize = 64 << 10;

/// The longest record the buffer ever holds: its header and [`SNAPLEN`] bytes.
const MAX_RECORD: usize = RECORD_HEADER_LEN + SNAPLEN as usize;

/// One packet's record header, as read from the file.
#[derive(Debug, Clone, Copy)]
struct Rec {
    /// Bytes stored in the file (`incl_len`), at most [`SNAPLEN`].
    len: usize,
    /// Capture time relative to the file's first packet.
    at_ns: u64,
}

/// What the capture has next.
#[derive(Debug)]
enum Next {
    /// A record, its bytes copied out.
    Rec(Rec),
    /// Nothing yet: a FIFO's writer has not written the rest (never for a regular file).
    NotYet,
    /// The end of the file (a FIFO: its writer closed it).
    End,
}

/// The records of an open capture, parsed by pcap-file's [`PcapParser`] (the header,
/// either byte order, micro- or nanosecond stamps) out of a buffer of ours.
///
/// Memory stays bounded whatever the file holds or claims: the buffer is [`READ_BUF`]
/// and grows only to fit one record of at most [`SNAPLEN`] bytes. A record that says
/// it stores more — more than libpcap ever writes, and what garbage usually claims — is
/// an error, not an allocation.
///
/// The buffer is ours rather than pcap-file's `PcapReader`'s because reading must be
/// resumable: a FIFO is read without blocking (the switch loop polls this port, and a
/// slow writer must not stop it), so a read may find half a record; here the half stays
/// in the buffer and the next poll parses it whole. `PcapReader` cannot resume after a
/// `WouldBlock` (its buffer has already been moved when the read fails) and takes 8 MB
/// per port; a reader thread feeding a channel could use it, but would add a thread that
/// may sit blocked in `read` after the port is gone, and a second bound (the channel) to
/// get right, for what a buffer and a non-blocking descriptor do on the one thread.
#[derive(Debug)]
struct Records {
    src: File,
    parser: PcapParser,
    /// Bytes read, not yet parsed: `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The file has no more bytes (a FIFO: its writer closed it).
    eof: bool,
    frac_ns: u64,
    /// Capture time of the file's first packet (the same on every pass).
    t0: Option<u64>,
    /// Records read in this pass (for errors: "packet N").
    read: u64,
}

impl Records {
    /// The records of `src`, whose first bytes are its pcap header; the header is read
    /// with blocking reads (at open, before the switch loop runs). The error is an I/O
    /// error or why the file is no pcap.
    fn open(mut src: File) -> Result<Records, Result<std::io::Error, String>> {
        let mut buf = vec![0; READ_BUF];
        let mut end = 0;
        while end < FILE_HEADER_LEN {
            match src.read(&mut buf[end..FILE_HEADER_LEN]) {
                Ok(0) => break,
                Ok(n) => end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Ok(e)),
            }
        }
        let head = &buf[..end];
        let parser = match PcapParser::new(head) {
            Ok((_, p)) => p,
            Err(e) => {
                return Err(Err(match e {
                    _ if head.starts_with(&PCAPNG_MAGIC) => {
                        "it is pcapng, only classic pcap is read (convert with `editcap -F pcap`)".to_string()
                    }
                    PcapError::IncompleteBuffer => format!("{end} bytes is too short for a pcap header"),
                    PcapError::InvalidField(_) => "no pcap magic number at the start".to_string(),
                    e => e.to_string(),
                }));
            }
        };
        let frac_ns = match parser.header().ts_resolution {
            TsResolution::MicroSecond => 1_000,
            TsResolution::NanoSecond => 1,
        };
        Ok(Records {
            src,
            parser,
            buf,
            start: FILE_HEADER_LEN,
            end,
            eof: false,
            frac_ns,
            t0: None,
            read: 0,
        })
    }

    /// The next record, with its bytes in `data` (reused: never more than [`SNAPLEN`]).
    fn next(&mut self, data: &mut Vec<u8>) -> Result<Next, String> {
        let n = self.read + 1;
        loop {
            let avail = &self.buf[self.start..self.end];
            match self.parser.next_raw_packet(avail) {
                Ok((rest, raw)) => {
                    // `orig_len` is not checked: real captures (offloaded super-packets)
                    // have it over the snaplen, which does no harm here. (That is why the
                    // raw record is taken, not pcap-file's checked `PcapPacket`.)
                    if raw.incl_len > SNAPLEN {
                        return Err(too_long(n, raw.incl_len));
                    }
                    data.clear();
                    data.extend_from_slice(&raw.data);
                    let ts = u64::from(raw.ts_sec) * 1_000_000_000 + u64::from(raw.ts_frac) * self.frac_ns;
                    self.start = self.end - rest.len();
                    let t0 = *self.t0.get_or_insert(ts);
                    self.read = n;
                    return Ok(Next::Rec(Rec {
                        len: data.len(),
                        // A packet stamped before the first one (captures are not always
                        // sorted) is due at once.
                        at_ns: ts.saturating_sub(t0),
                    }));
                }
                Err(PcapError::IncompleteBuffer) => {
                    // Refuse a record too long before reading (or making room for) it.
                    if avail.len() >= RECORD_HEADER_LEN {
                        let b = [avail[8], avail[9], avail[10], avail[11]];
                        let incl = match self.parser.header().endianness {
                            Endianness::Big => u32::from_be_bytes(b),
                            Endianness::Little => u32::from_le_bytes(b),
                        };
                        if incl > SNAPLEN {
                            return Err(too_long(n, incl));
                        }
                    }
                    if self.eof {
                        return match avail.len() {
                            0 => Ok(Next::End),
                            _ => Err(format!("packet {n} is cut short (truncated file?)")),
                        };
                    }
                    if !self.fill().map_err(|e| format!("packet {n}: {e}"))? {
                        return Ok(Next::NotYet);
                    }
                }
                Err(e) => return Err(format!("packet {n}: {e}")),
            }
        }
    }

    /// Read more into the buffer (moving what is unparsed to its start, growing it up
    /// to [`MAX_RECORD`] if one record needs it); false if a FIFO has nothing now.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            // Only when one record (of at most SNAPLEN bytes, checked) fills the buffer,
            // so it never needs more than MAX_RECORD.
            if self.buf.len() >= MAX_RECORD {
                return Err(std::io::Error::other("a record longer than any pcap record"));
            }
            self.buf.resize((self.buf.len() * 2).min(MAX_RECORD), 0);
        }
        loop {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
            return Ok(true);
        }
    }

    /// Back to the first record (a regular file).
    fn rewind(&mut self) -> std::io::Result<()> {
        self.src.seek(SeekFrom::Start(FILE_HEADER_LEN as u64))?;
        (self.start, self.end, self.eof, self.read) = (0, 0, false, 0);
        Ok(())
    }
}

fn too_long(n: u64, incl: u32) -> String {
    format!("packet {n} claims {incl} bytes, over the {SNAPLEN} a pcap record holds (corrupt file?)")
}

/// Replays a capture (`pcap:FILE[,loop][,timing=file]`).
///
/// The file is streamed: packets are read one at a time as they are sent, so memory
/// stays bounded on any file (a multi-gigabyte capture, `/dev/zero`, garbage). A
/// regular file is checked whole at open (its records walked, their bytes skipped), so
/// a bad or truncated file fails `onvm up` instead of a running port; other files (a
/// FIFO, a device) have only their header checked, cannot `loop`, and a bad record
/// found while streaming ends the port's input, counted in `errors`. Opening a FIFO
/// waits for its writer and its pcap header (before the switch loop runs); after that
/// it is read without blocking, a record at a time as its bytes come, and its writer
/// closing it ends the input as a regular file's end does.
///
/// With `timing=file`, packet `k` of a pass is due when the time since the pass started
/// (the first poll, or the wrap of the previous pass) reaches its capture time minus the
/// first packet's; a loop therefore has no gap between the last and the first packet.
/// Packets are never dropped for lack of buffers: they wait, and the timing slips.
#[derive(Debug)]
pub struct PcapInPort {
    name: String,
    port_no: u16,
    records: Records,
    /// Packets in the file, when it was checked at open (a regular file).
    count: Option<u64>,
    /// The record read but not yet sent (waiting for its time or a buffer); its bytes
    /// are in `data`.
    pending: Option<Rec>,
    data: Vec<u8>,
    /// Records taken from the file in this pass (sent or skipped).
    taken_in_pass: u64,
    /// No more input: the end of a file read once, a read error, or a barren loop.
    ended: bool,
    repeat: bool,
    timing: PcapTiming,
    pass_start: Option<Instant>,
    delivered_in_pass: u64,
    /// A whole pass delivered nothing (every packet too big): looping would never receive.
    barren: bool,
    stats: PortStats,
    bad: BadBuffers,
}

fn bad(spec: &str, path: &Path, reason: impl Into<String>) -> PortError {
    PortError::BadPcap {
        spec: spec.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl PcapInPort {
    /// Open the capture `spec` names and check it (see the type's doc).
    pub fn open(spec: &PcapInSpec, port_no: u16) -> Result<PcapInPort, PortError> {
        let name = PortSpec::PcapIn(spec.clone()).to_string();
        let path = &spec.path;
        let io = |source| PortError::Io {
            spec: name.clone(),
            what: "read",
            path: path.clone(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let regular = file.metadata().map_err(io)?.is_file();
        if spec.repeat && !regular {
            return Err(bad(
                &name,
                path,
                "`loop` needs a regular file (this one cannot be read again from the start)",
            ));
        }
        let mut records = Records::open(file).map_err(|e| match e {
            Ok(e) => io(e),
            Err(reason) => bad(&name, path, reason),
        })?;
        let header = records.parser.header();
        if header.datalink != DataLink::ETHERNET {
            return Err(bad(
                &name,
                path,
                format!(
                    "link type {:?}; only Ethernet captures can be replayed",
                    header.datalink
                ),
            ));
        }
        let count = if regular {
            let mut scratch = Vec::new();
            while let Next::Rec(_) = records.next(&mut scratch).map_err(|r| bad(&name, path, r))? {}
            let n = records.read;
            records.rewind().map_err(io)?;
            Some(n)
        } else {
            // Read from now on without blocking: a slow writer must not stop the
            // switch loop (see `Records`).
            let fl = rustix::fs::fcntl_getfl(&records.src).map_err(|e| io(e.into()))?;
            rustix::fs::fcntl_setfl(&records.src, fl | rustix::fs::OFlags::NONBLOCK).map_err(|e| io(e.into()))?;
            None
        };
        Ok(PcapInPort {
            name,
            port_no,
            records,
            count,
            pending: None,
            data: Vec::new(),
            taken_in_pass: 0,
            ended: count == Some(0),
            repeat: spec.repeat,
            timing: spec.timing,
            pass_start: None,
            delivered_in_pass: 0,
            barren: false,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
        })
    }

    /// Packets in the file, when it was checked whole at open (a regular file).
    pub fn packets(&self) -> Option<u64> {
        self.count
    }

    /// The next record of this pass into `pending`, starting a new pass at the end of
    /// the file when looping; false when there is no more input (yet: a FIFO's writer
    /// may not have written it).
    fn fetch(&mut self, elapsed: &mut u64) -> bool {
        loop {
            match self.records.next(&mut self.data) {
                Ok(Next::Rec(rec)) => {
                    self.pending = Some(rec);
                    self.taken_in_pass += 1;
                    return true;
                }
                // A FIFO's writer is slow: try again at the next poll.
                Ok(Next::NotYet) => return false,
                Ok(Next::End) if self.repeat && self.delivered_in_pass > 0 => {
                    if self.records.rewind().is_err() {
                        self.stats.errors += 1;
                        self.ended = true;
                        return false;
                    }
                    self.taken_in_pass = 0;
                    self.delivered_in_pass = 0;
                    self.pass_start = Some(Instant::now());
                    if self.timing == PcapTiming::File {
                        *elapsed = 0;
                    }
                }
                Ok(Next::End) => {
                    self.barren = self.repeat;
                    self.ended = true;
                    return false;
                }
                // The file changed under us, or a FIFO sent garbage: the input ends.
                Err(_) => {
                    self.stats.errors += 1;
                    self.ended = true;
                    return false;
                }
            }
        }
    }
}

impl Port for PcapInPort {
    fn name(&self) -> &str {
        &self.name
    }

    /// Packets longer than the buffers' data room are skipped and counted in `errors`
    /// (once per pass when looping).
    fn rx_burst(&mut self, pool: &mut Pool, out: &mut Vec<Buf>, max: usize) -> usize {
        if self.rx_done() {
            return 0;
        }
        let room = pool.region().layout().data_room as usize;
        let pass_start = *self.pass_start.get_or_insert_with(Instant::now);
        let mut elapsed = match self.timing {
            PcapTiming::File => pass_start.elapsed().as_nanos() as u64,
            PcapTiming::Fast => u64::MAX,
        };
        let now = now_ns();
        let mut n = 0;
        while n < max {
            if self.pending.is_none() {
                if !self.repeat && self.pass_done() {
                    self.ended = true;
                }
                if self.ended || !self.fetch(&mut elapsed) {
                    break;
                }
            }
            let Some(rec) = self.pending else { break };
            if rec.at_ns > elapsed {
                break;
            }
            if rec.len > room {
                self.stats.errors += 1;
                self.pending = None;
                continue;
            }
            let Some(mut buf) = pool.alloc() else { break };
            if let Err(e) = fill(pool, &mut buf, &self.data[..rec.len], self.port_no, now) {
                self.bad.count(&mut self.stats, "receiving into", buf.index(), &e);
                pool.free(buf);
                self.pending = None;
                continue;
            }
            out.push(buf);
            n += 1;
            self.pending = None;
            self.delivered_in_pass += 1;
            self.stats.rx_bytes += rec.len as u64;
        }
        // A file read once that has sent its last packet is done now, not after one
        // more read finds its end.
        if self.pending.is_none() && self.pass_done() && !self.repeat {
            self.ended = true;
        }
        self.stats.rx += n as u64;
        n
    }

    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        swallow(pool, bufs, &mut self.stats, &mut self.bad)
    }

    fn stats(&self) -> PortStats {
        self.stats
    }

    fn take_bad_buffers(&mut self, out: &mut Vec<String>) {
        self.bad.take(out);
    }

    fn rx_done(&self) -> bool {
        self.ended || self.barren
    }
}

impl PcapInPort {
    /// Every record the check at open counted has been taken in this pass (never true
    /// for a file that was not checked: its end is found by reading).
    fn pass_done(&self) -> bool {
        self.count.is_some_and(|c| self.taken_in_pass >= c)
    }
}

/// Largest packet stored whole (libpcap's `MAXIMUM_SNAPLEN`); longer ones (only
/// possible with a data room over 256 KiB) are cut, with their full length recorded.
const SNAPLEN: u32 = 262_144;

/// Writes every packet sent to it to a capture (`pcapout:FILE`): classic pcap,
/// little-endian, microsecond timestamps (what every reader accepts), Ethernet link
/// type, packets stamped with the wall clock at transmit.
///
/// Output is buffered; it reaches the file on [`Port::flush`] and when the port is
/// dropped (where an error can only be ignored, so call `flush` to see it). Records are
/// written here rather than by `pcap_file::PcapWriter` because that one gives no access
/// to its writer between packets, so it could not be flushed.
#[derive(Debug)]
pub struct PcapOutPort {
    name: String,
    out: BufWriter<File>,
    stats: PortStats,
    bad: BadBuffers,
    /// Packets still to write (`count=`); `None`: all.
    left: Option<u64>,
}

fn pcap_io(e: PcapError) -> std::io::Error {
    match e {
        PcapError::IoError(e) => e,
        e => std::io::Error::other(e),
    }
}

impl PcapOutPort {
    /// Create (or truncate) `path` and write the pcap header.
    pub fn create(path: &Path) -> Result<PcapOutPort, PortError> {
        let name = PortSpec::PcapOut(PcapOutSpec::new(path)).to_string();
        let io = |what: &'static str| {
            let spec = name.clone();
            move |source| PortError::Io {
                spec,
                what,
                path: PathBuf::from(path),
                source,
            }
        };
        let mut out = BufWriter::with_capacity(256 << 10, File::create(path).map_err(io("create"))?);
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::Little,
            ..Default::default()
        };
        header.write_to(&mut out).map_err(pcap_io).map_err(io("write"))?;
        // The header reaches the file now, so even a port that never sends leaves a
        // valid (empty) capture behind.
        out.flush().map_err(io("write"))?;
        Ok(PcapOutPort {
            name,
            out,
            stats: PortStats::default(),
            bad: BadBuffers::default(),
            left: None,
        })
    }

    /// Write only the first `count` packets (`None`: all); the rest are sent on (counted
    /// in `tx`) without being written, so a long run leaves a bounded file.
    pub fn with_count(mut self, count: Option<u64>) -> Self {
        if let Some(n) = count {
            self.name = format!("{},count={n}", self.name);
        }
        self.left = count;
        self
    }

    fn write(&mut self, wall: Duration, data: &[u8]) -> std::io::Result<()> {
        match &mut self.left {
            Some(0) => return Ok(()),
            Some(n) => *n -= 1,
            None => {}
        }
        let incl = data.len().min(SNAPLEN as usize);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&(wall.as_secs() as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&wall.subsec_micros().to_le_bytes());
        rec[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(&data[..incl])
    }
}

impl Port for PcapOutPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn rx_burst(&mut self, _pool: &mut Pool, _out: &mut Vec<Buf>, _max: usize) -> usize {
        0
    }

    /// A packet that cannot be written counts in `tx_drop` and `errors`.
    fn tx_burst(&mut self, pool: &mut Pool, bufs: &mut Vec<Buf>) -> usize {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let mut sent = 0;
        for mut b in bufs.drain(..) {
            let index = b.index();
            let written = match pool.holder().packet(&mut b) {
                Ok(p) => {
                    let len = p.len();
                    let w = self.write(wall, p.data());
                    if w.is_err() {
                        self.stats.errors += 1;
                    }
                    w.is_ok().then_some(len)
                }
                Err(e) => {
                    self.bad.count(&mut self.stats, "sending", index, &e);
                    None
                }
            };
            pool.free(b);
            match written {
                Some(len) => {
                    sent += 1;
                    self.stats.tx_bytes += len as u64;
                }
                None => self.stats.tx_drop += 1,
            }
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

    /// Nothing is ever received here.
    fn rx_done(&self) -> bool {
        true
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for PcapOutPort {
    fn drop(&mut self) {
        // BufWriter's own drop flushes too; doing it here makes the promise explicit.
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use pcap_file::pcap::{PcapPacket, PcapWriter};

    use super::*;
    use crate::generator::build_frame;
    use crate::{GenPort, testutil};
    use onvm_proto::port::GenSpec;

    /// Write a capture with the given (timestamp, bytes) packets.
    fn write_pcap(path: &Path, datalink: DataLink, pkts: &[(Duration, Vec<u8>)]) {
        let header = PcapHeader {
            datalink,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(File::create(path).unwrap(), header).unwrap();
        for (ts, data) in pkts {
            w.write_packet(&PcapPacket::new(*ts, data.len() as u32, data)).unwrap();
        }
    }

    fn frames(n: usize, len: usize) -> Vec<(Duration, Vec<u8>)> {
        (0..n)
            .map(|i| (Duration::from_secs(1000), vec![i as u8; len]))
            .collect()
    }

    fn open_in(path: &Path, repeat: bool, timing: PcapTiming) -> Result<PcapInPort, PortError> {
        PcapInPort::open(
            &PcapInSpec {
                path: path.to_path_buf(),
                repeat,
                timing,
            },
            7,
        )
    }

    /// Receive until `want` packets came or `polls` polls passed.
    fn drain(port: &mut dyn Port, pool: &mut Pool, want: usize, polls: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut out = Vec::new();
        for _ in 0..polls {
            port.rx_burst(pool, &mut out, 32);
            for b in &out {
                assert_eq!(pool.holder().meta(b).in_port(), 7);
            }
            got.extend(testutil::take(pool, &mut out));
            if got.len() >= want {
                break;
            }
        }
        got
    }

    #[test]
    fn packets_written_to_pcapout_read_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pcap");
        let (_r, mut pool) = testutil::pool(128, 2048);
        let mut sizes = GenPort::new(
            &GenSpec {
                frame_size: 64,
                flows: 3,
                rate_pps: None,
                count: None,
            },
            0,
            None,
        );
        let mut big = GenPort::new(
            &GenSpec {
                frame_size: 1518,
                flows: 2,
                rate_pps: None,
                count: None,
            },
            0,
            None,
        );
        let mut sent = Vec::new();
        let mut out = PcapOutPort::create(&path).unwrap();
        assert_eq!(out.name(), format!("pcapout:{}", path.display()));
        for _ in 0..3 {
            let mut bufs = Vec::new();
            sizes.rx_burst(&mut pool, &mut bufs, 20);
            big.rx_burst(&mut pool, &mut bufs, 5);
            for b in &mut bufs {
                sent.push(pool.holder().packet(b).unwrap().data().to_vec());
            }
            assert_eq!(out.tx_burst(&mut pool, &mut bufs), 25);
            assert!(bufs.is_empty());
        }
        out.flush().unwrap();
        let s = out.stats();
        assert_eq!((s.tx, s.tx_drop, s.errors), (75, 0, 0));
        assert_eq!(s.tx_bytes, sent.iter().map(|f| f.len() as u64).sum::<u64>());
        testutil::assert_whole(&pool);

        let mut port = open_in(&path, false, PcapTiming::Fast).unwrap();
        assert_eq!(port.packets(), Some(75));
        let got = drain(&mut port, &mut pool, 75, 10);
        assert_eq!(got, sent);
        assert!(port.rx_done());
        assert_eq!(port.stats().rx, 75);
        assert_eq!(port.stats().rx_bytes, s.tx_bytes);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn with_a_count_only_the_first_packets_are_written_and_all_are_sent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.pcap");
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut out = PcapOutPort::create(&path).unwrap().with_count(Some(4));
        assert!(out.name().ends_with(",count=4"), "{}", out.name());
        for round in 0..2 {
            let mut bufs = Vec::new();
            pool.alloc_burst(3, &mut bufs);
            for (i, b) in bufs.iter_mut().enumerate() {
                let f = build_frame(64, (round * 3 + i) as u16, 1);
                pool.holder().packet(b).unwrap().copy_from(&f).unwrap();
            }
            assert_eq!(out.tx_burst(&mut pool, &mut bufs), 3);
        }
        out.flush().unwrap();
        assert_eq!(out.stats().tx, 6);
        testutil::assert_whole(&pool);
        assert_eq!(open_in(&path, false, PcapTiming::Fast).unwrap().packets(), Some(4));
    }

    #[test]
    fn dropping_the_writer_flushes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.pcap");
        let (_r, mut pool) = testutil::pool(8, 2048);
        {
            let mut out = open_out(&path);
            let mut bufs = Vec::new();
            pool.alloc_burst(3, &mut bufs);
            for b in &mut bufs {
                pool.holder()
                    .packet(b)
                    .unwrap()
                    .copy_from(&build_frame(64, 0, 1))
                    .unwrap();
            }
            out.tx_burst(&mut pool, &mut bufs);
        }
        assert_eq!(open_in(&path, false, PcapTiming::Fast).unwrap().packets(), Some(3));
        testutil::assert_whole(&pool);
    }

    fn open_out(path: &Path) -> PcapOutPort {
        PcapOutPort::create(path).unwrap()
    }

    #[test]
    fn once_stops_and_loop_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("three.pcap");
        write_pcap(&path, DataLink::ETHERNET, &frames(3, 60));
        let (_r, mut pool) = testutil::pool(64, 2048);

        let mut once = open_in(&path, false, PcapTiming::Fast).unwrap();
        assert!(!once.rx_done());
        assert_eq!(drain(&mut once, &mut pool, 100, 3).len(), 3);
        assert!(once.rx_done());

        let mut looped = open_in(&path, true, PcapTiming::Fast).unwrap();
        let mut out = Vec::new();
        assert_eq!(looped.rx_burst(&mut pool, &mut out, 10), 10);
        let got = testutil::take(&mut pool, &mut out);
        let firsts: Vec<u8> = got.iter().map(|f| f[0]).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        assert!(!looped.rx_done());
        assert_eq!(looped.name(), format!("pcap:{},loop", path.display()));
        testutil::assert_whole(&pool);
    }

    #[test]
    fn an_empty_pool_makes_packets_wait_not_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pcap");
        write_pcap(&path, DataLink::ETHERNET, &frames(10, 60));
        let (_r, mut pool) = testutil::pool(4, 2048);
        let mut port = open_in(&path, false, PcapTiming::Fast).unwrap();
        let mut firsts = Vec::new();
        let mut out = Vec::new();
        while !port.rx_done() {
            assert!(port.rx_burst(&mut pool, &mut out, 32) <= 4);
            firsts.extend(testutil::take(&mut pool, &mut out).iter().map(|f| f[0]));
        }
        assert_eq!(firsts, (0..10).collect::<Vec<u8>>());
        assert_eq!(port.stats().rx_drop, 0);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn file_timing_keeps_the_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timed.pcap");
        let t = |ms| Duration::from_secs(5000) + Duration::from_millis(ms);
        let pkts = vec![(t(0), vec![0u8; 60]), (t(40), vec![1u8; 60]), (t(80), vec![2u8; 60])];
        write_pcap(&path, DataLink::ETHERNET, &pkts);
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut port = open_in(&path, false, PcapTiming::File).unwrap();
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut got = 0;
        while got < 3 {
            port.rx_burst(&mut pool, &mut out, 32);
            // The port's clock starts inside the first call, after t0: a packet may only
            // have come once its offset has passed on our (earlier-started) clock too.
            let el = t0.elapsed();
            for f in testutil::take(&mut pool, &mut out) {
                let due = Duration::from_millis(40 * f[0] as u64);
                assert!(el >= due, "packet {} came at {el:?}, due at {due:?}", f[0]);
                assert_eq!(f[0] as usize, got);
                got += 1;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "stuck");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(port.rx_done());
        testutil::assert_whole(&pool);
    }

    #[test]
    fn packets_bigger_than_the_buffers_are_skipped_as_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        let pkts = vec![(t0(), vec![1u8; 100]), (t0(), vec![2u8; 600]), (t0(), vec![3u8; 100])];
        write_pcap(&path, DataLink::ETHERNET, &pkts);
        let (_r, mut pool) = testutil::pool(16, 256);
        let mut port = open_in(&path, false, PcapTiming::Fast).unwrap();
        let got = drain(&mut port, &mut pool, 2, 3);
        assert_eq!(got.iter().map(|f| f[0]).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(port.stats().errors, 1);
        assert!(port.rx_done());

        // Looping over a file whose every packet is too big must not spin forever.
        let only_big = dir.path().join("only_big.pcap");
        write_pcap(&only_big, DataLink::ETHERNET, &[(t0(), vec![0u8; 600])]);
        let mut port = open_in(&only_big, true, PcapTiming::Fast).unwrap();
        assert_eq!(port.rx_burst(&mut pool, &mut Vec::new(), 32), 0);
        assert!(port.rx_done());
        testutil::assert_whole(&pool);
    }

    fn t0() -> Duration {
        Duration::from_secs(1)
    }

    #[test]
    fn bad_files_give_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let check = |path: &Path, want: &str| {
            let e = open_in(path, false, PcapTiming::Fast).unwrap_err().to_string();
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(e.contains(want), "{e}");
        };
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "this is not a capture, just some text").unwrap();
        check(&text, "not a usable pcap file: no pcap magic number");

        let short = dir.path().join("short.pcap");
        std::fs::write(&short, [0xd4, 0xc3, 0xb2, 0xa1]).unwrap();
        check(&short, "too short");

        let ng = dir.path().join("capture.pcapng");
        let mut bytes = PCAPNG_MAGIC.to_vec();
        bytes.resize(64, 0);
        std::fs::write(&ng, bytes).unwrap();
        check(&ng, "pcapng");

        check(&dir.path().join("missing.pcap"), "cannot read");

        let cut = dir.path().join("cut.pcap");
        write_pcap(&cut, DataLink::ETHERNET, &frames(2, 100));
        let len = std::fs::metadata(&cut).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&cut)
            .unwrap()
            .set_len(len - 10)
            .unwrap();
        check(&cut, "packet 2 is cut short");

        let sll = dir.path().join("sll.pcap");
        write_pcap(&sll, DataLink::LINUX_SLL, &frames(1, 60));
        check(&sll, "only Ethernet");

        let e = PcapOutPort::create(&dir.path().join("no/such/dir/o.pcap")).unwrap_err();
        assert!(e.to_string().contains("cannot create"), "{e}");
        assert!(e.to_string().contains("no/such/dir/o.pcap"), "{e}");
    }

    /// A little-endian microsecond pcap file header (Ethernet).
    fn header_bytes() -> Vec<u8> {
        let mut h = Vec::new();
        PcapHeader {
            datalink: DataLink::ETHERNET,
            endianness: Endianness::Little,
            ..Default::default()
        }
        .write_to(&mut h)
        .unwrap();
        h
    }

    /// A record header claiming `incl` stored bytes.
    fn record_header(incl: u32) -> Vec<u8> {
        [1u32, 0, incl, incl].iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn endless_or_lying_input_is_an_error_not_a_read_without_end() {
        // `/dev/zero` never ends: only its first 24 bytes are read, and they are no pcap.
        let e = open_in(Path::new("/dev/zero"), false, PcapTiming::Fast)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero") && e.contains("no pcap magic number"), "{e}");
        let e = open_in(Path::new("/dev/zero"), true, PcapTiming::Fast)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`loop` needs a regular file"), "{e}");

        // A record that claims 4 GiB is refused before anything is allocated for it.
        let dir = tempfile::tempdir().unwrap();
        let liar = dir.path().join("liar.pcap");
        let mut bytes = header_bytes();
        bytes.extend(record_header(60));
        bytes.extend([0u8; 60]);
        bytes.extend(record_header(u32::MAX));
        bytes.extend([0u8; 100]);
        std::fs::write(&liar, bytes).unwrap();
        let e = open_in(&liar, false, PcapTiming::Fast).unwrap_err().to_string();
        assert!(e.contains("packet 2 claims 4294967295 bytes"), "{e}");
    }

    #[test]
    fn a_long_capture_is_streamed_with_bounded_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.pcap");
        write_pcap(&path, DataLink::ETHERNET, &frames(5000, 1000));
        let (_r, mut pool) = testutil::pool(64, 2048);
        let mut port = open_in(&path, true, PcapTiming::Fast).unwrap();
        assert_eq!(port.packets(), Some(5000));
        let mut out = Vec::new();
        let mut got = 0;
        while got < 12_000 {
            got += port.rx_burst(&mut pool, &mut out, 32);
            testutil::take(&mut pool, &mut out);
            // One packet's bytes and the read buffer: nothing grows with the file.
            assert!(port.data.capacity() <= 2048, "{}", port.data.capacity());
            assert!(port.records.buf.len() <= READ_BUF);
        }
        assert_eq!(port.stats().errors, 0);
        assert!(!port.rx_done());
        testutil::assert_whole(&pool);
    }

    #[test]
    fn a_fifo_is_streamed_and_a_bad_record_in_it_ends_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in.fifo");
        mkfifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut bytes = header_bytes();
                for i in 0..3u8 {
                    bytes.extend(record_header(60));
                    bytes.extend([i; 60]);
                }
                bytes.extend(record_header(1 << 30));
                std::fs::write(&fifo, bytes).unwrap();
            })
        };
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut port = open_in(&fifo, false, PcapTiming::Fast).unwrap();
        assert_eq!(port.packets(), None, "a FIFO is not checked ahead");
        let got = drain(&mut port, &mut pool, 4, 10);
        writer.join().unwrap();
        assert_eq!(got.iter().map(|f| f[0]).collect::<Vec<_>>(), [0, 1, 2]);
        assert!(port.rx_done());
        assert_eq!(port.stats().errors, 1, "the record claiming 1 GiB");
        testutil::assert_whole(&pool);
    }

    #[test]
    fn both_byte_orders_and_both_stamp_resolutions_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let stamps = [
            Duration::new(1_700_000_000, 5_000),
            Duration::new(1_700_000_000, 1_505_000),
            Duration::new(1_700_000_002, 0),
        ];
        for endianness in [Endianness::Little, Endianness::Big] {
            for ts_resolution in [TsResolution::MicroSecond, TsResolution::NanoSecond] {
                let path = dir.path().join(format!("{endianness:?}-{ts_resolution:?}.pcap"));
                let header = PcapHeader {
                    datalink: DataLink::ETHERNET,
                    endianness,
                    ts_resolution,
                    ..Default::default()
                };
                let mut w = PcapWriter::with_header(File::create(&path).unwrap(), header).unwrap();
                for (i, ts) in stamps.iter().enumerate() {
                    let data = vec![i as u8; 60 + i];
                    w.write_packet(&PcapPacket::new(*ts, data.len() as u32, &data)).unwrap();
                }
                drop(w);
                let mut port = open_in(&path, false, PcapTiming::Fast).unwrap();
                assert_eq!(port.packets(), Some(3));
                let mut data = Vec::new();
                let mut got = Vec::new();
                while let Next::Rec(r) = port.records.next(&mut data).unwrap() {
                    assert_eq!(data, vec![got.len() as u8; 60 + got.len()]);
                    got.push(r.at_ns);
                }
                assert_eq!(got, [0, 1_500_000, 1_999_995_000], "{endianness:?} {ts_resolution:?}");
            }
        }
    }

    #[test]
    fn a_record_longer_than_the_read_buffer_grows_it_only_to_one_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.pcap");
        let big = vec![7u8; 200_000];
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            snaplen: SNAPLEN,
            ..Default::default()
        };
        let mut w = PcapWriter::with_header(File::create(&path).unwrap(), header).unwrap();
        for data in [&[1; 60][..], &big, &[2; 60]] {
            w.write_packet(&PcapPacket::new(t0(), data.len() as u32, data)).unwrap();
        }
        drop(w);
        let mut port = open_in(&path, false, PcapTiming::Fast).unwrap();
        assert_eq!(port.packets(), Some(3));
        let mut data = Vec::new();
        let mut lens = Vec::new();
        while let Next::Rec(r) = port.records.next(&mut data).unwrap() {
            lens.push(r.len);
            assert!(port.records.buf.len() <= MAX_RECORD);
        }
        assert_eq!(lens, [60, 200_000, 60]);
    }

    /// Make a FIFO at `path`.
    fn mkfifo(path: &Path) {
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_slow_fifo_writer_never_blocks_the_poll_and_its_close_ends_the_input() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("slow.fifo");
        mkfifo(&fifo);
        const PACKETS: u8 = 6;
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                f.write_all(&header_bytes()).unwrap();
                for i in 0..PACKETS {
                    let mut rec = record_header(60);
                    rec.extend([i; 60]);
                    // Half a record, a pause, the rest: the reader must keep the half.
                    let (a, b) = rec.split_at(30);
                    f.write_all(a).unwrap();
                    std::thread::sleep(Duration::from_millis(if i < 2 { 300 } else { 20 }));
                    f.write_all(b).unwrap();
                }
                // Dropping `f` closes the FIFO: the end of the input.
            })
        };
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut port = open_in(&fifo, false, PcapTiming::Fast).unwrap();
        let mut got = Vec::new();
        let mut out = Vec::new();
        let mut slowest = Duration::ZERO;
        let t = Instant::now();
        while !port.rx_done() {
            assert!(t.elapsed() < Duration::from_secs(30), "the input never ended");
            let call = Instant::now();
            port.rx_burst(&mut pool, &mut out, 32);
            slowest = slowest.max(call.elapsed());
            got.extend(testutil::take(&mut pool, &mut out));
            std::thread::sleep(Duration::from_millis(1));
        }
        writer.join().unwrap();
        // The writer sleeps 300 ms twice mid-record; a blocking read would wait as long.
        assert!(slowest < Duration::from_millis(50), "an rx_burst took {slowest:?}");
        assert!(t.elapsed() >= Duration::from_millis(600), "{:?}", t.elapsed());
        assert_eq!(
            got.iter().map(|f| f[0]).collect::<Vec<_>>(),
            (0..PACKETS).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|f| f.len() == 60));
        assert_eq!(port.stats().errors, 0);
        testutil::assert_whole(&pool);
    }

    #[test]
    fn a_fifo_closed_mid_record_is_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("cut.fifo");
        mkfifo(&fifo);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut bytes = header_bytes();
                bytes.extend(record_header(60));
                bytes.extend([1; 60]);
                bytes.extend(record_header(60));
                bytes.extend([2; 10]);
                std::fs::write(&fifo, bytes).unwrap();
            })
        };
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut port = open_in(&fifo, false, PcapTiming::Fast).unwrap();
        writer.join().unwrap();
        let got = drain(&mut port, &mut pool, 2, 10);
        assert_eq!(got.len(), 1);
        assert!(port.rx_done());
        assert_eq!(port.stats().errors, 1, "the record cut short");
        testutil::assert_whole(&pool);
    }

    #[test]
    fn an_empty_capture_is_done_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pcap");
        write_pcap(&path, DataLink::ETHERNET, &[]);
        let (_r, mut pool) = testutil::pool(8, 2048);
        let mut port = open_in(&path, true, PcapTiming::Fast).unwrap();
        assert!(port.rx_done());
        assert_eq!(port.rx_burst(&mut pool, &mut Vec::new(), 32), 0);
    }

    #[test]
    fn tcpdump_reads_the_output() {
        if !onvm_testkit::require_tool("tcpdump", "apt install tcpdump") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        let (_r, mut pool) = testutil::pool(16, 2048);
        let mut gen_port = GenPort::new(
            &GenSpec {
                frame_size: 128,
                flows: 4,
                rate_pps: None,
                count: None,
            },
            0,
            None,
        );
        let mut out = open_out(&path);
        let mut bufs = Vec::new();
        assert_eq!(gen_port.rx_burst(&mut pool, &mut bufs, 8), 8);
        out.tx_burst(&mut pool, &mut bufs);
        out.flush().unwrap();
        let r = std::process::Command::new("tcpdump")
            .args(["-r", path.to_str().unwrap(), "-nn"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 8, "{stdout}");
        assert!(lines[0].contains("198.18.0.1.1024 > 198.19.255.254.9: UDP"), "{stdout}");
        assert!(lines[3].contains("198.18.0.4.1024 >"), "{stdout}");
        testutil::assert_whole(&pool);
    }
}
