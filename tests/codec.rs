//! Property tests of the offset codec, for every layout.

use pktmap::offset::{DecodeError, EncodeError, Layout, LAYOUTS, PAGE_SHIFT, PAGE_SIZE};
use proptest::prelude::*;

fn layout() -> impl Strategy<Value = &'static Layout> {
    (0..LAYOUTS.len()).prop_map(|i| LAYOUTS[i])
}

/// A type the layout accepts, and an id valid for it.
fn valid_request() -> impl Strategy<Value = (&'static Layout, u32, u64)> {
    layout().prop_flat_map(|l| {
        let types: Vec<(u32, bool)> = match l.types {
            Some(ts) => ts.iter().map(|t| (t.value, t.has_id)).collect(),
            None => vec![(0, true), (1, true), (l.type_field.max() as u32, true)],
        };
        let max_id = l.id_field.max();
        (Just(l), proptest::sample::select(types), 0..=max_id).prop_map(
            move |(l, (t, has_id), id)| {
                let id = if has_id {
                    id & !(PAGE_SIZE - 1) & max_id
                } else {
                    0
                };
                (l, t, id)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn valid_requests_round_trip((l, t, id) in valid_request()) {
        let off = l.encode(t, id).unwrap();
        prop_assert_eq!(off % PAGE_SIZE, 0);
        prop_assert_eq!(l.decode(off), Ok((t, id)));
        prop_assert_eq!(l.decode_pgoff(off >> PAGE_SHIFT), Ok((t, id)));
    }

    #[test]
    fn any_offset_is_rejected_or_re_encodes_to_itself(l in layout(), off in any::<u64>()) {
        match l.decode(off) {
            Ok((t, id)) => prop_assert_eq!(l.encode(t, id), Ok(off)),
            Err(DecodeError::Misaligned) => prop_assert_ne!(off % PAGE_SIZE, 0),
            Err(DecodeError::StrayBits) => {
                let fields = l.type_field.mask() | l.id_field.mask();
                let t = l.type_field.get(off) as u32;
                let id_forbidden = l.type_info(t).is_some_and(|i| !i.has_id) && l.id_field.get(off) != 0;
                prop_assert!(off & !fields != 0 || id_forbidden);
            }
            Err(DecodeError::UnknownType) => {
                prop_assert!(l.type_info(l.type_field.get(off) as u32).is_none());
            }
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }

    #[test]
    fn page_offsets_agree_with_byte_offsets(l in layout(), pgoff in any::<u64>()) {
        match pgoff.checked_mul(PAGE_SIZE) {
            Some(off) => prop_assert_eq!(l.decode_pgoff(pgoff), l.decode(off)),
            None => prop_assert_eq!(l.decode_pgoff(pgoff), Err(DecodeError::StrayBits)),
        }
    }

    #[test]
    fn a_stray_bit_is_always_caught((l, t, id) in valid_request(), bit in 0u32..64) {
        let off = l.encode(t, id).unwrap();
        let flipped = off ^ (1 << bit);
        let in_fields = (l.type_field.mask() | l.id_field.mask()) & (1 << bit) != 0;
        if bit < PAGE_SHIFT {
            prop_assert_eq!(l.decode(flipped), Err(DecodeError::Misaligned));
        } else if !in_fields {
            prop_assert_eq!(l.decode(flipped), Err(DecodeError::StrayBits));
        } else if let Ok(decoded) = l.decode(flipped) {
            // A flip inside the fields names a different resource, never the same one.
            prop_assert_ne!(decoded, (t, id));
        }
    }

    #[test]
    fn out_of_range_requests_are_refused(l in layout(), t in any::<u32>(), id in any::<u64>()) {
        match l.encode(t, id) {
            Ok(off) => prop_assert_eq!(l.decode(off), Ok((t, id))),
            Err(EncodeError::TypeOutOfRange) => prop_assert!(u64::from(t) > l.type_field.max()),
            Err(EncodeError::UnknownType) => prop_assert!(l.type_info(t).is_none()),
            Err(EncodeError::IdNotAllowed) => prop_assert!(id != 0),
            Err(EncodeError::IdOutOfRange) => prop_assert!(id > l.id_field.max()),
            Err(EncodeError::Misaligned) => prop_assert_ne!(id % PAGE_SIZE, 0),
            Err(e) => prop_assert!(false, "unexpected {:?}", e),
        }
    }
}
