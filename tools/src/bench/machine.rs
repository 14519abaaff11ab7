//! The machine a run measured on ([`Machine`]), and the hugetlb pool it borrows: the test
//! bed's [`HugePages`] (one machine-wide ledger of `vm.nr_hugepages`, shared with the
//! library's tests and any other pktmap process), put back by [`ExitOnSignal`] if a signal ends the run.

use super::sys;
pub use pktmap_testbed::{free_huge_pages, HugePages};
use std::io;

/// The machine a report was measured on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Machine {
    /// `/proc/cpuinfo`'s first `model name`.
    pub cpu: String,
    /// Online CPUs.
    pub cores: usize,
    /// `MemTotal`, in bytes.
    pub memory: u64,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// Whether `/sys/class/dmi/id/sys_vendor` or cpuinfo's `hypervisor` flag says VM.
    pub virtualized: bool,
    /// The 1-minute load average when the run started, and when it ended.
    pub load: (f64, f64),
    /// The UTC date the run started, `YYYY-MM-DD`.
    pub date: String,
}

impl Machine {
    /// Reads what `/proc` says about this machine (fields it cannot read stay empty).
    ///
    /// # Examples
    /// ```
    /// let m = pktmap_tools::bench::Machine::read();
    /// assert!(m.cores >= 1);
    /// assert_eq!(m.date.len(), 10);
    /// ```
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
        let virtualized = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| meminfo_field(&s, "MemTotal"))
            .map_or(0, |kib| kib * 1024);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
            virtualized,
            load: (load_average(), 0.0),
            date: utc_date(std::time::SystemTime::now()),
        }
    }

    /// One line: `Intel Xeon, 2 cores, 24 GiB, Linux 6.18 (VM), load 0.5→0.7, 2026-11-22`.
    ///
    /// # Examples
    /// ```
    /// use pktmap_tools::bench::Machine;
    /// let s = Machine::read().summary();
    /// assert!(s.contains(" cores, "));
    /// let guest = Machine { cores: 2, memory: 512 << 20, ..Machine::default() };
    /// assert!(guest.summary().contains("2 cores, 512 MiB,"));
    /// ```
    pub fn summary(&self) -> String {
        format!(
            "{}, {} cores, {}, Linux {}{}, load {:.2}→{:.2}, {}",
            if self.cpu.is_empty() { "?" } else { &self.cpu },
            self.cores,
            // A small VM (the QEMU guest: 512 MiB) in MiB, not as "0 GiB".
            if self.memory >= 1 << 30 {
                format!("{} GiB", (self.memory + (1 << 29)) >> 30)
            } else {
                format!("{} MiB", (self.memory + (1 << 19)) >> 20)
            },
            self.kernel,
            if self.virtualized { " (VM)" } else { "" },
            self.load.0,
            self.load.1,
            self.date
        )
    }
}

/// The 1-minute load average from `/proc/loadavg` (0 if unreadable).
///
/// # Examples
/// ```
/// assert!(pktmap_tools::bench::load_average() >= 0.0);
/// ```
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
    })
}

/// `YYYY-MM-DD` (UTC) of a time, by the civil-from-days algorithm (no calendar crate).
///
/// # Examples
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// assert_eq!(pktmap_tools::bench::utc_date(t), "2023-11-14");
/// ```
pub fn utc_date(t: std::time::SystemTime) -> String {
    let days = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// While alive, `SIGINT` and `SIGTERM` put back a [`HugePages`] reservation and end the
/// process (status 130); dropping it restores the previous handlers.
///
/// For harnesses that cannot stop between repetitions (criterion); [`run`](super::run) installs its own
/// handler that stops the run instead.
///
/// # Examples
/// ```
/// # fn main() -> std::io::Result<()> {
/// let _guard = pktmap_tools::bench::ExitOnSignal::install()?;
/// // ... reserve hugetlb pages and measure ...
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ExitOnSignal {
    _handler: sys::Interrupt,
}

impl ExitOnSignal {
    /// Installs the handler.
    ///
    /// # Errors
    /// The errno of `sigaction`.
    pub fn install() -> io::Result<ExitOnSignal> {
        sys::Interrupt::install(true).map(|h| ExitOnSignal { _handler: h })
    }
}
