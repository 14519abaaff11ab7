//! The ioctl growth rule (driver/abi/src/ioctl.rs, "Growing an argument struct"): `arg_size`,
//! `check_tail` and `widen`, which the driver's copy-in and copy-out follow, against a model
//! that shares no code with `pktmap_abi::ioctl` — the request numbers restated from the `_IOC`
//! encoding and the sizes from the first round's and today's `include/pktmap.h` — and
//! `check_ioctl`, which must admit exactly the numbers `arg_size` serves.
//!
//! Input (little-endian, zero-filled if short):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | bits 0..3 pick one of the requests (plus 8 when bit 3 is clear and the raw number's bit 0 is set, modulo their number); bit 3: use the raw number instead; bits 4..6 pick a size (one the struct had, one byte less, today's + 8, or the next field's); bits 6..8 which size it had |
//! | 4 | raw request number (`u32`) |
//! | 2 | a size (`u16`, masked to the 14 size bits of `_IOC`) |
//! | rest | the caller's struct, zero-filled to its size |
#![no_main]

use libfuzzer_sys::fuzz_target;
use pktmap_abi::ioctl::{arg_size, check_tail, widen, ArgSize, SizeError, MAX_ARG_SIZE};
use pktmap_abi::plan::{check_ioctl, PlanError};
use pktmap_fuzz::Reader;

/// The requests: direction (`_IOC_READ` 2 | `_IOC_WRITE` 1), number, and every size the struct
/// has had (the first round's header, then today's), restated rather than imported.
const REQUESTS: [(u32, u32, &[usize]); 11] = [
    (3, 1, &[16, 32]), // POOL_CREATE: +fault_around, cache, reserved
    (3, 2, &[32, 48]), // POOL_INFO: +fault_around, cache, chunk_bytes
    (1, 3, &[4]),      // POOL_DESTROY
    (3, 4, &[16]),     // RING_CREATE
    (3, 5, &[32]),     // RING_INFO
    (1, 6, &[4]),      // RING_DESTROY
    (3, 7, &[24]),     // POOL_CHUNK
    (3, 8, &[16]),     // POOL_EXPORT
    (3, 9, &[32]),     // ATTACH
    (1, 10, &[4]),     // DETACH
    (1, 11, &[4]),     // KICK
];

fn number(dir: u32, nr: u32, size: usize) -> u32 {
    dir << 30 | (size as u32 & 0x3fff) << 16 | u32::from(b'P') << 8 | nr
}

/// The model: `(today's number, kernel size, user size)` or `ENOTTY`.
fn model(cmd: u32) -> Result<(u32, usize, usize), SizeError> {
    let (dir, typ, nr, user) = (
        cmd >> 30,
        (cmd >> 8) & 0xff,
        cmd & 0xff,
        (cmd >> 16) as usize & 0x3fff,
    );
    let &(d, n, sizes) = REQUESTS
        .iter()
        .find(|(d, n, _)| typ == u32::from(b'P') && *d == dir && *n == nr)
        .ok_or(SizeError::Unknown)?;
    let kernel = *sizes.last().expect("a size");
    if user < kernel && !sizes.contains(&user) {
        return Err(SizeError::Unknown);
    }
    Ok((number(d, n, kernel), kernel, user))
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::new(data);
    let mode = r.u8();
    let raw = r.u32();
    let any_size = usize::from(u16::from_le_bytes(r.bytes())) & 0x3fff;
    let pick = usize::from(mode & 7) + if mode & 8 == 0 && raw & 1 != 0 { 8 } else { 0 };
    let (dir, nr, sizes) = REQUESTS[pick % REQUESTS.len()];
    let today = *sizes.last().expect("a size");
    let size = match (mode >> 4) & 3 {
        0 => sizes[usize::from(mode >> 6) % sizes.len()],
        1 => sizes[usize::from(mode >> 6) % sizes.len()].saturating_sub(1),
        2 => today + 8,
        _ => any_size,
    };
    let cmd = if mode & 8 != 0 {
        raw
    } else {
        number(dir, nr, size)
    };

    let got = arg_size(cmd);
    let want = model(cmd);
    match (got, want) {
        (Ok(a), Ok((today, kernel, user))) => {
            let copy = user.min(kernel);
            let reads_back = today >> 31 != 0; // _IOC_READ
            assert_eq!(
                a,
                ArgSize {
                    cmd: today,
                    user,
                    kernel,
                    copy_in: copy,
                    copy_out: if reads_back { copy } else { 0 },
                },
                "arg_size({cmd:#x})"
            );
            assert!(a.kernel <= MAX_ARG_SIZE);
            // The caller's struct: the rest of the input, zero-filled to its size.
            let mut user_bytes = vec![0u8; user];
            for (b, v) in user_bytes.iter_mut().zip(r.rest()) {
                *b = *v;
            }
            let tail = a.tail();
            assert_eq!(
                tail,
                if user > kernel {
                    kernel..user
                } else {
                    kernel..kernel
                }
            );
            let nonzero = user_bytes
                .get(kernel..)
                .is_some_and(|t| t.iter().any(|&b| b != 0));
            assert_eq!(
                check_tail(user_bytes.get(tail).unwrap_or(&[])),
                if nonzero {
                    Err(SizeError::TooBig)
                } else {
                    Ok(())
                }
            );
            // What the driver works on: the caller's first min(user, kernel) bytes, then zeros
            // (an older program's missing fields are the defaults).
            let mut out = [0xa5u8; MAX_ARG_SIZE];
            widen(&a, &user_bytes, &mut out);
            for i in 0..kernel {
                let want = if i < copy { user_bytes[i] } else { 0 };
                assert_eq!(out[i], want, "byte {i} of {cmd:#x}");
            }
            assert!(
                out[kernel..].iter().all(|&b| b == 0xa5),
                "widen wrote past the struct"
            );
            assert!(
                check_ioctl(cmd, true).is_ok(),
                "check_ioctl refused {cmd:#x}"
            );
        }
        (Err(e), Err(m)) => {
            assert_eq!(e, m, "arg_size({cmd:#x})");
            assert_eq!(e.errno(), 25);
            assert_eq!(check_ioctl(cmd, true), Err(PlanError::UnknownCommand));
        }
        (got, want) => panic!("arg_size({cmd:#x}) = {got:?}, model {want:?}"),
    }
});
