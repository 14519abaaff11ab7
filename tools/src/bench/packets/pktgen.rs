//! The kernel's packet generator, driven through `/proc/net/pktgen` of the calling thread's
//! network namespace (`Documentation/networking/pktgen.rst`): one device on one kernel
//! thread, a fixed count of frames of one size, in `netif_receive` mode (the frames enter
//! the device's receive path directly, as if its driver had received them: the receive path
//! alone) or `start_xmit` (sent through a device's transmit routine: over a veth pair, end
//! to end).

use std::fs;
use std::io;
use std::path::PathBuf;

/// How pktgen hands its frames to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XmitMode {
    /// `netif_receive`: `netif_receive_skb` on the device, the same skb again for a burst.
    NetifReceive,
    /// `start_xmit`: the device's `ndo_start_xmit` (a veth hands it to its peer).
    StartXmit,
}

impl XmitMode {
    fn name(self) -> &'static str {
        match self {
            XmitMode::NetifReceive => "netif_receive",
            XmitMode::StartXmit => "start_xmit",
        }
    }
}

/// One pktgen job: what [`Pktgen::setup`] writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The device pktgen uses.
    pub device: String,
    /// The kernel thread (`kpktgend_<cpu>`), so the CPU it runs on.
    pub cpu: usize,
    /// How frames are handed over.
    pub mode: XmitMode,
    /// Frames to send (pktgen stops once this many went out).
    pub count: u64,
    /// Frame length in bytes, without the FCS.
    pub frame_len: usize,
    /// Destination MAC, `aa:bb:..`.
    pub dst_mac: String,
}

/// What pktgen counted for a device: frames it handed over and the ones the device or the
/// stack refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// `pkts-sofar`: in `start_xmit` mode, frames the driver took (`NETDEV_TX_OK`); in
    /// `netif_receive` mode, every frame handed to the stack.
    pub sofar: u64,
    /// `errors`: in `start_xmit` mode, frames the device dropped (`NET_XMIT_DROP`: a veth
    /// whose peer's backlog was full); in `netif_receive` mode, frames the *stack* dropped
    /// after every tap saw them (`NET_RX_DROP`), which are not losses of a tap.
    pub errors: u64,
}

/// `/proc/net/pktgen` of the calling thread's namespace.
#[derive(Debug)]
pub struct Pktgen {
    dir: PathBuf,
}

impl Pktgen {
    /// Opens pktgen's directory.
    ///
    /// # Errors
    /// `ENOENT` if pktgen is not loaded (`modprobe pktgen`).
    pub fn open() -> io::Result<Self> {
        let dir = PathBuf::from("/proc/thread-self/net/pktgen");
        if !dir.join("pgctrl").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no /proc/net/pktgen (modprobe pktgen)",
            ));
        }
        Ok(Self { dir })
    }

    /// Writes one command to a pktgen file; for a device file, checks that pktgen answered
    /// `Result: OK`.
    fn write(&self, file: &str, cmd: &str) -> io::Result<()> {
        let path = self.dir.join(file);
        fs::write(&path, cmd)
            .map_err(|e| io::Error::new(e.kind(), format!("pktgen {file}: {cmd}: {e}")))?;
        if file.starts_with("kpktgend_") || file == "pgctrl" {
            return Ok(());
        }
        let text = fs::read_to_string(&path)?;
        match text.lines().find(|l| l.starts_with("Result:")) {
            Some(l) if l.starts_with("Result: OK") => Ok(()),
            other => Err(io::Error::other(format!(
                "pktgen {file}: {cmd}: {}",
                other.unwrap_or("no Result line")
            ))),
        }
    }

    /// Puts `job`'s device, alone, on its thread, with its parameters.
    ///
    /// # Errors
    /// The write's errno (`ENODEV` for an unknown device, `EOPNOTSUPP` for a burst the mode
    /// refuses), or pktgen's own refusal.
    pub fn setup(&self, job: &Job) -> io::Result<()> {
        // Every thread of the namespace: a device left on another one would run too.
        let threads: Vec<String> = fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("kpktgend_"))
            .collect();
        for t in &threads {
            self.remove_all(t)?;
        }
        let thread = format!("kpktgend_{}", job.cpu);
        self.write(&thread, &format!("add_device {}", job.device))?;
        let d = job.device.as_str();
        // The mode first: `burst` and `clone_skb` are checked against it.
        self.write(d, &format!("xmit_mode {}", job.mode.name()))?;
        self.write(d, "clone_skb 0")?;
        self.write(d, "burst 1")?;
        // A fresh skb for every frame, owned by the stack alone. pktgen shares its skb by
        // default (it keeps a reference to send it again), and generic XDP must not expand
        // a shared skb: Debian's 7.3.4 hits BUG() in pskb_expand_head (net/core/skbuff.c)
        // from do_xdp_generic on the first such frame. Same for every mechanism, so fair.
        self.write(d, "flag !SHARED")?;
        self.write(d, &format!("count {}", job.count))?;
        self.write(d, &format!("pkt_size {}", job.frame_len))?;
        self.write(d, "delay 0")?;
        self.write(d, &format!("dst_mac {}", job.dst_mac))?;
        Ok(())
    }

    /// `rem_device_all` on `thread`, then waits until the thread has removed them: the write
    /// only asks the kernel thread, which removes the devices when it next looks (125 ms
    /// later at best, longer on a loaded machine). A removal still pending when the next
    /// device is added and started would stop that run part-way, with a kernel WARNING.
    fn remove_all(&self, thread: &str) -> io::Result<()> {
        self.write(thread, "rem_device_all")?;
        let start = std::time::Instant::now();
        loop {
            let text = fs::read_to_string(self.dir.join(thread))?;
            if thread_is_empty(&text) {
                return Ok(());
            }
            if start.elapsed() > std::time::Duration::from_secs(10) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("pktgen {thread}: devices not removed in 10 s: {text}"),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// `start`: runs `job`'s device to its count; returns when it is done.
    ///
    /// `start` itself may return before the run even began: it waits 125 ms for the kernel
    /// thread to pick the run up and then only while a device is *running*, so on a loaded
    /// machine it can find none running yet. The run is over when the device's `Result:`
    /// line holds a run's result (`... usec, N (...)`) and its thread runs nothing.
    ///
    /// # Errors
    /// The write's errno (`EINTR` if interrupted); `ETIMEDOUT` after a minute.
    pub fn run(&self, job: &Job) -> io::Result<()> {
        self.write("pgctrl", "start")?;
        let thread = format!("kpktgend_{}", job.cpu);
        let start = std::time::Instant::now();
        loop {
            let dev = fs::read_to_string(self.dir.join(&job.device))?;
            let finished = dev
                .lines()
                .any(|l| l.starts_with("Result: OK:") && l.contains(" usec, "));
            if finished && thread_is_idle(&fs::read_to_string(self.dir.join(&thread))?) {
                return Ok(());
            }
            if start.elapsed() > std::time::Duration::from_secs(60) {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("pktgen {}: no result after a minute: {dev}", job.device),
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// What pktgen counted on `device` in its last run.
    ///
    /// # Errors
    /// The read's errno, or `EINVAL` if the file has no `pkts-sofar` line.
    pub fn sent(&self, device: &str) -> io::Result<Sent> {
        let text = fs::read_to_string(self.dir.join(device))?;
        parse_sent(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("pktgen {device}: no pkts-sofar line"),
            )
        })
    }

    /// Takes every device off every thread.
    ///
    /// # Errors
    /// The write's errno.
    pub fn clear(&self) -> io::Result<()> {
        for e in fs::read_dir(&self.dir)? {
            let name = e?.file_name().into_string().unwrap_or_default();
            if name.starts_with("kpktgend_") {
                self.remove_all(&name)?;
            }
        }
        Ok(())
    }
}

/// Whether a `kpktgend_N` file lists no running device.
fn thread_is_idle(text: &str) -> bool {
    text.lines().all(|l| match l.trim().split_once(':') {
        Some(("Running", rest)) => rest.trim().is_empty(),
        _ => true,
    })
}

/// Whether a `kpktgend_N` file lists no device (`Running:` and `Stopped:` both empty).
fn thread_is_empty(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim();
        match l.split_once(':') {
            Some(("Running" | "Stopped", rest)) => rest.trim().is_empty(),
            _ => true,
        }
    })
}

fn parse_sent(text: &str) -> Option<Sent> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let after = |key: &str| -> Option<u64> {
        let i = words.iter().position(|w| *w == key)?;
        words.get(i + 1)?.parse().ok()
    };
    Some(Sent {
        sofar: after("pkts-sofar:")?,
        errors: after("errors:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_device_file() {
        let text = "Params: count 1000  min_pkt_size: 60  max_pkt_size: 60\n\
            Current:\n     pkts-sofar: 1000  errors: 3\n     started: 1us  stopped: 2us idle: 0us\n\
            Result: OK: 1234(c1200+d34) usec, 1000 (60byte,0frags)\n  810000pps 388Mb/sec errors: 3\n";
        assert_eq!(
            parse_sent(text),
            Some(Sent {
                sofar: 1000,
                errors: 3
            })
        );
        assert_eq!(parse_sent("Params: count 1\n"), None);
        assert_eq!(XmitMode::NetifReceive.name(), "netif_receive");
        assert!(thread_is_empty(
            "Running: \nStopped: \nResult: OK: rem_device_all\n"
        ));
        assert!(!thread_is_empty(
            "Running: \nStopped: pkta \nResult: OK: add_device=pkta\n"
        ));
        assert!(!thread_is_empty("Running: pktb \nStopped: \nResult: \n"));
        assert!(thread_is_idle("Running: \nStopped: pkta \nResult: OK\n"));
        assert!(!thread_is_idle("Running: pkta \nStopped: \nResult: OK\n"));
    }
}
