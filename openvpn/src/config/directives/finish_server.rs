//! The whole-config stage of a server config: the files that won, the server's tls-crypt-v2 key, and the
//! checks a server needs (its own certificate, a way to authenticate clients).
//!
//! Layer: semantics; the expansion of `server` into addresses and pools is `server::config`'s.

use alloc::string::String;

use super::{Builder, CcKind, Result, Source};
use crate::config::error::{ConfigError, ErrorKind};
use crate::config::model::ControlChannel;
use crate::config::server_model::{ServerOptions, VerifyClientCert};
use crate::config::Parsed;
use crate::keys::{ServerKey, ServerKeyKind};

impl Builder<'_> {
    /// Finishes a server config (the role was decided before the first statement).
    pub(super) fn finish_server(mut self, mut server: ServerOptions) -> Result<Parsed> {
        if let Some((line, dev)) = self.dev.take() {
            if !dev.starts_with("tun") && !self.dev_type_tun {
                return Err(ConfigError::new(line, "dev", ErrorKind::TapDevice));
            }
            self.config.dev = dev;
        }
        self.ciphers()?;
        self.tls_suites()?;
        self.read_files_in_line_order()?;

        let direction = self.global.key_direction;
        if let Some(cc) = self.global.cc.take() {
            if cc.kind == CcKind::TlsCryptV2 {
                let line = cc.file.line;
                match self.read(&cc.file, "tls-crypt-v2")? {
                    Some(text) => {
                        let key =
                            ServerKey::parse(&text, ServerKeyKind::TlsCryptV2).map_err(|e| {
                                ConfigError::new(line, "tls-crypt-v2", ErrorKind::Key(e))
                            })?;
                        server.tls_crypt_v2_key = Some(key);
                    }
                    None => {
                        let path = match &cc.file.source {
                            Some(Source::Path(p)) => p.clone(),
                            _ => String::new(),
                        };
                        self.config.control_channel = ControlChannel::Unread {
                            directive: String::from("tls-crypt-v2"),
                            path,
                            direction: direction.unwrap_or_default(),
                        };
                    }
                }
            } else {
                self.config.control_channel = self.control_channel(&cc, direction)?;
            }
        }

        let crl_line = self.ca_and_crl()?;
        let unread =
            |tls: &crate::config::Tls, name: &str| tls.unread_files.iter().any(|(d, _)| d == name);
        let ca_given = !self.config.tls.ca.is_empty() || unread(&self.config.tls, "ca");
        if let (Some(line), false) = (crl_line, ca_given) {
            return Err(ConfigError::new(
                line,
                "crl-verify",
                ErrorKind::CrlWithoutCa,
            ));
        }
        self.cert_key_and_extra()?;
        let has_cert = !self.config.tls.cert_chain.is_empty() || unread(&self.config.tls, "cert");
        if !has_cert {
            return Err(ConfigError::whole_file(ErrorKind::NoServerCertificate));
        }
        // Without `ca` no certificate can be checked: only `verify-client-cert none` with passwords works;
        // and `verify-client-cert none` without passwords would let anyone in.
        let passwords_only =
            server.verify_client_cert == VerifyClientCert::None && !server.users.is_empty();
        let nobody_checked =
            server.verify_client_cert == VerifyClientCert::None && server.users.is_empty();
        if (!ca_given && !passwords_only) || nobody_checked {
            return Err(ConfigError::whole_file(ErrorKind::NoClientVerification));
        }
        self.config.server = Some(server);
        Ok(Parsed {
            config: self.config,
            warnings: self.warnings,
        })
    }
}
