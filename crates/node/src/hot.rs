//! The hot KV calls of the fast path, as plain functions on an external
//! handle: a napi class method costs several times a plain function call,
//! and a typed-array argument costs more than the whole lookup. So the JS
//! side registers its I/O buffer once per handle (`registerIo`) and these
//! calls take only numbers: the key is at offset 0, a put's value (or a
//! read's answer) at `IO_VALUE_OFFSET`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use in_mem_engine::Engine;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::IO_VALUE_OFFSET;
use crate::database::{key_of, ttl_of, write_answer};
use crate::errors::{IntoNapi, invalid, to_napi};

/// What a JS `Database` handle holds: its engine (taken out on close) and
/// its registered I/O buffer. Used only from the JS thread that owns it.
#[derive(Default)]
pub struct Slot {
    engine: RefCell<Option<Arc<Engine>>>,
    io: Cell<(usize, usize)>,
}

impl Slot {
    pub fn new(engine: Arc<Engine>) -> Arc<Slot> {
        Arc::new(Slot { engine: RefCell::new(Some(engine)), io: Cell::new((0, 0)) })
    }

    pub fn engine(&self) -> Result<Arc<Engine>> {
        self.engine.borrow().clone().ok_or_else(|| to_napi(in_mem_core::Error::Closed))
    }

    fn with_engine<R>(&self, f: impl FnOnce(&Engine) -> Result<R>) -> Result<R> {
        match &*self.engine.borrow() {
            Some(engine) => f(engine),
            None => Err(to_napi(in_mem_core::Error::Closed)),
        }
    }

    pub fn take(&self) -> Option<Arc<Engine>> {
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

    fn io(&self) -> Result<&mut [u8]> {
        let (ptr, len) = self.io.get();
        if ptr == 0 {
            return Err(invalid("no I/O buffer is registered"));
        }
        // SAFETY: see `register_io`; calls are synchronous on the owning JS
        // thread, so no other reference to the buffer is live during one.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) })
    }
}

#[napi(catch_unwind)]
pub fn kv_get(handle: &External<Arc<Slot>>, key_len: u32, versioned: bool) -> Result<i64> {
    let slot: &Slot = handle;
    let io = slot.io()?;
    if key_len as usize > IO_VALUE_OFFSET || io.len() < IO_VALUE_OFFSET {
        return Err(invalid("key length exceeds the key area of the I/O buffer"));
    }
    let (key, out) = io.split_at_mut(IO_VALUE_OFFSET);
    let key = key_of(key, key_len)?;
    slot.with_engine(|engine| {
        Ok(engine
            .kv_get_with(key, |version, updated_at, payload| write_answer(out, version, updated_at, payload, versioned))
            .napi()?
            .unwrap_or(-1))
    })
}

#[napi(catch_unwind)]
pub fn kv_put(handle: &External<Arc<Slot>>, key_len: u32, value_len: u32, ttl_ms: f64) -> Result<f64> {
    let slot: &Slot = handle;
    let io = slot.io()?;
    let value = io
        .get(IO_VALUE_OFFSET..IO_VALUE_OFFSET + value_len as usize)
        .ok_or_else(|| invalid("value length exceeds the I/O buffer"))?;
    let key = key_of(io, key_len)?;
    let ttl = ttl_of(ttl_ms)?;
    slot.with_engine(|engine| engine.kv_put(key, value, ttl).napi().map(|v| v as f64))
}

#[napi(catch_unwind)]
pub fn kv_exists(handle: &External<Arc<Slot>>, key_len: u32) -> Result<bool> {
    let slot: &Slot = handle;
    let key = key_of(slot.io()?, key_len)?;
    slot.with_engine(|engine| Ok(engine.kv_get_with(key, |_, _, _| ()).napi()?.is_some()))
}

#[napi(catch_unwind)]
pub fn kv_delete(handle: &External<Arc<Slot>>, key_len: u32) -> Result<bool> {
    let slot: &Slot = handle;
    let key = key_of(slot.io()?, key_len)?;
    slot.with_engine(|engine| engine.kv_delete(key).napi())
}
