//! The xenstore client: `xs_wire.h` messages over the xenstore ring (`HVM_PARAM_STORE_PFN` /
//! `HVM_PARAM_STORE_EVTCHN`): read, write, directory, rm, watch (and the watch events), transactions.
//!
//! Layer: a pure codec ([`encode`], [`Decoder`]) and a client ([`XenStore`]) generic over a byte
//! [`Transport`], both host-tested against a fake xenstored; [`RingTransport`] is the ring in the page Xen
//! names. One request is outstanding at a time; its reply is matched by request id, and watch events that
//! arrive meanwhile are queued (bounded) for [`XenStore::poll_watch`]. A misbehaving daemon (payload over
//! 4096 bytes, broken ring indices, a reply that never comes) is an error, never a panic; after a framing
//! error the stream cannot be trusted and every later call fails.

use alloc::collections::VecDeque;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU8};

use super::byte_ring::ByteRing;
use super::hypercall::{self, PARAM_STORE_EVTCHN, PARAM_STORE_PFN};
use super::{events, Port, Store, XenError};

/// `XENSTORE_PAYLOAD_MAX`.
pub const PAYLOAD_MAX: usize = 4096;
/// Size of `struct xsd_sockmsg`.
pub const HEADER: usize = 16;
/// Most watch events kept while nobody asks for them (older ones are dropped).
pub const MAX_QUEUED_EVENTS: usize = 64;

/// `enum xsd_sockmsg_type` (the ones used here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum MsgType {
    Directory = 1,
    Read = 2,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    WatchEvent = 15,
    Error = 16,
}

/// One message off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub payload: Vec<u8>,
}

/// A fired watch: the path that changed and the token given to [`XenStore::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub path: String,
    pub token: String,
}

/// Encodes one request: header, then `parts` concatenated.
pub fn encode(
    kind: MsgType,
    req_id: u32,
    tx_id: u32,
    parts: &[&[u8]],
) -> Result<Vec<u8>, XenError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if len > PAYLOAD_MAX {
        return Err(XenError::Backend(alloc::format!(
            "xenstore request of {len} bytes exceeds {PAYLOAD_MAX}"
        )));
    }
    let mut out = Vec::with_capacity(HEADER + len);
    for v in [kind as u32, req_id, tx_id, len as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// Reassembles messages from the bytes read off the ring.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends bytes read from the ring.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if there is one; an error when the header announces an oversized payload.
    pub fn next_message(&mut self) -> Result<Option<Message>, XenError> {
        let Some(header) = self.buf.get(..HEADER) else {
            return Ok(None);
        };
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(header.get(i * 4..i * 4 + 4).unwrap_or(&[0; 4]));
            u32::from_le_bytes(w)
        };
        let (kind, req_id, tx_id, len) = (word(0), word(1), word(2), word(3) as usize);
        if len > PAYLOAD_MAX {
            return Err(XenError::Backend(alloc::format!(
                "xenstore message announces {len} bytes (max {PAYLOAD_MAX})"
            )));
        }
        let Some(payload) = self.buf.get(HEADER..HEADER + len) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.buf.drain(..HEADER + len);
        Ok(Some(Message {
            kind,
            req_id,
            tx_id,
            payload,
        }))
    }
}

/// Splits a NUL-separated payload into strings (empty trailing parts dropped; invalid UTF-8 replaced).
pub fn split_strings(payload: &[u8]) -> Vec<String> {
    payload
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The bytes under a client: the ring, or a fake daemon in tests.
pub trait Transport {
    /// Queues as much of `bytes` as fits; returns how many.
    fn send(&mut self, bytes: &[u8]) -> Result<usize, XenError>;
    /// Takes up to `buf.len()` waiting bytes; returns how many.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, XenError>;
    /// Tells the daemon there is something to look at.
    fn notify(&mut self);
    /// Monotonic microseconds, for timeouts.
    fn now_us(&mut self) -> u64;
    /// Waits a little for the daemon (no progress was made).
    fn pause(&mut self);
}

/// How long one request may take.
pub const TIMEOUT_US: u64 = 5_000_000;

/// A xenstore client.
pub struct XenStore<T: Transport> {
    transport: T,
    next_req: u32,
    decoder: Decoder,
    events: VecDeque<WatchEvent>,
    dropped_events: u64,
    broken: Option<String>,
}

impl<T: Transport> XenStore<T> {
    /// A client over `transport`.
    pub fn new(transport: T) -> XenStore<T> {
        XenStore {
            transport,
            next_req: 1,
            decoder: Decoder::default(),
            events: VecDeque::new(),
            dropped_events: 0,
            broken: None,
        }
    }

    /// The transport (for tests and for the event port).
    pub fn transport(&mut self) -> &mut T {
        &mut self.transport
    }

    fn fail(&mut self, e: XenError) -> XenError {
        if let XenError::Backend(what) = &e {
            self.broken = Some(what.clone());
        }
        e
    }

    fn check_broken(&self) -> Result<(), XenError> {
        match &self.broken {
            Some(what) => Err(XenError::Backend(alloc::format!(
                "xenstore connection unusable: {what}"
            ))),
            None => Ok(()),
        }
    }

    /// Moves waiting bytes into the decoder and files watch events; returns the first other message.
    fn pump(&mut self) -> Result<Option<Message>, XenError> {
        let mut buf = [0u8; 1024];
        // Bounded: a daemon that keeps the ring full cannot keep us here.
        for _ in 0..16 {
            let n = self.transport.recv(&mut buf).map_err(|e| self.fail(e))?;
            self.decoder.push(buf.get(..n).unwrap_or(&[]));
            if n < buf.len() {
                break;
            }
        }
        loop {
            let Some(msg) = self.decoder.next_message().map_err(|e| self.fail(e))? else {
                return Ok(None);
            };
            if msg.kind == MsgType::WatchEvent as u32 {
                let mut parts = split_strings(&msg.payload).into_iter();
                if let (Some(path), Some(token)) = (parts.next(), parts.next()) {
                    if self.events.len() >= MAX_QUEUED_EVENTS {
                        self.events.pop_front();
                        self.dropped_events += 1;
                    }
                    self.events.push_back(WatchEvent { path, token });
                }
                continue;
            }
            return Ok(Some(msg));
        }
    }

    /// Sends one request and waits for its reply's payload. `what` names it in errors.
    pub fn request(
        &mut self,
        kind: MsgType,
        tx_id: u32,
        parts: &[&[u8]],
        what: &str,
    ) -> Result<Vec<u8>, XenError> {
        self.check_broken()?;
        let req_id = self.next_req;
        self.next_req = self.next_req.wrapping_add(1).max(1);
        let bytes = encode(kind, req_id, tx_id, parts)?;
        let start = self.transport.now_us();
        let mut sent = 0;
        while sent < bytes.len() {
            let n = self
                .transport
                .send(bytes.get(sent..).unwrap_or(&[]))
                .map_err(|e| self.fail(e))?;
            sent += n;
            self.transport.notify();
            if n == 0 {
                // Drain replies/events meanwhile so that the daemon can make progress.
                let _ = self.pump()?;
                self.wait(start)?;
            }
        }
        loop {
            match self.pump()? {
                Some(msg) if msg.req_id == req_id => {
                    if msg.kind == MsgType::Error as u32 {
                        return Err(XenError::Store {
                            path: what.to_string(),
                            error: split_strings(&msg.payload)
                                .into_iter()
                                .next()
                                .unwrap_or_default(),
                        });
                    }
                    if msg.kind != kind as u32 {
                        return Err(self.fail(XenError::Backend(alloc::format!(
                            "xenstore answered {what} with message type {}",
                            msg.kind
                        ))));
                    }
                    return Ok(msg.payload);
                }
                Some(msg) => log::warn!(
                    "xenstore: dropped a reply to request {} (type {}) while waiting for {req_id}",
                    msg.req_id,
                    msg.kind
                ),
                None => self.wait(start)?,
            }
        }
    }

    fn wait(&mut self, start: u64) -> Result<(), XenError> {
        if self.transport.now_us().saturating_sub(start) > TIMEOUT_US {
            // The reply may still come later, out of step with the next request: stop using the ring.
            self.broken = Some("a request timed out".into());
            return Err(XenError::Timeout("xenstore"));
        }
        self.transport.pause();
        Ok(())
    }

    /// The value at `path` within transaction `tx` (0: none).
    pub fn read_tx(&mut self, tx: u32, path: &str) -> Result<String, XenError> {
        let v = self.request(MsgType::Read, tx, &[path.as_bytes(), b"\0"], path)?;
        let v = v.strip_suffix(&[0]).unwrap_or(&v);
        Ok(String::from_utf8_lossy(v).into_owned())
    }

    /// Writes `value` at `path` within transaction `tx`.
    pub fn write_tx(&mut self, tx: u32, path: &str, value: &str) -> Result<(), XenError> {
        self.request(
            MsgType::Write,
            tx,
            &[path.as_bytes(), b"\0", value.as_bytes()],
            path,
        )
        .map(|_| ())
    }

    /// Removes `path` and everything below it.
    pub fn rm(&mut self, tx: u32, path: &str) -> Result<(), XenError> {
        self.request(MsgType::Rm, tx, &[path.as_bytes(), b"\0"], path)
            .map(|_| ())
    }

    /// Starts a transaction; returns its id.
    pub fn transaction_start(&mut self) -> Result<u32, XenError> {
        let v = self.request(MsgType::TransactionStart, 0, &[b"\0"], "transaction start")?;
        let id = split_strings(&v).into_iter().next().unwrap_or_default();
        match id.trim().parse::<u32>() {
            Ok(id) if id != 0 => Ok(id),
            _ => Err(XenError::Backend(alloc::format!(
                "xenstore returned transaction id {id:?}"
            ))),
        }
    }

    /// Ends transaction `tx`, committing when `commit`. Ok(false) when xenstore asks to retry (EAGAIN).
    pub fn transaction_end(&mut self, tx: u32, commit: bool) -> Result<bool, XenError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        match self.request(MsgType::TransactionEnd, tx, &[arg], "transaction end") {
            Ok(_) => Ok(true),
            Err(XenError::Store { error, .. }) if error == "EAGAIN" => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Watches `path` (and below); events carry `token`. xenstore fires once at registration.
    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), XenError> {
        self.request(
            MsgType::Watch,
            0,
            &[path.as_bytes(), b"\0", token.as_bytes(), b"\0"],
            path,
        )
        .map(|_| ())
    }

    /// Stops watching `path` with `token`.
    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), XenError> {
        self.request(
            MsgType::Unwatch,
            0,
            &[path.as_bytes(), b"\0", token.as_bytes(), b"\0"],
            path,
        )
        .map(|_| ())
    }

    /// The next watch event, reading the ring without waiting.
    pub fn poll_watch(&mut self) -> Result<Option<WatchEvent>, XenError> {
        self.check_broken()?;
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        if let Some(msg) = self.pump()? {
            log::warn!(
                "xenstore: unexpected message type {} (request {}) with no request waiting",
                msg.kind,
                msg.req_id
            );
        }
        Ok(self.events.pop_front())
    }

    /// Watch events dropped because nobody read them.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }
}

impl<T: Transport> Store for XenStore<T> {
    fn read(&mut self, path: &str) -> Result<String, XenError> {
        self.read_tx(0, path)
    }

    fn write(&mut self, path: &str, value: &str) -> Result<(), XenError> {
        self.write_tx(0, path, value)
    }

    fn directory(&mut self, path: &str) -> Result<Vec<String>, XenError> {
        let v = self.request(MsgType::Directory, 0, &[path.as_bytes(), b"\0"], path)?;
        Ok(split_strings(&v))
    }

    fn remove(&mut self, path: &str) -> Result<(), XenError> {
        self.rm(0, path)
    }
}

/// `struct xenstore_domain_interface`: req[1024], rsp[1024], req_cons, req_prod, rsp_cons, rsp_prod.
const RING_SIZE: usize = 1024;
const REQ: usize = 0;
const RSP: usize = 1024;
const REQ_CONS: usize = 2048;
const REQ_PROD: usize = 2052;
const RSP_CONS: usize = 2056;
const RSP_PROD: usize = 2060;

/// The xenstore ring page and its event channel.
pub struct RingTransport {
    base: *const u8,
    port: Port,
    clock: fn() -> u64,
}

impl RingTransport {
    /// The ring Xen names in `HVM_PARAM_STORE_PFN`/`_EVTCHN`. `clock` gives monotonic microseconds.
    pub fn from_params(clock: fn() -> u64) -> Result<RingTransport, XenError> {
        let pfn = hypercall::hvm_get_param(PARAM_STORE_PFN)?;
        let port = hypercall::hvm_get_param(PARAM_STORE_EVTCHN)?;
        if pfn == 0 {
            return Err(XenError::Backend(
                "no xenstore ring (HVM_PARAM_STORE_PFN is 0)".into(),
            ));
        }
        // The boot page tables identity-map the low 4 GiB, where Xen puts a PVH guest's special pages.
        if pfn >= (1 << 20) || port == 0 || port >= u64::from(super::shared_info::MAX_PORTS) {
            return Err(XenError::Backend(alloc::format!(
                "xenstore ring at frame {pfn:#x}, port {port}: outside what the image can use"
            )));
        }
        Ok(RingTransport {
            base: (pfn << 12) as *const u8,
            port: port as Port,
            clock,
        })
    }

    /// The ring's event channel.
    pub fn port(&self) -> Port {
        self.port
    }

    fn ring(&self, data: usize, cons: usize, prod: usize) -> ByteRing<'static> {
        // SAFETY: `base` is the xenstore page Xen named (identity-mapped, checked in from_params); the
        // offsets are the header's, and the page is only accessed through atomics.
        unsafe {
            ByteRing::new(
                core::slice::from_raw_parts(self.base.add(data).cast::<AtomicU8>(), RING_SIZE),
                &*self.base.add(cons).cast::<AtomicU32>(),
                &*self.base.add(prod).cast::<AtomicU32>(),
            )
        }
    }
}

impl Transport for RingTransport {
    fn send(&mut self, bytes: &[u8]) -> Result<usize, XenError> {
        self.ring(REQ, REQ_CONS, REQ_PROD).write(bytes)
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<usize, XenError> {
        let n = self.ring(RSP, RSP_CONS, RSP_PROD).read(buf)?;
        if n > 0 {
            events::send(self.port); // room in the response ring
        }
        Ok(n)
    }

    fn notify(&mut self) {
        events::send(self.port);
    }

    fn now_us(&mut self) -> u64 {
        (self.clock)()
    }

    fn pause(&mut self) {
        hypercall::sched_yield();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::vec;

    /// A fake xenstored: a tree of values, watches, transactions that conflict on demand.
    #[derive(Default)]
    struct Fake {
        tree: BTreeMap<String, String>,
        to_daemon: Vec<u8>,
        to_client: Vec<u8>,
        watches: Vec<(String, String)>,
        clock: u64,
        /// Answers to send instead of processing (raw bytes).
        inject: Option<Vec<u8>>,
        /// Stop answering.
        mute: bool,
        conflict: bool,
        /// Bytes accepted per send call.
        send_chunk: usize,
    }

    fn reply(out: &mut Vec<u8>, kind: u32, req: u32, tx: u32, payload: &[u8]) {
        for v in [kind, req, tx, payload.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(payload);
    }

    impl Fake {
        fn process(&mut self) {
            let mut d = Decoder::default();
            d.push(&core::mem::take(&mut self.to_daemon));
            while let Ok(Some(m)) = d.next_message() {
                if self.mute {
                    continue;
                }
                if let Some(raw) = self.inject.take() {
                    self.to_client.extend(raw);
                    continue;
                }
                let parts = split_strings(&m.payload);
                let path = parts.first().cloned().unwrap_or_default();
                let err = |out: &mut Vec<u8>, e: &str| {
                    let mut p = e.as_bytes().to_vec();
                    p.push(0);
                    reply(out, MsgType::Error as u32, m.req_id, m.tx_id, &p)
                };
                match m.kind {
                    2 => match self.tree.get(&path) {
                        Some(v) => reply(&mut self.to_client, 2, m.req_id, m.tx_id, v.as_bytes()),
                        None => err(&mut self.to_client, "ENOENT"),
                    },
                    11 => {
                        let at = m.payload.iter().position(|&b| b == 0).unwrap();
                        let value = String::from_utf8(m.payload[at + 1..].to_vec()).unwrap();
                        self.tree.insert(path.clone(), value);
                        reply(&mut self.to_client, 11, m.req_id, m.tx_id, b"OK\0");
                        for (w, token) in self.watches.clone() {
                            if path.starts_with(&w) {
                                let mut p = path.as_bytes().to_vec();
                                p.push(0);
                                p.extend_from_slice(token.as_bytes());
                                p.push(0);
                                reply(&mut self.to_client, 15, 0, 0, &p);
                            }
                        }
                    }
                    1 => {
                        let prefix = alloc::format!("{path}/");
                        let mut kids: Vec<String> = self
                            .tree
                            .keys()
                            .filter_map(|k| k.strip_prefix(&prefix))
                            .map(|k| k.split('/').next().unwrap().to_string())
                            .collect();
                        kids.dedup();
                        let mut p = Vec::new();
                        for k in kids {
                            p.extend_from_slice(k.as_bytes());
                            p.push(0);
                        }
                        reply(&mut self.to_client, 1, m.req_id, m.tx_id, &p);
                    }
                    4 => {
                        let token = parts.get(1).cloned().unwrap_or_default();
                        self.watches.push((path.clone(), token.clone()));
                        reply(&mut self.to_client, 4, m.req_id, 0, b"OK\0");
                        let mut p = path.into_bytes();
                        p.push(0);
                        p.extend_from_slice(token.as_bytes());
                        p.push(0);
                        reply(&mut self.to_client, 15, 0, 0, &p);
                    }
                    6 => reply(&mut self.to_client, 6, m.req_id, 0, b"17\0"),
                    7 if self.conflict => err(&mut self.to_client, "EAGAIN"),
                    7 => reply(&mut self.to_client, 7, m.req_id, 0, b"OK\0"),
                    _ => err(&mut self.to_client, "EINVAL"),
                }
            }
        }
    }

    impl Transport for &mut Fake {
        fn send(&mut self, bytes: &[u8]) -> Result<usize, XenError> {
            let n = bytes.len().min(if self.send_chunk == 0 {
                usize::MAX
            } else {
                self.send_chunk
            });
            self.to_daemon.extend_from_slice(&bytes[..n]);
            Ok(n)
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<usize, XenError> {
            let n = buf.len().min(self.to_client.len());
            buf[..n].copy_from_slice(&self.to_client[..n]);
            self.to_client.drain(..n);
            Ok(n)
        }
        fn notify(&mut self) {}
        fn now_us(&mut self) -> u64 {
            self.clock += 1000;
            self.clock
        }
        fn pause(&mut self) {
            self.process();
        }
    }

    #[test]
    fn codec_round_trip() {
        let bytes = encode(MsgType::Write, 7, 3, &[b"a/b", b"\0", b"v"]).unwrap();
        assert_eq!(bytes.len(), HEADER + 5);
        let mut d = Decoder::default();
        d.push(&bytes[..10]);
        assert_eq!(d.next_message().unwrap(), None);
        d.push(&bytes[10..]);
        let m = d.next_message().unwrap().unwrap();
        assert_eq!((m.kind, m.req_id, m.tx_id), (11, 7, 3));
        assert_eq!(m.payload, b"a/b\0v");
        assert_eq!(d.next_message().unwrap(), None);
        assert!(encode(MsgType::Write, 1, 0, &[&[b'x'; PAYLOAD_MAX + 1]]).is_err());
        let mut d = Decoder::default();
        d.push(&encode(MsgType::Read, 1, 0, &[]).unwrap()[..12]);
        d.push(&(PAYLOAD_MAX as u32 + 1).to_le_bytes());
        assert!(d.next_message().is_err());
        assert_eq!(split_strings(b"vif\0vbd\0\0"), vec!["vif", "vbd"]);
    }

    #[test]
    fn read_write_directory() {
        let mut fake = Fake {
            send_chunk: 7,
            ..Default::default()
        };
        fake.tree
            .insert("device/vif/0/mac".into(), "00:16:3e:00:00:01".into());
        fake.tree.insert(
            "device/vif/0/backend".into(),
            "/local/domain/0/backend/vif/1/0".into(),
        );
        fake.tree
            .insert("device/vbd/51712/backend".into(), "x".into());
        let mut xs = XenStore::new(&mut fake);
        assert_eq!(xs.read("device/vif/0/mac").unwrap(), "00:16:3e:00:00:01");
        assert_eq!(xs.directory("device").unwrap(), vec!["vbd", "vif"]);
        assert_eq!(xs.directory("device/vif").unwrap(), vec!["0"]);
        xs.write("device/vif/0/state", "4").unwrap();
        assert_eq!(xs.read("device/vif/0/state").unwrap(), "4");
        assert_eq!(
            xs.read("nope"),
            Err(XenError::Store {
                path: "nope".into(),
                error: "ENOENT".into()
            })
        );
    }

    #[test]
    fn watches_and_transactions() {
        let mut fake = Fake::default();
        let mut xs = XenStore::new(&mut fake);
        xs.watch("backend/vif", "vifs").unwrap();
        let first = xs.poll_watch().unwrap().unwrap();
        assert_eq!(
            (first.path.as_str(), first.token.as_str()),
            ("backend/vif", "vifs")
        );
        assert_eq!(xs.poll_watch().unwrap(), None);
        let tx = xs.transaction_start().unwrap();
        assert_eq!(tx, 17);
        xs.write_tx(tx, "backend/vif/3/0/state", "2").unwrap();
        assert!(xs.transaction_end(tx, true).unwrap());
        let ev = xs.poll_watch().unwrap().unwrap();
        assert_eq!(ev.path, "backend/vif/3/0/state");
        xs.transport().conflict = true;
        assert!(!xs.transaction_end(tx, true).unwrap());
    }

    #[test]
    fn misbehaving_daemon() {
        // An oversized frame breaks the connection for good.
        let mut fake = Fake::default();
        let mut bad = Vec::new();
        reply(&mut bad, 2, 1, 0, &[]);
        bad[12..16].copy_from_slice(&100_000u32.to_le_bytes());
        fake.inject = Some(bad);
        let mut xs = XenStore::new(&mut fake);
        assert!(matches!(xs.read("a"), Err(XenError::Backend(_))));
        assert!(matches!(xs.read("a"), Err(XenError::Backend(_))));

        // A reply of the wrong type is refused.
        let mut fake = Fake::default();
        let mut wrong = Vec::new();
        reply(&mut wrong, 1, 1, 0, b"x\0");
        fake.inject = Some(wrong);
        let mut xs = XenStore::new(&mut fake);
        assert!(xs.read("a").is_err());

        // Silence ends in a timeout, not a hang.
        let mut fake = Fake {
            mute: true,
            ..Default::default()
        };
        let mut xs = XenStore::new(&mut fake);
        assert_eq!(xs.read("a"), Err(XenError::Timeout("xenstore")));

        // A stray reply for another request is skipped; garbage transaction ids are refused.
        let mut fake = Fake::default();
        let mut stray = Vec::new();
        reply(&mut stray, 2, 99, 0, b"old");
        reply(&mut stray, 6, 1, 0, b"zero\0");
        fake.inject = Some(stray);
        let mut xs = XenStore::new(&mut fake);
        assert!(xs.transaction_start().is_err());
    }

    #[test]
    fn event_queue_is_bounded() {
        let mut fake = Fake::default();
        for i in 0..100 {
            let p = alloc::format!("p{i}\0t\0");
            reply(&mut fake.to_client, 15, 0, 0, p.as_bytes());
        }
        let mut xs = XenStore::new(&mut fake);
        let mut n = 0;
        while xs.poll_watch().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED_EVENTS);
        assert_eq!(xs.dropped_events(), 100 - MAX_QUEUED_EVENTS as u64);
    }
}
