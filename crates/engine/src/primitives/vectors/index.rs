//! The approximate index of vector search: one HNSW graph (usearch) per
//! collection, a secondary index derived from the vector records by
//! [`SecondaryIndex::on_write`], so that recovery rebuilds it.
//!
//! MVCC: a node is one *version* of a vector (labelled with a number of its
//! own), not one id. Overwriting or deleting a vector at version `v` marks
//! its node removed at `v`; the node leaves the graph once no open snapshot
//! can read it (`v <= oldest_needed`). A search at snapshot `S` walks the
//! graph with a predicate that admits only the nodes visible at `S` (and
//! whatever else the caller asks of them: the metadata filter, not being
//! overwritten by the transaction's own writes), so it answers as of `S`.
//! A snapshot older than what the graph still holds (a replay view, or a
//! snapshot from before the collection was created again) gets `None`, and
//! the caller scans exactly.

use std::any::Any;
use std::collections::{HashMap, VecDeque};

use in_mem_core::{InternalKey, TypeTag};
use in_mem_storage::Store;
use parking_lot::Mutex;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use rmpv::Value as Doc;

use super::record::{CONFIG, Collection, Metric, RECORD, split_record};
use crate::access::SecondaryIndex;
use crate::primitives::json;

/// Concurrent searches the graph has contexts for.
const THREADS: usize = 64;

/// One version of one vector in the graph.
struct Node {
    id: Box<[u8]>,
    version: u64,
    removed_at: Option<u64>,
    /// This version's metadata, decoded once (`Nil`: none), for filters
    /// during the walk.
    meta: Doc,
}

/// One collection's graph.
struct Graph {
    index: Index,
    /// Vectors go in scaled to unit length (cosine).
    unit: bool,
    /// Snapshots before this version (the collection's creation) cannot use it.
    valid_from: u64,
    /// The newest removal the graph has forgotten: older snapshots cannot use it.
    retired_upto: u64,
    nodes: HashMap<u64, Node, foldhash::fast::RandomState>,
    /// Each present id's newest node.
    current: HashMap<Box<[u8]>, u64, foldhash::fast::RandomState>,
    /// Nodes removed, in the order of their removal version.
    removed: VecDeque<(u64, u64)>,
    next_label: u64,
}

impl Graph {
    fn new(config: Collection, version: u64) -> Option<Graph> {
        // Cosine walks as the inner product of unit vectors: one product
        // per component instead of three.
        let metric = match config.metric {
            Metric::Cosine => MetricKind::IP,
            Metric::Dot => MetricKind::IP,
            Metric::Euclidean => MetricKind::L2sq,
        };
        let options = IndexOptions {
            dimensions: config.dimension as usize,
            metric,
            quantization: ScalarKind::F32,
            connectivity: 0,
            expansion_add: 0,
            expansion_search: 0,
            multi: false,
        };
        let index = Index::new(&options).ok()?;
        index.reserve_capacity_and_threads(64, THREADS).ok()?;
        Some(Graph {
            index,
            unit: config.metric == Metric::Cosine,
            valid_from: version,
            retired_upto: 0,
            nodes: HashMap::default(),
            current: HashMap::default(),
            removed: VecDeque::new(),
            next_label: 0,
        })
    }

    fn remove_current(&mut self, id: &[u8], version: u64) {
        if let Some(label) = self.current.remove(id) {
            if let Some(node) = self.nodes.get_mut(&label) {
                node.removed_at = Some(version);
            }
            self.removed.push_back((version, label));
        }
    }

    fn add(&mut self, id: &[u8], version: u64, components: &[u8], meta: Doc) {
        self.remove_current(id, version);
        let mut vector: Vec<f32> = components.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        if self.unit {
            to_unit(&mut vector);
        }
        if self.index.size() + 1 > self.index.capacity() {
            let grown = (self.index.capacity() * 2).max(64);
            if self.index.reserve_capacity_and_threads(grown, THREADS).is_err() {
                return;
            }
        }
        let label = self.next_label;
        self.next_label += 1;
        if self.index.add(label, &vector).is_ok() {
            self.nodes.insert(label, Node { id: id.into(), version, removed_at: None, meta });
            self.current.insert(id.into(), label);
        }
    }

    /// Forgets the nodes no snapshot from `oldest_needed` on can read.
    fn retire(&mut self, oldest_needed: u64) {
        while let Some(&(at, label)) = self.removed.front() {
            if at > oldest_needed {
                break;
            }
            self.removed.pop_front();
            let _ = self.index.remove(label);
            self.nodes.remove(&label);
            self.retired_upto = self.retired_upto.max(at);
        }
    }
}

/// Scales `v` to unit length (a zero vector stays zero: its cosine with
/// anything is 0, as the exact score has it).
fn to_unit(v: &mut [f32]) {
    let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
    }
}

/// Every collection's graph, by the collection's record prefix
/// (`run | Vector | 0x02 | collection | 0x00`).
#[derive(Default)]
pub(crate) struct VectorIndex {
    graphs: Mutex<HashMap<Box<[u8]>, Graph, foldhash::fast::RandomState>>,
    /// Searches answered by a graph walk (the rest scanned).
    pub(crate) walks: std::sync::atomic::AtomicU64,
}

/// The collection prefix and id of a record key, or the collection prefix
/// of a configuration key (with `None`).
fn parse(key: &[u8]) -> Option<(Vec<u8>, Option<&[u8]>)> {
    let user = InternalKey::user(key);
    match *user.first()? {
        CONFIG => {
            let mut prefix = key[..17].to_vec();
            prefix.push(RECORD);
            prefix.extend_from_slice(&user[1..]);
            prefix.push(0);
            Some((prefix, None))
        }
        RECORD => {
            let zero = user.iter().position(|b| *b == 0)?;
            Some((key[..17 + zero + 1].to_vec(), Some(&user[zero + 1..])))
        }
        _ => None,
    }
}

/// What [`VectorIndex::search`] needs to know about a collection first.
pub(crate) struct Sample {
    /// Vectors present now.
    pub live: usize,
    /// Up to the number asked for of their ids and metadata (in no particular order).
    pub entries: Vec<(Box<[u8]>, Doc)>,
}

impl VectorIndex {
    /// How many vectors the collection at `prefix` holds now, with some of
    /// their ids; `None` without a graph.
    pub(crate) fn sample(&self, prefix: &[u8], n: usize) -> Option<Sample> {
        let graphs = self.graphs.lock();
        let g = graphs.get(prefix)?;
        let entries = g.current.iter().take(n).filter_map(|(id, label)| g.nodes.get(label).map(|node| (id.clone(), node.meta.clone()))).collect();
        Some(Sample { live: g.current.len(), entries })
    }

    /// The ids of up to `k` vectors nearest `query` among those visible at
    /// `snapshot` that `accept` admits (called during the walk with a
    /// vector's id and metadata), with an
    /// expansion of `ef`; `None` when the graph cannot answer for
    /// `snapshot`.
    pub(crate) fn search(
        &self,
        prefix: &[u8],
        snapshot: u64,
        query: &[f32],
        k: usize,
        ef: usize,
        accept: &dyn Fn(&[u8], &Doc) -> bool,
    ) -> Option<Vec<Box<[u8]>>> {
        let graphs = self.graphs.lock();
        let g = graphs.get(prefix)?;
        if snapshot < g.valid_from || snapshot < g.retired_upto {
            return None;
        }
        g.index.change_expansion_search(ef.max(k));
        let mut unit;
        let query = if g.unit {
            unit = query.to_vec();
            to_unit(&mut unit);
            &unit[..]
        } else {
            query
        };
        let visible = |label: u64| match g.nodes.get(&label) {
            Some(node) => node.version <= snapshot && node.removed_at.is_none_or(|r| r > snapshot) && accept(&node.id, &node.meta),
            None => false,
        };
        let found = g.index.filtered_search(query, k, visible).ok()?;
        self.walks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(found.keys.iter().filter_map(|label| g.nodes.get(label).map(|n| n.id.clone())).collect())
    }
}

impl SecondaryIndex for VectorIndex {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn on_write(&self, _store: &Store, key: &[u8], value: Option<&[u8]>, version: u64, oldest_needed: u64) {
        if InternalKey::tag(key) != Some(TypeTag::Vector) {
            return;
        }
        let Some((prefix, id)) = parse(key) else { return };
        let mut graphs = self.graphs.lock();
        match (id, value) {
            // A collection created (or created again): a new graph; a
            // snapshot from before it scans.
            (None, Some(config)) => match Collection::decode(config).ok().and_then(|c| Graph::new(c, version)) {
                Some(g) => {
                    graphs.insert(prefix.into(), g);
                }
                None => {
                    graphs.remove(&prefix[..]);
                }
            },
            (None, None) => {
                graphs.remove(&prefix[..]);
            }
            (Some(id), value) => {
                let Some(g) = graphs.get_mut(&prefix[..]) else { return };
                match value.map(split_record) {
                    Some(Ok((components, meta))) => {
                        let meta = meta.and_then(|m| json::decode(m).ok()).unwrap_or(Doc::Nil);
                        g.add(id, version, components, meta)
                    }
                    Some(Err(_)) => {}
                    None => g.remove_current(id, version),
                }
                g.retire(oldest_needed);
            }
        }
    }

    fn committed(&self, _version: u64, _state: Option<&crate::access::Extensions>, _keys: &mut dyn Iterator<Item = &[u8]>, oldest_needed: u64) {
        // Snapshots close between commits: forget what none can read now.
        let mut graphs = self.graphs.lock();
        for g in graphs.values_mut() {
            if g.removed.front().is_some_and(|(at, _)| *at <= oldest_needed) {
                g.retire(oldest_needed);
            }
        }
    }
}
