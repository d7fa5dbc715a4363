//! TraceStore calls of a transaction.

use crate::bytes::Bytes;
use in_mem_engine::{NewTrace, Trace, TraceId, TraceQuery, TraceType};
use napi::bindgen_prelude::*;

use crate::answer;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::errors::{IntoNapi, invalid};
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeTrace {
    pub id: String,
    #[napi(js_name = "type")]
    pub trace_type: String,
    pub parent: Option<String>,
    #[napi(ts_type = "Buffer")]
    pub data: Bytes,
    pub tags: Vec<String>,
    #[napi(ts_type = "Buffer")]
    pub metadata: Option<Bytes>,
    pub timestamp: f64,
}

impl From<Trace> for NativeTrace {
    fn from(t: Trace) -> Self {
        NativeTrace {
            id: t.id.to_string(),
            trace_type: t.kind.as_str().into(),
            parent: t.parent.map(|p| p.to_string()),
            data: t.data.into(),
            tags: t.tags,
            metadata: t.metadata.map(Bytes::from),
            timestamp: t.timestamp as f64,
        }
    }
}

fn traces(v: Vec<Trace>) -> Vec<NativeTrace> {
    v.into_iter().map(Into::into).collect()
}

fn parse_id(id: &str) -> Result<TraceId> {
    TraceId::parse(id).napi()
}

/// A non-negative integer from JS (milliseconds, a limit).
fn whole(name: &str, v: f64) -> Result<u64> {
    if !(v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9007199254740991.0) {
        return Err(invalid(format!("{name} must be a non-negative integer, not {v}")));
    }
    Ok(v as u64)
}

#[napi]
impl NativeTransaction {
    #[napi(catch_unwind)]
    pub fn traces_record(
        &mut self,
        run: String,
        trace_type: String,
        parent: Option<String>,
        data: &[u8],
        tags: Option<Vec<String>>,
        metadata: Option<Buffer>,
    ) -> Result<String> {
        let run = parse_run(&run)?;
        let trace = NewTrace {
            kind: TraceType::parse(&trace_type).napi()?,
            parent: parent.as_deref().map(parse_id).transpose()?,
            data,
            tags: tags.unwrap_or_default(),
            metadata: metadata.as_deref(),
        };
        Ok(self.run(|tx| tx.trace_record(&run, &trace))?.to_string())
    }

    /// `traces_get` with its answer in the I/O buffer (see `answer.rs`): its length, or -1.
    #[napi(catch_unwind)]
    pub fn traces_get_into(&mut self, mut io: BufferSlice<'_>, run: String, id: String) -> Result<i64> {
        let run = parse_run(&run)?;
        let id = parse_id(&id)?;
        Ok(self.run(|tx| tx.trace_get(&run, &id))?.map_or(-1, |t| answer::trace(&mut io, &t)))
    }

    #[napi(catch_unwind)]
    pub fn traces_get(&mut self, run: String, id: String) -> Result<Option<NativeTrace>> {
        let run = parse_run(&run)?;
        let id = parse_id(&id)?;
        Ok(self.run(|tx| tx.trace_get(&run, &id))?.map(Into::into))
    }

    #[napi(catch_unwind)]
    pub fn traces_children(&mut self, run: String, id: String) -> Result<Vec<NativeTrace>> {
        let run = parse_run(&run)?;
        let id = parse_id(&id)?;
        self.run(|tx| tx.trace_children(&run, &id)).map(traces)
    }

    #[napi(catch_unwind)]
    pub fn traces_roots(&mut self, run: String) -> Result<Vec<NativeTrace>> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.trace_roots(&run)).map(traces)
    }

    /// The subtree under `id` (or every tree of the run) in depth-first
    /// order, each trace before its children.
    #[napi(catch_unwind)]
    pub fn traces_tree(&mut self, run: String, id: Option<String>) -> Result<Vec<NativeTrace>> {
        let run = parse_run(&run)?;
        let id = id.as_deref().map(parse_id).transpose()?;
        self.run(|tx| tx.trace_tree(&run, id.as_ref())).map(traces)
    }

    #[napi(catch_unwind)]
    pub fn traces_query(
        &mut self,
        run: String,
        trace_type: Option<String>,
        tag: Option<String>,
        since: Option<f64>,
        until: Option<f64>,
        limit: Option<f64>,
    ) -> Result<Vec<NativeTrace>> {
        let run = parse_run(&run)?;
        let q = TraceQuery {
            kind: trace_type.as_deref().map(TraceType::parse).transpose().napi()?,
            tag,
            since: since.map(|v| whole("since", v)).transpose()?,
            until: until.map(|v| whole("until", v)).transpose()?,
            limit: limit.map(|v| whole("limit", v).map(|n| n as usize)).transpose()?,
        };
        self.run(|tx| tx.trace_query(&run, &q)).map(traces)
    }
}
