//! A transaction as the binding sees it: the engine plus an OCC transaction,
//! with the KV operations reading through the transaction's snapshot and
//! buffering writes until `commit`.

use std::sync::Arc;

use in_mem_concurrency::{Transaction, Write};
use in_mem_core::{Result, RunId, now_ms};
use in_mem_storage::{Source, Value};

use crate::database::Engine;
use crate::json::DocTxs;
use crate::kv::{self, KvEntry, KvListOptions, View};

/// A transaction over every primitive. Each primitive's operations are an
/// `impl EngineTx` block in that primitive's module, written over the
/// accessors below, so that a single operation outside a transaction is the
/// same code run in a transaction of its own.
pub struct EngineTx {
    engine: Arc<Engine>,
    tx: Transaction,
    /// JSON documents touched, with their path operations (see `json.rs`).
    pub(crate) docs: DocTxs,
    /// A replay view: reads at an older version, refuses every write, and
    /// judges TTL expiry at `clock`.
    view: Option<ViewAt>,
}

/// What makes an [`EngineTx`] a replay view.
struct ViewAt {
    clock: Option<u64>,
}

struct TxView<'a> {
    engine: &'a Engine,
    tx: &'a mut Transaction,
}

impl View for TxView<'_> {
    fn get(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        self.tx.get(self.engine, key)
    }
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        // The transaction's own writes have no version yet: they report the
        // snapshot's version + 1.
        let pending = self.tx.snapshot_version() + 1;
        self.tx.scan(self.engine, start, end, reverse, |k, version, v| f(k, if version == u64::MAX { pending } else { version }, v));
    }
}

impl EngineTx {
    pub fn begin(engine: &Arc<Engine>) -> Result<EngineTx> {
        Ok(EngineTx { engine: engine.clone(), tx: engine.begin()?, docs: DocTxs::new(), view: None })
    }

    /// A replay view of the database at version `at`: a read-only
    /// transaction pinned there, with TTL expiry judged at `clock`. No
    /// engine, thread or copy is made for it.
    pub(crate) fn begin_view(engine: &Arc<Engine>, at: u64, clock: Option<u64>) -> Result<EngineTx> {
        engine.check_open()?;
        Ok(EngineTx { engine: engine.clone(), tx: Transaction::begin_at(engine.tracker(), at), docs: DocTxs::new(), view: Some(ViewAt { clock }) })
    }

    /// The time TTL expiry is judged at.
    pub(crate) fn now(&self) -> u64 {
        match &self.view {
            Some(ViewAt { clock: Some(c) }) => *c,
            _ => now_ms(),
        }
    }

    /// Whether `run` accepts this transaction's writes: a replay view
    /// accepts none, else the run must be active.
    pub(crate) fn check_run_writable(&self, run: &RunId) -> Result<()> {
        if self.view.is_some() {
            return Err(view_is_read_only());
        }
        self.engine.check_run_writable(run)
    }

    pub(crate) fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Reads a key through the transaction (joining its read set). Its own
    /// writes report the snapshot version + 1.
    pub(crate) fn read(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        let pending = self.tx.snapshot_version() + 1;
        self.tx.get(&*self.engine, key).map(|(v, value)| (if v == u64::MAX { pending } else { v }, value))
    }

    /// Reads a key at the snapshot without joining the read set: for data
    /// whose conflicts are tracked another way (JSON paths).
    pub(crate) fn read_untracked(&self, key: &[u8]) -> Option<Value> {
        self.engine.read(key, self.tx.snapshot_version()).map(|(_, v)| v)
    }

    /// Buffers a write into a run's keyspace; the run must accept writes.
    pub(crate) fn write(&mut self, key: &[u8], value: Option<Value>) -> Result<()> {
        if self.view.is_some() {
            return Err(view_is_read_only());
        }
        if key[..16] != [0u8; 16] {
            self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        }
        match value {
            Some(v) => self.tx.put(key, v),
            None => self.tx.delete(key),
        }
        Ok(())
    }

    /// Scans `[start, end)` through the transaction (the range joins the
    /// read set).
    pub(crate) fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.view().scan(start, end, reverse, f)
    }

    /// Every key of `run` and `tag` in key order, as (key, version, value).
    pub(crate) fn scan_prefix(&mut self, prefix: &[u8], reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        let end = in_mem_core::InternalKey::prefix_end(prefix);
        self.scan(prefix, end.as_deref(), reverse, f)
    }

    /// The transaction's own buffered writes in `[start, end)`, in key
    /// order: `Some(value)` for a put, `None` for a delete. Reading them
    /// joins nothing.
    pub(crate) fn own_writes<'a>(&'a self, start: &[u8], end: &[u8]) -> impl Iterator<Item = (&'a [u8], Option<&'a Value>)> + use<'a> {
        let bounds = (std::ops::Bound::Included(start), std::ops::Bound::Excluded(end));
        self.tx.writes().range::<[u8], _>(bounds).map(|(k, w)| {
            let value = match w {
                Write::Put(v) => Some(v),
                Write::Delete => None,
            };
            (&k[..], value)
        })
    }

    fn view(&mut self) -> TxView<'_> {
        TxView { engine: &self.engine, tx: &mut self.tx }
    }

    pub fn snapshot_version(&self) -> u64 {
        self.tx.snapshot_version()
    }

    pub fn kv_get(&mut self, key: &[u8]) -> Result<Option<(u64, u64, Value)>> {
        kv::check_key(key)?;
        let now = self.now();
        let pending = self.tx.snapshot_version() + 1;
        Ok(kv::get_live(&mut self.view(), key, now).map(|(v, stored)| {
            let version = if v == u64::MAX { pending } else { v };
            (version, kv::updated_at(&stored), stored)
        }))
    }

    pub fn kv_put(&mut self, key: &[u8], payload: &[u8], ttl_ms: Option<u64>) -> Result<()> {
        kv::check_key(key)?;
        kv::check_value(payload)?;
        self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        self.tx.put(key, kv::encode(payload, now_ms(), ttl_ms));
        Ok(())
    }

    pub fn kv_delete(&mut self, key: &[u8]) -> Result<bool> {
        kv::check_key(key)?;
        self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        let now = self.now();
        let existed = kv::get_live(&mut self.view(), key, now).is_some();
        if existed {
            self.tx.delete(key);
        }
        Ok(existed)
    }

    pub fn kv_list(&mut self, run: &RunId, opts: &KvListOptions) -> Result<Vec<KvEntry>> {
        let now = self.now();
        kv::list(&mut self.view(), run, opts, now)
    }

    pub fn kv_count(&mut self, run: &RunId, prefix: Option<&[u8]>) -> Result<u64> {
        let now = self.now();
        Ok(kv::count(&mut self.view(), run, prefix, now))
    }

    /// Commits: `None` for a read-only transaction (which never conflicts and
    /// never touches the WAL), else the commit version. Without `wait`, the
    /// caller must `Engine::wait_durable` before acknowledging a strict commit.
    pub fn commit(self, wait: bool) -> Result<Option<u64>> {
        let writes_docs = self.docs.values().any(|d| d.writes_anything());
        if self.tx.is_read_only() && !writes_docs {
            return Ok(None);
        }
        // Document paths read are validated too, whatever else it writes.
        let docs = (!self.docs.is_empty()).then_some(&self.docs);
        self.engine.commit_tx(&self.tx, docs, wait).map(Some)
    }
}

fn view_is_read_only() -> in_mem_core::Error {
    in_mem_core::Error::invalid_argument("a replay view is read-only; fork the run at that point (db.runs.fork(run, { at })) to write from there")
}
