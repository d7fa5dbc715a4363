//! TraceStore calls of a transaction.

use in_mem_engine::{NewTrace, TraceId, TraceQuery, TraceType};
use napi::bindgen_prelude::*;

use crate::answer;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::errors::{IntoNapi, invalid};
use crate::transaction::NativeTransaction;

/// The filters of `traces.query`.
#[napi(object)]
pub struct NativeTraceQuery {
    #[napi(js_name = "type")]
    pub trace_type: Option<String>,
    pub tag: Option<String>,
    pub since: Option<f64>,
    pub until: Option<f64>,
    pub limit: Option<f64>,
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

    /// `traces.children`, in the I/O buffer (see `answer.rs`): their length.
    #[napi(catch_unwind)]
    pub fn traces_children_into(&mut self, mut io: BufferSlice<'_>, run: String, id: String) -> Result<i64> {
        let run = parse_run(&run)?;
        let id = parse_id(&id)?;
        Ok(answer::traces(&mut io, &self.run(|tx| tx.trace_children(&run, &id))?))
    }

    /// `traces.roots`, in the I/O buffer: their length.
    #[napi(catch_unwind)]
    pub fn traces_roots_into(&mut self, mut io: BufferSlice<'_>, run: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(answer::traces(&mut io, &self.run(|tx| tx.trace_roots(&run))?))
    }

    /// The subtree under `id` (or every tree of the run) in depth-first
    /// order, each trace before its children.
    /// The subtree under `id` (or every tree of the run) in depth-first
    /// order, each trace before its children, in the I/O buffer: its length.
    #[napi(catch_unwind)]
    pub fn traces_tree_into(&mut self, mut io: BufferSlice<'_>, run: String, id: Option<String>) -> Result<i64> {
        let run = parse_run(&run)?;
        let id = id.as_deref().map(parse_id).transpose()?;
        Ok(answer::traces(&mut io, &self.run(|tx| tx.trace_tree(&run, id.as_ref()))?))
    }

    /// `traces.query`, in the I/O buffer: their length.
    #[napi(catch_unwind)]
    pub fn traces_query_into(&mut self, mut io: BufferSlice<'_>, run: String, query: NativeTraceQuery) -> Result<i64> {
        let run = parse_run(&run)?;
        let NativeTraceQuery { trace_type, tag, since, until, limit } = query;
        let q = TraceQuery {
            kind: trace_type.as_deref().map(TraceType::parse).transpose().napi()?,
            tag,
            since: since.map(|v| whole("since", v)).transpose()?,
            until: until.map(|v| whole("until", v)).transpose()?,
            limit: limit.map(|v| whole("limit", v).map(|n| n as usize)).transpose()?,
        };
        Ok(answer::traces(&mut io, &self.run(|tx| tx.trace_query(&run, &q))?))
    }
}
