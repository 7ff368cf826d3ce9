//! What went wrong, and the exit code it maps to (documented in `--help` and the README).

use std::fmt;
use std::path::Path;

/// A failed command. Every message names the file or argument it is about.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1: bad input (a malformed or wrong kind of key file, bad metadata) or a refused action (the file
    /// exists and `--force` was not given, the name is already issued).
    Input(String),
    /// Exit 2: bad command line.
    Usage(String),
    /// Exit 3: a file could not be read or written.
    Io(String),
}

impl Failure {
    /// The process exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Input(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Io(_) => 3,
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &Path, what: &str, e: std::io::Error) -> Failure {
        Failure::Io(format!("{}: cannot {what}: {e}", path.display()))
    }

    /// Bad content in `path`.
    pub fn input(path: &Path, e: impl fmt::Display) -> Failure {
        Failure::Input(format!("{}: {e}", path.display()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Input(m) | Failure::Io(m) => f.write_str(m),
            Failure::Usage(m) => write!(f, "{m} (see `ovpn-keys --help`)"),
        }
    }
}

/// Shorthand for command results.
pub type Outcome<T = ()> = Result<T, Failure>;
