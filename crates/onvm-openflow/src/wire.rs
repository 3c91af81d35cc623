//! The one place that turns bytes into numbers and back.
//!
//! Every decoder reads through a [`Reader`], which never indexes out of bounds: a read
//! past the end is an [`OfpError`] with the error kind the reader was made with. That is
//! how a truncated OXM field becomes `OFPBMC_BAD_LEN` while a truncated FLOW_MOD body
//! becomes `OFPBRC_BAD_LEN`: the nested structure gets a [`Reader::sub`] reader with its
//! own kind. OpenFlow is big-endian throughout.

use crate::error::{ErrorKind, OfpError};

/// A bounds-checked cursor over a received message (or a part of one).
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What a read past the end is reported as.
    short: ErrorKind,
    /// What is being read, for the human message.
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], short: ErrorKind, what: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            short,
            what,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// An error of this reader's "too short" kind, for length checks done by the caller.
    pub(crate) fn short_error(&self, detail: impl std::fmt::Display) -> OfpError {
        OfpError::new(self.short, format!("{}: {detail}", self.what))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfpError> {
        if n > self.remaining() {
            return Err(self.short_error(format_args!(
                "needs {n} bytes at offset {}, has {}",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], OfpError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, OfpError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, OfpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, OfpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, OfpError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Skips `n` pad bytes. Their content is ignored, as the spec asks of receivers
    /// everywhere except in a match's trailing padding (see `oxm.rs`).
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), OfpError> {
        self.bytes(n).map(|_| ())
    }

    /// Everything left.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// The next `n` bytes as a reader of their own, which reports running short as
    /// `short`. Running short of *these* `n` bytes is still this reader's error.
    pub(crate) fn sub(&mut self, n: usize, short: ErrorKind, what: &'static str) -> Result<Reader<'a>, OfpError> {
        Ok(Reader::new(self.bytes(n)?, short, what))
    }
}

/// Builds a message. Lengths of nested structures are written as placeholders and
/// patched when the structure is complete ([`Writer::patch_len`]); the total length is
/// checked once, by the message encoder, so no nested length can silently wrap.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn pos(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Writes a 16-bit length placeholder and returns where it is.
    pub(crate) fn len_placeholder(&mut self) -> usize {
        let at = self.pos();
        self.u16(0);
        at
    }

    /// Fills the placeholder at `at` with the number of bytes since `start`. A length
    /// over 65535 saturates; the message encoder then refuses the whole message.
    pub(crate) fn patch_len(&mut self, at: usize, start: usize) {
        let len = u16::try_from(self.pos() - start).unwrap_or(u16::MAX);
        self.buf[at..at + 2].copy_from_slice(&len.to_be_bytes());
    }

    /// Zero-pads so that the bytes since `start` are a multiple of 8.
    pub(crate) fn pad8(&mut self, start: usize) {
        self.zeros(pad8(self.pos() - start));
    }

    /// A string in a fixed, NUL-padded field of `n` bytes. It is cut (at a character
    /// boundary) to leave at least one NUL, as the spec's `char[n]` fields require.
    pub(crate) fn fixed_str(&mut self, s: &str, n: usize) {
        let mut end = s.len().min(n - 1);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.bytes(&s.as_bytes()[..end]);
        self.zeros(n - end);
    }
}

/// How many pad bytes bring `len` to a multiple of 8.
pub(crate) fn pad8(len: usize) -> usize {
    (8 - len % 8) % 8
}

/// Reads a fixed `char[n]` field: up to the first NUL, non-UTF-8 bytes replaced.
pub(crate) fn fixed_str(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}
