//! A transaction as the binding sees it: the engine plus an OCC transaction,
//! with the KV operations reading through the transaction's snapshot and
//! buffering writes until `commit`.

use std::sync::Arc;

use in_mem_concurrency::Transaction;
use in_mem_core::{Result, RunId, now_ms};
use in_mem_storage::Value;

use crate::database::Engine;
use crate::kv::{self, KvEntry, KvListOptions, View};

pub struct EngineTx {
    engine: Arc<Engine>,
    tx: Transaction,
}

struct TxView<'a> {
    engine: &'a Engine,
    tx: &'a mut Transaction,
}

impl View for TxView<'_> {
    fn get(&mut self, key: &[u8]) -> Option<(u64, Value)> {
        self.tx.get(self.engine.store(), key)
    }
    fn scan(&mut self, start: &[u8], end: Option<&[u8]>, reverse: bool, f: &mut dyn FnMut(&[u8], u64, &Value) -> bool) {
        // The transaction's own writes have no version yet: they report the
        // snapshot's version + 1.
        let pending = self.tx.snapshot_version() + 1;
        self.tx.scan(self.engine.store(), start, end, reverse, |k, version, v| f(k, if version == u64::MAX { pending } else { version }, v));
    }
}

impl EngineTx {
    pub fn begin(engine: &Arc<Engine>) -> Result<EngineTx> {
        Ok(EngineTx { engine: engine.clone(), tx: engine.begin()? })
    }

    fn view(&mut self) -> TxView<'_> {
        TxView { engine: &self.engine, tx: &mut self.tx }
    }

    pub fn snapshot_version(&self) -> u64 {
        self.tx.snapshot_version()
    }

    pub fn kv_get(&mut self, key: &[u8]) -> Result<Option<(u64, u64, Value)>> {
        kv::check_key(key)?;
        let now = now_ms();
        let pending = self.tx.snapshot_version() + 1;
        Ok(kv::get_live(&mut self.view(), key, now).map(|(v, stored)| {
            let version = if v == u64::MAX { pending } else { v };
            (version, kv::updated_at(&stored), stored)
        }))
    }

    pub fn kv_put(&mut self, key: &[u8], payload: &[u8], ttl_ms: Option<u64>) -> Result<()> {
        kv::check_key(key)?;
        kv::check_value(payload)?;
        self.engine.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        self.tx.put(key, kv::encode(payload, now_ms(), ttl_ms));
        Ok(())
    }

    pub fn kv_delete(&mut self, key: &[u8]) -> Result<bool> {
        kv::check_key(key)?;
        self.engine.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        let existed = kv::get_live(&mut self.view(), key, now_ms()).is_some();
        if existed {
            self.tx.delete(key);
        }
        Ok(existed)
    }

    pub fn kv_list(&mut self, run: &RunId, opts: &KvListOptions) -> Result<Vec<KvEntry>> {
        let now = now_ms();
        kv::list(&mut self.view(), run, opts, now)
    }

    pub fn kv_count(&mut self, run: &RunId, prefix: Option<&[u8]>) -> Result<u64> {
        let now = now_ms();
        Ok(kv::count(&mut self.view(), run, prefix, now))
    }

    /// Commits: `None` for a read-only transaction (which never conflicts and
    /// never touches the WAL), else the commit version. Without `wait`, the
    /// caller must `Engine::wait_durable` before acknowledging a strict commit.
    pub fn commit(self, wait: bool) -> Result<Option<u64>> {
        if self.tx.is_read_only() {
            return Ok(None);
        }
        self.engine.commit_tx(&self.tx, wait).map(Some)
    }
}
