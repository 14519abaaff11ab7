//! [`HugePages`]: 2 MiB pages reserved in the hugetlb pool (`vm.nr_hugepages`) while a guard
//! lives, counted process-wide.
//!
//! A test or a benchmark that maps hugetlb memory grows the pool itself, so it runs on a
//! machine that has none configured (CI's), and puts the old size back afterwards. Two
//! reservations in one process (two tests of one test binary, running on two threads) must
//! neither fight over the sysctl nor leave pages behind, so every reservation goes through one
//! ledger per sysctl file: the size before the first live reservation (the *baseline*) and the
//! pages all live reservations hold. Each reservation writes `baseline + held`, each release
//! writes it again with its own pages taken off, and the last one writes the baseline back,
//! whatever order they end in.
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// The pool size before the first live reservation of a sysctl file, and the pages held.
struct Ledger {
    path: PathBuf,
    baseline: u64,
    held: u64,
}

/// Every sysctl file (the real one, or a test's stand-in) with live reservations.
static LEDGERS: Mutex<Vec<Ledger>> = Mutex::new(Vec::new());

/// The baseline of [`HugePages::SYSCTL`] while a reservation of it lives, `u64::MAX` otherwise:
/// what a signal handler writes back ([`HugePages::take_signal_restore`]).
static SIGNAL_RESTORE: AtomicU64 = AtomicU64::new(u64::MAX);

fn ledgers() -> MutexGuard<'static, Vec<Ledger>> {
    // A panic while holding the lock leaves the ledger as consistent as the file: go on.
    LEDGERS.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_number(path: &Path) -> io::Result<u64> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    text.trim().parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {text:?}: {e}", path.display()),
        )
    })
}

fn write_number(path: &Path, n: u64) -> io::Result<()> {
    std::fs::write(path, format!("{n}\n")).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::PermissionDenied {
            " (needs root)"
        } else {
            ""
        };
        io::Error::new(
            e.kind(),
            format!("cannot set {} to {n}: {e}{hint}", path.display()),
        )
    })
}

/// 2 MiB pages added to the hugetlb pool for as long as this lives (and given back on drop,
/// or by [`restore`](Self::restore), which reports errors).
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// use pktmap_testbed::HugePages;
/// // A file standing in for /proc/sys/vm/nr_hugepages (the real one needs root).
/// let sysctl = std::env::temp_dir().join(format!("nr_hugepages-doc-{}", std::process::id()));
/// std::fs::write(&sysctl, "3\n")?;
/// let a = HugePages::reserve_at(&sysctl, 2)?;
/// let b = HugePages::reserve_at(&sysctl, 5)?; // on top of `a`'s, not instead of them
/// assert_eq!(std::fs::read_to_string(&sysctl)?.trim(), "10");
/// drop(a);
/// assert_eq!(std::fs::read_to_string(&sysctl)?.trim(), "8"); // `b`'s 5 stay
/// b.restore()?;
/// assert_eq!(std::fs::read_to_string(&sysctl)?.trim(), "3");
/// # std::fs::remove_file(&sysctl)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HugePages {
    path: PathBuf,
    pages: u64,
    baseline: u64,
}

impl HugePages {
    /// The sysctl that sets the hugetlb pool size.
    pub const SYSCTL: &'static str = "/proc/sys/vm/nr_hugepages";

    /// Adds `pages` 2 MiB pages to the hugetlb pool, on top of what this process's other
    /// reservations hold.
    ///
    /// # Errors
    /// The error reading or writing [`SYSCTL`](Self::SYSCTL) (`PermissionDenied` without
    /// root), or `OutOfMemory` if the kernel found fewer pages (memory too fragmented), in
    /// which case the pool is put back as it was.
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// let _pages = pktmap_testbed::HugePages::reserve(2)?; // needs root
    /// let fd = rustix::fs::memfd_create("huge", rustix::fs::MemfdFlags::HUGETLB)?;
    /// rustix::fs::ftruncate(&fd, 4 << 20)?; // two 2 MiB pages, there for the mapping
    /// # Ok(()) }
    /// ```
    pub fn reserve(pages: u64) -> io::Result<HugePages> {
        Self::grow(Path::new(Self::SYSCTL), pages, true)
    }

    /// As [`reserve`](Self::reserve), for a test: panics saying why (no root, a fragmented
    /// memory) instead of returning the error, so a hugetlb test fails with the reason.
    ///
    /// # Panics
    /// When [`reserve`](Self::reserve) fails.
    ///
    /// # Examples
    /// ```no_run
    /// let _pages = pktmap_testbed::HugePages::require(1);
    /// // ... map and touch one 2 MiB page ...
    /// ```
    pub fn require(pages: u64) -> HugePages {
        Self::reserve(pages)
            .unwrap_or_else(|e| panic!("hugetlb test: cannot reserve {pages} 2 MiB pages: {e}"))
    }

    /// Makes at least `pages` 2 MiB pages free in the pool, adding only what
    /// `HugePages_Free` lacks (none on a machine whose pool is big enough, which then needs no
    /// root). The kernel may find fewer: [`free_huge_pages`] says what there is.
    ///
    /// # Errors
    /// The error reading or writing [`SYSCTL`](Self::SYSCTL).
    ///
    /// # Examples
    /// ```no_run
    /// # fn main() -> std::io::Result<()> {
    /// use pktmap_testbed::{free_huge_pages, HugePages};
    /// let r = HugePages::reserve_free(128)?;
    /// println!("{} pages added, {} free", r.pages(), free_huge_pages());
    /// # Ok(()) }
    /// ```
    pub fn reserve_free(pages: u64) -> io::Result<HugePages> {
        let missing = pages.saturating_sub(free_huge_pages());
        Self::grow(Path::new(Self::SYSCTL), missing, false)
    }

    /// As [`reserve`](Self::reserve), but on the number in the file at `path` (a stand-in
    /// for the sysctl, for tests), with its own process-wide ledger.
    ///
    /// # Errors
    /// The error reading or writing `path`, or `InvalidData` if it holds no number.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let f = std::env::temp_dir().join(format!("nr_hugepages-at-{}", std::process::id()));
    /// std::fs::write(&f, "1\n")?;
    /// let r = pktmap_testbed::HugePages::reserve_at(&f, 4)?;
    /// assert_eq!((r.baseline(), r.pages()), (1, 4));
    /// # drop(r);
    /// # std::fs::remove_file(&f)?;
    /// # Ok(()) }
    /// ```
    pub fn reserve_at(path: &Path, pages: u64) -> io::Result<HugePages> {
        Self::grow(path, pages, true)
    }

    fn grow(path: &Path, pages: u64, strict: bool) -> io::Result<HugePages> {
        let mut all = ledgers();
        let at = all.iter().position(|l| l.path == path);
        let (baseline, held) = match at {
            Some(i) => (all[i].baseline, all[i].held),
            None => (read_number(path)?, 0),
        };
        let guard = |pages| HugePages {
            path: path.to_path_buf(),
            pages,
            baseline,
        };
        if pages == 0 {
            return Ok(guard(0));
        }
        let target = baseline + held + pages;
        write_number(path, target)?;
        let now = read_number(path)?;
        if strict && now < target {
            // Put back what the others hold; nothing is ours yet.
            let _ = write_number(path, baseline + held);
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "asked the kernel for {target} huge pages in {}, it has {now} (memory too \
                     fragmented?)",
                    path.display()
                ),
            ));
        }
        match at {
            Some(i) => all[i].held += pages,
            None => all.push(Ledger {
                path: path.to_path_buf(),
                baseline,
                held: pages,
            }),
        }
        if path == Path::new(Self::SYSCTL) {
            SIGNAL_RESTORE.store(baseline, Ordering::SeqCst);
        }
        Ok(guard(pages))
    }

    /// The pages this reservation added (0 when [`reserve_free`](Self::reserve_free) found
    /// enough free).
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let f = std::env::temp_dir().join(format!("nr_hugepages-pages-{}", std::process::id()));
    /// std::fs::write(&f, "0\n")?;
    /// assert_eq!(pktmap_testbed::HugePages::reserve_at(&f, 0)?.pages(), 0); // touches nothing
    /// # std::fs::remove_file(&f)?;
    /// # Ok(()) }
    /// ```
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// The pool size before this process's first live reservation: what the last release
    /// writes back.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let f = std::env::temp_dir().join(format!("nr_hugepages-base-{}", std::process::id()));
    /// std::fs::write(&f, "6\n")?;
    /// let a = pktmap_testbed::HugePages::reserve_at(&f, 1)?;
    /// let b = pktmap_testbed::HugePages::reserve_at(&f, 1)?;
    /// assert_eq!((a.baseline(), b.baseline()), (6, 6)); // not 7 for `b`
    /// # drop((a, b));
    /// # std::fs::remove_file(&f)?;
    /// # Ok(()) }
    /// ```
    pub fn baseline(&self) -> u64 {
        self.baseline
    }

    /// Gives the pages back now and reports the error `Drop` would ignore.
    ///
    /// # Errors
    /// The error writing the sysctl.
    ///
    /// # Examples
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let f = std::env::temp_dir().join(format!("nr_hugepages-rest-{}", std::process::id()));
    /// std::fs::write(&f, "2\n")?;
    /// pktmap_testbed::HugePages::reserve_at(&f, 3)?.restore()?;
    /// assert_eq!(std::fs::read_to_string(&f)?.trim(), "2");
    /// # std::fs::remove_file(&f)?;
    /// # Ok(()) }
    /// ```
    pub fn restore(mut self) -> io::Result<()> {
        self.release()
    }

    fn release(&mut self) -> io::Result<()> {
        if self.pages == 0 {
            return Ok(());
        }
        let pages = std::mem::take(&mut self.pages);
        let mut all = ledgers();
        let Some(i) = all.iter().position(|l| l.path == self.path) else {
            return Ok(());
        };
        all[i].held = all[i].held.saturating_sub(pages);
        let value = all[i].baseline + all[i].held;
        if all[i].held == 0 {
            all.remove(i);
            if self.path == Path::new(Self::SYSCTL) {
                SIGNAL_RESTORE.store(u64::MAX, Ordering::SeqCst);
            }
        }
        write_number(&self.path, value)
    }

    /// For a signal handler: the baseline of [`SYSCTL`](Self::SYSCTL) to write back if a
    /// reservation of it lives, taken so that it is written once. Async-signal-safe (one
    /// atomic swap; no lock, no allocation).
    ///
    /// # Examples
    /// ```
    /// // No reservation of the real sysctl in this process: nothing to write back.
    /// assert_eq!(pktmap_testbed::HugePages::take_signal_restore(), None);
    /// ```
    pub fn take_signal_restore() -> Option<u64> {
        let v = SIGNAL_RESTORE.swap(u64::MAX, Ordering::SeqCst);
        (v != u64::MAX).then_some(v)
    }
}

impl Drop for HugePages {
    fn drop(&mut self) {
        // Drop cannot report; `restore` does.
        let _ = self.release();
    }
}

/// `HugePages_Free` from `/proc/meminfo`: 2 MiB pages free in the hugetlb pool (0 if it
/// cannot be read).
///
/// # Examples
/// ```
/// let free = pktmap_testbed::free_huge_pages(); // 0 unless the pool was grown
/// # let _ = free;
/// ```
pub fn free_huge_pages() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::HugePages;
    use std::path::PathBuf;

    fn sysctl(name: &str, value: u64) -> PathBuf {
        let f = std::env::temp_dir().join(format!("pktmap-hp-{name}-{}", std::process::id()));
        std::fs::write(&f, format!("{value}\n")).unwrap();
        f
    }

    fn read(f: &PathBuf) -> u64 {
        std::fs::read_to_string(f).unwrap().trim().parse().unwrap()
    }

    #[test]
    fn overlapping_reservations_stack_and_unwind_in_any_order() {
        let f = sysctl("overlap", 7);
        let a = HugePages::reserve_at(&f, 10).unwrap();
        let b = HugePages::reserve_at(&f, 3).unwrap();
        assert_eq!(read(&f), 20);
        drop(a); // the first one ends first: b's pages stay
        assert_eq!(read(&f), 10);
        let c = HugePages::reserve_at(&f, 1).unwrap();
        assert_eq!((read(&f), c.baseline()), (11, 7));
        b.restore().unwrap();
        drop(c);
        assert_eq!(read(&f), 7);
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn threads_reserving_at_once_leave_the_pool_as_it_was() {
        let f = sysctl("threads", 4);
        std::thread::scope(|s| {
            for t in 0..8 {
                let f = &f;
                s.spawn(move || {
                    for i in 0..50 {
                        let r = HugePages::reserve_at(f, 1 + (t + i) % 3).unwrap();
                        assert_eq!(r.baseline(), 4);
                    }
                });
            }
        });
        assert_eq!(read(&f), 4);
        std::fs::remove_file(&f).unwrap();
    }

    #[test]
    fn a_panic_gives_the_pages_back_and_bad_files_are_errors() {
        let f = sysctl("panic", 2);
        let g = f.clone();
        let panicked = std::panic::catch_unwind(move || {
            let _r = HugePages::reserve_at(&g, 3).unwrap();
            panic!("a failing test");
        });
        assert!(panicked.is_err());
        assert_eq!(read(&f), 2);
        // Nothing to reserve: the file is not touched, even by the drop.
        let r = HugePages::reserve_at(&f, 0).unwrap();
        std::fs::write(&f, "9\n").unwrap();
        drop(r);
        assert_eq!(read(&f), 9);
        std::fs::write(&f, "not a number").unwrap();
        let e = HugePages::reserve_at(&f, 1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        std::fs::remove_file(&f).unwrap();
        let gone = HugePages::reserve_at(&f, 1).unwrap_err();
        assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
    }
}
