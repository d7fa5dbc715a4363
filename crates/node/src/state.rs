//! StateCell calls of a transaction.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::events::sequence_of;
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeCas {
    pub ok: bool,
    pub version: f64,
}

#[napi]
impl NativeTransaction {
    /// `state.get` in a transaction, its answer in the I/O buffer (see `answer.rs`): its length, or -1.
    #[napi(catch_unwind)]
    pub fn state_get_into(&mut self, mut io: BufferSlice<'_>, run: String, name: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.state_get(&run, &name))?.map_or(-1, |c| crate::answer::cell(&mut io, &c)))
    }

    #[napi(catch_unwind)]
    pub fn state_init(&mut self, run: String, name: String, value: &[u8]) -> Result<f64> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.state_init(&run, &name, value)).map(|v| v as f64)
    }

    #[napi(catch_unwind)]
    pub fn state_set(&mut self, run: String, name: String, value: &[u8]) -> Result<f64> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.state_set(&run, &name, value)).map(|v| v as f64)
    }

    #[napi(catch_unwind)]
    pub fn state_cas(&mut self, run: String, name: String, expected_version: f64, value: &[u8]) -> Result<NativeCas> {
        let run = parse_run(&run)?;
        let expected = sequence_of("expectedVersion", expected_version)?;
        let (ok, version) = self.run(|tx| tx.state_cas(&run, &name, expected, value))?;
        Ok(NativeCas { ok, version: version as f64 })
    }

    #[napi(catch_unwind)]
    pub fn state_delete(&mut self, run: String, name: String) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.state_delete(&run, &name))
    }

    /// `state.list`, in the I/O buffer: its length.
    #[napi(catch_unwind)]
    pub fn state_list_into(&mut self, mut io: BufferSlice<'_>, run: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(crate::answer::cells(&mut io, &self.run(|tx| Ok(tx.state_list(&run)))?))
    }
}
