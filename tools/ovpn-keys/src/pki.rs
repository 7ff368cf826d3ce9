//! `pki`: a CA for a small deployment, kept in one directory. rcgen writes every certificate and the CRL;
//! nothing here encodes DER by hand.
//!
//! ```text
//! DIR/ca.crt  ca.key (0600)  crl.pem  index.txt  tc-v2-server.key (0600, the tls-crypt-v2 server key)
//! DIR/issued/NAME.crt  DIR/private/NAME.key (0600)
//! ```
//! `index.txt` has one line per certificate: `KIND NAME SERIAL(hex) NOT_AFTER(unix) REVOKED(unix or -)`.

use std::path::{Path, PathBuf};

use openvpn::keys::ServerKeyKind;
use rand_core::{OsRng, RngCore};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::fail::{Failure, Outcome};
use crate::files::{self, Secrecy};
use crate::genkey;

/// Days a CRL stays valid; `pki crl` (and every `pki revoke`) writes a fresh one.
const CRL_DAYS: i64 = 180;

/// The key algorithm of the CA and of every certificate it issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA P-256 with SHA-256 (the default).
    P256,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 with SHA-256 (generated with the `rsa` crate; ring cannot generate RSA keys).
    Rsa2048,
}

impl KeyType {
    /// Parses `--key-type`.
    pub fn parse(arg: &str) -> Outcome<KeyType> {
        match arg {
            "ec" | "p256" | "ecdsa-p256" => Ok(KeyType::P256),
            "ed25519" => Ok(KeyType::Ed25519),
            "rsa2048" | "rsa" => Ok(KeyType::Rsa2048),
            other => Err(Failure::Usage(format!(
                "--key-type {other}: expected p256, ed25519 or rsa2048"
            ))),
        }
    }

    fn of(key: &KeyPair) -> KeyType {
        let alg = key.algorithm();
        if alg == &rcgen::PKCS_ED25519 {
            KeyType::Ed25519
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            KeyType::Rsa2048
        } else {
            KeyType::P256
        }
    }

    fn generate(self) -> Outcome<KeyPair> {
        let made = match self {
            KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519).and_then(|k| {
                let v1 = ed25519_pkcs8_v1(k.serialized_der())
                    .ok_or(rcgen::Error::CouldNotParseKeyPair)?;
                let mut pem = String::new();
                openvpn::keys::pem::encode("PRIVATE KEY", &v1, &mut pem);
                KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_ED25519)
            }),
            KeyType::Rsa2048 => {
                use rsa::pkcs8::{EncodePrivateKey, LineEnding};
                let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048)
                    .map_err(|e| Failure::Input(format!("RSA key generation failed: {e}")))?;
                let pem = key
                    .to_pkcs8_pem(LineEnding::LF)
                    .map_err(|e| Failure::Input(format!("RSA key encoding failed: {e}")))?;
                KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)
            }
        };
        made.map_err(|e| Failure::Input(format!("key generation failed: {e}")))
    }
}

/// ring writes Ed25519 keys as PKCS#8 v2 (RFC 5958, public key included), which OpenSSL 3.0 (Debian's
/// `openvpn`) cannot load; RFC 8410 §7's v1 form holds only the 32-byte seed behind a fixed prefix.
fn ed25519_pkcs8_v1(v2: &[u8]) -> Option<Vec<u8>> {
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed = v2.strip_prefix(&V2_PREFIX)?.get(..32)?;
    Some([&V1_PREFIX[..], seed].concat())
}

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

/// One line of `index.txt`.
#[derive(Clone, Debug)]
pub struct Entry {
    pub role: Role,
    pub name: String,
    pub serial: Vec<u8>,
    pub not_after: i64,
    pub revoked: Option<i64>,
}

/// An open PKI directory.
pub struct Pki {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Names become file names and the CN: keep them to a safe alphabet.
pub fn check_name(name: &str) -> Outcome {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "name `{name}`: use 1-64 letters, digits, '-', '_', '.', '@' (not starting with '.')"
        )))
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn fresh_serial() -> Vec<u8> {
    let mut serial = [0u8; 16];
    OsRng.fill_bytes(&mut serial);
    // Positive and without a leading zero byte, so it is 16 bytes in DER and in every tool's output.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial.to_vec()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Path of the certificate of `name`.
    pub fn cert_path(&self, name: &str) -> PathBuf {
        self.dir.join("issued").join(format!("{name}.crt"))
    }

    /// Path of the private key of `name`.
    pub fn key_path(&self, name: &str) -> PathBuf {
        self.dir.join("private").join(format!("{name}.key"))
    }

    /// Path of the tls-crypt-v2 server key.
    pub fn tls_crypt_v2_path(&self) -> PathBuf {
        self.path("tc-v2-server.key")
    }

    /// Path of the CRL.
    pub fn crl_path(&self) -> PathBuf {
        self.path("crl.pem")
    }

    /// Path of the CA certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// Opens an existing PKI directory.
    pub fn open(dir: &Path) -> Outcome<Pki> {
        let index = dir.join("index.txt");
        if !index.exists() {
            return Err(Failure::Input(format!(
                "{}: not a PKI directory (no index.txt); create one with `ovpn-keys pki init {}`",
                dir.display(),
                dir.display()
            )));
        }
        let text = files::read_text(&index)?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad =
                || Failure::input(&index, format!("line {}: malformed entry `{line}`", n + 1));
            let f: Vec<&str> = line.split_whitespace().collect();
            let [role, name, serial, not_after, revoked] = f.as_slice() else {
                return Err(bad());
            };
            entries.push(Entry {
                role: match *role {
                    "server" => Role::Server,
                    "client" => Role::Client,
                    _ => return Err(bad()),
                },
                name: name.to_string(),
                serial: unhex(serial).ok_or_else(bad)?,
                not_after: not_after.parse().map_err(|_| bad())?,
                revoked: match *revoked {
                    "-" => None,
                    t => Some(t.parse().map_err(|_| bad())?),
                },
            });
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    fn save_index(&self) -> Outcome {
        let mut text = String::from(
            "# ovpn-keys PKI index: KIND NAME SERIAL NOT_AFTER(unix) REVOKED(unix or -)\n",
        );
        for e in &self.entries {
            text.push_str(&format!(
                "{} {} {} {} {}\n",
                e.role.as_str(),
                e.name,
                hex(&e.serial),
                e.not_after,
                e.revoked
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into())
            ));
        }
        files::replace(&self.path("index.txt"), &text, Secrecy::Public)
    }

    fn issuer(&self) -> Outcome<Issuer<'static, KeyPair>> {
        let key_path = self.path("ca.key");
        let key_text = files::read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_text).map_err(|e| Failure::input(&key_path, e))?;
        let ca_text = files::read_text(&self.ca_path())?;
        Issuer::from_ca_cert_pem(&ca_text, key).map_err(|e| Failure::input(&self.ca_path(), e))
    }

    /// The entry for `name` that is not revoked.
    pub fn valid(&self, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name && e.revoked.is_none())
    }

    /// Writes the CRL from the index (every revoked serial).
    pub fn write_crl(&self) -> Outcome {
        let issuer = self.issuer()?;
        let now = now();
        let revoked = self
            .entries
            .iter()
            .filter_map(|e| {
                Some(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&e.serial),
                    revocation_time: OffsetDateTime::from_unix_timestamp(e.revoked?).ok()?,
                    reason_code: Some(RevocationReason::Unspecified),
                    invalidity_date: None,
                })
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + Duration::days(CRL_DAYS),
            crl_number: SerialNumber::from(u64::try_from(now.unix_timestamp()).unwrap_or(1)),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(&issuer)
            .and_then(|c| c.pem())
            .map_err(|e| Failure::Input(format!("CRL signing failed: {e}")))?;
        files::replace(&self.crl_path(), &crl, Secrecy::Public)
    }

    /// Issues a certificate and key for `name`.
    pub fn issue(&mut self, role: Role, name: &str, days: i64) -> Outcome<()> {
        check_name(name)?;
        if self.valid(name).is_some() {
            return Err(Failure::Input(format!(
                "{}: `{name}` already has a valid certificate; revoke it first (`pki revoke {name}`)",
                self.path("index.txt").display()
            )));
        }
        let issuer = self.issuer()?;
        let key = KeyType::of(issuer.key()).generate()?;
        let mut params = match role {
            Role::Server => CertificateParams::new(vec![name.to_string()])
                .map_err(|e| Failure::Usage(format!("name `{name}`: {e}")))?,
            Role::Client => CertificateParams::default(),
        };
        params.distinguished_name = dn(name);
        let serial = fresh_serial();
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let now = now();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(days);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        // What `remote-cert-tls server|client` checks: a key usage present, and the TLS EKU of the role.
        params.key_usages = match role {
            Role::Server => vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ],
            Role::Client => vec![KeyUsagePurpose::DigitalSignature],
        };
        params.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let cert = params.signed_by(&key, &issuer).map_err(|e| {
            Failure::Input(format!("signing the certificate of `{name}` failed: {e}"))
        })?;
        files::make_dir(&self.path("issued"), 0o755)?;
        files::make_dir(&self.path("private"), 0o700)?;
        // A re-issue after a revocation replaces the old files.
        files::replace(&self.key_path(name), &key.serialize_pem(), Secrecy::Secret)?;
        files::replace(&self.cert_path(name), &cert.pem(), Secrecy::Public)?;
        self.entries.push(Entry {
            role,
            name: name.to_string(),
            serial,
            not_after: params.not_after.unix_timestamp(),
            revoked: None,
        });
        self.save_index()?;
        println!(
            "issued {} certificate `{name}`: {}, key {}",
            role.as_str(),
            self.cert_path(name).display(),
            self.key_path(name).display()
        );
        Ok(())
    }

    /// Marks `name` revoked and rewrites the CRL.
    pub fn revoke(&mut self, name: &str) -> Outcome {
        let now = now().unix_timestamp();
        let entry = self
            .entries
            .iter_mut()
            .find(|e| e.name == name && e.revoked.is_none())
            .ok_or_else(|| {
                Failure::Input(format!("no valid certificate named `{name}` in the index"))
            })?;
        entry.revoked = Some(now);
        let serial = hex(&entry.serial);
        self.save_index()?;
        self.write_crl()?;
        println!(
            "revoked `{name}` (serial {serial}); {} updated",
            self.crl_path().display()
        );
        Ok(())
    }

    /// Prints the index.
    pub fn list(&self) {
        println!(
            "{:<7} {:<20} {:<33} {:<21} status",
            "kind", "name", "serial", "expires"
        );
        for e in &self.entries {
            let status = match e.revoked {
                Some(t) => format!(
                    "revoked {}",
                    genkey::format_time(u64::try_from(t).unwrap_or(0))
                ),
                None if e.not_after < now().unix_timestamp() => "expired".into(),
                None => "valid".into(),
            };
            println!(
                "{:<7} {:<20} {:<33} {:<21} {status}",
                e.role.as_str(),
                e.name,
                hex(&e.serial),
                genkey::format_time(u64::try_from(e.not_after).unwrap_or(0)),
            );
        }
    }
}

/// `pki init DIR`: the CA, an empty CRL, the tls-crypt-v2 server key and the index.
pub fn init(dir: &Path, key_type: KeyType, days: i64, cn: &str, force: bool) -> Outcome {
    let index = dir.join("index.txt");
    if !force && (index.exists() || dir.join("ca.key").exists()) {
        return Err(Failure::Input(format!(
            "{}: a PKI already exists here; refusing to overwrite it (give --force to start over)",
            dir.display()
        )));
    }
    files::make_dir(dir, 0o700)?;
    let key = key_type.generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(SerialNumber::from_slice(&fresh_serial()));
    let now = now();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(days);
    let cert = params
        .self_signed(&key)
        .map_err(|e| Failure::Input(format!("CA signing failed: {e}")))?;
    files::write_new(
        &dir.join("ca.key"),
        &key.serialize_pem(),
        Secrecy::Secret,
        force,
    )?;
    files::write_new(&dir.join("ca.crt"), &cert.pem(), Secrecy::Public, force)?;
    let v2 = genkey::new_server_key(ServerKeyKind::TlsCryptV2);
    files::write_new(
        &dir.join("tc-v2-server.key"),
        &v2.to_pem(),
        Secrecy::Secret,
        force,
    )?;
    let pki = Pki {
        dir: dir.to_path_buf(),
        entries: Vec::new(),
    };
    pki.save_index()?;
    pki.write_crl()?;
    println!(
        "created PKI in {} ({:?} CA `{cn}`, valid {days} days): ca.crt, ca.key, crl.pem, tc-v2-server.key, index.txt",
        dir.display(),
        key_type
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keys_are_pkcs8_v1() {
        let key = KeyType::Ed25519.generate().unwrap();
        let der = key.serialized_der();
        assert_eq!(der.len(), 48);
        assert_eq!(&der[..5], &[0x30, 0x2e, 0x02, 0x01, 0x00]);
        assert_eq!(KeyType::of(&key), KeyType::Ed25519);
        let pem = key.serialize_pem();
        assert!(openvpn::keys::PrivateKey::parse(&pem).is_ok());
    }

    #[test]
    fn hex_round_trips_and_names_are_checked() {
        assert_eq!(unhex(&hex(&[0, 0xab, 0x7f])), Some(vec![0, 0xab, 0x7f]));
        assert_eq!(unhex("abc"), None);
        assert!(check_name("alice@example.com").is_ok());
        assert!(check_name("../etc").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn pki_issue_revoke_list() {
        let dir = std::env::temp_dir().join(format!("ovpn-keys-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        init(&dir, KeyType::P256, 30, "test CA", false).unwrap();
        assert!(init(&dir, KeyType::P256, 30, "test CA", false).is_err());
        let mut pki = Pki::open(&dir).unwrap();
        pki.issue(Role::Client, "alice", 10).unwrap();
        assert!(pki.issue(Role::Client, "alice", 10).is_err());
        pki.revoke("alice").unwrap();
        let pki = Pki::open(&dir).unwrap();
        assert_eq!(pki.entries.len(), 1);
        assert!(pki.entries[0].revoked.is_some());
        // The engine's CRL parser reads what rcgen wrote, with alice's serial in it.
        let text = std::fs::read_to_string(pki.crl_path()).unwrap();
        let ders = openvpn::keys::crl::parse_crls(&text).unwrap();
        let crl = openvpn::keys::crl::Crl::from_der(&ders[0]).unwrap();
        assert!(crl.v2().is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
