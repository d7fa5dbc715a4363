//! StateCell calls of a transaction.

use crate::bytes::Bytes;
use in_mem_engine::Cell;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::events::sequence_of;
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeCell {
    pub name: String,
    #[napi(ts_type = "Buffer")]
    pub value: Bytes,
    pub version: f64,
    pub updated_at: f64,
}

impl From<Cell> for NativeCell {
    fn from(c: Cell) -> Self {
        NativeCell { value: c.value().to_vec().into(), version: c.version as f64, updated_at: c.updated_at as f64, name: c.name }
    }
}

#[napi(object)]
pub struct NativeCas {
    pub ok: bool,
    pub version: f64,
}

#[napi]
impl NativeTransaction {
    #[napi(catch_unwind)]
    pub fn state_get(&mut self, run: String, name: String) -> Result<Option<NativeCell>> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.state_get(&run, &name))?.map(Into::into))
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

    #[napi(catch_unwind)]
    pub fn state_list(&mut self, run: String) -> Result<Vec<NativeCell>> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| Ok(tx.state_list(&run)))?.into_iter().map(Into::into).collect())
    }
}
