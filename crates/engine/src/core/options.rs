use std::time::Duration;

use in_mem_core::{Error, Result};

/// How much a commit survives (SPEC §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Applied in memory; no files at all.
    Memory,
    /// Queued for the WAL; a background flusher writes and fsyncs.
    Buffered,
    /// Returns once the commit's WAL record is fsynced (group commit).
    Strict,
}

impl Durability {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "memory" => Ok(Durability::Memory),
            "buffered" => Ok(Durability::Buffered),
            "strict" => Ok(Durability::Strict),
            other => Err(Error::invalid_argument(format!("durability must be 'memory', 'buffered' or 'strict', not {other:?}"))),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Durability::Memory => "memory",
            Durability::Buffered => "buffered",
            Durability::Strict => "strict",
        }
    }
}

#[derive(Clone, Debug)]
pub struct OpenOptions {
    pub durability: Durability,
    pub flush_interval: Duration,
    pub max_pending_writes: usize,
    pub segment_bytes: u64,
    /// How often expired TTL keys are purged (and the WAL size checked).
    pub purge_interval: Duration,
    /// A checkpoint is taken in the background once the WAL on disk is
    /// larger than this; 0: never automatically.
    pub checkpoint_bytes: u64,
    /// Whether closing the last handle takes a checkpoint (when anything was
    /// committed since the newest one).
    pub checkpoint_on_close: bool,
    /// Open a damaged directory by cutting the damage away (copied aside
    /// first) instead of failing with `CorruptionError`.
    pub repair: bool,
    /// Commits the watch feed keeps for slow watchers.
    pub watch_buffer: usize,
    /// Recover and read, change no file but `LOCK`: no WAL is opened, a
    /// torn tail is reported and left, writes are refused.
    pub read_only: bool,
    /// History retention: `None` keeps every version of run data (replay,
    /// fork and diff reach any point); `Some(n)` keeps the newest `n`
    /// versions per key (and what open snapshots and forks read), in
    /// memory, in checkpoints and so after a restart, so those reach only
    /// back to each run's history horizon.
    pub history_keep: Option<usize>,
    /// Cold runs (SPEC §17): a run that ended at least this long ago (ms),
    /// and was not read or loaded back from disk in as long, leaves memory at the
    /// next checkpoint; `None`: runs stay in memory. Only a durable
    /// database that keeps every version (`history_keep` `None`) has cold
    /// runs.
    pub cold_after_ms: Option<u64>,
}

/// The default of [`OpenOptions::cold_after_ms`]: ten minutes.
pub const COLD_AFTER_MS: u64 = 10 * 60 * 1000;

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::Buffered,
            flush_interval: Duration::from_millis(100),
            max_pending_writes: 1000,
            segment_bytes: 64 * 1024 * 1024,
            purge_interval: Duration::from_millis(1000),
            checkpoint_bytes: 64 * 1024 * 1024,
            checkpoint_on_close: true,
            repair: false,
            watch_buffer: 10_000,
            read_only: false,
            history_keep: None,
            cold_after_ms: Some(COLD_AFTER_MS),
        }
    }
}

impl OpenOptions {
    /// The first option, by its JavaScript name, whose value differs from
    /// `other`'s, with both values as text. `durability`, `readOnly` and
    /// `repair` (which acts only at open) are not compared here.
    pub(crate) fn first_difference(&self, other: &OpenOptions) -> Option<(&'static str, String, String)> {
        fn differ<T: PartialEq + std::fmt::Debug>(name: &'static str, a: &T, b: &T) -> Option<(&'static str, String, String)> {
            (a != b).then(|| (name, format!("{a:?}"), format!("{b:?}")))
        }
        differ("flushIntervalMs", &self.flush_interval, &other.flush_interval)
            .or_else(|| differ("maxPendingWrites", &self.max_pending_writes, &other.max_pending_writes))
            .or_else(|| differ("segmentBytes", &self.segment_bytes, &other.segment_bytes))
            .or_else(|| differ("purgeIntervalMs", &self.purge_interval, &other.purge_interval))
            .or_else(|| differ("checkpointBytes", &self.checkpoint_bytes, &other.checkpoint_bytes))
            .or_else(|| differ("checkpointOnClose", &self.checkpoint_on_close, &other.checkpoint_on_close))
            .or_else(|| differ("watchBuffer", &self.watch_buffer, &other.watch_buffer))
            .or_else(|| differ("coldAfterMs", &self.cold_after_ms, &other.cold_after_ms))
            .or_else(|| {
                let text = |k: &Option<usize>| k.map_or("'all'".to_string(), |n| format!("{{ keep: {n} }}"));
                (self.history_keep != other.history_keep).then(|| ("history", text(&self.history_keep), text(&other.history_keep)))
            })
    }
}
