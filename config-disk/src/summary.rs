//! The human-readable summary `config-disk check` prints.

use std::fmt::Write;

use openvpn::config::{AuthUserPass, Compression, ControlChannel, Parsed, Transport};
use openvpn::keys::KeyDirection;

fn direction(d: KeyDirection) -> &'static str {
    match d {
        KeyDirection::Bidirectional => "bidirectional",
        KeyDirection::Normal => "key-direction 0",
        KeyDirection::Inverse => "key-direction 1",
    }
}

fn control_channel(cc: &ControlChannel, auth: &str) -> String {
    match cc {
        ControlChannel::None => "none (plain control packets)".into(),
        ControlChannel::TlsAuth { direction: d, .. } => {
            format!("tls-auth (HMAC-{auth}, {})", direction(*d))
        }
        ControlChannel::TlsCrypt(_) => "tls-crypt (AES-256-CTR + HMAC-SHA256)".into(),
        ControlChannel::TlsCryptV2(k) => format!(
            "tls-crypt-v2 (client key, {}-byte wrapped key)",
            k.wkc.len()
        ),
        ControlChannel::Unread {
            directive, path, ..
        } => format!("{directive} from file {path}"),
    }
}

/// The summary text.
pub fn summary(source: &str, parsed: &Parsed) -> String {
    let c = &parsed.config;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "config: {source}: OK ({} warnings)",
        parsed.warnings.len()
    );
    let _ = writeln!(
        s,
        "remotes:{}",
        if c.remote_random {
            " (remote-random)"
        } else {
            ""
        }
    );
    for r in &c.remotes {
        let extra = r
            .control_channel
            .as_ref()
            .map(|cc| format!(" [{}]", control_channel(cc, c.auth.name())));
        let _ = writeln!(
            s,
            "  {} {} {}{}",
            r.host,
            r.port,
            r.proto.as_arg(),
            extra.unwrap_or_default()
        );
    }
    let udp = c
        .remotes
        .iter()
        .filter(|r| r.proto.transport() == Transport::Udp)
        .count();
    let protocol = match (udp, c.remotes.len() - udp) {
        (_, 0) => "udp",
        (0, _) => "tcp",
        _ => "udp and tcp",
    };
    let _ = writeln!(s, "protocol: {protocol}");
    let ciphers: Vec<&str> = c.data_ciphers.iter().map(|x| x.name()).collect();
    let fallback = c
        .data_ciphers_fallback
        .map(|f| format!(" (fallback {})", f.name()))
        .unwrap_or_default();
    let _ = writeln!(s, "data ciphers: {}{fallback}", ciphers.join(":"));
    let _ = writeln!(s, "auth digest: {}", c.auth.name());
    let _ = writeln!(
        s,
        "control channel: {}",
        control_channel(&c.control_channel, c.auth.name())
    );
    let t = &c.tls;
    let mut verify = Vec::new();
    if !t.ca.is_empty() {
        verify.push(format!(
            "ca ({} certificate{})",
            t.ca.len(),
            if t.ca.len() == 1 { "" } else { "s" }
        ));
    }
    for (directive, path) in &t.unread_files {
        verify.push(format!("{directive} from file {path}"));
    }
    if !t.peer_fingerprints.is_empty() {
        verify.push(format!("peer-fingerprint ({})", t.peer_fingerprints.len()));
    }
    if t.remote_cert_tls.is_some() {
        verify.push("remote-cert-tls server".into());
    }
    if let Some(v) = &t.verify_x509_name {
        verify.push(format!("verify-x509-name {:?} ({:?})", v.name, v.kind));
    }
    if !t.crls.is_empty() {
        verify.push(format!("crl-verify ({})", t.crls.len()));
    }
    let _ = writeln!(s, "server verification: {}", verify.join(", "));
    let mut auth = Vec::new();
    if let Some(key) = &t.key {
        auth.push(format!(
            "certificate ({} in chain) + {:?} key",
            t.cert_chain.len(),
            key.format
        ));
    }
    match &c.auth_user_pass {
        None => {}
        Some(AuthUserPass::Credentials(cred)) => {
            auth.push(format!("username {:?} + password", cred.username))
        }
        Some(AuthUserPass::Prompt) => auth.push("username/password asked on the console".into()),
        Some(AuthUserPass::Path(p)) => auth.push(format!("username/password from file {p}")),
    }
    let _ = writeln!(s, "client auth: {}", auth.join(", "));
    if c.compression != Compression::None {
        let _ = writeln!(
            s,
            "compression: {:?} framing (never compresses)",
            c.compression
        );
    }
    let _ = writeln!(
        s,
        "timers: reneg-sec {}, ping {}, ping-restart {}, hand-window {}",
        c.reneg_sec, c.ping, c.ping_restart, c.hand_window
    );
    s
}
