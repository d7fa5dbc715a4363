//! Watch: a feed of committed changes for subscribers.
//!
//! While at least one watcher is open, every commit's writes are kept in a
//! bounded ring (`OpenOptions::watch_buffer` commits). A watcher asks for
//! the changes after the last version it was given; if the ring no longer
//! holds the next one, the watcher has lagged and gets `LaggedError` with
//! that version. In strict mode a change is handed out only once its commit
//! is durable. No watcher: nothing is recorded, the commit path pays one
//! atomic load.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use in_mem_storage::Value;

use crate::core::Engine;

/// One committed write, as a watcher sees it.
#[derive(Clone, Debug)]
pub struct Change {
    pub version: u64,
    pub key: Box<[u8]>,
    pub value: Option<Value>,
}

/// A change as users see it: which primitive, which key (the sequence for
/// events, the id for traces and machine instances) and the new value's
/// encoded payload where the primitive has one (kv, state, json, events).
#[derive(Clone, Debug, PartialEq)]
pub struct Described {
    pub run: RunId,
    pub tag: TypeTag,
    pub key: String,
    pub deleted: bool,
    pub payload: Option<Vec<u8>>,
}

impl Change {
    /// `None` for bookkeeping entries (event-log head, trace parent index,
    /// idempotency records).
    pub fn describe(&self) -> Option<Described> {
        let run = InternalKey::run(&self.key)?;
        let tag = InternalKey::tag(&self.key)?;
        let user = InternalKey::user(&self.key);
        let value = self.value.as_deref();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (key, payload) = match tag {
            TypeTag::Kv => (text(user), value.map(|v| crate::primitives::kv::payload(v).to_vec())),
            TypeTag::State => (text(user), value.and_then(|v| v.get(16..)).map(<[u8]>::to_vec)),
            TypeTag::Json => (text(user), value.map(<[u8]>::to_vec)),
            TypeTag::Event if user.len() == 8 => {
                let seq = u64::from_be_bytes(user.try_into().unwrap());
                (
                    seq.to_string(),
                    value.and_then(|v| crate::primitives::events::Event::decode(seq, &in_mem_storage::value(v)).ok()).map(|e| e.payload().to_vec()),
                )
            }
            TypeTag::Trace if user.len() == 17 && user[0] == 0x01 => (RunId::from_slice(&user[1..]).ok()?.to_string(), None),
            TypeTag::Machine if user.first() == Some(&0x01) => (text(&user[1..]), None),
            // A vector (0x02 | collection | 0x00 | id) as "collection/id".
            TypeTag::Vector if user.first() == Some(&0x02) => (text(&user[1..]).replacen('\0', "/", 1), None),
            _ => return None,
        };
        Some(Described { run, tag, key, deleted: value.is_none(), payload })
    }
}

/// What a watcher wants.
#[derive(Clone, Debug, Default)]
pub struct WatchFilter {
    pub run: Option<RunId>,
    pub tags: Option<Vec<TypeTag>>,
}

impl WatchFilter {
    fn accepts(&self, key: &[u8]) -> bool {
        if let Some(run) = &self.run
            && key[..16] != run.as_bytes()[..]
        {
            return false;
        }
        match (&self.tags, InternalKey::tag(key)) {
            (Some(tags), Some(tag)) => tags.contains(&tag),
            (Some(_), None) => false,
            (None, _) => true,
        }
    }
}

impl Engine {
    /// Opens a watcher; returns its id and the version it starts after.
    pub fn watch_open(&self) -> Result<(u64, u64)> {
        self.check_open()?;
        let feed = self.feed();
        // Hold the commit lock so no commit falls between the start version
        // and the first one recorded.
        let last = self.commit_lock();
        feed.watchers.fetch_add(1, Ordering::AcqRel);
        let id = feed.next_id.fetch_add(1, Ordering::Relaxed);
        Ok((id, *last))
    }

    pub fn watch_close(&self, id: u64) {
        let feed = self.feed();
        let mut ring = feed.ring.lock();
        if ring.closed.insert(id) {
            feed.watchers.fetch_sub(1, Ordering::AcqRel);
            if feed.watchers.load(Ordering::Acquire) == 0 {
                ring.commits.clear();
            }
        }
        drop(ring);
        feed.wake.notify_all();
    }

    /// The changes after `after` that `filter` accepts, waiting up to
    /// `timeout` for some. Returns the changes and the version the watcher
    /// has now seen up to (which moves on even when the filter took none), or
    /// `None` once the watcher is closed.
    pub fn watch_wait(&self, id: u64, after: u64, filter: &WatchFilter, timeout: Duration) -> Result<Option<(Vec<Change>, u64)>> {
        let feed = self.feed();
        let deadline = Instant::now() + timeout;
        let mut ring = feed.ring.lock();
        loop {
            if ring.closed.contains(&id) || self.is_shut() {
                return Ok(None);
            }
            let upto = self.deliverable_version();
            if let Some((first, _)) = ring.commits.front()
                && *first > after + 1
                && upto > after
            {
                return Err(Error::Lagged {
                    message: format!("the watcher fell behind: the change buffer no longer holds commit {}", after + 1),
                    last_delivered: after,
                });
            }
            if upto > after {
                let mut out = Vec::new();
                for (version, writes) in ring.commits.iter().filter(|(v, _)| *v > after && *v <= upto) {
                    for (key, value) in writes.iter().filter(|(k, _)| filter.accepts(k)) {
                        out.push(Change { version: *version, key: key.clone(), value: value.clone() });
                    }
                }
                return Ok(Some((out, upto)));
            }
            if feed.wake.wait_until(&mut ring, deadline).timed_out() {
                return Ok(Some((Vec::new(), after)));
            }
        }
    }
}

/// Parses a primitive's name as `watch` takes it.
pub fn tag_of(name: &str) -> Result<TypeTag> {
    Ok(match name {
        "kv" => TypeTag::Kv,
        "events" => TypeTag::Event,
        "state" => TypeTag::State,
        "machines" => TypeTag::Machine,
        "traces" => TypeTag::Trace,
        "json" => TypeTag::Json,
        "vectors" => TypeTag::Vector,
        other => {
            return Err(Error::invalid_argument(format!("unknown primitive {other:?}; one of kv, events, state, json, traces, machines, vectors")));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::WatchFilter;
    use crate::primitives::kv::{KvDb, key};

    /// A watcher woken by a commit's record of its changes, before the
    /// commit's version was published, found nothing to deliver and slept
    /// until its timeout: the wake-up must come after the publish.
    #[test]
    fn a_waiting_watcher_gets_a_commit_as_soon_as_it_is_published() {
        let db = crate::testing::memory();
        let run = db.run_begin(None, None, vec![], None).unwrap().id;
        let (id, after) = db.watch_open().unwrap();
        let waiter = {
            let db = db.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let got = db.watch_wait(id, after, &WatchFilter { run: None, tags: None }, Duration::from_secs(20)).unwrap();
                (started.elapsed(), got)
            })
        };
        // (The watcher is most likely waiting by now; if not, it finds the
        // commit when it looks, and the test passes as it should.)
        std::thread::sleep(Duration::from_millis(100));
        db.pause_before_publish_ms.store(200, Ordering::Relaxed);
        db.kv_put(&key(&run, b"k").unwrap(), &[0x01], None).unwrap();
        let (elapsed, got) = waiter.join().unwrap();
        let (changes, _) = got.expect("the watch is open");
        assert_eq!(changes.len(), 1, "the one KV write");
        assert!(elapsed < Duration::from_secs(10), "woken by the commit, not by its 20 s timeout: {elapsed:?}");
        db.watch_close(id);
    }
}
