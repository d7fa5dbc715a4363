use std::sync::Arc;

use in_mem_core::Error;
use in_mem_engine::{EngineTx, kv_payload};

use crate::IO_VALUE_OFFSET;
use crate::hot::Slot;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::{key_of, keys_of, list_options, pack_entries, parse_run, ttl_of, write_answer};
use crate::errors::{IntoNapi, invalid, to_napi};

/// How often a single operation is re-run after a conflict before the
/// `ConflictError` reaches the caller.
const SINGLE_OP_RETRIES: usize = 1000;

/// A transaction, or the database's single-operation handle. Its KV methods
/// mirror `NativeDatabase`'s and use the same I/O buffer protocol; the other
/// primitives' methods are in their own files and go through
/// [`NativeTransaction::run`].
///
/// A finished transaction can be begun again ([`NativeTransaction::restart`]):
/// making a JS object of a napi class costs several microseconds, more than
/// a small transaction's own work, so the TypeScript layer keeps finished
/// ones and reuses them.
#[napi]
pub struct NativeTransaction {
    mode: Mode,
}

enum Mode {
    /// A transaction of the engine in `slot` (`tx` is `None` once committed
    /// or aborted, until it is restarted).
    Tx { slot: Arc<Slot>, tx: Option<EngineTx> },
    /// Every call is its own transaction, committed before it returns and
    /// re-run on a conflict: the fast path of single operations, one native
    /// call each.
    Single(Arc<Slot>),
}

impl NativeTransaction {
    pub fn begin(slot: Arc<Slot>) -> Result<NativeTransaction> {
        let tx = EngineTx::begin(&slot.engine()?).napi()?;
        Ok(NativeTransaction { mode: Mode::Tx { slot, tx: Some(tx) } })
    }

    /// Wraps a replay view (`Engine::replay_view`): a read-only transaction
    /// pinned at an older version.
    pub fn view(slot: Arc<Slot>, tx: EngineTx) -> NativeTransaction {
        NativeTransaction { mode: Mode::Tx { slot, tx: Some(tx) } }
    }

    pub fn single(slot: Arc<Slot>) -> NativeTransaction {
        NativeTransaction { mode: Mode::Single(slot) }
    }

    pub(crate) fn tx(&mut self) -> Result<&mut EngineTx> {
        match &mut self.mode {
            Mode::Tx { tx, .. } => tx.as_mut().ok_or_else(|| invalid("the transaction has already finished")),
            Mode::Single(_) => Err(invalid("KV calls of the single-operation handle go through NativeDatabase")),
        }
    }

    /// Runs one operation: in the transaction, or, on the single-operation
    /// handle, in a transaction of its own that commits (waiting for
    /// durability in strict mode) before this returns.
    pub(crate) fn run<T>(&mut self, mut op: impl FnMut(&mut EngineTx) -> in_mem_core::Result<T>) -> Result<T> {
        match &mut self.mode {
            Mode::Tx { .. } => op(self.tx()?).napi(),
            Mode::Single(slot) => {
                let engine = slot.engine()?;
                let mut attempt = 0;
                loop {
                    let mut tx = EngineTx::begin(&engine).napi()?;
                    let out = op(&mut tx).napi()?;
                    match tx.commit(true) {
                        Ok(_) => return Ok(out),
                        Err(Error::Conflict { .. }) if attempt < SINGLE_OP_RETRIES => attempt += 1,
                        Err(e) => return Err(to_napi(e)),
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Result<EngineTx> {
        match &mut self.mode {
            Mode::Tx { tx, .. } => tx.take().ok_or_else(|| invalid("the transaction has already finished")),
            Mode::Single(_) => Err(invalid("the single-operation handle has nothing to commit")),
        }
    }
}

#[napi]
impl NativeTransaction {
    #[napi(catch_unwind)]
    pub fn kv_get(&mut self, mut io: BufferSlice<'_>, key_len: u32, versioned: bool) -> Result<i64> {
        if key_len as usize > IO_VALUE_OFFSET {
            return Err(invalid("key length exceeds the key area of the I/O buffer"));
        }
        let io: &mut [u8] = &mut io;
        let (key, out) = io.split_at_mut(IO_VALUE_OFFSET.min(io.len()));
        Ok(match self.tx()?.kv_get(key_of(key, key_len)?).napi()? {
            Some((version, updated_at, stored)) => write_answer(out, version, updated_at, kv_payload(&stored), versioned),
            None => -1,
        })
    }

    #[napi(catch_unwind)]
    pub fn kv_put(&mut self, io: &[u8], key_len: u32, value: &[u8], ttl_ms: f64) -> Result<()> {
        let ttl = ttl_of(ttl_ms)?;
        let key = key_of(io, key_len)?;
        self.tx()?.kv_put(key, value, ttl).napi()
    }

    #[napi(catch_unwind)]
    pub fn kv_delete(&mut self, io: &[u8], key_len: u32) -> Result<bool> {
        let key = key_of(io, key_len)?;
        self.tx()?.kv_delete(key).napi()
    }

    #[napi(catch_unwind)]
    pub fn kv_exists(&mut self, io: &[u8], key_len: u32) -> Result<bool> {
        let key = key_of(io, key_len)?;
        Ok(self.tx()?.kv_get(key).napi()?.is_some())
    }

    #[napi(catch_unwind)]
    pub fn kv_keys(&mut self, run: String, prefix: Option<String>, after: Option<String>, limit: Option<f64>, reverse: Option<bool>) -> Result<Vec<String>> {
        let opts = list_options(prefix, after, limit, reverse)?;
        let run = parse_run(&run)?;
        Ok(keys_of(self.tx()?.kv_list(&run, &opts).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn kv_entries(&mut self, run: String, prefix: Option<String>, after: Option<String>, limit: Option<f64>, reverse: Option<bool>) -> Result<Buffer> {
        let opts = list_options(prefix, after, limit, reverse)?;
        let run = parse_run(&run)?;
        Ok(pack_entries(&self.tx()?.kv_list(&run, &opts).napi()?))
    }

    #[napi(catch_unwind)]
    pub fn kv_count(&mut self, run: String, prefix: Option<String>) -> Result<f64> {
        let run = parse_run(&run)?;
        let prefix = prefix.map(String::into_bytes);
        self.tx()?.kv_count(&run, prefix.as_deref()).napi().map(|n| n as f64)
    }

    /// Commits. Returns the commit version, or -1 for a read-only
    /// transaction. With `wait`, a strict commit returns after its fsync;
    /// without, the caller awaits `NativeDatabase.waitDurable(version)`.
    #[napi(catch_unwind)]
    pub fn commit(&mut self, wait: bool) -> Result<f64> {
        let tx = self.finish()?;
        match tx.commit(wait) {
            Ok(Some(v)) => Ok(v as f64),
            Ok(None) => Ok(-1.0),
            Err(e) => Err(to_napi(e)),
        }
    }

    /// Discards every buffered write.
    #[napi]
    pub fn abort(&mut self) {
        if let Mode::Tx { tx, .. } = &mut self.mode {
            *tx = None;
        }
    }

    /// Begins a new transaction on this finished one, at the newest version.
    #[napi(catch_unwind)]
    pub fn restart(&mut self) -> Result<()> {
        match &mut self.mode {
            Mode::Tx { tx: Some(_), .. } => Err(invalid("the transaction is still open")),
            Mode::Tx { slot, tx } => {
                *tx = Some(EngineTx::begin(&slot.engine()?).napi()?);
                Ok(())
            }
            Mode::Single(_) => Err(invalid("the single-operation handle is no transaction")),
        }
    }

    #[napi(getter)]
    pub fn snapshot_version(&self) -> Result<f64> {
        match &self.mode {
            Mode::Tx { tx: Some(tx), .. } => Ok(tx.snapshot_version() as f64),
            _ => Err(to_napi(Error::invalid_argument("no transaction is open on this handle"))),
        }
    }
}
