//! Per-client firewall rules in Qubes OS' rule vocabulary (Qubes 4.x "vm-interface", the keys dom0
//! writes under `/qubes-firewall/<client-ip>/`): parsing one rule line and matching packets against a
//! client's ordered rule list, first match wins, else the client's policy.
//!
//! Layer: pure, sans-IO; no panics on any input; a client holds at most [`MAX_RULES`] rules.
//!
//! A rule is `key=value` words separated by spaces:
//!
//! | key | value | matches |
//! |---|---|---|
//! | `action` | `accept` \| `drop` | required: what a matching packet gets |
//! | `dst4` | `ADDR/PREFIX` | IPv4 destination in the prefix |
//! | `dst6` | `ADDR/PREFIX` | IPv6 destination in the prefix (never an IPv4 packet) |
//! | `proto` | `tcp` \| `udp` \| `icmp` | the IP protocol |
//! | `dstports` | `N-M` (1..=65535, N <= M) | TCP/UDP destination port in the range; needs `proto=tcp\|udp` |
//! | `icmptype` | `N` (0..=255) | the ICMP type; needs `proto=icmp` |
//! | `specialtarget` | `dns` | TCP/UDP port 53 to one of the DNS addresses the client was given |
//! | `expire` | Unix seconds | accepted and ignored (dom0 removes expired rules itself) |
//!
//! Keys may not repeat; `dst4`, `dst6` and `specialtarget` exclude each other. `dsthost` and `dstname`
//! are refused: dom0 resolves host names into `dst4`/`dst6` rules before a net VM sees them.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use alloc::vec::Vec;

/// Most rules one client may have (Qubes' GUI and `qvm-firewall` write far fewer).
pub const MAX_RULES: usize = 256;

/// What a rule or a policy does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let it through.
    Accept,
    /// Drop it silently (as Qubes does).
    Drop,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Accept => "accept",
            Action::Drop => "drop",
        })
    }
}

/// A rule's destination condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// `dst4=ADDR/PREFIX` (the mask applied).
    V4 { network: u32, prefix_len: u8 },
    /// `dst6=ADDR/PREFIX` (the mask applied).
    V6 { network: u128, prefix_len: u8 },
    /// `specialtarget=dns`.
    Dns,
}

/// `proto=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `tcp` (IP protocol 6).
    Tcp,
    /// `udp` (17).
    Udp,
    /// `icmp` (1).
    Icmp,
}

impl Protocol {
    fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Icmp => 1,
        }
    }
}

/// One parsed rule: all its conditions must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// What a matching packet gets.
    pub action: Action,
    /// `dst4`, `dst6` or `specialtarget=dns`.
    pub destination: Option<Destination>,
    /// `proto`.
    pub protocol: Option<Protocol>,
    /// `dstports=N-M`.
    pub ports: Option<(u16, u16)>,
    /// `icmptype`.
    pub icmp_type: Option<u8>,
}

/// Why a rule line was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleError<'a> {
    /// A word is not `key=value`.
    NotKeyValue(&'a str),
    /// A key the vocabulary does not have.
    UnknownKey(&'a str),
    /// A key given twice.
    Repeated(&'a str),
    /// A value that does not parse for its key; `expected` says what would.
    BadValue {
        key: &'a str,
        value: &'a str,
        expected: &'static str,
    },
    /// No `action=`.
    NoAction,
    /// Two keys that cannot go together, or one without the key it needs.
    Conflict(&'static str),
    /// `dsthost`/`dstname`: resolved by dom0, never given to a net VM.
    HostName(&'a str),
}

impl fmt::Display for RuleError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::NotKeyValue(w) => write!(f, "'{w}' is not key=value"),
            RuleError::UnknownKey(k) => write!(
                f,
                "unknown key '{k}' (action, dst4, dst6, proto, dstports, icmptype, specialtarget, expire)"
            ),
            RuleError::Repeated(k) => write!(f, "key '{k}' given twice"),
            RuleError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "{key}={value}: expected {expected}"),
            RuleError::NoAction => f.write_str("no action=accept|drop"),
            RuleError::Conflict(what) => f.write_str(what),
            RuleError::HostName(k) => write!(
                f,
                "{k}: host names are resolved by dom0 into dst4/dst6 rules; give dst4=ADDR/PREFIX"
            ),
        }
    }
}

fn bad<'a>(key: &'a str, value: &'a str, expected: &'static str) -> RuleError<'a> {
    RuleError::BadValue {
        key,
        value,
        expected,
    }
}

/// A decimal number without sign or leading `+`, as Qubes writes them.
fn number<T: core::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn prefix<'a, A: core::str::FromStr>(
    key: &'a str,
    value: &'a str,
    max: u8,
    expected: &'static str,
) -> Result<(A, u8), RuleError<'a>> {
    let (addr, len) = value.split_once('/').ok_or(bad(key, value, expected))?;
    let len: u8 = number(len)
        .filter(|&l| l <= max)
        .ok_or(bad(key, value, expected))?;
    let addr = addr.parse().map_err(|_| bad(key, value, expected))?;
    Ok((addr, len))
}

fn mask32(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(len.min(128)))
        .unwrap_or(0)
}

impl Rule {
    /// Parses one rule line (`action=accept proto=tcp dst4=10.9.0.0/24 dstports=80-80`).
    pub fn parse(line: &str) -> Result<Rule, RuleError<'_>> {
        let mut action = None;
        let mut rule = Rule {
            action: Action::Drop,
            destination: None,
            protocol: None,
            ports: None,
            icmp_type: None,
        };
        let mut seen_expire = false;
        for word in line.split_ascii_whitespace() {
            let (key, value) = word.split_once('=').ok_or(RuleError::NotKeyValue(word))?;
            let repeated = match key {
                "action" => action.is_some(),
                "dst4" | "dst6" | "specialtarget" => rule.destination.is_some(),
                "proto" => rule.protocol.is_some(),
                "dstports" => rule.ports.is_some(),
                "icmptype" => rule.icmp_type.is_some(),
                "expire" => seen_expire,
                "dsthost" | "dstname" => return Err(RuleError::HostName(key)),
                _ => return Err(RuleError::UnknownKey(key)),
            };
            if repeated {
                return Err(if matches!(key, "dst4" | "dst6" | "specialtarget") {
                    RuleError::Conflict("only one of dst4, dst6 and specialtarget per rule")
                } else {
                    RuleError::Repeated(key)
                });
            }
            match key {
                "action" => {
                    action = Some(match value {
                        "accept" => Action::Accept,
                        "drop" => Action::Drop,
                        _ => return Err(bad(key, value, "accept or drop")),
                    })
                }
                "dst4" => {
                    let (addr, len) = prefix::<Ipv4Addr>(key, value, 32, "an IPv4 ADDR/PREFIX")?;
                    rule.destination = Some(Destination::V4 {
                        network: u32::from(addr) & mask32(len),
                        prefix_len: len,
                    });
                }
                "dst6" => {
                    let (addr, len) = prefix::<Ipv6Addr>(key, value, 128, "an IPv6 ADDR/PREFIX")?;
                    rule.destination = Some(Destination::V6 {
                        network: u128::from(addr) & mask128(len),
                        prefix_len: len,
                    });
                }
                "specialtarget" => {
                    if value != "dns" {
                        return Err(bad(key, value, "dns"));
                    }
                    rule.destination = Some(Destination::Dns);
                }
                "proto" => {
                    rule.protocol = Some(match value {
                        "tcp" => Protocol::Tcp,
                        "udp" => Protocol::Udp,
                        "icmp" => Protocol::Icmp,
                        _ => return Err(bad(key, value, "tcp, udp or icmp")),
                    })
                }
                "dstports" => {
                    const RANGE: &str = "a port range N-M with 1 <= N <= M <= 65535";
                    let (lo, hi) = value.split_once('-').ok_or(bad(key, value, RANGE))?;
                    let (Some(lo), Some(hi)) = (number::<u16>(lo), number::<u16>(hi)) else {
                        return Err(bad(key, value, RANGE));
                    };
                    if lo == 0 || lo > hi {
                        return Err(bad(key, value, RANGE));
                    }
                    rule.ports = Some((lo, hi));
                }
                "icmptype" => {
                    rule.icmp_type =
                        Some(number(value).ok_or(bad(key, value, "a number 0..255"))?);
                }
                _ => {
                    number::<u64>(value).ok_or(bad(key, value, "Unix seconds"))?;
                    seen_expire = true;
                }
            }
        }
        rule.action = action.ok_or(RuleError::NoAction)?;
        match (rule.protocol, rule.ports, rule.icmp_type) {
            (Some(Protocol::Icmp), Some(_), _) | (None, Some(_), _) => {
                return Err(RuleError::Conflict("dstports needs proto=tcp or proto=udp"))
            }
            (Some(Protocol::Tcp | Protocol::Udp) | None, _, Some(_)) => {
                return Err(RuleError::Conflict("icmptype needs proto=icmp"))
            }
            _ => {}
        }
        if rule.destination == Some(Destination::Dns) && rule.protocol == Some(Protocol::Icmp) {
            return Err(RuleError::Conflict(
                "specialtarget=dns is TCP/UDP port 53: proto=icmp never matches",
            ));
        }
        Ok(rule)
    }

    /// True for a rule that can match IPv6 only (`dst6`).
    pub fn is_ipv6(&self) -> bool {
        matches!(self.destination, Some(Destination::V6 { .. }))
    }

    fn matches(&self, p: &Packet4) -> bool {
        let destination = match self.destination {
            None => true,
            Some(Destination::V4 {
                network,
                prefix_len,
            }) => p.dst & mask32(prefix_len) == network,
            Some(Destination::V6 { .. }) => false,
            Some(Destination::Dns) => {
                p.to_dns && p.dst_port == Some(53) && matches!(p.protocol, 6 | 17)
            }
        };
        if !destination {
            return false;
        }
        if let Some(proto) = self.protocol {
            if proto.number() != p.protocol {
                return false;
            }
        }
        if let Some((lo, hi)) = self.ports {
            match p.dst_port {
                Some(port) if (lo..=hi).contains(&port) => {}
                _ => return false,
            }
        }
        if let Some(t) = self.icmp_type {
            if p.icmp_type != Some(t) {
                return false;
            }
        }
        true
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "action={}", self.action)?;
        match self.destination {
            Some(Destination::V4 {
                network,
                prefix_len,
            }) => write!(f, " dst4={}/{prefix_len}", Ipv4Addr::from(network))?,
            Some(Destination::V6 {
                network,
                prefix_len,
            }) => write!(f, " dst6={}/{prefix_len}", Ipv6Addr::from(network))?,
            Some(Destination::Dns) => f.write_str(" specialtarget=dns")?,
            None => {}
        }
        match self.protocol {
            Some(Protocol::Tcp) => f.write_str(" proto=tcp")?,
            Some(Protocol::Udp) => f.write_str(" proto=udp")?,
            Some(Protocol::Icmp) => f.write_str(" proto=icmp")?,
            None => {}
        }
        if let Some((lo, hi)) = self.ports {
            write!(f, " dstports={lo}-{hi}")?;
        }
        if let Some(t) = self.icmp_type {
            write!(f, " icmptype={t}")?;
        }
        Ok(())
    }
}

/// What the firewall knows of an IPv4 packet a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet4 {
    /// Destination address.
    pub dst: u32,
    /// IP protocol number.
    pub protocol: u8,
    /// TCP/UDP destination port, if the packet carries one.
    pub dst_port: Option<u16>,
    /// ICMP type, if ICMP.
    pub icmp_type: Option<u8>,
    /// Sent to one of the client's DNS addresses (the virtual DNS, or its gateway).
    pub to_dns: bool,
}

/// One client's rules: first match wins, else `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firewall {
    /// The client's default (`policy=accept|drop`).
    pub policy: Action,
    rules: Vec<Rule>,
}

/// The client already has [`MAX_RULES`] rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRules;

impl fmt::Display for TooManyRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "more than {MAX_RULES} rules for one client")
    }
}

impl Firewall {
    /// No rules, `policy`.
    pub fn new(policy: Action) -> Self {
        Firewall {
            policy,
            rules: Vec::new(),
        }
    }

    /// Appends a rule (it is checked after the ones before it).
    pub fn push(&mut self, rule: Rule) -> Result<(), TooManyRules> {
        if self.rules.len() >= MAX_RULES {
            return Err(TooManyRules);
        }
        self.rules.push(rule);
        Ok(())
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What `packet` gets: the first matching rule's action, else the policy.
    pub fn decide(&self, packet: &Packet4) -> Action {
        self.rules
            .iter()
            .find(|r| r.matches(packet))
            .map_or(self.policy, |r| r.action)
    }
}

/// `policy=accept|drop`, the other kind of line in a client's rule list.
pub fn parse_policy(line: &str) -> Option<Result<Action, RuleError<'_>>> {
    let mut words = line.split_ascii_whitespace();
    let value = words.next()?.strip_prefix("policy=")?;
    if let Some(extra) = words.next() {
        return Some(Err(RuleError::Conflict(if extra.is_empty() {
            "policy= stands alone"
        } else {
            "policy=accept|drop stands alone on its line"
        })));
    }
    Some(match value {
        "accept" => Ok(Action::Accept),
        "drop" => Ok(Action::Drop),
        _ => Err(bad("policy", value, "accept or drop")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dst: [u8; 4], protocol: u8, port: Option<u16>, icmp: Option<u8>) -> Packet4 {
        Packet4 {
            dst: u32::from_be_bytes(dst),
            protocol,
            dst_port: port,
            icmp_type: icmp,
            to_dns: false,
        }
    }

    #[test]
    fn parses_the_vocabulary_and_prints_it_back() {
        for line in [
            "action=accept",
            "action=drop dst4=10.9.0.0/24 proto=tcp dstports=80-80",
            "action=accept dst6=fd00::/8 proto=udp dstports=1-65535",
            "action=accept specialtarget=dns",
            "action=drop proto=icmp icmptype=8",
            "action=accept specialtarget=dns proto=udp dstports=53-53",
        ] {
            let rule = Rule::parse(line).unwrap();
            assert_eq!(alloc::format!("{rule}"), line);
        }
        let r =
            Rule::parse("  proto=tcp   action=accept dst4=10.9.1.7/24 expire=1700000000").unwrap();
        assert_eq!(
            r.destination,
            Some(Destination::V4 {
                network: u32::from_be_bytes([10, 9, 1, 0]),
                prefix_len: 24
            })
        );
        assert!(Rule::parse("action=accept dst6=::/0").unwrap().is_ipv6());
        assert_eq!(
            Rule::parse("action=accept dst4=0.0.0.0/0")
                .unwrap()
                .destination,
            Some(Destination::V4 {
                network: 0,
                prefix_len: 0
            })
        );
    }

    #[test]
    fn refuses_what_it_cannot_use_and_says_why() {
        use RuleError::*;
        let cases: &[(&str, RuleError<'_>)] = &[
            ("", NoAction),
            ("proto=tcp", NoAction),
            ("action=reject", bad("action", "reject", "accept or drop")),
            ("action=accept bogus=1", UnknownKey("bogus")),
            ("action=accept dst4", NotKeyValue("dst4")),
            ("action=accept action=drop", Repeated("action")),
            (
                "action=accept dst4=10.0.0.1",
                bad("dst4", "10.0.0.1", "an IPv4 ADDR/PREFIX"),
            ),
            (
                "action=accept dst4=10.0.0.0/33",
                bad("dst4", "10.0.0.0/33", "an IPv4 ADDR/PREFIX"),
            ),
            (
                "action=accept dst4=10.0.0.0/+8",
                bad("dst4", "10.0.0.0/+8", "an IPv4 ADDR/PREFIX"),
            ),
            (
                "action=accept dst4=fd00::/8",
                bad("dst4", "fd00::/8", "an IPv4 ADDR/PREFIX"),
            ),
            (
                "action=accept dst6=10.0.0.0/8",
                bad("dst6", "10.0.0.0/8", "an IPv6 ADDR/PREFIX"),
            ),
            (
                "action=accept dst6=fd00::/129",
                bad("dst6", "fd00::/129", "an IPv6 ADDR/PREFIX"),
            ),
            (
                "action=accept proto=sctp",
                bad("proto", "sctp", "tcp, udp or icmp"),
            ),
            (
                "action=accept proto=tcp dstports=0-80",
                bad(
                    "dstports",
                    "0-80",
                    "a port range N-M with 1 <= N <= M <= 65535",
                ),
            ),
            (
                "action=accept proto=tcp dstports=80-65536",
                bad(
                    "dstports",
                    "80-65536",
                    "a port range N-M with 1 <= N <= M <= 65535",
                ),
            ),
            (
                "action=accept proto=tcp dstports=90-80",
                bad(
                    "dstports",
                    "90-80",
                    "a port range N-M with 1 <= N <= M <= 65535",
                ),
            ),
            (
                "action=accept proto=tcp dstports=80",
                bad(
                    "dstports",
                    "80",
                    "a port range N-M with 1 <= N <= M <= 65535",
                ),
            ),
            (
                "action=accept dstports=80-80",
                Conflict("dstports needs proto=tcp or proto=udp"),
            ),
            (
                "action=accept proto=icmp dstports=80-80",
                Conflict("dstports needs proto=tcp or proto=udp"),
            ),
            (
                "action=accept proto=tcp icmptype=8",
                Conflict("icmptype needs proto=icmp"),
            ),
            (
                "action=accept proto=icmp icmptype=256",
                bad("icmptype", "256", "a number 0..255"),
            ),
            (
                "action=accept specialtarget=ntp",
                bad("specialtarget", "ntp", "dns"),
            ),
            (
                "action=accept dst4=10.0.0.0/8 specialtarget=dns",
                Conflict("only one of dst4, dst6 and specialtarget per rule"),
            ),
            ("action=accept dsthost=example.com", HostName("dsthost")),
            (
                "action=accept expire=soon",
                bad("expire", "soon", "Unix seconds"),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(Rule::parse(line), Err(*want), "{line}");
            // Every error prints without panicking.
            let _ = alloc::format!("{}", want);
        }
    }

    #[test]
    fn policy_lines() {
        assert_eq!(parse_policy("policy=drop"), Some(Ok(Action::Drop)));
        assert_eq!(parse_policy(" policy=accept "), Some(Ok(Action::Accept)));
        assert!(matches!(parse_policy("policy=maybe"), Some(Err(_))));
        assert!(matches!(
            parse_policy("policy=drop action=accept"),
            Some(Err(_))
        ));
        assert_eq!(parse_policy("action=accept"), None);
    }

    #[test]
    fn first_match_wins_then_the_policy() {
        let mut fw = Firewall::new(Action::Drop);
        for line in [
            "action=drop proto=tcp dst4=10.9.0.0/24 dstports=81-81",
            "action=accept proto=tcp dst4=10.9.0.0/16",
            "action=accept proto=icmp icmptype=8",
            "action=accept specialtarget=dns",
            "action=accept dst6=::/0",
        ] {
            fw.push(Rule::parse(line).unwrap()).unwrap();
        }
        assert_eq!(
            fw.decide(&p([10, 9, 0, 2], 6, Some(81), None)),
            Action::Drop
        );
        assert_eq!(
            fw.decide(&p([10, 9, 0, 2], 6, Some(80), None)),
            Action::Accept
        );
        assert_eq!(
            fw.decide(&p([10, 9, 7, 2], 6, Some(81), None)),
            Action::Accept
        );
        assert_eq!(
            fw.decide(&p([10, 10, 0, 2], 6, Some(80), None)),
            Action::Drop
        );
        assert_eq!(
            fw.decide(&p([10, 9, 0, 2], 17, Some(80), None)),
            Action::Drop
        );
        assert_eq!(
            fw.decide(&p([1, 1, 1, 1], 1, None, Some(8))),
            Action::Accept
        );
        assert_eq!(fw.decide(&p([1, 1, 1, 1], 1, None, Some(0))), Action::Drop);
        // A TCP packet whose port is unknown (too short) matches no port rule.
        assert_eq!(fw.decide(&p([10, 9, 0, 2], 6, None, None)), Action::Accept);
        let dns = Packet4 {
            to_dns: true,
            ..p([10, 139, 1, 1], 17, Some(53), None)
        };
        assert_eq!(fw.decide(&dns), Action::Accept);
        assert_eq!(
            fw.decide(&Packet4 {
                dst_port: Some(54),
                ..dns
            }),
            Action::Drop
        );
        assert_eq!(
            fw.decide(&Packet4 {
                to_dns: false,
                ..dns
            }),
            Action::Drop
        );
        assert_eq!(Firewall::new(Action::Accept).decide(&dns), Action::Accept);
    }

    #[test]
    fn rule_count_is_bounded() {
        let mut fw = Firewall::new(Action::Accept);
        let rule = Rule::parse("action=drop").unwrap();
        for _ in 0..MAX_RULES {
            fw.push(rule).unwrap();
        }
        assert_eq!(fw.push(rule), Err(TooManyRules));
        assert_eq!(fw.rules().len(), MAX_RULES);
    }

    #[test]
    fn never_panics_on_arbitrary_lines() {
        let words = [
            "action=",
            "=",
            "dst4=1.2.3.4/",
            "dst6=::/",
            "dstports=-",
            "dstports=65535-65535",
            "icmptype=",
            "proto=",
            "specialtarget=",
            "expire=",
            "policy=",
            "\u{e9}=\u{e9}",
            "a=b=c",
        ];
        let mut state = 1u32;
        for _ in 0..5000 {
            let mut line = alloc::string::String::new();
            for _ in 0..4 {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let w = words[(state >> 16) as usize % words.len()];
                line.push_str(w);
                line.push(' ');
            }
            let _ = Rule::parse(&line).map(|r| alloc::format!("{r}"));
            let _ = parse_policy(&line);
        }
    }
}
