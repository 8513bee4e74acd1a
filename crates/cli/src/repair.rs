//! `optimist repair --truncate-after-corruption`: shows what will be dropped, asks unless
//! `--yes`, backs up every file it changes into a directory beside the indices, cuts the log
//! at the damage, and opens the shard to prove it opens (`engine::offline`).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use engine::ShardId;
use engine::offline::{self, RepairPlan};

/// Cut a shard's log at its first corruption, dropping everything after it (as
/// Elasticsearch's `elasticsearch-shard remove-corrupted-data`). Offline; keeps a backup.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The data directory (refused while a server holds it).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long)]
    index: String,
    #[arg(long)]
    shard: u32,
    /// The repair to make (required: the only one there is, named so nobody runs it by
    /// accident).
    #[arg(long, required = true)]
    truncate_after_corruption: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    yes: bool,
}

impl Args {
    pub(crate) fn run(self) -> Result<(), String> {
        let mut input = std::io::stdin().lock();
        let mut out = std::io::stdout();
        repair(
            &self.data_dir,
            &self.index,
            ShardId(self.shard),
            self.yes,
            &mut input,
            &mut out,
        )
    }
}

fn repair(
    data_dir: &Path,
    index: &str,
    shard: ShardId,
    yes: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), String> {
    let root = offline::lock_data_dir(data_dir)?;
    let dir = offline::shard_dirs(&root, Some(index))?
        .into_iter()
        .find(|d| d.shard == shard)
        .ok_or_else(|| format!("index [{index}] has no shard {shard}"))?;
    let Some(plan) = offline::plan_repair(&dir)? else {
        say(
            out,
            format!("[{index}][{shard}]: the log has no corruption; nothing to repair"),
        );
        return Ok(());
    };
    show_plan(out, index, shard, &plan);
    if !yes && !confirmed(input, out)? {
        return Err("not confirmed; nothing changed".to_owned());
    }
    let backup = offline::backup(&root, &dir, &plan)?;
    say(out, format!("backup of every file changed: {backup}"));
    let repaired = offline::truncate_after_corruption(&dir, Some(crate::progress::for_engine()))?;
    for c in &repaired.salvaged {
        say(
            out,
            format!(
                "cut at segment {} offset {}: {}",
                segment(c),
                c.offset,
                c.what
            ),
        );
    }
    let stats = &repaired.stats;
    say(
        out,
        format!(
            "repaired: the shard opens with {} documents, max seq_no {}, primary term {}",
            stats.docs_live,
            stats.max_seq_no.map_or(-1, |s| s.0 as i64),
            stats.primary_term.0
        ),
    );
    Ok(())
}

fn say(out: &mut impl Write, line: String) {
    let _ = writeln!(out, "{line}");
}

fn segment(c: &wal::Corruption) -> String {
    c.generation.map_or("?".to_owned(), |g| g.0.to_string())
}

fn show_plan(out: &mut impl Write, index: &str, shard: ShardId, plan: &RepairPlan) {
    let c = &plan.corruption;
    let last_good = c
        .last_good_seq_no
        .map_or("none".to_owned(), |s| s.0.to_string());
    say(
        out,
        format!(
            "[{index}][{shard}]: corruption in segment {} at offset {}: {} (last good seq_no \
             {last_good})",
            segment(c),
            c.offset,
            c.what,
        ),
    );
    let dropped_range = match plan.last_seq_no_dropped {
        Some(last) => format!("seq_nos {}..={}", plan.keep_below, last),
        None => format!("seq_nos from {} on", plan.keep_below),
    };
    say(
        out,
        format!(
            "will drop {dropped_range}: the damaged record and {} readable records after it; \
             the log continues from seq_no {}",
            plan.later_records, plan.keep_below
        ),
    );
    for (file, what) in &plan.files {
        let verb = if *what == "removed" { "remove" } else { "cut" };
        say(out, format!("  will {verb} {file}"));
    }
}

/// Asks; true for exactly "yes".
fn confirmed(input: &mut impl BufRead, out: &mut impl Write) -> Result<bool, String> {
    let _ = write!(out, "Type 'yes' to drop them: ");
    let _ = out.flush();
    let mut answer = String::new();
    input
        .read_line(&mut answer)
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(answer.trim() == "yes")
}
