//! The OpenVPN client config format: parse a `.ovpn` file into a typed [`Config`], and print one back.
//!
//! Layer: pure text processing, no I/O. Files referenced by path (`ca ca.crt`) are handed to a
//! [`FileResolver`] the caller supplies: the image uses [`InlineOnly`] (everything must be inline), the host
//! tool reads them relative to the config's folder, and tests can [`KeepPaths`].
//!
//! ```text
//! bytes --syntax::decode--> text --syntax::parse--> statements --directives--> Config + warnings
//! Config --printer::print--> text   (print -> parse gives the same Config)
//! ```
//!
//! Syntax follows the wire reference §11; defaults §13. It never panics on any input (see `fuzz/`).
//!
//! Policy for directives oxvpn does not apply:
//! * **Ignored with a [`Warning`]**: what only matters to an OpenVPN process on a host (`persist-tun`,
//!   `nobind`, `resolv-retry`, `user`, `script-security`, `up`/`down`, `block-outside-dns`, `dhcp-option`,
//!   `log`, `status`, `mute`, …), obsolete no-ops (`keysize`, `tun-mtu-extra`, `key-method 2`), client-side
//!   addresses the server pushes anyway (`ifconfig`, `topology`), `ecdh-curve` (ignored by OpenVPN 2.6
//!   with OpenSSL 3 as well), unsupported ciphers or groups in a list that still has a supported one, and
//!   unknown directives listed in `ignore-unknown-option` or written as `setenv opt`.
//! * **Applied with a warning**: `tls-cert-profile legacy`/`insecure` (rustls is stricter: `preferred`),
//!   `auth-nocache` (inline credentials stay in memory, as in OpenVPN).
//! * **Translated with a warning**: `ns-cert-type server` -> `remote-cert-tls server`; `tls-remote X` ->
//!   `verify-x509-name X name` (subject when X holds `=`); compression is accepted as framing only.
//! * **Refused** (a [`ConfigError`] naming the line): anything that would weaken or silently change the
//!   connection if ignored: `secret` (static-key mode), `dev tap`, server-mode directives, `askpass`,
//!   encrypted keys, `pkcs12`, `data-ciphers` with no supported cipher, `auth` digests other than SHA1/2,
//!   `tls-version-max` below 1.2, `tls-cert-profile suiteb`, `crl-verify DIR dir`, `crl-verify` without
//!   `ca`, a CRL that does not parse, `verify-hash`, `tls-verify`, `fragment` (changes the data-channel
//!   framing), `http-proxy`/`socks-proxy`, unknown directives, and a config that is not a TLS client with a
//!   `remote`, a way to verify the server (`ca` or `peer-fingerprint`) and client credentials.

mod directives;
mod error;
mod model;
mod printer;
mod server_model;
mod syntax;

use alloc::string::String;
use alloc::vec::Vec;

pub use error::{ConfigError, DirectiveName, ErrorKind, FileErrorKind, Warning, WarningKind};
pub use model::*;
pub use printer::print;
pub use server_model::*;
pub use syntax::decode;

/// What a [`FileResolver`] found for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The file's text.
    Contents(String),
    /// Leave the path unread; the config records it (for summaries and tests without the files).
    KeepPath,
}

/// Supplies the contents of files a config references by path.
pub trait FileResolver {
    /// The contents of `path` (as written in the config; relative paths are the resolver's business).
    fn read(&mut self, path: &str) -> Result<Resolved, FileErrorKind>;

    /// Whether a bare `auth-user-pass` (prompt on the console) is acceptable.
    fn allows_prompt(&self) -> bool {
        false
    }
}

/// The image's resolver: every file must be inline.
#[derive(Debug, Clone, Copy, Default)]
pub struct InlineOnly;

impl FileResolver for InlineOnly {
    fn read(&mut self, _path: &str) -> Result<Resolved, FileErrorKind> {
        Err(FileErrorKind::NotInline)
    }
}

/// Leaves every path unread and accepts a console prompt: parses a config without its files.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepPaths;

impl FileResolver for KeepPaths {
    fn read(&mut self, _path: &str) -> Result<Resolved, FileErrorKind> {
        Ok(Resolved::KeepPath)
    }

    fn allows_prompt(&self) -> bool {
        true
    }
}

/// A parsed config and the directives that were ignored or changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The config.
    pub config: Config,
    /// What the caller should log.
    pub warnings: Vec<Warning>,
}

/// Parses config text.
pub fn parse(text: &str, files: &mut dyn FileResolver) -> Result<Parsed, ConfigError> {
    let statements = syntax::parse(text)?;
    let mut builder = directives::Builder::new(files);
    builder.apply_all(&statements)?;
    builder.finish()
}

/// Parses config bytes as read from a disk or file (UTF-8, with or without BOM, or UTF-16 with BOM).
pub fn parse_bytes(bytes: &[u8], files: &mut dyn FileResolver) -> Result<Parsed, ConfigError> {
    let text = decode(bytes)?;
    parse(&text, files)
}

impl Config {
    /// Parses an all-inline config the way the image does (files by path and console prompts are refused).
    ///
    /// ```
    /// use openvpn::config::{Config, ErrorKind};
    /// let e = Config::parse_inline("client\ndev tap\nremote vpn.example.net\n").unwrap_err();
    /// assert_eq!((e.line, e.kind), (2, ErrorKind::TapDevice));
    /// assert_eq!(
    ///     e.to_string(),
    ///     "line 2: `dev`: only `dev tun` is supported (oxvpn routes IP packets, not Ethernet)"
    /// );
    /// ```
    pub fn parse_inline(text: &str) -> Result<Parsed, ConfigError> {
        parse(text, &mut InlineOnly)
    }
}
