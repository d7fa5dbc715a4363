//! Internal keys: `run id (16 bytes) | type tag (1 byte) | user key`.
//!
//! Invariant: one run's data is the prefix range of its 16 bytes, and one
//! primitive within a run is the prefix range of its 17 bytes. Every record
//! in the store, the run table included, follows this layout.

use crate::limits::MAX_KEY_BYTES;
use crate::{Error, Result, RunId};

/// Bytes before the user key: the run id and the type tag.
pub const KEY_PREFIX_LEN: usize = 17;

/// Which primitive (or system table) a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum TypeTag {
    /// Run table: SYSTEM | RunInfo | run id.
    RunInfo = 0x01,
    /// Run index by status: SYSTEM | RunByStatus | status | run id.
    RunByStatus = 0x02,
    /// Run index by tag: SYSTEM | RunByTag | tag | 0x00 | run id.
    RunByTag = 0x03,
    /// Run index by parent: SYSTEM | RunByParent | parent id | child id.
    RunByParent = 0x04,
    /// Forks: SYSTEM | ForkOf | fork id → parent id, version.
    ForkOf = 0x05,
    Kv = 0x10,
    Event = 0x11,
    State = 0x12,
    Machine = 0x13,
    Trace = 0x14,
    Json = 0x15,
    Vector = 0x16,
}

impl TypeTag {
    pub fn from_u8(b: u8) -> Option<TypeTag> {
        use TypeTag::*;
        Some(match b {
            0x01 => RunInfo,
            0x02 => RunByStatus,
            0x03 => RunByTag,
            0x04 => RunByParent,
            0x05 => ForkOf,
            0x10 => Kv,
            0x11 => Event,
            0x12 => State,
            0x13 => Machine,
            0x14 => Trace,
            0x15 => Json,
            0x16 => Vector,
            _ => return None,
        })
    }
}

/// Helpers to build and take apart internal keys.
pub struct InternalKey;

impl InternalKey {
    pub fn build(run: &RunId, tag: TypeTag, user: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(KEY_PREFIX_LEN + user.len());
        k.extend_from_slice(run.as_bytes());
        k.push(tag as u8);
        k.extend_from_slice(user);
        k
    }

    /// The prefix shared by every key of one primitive in one run.
    pub fn prefix(run: &RunId, tag: TypeTag) -> Vec<u8> {
        Self::build(run, tag, &[])
    }

    pub fn run(key: &[u8]) -> Option<RunId> {
        key.get(..16).map(|b| RunId(b.try_into().unwrap()))
    }

    pub fn tag(key: &[u8]) -> Option<TypeTag> {
        key.get(16).and_then(|b| TypeTag::from_u8(*b))
    }

    pub fn user(key: &[u8]) -> &[u8] {
        key.get(KEY_PREFIX_LEN..).unwrap_or(&[])
    }

    /// Checks a user key against SPEC §3: 1–1024 bytes of UTF-8, no NUL.
    pub fn validate_user_key(user: &[u8]) -> Result<()> {
        if user.is_empty() {
            return Err(Error::invalid_argument("a key must not be empty"));
        }
        if user.len() > MAX_KEY_BYTES {
            return Err(Error::limit(format!("key is {} bytes; the limit is {MAX_KEY_BYTES} bytes", user.len())));
        }
        if user.contains(&0) {
            return Err(Error::invalid_argument("a key must not contain NUL"));
        }
        if std::str::from_utf8(user).is_err() {
            return Err(Error::invalid_argument("a key must be valid UTF-8"));
        }
        Ok(())
    }

    /// The smallest key greater than every key starting with `prefix`, or
    /// `None` when the prefix is all 0xFF (the range is then unbounded).
    pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < 0xFF {
                end.push(last + 1);
                return Some(end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_run_is_a_prefix_range() {
        let run = RunId::new();
        let k = InternalKey::build(&run, TypeTag::Kv, b"abc");
        assert!(k.starts_with(run.as_bytes()));
        assert_eq!(InternalKey::run(&k), Some(run));
        assert_eq!(InternalKey::tag(&k), Some(TypeTag::Kv));
        assert_eq!(InternalKey::user(&k), b"abc");
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(InternalKey::prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(InternalKey::prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(InternalKey::prefix_end(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn user_keys_are_validated() {
        assert!(InternalKey::validate_user_key(b"").is_err());
        assert!(InternalKey::validate_user_key(b"a\0b").is_err());
        assert!(InternalKey::validate_user_key(&[0xC3]).is_err());
        assert!(InternalKey::validate_user_key(&vec![b'a'; 1025]).is_err());
        assert!(InternalKey::validate_user_key(&vec![b'a'; 1024]).is_ok());
    }
}
