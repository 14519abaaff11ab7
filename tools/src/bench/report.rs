//! What a run found: [`Report`] with its text and Markdown tables, JSON, fault checks.

use super::{Backing, Cell, Machine, Mode, KIB, MIB};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::time::Duration;

/// A size in the largest binary unit that divides it: `4 KiB`, `2 MiB`, `1536 B`.
///
/// # Examples
/// ```
/// assert_eq!(pktmap_tools::bench::size_name(256 << 20), "256 MiB");
/// assert_eq!(pktmap_tools::bench::size_name(512 << 10), "512 KiB");
/// ```
pub fn size_name(len: usize) -> String {
    for (unit, name) in [(1 << 30, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if len >= unit && len % unit == 0 {
            return format!("{} {name}", len / unit);
        }
    }
    format!("{len} B")
}

/// One check of [`Report::fault_checks`].
#[derive(Clone, Debug, PartialEq)]
pub struct FaultCheck {
    /// What was expected of which cell, e.g. `pktmap-lazy 64 KiB write fault-in: ...`.
    pub name: String,
    /// Whether the cell met it.
    pub ok: bool,
    /// What was measured.
    pub detail: String,
}

/// A whole run: the machine, every measured cell and every skipped group with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// The measured cells, group by group, mode by mode.
    pub cells: Vec<Cell>,
    /// Groups that could not run: (backing, size, why).
    pub skipped: Vec<(Backing, usize, String)>,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// The plan's estimate.
    pub estimate: Duration,
}

/// How [`Report`] lays out a table: text of at most [`TEXT_WIDTH`] columns, or Markdown.
#[derive(Clone, Copy)]
enum Grid {
    Text,
    Markdown,
}

/// The text report's width: every line of its tables fits, and longer prose lines wrap.
pub const TEXT_WIDTH: usize = 100;

/// `line` wrapped at spaces to [`TEXT_WIDTH`] columns, continuation lines indented by two; a
/// number stays with its unit (`4 KiB`, `0.6 µs`).
fn wrap(line: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for word in line.split(' ') {
        let unit = ["B", "KiB", "MiB", "GiB", "µs"]
            .iter()
            .any(|u| word.trim_end_matches([',', ';', ':', ')']) == *u);
        match words.last_mut() {
            Some(last) if unit => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    let mut out = String::new();
    let mut col = 0;
    for word in &words {
        let len = word.chars().count();
        if col > 0 && col + 1 + len > TEXT_WIDTH {
            out.push_str("\n  ");
            col = 2;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out
}

/// A fault count per page, short: `0`, `1`, `.078`, `1.06`.
fn faults_num(x: f64) -> String {
    let t = if x == x.round() && x < 100.0 {
        format!("{x:.0}")
    } else if x < 1.0 {
        format!("{x:.3}")
    } else {
        format!("{x:.2}")
    };
    t.strip_prefix('0')
        .filter(|r| r.starts_with('.'))
        .map_or(t.clone(), str::to_string)
}

/// `map/touch` minor faults per page of a cell, short, for the text table.
fn faults_short(c: &Cell) -> String {
    format!(
        "{}/{}",
        faults_num(c.map_faults_per_page),
        faults_num(c.touch_faults_per_page)
    )
}

/// `map / touch` minor faults per page of a cell.
fn faults_text(c: &Cell) -> String {
    format!(
        "{:.3} / {:.3}",
        c.map_faults_per_page, c.touch_faults_per_page
    )
}

/// `0.94–1.12×`, or `1.02×` when both ends print alike (a single size, say).
fn ratio_range(lo: f64, hi: f64) -> String {
    let (lo, hi) = (format!("{lo:.2}"), format!("{hi:.2}"));
    if lo == hi {
        format!("{lo}×")
    } else {
        format!("{lo}–{hi}×")
    }
}

impl Report {
    /// The cell of (backing, size, mode), if measured.
    pub fn cell(&self, backing: Backing, len: usize, mode: Mode) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.backing == backing && c.len == len && c.mode == mode)
    }

    /// The (backing, size) groups measured, in order.
    pub fn groups(&self) -> Vec<(Backing, usize)> {
        let mut g: Vec<(Backing, usize)> = Vec::new();
        for c in &self.cells {
            if !g.contains(&(c.backing, c.len)) {
                g.push((c.backing, c.len));
            }
        }
        g
    }

    /// The modes measured, in order.
    pub fn modes(&self) -> Vec<Mode> {
        Mode::ALL
            .into_iter()
            .filter(|&m| self.cells.iter().any(|c| c.mode == m))
            .collect()
    }

    /// Checks the fault accounting of every `/dev/pktmap` pool cell against
    /// [`Backing::served_faults`]: the faults the driver served per page in each phase must be
    /// exactly as expected, and the thread's minor faults per phase within 0.1 of them (each
    /// served fault is one minor fault; nothing else should fault). A skipped pool group is a
    /// failed check, and with no pool cell at all the result is one failed check, so a run
    /// that measured nothing cannot pass.
    ///
    /// No timing is checked: the numbers are counts.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Cell, Machine, Mode, Report, Sample};
    /// let s = Sample { pages: 16, touch_faults: 16, touch_served: 16, ..Sample::default() };
    /// let cell = Cell::from_samples(Backing::LazyPool, 65536, Mode::WriteFault, &[s]).unwrap();
    /// let mut r = Report { machine: Machine::default(), cells: vec![cell], skipped: vec![],
    ///                      elapsed: Default::default(), estimate: Default::default() };
    /// let checks = r.fault_checks();
    /// assert!(checks.len() == 1 && checks[0].ok, "{checks:?}");
    /// r.cells.clear();
    /// assert!(!r.fault_checks()[0].ok);
    /// ```
    pub fn fault_checks(&self) -> Vec<FaultCheck> {
        let mut out = Vec::new();
        for c in &self.cells {
            let Some((want_map, want_touch)) = c.backing.served_faults(c.mode, c.len) else {
                continue;
            };
            let (map, touch) = c.served_per_page.unwrap_or((f64::NAN, f64::NAN));
            let near = |x: f64, want: f64, tol: f64| (x - want).abs() <= tol;
            let ok = near(map, want_map, 1e-9)
                && near(touch, want_touch, 1e-9)
                && near(c.map_faults_per_page, want_map, 0.1)
                && near(c.touch_faults_per_page, want_touch, 0.1);
            let expect = match (want_map > 0.0, want_touch > 0.0) {
                (false, false) => "no fault while mapping or touching".to_string(),
                (true, false) => {
                    format!("{want_map:.4} faults per page served while mapping, none on touch")
                }
                (false, true) => {
                    format!("no fault while mapping, {want_touch:.4} per page served on touch")
                }
                (true, true) => "faults while mapping and touching".to_string(),
            };
            out.push(FaultCheck {
                name: format!("{} {} {}: {expect}", c.backing, size_name(c.len), c.mode),
                ok,
                detail: format!(
                    "per page, mapping / touching: served {map:.3} / {touch:.3}, \
                     minor {:.3} / {:.3}, {} reps",
                    c.map_faults_per_page, c.touch_faults_per_page, c.ns_per_page.n
                ),
            });
        }
        for (b, len, why) in self.skipped.iter().filter(|(b, _, _)| b.needs_device()) {
            out.push(FaultCheck {
                name: format!("{b} {} measured", size_name(*len)),
                ok: false,
                detail: why.clone(),
            });
        }
        if out.is_empty() {
            out.push(FaultCheck {
                name: "pool groups measured (pktmap-eager, pktmap-lazy)".into(),
                ok: false,
                detail: "no pool cell in the report".into(),
            });
        }
        out
    }

    /// The tables only a `--device` run has: the faults the driver served, and eager against
    /// lazy. Empty without pool cells.
    fn device_tables(&self) -> Vec<Table> {
        let modes = self.modes();
        let mut tables = Vec::new();
        let pools: Vec<(Backing, usize)> = self
            .groups()
            .into_iter()
            .filter(|(b, _)| b.needs_device())
            .collect();
        if pools.is_empty() {
            return tables;
        }
        let mut served = Table {
            caption: "faults the driver served per 4 KiB page (STATE faults_served): while mapping / while touching".into(),
            header: ["backing", "size"].map(String::from).to_vec(),
            rows: Vec::new(),
        };
        served
            .header
            .extend(modes.iter().map(|m| m.name().to_string()));
        for &(b, len) in &pools {
            let mut row = vec![b.name().to_string(), size_name(len)];
            row.extend(modes.iter().map(|&m| {
                match self.cell(b, len, m).and_then(|c| c.served_per_page) {
                    Some((map, touch)) => format!("{map:.3} / {touch:.3}"),
                    None => "-".into(),
                }
            }));
            served.rows.push(row);
        }
        tables.push(served);
        let mut vs = Table {
            caption:
                "pktmap-eager ÷ pktmap-lazy: median ns per page (map + touch), same size and mode"
                    .into(),
            header: vec!["size".into()],
            rows: Vec::new(),
        };
        vs.header.extend(modes.iter().map(|m| m.name().to_string()));
        for &(b, len) in &pools {
            if b != Backing::EagerPool || !pools.contains(&(Backing::LazyPool, len)) {
                continue;
            }
            let mut row = vec![size_name(len)];
            row.extend(modes.iter().map(|&m| {
                match (
                    self.cell(Backing::EagerPool, len, m),
                    self.cell(Backing::LazyPool, len, m),
                ) {
                    (Some(e), Some(l)) if l.ns_per_page.median > 0.0 => {
                        format!("{:.2}×", e.ns_per_page.median / l.ns_per_page.median)
                    }
                    _ => "-".into(),
                }
            }));
            vs.rows.push(row);
        }
        if !vs.rows.is_empty() {
            tables.push(vs);
        }
        let goals = self.goal_table();
        if !goals.rows.is_empty() {
            tables.push(goals);
        }
        tables
    }

    /// The ratios issues #11 and #12 set goals for, per size, from the same interleaved run:
    /// a 2 MiB pool's fault-in per 4 KiB page against a lazy pool's (goal ≤ 0.02×) and against
    /// an eager pool's plain `mmap` (≤ 0.2×, from 64 MiB); a contiguous pool's `mmap` against
    /// an eager pool's (≤ 1.2×); an eager pool's `mmap` with POPULATE against its plain `mmap`
    /// (≤ 1.1×, from 2 MiB); lazy fault-in with fault-around against one page per fault (≤ 0.3×,
    /// from 2 MiB). Each is a ratio of medians of ns per 4 KiB page, map and touch together
    /// unless it says `mmap` (the map phase alone, on both sides: POPULATE's map phase is
    /// `POOL_INFO` and the `mmap`, and comparing it with a plain map *and touch* would charge
    /// it the touch loop).
    fn goal_table(&self) -> Table {
        let mut t = Table {
            caption: "goal ratios (medians of ns per 4 KiB page, same run): huge fault-in ÷ lazy fault-in (≤ 0.02), huge fault-in ÷ eager mmap (≤ 0.2 from 64 MiB), contig mmap ÷ eager mmap (≤ 1.2), eager POPULATE mmap ÷ eager mmap (≤ 1.1 from 2 MiB), lazy16 fault-in ÷ lazy fault-in (≤ 0.3 from 2 MiB)".into(),
            header: [
                "size",
                "huge ÷ lazy",
                "huge ÷ eager mmap",
                "contig mmap ÷ eager mmap",
                "eager POPULATE mmap ÷ eager mmap",
                "lazy16 ÷ lazy",
            ]
            .map(String::from)
            .to_vec(),
            rows: Vec::new(),
        };
        let total = |b, len| {
            self.cell(b, len, Mode::WriteFault)
                .map(|c| c.ns_per_page.median)
        };
        let map = |b, len, m| self.cell(b, len, m).map(|c| c.map_ns_per_page);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.3}×", a / b),
            _ => "-".into(),
        };
        let mut sizes: Vec<usize> = self
            .groups()
            .into_iter()
            .filter(|(b, _)| b.needs_device())
            .map(|(_, len)| len)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        for len in sizes {
            let eager_mmap = map(Backing::EagerPool, len, Mode::WriteFault);
            let row = vec![
                size_name(len),
                ratio(total(Backing::HugePool, len), total(Backing::LazyPool, len)),
                ratio(total(Backing::HugePool, len), eager_mmap),
                ratio(map(Backing::ContigPool, len, Mode::WriteFault), eager_mmap),
                ratio(map(Backing::EagerPool, len, Mode::Pktmap), eager_mmap),
                ratio(
                    total(Backing::AroundPool, len),
                    total(Backing::LazyPool, len),
                ),
            ];
            if row[1..].iter().any(|c| c != "-") {
                t.rows.push(row);
            }
        }
        t
    }

    /// A cell's median divided by pktmap POPULATE's median in its group: above 1, that mode
    /// costs more than pktmap's POPULATE.
    pub fn ratio(&self, cell: &Cell) -> Option<f64> {
        let base = self.cell(cell.backing, cell.len, Mode::Pktmap)?;
        (base.ns_per_page.median > 0.0).then(|| cell.ns_per_page.median / base.ns_per_page.median)
    }

    /// pktmap POPULATE's median divided by its best peer's in group (backing, size), with
    /// that peer: the number the POPULATE goals are about (at most 1.2, aim 1.05).
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Backing, Cell, Machine, Mode, Report, Sample};
    /// let cell = |mode, ns| {
    ///     let s = Sample { pages: 1, map_ns: ns, ..Sample::default() };
    ///     Cell::from_samples(Backing::Existing, 4096, mode, &[s]).unwrap()
    /// };
    /// let r = Report { machine: Machine::default(), skipped: vec![],
    ///                  cells: vec![cell(Mode::Pktmap, 105), cell(Mode::MapPopulate, 100),
    ///                              cell(Mode::Memmap2Populate, 120), cell(Mode::WriteFault, 50)],
    ///                  elapsed: Default::default(), estimate: Default::default() };
    /// assert_eq!(r.vs_best_peer(Backing::Existing, 4096), Some((1.05, Mode::MapPopulate)));
    /// ```
    pub fn vs_best_peer(&self, backing: Backing, len: usize) -> Option<(f64, Mode)> {
        let ours = self.cell(backing, len, Mode::Pktmap)?.ns_per_page.median;
        let best = self
            .cells
            .iter()
            .filter(|c| c.backing == backing && c.len == len && c.mode.is_peer())
            .min_by(|a, b| a.ns_per_page.median.total_cmp(&b.ns_per_page.median))?;
        (best.ns_per_page.median > 0.0).then(|| (ours / best.ns_per_page.median, best.mode))
    }

    /// One line per backing: pktmap POPULATE against its best peer, from 2 MiB up (the range
    /// the goals are about: range and geometric mean of the ratios, the ratio and peer at the
    /// largest size, a verdict against 1.05× and 1.2×) and below 2 MiB (where the few extra
    /// system calls of a checked populate, a fixed cost per mapping, weigh on few pages), and
    /// the faults a touch took after POPULATE, the promise. The report's first lines.
    pub fn conclusions(&self) -> Vec<String> {
        const GOAL_FROM: usize = 2 << 20;
        let mut out = Vec::new();
        for backing in Backing::ALL {
            let ratios: Vec<(usize, f64, Mode)> = self
                .groups()
                .into_iter()
                .filter(|(b, _)| *b == backing)
                .filter_map(|(_, len)| self.vs_best_peer(backing, len).map(|(r, m)| (len, r, m)))
                .collect();
            if ratios.is_empty() {
                continue;
            }
            let (big, small): (Vec<_>, Vec<_>) = ratios.iter().partition(|r| r.0 >= GOAL_FROM);
            let span = |rs: &[&(usize, f64, Mode)]| {
                let lo = rs.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
                let hi = rs.iter().map(|r| r.1).fold(0.0f64, f64::max);
                let geo = (rs.iter().map(|r| r.1.ln()).sum::<f64>() / rs.len() as f64).exp();
                (lo, hi, geo)
            };
            let mut line = format!("{backing}: pktmap POPULATE ÷ best peer");
            if let Some(&&(len, r, peer)) = big.last() {
                let (lo, hi, geo) = span(&big);
                let verdict = if hi <= 1.05 {
                    "at the kernel's best (goal ≤ 1.2×, aim 1.05×)"
                } else if hi <= 1.2 {
                    "within the 1.2× goal"
                } else {
                    "MISSES the 1.2× goal"
                };
                let _ = write!(
                    line,
                    ", 2 MiB and up: {} (geomean {geo:.2}×; {}: {r:.2}× {peer}), {verdict}",
                    ratio_range(lo, hi),
                    size_name(len)
                );
            }
            if !small.is_empty() {
                let (lo, hi, _) = span(&small);
                let _ = write!(line, "; below 2 MiB: {}", ratio_range(lo, hi));
                // The fixed cost per mapping, from the smallest size: (ours − best) × pages.
                let &(len, _, peer) = small[0];
                if let (Some(ours), Some(best)) = (
                    self.cell(backing, len, Mode::Pktmap),
                    self.cell(backing, len, peer),
                ) {
                    let extra =
                        (ours.ns_per_page.median - best.ns_per_page.median) * ours.pages() as f64;
                    // Below 0.05 µs (or pktmap faster) there is no fixed cost to explain.
                    if extra >= 50.0 {
                        let _ = write!(
                            line,
                            " (a fixed {:.1} µs per mapping at {}: the checked populate's extra \
                             calls)",
                            extra / 1000.0,
                            size_name(len)
                        );
                    }
                }
            }
            let touch = self
                .cells
                .iter()
                .filter(|c| c.backing == backing && c.mode == Mode::Pktmap)
                .map(|c| c.touch_faults_per_page)
                .fold(0.0f64, f64::max);
            let _ = write!(line, "; touch faults after it {touch:.3}/page");
            out.push(line);
        }
        out
    }

    /// One table of the report: a caption, a row per (backing, size), a column per mode with
    /// `text(cell)` in it (a dash where the cell was not measured).
    fn grid(&self, style: Grid, caption: &str, text: impl Fn(&Cell) -> String) -> String {
        let modes = self.modes();
        let mut out = String::new();
        match style {
            Grid::Text => {
                let _ = write!(out, "{caption}\n{:<13} {:>7}", "backing", "size");
                for m in &modes {
                    let _ = write!(out, " {:>8}", m.short());
                }
            }
            Grid::Markdown => {
                let _ = write!(out, "{caption}\n\n| backing | size |");
                for m in &modes {
                    let _ = write!(out, " {} |", m.label(""));
                }
                out.push_str("\n|---|---:|");
                for _ in &modes {
                    out.push_str("---:|");
                }
            }
        }
        out.push('\n');
        for (backing, len) in self.groups() {
            let (b, size) = (backing.name(), size_name(len));
            match style {
                Grid::Text => _ = write!(out, "{b:<13} {size:>7}"),
                Grid::Markdown => _ = write!(out, "| {b} | {size} |"),
            }
            for &m in &modes {
                let t = self.cell(backing, len, m).map_or_else(|| "–".into(), &text);
                match style {
                    Grid::Text => _ = write!(out, " {t:>8}"),
                    Grid::Markdown => _ = write!(out, " {t} |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// `median [min–max] ratio` of a cell, the median wrapped in `strong` and the range in
    /// `open`/`close` (no range when `open` is empty).
    fn ns_text(&self, c: &Cell, strong: &str, open: &str, close: &str) -> String {
        let range = if open.is_empty() {
            String::new()
        } else {
            format!(
                " {open}{}–{}{close}",
                num(c.ns_per_page.min),
                num(c.ns_per_page.max)
            )
        };
        format!(
            "{strong}{}{strong}{range} {}",
            num(c.ns_per_page.median),
            self.ratio(c).map_or(String::new(), |r| format!("{r:.2}×"))
        )
    }

    /// The heading lines: what the columns are and what to conclude (wrapped to
    /// [`TEXT_WIDTH`] when there is no bullet: the text report).
    fn legend(&self, out: &mut String, bullet: &str) {
        let intro = "★ pktmap POPULATE (MapFlags::POPULATE): its peers are MAP_POPULATE, memmap2 \
             and the raw MADV_POPULATE_* calls; ratios are ÷ pktmap POPULATE; lower is better";
        for line in std::iter::once(intro.to_string()).chain(self.conclusions()) {
            if bullet.is_empty() {
                let _ = writeln!(out, "{}", wrap(&line));
            } else {
                let _ = writeln!(out, "{bullet}{line}");
            }
        }
    }

    /// The text report: machine, the legend and one conclusion per backing (pktmap POPULATE
    /// against its best peer), a table of medians per 4 KiB page with the ratio to pktmap
    /// POPULATE, a table of minor faults per page (map phase / touch phase), and the skipped
    /// groups.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_tools::bench::{run, Backing, Mode, Schedule};
    /// let plan = Schedule { groups: vec![(Backing::Existing, 8 * 4096)], ..Schedule::quick() };
    /// let r = run(&plan, &mut |_| {})?;
    /// assert_eq!(r.groups(), vec![(Backing::Existing, 8 * 4096)]);
    /// assert_eq!(r.modes().len(), 8);
    /// let ours = r.cell(Backing::Existing, 8 * 4096, Mode::Pktmap).unwrap();
    /// assert_eq!(r.ratio(ours), Some(1.0));
    /// assert!(r.table().lines().nth(1).unwrap().contains("★ pktmap POPULATE"));
    /// assert!(r.table().lines().any(|l| l.starts_with("existing: pktmap POPULATE ÷ best peer")));
    /// assert!(r.table().lines().all(|l| l.chars().count() <= 100));
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "machine: {}", self.machine.summary());
        self.legend(&mut out, "");
        let columns: Vec<String> = self
            .modes()
            .iter()
            .map(|m| format!("{} = {}", m.short(), m.name()))
            .collect();
        // One column's `short = name` is never split over two lines.
        let mut legend = String::from("\ncolumns:");
        let mut col = legend.len() - 1;
        for (i, c) in columns.iter().enumerate() {
            let item = if i + 1 < columns.len() {
                format!("{c},")
            } else {
                c.clone()
            };
            let len = item.chars().count();
            if col + 1 + len > TEXT_WIDTH {
                legend.push_str("\n ");
                col = 1;
            }
            legend.push(' ');
            legend.push_str(&item);
            col += 1 + len;
        }
        let _ = writeln!(out, "{legend}");
        out.push_str(&self.grid(
            Grid::Text,
            "\nns per 4 KiB page, map + touch every page (medians; min–max in --json and --markdown):\n\
             ★pktmap in ns, the others as ratio ÷ ★pktmap",
            |c| match self.ratio(c) {
                Some(r) if c.mode != Mode::Pktmap => format!("{r:.2}×"),
                _ => num(c.ns_per_page.median),
            },
        ));
        out.push_str(&self.grid(
            Grid::Text,
            "\nminor faults per 4 KiB page (getrusage): while mapping/while touching",
            faults_short,
        ));
        for t in self.device_tables() {
            out.push_str(&t.text());
        }
        for (b, len, why) in &self.skipped {
            let _ = writeln!(out, "skipped {b} {}: {why}", size_name(*len));
        }
        let _ = writeln!(
            out,
            "\n{} cells in {:.1} s (estimate {:.0} s)",
            self.cells.len(),
            self.elapsed.as_secs_f64(),
            self.estimate.as_secs_f64()
        );
        out
    }

    /// The tables as Markdown, for the README: the legend and conclusions as a list, ns per
    /// 4 KiB page (median, min–max, ratio ÷ pktmap POPULATE) and minor faults per page (map /
    /// touch); with `/dev/pktmap` pools also the faults the driver served per page and the
    /// eager ÷ lazy ratios.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Machine, Report};
    /// let r = Report { machine: Machine::default(), cells: vec![], skipped: vec![],
    ///                  elapsed: Default::default(), estimate: Default::default() };
    /// assert!(r.markdown().contains("| backing | size |"));
    /// ```
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        self.legend(&mut out, "- ");
        out.push('\n');
        out.push_str(&self.grid(
            Grid::Markdown,
            "ns per 4 KiB page, map + touch every page: **median** (min–max), ratio ÷ pktmap POPULATE",
            |c| self.ns_text(c, "**", "(", ")"),
        ));
        out.push('\n');
        out.push_str(&self.grid(
            Grid::Markdown,
            "minor faults per 4 KiB page (getrusage): while mapping / while touching",
            faults_text,
        ));
        for t in self.device_tables() {
            out.push_str(&t.markdown());
        }
        out
    }

    /// The report as JSON (an object with `machine`, `cells`, `skipped`, `elapsed_s`); pool cells
    /// also carry `map_served_per_page` and `touch_served_per_page`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::{Machine, Report};
    /// let r = Report { machine: Machine::default(), cells: vec![], skipped: vec![],
    ///                  elapsed: Default::default(), estimate: Default::default() };
    /// assert!(r.to_json().starts_with("{\"machine\":{"));
    /// ```
    pub fn to_json(&self) -> String {
        let m = &self.machine;
        let cells: Vec<Value> = self
            .cells
            .iter()
            .map(|c| {
                let mut v = json!({
                    "backing": c.backing.name(),
                    "bytes": c.len,
                    "pages": c.pages(),
                    "mode": c.mode.key(),
                    "reps": c.ns_per_page.n,
                    "ns_per_page": {
                        "median": c.ns_per_page.median,
                        "min": c.ns_per_page.min,
                        "max": c.ns_per_page.max,
                        "q1": c.ns_per_page.q1,
                        "q3": c.ns_per_page.q3,
                    },
                    "map_ns_per_page": c.map_ns_per_page,
                    "touch_ns_per_page": c.touch_ns_per_page,
                    "map_faults_per_page": c.map_faults_per_page,
                    "touch_faults_per_page": c.touch_faults_per_page,
                    "ratio_to_pktmap_populate": self.ratio(c),
                });
                if let Some((map, touch)) = c.served_per_page {
                    v["map_served_per_page"] = json!(map);
                    v["touch_served_per_page"] = json!(touch);
                }
                v
            })
            .collect();
        let skipped: Vec<Value> = self
            .skipped
            .iter()
            .map(|(b, len, why)| json!({"backing": b.name(), "bytes": len, "reason": why}))
            .collect();
        json!({
            "machine": {
                "cpu": m.cpu,
                "cores": m.cores,
                "memory": m.memory,
                "kernel": m.kernel,
                "virtualized": m.virtualized,
                "load_start": m.load.0,
                "load_end": m.load.1,
                "date": m.date,
            },
            "conclusions": self.conclusions(),
            "cells": cells,
            "skipped": skipped,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "estimate_s": self.estimate.as_secs_f64(),
        })
        .to_string()
    }
}

/// A table of [`Report::device_tables`]: its caption, column names and rows of text; the
/// first column is text, the others numbers.
struct Table {
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// Fixed-width text, left-aligned, after a blank line and the caption.
    fn text(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut l = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                let pad = w - cell.chars().count();
                if i > 0 {
                    l.push_str("  ");
                }
                l.push_str(cell);
                l.extend(std::iter::repeat_n(' ', pad));
            }
            l.truncate(l.trim_end().len());
            l.push('\n');
            l
        };
        let mut out = format!("\n{}\n", self.caption);
        out.push_str(&line(&self.header));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// Markdown, after a blank line and the caption.
    fn markdown(&self) -> String {
        let mut out = format!("\n{}\n\n|", self.caption);
        for h in &self.header {
            let _ = write!(out, " {h} |");
        }
        out.push_str("\n|---|");
        for _ in 1..self.header.len() {
            out.push_str("---:|");
        }
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for cell in row {
                let cell = if cell == "-" { "–" } else { cell };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        out
    }
}

/// A number for the tables: no decimals from 100 up, one below.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}
