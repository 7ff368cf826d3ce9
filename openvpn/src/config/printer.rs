//! Writes a [`Config`] as config text that parses back to the same `Config`: every file inline, every
//! setting explicit, no comments. The config disk tool uses it to produce the image's config.
//!
//! Layer: pure text output.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::model::*;
use super::server_model::*;
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
    match &config.server {
        None => line(o, &["client"]),
        Some(server) => server_section(o, server),
    }
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
    match tls.remote_cert_tls {
        None => {}
        Some(RemoteCertTls::Server) => line(o, &["remote-cert-tls", "server"]),
        Some(RemoteCertTls::Client) => line(o, &["remote-cert-tls", "client"]),
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
    if !config.qubes_firewall.is_empty() {
        let mut body = String::new();
        for l in &config.qubes_firewall {
            let _ = writeln!(body, "{} {}", l.client, l.rule);
        }
        block(o, "qubes-firewall", &body);
    }
    out
}

/// `proto` as a server writes it (TCP listens).
fn server_proto(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "tcp-server",
        Proto::Tcp4 => "tcp4-server",
        Proto::Tcp6 => "tcp6-server",
        other => other.as_arg(),
    }
}

fn ipv6_prefix(p: &Ipv6Prefix) -> String {
    format!("{}/{}", p.address, p.prefix_len)
}

/// The server-only directives, in place of `client` and the remotes. `keepalive` comes before the
/// `ping`/`ping-restart` lines the caller prints later, so those (if changed after it) still win.
fn server_section(o: &mut String, s: &ServerOptions) {
    if s.mode_server {
        line(o, &["mode", "server"]);
    }
    if s.tls_server {
        line(o, &["tls-server"]);
    }
    if let Some(h) = &s.server {
        let (net, mask) = (format!("{}", h.network), format!("{}", h.netmask));
        if h.nopool {
            line(o, &["server", &net, &mask, "nopool"]);
        } else {
            line(o, &["server", &net, &mask]);
        }
    }
    if let Some(p) = &s.server_ipv6 {
        line(o, &["server-ipv6", &ipv6_prefix(p)]);
    }
    if let Some(t) = s.topology {
        let t = match t {
            Topology::Subnet => "subnet",
            Topology::Net30 => "net30",
            Topology::P2p => "p2p",
        };
        line(o, &["topology", t]);
    }
    if let Some((a, b)) = s.ifconfig {
        line(o, &["ifconfig", &format!("{a}"), &format!("{b}")]);
    }
    if let Some(p) = &s.ifconfig_ipv6 {
        line(o, &["ifconfig-ipv6", &ipv6_prefix(p)]);
    }
    if let Some(p) = &s.ifconfig_pool {
        let (start, end) = (format!("{}", p.start), format!("{}", p.end));
        match p.netmask {
            Some(m) => line(o, &["ifconfig-pool", &start, &end, &format!("{m}")]),
            None => line(o, &["ifconfig-pool", &start, &end]),
        }
    }
    if let Some(p) = &s.ifconfig_ipv6_pool {
        line(o, &["ifconfig-ipv6-pool", &ipv6_prefix(p)]);
    }
    if let Some(n) = s.max_clients {
        line(o, &["max-clients", &format!("{n}")]);
    }
    if s.duplicate_cn {
        line(o, &["duplicate-cn"]);
    }
    if s.client_to_client {
        line(o, &["client-to-client"]);
    }
    for p in &s.push {
        // Always quoted, as OpenVPN configs write it.
        o.push_str("push \"");
        for c in p.chars() {
            if matches!(c, '"' | '\\') {
                o.push('\\');
            }
            o.push(c);
        }
        o.push_str("\"\n");
    }
    if let Some((ping, timeout)) = s.keepalive {
        line(o, &["keepalive", &format!("{ping}"), &format!("{timeout}")]);
    }
    if let Some(t) = s.auth_gen_token {
        let lifetime = format!("{}", t.lifetime);
        match t.renewal {
            Some(r) => line(o, &["auth-gen-token", &lifetime, &format!("{r}")]),
            None => line(o, &["auth-gen-token", &lifetime]),
        }
    }
    if s.auth_user_pass_optional {
        line(o, &["auth-user-pass-optional"]);
    }
    if s.username_as_common_name {
        line(o, &["username-as-common-name"]);
    }
    if s.verify_client_cert != VerifyClientCert::Require {
        line(o, &["verify-client-cert", s.verify_client_cert.as_arg()]);
    }
    if let Some(p) = s.port {
        line(o, &["port", &format!("{p}")]);
    }
    if let Some(p) = s.proto {
        line(o, &["proto", server_proto(p)]);
    }
    for l in &s.listeners {
        let addr = format!("{}", l.address);
        let port = l.port.map(|p| format!("{p}"));
        let mut words = alloc::vec!["local", addr.as_str()];
        // A protocol needs the port before it; `local ADDR PROTO` is not a form OpenVPN knows.
        let port_word = match (&port, l.proto) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(_)) => Some(format!("{}", s.port.unwrap_or(1194))),
            (None, None) => None,
        };
        if let Some(p) = &port_word {
            words.push(p);
        }
        if let Some(proto) = l.proto {
            words.push(server_proto(proto));
        }
        line(o, &words);
    }
    if let Some((n, secs)) = s.connect_freq_initial {
        line(
            o,
            &["connect-freq-initial", &format!("{n}"), &format!("{secs}")],
        );
    }
    if let Some(days) = s.tls_crypt_v2_max_age {
        line(o, &["tls-crypt-v2-max-age", &format!("{days}")]);
    }
    // The mode line first: the key block (or the unread path the caller prints) keeps it.
    if s.tls_crypt_v2_force_cookie {
        line(o, &["tls-crypt-v2", "[inline]", "force-cookie"]);
    }
    if let Some(key) = &s.tls_crypt_v2_key {
        block(o, "tls-crypt-v2", &key.to_pem());
    }
    if let Some(secs) = s.status_interval {
        line(o, &["status-interval", &format!("{secs}")]);
    }
    if !s.tls_crypt_v2_revoked.is_empty() {
        let mut body = String::new();
        for hash in &s.tls_crypt_v2_revoked {
            for b in hash {
                let _ = write!(body, "{b:02x}");
            }
            body.push('\n');
        }
        block(o, "tls-crypt-v2-revoked", &body);
    }
    if !s.users.is_empty() {
        let mut body = String::new();
        for u in &s.users {
            let salt = crate::keys::base64::encode_lines(&u.salt).replace('\n', "");
            let hash = crate::keys::base64::encode_lines(&u.hash).replace('\n', "");
            let _ = writeln!(
                body,
                "{} pbkdf2-sha256:{}:{salt}:{hash}",
                u.username, u.iterations
            );
        }
        block(o, "auth-user-pass-db", &body);
    }
}
