//! The long-poll cursor file of `wxlink listen`.
//!
//! The file holds `{"get_updates_buf":"…"}`, the same shape the official plugin
//! keeps per account (docs/protocol.md, "Cursor"). It is replaced atomically:
//! the new content goes to a temporary file in the same directory, which is
//! flushed to disk and then renamed over the old one, and the directory is
//! synced so that the rename itself survives a crash. A reader therefore sees
//! either the old cursor or the new one, never a torn or empty file.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The JSON shape of the cursor file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CursorFile {
    /// The opaque cursor from the last successful poll.
    #[serde(default)]
    get_updates_buf: String,
}

/// Reads the cursor saved at `path`; a file that does not exist yet means
/// "start from the beginning" (an empty cursor).
pub fn load(path: &Path) -> io::Result<String> {
    match fs::read(path) {
        Ok(bytes) => {
            let file: CursorFile = serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a cursor file: {e}", path.display()),
                )
            })?;
            Ok(file.get_updates_buf)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Saves `cursor` to `path` atomically (temp file, fsync, rename, directory
/// fsync). An empty cursor is never written, so a server that sends `""` cannot
/// rewind a saved position (docs/protocol.md, "Cursor").
pub fn save(path: &Path, cursor: &str) -> io::Result<()> {
    if cursor.is_empty() {
        return Ok(());
    }
    let body = serde_json::to_vec(&CursorFile {
        get_updates_buf: cursor.to_owned(),
    })
    .map_err(io::Error::other)?;
    write_atomically(path, &body)
}

/// Replaces the file at `path` with `contents` so that readers and crashes
/// see either the old or the new content.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".wxlink-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir);
    Ok(())
}

/// Flushes a directory entry change (the rename) to disk where the platform
/// allows opening a directory; failures are ignored because the data file
/// itself is already durable.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_means_empty_cursor() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(&dir.path().join("c.json")).unwrap(), "");
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        save(&path, "first").unwrap();
        save(&path, "second").unwrap();
        assert_eq!(load(&path).unwrap(), "second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("c.json")]);
    }

    #[test]
    fn empty_cursor_never_overwrites_a_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        save(&path, "kept").unwrap();
        save(&path, "").unwrap();
        assert_eq!(load(&path).unwrap(), "kept");
    }

    #[test]
    fn garbage_file_is_an_error_not_a_silent_reset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        fs::write(&path, b"not json").unwrap();
        assert!(load(&path).is_err());
    }
}
