//! JSON document calls of a transaction.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::transaction::NativeTransaction;

#[napi]
impl NativeTransaction {
    /// `json.get` in a transaction, the value in the I/O buffer: its length, or -1.
    #[napi(catch_unwind)]
    pub fn json_get_into(&mut self, mut io: BufferSlice<'_>, run: String, doc: String, path: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.json_get(&run, &doc, &path))?.map_or(-1, |v| crate::answer::to_io(&mut io, &v)))
    }

    /// Document ids of the run in id order (see `EngineTx::json_list`).
    #[napi(catch_unwind)]
    pub fn json_list(&mut self, run: String, prefix: Option<String>, after: Option<String>, limit: Option<f64>) -> Result<Vec<String>> {
        let run = parse_run(&run)?;
        let limit = match limit {
            Some(l) if !(l.is_finite() && l >= 0.0 && l.fract() == 0.0) => return Err(Error::new(Status::InvalidArg, "limit must be a non-negative integer")),
            l => l.map(|l| l as usize),
        };
        self.run(|tx| tx.json_list(&run, prefix.as_deref(), after.as_deref(), limit))
    }

    /// Answers `true` (every write answers something: see `NativeOps.write`).
    #[napi(catch_unwind)]
    pub fn json_set(&mut self, run: String, doc: String, path: String, value: &[u8]) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.json_set(&run, &doc, &path, value)).map(|()| true)
    }

    #[napi(catch_unwind)]
    pub fn json_delete(&mut self, run: String, doc: String, path: String) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.json_delete(&run, &doc, &path))
    }

    /// Answers `true`, as `json_set`.
    #[napi(catch_unwind)]
    pub fn json_merge(&mut self, run: String, doc: String, path: String, patch: &[u8]) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.json_merge(&run, &doc, &path, patch)).map(|()| true)
    }
}
