//! Replay, fork, the run log and diff.

use crate::bytes::Bytes;
use in_mem_core::{InternalKey, RunId, TypeTag};
use in_mem_engine::RunDiff;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::{NativeRunInfo, parse_run};
use crate::database::NativeDatabase;
use crate::errors::{IntoNapi, invalid};
use crate::events::sequence_of;
use crate::transaction::NativeTransaction;

pub(crate) fn primitive(tag: TypeTag) -> &'static str {
    match tag {
        TypeTag::Kv => "kv",
        TypeTag::Event => "events",
        TypeTag::State => "state",
        TypeTag::Machine => "machines",
        TypeTag::Trace => "traces",
        TypeTag::Json => "json",
        TypeTag::Vector => "vectors",
        _ => "system",
    }
}

/// A user key as text: ids of traces are UUIDs, every other key UTF-8.
fn key_text(tag: TypeTag, key: &[u8]) -> String {
    match tag {
        TypeTag::Trace if key.len() == 16 => uuid_text(key),
        // A collection's configuration (0x01 | name) or a vector
        // (0x02 | collection | 0x00 | id): "collection" / "collection/id".
        TypeTag::Vector if !key.is_empty() => String::from_utf8_lossy(&key[1..]).replacen('\0', "/", 1),
        _ => String::from_utf8_lossy(key).into_owned(),
    }
}

fn uuid_text(bytes: &[u8]) -> String {
    RunId::from_slice(bytes).map(|r| r.to_string()).unwrap_or_default()
}

#[napi(object)]
pub struct NativeLoggedWrite {
    pub primitive: String,
    /// The user key; for traces and machine instances, their id; for
    /// events, the sequence; empty for bookkeeping entries.
    pub key: String,
    pub deleted: bool,
}

#[napi(object)]
pub struct NativeLoggedCommit {
    pub version: f64,
    pub writes: Vec<NativeLoggedWrite>,
}

#[napi(object)]
pub struct NativeDiffEntry {
    pub primitive: String,
    pub key: String,
    #[napi(ts_type = "Buffer")]
    pub a: Option<Bytes>,
    #[napi(ts_type = "Buffer")]
    pub b: Option<Bytes>,
}

#[napi(object)]
pub struct NativeRunDiff {
    pub entries: Vec<NativeDiffEntry>,
    pub events_common: f64,
    pub events_a: f64,
    pub events_b: f64,
}

impl From<RunDiff> for NativeRunDiff {
    fn from(d: RunDiff) -> Self {
        NativeRunDiff {
            entries: d
                .entries
                .into_iter()
                .map(|e| NativeDiffEntry { primitive: primitive(e.tag).into(), key: key_text(e.tag, &e.key), a: e.a.map(Into::into), b: e.b.map(Into::into) })
                .collect(),
            events_common: d.events_common as f64,
            events_a: d.events_a as f64,
            events_b: d.events_b as f64,
        }
    }
}

fn at_of(at: Option<f64>) -> Result<Option<u64>> {
    at.map(|v| sequence_of("at", v)).transpose()
}

/// What one logged write names, by the layout of each primitive's keys.
fn logged_write(key: &[u8], deleted: bool) -> NativeLoggedWrite {
    let tag = InternalKey::tag(key);
    let user = InternalKey::user(key);
    let key = match tag {
        Some(TypeTag::Event) if user.len() == 8 => u64::from_be_bytes(user.try_into().unwrap()).to_string(),
        Some(TypeTag::Trace) if user.len() == 17 && user[0] == 0x01 => uuid_text(&user[1..]),
        Some(TypeTag::Machine) if user.first() == Some(&0x01) => String::from_utf8_lossy(&user[1..]).into_owned(),
        Some(TypeTag::Kv | TypeTag::State | TypeTag::Json) => String::from_utf8_lossy(user).into_owned(),
        Some(TypeTag::Vector) => key_text(TypeTag::Vector, user),
        _ => String::new(),
    };
    NativeLoggedWrite { primitive: tag.map_or("system", primitive).into(), key, deleted }
}

#[napi]
impl NativeDatabase {
    /// A read-only view of `run` as of version `at`: a transaction pinned
    /// there on this engine (no copy, no thread).
    #[napi(catch_unwind)]
    pub fn replay(&self, run: String, at: Option<f64>) -> Result<NativeTransaction> {
        let tx = self.engine()?.replay_view(&parse_run(&run)?, at_of(at)?).napi()?;
        Ok(NativeTransaction::view(self.slot(), tx))
    }

    #[napi(catch_unwind)]
    pub fn run_fork(&self, run: String, name: Option<String>, at: Option<f64>) -> Result<NativeRunInfo> {
        let engine = self.engine()?;
        Ok(crate::convert::described(&engine, engine.run_fork(&parse_run(&run)?, name, at_of(at)?).napi()?))
    }

    /// The version the run's history is whole from: 0 unless a memory
    /// database's `history: { keep }` dropped older versions of its keys.
    #[napi(catch_unwind)]
    pub fn run_horizon(&self, run: String) -> Result<f64> {
        let engine = self.engine()?;
        let run = parse_run(&run)?;
        if engine.run_get(&run).napi()?.is_none() {
            return Err(crate::errors::to_napi(in_mem_core::Error::not_found(
                format!("run {run} does not exist"),
                serde_json::json!({ "run": run.to_string() }),
            )));
        }
        Ok(engine.history_horizon(&run) as f64)
    }

    /// The commits that wrote the run's own data, oldest first. Bookkeeping
    /// entries (event heads, trace parent index, idempotency records) are left
    /// out.
    #[napi(catch_unwind)]
    pub fn run_log(&self, run: String, at: Option<f64>) -> Result<Vec<NativeLoggedCommit>> {
        let log = self.engine()?.run_log(&parse_run(&run)?, at_of(at)?).napi()?;
        Ok(log
            .into_iter()
            .map(|c| NativeLoggedCommit {
                version: c.version as f64,
                writes: c.writes.iter().map(|(k, v)| logged_write(k, v.is_none())).filter(|w| !w.key.is_empty()).collect(),
            })
            .collect())
    }

    #[napi(catch_unwind)]
    pub fn event_version(&self, run: String, sequence: f64) -> Result<f64> {
        Ok(self.engine()?.event_version(&parse_run(&run)?, sequence_of("eventSequence", sequence)?).napi()? as f64)
    }

    #[napi(catch_unwind)]
    /// Compares two runs; at `at` (a version a transaction of the caller
    /// keeps pinned), or now.
    pub fn diff(&self, a: String, b: String, at: Option<f64>) -> Result<NativeRunDiff> {
        if a == b {
            return Err(invalid("diff compares two different runs"));
        }
        let engine = self.engine()?;
        let (a, b) = (parse_run(&a)?, parse_run(&b)?);
        let d = match at {
            Some(v) if v.is_finite() && v >= 0.0 && v.fract() == 0.0 => engine.diff_at(&a, &b, v as u64),
            Some(_) => return Err(invalid("at must be a commit version")),
            None => engine.diff(&a, &b),
        };
        Ok(d.napi()?.into())
    }
}
