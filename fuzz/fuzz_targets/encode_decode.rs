//! Encoding an arbitrary `(type, id)` in a chosen layout either fails with the error the rules
//! call for (the model in `pktmap_fuzz`, written from the upstream headers) or gives a page
//! aligned offset that decodes, as a byte offset and as a page offset, back to `(type, id)`.
//!
//! Input (13 bytes, zero-filled if short): the layout index (`u8`, modulo the number of
//! layouts), the type (`u32` LE), the id (`u64` LE).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktmap_abi::codec::{PAGE_SHIFT, PAGE_SIZE};
use pktmap_fuzz::{layouts, Reader};

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let index = usize::from(r.u8());
    let map_type = r.u32();
    let map_id = r.u64();

    let all: Vec<_> = layouts().collect();
    let (layout, model) = all[index % all.len()];
    let name = layout.name;

    let got = layout.encode(map_type, map_id);
    assert_eq!(
        got,
        model.encode(map_type, map_id),
        "{name}.encode({map_type:#x}, {map_id:#x})"
    );
    match got {
        Ok(offset) => {
            assert_eq!(offset % PAGE_SIZE, 0, "{name}: misaligned {offset:#x}");
            assert_eq!(
                layout.decode(offset),
                Ok((map_type, map_id)),
                "{name}: {offset:#x} does not decode back"
            );
            assert_eq!(
                layout.decode_pgoff(offset >> PAGE_SHIFT),
                Ok((map_type, map_id)),
                "{name}: page offset {:#x} does not decode back",
                offset >> PAGE_SHIFT
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
