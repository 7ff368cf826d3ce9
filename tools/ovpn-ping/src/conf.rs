//! Reads the `.ovpn` with the engine's config parser; files named by path are read relative to the
//! config's folder.

use std::path::{Path, PathBuf};

use openvpn::config::{self, FileErrorKind, FileResolver, Resolved};
use openvpn::engine::EngineConfig;

struct RelativeFiles(PathBuf);

impl FileResolver for RelativeFiles {
    fn read(&mut self, path: &str) -> Result<Resolved, FileErrorKind> {
        std::fs::read_to_string(self.0.join(path))
            .map(Resolved::Contents)
            .map_err(|_| FileErrorKind::NotFound)
    }
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<EngineConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let parsed = config::parse_bytes(&bytes, &mut RelativeFiles(dir))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for w in &parsed.warnings {
        eprintln!("config: {w}");
    }
    EngineConfig::from_config(&parsed.config).map_err(|e| e.to_string())
}
