//! Conversions between the engine's types and what crosses the JS boundary,
//! used by every binding module (and depending on none of them).

use crate::bytes::Bytes;
use crate::errors::{IntoNapi, invalid};
use in_mem_core::RunId;
use in_mem_engine::{Engine, KvEntry, KvListOptions, RunInfo};
use napi::bindgen_prelude::*;
use napi_derive::napi;

#[napi(object)]
pub struct NativeRunInfo {
    pub id: String,
    pub name: Option<String>,
    pub status: String,
    pub parent: Option<String>,
    pub tags: Vec<String>,
    #[napi(ts_type = "Buffer")]
    pub metadata: Option<Bytes>,
    pub created_at: f64,
    pub ended_at: Option<f64>,
    pub error: Option<String>,
    /// For a fork: the parent's commit version it was forked at.
    pub forked_at: Option<f64>,
}

/// A run as JS sees it, with its fork point if it is a fork. Every run the
/// binding returns goes through here, so none lacks `forkedAt`.
pub(crate) fn described(engine: &Engine, r: RunInfo) -> NativeRunInfo {
    NativeRunInfo {
        forked_at: engine.fork_of(&r.id).map(|(_, at)| at as f64),
        id: r.id.to_string(),
        name: r.name,
        status: r.status.as_str().into(),
        parent: r.parent.map(|p| p.to_string()),
        tags: r.tags,
        metadata: r.metadata.map(Bytes::from),
        created_at: r.created_at as f64,
        ended_at: r.ended_at.map(|t| t as f64),
        error: r.error,
    }
}

pub fn parse_run(s: &str) -> Result<RunId> {
    RunId::parse(s).napi()
}

pub fn write_answer(out: &mut [u8], version: u64, updated_at: u64, payload: &[u8], versioned: bool) -> i64 {
    let header = if versioned { 16 } else { 0 };
    if header + payload.len() > out.len() {
        return payload.len() as i64;
    }
    if versioned {
        out[0..8].copy_from_slice(&(version as f64).to_le_bytes());
        out[8..16].copy_from_slice(&(updated_at as f64).to_le_bytes());
    }
    out[header..header + payload.len()].copy_from_slice(payload);
    payload.len() as i64
}

pub fn key_of(io: &[u8], key_len: u32) -> Result<&[u8]> {
    io.get(..key_len as usize).ok_or_else(|| invalid("key length exceeds the I/O buffer"))
}

pub fn ttl_of(ttl_ms: f64) -> Result<Option<u64>> {
    if ttl_ms.is_nan() || ttl_ms < 0.0 {
        return Err(invalid("ttlMs must be a positive number"));
    }
    Ok((ttl_ms > 0.0).then(|| ttl_ms.ceil() as u64))
}

pub fn list_options(prefix: Option<String>, after: Option<String>, limit: Option<f64>, reverse: Option<bool>) -> Result<KvListOptions> {
    let limit = match limit {
        Some(l) if !(l.is_finite() && l >= 0.0 && l.fract() == 0.0) => return Err(invalid("limit must be a non-negative integer")),
        Some(l) => Some(l as usize),
        None => None,
    };
    Ok(KvListOptions { prefix: prefix.map(String::into_bytes), after: after.map(String::into_bytes), limit, reverse: reverse.unwrap_or(false) })
}

/// Packs entries as `[key len u32][key][value len u32][value]...` so that a
/// listing crosses the boundary as one buffer.
pub fn pack_entries(entries: &[KvEntry]) -> Buffer {
    let mut out = Vec::with_capacity(entries.iter().map(|e| 8 + e.key.len() + e.payload().len()).sum());
    for e in entries {
        out.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.key);
        out.extend_from_slice(&(e.payload().len() as u32).to_le_bytes());
        out.extend_from_slice(e.payload());
    }
    out.into()
}

pub fn keys_of(entries: Vec<KvEntry>) -> Vec<String> {
    entries.into_iter().map(|e| String::from_utf8(e.key).unwrap_or_default()).collect()
}
