//! Reading inputs and writing outputs: secrets get mode 0600, and nothing is overwritten without `--force`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::fail::{Failure, Outcome};

/// Whether a file holds secrets (mode 0600) or public material (0644).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Private keys, static keys, profiles and configs with inline keys.
    Secret,
    /// Certificates, CRLs, the index.
    Public,
}

/// Reads a text file; the error names it.
pub fn read_text(path: &Path) -> Outcome<String> {
    fs::read_to_string(path).map_err(|e| Failure::io(path, "read", e))
}

/// Writes `text` to a new file. An existing file is refused unless `force`; with `force` it is replaced
/// (through a temporary file, so a secret is never briefly world-readable).
pub fn write_new(path: &Path, text: &str, secrecy: Secrecy, force: bool) -> Outcome {
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(Failure::Input(format!(
            "{}: already exists; refusing to overwrite it (give --force to replace it)",
            path.display()
        )));
    }
    replace(path, text, secrecy)
}

/// Writes `text` to `path`, replacing what was there (for files the tool maintains: index, CRL).
pub fn replace(path: &Path, text: &str, secrecy: Secrecy) -> Outcome {
    let mode = match secrecy {
        Secrecy::Secret => 0o600,
        Secrecy::Public => 0o644,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Failure::io(path, "write", e));
    }
    Ok(())
}

/// Creates a directory (and parents) with `mode`.
pub fn make_dir(path: &Path, mode: u32) -> Outcome {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| Failure::io(path, "create directory", e))
}
