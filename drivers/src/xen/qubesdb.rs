//! QubesDB, the VM side: Qubes' key/value database that dom0 fills for each VM (its addresses, DNS, the
//! firewall rules of its clients), over vchan port 111 with dom0 as the vchan server.
//!
//! Wire format (qubes-core-qubesdb `include/qubesdb.h`): every message is a 72-byte header, `u8 type`,
//! `char path[64]` (NUL-terminated), 3 bytes of padding, `u32 data_len` (little-endian, at most
//! [`MAX_DATA`]), then `data_len` bytes of value. Types: 0 READ, 1 WRITE, 2 MULTIREAD, 3 LIST, 4 RM,
//! 5 WATCH, 6 UNWATCH, 7 RESP_OK, 8 RESP_ERROR_NOENT, 9 RESP_ERROR, 10 RESP_READ, 11 RESP_MULTIREAD,
//! 12 RESP_LIST, 13 RESP_WATCH. Between the two daemons only WRITE, MULTIREAD, RM and the responses are
//! used:
//! - on connect the VM sends MULTIREAD (empty path); dom0 answers with one RESP_MULTIREAD per entry and an
//!   empty one (empty path, no data) to end the dump;
//! - afterwards dom0 sends WRITE (a value) and RM (a key, or every key under a path ending in `/`); the VM
//!   answers each with RESP_OK carrying the path;
//! - the VM may WRITE too (`/qubes-iptables-error`); dom0 answers RESP_OK.
//!
//! Firewall updates: dom0 writes a client's rules as `/qubes-firewall/<ip>/NNNN` and `/policy`, then
//! writes the parent `/qubes-firewall/<ip>` empty to mark the update complete. [`Db`] keeps a snapshot
//! of a client's rules taken at that marker ([`Db::firewall_rules`]), so half-written updates are never
//! seen.
//!
//! Layer: [`Decoder`], [`encode`] and [`Db`] are sans-IO and host-tested; [`QubesDbClient`] drives them
//! over a [`Vchan`]. Everything is bounded: path ≤ 63 bytes, value ≤ [`MAX_DATA`], at most
//! [`MAX_ENTRIES`] keys; a message breaking a bound is a [`QdbError`], never a panic.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use super::vchan::{SharedPage, Vchan, VchanHost, QUBESDB_PORT};
use super::{DomId, Store, XenError};

/// `QDB_MAX_PATH`: the path field, NUL included.
pub const MAX_PATH: usize = 64;
/// `QDB_MAX_DATA`: the longest value.
pub const MAX_DATA: usize = 3072;
/// The header's size.
pub const HEADER_LEN: usize = 72;
/// Most keys kept (Qubes writes a few dozen, plus the firewall rules of the clients).
pub const MAX_ENTRIES: usize = 1024;
/// Most bytes buffered from dom0 before a whole message arrived.
const MAX_BUFFERED: usize = HEADER_LEN + MAX_DATA;
/// The firewall's subtree.
pub const FIREWALL_PREFIX: &str = "/qubes-firewall/";

/// `enum qdb_msg`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    Read = 0,
    Write = 1,
    Multiread = 2,
    List = 3,
    Rm = 4,
    Watch = 5,
    Unwatch = 6,
    RespOk = 7,
    RespErrorNoent = 8,
    RespError = 9,
    RespRead = 10,
    RespMultiread = 11,
    RespList = 12,
    RespWatch = 13,
}

impl MsgType {
    /// The type of wire value `v`.
    pub fn from_u8(v: u8) -> Option<MsgType> {
        use MsgType::*;
        Some(match v {
            0 => Read,
            1 => Write,
            2 => Multiread,
            3 => List,
            4 => Rm,
            5 => Watch,
            6 => Unwatch,
            7 => RespOk,
            8 => RespErrorNoent,
            9 => RespError,
            10 => RespRead,
            11 => RespMultiread,
            12 => RespList,
            13 => RespWatch,
            _ => return None,
        })
    }
}

/// A QubesDB protocol error: what dom0 (or our caller) did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QdbError {
    /// A type byte outside the protocol.
    UnknownType(u8),
    /// `data_len` beyond [`MAX_DATA`].
    DataTooLong(u32),
    /// The path field has no NUL.
    PathNotTerminated,
    /// The path is not UTF-8 text.
    PathNotText,
    /// A path longer than 63 bytes (encoding).
    PathTooLong(usize),
    /// A value that is not UTF-8 text.
    ValueNotText(String),
    /// The store is full.
    TooManyEntries(String),
    /// A message that makes no sense between the daemons (e.g. a READ from dom0).
    Unexpected(MsgType),
    /// The vchan (or its peer) failed.
    Xen(XenError),
}

impl fmt::Display for QdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType(t) => write!(f, "qubesdb: unknown message type {t}"),
            Self::DataTooLong(n) => write!(f, "qubesdb: value of {n} bytes (at most {MAX_DATA})"),
            Self::PathNotTerminated => f.write_str("qubesdb: path without NUL"),
            Self::PathNotText => f.write_str("qubesdb: path is not text"),
            Self::PathTooLong(n) => {
                write!(f, "qubesdb: path of {n} bytes (at most {})", MAX_PATH - 1)
            }
            Self::ValueNotText(p) => write!(f, "qubesdb: value of {p} is not text"),
            Self::TooManyEntries(p) => {
                write!(f, "qubesdb: {p}: store full ({MAX_ENTRIES} entries)")
            }
            Self::Unexpected(t) => write!(f, "qubesdb: unexpected {t:?} from dom0"),
            Self::Xen(e) => write!(f, "qubesdb: {e}"),
        }
    }
}

impl From<XenError> for QdbError {
    fn from(e: XenError) -> Self {
        Self::Xen(e)
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub kind: MsgType,
    pub path: String,
    pub data: Vec<u8>,
}

/// A message's bytes: the header, then `data`.
pub fn encode(kind: MsgType, path: &str, data: &[u8]) -> Result<Vec<u8>, QdbError> {
    if path.len() >= MAX_PATH || path.contains('\0') {
        return Err(QdbError::PathTooLong(path.len()));
    }
    if data.len() > MAX_DATA {
        return Err(QdbError::DataTooLong(
            u32::try_from(data.len()).unwrap_or(u32::MAX),
        ));
    }
    let mut out = alloc::vec![0u8; HEADER_LEN];
    out[0] = kind as u8;
    out[1..1 + path.len()].copy_from_slice(path.as_bytes());
    out[68..72].copy_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// Reassembles messages from the byte stream.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends received bytes (at most what one message needs is ever kept: [`Decoder::next_msg`] must be
    /// called between pushes of more than that).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes still wanted before the next message can be decoded (0: call [`Decoder::next_msg`]).
    pub fn wanted(&self) -> usize {
        if self.buf.len() < HEADER_LEN {
            return HEADER_LEN - self.buf.len();
        }
        let len = u32::from_le_bytes([self.buf[68], self.buf[69], self.buf[70], self.buf[71]]);
        let total = HEADER_LEN.saturating_add(len.min(MAX_DATA as u32 + 1) as usize);
        total.saturating_sub(self.buf.len())
    }

    /// The next whole message, if one arrived. An error leaves the stream unusable (the caller should
    /// disconnect: there is no resynchronising a byte stream).
    pub fn next_msg(&mut self) -> Result<Option<Msg>, QdbError> {
        let Some(header) = self.buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let kind = MsgType::from_u8(header[0]).ok_or(QdbError::UnknownType(header[0]))?;
        let field = &header[1..1 + MAX_PATH];
        let end = field
            .iter()
            .position(|&b| b == 0)
            .ok_or(QdbError::PathNotTerminated)?;
        let path = core::str::from_utf8(&field[..end]).map_err(|_| QdbError::PathNotText)?;
        let len = u32::from_le_bytes([header[68], header[69], header[70], header[71]]);
        if len as usize > MAX_DATA {
            return Err(QdbError::DataTooLong(len));
        }
        let total = HEADER_LEN + len as usize;
        if self.buf.len() < total {
            if self.buf.len() > MAX_BUFFERED {
                return Err(QdbError::DataTooLong(len));
            }
            return Ok(None);
        }
        let msg = Msg {
            kind,
            path: path.to_string(),
            data: self.buf[HEADER_LEN..total].to_vec(),
        };
        self.buf.drain(..total);
        Ok(Some(msg))
    }
}

/// What changed in the database, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The initial dump is complete.
    Synced,
    /// `key` was written.
    Set(String),
    /// `key` was removed.
    Removed(String),
    /// dom0 marked the firewall rules of client `ip` complete (`/qubes-firewall/<ip>` written empty):
    /// [`Db::firewall_rules`] has the new snapshot.
    FirewallCommitted(String),
}

/// The VM's copy of its QubesDB entries, and the protocol state.
#[derive(Debug, Default)]
pub struct Db {
    entries: BTreeMap<String, String>,
    /// Client ip -> its rules (`NNNN`/`policy`, value) as of its last complete update.
    committed: BTreeMap<String, Vec<(String, String)>>,
    synced: bool,
}

/// The client IP when `key` is a firewall commit marker `/qubes-firewall/<ip>`.
fn firewall_client(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(FIREWALL_PREFIX)?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

impl Db {
    /// An empty database, not yet synced.
    pub fn new() -> Db {
        Db::default()
    }

    /// The request that starts the initial dump.
    pub fn sync_request() -> Vec<u8> {
        // An empty path and no data always encode.
        encode(MsgType::Multiread, "", &[]).unwrap_or_default()
    }

    /// Whether the initial dump is complete.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Every entry, in key order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The rules for client `ip` as raw `(name, value)` pairs (`"0000"`, `"action=accept ..."`; `"policy"`,
    /// `"drop"`), as of dom0's last complete update for it; `None` when no update was completed.
    pub fn firewall_rules(&self, ip: &str) -> Option<&[(String, String)]> {
        self.committed.get(ip).map(Vec::as_slice)
    }

    /// The clients with committed firewall rules.
    pub fn firewall_clients(&self) -> impl Iterator<Item = &str> {
        self.committed.keys().map(String::as_str)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), QdbError> {
        let value = core::str::from_utf8(value)
            .map_err(|_| QdbError::ValueNotText(key.to_string()))?
            .to_string();
        if !self.entries.contains_key(key) && self.entries.len() >= MAX_ENTRIES {
            return Err(QdbError::TooManyEntries(key.to_string()));
        }
        self.entries.insert(key.to_string(), value);
        Ok(())
    }

    /// Snapshots the rules under `/qubes-firewall/<ip>/`.
    fn commit(&mut self, ip: &str) -> Change {
        let prefix = alloc::format!("{FIREWALL_PREFIX}{ip}/");
        let rules = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k[prefix.len()..].to_string(), v.clone()))
            .collect();
        self.committed.insert(ip.to_string(), rules);
        Change::FirewallCommitted(ip.to_string())
    }

    /// Handles one message from dom0: the changes, and the answer to send back (if any).
    pub fn handle(&mut self, msg: &Msg) -> Result<(Vec<Change>, Option<Vec<u8>>), QdbError> {
        let mut changes = Vec::new();
        let ok = || encode(MsgType::RespOk, &msg.path, &[]);
        match msg.kind {
            MsgType::RespMultiread if msg.path.is_empty() => {
                self.synced = true;
                changes.push(Change::Synced);
                let markers: Vec<String> = self
                    .entries
                    .iter()
                    .filter(|(k, v)| v.is_empty() && firewall_client(k).is_some())
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in markers {
                    if let Some(ip) = firewall_client(&key) {
                        let ip = ip.to_string();
                        changes.push(self.commit(&ip));
                    }
                }
                Ok((changes, None))
            }
            MsgType::RespMultiread => {
                self.set(&msg.path, &msg.data)?;
                changes.push(Change::Set(msg.path.clone()));
                Ok((changes, None))
            }
            MsgType::Write => {
                self.set(&msg.path, &msg.data)?;
                changes.push(Change::Set(msg.path.clone()));
                if msg.data.is_empty() {
                    if let Some(ip) = firewall_client(&msg.path) {
                        let ip = ip.to_string();
                        changes.push(self.commit(&ip));
                    }
                }
                Ok((changes, Some(ok()?)))
            }
            MsgType::Rm => {
                if msg.path.ends_with('/') {
                    let gone: Vec<String> = self
                        .entries
                        .keys()
                        .filter(|k| k.starts_with(&msg.path))
                        .cloned()
                        .collect();
                    for key in gone {
                        self.entries.remove(&key);
                        changes.push(Change::Removed(key));
                    }
                    if let Some(ip) = firewall_client(msg.path.trim_end_matches('/')) {
                        self.committed.remove(ip);
                    }
                } else if self.entries.remove(&msg.path).is_some() {
                    changes.push(Change::Removed(msg.path.clone()));
                }
                Ok((changes, Some(ok()?)))
            }
            // answers to our own writes
            MsgType::RespOk | MsgType::RespError | MsgType::RespErrorNoent => Ok((changes, None)),
            other => Err(QdbError::Unexpected(other)),
        }
    }
}

/// The uplink configuration dom0 gives a VM: `/qubes-ip`, `/qubes-netmask`, `/qubes-gateway`,
/// `/qubes-primary-dns`, `/qubes-secondary-dns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uplink {
    pub address: core::net::Ipv4Addr,
    /// From `/qubes-netmask`, widened when needed so that the gateway is on the link (Qubes gives VMs a
    /// /32 with the gateway outside it; without a netmask: the longest prefix holding both).
    pub prefix_len: u8,
    pub gateway: Option<core::net::Ipv4Addr>,
    pub dns: Option<core::net::Ipv4Addr>,
    pub secondary_dns: Option<core::net::Ipv4Addr>,
}

impl Db {
    /// The uplink configuration, when `/qubes-ip` holds an IPv4 address.
    pub fn uplink(&self) -> Option<Uplink> {
        let addr = |key: &str| self.get(key).and_then(|v| v.trim().parse().ok());
        let address: core::net::Ipv4Addr = addr("/qubes-ip")?;
        let gateway: Option<core::net::Ipv4Addr> = addr("/qubes-gateway");
        let mut prefix_len = match addr("/qubes-netmask") {
            Some(mask) => {
                let m = u32::from(mask);
                // a netmask must be contiguous ones
                if m.leading_ones() + m.trailing_zeros() == 32 {
                    m.leading_ones() as u8
                } else {
                    32
                }
            }
            None => 32,
        };
        if let Some(gw) = gateway {
            let common = (u32::from(address) ^ u32::from(gw)).leading_zeros() as u8;
            prefix_len = prefix_len.min(common);
        }
        Some(Uplink {
            address,
            prefix_len,
            gateway,
            dns: addr("/qubes-primary-dns"),
            secondary_dns: addr("/qubes-secondary-dns"),
        })
    }
}

/// QubesDB over a vchan to dom0.
pub struct QubesDbClient<P: SharedPage> {
    vchan: Vchan<P>,
    decoder: Decoder,
    db: Db,
    closed: bool,
}

/// dom0, the QubesDB server.
pub const DOM0: DomId = 0;

impl<P: SharedPage> QubesDbClient<P> {
    /// Connects to dom0's QubesDB for domain `me` and waits for the initial dump, at most `timeout` (µs)
    /// for each of the two steps. Returns the client and the changes of the dump.
    pub fn connect<H: VchanHost<Page = P>>(
        host: &mut H,
        store: &mut impl Store,
        me: DomId,
        now: &mut dyn FnMut() -> u64,
        timeout: u64,
        idle: &mut dyn FnMut(),
    ) -> Result<(Self, Vec<Change>), QdbError> {
        let vchan = Vchan::connect(host, store, DOM0, me, QUBESDB_PORT, now, timeout, idle)?;
        let mut client = QubesDbClient {
            vchan,
            decoder: Decoder::default(),
            db: Db::new(),
            closed: false,
        };
        client
            .vchan
            .write_all(host, &Db::sync_request(), now, timeout, idle)?;
        let deadline = now().saturating_add(timeout);
        let mut changes = Vec::new();
        while !client.db.synced() {
            let got = client.poll(host)?;
            if got.is_empty() {
                if now() >= deadline {
                    return Err(XenError::Timeout("QubesDB's initial dump").into());
                }
                idle();
            }
            changes.extend(got);
        }
        Ok((client, changes))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The vchan's event channel (unmasked: dom0's writes wake the CPU).
    pub fn port(&self) -> super::Port {
        self.vchan.port()
    }

    /// Whether dom0's side is still there.
    pub fn is_open(&self) -> bool {
        self.vchan.is_open()
    }

    /// Reads what dom0 sent, applies it and answers it. Cheap when nothing arrived.
    pub fn poll(&mut self, host: &mut impl VchanHost) -> Result<Vec<Change>, QdbError> {
        if self.closed {
            return Ok(Vec::new());
        }
        let _ = self.vchan.take_event(host);
        let mut changes = Vec::new();
        loop {
            let want = self.decoder.wanted();
            let mut buf = [0u8; 512];
            let n = if want > 0 {
                let take = want.min(buf.len());
                self.vchan.read(host, &mut buf[..take])?
            } else {
                0
            };
            self.decoder.push(&buf[..n]);
            let mut progressed = n > 0;
            while let Some(msg) = self.decoder.next_msg()? {
                progressed = true;
                let (got, answer) = self.db.handle(&msg)?;
                changes.extend(got);
                if let Some(answer) = answer {
                    // dom0 reads its ring promptly; a full ring here means it stopped reading.
                    let sent = self.vchan.write(host, &answer)?;
                    if sent != answer.len() {
                        return Err(
                            XenError::Backend("qubesdb: dom0 stopped reading".into()).into()
                        );
                    }
                }
            }
            if !progressed {
                return Ok(changes);
            }
        }
    }

    /// Stops talking to dom0 (after a protocol error): the database stays readable, [`poll`](Self::poll)
    /// returns nothing.
    pub fn close(&mut self, host: &mut impl VchanHost) {
        self.closed = true;
        self.vchan.close(host);
    }

    /// Writes `key` = `value` to dom0's copy (e.g. `/qubes-iptables-error`); dom0's RESP_OK is consumed
    /// by [`poll`](Self::poll).
    pub fn write(
        &mut self,
        host: &mut impl VchanHost,
        key: &str,
        value: &str,
    ) -> Result<(), QdbError> {
        let bytes = encode(MsgType::Write, key, value.as_bytes())?;
        if self.vchan.write(host, &bytes)? != bytes.len() {
            return Err(XenError::Backend("qubesdb: dom0 stopped reading".into()).into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: MsgType, path: &str, data: &str) -> Msg {
        Msg {
            kind,
            path: path.into(),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn header_layout_and_round_trip() {
        let bytes = encode(MsgType::Write, "/qubes-ip", b"10.137.0.5").unwrap();
        assert_eq!(bytes.len(), 72 + 10);
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..10], b"/qubes-ip");
        assert!(bytes[10..68].iter().all(|&b| b == 0));
        assert_eq!(&bytes[68..72], &10u32.to_le_bytes());
        let mut d = Decoder::default();
        // byte by byte
        for (i, b) in bytes.iter().enumerate() {
            let want = if i < HEADER_LEN {
                HEADER_LEN - i
            } else {
                bytes.len() - i
            };
            assert_eq!(d.wanted(), want);
            assert_eq!(d.next_msg().unwrap(), None);
            d.push(&[*b]);
        }
        assert_eq!(d.wanted(), 0);
        assert_eq!(
            d.next_msg().unwrap(),
            Some(msg(MsgType::Write, "/qubes-ip", "10.137.0.5"))
        );
        assert_eq!(d.next_msg().unwrap(), None);
        // two in one push
        let mut two = encode(MsgType::RespOk, "/a", b"").unwrap();
        two.extend(encode(MsgType::Rm, "/b/", b"").unwrap());
        d.push(&two);
        assert_eq!(d.next_msg().unwrap().unwrap().kind, MsgType::RespOk);
        assert_eq!(d.next_msg().unwrap().unwrap().path, "/b/");
        // the longest path and value
        let path: String = core::iter::repeat_n('p', 63).collect();
        let value = alloc::vec![b'v'; MAX_DATA];
        d.push(&encode(MsgType::Write, &path, &value).unwrap());
        assert_eq!(d.next_msg().unwrap().unwrap().data.len(), MAX_DATA);
    }

    #[test]
    fn malformed_messages_are_errors() {
        let good = encode(MsgType::Write, "/x", b"1").unwrap();
        let mut bad_type = good.clone();
        bad_type[0] = 14;
        let mut no_nul = good.clone();
        no_nul[1..65].fill(b'a');
        let mut too_long = good.clone();
        too_long[68..72].copy_from_slice(&3073u32.to_le_bytes());
        let mut huge = good.clone();
        huge[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut not_text = good.clone();
        not_text[1] = 0xff;
        for (bytes, want) in [
            (bad_type, QdbError::UnknownType(14)),
            (no_nul, QdbError::PathNotTerminated),
            (too_long, QdbError::DataTooLong(3073)),
            (huge, QdbError::DataTooLong(u32::MAX)),
            (not_text, QdbError::PathNotText),
        ] {
            let mut d = Decoder::default();
            d.push(&bytes);
            assert_eq!(d.next_msg(), Err(want));
            assert!(d.wanted() <= MAX_DATA + HEADER_LEN);
        }
        // encoding refuses what the wire cannot carry
        let long: String = core::iter::repeat_n('p', 64).collect();
        assert!(encode(MsgType::Write, &long, b"").is_err());
        assert!(encode(MsgType::Write, "/x", &[0; MAX_DATA + 1]).is_err());
        // a value that is not text, a command dom0 must not send
        let mut db = Db::new();
        let mut m = msg(MsgType::Write, "/x", "");
        m.data = alloc::vec![0xff, 0xfe];
        assert!(matches!(db.handle(&m), Err(QdbError::ValueNotText(_))));
        assert_eq!(
            db.handle(&msg(MsgType::Read, "/x", "")),
            Err(QdbError::Unexpected(MsgType::Read))
        );
        assert_eq!(
            db.handle(&msg(MsgType::Watch, "/x", "")),
            Err(QdbError::Unexpected(MsgType::Watch))
        );
    }

    #[test]
    fn sync_then_updates_and_firewall_commits() {
        let mut db = Db::new();
        assert_eq!(Db::sync_request()[0], MsgType::Multiread as u8);
        for (k, v) in [
            ("/qubes-ip", "10.137.0.5"),
            ("/qubes-gateway", "10.137.0.1"),
            ("/qubes-firewall/10.137.0.20", ""),
            (
                "/qubes-firewall/10.137.0.20/0000",
                "action=accept proto=tcp dstports=443-443",
            ),
            ("/qubes-firewall/10.137.0.20/policy", "drop"),
            ("/qubes-firewall/10.137.0.21/0000", "action=accept"),
        ] {
            let (changes, answer) = db.handle(&msg(MsgType::RespMultiread, k, v)).unwrap();
            assert_eq!(changes, [Change::Set(k.into())]);
            assert!(answer.is_none());
        }
        assert!(!db.synced());
        let (changes, _) = db.handle(&msg(MsgType::RespMultiread, "", "")).unwrap();
        assert_eq!(
            changes,
            [
                Change::Synced,
                Change::FirewallCommitted("10.137.0.20".into())
            ]
        );
        assert_eq!(db.get("/qubes-ip"), Some("10.137.0.5"));
        let rules = db.firewall_rules("10.137.0.20").unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].0, "0000");
        assert_eq!(rules[1], ("policy".into(), "drop".into()));
        assert!(
            db.firewall_rules("10.137.0.21").is_none(),
            "not marked complete"
        );
        // a run-time update: rules written, not visible until the marker
        let (_, answer) = db
            .handle(&msg(MsgType::Rm, "/qubes-firewall/10.137.0.20/", ""))
            .unwrap();
        let ok = answer.unwrap();
        assert_eq!(ok[0], MsgType::RespOk as u8);
        assert_eq!(&ok[1..29], b"/qubes-firewall/10.137.0.20/");
        assert!(db.firewall_rules("10.137.0.20").is_none());
        db.handle(&msg(
            MsgType::Write,
            "/qubes-firewall/10.137.0.20/0000",
            "action=drop proto=udp",
        ))
        .unwrap();
        assert!(db.firewall_rules("10.137.0.20").is_none());
        let (changes, answer) = db
            .handle(&msg(MsgType::Write, "/qubes-firewall/10.137.0.20", ""))
            .unwrap();
        assert!(answer.is_some());
        assert_eq!(
            changes,
            [
                Change::Set("/qubes-firewall/10.137.0.20".into()),
                Change::FirewallCommitted("10.137.0.20".into())
            ]
        );
        assert_eq!(
            db.firewall_rules("10.137.0.20").unwrap(),
            [("0000".into(), "action=drop proto=udp".into())]
        );
        assert_eq!(db.firewall_clients().count(), 1);
        // rm of one key, of a missing key
        let (changes, _) = db.handle(&msg(MsgType::Rm, "/qubes-gateway", "")).unwrap();
        assert_eq!(changes, [Change::Removed("/qubes-gateway".into())]);
        let (changes, answer) = db.handle(&msg(MsgType::Rm, "/nothing", "")).unwrap();
        assert!(changes.is_empty() && answer.is_some());
    }

    #[test]
    fn uplink_from_the_keys() {
        let mut db = Db::new();
        assert_eq!(db.uplink(), None);
        for (k, v) in [
            ("/qubes-ip", "10.137.0.5"),
            ("/qubes-netmask", "255.255.255.255"),
            ("/qubes-gateway", "10.137.0.1"),
            ("/qubes-primary-dns", "10.139.1.1"),
        ] {
            db.handle(&msg(MsgType::Write, k, v)).unwrap();
        }
        let u = db.uplink().unwrap();
        assert_eq!(u.address, core::net::Ipv4Addr::new(10, 137, 0, 5));
        assert_eq!(u.prefix_len, 29, "widened to hold the gateway");
        assert_eq!(u.gateway, Some(core::net::Ipv4Addr::new(10, 137, 0, 1)));
        assert_eq!(u.dns, Some(core::net::Ipv4Addr::new(10, 139, 1, 1)));
        assert_eq!(u.secondary_dns, None);
        db.handle(&msg(MsgType::Write, "/qubes-netmask", "255.255.255.0"))
            .unwrap();
        assert_eq!(db.uplink().unwrap().prefix_len, 24);
        db.handle(&msg(MsgType::Write, "/qubes-netmask", "255.0.255.0"))
            .unwrap();
        assert_eq!(
            db.uplink().unwrap().prefix_len,
            29,
            "a broken mask counts as /32"
        );
        db.handle(&msg(MsgType::Write, "/qubes-ip", "not an address"))
            .unwrap();
        assert_eq!(db.uplink(), None);
    }

    #[test]
    fn the_store_is_bounded() {
        let mut db = Db::new();
        for i in 0..MAX_ENTRIES {
            db.handle(&msg(MsgType::Write, &alloc::format!("/k{i}"), "v"))
                .unwrap();
        }
        assert_eq!(
            db.handle(&msg(MsgType::Write, "/one-more", "v")),
            Err(QdbError::TooManyEntries("/one-more".into()))
        );
        // overwriting an existing key still works
        assert!(db.handle(&msg(MsgType::Write, "/k0", "w")).is_ok());
    }
}
