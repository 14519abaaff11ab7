//! The offset codec against hand-written shifts, per offset, over every layout.
//!
//! `cargo bench --bench codec`. Each iteration encodes (or decodes) a batch of 1024 varied
//! inputs, so the reported time divided by 1024 is the cost of one call; the last lines print
//! the codec/hand-written ratios.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pktmap::offset::{af_xdp_types, io_uring_types, pktmap_types, AF_XDP, IO_URING, PKTMAP, VFIO};
use std::hint::black_box;
use std::time::{Duration, Instant};

const N: usize = 1024;

/// Varied but valid inputs for each layout: (layout index, type, id).
fn inputs() -> Vec<(usize, u32, u64)> {
    (0..N as u64)
        .map(|i| match i % 4 {
            0 => (0, (i % 3) as u32, i * 7919 % (1 << 32)),
            1 => (1, io_uring_types::PBUF_RING, i % 2048),
            2 => (2, (i % 4) as u32, 0),
            _ => (3, (i % 64) as u32, (i << 12) % (1 << 40)),
        })
        .collect()
}

#[inline(never)]
fn codec_encode(v: &[(usize, u32, u64)]) -> u64 {
    let mut acc = 0;
    for &(l, t, id) in v {
        let r = match l {
            0 => PKTMAP.encode(t, id),
            1 => IO_URING.encode(t, id),
            2 => AF_XDP.encode(t, id),
            _ => VFIO.encode(t, id),
        };
        acc ^= r.unwrap_or(u64::MAX);
    }
    acc
}

/// What a C header would write: `id << ID_SHIFT | type << TYPE_SHIFT`, with the range checks
/// a careful caller adds by hand.
#[inline(never)]
fn hand_encode(v: &[(usize, u32, u64)]) -> u64 {
    let mut acc = 0;
    for &(l, t, id) in v {
        let r = match l {
            0 if t <= pktmap_types::RING && id < 1 << 32 => Some(id << 15 | (t as u64) << 12),
            1 if t == io_uring_types::PBUF_RING && id < 2048 => Some(0x8000_0000 | id << 16),
            1 if t <= io_uring_types::SQES && id == 0 => Some((t as u64) << 27),
            2 if t <= af_xdp_types::COMPLETION && id == 0 => Some((t as u64) << 31),
            3 if (t as u64) < 1 << 24 && id < 1 << 40 && id & 0xfff == 0 => {
                Some((t as u64) << 40 | id)
            }
            _ => None,
        };
        acc ^= r.unwrap_or(u64::MAX);
    }
    acc
}

#[inline(never)]
fn codec_decode(v: &[(usize, u64)]) -> u64 {
    let mut acc = 0;
    for &(l, off) in v {
        let r = match l {
            0 => PKTMAP.decode(off),
            1 => IO_URING.decode(off),
            2 => AF_XDP.decode(off),
            _ => VFIO.decode(off),
        };
        acc ^= r.map_or(u64::MAX, |(t, id)| id ^ t as u64);
    }
    acc
}

/// The driver-side shifts with the strict checks written out (alignment, stray bits, known
/// type).
#[inline(never)]
fn hand_decode(v: &[(usize, u64)]) -> u64 {
    let mut acc = 0;
    for &(l, off) in v {
        let r = if off & 0xfff != 0 {
            None
        } else {
            match l {
                0 if off >> 47 == 0 && (off >> 12) & 7 <= 2 => Some(((off >> 12) & 7, off >> 15)),
                1 if off & !0xffff_0000 == 0 => {
                    let t = off >> 27;
                    let id = (off >> 16) & 0x7ff;
                    match t {
                        0..=2 if id == 0 => Some((t, 0)),
                        0x10 => Some((t, id)),
                        _ => None,
                    }
                }
                2 if off & !0x1_8000_0000 == 0 => Some((off >> 31, 0)),
                3 => Some((off >> 40, off & ((1 << 40) - 1))),
                _ => None,
            }
        };
        acc ^= r.map_or(u64::MAX, |(t, id)| id ^ t);
    }
    acc
}

fn offsets() -> Vec<(usize, u64)> {
    inputs()
        .into_iter()
        .map(|(l, t, id)| {
            let layout = [&PKTMAP, &IO_URING, &AF_XDP, &VFIO][l];
            (l, layout.encode(t, id).unwrap())
        })
        .collect()
}

/// The median ns per call of `f` over `runs` batches, outside criterion, for the ratio line.
fn median_ns<T: Clone>(input: &T, f: fn(&T) -> u64, runs: usize) -> f64 {
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let i = black_box(input.clone());
            let t = Instant::now();
            black_box(f(&i));
            t.elapsed().as_nanos() as f64 / N as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[runs / 2]
}

fn bench(c: &mut Criterion) {
    let ins = inputs();
    let offs = offsets();
    assert_eq!(codec_encode(&ins), hand_encode(&ins), "same answers");
    assert_eq!(codec_decode(&offs), hand_decode(&offs), "same answers");
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("encode/codec", |b| {
        b.iter_batched_ref(
            || ins.clone(),
            |v| codec_encode(black_box(v)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("encode/hand", |b| {
        b.iter_batched_ref(
            || ins.clone(),
            |v| hand_encode(black_box(v)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode/codec", |b| {
        b.iter_batched_ref(
            || offs.clone(),
            |v| codec_decode(black_box(v)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("decode/hand", |b| {
        b.iter_batched_ref(
            || offs.clone(),
            |v| hand_decode(black_box(v)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let runs = 2001;
    let (ce, he) = (
        median_ns(&ins, |v| codec_encode(v), runs),
        median_ns(&ins, |v| hand_encode(v), runs),
    );
    let (cd, hd) = (
        median_ns(&offs, |v| codec_decode(v), runs),
        median_ns(&offs, |v| hand_decode(v), runs),
    );
    println!(
        "codec/hand ratio: encode {:.2} ns / {:.2} ns = {:.2}×, decode {:.2} ns / {:.2} ns = {:.2}×",
        ce,
        he,
        ce / he,
        cd,
        hd,
        cd / hd
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50);
    targets = bench
}
criterion_main!(benches);
