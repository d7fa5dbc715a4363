//! The run table and its indexes, all in the SYSTEM keyspace:
//!
//! ```text
//! SYSTEM | RunInfo     | run id                 -> encoded RunInfo
//! SYSTEM | RunByStatus | status u8 | run id     -> empty
//! SYSTEM | RunByTag    | tag | 0x00 | run id    -> empty
//! SYSTEM | RunByParent | parent id | run id     -> empty
//! ```
//!
//! Run ids are UUIDv7, so every index lists runs in creation order, and
//! `after` is a cursor into it. Status rules (SPEC §5): `active` → `completed
//! | failed | cancelled`; `active ↔ paused`; any ended status → `archived`.

use in_mem_core::limits::{MAX_RUN_NAME_CHARS, MAX_TAG_CHARS, MAX_TAGS};
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use serde_json::json;

use crate::core::commit_record::Reader;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RunStatus {
    Active = 1,
    Paused = 2,
    Completed = 3,
    Failed = 4,
    Cancelled = 5,
    Archived = 6,
}

impl RunStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunStatus::Active => "active",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Archived => "archived",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => RunStatus::Active,
            "paused" => RunStatus::Paused,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "archived" => RunStatus::Archived,
            other => return Err(Error::invalid_argument(format!("unknown run status {other:?}"))),
        })
    }

    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => RunStatus::Active,
            2 => RunStatus::Paused,
            3 => RunStatus::Completed,
            4 => RunStatus::Failed,
            5 => RunStatus::Cancelled,
            6 => RunStatus::Archived,
            _ => return None,
        })
    }

    fn is_ended(&self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }
}

/// A requested change of status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAction {
    Complete,
    Fail,
    Cancel,
    Pause,
    Resume,
    Archive,
}

impl RunAction {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "complete" => RunAction::Complete,
            "fail" => RunAction::Fail,
            "cancel" => RunAction::Cancel,
            "pause" => RunAction::Pause,
            "resume" => RunAction::Resume,
            "archive" => RunAction::Archive,
            other => return Err(Error::invalid_argument(format!("unknown run action {other:?}"))),
        })
    }

    fn name(&self) -> &'static str {
        match self {
            RunAction::Complete => "complete",
            RunAction::Fail => "fail",
            RunAction::Cancel => "cancel",
            RunAction::Pause => "pause",
            RunAction::Resume => "resume",
            RunAction::Archive => "archive",
        }
    }

    /// The status this action leads to from `from`, or the error that says
    /// why it may not.
    pub fn apply(&self, run: &RunId, from: RunStatus) -> Result<RunStatus> {
        use RunStatus::*;
        let to = match (self, from) {
            (RunAction::Complete, Active) => Some(Completed),
            (RunAction::Fail, Active) => Some(Failed),
            (RunAction::Cancel, Active) => Some(Cancelled),
            (RunAction::Pause, Active) => Some(Paused),
            (RunAction::Resume, Paused) => Some(Active),
            (RunAction::Archive, s) if s.is_ended() => Some(Archived),
            _ => None,
        };
        to.ok_or_else(|| Error::InvalidTransition {
            message: format!("run {run} is {}; it cannot {}", from.as_str(), self.name()),
            details: json!({ "run": run.to_string(), "from": from.as_str(), "action": self.name() }),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RunInfo {
    pub id: RunId,
    pub name: Option<String>,
    pub status: RunStatus,
    pub parent: Option<RunId>,
    pub tags: Vec<String>,
    /// Encoded value bytes (the JS codec's), opaque here.
    pub metadata: Option<Vec<u8>>,
    pub created_at: u64,
    pub ended_at: Option<u64>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct RunListOptions {
    pub status: Option<RunStatus>,
    pub tag: Option<String>,
    pub parent: Option<RunId>,
    pub limit: Option<usize>,
    pub after: Option<RunId>,
}

pub fn validate_new_run(name: Option<&str>, tags: &[String]) -> Result<()> {
    if let Some(name) = name {
        let n = name.chars().count();
        if n > MAX_RUN_NAME_CHARS {
            return Err(Error::limit(format!("run name is {n} characters; the limit is {MAX_RUN_NAME_CHARS}")));
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(Error::limit(format!("a run has {} tags; the limit is {MAX_TAGS}", tags.len())));
    }
    for t in tags {
        if t.is_empty() || t.contains('\0') {
            return Err(Error::invalid_argument("a tag must be non-empty and contain no NUL"));
        }
        if t.chars().count() > MAX_TAG_CHARS {
            return Err(Error::limit(format!("tag is longer than {MAX_TAG_CHARS} characters")));
        }
    }
    Ok(())
}

pub fn info_key(run: &RunId) -> Vec<u8> {
    InternalKey::build(&RunId::SYSTEM, TypeTag::RunInfo, run.as_bytes())
}

pub fn status_key(status: RunStatus, run: &RunId) -> Vec<u8> {
    let mut user = vec![status as u8];
    user.extend_from_slice(run.as_bytes());
    InternalKey::build(&RunId::SYSTEM, TypeTag::RunByStatus, &user)
}

pub fn tag_key(tag: &str, run: &RunId) -> Vec<u8> {
    let mut user = tag.as_bytes().to_vec();
    user.push(0);
    user.extend_from_slice(run.as_bytes());
    InternalKey::build(&RunId::SYSTEM, TypeTag::RunByTag, &user)
}

pub fn parent_key(parent: &RunId, run: &RunId) -> Vec<u8> {
    let mut user = parent.as_bytes().to_vec();
    user.extend_from_slice(run.as_bytes());
    InternalKey::build(&RunId::SYSTEM, TypeTag::RunByParent, &user)
}

/// The index range to scan for `opts`, and the length of the prefix before
/// the run id in each key. The most selective index available is chosen.
pub fn index_range(opts: &RunListOptions) -> Vec<u8> {
    if let Some(status) = opts.status {
        InternalKey::build(&RunId::SYSTEM, TypeTag::RunByStatus, &[status as u8])
    } else if let Some(parent) = &opts.parent {
        InternalKey::build(&RunId::SYSTEM, TypeTag::RunByParent, parent.as_bytes())
    } else if let Some(tag) = &opts.tag {
        let mut user = tag.as_bytes().to_vec();
        user.push(0);
        InternalKey::build(&RunId::SYSTEM, TypeTag::RunByTag, &user)
    } else {
        InternalKey::prefix(&RunId::SYSTEM, TypeTag::RunInfo)
    }
}

impl RunInfo {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(1); // encoding version
        out.push(self.status as u8);
        out.extend_from_slice(&self.created_at.to_le_bytes());
        out.extend_from_slice(&self.ended_at.unwrap_or(0).to_le_bytes());
        match &self.parent {
            Some(p) => {
                out.push(1);
                out.extend_from_slice(p.as_bytes());
            }
            None => out.push(0),
        }
        put_opt_bytes(&mut out, self.name.as_ref().map(|s| s.as_bytes()));
        out.extend_from_slice(&(self.tags.len() as u32).to_le_bytes());
        for t in &self.tags {
            put_opt_bytes(&mut out, Some(t.as_bytes()));
        }
        put_opt_bytes(&mut out, self.metadata.as_deref());
        put_opt_bytes(&mut out, self.error.as_ref().map(|s| s.as_bytes()));
        out
    }

    pub fn decode(id: RunId, bytes: &[u8]) -> Result<RunInfo> {
        let bad = || Error::internal(format!("run record of {id} does not decode"));
        let mut r = Reader::new(bytes);
        if r.u8().ok_or_else(bad)? != 1 {
            return Err(bad());
        }
        let status = RunStatus::from_u8(r.u8().ok_or_else(bad)?).ok_or_else(bad)?;
        let created_at = r.u64().ok_or_else(bad)?;
        let ended = r.u64().ok_or_else(bad)?;
        let parent = match r.u8().ok_or_else(bad)? {
            1 => Some(RunId::from_slice(r.take(16).ok_or_else(bad)?)?),
            _ => None,
        };
        fn opt(r: &mut Reader<'_>) -> Option<Option<Vec<u8>>> {
            let n = r.u32()?;
            if n == u32::MAX { Some(None) } else { Some(Some(r.take(n as usize)?.to_vec())) }
        }
        let string = |b: Option<Vec<u8>>| -> Result<Option<String>> { b.map(|b| String::from_utf8(b).map_err(|_| bad())).transpose() };
        let name = string(opt(&mut r).ok_or_else(bad)?)?;
        let ntags = r.u32().ok_or_else(bad)?;
        let mut tags = Vec::with_capacity(ntags.min(MAX_TAGS as u32) as usize);
        for _ in 0..ntags {
            tags.push(string(opt(&mut r).ok_or_else(bad)?)?.ok_or_else(bad)?);
        }
        let metadata = opt(&mut r).ok_or_else(bad)?;
        let error = string(opt(&mut r).ok_or_else(bad)?)?;
        Ok(RunInfo { id, name, status, parent, tags, metadata, created_at, ended_at: (ended != 0).then_some(ended), error })
    }

    /// Every index entry this run has in its current state.
    pub fn index_keys(&self) -> Vec<Vec<u8>> {
        let mut keys = vec![status_key(self.status, &self.id)];
        for t in &self.tags {
            keys.push(tag_key(t, &self.id));
        }
        if let Some(p) = &self.parent {
            keys.push(parent_key(p, &self.id));
        }
        keys
    }

    /// When the run ended (ms), from an encoded record, without decoding
    /// the rest: `None` while it has not.
    pub fn ended_at_of(bytes: &[u8]) -> Option<u64> {
        let t = u64::from_le_bytes(bytes.get(10..18)?.try_into().ok()?);
        (t != 0).then_some(t)
    }

    /// Status byte of an encoded record, without decoding the rest.
    pub fn status_of(bytes: &[u8]) -> Option<RunStatus> {
        bytes.get(1).and_then(|b| RunStatus::from_u8(*b))
    }
}

fn put_opt_bytes(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_info_round_trips() {
        let info = RunInfo {
            id: RunId::new(),
            name: Some("agent".into()),
            status: RunStatus::Failed,
            parent: Some(RunId::new()),
            tags: vec!["a".into(), "b".into()],
            metadata: Some(vec![1, 2, 3]),
            created_at: 5,
            ended_at: Some(9),
            error: Some("boom".into()),
        };
        assert_eq!(RunInfo::decode(info.id, &info.encode()).unwrap(), info);
        let bare = RunInfo { name: None, parent: None, tags: vec![], metadata: None, ended_at: None, error: None, ..info };
        assert_eq!(RunInfo::decode(bare.id, &bare.encode()).unwrap(), bare);
    }

    #[test]
    fn status_rules_follow_the_spec() {
        use RunAction::*;
        use RunStatus::*;
        let r = RunId::new();
        assert_eq!(Complete.apply(&r, Active).unwrap(), Completed);
        assert_eq!(Pause.apply(&r, Active).unwrap(), Paused);
        assert_eq!(Resume.apply(&r, Paused).unwrap(), Active);
        assert_eq!(Archive.apply(&r, Failed).unwrap(), Archived);
        assert!(Complete.apply(&r, Paused).is_err());
        assert!(Archive.apply(&r, Active).is_err());
        assert!(Resume.apply(&r, Completed).is_err());
        assert!(Complete.apply(&r, Archived).is_err());
    }
}
