//! Bytes handed to JS as a `Buffer` that owns a copy in the JS heap.
//!
//! napi-rs's `Buffer` made from a `Vec<u8>` becomes an external buffer with
//! a finalizer, which V8 makes costly: about 6 µs each on this project's
//! machine, more than the rest of a small read (a state cell, an event).
//! Values crossing here are small, and `napi_create_buffer_copy` costs a
//! copy, so every value a read returns goes through [`Bytes`].

use napi::bindgen_prelude::*;
use napi::sys;

/// Bytes that reach JS as a `Buffer` holding a copy of them.
pub struct Bytes(pub Vec<u8>);

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl TypeName for Bytes {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Bytes {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let mut out = std::ptr::null_mut();
        // SAFETY: `val.0` is valid for its length for the duration of the
        // call, which copies it; `out` receives the new Buffer.
        let status = unsafe { sys::napi_create_buffer_copy(env, val.0.len(), val.0.as_ptr().cast(), std::ptr::null_mut(), &mut out) };
        if status != sys::Status::napi_ok {
            return Err(Error::new(Status::from(status), "could not create a Buffer for a value"));
        }
        Ok(out)
    }
}

impl FromNapiValue for Bytes {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> Result<Self> {
        // SAFETY: forwarded as received from napi-rs.
        let buf = unsafe { Buffer::from_napi_value(env, value)? };
        Ok(Bytes(buf.to_vec()))
    }
}
