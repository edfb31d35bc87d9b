//! The spool directory: files that appear are ingested once, then moved to `done/` (or to
//! `failed/`, with the reason beside them in `NAME.error`). Writers should write under a name
//! that starts with `.` and rename when done: such files are left alone.

use std::path::{Path, PathBuf};

use farol_pipeline::Feed;

use crate::{Context, Error, Run, ingest_file};

pub(crate) fn run(ctx: &Context, feed: &Feed, dir: &Path) -> Result<Run, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Fetch(format!("cannot read the spool directory {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    let mut run = Run { unchanged: files.is_empty(), ..Run::default() };
    let mut failures = Vec::new();
    for file in files {
        match ingest_file(ctx, feed, &file) {
            Ok(ingested) => {
                run.ingested.extend(ingested);
                move_to(&file, &dir.join("done"))?;
            }
            Err(e) => {
                let reason = e.to_string();
                let moved = move_to(&file, &dir.join("failed"))?;
                std::fs::write(moved.with_file_name(format!("{}.error", file_name(&moved))), format!("{reason}\n"))?;
                tracing::warn!(feed = %feed.name, file = %file.display(), error = %reason, "spool file failed");
                failures.push(format!("{}: {reason}", file_name(&file)));
            }
        }
    }
    if failures.is_empty() {
        Ok(run)
    } else {
        Err(Error::Fetch(format!("{} spool file(s) failed: {}", failures.len(), failures.join("; "))))
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Moves a file into `to/`, renaming it if a file of that name is already there.
fn move_to(file: &Path, to: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(to)?;
    let name = file_name(file);
    let mut target = to.join(&name);
    let mut n = 1;
    while target.exists() {
        target = to.join(format!("{name}.{n}"));
        n += 1;
    }
    std::fs::rename(file, &target)?;
    Ok(target)
}
