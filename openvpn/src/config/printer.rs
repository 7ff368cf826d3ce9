//! Writes a [`Config`] as config text that parses back to the same `Config`: every file inline, every
//! setting explicit, no comments. The config disk tool uses it to produce the image's config.
//!
//! Layer: pure text output.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::model::*;
use crate::keys::{cert, KeyDirection};

/// Writes `token` so the tokenizer reads it back unchanged (double quotes and escapes when needed).
fn token(out: &mut String, token: &str) {
    let plain = !token.is_empty()
        && !token.starts_with(['#', ';'])
        && !token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    if plain {
        out.push_str(token);
        return;
    }
    out.push('"');
    for c in token.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

fn line(out: &mut String, words: &[&str]) {
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if i == 0 {
            out.push_str(w);
        } else {
            token(out, w);
        }
    }
    out.push('\n');
}

fn block(out: &mut String, name: &str, body: &str) {
    let _ = writeln!(out, "<{name}>");
    out.push_str(body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
    let _ = writeln!(out, "</{name}>");
}

fn control_channel(out: &mut String, cc: &ControlChannel) {
    match cc {
        ControlChannel::None => {}
        ControlChannel::TlsAuth { key, direction } => {
            // The direction goes on the directive line so that no `key-direction` leaks into other scopes.
            match direction.as_arg() {
                Some(d) => line(out, &["tls-auth", "[inline]", d]),
                None => line(out, &["tls-auth", "[inline]"]),
            }
            block(out, "tls-auth", &key.to_pem());
        }
        ControlChannel::TlsCrypt(key) => block(out, "tls-crypt", &key.to_pem()),
        ControlChannel::TlsCryptV2(key) => block(out, "tls-crypt-v2", &key.to_pem()),
        ControlChannel::Unread {
            directive,
            path,
            direction,
        } => match (directive.as_str(), direction) {
            ("tls-auth", d) if *d != KeyDirection::Bidirectional => {
                line(out, &[directive, path, d.as_arg().unwrap_or("1")])
            }
            _ => line(out, &[directive, path]),
        },
    }
}

/// `name value`, unless `value` is the default.
fn number<T: PartialEq + core::fmt::Display>(out: &mut String, name: &str, value: T, default: T) {
    if value != default {
        line(out, &[name, &format!("{value}")]);
    }
}

fn hex_fingerprint(fp: &[u8; 32]) -> String {
    let mut s = String::with_capacity(96);
    for (i, b) in fp.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

/// Writes `config` as config text. Settings equal to OpenVPN's defaults are left out.
pub fn print(config: &Config) -> String {
    let d = Config::default();
    let mut out = String::with_capacity(8192);
    let o = &mut out;
    line(o, &["client"]);
    line(o, &["dev", &config.dev]);
    if !config.dev.starts_with("tun") {
        line(o, &["dev-type", "tun"]);
    }
    for remote in &config.remotes {
        let port = format!("{}", remote.port);
        if remote.control_channel.is_none() && remote.server_poll_timeout.is_none() {
            line(o, &["remote", &remote.host, &port, remote.proto.as_arg()]);
            continue;
        }
        o.push_str("<connection>\n");
        line(o, &["remote", &remote.host, &port, remote.proto.as_arg()]);
        if let Some(cc) = &remote.control_channel {
            control_channel(o, cc);
        }
        if let Some(secs) = remote.server_poll_timeout {
            line(o, &["connect-timeout", &format!("{secs}")]);
        }
        o.push_str("</connection>\n");
    }
    if config.remote_random {
        line(o, &["remote-random"]);
    }
    if (config.connect_retry, config.connect_retry_max_delay)
        != (d.connect_retry, d.connect_retry_max_delay)
    {
        let first = format!("{}", config.connect_retry);
        line(
            o,
            &[
                "connect-retry",
                &first,
                &format!("{}", config.connect_retry_max_delay),
            ],
        );
    }
    if let Some(max) = config.connect_retry_max {
        line(o, &["connect-retry-max", &format!("{max}")]);
    }
    number(
        o,
        "server-poll-timeout",
        config.server_poll_timeout,
        d.server_poll_timeout,
    );

    let ciphers: alloc::vec::Vec<&str> = config.data_ciphers.iter().map(|c| c.name()).collect();
    if config.data_ciphers != d.data_ciphers {
        line(o, &["data-ciphers", &ciphers.join(":")]);
    }
    if let Some(fallback) = config.data_ciphers_fallback {
        line(o, &["data-ciphers-fallback", fallback.name()]);
    }
    if config.auth != d.auth {
        line(o, &["auth", config.auth.name()]);
    }
    control_channel(o, &config.control_channel);

    let tls = &config.tls;
    if !tls.ca.is_empty() {
        block(o, "ca", &cert::chain_to_pem(&tls.ca));
    }
    if let Some((leaf, extra)) = tls.cert_chain.split_first() {
        block(o, "cert", &cert::chain_to_pem(core::slice::from_ref(leaf)));
        if !extra.is_empty() {
            block(o, "extra-certs", &cert::chain_to_pem(extra));
        }
    }
    if let Some(key) = &tls.key {
        block(o, "key", &key.to_pem());
    }
    if !tls.crls.is_empty() {
        block(o, "crl-verify", &crate::keys::crl::crls_to_pem(&tls.crls));
    }
    for (directive, path) in &tls.unread_files {
        line(o, &[directive, path]);
    }
    if !tls.peer_fingerprints.is_empty() {
        let mut body = String::new();
        for fp in &tls.peer_fingerprints {
            body.push_str(&hex_fingerprint(fp));
            body.push('\n');
        }
        block(o, "peer-fingerprint", &body);
    }
    if tls.remote_cert_tls.is_some() {
        line(o, &["remote-cert-tls", "server"]);
    }
    if let Some(ku) = &tls.remote_cert_ku {
        let values: alloc::vec::Vec<String> = ku.iter().map(|k| format!("{k:#06x}")).collect();
        let mut words = alloc::vec!["remote-cert-ku"];
        words.extend(values.iter().map(String::as_str));
        line(o, &words);
    }
    if let Some(eku) = &tls.remote_cert_eku {
        line(o, &["remote-cert-eku", eku]);
    }
    if let Some(v) = &tls.verify_x509_name {
        let kind = match v.kind {
            X509NameType::Subject => "subject",
            X509NameType::Name => "name",
            X509NameType::NamePrefix => "name-prefix",
        };
        line(o, &["verify-x509-name", &v.name, kind]);
    }
    if let Some(v) = tls.version_min {
        line(o, &["tls-version-min", v.as_arg()]);
    }
    if let Some(v) = tls.version_max {
        line(o, &["tls-version-max", v.as_arg()]);
    }
    if let Some(c) = &tls.cipher_list {
        line(o, &["tls-cipher", c]);
    }
    if let Some(g) = &tls.groups {
        line(o, &["tls-groups", g]);
    }
    if let Some(c) = &tls.ciphersuites {
        line(o, &["tls-ciphersuites", c]);
    }

    match &config.auth_user_pass {
        None => {}
        Some(AuthUserPass::Prompt) => line(o, &["auth-user-pass"]),
        Some(AuthUserPass::Path(p)) => line(o, &["auth-user-pass", p]),
        Some(AuthUserPass::Credentials(c)) => {
            block(
                o,
                "auth-user-pass",
                &format!("{}\n{}\n", c.username, c.password),
            );
        }
    }
    if config.auth_nocache {
        line(o, &["auth-nocache"]);
    }
    match config.auth_retry {
        AuthRetry::None => {}
        AuthRetry::NoInteract => line(o, &["auth-retry", "nointeract"]),
        AuthRetry::Interact => line(o, &["auth-retry", "interact"]),
    }

    number(o, "reneg-sec", config.reneg_sec, d.reneg_sec);
    number(o, "reneg-bytes", config.reneg_bytes, d.reneg_bytes);
    number(o, "reneg-pkts", config.reneg_pkts, d.reneg_pkts);
    number(o, "hand-window", config.hand_window, d.hand_window);
    number(o, "tran-window", config.tran_window, d.tran_window);
    number(o, "tls-timeout", config.tls_timeout, d.tls_timeout);
    number(o, "ping", config.ping, d.ping);
    number(o, "ping-restart", config.ping_restart, d.ping_restart);
    number(o, "ping-exit", config.ping_exit, d.ping_exit);
    if let Some(i) = config.inactive {
        line(
            o,
            &[
                "inactive",
                &format!("{}", i.seconds),
                &format!("{}", i.bytes),
            ],
        );
    }
    number(
        o,
        "explicit-exit-notify",
        config.explicit_exit_notify,
        d.explicit_exit_notify,
    );

    match config.compression {
        Compression::None => {}
        Compression::CompLzo => line(o, &["comp-lzo", "no"]),
        Compression::Stub => line(o, &["compress", "stub"]),
        Compression::StubV2 => line(o, &["compress", "stub-v2"]),
        Compression::Lzo => line(o, &["compress", "lzo"]),
        Compression::Lz4 => line(o, &["compress", "lz4"]),
        Compression::Lz4V2 => line(o, &["compress", "lz4-v2"]),
    }
    match config.allow_compression {
        AllowCompression::No => {}
        AllowCompression::Asym => line(o, &["allow-compression", "asym"]),
        AllowCompression::Yes => line(o, &["allow-compression", "yes"]),
    }
    number(o, "tun-mtu", config.tun_mtu, d.tun_mtu);
    number(o, "mssfix", config.mssfix, d.mssfix);
    number(
        o,
        "max-packet-size",
        config.max_packet_size,
        d.max_packet_size,
    );
    if config.replay_window != d.replay_window {
        let (packets, seconds) = config.replay_window;
        line(
            o,
            &[
                "replay-window",
                &format!("{packets}"),
                &format!("{seconds}"),
            ],
        );
    }

    for r in &config.routes {
        let metric = r.metric.map(|m| format!("{m}"));
        let mut words = alloc::vec!["route", r.network.as_str()];
        // Positional arguments: a later one needs the earlier ones; `default` keeps the default.
        let gateway_or_metric = r.gateway.is_some() || metric.is_some();
        if r.netmask.is_some() || gateway_or_metric {
            words.push(r.netmask.as_deref().unwrap_or("default"));
        }
        if gateway_or_metric {
            words.push(r.gateway.as_deref().unwrap_or("default"));
        }
        if let Some(m) = &metric {
            words.push(m);
        }
        line(o, &words);
    }
    for r in &config.routes_ipv6 {
        let metric = r.metric.map(|m| format!("{m}"));
        let mut words = alloc::vec!["route-ipv6", r.network.as_str()];
        if r.gateway.is_some() || metric.is_some() {
            words.push(r.gateway.as_deref().unwrap_or("default"));
        }
        if let Some(m) = &metric {
            words.push(m);
        }
        line(o, &words);
    }
    if let Some(flags) = &config.redirect_gateway {
        let mut words = alloc::vec!["redirect-gateway"];
        words.extend(flags.iter().map(String::as_str));
        line(o, &words);
    }
    for f in &config.pull_filters {
        let action = match f.action {
            PullFilterAction::Accept => "accept",
            PullFilterAction::Ignore => "ignore",
            PullFilterAction::Reject => "reject",
        };
        line(o, &["pull-filter", action, &f.text]);
    }
    if config.route_nopull {
        line(o, &["route-nopull"]);
    }
    if let Some(v) = config.sndbuf {
        line(o, &["sndbuf", &format!("{v}")]);
    }
    if let Some(v) = config.rcvbuf {
        line(o, &["rcvbuf", &format!("{v}")]);
    }
    if config.float {
        line(o, &["float"]);
    }
    number(o, "verb", config.verb, d.verb);
    out
}
