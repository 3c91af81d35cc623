//! HELLO and version negotiation.
//!
//! Both ends send HELLO first. Since OpenFlow 1.3.1 a HELLO may carry a *version
//! bitmap* element listing every version its sender speaks; then the agreed version is
//! the highest one both bitmaps share. Without a bitmap the agreed version is the lower
//! of the two header versions, if we speak it. [`negotiate`] is that rule as a pure
//! function, so the agent only has to act on its answer (a failure is the
//! HELLO_FAILED/INCOMPATIBLE error the spec says to send before closing).

use crate::error::{ErrorKind, OfpError, ofpet, ofphfc};
use crate::wire::{Reader, Writer, pad8};

/// `ofp_hello_elem_type` of the version bitmap.
pub const OFPHET_VERSIONBITMAP: u16 = 1;

/// The versions a peer speaks: bit `n` of word `i` is wire version `32 * i + n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionBitmap(pub Vec<u32>);

impl VersionBitmap {
    /// A bitmap of the given wire versions.
    pub fn of(versions: &[u8]) -> Self {
        let words = versions.iter().map(|&v| usize::from(v) / 32 + 1).max().unwrap_or(1);
        let mut bits = vec![0u32; words];
        for &v in versions {
            bits[usize::from(v) / 32] |= 1 << (v % 32);
        }
        VersionBitmap(bits)
    }

    pub fn supports(&self, version: u8) -> bool {
        self.0
            .get(usize::from(version) / 32)
            .is_some_and(|w| w & (1 << (version % 32)) != 0)
    }

    /// The versions set, lowest first.
    pub fn versions(&self) -> impl DoubleEndedIterator<Item = u8> + '_ {
        (0..=u8::MAX).filter(|&v| self.supports(v))
    }

    /// The highest version set, if any.
    pub fn highest(&self) -> Option<u8> {
        self.versions().next_back()
    }
}

/// A HELLO: the sender's highest version (in the header) and, optionally, its bitmap.
/// Hello elements of unknown types are skipped, as the spec requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The header's version field.
    pub version: u8,
    pub bitmap: Option<VersionBitmap>,
}

impl Hello {
    /// The HELLO we send: our highest version and our whole bitmap.
    pub fn ours(bitmap: VersionBitmap) -> Self {
        Hello {
            version: bitmap.highest().unwrap_or(crate::OFP_VERSION),
            bitmap: Some(bitmap),
        }
    }

    pub(crate) fn decode(version: u8, r: &mut Reader<'_>) -> Result<Self, OfpError> {
        let mut bitmap = None;
        while !r.is_empty() {
            let ty = r.u16()?;
            let len = usize::from(r.u16()?);
            if len < 4 {
                return Err(r.short_error(format_args!("hello element length {len} below 4")));
            }
            let mut body = r.sub(len - 4, ErrorKind::BAD_REQUEST_LEN, "hello element")?;
            // The last element's padding may be missing in the wild; tolerate that.
            r.skip(pad8(len).min(r.remaining()))?;
            if ty == OFPHET_VERSIONBITMAP {
                if body.remaining() % 4 != 0 {
                    return Err(body.short_error("version bitmap not a whole number of words"));
                }
                let mut words = Vec::new();
                while !body.is_empty() {
                    words.push(body.u32()?);
                }
                bitmap = Some(VersionBitmap(words));
            }
        }
        Ok(Hello { version, bitmap })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        if let Some(bitmap) = &self.bitmap {
            let start = w.pos();
            w.u16(OFPHET_VERSIONBITMAP);
            let at = w.len_placeholder();
            for word in &bitmap.0 {
                w.u32(*word);
            }
            w.patch_len(at, start);
            w.pad8(start);
        }
    }
}

/// The version both ends will speak, given the versions we speak and the peer's HELLO;
/// or the HELLO_FAILED/INCOMPATIBLE error to send it.
pub fn negotiate(ours: &VersionBitmap, peer: &Hello) -> Result<u8, OfpError> {
    let agreed = match &peer.bitmap {
        Some(theirs) => ours.versions().rev().find(|&v| theirs.supports(v)),
        None => ours
            .highest()
            .map(|h| h.min(peer.version))
            .filter(|&v| ours.supports(v)),
    };
    agreed.ok_or_else(|| {
        let offered = match &peer.bitmap {
            Some(theirs) => format!("{:?}", theirs.versions().collect::<Vec<_>>()),
            None => format!("up to {}", peer.version),
        };
        OfpError::of(
            ofpet::HELLO_FAILED,
            ofphfc::INCOMPATIBLE,
            format!(
                "no common OpenFlow version: we speak wire versions {:?}, the peer offers {offered}",
                ours.versions().collect::<Vec<_>>()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ofpet, ofphfc};

    fn hello(version: u8, bitmap: Option<&[u8]>) -> Hello {
        Hello {
            version,
            bitmap: bitmap.map(VersionBitmap::of),
        }
    }

    #[test]
    fn bitmap_bits() {
        let b = VersionBitmap::of(&[1, 4, 40]);
        assert_eq!(b.0, vec![0x12, 1 << 8]);
        assert!(b.supports(4) && b.supports(40) && !b.supports(5) && !b.supports(200));
        assert_eq!(b.highest(), Some(40));
        assert_eq!(VersionBitmap(vec![]).highest(), None);
    }

    #[test]
    fn both_bitmaps_take_the_highest_common_version() {
        let ours = VersionBitmap::of(&[4]);
        assert_eq!(negotiate(&ours, &hello(6, Some(&[1, 4, 5, 6]))), Ok(4));
        let ours = VersionBitmap::of(&[1, 4, 5]);
        assert_eq!(negotiate(&ours, &hello(6, Some(&[1, 4, 6]))), Ok(4));
        assert_eq!(negotiate(&ours, &hello(6, Some(&[1, 6]))), Ok(1));
    }

    #[test]
    fn without_a_bitmap_the_lower_header_version_wins() {
        let ours = VersionBitmap::of(&[4]);
        assert_eq!(negotiate(&ours, &hello(4, None)), Ok(4));
        // A 1.5 controller without a bitmap: we answer in 1.3 and it may accept that.
        assert_eq!(negotiate(&ours, &hello(6, None)), Ok(4));
    }

    #[test]
    fn no_common_version_is_hello_failed_incompatible() {
        let ours = VersionBitmap::of(&[4]);
        for peer in [hello(1, None), hello(6, Some(&[5, 6])), hello(4, Some(&[]))] {
            let e = negotiate(&ours, &peer).unwrap_err();
            assert_eq!(
                (e.kind.ty, e.kind.code),
                (ofpet::HELLO_FAILED, ofphfc::INCOMPATIBLE),
                "{peer:?}"
            );
        }
        // We speak 1.0 and 1.3 but not 1.2: a plain 1.2 HELLO agrees on nothing.
        let e = negotiate(&VersionBitmap::of(&[1, 4]), &hello(3, None)).unwrap_err();
        assert_eq!(e.kind.code, ofphfc::INCOMPATIBLE);
    }

    #[test]
    fn unknown_hello_elements_are_skipped() {
        // An element of type 9 (4 bytes, padded to 8), then the bitmap.
        let body = [0, 9, 0, 4, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0x10];
        let mut r = Reader::new(&body, crate::error::ErrorKind::BAD_REQUEST_LEN, "HELLO");
        let h = Hello::decode(4, &mut r).unwrap();
        assert_eq!(h.bitmap, Some(VersionBitmap(vec![0x10])));
    }
}
