//! Control-channel messages between an NF and the manager.
//!
//! They travel over a Unix `SOCK_SEQPACKET` socket, one message per datagram, so there
//! is no framing: a datagram *is* a message, and a message that does not fill its
//! datagram exactly is malformed.
//!
//! The encoding is small and written by hand rather than derived, because it is an ABI
//! between separately built programs (an NF in a container may be older than the
//! manager): every byte is specified here, nothing depends on a serializer's version.
//!
//! ```text
//! message  = tag:u8 field*                  (tags 0x01.. NF->manager, 0x81.. manager->NF)
//! u16/u32  = little-endian
//! option   = 0:u8 | 1:u8 value
//! string   = len:u16 utf8-bytes[len]        (len <= a per-field maximum)
//! bytes    = len:u32 bytes[len]             (len <= MAX_MSG_PAYLOAD)
//! ```
//!
//! Decoding never panics and never trusts a length: every malformed input gives a
//! [`DecodeError`] that names the problem and the field (the tests feed random bytes).
//! The first thing an NF sends, [`Register`], carries [`ABI_VERSION`], so a manager
//! refuses an incompatible NF with [`RefuseReason::AbiMismatch`] instead of misreading it.

use std::fmt;
use std::ops::BitOr;

use thiserror::Error;

use crate::limits::{MAX_MSG_PAYLOAD, MAX_TAG_LEN};

/// The environment through which a launcher (`onvm up`) tells an NF where its
/// manager is and what it is: the control socket, and for an NF of one's own (which
/// gets no command-line flags from the launcher) its service ID, tag and core mode.
pub mod env {
    /// The manager's control socket.
    pub const SOCKET: &str = "ONVM_SOCKET";
    /// The config entry's `service` ID.
    pub const SERVICE: &str = "ONVM_SERVICE";
    /// The config entry's `name`.
    pub const TAG: &str = "ONVM_TAG";
    /// `1` when NFs share cores and sleep when idle (`shared_cores = true`), else `0`.
    pub const SHARED_CORE: &str = "ONVM_SHARED_CORE";
    /// The name of the container the NF runs in, for the manager's stats.
    pub const CONTAINER: &str = "ONVM_CONTAINER";
    /// The NF's CPU weight (cgroup v2's `cpu.weight` scale: 1..=10000, 100 = default).
    pub const WEIGHT: &str = "ONVM_WEIGHT";
}

/// Version of this protocol (and of the region layout it hands out). Bump on any change.
pub const ABI_VERSION: u32 = 6;

/// Upper bound of an encoded message, for sizing receive buffers.
pub const MAX_MESSAGE_LEN: usize = MAX_MSG_PAYLOAD + 16;

mod tag {
    pub const REGISTER: u8 = 0x01;
    pub const READY: u8 = 0x02;
    pub const STOPPING: u8 = 0x03;
    pub const NF_MSG: u8 = 0x04;
    pub const EDGE_RELEASED: u8 = 0x05;
    pub const COUNTERS: u8 = 0x06;
    pub const EDGE_SWITCHED: u8 = 0x07;
    pub const LEAVING: u8 = 0x08;
    pub const PORT_COUNTS: u8 = 0x09;

    pub const REGISTERED: u8 = 0x81;
    pub const REFUSED: u8 = 0x82;
    pub const STOP: u8 = 0x83;
    pub const MGR_MSG: u8 = 0x84;
    pub const EDGE_OUT: u8 = 0x85;
    pub const EDGE_IN: u8 = 0x86;
    pub const EDGE_CLOSED: u8 = 0x87;
    pub const LEFT: u8 = 0x88;
    pub const PORT_QUEUE: u8 = 0x89;
}

/// An NF's packet counters, as openNetVM's stats show them. The NF sends them a few
/// times a second and once more when it stops; each is monotonic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NfCounters {
    /// Packets the NF took from its rings.
    pub rx: u64,
    /// Packets the NF handed on (to the manager or straight to another NF).
    pub tx: u64,
    /// Packets it could not hand on because the ring was full (it dropped them).
    pub tx_drop: u64,
    /// Actions: out of a port.
    pub act_out: u64,
    /// Actions: to a service or instance.
    pub act_tonf: u64,
    /// Actions: drop.
    pub act_drop: u64,
    /// Actions: next hop.
    pub act_next: u64,
    /// Packets kept by the NF (openNetVM's `buf`).
    pub act_buffer: u64,
    /// Kept or allocated packets handed on later with `return_pkt` (openNetVM's `ret`).
    pub act_returned: u64,
    /// Fresh buffers taken from the alloc ring.
    pub allocated: u64,
    /// Times it slept on its doorbell (a shared-core NF with nothing to do).
    pub sleeps: u64,
    /// CPU time its thread used, in nanoseconds (the stats turn it into a CPU share).
    pub cpu_ns: u64,
}

impl NfCounters {
    const FIELDS: usize = 12;

    fn to_array(self) -> [u64; Self::FIELDS] {
        [
            self.rx,
            self.tx,
            self.tx_drop,
            self.act_out,
            self.act_tonf,
            self.act_drop,
            self.act_next,
            self.act_buffer,
            self.act_returned,
            self.allocated,
            self.sleeps,
            self.cpu_ns,
        ]
    }

    fn from_array(a: [u64; Self::FIELDS]) -> Self {
        let [
            rx,
            tx,
            tx_drop,
            act_out,
            act_tonf,
            act_drop,
            act_next,
            act_buffer,
            act_returned,
            allocated,
            sleeps,
            cpu_ns,
        ] = a;
        NfCounters {
            rx,
            tx,
            tx_drop,
            act_out,
            act_tonf,
            act_drop,
            act_next,
            act_buffer,
            act_returned,
            allocated,
            sleeps,
            cpu_ns,
        }
    }
}

/// Options an NF asks for when it registers.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RegisterFlags(u32);

impl RegisterFlags {
    /// No options.
    pub const NONE: RegisterFlags = RegisterFlags(0);
    /// Share a core with other NFs and sleep when idle (openNetVM `-s`).
    pub const SHARED_CORE: RegisterFlags = RegisterFlags(1 << 0);
    /// Use exactly the requested core (openNetVM `-m`).
    pub const MANUAL_CORE: RegisterFlags = RegisterFlags(1 << 1);
    const KNOWN: u32 = Self::SHARED_CORE.0 | Self::MANUAL_CORE.0;

    /// The raw bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Flags from raw bits; `None` if a bit is unknown (a newer NF asking for something
    /// this manager cannot do must not be half-served).
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits & !Self::KNOWN == 0).then_some(RegisterFlags(bits))
    }

    /// Whether all of `other`'s flags are set.
    pub fn contains(self, other: RegisterFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for RegisterFlags {
    type Output = RegisterFlags;
    fn bitor(self, rhs: Self) -> Self {
        RegisterFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for RegisterFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = Vec::new();
        if self.contains(Self::SHARED_CORE) {
            names.push("SHARED_CORE");
        }
        if self.contains(Self::MANUAL_CORE) {
            names.push("MANUAL_CORE");
        }
        write!(f, "RegisterFlags({})", names.join(" | "))
    }
}

/// An NF's registration request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// The NF library's [`ABI_VERSION`].
    pub abi_version: u32,
    /// Name shown in stats (at most [`MAX_TAG_LEN`] bytes).
    pub tag: String,
    /// Service it serves.
    pub service: u16,
    /// Instance ID it insists on (openNetVM `-n`); `None` = any free one.
    pub instance: Option<u16>,
    /// Core it asks for; `None` = the manager picks.
    pub core: Option<u16>,
    /// Instance ID of the parent when this is a child thread of a scaled NF.
    pub parent: Option<u16>,
    /// Options.
    pub flags: RegisterFlags,
}

/// Recipient of an NF-to-NF message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// The first instance of a service (as openNetVM delivers them).
    Service(u16),
    /// One instance.
    Instance(u16),
}

/// Messages from an NF to the manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NfMsg {
    /// First message on a connection.
    Register(Register),
    /// Setup is done: start sending packets.
    Ready,
    /// The NF is shutting down cleanly.
    Stopping,
    /// The NF was asked to stop (a signal: an operator, a scale-down) and wants to hand
    /// what was sent to it on first: the manager stops sending it packets, moves its
    /// flows to the other instances once it has handled what it holds, and answers
    /// [`MgrMsg::Left`]; the NF then empties its rings and stops.
    Leaving,
    /// A message for another NF, relayed by the manager.
    Msg {
        /// Recipient.
        to: Dest,
        /// Payload (at most [`MAX_MSG_PAYLOAD`] bytes).
        bytes: Vec<u8>,
    },
    /// The NF no longer touches this edge ring (answer to [`MgrMsg::EdgeClosed`]).
    EdgeReleased {
        /// The ring.
        ring: u32,
    },
    /// Answer to [`MgrMsg::EdgeOut`]: everything the NF sent the old way (through the
    /// manager) is in its tx ring, and from now on it writes to the edge. The manager
    /// moves those packets on, then tells the receiver ([`MgrMsg::EdgeIn`]), so a flow
    /// keeps its order across the switch.
    EdgeSwitched {
        /// The ring.
        ring: u32,
    },
    /// The NF's counters so far.
    Counters(NfCounters),
    /// What the NF received from and sent to the port queue it polls
    /// ([`MgrMsg::PortQueue`]), in all since it started; sent with its counters and
    /// whenever the queue is taken away, so each report's increase belongs to the
    /// ports it names.
    PortCounts(PortCounts),
}

/// A port queue an NF polls itself (`onvm mgr --nf-queues`): it receives `port`'s
/// frames of `frame_len` bytes (FCS excluded) into buffers of its own and sends its
/// `Next` out of `out`. Only ports that need no device and no kernel object can be
/// polled from an NF process (`null` ports now); the manager stops polling the port
/// while an NF does, and takes the queue back whenever the topology changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortQueue {
    /// The port received from.
    pub port: u16,
    /// Bytes of each frame received (FCS excluded).
    pub frame_len: u16,
    /// The port the NF's `Next` leaves by (a sink: what is sent is freed, counted).
    pub out: u16,
}

/// [`NfMsg::PortCounts`]: an NF's totals on the port queues it polled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PortCounts {
    /// The port it received from (the queue it polls, or last polled).
    pub port: u16,
    /// The port it sent to.
    pub out: u16,
    /// Frames received, in all.
    pub rx: u64,
    /// Their bytes (FCS excluded).
    pub rx_bytes: u64,
    /// Frames sent, in all.
    pub tx: u64,
    /// Their bytes.
    pub tx_bytes: u64,
}

/// Rings of a registered instance, as indices into the region's ring directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RingIds {
    /// Packets for the NF.
    pub rx: u32,
    /// Packets (and dropped buffers) from the NF to the manager.
    pub tx: u32,
    /// Fresh buffers the manager keeps topped up for the NF.
    pub alloc: u32,
    /// The manager's wake-up ring: its doorbell is where an idle manager sleeps, so an
    /// NF rings it after handing packets to the manager.
    pub wake: u32,
}

/// Successful registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// Instance ID assigned.
    pub instance: u16,
    /// Service ID (echoed).
    pub service: u16,
    /// Core to run on; `None` = unpinned.
    pub core: Option<u16>,
    /// The instance's rings.
    pub rings: RingIds,
    /// Buffers it may hold outside its rings (kept and allocated packets); the NF
    /// library refuses more (`nf-over-quota`).
    pub quota: u32,
}

/// Why the manager refused a registration (openNetVM's `NF_*` error states).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RefuseReason {
    /// The requested instance ID is in use (`NF_ID_CONFLICT`).
    #[error("instance ID {0} is already taken by a running NF")]
    InstanceTaken(u16),
    /// The requested instance ID does not exist.
    #[error("instance ID {instance} is out of range (valid: 1..{max})")]
    InstanceOutOfRange {
        /// Requested ID.
        instance: u16,
        /// Number of instance IDs.
        max: u16,
    },
    /// Every instance ID is in use (`NF_NO_IDS`).
    #[error("no free instance IDs: too many NFs are running")]
    NoFreeIds,
    /// The service ID does not exist (`NF_SERVICE_MAX`).
    #[error("service ID {service} is out of range (valid: 1..{max})")]
    ServiceOutOfRange {
        /// Requested service.
        service: u16,
        /// Number of service IDs.
        max: u16,
    },
    /// The service already has the most instances allowed (`NF_SERVICE_COUNT_MAX`).
    #[error("service {service} already has the maximum of {max} instances")]
    TooManyInstances {
        /// The service.
        service: u16,
        /// The limit.
        max: u16,
    },
    /// No core left to dedicate (`NF_NO_CORES` / `NF_NO_DEDICATED_CORES`).
    #[error("no free core for a dedicated NF (ask for a shared core, or stop an NF)")]
    NoFreeCore,
    /// The requested core does not exist or is not the manager's to give
    /// (`NF_CORE_OUT_OF_RANGE`).
    #[error("core {core} is not available to NFs (the manager manages {cores} core(s))")]
    CoreOutOfRange {
        /// Requested core.
        core: u16,
        /// Cores the manager manages.
        cores: u16,
    },
    /// The requested core is dedicated to another NF (`NF_CORE_BUSY`).
    #[error("core {0} is busy: another NF has it dedicated")]
    CoreBusy(u16),
    /// NF library and manager speak different protocol versions.
    #[error("ABI version mismatch: manager speaks {ours}, NF speaks {theirs}; rebuild the NF")]
    AbiMismatch {
        /// The manager's version.
        ours: u32,
        /// The NF's version.
        theirs: u32,
    },
}

/// Messages from the manager to an NF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgrMsg {
    /// Registration accepted (the region's memfd comes alongside, via `SCM_RIGHTS`).
    Registered(Registered),
    /// Registration refused; the manager closes the connection after it.
    Refused(RefuseReason),
    /// Stop now.
    Stop,
    /// Answer to [`NfMsg::Leaving`]: nothing more is sent to this NF (no edge into it
    /// is left, nothing queued for it); what is in its rx ring is the last.
    Left,
    /// A message from another NF.
    Msg {
        /// Sender's instance ID.
        from: u16,
        /// Payload.
        bytes: Vec<u8>,
    },
    /// Direct hand-off: enqueue packets bound for `service` (0 = the action `Next`)
    /// straight onto `ring`, whose consumer is `instance`, instead of via the manager.
    EdgeOut {
        /// Service the edge serves; 0 = the next hop of this NF's chain.
        service: u16,
        /// Instance at the other end; 0 = the manager, for packets that leave by a port
        /// (the edge implies their verdict, so none is written into the packet).
        instance: u16,
        /// The ring.
        ring: u32,
        /// The ring whose doorbell to ring after enqueueing (the receiver's rx ring,
        /// where a shared-core receiver sleeps, or the manager's wake-up ring); `None`
        /// when the receiver busy-polls.
        bell: Option<u32>,
    },
    /// Also poll `ring`: another NF hands packets to this one on it.
    EdgeIn {
        /// The ring.
        ring: u32,
    },
    /// Stop using `ring` (finish what is in it, when receiving) and answer
    /// [`NfMsg::EdgeReleased`].
    EdgeClosed {
        /// The ring.
        ring: u32,
    },
    /// Poll this port queue yourself (`Some`), or stop polling it (`None`; the NF then
    /// reports its [`NfMsg::PortCounts`] and gives back the buffers it kept for it).
    PortQueue(Option<PortQueue>),
}

/// A malformed control message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Zero-length datagram.
    #[error("empty message")]
    Empty,
    /// The first byte names no message of this direction.
    #[error("unknown message tag {0:#04x}")]
    UnknownTag(u8),
    /// The message ended inside a field.
    #[error("message truncated at field `{0}`")]
    Truncated(&'static str),
    /// A length prefix over the field's maximum.
    #[error("field `{field}` is {len} bytes long, over the maximum of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its announced length.
        len: usize,
        /// Its maximum.
        max: usize,
    },
    /// A string field that is not UTF-8.
    #[error("field `{0}` is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// An option's presence byte is neither 0 nor 1.
    #[error("field `{field}`: presence byte {byte:#04x} is neither 0 nor 1")]
    BadOption {
        /// The field.
        field: &'static str,
        /// The byte found.
        byte: u8,
    },
    /// A sub-kind byte (refuse reason, destination kind) with an unknown value.
    #[error("field `{field}`: unknown kind {value:#04x}")]
    UnknownKind {
        /// The field.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// Register flags with bits this side does not know.
    #[error("unknown register flag bits {0:#x}")]
    UnknownFlags(u32),
    /// Bytes left after a complete message.
    #[error("{0} unexpected byte(s) after the end of the message")]
    TrailingBytes(usize),
}

/// A message that cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EncodeError {
    /// A string or payload over its maximum length.
    #[error("field `{field}` is {len} bytes long, over the maximum of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Its maximum.
        max: usize,
    },
}

struct Writer(Vec<u8>);

impl Writer {
    fn new(tag: u8) -> Self {
        Writer(vec![tag])
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn opt_u16(&mut self, v: Option<u16>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.u16(v);
            }
        }
    }
    fn check(field: &'static str, len: usize, max: usize) -> Result<(), EncodeError> {
        if len > max {
            return Err(EncodeError::TooLong { field, len, max });
        }
        Ok(())
    }
    fn string(&mut self, field: &'static str, s: &str, max: usize) -> Result<(), EncodeError> {
        Self::check(field, s.len(), max)?;
        self.u16(s.len() as u16);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn bytes(&mut self, field: &'static str, b: &[u8]) -> Result<(), EncodeError> {
        Self::check(field, b.len(), MAX_MSG_PAYLOAD)?;
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        Ok(())
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, field)?);
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }
    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }
    fn opt_u16(&mut self, field: &'static str) -> Result<Option<u16>, DecodeError> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => self.u16(field).map(Some),
            byte => Err(DecodeError::BadOption { field, byte }),
        }
    }
    fn string(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let len = usize::from(self.u16(field)?);
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        let raw = self.take(len, field)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8(field))
    }
    fn bytes(&mut self, field: &'static str) -> Result<Vec<u8>, DecodeError> {
        let len = self.u32(field)? as usize;
        if len > MAX_MSG_PAYLOAD {
            return Err(DecodeError::TooLong {
                field,
                len,
                max: MAX_MSG_PAYLOAD,
            });
        }
        self.take(len, field).map(<[u8]>::to_vec)
    }
    fn finish<T>(self, v: T) -> Result<T, DecodeError> {
        match self.buf.len() {
            0 => Ok(v),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// Splits off the tag byte.
fn open(buf: &[u8]) -> Result<(u8, Reader<'_>), DecodeError> {
    match buf.split_first() {
        None => Err(DecodeError::Empty),
        Some((&t, rest)) => Ok((t, Reader { buf: rest })),
    }
}

impl NfMsg {
    /// Encodes the message as one datagram.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let w = match self {
            NfMsg::Register(r) => {
                let mut w = Writer::new(tag::REGISTER);
                w.u32(r.abi_version);
                w.string("tag", &r.tag, MAX_TAG_LEN)?;
                w.u16(r.service);
                w.opt_u16(r.instance);
                w.opt_u16(r.core);
                w.opt_u16(r.parent);
                w.u32(r.flags.bits());
                w
            }
            NfMsg::Ready => Writer::new(tag::READY),
            NfMsg::Stopping => Writer::new(tag::STOPPING),
            NfMsg::Leaving => Writer::new(tag::LEAVING),
            NfMsg::Msg { to, bytes } => {
                let mut w = Writer::new(tag::NF_MSG);
                match *to {
                    Dest::Service(s) => {
                        w.u8(0);
                        w.u16(s);
                    }
                    Dest::Instance(i) => {
                        w.u8(1);
                        w.u16(i);
                    }
                }
                w.bytes("bytes", bytes)?;
                w
            }
            NfMsg::EdgeReleased { ring } => {
                let mut w = Writer::new(tag::EDGE_RELEASED);
                w.u32(*ring);
                w
            }
            NfMsg::EdgeSwitched { ring } => {
                let mut w = Writer::new(tag::EDGE_SWITCHED);
                w.u32(*ring);
                w
            }
            NfMsg::Counters(c) => {
                let mut w = Writer::new(tag::COUNTERS);
                for v in c.to_array() {
                    w.u64(v);
                }
                w
            }
            NfMsg::PortCounts(c) => {
                let mut w = Writer::new(tag::PORT_COUNTS);
                w.u16(c.port);
                w.u16(c.out);
                for v in [c.rx, c.rx_bytes, c.tx, c.tx_bytes] {
                    w.u64(v);
                }
                w
            }
        };
        Ok(w.0)
    }

    /// Decodes one datagram.
    pub fn decode(buf: &[u8]) -> Result<NfMsg, DecodeError> {
        let (t, mut r) = open(buf)?;
        let msg = match t {
            tag::REGISTER => {
                // ABI version first, so any future layout can still be refused cleanly.
                let abi_version = r.u32("abi_version")?;
                let tag = r.string("tag", MAX_TAG_LEN)?;
                let service = r.u16("service")?;
                let instance = r.opt_u16("instance")?;
                let core = r.opt_u16("core")?;
                let parent = r.opt_u16("parent")?;
                let bits = r.u32("flags")?;
                let flags =
                    RegisterFlags::from_bits(bits).ok_or(DecodeError::UnknownFlags(bits & !RegisterFlags::KNOWN))?;
                NfMsg::Register(Register {
                    abi_version,
                    tag,
                    service,
                    instance,
                    core,
                    parent,
                    flags,
                })
            }
            tag::READY => NfMsg::Ready,
            tag::STOPPING => NfMsg::Stopping,
            tag::LEAVING => NfMsg::Leaving,
            tag::NF_MSG => {
                let to = match r.u8("to")? {
                    0 => Dest::Service(r.u16("to")?),
                    1 => Dest::Instance(r.u16("to")?),
                    value => return Err(DecodeError::UnknownKind { field: "to", value }),
                };
                NfMsg::Msg {
                    to,
                    bytes: r.bytes("bytes")?,
                }
            }
            tag::EDGE_RELEASED => NfMsg::EdgeReleased { ring: r.u32("ring")? },
            tag::EDGE_SWITCHED => NfMsg::EdgeSwitched { ring: r.u32("ring")? },
            tag::COUNTERS => {
                let mut a = [0u64; NfCounters::FIELDS];
                for v in &mut a {
                    *v = r.u64("counters")?;
                }
                NfMsg::Counters(NfCounters::from_array(a))
            }
            tag::PORT_COUNTS => NfMsg::PortCounts(PortCounts {
                port: r.u16("port")?,
                out: r.u16("out")?,
                rx: r.u64("rx")?,
                rx_bytes: r.u64("rx_bytes")?,
                tx: r.u64("tx")?,
                tx_bytes: r.u64("tx_bytes")?,
            }),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish(msg)
    }
}

mod reason {
    pub const INSTANCE_TAKEN: u8 = 1;
    pub const INSTANCE_OUT_OF_RANGE: u8 = 2;
    pub const NO_FREE_IDS: u8 = 3;
    pub const SERVICE_OUT_OF_RANGE: u8 = 4;
    pub const TOO_MANY_INSTANCES: u8 = 5;
    pub const NO_FREE_CORE: u8 = 6;
    pub const CORE_OUT_OF_RANGE: u8 = 7;
    pub const CORE_BUSY: u8 = 8;
    pub const ABI_MISMATCH: u8 = 9;
}

impl MgrMsg {
    /// Encodes the message as one datagram.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let w = match self {
            MgrMsg::Registered(r) => {
                let mut w = Writer::new(tag::REGISTERED);
                w.u16(r.instance);
                w.u16(r.service);
                w.opt_u16(r.core);
                w.u32(r.rings.rx);
                w.u32(r.rings.tx);
                w.u32(r.rings.alloc);
                w.u32(r.rings.wake);
                w.u32(r.quota);
                w
            }
            MgrMsg::Refused(why) => {
                let mut w = Writer::new(tag::REFUSED);
                match *why {
                    RefuseReason::InstanceTaken(i) => {
                        w.u8(reason::INSTANCE_TAKEN);
                        w.u16(i);
                    }
                    RefuseReason::InstanceOutOfRange { instance, max } => {
                        w.u8(reason::INSTANCE_OUT_OF_RANGE);
                        w.u16(instance);
                        w.u16(max);
                    }
                    RefuseReason::NoFreeIds => w.u8(reason::NO_FREE_IDS),
                    RefuseReason::ServiceOutOfRange { service, max } => {
                        w.u8(reason::SERVICE_OUT_OF_RANGE);
                        w.u16(service);
                        w.u16(max);
                    }
                    RefuseReason::TooManyInstances { service, max } => {
                        w.u8(reason::TOO_MANY_INSTANCES);
                        w.u16(service);
                        w.u16(max);
                    }
                    RefuseReason::NoFreeCore => w.u8(reason::NO_FREE_CORE),
                    RefuseReason::CoreOutOfRange { core, cores } => {
                        w.u8(reason::CORE_OUT_OF_RANGE);
                        w.u16(core);
                        w.u16(cores);
                    }
                    RefuseReason::CoreBusy(c) => {
                        w.u8(reason::CORE_BUSY);
                        w.u16(c);
                    }
                    RefuseReason::AbiMismatch { ours, theirs } => {
                        w.u8(reason::ABI_MISMATCH);
                        w.u32(ours);
                        w.u32(theirs);
                    }
                }
                w
            }
            MgrMsg::Stop => Writer::new(tag::STOP),
            MgrMsg::Left => Writer::new(tag::LEFT),
            MgrMsg::Msg { from, bytes } => {
                let mut w = Writer::new(tag::MGR_MSG);
                w.u16(*from);
                w.bytes("bytes", bytes)?;
                w
            }
            MgrMsg::EdgeOut {
                service,
                instance,
                ring,
                bell,
            } => {
                let mut w = Writer::new(tag::EDGE_OUT);
                w.u16(*service);
                w.u16(*instance);
                w.u32(*ring);
                w.u32(bell.unwrap_or(u32::MAX));
                w
            }
            MgrMsg::EdgeIn { ring } => {
                let mut w = Writer::new(tag::EDGE_IN);
                w.u32(*ring);
                w
            }
            MgrMsg::EdgeClosed { ring } => {
                let mut w = Writer::new(tag::EDGE_CLOSED);
                w.u32(*ring);
                w
            }
            MgrMsg::PortQueue(q) => {
                let mut w = Writer::new(tag::PORT_QUEUE);
                match q {
                    None => w.u8(0),
                    Some(q) => {
                        w.u8(1);
                        w.u16(q.port);
                        w.u16(q.frame_len);
                        w.u16(q.out);
                    }
                }
                w
            }
        };
        Ok(w.0)
    }

    /// Decodes one datagram.
    pub fn decode(buf: &[u8]) -> Result<MgrMsg, DecodeError> {
        let (t, mut r) = open(buf)?;
        let msg = match t {
            tag::REGISTERED => MgrMsg::Registered(Registered {
                instance: r.u16("instance")?,
                service: r.u16("service")?,
                core: r.opt_u16("core")?,
                rings: RingIds {
                    rx: r.u32("rings.rx")?,
                    tx: r.u32("rings.tx")?,
                    alloc: r.u32("rings.alloc")?,
                    wake: r.u32("rings.wake")?,
                },
                quota: r.u32("quota")?,
            }),
            tag::REFUSED => MgrMsg::Refused(match r.u8("reason")? {
                reason::INSTANCE_TAKEN => RefuseReason::InstanceTaken(r.u16("instance")?),
                reason::INSTANCE_OUT_OF_RANGE => RefuseReason::InstanceOutOfRange {
                    instance: r.u16("instance")?,
                    max: r.u16("max")?,
                },
                reason::NO_FREE_IDS => RefuseReason::NoFreeIds,
                reason::SERVICE_OUT_OF_RANGE => RefuseReason::ServiceOutOfRange {
                    service: r.u16("service")?,
                    max: r.u16("max")?,
                },
                reason::TOO_MANY_INSTANCES => RefuseReason::TooManyInstances {
                    service: r.u16("service")?,
                    max: r.u16("max")?,
                },
                reason::NO_FREE_CORE => RefuseReason::NoFreeCore,
                reason::CORE_OUT_OF_RANGE => RefuseReason::CoreOutOfRange {
                    core: r.u16("core")?,
                    cores: r.u16("cores")?,
                },
                reason::CORE_BUSY => RefuseReason::CoreBusy(r.u16("core")?),
                reason::ABI_MISMATCH => RefuseReason::AbiMismatch {
                    ours: r.u32("ours")?,
                    theirs: r.u32("theirs")?,
                },
                value => {
                    return Err(DecodeError::UnknownKind { field: "reason", value });
                }
            }),
            tag::STOP => MgrMsg::Stop,
            tag::LEFT => MgrMsg::Left,
            tag::MGR_MSG => MgrMsg::Msg {
                from: r.u16("from")?,
                bytes: r.bytes("bytes")?,
            },
            tag::EDGE_OUT => MgrMsg::EdgeOut {
                service: r.u16("service")?,
                instance: r.u16("instance")?,
                ring: r.u32("ring")?,
                bell: Some(r.u32("bell")?).filter(|&b| b != u32::MAX),
            },
            tag::EDGE_IN => MgrMsg::EdgeIn { ring: r.u32("ring")? },
            tag::EDGE_CLOSED => MgrMsg::EdgeClosed { ring: r.u32("ring")? },
            tag::PORT_QUEUE => MgrMsg::PortQueue(match r.u8("queue")? {
                0 => None,
                1 => Some(PortQueue {
                    port: r.u16("port")?,
                    frame_len: r.u16("frame_len")?,
                    out: r.u16("out")?,
                }),
                byte => return Err(DecodeError::BadOption { field: "queue", byte }),
            }),
            other => return Err(DecodeError::UnknownTag(other)),
        };
        r.finish(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn register() -> Register {
        Register {
            abi_version: ABI_VERSION,
            tag: "firewall".into(),
            service: 2,
            instance: Some(7),
            core: None,
            parent: None,
            flags: RegisterFlags::SHARED_CORE,
        }
    }

    #[test]
    fn register_layout_is_fixed() {
        let bytes = NfMsg::Register(register()).encode().unwrap();
        // ABI version 6 (NFs may poll port queues themselves).
        let mut want = vec![0x01, 6, 0, 0, 0, 8, 0];
        want.extend_from_slice(b"firewall");
        want.extend_from_slice(&[2, 0, 1, 7, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes, want);
        assert_eq!(NfMsg::decode(&bytes), Ok(NfMsg::Register(register())));
    }

    #[test]
    fn clear_errors() {
        assert_eq!(NfMsg::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(NfMsg::decode(&[0x42]), Err(DecodeError::UnknownTag(0x42)));
        // A manager message is not an NF message, and vice versa.
        let stop = MgrMsg::Stop.encode().unwrap();
        assert_eq!(NfMsg::decode(&stop), Err(DecodeError::UnknownTag(0x83)));
        assert_eq!(MgrMsg::decode(&[0x02]), Err(DecodeError::UnknownTag(0x02)));
        assert_eq!(NfMsg::decode(&[0x01, 1, 0]), Err(DecodeError::Truncated("abi_version")));
        assert_eq!(
            NfMsg::decode(&[0x01, 1, 0, 0, 0, 3, 0, b'a']),
            Err(DecodeError::Truncated("tag"))
        );
        assert_eq!(
            NfMsg::decode(&[0x01, 1, 0, 0, 0, 0xff, 0]),
            Err(DecodeError::TooLong {
                field: "tag",
                len: 255,
                max: MAX_TAG_LEN
            })
        );
        assert_eq!(
            NfMsg::decode(&[0x01, 1, 0, 0, 0, 2, 0, 0xc3, 0x28]),
            Err(DecodeError::InvalidUtf8("tag"))
        );
        let mut bad_opt = NfMsg::Register(register()).encode().unwrap();
        bad_opt[17] = 2; // presence byte of `instance`
        assert_eq!(
            NfMsg::decode(&bad_opt),
            Err(DecodeError::BadOption {
                field: "instance",
                byte: 2
            })
        );
        let mut bad_flags = NfMsg::Register(register()).encode().unwrap();
        let n = bad_flags.len();
        bad_flags[n - 1] = 0x80;
        assert_eq!(NfMsg::decode(&bad_flags), Err(DecodeError::UnknownFlags(0x8000_0000)));
        assert_eq!(NfMsg::decode(&[0x02, 0]), Err(DecodeError::TrailingBytes(1)));
        assert_eq!(
            MgrMsg::decode(&[0x82, 99]),
            Err(DecodeError::UnknownKind {
                field: "reason",
                value: 99
            })
        );
        assert_eq!(
            NfMsg::decode(&[0x04, 0, 1, 0, 0xff, 0xff, 0xff, 0xff]),
            Err(DecodeError::TooLong {
                field: "bytes",
                len: 0xffff_ffff,
                max: MAX_MSG_PAYLOAD
            })
        );
        assert_eq!(
            DecodeError::Truncated("rings.rx").to_string(),
            "message truncated at field `rings.rx`"
        );
        assert_eq!(DecodeError::UnknownTag(7).to_string(), "unknown message tag 0x07");
    }

    #[test]
    fn encode_refuses_oversized_fields() {
        let mut r = register();
        r.tag = "x".repeat(MAX_TAG_LEN + 1);
        assert!(matches!(
            NfMsg::Register(r).encode(),
            Err(EncodeError::TooLong { field: "tag", .. })
        ));
        let big = MgrMsg::Msg {
            from: 1,
            bytes: vec![0; MAX_MSG_PAYLOAD + 1],
        };
        assert!(big.encode().is_err());
    }

    #[test]
    fn refuse_reason_texts() {
        assert_eq!(
            RefuseReason::AbiMismatch { ours: 2, theirs: 1 }.to_string(),
            "ABI version mismatch: manager speaks 2, NF speaks 1; rebuild the NF"
        );
        assert_eq!(
            RefuseReason::InstanceTaken(4).to_string(),
            "instance ID 4 is already taken by a running NF"
        );
        assert_eq!(
            RefuseReason::TooManyInstances { service: 3, max: 32 }.to_string(),
            "service 3 already has the maximum of 32 instances"
        );
        assert_eq!(
            RefuseReason::ServiceOutOfRange { service: 40, max: 32 }.to_string(),
            "service ID 40 is out of range (valid: 1..32)"
        );
        assert_eq!(
            RefuseReason::CoreBusy(3).to_string(),
            "core 3 is busy: another NF has it dedicated"
        );
    }

    #[test]
    fn flags() {
        let f = RegisterFlags::SHARED_CORE | RegisterFlags::MANUAL_CORE;
        assert!(f.contains(RegisterFlags::MANUAL_CORE));
        assert!(!RegisterFlags::NONE.contains(RegisterFlags::SHARED_CORE));
        assert_eq!(RegisterFlags::from_bits(4), None);
        assert_eq!(RegisterFlags::from_bits(3), Some(f));
    }

    fn text() -> impl Strategy<Value = String> {
        "\\PC{0,16}"
    }

    fn nf_msg() -> impl Strategy<Value = NfMsg> {
        let reg = (
            any::<u32>(),
            text(),
            any::<u16>(),
            any::<Option<u16>>(),
            any::<Option<u16>>(),
            any::<Option<u16>>(),
            0u32..4,
        )
            .prop_map(|(abi_version, tag, service, instance, core, parent, f)| {
                NfMsg::Register(Register {
                    abi_version,
                    tag,
                    service,
                    instance,
                    core,
                    parent,
                    flags: RegisterFlags::from_bits(f).unwrap(),
                })
            });
        let dest = prop_oneof![
            any::<u16>().prop_map(Dest::Service),
            any::<u16>().prop_map(Dest::Instance)
        ];
        prop_oneof![
            reg,
            Just(NfMsg::Ready),
            Just(NfMsg::Stopping),
            Just(NfMsg::Leaving),
            (dest, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(to, bytes)| NfMsg::Msg { to, bytes }),
            any::<u32>().prop_map(|ring| NfMsg::EdgeReleased { ring }),
            any::<u32>().prop_map(|ring| NfMsg::EdgeSwitched { ring }),
            any::<[u64; NfCounters::FIELDS]>().prop_map(|a| NfMsg::Counters(NfCounters::from_array(a))),
            (any::<(u16, u16)>(), any::<[u64; 4]>()).prop_map(|((port, out), [rx, rx_bytes, tx, tx_bytes])| {
                NfMsg::PortCounts(PortCounts {
                    port,
                    out,
                    rx,
                    rx_bytes,
                    tx,
                    tx_bytes,
                })
            }),
        ]
    }

    fn refuse() -> impl Strategy<Value = RefuseReason> {
        let u = any::<u16>;
        prop_oneof![
            u().prop_map(RefuseReason::InstanceTaken),
            (u(), u()).prop_map(|(instance, max)| RefuseReason::InstanceOutOfRange { instance, max }),
            Just(RefuseReason::NoFreeIds),
            (u(), u()).prop_map(|(service, max)| RefuseReason::ServiceOutOfRange { service, max }),
            (u(), u()).prop_map(|(service, max)| RefuseReason::TooManyInstances { service, max }),
            Just(RefuseReason::NoFreeCore),
            (u(), u()).prop_map(|(core, cores)| RefuseReason::CoreOutOfRange { core, cores }),
            u().prop_map(RefuseReason::CoreBusy),
            (any::<u32>(), any::<u32>()).prop_map(|(ours, theirs)| RefuseReason::AbiMismatch { ours, theirs }),
        ]
    }

    fn mgr_msg() -> impl Strategy<Value = MgrMsg> {
        prop_oneof![
            (
                any::<u16>(),
                any::<u16>(),
                any::<Option<u16>>(),
                any::<(u32, u32, u32, u32)>(),
                any::<u32>()
            )
                .prop_map(|(instance, service, core, (rx, tx, alloc, wake), quota)| {
                    MgrMsg::Registered(Registered {
                        instance,
                        service,
                        core,
                        rings: RingIds { rx, tx, alloc, wake },
                        quota,
                    })
                }),
            refuse().prop_map(MgrMsg::Refused),
            Just(MgrMsg::Stop),
            Just(MgrMsg::Left),
            (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..300))
                .prop_map(|(from, bytes)| MgrMsg::Msg { from, bytes }),
            (
                any::<u16>(),
                any::<u16>(),
                any::<u32>(),
                proptest::option::of(0..u32::MAX)
            )
                .prop_map(|(service, instance, ring, bell)| MgrMsg::EdgeOut {
                    service,
                    instance,
                    ring,
                    bell
                }),
            any::<u32>().prop_map(|ring| MgrMsg::EdgeIn { ring }),
            any::<u32>().prop_map(|ring| MgrMsg::EdgeClosed { ring }),
            proptest::option::of(any::<(u16, u16, u16)>())
                .prop_map(|q| MgrMsg::PortQueue(q.map(|(port, frame_len, out)| PortQueue { port, frame_len, out }))),
        ]
    }

    proptest! {
        #[test]
        fn nf_round_trip(m in nf_msg()) {
            let bytes = m.encode().unwrap();
            prop_assert!(bytes.len() <= MAX_MESSAGE_LEN);
            prop_assert_eq!(NfMsg::decode(&bytes), Ok(m));
            // Every strict prefix is an error, never a different message.
            for n in 0..bytes.len() {
                prop_assert!(NfMsg::decode(&bytes[..n]).is_err());
            }
        }

        #[test]
        fn mgr_round_trip(m in mgr_msg()) {
            let bytes = m.encode().unwrap();
            prop_assert_eq!(MgrMsg::decode(&bytes), Ok(m));
            for n in 0..bytes.len() {
                prop_assert!(MgrMsg::decode(&bytes[..n]).is_err());
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64),
                                    tag in prop_oneof![Just(0x01u8), Just(0x04), Just(0x81), Just(0x82), any::<u8>()]) {
            let mut b = bytes;
            b.insert(0, tag);
            // Whatever decodes must encode back to the same bytes.
            if let Ok(m) = NfMsg::decode(&b) {
                prop_assert_eq!(m.encode().unwrap(), b.clone());
            }
            if let Ok(m) = MgrMsg::decode(&b) {
                prop_assert_eq!(m.encode().unwrap(), b);
            }
        }
    }
}
