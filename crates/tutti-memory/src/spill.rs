//! The spill: where memory writes go while the store cannot take them, in the data
//! directory (`memory-spill/spill-NNNNNNNN.jsonl`, one [`MemWrite`] per line, appended and
//! fsync'd before anything waiting on them is acknowledged), replayed oldest first once the
//! store is back and deleted file by file as they commit.
//!
//! The spill is always the *oldest* part of the memory's queue: while anything is spilled,
//! new writes queue behind it, so an episode's steps, moments and completion reach the store
//! in the order they were made. Replaying is safe to repeat (every write is idempotent by
//! episode key and position).
//!
//! Must never: acknowledge before fsync, lose a line that was fsync'd (a torn last line from a
//! crash is the only thing skipped), or grow a file beyond [`MAX_FILE`].

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use tutti_store::MemWrite;

use crate::error::MemoryError;

/// A spill file is closed at this size and a new one started.
pub const MAX_FILE: u64 = 8 << 20;

/// The spill directory.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    /// Units spilled and not yet replayed (as counted since start, plus those found at start).
    pub pending: u64,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> MemoryError {
    MemoryError::Unavailable(format!("{what} {}: {e}", path.display()))
}

impl Spill {
    /// The spill in `dir` (created when first needed); counts what an earlier run left.
    pub fn open(dir: PathBuf) -> Spill {
        let mut s = Spill { dir, pending: 0 };
        for f in s.files() {
            if let Ok(file) = File::open(&f) {
                s.pending += BufReader::new(file).lines().count() as u64;
            }
        }
        s
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Spill files, oldest first.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("spill-") && n.ends_with(".jsonl"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Whether anything waits to be replayed.
    pub fn is_empty(&self) -> bool {
        self.files().is_empty()
    }

    /// Appends units and fsyncs.
    pub fn append(&mut self, units: &[MemWrite]) -> Result<(), MemoryError> {
        if units.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| io("creating", &self.dir, e))?;
        let files = self.files();
        let path = match files.last() {
            Some(p) if fs::metadata(p).map_or(0, |m| m.len()) < MAX_FILE => p.clone(),
            last => {
                let n = last
                    .and_then(|p| {
                        p.file_stem()?
                            .to_str()?
                            .strip_prefix("spill-")?
                            .parse::<u64>()
                            .ok()
                    })
                    .map_or(1, |n| n + 1);
                self.dir.join(format!("spill-{n:08}.jsonl"))
            }
        };
        let mut text = String::new();
        for u in units {
            let line = serde_json::to_string(u)
                .map_err(|e| MemoryError::Internal(format!("spilling a write: {e}")))?;
            text.push_str(&line);
            text.push('\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io("opening", &path, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io("writing", &path, e))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.pending += units.len() as u64;
        Ok(())
    }

    /// The units of the oldest file (a torn last line is skipped).
    pub fn oldest(&self) -> Option<(PathBuf, Vec<MemWrite>)> {
        let path = self.files().into_iter().next()?;
        let file = File::open(&path).ok()?;
        let units = BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<MemWrite>(&l).ok())
            .collect();
        Some((path, units))
    }

    /// Deletes a replayed file.
    pub fn done(&mut self, path: &Path, units: usize) {
        if let Err(e) = fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot delete a replayed spill file");
        }
        self.pending = self.pending.saturating_sub(units as u64);
    }
}
