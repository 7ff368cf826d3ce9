//! A minimal `.ovpn` reader for ovpn-ping: the directives a UDP tls-crypt-v2 / tls-crypt / tls-auth client
//! config uses, with inline blocks and file paths relative to the config. It stands in until the
//! engine's full config parser (`openvpn::config`) is wired in; unknown directives are ignored here.

use std::path::Path;

use openvpn::crypto::{Digest, KeyDirection};
use openvpn::engine::{ControlProtection, EngineConfig};
use openvpn::keys::{self, PrivateKeyFormat, StaticKey, TlsCryptV2ClientKey};
use openvpn::tls::{ClientKeyDer, TlsSettings};

/// What ovpn-ping needs from the config.
pub struct PingConfig {
    /// Remote host and port.
    pub remote: (String, u16),
    /// The engine configuration.
    pub engine: EngineConfig,
}

fn read_arg(dir: &Path, inline: &std::collections::HashMap<String, String>, name: &str, arg: Option<&str>) -> Result<Option<String>, String> {
    if let Some(text) = inline.get(name) {
        return Ok(Some(text.clone()));
    }
    match arg {
        Some(path) => std::fs::read_to_string(dir.join(path)).map(Some).map_err(|e| format!("{name} {path}: {e}")),
        None => Ok(None),
    }
}

/// Reads the config at `path`.
pub fn load(path: &Path) -> Result<PingConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut inline = std::collections::HashMap::new();
    let mut directives: Vec<Vec<String>> = Vec::new();
    let mut block: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some((name, body)) = block.as_mut() {
            if t == format!("</{name}>") {
                inline.insert(name.clone(), std::mem::take(body));
                block = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        if t.starts_with('<') && t.ends_with('>') && !t.starts_with("</") {
            block = Some((t[1..t.len() - 1].to_string(), String::new()));
            continue;
        }
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        directives.push(t.split_whitespace().map(|w| w.trim_start_matches("--").to_string()).collect());
    }
    let get = |name: &str| directives.iter().find(|d| d[0] == name);
    let arg = |name: &str, i: usize| get(name).and_then(|d| d.get(i)).map(String::as_str);

    let remote = get("remote").ok_or("no `remote`")?;
    let host = remote.get(1).ok_or("remote: no host")?.clone();
    let port = remote.get(2).map(|p| p.parse().map_err(|_| "remote: bad port")).transpose()?.unwrap_or(1194);
    if let Some(p) = arg("proto", 1) {
        if p.starts_with("tcp") {
            return Err("proto tcp: ovpn-ping supports UDP only for now".into());
        }
    }

    let mut tls = TlsSettings::default();
    let ca = read_arg(dir, &inline, "ca", arg("ca", 1))?.ok_or("no `ca`")?;
    tls.ca = keys::parse_chain(&ca).map_err(|e| format!("ca: {e}"))?.iter().map(|c| c.der().to_vec()).collect();
    if let Some(cert) = read_arg(dir, &inline, "cert", arg("cert", 1))? {
        tls.client_chain =
            keys::parse_chain(&cert).map_err(|e| format!("cert: {e}"))?.iter().map(|c| c.der().to_vec()).collect();
    }
    if let Some(key) = read_arg(dir, &inline, "key", arg("key", 1))? {
        let key = keys::PrivateKey::parse(&key).map_err(|e| format!("key: {e}"))?;
        let der = key.der().to_vec();
        tls.client_key = Some(match key.format {
            PrivateKeyFormat::Pkcs8 => ClientKeyDer::Pkcs8(der),
            PrivateKeyFormat::Sec1 => ClientKeyDer::Sec1(der),
            PrivateKeyFormat::Pkcs1 => ClientKeyDer::Pkcs1(der),
        });
    }
    tls.remote_cert_tls_server = arg("remote-cert-tls", 1) == Some("server");
    tls.tls12_only = arg("tls-version-max", 1) == Some("1.2");

    let digest = match arg("auth", 1) {
        Some(name) => Digest::from_name(name).ok_or(format!("auth {name}: unsupported"))?,
        None => Digest::Sha1,
    };
    let protection = if let Some(text) = read_arg(dir, &inline, "tls-crypt-v2", arg("tls-crypt-v2", 1))? {
        let k = TlsCryptV2ClientKey::parse(&text).map_err(|e| format!("tls-crypt-v2: {e}"))?;
        ControlProtection::TlsCryptV2 { kc: *k.kc.as_bytes(), wkc: k.wkc }
    } else if let Some(text) = read_arg(dir, &inline, "tls-crypt", arg("tls-crypt", 1))? {
        let k = StaticKey::parse(&text).map_err(|e| format!("tls-crypt: {e}"))?;
        ControlProtection::TlsCrypt { key: *k.as_bytes() }
    } else if let Some(text) = read_arg(dir, &inline, "tls-auth", arg("tls-auth", 1))? {
        let k = StaticKey::parse(&text).map_err(|e| format!("tls-auth: {e}"))?;
        let dir_arg = arg("tls-auth", 2).or(arg("key-direction", 1));
        let direction = match dir_arg {
            Some("0") => KeyDirection::Normal,
            Some("1") => KeyDirection::Inverse,
            _ => KeyDirection::Bidirectional,
        };
        ControlProtection::TlsAuth { key: *k.as_bytes(), direction, digest }
    } else {
        ControlProtection::None
    };

    let mut engine = EngineConfig::new(protection, tls);
    if let Some(list) = arg("data-ciphers", 1).or(arg("ncp-ciphers", 1)) {
        engine.data_ciphers = list.split(':').map(|c| c.to_ascii_uppercase()).collect();
    }
    if let Some(text) = inline.get("auth-user-pass") {
        let mut lines = text.lines();
        engine.auth_user_pass =
            Some((lines.next().unwrap_or("").to_string(), lines.next().unwrap_or("").to_string()));
    }
    if let Some(m) = arg("tun-mtu", 1).and_then(|m| m.parse().ok()) {
        engine.tun_mtu = m;
    }
    if let Some(d) = get("keepalive") {
        engine.ping_secs = d.get(1).and_then(|v| v.parse().ok());
        engine.ping_restart_secs = d.get(2).and_then(|v| v.parse().ok());
    }
    Ok(PingConfig { remote: (host, port), engine })
}
