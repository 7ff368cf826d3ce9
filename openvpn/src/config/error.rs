//! What the config parser reports: a fatal [`ConfigError`] and the non-fatal [`Warning`]s, both naming the
//! line and the directive.
//!
//! Both are `Copy`: the directive name is kept in a small inline buffer, so an error can be passed around and
//! printed on the image without allocation.

use core::fmt;

use crate::keys::KeyError;

/// A directive name kept inline (the first 31 bytes; longer names are cut at a character boundary).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DirectiveName {
    bytes: [u8; 31],
    len: u8,
}

impl DirectiveName {
    /// No directive: the error is about the whole file (line 0).
    pub const NONE: DirectiveName = DirectiveName {
        bytes: [0; 31],
        len: 0,
    };

    /// Keeps up to 31 bytes of `name`.
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(31);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; 31];
        let src = name.as_bytes().get(..end).unwrap_or(&[]);
        if let Some(dst) = bytes.get_mut(..src.len()) {
            dst.copy_from_slice(src);
        }
        DirectiveName {
            bytes,
            len: u8::try_from(end).unwrap_or(0),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }
}

impl fmt::Debug for DirectiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for DirectiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file referenced by path could not be read (reported by the [`super::FileResolver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// The image reads no files: everything must be inline (run `config-disk make` on the host).
    NotInline,
    /// The file does not exist.
    NotFound,
    /// The file exists but could not be read.
    Unreadable,
    /// The file is not UTF-8 text.
    NotText,
    /// The file is larger than the resolver allows.
    TooLarge,
    /// `auth-user-pass` without a file means "ask on the console", which the image cannot do.
    NeedsPrompt,
}

impl fmt::Display for FileErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileErrorKind::NotInline => {
                "the file is referenced by path, but the image reads no files: make the config disk with \
                 `config-disk make`, which inlines it"
            }
            FileErrorKind::NotFound => "file not found",
            FileErrorKind::Unreadable => "file could not be read",
            FileErrorKind::NotText => "file is not UTF-8 text",
            FileErrorKind::TooLarge => "file is too large",
            FileErrorKind::NeedsPrompt => {
                "without a file this asks for the username and password on the console, which the image \
                 cannot do: give `auth-user-pass FILE` (a username line and a password line) or an inline \
                 <auth-user-pass> block"
            }
        })
    }
}

/// Why a config was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The bytes are not UTF-8 (or UTF-16 with a byte-order mark).
    NotUtf8,
    /// A NUL or other control character: this is binary data, not a config file.
    Binary,
    /// An opening `"` or `'` is never closed on its line.
    UnclosedQuote,
    /// A backslash escape other than `\\`, `\"` or `\<space>`.
    BadEscape,
    /// An inline block `<name>` has no `</name>` line.
    UnclosedBlock,
    /// `<name>` is not one of the inline blocks OpenVPN knows (for example an HTML page saved as .ovpn).
    UnknownBlock,
    /// A `<connection>` block inside another one.
    NestedConnection,
    /// An inline block for a directive that takes no file, or inside `<connection>` where it is not allowed.
    BlockNotAllowedHere,
    /// A directive OpenVPN 2.6 does not know (misspelled or from a patched fork); list it in
    /// `ignore-unknown-option` to skip it.
    UnknownDirective,
    /// Not allowed inside a `<connection>` block.
    NotAllowedInConnection,
    /// A required argument is missing.
    MissingArgument,
    /// More arguments than the directive takes.
    TooManyArguments,
    /// An argument has a value the directive does not accept.
    InvalidArgument,
    /// A number is malformed or out of range.
    InvalidNumber,
    /// A port is not in 1..=65535.
    InvalidPort,
    /// `secret`: static-key mode has no TLS and no forward secrecy; oxvpn is a TLS client only.
    StaticKeyMode,
    /// `dev tap` (or an unknown device type): oxvpn routes IP packets over a tun device only.
    TapDevice,
    /// A server-mode directive (`server`, `mode server`, `tls-server`, `proto tcp-server`, …).
    ServerMode,
    /// `askpass`: the image cannot ask for a passphrase.
    Askpass,
    /// `pkcs12`: the image does not parse PKCS#12 bundles.
    Pkcs12,
    /// `fragment`: OpenVPN's internal fragmentation changes the data-channel framing and is not implemented.
    Fragment,
    /// `http-proxy`/`socks-proxy`: the image connects to the server directly.
    Proxy,
    /// A cipher, digest or TLS setting oxvpn cannot honour, and ignoring it would weaken the connection.
    Unsupported,
    /// No cipher in `data-ciphers` is supported, so no data channel could be negotiated.
    NoUsableCipher,
    /// `tls-cipher`/`tls-ciphersuites` name no suite rustls implements for any allowed TLS version.
    NoUsableTlsSuite,
    /// `tls-groups` names no key exchange group rustls implements.
    NoUsableTlsGroup,
    /// An `auth` digest other than SHA1, SHA256, SHA384, SHA512.
    UnsupportedDigest,
    /// A `tls-version-max` below 1.2 (rustls speaks TLS 1.2 and 1.3 only).
    TlsVersionTooOld,
    /// Two control-channel protections (`tls-auth`, `tls-crypt`, `tls-crypt-v2`) in one scope.
    ConflictingControlChannel,
    /// The config is not for a client: neither `client` nor `tls-client` with `pull`.
    NotAClient,
    /// No `remote` anywhere: the client has no server to connect to.
    NoRemote,
    /// Neither `ca` nor `peer-fingerprint`: the server could not be authenticated.
    NoServerVerification,
    /// `cert` without `key` or `key` without `cert`.
    CertWithoutKey,
    /// Neither a client certificate nor `auth-user-pass`: the server would have nothing to authenticate.
    NoClientAuth,
    /// `crl-verify DIR dir`: a directory of files named by revoked serials, which a config disk cannot carry.
    CrlDirectory,
    /// `crl-verify` with only `peer-fingerprint`: a CRL's signature is checked with the `ca` chain's keys.
    CrlWithoutCa,
    /// A client directive (`client`, `remote`, `pull`, …) in a server config.
    ClientDirectiveInServer,
    /// A server directive that runs a script or plugin (`auth-user-pass-verify`, `client-connect`, …).
    NeedsScript,
    /// A server directive that reads or writes files at run time (`client-config-dir`, `ifconfig-pool-persist`).
    NeedsFilesystem,
    /// A server config without `cert` and `key`: a TLS server needs its own certificate.
    NoServerCertificate,
    /// A server config without `ca`, unless `verify-client-cert none` with an `<auth-user-pass-db>`.
    NoClientVerification,
    /// `<auth-user-pass-db>`: fewer PBKDF2 iterations than 10 000.
    WeakPasswordHash,
    /// `<auth-user-pass-db>`: a line is not `USERNAME pbkdf2-sha256:ITERATIONS:SALT_B64:HASH_B64`.
    BadPasswordHash,
    /// `<tls-crypt-v2-revoked>`: a line is not 64 lowercase hex digits (a SHA-256).
    BadRevokedKeyHash,
    /// `<qubes-firewall>`: a line is not `CLIENT_IPV4 RULE`.
    BadQubesFirewallLine,
    /// More entries than the server keeps (push lines, listeners, revoked keys, users).
    TooManyEntries,
    /// A file referenced by path could not be used.
    File(FileErrorKind),
    /// The contents of a key, certificate or credentials file are not usable.
    Key(KeyError),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::NotUtf8 => f.write_str("the file is not UTF-8 (or UTF-16 with a byte-order mark) text"),
            ErrorKind::Binary => f.write_str("a NUL or control character: this is binary data, not a config file"),
            ErrorKind::UnclosedQuote => f.write_str("unclosed quote"),
            ErrorKind::BadEscape => f.write_str("invalid backslash escape (only \\\\, \\\" and \\<space> are allowed)"),
            ErrorKind::UnclosedBlock => f.write_str("inline block is never closed"),
            ErrorKind::UnknownBlock => f.write_str("not an OpenVPN inline block (is this file really a config?)"),
            ErrorKind::NestedConnection => f.write_str("<connection> blocks cannot be nested"),
            ErrorKind::BlockNotAllowedHere => f.write_str("this inline block is not allowed here"),
            ErrorKind::UnknownDirective => f.write_str(
                "unknown directive (if it is safe to skip, add `ignore-unknown-option NAME` before it)",
            ),
            ErrorKind::NotAllowedInConnection => f.write_str("not allowed inside a <connection> block"),
            ErrorKind::MissingArgument => f.write_str("missing argument"),
            ErrorKind::TooManyArguments => f.write_str("too many arguments"),
            ErrorKind::InvalidArgument => f.write_str("invalid argument"),
            ErrorKind::InvalidNumber => f.write_str("invalid number"),
            ErrorKind::InvalidPort => f.write_str("invalid port (must be 1..65535)"),
            ErrorKind::StaticKeyMode => f.write_str(
                "static-key mode is not supported (no TLS, no forward secrecy): use a TLS config with `client`",
            ),
            ErrorKind::TapDevice => f.write_str("only `dev tun` is supported (oxvpn routes IP packets, not Ethernet)"),
            ErrorKind::ServerMode => f.write_str("server-mode directive in a client config (a server config has `server`, or `mode server` and \
                 `tls-server`)"),
            ErrorKind::Askpass => f.write_str(
                "askpass is not supported on the image: decrypt the key on the host with \
                 `openssl pkey -in key.pem -out key-decrypted.pem`",
            ),
            ErrorKind::Pkcs12 => f.write_str(
                "pkcs12 is not supported on the image: convert it on the host with \
                 `openssl pkcs12 -in client.p12 -nodes -out client.pem` and use `ca`, `cert` and `key`",
            ),
            ErrorKind::Fragment => f.write_str("fragment is not supported (set the MTU on the server instead)"),
            ErrorKind::Proxy => f.write_str("proxies are not supported: the image connects to the server directly"),
            ErrorKind::Unsupported => f.write_str("not supported, and ignoring it would weaken the connection"),
            ErrorKind::NoUsableCipher => f.write_str(
                "no supported data cipher (supported: AES-128-GCM, AES-192-GCM, AES-256-GCM, CHACHA20-POLY1305, \
                 AES-128-CBC, AES-192-CBC, AES-256-CBC)",
            ),
            ErrorKind::NoUsableTlsSuite => f.write_str(
                "no cipher suite rustls implements for the allowed TLS versions (TLS 1.2: ECDHE-ECDSA/ECDHE-RSA \
                 with AES128-GCM, AES256-GCM or CHACHA20-POLY1305; TLS 1.3: TLS_AES_128_GCM_SHA256, \
                 TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)",
            ),
            ErrorKind::NoUsableTlsGroup => {
                f.write_str("no key exchange group rustls implements (supported: X25519, secp256r1, secp384r1)")
            }
            ErrorKind::UnsupportedDigest => f.write_str("unsupported digest (supported: SHA1, SHA256, SHA384, SHA512)"),
            ErrorKind::TlsVersionTooOld => f.write_str("TLS versions below 1.2 are not supported"),
            ErrorKind::ConflictingControlChannel => {
                f.write_str("tls-auth, tls-crypt and tls-crypt-v2 are mutually exclusive")
            }
            ErrorKind::NotAClient => f.write_str(
                "not a client config: add `client` (or `tls-client` and `pull`); oxvpn is a TLS client",
            ),
            ErrorKind::NoRemote => f.write_str("no `remote`: the client has no server to connect to"),
            ErrorKind::NoServerVerification => {
                f.write_str("neither `ca` nor `peer-fingerprint`: the server could not be authenticated")
            }
            ErrorKind::CertWithoutKey => f.write_str("`cert` and `key` must be given together"),
            ErrorKind::NoClientAuth => {
                f.write_str("neither `cert`/`key` nor `auth-user-pass`: the client has no credentials")
            }
            ErrorKind::CrlDirectory => f.write_str(
                "`crl-verify DIR dir` (a directory of files named by revoked serial numbers) cannot be carried \
                 on a config disk: give the CA's CRL file instead (`crl-verify crl.pem`)",
            ),
            ErrorKind::CrlWithoutCa => f.write_str(
                "crl-verify needs `ca`: a CRL's signature is checked with the keys of the CA chain, and \
                 peer-fingerprint alone has none",
            ),
            ErrorKind::ClientDirectiveInServer => f.write_str(
                "client directive in a server config (a config with `server` or `mode server` is a server)",
            ),
            ErrorKind::NeedsScript => f.write_str(
                "runs a script or plugin, and the image runs none: for passwords use an \
                 <auth-user-pass-db> block, to revoke tls-crypt-v2 keys a <tls-crypt-v2-revoked> block \
                 (README: Server config extensions)",
            ),
            ErrorKind::NeedsFilesystem => f.write_str(
                "reads or writes files at run time, and the image has no filesystem (addresses are kept in \
                 memory per common name, so a reconnecting client gets its address back): remove the line",
            ),
            ErrorKind::NoServerCertificate => {
                f.write_str("a server config needs `cert` and `key`: the server's TLS certificate")
            }
            ErrorKind::NoClientVerification => f.write_str(
                "no `ca`: clients could not be authenticated (without client certificates give \
                 `verify-client-cert none` and an <auth-user-pass-db>)",
            ),
            ErrorKind::WeakPasswordHash => {
                f.write_str("fewer than 10000 PBKDF2 iterations: the hash is too cheap to brute-force")
            }
            ErrorKind::BadPasswordHash => f.write_str(
                "not `USERNAME pbkdf2-sha256:ITERATIONS:SALT_BASE64:HASH_BASE64`",
            ),
            ErrorKind::BadRevokedKeyHash => {
                f.write_str("not a SHA-256 of a wrapped client key (64 lowercase hex digits)")
            }
            ErrorKind::BadQubesFirewallLine => f.write_str(
                "not `CLIENT_IPV4 policy=accept|drop` or `CLIENT_IPV4 action=accept|drop [key=value ...]`",
            ),
            ErrorKind::TooManyEntries => f.write_str("too many entries"),
            ErrorKind::File(kind) => fmt::Display::fmt(kind, f),
            ErrorKind::Key(kind) => fmt::Display::fmt(kind, f),
        }
    }
}

/// A refused config: the line (1-based; 0 = the file as a whole), the directive and the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line number, or 0 when the error is about the file as a whole.
    pub line: u32,
    /// The directive on that line (empty for whole-file errors).
    pub directive: DirectiveName,
    /// Why.
    pub kind: ErrorKind,
}

impl ConfigError {
    /// An error at `line` about `directive`.
    pub fn new(line: u32, directive: &str, kind: ErrorKind) -> Self {
        ConfigError {
            line,
            directive: DirectiveName::new(directive),
            kind,
        }
    }

    /// An error about the whole file.
    pub fn whole_file(kind: ErrorKind) -> Self {
        ConfigError {
            line: 0,
            directive: DirectiveName::NONE,
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.directive.as_str()) {
            (0, "") => write!(f, "config: {}", self.kind),
            (line, "") => write!(f, "line {line}: {}", self.kind),
            (0, directive) => write!(f, "config: `{directive}`: {}", self.kind),
            (line, directive) => write!(f, "line {line}: `{directive}`: {}", self.kind),
        }
    }
}

/// Why a directive was accepted but not (fully) applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// Only matters to an OpenVPN process on a host (files, users, scripts, Windows, logging): ignored.
    HostOnly,
    /// Unknown, but listed in `ignore-unknown-option` or written as `setenv opt`: ignored.
    IgnoredUnknown,
    /// Obsolete directive: translated to its modern equivalent.
    Obsolete,
    /// Obsolete directive with no effect in OpenVPN 2.6: ignored.
    NoEffect,
    /// A cipher oxvpn does not implement was dropped from the list (others remain).
    CipherDropped,
    /// Compression: oxvpn keeps the framing but never compresses (as OpenVPN 2.6's `allow-compression no`).
    CompressionFramingOnly,
    /// A per-connection option inside `<connection>` that oxvpn applies to every connection.
    AppliesToAllConnections,
    /// The private key carries no public point, so the certificate/key match could not be checked.
    KeyMatchUnchecked,
    /// Point-to-point or client-side address/route setting: the address comes from the server's push.
    PushedInstead,
    /// `tls-cert-profile legacy`/`insecure`: rustls accepts only what `preferred` allows.
    CertProfileStricter,
    /// `tls-groups`: names of groups rustls does not implement were dropped (others remain).
    TlsGroupDropped,
    /// `auth-nocache`: the credentials are inline in the config, so they stay in memory.
    CredentialsStayInline,
    /// `tls-cipher`/`tls-ciphersuites`: names that are unknown or not implemented by rustls were dropped.
    TlsSuiteDropped,
    /// `tls-cipher`/`tls-ciphersuites`: no listed suite is implemented, so that TLS version is not offered.
    TlsVersionNotOffered,
    /// `dh` in a server config: oxvpn's TLS uses ECDHE only, so DH parameters are not used.
    DhNotUsed,
    /// Has no effect in a server config without `client-config-dir` (`push-reset`).
    ServerNoEffect,
    /// `status FILE N`: the client list goes to the console every N seconds; no file is written.
    StatusToConsole,
}

impl fmt::Display for WarningKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WarningKind::HostOnly => "only matters to an OpenVPN host process; ignored",
            WarningKind::IgnoredUnknown => "unknown directive ignored (ignore-unknown-option / setenv opt)",
            WarningKind::Obsolete => "obsolete; translated to its modern equivalent",
            WarningKind::NoEffect => "obsolete and without effect in OpenVPN 2.6; ignored",
            WarningKind::CipherDropped => "cipher not supported by oxvpn; dropped from the list",
            WarningKind::CompressionFramingOnly => {
                "compression framing accepted, but oxvpn never compresses (like allow-compression no)"
            }
            WarningKind::AppliesToAllConnections => "inside <connection>, but applied to every connection",
            WarningKind::KeyMatchUnchecked => {
                "the private key carries no public key; its match with the certificate was not checked"
            }
            WarningKind::PushedInstead => "the tunnel address and routes come from the server's push; ignored",
            WarningKind::CertProfileStricter => {
                "rustls accepts only SHA-2 signatures and RSA keys of 2048 bits or more (the `preferred` \
                 profile), stricter than asked"
            }
            WarningKind::TlsGroupDropped => {
                "key exchange group not implemented by rustls (X25519, secp256r1, secp384r1 are); dropped \
                 from the list"
            }
            WarningKind::CredentialsStayInline => {
                "the credentials are inline in the config and stay in memory for reconnects (as OpenVPN keeps \
                 inline credentials); an auth-token pushed by the server is used for renegotiations"
            }
            WarningKind::TlsSuiteDropped => {
                "cipher suite unknown or not implemented by rustls (ECDHE with AES-GCM or ChaCha20-Poly1305 \
                 only); dropped from the list"
            }
            WarningKind::TlsVersionNotOffered => {
                "no listed cipher suite is implemented by rustls; this TLS version is not offered"
            }
            WarningKind::DhNotUsed => "DH parameters are not used (the TLS key exchange is ECDHE); ignored",
            WarningKind::ServerNoEffect => "no effect in a server config without client-config-dir; ignored",
            WarningKind::StatusToConsole => {
                "the client list is printed on the console at this interval; no status file is written"
            }
        })
    }
}

/// A directive that was accepted but ignored or changed; the caller logs these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line number.
    pub line: u32,
    /// The directive.
    pub directive: DirectiveName,
    /// What happened to it.
    pub reason: WarningKind,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: `{}`: {}",
            self.line, self.directive, self.reason
        )
    }
}
