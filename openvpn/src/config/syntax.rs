//! The lexical layer of the config format (wire reference §11): text decoding (UTF-8 BOM, UTF-16 with BOM),
//! lines (LF, CRLF, mixed), tokens (quotes, backslash escapes, `#`/`;` comments), inline `<name>` blocks and
//! `<connection>` blocks.
//!
//! Layer: text to a list of [`Statement`]s; knows no directive's meaning. Never panics on any input.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

use super::error::{ConfigError, ErrorKind};

/// Inline blocks OpenVPN accepts (wire reference §11), plus `connection` and oxvpn's two server blocks.
const BLOCK_NAMES: [&str; 20] = [
    "ca",
    "cert",
    "key",
    "extra-certs",
    "dh",
    "pkcs12",
    "crl-verify",
    "tls-auth",
    "tls-crypt",
    "tls-crypt-v2",
    "secret",
    "auth-user-pass",
    "http-proxy-user-pass",
    "peer-fingerprint",
    "verify-hash",
    "auth-gen-token-secret",
    "connection",
    // oxvpn's server extensions (README: Server config extensions).
    "tls-crypt-v2-revoked",
    "auth-user-pass-db",
    // oxvpn's router extension (README: Qubes-style client ports).
    "qubes-firewall",
];

/// What a statement carries besides its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A plain directive line.
    None,
    /// `<name>` … `</name>`: the text between, as if a file with that content had been named.
    Inline(String),
    /// `<connection>` … `</connection>`: the statements inside.
    Connection(Vec<Statement>),
}

/// One directive: a line, or an inline block, or a connection block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based line of the directive (of the opening tag for blocks).
    pub line: u32,
    /// Directive name, with a leading `--` removed.
    pub name: String,
    /// Arguments after the name (none for blocks).
    pub args: Vec<String>,
    /// Inline contents, if any.
    pub body: Body,
}

/// Decodes config bytes to text: strips a UTF-8 BOM and decodes UTF-16LE/BE when it starts with its BOM
/// (Windows editors save configs that way).
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ConfigError> {
    let utf16 = |big_endian: bool, body: &[u8]| -> Result<Cow<'_, str>, ConfigError> {
        if !body.len().is_multiple_of(2) {
            return Err(ConfigError::whole_file(ErrorKind::NotUtf8));
        }
        let units = body.chunks_exact(2).map(|p| match p {
            [a, b] if big_endian => u16::from_be_bytes([*a, *b]),
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        });
        let mut out = String::with_capacity(body.len() / 2);
        let mut line = 1u32;
        for c in char::decode_utf16(units) {
            let c = c.map_err(|_| ConfigError::new(line, "", ErrorKind::NotUtf8))?;
            if c == '\n' {
                line = line.saturating_add(1);
            }
            out.push(c);
        }
        Ok(Cow::Owned(out))
    };
    match bytes {
        [0xef, 0xbb, 0xbf, rest @ ..] => utf8(rest),
        [0xff, 0xfe, rest @ ..] => utf16(false, rest),
        [0xfe, 0xff, rest @ ..] => utf16(true, rest),
        _ => utf8(bytes),
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, ConfigError> {
    core::str::from_utf8(bytes).map(Cow::Borrowed).map_err(|e| {
        let before = bytes.get(..e.valid_up_to()).unwrap_or(&[]);
        ConfigError::new(
            line_number(before.iter().filter(|&&b| b == b'\n').count()),
            "",
            ErrorKind::NotUtf8,
        )
    })
}

fn line_number(index: usize) -> u32 {
    u32::try_from(index)
        .unwrap_or(u32::MAX - 1)
        .saturating_add(1)
}

/// Splits config text into statements.
pub fn parse(text: &str) -> Result<Vec<Statement>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    parse_lines(&lines, 0, false)
}

fn parse_lines(
    lines: &[&str],
    offset: usize,
    in_connection: bool,
) -> Result<Vec<Statement>, ConfigError> {
    let mut out = Vec::new();
    let mut index = 0;
    while let Some(raw) = lines.get(index) {
        let line = line_number(offset + index);
        index += 1;
        check_text(raw, line)?;
        let trimmed = raw.trim();
        if let Some(tag) = block_tag(trimmed) {
            if tag.starts_with('/') || !BLOCK_NAMES.contains(&tag) {
                return Err(ConfigError::new(line, trimmed, ErrorKind::UnknownBlock));
            }
            if tag == "connection" && in_connection {
                return Err(ConfigError::new(line, tag, ErrorKind::NestedConnection));
            }
            let start = index;
            let close = close_tag(tag);
            let end = lines
                .iter()
                .skip(start)
                .position(|l| l.trim_start().starts_with(close.as_str()))
                .map(|p| p + start)
                .ok_or_else(|| ConfigError::new(line, tag, ErrorKind::UnclosedBlock))?;
            let inner = lines.get(start..end).unwrap_or(&[]);
            index = end + 1;
            let body = if tag == "connection" {
                Body::Connection(parse_lines(inner, offset + start, true)?)
            } else {
                let mut text = String::new();
                for (i, l) in inner.iter().enumerate() {
                    check_text(l, line_number(offset + start + i))?;
                    text.push_str(l);
                    text.push('\n');
                }
                Body::Inline(text)
            };
            out.push(Statement {
                line,
                name: String::from(tag),
                args: Vec::new(),
                body,
            });
            continue;
        }
        let mut tokens =
            tokenize(raw).map_err(|kind| ConfigError::new(line, first_word(raw), kind))?;
        if tokens.is_empty() {
            continue;
        }
        let mut name = tokens.remove(0);
        if let Some(stripped) = name.strip_prefix("--") {
            name = String::from(stripped);
        }
        out.push(Statement {
            line,
            name,
            args: tokens,
            body: Body::None,
        });
    }
    Ok(out)
}

fn close_tag(tag: &str) -> String {
    let mut close = String::with_capacity(tag.len() + 3);
    close.push_str("</");
    close.push_str(tag);
    close.push('>');
    close
}

/// `<name>` on a line of its own.
fn block_tag(trimmed: &str) -> Option<&str> {
    trimmed.strip_prefix('<')?.strip_suffix('>')
}

fn first_word(raw: &str) -> &str {
    raw.split_whitespace().next().unwrap_or("")
}

/// Refuses NUL and other control characters (tab, form feed and vertical tab are whitespace).
fn check_text(line: &str, number: u32) -> Result<(), ConfigError> {
    if line
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\x0b' | '\x0c'))
    {
        return Err(ConfigError::new(number, "", ErrorKind::Binary));
    }
    Ok(())
}

/// Splits one line into tokens (wire reference §11 "Tokens" and "Comments").
pub fn tokenize(line: &str) -> Result<Vec<String>, ErrorKind> {
    let mut tokens = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') | Some(';') => break,
            Some(_) => {}
        }
        let mut token = String::new();
        while let Some(c) = chars.next() {
            match c {
                c if c.is_whitespace() => break,
                '"' => loop {
                    match chars.next() {
                        None => return Err(ErrorKind::UnclosedQuote),
                        Some('"') => break,
                        Some('\\') => token.push(escaped(chars.next())?),
                        Some(c) => token.push(c),
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        None => return Err(ErrorKind::UnclosedQuote),
                        Some('\'') => break,
                        Some(c) => token.push(c),
                    }
                },
                '\\' => token.push(escaped(chars.next())?),
                c => token.push(c),
            }
        }
        tokens.push(token);
    }
    Ok(tokens)
}

fn escaped(c: Option<char>) -> Result<char, ErrorKind> {
    match c {
        Some(c @ ('\\' | '"')) => Ok(c),
        Some(c) if c.is_whitespace() => Ok(c),
        _ => Err(ErrorKind::BadEscape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn toks(line: &str) -> Vec<String> {
        tokenize(line).unwrap()
    }

    #[test]
    fn tokens_quotes_and_escapes() {
        assert_eq!(
            toks("remote  host\t1194 udp"),
            vec!["remote", "host", "1194", "udp"]
        );
        assert_eq!(
            toks(r#"verify-x509-name "cryptostorm sydney server" name"#)[1],
            "cryptostorm sydney server"
        );
        assert_eq!(toks(r#"a "x\"y\\z""#)[1], r#"x"y\z"#);
        assert_eq!(toks(r"a 'c:\dir\f'")[1], r"c:\dir\f");
        assert_eq!(toks(r"a b\ c")[1], "b c");
        assert_eq!(toks(r#"a pre"mid"post"#)[1], "premidpost");
        assert_eq!(tokenize(r"a b\n"), Err(ErrorKind::BadEscape));
        assert_eq!(tokenize(r#"a "open"#), Err(ErrorKind::UnclosedQuote));
        assert_eq!(tokenize("a 'open"), Err(ErrorKind::UnclosedQuote));
    }

    #[test]
    fn comments_only_where_a_token_starts() {
        assert_eq!(
            toks("remote 1.2.3.4 1301 # de-ber"),
            vec!["remote", "1.2.3.4", "1301"]
        );
        assert_eq!(
            toks("setenv x foo#bar;baz"),
            vec!["setenv", "x", "foo#bar;baz"]
        );
        assert!(toks("  ; comment").is_empty());
        assert!(toks("#comment").is_empty());
    }

    #[test]
    fn blocks_and_line_numbers() {
        let text = "\u{feff}client\r\n<ca>\r\nAAA\r\n</ca>\r\n<connection>\nremote a 1\n<tls-crypt>\nK\n</tls-crypt>\n</connection>\n--dev tun";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!((s[0].line, s[0].name.as_str()), (1, "client"));
        assert_eq!(s[1].body, Body::Inline(String::from("AAA\n")));
        assert_eq!(s[1].line, 2);
        let Body::Connection(inner) = &s[2].body else {
            panic!()
        };
        assert_eq!((inner[0].line, inner[1].line), (6, 7));
        assert_eq!(inner[1].body, Body::Inline(String::from("K\n")));
        assert_eq!((s[3].line, s[3].name.as_str()), (11, "dev"));
    }

    #[test]
    fn block_errors() {
        let e = parse("<html>\n<head></head>\n</html>\n").unwrap_err();
        assert_eq!((e.line, e.kind), (1, ErrorKind::UnknownBlock));
        let e = parse("client\n<ca>\nAAA\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ErrorKind::UnclosedBlock));
        let e = parse("<connection>\n<connection>\n</connection>\n</connection>\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NestedConnection);
        let e = parse("client\nde\0v tun\n").unwrap_err();
        assert_eq!((e.line, e.kind), (2, ErrorKind::Binary));
    }

    #[test]
    fn decodes_utf16_and_bom() {
        let text = "client\r\ndev tun\r\n";
        let mut le = vec![0xff, 0xfe];
        let mut be = vec![0xfe, 0xff];
        for u in text.encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(decode(&le).unwrap(), text);
        assert_eq!(decode(&be).unwrap(), text);
        assert_eq!(decode(b"\xef\xbb\xbfclient").unwrap(), "client");
        assert_eq!(decode(b"client\n\xffdev").unwrap_err().line, 2);
        assert_eq!(
            decode(&[0xff, 0xfe, 0x00]).unwrap_err().kind,
            ErrorKind::NotUtf8
        );
    }
}
