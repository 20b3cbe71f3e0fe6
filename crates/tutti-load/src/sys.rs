//! The operating system's side: file-descriptor limits, CPU time of this process and of
//! its threads, the server's CPU time and memory from `/proc`, the ephemeral port range, and
//! the kernel's receive time of what a socket reads (`SO_TIMESTAMPNS`).
//! These are the only `unsafe` calls of the crate (plain libc calls with owned buffers).
//!
//! Must never: change anything but this process's own soft file-descriptor limit.

use std::time::Duration;

use crate::LoadError;

/// This process's file-descriptor limits after trying to raise the soft one to the hard one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raise the soft RLIMIT_NOFILE to the hard limit; return both.
#[allow(unsafe_code)]
pub(crate) fn raise_fd_limit() -> Result<FdLimit, LoadError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(LoadError::io(
            "reading the file-descriptor limit",
            std::io::Error::last_os_error(),
        ));
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one
        // is always permitted.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    Ok(FdLimit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Whose CPU time to read.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who {
    /// The whole process (all threads).
    Process,
    /// The calling thread only.
    Thread,
}

/// User + system CPU time used so far (microsecond resolution).
#[allow(unsafe_code)]
pub(crate) fn cpu_time(who: Who) -> Duration {
    let which = match who {
        Who::Process => libc::RUSAGE_SELF,
        #[cfg(target_os = "linux")]
        Who::Thread => libc::RUSAGE_THREAD,
        #[cfg(not(target_os = "linux"))]
        Who::Thread => libc::RUSAGE_SELF,
    };
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the duration of the call.
    if unsafe { libc::getrusage(which, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Clock ticks per second for `/proc/PID/stat` times.
#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU time (user + system, all threads) of process `pid`, from `/proc/PID/stat`.
pub(crate) fn process_cpu(pid: u32) -> Result<Duration, LoadError> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LoadError::io(format!("reading {path} (--server-pid {pid})"), e))?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after = text.rsplit_once(')').map(|(_, a)| a).ok_or_else(|| {
        LoadError::io(
            format!("parsing {path}"),
            std::io::ErrorKind::InvalidData.into(),
        )
    })?;
    // After ')' come fields 3.. ; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    match (get(14), get(15)) {
        (Some(u), Some(s)) => Ok(Duration::from_secs_f64((u + s) as f64 / clock_ticks())),
        _ => Err(LoadError::io(
            format!("parsing {path}"),
            std::io::ErrorKind::InvalidData.into(),
        )),
    }
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/PID/status`), or of
/// this process with `None`.
pub(crate) fn rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Number of ephemeral ports per source address (`ip_local_port_range`), if known.
pub(crate) fn ephemeral_ports() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = text.split_whitespace().map(|s| s.parse::<u64>().ok());
    let (lo, hi) = (it.next()??, it.next()??);
    hi.checked_sub(lo).map(|d| d + 1)
}

/// Ask the kernel to stamp what `fd` (a TCP socket) receives with the time it arrived
/// (`SO_TIMESTAMPNS`; read back by [`recv_stamped`]).
#[allow(unsafe_code)]
pub(crate) fn enable_rx_stamps(fd: std::os::fd::RawFd) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for the duration of the call, and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `recvmsg` into `dst`: the bytes read and, when the socket has [`enable_rx_stamps`], the
/// time the kernel received the newest of them (nanoseconds since the Unix epoch; for TCP
/// the last segment the read took from).
#[allow(unsafe_code)]
pub(crate) fn recv_stamped(
    fd: std::os::fd::RawFd,
    dst: &mut [u8],
) -> std::io::Result<(usize, Option<i128>)> {
    let mut iov = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    // Room for one timespec message, aligned as a cmsghdr wants.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is a valid empty one; the pointers set below outlive the
    // call, and the lengths are those of the buffers they point to.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` points at `iov` (over `dst`) and `control`, both alive and writable.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays within `msg.msg_controllen` bytes of `control`, which
    // the kernel filled; the timespec is read unaligned from the message's data.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let t: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                stamp = Some(i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((n as usize, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_figures() {
        let me = std::process::id();
        // Burn a little CPU so the counters move.
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(std::hint::black_box(x), 1);
        assert!(cpu_time(Who::Process) > Duration::ZERO);
        assert!(cpu_time(Who::Thread) > Duration::ZERO);
        process_cpu(me).unwrap();
        assert!(rss_bytes(Some(me)).unwrap() > 0);
        assert!(rss_bytes(None).unwrap() > 0);
        let lim = raise_fd_limit().unwrap();
        assert!(lim.soft >= 1 && lim.soft <= lim.hard);
        assert!(process_cpu(u32::MAX).is_err());
    }
}
