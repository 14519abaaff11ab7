//! Medians and extremes ([`Stats`]) and the summary of one measured cell ([`Cell`]).

use super::{Backing, Mode, Sample, PAGE};

/// Median, quartiles, extremes and count of a set of values.
///
/// # Examples
/// ```
/// use pktmap_tools::bench::Stats;
/// let s = Stats::of(&[3.0, 1.0, 2.0, 10.0]).unwrap();
/// assert_eq!((s.n, s.median, s.min, s.max), (4, 2.5, 1.0, 10.0));
/// assert_eq!((s.q1, s.q3), (1.75, 4.75));
/// assert!(Stats::of(&[]).is_none());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// How many values.
    pub n: usize,
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The first quartile (linear interpolation between the closest ranks): with `q3`, the
    /// middle half of the values, which a preempted repetition does not stretch as it does
    /// `max`.
    pub q1: f64,
    /// The third quartile.
    pub q3: f64,
}

impl Stats {
    /// The statistics of `values`, or `None` if there are none (NaNs sort last).
    pub fn of(values: &[f64]) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let quantile = |q: f64| {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        Some(Stats {
            n,
            median,
            min: v[0],
            max: v[n - 1],
            q1: quantile(0.25),
            q3: quantile(0.75),
        })
    }
}

/// The result of one cell: the samples' statistics per 4 KiB page.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// What was mapped.
    pub backing: Backing,
    /// The mapping length in bytes.
    pub len: usize,
    /// How pages were brought in.
    pub mode: Mode,
    /// Map + touch ns per page over the repetitions.
    pub ns_per_page: Stats,
    /// The median of the map phase alone, ns per page.
    pub map_ns_per_page: f64,
    /// The median of the touch phase alone, ns per page.
    pub touch_ns_per_page: f64,
    /// Minor faults per page in the map phase, over all repetitions.
    pub map_faults_per_page: f64,
    /// Minor faults per page in the touch phase, over all repetitions.
    pub touch_faults_per_page: f64,
    /// Faults the driver served per page while mapping and while touching, over all
    /// repetitions; `None` unless the backing is a `/dev/pktmap` pool.
    pub served_per_page: Option<(f64, f64)>,
}

impl Cell {
    /// Summarizes the samples of one cell; `None` without samples.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Cell, Mode, Sample};
    /// let s = |ns, f| Sample { pages: 10, touch_ns: ns, touch_faults: f, ..Sample::default() };
    /// let c = Cell::from_samples(Backing::Fresh, 40960, Mode::WriteFault,
    ///                            &[s(1000, 10), s(3000, 10), s(2000, 9)]).unwrap();
    /// assert_eq!(c.ns_per_page.median, 200.0);
    /// assert!((c.touch_faults_per_page - 29.0 / 30.0).abs() < 1e-9);
    /// assert_eq!(c.served_per_page, None); // only pool backings count the driver's faults
    /// ```
    pub fn from_samples(
        backing: Backing,
        len: usize,
        mode: Mode,
        samples: &[Sample],
    ) -> Option<Cell> {
        let per_page = |f: fn(&Sample) -> f64| -> Vec<f64> { samples.iter().map(f).collect() };
        let ns_per_page = Stats::of(&per_page(Sample::ns_per_page))?;
        let map = Stats::of(&per_page(|s| s.map_ns as f64 / s.pages.max(1) as f64))?;
        let touch = Stats::of(&per_page(|s| s.touch_ns as f64 / s.pages.max(1) as f64))?;
        let pages: u64 = samples.iter().map(|s| s.pages).sum::<u64>().max(1);
        let sum = |f: fn(&Sample) -> u64| samples.iter().map(f).sum::<u64>() as f64;
        Some(Cell {
            backing,
            len,
            mode,
            ns_per_page,
            map_ns_per_page: map.median,
            touch_ns_per_page: touch.median,
            map_faults_per_page: sum(|s| s.map_faults) / pages as f64,
            touch_faults_per_page: sum(|s| s.touch_faults) / pages as f64,
            served_per_page: backing.needs_device().then(|| {
                (
                    sum(|s| s.map_served) / pages as f64,
                    sum(|s| s.touch_served) / pages as f64,
                )
            }),
        })
    }

    /// 4 KiB pages per mapping.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Cell, Mode, Sample};
    /// let s = Sample { pages: 2, ..Sample::default() };
    /// let c = Cell::from_samples(Backing::Existing, 8192, Mode::ReadFault, &[s]).unwrap();
    /// assert_eq!(c.pages(), 2);
    /// ```
    pub fn pages(&self) -> u64 {
        (self.len / PAGE) as u64
    }
}
