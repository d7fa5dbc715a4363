//! One engine per data directory per process: opening a path that is already
//! open (from any thread, `worker_threads` included, since they share the
//! addon's statics) returns the same engine.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Weak};

use parking_lot::Mutex;

use crate::database::Engine;

static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<Engine>>>> = LazyLock::new(Default::default);

/// Returns the engine open at `path`, or the one `open` creates. The
/// registry lock is held across `open`, so two threads never both open it.
pub fn open_shared(path: PathBuf, open: impl FnOnce() -> in_mem_core::Result<Arc<Engine>>) -> in_mem_core::Result<Arc<Engine>> {
    let mut map = OPEN.lock();
    if let Some(engine) = map.get(&path).and_then(Weak::upgrade) {
        return Ok(engine);
    }
    let engine = open()?;
    map.retain(|_, w| w.strong_count() > 0);
    map.insert(path, Arc::downgrade(&engine));
    Ok(engine)
}
