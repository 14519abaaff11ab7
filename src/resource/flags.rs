//! [`MapFlags`]: Onload's `OO_MMAP_FLAG_*` bits, parsed strictly.

use crate::error::{Error, Result};
use rustix::mm::ProtFlags;

/// The `bitflags!` invocation of [`MapFlags`], in a module of its own only so that the set
/// operations the macro writes (`empty`, `contains`, `insert`, `iter`, ...) are left out of
/// rustdoc's example count: their docs are bitflags' own, with examples at
/// <https://docs.rs/bitflags>. The `unknown_lints` allow is for stable rustdoc, which does not
/// know the (unstable) lint.
#[allow(unknown_lints, rustdoc::missing_doc_code_examples)]
mod bits {
    use bitflags::bitflags;

    bitflags! {
        /// How to map a resource: Onload's `OO_MMAP_FLAG_*` bits.
        ///
        /// Parse raw bits with [`MapFlags::from_raw`], which rejects unknown bits.
        ///
        /// # Examples
        /// ```
        /// use pktmap::resource::MapFlags;
        /// let f = MapFlags::from_raw(5).unwrap();
        /// assert_eq!(f, MapFlags::READONLY | MapFlags::POPULATE);
        /// assert!(MapFlags::from_raw(8).is_err());
        /// ```
        #[repr(transparent)]
        #[derive(Copy, Clone, Eq, PartialEq, Hash, Debug)]
        pub struct MapFlags: u32 {
            /// `OO_MMAP_FLAG_READONLY`: `PROT_READ` only (otherwise `PROT_READ | PROT_WRITE`).
            const READONLY = 1;
            /// `OO_MMAP_FLAG_FIXED`: map at the caller's address (`MAP_FIXED_NOREPLACE`, or
            /// `MAP_FIXED` through the `unsafe`
            /// [`MapOptions::map_replacing`](crate::resource::MapOptions::map_replacing)).
            const FIXED = 2;
            /// `OO_MMAP_FLAG_POPULATE`: prefault every page (`MADV_POPULATE_READ`/`_WRITE`),
            /// failing with the errno that stopped it.
            const POPULATE = 4;
        }
    }
}
pub use bits::MapFlags;

impl MapFlags {
    /// Parses raw flag bits strictly.
    ///
    /// # Errors
    /// `EINVAL` if any bit other than `READONLY`, `FIXED` and `POPULATE` is set.
    pub fn from_raw(bits: u32) -> Result<Self> {
        Self::from_bits(bits).ok_or_else(|| {
            Error::invalid(format!(
                "unknown map flag bits {:#x}",
                bits & !Self::all().bits()
            ))
        })
    }

    /// The `mmap` protection these flags ask for.
    pub(super) fn prot(self) -> ProtFlags {
        if self.contains(Self::READONLY) {
            ProtFlags::READ
        } else {
            ProtFlags::READ | ProtFlags::WRITE
        }
    }
}
