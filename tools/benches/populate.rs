//! pktmap POPULATE against its peers (the kernel's `MAP_POPULATE`, memmap2's `populate()` and
//! `advise(PopulateWrite)`, the raw `MADV_POPULATE_*` calls) and fault-in, per 4 KiB page, and
//! `resource::map` against the raw syscall.
//!
//! `cargo bench --bench populate`. Throughput is in 4 KiB pages, so criterion's "elem/s" is
//! pages per second; its time is the map + touch-every-page cost of one mapping (unmapping
//! and freeing are not timed). The same cells as `pktmap bench`, through the same
//! [`pktmap_tools::bench::Subject`]; `pktmap bench` adds the fault counts, the min–max table and
//! the plot. Hugetlb pages are reserved for the hugetlb group and given back after (also on
//! Ctrl-C); without root that group is skipped.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pktmap::resource::{map, MapFlags};
use pktmap_tools::bench::{size_name, Backing, ExitOnSignal, HugePages, Mode, Subject};
use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
use rustix::mm::{mmap, munmap, MapFlags as SysMapFlags, ProtFlags};
use std::hint::black_box;
use std::time::Duration;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

fn matrix(c: &mut Criterion, backing: Backing, sizes: &[usize]) {
    let mut g = c.benchmark_group(format!("populate/{}", backing.name()));
    g.sampling_mode(SamplingMode::Flat);
    for &len in sizes {
        let mut target = match Subject::new(backing, len) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("skipping {backing} {}: {e}", size_name(len));
                continue;
            }
        };
        g.throughput(Throughput::Elements(target.pages()));
        g.sample_size(if len >= 16 * MIB { 10 } else { 20 });
        for mode in Mode::ALL {
            let id = format!("{}/{}", mode.key(), size_name(len).replace(' ', ""));
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let s = target.run(mode).expect("repetition");
                        total += Duration::from_nanos(s.map_ns + s.touch_ns);
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

fn memfds(c: &mut Criterion) {
    let sizes = [4 * KIB, 64 * KIB, 2 * MIB, 16 * MIB, 256 * MIB];
    matrix(c, Backing::Existing, &sizes);
    matrix(c, Backing::Fresh, &sizes);
}

fn hugetlb(c: &mut Criterion) {
    let sizes = [2 * MIB, 16 * MIB, 256 * MIB];
    let _signals = ExitOnSignal::install().expect("sigaction");
    let _reservation = match HugePages::reserve_free((256 * MIB / (2 * MIB)) as u64) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "skipping hugetlb: cannot reserve pages in {}: {e}",
                HugePages::SYSCTL
            );
            return;
        }
    };
    matrix(c, Backing::Hugetlb, &sizes);
    // `_reservation` puts nr_hugepages back here; a signal before that puts it back and exits.
}

fn uring(c: &mut Criterion) {
    matrix(c, Backing::UringPbuf, &[4 * KIB, 64 * KIB, 512 * KIB]);
}

/// The library's `map` + drop against `mmap` + `munmap` by hand, for one page and 2 MiB of a
/// memfd (nothing touched: the call overhead only).
fn map_call(c: &mut Criterion) {
    let fd = memfd_create("pktmap-bench", MemfdFlags::CLOEXEC).unwrap();
    ftruncate(&fd, (2 * MIB) as u64).unwrap();
    let mut g = c.benchmark_group("map_call");
    for len in [4 * KIB, 2 * MIB] {
        let size = size_name(len).replace(' ', "");
        g.bench_function(format!("resource::map/{size}"), |b| {
            b.iter(|| drop(black_box(map(&fd, 0, len, MapFlags::empty()).unwrap())))
        });
        g.bench_function(format!("raw_mmap/{size}"), |b| {
            b.iter(|| {
                let prot = ProtFlags::READ | ProtFlags::WRITE;
                // SAFETY: A null hint without MAP_FIXED cannot replace existing mappings.
                let p =
                    unsafe { mmap(std::ptr::null_mut(), len, prot, SysMapFlags::SHARED, &fd, 0) }
                        .unwrap();
                // SAFETY: `p` is the `len`-byte mapping just made; nothing else uses it.
                unsafe { munmap(black_box(p), len) }.unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = map_call, memfds, hugetlb, uring
}
criterion_main!(benches);
