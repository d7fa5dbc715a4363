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
use std::io::Write;
use std::path::Path;

use in_mem_core::{Error, Result};
use std::collections::{HashMap, VecDeque};

use in_mem_core::{InternalKey, RunId, TypeTag};
use in_mem_storage::Store;
use parking_lot::Mutex;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

use rmpv::Value as Doc;

use super::kernel;
use super::record::{CONFIG, Collection, Metric, RECORD, split_record};
use crate::access::{IndexLoad, SecondaryIndex};
use crate::primitives::json;

/// The first bytes of a saved node table.
const NODES_MAGIC: &[u8; 8] = b"INMEMVIX";

/// A bounds-checked little-endian reader of a saved node table.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("the node table is cut short".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}

/// What a search asks of a node besides being visible: given its vector's
/// id and metadata.
pub(crate) type Accept<'a> = dyn Fn(&[u8], &Doc) -> bool + 'a;

/// The most removed nodes still in a graph with which a search walks it
/// without a predicate (asking for that many more results).
const PLAIN_REMOVED_MAX: usize = 64;

/// Concurrent searches the graph has contexts for: one, since every search
/// and write of a graph holds [`VectorIndex`]'s lock. Each context costs
/// memory whatever the collection's size (64 of them: about 1 MB a
/// collection).
const THREADS: usize = 1;

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
    config: Collection,
    /// Loaded from a checkpoint at this version: writes up to it are
    /// already in the graph (0: built here).
    loaded_upto: u64,
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
    /// The newest version of a write the graph reflects (an add or a
    /// removal): a snapshot from it on sees every node not removed.
    newest: u64,
}

impl Graph {
    fn new(config: Collection, version: u64) -> Option<Graph> {
        let mut index = Self::empty_index(config)?;
        Self::use_kernel(&mut index, config);
        index.reserve_capacity_and_threads(64, THREADS).ok()?;
        Some(Graph::with(config, index, version))
    }

    /// An empty graph over `index`, for snapshots from `valid_from` on.
    fn with(config: Collection, index: Index, valid_from: u64) -> Graph {
        Graph {
            config,
            loaded_upto: 0,
            index,
            unit: config.metric == Metric::Cosine,
            valid_from,
            retired_upto: 0,
            nodes: HashMap::default(),
            current: HashMap::default(),
            removed: VecDeque::new(),
            next_label: 0,
            newest: valid_from,
        }
    }

    fn empty_index(config: Collection) -> Option<Index> {
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
        Index::new(&options).ok()
    }

    /// Makes the walk measure with [`kernel`]'s distances (again after a
    /// load, which puts usearch's own back).
    fn use_kernel(index: &mut Index, config: Collection) {
        let kernel = match config.metric {
            Metric::Cosine | Metric::Dot => kernel::ip_distance(),
            Metric::Euclidean => kernel::l2sq_distance(),
        };
        let n = config.dimension as usize;
        // SAFETY: usearch calls the metric with two vectors of the index's
        // dimension, `n`.
        let metric = move |a: *const f32, b: *const f32| kernel(unsafe { std::slice::from_raw_parts(a, n) }, unsafe { std::slice::from_raw_parts(b, n) });
        index.change_metric::<f32>(Box::new(metric));
    }

    /// The node table as [`VectorIndex::save`] writes it (the graph itself
    /// is usearch's own file beside it).
    fn encode_nodes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(NODES_MAGIC);
        out.extend_from_slice(&self.config.dimension.to_le_bytes());
        out.push(self.config.metric.byte());
        for n in [self.valid_from, self.retired_upto, self.next_label, self.nodes.len() as u64] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        let mut meta = Vec::new();
        for (label, node) in &self.nodes {
            meta.clear();
            let _ = rmpv::encode::write_value(&mut meta, &node.meta);
            for n in [*label, node.version, node.removed_at.unwrap_or(0)] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&(node.id.len() as u32).to_le_bytes());
            out.extend_from_slice(&node.id);
            out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
            out.extend_from_slice(&meta);
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// A graph from its saved node table and usearch file, as it was at
    /// checkpoint `version`: nodes written after it are dropped and
    /// removals after it undone (the WAL replays both).
    fn load(nodes: &[u8], graph: &Path, version: u64) -> std::result::Result<Option<Graph>, String> {
        let (body, crc) = nodes.split_at_checked(nodes.len().saturating_sub(4)).ok_or("the node table is cut short")?;
        if crc.len() != 4 || crc32c::crc32c(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err("the node table's checksum does not match".into());
        }
        let mut r = Reader(body);
        if r.take(8)? != NODES_MAGIC {
            return Err("not a node table".into());
        }
        let dimension = r.u32()?;
        let metric = Metric::from_byte(r.take(1)?[0]).ok_or("unknown metric")?;
        let config = Collection { dimension, metric };
        let (valid_from, retired_upto, next_label, count) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
        if valid_from > version {
            // Created after the checkpoint: the WAL creates it.
            return Ok(None);
        }
        let mut index = Self::empty_index(config).ok_or("the index could not be made")?;
        index.load(graph.to_str().ok_or("a path that is not UTF-8")?).map_err(|e| format!("usearch could not load {}: {e}", graph.display()))?;
        Self::use_kernel(&mut index, config);
        let mut g = Graph { loaded_upto: version, retired_upto, next_label, ..Graph::with(config, index, valid_from) };
        let mut removed = Vec::new();
        for _ in 0..count {
            let (label, node_version, removed_at) = (r.u64()?, r.u64()?, r.u64()?);
            let id_len = r.u32()? as usize;
            let id: Box<[u8]> = r.take(id_len)?.into();
            let meta_len = r.u32()? as usize;
            let meta = json::decode(r.take(meta_len)?).map_err(|e| e.to_string())?;
            if node_version > version {
                let _ = g.index.remove(label);
                continue;
            }
            let removed_at = (removed_at != 0 && removed_at <= version).then_some(removed_at);
            match removed_at {
                Some(at) => removed.push((at, label)),
                None => {
                    g.current.insert(id.clone(), label);
                }
            }
            g.newest = g.newest.max(node_version).max(removed_at.unwrap_or(0));
            g.nodes.insert(label, Node { id, version: node_version, removed_at, meta });
        }
        if !r.0.is_empty() {
            return Err("trailing bytes after the node table".into());
        }
        if g.index.size() != g.nodes.len() {
            return Err(format!("the graph holds {} vectors, the node table {}", g.index.size(), g.nodes.len()));
        }
        removed.sort_unstable();
        g.removed = removed.into();
        let capacity = g.index.capacity().max(64);
        g.index.reserve_capacity_and_threads(capacity, THREADS).map_err(|e| e.to_string())?;
        Ok(Some(g))
    }

    /// Whether the graph holds what a search at `snapshot` sees (it was
    /// created by then, and has forgotten nothing that snapshot reads).
    fn serves(&self, snapshot: u64) -> bool {
        snapshot >= self.valid_from && snapshot >= self.retired_upto
    }

    fn remove_current(&mut self, id: &[u8], version: u64) {
        self.newest = self.newest.max(version);
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

/// About the heap bytes of a decoded metadata value.
fn json_size(v: &Doc) -> usize {
    match v {
        Doc::String(s) => 32 + s.as_bytes().len(),
        Doc::Binary(b) => 32 + b.len(),
        Doc::Array(a) => 32 + a.iter().map(json_size).sum::<usize>(),
        Doc::Map(m) => 32 + m.iter().map(|(k, v)| json_size(k) + json_size(v)).sum::<usize>(),
        _ => 32,
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
    /// How many were sampled, and how many of those the filter admits.
    pub sampled: usize,
    pub passing: usize,
}

impl VectorIndex {
    /// How many vectors the collection at `prefix` holds now, and how many
    /// of (up to) `n` of them `admits` their metadata; `None` without a graph.
    pub(crate) fn sample(&self, prefix: &[u8], n: usize, admits: &dyn Fn(&Doc) -> bool) -> Option<Sample> {
        let graphs = self.graphs.lock();
        let g = graphs.get(prefix)?;
        let (mut sampled, mut passing) = (0, 0);
        for node in g.current.values().take(n).filter_map(|label| g.nodes.get(label)) {
            sampled += 1;
            passing += usize::from(admits(&node.meta));
        }
        Some(Sample { live: g.current.len(), sampled, passing })
    }

    /// The ids of every vector visible at `snapshot` whose metadata
    /// `admits`, from the graph's node table (no record is read); `None`
    /// when the graph cannot answer for `snapshot`.
    pub(crate) fn admitted(&self, prefix: &[u8], snapshot: u64, admits: &dyn Fn(&Doc) -> bool) -> Option<Vec<Box<[u8]>>> {
        let graphs = self.graphs.lock();
        let g = graphs.get(prefix)?;
        if !g.serves(snapshot) {
            return None;
        }
        let visible = g.nodes.values().filter(|n| n.version <= snapshot && n.removed_at.is_none_or(|r| r > snapshot));
        Some(visible.filter(|n| admits(&n.meta)).map(|n| n.id.clone()).collect())
    }

    /// The ids of up to `k` vectors nearest `query` among those visible at
    /// `snapshot` that `accept` admits (called during the walk with a
    /// vector's id and metadata; `None` admits every visible vector), with
    /// an expansion of `ef`; `None` when the graph cannot answer for
    /// `snapshot`.
    pub(crate) fn search(&self, prefix: &[u8], snapshot: u64, query: &[f32], k: usize, ef: usize, accept: Option<&Accept<'_>>) -> Option<Vec<Box<[u8]>>> {
        let graphs = self.graphs.lock();
        let g = graphs.get(prefix)?;
        if !g.serves(snapshot) {
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
        self.walks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A snapshot that sees every write the graph holds, with nothing to
        // ask of a node but that it is not removed, walks without a
        // predicate (a call per node visited) and drops the few removed
        // nodes from the answer afterwards, asking for that many more.
        if accept.is_none() && snapshot >= g.newest && g.removed.len() <= PLAIN_REMOVED_MAX {
            let found = g.index.search(query, k + g.removed.len()).ok()?;
            let live = found.keys.iter().filter_map(|label| g.nodes.get(label).filter(|n| n.removed_at.is_none()));
            return Some(live.take(k).map(|n| n.id.clone()).collect());
        }
        let visible = |label: u64| match g.nodes.get(&label) {
            Some(node) => node.version <= snapshot && node.removed_at.is_none_or(|r| r > snapshot) && accept.is_none_or(|f| f(&node.id, &node.meta)),
            None => false,
        };
        let found = g.index.filtered_search(query, k, visible).ok()?;
        Some(found.keys.iter().filter_map(|label| g.nodes.get(label).map(|n| n.id.clone())).collect())
    }
}

impl SecondaryIndex for VectorIndex {
    fn as_any(&self) -> &dyn Any {
        self
    }

    /// A graph rebuilt from the image's entries (not loaded from its saved
    /// file) lacks the vectors older versions replaced: it serves
    /// snapshots from the checkpoint on, and older ones scan the records
    /// (which read history files).
    fn recovered(&self, version: u64) {
        for g in self.graphs.lock().values_mut() {
            if g.loaded_upto == 0 {
                g.retired_upto = g.retired_upto.max(version);
            }
        }
    }

    fn evict_run(&self, run: &RunId) {
        self.graphs.lock().retain(|prefix, _| prefix[..16] != *run.as_bytes());
    }

    /// As [`SecondaryIndex::recovered`], for the graphs of one run.
    fn warmed(&self, run: &RunId, version: u64) {
        for (prefix, g) in self.graphs.lock().iter_mut() {
            if prefix[..16] == *run.as_bytes() && g.loaded_upto == 0 {
                g.retired_upto = g.retired_upto.max(version);
            }
        }
    }

    fn on_write(&self, _store: &Store, key: &[u8], value: Option<&[u8]>, version: u64, oldest_needed: u64) {
        if InternalKey::tag(key) != Some(TypeTag::Vector) {
            return;
        }
        let Some((prefix, id)) = parse(key) else { return };
        let mut graphs = self.graphs.lock();
        // A graph loaded from the checkpoint already holds its writes.
        if graphs.get(&prefix[..]).is_some_and(|g| version <= g.loaded_upto) {
            return;
        }
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

    fn memory_bytes(&self) -> u64 {
        let graphs = self.graphs.lock();
        graphs
            .values()
            .map(|g| {
                // Each vector in the graph: its components and about 160 bytes
                // of links; usearch's own memory_usage() counts what it
                // reserved (16 MB for a collection of one), not what it holds.
                let graph = g.index.size() * (g.config.dimension as usize * 4 + 160);
                let nodes: usize = g.nodes.values().map(|n| std::mem::size_of::<Node>() + 16 + n.id.len() + json_size(&n.meta)).sum();
                (graph + nodes + g.current.len() * 48) as u64
            })
            .sum()
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let graphs = self.graphs.lock();
        if !graphs.is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        }
        for (prefix, g) in graphs.iter() {
            let stem = dir.join(hex::encode(prefix));
            let graph = stem.with_extension("graph");
            g.index.save(graph.to_str().unwrap_or_default()).map_err(|e| Error::internal(format!("saving a vector graph: {e}")))?;
            let nodes = stem.with_extension("nodes");
            let mut f = std::fs::File::create(&nodes).map_err(|e| Error::io(nodes.display(), e))?;
            f.write_all(&g.encode_nodes()).and_then(|_| f.sync_all()).map_err(|e| Error::io(nodes.display(), e))?;
            std::fs::File::open(&graph).and_then(|f| f.sync_all()).map_err(|e| Error::io(graph.display(), e))?;
        }
        Ok(())
    }

    fn load(&self, dir: &Path, version: u64) -> IndexLoad {
        let mut out = IndexLoad::default();
        let Ok(entries) = std::fs::read_dir(dir) else { return out };
        let mut graphs = self.graphs.lock();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "nodes") {
                continue;
            }
            let Some(prefix) = path.file_stem().and_then(|s| hex::decode(s.to_string_lossy().as_bytes()).ok()) else { continue };
            let name = prefix.get(18..prefix.len().saturating_sub(1)).map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            let loaded = std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| Graph::load(&bytes, &path.with_extension("graph"), version));
            match loaded {
                Ok(Some(g)) => {
                    graphs.insert(prefix.into(), g);
                    out.loaded += 1;
                }
                Ok(None) => {}
                Err(why) => out.rebuilt.push(format!("vector collection {name:?}: {why}; rebuilt from its records")),
            }
        }
        out
    }

    fn committed(&self, _version: u64, _state: Option<&crate::access::Extensions>, _keys: &mut dyn Iterator<Item = &[u8]>, oldest_needed: u64) {
        // Snapshots close between commits: forget what none can read now.
        // Every commit passes here, so it never waits: while a checkpoint
        // saves the graphs, retiring waits for a later commit.
        let Some(mut graphs) = self.graphs.try_lock() else { return };
        for g in graphs.values_mut() {
            if g.removed.front().is_some_and(|(at, _)| *at <= oldest_needed) {
                g.retire(oldest_needed);
            }
        }
    }
}
