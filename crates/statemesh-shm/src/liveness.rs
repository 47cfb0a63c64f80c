//! Which process owns a slot, and whether it is still alive.
//!
//! An owner word is `pid << 32 | start`, where `start` is the low 32 bits of
//! the process's start time in clock ticks since boot (`/proc/PID/stat`,
//! field 22). The start time tells a live process apart from a later one that
//! was given the same pid, so a crashed reader is detected precisely, with no
//! timeout. Where `/proc` is not available the start is 0 and only the pid is
//! checked.

use std::sync::OnceLock;

/// The owner word of the calling process.
pub(crate) fn this_process() -> u64 {
    static OWNER: OnceLock<u64> = OnceLock::new();
    *OWNER.get_or_init(|| {
        let pid = std::process::id();
        owner_word(pid, start_ticks(pid).unwrap_or(0))
    })
}

fn owner_word(pid: u32, start: u64) -> u64 {
    (u64::from(pid) << 32) | (start & 0xFFFF_FFFF)
}

/// The pid in an owner word.
pub(crate) fn pid_of(owner: u64) -> u32 {
    (owner >> 32) as u32
}

/// What the system says about the process an owner word names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    Alive,
    /// Gone, a zombie, or its pid now belongs to another process.
    Dead,
}

/// Whether the process that wrote `owner` still runs.
pub(crate) fn check(owner: u64) -> Liveness {
    let pid = pid_of(owner);
    // A pid is a positive `pid_t`. Past `i32::MAX` the word was not written
    // by a process (a damaged file): cast, it would turn negative, and
    // `kill(-n, 0)` asks about process group `n` (or, for -1, every process
    // we may signal), answering for processes the word never named.
    let Some(raw) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return Liveness::Dead;
    };
    match rustix::process::test_kill_process(raw) {
        // EPERM: the process exists but belongs to another user.
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return Liveness::Dead,
    }
    match stat_fields(pid) {
        Some((state, start)) => {
            // A killed process whose parent has not reaped it yet is a zombie:
            // it holds no memory any more and will never release its slot.
            let recorded = owner & 0xFFFF_FFFF;
            if state == 'Z' || state == 'X' || (recorded != 0 && (start & 0xFFFF_FFFF) != recorded)
            {
                Liveness::Dead
            } else {
                Liveness::Alive
            }
        }
        // No /proc: trust the signal check.
        None => Liveness::Alive,
    }
}

fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid).map(|(_, start)| start)
}

/// State letter and start time of `pid`, from `/proc/PID/stat`.
fn stat_fields(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

fn parse_stat(stat: &str) -> Option<(char, u64)> {
    // The command name (field 2) is in parentheses and may itself contain
    // spaces and parentheses: fields are counted from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3 (state); field 22 is start time.
    let start = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let line = "1234 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 98765 20";
        assert_eq!(parse_stat(line), Some(('S', 98765)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) Z"), None);
    }

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_dead() {
        assert_eq!(check(this_process()), Liveness::Alive);
        assert_eq!(pid_of(this_process()), std::process::id());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(check(owner_word(pid, 0)), Liveness::Dead);
    }

    #[test]
    fn a_pid_outside_a_pid_t_names_no_process() {
        for pid in [0, 1 << 31, u32::MAX - 1, u32::MAX] {
            assert_eq!(check(owner_word(pid, 0)), Liveness::Dead, "pid {pid}");
        }
        assert_eq!(pid_of(owner_word(u32::MAX, 7)), u32::MAX);
    }

    #[test]
    fn a_reused_pid_is_dead() {
        let me = this_process();
        if me & 0xFFFF_FFFF != 0 {
            let other_start = (me & 0xFFFF_FFFF) ^ 1;
            assert_eq!(check(owner_word(pid_of(me), other_start)), Liveness::Dead);
        }
    }
}
