//! Limits stated, not discovered: at start Tutti raises its file-descriptor soft limit to
//! the hard limit where allowed and works out how many connections that allows, so a
//! crowd larger than the machine can hold gets a clear HTTP 503 instead of failed accepts.
//!
//! Must never: raise anything above the hard limit, or fail start-up because the limit
//! could not be read (it logs and carries on with the configured maximum).

/// Descriptors kept for the store, OSC sockets, logs and the listener.
pub const RESERVED_FDS: u64 = 64;

/// The file-descriptor limit after trying to raise it: `(soft, hard)`.
#[allow(unsafe_code)]
pub fn raise_nofile() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every platform
    Some((lim.rlim_cur as u64, lim.rlim_max as u64))
}

/// The connection limit in force: the configured one, lowered to what the descriptor
/// limit allows (one descriptor per connection, minus [`RESERVED_FDS`]).
pub fn effective_max_connections(configured: usize, soft_fds: Option<u64>) -> usize {
    match soft_fds {
        Some(soft) => configured.min(soft.saturating_sub(RESERVED_FDS).max(1) as usize),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_limit() {
        let (soft, hard) = raise_nofile().expect("getrlimit works on Linux");
        assert_eq!(soft, hard);
    }

    #[test]
    fn connections_fit_in_the_descriptors() {
        assert_eq!(effective_max_connections(15_000, Some(20_000)), 15_000);
        assert_eq!(effective_max_connections(15_000, Some(1_024)), 960);
        assert_eq!(effective_max_connections(15_000, None), 15_000);
    }
}
