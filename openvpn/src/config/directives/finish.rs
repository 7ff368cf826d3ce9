//! The whole-config stage: after every statement is applied, check client mode, remotes and credentials,
//! read the files that won (in line order), decode key material and settle the cipher lists.
//!
//! Layer: semantics; file contents come from the caller's [`FileResolver`](super::super::FileResolver).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::{Builder, CcKind, FileDirective, PendingCc, Result, Source};
use crate::config::error::{ConfigError, ErrorKind, FileErrorKind, Warning, WarningKind};
use crate::config::model::*;
use crate::config::{DirectiveName, Parsed, Resolved};
use crate::keys::{self, KeyDirection, KeyError, PrivateKey, StaticKey, TlsCryptV2ClientKey};

impl Builder<'_> {
    /// Checks the whole config, resolves the files that won and decodes key material.
    pub(in crate::config) fn finish(mut self) -> Result<Parsed> {
        if let Some(server) = self.server.take() {
            return self.finish_server(server);
        }
        if !(self.client || (self.tls_client && self.pull)) {
            return Err(ConfigError::whole_file(ErrorKind::NotAClient));
        }
        if let Some((line, dev)) = self.dev.take() {
            if !dev.starts_with("tun") && !self.dev_type_tun {
                return Err(ConfigError::new(line, "dev", ErrorKind::TapDevice));
            }
            self.config.dev = dev;
        }
        if self.remotes.is_empty() {
            return Err(ConfigError::whole_file(ErrorKind::NoRemote));
        }
        self.ciphers()?;
        self.tls_suites()?;
        self.read_files_in_line_order()?;

        let global_cc = self.global.cc.take();
        let global_direction = self.global.key_direction;
        self.config.control_channel = match &global_cc {
            Some(cc) => self.control_channel(cc, global_direction)?,
            None => ControlChannel::None,
        };
        let pending = core::mem::take(&mut self.remotes);
        for remote in pending {
            let (block_cc, block_direction, server_poll_timeout) = match &remote.block {
                Some(scope) => (
                    scope.cc.clone(),
                    scope.key_direction,
                    scope.server_poll_timeout,
                ),
                None => (None, None, None),
            };
            let control_channel = match block_cc {
                Some(cc) => Some(self.control_channel(&cc, block_direction.or(global_direction))?),
                None => None,
            };
            self.config.remotes.push(Remote {
                host: remote.host,
                port: remote.port.or(self.global.port).unwrap_or(1194),
                proto: remote.proto.or(self.global.proto).unwrap_or_default(),
                control_channel,
                server_poll_timeout,
            });
        }

        let crl_line = self.ca_and_crl()?;
        if let Some((line, source)) = self.peer_fingerprints.take() {
            let Source::Inline(text) = source else {
                return Err(ConfigError::new(
                    line,
                    "peer-fingerprint",
                    ErrorKind::InvalidArgument,
                ));
            };
            for entry in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                let fp = parse_fingerprint(entry)
                    .ok_or_else(|| key_error(line, "peer-fingerprint", KeyError::BadFingerprint))?;
                self.config.tls.peer_fingerprints.push(fp);
            }
            if self.config.tls.peer_fingerprints.is_empty() {
                return Err(key_error(
                    line,
                    "peer-fingerprint",
                    KeyError::BadFingerprint,
                ));
            }
        }
        let ca_given = !self.config.tls.ca.is_empty()
            || self.config.tls.unread_files.iter().any(|(d, _)| d == "ca");
        if !ca_given && self.config.tls.peer_fingerprints.is_empty() {
            return Err(ConfigError::whole_file(ErrorKind::NoServerVerification));
        }
        if let (Some(line), false) = (crl_line, ca_given) {
            // Only a chain to `ca` holds the keys that sign the CRLs.
            return Err(ConfigError::new(
                line,
                "crl-verify",
                ErrorKind::CrlWithoutCa,
            ));
        }

        self.cert_key_and_extra()?;

        if let Some(FileDirective { line, source }) = self.auth_user_pass.take() {
            self.config.auth_user_pass = Some(match source {
                None => {
                    if !self.resolver.allows_prompt() {
                        return Err(ConfigError::new(
                            line,
                            "auth-user-pass",
                            ErrorKind::File(FileErrorKind::NeedsPrompt),
                        ));
                    }
                    AuthUserPass::Prompt
                }
                Some(source) => {
                    let file = FileDirective {
                        line,
                        source: Some(source.clone()),
                    };
                    match self.read(&file, "auth-user-pass")? {
                        Some(text) => AuthUserPass::Credentials(
                            parse_credentials(&text)
                                .map_err(|e| key_error(line, "auth-user-pass", e))?,
                        ),
                        None => match source {
                            Source::Path(p) => AuthUserPass::Path(p),
                            Source::Inline(_) => AuthUserPass::Prompt,
                        },
                    }
                }
            });
        }
        let has_cert = !self.config.tls.cert_chain.is_empty()
            || self
                .config
                .tls
                .unread_files
                .iter()
                .any(|(d, _)| d == "cert");
        if !has_cert && self.config.auth_user_pass.is_none() {
            return Err(ConfigError::whole_file(ErrorKind::NoClientAuth));
        }
        Ok(Parsed {
            config: self.config,
            warnings: self.warnings,
        })
    }

    /// `ca` and `crl-verify`: returns the CRL's line, if any.
    pub(super) fn ca_and_crl(&mut self) -> Result<Option<u32>> {
        let mut crl_line = None;
        if let Some(ca) = self.ca.take() {
            if let Some(text) = self.read(&ca, "ca")? {
                self.config.tls.ca =
                    keys::parse_chain(&text).map_err(|e| key_error(ca.line, "ca", e))?;
            }
        }
        if let Some(crl) = self.crl.take() {
            if let Some(text) = self.read(&crl, "crl-verify")? {
                self.config.tls.crls = keys::crl::parse_crls(&text)
                    .map_err(|e| key_error(crl.line, "crl-verify", e))?;
            }
            crl_line = Some(crl.line);
        }
        Ok(crl_line)
    }

    /// `cert` + `key` (both or neither) and `extra-certs`.
    pub(super) fn cert_key_and_extra(&mut self) -> Result<()> {
        match (self.cert.take(), self.key.take()) {
            (Some(cert), Some(key)) => self.client_certificate(cert, key)?,
            (Some(only), None) => {
                return Err(ConfigError::new(
                    only.line,
                    "cert",
                    ErrorKind::CertWithoutKey,
                ))
            }
            (None, Some(only)) => {
                return Err(ConfigError::new(
                    only.line,
                    "key",
                    ErrorKind::CertWithoutKey,
                ))
            }
            (None, None) => {}
        }
        if let Some(extra) = self.extra_certs.take() {
            if let Some(text) = self.read(&extra, "extra-certs")? {
                let chain = keys::parse_chain(&text)
                    .map_err(|e| key_error(extra.line, "extra-certs", e))?;
                self.config.tls.cert_chain.extend(chain);
            }
        }

        Ok(())
    }

    /// Reads every file the config references by path, in line order, so that the first bad file reported
    /// is the first in the config. Contents become inline sources; kept paths stay paths.
    pub(super) fn read_files_in_line_order(&mut self) -> Result<()> {
        let mut files: Vec<(&mut FileDirective, &'static str)> = Vec::new();
        let singles = [
            (&mut self.ca, "ca"),
            (&mut self.cert, "cert"),
            (&mut self.key, "key"),
            (&mut self.extra_certs, "extra-certs"),
            (&mut self.crl, "crl-verify"),
            (&mut self.auth_user_pass, "auth-user-pass"),
        ];
        for (slot, name) in singles {
            if let Some(file) = slot.as_mut() {
                files.push((file, name));
            }
        }
        let scopes = core::iter::once(&mut self.global)
            .chain(self.remotes.iter_mut().filter_map(|r| r.block.as_mut()));
        for scope in scopes {
            if let Some(cc) = scope.cc.as_mut() {
                files.push((&mut cc.file, cc.kind.name()));
            }
        }
        files.sort_by_key(|(file, _)| file.line);
        for (file, name) in files {
            let Some(Source::Path(path)) = &file.source else {
                continue;
            };
            match self.resolver.read(path) {
                Ok(Resolved::Contents(text)) => file.source = Some(Source::Inline(text)),
                Ok(Resolved::KeepPath) => {}
                Err(kind) => return Err(ConfigError::new(file.line, name, ErrorKind::File(kind))),
            }
        }
        Ok(())
    }

    pub(super) fn ciphers(&mut self) -> Result<()> {
        let mut explicit = false;
        if let Some((line, list)) = self.data_ciphers.take() {
            explicit = true;
            let mut ciphers = Vec::new();
            for name in list.split(':').filter(|n| !n.is_empty()) {
                let optional = name.strip_prefix('?');
                match Cipher::from_name(optional.unwrap_or(name)) {
                    Some(c) if !ciphers.contains(&c) => ciphers.push(c),
                    Some(_) => {}
                    None => self.warnings.push(Warning {
                        line,
                        directive: DirectiveName::new("data-ciphers"),
                        reason: WarningKind::CipherDropped,
                    }),
                }
            }
            if ciphers.is_empty() {
                return Err(ConfigError::new(
                    line,
                    "data-ciphers",
                    ErrorKind::NoUsableCipher,
                ));
            }
            self.config.data_ciphers = ciphers;
        }
        let cipher = match self.cipher.take() {
            Some((line, name)) => match Cipher::from_name(&name) {
                Some(c) => Some(c),
                None => {
                    self.warnings.push(Warning {
                        line,
                        directive: DirectiveName::new("cipher"),
                        reason: WarningKind::CipherDropped,
                    });
                    None
                }
            },
            None => None,
        };
        // 2.6: without an explicit `data-ciphers`, `cipher` is appended to the default list, and it remains
        // the fallback for peers that cannot negotiate unless `data-ciphers-fallback` says otherwise.
        if let Some(c) = cipher {
            if !explicit && !self.config.data_ciphers.contains(&c) {
                self.config.data_ciphers.push(c);
            }
        }
        self.config.data_ciphers_fallback = match self.fallback.take() {
            Some((line, name)) => Some(Cipher::from_name(&name).ok_or_else(|| {
                ConfigError::new(line, "data-ciphers-fallback", ErrorKind::NoUsableCipher)
            })?),
            None => cipher,
        };
        Ok(())
    }

    /// `tls-cipher` (TLS 1.2) and `tls-ciphersuites` (TLS 1.3) against the suites rustls implements: names
    /// it lacks are dropped with a warning; a list left empty turns its TLS version off (a warning), and
    /// an error names the line when no allowed TLS version keeps a suite. `tls-groups` likewise: unknown
    /// groups dropped with a warning, an error when none is left.
    pub(super) fn tls_suites(&mut self) -> Result<()> {
        let tls = &self.config.tls;
        let allow12 = tls.version_min.is_none_or(|v| v <= TlsVersion::V1_2);
        let allow13 = tls.version_max.is_none_or(|v| v >= TlsVersion::V1_3);
        let lists = [
            (
                "tls-cipher",
                self.tls_cipher_line,
                tls.cipher_list
                    .as_deref()
                    .map(crate::tls::suites::tls12_suites),
                allow12,
            ),
            (
                "tls-ciphersuites",
                self.tls_ciphersuites_line,
                tls.ciphersuites
                    .as_deref()
                    .map(crate::tls::suites::tls13_suites),
                allow13,
            ),
        ];
        let mut usable = [allow12, allow13];
        let mut emptied = None;
        for ((name, line, selection, allowed), usable) in lists.into_iter().zip(usable.iter_mut()) {
            let Some(selection) = selection else { continue };
            if selection.dropped > 0 {
                self.warnings.push(Warning {
                    line,
                    directive: DirectiveName::new(name),
                    reason: WarningKind::TlsSuiteDropped,
                });
            }
            if selection.ids.is_empty() && allowed {
                *usable = false;
                emptied.get_or_insert((name, line));
                self.warnings.push(Warning {
                    line,
                    directive: DirectiveName::new(name),
                    reason: WarningKind::TlsVersionNotOffered,
                });
            }
        }
        if let (Some((name, line)), [false, false]) = (emptied, usable) {
            return Err(ConfigError::new(line, name, ErrorKind::NoUsableTlsSuite));
        }
        if let Some(list) = &self.config.tls.groups {
            let line = self.tls_groups_line;
            let selection = crate::tls::suites::groups(list);
            if selection.dropped > 0 {
                self.warnings.push(Warning {
                    line,
                    directive: DirectiveName::new("tls-groups"),
                    reason: WarningKind::TlsGroupDropped,
                });
            }
            if selection.ids.is_empty() {
                return Err(ConfigError::new(
                    line,
                    "tls-groups",
                    ErrorKind::NoUsableTlsGroup,
                ));
            }
        }
        Ok(())
    }

    /// Reads a file-valued directive: inline text, or the resolver's answer for its path. `None` when the
    /// resolver keeps the path unread (recorded in `tls.unread_files` for the certificate directives).
    pub(super) fn read(&mut self, file: &FileDirective, directive: &str) -> Result<Option<String>> {
        match &file.source {
            None => Err(ConfigError::new(
                file.line,
                directive,
                ErrorKind::MissingArgument,
            )),
            Some(Source::Inline(text)) => Ok(Some(text.clone())),
            Some(Source::Path(path)) => match self.resolver.read(path) {
                Ok(Resolved::Contents(text)) => Ok(Some(text)),
                Ok(Resolved::KeepPath) => {
                    if matches!(
                        directive,
                        "ca" | "cert" | "key" | "extra-certs" | "crl-verify"
                    ) {
                        self.config
                            .tls
                            .unread_files
                            .push((directive.to_string(), path.clone()));
                    }
                    Ok(None)
                }
                Err(kind) => Err(ConfigError::new(
                    file.line,
                    directive,
                    ErrorKind::File(kind),
                )),
            },
        }
    }

    pub(super) fn control_channel(
        &mut self,
        cc: &PendingCc,
        key_direction: Option<KeyDirection>,
    ) -> Result<ControlChannel> {
        let name = cc.kind.name();
        let direction = cc.direction.or(key_direction).unwrap_or_default();
        let Some(text) = self.read(&cc.file, name)? else {
            let path = match &cc.file.source {
                Some(Source::Path(p)) => p.clone(),
                _ => String::new(),
            };
            return Ok(ControlChannel::Unread {
                directive: name.to_string(),
                path,
                direction,
            });
        };
        let line = cc.file.line;
        Ok(match cc.kind {
            CcKind::TlsAuth => ControlChannel::TlsAuth {
                key: StaticKey::parse(&text).map_err(|e| key_error(line, name, e))?,
                direction,
            },
            CcKind::TlsCrypt => ControlChannel::TlsCrypt(
                StaticKey::parse(&text).map_err(|e| key_error(line, name, e))?,
            ),
            CcKind::TlsCryptV2 => ControlChannel::TlsCryptV2(
                TlsCryptV2ClientKey::parse(&text).map_err(|e| key_error(line, name, e))?,
            ),
        })
    }

    fn client_certificate(&mut self, cert: FileDirective, key: FileDirective) -> Result<()> {
        let cert_text = self.read(&cert, "cert")?;
        let key_text = self.read(&key, "key")?;
        let chain = match cert_text {
            Some(text) => keys::parse_chain(&text).map_err(|e| key_error(cert.line, "cert", e))?,
            None => Vec::new(),
        };
        let private = match key_text {
            Some(text) => {
                Some(PrivateKey::parse(&text).map_err(|e| key_error(key.line, "key", e))?)
            }
            None => None,
        };
        if let (Some(leaf), Some(private)) = (chain.first(), &private) {
            // The check OpenVPN's SSL library does at load time (`SSL_CTX_check_private_key`).
            match private.matches(leaf) {
                Ok(true) => {}
                Ok(false) => self.warnings.push(Warning {
                    line: key.line,
                    directive: DirectiveName::new("key"),
                    reason: WarningKind::KeyMatchUnchecked,
                }),
                Err(e) => return Err(key_error(key.line, "key", e)),
            }
        }
        self.config.tls.cert_chain = chain;
        self.config.tls.key = private;
        Ok(())
    }
}
fn key_error(line: u32, directive: &str, e: KeyError) -> ConfigError {
    ConfigError::new(line, directive, ErrorKind::Key(e))
}

/// `AB:CD:…` (32 bytes, SHA-256).
pub(super) fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let mut parts = text.split(':');
    for slot in out.iter_mut() {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Username on line 1, password on line 2 (wire reference §11).
fn parse_credentials(text: &str) -> core::result::Result<Credentials, KeyError> {
    let mut lines = text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l));
    let username = lines
        .next()
        .filter(|u| !u.is_empty())
        .ok_or(KeyError::MissingUsername)?;
    let password = lines.next().ok_or(KeyError::MissingPassword)?;
    Ok(Credentials {
        username: String::from(username),
        password: String::from(password),
    })
}
