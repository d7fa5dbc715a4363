//! Vectors: named collections of fixed-dimension vectors with metadata, per
//! run, and nearest-neighbour search (SPEC §14).
//!
//! Layout:
//!
//! ```text
//! run | Vector | 0x01 | collection              -> config: dimension u32 LE | metric u8
//! run | Vector | 0x02 | collection | 0x00 | id  -> dimension u32 LE | f32 LE × dimension | metadata (MessagePack; empty: none)
//! ```
//!
//! Vectors live in the MVCC store like every other record, so they are in
//! the WAL, checkpoints, the run log, transactions, replay views and forks
//! with no extra machinery; a search reads its transaction's snapshot (and
//! its own upserts and deletes) and so answers as of that snapshot.
//!
//! Search walks an HNSW graph per collection (usearch), a secondary index
//! derived from these records (`index.rs`) that keeps one node per version
//! a snapshot can still read, so a search answers as of its snapshot; the
//! metadata filter is applied during the walk. An exact scan — the filter
//! applied to each vector before it is scored, the top `k` kept in a heap —
//! is the ground truth the graph is checked against, and what a search
//! falls back to for a small collection, a fork, a replay of an old version,
//! or `exact: true`. A selective filter is scored exactly too, but only over
//! the vectors it admits, found from the graph's node table (each node's
//! metadata, decoded once) instead of by decoding every record.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use in_mem_storage::Value;
use rmpv::Value as Doc;
use serde_json::json;

use crate::access::EngineTx;

mod index;
mod kernel;
mod record;

pub(crate) use index::VectorIndex;
use record::*;
pub use record::{Collection, Hit, MAX_DIMENSION, MAX_K, Metric, StoredVector};

/// What a search asks for (SPEC §14): the query vector (little-endian
/// f32s), how many results, a filter (compiled MessagePack), the graph
/// walk's expansion, and whether to score every vector instead.
#[derive(Clone, Copy, Debug)]
pub struct VectorQuery<'a> {
    pub vector: &'a [u8],
    pub k: usize,
    pub filter: Option<&'a [u8]>,
    pub ef: Option<usize>,
    pub exact: bool,
}

/// A graph walk's parameters.
#[derive(Clone, Copy)]
struct Walk<'f> {
    k: usize,
    filter: Option<&'f Filter>,
    ef: usize,
}

/// The graph's search expansion when a search gives no `ef`.
pub const DEFAULT_EF: usize = 64;
/// The largest `ef` a search may ask for.
pub const MAX_EF: usize = 10_000;
/// Collections smaller than this are scanned: it is as fast, and exact.
const EXACT_BELOW: usize = 1_000;
/// Vectors sampled to estimate how many a filter admits: with 48, a filter
/// admitting 10 % looked like one admitting under 5 % about one time in
/// seven (and scanned, at six times the cost).
const SAMPLE: usize = 128;
/// A filter estimated to admit fewer than this many times `k` vectors is
/// scanned exactly: the walk would end before it found `k`.
const SELECTIVE_FACTOR: usize = 10;
use crate::primitives::json;
use crate::primitives::machines::guard::{equal, order};

// ----- filters -----------------------------------------------------------------

/// A compiled metadata filter (SPEC §14: MongoDB-style).
#[derive(Debug)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Field { path: Vec<String>, test: Test },
}

#[derive(Debug)]
pub enum Test {
    Eq(Doc),
    Ne(Doc),
    Gt(Doc),
    Gte(Doc),
    Lt(Doc),
    Lte(Doc),
    In(Vec<Doc>),
    Nin(Vec<Doc>),
    Exists(bool),
    All(Vec<Test>),
}

impl Filter {
    /// Compiles a filter from its MessagePack form (an object).
    pub fn compile(bytes: &[u8]) -> Result<Filter> {
        let doc = json::decode(bytes)?;
        Self::from_doc(&doc)
    }

    fn from_doc(doc: &Doc) -> Result<Filter> {
        let Doc::Map(entries) = doc else {
            return Err(Error::invalid_argument("a filter must be an object such as { field: value } or { $and: [...] }"));
        };
        let mut all = Vec::new();
        for (k, v) in entries {
            let key = k.as_str().ok_or_else(|| Error::invalid_argument("a filter's keys must be strings"))?;
            all.push(match key {
                "$and" | "$or" => {
                    let Doc::Array(items) = v else { return Err(Error::invalid_argument(format!("{key} takes an array of filters"))) };
                    let parts = items.iter().map(Self::from_doc).collect::<Result<Vec<_>>>()?;
                    if key == "$and" { Filter::And(parts) } else { Filter::Or(parts) }
                }
                "$not" => Filter::Not(Box::new(Self::from_doc(v)?)),
                k if k.starts_with('$') => {
                    return Err(Error::invalid_argument(format!("unknown filter operator {k} at the top level ($and, $or, $not, or a field name)")));
                }
                field => Filter::Field { path: field.split('.').map(str::to_string).collect(), test: Test::from_doc(v)? },
            });
        }
        Ok(if all.len() == 1 { all.pop().unwrap() } else { Filter::And(all) })
    }

    pub fn matches(&self, meta: &Doc) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|p| p.matches(meta)),
            Filter::Or(parts) => parts.iter().any(|p| p.matches(meta)),
            Filter::Not(p) => !p.matches(meta),
            Filter::Field { path, test } => test.holds(lookup(meta, path)),
        }
    }
}

impl Test {
    fn from_doc(v: &Doc) -> Result<Test> {
        let Doc::Map(ops) = v else { return Ok(Test::Eq(v.clone())) };
        if !ops.iter().any(|(k, _)| k.as_str().is_some_and(|s| s.starts_with('$'))) {
            return Ok(Test::Eq(v.clone()));
        }
        let mut tests = Vec::new();
        for (k, arg) in ops {
            let op = k.as_str().unwrap_or_default();
            let list = || match arg {
                Doc::Array(items) => Ok(items.clone()),
                _ => Err(Error::invalid_argument(format!("{op} takes an array"))),
            };
            tests.push(match op {
                "$eq" => Test::Eq(arg.clone()),
                "$ne" => Test::Ne(arg.clone()),
                "$gt" => Test::Gt(arg.clone()),
                "$gte" => Test::Gte(arg.clone()),
                "$lt" => Test::Lt(arg.clone()),
                "$lte" => Test::Lte(arg.clone()),
                "$in" => Test::In(list()?),
                "$nin" => Test::Nin(list()?),
                "$exists" => match arg {
                    Doc::Boolean(b) => Test::Exists(*b),
                    _ => return Err(Error::invalid_argument("$exists takes true or false")),
                },
                other => {
                    return Err(Error::invalid_argument(format!(
                        "unknown filter operator {other} (use $eq $ne $gt $gte $lt $lte $in $nin $exists, or $and $or $not)"
                    )));
                }
            });
        }
        Ok(if tests.len() == 1 { tests.pop().unwrap() } else { Test::All(tests) })
    }

    /// Whether the test holds for the value at the path (`None`: missing).
    fn holds(&self, v: Option<&Doc>) -> bool {
        let cmp = |want: &Doc, ok: fn(Ordering) -> bool| v.and_then(|v| order(v, want)).is_some_and(ok);
        match self {
            Test::Exists(want) => v.is_some() == *want,
            Test::Eq(want) => v.is_some_and(|v| eq_or_contains(v, want)),
            Test::Ne(want) => !v.is_some_and(|v| eq_or_contains(v, want)),
            Test::Gt(want) => cmp(want, |o| o == Ordering::Greater),
            Test::Gte(want) => cmp(want, |o| o != Ordering::Less),
            Test::Lt(want) => cmp(want, |o| o == Ordering::Less),
            Test::Lte(want) => cmp(want, |o| o != Ordering::Greater),
            Test::In(list) => v.is_some_and(|v| list.iter().any(|w| eq_or_contains(v, w))),
            Test::Nin(list) => !v.is_some_and(|v| list.iter().any(|w| eq_or_contains(v, w))),
            Test::All(tests) => tests.iter().all(|t| t.holds(v)),
        }
    }
}

/// MongoDB's rule: a field that is an array matches a value it contains.
fn eq_or_contains(v: &Doc, want: &Doc) -> bool {
    equal(v, want) || matches!(v, Doc::Array(items) if items.iter().any(|i| equal(i, want)))
}

fn lookup<'a>(doc: &'a Doc, path: &[String]) -> Option<&'a Doc> {
    let mut cur = doc;
    for step in path {
        cur = match cur {
            Doc::Map(m) => m.iter().find(|(k, _)| k.as_str() == Some(step.as_str())).map(|(_, v)| v)?,
            Doc::Array(a) => a.get(step.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

// ----- operations --------------------------------------------------------------

/// A candidate in the top-k heap: the worst kept score is on top.
struct Ranked(f64, String, Option<Vec<u8>>);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    // Reversed score (a min-heap of scores), then id, so ties are stable.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then_with(|| self.1.cmp(&other.1))
    }
}

impl EngineTx {
    fn vector_config(&mut self, run: &RunId, collection: &str) -> Result<Option<Collection>> {
        let key = config_key(run, collection)?;
        self.read(&key).map(|(_, v)| Collection::decode(&v)).transpose()
    }

    fn existing(&mut self, run: &RunId, collection: &str) -> Result<Collection> {
        self.vector_config(run, collection)?.ok_or_else(|| {
            Error::not_found(
                format!("vector collection {collection:?} does not exist in run {run}; create it with vectors.create"),
                json!({ "run": run.to_string(), "collection": collection }),
            )
        })
    }

    /// Creates a collection; `Ok(false)` when it exists with the same
    /// configuration, `AlreadyExistsError` when with another.
    pub fn vectors_create(&mut self, run: &RunId, collection: &str, dimension: u32, metric: Metric) -> Result<bool> {
        if !(1..=MAX_DIMENSION).contains(&dimension) {
            return Err(Error::invalid_argument(format!("dimension must be 1–{MAX_DIMENSION}, not {dimension}")));
        }
        let key = config_key(run, collection)?;
        let wanted = Collection { dimension, metric };
        match self.vector_config(run, collection)? {
            Some(c) if c == wanted => Ok(false),
            Some(c) => Err(Error::already_exists(
                format!(
                    "vector collection {collection:?} exists with dimension {} and metric {}; asked for {dimension} and {}",
                    c.dimension,
                    c.metric.as_str(),
                    metric.as_str()
                ),
                json!({ "run": run.to_string(), "collection": collection, "dimension": c.dimension, "metric": c.metric.as_str() }),
            )),
            None => {
                self.check_run_writable(run)?;
                self.write(&key, Some(wanted.encode().into()))?;
                Ok(true)
            }
        }
    }

    /// Inserts or replaces a vector (components as little-endian f32s;
    /// metadata as MessagePack).
    pub fn vectors_upsert(&mut self, run: &RunId, collection: &str, id: &str, vector: &[u8], metadata: Option<&[u8]>) -> Result<()> {
        let c = self.existing(run, collection)?;
        let key = record_key(run, collection, id)?;
        let v = parse_vector(vector, c.dimension)?;
        if let Some(m) = metadata {
            crate::primitives::kv::check_value(m)?;
        }
        self.check_run_writable(run)?;
        self.write(&key, Some(encode_record(&v, metadata).into()))
    }

    pub fn vectors_get(&mut self, run: &RunId, collection: &str, id: &str) -> Result<Option<StoredVector>> {
        self.existing(run, collection)?;
        let key = record_key(run, collection, id)?;
        match self.read(&key) {
            Some((_, bytes)) => {
                let (vector, meta) = decode_record(&bytes)?;
                Ok(Some(StoredVector { id: id.to_string(), vector, metadata: meta.map(<[u8]>::to_vec) }))
            }
            None => Ok(None),
        }
    }

    pub fn vectors_delete(&mut self, run: &RunId, collection: &str, id: &str) -> Result<bool> {
        self.existing(run, collection)?;
        let key = record_key(run, collection, id)?;
        if self.read(&key).is_none() {
            return Ok(false);
        }
        self.check_run_writable(run)?;
        self.write(&key, None)?;
        Ok(true)
    }

    pub fn vectors_count(&mut self, run: &RunId, collection: &str) -> Result<u64> {
        self.existing(run, collection)?;
        let mut n = 0;
        self.scan_prefix(&records_prefix(run, collection), false, &mut |_, _, _| {
            n += 1;
            true
        });
        Ok(n)
    }

    /// The run's collections: name, dimension, metric, in name order.
    pub fn vectors_collections(&mut self, run: &RunId) -> Result<Vec<(String, Collection)>> {
        let mut prefix = InternalKey::prefix(run, TypeTag::Vector);
        prefix.push(CONFIG);
        let mut out = Vec::new();
        let mut bad = None;
        self.scan_prefix(&prefix, false, &mut |k, _, v| {
            match Collection::decode(v) {
                Ok(c) => out.push((String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), c)),
                Err(e) => bad = Some(e),
            }
            true
        });
        match bad {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Removes a collection and every vector in it; whether it existed.
    pub fn vectors_drop(&mut self, run: &RunId, collection: &str) -> Result<bool> {
        let key = config_key(run, collection)?;
        if self.read(&key).is_none() {
            return Ok(false);
        }
        self.check_run_writable(run)?;
        let mut keys = Vec::new();
        self.scan_prefix(&records_prefix(run, collection), false, &mut |k, _, _| {
            keys.push(k.to_vec());
            true
        });
        for k in keys {
            self.write(&k, None)?;
        }
        self.write(&key, None)?;
        Ok(true)
    }

    /// The `k` best vectors for `query` by the collection's metric, among
    /// those whose metadata passes `filter` (compiled MessagePack), as of
    /// this transaction's snapshot and its own writes.
    ///
    /// Through the collection's HNSW graph ([`VectorIndex`]), the filter
    /// applied during the walk, with an expansion of `ef` (default
    /// [`DEFAULT_EF`]); exactly (every vector scored) when `exact` is set,
    /// when the collection is small, when the filter admits too few vectors
    /// for the walk to find `k` (estimated from a sample), in a fork, and at
    /// a snapshot older than the graph holds (a replay view). Either way the
    /// scores are computed exactly from the stored vectors.
    pub fn vectors_search(&mut self, run: &RunId, collection: &str, query: &VectorQuery<'_>) -> Result<Vec<Hit>> {
        let VectorQuery { vector, k, filter, ef, exact } = *query;
        let c = self.existing(run, collection)?;
        let q = parse_vector(vector, c.dimension)?;
        if k == 0 || k > MAX_K {
            return Err(Error::invalid_argument(format!("k must be 1–{MAX_K}, not {k}")));
        }
        if let Some(ef) = ef
            && !(1..=MAX_EF).contains(&ef)
        {
            return Err(Error::invalid_argument(format!("ef must be 1–{MAX_EF}, not {ef}")));
        }
        let filter = filter.map(Filter::compile).transpose()?;
        let prefix = records_prefix(run, collection);
        if !exact && let Some(hits) = self.search_graph(run, &prefix, &c, &q, Walk { k, filter: filter.as_ref(), ef: ef.unwrap_or(DEFAULT_EF) })? {
            return Ok(hits);
        }
        self.search_exact(&prefix, &c, &q, k, filter.as_ref())
    }

    /// [`EngineTx::vectors_search`] through the graph; `None` when it should
    /// scan instead.
    fn search_graph(&mut self, run: &RunId, prefix: &[u8], c: &Collection, q: &[f32], walk: Walk<'_>) -> Result<Option<Vec<Hit>>> {
        let Walk { k, filter, ef } = walk;
        if self.fork_chain(run).len() > 1 {
            return Ok(None);
        }
        self.resident(run);
        let snapshot = self.snapshot_version();
        let end = InternalKey::prefix_end(prefix).expect("a collection prefix has an end");
        let Some(index) = self.index::<VectorIndex>() else { return Ok(None) };
        let admits = |meta: &Doc| filter.is_none_or(|f| f.matches(meta));
        let Some(sample) = index.sample(prefix, if filter.is_some() { SAMPLE } else { 0 }, &admits) else { return Ok(None) };
        if sample.live < EXACT_BELOW {
            return Ok(None);
        }
        let own = self.own_writes(prefix, &end);
        let mine: std::collections::HashSet<&[u8]> = own.iter().map(|(key, _)| &key[prefix.len()..]).collect();
        // A filter passing few (under 1 in 20 of the sample) makes the walk
        // visit many nodes per hit (at 1 % of 100K it cost 60 ms, and a
        // scan 35 ms) or end before it found `k`: such a search scores
        // exactly the vectors the node table says the filter admits.
        let (sampled, passing) = (sample.sampled, sample.passing);
        let estimate = passing as f64 / sampled.max(1) as f64 * sample.live as f64;
        let selective = filter.is_some() && (passing == 0 || passing * 20 < sampled || estimate < (SELECTIVE_FACTOR * k) as f64);
        let ids = if selective {
            let Some(mut ids) = index.admitted(prefix, snapshot, &admits) else { return Ok(None) };
            ids.retain(|id| !mine.contains(&id[..]));
            ids
        } else {
            // A node is one version of a vector, with that version's metadata.
            let accept = |id: &[u8], meta: &Doc| !mine.contains(id) && admits(meta);
            let accept: Option<&index::Accept<'_>> = if filter.is_none() && own.is_empty() { None } else { Some(&accept) };
            let Some(ids) = index.search(prefix, snapshot, q, k, ef, accept) else { return Ok(None) };
            ids
        };
        // Scored exactly from the records visible at the snapshot (the
        // version each node is), then the transaction's own upserts.
        let mut scored: Vec<(f64, Box<[u8]>, Value)> = Vec::with_capacity(ids.len() + own.len());
        let mut key = prefix.to_vec();
        for id in ids {
            key.truncate(prefix.len());
            key.extend_from_slice(&id);
            let Some((_, bytes)) = self.read_at(&key, snapshot) else { continue };
            scored.push((c.metric.score_stored(q, split_record(&bytes)?.0), id, bytes));
        }
        for (key, value) in &own {
            let Some(bytes) = value else { continue };
            let (components, meta) = split_record(bytes)?;
            if let Some(f) = filter
                && !f.matches(&meta.map(json::decode).transpose()?.unwrap_or(Doc::Nil))
            {
                continue;
            }
            scored.push((c.metric.score_stored(q, components), key[prefix.len()..].into(), bytes.clone()));
        }
        // The collection's range joins the read set, as a scan's does: a
        // vector another transaction adds or changes there conflicts.
        self.scan(prefix, Some(&end), false, &mut |_, _, _| false);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        scored.truncate(k);
        let hits = scored.into_iter().map(|(score, id, bytes)| {
            let meta = split_record(&bytes).ok().and_then(|(_, m)| m.map(<[u8]>::to_vec));
            Hit { id: String::from_utf8_lossy(&id).into_owned(), score, metadata: meta }
        });
        Ok(Some(hits.collect()))
    }

    /// [`EngineTx::vectors_search`] by scoring every vector of the collection.
    fn search_exact(&mut self, prefix: &[u8], c: &Collection, q: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        let mut failed = None;
        self.scan_prefix(prefix, false, &mut |key, _, bytes| {
            let (v, meta) = match split_record(bytes) {
                Ok(x) => x,
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            };
            if let Some(f) = filter {
                let doc = match meta.map(json::decode).transpose() {
                    Ok(d) => d.unwrap_or(Doc::Nil),
                    Err(e) => {
                        failed = Some(e);
                        return false;
                    }
                };
                if !f.matches(&doc) {
                    return true;
                }
            }
            let score = c.metric.score_stored(q, v);
            if heap.len() == k {
                // Ties keep the first seen (the smaller id: the scan is in key order).
                if heap.peek().is_none_or(|worst| score <= worst.0) {
                    return true;
                }
                heap.pop();
            }
            heap.push(Ranked(score, String::from_utf8_lossy(&key[prefix.len()..]).into_owned(), meta.map(<[u8]>::to_vec)));
            true
        });
        if let Some(e) = failed {
            return Err(e);
        }
        let mut hits: Vec<Hit> = heap.into_iter().map(|Ranked(score, id, metadata)| Hit { id, score, metadata }).collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(j: &str) -> Vec<u8> {
        rmp_serde::to_vec(&serde_json::from_str::<serde_json::Value>(j).unwrap()).unwrap()
    }

    struct Rng(u32);
    impl Rng {
        fn f32(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0 as f32 / u32::MAX as f32 - 0.5
        }
        fn vector(&mut self, d: usize) -> Vec<u8> {
            (0..d).flat_map(|_| self.f32().to_le_bytes()).collect()
        }
    }

    const DIM: usize = 16;

    /// A memory database with one collection of `n` random vectors whose
    /// metadata is `{ "even": i % 2 == 0, "i": i }`.
    fn filled(n: usize, metric: Metric, r: &mut Rng) -> (crate::testing::TestDb, RunId) {
        let db = crate::testing::memory();
        let run = db.run_begin(None, None, vec![], None).unwrap().id;
        let mut tx = EngineTx::begin(&db).unwrap();
        tx.vectors_create(&run, "c", DIM as u32, metric).unwrap();
        for i in 0..n {
            let meta = doc(&format!(r#"{{"even": {}, "i": {i}}}"#, i % 2 == 0));
            tx.vectors_upsert(&run, "c", &format!("v{i}"), &r.vector(DIM), Some(&meta)).unwrap();
        }
        tx.commit(true).unwrap();
        (db, run)
    }

    fn search(db: &crate::testing::TestDb, run: &RunId, q: &[u8], k: usize, filter: Option<&str>, exact: bool) -> Vec<Hit> {
        let mut tx = EngineTx::begin(db).unwrap();
        let filter = filter.map(doc);
        tx.vectors_search(run, "c", &VectorQuery { vector: q, k, filter: filter.as_deref(), ef: Some(128), exact }).unwrap()
    }

    fn walks(db: &crate::testing::TestDb) -> u64 {
        db.index::<VectorIndex>().unwrap().walks.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn recall(approx: &[Hit], exact: &[Hit]) -> f64 {
        let truth: std::collections::HashSet<&str> = exact.iter().map(|h| h.id.as_str()).collect();
        approx.iter().filter(|h| truth.contains(h.id.as_str())).count() as f64 / exact.len().max(1) as f64
    }

    #[test]
    fn the_graph_finds_what_the_exact_scan_finds() {
        let mut r = Rng(7);
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            let (db, run) = filled(3000, metric, &mut r);
            let mut total = 0.0;
            for _ in 0..20 {
                let q = r.vector(DIM);
                let walked = walks(&db);
                let approx = search(&db, &run, &q, 10, None, false);
                assert_eq!(walks(&db), walked + 1, "the search walked the graph");
                let exact = search(&db, &run, &q, 10, None, true);
                assert_eq!(walks(&db), walked + 1, "exact: true scans");
                assert_eq!(approx.len(), 10);
                // Scores are exact either way, so the hits both found agree.
                for h in &approx {
                    if let Some(e) = exact.iter().find(|e| e.id == h.id) {
                        assert_eq!(e.score, h.score);
                    }
                }
                total += recall(&approx, &exact);
            }
            assert!(total / 20.0 >= 0.9, "{metric:?}: recall@10 {}", total / 20.0);
        }
    }

    #[test]
    fn a_filter_applies_during_the_walk_and_a_selective_one_scans() {
        let mut r = Rng(11);
        let (db, run) = filled(3000, Metric::Cosine, &mut r);
        let q = r.vector(DIM);
        let walked = walks(&db);
        let approx = search(&db, &run, &q, 10, Some(r#"{"even": true}"#), false);
        assert_eq!(walks(&db), walked + 1, "a filter passing half walks the graph");
        assert_eq!(approx.len(), 10);
        assert!(approx.iter().all(|h| h.id[1..].parse::<usize>().unwrap() % 2 == 0), "{approx:?}");
        let exact = search(&db, &run, &q, 10, Some(r#"{"even": true}"#), true);
        assert!(recall(&approx, &exact) >= 0.7);
        // Three vectors pass: all three come back.
        let walked = walks(&db);
        let few = search(&db, &run, &q, 10, Some(r#"{"i": {"$in": [5, 500, 2999]}}"#), false);
        assert_eq!(walks(&db), walked, "a filter passing three scans");
        let mut ids: Vec<&str> = few.iter().map(|h| h.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["v2999", "v5", "v500"]);
        // One in a hundred pass: scored exactly over what the filter admits,
        // so the answer is the exact one, scores and order included.
        let rare = search(&db, &run, &q, 10, Some(r#"{"i": {"$lt": 30}}"#), false);
        let exact = search(&db, &run, &q, 10, Some(r#"{"i": {"$lt": 30}}"#), true);
        let pairs = |hits: &[Hit]| hits.iter().map(|h| (h.id.clone(), h.score)).collect::<Vec<_>>();
        assert_eq!(pairs(&rare), pairs(&exact));
        assert_eq!(rare.len(), 10);
    }

    #[test]
    fn a_search_answers_as_of_its_snapshot_and_its_own_writes() {
        let mut r = Rng(13);
        let (db, run) = filled(2000, Metric::Euclidean, &mut r);
        let q = r.vector(DIM);
        let mut old = EngineTx::begin(&db).unwrap();
        let before = old.vectors_search(&run, "c", &VectorQuery { vector: &q, k: 10, filter: None, ef: Some(128), exact: true }).unwrap();
        // After the snapshot: the ten nearest move far away, and a new
        // vector lands on the query.
        let mut tx = EngineTx::begin(&db).unwrap();
        for h in &before {
            let far: Vec<u8> = (0..DIM).flat_map(|_| 100f32.to_le_bytes()).collect();
            tx.vectors_upsert(&run, "c", &h.id, &far, None).unwrap();
        }
        tx.vectors_upsert(&run, "c", "on-the-query", &q, None).unwrap();
        tx.commit(true).unwrap();
        // The old snapshot still finds the old ten, through the graph.
        let walked = walks(&db);
        let seen = old.vectors_search(&run, "c", &VectorQuery { vector: &q, k: 10, filter: None, ef: Some(128), exact: false }).unwrap();
        assert_eq!(walks(&db), walked + 1, "the old snapshot walked the graph");
        assert!(recall(&seen, &before) >= 0.9, "{seen:?}");
        assert!(seen.iter().all(|h| h.id != "on-the-query"));
        // A selective filter at the old snapshot sees the old versions too
        // (the moved ten lost their metadata since).
        let moved: Vec<String> = before.iter().map(|h| h.id[1..].to_string()).collect();
        let lt = doc(&format!(r#"{{"i": {{"$in": [{}, 1, 2, 3]}}}}"#, moved.join(", ")));
        let rare = |exact| VectorQuery { vector: &q, k: 10, filter: Some(&lt), ef: None, exact };
        let from_table = old.vectors_search(&run, "c", &rare(false)).unwrap();
        let scanned = old.vectors_search(&run, "c", &rare(true)).unwrap();
        let pairs = |hits: &[Hit]| hits.iter().map(|h| (h.id.clone(), h.score)).collect::<Vec<_>>();
        assert_eq!(pairs(&from_table), pairs(&scanned));
        assert!(before.iter().all(|b| scanned.iter().any(|h| h.id == b.id)), "the moved ten pass at the old snapshot");
        // ... and not at a new one, though their old nodes are still in the graph.
        let mut new = EngineTx::begin(&db).unwrap();
        let (from_table, scanned) = (new.vectors_search(&run, "c", &rare(false)).unwrap(), new.vectors_search(&run, "c", &rare(true)).unwrap());
        assert_eq!(pairs(&from_table), pairs(&scanned));
        assert_eq!(scanned.len(), 3, "{scanned:?}");
        // A new one finds the new vector first and none of the moved ten.
        let now = search(&db, &run, &q, 10, None, false);
        assert_eq!(now[0].id, "on-the-query");
        assert!(now.iter().all(|h| !before.iter().any(|b| b.id == h.id)));
        // Its own writes: an upsert it made, a delete it made.
        let mut mine = EngineTx::begin(&db).unwrap();
        mine.vectors_upsert(&run, "c", "mine", &q, None).unwrap();
        mine.vectors_delete(&run, "c", "on-the-query").unwrap();
        let walked = walks(&db);
        let hits = mine.vectors_search(&run, "c", &VectorQuery { vector: &q, k: 10, filter: None, ef: Some(128), exact: false }).unwrap();
        assert_eq!(walks(&db), walked + 1);
        assert_eq!(hits[0].id, "mine");
        assert!(hits.iter().all(|h| h.id != "on-the-query"));
    }

    #[test]
    fn filters_follow_the_mongodb_rules() {
        let meta = json::decode(&doc(r#"{"kind": "note", "n": 5, "tags": ["a", "b"], "user": {"name": "ada"}}"#)).unwrap();
        let t = |f: &str| Filter::compile(&doc(f)).unwrap().matches(&meta);
        assert!(t(r#"{"kind": "note"}"#));
        assert!(!t(r#"{"kind": "task"}"#));
        assert!(t(r#"{"n": {"$gte": 5, "$lt": 6}}"#));
        assert!(!t(r#"{"n": {"$gt": 5}}"#));
        assert!(t(r#"{"tags": "a"}"#));
        assert!(t(r#"{"tags": {"$in": ["z", "b"]}}"#));
        assert!(t(r#"{"tags": {"$nin": ["z"]}}"#));
        assert!(t(r#"{"user.name": "ada"}"#));
        assert!(t(r#"{"missing": {"$exists": false}}"#));
        assert!(t(r#"{"$or": [{"kind": "task"}, {"n": 5}]}"#));
        assert!(!t(r#"{"$not": {"kind": "note"}}"#));
        assert!(t(r#"{"kind": {"$ne": "task"}, "n": 5}"#));
        let e = Filter::compile(&doc(r#"{"n": {"$near": 1}}"#)).unwrap_err();
        assert!(e.to_string().contains("$near"), "{e}");
    }

    #[test]
    fn scores_are_higher_for_nearer_vectors() {
        let (a, b, c) = ([1.0f32, 0.0], [0.9f32, 0.1], [0.0f32, 1.0]);
        for m in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            assert!(m.score(&a, &b) > m.score(&a, &c), "{m:?}");
        }
        assert!((Metric::Cosine.score(&a, &a) - 1.0).abs() < 1e-9);
        let stored: Vec<u8> = b.iter().flat_map(|x| x.to_le_bytes()).collect();
        for m in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            assert_eq!(m.score_stored(&a, &stored), m.score(&a, &b), "{m:?}");
        }
        assert_eq!(Metric::Euclidean.score(&a, &a), 0.0);
    }
}
