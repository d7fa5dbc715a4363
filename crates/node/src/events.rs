//! EventLog calls of a transaction.

use crate::answer;
use in_mem_engine::{Appended, EventRangeOptions, Verification};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::errors::invalid;
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeAppended {
    pub sequence: f64,
    pub hash: String,
    pub prev_hash: String,
    pub timestamp: f64,
}

impl From<Appended> for NativeAppended {
    fn from(a: Appended) -> Self {
        NativeAppended { sequence: a.sequence as f64, hash: hex::encode(a.hash), prev_hash: hex::encode(a.prev_hash), timestamp: a.timestamp as f64 }
    }
}

#[napi(object)]
pub struct NativeVerification {
    pub valid: bool,
    pub length: f64,
    pub first_invalid: Option<f64>,
    pub reason: Option<String>,
}

impl From<Verification> for NativeVerification {
    fn from(v: Verification) -> Self {
        NativeVerification { valid: v.valid, length: v.length as f64, first_invalid: v.first_invalid.map(|s| s as f64), reason: v.reason }
    }
}

/// A sequence number from JS: a non-negative integer.
pub fn sequence_of(name: &str, v: f64) -> Result<u64> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9007199254740991.0) {
        return Err(invalid(format!("{name} must be a non-negative integer, not {v}")));
    }
    Ok(v as u64)
}

#[napi]
impl NativeTransaction {
    #[napi(catch_unwind)]
    pub fn events_append(&mut self, run: String, event_type: String, payload: &[u8]) -> Result<NativeAppended> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.events_append(&run, &event_type, payload)).map(Into::into)
    }

    /// `events.range`, its events in the I/O buffer (see `answer.rs`): their length.
    #[napi(catch_unwind)]
    pub fn events_range_into(
        &mut self,
        mut io: BufferSlice<'_>,
        run: String,
        from: Option<f64>,
        to: Option<f64>,
        event_type: Option<String>,
        limit: Option<f64>,
    ) -> Result<i64> {
        let run = parse_run(&run)?;
        let opts = EventRangeOptions {
            from: from.map(|v| sequence_of("from", v)).transpose()?,
            to: to.map(|v| sequence_of("to", v)).transpose()?,
            event_type,
            limit: limit.map(|v| sequence_of("limit", v).map(|n| n as usize)).transpose()?,
        };
        Ok(answer::events(&mut io, &self.run(|tx| tx.events_range(&run, &opts))?))
    }

    #[napi(catch_unwind)]
    pub fn events_length(&mut self, run: String) -> Result<f64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| Ok(tx.events_length(&run)))? as f64)
    }

    /// `events_get` with its answer in the I/O buffer (see `answer.rs`): its length, or -1.
    #[napi(catch_unwind)]
    pub fn events_get_into(&mut self, mut io: BufferSlice<'_>, run: String, sequence: f64) -> Result<i64> {
        let run = parse_run(&run)?;
        let seq = sequence_of("sequence", sequence)?;
        Ok(self.run(|tx| tx.events_get(&run, seq))?.map_or(-1, |e| answer::event(&mut io, &e)))
    }

    /// `events_head` with its answer in the I/O buffer: its length, or -1.
    #[napi(catch_unwind)]
    pub fn events_head_into(&mut self, mut io: BufferSlice<'_>, run: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.events_last(&run))?.map_or(-1, |e| answer::event(&mut io, &e)))
    }

    #[napi(catch_unwind)]
    pub fn events_verify(&mut self, run: String) -> Result<NativeVerification> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.events_verify(&run)).map(Into::into)
    }
}
