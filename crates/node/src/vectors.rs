//! Vector calls of a transaction (SPEC §14).

use crate::bytes::Bytes;
use in_mem_engine::{Metric, StoredVector};
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::convert::parse_run;
use crate::errors::invalid;
use crate::transaction::NativeTransaction;

#[napi(object)]
pub struct NativeVector {
    pub id: String,
    /// The components, little-endian f32s.
    #[napi(ts_type = "Buffer")]
    pub vector: Bytes,
    #[napi(ts_type = "Buffer | null")]
    pub metadata: Option<Bytes>,
}

impl From<StoredVector> for NativeVector {
    fn from(v: StoredVector) -> Self {
        let mut bytes = Vec::with_capacity(4 * v.vector.len());
        for x in &v.vector {
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        NativeVector { id: v.id, vector: bytes.into(), metadata: v.metadata.map(Into::into) }
    }
}

#[napi(object)]
pub struct NativeWalk {
    /// How many hits to return.
    pub k: f64,
    /// The graph walk's expansion.
    pub ef: Option<f64>,
    /// Score every vector instead of walking the graph.
    pub exact: Option<bool>,
}

#[napi(object)]
pub struct NativeCollection {
    pub name: String,
    pub dimension: u32,
    pub metric: String,
}

fn dimension_of(d: f64) -> Result<u32> {
    if !(d.is_finite() && d.fract() == 0.0 && d >= 1.0 && d <= in_mem_engine::MAX_DIMENSION as f64) {
        return Err(invalid(format!("dimension must be an integer 1–{}, not {d}", in_mem_engine::MAX_DIMENSION)));
    }
    Ok(d as u32)
}

#[napi]
impl NativeTransaction {
    #[napi(catch_unwind)]
    pub fn vectors_create(&mut self, run: String, collection: String, dimension: f64, metric: String) -> Result<bool> {
        let run = parse_run(&run)?;
        let dimension = dimension_of(dimension)?;
        let metric = Metric::parse(&metric).map_err(crate::errors::to_napi)?;
        self.run(|tx| tx.vectors_create(&run, &collection, dimension, metric))
    }

    /// Answers `true` (every write answers something: see `NativeOps.write`).
    #[napi(catch_unwind)]
    pub fn vectors_upsert(&mut self, run: String, collection: String, id: String, vector: &[u8], metadata: Option<&[u8]>) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.vectors_upsert(&run, &collection, &id, vector, metadata)).map(|()| true)
    }

    /// Several upserts in one operation (on the single-operation handle: one
    /// commit, all or none). Answers `true`, as `vectors_upsert`.
    #[napi(catch_unwind)]
    pub fn vectors_upsert_many(
        &mut self,
        run: String,
        collection: String,
        ids: Vec<String>,
        vectors: Vec<Buffer>,
        metadata: Vec<Option<Buffer>>,
    ) -> Result<bool> {
        let run = parse_run(&run)?;
        if ids.len() != vectors.len() || ids.len() != metadata.len() {
            return Err(invalid("upsertMany needs as many vectors and metadata as ids"));
        }
        self.run(|tx| {
            for ((id, v), m) in ids.iter().zip(&vectors).zip(&metadata) {
                tx.vectors_upsert(&run, &collection, id, v, m.as_deref())?;
            }
            Ok(true)
        })
    }

    #[napi(catch_unwind)]
    pub fn vectors_get(&mut self, run: String, collection: String, id: String) -> Result<Option<NativeVector>> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.vectors_get(&run, &collection, &id))?.map(Into::into))
    }

    #[napi(catch_unwind)]
    pub fn vectors_delete(&mut self, run: String, collection: String, id: String) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.vectors_delete(&run, &collection, &id))
    }

    #[napi(catch_unwind)]
    pub fn vectors_count(&mut self, run: String, collection: String) -> Result<f64> {
        let run = parse_run(&run)?;
        Ok(self.run(|tx| tx.vectors_count(&run, &collection))? as f64)
    }

    #[napi(catch_unwind)]
    pub fn vectors_collections(&mut self, run: String) -> Result<Vec<NativeCollection>> {
        let run = parse_run(&run)?;
        Ok(self
            .run(|tx| tx.vectors_collections(&run))?
            .into_iter()
            .map(|(name, c)| NativeCollection { name, dimension: c.dimension, metric: c.metric.as_str().into() })
            .collect())
    }

    #[napi(catch_unwind)]
    pub fn vectors_drop(&mut self, run: String, collection: String) -> Result<bool> {
        let run = parse_run(&run)?;
        self.run(|tx| tx.vectors_drop(&run, &collection))
    }

    /// `vectors.search`, its hits in the I/O buffer (see `answer.rs`): their length.
    #[napi(catch_unwind)]
    pub fn vectors_search_into(
        &mut self,
        mut io: BufferSlice<'_>,
        run: String,
        collection: String,
        query: &[u8],
        filter: Option<&[u8]>,
        walk: NativeWalk,
    ) -> Result<i64> {
        let NativeWalk { k, ef, exact } = walk;
        let run = parse_run(&run)?;
        if !(k.is_finite() && k.fract() == 0.0 && k >= 1.0 && k <= in_mem_engine::MAX_K as f64) {
            return Err(invalid(format!("k must be an integer 1–{}, not {k}", in_mem_engine::MAX_K)));
        }
        if let Some(ef) = ef
            && !(ef.is_finite() && ef.fract() == 0.0 && ef >= 1.0 && ef <= in_mem_engine::MAX_EF as f64)
        {
            return Err(invalid(format!("ef must be an integer 1–{}, not {ef}", in_mem_engine::MAX_EF)));
        }
        let ef = ef.map(|e| e as usize);
        let hits = self.run(|tx| {
            tx.vectors_search(&run, &collection, &in_mem_engine::VectorQuery { vector: query, k: k as usize, filter, ef, exact: exact.unwrap_or(false) })
        })?;
        Ok(crate::answer::hits(&mut io, &hits))
    }
}
