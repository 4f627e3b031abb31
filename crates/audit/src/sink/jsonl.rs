//! The JSONL file sink: every record appended as one line (the stored form), fsynced before
//! the cursor moves, the file rotated by size (`path` → `path.1` → … → `path.KEEP`).
//!
//! On start the sink reads the last complete line of the file (or of `path.1` right after a
//! rotation) and skips records up to its `seq`, and drops a torn last line left by a crash,
//! so a crash between the write and the cursor update duplicates nothing in the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::record::Record;

/// The blocking writer: owns the open file and its size.
#[derive(Debug)]
pub struct JsonlWriter {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<(File, u64)>,
    /// The highest `seq` already in the files.
    last_seq: Option<u64>,
}

impl JsonlWriter {
    /// A writer for `path`, rotating past `max_bytes` (at least one line per file) and keeping
    /// `keep` rotated files (at least 1).
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> JsonlWriter {
        JsonlWriter {
            path,
            max_bytes: max_bytes.max(1),
            keep: keep.max(1),
            file: None,
            last_seq: None,
        }
    }

    /// `path.N`.
    pub fn rotated(path: &Path, n: u32) -> PathBuf {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn open(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)?;
        let (size, last) = repair_tail(&mut file)?;
        if self.last_seq.is_none() {
            self.last_seq = match last {
                Some(seq) => Some(seq),
                None => last_seq_of(&Self::rotated(&self.path, 1))?,
            };
        }
        self.file = Some((file, size));
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let oldest = Self::rotated(&self.path, self.keep);
        match fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for n in (1..self.keep).rev() {
            let from = Self::rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, Self::rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, Self::rotated(&self.path, 1))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Make the renames durable before writing to the new file.
            File::open(dir)?.sync_all()?;
        }
        self.open()
    }

    /// Appends `records` (those not already in the file), rotating as needed, and syncs.
    pub fn write(&mut self, records: &[(u64, String)]) -> io::Result<()> {
        self.open()?;
        let mut pending: Vec<u8> = Vec::new();
        for (seq, line) in records {
            if self.last_seq.is_some_and(|last| *seq <= last) {
                continue;
            }
            let size = self.file.as_ref().map_or(0, |(_, size)| *size);
            let len = line.len() as u64 + 1;
            if size + pending.len() as u64 > 0 && size + pending.len() as u64 + len > self.max_bytes
            {
                self.flush(&mut pending)?;
                self.rotate()?;
            }
            pending.extend_from_slice(line.as_bytes());
            pending.push(b'\n');
            self.last_seq = Some(*seq);
        }
        self.flush(&mut pending)
    }

    fn flush(&mut self, pending: &mut Vec<u8>) -> io::Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let Some((file, size)) = self.file.as_mut() else {
            return Err(io::Error::other("jsonl sink file is not open"));
        };
        let written = file.write_all(pending).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Reopen next time: the tail repair drops a torn line, the tail seq tells where
            // to resume.
            self.file = None;
            self.last_seq = None;
            return Err(e);
        }
        *size += pending.len() as u64;
        pending.clear();
        Ok(())
    }
}

/// Truncates a torn last line (no trailing newline) and returns the file's size and the `seq`
/// of its last complete line.
fn repair_tail(file: &mut File) -> io::Result<(u64, Option<u64>)> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok((0, None));
    }
    let tail_len = len.min(1 << 20);
    file.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(usize::try_from(tail_len).unwrap_or(0));
    Read::take(&mut *file, tail_len).read_to_end(&mut tail)?;
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let size = len - tail_len + complete as u64;
    if size != len {
        file.set_len(size)?;
        file.sync_data()?;
    }
    let body = &tail[..complete];
    let last_line = body
        .strip_suffix(b"\n")
        .unwrap_or(body)
        .rsplit(|b| *b == b'\n')
        .next()
        .unwrap_or(&[]);
    Ok((size, seq_of(last_line)))
}

fn last_seq_of(path: &Path) -> io::Result<Option<u64>> {
    match OpenOptions::new().read(true).write(true).open(path) {
        Ok(mut file) => Ok(repair_tail(&mut file)?.1),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn seq_of(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

/// The async face of [`JsonlWriter`]: file work runs on the blocking pool.
#[derive(Debug, Clone)]
pub struct JsonlSink {
    writer: Arc<Mutex<JsonlWriter>>,
}

impl JsonlSink {
    pub fn new(path: PathBuf, max_bytes: u64, keep: u32) -> JsonlSink {
        JsonlSink {
            writer: Arc::new(Mutex::new(JsonlWriter::new(path, max_bytes, keep))),
        }
    }

    pub async fn deliver(&self, batch: &[Record]) -> io::Result<()> {
        let lines: Vec<(u64, String)> = batch.iter().map(|r| (r.seq, r.to_json_line())).collect();
        let writer = Arc::clone(&self.writer);
        tokio::task::spawn_blocking(move || {
            let mut writer = writer
                .lock()
                .map_err(|_| io::Error::other("jsonl sink writer poisoned"))?;
            writer.write(&lines)
        })
        .await
        .map_err(io::Error::other)?
    }
}
