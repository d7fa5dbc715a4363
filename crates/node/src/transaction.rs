use std::sync::Arc;

use in_mem_core::Error;
use in_mem_engine::{EngineTx, kv_payload};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use crate::hot::{Answer, RawCallback, Slot, answer, answer_value, as_u32, function_table, numbers, single_op};
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::convert::{key_of, keys_of, list_options, pack_entries, parse_run, ttl_of};
use crate::errors::{IntoNapi, invalid, to_napi};

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
        self.parts().map(|(_, tx)| tx)
    }

    /// Runs one operation: in the transaction, or, on the single-operation
    /// handle, in a transaction of its own that commits (waiting for
    /// durability in strict mode) before this returns.
    pub(crate) fn run<T>(&mut self, mut op: impl FnMut(&mut EngineTx) -> in_mem_core::Result<T>) -> Result<T> {
        match &mut self.mode {
            Mode::Tx { .. } => op(self.tx()?).napi(),
            Mode::Single(slot) => single_op(&slot.engine()?, op),
        }
    }

    fn finish(&mut self) -> Result<EngineTx> {
        match &mut self.mode {
            Mode::Tx { tx, .. } => tx.take().ok_or_else(|| invalid("the transaction has already finished")),
            Mode::Single(_) => Err(invalid("the single-operation handle has nothing to commit")),
        }
    }

    /// KV get on the handle's registered I/O buffer (the key at its start,
    /// the answer at `IO_VALUE_OFFSET`): the answer's length, -1 if absent.
    /// Called through `hot.rs`'s raw callbacks.
    pub(crate) fn kv_get_io(&mut self, env: sys::napi_env, key_len: u32, versioned: bool) -> Result<Answer> {
        let (slot, tx) = self.parts()?;
        let (key, out) = slot.read_area(key_len)?;
        match tx.kv_get(key).napi()? {
            Some((version, updated_at, stored)) => answer_value(env, out, version, updated_at, kv_payload(&stored), versioned),
            None => Ok(Answer::Number(-1.0)),
        }
    }

    /// KV put from the handle's registered I/O buffer: the key at its
    /// start, the value at `IO_VALUE_OFFSET`.
    pub(crate) fn kv_put_io(&mut self, key_len: u32, value_len: u32, ttl_ms: f64) -> Result<()> {
        let ttl = ttl_of(ttl_ms)?;
        let (slot, tx) = self.parts()?;
        let (key, value) = slot.put_args(key_len, value_len)?;
        tx.kv_put(key, value, ttl).napi()
    }

    /// The handle's slot (its I/O buffer) and the open transaction, borrowed apart.
    fn parts(&mut self) -> Result<(&Slot, &mut EngineTx)> {
        match &mut self.mode {
            Mode::Tx { slot, tx: Some(tx) } => Ok((slot, tx)),
            Mode::Tx { tx: None, .. } => Err(invalid("the transaction has already finished")),
            Mode::Single(_) => Err(invalid("KV calls of the single-operation handle go through NativeDatabase")),
        }
    }

    /// Commits: the commit version, or -1 for a read-only transaction.
    /// With `wait`, a strict commit returns after its fsync; without, the
    /// caller asks for it (`requestDurable`).
    pub(crate) fn commit_now(&mut self, wait: bool) -> Result<f64> {
        let tx = self.finish()?;
        match tx.commit(wait) {
            Ok(Some(v)) => Ok(v as f64),
            Ok(None) => Ok(-1.0),
            Err(e) => Err(to_napi(e)),
        }
    }

    /// Begins a new transaction on this finished one, at the newest version.
    pub(crate) fn restart_now(&mut self) -> Result<()> {
        match &mut self.mode {
            Mode::Tx { tx: Some(_), .. } => Err(invalid("the transaction is still open")),
            Mode::Tx { slot, tx } => {
                *tx = Some(EngineTx::begin(&slot.engine()?).napi()?);
                Ok(())
            }
            Mode::Single(_) => Err(invalid("the single-operation handle is no transaction")),
        }
    }
}

#[napi]
impl NativeTransaction {
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

    /// Discards every buffered write.
    #[napi]
    pub fn abort(&mut self) {
        if let Mode::Tx { tx, .. } = &mut self.mode {
            *tx = None;
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

/// Reads the first `n` arguments, all numbers, of a call made as a method
/// of a `NativeTransaction` (its `this`; checked by the class's type tag,
/// as napi-rs checks its own methods' receivers).
unsafe fn tx_args(env: sys::napi_env, info: sys::napi_callback_info, n: usize) -> Result<(&'static mut NativeTransaction, [f64; 4])> {
    let mut argc = 4usize;
    let mut argv = [ptr::null_mut(); 4];
    let mut this = ptr::null_mut();
    let status = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), &mut this, ptr::null_mut()) };
    if status != sys::Status::napi_ok || this.is_null() {
        return Err(invalid("could not read the call's arguments"));
    }
    unsafe { validate_type_tag(env, this, &<NativeTransaction as TypeTag>::type_tag(), "NativeTransaction") }?;
    let mut wrapped = ptr::null_mut();
    if unsafe { sys::napi_unwrap(env, this, &mut wrapped) } != sys::Status::napi_ok || wrapped.is_null() {
        return Err(invalid("not a NativeTransaction"));
    }
    let out = unsafe { numbers(env, &argv, argc, n) }?;
    // SAFETY: napi-rs wraps a class instance as a pointer to it, alive while
    // its JS object is (this call's `this`). The reference lives for this
    // call only, on the JS thread; no other reference to the instance is
    // live meanwhile (none of its methods calls back into JS, so no other
    // method of it is running) — the exclusivity napi-rs's borrow registry
    // checks for its own `&mut self` methods.
    Ok((unsafe { &mut *(wrapped as *mut NativeTransaction) }, out))
}

/// `hot.rs`'s `call`, for a call made as a method of a `NativeTransaction`.
unsafe fn call_tx(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    n: usize,
    f: fn(sys::napi_env, &mut NativeTransaction, [f64; 4]) -> Result<Answer>,
) -> sys::napi_value {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (tx, a) = unsafe { tx_args(env, info, n) }?;
        f(env, tx, a)
    }));
    unsafe { answer(env, outcome) }
}

unsafe extern "C" fn tx_get_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_tx(env, info, 2, |env, t, a| t.kv_get_io(env, as_u32(a[0])?, a[1] != 0.0)) }
}

unsafe extern "C" fn tx_put_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_tx(env, info, 3, |_, t, a| t.kv_put_io(as_u32(a[0])?, as_u32(a[1])?, a[2]).map(|_| Answer::Undefined)) }
}

unsafe extern "C" fn tx_commit_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_tx(env, info, 1, |_, t, a| t.commit_now(a[0] != 0.0).map(Answer::Number)) }
}

unsafe extern "C" fn tx_restart_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_tx(env, info, 0, |_, t, _| t.restart_now().map(|_| Answer::Undefined)) }
}

/// The transaction calls of the fast path, `{ kvGet(keyLen, versioned 0|1),
/// kvPut(keyLen, valueLen, ttlMs), commit(wait 0|1), restart() }`, each
/// called as a method of a `NativeTransaction` (`TX.commit.call(tx, 1)` in
/// the TypeScript layer): a napi-rs `&mut self` method takes two round trips
/// through a process-wide mutex and a hash map entry a call (its borrow
/// registry), more than a small transaction's own work. KV keys and values go through the
/// handle's registered I/O buffer, as the database's hot calls do.
pub(crate) fn transaction_functions<'env>(env: &'env Env) -> Result<Unknown<'env>> {
    let table: [(&str, RawCallback); 4] = [("kvGet", tx_get_cb), ("kvPut", tx_put_cb), ("commit", tx_commit_cb), ("restart", tx_restart_cb)];
    function_table(env, &table, |_| Ok((ptr::null_mut(), None)))
}
