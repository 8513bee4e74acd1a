//! The process's descriptor limit: raised at start to the hard limit, as Elasticsearch asks
//! of its operators (`ulimit -n 65535`), and handed to the store, which refuses an index it
//! could not reopen within it (`engine::FILES_PER_SHARD_MAX`).

use std::io;

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the limit now in force.
pub fn raise_open_files_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    #[allow(unsafe_code)]
    let read = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if read != 0 {
        return Err(io::Error::last_os_error());
    }
    // An unlimited hard limit is still capped by the kernel's `fs.nr_open` (1,048,576 by
    // default), above which the call fails.
    let target = limit.rlim_max.min(1 << 20);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; raising the soft limit up to the hard one needs
        // no privilege.
        #[allow(unsafe_code)]
        let set = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
        if set == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}
