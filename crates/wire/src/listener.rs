//! The listener of server mode: one I/O thread that accepts connections on
//! a Unix socket and/or TCP, checks each client's handshake and token,
//! cuts its bytes into frames, answers the hot requests against the engine
//! ([`crate::serve`]) and hands every other frame to the dispatcher (the
//! JavaScript side, through a [`Sink`]), which answers through
//! [`Listener::send`]. TLS connections are not served here (the JavaScript
//! listener serves them).
//!
//! Order: once a frame of a connection is handed to the dispatcher, every
//! later frame of it is too, until the dispatcher says it has handled them
//! all ([`Listener::handled`]); so a connection's requests take effect in
//! the order they were sent, whichever side answers them.
//!
//! Limits (docs/protocol.md "Limits"): connections over `max_connections`
//! get a `LimitError` and are closed; a frame over `max_frame_bytes`, a
//! handshake not finished within `handshake`, and a frame begun and not
//! finished within `frame_timeout` close the connection; a connection
//! silent for `idle` is reported to the dispatcher ([`Sink::idle`]), which
//! closes it unless it holds something open; a connection with more than
//! [`HIGH_WATER`] bytes of answers unsent is not read until they drain.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use in_mem_engine::Engine;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use sha2::{Digest, Sha256};

use crate::counters::{ACCEPTED, BYTES_IN, BYTES_OUT, CONNECTIONS, Counters, DROPPED, REFUSED};
use crate::msgpack::Reader;
use crate::{Frames, PROTOCOL_VERSION, Routed, Stop};

/// Unsent answers past which a connection is no longer read.
pub const HIGH_WATER: usize = 8 * 1024 * 1024;
/// Batches of frames handed to the dispatcher and not yet taken in, past
/// which a connection is not read: the dispatcher's thread sets the pace.
const MAX_OUTSTANDING: u32 = 8;
/// How long a closing connection may take to drain before it is dropped.
const LINGER: Duration = Duration::from_secs(1);

const UNIX: Token = Token(0);
const TCP: Token = Token(1);
const WAKE: Token = Token(2);
pub(crate) const FIRST_CONN: usize = 3;

/// What the listener needs to know.
#[derive(Debug, Clone)]
pub struct Config {
    pub max_connections: usize,
    pub max_frame_bytes: u32,
    pub handshake: Duration,
    pub frame_timeout: Duration,
    pub idle: Duration,
    /// SHA-256 of the token clients must present, if any.
    pub token: Option<[u8; 32]>,
    /// Whether writes may be answered here. Off in strict mode, where the
    /// dispatcher holds answers until one fsync covers them.
    pub hot_writes: bool,
}

/// Where the listener tells the dispatcher things. Called on the I/O thread.
pub trait Sink: Send + 'static {
    /// Frames for the dispatcher: their bodies one after another, and where
    /// each ends. The dispatcher calls [`Listener::handled`] once it has
    /// taken them in.
    fn frames(&self, conn: u64, bodies: Vec<u8>, ends: Vec<u32>);
    /// The connection is gone (closed by either side); its session ends.
    fn closed(&self, conn: u64);
    /// Nothing came or went for the idle time; the dispatcher closes it
    /// unless it holds a transaction, view or watch, or waits for an answer.
    fn idle(&self, conn: u64);
    /// The answers waiting to be sent fell back under [`HIGH_WATER`] after
    /// a [`Listener::send`] found them over it.
    fn drained(&self, conn: u64);
}

enum Command {
    Handled(u64),
    Pause(u64, bool),
    Close(u64),
    Shutdown,
}

/// What the dispatcher's thread and the I/O thread share of one
/// connection: its socket, and the answers not yet written to it. Both
/// write answers through [`Shared::write`], in the order they take its lock,
/// straight to the socket when nothing is queued (an answer from the
/// dispatcher needs no hop through the I/O thread); what the socket does not
/// take is queued, and the I/O thread writes it when the socket is writable
/// again.
struct Shared {
    stream: Stream,
    out: Mutex<Outbox>,
    /// Bytes queued (the outbox's length), readable without its lock.
    queued: AtomicUsize,
    /// A `send` found `queued` over [`HIGH_WATER`]: report when it drains.
    want_drain: AtomicBool,
}

#[derive(Default)]
struct Outbox {
    buf: Vec<u8>,
    /// How much of `buf` is written.
    sent: usize,
    /// The socket failed a write: the connection is gone.
    failed: bool,
}

impl Shared {
    /// Writes `bytes` after whatever is queued; returns the bytes queued now.
    fn write(&self, bytes: &[u8]) -> usize {
        let mut out = self.out.lock().unwrap();
        let mut written = 0;
        if out.sent == out.buf.len() && !out.failed {
            out.buf.clear();
            out.sent = 0;
            written = self.write_some(bytes, &mut out.failed);
        }
        out.buf.extend_from_slice(&bytes[written..]);
        let queued = out.buf.len() - out.sent;
        self.queued.store(queued, Ordering::Release);
        queued
    }

    /// Writes what is queued, as far as the socket takes it; returns the
    /// bytes still queued, or `None` once the socket has failed.
    fn flush(&self) -> Option<usize> {
        let mut out = self.out.lock().unwrap();
        let Outbox { buf, sent, failed } = &mut *out;
        if *sent < buf.len() && !*failed {
            *sent += self.write_some(&buf[*sent..], failed);
        }
        if *sent == buf.len() {
            buf.clear();
            *sent = 0;
        } else if *sent >= 1 << 20 {
            buf.drain(..*sent);
            *sent = 0;
        }
        let queued = buf.len() - *sent;
        self.queued.store(queued, Ordering::Release);
        (!*failed).then_some(queued)
    }

    /// Writes until the socket would block; returns how much it took.
    fn write_some(&self, bytes: &[u8], failed: &mut bool) -> usize {
        let mut written = 0;
        while written < bytes.len() {
            match self.stream.write(&bytes[written..]) {
                Ok(0) => {
                    *failed = true;
                    break;
                }
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    *failed = true;
                    break;
                }
            }
        }
        written
    }
}

/// A running listener. Dropping it shuts it down.
pub struct Listener {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    shared: Arc<Mutex<HashMap<u64, Arc<Shared>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts serving on the listeners given (already bound).
    pub fn start(
        unix: Option<std::os::unix::net::UnixListener>,
        tcp: Option<std::net::TcpListener>,
        engine: Weak<Engine>,
        config: Config,
        sink: Box<dyn Sink>,
        counters: Counters,
    ) -> io::Result<Listener> {
        let poll = Poll::new()?;
        let unix = unix
            .map(|l| -> io::Result<UnixListener> {
                l.set_nonblocking(true)?;
                Ok(UnixListener::from_std(l))
            })
            .transpose()?;
        let tcp = tcp
            .map(|l| -> io::Result<TcpListener> {
                l.set_nonblocking(true)?;
                Ok(TcpListener::from_std(l))
            })
            .transpose()?;
        let mut io = Io {
            unix,
            tcp,
            conns: HashMap::new(),
            next: FIRST_CONN as u64,
            engine,
            config,
            sink,
            counters,
            shared: Arc::new(Mutex::new(HashMap::new())),
            answers: Vec::new(),
            poll,
        };
        if let Some(l) = &mut io.unix {
            io.poll.registry().register(l, UNIX, Interest::READABLE)?;
        }
        if let Some(l) = &mut io.tcp {
            io.poll.registry().register(l, TCP, Interest::READABLE)?;
        }
        let waker = Arc::new(Waker::new(io.poll.registry(), WAKE)?);
        let (commands, rx) = channel();
        let shared = io.shared.clone();
        let thread = std::thread::Builder::new().name("in-mem-listener".into()).spawn(move || io.run(rx))?;
        Ok(Listener { commands, waker, shared, thread: Some(thread) })
    }

    fn command(&self, c: Command) {
        if self.commands.send(c).is_ok() {
            let _ = self.waker.wake();
        }
    }

    /// Sends answer frames on a connection (gone: nothing happens). Returns
    /// whether its unsent answers are now over [`HIGH_WATER`]; the sink's
    /// `drained` says when they are not.
    pub fn send(&self, conn: u64, frames: &[u8]) -> bool {
        let Some(s) = self.shared.lock().unwrap().get(&conn).cloned() else { return false };
        let over = s.write(frames) > HIGH_WATER;
        if over {
            s.want_drain.store(true, Ordering::Release);
        }
        over
    }

    /// The answer bytes waiting to be written to `conn`, if it is open.
    pub fn queued(&self, conn: u64) -> Option<usize> {
        self.shared.lock().unwrap().get(&conn).map(|s| s.queued.load(Ordering::Acquire))
    }

    /// The dispatcher has taken in one batch of frames of `conn`.
    pub fn handled(&self, conn: u64) {
        self.command(Command::Handled(conn));
    }

    /// Stops (or resumes) reading `conn` (too many requests waiting for answers).
    pub fn pause(&self, conn: u64, paused: bool) {
        self.command(Command::Pause(conn, paused));
    }

    /// Closes `conn` once its answers are sent.
    pub fn close(&self, conn: u64) {
        self.command(Command::Close(conn));
    }

    /// Stops listening, closes every connection and waits for the thread.
    pub fn shutdown(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.command(Command::Shutdown);
            let _ = thread.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shutdown();
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).write(buf),
            Stream::Tcp(s) => (&*s).write(buf),
        }
    }
    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Unix(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }
    fn shutdown_write(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
        };
    }
}

struct Conn {
    id: u64,
    /// Counted among the open connections (not one refused over the limit).
    counted: bool,
    frames: Frames,
    shared: Arc<Shared>,
    hello: bool,
    accepted: Instant,
    active: Instant,
    /// Since when a frame has been begun and not finished.
    partial: Option<Instant>,
    /// Batches handed to the dispatcher and not yet handled.
    outstanding: u32,
    paused: bool,
    /// Closing: no more reading of requests; dropped once the answers are
    /// out and the peer has closed, or after [`LINGER`].
    closing: Option<Instant>,
    dead: bool,
}

struct Io {
    unix: Option<UnixListener>,
    tcp: Option<TcpListener>,
    conns: HashMap<u64, Conn>,
    next: u64,
    engine: Weak<Engine>,
    config: Config,
    sink: Box<dyn Sink>,
    counters: Counters,
    shared: Arc<Mutex<HashMap<u64, Arc<Shared>>>>,
    /// Scratch for the hot answers of one read.
    answers: Vec<u8>,
    poll: Poll,
}

impl Io {
    fn run(mut self, commands: Receiver<Command>) {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 64 * 1024];
        let mut touched = Vec::new();
        loop {
            let timeout = self.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            touched.clear();
            for event in events.iter() {
                match event.token() {
                    UNIX | TCP => self.accept(event.token()),
                    WAKE => {}
                    Token(t) => touched.push(t as u64),
                }
            }
            loop {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.close_all();
                        return;
                    }
                    Ok(c) => self.command(c, &mut touched),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                }
            }
            touched.sort_unstable();
            touched.dedup();
            for &conn in &touched {
                self.service(conn, &mut buf);
            }
            self.timers();
        }
    }

    fn command(&mut self, c: Command, touched: &mut Vec<u64>) {
        match c {
            Command::Handled(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.outstanding = c.outstanding.saturating_sub(1);
                    if c.outstanding + 1 == MAX_OUTSTANDING {
                        touched.push(conn);
                    }
                }
            }
            Command::Pause(conn, paused) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.paused = paused;
                    touched.push(conn);
                }
            }
            Command::Close(conn) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.closing.get_or_insert_with(Instant::now);
                    touched.push(conn);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn accept(&mut self, which: Token) {
        loop {
            let accepted = match which {
                UNIX => match &self.unix {
                    Some(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
                    None => return,
                },
                _ => match &self.tcp {
                    Some(l) => l.accept().map(|(s, _)| {
                        let _ = s.set_nodelay(true);
                        Stream::Tcp(s)
                    }),
                    None => return,
                },
            };
            let stream = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return, // WouldBlock, or out of descriptors: try at the next event
            };
            // Over the limit: the connection is told why and closed, after it
            // has had the time to read that (closing it at once could fail
            // the client's first write before it reads the answer).
            let refused = self.conns.values().filter(|c| c.counted && c.closing.is_none()).count() >= self.config.max_connections;
            let id = self.next;
            self.next += 1;
            if self.poll.registry().register(&mut SourceFd(&stream.fd()), Token(id as usize), Interest::READABLE | Interest::WRITABLE).is_err() {
                continue;
            }
            let shared = Arc::new(Shared { stream, out: Mutex::default(), queued: AtomicUsize::new(0), want_drain: AtomicBool::new(false) });
            self.shared.lock().unwrap().insert(id, shared.clone());
            let now = Instant::now();
            if refused {
                self.counters.add(REFUSED, 1.0);
                let max = self.config.max_connections;
                let mut out = Vec::new();
                error_frame(&mut out, "LimitError", "LIMIT_EXCEEDED", &format!("the owner serves at most {max} connections"), &[("limit", max as u64)]);
                self.counters.add(BYTES_OUT, out.len() as f64);
                shared.write(&out);
            }
            self.conns.insert(
                id,
                Conn {
                    id,
                    counted: !refused,
                    frames: Frames::new(self.config.max_frame_bytes),
                    shared,
                    hello: false,
                    accepted: now,
                    active: now,
                    partial: None,
                    outstanding: 0,
                    paused: false,
                    closing: refused.then_some(now),
                    dead: false,
                },
            );
            if !refused {
                self.counters.add(CONNECTIONS, 1.0);
                self.counters.add(ACCEPTED, 1.0);
            }
        }
    }

    /// Reads what the connection has sent, answers it, and writes what is due.
    fn service(&mut self, id: u64, buf: &mut [u8]) {
        let Some(mut c) = self.conns.remove(&id) else { return };
        self.flush(&mut c);
        // Frames read before and left for want of room in the output.
        if c.closing.is_none() && c.frames.pending() > 0 && c.shared.queued.load(Ordering::Acquire) <= HIGH_WATER {
            self.frames(&mut c);
            self.flush(&mut c);
        }
        loop {
            if c.dead {
                break;
            }
            if c.closing.is_none() && (c.paused || c.outstanding >= MAX_OUTSTANDING || c.shared.queued.load(Ordering::Acquire) > HIGH_WATER) {
                break;
            }
            match c.shared.stream.read(buf) {
                Ok(0) => {
                    c.dead = true;
                }
                Ok(n) => {
                    self.counters.add(BYTES_IN, n as f64);
                    c.active = Instant::now();
                    if c.closing.is_none() {
                        c.frames.extend(&buf[..n]);
                        self.frames(&mut c);
                        self.flush(&mut c);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => c.dead = true,
            }
        }
        if let Some(since) = c.closing
            && c.shared.queued.load(Ordering::Acquire) == 0
        {
            c.shared.stream.shutdown_write();
            c.dead |= since.elapsed() >= LINGER;
        }
        if c.dead {
            self.remove(c);
        } else {
            self.conns.insert(id, c);
        }
    }

    /// Cuts the connection's bytes into frames: the handshake, then hot
    /// requests answered here and the rest handed on.
    fn frames(&mut self, c: &mut Conn) {
        let mut routed = Routed { answers: std::mem::take(&mut self.answers), ..Routed::default() };
        routed.answers.clear();
        let mut stop = Stop::Read;
        if !c.hello {
            match c.frames.next_frame() {
                Ok(Some(range)) => match handshake(&c.frames.bytes()[range], self.config.token.as_ref()) {
                    Ok(()) => {
                        c.hello = true;
                        hello_frame(&mut routed.answers);
                    }
                    Err(refusal) => {
                        match refusal {
                            Refusal::Drop => self.counters.add(DROPPED, 1.0),
                            Refusal::Answer(frame) => {
                                self.counters.add(REFUSED, 1.0);
                                routed.answers.extend_from_slice(&frame);
                            }
                        }
                        c.closing = Some(Instant::now());
                    }
                },
                Ok(None) => {}
                Err(e) => stop = Stop::TooLarge(e),
            }
        }
        if c.hello && c.closing.is_none() && matches!(stop, Stop::Read) {
            // Answers past the high-water mark wait: the frames after them
            // stay unread in `frames` until the client has taken some.
            let queued = c.shared.queued.load(Ordering::Acquire);
            stop = match HIGH_WATER.checked_sub(queued) {
                None => Stop::Full,
                Some(room) => routed.take(&mut c.frames, self.engine.upgrade().as_deref(), self.config.hot_writes, c.outstanding > 0, room, &mut self.counters),
            };
        }
        if let Stop::TooLarge(e) = stop {
            error_frame(
                &mut routed.answers,
                "LimitError",
                "LIMIT_EXCEEDED",
                &format!("a frame of {} bytes is over the limit of {}", e.length, e.limit),
                &[("limit", e.limit as u64), ("size", e.length as u64)],
            );
            self.counters.add(DROPPED, 1.0);
            c.closing = Some(Instant::now());
        }
        c.partial = if c.frames.pending() == 0 || matches!(stop, Stop::Full) { None } else { Some(c.partial.unwrap_or_else(Instant::now)) };
        if !routed.answers.is_empty() {
            self.counters.add(BYTES_OUT, routed.answers.len() as f64);
            c.shared.write(&routed.answers);
            c.active = Instant::now();
        }
        if !routed.ends.is_empty() {
            c.outstanding += 1;
            self.sink.frames(c.id, routed.bodies, routed.ends);
        }
        self.answers = routed.answers;
    }

    /// Writes what the socket would not take before.
    fn flush(&mut self, c: &mut Conn) {
        let before = c.shared.queued.load(Ordering::Acquire);
        match c.shared.flush() {
            None => c.dead = true,
            Some(after) => {
                if after < before {
                    c.active = Instant::now();
                }
                if after <= HIGH_WATER && c.shared.want_drain.swap(false, Ordering::AcqRel) {
                    self.sink.drained(c.id);
                }
            }
        }
    }

    fn remove(&mut self, c: Conn) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&c.shared.stream.fd()));
        self.shared.lock().unwrap().remove(&c.id);
        if c.counted {
            self.counters.add(CONNECTIONS, -1.0);
            self.sink.closed(c.id);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for c in self.conns.values() {
            if let Some(since) = c.closing {
                at(since + LINGER);
                continue;
            }
            if !c.hello {
                at(c.accepted + self.config.handshake);
            }
            if let Some(p) = c.partial {
                at(p + self.config.frame_timeout);
            }
            if c.hello {
                at(c.active + self.config.idle);
            }
        }
        next
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let mut expired = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            if let Some(since) = c.closing {
                if now >= since + LINGER {
                    expired.push(id);
                }
                continue;
            }
            let late_hello = !c.hello && now >= c.accepted + self.config.handshake;
            let late_frame = c.partial.is_some_and(|p| now >= p + self.config.frame_timeout);
            if late_hello || late_frame {
                self.counters.add(DROPPED, 1.0);
                expired.push(id);
            } else if c.hello && now >= c.active + self.config.idle {
                c.active = now;
                self.sink.idle(id);
            }
        }
        for id in expired {
            if let Some(c) = self.conns.remove(&id) {
                self.remove(c);
            }
        }
    }

    fn close_all(&mut self) {
        for (_, mut c) in std::mem::take(&mut self.conns) {
            self.flush(&mut c);
            self.remove(c);
        }
    }
}

enum Refusal {
    /// Not a handshake at all: close without a word.
    Drop,
    /// A handshake refused: send this and close.
    Answer(Vec<u8>),
}

/// Checks a client's first frame, `{ inMem: 1, token? }`. Both tokens are
/// hashed before they are compared, and the digests compared in constant
/// time, so a refusal takes the same time whatever part of the token was right.
fn handshake(body: &[u8], token: Option<&[u8; 32]>) -> Result<(), Refusal> {
    let mut r = Reader::new(body);
    let mut version = None;
    let mut given: &str = "";
    let Some(n) = r.map() else {
        return Err(if Reader::new(body).skip().is_some() { refused_version() } else { Refusal::Drop });
    };
    for _ in 0..n {
        let key = r.str().ok_or(Refusal::Drop)?;
        match key {
            "inMem" => {
                let at = r.position();
                version = r.uint();
                if version.is_none() {
                    r.seek(at);
                    r.skip().ok_or(Refusal::Drop)?;
                }
            }
            // Anything but a string (`undefined`: no token) is no token.
            "token" => {
                let at = r.position();
                match r.str() {
                    Some(t) => given = t,
                    None => {
                        r.seek(at);
                        r.skip().ok_or(Refusal::Drop)?;
                    }
                }
            }
            _ => r.skip().ok_or(Refusal::Drop)?,
        }
    }
    if version != Some(PROTOCOL_VERSION) {
        return Err(refused_version());
    }
    if let Some(want) = token {
        let got: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        let diff = got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            let mut frame = Vec::new();
            error_frame(&mut frame, "ConnectionError", "CONNECTION", "the owner refused the connection: wrong or missing token", &[]);
            return Err(Refusal::Answer(frame));
        }
    }
    Ok(())
}

/// Whether `body` is a handshake the listener accepts with `token` (its
/// SHA-256) required; else the frame it answers with (`None`: it closes
/// without a word). For the fuzz target and tests.
pub fn check_handshake(body: &[u8], token: Option<&[u8; 32]>) -> Result<(), Option<Vec<u8>>> {
    handshake(body, token).map_err(|r| match r {
        Refusal::Drop => None,
        Refusal::Answer(frame) => Some(frame),
    })
}

fn refused_version() -> Refusal {
    let mut frame = Vec::new();
    error_frame(
        &mut frame,
        "InvalidArgumentError",
        "INVALID_ARGUMENT",
        &format!("this server speaks in-mem protocol {PROTOCOL_VERSION}; the client sent a handshake it does not know"),
        &[],
    );
    Refusal::Answer(frame)
}

/// `{ inMem: 1, server: 'in-mem' }`, framed, appended to `out`.
fn hello_frame(out: &mut Vec<u8>) {
    framed(out, |body| {
        body.push(0x82);
        str_into(body, "inMem");
        body.push(PROTOCOL_VERSION as u8);
        str_into(body, "server");
        str_into(body, "in-mem");
    });
}

/// `[0, 1, { name, code, message, details }]`, framed, appended to `out`:
/// an error about the connection itself (docs/protocol.md).
pub fn error_frame(out: &mut Vec<u8>, name: &str, code: &str, message: &str, details: &[(&str, u64)]) {
    framed(out, |body| {
        body.extend_from_slice(&[0x93, 0x00, 0x01, 0x84]);
        for (k, v) in [("name", name), ("code", code), ("message", message)] {
            str_into(body, k);
            str_into(body, v);
        }
        str_into(body, "details");
        body.push(0x80 | details.len() as u8);
        for (k, v) in details {
            str_into(body, k);
            crate::msgpack::write_number(body, *v);
        }
    });
}

/// Appends a frame whose body `write` appends: its length is filled in after.
fn framed(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

fn str_into(out: &mut Vec<u8>, s: &str) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n < 256 {
        out.extend_from_slice(&[0xd9, n as u8]);
    } else {
        out.push(0xda);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}
