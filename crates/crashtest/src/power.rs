//! `crashtest power`: the rounds of `crashtest kill`, with the real `optimist` binary's data
//! directory on `PowerFs` (power_fs.rs), so that each round ends in a power cut, not only a
//! process crash: the file system freezes, the server is killed, the mount goes away with the
//! kernel's caches, unsynced writes are dropped (or the last one torn at a 512-byte
//! boundary), and the server restarts on what a disk would have kept.
//!
//! This is what `kill` cannot show: SIGKILL leaves the page cache alone, so a log that never
//! fsyncs passes any number of kill rounds, and fails here at once.

use std::path::Path;

use fuser::{BackgroundSession, MountOption};
use wal::sim::Rng;

use crate::kill::{Figures, Options, run_with};
use crate::power_fs::{Cut, Power, PowerFs};
use crate::process::Server;

/// What the cuts did, beside the checks' figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct PowerFigures {
    /// Cuts that dropped every unsynced write, and cuts that tore the last one.
    pub dropped: u64,
    pub torn: u64,
    /// Unsynced writes undone over all cuts.
    pub writes_undone: u64,
    /// Writes and fsyncs the file system served.
    pub writes: u64,
    pub syncs: u64,
}

fn mount(power: &Power, at: &Path) -> Result<BackgroundSession, String> {
    fuser::spawn_mount2(
        PowerFs(power.clone()),
        at,
        &[MountOption::FSName("optimist-power".into())],
    )
    .map_err(|e| {
        format!(
            "cannot mount the FUSE file system at {}: {e} (needs /dev/fuse and the right to \
             mount: root, or fusermount3 from Debian's fuse3)",
            at.display()
        )
    })
}

/// Runs the rounds; `Err` names the first violation, with the seed.
pub fn run(options: &Options) -> Result<(Figures, PowerFigures), String> {
    with_power_cuts(options, |data, cut| run_with(options, data, cut))
}

/// Runs `rounds` (kill.rs's or lifecycle.rs's) with its data directory on `PowerFs`, each
/// round's cut a power cut.
pub(crate) fn with_power_cuts<T>(
    options: &Options,
    rounds: impl FnOnce(&Path, &mut dyn FnMut(&mut Server) -> Result<(), String>) -> Result<T, String>,
) -> Result<(T, PowerFigures), String> {
    let mount_point = options.work_dir.join("mnt");
    std::fs::create_dir_all(&mount_point).map_err(|e| e.to_string())?;
    let power = Power::default();
    let mut session = Some(mount(&power, &mount_point)?);
    let mut rng = Rng::new(options.seed ^ 0x5eed_c0de);
    let mut figures = PowerFigures::default();
    let data = mount_point.join("data");
    let checked = rounds(&data, &mut |server: &mut Server| {
        power.freeze();
        server.kill();
        // Unmounting drops what the kernel cached of the old mount.
        drop(session.take());
        let cut = if rng.coin() {
            figures.dropped += 1;
            Cut::DropUnsynced
        } else {
            figures.torn += 1;
            Cut::TearLastWrite
        };
        let (undone, _) = power.cut(cut, &mut rng);
        figures.writes_undone += undone;
        session = Some(mount(&power, &mount_point)?);
        Ok(())
    });
    {
        let state = power.lock();
        figures.writes = state.writes;
        figures.syncs = state.syncs;
    }
    drop(session);
    checked.map(|f| (f, figures))
}
