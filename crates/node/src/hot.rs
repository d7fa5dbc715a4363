//! The hot KV calls of the fast path as raw Node-API callbacks.
//!
//! Measured on the development machine: a napi-rs `&self` method costs
//! ~600 ns a call, a napi-rs free function ~250 ns (its per-call argument
//! bookkeeping allocates), a raw callback 40–60 ns; a typed-array argument
//! costs more than the whole lookup. So each `Database` handle gets four
//! functions (`hotFunctions()`) bound to its [`Slot`] through the callback
//! data pointer, its I/O buffer is registered once (`registerIo`), and the
//! calls take only numbers: the key is at offset 0, a put's value (or a
//! read's answer) at `IO_VALUE_OFFSET`. The handle's `isOpen` and
//! `requestDurable` are hot calls too (every strict `transactionAsync`
//! makes both), and a transaction's KV calls, commit and restart have raw
//! callbacks of their own (`transaction.rs`, `transactionFunctions()`).
//! Measured again with napi 3.16: a `&self` method ~220 ns a call, most of
//! it a process-wide borrow registry (a mutex and a hash map entry).
//! `transaction(kv.put)` in memory mode went from 2.18–2.30 to 1.57–1.63 µs
//! with the transaction's calls raw.
//!
//! Errors are thrown exactly as napi-rs throws them (a JS `Error` whose
//! message is the engine error's JSON, code `GenericFailure`), and a panic
//! is caught and thrown the same way, so `src/errors.ts` maps both.

use std::cell::{Cell, RefCell};
use std::ffi::{CString, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::Arc;

use in_mem_core::Error;
use in_mem_engine::{Engine, EngineTx, Handle, JsonDb, KvDb, StateDb};
use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};

use crate::IO_VALUE_OFFSET;
use crate::convert::{key_of, ttl_of, write_answer};
use crate::errors::{IntoNapi, invalid, to_napi};

/// What a JS `Database` handle holds: its handle on the engine (taken out
/// on close; the last one closed shuts the engine down) and its registered
/// I/O buffer. Used only from the JS thread that owns it.
#[derive(Default)]
pub struct Slot {
    engine: RefCell<Option<Handle>>,
    io: Cell<(usize, usize)>,
    /// The handle's subscription to the strict WAL syncer's reports
    /// (`durableListen`).
    pub(crate) durable: RefCell<Option<DurableSubscription>>,
    /// The handle's subscription to the engine's word that its maintenance
    /// freed memory (`freedListen`).
    pub(crate) freed: RefCell<Option<FreedSubscription>>,
}

impl Slot {
    // Shared between the `Database` handle and the callbacks bound to it,
    // all on the JS thread that owns them (see `Slot`); never sent across threads.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn new(engine: Handle) -> Arc<Slot> {
        Arc::new(Slot { engine: RefCell::new(Some(engine)), io: Cell::new((0, 0)), durable: RefCell::new(None), freed: RefCell::new(None) })
    }

    pub fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.borrow().as_ref().map(|h| Arc::clone(h)).ok_or_else(|| to_napi(in_mem_core::Error::Closed))
    }

    fn with_engine<R>(&self, f: impl FnOnce(&Engine) -> Result<R>) -> Result<R> {
        match &*self.engine.borrow() {
            Some(engine) => f(engine),
            None => Err(to_napi(in_mem_core::Error::Closed)),
        }
    }

    pub fn take(&self) -> Option<Handle> {
        self.engine.borrow_mut().take()
    }

    pub fn is_open(&self) -> bool {
        self.engine.borrow().is_some()
    }

    /// Remembers `buf` as the I/O buffer. The JS side keeps it alive for as
    /// long as it is registered (it registers a replacement before letting
    /// go of it), and Node never moves a Buffer's memory.
    pub fn register_io(&self, buf: &mut [u8]) {
        self.io.set((buf.as_mut_ptr() as usize, buf.len()));
    }

    /// The key a hot read's caller wrote at offset 0 (`key_len` bytes), and
    /// the area from `IO_VALUE_OFFSET` on where the answer goes.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn read_area(&self, key_len: u32) -> Result<(&[u8], &mut [u8])> {
        let io = self.io()?;
        if key_len as usize > IO_VALUE_OFFSET || io.len() < IO_VALUE_OFFSET {
            return Err(invalid("key length exceeds the key area of the I/O buffer"));
        }
        let (key, out) = io.split_at_mut(IO_VALUE_OFFSET);
        Ok((key_of(key, key_len)?, out))
    }

    /// The key (at offset 0) and the value (at `IO_VALUE_OFFSET`) a hot
    /// put's caller wrote.
    pub(crate) fn put_args(&self, key_len: u32, value_len: u32) -> Result<(&[u8], &[u8])> {
        let io = self.io()?;
        let value = io.get(IO_VALUE_OFFSET..IO_VALUE_OFFSET + value_len as usize).ok_or_else(|| invalid("value length exceeds the I/O buffer"))?;
        Ok((key_of(io, key_len)?, value))
    }

    // The buffer is JS memory, not part of `self`; see the SAFETY note below.
    #[allow(clippy::mut_from_ref)]
    pub(crate) fn io(&self) -> Result<&mut [u8]> {
        let (ptr, len) = self.io.get();
        if ptr == 0 {
            return Err(invalid("no I/O buffer is registered"));
        }
        // SAFETY: see `register_io`; calls are synchronous on the owning JS
        // thread, so no other reference to the buffer is live during one.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) })
    }
}

/// Called on the JS thread with `(durableVersion, null)` after a syncer
/// round, or `(0, reason)` when the WAL's fsync failed.
pub(crate) type DurableCallback = ThreadsafeFunction<FnArgs<(f64, Option<String>)>, UnknownReturnValue, FnArgs<(f64, Option<String>)>, Status, false>;

/// One handle's subscription: the callback is called only while the handle
/// waits for a version the syncer has not yet reported to it.
pub(crate) struct DurableSubscription {
    pub(crate) id: u64,
    pub(crate) engine: std::sync::Weak<Engine>,
    /// Shared with the syncer's subscriber, which calls it; locked here
    /// only to ref or unref it.
    pub(crate) callback: Arc<std::sync::Mutex<DurableCallback>>,
    /// The newest version this handle requested (`requestDurable`).
    pub(crate) want: Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for DurableSubscription {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.unsubscribe_durable(self.id);
        }
    }
}

/// What `freedListen` calls on the handle's JS thread.
pub(crate) type FreedCallback = ThreadsafeFunction<(), UnknownReturnValue, (), Status, false>;

pub(crate) struct FreedSubscription {
    pub(crate) id: u64,
    pub(crate) engine: std::sync::Weak<Engine>,
}

impl Drop for FreedSubscription {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.upgrade() {
            engine.unsubscribe_freed(self.id);
        }
    }
}

/// Asks for `version` to become durable without blocking: `true` if it
/// is already (in any mode), else the handle's `durableListen` callback
/// reports it once fsynced. A hot call (`hot.rs`: `requestDurable`).
pub(crate) fn request_durable(slot: &Slot, version: f64) -> Result<bool> {
    let engine = slot.engine()?;
    if !(version.is_finite() && version >= 0.0 && version <= engine.version() as f64) {
        return Err(invalid(format!("requestDurable needs a committed version (0 to {}), not {version}", engine.version())));
    }
    let version = version as u64;
    if let Some(sub) = &*slot.durable.borrow() {
        sub.want.fetch_max(version, std::sync::atomic::Ordering::AcqRel);
    }
    Ok(engine.request_durable(version))
}

/// What a hot call answers.
pub(crate) enum Answer {
    Number(f64),
    Bool(bool),
    Undefined,
    /// A JS value made during the call (a read's string or `Buffer`, see
    /// [`direct_value`]), with no engine lock held.
    Value(sys::napi_value),
}

/// A read answers a value whose MessagePack is one string or one byte array
/// of this many bytes or more (str16/str32, bin16/bin32) as a JS string or
/// `Buffer` made from the stored bytes, instead of copying them into the
/// I/O buffer for the codec to decode from there: one copy of the bytes
/// instead of two, and no growth of the I/O buffer for it (the same string
/// or bytes the codec would make: `docs/format.md`, "KV values").
pub(crate) const DIRECT_FROM: usize = 256;

/// Whether `payload` (an encoded value) is one string (`Some(true)`) or
/// byte array (`Some(false)`) of [`DIRECT_FROM`] bytes or more, and nothing
/// else; and the length of its header.
fn direct_kind(payload: &[u8]) -> Option<(bool, usize)> {
    if payload.len() < DIRECT_FROM + 3 {
        return None;
    }
    let (string, head, len) = match payload[0] {
        0xda => (true, 3, u16::from_be_bytes([payload[1], payload[2]]) as usize),
        0xc5 => (false, 3, u16::from_be_bytes([payload[1], payload[2]]) as usize),
        0xdb => (true, 5, u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes")) as usize),
        0xc6 => (false, 5, u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes")) as usize),
        _ => return None,
    };
    (head + len == payload.len() && len >= DIRECT_FROM).then_some((string, head))
}

/// `payload`, which [`direct_kind`] found to be one string or byte array,
/// as a JS string or `Buffer`. A string's bytes are UTF-8 (every writer
/// checks its strings), decoded as the codec would.
fn direct_value(env: sys::napi_env, payload: &[u8], (string, head): (bool, usize)) -> Result<sys::napi_value> {
    let bytes = &payload[head..];
    let mut out = ptr::null_mut();
    let status = if string {
        unsafe { sys::napi_create_string_utf8(env, bytes.as_ptr().cast(), bytes.len() as isize, &mut out) }
    } else {
        unsafe { sys::napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr().cast(), ptr::null_mut(), &mut out) }
    };
    if status != sys::Status::napi_ok {
        return Err(invalid(format!("could not make a {} of {} bytes", if string { "string" } else { "Buffer" }, bytes.len())));
    }
    Ok(out)
}

/// A read of the hot path: the key is at the start of the I/O buffer, and
/// `read(engine, key, out)` writes its answer at `IO_VALUE_OFFSET` (`out`)
/// and returns its length, -1 when absent.
fn read_into_io(slot: &Slot, key_len: u32, read: impl FnOnce(&Engine, &[u8], &mut [u8]) -> Result<i64>) -> Result<Answer> {
    let (key, out) = slot.read_area(key_len)?;
    slot.with_engine(|engine| read(engine, key, out).map(|n| Answer::Number(n as f64)))
}

/// A read's answer, the encoded value `payload` (not borrowed from under
/// an engine lock: see [`Found`]): the value as a JS value ([`direct_value`]; when
/// `versioned`, its version and write time at `IO_VALUE_OFFSET` first), or
/// written at `IO_VALUE_OFFSET` ([`write_answer`]: its length).
pub(crate) fn answer_value(env: sys::napi_env, out: &mut [u8], version: u64, updated_at: u64, payload: &[u8], versioned: bool) -> Result<Answer> {
    match direct_kind(payload) {
        Some(kind) => direct_answer(env, out, version, updated_at, payload, kind, versioned),
        None => Ok(Answer::Number(write_answer(out, version, updated_at, payload, versioned) as f64)),
    }
}

/// The answer of a value [`direct_kind`] found to be `kind`: made into a JS
/// value, with its version and write time at `IO_VALUE_OFFSET` first when
/// `versioned`.
fn direct_answer(env: sys::napi_env, out: &mut [u8], version: u64, updated_at: u64, payload: &[u8], kind: (bool, usize), versioned: bool) -> Result<Answer> {
    if versioned {
        write_answer(out, version, updated_at, &[], true);
    }
    direct_value(env, payload, kind).map(Answer::Value)
}

/// What a fast read finds while the key is locked: its answer already
/// written, or a value to make into a JS value once the lock is released
/// (making one may run V8's garbage collector, which must not hold up
/// committers and readers of the key: they wait on its lock).
enum Found {
    Written(i64),
    Direct { version: u64, updated_at: u64, stored: in_mem_engine::Value, at: usize, kind: (bool, usize) },
}

/// Under the key's lock: the answer written at `IO_VALUE_OFFSET`, or the
/// stored value kept for [`direct_answer`].
fn found(out: &mut [u8], version: u64, updated_at: u64, stored: &in_mem_engine::Value, at: usize, versioned: bool) -> Found {
    if let Some(kind) = direct_kind(&stored[at..]) {
        return Found::Direct { version, updated_at, stored: stored.clone(), at, kind };
    }
    Found::Written(write_answer(out, version, updated_at, &stored[at..], versioned))
}

/// The answer of a fast read from what it [`found`] (`None`: absent).
fn finish(env: sys::napi_env, out: &mut [u8], found: Option<Found>, versioned: bool) -> Result<Answer> {
    match found {
        None => Ok(Answer::Number(-1.0)),
        Some(Found::Written(n)) => Ok(Answer::Number(n as f64)),
        Some(Found::Direct { version, updated_at, stored, at, kind }) => direct_answer(env, out, version, updated_at, &stored[at..], kind, versioned),
    }
}

fn kv_get(env: sys::napi_env, slot: &Slot, key_len: u32, versioned: bool) -> Result<Answer> {
    let (key, out) = slot.read_area(key_len)?;
    slot.with_engine(|engine| {
        let got = engine.kv_get_stored(key, |version, updated_at, stored, at| found(out, version, updated_at, stored, at, versioned)).napi()?;
        finish(env, out, got, versioned)
    })
}

fn state_get(env: sys::napi_env, slot: &Slot, key_len: u32) -> Result<Answer> {
    let (key, out) = slot.read_area(key_len)?;
    slot.with_engine(|engine| {
        let got = engine.state_get_stored(key, |version, updated_at, stored, at| found(out, version, updated_at, stored, at, true)).napi()?;
        finish(env, out, got, true)
    })
}

/// `json.get`: the key, then the path's UTF-8 bytes, in the key area.
fn json_get(slot: &Slot, key_len: u32, path_len: u32) -> Result<Answer> {
    let end = key_len as usize + path_len as usize;
    if end > IO_VALUE_OFFSET {
        return Err(invalid("key and path exceed the key area of the I/O buffer"));
    }
    read_into_io(slot, end as u32, |engine, key_and_path, out| {
        let (key, path) = key_and_path.split_at(key_len as usize);
        let path = std::str::from_utf8(path).map_err(|_| invalid("the path is not UTF-8"))?;
        Ok(engine.json_get_with(key, path, |bytes| write_answer(out, 0, 0, bytes, false)).napi()?.unwrap_or(-1))
    })
}

fn kv_put(slot: &Slot, key_len: u32, value_len: u32, ttl_ms: f64) -> Result<Answer> {
    let (key, value) = slot.put_args(key_len, value_len)?;
    let ttl = ttl_of(ttl_ms)?;
    slot.with_engine(|engine| engine.kv_put(key, value, ttl).napi().map(|v| Answer::Number(v as f64)))
}

/// How often a single operation is re-run after a conflict before the
/// `ConflictError` reaches the caller.
const SINGLE_OP_RETRIES: usize = 1000;

/// Runs `op` in a transaction of its own that commits (waiting for
/// durability in strict mode) before this returns, re-run on a conflict:
/// a single operation outside a transaction.
pub(crate) fn single_op<T>(engine: &Arc<Engine>, mut op: impl FnMut(&mut EngineTx) -> in_mem_core::Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        let mut tx = EngineTx::begin(engine).napi()?;
        let out = op(&mut tx).napi()?;
        match tx.commit(true) {
            Ok(_) => return Ok(out),
            Err(Error::Conflict { .. }) if attempt < SINGLE_OP_RETRIES => attempt += 1,
            Err(e) => return Err(to_napi(e)),
        }
    }
}

/// `state.set` outside a transaction: the cell's internal key at the start
/// of the I/O buffer (run | State | name), the value at `IO_VALUE_OFFSET`;
/// the same transaction of its own as the single-operation handle's
/// `stateSet`, without a JS string or buffer to convert. Answers the new
/// version.
fn state_set(slot: &Slot, key_len: u32, value_len: u32) -> Result<Answer> {
    let (key, value) = slot.put_args(key_len, value_len)?;
    single_op(&slot.engine()?, |tx| tx.state_set_key(key, value)).map(|v| Answer::Number(v as f64))
}

fn kv_exists(slot: &Slot, key_len: u32) -> Result<Answer> {
    let key = key_of(slot.io()?, key_len)?;
    slot.with_engine(|engine| Ok(Answer::Bool(engine.kv_get_with(key, |_, _, _| ()).napi()?.is_some())))
}

fn kv_delete(slot: &Slot, key_len: u32) -> Result<Answer> {
    let key = key_of(slot.io()?, key_len)?;
    slot.with_engine(|engine| engine.kv_delete(key).napi().map(Answer::Bool))
}

/// Reads the first `n` arguments of a call, all numbers.
unsafe fn args(env: sys::napi_env, info: sys::napi_callback_info, n: usize) -> Result<(&'static Slot, [f64; 4])> {
    let mut argc = 4usize;
    let mut argv = [ptr::null_mut(); 4];
    let mut data = ptr::null_mut();
    let status = unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) };
    if status != sys::Status::napi_ok || data.is_null() {
        return Err(invalid("could not read the call's arguments"));
    }
    let out = unsafe { numbers(env, &argv, argc, n) }?;
    // SAFETY: `data` is the `Arc<Slot>` leaked for this function in
    // `hot_functions`, released only by the function's finalizer.
    Ok((unsafe { &*(data as *const Slot) }, out))
}

/// The first `n` of a call's `argc` arguments `argv`, all numbers.
pub(crate) unsafe fn numbers(env: sys::napi_env, argv: &[sys::napi_value; 4], argc: usize, n: usize) -> Result<[f64; 4]> {
    if argc < n {
        return Err(invalid(format!("expected {n} arguments, got {argc}")));
    }
    let mut out = [0f64; 4];
    for i in 0..n {
        if unsafe { sys::napi_get_value_double(env, argv[i], &mut out[i]) } != sys::Status::napi_ok {
            return Err(invalid(format!("argument {i} must be a number")));
        }
    }
    Ok(out)
}

pub(crate) fn as_u32(x: f64) -> Result<u32> {
    if x >= 0.0 && x <= u32::MAX as f64 && x.fract() == 0.0 { Ok(x as u32) } else { Err(invalid("a length must be a 32-bit unsigned integer")) }
}

/// Runs one hot call: reads its arguments, catches panics, and turns the
/// answer into a JS value or a thrown error.
unsafe fn call(env: sys::napi_env, info: sys::napi_callback_info, n: usize, f: fn(&Slot, [f64; 4]) -> Result<Answer>) -> sys::napi_value {
    unsafe { call_env(env, info, n, |_, slot, a| f(slot, a)) }
}

/// [`call`] for a call that makes a JS value itself (with `env`).
unsafe fn call_env(
    env: sys::napi_env,
    info: sys::napi_callback_info,
    n: usize,
    f: impl FnOnce(sys::napi_env, &Slot, [f64; 4]) -> Result<Answer>,
) -> sys::napi_value {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let (slot, a) = unsafe { args(env, info, n) }?;
        f(env, slot, a)
    }));
    unsafe { answer(env, outcome) }
}

/// A hot call's outcome as a JS value, or thrown.
pub(crate) unsafe fn answer(env: sys::napi_env, outcome: std::thread::Result<Result<Answer>>) -> sys::napi_value {
    let mut result = ptr::null_mut();
    match outcome {
        Ok(Ok(Answer::Number(x))) => unsafe { sys::napi_create_double(env, x, &mut result) },
        Ok(Ok(Answer::Bool(b))) => unsafe { sys::napi_get_boolean(env, b, &mut result) },
        Ok(Ok(Answer::Undefined)) => unsafe { sys::napi_get_undefined(env, &mut result) },
        Ok(Ok(Answer::Value(value))) => return value,
        Ok(Err(e)) => {
            throw(env, &e.reason);
            return ptr::null_mut();
        }
        Err(panic) => {
            throw(env, &in_mem_core::panic_message(&*panic));
            return ptr::null_mut();
        }
    };
    result
}

fn throw(env: sys::napi_env, message: &str) {
    let code = CString::new("GenericFailure").unwrap();
    let msg = CString::new(message.replace('\0', " ")).unwrap();
    unsafe { sys::napi_throw_error(env, code.as_ptr(), msg.as_ptr()) };
}

unsafe extern "C" fn get_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_env(env, info, 2, |env, s, a| kv_get(env, s, as_u32(a[0])?, a[1] != 0.0)) }
}

unsafe extern "C" fn state_get_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call_env(env, info, 1, |env, s, a| state_get(env, s, as_u32(a[0])?)) }
}

unsafe extern "C" fn json_get_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 2, |s, a| json_get(s, as_u32(a[0])?, as_u32(a[1])?)) }
}

unsafe extern "C" fn put_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 3, |s, a| kv_put(s, as_u32(a[0])?, as_u32(a[1])?, a[2])) }
}

unsafe extern "C" fn state_set_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 2, |s, a| state_set(s, as_u32(a[0])?, as_u32(a[1])?)) }
}

unsafe extern "C" fn exists_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 1, |s, a| kv_exists(s, as_u32(a[0])?)) }
}

unsafe extern "C" fn delete_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 1, |s, a| kv_delete(s, as_u32(a[0])?)) }
}

unsafe extern "C" fn is_open_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 0, |s, _| Ok(Answer::Bool(s.is_open()))) }
}

unsafe extern "C" fn request_durable_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    unsafe { call(env, info, 1, |s, a| request_durable(s, a[0]).map(Answer::Bool)) }
}

/// A raw Node-API callback.
pub(crate) type RawCallback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// An object of raw functions named as `table` says, each with the data
/// `data(name)` gives (and the finalizer that releases it).
pub(crate) fn function_table<'env>(
    env: &'env Env,
    table: &[(&str, RawCallback)],
    data: impl Fn(&str) -> Result<(*mut c_void, sys::napi_finalize)>,
) -> Result<Unknown<'env>> {
    let raw = env.raw();
    let check = |status: sys::napi_status, what: &str| {
        if status == sys::Status::napi_ok { Ok(()) } else { Err(invalid(format!("could not create {what}"))) }
    };
    let mut obj = ptr::null_mut();
    check(unsafe { sys::napi_create_object(raw, &mut obj) }, "the hot function table")?;
    for (name, cb) in table {
        let (data, finalize) = data(name)?;
        let cname = CString::new(*name).unwrap();
        let mut func = ptr::null_mut();
        let created = unsafe { sys::napi_create_function(raw, cname.as_ptr(), name.len() as isize, Some(*cb), data, &mut func) };
        if created != sys::Status::napi_ok {
            if let Some(finalize) = finalize {
                unsafe { finalize(raw, data, ptr::null_mut()) };
            }
            return Err(invalid(format!("could not create the hot function {name}")));
        }
        if let Some(finalize) = finalize {
            check(unsafe { sys::napi_add_finalizer(raw, func, data, Some(finalize), ptr::null_mut(), ptr::null_mut()) }, name)?;
        }
        check(unsafe { sys::napi_set_named_property(raw, obj, cname.as_ptr(), func) }, name)?;
    }
    Ok(unsafe { Unknown::from_raw_unchecked(raw, obj) })
}

unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` came from `Arc::into_raw` in `hot_functions`, once per function.
    drop(unsafe { Arc::from_raw(data as *const Slot) });
}

/// Creates `{ get(keyLen, versioned 0|1), put(keyLen, valueLen, ttlMs),
/// exists(keyLen), delete(keyLen), stateGet(keyLen), stateSet(keyLen,
/// valueLen), jsonGet(keyLen,
/// pathLen), isOpen(), requestDurable(version) }` bound to `slot`. Every
/// argument is a number: reading one costs a single Node-API call.
pub fn hot_functions<'env>(env: &'env Env, slot: &Arc<Slot>) -> Result<Unknown<'env>> {
    let table: [(&str, RawCallback); 9] = [
        ("get", get_cb),
        ("put", put_cb),
        ("exists", exists_cb),
        ("delete", delete_cb),
        ("stateGet", state_get_cb),
        ("stateSet", state_set_cb),
        ("jsonGet", json_get_cb),
        ("isOpen", is_open_cb),
        ("requestDurable", request_durable_cb),
    ];
    function_table(env, &table, |_| Ok((Arc::into_raw(slot.clone()) as *mut c_void, Some(release))))
}
