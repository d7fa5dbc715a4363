//! Server mode's listener as a JS class: `NativeServer` binds the Unix
//! socket and/or the TCP port and runs `in_mem_wire::Listener`'s I/O thread,
//! which answers the hot requests itself and calls back into the thread
//! that made it (the serving thread) for everything else.

use std::sync::Arc;
use std::time::Duration;

use in_mem_wire::{Config, Counters, Listener, Sink};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi_derive::napi;
use sha2::{Digest, Sha256};

use crate::database::NativeDatabase;
use crate::errors::invalid;

/// What the listener needs (`src/server/listener.ts` fills in the defaults).
#[napi(object)]
pub struct NativeServeOptions {
    /// The Unix socket to bind (the caller moves it into place).
    pub socket: Option<String>,
    /// The TCP host and port to bind (port 0: any free one).
    pub host: Option<String>,
    pub port: Option<u32>,
    pub token: Option<String>,
    pub max_connections: u32,
    pub max_frame_bytes: u32,
    pub handshake_ms: u32,
    pub frame_timeout_ms: u32,
    pub idle_ms: u32,
    /// Whether writes are answered on the I/O thread (not in strict mode).
    pub hot_writes: bool,
}

/// `(kind, conn, bodies, ends)`: kind 0 frames (`bodies` one after another,
/// `ends` where each ends), 1 the connection closed, 2 it has been idle, 3
/// its unsent answers drained.
type Callback = ThreadsafeFunction<
    FnArgs<(u32, f64, Option<Buffer>, Option<Vec<u32>>)>,
    UnknownReturnValue,
    FnArgs<(u32, f64, Option<Buffer>, Option<Vec<u32>>)>,
    Status,
    false,
>;

struct Calls(Arc<Callback>);

impl Calls {
    fn call(&self, kind: u32, conn: u64, bodies: Option<Vec<u8>>, ends: Option<Vec<u32>>) {
        self.0.call((kind, conn as f64, bodies.map(Buffer::from), ends).into(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

impl Sink for Calls {
    fn frames(&self, conn: u64, bodies: Vec<u8>, ends: Vec<u32>) {
        self.call(0, conn, Some(bodies), Some(ends));
    }
    fn closed(&self, conn: u64) {
        self.call(1, conn, None, None);
    }
    fn idle(&self, conn: u64) {
        self.call(2, conn, None, None);
    }
    fn drained(&self, conn: u64) {
        self.call(3, conn, None, None);
    }
}

/// A running listener.
#[napi]
pub struct NativeServer {
    listener: Option<Listener>,
    /// The counter table the I/O thread writes: held here so that its
    /// memory lives until the thread is joined.
    _counters: Float64Array,
    tcp: Option<String>,
}

#[napi]
impl NativeServer {
    /// Binds and starts serving `db`. `counters` is the table the listener
    /// writes (its own: no other writer), `ops` the latency table's index
    /// of each operation `NativeWire.hotOps()` names.
    #[napi(
        constructor,
        ts_args_type = "db: NativeDatabase, opts: NativeServeOptions, counters: Float64Array, ops: number[], callback: (kind: number, conn: number, bodies?: Buffer | null, ends?: number[] | null) => void"
    )]
    pub fn new(db: &NativeDatabase, opts: NativeServeOptions, counters: Float64Array, ops: Vec<i32>, callback: Callback) -> Result<NativeServer> {
        let engine = Arc::downgrade(&db.engine()?);
        let unix = match &opts.socket {
            Some(path) => Some(std::os::unix::net::UnixListener::bind(path).map_err(|e| invalid(format!("cannot listen on {path}: {e}")))?),
            None => None,
        };
        let tcp = match (&opts.host, opts.port) {
            (Some(host), Some(port)) => {
                Some(std::net::TcpListener::bind((host.as_str(), port as u16)).map_err(|e| invalid(format!("cannot listen on {host}:{port}: {e}")))?)
            }
            _ => None,
        };
        let tcp_addr = match &tcp {
            Some(l) => Some(l.local_addr().map_err(|e| invalid(e.to_string()))?.to_string()),
            None => None,
        };
        // SAFETY: `counters` is kept in the returned object, whose `close`
        // (or drop) joins the I/O thread before it lets go of the table, and
        // the serving side writes the other half of the counters, not this.
        let table = unsafe { Counters::new(counters.as_ptr() as *mut f64, counters.len(), &ops) };
        let config = Config {
            max_connections: opts.max_connections as usize,
            max_frame_bytes: opts.max_frame_bytes,
            handshake: Duration::from_millis(opts.handshake_ms as u64),
            frame_timeout: Duration::from_millis(opts.frame_timeout_ms as u64),
            idle: Duration::from_millis(opts.idle_ms as u64),
            token: opts.token.as_ref().map(|t| Sha256::digest(t.as_bytes()).into()),
            hot_writes: opts.hot_writes,
        };
        let listener = Listener::start(unix, tcp, engine, config, Box::new(Calls(Arc::new(callback))), table)
            .map_err(|e| invalid(format!("cannot start the listener: {e}")))?;
        Ok(NativeServer { listener: Some(listener), _counters: counters, tcp: tcp_addr })
    }

    /// The TCP address bound (`host:port`), or `null`.
    #[napi(getter)]
    pub fn tcp_address(&self) -> Option<String> {
        self.tcp.clone()
    }

    /// Sends answer frames on a connection; `true` when its unsent answers
    /// are over the high-water mark (the callback says when they drain).
    #[napi]
    pub fn send(&self, conn: f64, frames: &[u8]) -> bool {
        self.listener.as_ref().is_some_and(|l| l.send(conn as u64, frames))
    }

    /// The frames of one callback have been taken in.
    #[napi]
    pub fn handled(&self, conn: f64) {
        if let Some(l) = &self.listener {
            l.handled(conn as u64);
        }
    }

    /// Stops or resumes reading a connection.
    #[napi]
    pub fn pause(&self, conn: f64, paused: bool) {
        if let Some(l) = &self.listener {
            l.pause(conn as u64, paused);
        }
    }

    /// Closes a connection once its answers are out.
    #[napi]
    pub fn close_connection(&self, conn: f64) {
        if let Some(l) = &self.listener {
            l.close(conn as u64);
        }
    }

    /// Stops listening and closes every connection; returns once the I/O
    /// thread has ended.
    #[napi(catch_unwind)]
    pub fn close(&mut self) {
        if let Some(mut l) = self.listener.take() {
            l.shutdown();
        }
    }
}
