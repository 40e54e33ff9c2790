//! A process's resident memory as Linux reports it in `/proc/<pid>/status`, for reports and
//! benchmarks. Elsewhere (no `/proc`), or once the process is gone, there is no answer.

/// Which process to ask about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// The calling process.
    This,
    /// Another process by id (e.g. a child still running).
    Pid(u32),
}

/// Peak resident set size in bytes (`VmHWM`): the most memory the process has held at once
/// since it started (or since its peak was last reset).
pub fn peak_rss(p: Process) -> Option<u64> {
    status_bytes(p, "VmHWM:")
}

/// Current resident set size in bytes (`VmRSS`).
pub fn rss(p: Process) -> Option<u64> {
    status_bytes(p, "VmRSS:")
}

/// A `kB` field of `/proc/<pid>/status`, in bytes.
fn status_bytes(p: Process, key: &str) -> Option<u64> {
    let path = match p {
        Process::This => "/proc/self/status".to_string(),
        Process::Pid(pid) => format!("/proc/{pid}/status"),
    };
    let text = std::fs::read_to_string(path).ok()?;
    parse_kb(&text, key)
}

fn parse_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|kb| kb << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kilobyte_fields() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t     12 kB\n";
        assert_eq!(parse_kb(s, "VmHWM:"), Some(2 << 20));
        assert_eq!(parse_kb(s, "VmRSS:"), Some(12 << 10));
        assert_eq!(parse_kb(s, "VmSwap:"), None);
        assert_eq!(parse_kb("VmHWM:\tlots\n", "VmHWM:"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_a_peak_at_least_its_current_size() {
        let now = rss(Process::Pid(std::process::id())).expect("Linux has /proc/<pid>/status");
        let peak = peak_rss(Process::This).expect("and /proc/self/status");
        assert!(peak >= now && now > 0, "peak {peak}, now {now}");
    }
}
