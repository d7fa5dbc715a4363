//! The core's side of a transaction: an OCC transaction over the engine,
//! given to the primitives as [`EngineTx`] through the [`TxCore`] interface.

use std::sync::Arc;

use in_mem_concurrency::{Transaction, Write};
use in_mem_core::{Result, RunId, now_ms};
use in_mem_storage::{Source, Value};

use crate::access::{EngineTx, Extensions, SecondaryIndex, TxCore};
use crate::core::Engine;

struct Core {
    engine: Arc<Engine>,
    tx: Transaction,
    /// A replay view: reads at an older version, refuses every write, and
    /// judges TTL expiry at `clock`.
    view: Option<ViewAt>,
}

/// What makes a transaction a replay view.
struct ViewAt {
    clock: Option<u64>,
}

impl EngineTx {
    pub fn begin(engine: &Arc<Engine>) -> Result<EngineTx> {
        Ok(EngineTx::new(Box::new(Core { engine: engine.clone(), tx: engine.begin()?, view: None })))
    }

    /// A replay view of the database at version `at`: a read-only
    /// transaction pinned there, with TTL expiry judged at `clock`. No
    /// engine, thread or copy is made for it.
    pub(crate) fn begin_view(engine: &Arc<Engine>, at: u64, clock: Option<u64>) -> Result<EngineTx> {
        engine.check_open()?;
        Ok(EngineTx::new(Box::new(Core { engine: engine.clone(), tx: Transaction::begin_at(engine.tracker(), at), view: Some(ViewAt { clock }) })))
    }
}

impl TxCore for Core {
    fn snapshot_version(&self) -> u64 {
        self.tx.snapshot_version()
    }

    fn now(&self) -> u64 {
        match &self.view {
            Some(ViewAt { clock: Some(c) }) => *c,
            _ => now_ms(),
        }
    }

    fn check_run_writable(&self, run: &RunId) -> Result<()> {
        if self.view.is_some() {
            return Err(view_is_read_only());
        }
        self.engine.check_run_writable(run)
    }

    fn run_exists(&self, run: &RunId) -> bool {
        self.engine.run_exists(run.as_bytes())
    }

    fn fork_of(&self, run: &RunId) -> Option<(RunId, u64)> {
        self.engine.fork_of(run)
    }

    fn resident(&self, run: &RunId) {
        self.engine.store().ensure_resident(run.as_bytes());
    }

    fn read(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        self.tx.get(&*self.engine, key)
    }

    fn read_at(&self, key: &[u8], version: u64) -> Option<(u64, Value)> {
        self.engine.read(key, version)
    }

    fn read_any(&self, key: &[u8], version: u64) -> Option<(u64, Option<Value>)> {
        self.engine.store().read_any(key, version)
    }

    fn buffer(&mut self, key: &[u8], value: Option<Value>) {
        match value {
            Some(v) => self.tx.put(key, v),
            None => self.tx.delete(key),
        }
    }

    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.tx.scan(&*self.engine, start, end, reverse, f);
    }

    fn scan_untracked(&self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        self.engine.scan_live(start, end, self.tx.snapshot_version(), reverse, f);
    }

    fn own_writes(&self, start: &[u8], end: &[u8], f: &mut dyn FnMut(&[u8], Option<&Value>)) {
        let bounds = (std::ops::Bound::Included(start), std::ops::Bound::Excluded(end));
        for (k, w) in self.tx.writes().range::<[u8], _>(bounds) {
            match w {
                Write::Put(v) => f(k, Some(v)),
                Write::Delete => f(k, None),
            }
        }
    }

    fn is_view(&self) -> bool {
        self.view.is_some()
    }

    fn writes_nothing(&self) -> bool {
        self.tx.is_read_only()
    }

    fn indexes(&self) -> &[Arc<dyn SecondaryIndex>] {
        self.engine.indexes()
    }

    fn commit(self: Box<Self>, state: &Extensions, wait: bool) -> Result<u64> {
        // Primitive state is validated too, whatever else it writes.
        let state = (!state.is_empty()).then_some(state);
        self.engine.commit_tx(&self.tx, state, wait)
    }
}

fn view_is_read_only() -> in_mem_core::Error {
    in_mem_core::Error::invalid_argument("a replay view is read-only; fork the run at that point (db.runs.fork(run, { at })) to write from there")
}
