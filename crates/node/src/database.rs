use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use in_mem_engine::{Durability, Engine, KvDb, OpenOptions, RunAction, RunListOptions, RunStatus};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunctionCallMode;
use napi_derive::napi;
use serde_json::json;

use crate::IO_VALUE_OFFSET;
use crate::convert::{NativeRunInfo, described, keys_of, list_options, pack_entries, parse_run, ttl_of};
use crate::errors::{IntoNapi, invalid};
use crate::hot::{DurableCallback, DurableSubscription, Slot};
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeOpenOptions {
    pub durability: Option<String>,
    pub flush_interval_ms: Option<f64>,
    pub max_pending_writes: Option<f64>,
    pub segment_bytes: Option<f64>,
    pub purge_interval_ms: Option<f64>,
    pub checkpoint_bytes: Option<f64>,
    pub checkpoint_on_close: Option<bool>,
    pub repair: Option<bool>,
    pub watch_buffer: Option<f64>,
    pub read_only: Option<bool>,
    /// Versions kept per key (`history: { keep }`).
    pub history_keep: Option<f64>,
    /// Ended runs leave memory after this many ms (-1: never).
    pub cold_after_ms: Option<f64>,
}

fn positive(name: &str, v: Option<f64>) -> Result<Option<f64>> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(invalid(format!("{name} must be a positive number"))),
        other => Ok(other),
    }
}

/// Writes a read's answer into `out` (the I/O buffer from
/// `IO_VALUE_OFFSET` on): `[version f64][updatedAt f64][payload]` when
/// `versioned`, else the payload alone. Returns the payload length, or the
/// length without writing when it does not fit (the caller grows the buffer
/// and asks again).
#[napi]
pub struct NativeDatabase {
    slot: Arc<Slot>,
}

impl Drop for NativeDatabase {
    fn drop(&mut self) {
        self.slot.durable.borrow_mut().take();
        self.slot.freed.borrow_mut().take();
    }
}

impl NativeDatabase {
    pub(crate) fn engine(&self) -> Result<Arc<Engine>> {
        self.slot.engine()
    }

    pub(crate) fn slot(&self) -> Arc<Slot> {
        self.slot.clone()
    }
}

#[napi]
impl NativeDatabase {
    #[napi(factory, catch_unwind)]
    pub fn open(path: Option<String>, options: Option<NativeOpenOptions>) -> Result<NativeDatabase> {
        let mut opts = OpenOptions::default();
        let o = options.unwrap_or(NativeOpenOptions {
            durability: None,
            flush_interval_ms: None,
            max_pending_writes: None,
            segment_bytes: None,
            purge_interval_ms: None,
            checkpoint_bytes: None,
            checkpoint_on_close: None,
            repair: None,
            watch_buffer: None,
            read_only: None,
            history_keep: None,
            cold_after_ms: None,
        });
        opts.durability = match (&o.durability, &path) {
            (Some(d), _) => Durability::parse(d).napi()?,
            (None, Some(_)) => Durability::Buffered,
            (None, None) => Durability::Memory,
        };
        if let Some(ms) = positive("flushIntervalMs", o.flush_interval_ms)? {
            opts.flush_interval = Duration::from_secs_f64(ms / 1000.0);
        }
        if let Some(n) = positive("maxPendingWrites", o.max_pending_writes)? {
            opts.max_pending_writes = n as usize;
        }
        if let Some(n) = positive("segmentBytes", o.segment_bytes)? {
            if n < 4096.0 {
                return Err(invalid("segmentBytes must be at least 4096"));
            }
            opts.segment_bytes = n as u64;
        }
        if let Some(ms) = positive("purgeIntervalMs", o.purge_interval_ms)? {
            opts.purge_interval = Duration::from_secs_f64(ms / 1000.0);
        }
        if let Some(n) = o.checkpoint_bytes {
            if !(n.is_finite() && n >= 0.0 && n.fract() == 0.0) {
                return Err(invalid(format!("checkpointBytes must be a non-negative integer (0: never automatically), not {n}")));
            }
            opts.checkpoint_bytes = n as u64;
        }
        if let Some(b) = o.checkpoint_on_close {
            opts.checkpoint_on_close = b;
        }
        opts.repair = o.repair.unwrap_or(false);
        opts.read_only = o.read_only.unwrap_or(false);
        if let Some(n) = positive("watchBuffer", o.watch_buffer)? {
            opts.watch_buffer = n as usize;
        }
        if let Some(n) = positive("history.keep", o.history_keep)? {
            opts.history_keep = Some(n as usize);
        }
        match o.cold_after_ms {
            None => {}
            Some(-1.0) => opts.cold_after_ms = None,
            Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 => opts.cold_after_ms = Some(n as u64),
            Some(n) => return Err(invalid(format!("coldAfterMs must be a non-negative integer or Infinity (never), not {n}"))),
        }
        if let Some(p) = &path
            && p.is_empty()
        {
            return Err(invalid("path must not be empty"));
        }
        crate::set_up_allocator();
        let engine = Engine::open(path.as_deref().map(Path::new), opts).napi()?;
        // Recovery's scratch (a WAL's decoded records, a manifest's lines)
        // goes back to the OS now, on the thread that allocated it (a
        // memory database recovers nothing).
        if path.is_some() {
            crate::release_freed_memory();
        }
        Ok(NativeDatabase { slot: Slot::new(engine) })
    }

    /// Makes this handle's writes durable and lets go of the engine; the
    /// engine shuts down when its last handle closes.
    #[napi(catch_unwind)]
    pub fn close(&self) -> Result<()> {
        self.slot.durable.borrow_mut().take();
        self.slot.freed.borrow_mut().take();
        if let Some(handle) = self.slot.take() {
            handle.flush().napi()?;
            // The last handle shuts the engine down here, before close returns.
            handle.close().napi()?;
            // What the engine held goes back to the OS (on the thread that
            // allocated most of it).
            crate::release_freed_memory();
        }
        Ok(())
    }

    #[napi(getter)]
    pub fn is_open(&self) -> bool {
        self.slot.is_open()
    }

    /// The hot calls bound to this handle (see `hot.rs`).
    #[napi(
        ts_return_type = "{ get(keyLen: number, versioned: 0 | 1): number | string | Buffer; put(keyLen: number, valueLen: number, ttlMs: number): number; exists(keyLen: number): boolean; delete(keyLen: number): boolean; stateGet(keyLen: number): number | string | Buffer; stateSet(keyLen: number, valueLen: number): number; jsonGet(keyLen: number, pathLen: number): number; isOpen(): boolean; requestDurable(version: number): boolean }"
    )]
    pub fn hot_functions<'env>(&self, env: &'env Env) -> Result<Unknown<'env>> {
        crate::hot::hot_functions(env, &self.slot)
    }

    /// A transaction's hot calls, each called as a method of a
    /// `NativeTransaction` (see `transaction.rs`).
    #[napi(
        ts_return_type = "{ kvGet(this: NativeTransaction, keyLen: number, versioned: 0 | 1): number | string | Buffer; kvPut(this: NativeTransaction, keyLen: number, valueLen: number, ttlMs: number): void; commit(this: NativeTransaction, wait: 0 | 1): number; restart(this: NativeTransaction): void }"
    )]
    pub fn transaction_functions<'env>(env: &'env Env) -> Result<Unknown<'env>> {
        crate::transaction::transaction_functions(env)
    }

    /// Registers the I/O buffer of the hot functions. The caller keeps it
    /// alive until it registers another.
    #[napi]
    pub fn register_io(&self, mut io: BufferSlice<'_>) -> Result<()> {
        if io.len() < 2 * IO_VALUE_OFFSET {
            return Err(invalid("the I/O buffer must be at least 8 KiB"));
        }
        self.slot.register_io(&mut io);
        Ok(())
    }

    #[napi(catch_unwind)]
    pub fn kv_put_many(&self, run: String, keys: Vec<String>, values: Vec<Buffer>, ttl_ms: f64) -> Result<f64> {
        if keys.len() != values.len() {
            return Err(invalid("putMany needs as many values as keys"));
        }
        let run = parse_run(&run)?;
        let entries: Vec<(Vec<u8>, Vec<u8>)> = keys.into_iter().map(String::into_bytes).zip(values.into_iter().map(|b| b.to_vec())).collect();
        self.engine()?.kv_put_many(&run, &entries, ttl_of(ttl_ms)?).napi().map(|v| v as f64)
    }

    /// Values of several keys read at one snapshot, packed as
    /// `[len u32 | payload]...` with `len = u32::MAX` for an absent key.
    /// The values of several keys of `run`, read at one snapshot, in the I/O
    /// buffer at `IO_VALUE_OFFSET`: for each, a u32 LE length (`u32::MAX`:
    /// absent) and the payload. The keys come in one string, joined by NUL (a key
    /// holds none): one string to convert and no new Buffer per call. Returns
    /// the answer's length; when it did not fit, nothing is written (the
    /// caller grows the buffer and calls again).
    #[napi(catch_unwind)]
    pub fn kv_get_many_into(&self, mut io: BufferSlice<'_>, run: String, keys: String) -> Result<i64> {
        let users: Vec<&[u8]> = keys.split('\0').map(str::as_bytes).collect();
        let mut out = Vec::new();
        self.engine()?
            .kv_get_many(&parse_run(&run)?, &users, |v| match v {
                Some(payload) => {
                    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
                    out.extend_from_slice(payload);
                }
                None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
            })
            .napi()?;
        Ok(crate::answer::to_io(&mut io, &out))
    }

    #[napi(catch_unwind)]
    pub fn kv_keys(&self, run: String, prefix: Option<String>, after: Option<String>, limit: Option<f64>, reverse: Option<bool>) -> Result<Vec<String>> {
        let opts = list_options(prefix, after, limit, reverse)?;
        Ok(keys_of(self.engine()?.kv_list(&parse_run(&run)?, &opts).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn kv_entries(&self, run: String, prefix: Option<String>, after: Option<String>, limit: Option<f64>, reverse: Option<bool>) -> Result<Buffer> {
        let opts = list_options(prefix, after, limit, reverse)?;
        Ok(pack_entries(&self.engine()?.kv_list(&parse_run(&run)?, &opts).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn kv_count(&self, run: String, prefix: Option<String>) -> Result<f64> {
        let prefix = prefix.map(String::into_bytes);
        self.engine()?.kv_count(&parse_run(&run)?, prefix.as_deref()).napi().map(|n| n as f64)
    }

    #[napi(catch_unwind)]
    pub fn run_begin(&self, name: Option<String>, parent: Option<String>, tags: Option<Vec<String>>, metadata: Option<Buffer>) -> Result<NativeRunInfo> {
        let parent = parent.as_deref().map(parse_run).transpose()?;
        let engine = self.engine()?;
        let info = engine.run_begin(name, parent, tags.unwrap_or_default(), metadata.map(|m| m.to_vec())).napi()?;
        Ok(described(&engine, info))
    }

    #[napi(catch_unwind)]
    pub fn run_update(&self, run: String, action: String, error: Option<String>) -> Result<NativeRunInfo> {
        let action = RunAction::parse(&action).napi()?;
        let engine = self.engine()?;
        Ok(described(&engine, engine.run_update(&parse_run(&run)?, action, error).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn run_edit(&self, run: String, tags: Option<Vec<String>>, metadata: Option<Buffer>) -> Result<NativeRunInfo> {
        let engine = self.engine()?;
        Ok(described(&engine, engine.run_edit(&parse_run(&run)?, tags, metadata.map(|m| Some(m.to_vec()))).napi()?))
    }

    /// Adds (`add`) or removes tags in one engine transaction.
    #[napi(catch_unwind)]
    pub fn run_tag(&self, run: String, tags: Vec<String>, add: bool) -> Result<NativeRunInfo> {
        let engine = self.engine()?;
        Ok(described(&engine, engine.run_tag(&parse_run(&run)?, tags, add).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn run_delete(&self, run: String) -> Result<bool> {
        self.engine()?.run_delete(&parse_run(&run)?).napi()
    }

    /// `run_get` with its answer in the I/O buffer (see `answer.rs`): its length, or -1.
    #[napi(catch_unwind)]
    pub fn run_get_into(&self, mut io: BufferSlice<'_>, run: String) -> Result<i64> {
        let engine = self.engine()?;
        Ok(engine.run_get(&parse_run(&run)?).napi()?.map_or(-1, |r| crate::answer::run(&mut io, &described(&engine, r))))
    }

    #[napi(catch_unwind)]
    pub fn run_list(
        &self,
        status: Option<String>,
        tag: Option<String>,
        parent: Option<String>,
        limit: Option<f64>,
        after: Option<String>,
    ) -> Result<Vec<NativeRunInfo>> {
        let limit = match limit {
            Some(l) if !(l.is_finite() && l >= 0.0 && l.fract() == 0.0) => return Err(invalid("limit must be a non-negative integer")),
            l => l.map(|l| l as usize),
        };
        let opts = RunListOptions {
            status: status.as_deref().map(RunStatus::parse).transpose().napi()?,
            tag,
            parent: parent.as_deref().map(parse_run).transpose()?,
            limit,
            after: after.as_deref().map(parse_run).transpose()?,
        };
        let engine = self.engine()?;
        Ok(engine.run_list(&opts).napi()?.into_iter().map(|r| described(&engine, r)).collect())
    }

    #[napi(catch_unwind)]
    pub fn run_children(&self, run: String) -> Result<Vec<NativeRunInfo>> {
        let engine = self.engine()?;
        Ok(engine.run_children(&parse_run(&run)?).napi()?.into_iter().map(|r| described(&engine, r)).collect())
    }

    #[napi(catch_unwind)]
    pub fn run_lineage(&self, run: String) -> Result<Vec<NativeRunInfo>> {
        let engine = self.engine()?;
        Ok(engine.run_lineage(&parse_run(&run)?).napi()?.into_iter().map(|r| described(&engine, r)).collect())
    }

    /// The single-operation handle: each call on it is its own transaction
    /// (see `NativeTransaction::run`).
    #[napi(catch_unwind)]
    pub fn single_operations(&self) -> Result<NativeTransaction> {
        self.slot.engine()?;
        Ok(NativeTransaction::single(self.slot.clone()))
    }

    #[napi(catch_unwind)]
    pub fn begin_transaction(&self) -> Result<NativeTransaction> {
        NativeTransaction::begin(self.slot.clone())
    }

    /// Resolves once `version` is durable for the mode (off the event loop).
    #[napi(catch_unwind)]
    pub fn wait_durable(&self, version: f64) -> Result<AsyncTask<Durable>> {
        Ok(AsyncTask::new(Durable { engine: self.engine()?, version: Some(version as u64) }))
    }

    /// Strict mode: `callback(durableVersion, null)` is called on this
    /// thread after each fsync of the WAL's syncer that covers a version this
    /// handle asked for with `requestDurable` (`callback(0, reason)` if the
    /// fsync failed), one call per fsync however many commits it covered.
    /// Replaces an earlier callback. The callback does not keep the event
    /// loop alive unless `durableRef(true)`. Returns `false` (and keeps no
    /// callback) in other modes, where every commit is durable for the mode
    /// when it returns.
    #[napi(catch_unwind, ts_args_type = "callback: (durableVersion: number, error?: string | null) => void")]
    pub fn durable_listen(&self, env: Env, callback: DurableCallback) -> Result<bool> {
        let engine = self.engine()?;
        self.slot.durable.borrow_mut().take();
        let want = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let told = std::sync::atomic::AtomicU64::new(0);
        let mut callback = callback;
        #[allow(deprecated)]
        callback.unref(&env)?;
        let callback = Arc::new(std::sync::Mutex::new(callback));
        let (w, cb) = (want.clone(), callback.clone());
        let subscriber: in_mem_engine::DurableSubscriber = Arc::new(move |report| {
            use std::sync::atomic::Ordering;
            let wanted = w.load(Ordering::Acquire);
            if wanted <= told.load(Ordering::Acquire) {
                return; // this handle waits for nothing the last call did not cover
            }
            let (version, error) = match report {
                Ok(v) => (v, None),
                Err(reason) => (wanted, Some(reason.to_string())),
            };
            told.fetch_max(version, Ordering::AcqRel);
            let args = match error {
                None => (version as f64, None),
                Some(reason) => (0.0, Some(reason)),
            };
            if let Ok(cb) = cb.lock() {
                cb.call(args.into(), ThreadsafeFunctionCallMode::NonBlocking);
            }
        });
        let Some(id) = engine.subscribe_durable(subscriber) else {
            return Ok(false);
        };
        *self.slot.durable.borrow_mut() = Some(DurableSubscription { id, engine: Arc::downgrade(&engine), callback, want });
        Ok(true)
    }

    /// `callback()` is called on this thread (never keeping the event loop
    /// alive) after the engine's maintenance freed memory this thread may
    /// have allocated (keys moved into the packed arena): it calls
    /// `releaseMemory`, so that the allocator gives those pages back to the
    /// OS (it does so only on the thread that allocated them). Replaces an
    /// earlier callback.
    #[napi(catch_unwind, ts_args_type = "callback: () => void")]
    pub fn freed_listen(&self, env: Env, callback: crate::hot::FreedCallback) -> Result<()> {
        let engine = self.engine()?;
        self.slot.freed.borrow_mut().take();
        let mut callback = callback;
        #[allow(deprecated)]
        callback.unref(&env)?;
        let callback = std::sync::Mutex::new(callback);
        let id = engine.subscribe_freed(Arc::new(move || {
            if let Ok(cb) = callback.lock() {
                cb.call((), ThreadsafeFunctionCallMode::NonBlocking);
            }
        }));
        *self.slot.freed.borrow_mut() = Some(crate::hot::FreedSubscription { id, engine: Arc::downgrade(&engine) });
        Ok(())
    }

    /// Gives the memory this thread's allocator holds free back to the OS.
    #[napi(catch_unwind)]
    pub fn release_memory(&self) {
        crate::release_freed_memory();
    }

    /// Whether the `durableListen` callback keeps the event loop alive: on
    /// while this handle waits for an fsync, so that a process with nothing
    /// else to do still hears of it.
    #[napi(catch_unwind)]
    pub fn durable_ref(&self, env: Env, on: bool) -> Result<()> {
        if let Some(sub) = &*self.slot.durable.borrow()
            && let Ok(mut callback) = sub.callback.lock()
        {
            #[allow(deprecated)]
            if on { callback.refer(&env)? } else { callback.unref(&env)? }
        }
        Ok(())
    }

    /// Writes and fsyncs everything committed so far (off the event loop).
    #[napi(catch_unwind)]
    pub fn flush(&self) -> Result<AsyncTask<Durable>> {
        Ok(AsyncTask::new(Durable { engine: self.engine()?, version: None }))
    }

    /// The newest visible commit version.
    #[napi(getter, catch_unwind)]
    pub fn version(&self) -> Result<f64> {
        Ok(self.engine()?.version() as f64)
    }

    /// From now on, commits made on the calling thread (whatever handle
    /// they go through) return without waiting for their fsync in strict
    /// mode; the caller waits with `waitDurable` before it acknowledges
    /// them. For the server's thread (group commit); see
    /// `in_mem_engine::defer_durability`.
    #[napi(catch_unwind)]
    pub fn defer_durability_on_this_thread(&self, on: bool) -> Result<()> {
        self.engine()?;
        in_mem_engine::defer_durability(on);
        Ok(())
    }

    /// Database statistics as JSON.
    #[napi(catch_unwind)]
    pub fn stats(&self) -> Result<String> {
        let s = self.engine()?.stats();
        let r = &s.recovery;
        Ok(json!({
            "version": s.version,
            "durability": s.durability.as_str(),
            "path": s.path.map(|p| p.display().to_string()),
            "keys": s.keys,
            "runs": s.runs,
            "activeSnapshots": s.active_snapshots,
            "wal": s.wal.map(|w| json!({
                "segments": w.segments,
                "bytesWritten": w.bytes_written,
                "fsyncs": w.fsyncs,
                "durableVersion": w.durable_version,
                "pendingRecords": w.pending_records,
            })),
            "memory": {
                "keys": s.memory.keys,
                "liveBytes": s.memory.live_bytes,
                "historyVersions": s.memory.history_versions,
                "historyBytes": s.memory.history_bytes,
                "packedKeys": s.memory.packed_keys,
                "runsWithHorizon": s.runs_with_horizon,
                "historyOnDisk": {
                    "files": s.history_on_disk.files,
                    "versions": s.history_on_disk.versions,
                    "bytes": s.history_on_disk.bytes,
                },
                "indexBytes": s.index_bytes,
                "cold": {
                    "runs": s.cold.runs,
                    "bytes": s.cold.bytes,
                    "files": s.cold.files,
                    "fileBytes": s.cold.file_bytes,
                    "loads": s.cold.loads,
                },
            },
            "maintenance": {
                "rounds": s.maintenance.rounds,
                "expired": s.maintenance.expired,
                "panics": s.maintenance.panics,
                "lastError": s.maintenance.last_error,
                "lastErrorAt": s.maintenance.last_error_at,
            },
            "recovery": {
                "segments": r.segments,
                "records": r.records,
                "bytes": r.bytes,
                "lastVersion": r.last_version,
                "lastCommitAt": r.last_commit_at,
                "durationMs": r.duration_ms,
                "tornTail": r.torn_tail.as_ref().map(|t| json!({ "file": t.file, "offset": t.offset, "droppedBytes": t.dropped_bytes })),
                "orphanedRuns": r.orphaned_runs.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
                "checkpointVersion": r.checkpoint_version,
                "checkpointFallback": r.checkpoint_fallback,
                "repairs": r.repairs.iter().map(|p| json!({
                    "file": p.file,
                    "offset": p.offset,
                    "reason": p.reason,
                    "droppedBytes": p.dropped_bytes,
                    "droppedFiles": p.dropped_files,
                    "savedTo": p.saved_to,
                })).collect::<Vec<_>>(),
                "indexes": { "loaded": r.indexes.loaded, "rebuilt": r.indexes.rebuilt },
            },
        })
        .to_string())
    }

    /// Writes a checkpoint off the JS thread; resolves to its report as
    /// JSON, or null for a memory-only database.
    #[napi(catch_unwind, ts_return_type = "Promise<string | null>")]
    pub fn checkpoint(&self) -> Result<AsyncTask<Checkpoint>> {
        Ok(AsyncTask::new(Checkpoint { engine: self.engine()? }))
    }

    /// `{ running, entriesWritten, entriesTotal }` of the checkpoint in progress.
    #[napi(catch_unwind)]
    pub fn checkpoint_progress(&self) -> Result<String> {
        let p = self.engine()?.checkpoint_progress();
        Ok(json!({ "running": p.running, "entriesWritten": p.entries_written, "entriesTotal": p.entries_total }).to_string())
    }
}

pub struct Durable {
    engine: Arc<Engine>,
    version: Option<u64>,
}

impl Task for Durable {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> Result<()> {
        match self.version {
            Some(v) => self.engine.wait_durable(v).napi(),
            None => self.engine.flush().napi(),
        }
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> Result<()> {
        Ok(())
    }
}

pub struct Checkpoint {
    engine: Arc<Engine>,
}

impl Task for Checkpoint {
    type Output = Option<String>;
    type JsValue = Option<String>;

    fn compute(&mut self) -> Result<Option<String>> {
        Ok(self.engine.checkpoint().napi()?.map(|r| {
            json!({
                "version": r.version,
                "entries": r.entries,
                "bytes": r.bytes,
                "durationMs": r.duration_ms,
                "removedSegments": r.removed_segments,
                "unchanged": r.unchanged,
            })
            .to_string()
        }))
    }

    fn resolve(&mut self, _env: Env, output: Option<String>) -> Result<Option<String>> {
        Ok(output)
    }
}
