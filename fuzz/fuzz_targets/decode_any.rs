//! Any `u64` offset, in every layout: a strict decode either refuses it or names a `(type, id)`
//! that encodes back to exactly that offset, and agrees with the model written from the upstream
//! headers; `decode_pgoff(p)` agrees with `decode(p << 12)` whenever the shift does not
//! overflow, and is `StrayBits` otherwise. Nothing panics.
//!
//! Input: up to 8 little-endian `u64`s, 8 bytes each (a short last one is zero-filled; an
//! empty input is the offset 0). Each is tried as a byte offset and as a page offset.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktmap_abi::codec::{DecodeError, PAGE_SHIFT};
use pktmap_fuzz::{layouts, Reader};

fn check(value: u64) {
    for (layout, model) in layouts() {
        let name = layout.name;
        let got = layout.decode(value);
        assert_eq!(got, model.decode(value), "{name}.decode({value:#x})");
        match got {
            Ok((map_type, map_id)) => {
                assert_eq!(
                    layout.encode(map_type, map_id),
                    Ok(value),
                    "{name}: {value:#x} decodes to ({map_type}, {map_id:#x}), which re-encodes elsewhere"
                );
                if layout.types.is_some() {
                    assert!(
                        layout.type_name(map_type).is_some(),
                        "{name}: {map_type} has no name"
                    );
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }

        let by_page = layout.decode_pgoff(value);
        match value.checked_shl(PAGE_SHIFT) {
            Some(bytes) if bytes >> PAGE_SHIFT == value => assert_eq!(
                by_page,
                layout.decode(bytes),
                "{name}.decode_pgoff({value:#x}) differs from decode({bytes:#x})"
            ),
            _ => assert_eq!(
                by_page,
                Err(DecodeError::StrayBits),
                "{name}.decode_pgoff({value:#x}): the page offset overflows a byte offset"
            ),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    for _ in 0..8 {
        check(r.u64());
        if r.is_empty() {
            break;
        }
    }
});
