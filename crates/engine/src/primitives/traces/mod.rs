//! TraceStore: the reasoning traces of a run. A trace may name a parent in
//! the same run, so a run's traces form a forest.
//!
//! A trace costs two stored entries (SPEC §5 allows at most two):
//!
//! ```text
//! run | Trace | 0x01 | trace id                             -> record (see `Stored`)
//! run | Trace | 0x02 | parent id (16 zeros: none) | trace id -> empty
//! ```
//!
//! Invariants, enforced here:
//! - A trace id is a UUIDv7 made when the trace is recorded: its first 48
//!   bits are the millisecond it was recorded (the trace's `timestamp`), and
//!   an id made later in this process sorts after an earlier one. So a run's
//!   records are in time order, and a time window is one key range.
//! - Traces are never rewritten. A parent exists (in the same run, as the
//!   recording transaction sees it) before its child is recorded, so the
//!   parent index has no cycles.
//! - Type and tag queries take their candidates from [`TraceIndex`]
//!   (`traces/index.rs`), which may name traces a reader cannot see: every
//!   candidate is confirmed by reading it at the reader's snapshot. A
//!   transaction's own uncommitted traces are taken from its write set.
//! - Conflicts: every record read (`get`, a parent check, each candidate a
//!   query confirms) joins the transaction's read set; `children`, `roots`
//!   and `tree` scan parent-index ranges, so a child another transaction
//!   adds after the snapshot is a conflict. A query holds the traces it
//!   examined, not its window: a trace another transaction records after the
//!   snapshot is not a conflict (snapshot isolation).

use in_mem_core::{Error, Result, RunId};
use serde_json::json;

use crate::access::EngineTx;

mod index;
mod record;

pub(crate) use index::TraceIndex;
use record::*;
pub use record::{NewTrace, Trace, TraceId, TraceQuery, TraceType};

impl EngineTx {
    /// Records a trace in `run` and returns its id. The parent, if any, must
    /// exist in `run` (a trace recorded earlier in this transaction counts).
    pub fn trace_record(&mut self, run: &RunId, trace: &NewTrace<'_>) -> Result<TraceId> {
        check_payload("data", trace.data)?;
        if let Some(m) = trace.metadata {
            check_payload("metadata", m)?;
        }
        check_tags(&trace.tags)?;
        self.check_run_writable(run)?;
        if let Some(parent) = &trace.parent
            && self.read(&record_key(run, parent)).is_none()
        {
            return Err(Error::not_found(
                format!("parent trace {parent} does not exist in run {run}"),
                json!({ "run": run.to_string(), "trace": parent.to_string() }),
            ));
        }
        let mut tags: Vec<&str> = Vec::with_capacity(trace.tags.len());
        for t in &trace.tags {
            if !tags.contains(&t.as_str()) {
                tags.push(t);
            }
        }
        let stored = Stored {
            kind: trace.kind.as_str(),
            parent: trace.parent.as_ref().map(|p| Bin(&p.0)),
            tags,
            data: Bin(trace.data),
            metadata: trace.metadata.map(Bin),
        };
        let bytes = rmp_serde::to_vec(&stored).map_err(|e| Error::internal(format!("encoding a trace record: {e}")))?;
        let id = TraceId::new();
        let mut index_key = children_prefix(run, trace.parent.as_ref());
        index_key.extend_from_slice(&id.0);
        self.write(&record_key(run, &id), Some(in_mem_storage::value(bytes)))?;
        self.write(&index_key, Some(in_mem_storage::value(b"")))?;
        Ok(id)
    }

    /// The trace, if `run` has one with this id.
    pub fn trace_get(&mut self, run: &RunId, id: &TraceId) -> Result<Option<Trace>> {
        match self.read(&record_key(run, id)) {
            Some((_, bytes)) => decode(run, *id, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The trace's children, in time order.
    pub fn trace_children(&mut self, run: &RunId, id: &TraceId) -> Result<Vec<Trace>> {
        self.require(run, id)?;
        self.children_of(run, Some(id))
    }

    /// The traces of `run` without a parent, in time order.
    pub fn trace_roots(&mut self, run: &RunId) -> Result<Vec<Trace>> {
        self.children_of(run, None)
    }

    /// The subtree under `id` (or every tree of the run), depth first: each
    /// trace before its children, children in time order. Each trace's
    /// `parent` says where it hangs.
    pub fn trace_tree(&mut self, run: &RunId, id: Option<&TraceId>) -> Result<Vec<Trace>> {
        let mut stack = match id {
            Some(id) => vec![self.require(run, id)?],
            None => self.children_of(run, None)?,
        };
        stack.reverse();
        let mut out = Vec::new();
        while let Some(trace) = stack.pop() {
            let mut children = self.children_of(run, Some(&trace.id))?;
            children.reverse();
            stack.append(&mut children);
            out.push(trace);
        }
        Ok(out)
    }

    /// The traces of `run` matching every filter of `q`, in time order.
    pub fn trace_query(&mut self, run: &RunId, q: &TraceQuery) -> Result<Vec<Trace>> {
        Ok(self.trace_query_examining(run, q)?.0)
    }

    /// [`EngineTx::trace_query`], also returning how many records it read:
    /// by type or tag, only the index's candidates; otherwise only the
    /// window, up to the limit.
    fn trace_query_examining(&mut self, run: &RunId, q: &TraceQuery) -> Result<(Vec<Trace>, usize)> {
        let limit = q.limit.unwrap_or(usize::MAX);
        let Some((lo, hi)) = window(q.since, q.until) else { return Ok((Vec::new(), 0)) };
        if limit == 0 {
            return Ok((Vec::new(), 0));
        }
        let start = record_key(run, &lo);
        let mut end = record_key(run, &hi);
        end.push(0);
        // This transaction's own traces in the window: its puts are
        // candidates; its deletions may hide that many scanned ones.
        let mut own = Vec::new();
        let mut own_deletes = 0;
        for (key, value) in &self.own_writes(&start, &end) {
            let Some((_, id)) = record_of(key) else { continue };
            match value {
                Some(bytes) => {
                    if decode(run, id, bytes)?.matches(q) {
                        own.push(id);
                    }
                }
                None => own_deletes += 1,
            }
        }
        let mut examined = 0;
        let mut ids = match self.trace_candidates(run, q.kind, q.tag.as_deref(), lo, hi) {
            Some(ids) => ids,
            None => {
                let want = limit.saturating_add(own_deletes);
                let mut ids = Vec::new();
                self.scan_untracked(&start, Some(&end), &mut |key, _, _| {
                    ids.push(TraceId::from_key_tail(key));
                    ids.len() < want
                });
                examined += ids.len();
                ids
            }
        };
        if !own.is_empty() {
            ids.extend(own);
            ids.sort_unstable();
            ids.dedup();
        }
        let mut out = Vec::new();
        for id in ids {
            examined += 1;
            if let Some(trace) = self.trace_get(run, &id)?
                && trace.matches(q)
            {
                out.push(trace);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok((out, examined))
    }

    /// Trace ids of `run` and of the runs it was forked from (up to each
    /// fork point) that the type/tag index offers; `None` when the query has
    /// neither filter. Callers confirm each by reading it through the fork.
    fn trace_candidates(&self, run: &RunId, kind: Option<TraceType>, tag: Option<&str>, lo: TraceId, hi: TraceId) -> Option<Vec<TraceId>> {
        let index = self.index::<TraceIndex>()?;
        let chain = self.fork_chain(run);
        for r in &chain {
            self.resident(r);
        }
        let mut ids = index.candidates(run, kind, tag, lo, hi)?;
        for parent in &chain[1..] {
            ids.extend(index.candidates(parent, kind, tag, lo, hi).unwrap_or_default());
        }
        ids.sort_unstable();
        ids.dedup();
        Some(ids)
    }

    fn require(&mut self, run: &RunId, id: &TraceId) -> Result<Trace> {
        self.trace_get(run, id)?
            .ok_or_else(|| Error::not_found(format!("trace {id} does not exist in run {run}"), json!({ "run": run.to_string(), "trace": id.to_string() })))
    }

    fn children_of(&mut self, run: &RunId, parent: Option<&TraceId>) -> Result<Vec<Trace>> {
        let mut ids = Vec::new();
        self.scan_prefix(&children_prefix(run, parent), false, &mut |key, _, _| {
            ids.push(TraceId::from_key_tail(key));
            true
        });
        ids.iter()
            .map(|id| self.trace_get(run, id)?.ok_or_else(|| Error::internal(format!("trace {id} of run {run} is in the parent index but has no record"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Durability;
    use crate::testing::{self, TestDb};
    use in_mem_core::limits::{MAX_TAG_CHARS, MAX_TAGS};

    fn memory() -> TestDb {
        testing::memory()
    }

    fn begin_run(engine: &TestDb) -> RunId {
        engine.run_begin(None, None, Vec::new(), None).unwrap().id
    }

    fn new(kind: TraceType, parent: Option<TraceId>, tags: &[&str]) -> NewTrace<'static> {
        NewTrace { kind, parent, data: &[0xC0], tags: tags.iter().map(|t| t.to_string()).collect(), metadata: None }
    }

    /// Records one trace in a transaction of its own.
    fn record(engine: &TestDb, run: &RunId, trace: NewTrace<'_>) -> Result<TraceId> {
        let mut tx = EngineTx::begin(engine)?;
        let id = tx.trace_record(run, &trace)?;
        tx.commit(true)?;
        Ok(id)
    }

    fn read<R>(engine: &TestDb, f: impl FnOnce(&mut EngineTx) -> Result<R>) -> Result<R> {
        let mut tx = EngineTx::begin(engine)?;
        f(&mut tx)
    }

    fn ids(traces: &[Trace]) -> Vec<TraceId> {
        traces.iter().map(|t| t.id).collect()
    }

    #[test]
    fn a_trace_round_trips_with_its_fields_and_costs_two_entries() {
        let engine = memory();
        let run = begin_run(&engine);
        let keys_before = engine.stats().keys;
        let trace = NewTrace {
            kind: TraceType::ToolCall,
            parent: None,
            data: &[0x81, 0xA1, b'a', 1],
            tags: vec!["x".into(), "y".into(), "x".into()],
            metadata: Some(&[0x02]),
        };
        let id = record(&engine, &run, trace).unwrap();
        assert_eq!(engine.stats().keys - keys_before, 2);
        let got = read(&engine, |tx| tx.trace_get(&run, &id)).unwrap().unwrap();
        assert_eq!(got.id, id);
        assert_eq!(got.kind, TraceType::ToolCall);
        assert_eq!(got.parent, None);
        assert_eq!(got.data, vec![0x81, 0xA1, b'a', 1]);
        assert_eq!(got.tags, vec!["x".to_string(), "y".to_string()]);
        assert_eq!(got.metadata, Some(vec![0x02]));
        let now = in_mem_core::now_ms();
        assert!(got.timestamp <= now && now - got.timestamp < 5000, "timestamp {} vs now {now}", got.timestamp);
    }

    #[test]
    fn the_record_is_the_documented_messagepack_array() {
        let parent = TraceId([7; 16]);
        let stored = Stored { kind: "thought", parent: Some(Bin(&parent.0)), tags: vec!["a"], data: Bin(&[0xC3]), metadata: None };
        let bytes = rmp_serde::to_vec(&stored).unwrap();
        let mut expected = vec![0x95, 0xA7];
        expected.extend_from_slice(b"thought");
        expected.extend_from_slice(&[0xC4, 16]);
        expected.extend_from_slice(&[7; 16]);
        expected.extend_from_slice(&[0x91, 0xA1, b'a', 0xC4, 1, 0xC3, 0xC0]);
        assert_eq!(bytes, expected);
        let run = RunId::new();
        let id = TraceId::new();
        let trace = decode(&run, id, &bytes).unwrap();
        assert_eq!(
            (trace.kind, trace.parent, trace.tags, trace.data, trace.metadata),
            (TraceType::Thought, Some(parent), vec!["a".to_string()], vec![0xC3], None)
        );
        assert!(matches!(decode(&run, id, &[0x93, 0xC0]), Err(Error::Internal { .. })));
    }

    #[test]
    fn ids_made_in_a_row_sort_in_the_order_they_were_made() {
        let ids: Vec<TraceId> = (0..10_000).map(|_| TraceId::new()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.windows(2).all(|w| w[0].timestamp_ms() <= w[1].timestamp_ms()));
    }

    #[test]
    fn unknown_types_and_bad_ids_are_invalid_arguments() {
        assert!(matches!(TraceType::parse("tool-call"), Err(Error::InvalidArgument { message }) if message.contains("tool_call, decision")));
        for t in TraceType::ALL {
            assert_eq!(TraceType::parse(t.as_str()).unwrap(), t);
        }
        assert!(matches!(TraceId::parse("nope"), Err(Error::InvalidArgument { .. })));
        assert!(matches!(TraceId::parse("00000000-0000-0000-0000-000000000000"), Err(Error::InvalidArgument { .. })));
        let id = TraceId::new();
        assert_eq!(TraceId::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn a_parent_must_exist_in_the_same_run() {
        let engine = memory();
        let run = begin_run(&engine);
        let other = begin_run(&engine);
        let elsewhere = record(&engine, &other, new(TraceType::Thought, None, &[])).unwrap();
        let keys_before = engine.stats().keys;
        let e = record(&engine, &run, new(TraceType::Thought, Some(elsewhere), &[])).unwrap_err();
        assert!(matches!(&e, Error::NotFound { message, .. } if message.contains(&elsewhere.to_string()) && message.contains(&run.to_string())), "{e:?}");
        let e = record(&engine, &run, new(TraceType::Thought, Some(TraceId::new()), &[])).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }));
        assert_eq!(engine.stats().keys, keys_before, "a refused trace writes nothing");
    }

    #[test]
    fn a_parent_recorded_earlier_in_the_transaction_counts() {
        let engine = memory();
        let run = begin_run(&engine);
        let mut tx = EngineTx::begin(&engine).unwrap();
        let parent = tx.trace_record(&run, &new(TraceType::Decision, None, &[])).unwrap();
        let child = tx.trace_record(&run, &new(TraceType::ToolCall, Some(parent), &[])).unwrap();
        assert_eq!(ids(&tx.trace_children(&run, &parent).unwrap()), vec![child]);
        tx.commit(true).unwrap();
        let got = read(&engine, |tx| tx.trace_get(&run, &child)).unwrap().unwrap();
        assert_eq!(got.parent, Some(parent));
    }

    #[test]
    fn bad_tags_and_closed_runs_are_refused() {
        let engine = memory();
        let run = begin_run(&engine);
        assert!(matches!(record(&engine, &run, new(TraceType::Thought, None, &[""])), Err(Error::InvalidArgument { .. })));
        let many: Vec<String> = (0..=MAX_TAGS).map(|i| i.to_string()).collect();
        let too_many = NewTrace { tags: many, ..new(TraceType::Thought, None, &[]) };
        assert!(matches!(record(&engine, &run, too_many), Err(Error::Limit { .. })));
        let long = "t".repeat(MAX_TAG_CHARS + 1);
        assert!(matches!(record(&engine, &run, new(TraceType::Thought, None, &[&long])), Err(Error::Limit { .. })));
        engine.run_update(&run, crate::RunAction::Complete, None).unwrap();
        assert!(matches!(record(&engine, &run, new(TraceType::Thought, None, &[])), Err(Error::RunClosed { .. })));
        assert!(matches!(record(&engine, &RunId::new(), new(TraceType::Thought, None, &[])), Err(Error::NotFound { .. })));
    }

    #[test]
    fn children_roots_and_tree_follow_the_parent_links() {
        let engine = memory();
        let run = begin_run(&engine);
        let a = record(&engine, &run, new(TraceType::Decision, None, &[])).unwrap();
        let a1 = record(&engine, &run, new(TraceType::ToolCall, Some(a), &[])).unwrap();
        let b = record(&engine, &run, new(TraceType::Thought, None, &[])).unwrap();
        let a2 = record(&engine, &run, new(TraceType::ToolCall, Some(a), &[])).unwrap();
        let a1x = record(&engine, &run, new(TraceType::Error, Some(a1), &[])).unwrap();
        read(&engine, |tx| {
            assert_eq!(ids(&tx.trace_roots(&run)?), vec![a, b]);
            assert_eq!(ids(&tx.trace_children(&run, &a)?), vec![a1, a2]);
            assert_eq!(ids(&tx.trace_children(&run, &a2)?), vec![]);
            assert_eq!(ids(&tx.trace_tree(&run, None)?), vec![a, a1, a1x, a2, b]);
            assert_eq!(ids(&tx.trace_tree(&run, Some(&a1))?), vec![a1, a1x]);
            assert!(matches!(tx.trace_children(&run, &TraceId::new()), Err(Error::NotFound { .. })));
            assert!(matches!(tx.trace_tree(&run, Some(&TraceId::new())), Err(Error::NotFound { .. })));
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn queries_filter_by_type_tag_time_and_limit_in_time_order() {
        let engine = memory();
        let run = begin_run(&engine);
        let t1 = record(&engine, &run, new(TraceType::ToolCall, None, &["search"])).unwrap();
        let d1 = record(&engine, &run, new(TraceType::Decision, None, &["search", "final"])).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let t2 = record(&engine, &run, new(TraceType::ToolCall, None, &["fetch"])).unwrap();
        let t3 = record(&engine, &run, new(TraceType::ToolCall, None, &["search"])).unwrap();
        let q = |kind, tag: Option<&str>, since, until, limit| TraceQuery { kind, tag: tag.map(String::from), since, until, limit };
        read(&engine, |tx| {
            assert_eq!(ids(&tx.trace_query(&run, &q(None, None, None, None, None))?), vec![t1, d1, t2, t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(Some(TraceType::ToolCall), None, None, None, None))?), vec![t1, t2, t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, Some("search"), None, None, None))?), vec![t1, d1, t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(Some(TraceType::ToolCall), Some("search"), None, None, None))?), vec![t1, t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(Some(TraceType::ToolCall), None, None, None, Some(2)))?), vec![t1, t2]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, None, None, None, Some(0)))?), vec![]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, Some("missing"), None, None, None))?), vec![]);
            assert_eq!(ids(&tx.trace_query(&run, &q(Some(TraceType::Query), None, None, None, None))?), vec![]);
            // Time bounds are inclusive milliseconds.
            let (ms1, ms2) = (t1.timestamp_ms(), t2.timestamp_ms());
            assert_eq!(ids(&tx.trace_query(&run, &q(None, None, Some(ms2), None, None))?), vec![t2, t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, None, None, Some(d1.timestamp_ms()), None))?), vec![t1, d1]);
            assert_eq!(ids(&tx.trace_query(&run, &q(Some(TraceType::ToolCall), None, Some(ms1), Some(ms1), None))?), vec![t1]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, Some("search"), Some(ms2), None, None))?), vec![t3]);
            assert_eq!(ids(&tx.trace_query(&run, &q(None, None, Some(ms2), Some(ms1), None))?), vec![]);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_query_by_type_or_tag_reads_only_the_matching_traces() {
        let engine = memory();
        let run = begin_run(&engine);
        let mut tx = EngineTx::begin(&engine).unwrap();
        for _ in 0..2000 {
            tx.trace_record(&run, &new(TraceType::Thought, None, &["common"])).unwrap();
        }
        tx.commit(true).unwrap();
        let rare: Vec<TraceId> = (0..3).map(|_| record(&engine, &run, new(TraceType::Error, None, &["rare"])).unwrap()).collect();
        read(&engine, |tx| {
            let (found, examined) = tx.trace_query_examining(&run, &TraceQuery { kind: Some(TraceType::Error), ..Default::default() })?;
            assert_eq!((ids(&found), examined), (rare.clone(), 3));
            let (found, examined) = tx.trace_query_examining(&run, &TraceQuery { tag: Some("rare".into()), ..Default::default() })?;
            assert_eq!((ids(&found), examined), (rare.clone(), 3));
            let (found, examined) =
                tx.trace_query_examining(&run, &TraceQuery { kind: Some(TraceType::Thought), tag: Some("rare".into()), ..Default::default() })?;
            assert_eq!((found.len(), examined), (0, 0));
            // Without type or tag, the window is scanned only up to the limit.
            let (found, examined) = tx.trace_query_examining(&run, &TraceQuery { limit: Some(5), ..Default::default() })?;
            assert_eq!((found.len(), examined), (5, 10));
            // A time window at the end reads only what is in it.
            let since = rare[0].timestamp_ms();
            let (found, examined) = tx.trace_query_examining(&run, &TraceQuery { since: Some(since), ..Default::default() })?;
            let in_window = found.len();
            assert!(in_window >= 3 && examined == 2 * in_window, "{in_window} found, {examined} read");
            assert!(in_window < 2000, "the window holds {in_window} of 2003 traces");
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_transaction_sees_its_own_uncommitted_traces_in_queries() {
        let engine = memory();
        let run = begin_run(&engine);
        let committed = record(&engine, &run, new(TraceType::ToolCall, None, &["a"])).unwrap();
        let mut tx = EngineTx::begin(&engine).unwrap();
        let mine = tx.trace_record(&run, &new(TraceType::ToolCall, None, &["a"])).unwrap();
        let other = tx.trace_record(&run, &new(TraceType::Thought, None, &["b"])).unwrap();
        assert_eq!(ids(&tx.trace_query(&run, &TraceQuery { kind: Some(TraceType::ToolCall), ..Default::default() }).unwrap()), vec![committed, mine]);
        assert_eq!(ids(&tx.trace_query(&run, &TraceQuery { tag: Some("b".into()), ..Default::default() }).unwrap()), vec![other]);
        assert_eq!(ids(&tx.trace_query(&run, &TraceQuery::default()).unwrap()), vec![committed, mine, other]);
        assert_eq!(ids(&tx.trace_roots(&run).unwrap()), vec![committed, mine, other]);
        // Another reader does not see them before the commit.
        read(&engine, |r| {
            assert_eq!(ids(&r.trace_query(&run, &TraceQuery { kind: Some(TraceType::ToolCall), ..Default::default() })?), vec![committed]);
            Ok(())
        })
        .unwrap();
        drop(tx);
        read(&engine, |r| {
            assert_eq!(ids(&r.trace_query(&run, &TraceQuery::default())?), vec![committed]);
            assert_eq!(r.trace_get(&run, &mine)?, None);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_snapshot_does_not_see_traces_committed_after_it() {
        let engine = memory();
        let run = begin_run(&engine);
        let first = record(&engine, &run, new(TraceType::Query, None, &["q"])).unwrap();
        let mut old = EngineTx::begin(&engine).unwrap();
        record(&engine, &run, new(TraceType::Query, None, &["q"])).unwrap();
        assert_eq!(ids(&old.trace_query(&run, &TraceQuery { kind: Some(TraceType::Query), ..Default::default() }).unwrap()), vec![first]);
        assert_eq!(ids(&old.trace_query(&run, &TraceQuery { tag: Some("q".into()), ..Default::default() }).unwrap()), vec![first]);
        assert_eq!(ids(&old.trace_roots(&run).unwrap()), vec![first]);
    }

    #[test]
    fn a_child_added_by_another_commit_conflicts_with_a_reader_of_children() {
        let engine = memory();
        let run = begin_run(&engine);
        let parent = record(&engine, &run, new(TraceType::Decision, None, &[])).unwrap();
        let mut tx = EngineTx::begin(&engine).unwrap();
        assert!(tx.trace_children(&run, &parent).unwrap().is_empty());
        tx.trace_record(&run, &new(TraceType::Thought, None, &[])).unwrap();
        record(&engine, &run, new(TraceType::ToolCall, Some(parent), &[])).unwrap();
        assert!(matches!(tx.commit(true), Err(Error::Conflict { .. })));
    }

    #[test]
    fn a_deleted_run_leaves_the_index_once_no_snapshot_sees_it() {
        let engine = memory();
        let run = begin_run(&engine);
        let other = begin_run(&engine);
        let doomed = record(&engine, &run, new(TraceType::Error, None, &["x"])).unwrap();
        let by_error = TraceQuery { kind: Some(TraceType::Error), ..Default::default() };
        let by_tag = TraceQuery { tag: Some("x".into()), ..Default::default() };
        let mut old = EngineTx::begin(&engine).unwrap();
        assert!(engine.run_delete(&run).unwrap());
        // The old snapshot still finds the trace through the index.
        assert_eq!(ids(&old.trace_query(&run, &by_error).unwrap()), vec![doomed]);
        assert_eq!(ids(&old.trace_query(&run, &by_tag).unwrap()), vec![doomed]);
        read(&engine, |tx| {
            assert!(tx.trace_query(&run, &by_error)?.is_empty());
            assert!(tx.trace_query(&run, &by_tag)?.is_empty());
            assert!(tx.trace_get(&run, &doomed)?.is_none());
            Ok(())
        })
        .unwrap();
        assert!(engine.index::<TraceIndex>().unwrap().state.read().runs.contains_key(&run), "kept while a snapshot can see it");
        drop(old);
        // The next trace write, in any run, drops what no snapshot sees.
        record(&engine, &other, new(TraceType::Thought, None, &[])).unwrap();
        let state = engine.index::<TraceIndex>().unwrap().state.read();
        assert!(!state.runs.contains_key(&run));
        assert!(state.runs.contains_key(&other));
        assert!(state.removals.is_empty());
    }

    #[test]
    fn traces_and_their_index_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let open = || testing::open(dir.path(), Durability::Strict);
        let engine = open();
        let run = begin_run(&engine);
        let root = record(&engine, &run, new(TraceType::Decision, None, &["plan"])).unwrap();
        let child = record(&engine, &run, new(TraceType::ToolCall, Some(root), &["search"])).unwrap();
        let gone = begin_run(&engine);
        record(&engine, &gone, new(TraceType::ToolCall, None, &["search"])).unwrap();
        engine.run_delete(&gone).unwrap();
        drop(engine);
        let engine = open();
        read(&engine, |tx| {
            assert!(tx.trace_query(&gone, &TraceQuery { kind: Some(TraceType::ToolCall), ..Default::default() })?.is_empty());
            assert!(tx.trace_roots(&gone)?.is_empty());
            assert_eq!(ids(&tx.trace_tree(&run, None)?), vec![root, child]);
            assert_eq!(ids(&tx.trace_query(&run, &TraceQuery { kind: Some(TraceType::ToolCall), ..Default::default() })?), vec![child]);
            assert_eq!(ids(&tx.trace_query(&run, &TraceQuery { tag: Some("plan".into()), ..Default::default() })?), vec![root]);
            Ok(())
        })
        .unwrap();
    }
}
