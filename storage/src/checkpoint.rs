//! Small text files replaced atomically: write `<name>.tmp`, fsync, rename, fsync the dir
//! (or, for values an older version of which is always safe, without the fsyncs).
//!
//! Format: a version line `0`, a count line, one entry per line, and a final `crc <hex>` line
//! (CRC-32 via `crc32fast` over everything before it), so a torn or edited file is detected
//! rather than half-read. Used for `leader-epoch-checkpoint`, `recovery-point` and
//! `log-start-offset`.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::LogError;

const VERSION: &str = "0";

/// Atomically replaces `path` with `entries` (each a line), durably.
pub(crate) fn write(path: &Path, entries: &[String]) -> Result<(), LogError> {
    write_with(path, entries, true)
}

/// [`write`] without the two fsyncs: after a crash the file holds this version or an
/// earlier one (or is found damaged). For values where an older one is always safe (a
/// recovery point that only moved up), as an fsync here can wait for the journal to
/// write back other files' data.
pub(crate) fn write_unsynced(path: &Path, entries: &[String]) -> Result<(), LogError> {
    write_with(path, entries, false)
}

fn write_with(path: &Path, entries: &[String], durable: bool) -> Result<(), LogError> {
    let mut body = format!("{VERSION}\n{}\n", entries.len());
    for e in entries {
        body.push_str(e);
        body.push('\n');
    }
    let crc = crc32fast::hash(body.as_bytes());
    body.push_str(&format!("crc {crc:08x}\n"));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(LogError::io(&tmp))?;
    f.write_all(body.as_bytes()).map_err(LogError::io(&tmp))?;
    if durable {
        f.sync_all().map_err(LogError::io(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(LogError::io(path))?;
    if durable {
        sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Reads the entries of `path`; `Ok(None)` if the file is missing or damaged (callers then
/// fall back to a safe default and log a warning).
pub(crate) fn read(path: &Path) -> Result<Option<Vec<String>>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Ok(None),
        Err(e) => {
            return Err(LogError::Io {
                path: path.to_owned(),
                source: e,
            })
        }
    };
    Ok(parse(&text))
}

fn parse(text: &str) -> Option<Vec<String>> {
    let crc_at = text.trim_end_matches('\n').rfind('\n')? + 1;
    let (body, crc_line) = text.split_at(crc_at);
    let stored = u32::from_str_radix(crc_line.trim().strip_prefix("crc ")?, 16).ok()?;
    if crc32fast::hash(body.as_bytes()) != stored {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != VERSION {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    let entries: Vec<String> = lines.map(str::to_owned).collect();
    (entries.len() == count).then_some(entries)
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(LogError::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp");
        assert_eq!(read(&p).unwrap(), None);
        write(&p, &["1 0".into(), "3 17".into()]).unwrap();
        assert_eq!(
            read(&p).unwrap(),
            Some(vec!["1 0".to_string(), "3 17".to_string()])
        );
        write(&p, &[]).unwrap();
        assert_eq!(read(&p).unwrap(), Some(vec![]));
        let mut text = fs::read_to_string(&p).unwrap();
        text.replace_range(0..1, "9");
        fs::write(&p, text).unwrap();
        assert_eq!(read(&p).unwrap(), None);
    }
}
