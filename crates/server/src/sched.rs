//! The scheduler slice the server's threads ask for.
//!
//! A durable write's round trip crosses threads several times: a worker hands the write to its
//! shard's writer thread, the disk's completion wakes the writer in its fsync, the writer wakes
//! the worker that answers. Each time, the woken thread may be put behind another thread that
//! is busy on the same core, and Linux's fair scheduler (EEVDF) lets that one run to the end of
//! its slice first: up to a few milliseconds, on a machine whose cores are all busy with
//! requests. Since Linux 6.12 a thread may ask for a shorter slice (`sched_setattr` with
//! `sched_runtime` under `SCHED_OTHER`); a woken thread with a short slice gets an earlier
//! deadline and runs sooner. The runtime's threads and the writer threads ask for the shortest
//! the kernel grants, [`SLICE`]: 0.1 ms. It made durable conditional writes from many
//! connections faster and their fsyncs shorter under that load (measured in
//! docs/performance.md, session 13).
//!
//! A thread started by one of them inherits the slice (a shard log's background thread, which
//! zero-fills the next segment, is started by the request that opens the index): it then gives
//! way to a woken request thread sooner, as it should.
//!
//! Only the slice changes: a thread's policy and nice value stay as they were (a `nice`d
//! server stays `nice`d), and a thread under a real-time or idle policy is left alone. Older
//! kernels ignore the field, and other systems have no such call.

use std::io;
use std::time::Duration;

/// The slice asked for: the kernel's lower bound for a custom slice.
pub const SLICE: Duration = Duration::from_micros(100);

/// What [`request_short_slice`] did to the calling thread.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The thread's slice is now [`SLICE`] (or the kernel ignores custom slices).
    Asked,
    /// The thread runs under a policy whose slice is not ours to change.
    LeftAlone,
    /// This system has no per-thread slice.
    Unsupported,
}

/// Asks the kernel to schedule the calling thread with a [`SLICE`]-long slice, keeping its
/// policy and nice value.
#[cfg(target_os = "linux")]
pub fn request_short_slice() -> io::Result<Outcome> {
    let mut attr = linux::current()?;
    if attr.sched_policy != linux::SCHED_OTHER && attr.sched_policy != linux::SCHED_BATCH {
        return Ok(Outcome::LeftAlone);
    }
    attr.sched_flags &= linux::SCHED_FLAG_RESET_ON_FORK;
    attr.sched_runtime = SLICE.as_nanos() as u64;
    linux::set_current(&attr)?;
    Ok(Outcome::Asked)
}

#[cfg(not(target_os = "linux"))]
pub fn request_short_slice() -> io::Result<Outcome> {
    Ok(Outcome::Unsupported)
}

/// Asks for the short slice where it can, for a thread the server starts; a refusal only
/// costs speed, so it is logged, not raised.
pub(crate) fn on_thread_start() {
    if let Err(e) = request_short_slice() {
        tracing::debug!("a thread keeps the scheduler's default slice: {e}");
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;

    pub(super) const SCHED_OTHER: u32 = 0;
    pub(super) const SCHED_BATCH: u32 = 3;
    pub(super) const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;

    /// `struct sched_attr` of `<linux/sched/types.h>` (its second version, 56 bytes).
    #[repr(C)]
    #[derive(Debug, Default, Clone)]
    pub(super) struct SchedAttr {
        pub(super) size: u32,
        pub(super) sched_policy: u32,
        pub(super) sched_flags: u64,
        pub(super) sched_nice: i32,
        pub(super) sched_priority: u32,
        pub(super) sched_runtime: u64,
        pub(super) sched_deadline: u64,
        pub(super) sched_period: u64,
        pub(super) sched_util_min: u32,
        pub(super) sched_util_max: u32,
    }

    const SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

    /// The calling thread's scheduling attributes.
    pub(super) fn current() -> io::Result<SchedAttr> {
        let mut attr = SchedAttr::default();
        // SAFETY: `attr` is a live, writable `struct sched_attr` of `SIZE` bytes, the size
        // passed; pid 0 is the calling thread; the kernel writes at most `SIZE` bytes.
        #[allow(unsafe_code)]
        let r = unsafe {
            libc::syscall(
                libc::SYS_sched_getattr,
                0,
                &mut attr as *mut SchedAttr,
                SIZE,
                0,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(attr)
    }

    /// Sets the calling thread's scheduling attributes.
    pub(super) fn set_current(attr: &SchedAttr) -> io::Result<()> {
        let attr = SchedAttr {
            size: SIZE,
            ..attr.clone()
        };
        // SAFETY: `attr` is a live `struct sched_attr` whose `size` field says how many bytes
        // the kernel may read; pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::super::*;
        use super::*;

        /// Whether the running kernel keeps a thread's custom slice (Linux 6.12 and later).
        fn kernel_has_custom_slices() -> bool {
            let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
            let mut parts = release.trim().split(['.', '-']);
            let major: u32 = parts.next().unwrap().parse().unwrap();
            let minor: u32 = parts.next().unwrap().parse().unwrap();
            (major, minor) >= (6, 12)
        }

        #[test]
        fn the_slice_shortens_and_the_policy_and_nice_value_stay() {
            std::thread::spawn(|| {
                // A batch thread at nice 3 (raising one's own nice value needs no privilege).
                let mut attr = current().unwrap();
                attr.sched_policy = SCHED_BATCH;
                attr.sched_nice = 3;
                attr.sched_runtime = 0;
                set_current(&attr).unwrap();

                assert_eq!(request_short_slice().unwrap(), Outcome::Asked);

                let after = current().unwrap();
                assert_eq!(after.sched_policy, SCHED_BATCH);
                assert_eq!(after.sched_nice, 3);
                if kernel_has_custom_slices() {
                    assert_eq!(after.sched_runtime, SLICE.as_nanos() as u64);
                }
            })
            .join()
            .unwrap();
        }

        #[test]
        fn an_idle_policy_thread_is_left_alone() {
            std::thread::spawn(|| {
                const SCHED_IDLE: u32 = 5;
                let mut attr = current().unwrap();
                attr.sched_policy = SCHED_IDLE;
                attr.sched_runtime = 0;
                set_current(&attr).unwrap();
                let before = current().unwrap();

                assert_eq!(request_short_slice().unwrap(), Outcome::LeftAlone);

                let after = current().unwrap();
                assert_eq!(after.sched_policy, SCHED_IDLE);
                assert_eq!(after.sched_runtime, before.sched_runtime);
            })
            .join()
            .unwrap();
        }
    }
}
