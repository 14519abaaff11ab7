//! How long and in which order groups run: [`Schedule`], the [`Rounds`] of a group, the
//! round-robin [`run_group`] and [`run_interleaved`], [`Progress`], and the whole [`run`].

use super::machine::{free_huge_pages, load_average, HugePages, Machine};
use super::{
    size_name, sys, Backing, Cell, Mode, Report, Sample, Subject, HUGE_PAGE, KIB, MIB, PAGE,
    PBUF_MAX_LEN,
};
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How many rounds one group runs: a round is one repetition of every mode.
///
/// # Examples
/// ```
/// use pktmap_tools::bench::{Rounds, Schedule};
/// let r = Schedule::quick().rounds();
/// assert_eq!((r.warmup, r.min, r.max), (1, 3, 100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounds {
    /// Rounds run and thrown away first.
    pub warmup: usize,
    /// At least this many measured rounds.
    pub min: usize,
    /// At most this many measured rounds (this wins over `min`).
    pub max: usize,
    /// Keep adding rounds (up to `max`) until the group has run this long.
    pub budget: Duration,
}

/// How long and how often each group runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// The (backing, size) groups, in order.
    pub groups: Vec<(Backing, usize)>,
    /// The modes each group measures.
    pub modes: Vec<Mode>,
    /// Rounds (one repetition of every mode) run and thrown away first, per group.
    pub warmup: usize,
    /// At least this many measured rounds per group.
    pub min_rounds: usize,
    /// At most this many measured rounds per group.
    pub max_rounds: usize,
    /// Keep adding rounds (up to `max_rounds`) until a group has run this long.
    pub budget: Duration,
    /// The `/dev/pktmap` the pool backings map, if any.
    pub device: Option<PathBuf>,
}

impl Schedule {
    /// The default matrix: 4 KiB to 256 MiB for memfds (64 MiB is the probe's size), 2 MiB
    /// to 256 MiB for hugetlb,
    /// 4 KiB to 512 KiB (the largest ring) for io_uring, all four modes, at least 5 measured
    /// rounds and about 1.5 s per group.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Schedule;
    /// let p = Schedule::standard();
    /// assert!(p.groups.iter().any(|&(_, len)| len == 256 << 20));
    /// assert!(p.estimate() < std::time::Duration::from_secs(120));
    /// ```
    pub fn standard() -> Schedule {
        let memfd = [4 * KIB, 64 * KIB, 2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB];
        let mut groups = Vec::new();
        for backing in [Backing::Existing, Backing::Fresh] {
            groups.extend(memfd.iter().map(|&len| (backing, len)));
        }
        groups.extend([2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB].map(|len| (Backing::Hugetlb, len)));
        groups.extend([4 * KIB, 64 * KIB, PBUF_MAX_LEN].map(|len| (Backing::UringPbuf, len)));
        Schedule {
            groups,
            modes: Mode::ALL.to_vec(),
            warmup: 1,
            min_rounds: 5,
            max_rounds: 1000,
            budget: Duration::from_millis(1500),
            device: None,
        }
    }

    /// A small, fast plan (for tests and `--quick`): up to 2 MiB, 3 rounds, 50 ms per group.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Schedule};
    /// let p = Schedule::quick().only(&[Backing::Fresh]);
    /// assert!(p.groups.iter().all(|&(b, _)| b == Backing::Fresh));
    /// assert_eq!(p.huge_pages_needed(), 0);
    /// assert_eq!(Schedule::quick().huge_pages_needed(), 1);
    /// ```
    pub fn quick() -> Schedule {
        let mut groups = Vec::new();
        for backing in [Backing::Existing, Backing::Fresh] {
            groups.extend([4 * KIB, 256 * KIB, 2 * MIB].map(|len| (backing, len)));
        }
        groups.push((Backing::Hugetlb, 2 * MIB));
        groups.extend([4 * KIB, 64 * KIB].map(|len| (Backing::UringPbuf, len)));
        Schedule {
            groups,
            modes: Mode::ALL.to_vec(),
            warmup: 1,
            min_rounds: 3,
            max_rounds: 100,
            budget: Duration::from_millis(50),
            device: None,
        }
    }

    /// Adds eager and lazy pool groups of the `/dev/pktmap` at `device`, at the sizes the plan
    /// maps memfds at ([`Schedule::standard`]: 4 KiB to 256 MiB; [`Schedule::quick`]: up to 2 MiB),
    /// or at the standard sizes if it has no memfd group.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Schedule};
    /// let p = Schedule::quick().with_device_pools("/dev/pktmap".as_ref());
    /// assert!(p.groups.contains(&(Backing::EagerPool, 4096)));
    /// assert!(p.groups.iter().all(|&(_, len)| len <= 2 << 20));
    /// let p = Schedule::standard().with_device_pools("/dev/pktmap".as_ref());
    /// assert!(p.groups.contains(&(Backing::LazyPool, 256 << 20)));
    /// ```
    pub fn with_device_pools(mut self, device: &Path) -> Schedule {
        self.device = Some(device.to_path_buf());
        let mut sizes: Vec<usize> = Vec::new();
        for &(b, len) in &self.groups {
            if matches!(b, Backing::Existing | Backing::Fresh)
                && Backing::EagerPool.supports(len)
                && !sizes.contains(&len)
            {
                sizes.push(len);
            }
        }
        if sizes.is_empty() {
            sizes = vec![4 * KIB, 64 * KIB, 2 * MIB, 16 * MIB, 64 * MIB, 256 * MIB];
        }
        for backing in [Backing::EagerPool, Backing::LazyPool] {
            self.groups.extend(sizes.iter().map(|&len| (backing, len)));
        }
        // The other pool kinds up to 64 MiB (all five of a size are prepared at once, so 256 MiB
        // of each would not fit the guest), where they can map the size (2 MiB pools: whole
        // 2 MiB pages).
        for backing in [Backing::AroundPool, Backing::ContigPool, Backing::HugePool] {
            self.groups.extend(
                sizes
                    .iter()
                    .filter(|&&len| len <= 64 * MIB && backing.supports(len))
                    .map(|&len| (backing, len)),
            );
        }
        self
    }

    /// Keeps only the groups whose backing is in `backings`.
    pub fn only(mut self, backings: &[Backing]) -> Schedule {
        self.groups.retain(|(b, _)| backings.contains(b));
        self
    }

    /// A rough wall-clock estimate of [`run`]: each group's budget, or its minimum rounds if
    /// they take longer, with a rough cost per page for each backing.
    pub fn estimate(&self) -> Duration {
        Duration::from_secs_f64(self.group_estimates().iter().sum())
    }

    /// The estimate of each group, in seconds, in plan order.
    fn group_estimates(&self) -> Vec<f64> {
        self.groups
            .iter()
            .map(|&(backing, len)| {
                let round = (len / PAGE) as f64
                    * backing.rough_ns_per_page()
                    * 1e-9
                    * self.modes.len() as f64
                    + 50e-6;
                let r = self.rounds();
                let min = round * (r.warmup + r.min) as f64;
                let max = round * (r.warmup + r.max) as f64;
                r.budget.as_secs_f64().max(min).min(max)
            })
            .collect()
    }

    /// The rounds each group runs: [`warmup`](Self::warmup), [`min_rounds`](Self::min_rounds),
    /// [`max_rounds`](Self::max_rounds) and [`budget`](Self::budget) together.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Schedule;
    /// let mut plan = Schedule::standard();
    /// plan.min_rounds = 9;
    /// assert_eq!(plan.rounds().min, 9);
    /// ```
    pub fn rounds(&self) -> Rounds {
        Rounds {
            warmup: self.warmup,
            min: self.min_rounds,
            max: self.max_rounds,
            budget: self.budget,
        }
    }

    /// The 2 MiB pages the largest hugetlb group needs at once.
    pub fn huge_pages_needed(&self) -> u64 {
        self.groups
            .iter()
            .filter(|(b, _)| *b == Backing::Hugetlb)
            .map(|&(_, len)| len.div_ceil(HUGE_PAGE) as u64)
            .max()
            .unwrap_or(0)
    }
}

/// Runs every mode of one prepared target round-robin, as [`run`] does for each group.
///
/// `stop` is polled between repetitions; when it returns `true` the group ends with
/// `ErrorKind::Interrupted`.
///
/// # Errors
/// The first repetition's error, or `Interrupted`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_tools::bench::{run_group, Backing, Mode, Rounds, Subject};
/// use std::time::Duration;
/// let mut t = Subject::new(Backing::Existing, 8 * 4096)?;
/// let rounds = Rounds { warmup: 0, min: 3, max: 3, budget: Duration::ZERO };
/// let cells = run_group(&mut t, &[Mode::WriteFault, Mode::ReadFault], rounds, &mut || false)?;
/// assert_eq!(cells.len(), 2);
/// assert_eq!(cells[0].ns_per_page.n, 3);
/// # Ok(()) }
/// ```
pub fn run_group(
    target: &mut Subject,
    modes: &[Mode],
    rounds: Rounds,
    stop: &mut dyn FnMut() -> bool,
) -> io::Result<Vec<Cell>> {
    run_interleaved(std::slice::from_mut(target), modes, rounds, stop)
}

/// As [`run_group`], for several prepared targets at once: every round runs every (target,
/// mode) pair once, in an order shuffled afresh each round ([`round_order`]), so drift hits
/// the targets alike and no pair always runs right after the same other one (a repetition
/// can pay for what its predecessor's unmap left behind), and their ratio can be trusted.
/// [`run`] measures the pools of one size this way. The cells come target by target, mode by
/// mode.
///
/// # Errors
/// The first repetition's error, or `Interrupted`.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_tools::bench::{run_interleaved, Backing, Mode, Rounds, Subject};
/// use std::time::Duration;
/// let mut ts = [Subject::new(Backing::Existing, 4 * 4096)?, Subject::new(Backing::Fresh, 4 * 4096)?];
/// let rounds = Rounds { warmup: 0, min: 2, max: 2, budget: Duration::ZERO };
/// let cells = run_interleaved(&mut ts, &[Mode::WriteFault], rounds, &mut || false)?;
/// assert_eq!(cells.iter().map(|c| c.backing).collect::<Vec<_>>(),
///            [Backing::Existing, Backing::Fresh]);
/// # Ok(()) }
/// ```
pub fn run_interleaved(
    targets: &mut [Subject],
    modes: &[Mode],
    rounds: Rounds,
    stop: &mut dyn FnMut() -> bool,
) -> io::Result<Vec<Cell>> {
    let Rounds {
        warmup,
        min: min_rounds,
        max: max_rounds,
        budget,
    } = rounds;
    let pairs = targets.len() * modes.len();
    let mut samples: Vec<Vec<Sample>> = (0..pairs)
        .map(|_| Vec::with_capacity(max_rounds.min(4096)))
        .collect();
    let start = Instant::now();
    let mut round: usize = 0;
    loop {
        let measured = round.saturating_sub(warmup);
        if pairs == 0
            || measured >= max_rounds.max(1)
            || (measured >= min_rounds.max(1) && start.elapsed() >= budget)
        {
            break;
        }
        for i in round_order(round, pairs) {
            if stop() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
            }
            let (target, mode) = (&mut targets[i / modes.len()], modes[i % modes.len()]);
            if !mode.applies_to(target.backing()) {
                continue; // no cell: Cell::from_samples makes none from no samples
            }
            let s = target.run(mode)?;
            if round >= warmup {
                samples[i].push(s);
            }
        }
        round += 1;
    }
    Ok(samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let t = &targets[i / modes.len()];
            Cell::from_samples(t.backing(), t.len(), modes[i % modes.len()], s)
        })
        .collect())
}

/// The order in which round `round` runs `pairs` (target, mode) pairs: a permutation of
/// `0..pairs`, shuffled (Fisher–Yates) by a generator seeded with the round number, so every
/// run is reproducible while each pair's position and predecessor change from round to round.
///
/// # Examples
/// ```
/// use pktmap_tools::bench::round_order;
/// let mut o = round_order(3, 10);
/// assert_ne!(o, round_order(4, 10));
/// o.sort_unstable();
/// assert_eq!(o, (0..10).collect::<Vec<_>>());
/// ```
pub fn round_order(round: usize, pairs: usize) -> Vec<usize> {
    // splitmix64 of the round, then xorshift64: no dependency, never zero.
    let mut x = (round as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut order: Vec<usize> = (0..pairs).collect();
    for i in (1..pairs).rev() {
        order.swap(i, (next() % (i as u64 + 1)) as usize);
    }
    order
}

/// Where a run is, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Groups finished (or skipped).
    pub done: usize,
    /// Groups in the plan.
    pub total: usize,
    /// The group starting now, if any.
    pub current: Option<(Backing, usize)>,
    /// Time since the run started.
    pub elapsed: Duration,
    /// The estimated total run time: the plan's at first, then the time so far plus the
    /// remaining groups' estimates scaled by how the finished groups compared with theirs.
    pub estimate: Duration,
}

impl Progress {
    /// One line: a bar `width` characters wide, the count, the group, elapsed and estimate.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Progress};
    /// use std::time::Duration;
    /// let p = Progress { done: 1, total: 4, current: Some((Backing::Fresh, 2 << 20)),
    ///                    elapsed: Duration::from_secs(3), estimate: Duration::from_secs(12) };
    /// assert_eq!(p.line(8), "[##------] 1/4 fresh 2 MiB  3s / ~12s");
    /// ```
    pub fn line(&self, width: usize) -> String {
        let filled = (self.done * width).checked_div(self.total).unwrap_or(width);
        let mut s = String::from("[");
        s.extend(std::iter::repeat_n('#', filled));
        s.extend(std::iter::repeat_n('-', width - filled.min(width)));
        let _ = write!(s, "] {}/{}", self.done, self.total);
        if let Some((b, len)) = self.current {
            let _ = write!(s, " {b} {}", size_name(len));
        }
        let _ = write!(
            s,
            "  {}s / ~{}s",
            self.elapsed.as_secs(),
            self.estimate.as_secs()
        );
        s
    }
}

/// Runs a plan: reserves hugetlb pages if it needs them (restoring the setting after, even on
/// error or `SIGINT`), prepares each group and measures it with [`run_group`], calling
/// `progress` before each group and once at the end. A group whose setup fails (no root for
/// hugetlb, io_uring disabled) is skipped with its reason. An eager pool group runs
/// interleaved with the lazy pool group of the same size ([`run_interleaved`]; both pools
/// exist at once); the cells still come in the plan's order.
///
/// # Errors
/// `Interrupted` on `SIGINT`/`SIGTERM`; otherwise the first error of a measured repetition.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_tools::bench::{run, Backing, Schedule};
/// let plan = Schedule { groups: vec![(Backing::Existing, 4 * 4096)], ..Schedule::quick() };
/// let report = run(&plan, &mut |_| {})?;
/// assert_eq!(report.cells.len(), 8); // one per mode
/// # Ok(()) }
/// ```
pub fn run(plan: &Schedule, progress: &mut dyn FnMut(&Progress)) -> io::Result<Report> {
    let mut machine = Machine::read();
    let start = Instant::now();
    let estimate = plan.estimate();
    let estimates = plan.group_estimates();
    let interrupt = sys::Interrupt::install(false)?;
    let mut skipped = Vec::new();
    let needed = plan.huge_pages_needed();
    let mut huge_err = None;
    let _reservation = if needed > 0 {
        match HugePages::reserve_free(needed) {
            Ok(r) => Some(r),
            Err(e) => {
                huge_err = Some(format!(
                    "cannot reserve hugetlb pages in {}: {e}",
                    HugePages::SYSCTL
                ));
                None
            }
        }
    } else {
        None
    };
    let mut cells = Vec::new();
    let total = plan.groups.len();
    // Groups measured together with an earlier one (the lazy half of an eager/lazy pair).
    let mut taken = vec![false; total];
    for (done, &(backing, len)) in plan.groups.iter().enumerate() {
        if taken[done] {
            continue;
        }
        // The estimate updates: the groups still to run, scaled by how the finished ones
        // compared with their own estimates on this machine.
        let elapsed = start.elapsed().as_secs_f64();
        let (finished, left): (f64, f64) = (
            estimates[..done].iter().sum(),
            estimates[done..].iter().sum(),
        );
        let scale = if finished > 0.0 && elapsed > 0.0 {
            elapsed / finished
        } else {
            1.0
        };
        progress(&Progress {
            done,
            total,
            current: Some((backing, len)),
            elapsed: start.elapsed(),
            estimate: Duration::from_secs_f64(elapsed + left * scale),
        });
        if interrupt.raised() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
        }
        if backing == Backing::Hugetlb {
            if let Some(e) = &huge_err {
                skipped.push((backing, len, e.clone()));
                continue;
            }
            let free = free_huge_pages();
            if (len / HUGE_PAGE) as u64 > free {
                skipped.push((
                    backing,
                    len,
                    format!("only {free} free 2 MiB hugetlb pages"),
                ));
                continue;
            }
        }
        let prepare = |backing: Backing| match (&plan.device, backing.needs_device()) {
            (Some(dev), true) => Subject::with_device(backing, len, dev),
            _ => Subject::new(backing, len),
        };
        // An eager pool runs interleaved with the other pools of the same size, if planned.
        let partners: Vec<usize> = if backing == Backing::EagerPool {
            (done + 1..plan.groups.len())
                .filter(|&j| !taken[j])
                .filter(|&j| plan.groups[j].1 == len && plan.groups[j].0.needs_device())
                .collect()
        } else {
            Vec::new()
        };
        let mut targets = Vec::new();
        for b in std::iter::once(backing).chain(partners.iter().map(|&j| plan.groups[j].0)) {
            match prepare(b) {
                Ok(t) => targets.push(t),
                Err(e) => skipped.push((b, len, format!("setup failed: {e}"))),
            }
        }
        for j in partners {
            taken[j] = true;
        }
        let mut stop = || interrupt.raised();
        cells.extend(run_interleaved(
            &mut targets,
            &plan.modes,
            plan.rounds(),
            &mut stop,
        )?);
    }
    progress(&Progress {
        done: total,
        total,
        current: None,
        elapsed: start.elapsed(),
        estimate: start.elapsed(),
    });
    // In the plan's order (a pair's lazy cells were measured with the eager ones).
    let order = |b: Backing, len: usize| plan.groups.iter().position(|&g| g == (b, len));
    cells.sort_by_key(|c| order(c.backing, c.len));
    skipped.sort_by_key(|(b, len, _)| order(*b, *len));
    machine.load.1 = load_average();
    Ok(Report {
        machine,
        cells,
        skipped,
        elapsed: start.elapsed(),
        estimate,
    })
}
