//! The watch feed: open, wait (off the JS thread), close.

use std::sync::Arc;
use std::time::Duration;

use crate::bytes::Bytes;
use in_mem_engine::{Engine, WatchFilter, watch_tag};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::database::NativeDatabase;
use crate::errors::{IntoNapi, invalid};
use crate::events::sequence_of;

#[napi(object)]
pub struct NativeWatchStart {
    pub id: f64,
    pub after: f64,
}

#[napi(object)]
pub struct NativeChange {
    pub version: f64,
    pub run: String,
    pub primitive: String,
    pub key: String,
    pub deleted: bool,
    #[napi(ts_type = "Buffer")]
    pub value: Option<Bytes>,
}

#[napi(object)]
pub struct NativeWatchBatch {
    pub changes: Vec<NativeChange>,
    /// The version the watcher has now seen up to.
    pub upto: f64,
}

pub struct WatchWait {
    engine: Arc<Engine>,
    id: u64,
    after: u64,
    filter: WatchFilter,
    timeout: Duration,
}

impl Task for WatchWait {
    type Output = Option<NativeWatchBatch>;
    type JsValue = Option<NativeWatchBatch>;

    fn compute(&mut self) -> Result<Option<NativeWatchBatch>> {
        let Some((changes, upto)) = self.engine.watch_wait(self.id, self.after, &self.filter, self.timeout).napi()? else {
            return Ok(None);
        };
        let changes = changes
            .iter()
            .filter_map(|c| c.describe().map(|d| (c.version, d)))
            .map(|(version, d)| NativeChange {
                version: version as f64,
                run: d.run.to_string(),
                primitive: crate::history::primitive(d.tag).into(),
                key: d.key,
                deleted: d.deleted,
                value: d.payload.map(Into::into),
            })
            .collect();
        Ok(Some(NativeWatchBatch { changes, upto: upto as f64 }))
    }

    fn resolve(&mut self, _env: Env, output: Option<NativeWatchBatch>) -> Result<Option<NativeWatchBatch>> {
        Ok(output)
    }
}

#[napi]
impl NativeDatabase {
    #[napi(catch_unwind)]
    pub fn watch_open(&self) -> Result<NativeWatchStart> {
        let (id, after) = self.engine()?.watch_open().napi()?;
        Ok(NativeWatchStart { id: id as f64, after: after as f64 })
    }

    /// Resolves with the changes after `after`, or an empty batch after
    /// `timeoutMs`, or null once the watcher is closed.
    #[napi(catch_unwind, ts_return_type = "Promise<NativeWatchBatch | null>")]
    pub fn watch_wait(&self, id: f64, after: f64, run: Option<String>, primitives: Option<Vec<String>>, timeout_ms: f64) -> Result<AsyncTask<WatchWait>> {
        let run = run.map(|r| parse_run(&r)).transpose()?;
        let tags = primitives.map(|p| p.iter().map(|n| watch_tag(n)).collect::<in_mem_core::Result<Vec<_>>>()).transpose().napi()?;
        if !(timeout_ms.is_finite() && timeout_ms >= 0.0) {
            return Err(invalid("timeoutMs must be a non-negative number"));
        }
        Ok(AsyncTask::new(WatchWait {
            engine: self.engine()?,
            id: sequence_of("id", id)?,
            after: sequence_of("after", after)?,
            filter: WatchFilter { run, tags },
            timeout: Duration::from_secs_f64(timeout_ms / 1000.0),
        }))
    }

    #[napi(catch_unwind)]
    pub fn watch_close(&self, id: f64) -> Result<()> {
        if let Ok(engine) = self.engine() {
            engine.watch_close(sequence_of("id", id)?);
        }
        Ok(())
    }
}
