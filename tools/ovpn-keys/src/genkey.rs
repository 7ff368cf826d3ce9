//! `genkey` and `show`: the key files `openvpn --genkey` writes, made and read with the engine's own code
//! (`openvpn::keys` parses and prints every format, `openvpn::crypto::TlsCryptV2ServerKey` wraps client keys).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use openvpn::crypto::TlsCryptV2ServerKey;
use openvpn::keys::{
    base64, Metadata, ServerKey, ServerKeyKind, StaticKey, TlsCryptV2ClientKey, SERVER_KEY_LEN,
    STATIC_KEY_LEN,
};
use rand_core::{OsRng, RngCore};

use crate::fail::{Failure, Outcome};
use crate::files::{self, Secrecy};

/// A fresh static key (tls-auth, tls-crypt).
pub fn new_static_key() -> StaticKey {
    let mut bytes = [0u8; STATIC_KEY_LEN];
    OsRng.fill_bytes(&mut bytes);
    StaticKey::from_bytes(bytes)
}

/// A fresh 128-byte server key of `kind`.
pub fn new_server_key(kind: ServerKeyKind) -> ServerKey {
    let mut bytes = [0u8; SERVER_KEY_LEN];
    OsRng.fill_bytes(&mut bytes);
    ServerKey::from_bytes(kind, bytes)
}

/// Reads a tls-crypt-v2 server key file; a client key or anything else given instead is named as such.
pub fn read_server_key(path: &Path) -> Outcome<ServerKey> {
    let text = files::read_text(path)?;
    ServerKey::parse(&text, ServerKeyKind::TlsCryptV2).map_err(|e| {
        let what = describe_kind(&text);
        match what {
            Some(kind) if !kind.starts_with("tls-crypt-v2 server key") => Failure::input(
                path,
                format!("this is a {kind}, not a tls-crypt-v2 server key"),
            ),
            _ => Failure::input(path, e),
        }
    })
}

/// Wraps a fresh Kc with `metadata` under the server key: a new client key.
pub fn new_client_key(
    server: &ServerKey,
    metadata: &Metadata,
) -> Result<TlsCryptV2ClientKey, String> {
    let mut kc = [0u8; STATIC_KEY_LEN];
    OsRng.fill_bytes(&mut kc);
    let meta = metadata.encode().map_err(|e| e.to_string())?;
    let wkc = TlsCryptV2ServerKey::new(server.as_bytes())
        .wrap_client_key(&kc, &meta)
        .map_err(|e| e.to_string())?;
    TlsCryptV2ClientKey::from_parts(StaticKey::from_bytes(kc), wkc).map_err(|e| e.to_string())
}

/// Seconds since 1970 now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Parses `user:BASE64`, `timestamp` or `timestamp:UNIX`.
pub fn parse_metadata(arg: &str) -> Outcome<Metadata> {
    if let Some(b64) = arg.strip_prefix("user:") {
        let bytes = base64::decode(b64).ok_or_else(|| {
            Failure::Input(format!(
                "--metadata {arg}: the user data is not valid base64"
            ))
        })?;
        let meta = Metadata::User(bytes);
        meta.encode()
            .map_err(|e| Failure::Input(format!("--metadata {arg}: {e}")))?;
        return Ok(meta);
    }
    if arg == "timestamp" {
        return Ok(Metadata::Timestamp(unix_now()));
    }
    if let Some(time) = arg.strip_prefix("timestamp:") {
        let time = time.parse().map_err(|_| {
            Failure::Input(format!(
                "--metadata {arg}: the time must be seconds since 1970"
            ))
        })?;
        return Ok(Metadata::Timestamp(time));
    }
    Err(Failure::Usage(format!(
        "--metadata {arg}: expected user:BASE64, timestamp or timestamp:UNIX"
    )))
}

/// `genkey KIND FILE`.
pub fn genkey(
    kind: &str,
    file: &Path,
    server_key: Option<&Path>,
    metadata: Option<&str>,
    force: bool,
) -> Outcome {
    if kind != "tls-crypt-v2-client" && (server_key.is_some() || metadata.is_some()) {
        return Err(Failure::Usage(
            "--server-key and --metadata only apply to tls-crypt-v2-client".into(),
        ));
    }
    let text = match kind {
        "secret" | "tls-auth" | "tls-crypt" => new_static_key().to_pem(),
        "tls-crypt-v2-server" => new_server_key(ServerKeyKind::TlsCryptV2).to_pem(),
        "auth-token" => new_server_key(ServerKeyKind::AuthToken).to_pem(),
        "tls-crypt-v2-client" => {
            let server_path = server_key.ok_or_else(|| {
                Failure::Usage("genkey tls-crypt-v2-client needs --server-key FILE".into())
            })?;
            let server = read_server_key(server_path)?;
            let meta = match metadata {
                Some(arg) => parse_metadata(arg)?,
                None => Metadata::Timestamp(unix_now()),
            };
            new_client_key(&server, &meta)
                .map_err(|e| Failure::input(server_path, e))?
                .to_pem()
        }
        other => {
            return Err(Failure::Usage(format!(
                "unknown key kind `{other}` (secret, tls-crypt-v2-server, tls-crypt-v2-client, auth-token)"
            )))
        }
    };
    files::write_new(file, &text, Secrecy::Secret, force)?;
    println!("wrote {} ({kind})", file.display());
    Ok(())
}

/// A short name for what the text holds, from its first recognised block.
pub fn describe_kind(text: &str) -> Option<String> {
    if text.contains("-----BEGIN OpenVPN Static key V1-----") {
        return Some("OpenVPN static key V1 (tls-auth / tls-crypt)".into());
    }
    // The label of the first BEGIN line, even when the block is cut short: the parser then says what is wrong.
    let label = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
    })?;
    Some(match label {
        "OpenVPN tls-crypt-v2 server key" => "tls-crypt-v2 server key".into(),
        "OpenVPN tls-crypt-v2 client key" => "tls-crypt-v2 client key".into(),
        "OpenVPN auth-token server key" => "auth-token server key".into(),
        "CERTIFICATE" => "X.509 certificate".into(),
        "X509 CRL" => "certificate revocation list".into(),
        label if label.ends_with("PRIVATE KEY") => "private key".into(),
        label => format!("PEM block `{label}`"),
    })
}

/// Formats seconds since 1970 as an RFC 3339 UTC date.
pub fn format_time(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{unix} (out of range)"))
}

/// Describes metadata for `show`.
pub fn describe_metadata(meta: &Metadata) -> String {
    match meta {
        Metadata::User(bytes) => format!(
            "user (type 0x00), {} bytes: base64 {}, text {:?}",
            bytes.len(),
            base64::encode_lines(bytes).replace('\n', ""),
            String::from_utf8_lossy(bytes)
        ),
        Metadata::Timestamp(t) => format!("timestamp (type 0x01): {t} = {}", format_time(*t)),
        Metadata::Other(kind, bytes) => {
            format!("unknown type 0x{kind:02x}, {} bytes", bytes.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_arguments() {
        assert_eq!(
            parse_metadata("user:YWxpY2U=").unwrap(),
            Metadata::User(b"alice".to_vec())
        );
        assert_eq!(
            parse_metadata("timestamp:1700000000").unwrap(),
            Metadata::Timestamp(1_700_000_000)
        );
        assert!(matches!(
            parse_metadata("timestamp").unwrap(),
            Metadata::Timestamp(t) if t > 1_700_000_000
        ));
        assert!(matches!(parse_metadata("user:@@"), Err(Failure::Input(_))));
        assert!(matches!(
            parse_metadata("timestamp:x"),
            Err(Failure::Input(_))
        ));
        assert!(matches!(parse_metadata("other"), Err(Failure::Usage(_))));
        let long = base64::encode_lines(&[0; 734]).replace('\n', "");
        assert!(matches!(
            parse_metadata(&format!("user:{long}")),
            Err(Failure::Input(_))
        ));
    }

    #[test]
    fn client_keys_unwrap_to_their_metadata() {
        let server = new_server_key(ServerKeyKind::TlsCryptV2);
        let meta = Metadata::Timestamp(42);
        let key = new_client_key(&server, &meta).unwrap();
        let (kc, raw) = TlsCryptV2ServerKey::new(server.as_bytes())
            .unwrap_client_key(&key.wkc)
            .unwrap();
        assert_eq!(&kc, key.kc.as_bytes());
        assert_eq!(Metadata::decode(&raw), Ok(meta));
        assert_eq!(format_time(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
