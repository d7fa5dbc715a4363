//! StateCells: named values per run with a version that starts at 1 and
//! rises by 1 on every write. A cell deleted and created again continues
//! from the version it had when it was deleted, so a version a client read
//! before the delete never matches again (no ABA through `cas`).
//!
//! Layout: `run | State | name → version u64 LE | updatedAt ms u64 LE | value`.
//! `cas` answers from the transaction's snapshot at once; a concurrent write
//! to the same cell makes the commit a conflict, never a silent overwrite.

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use in_mem_storage::Value;
use serde_json::json;

use crate::access::{Db, EngineTx, check_fast_key};
use crate::primitives::kv::check_value;

/// A cell as read.
#[derive(Clone, Debug)]
pub struct Cell {
    pub name: String,
    pub version: u64,
    pub updated_at: u64,
    stored: Value,
}

impl Cell {
    pub fn value(&self) -> &[u8] {
        &self.stored[16..]
    }

    fn decode(name: &[u8], stored: &Value) -> Cell {
        Cell {
            name: String::from_utf8_lossy(name).into_owned(),
            version: u64::from_le_bytes(stored[..8].try_into().unwrap()),
            updated_at: u64::from_le_bytes(stored[8..16].try_into().unwrap()),
            stored: stored.clone(),
        }
    }
}

fn cell_key(run: &RunId, name: &str) -> Result<Vec<u8>> {
    InternalKey::validate_user_key(name.as_bytes())?;
    Ok(InternalKey::build(run, TypeTag::State, name.as_bytes()))
}

/// The stored form, copied once into its allocation (was a `Vec`, then
/// the value: two copies of a large value).
fn stored(version: u64, value: &[u8]) -> Value {
    in_mem_storage::joined(&[&version.to_le_bytes(), &now_ms().to_le_bytes(), value])
}

impl EngineTx {
    pub fn state_get(&mut self, run: &RunId, name: &str) -> Result<Option<Cell>> {
        let key = cell_key(run, name)?;
        Ok(self.read(&key).map(|(_, v)| Cell::decode(name.as_bytes(), &v)))
    }

    /// Whether the cell is present, and its version — or, when it is
    /// absent, the version it had before it was last deleted (0: it never
    /// existed).
    fn current_version(&mut self, key: &[u8]) -> (bool, u64) {
        let version_of = |v: &[u8]| u64::from_le_bytes(v[..8].try_into().unwrap());
        if let Some((_, v)) = self.read(key) {
            return (true, version_of(&v));
        }
        let before = match self.read_any(key) {
            // Deleted at `tomb`: the value before it (through a fork's
            // parent, if that is where it lived).
            Some((tomb, None)) if tomb > 0 => self.read_at(key, tomb - 1).map_or(0, |(_, v)| version_of(&v)),
            // Present at the snapshot but deleted by this transaction.
            Some((_, Some(v))) => version_of(&v),
            _ => 0,
        };
        (false, before)
    }

    fn state_write(&mut self, key: &[u8], version: u64, value: &[u8]) -> Result<u64> {
        check_value(value)?;
        self.write(key, Some(stored(version, value)))?;
        Ok(version)
    }

    /// Creates the cell (at version 1, or past the version it had before a
    /// delete); `AlreadyExistsError` if it exists.
    pub fn state_init(&mut self, run: &RunId, name: &str, value: &[u8]) -> Result<u64> {
        self.check_run_writable(run)?;
        let key = cell_key(run, name)?;
        let (present, version) = self.current_version(&key);
        if present {
            return Err(Error::already_exists(
                format!("state cell {name:?} already exists in run {run} (version {version})"),
                json!({ "run": run.to_string(), "name": name, "version": version }),
            ));
        }
        self.state_write(&key, version + 1, value)
    }

    /// Writes unconditionally; returns the new version.
    pub fn state_set(&mut self, run: &RunId, name: &str, value: &[u8]) -> Result<u64> {
        self.check_run_writable(run)?;
        let key = cell_key(run, name)?;
        self.state_set_at(&key, value)
    }

    /// [`EngineTx::state_set`] of the cell whose internal key (run | State |
    /// name) is `key`, as the fast path has it: the key checked, not rebuilt.
    pub fn state_set_key(&mut self, key: &[u8], value: &[u8]) -> Result<u64> {
        check_fast_key(key, TypeTag::State, "state cell")?;
        self.check_run_writable(&RunId::from_slice(&key[..16])?)?;
        self.state_set_at(key, value)
    }

    fn state_set_at(&mut self, key: &[u8], value: &[u8]) -> Result<u64> {
        let (_, current) = self.current_version(key);
        self.state_write(key, current + 1, value)
    }

    /// Writes if the cell is at `expected` (0: absent). Returns whether it
    /// wrote and the cell's version after the call.
    pub fn state_cas(&mut self, run: &RunId, name: &str, expected: u64, value: &[u8]) -> Result<(bool, u64)> {
        self.check_run_writable(run)?;
        let key = cell_key(run, name)?;
        check_value(value)?;
        let (present, current) = self.current_version(&key);
        // An absent cell is at version 0 for `cas`, whatever it had before
        // a delete; creating it continues from that version.
        let seen = if present { current } else { 0 };
        if seen != expected {
            return Ok((false, seen));
        }
        self.state_write(&key, current + 1, value).map(|v| (true, v))
    }

    pub fn state_delete(&mut self, run: &RunId, name: &str) -> Result<bool> {
        self.check_run_writable(run)?;
        let key = cell_key(run, name)?;
        if self.read(&key).is_none() {
            return Ok(false);
        }
        self.write(&key, None)?;
        Ok(true)
    }

    /// Every cell of the run, by name.
    pub fn state_list(&mut self, run: &RunId) -> Vec<Cell> {
        let prefix = InternalKey::prefix(run, TypeTag::State);
        let mut out = Vec::new();
        self.scan_prefix(&prefix, false, &mut |k, _, v| {
            out.push(Cell::decode(&k[17..], v));
            true
        });
        out
    }
}
/// State operations outside a transaction.
pub trait StateDb: Db {
    /// Reads the state cell at internal key `key` (run | State | name) at the
    /// current snapshot, calling `f(cell version, updatedAt, value)`: the
    /// fast path of `state.get`, as `kv_get_with` is of `kv.get`.
    fn state_get_with<R>(&self, key: &[u8], f: impl FnOnce(u64, u64, &[u8]) -> R) -> Result<Option<R>> {
        self.state_get_stored(key, |version, updated_at, stored, at| f(version, updated_at, &stored[at..]))
    }

    /// [`StateDb::state_get_with`], with the stored value itself and where
    /// the cell's encoded value starts in it (as [`KvDb::kv_get_stored`]).
    fn state_get_stored<R>(&self, key: &[u8], f: impl FnOnce(u64, u64, &Value, usize) -> R) -> Result<Option<R>> {
        self.check_open()?;
        check_fast_key(key, TypeTag::State, "state cell")?;
        Ok(self.with_visible(key, |_, stored| {
            let version = u64::from_le_bytes(stored[..8].try_into().unwrap());
            let updated_at = u64::from_le_bytes(stored[8..16].try_into().unwrap());
            f(version, updated_at, stored, 16)
        }))
    }
}

impl<D: Db + ?Sized> StateDb for D {}
