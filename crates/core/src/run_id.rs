//! `RunId`: a UUIDv7, time-ordered, so the run index lists runs in creation
//! order. Internally it is 16 bytes, the first part of every internal key.

use std::fmt;

use crate::{Error, Result};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct RunId(pub [u8; 16]);

impl RunId {
    /// The reserved all-zero id: the keyspace of database-wide records
    /// (the run table and its indexes). Never handed out as a run.
    pub const SYSTEM: RunId = RunId([0; 16]);

    /// A fresh UUIDv7.
    pub fn new() -> Self {
        RunId(*uuid::Uuid::now_v7().as_bytes())
    }

    /// Parses the canonical hyphenated form (`xxxxxxxx-xxxx-...`).
    pub fn parse(s: &str) -> Result<Self> {
        let parsed = uuid::Uuid::try_parse(s).map_err(|_| Error::invalid_argument(format!("run id {s:?} is not a UUID")))?;
        let id = RunId(*parsed.as_bytes());
        if id == RunId::SYSTEM {
            return Err(Error::invalid_argument("run id 00000000-0000-0000-0000-000000000000 is reserved"));
        }
        Ok(id)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::invalid_argument("a run id is 16 bytes"))?;
        Ok(RunId(arr))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RunId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = RunId::new();
        assert_eq!(RunId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let a = RunId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = RunId::new();
        assert!(a < b);
    }

    #[test]
    fn parse_rejects_garbage_and_the_reserved_id() {
        assert!(RunId::parse("not-a-uuid").is_err());
        assert!(RunId::parse("00000000-0000-0000-0000-000000000000").is_err());
    }
}
