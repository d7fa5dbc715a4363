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
//! This first version searches exactly: a scan of the collection at the
//! snapshot, the filter applied to each vector before it is scored, the top
//! `k` kept in a heap. It is the ground truth an approximate index (HNSW,
//! a secondary index derived from these records) is checked against and
//! falls back to for selective filters; it does not have that index yet.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag};
use rmpv::Value as Doc;
use serde_json::json;

use crate::access::EngineTx;
use crate::primitives::json;
use crate::primitives::machines::guard::{equal, order};

const CONFIG: u8 = 0x01;
const RECORD: u8 = 0x02;
pub const MAX_DIMENSION: u32 = 8192;
/// The most results one search returns.
pub const MAX_K: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Cosine,
    Dot,
    Euclidean,
}

impl Metric {
    pub fn parse(s: &str) -> Result<Metric> {
        match s {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            "euclidean" => Ok(Metric::Euclidean),
            other => Err(Error::invalid_argument(format!("metric must be 'cosine', 'dot' or 'euclidean', not {other:?}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
            Metric::Dot => "dot",
            Metric::Euclidean => "euclidean",
        }
    }

    fn byte(self) -> u8 {
        match self {
            Metric::Cosine => 1,
            Metric::Dot => 2,
            Metric::Euclidean => 3,
        }
    }

    fn from_byte(b: u8) -> Option<Metric> {
        match b {
            1 => Some(Metric::Cosine),
            2 => Some(Metric::Dot),
            3 => Some(Metric::Euclidean),
            _ => None,
        }
    }

    /// [`Metric::score`] of `a` against stored components (little-endian
    /// f32s), read in place.
    fn score_stored(self, a: &[f32], b: &[u8]) -> f64 {
        let b = b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64);
        let a = a.iter().map(|x| *x as f64);
        match self {
            Metric::Dot => a.zip(b).map(|(x, y)| x * y).sum(),
            Metric::Euclidean => -a.zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>().sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
                for (x, y) in a.zip(b) {
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
            }
        }
    }

    /// Higher is better: cosine similarity, dot product, negated L2 distance.
    #[cfg(test)]
    fn score(self, a: &[f32], b: &[f32]) -> f64 {
        match self {
            Metric::Dot => a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum(),
            Metric::Euclidean => -a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>().sqrt(),
            Metric::Cosine => {
                let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
                for (x, y) in a.iter().zip(b) {
                    let (x, y) = (*x as f64, *y as f64);
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                if na == 0.0 || nb == 0.0 { 0.0 } else { dot / (na.sqrt() * nb.sqrt()) }
            }
        }
    }
}

/// A collection's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Collection {
    pub dimension: u32,
    pub metric: Metric,
}

impl Collection {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.dimension.to_le_bytes().to_vec();
        v.push(self.metric.byte());
        v
    }

    fn decode(bytes: &[u8]) -> Result<Collection> {
        let bad = || Error::internal("a vector collection's configuration is malformed");
        if bytes.len() != 5 {
            return Err(bad());
        }
        Ok(Collection { dimension: u32::from_le_bytes(bytes[..4].try_into().unwrap()), metric: Metric::from_byte(bytes[4]).ok_or_else(bad)? })
    }
}

/// A vector as read: its id, components and metadata (MessagePack, if any).
#[derive(Clone, Debug, PartialEq)]
pub struct StoredVector {
    pub id: String,
    pub vector: Vec<f32>,
    pub metadata: Option<Vec<u8>>,
}

/// A search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f64,
    pub metadata: Option<Vec<u8>>,
}

fn check_name(what: &str, name: &str) -> Result<()> {
    InternalKey::validate_user_key(name.as_bytes()).map_err(|e| match e {
        Error::InvalidArgument { message } => Error::invalid_argument(format!("{what}: {message}")),
        other => other,
    })
}

fn config_key(run: &RunId, collection: &str) -> Result<Vec<u8>> {
    check_name("a collection name", collection)?;
    // Histories, diffs and watch name a vector "collection/id".
    if collection.contains('/') {
        return Err(Error::invalid_argument(format!("a collection name must not contain '/': {collection:?}")));
    }
    let mut user = vec![CONFIG];
    user.extend_from_slice(collection.as_bytes());
    Ok(InternalKey::build(run, TypeTag::Vector, &user))
}

fn records_prefix(run: &RunId, collection: &str) -> Vec<u8> {
    let mut user = vec![RECORD];
    user.extend_from_slice(collection.as_bytes());
    user.push(0);
    InternalKey::build(run, TypeTag::Vector, &user)
}

fn record_key(run: &RunId, collection: &str, id: &str) -> Result<Vec<u8>> {
    check_name("a vector id", id)?;
    let mut key = records_prefix(run, collection);
    key.extend_from_slice(id.as_bytes());
    if key.len() - 17 > in_mem_core::limits::MAX_KEY_BYTES + 2 {
        return Err(Error::limit("a collection name and a vector id together are over the key limit"));
    }
    Ok(key)
}

/// Checks `vector` (little-endian f32s) against the collection: its
/// dimension, and every component finite.
fn parse_vector(bytes: &[u8], dimension: u32) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(Error::invalid_argument("a vector must be whole 32-bit floats"));
    }
    let v: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    if v.len() as u32 != dimension {
        return Err(Error::invalid_argument(format!("the vector has {} dimensions; the collection has {dimension}", v.len())));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid_argument(format!("component {i} of the vector is {}, not a finite number", v[i])));
    }
    Ok(v)
}

fn encode_record(vector: &[f32], metadata: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * vector.len() + metadata.map_or(0, <[u8]>::len));
    out.extend_from_slice(&(vector.len() as u32).to_le_bytes());
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    if let Some(m) = metadata {
        out.extend_from_slice(m);
    }
    out
}

/// The components (little-endian f32 bytes) and metadata bytes of a stored record.
fn split_record(bytes: &[u8]) -> Result<(&[u8], Option<&[u8]>)> {
    let bad = || Error::internal("a stored vector is malformed");
    let dim = u32::from_le_bytes(bytes.get(..4).ok_or_else(bad)?.try_into().unwrap()) as usize;
    let end = 4 + 4 * dim;
    let comps = bytes.get(4..end).ok_or_else(bad)?;
    let meta = &bytes[end..];
    Ok((comps, (!meta.is_empty()).then_some(meta)))
}

/// The components and metadata bytes of a stored record.
fn decode_record(bytes: &[u8]) -> Result<(Vec<f32>, Option<&[u8]>)> {
    let (comps, meta) = split_record(bytes)?;
    Ok((comps.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), meta))
}

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
    /// this transaction's snapshot and its own writes. Exact: every vector
    /// of the collection is considered.
    pub fn vectors_search(&mut self, run: &RunId, collection: &str, query: &[u8], k: usize, filter: Option<&[u8]>) -> Result<Vec<Hit>> {
        let c = self.existing(run, collection)?;
        let q = parse_vector(query, c.dimension)?;
        if k == 0 || k > MAX_K {
            return Err(Error::invalid_argument(format!("k must be 1–{MAX_K}, not {k}")));
        }
        let filter = filter.map(Filter::compile).transpose()?;
        let prefix = records_prefix(run, collection);
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(k + 1);
        let mut failed = None;
        self.scan_prefix(&prefix, false, &mut |key, _, bytes| {
            let (v, meta) = match split_record(bytes) {
                Ok(x) => x,
                Err(e) => {
                    failed = Some(e);
                    return false;
                }
            };
            if let Some(f) = &filter {
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
            let score = c.metric.score_stored(&q, v);
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if heap.len() < k {
                heap.push(Ranked(score, id, meta.map(<[u8]>::to_vec)));
            } else if heap.peek().is_some_and(|worst| score > worst.0) {
                heap.pop();
                heap.push(Ranked(score, id, meta.map(<[u8]>::to_vec)));
            }
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
