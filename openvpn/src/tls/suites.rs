//! `tls-cipher` / `tls-ciphersuites` names -> the IANA ids of the cipher suites rustls (ring) implements.
//!
//! Layer: name tables only, no rustls types, so the config parser can check a list and name its line.
//! `tls-cipher` restricts TLS 1.2 and takes OpenSSL names (`ECDHE-ECDSA-AES256-GCM-SHA384`) or the IANA
//! names OpenVPN translates (`TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384`); `tls-ciphersuites` restricts
//! TLS 1.3 (`TLS_AES_256_GCM_SHA384`). rustls has only ECDHE key exchange with AEAD suites, so DHE, RSA key
//! transport, CBC and CAMELLIA names are dropped (the caller warns). OpenSSL's keywords `DEFAULT`, `HIGH`,
//! `ALL` mean every suite; `!NAME`/`-NAME` remove a suite; `+NAME` and `@SECLEVEL=n` change nothing here.
//! `tls-groups` names the key exchange groups the same way (X25519, P-256, P-384 are rustls' three).

use alloc::vec::Vec;

/// TLS 1.2 suites: IANA id, OpenSSL name, IANA name in OpenVPN's dashed form (RFC 5289, RFC 7905).
const TLS12: &[(u16, &str, &str)] = &[
    (
        0xc02c,
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384",
    ),
    (
        0xc02b,
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    ),
    (
        0xcca9,
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
    ),
    (
        0xc030,
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384",
    ),
    (
        0xc02f,
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256",
    ),
    (
        0xcca8,
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256",
    ),
];

/// TLS 1.3 suites: IANA id and name (RFC 8446 §B.4).
const TLS13: &[(u16, &str)] = &[
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
];

/// Key exchange groups rustls (ring) implements: IANA NamedGroup id and the names OpenSSL and OpenVPN
/// accept for it in `tls-groups` (OpenVPN maps `secp256r1` to OpenSSL's `prime256v1`).
const GROUPS: &[(u16, &[&str])] = &[
    (0x001d, &["X25519"]),
    (0x0017, &["secp256r1", "prime256v1", "P-256"]),
    (0x0018, &["secp384r1", "P-384"]),
];

/// OpenSSL cipher-string keywords that select every suite we have.
const ALL_KEYWORDS: &[&str] = &[
    "DEFAULT", "HIGH", "ALL", "AESGCM", "ECDHE", "EECDH", "TLSV1.2",
];

/// The suites a list selects, in the list's order, and how many of its names were dropped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SuiteSelection {
    /// IANA cipher suite ids, no duplicates.
    pub ids: Vec<u16>,
    /// Names that are unknown or name a suite rustls does not implement.
    pub dropped: usize,
}

/// The TLS 1.2 suites of a `tls-cipher` list (`:`-separated, case-insensitive).
pub fn tls12_suites(list: &str) -> SuiteSelection {
    select(list, TLS12.iter().map(|(id, _, _)| *id), tls12_id)
}

/// The TLS 1.3 suites of a `tls-ciphersuites` list (`:`-separated, case-insensitive).
pub fn tls13_suites(list: &str) -> SuiteSelection {
    select(list, TLS13.iter().map(|(id, _)| *id), tls13_id)
}

/// The key exchange groups of a `tls-groups` list (`:`-separated, case-insensitive), in the list's order:
/// NamedGroup ids; names of groups rustls lacks (X448, secp521r1, ffdhe*, ...) are dropped and counted.
pub fn groups(list: &str) -> SuiteSelection {
    let mut sel = SuiteSelection::default();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        match GROUPS
            .iter()
            .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        {
            Some((id, _)) => push_unique(&mut sel.ids, *id),
            None => sel.dropped = sel.dropped.saturating_add(1),
        }
    }
    sel
}

fn select(
    list: &str,
    all: impl Iterator<Item = u16> + Clone,
    lookup: fn(&str) -> Option<u16>,
) -> SuiteSelection {
    let mut sel = SuiteSelection::default();
    let mut removed = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        if let Some(rest) = name.strip_prefix('!').or_else(|| name.strip_prefix('-')) {
            // Removing what rustls lacks anyway is fine; only known suites need removing.
            removed.extend(lookup(rest));
        } else if name.starts_with('+') || name.starts_with('@') {
            // Reordering and security levels: rustls' suites are all of the highest level.
        } else if ALL_KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name)) {
            for id in all.clone() {
                push_unique(&mut sel.ids, id);
            }
        } else if let Some(id) = lookup(name) {
            push_unique(&mut sel.ids, id);
        } else {
            sel.dropped = sel.dropped.saturating_add(1);
        }
    }
    sel.ids.retain(|id| !removed.contains(id));
    sel
}

fn push_unique(ids: &mut Vec<u16>, id: u16) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// OpenSSL name, or IANA name with `-` or `_` separators.
fn tls12_id(name: &str) -> Option<u16> {
    TLS12
        .iter()
        .find(|(_, openssl, iana)| {
            openssl.eq_ignore_ascii_case(name) || same_with_separators(iana, name)
        })
        .map(|(id, _, _)| *id)
}

/// IANA name with `_` or `-` separators.
fn tls13_id(name: &str) -> Option<u16> {
    TLS13
        .iter()
        .find(|(_, iana)| same_with_separators(iana, name))
        .map(|(id, _)| *id)
}

/// Case-insensitive equality where `-` and `_` are the same character.
fn same_with_separators(a: &str, b: &str) -> bool {
    let norm = |c: u8| match c {
        b'_' => b'-',
        c => c.to_ascii_uppercase(),
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| norm(x) == norm(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openssl_and_iana_tls12_names() {
        let sel = tls12_suites(
            "ECDHE-ECDSA-AES256-GCM-SHA384:TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256:\
             tls_ecdhe_ecdsa_with_chacha20_poly1305_sha256",
        );
        assert_eq!(sel.ids, [0xc02c, 0xc02f, 0xcca9]);
        assert_eq!(sel.dropped, 0);
    }

    #[test]
    fn unsupported_names_are_dropped_and_counted() {
        // A real config (corpus): DHE and CBC suites rustls does not implement, one ECDHE GCM suite.
        let sel = tls12_suites(
            "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384:TLS-DHE-RSA-WITH-AES-256-CBC-SHA256:\
             TLS-DHE-RSA-WITH-AES-256-CBC-SHA:nonsense",
        );
        assert_eq!(sel.ids, [0xc030]);
        assert_eq!(sel.dropped, 3);
        let none = tls12_suites("TLS-DHE-RSA-WITH-AES-256-GCM-SHA384");
        assert!(none.ids.is_empty());
        assert_eq!(none.dropped, 1);
    }

    #[test]
    fn tls13_names_in_list_order_without_duplicates() {
        let sel = tls13_suites(
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS-AES-256-GCM-SHA384",
        );
        assert_eq!(sel.ids, [0x1303, 0x1302]);
        assert_eq!(sel.dropped, 0);
        let sel = tls13_suites("TLS_AES_128_CCM_SHA256:TLS_AES_128_GCM_SHA256");
        assert_eq!(sel.ids, [0x1301]);
        assert_eq!(sel.dropped, 1);
    }

    #[test]
    fn tls_groups_names() {
        let sel = groups("secp384r1:X448:x25519:prime256v1:P-256:ffdhe2048");
        assert_eq!(sel.ids, [0x0018, 0x001d, 0x0017]);
        assert_eq!(sel.dropped, 2);
        assert!(groups("secp521r1").ids.is_empty());
    }

    #[test]
    fn openssl_keywords_and_exclusions() {
        assert_eq!(tls12_suites("DEFAULT:@SECLEVEL=0").ids.len(), TLS12.len());
        let sel = tls12_suites("HIGH:!ECDHE-RSA-CHACHA20-POLY1305:!aNULL:+AES256");
        assert_eq!(sel.ids.len(), TLS12.len() - 1);
        assert!(!sel.ids.contains(&0xcca8));
        assert_eq!(sel.dropped, 0);
        assert!(tls12_suites("").ids.is_empty());
    }
}
