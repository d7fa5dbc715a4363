//! State machine calls of a transaction. A definition crosses as MessagePack
//! (the engine decodes and validates it); contexts and payloads cross as
//! MessagePack bytes.

use crate::bytes::Bytes;
use in_mem_engine::{Applied, ApplyOptions, CreateOptions, Definition, Instance, InstanceListOptions, TransitionDef};
use napi::bindgen_prelude::*;

use crate::answer;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::errors::{IntoNapi, invalid};
use crate::events::sequence_of;
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeTransitionDef {
    pub from: Vec<String>,
    pub event: String,
    pub to: String,
    pub guard: Option<String>,
}

#[napi(object)]
pub struct NativeDefinition {
    pub name: String,
    pub version: u32,
    pub states: Vec<String>,
    pub initial: String,
    pub transitions: Vec<NativeTransitionDef>,
}

impl From<Definition> for NativeDefinition {
    fn from(d: Definition) -> Self {
        let transitions =
            d.transitions.into_iter().map(|t: TransitionDef| NativeTransitionDef { from: t.from, event: t.event, to: t.to, guard: t.guard }).collect();
        NativeDefinition { name: d.name, version: d.version, states: d.states, initial: d.initial, transitions }
    }
}

#[napi(object)]
pub struct NativeInstance {
    pub id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    #[napi(ts_type = "Buffer")]
    pub context: Bytes,
    pub revision: f64,
    pub created_at: f64,
    pub updated_at: f64,
}

impl From<Instance> for NativeInstance {
    fn from(i: Instance) -> Self {
        NativeInstance {
            context: i.context_bytes().into(),
            id: i.id,
            machine: i.machine,
            version: i.version,
            state: i.state,
            revision: i.revision as f64,
            created_at: i.created_at as f64,
            updated_at: i.updated_at as f64,
        }
    }
}

#[napi(object)]
pub struct NativeApplied {
    pub from: String,
    pub to: String,
    #[napi(ts_type = "Buffer")]
    pub context: Bytes,
    pub revision: f64,
    pub applied: bool,
}

impl From<Applied> for NativeApplied {
    fn from(a: Applied) -> Self {
        NativeApplied { context: a.context_bytes().into(), from: a.from, to: a.to, revision: a.revision as f64, applied: a.applied }
    }
}

/// A definition version from JS: a positive integer that fits u32.
fn version_of(v: f64) -> Result<u32> {
    if !(v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v <= u32::MAX as f64) {
        return Err(invalid(format!("version must be a positive integer up to {}, not {v}", u32::MAX)));
    }
    Ok(v as u32)
}

#[napi]
impl NativeTransaction {
    /// Defines a machine version from its MessagePack; true when written,
    /// false when the same body was already defined.
    #[napi(catch_unwind)]
    pub fn machines_define(&mut self, definition: &[u8]) -> Result<bool> {
        let def = Definition::decode(definition).napi()?;
        self.run(|tx| tx.machines_define(&def))
    }

    #[napi(catch_unwind)]
    pub fn machines_definition(&mut self, name: String, version: Option<f64>) -> Result<Option<NativeDefinition>> {
        let version = version.map(version_of).transpose()?;
        Ok(self.run(|tx| tx.machines_definition(&name, version))?.map(Into::into))
    }

    #[napi(catch_unwind)]
    pub fn machines_definitions(&mut self, name: Option<String>) -> Result<Vec<NativeDefinition>> {
        Ok(self.run(|tx| tx.machines_definitions(name.as_deref()))?.into_iter().map(Into::into).collect())
    }

    #[napi(catch_unwind)]
    pub fn machines_create(
        &mut self,
        run: String,
        id: String,
        machine: String,
        version: Option<f64>,
        context: Option<Uint8Array>,
        idempotency_key: Option<String>,
    ) -> Result<NativeInstance> {
        let run = parse_run(&run)?;
        let opts = CreateOptions { machine, version: version.map(version_of).transpose()?, context: context.map(|c| c.to_vec()), idempotency_key };
        self.run(|tx| tx.machines_create(&run, &id, &opts)).map(Into::into)
    }

    #[allow(clippy::too_many_arguments)]
    #[napi(catch_unwind)]
    pub fn machines_apply(
        &mut self,
        run: String,
        id: String,
        event: String,
        payload: Option<Uint8Array>,
        expected_state: Option<String>,
        expected_revision: Option<f64>,
        idempotency_key: Option<String>,
    ) -> Result<NativeApplied> {
        let run = parse_run(&run)?;
        let opts = ApplyOptions {
            payload: payload.map(|p| p.to_vec()),
            expected_state,
            expected_revision: expected_revision.map(|r| sequence_of("expectedRevision", r)).transpose()?,
            idempotency_key,
        };
        self.run(|tx| tx.machines_apply(&run, &id, &event, &opts)).map(Into::into)
    }

    /// `machines_get` with its answer in the I/O buffer (see `answer.rs`): its length, or -1.
    #[napi(catch_unwind)]
    pub fn machines_get_into(&mut self, mut io: BufferSlice<'_>, run: String, id: String) -> Result<i64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.machines_get(&run, &id))?.map_or(-1, |i| answer::instance(&mut io, &i)))
    }

    /// `machines.list`, its instances in the I/O buffer (see `answer.rs`): their length.
    #[napi(catch_unwind)]
    pub fn machines_list_into(&mut self, mut io: BufferSlice<'_>, run: String, machine: Option<String>, state: Option<String>) -> Result<i64> {
        let run = parse_run(&run)?;
        let opts = InstanceListOptions { machine, state };
        Ok(answer::instances(&mut io, &self.run(|tx| tx.machines_list(&run, &opts))?))
    }
}
