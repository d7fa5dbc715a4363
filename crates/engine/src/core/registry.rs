//! One engine per data directory per process: opening a path that is already
//! open (from any thread, `worker_threads` included, since they share the
//! addon's statics) returns the same engine.
//!
//! An engine's last handle can go (a `close()`, a worker exiting, the
//! garbage collector) while another thread opens the same path. The
//! registry's `Weak` dies first, and the engine's shutdown (the checkpoint
//! on close, the WAL's last fsync, releasing `LOCK`) runs after it. An open
//! that finds a dead engine therefore waits for its [`Closed`] signal, so
//! it never meets this process's own lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex};

/// Raised by an engine once it has shut down and let go of its directory.
#[derive(Default)]
pub struct Closed {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Closed {
    pub fn mark(&self) {
        *self.done.lock() = true;
        self.cv.notify_all();
    }

    fn is_marked(&self) -> bool {
        *self.done.lock()
    }

    fn wait(&self) {
        let mut done = self.done.lock();
        while !*done {
            self.cv.wait(&mut done);
        }
    }
}

/// What the registry keeps of one open: the engine while it lives, and its
/// [`Closed`] signal.
struct Entry<T> {
    engine: Weak<T>,
    closed: Arc<Closed>,
}

/// Open engines by canonical path (the engine type is `T`).
pub struct Registry<T> {
    open: Mutex<HashMap<PathBuf, Entry<T>>>,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Registry { open: Mutex::default() }
    }
}

impl<T> Registry<T> {
    /// A handle on the engine open at `path`, or on the one `open` creates
    /// (`handle` takes a handle on a live engine, `closed` gives its
    /// signal). The registry lock is held across `open`, so two threads
    /// never both open it; an engine whose last handle has closed is waited
    /// for (it is shutting down) and the directory opened anew.
    pub fn open_shared<H>(
        &self,
        path: PathBuf,
        open: impl FnOnce() -> in_mem_core::Result<Arc<T>>,
        handle: impl Fn(&Arc<T>) -> Option<H>,
        closed: impl Fn(&T) -> Arc<Closed>,
    ) -> in_mem_core::Result<H> {
        let mut map = self.open.lock();
        if let Some(entry) = map.get(&path) {
            if let Some(h) = entry.engine.upgrade().and_then(|e| handle(&e)) {
                return Ok(h);
            }
            // Its shutdown never takes the registry lock, so this cannot
            // wait on ourselves.
            entry.closed.wait();
        }
        let engine = open()?;
        map.retain(|_, e| e.engine.strong_count() > 0 && !e.closed.is_marked());
        map.insert(path, Entry { engine: Arc::downgrade(&engine), closed: closed(&engine) });
        Ok(handle(&engine).expect("a new engine takes handles"))
    }
}
