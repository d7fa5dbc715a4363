//! Criterion benchmarks of the engine's KV fast path, the Rust side of the
//! SPEC §12 napi-overhead check: `bench/kv.mjs` measures the same operations
//! from JavaScript with the same keys, the same value size and the same
//! visiting order, and `bench/run.mjs` sets the two side by side.
//!
//!   cargo bench -p in-mem-engine --bench engine
//!
//! Each benchmark is one operation per iteration; criterion writes its
//! estimates (ns per operation) to `target/criterion/<name>/new/estimates.json`
//! (or under `$CRITERION_HOME`), where `bench/run.mjs` reads them.
//!
//! - `kv_put_memory`, `kv_put_buffered`: `Engine::kv_put` overwriting the
//!   preloaded keys in shuffled order (memory mode; buffered mode in a temp dir).
//! - `kv_get_hit`, `kv_get_miss`: `Engine::kv_get_with` on a memory-mode
//!   engine; a hit copies the payload into an output buffer, as the binding
//!   copies it into the shared I/O buffer.
//!
//! Environment: BENCH_KEYS (default 100000, as in bench/kv.mjs).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use in_mem_core::{InternalKey, TypeTag};
use in_mem_engine::{Durability, Engine, KvDb, OpenOptions};

/// The value: the 100 bytes of plain MessagePack that bench/kv.mjs stores
/// (msgpackr, no records, of
/// `{ role: 'assistant', step: 42, score: 0.875, done: false, tags: ['plan', 'tool'], text: 'The meeting moved to 3pm, room 4B.' }`).
const VALUE_HEX: &str = "86a4726f6c65a9617373697374616e74a4737465702aa573636f7265cb3fec000000000000a4646f6e65c2a47461677392a4706c616ea4746f6f6ca474657874d922546865206d656574696e67206d6f76656420746f2033706d2c20726f6f6d2034422e";

fn value() -> Vec<u8> {
    (0..VALUE_HEX.len()).step_by(2).map(|i| u8::from_str_radix(&VALUE_HEX[i..i + 2], 16).unwrap()).collect()
}

fn keys_count() -> usize {
    std::env::var("BENCH_KEYS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000)
}

/// The visiting order of bench/kv.mjs: xorshift32 Fisher-Yates.
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x: u32 = 0x9e37_79b9;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let j = (x as usize) % (i + 1);
        order.swap(i, j);
    }
    order
}

/// An engine with one active run holding every key, loaded in key order as
/// bench/kv.mjs loads it (the order of insertion decides where the store's
/// nodes sit in memory, which shows in every later lookup). Returns the
/// internal keys (`run id | 0x10 | user key`) of the hits, in visiting order,
/// and of the misses.
fn loaded(engine: &Engine, n: usize, value: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let run = engine.run_begin(Some("bench".into()), None, Vec::new(), None).unwrap().id;
    let keys: Vec<Vec<u8>> = (0..n).map(|i| InternalKey::build(&run, TypeTag::Kv, format!("key:{i:08}").as_bytes())).collect();
    for k in &keys {
        engine.kv_put(k, value, None).unwrap();
    }
    let hit = shuffled(n).into_iter().map(|i| keys[i].clone()).collect();
    let miss = (0..n).map(|i| InternalKey::build(&run, TypeTag::Kv, format!("miss:{i:07}").as_bytes())).collect();
    (hit, miss)
}

fn memory() -> std::sync::Arc<Engine> {
    Engine::open(None, OpenOptions { durability: Durability::Memory, ..OpenOptions::default() }).unwrap().into_shared()
}

/// One key after another, wrapping around.
struct Cycle<'a> {
    keys: &'a [Vec<u8>],
    at: usize,
}

impl<'a> Cycle<'a> {
    fn new(keys: &'a [Vec<u8>]) -> Self {
        Cycle { keys, at: 0 }
    }
    #[inline]
    fn next(&mut self) -> &'a [u8] {
        let k = &self.keys[self.at];
        self.at += 1;
        if self.at == self.keys.len() {
            self.at = 0;
        }
        k
    }
}

fn kv(c: &mut Criterion) {
    let n = keys_count();
    let value = value();

    {
        let engine = memory();
        let (hit, miss) = loaded(&engine, n, &value);

        let mut keys = Cycle::new(&hit);
        c.bench_function("kv_put_memory", |b| b.iter(|| engine.kv_put(black_box(keys.next()), black_box(&value), None).unwrap()));

        let mut out = vec![0u8; 64 * 1024];
        let mut keys = Cycle::new(&hit);
        c.bench_function("kv_get_hit", |b| {
            b.iter(|| {
                let found = engine
                    .kv_get_with(black_box(keys.next()), |_, _, payload| {
                        out[..payload.len()].copy_from_slice(payload);
                        payload.len()
                    })
                    .unwrap();
                assert!(found.is_some());
                found
            })
        });

        let mut keys = Cycle::new(&miss);
        c.bench_function("kv_get_miss", |b| {
            b.iter(|| {
                let found = engine.kv_get_with(black_box(keys.next()), |_, _, payload| payload.len()).unwrap();
                assert!(found.is_none());
                found
            })
        });
        engine.shutdown().unwrap();
    }

    {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(Some(dir.path()), OpenOptions { durability: Durability::Buffered, ..OpenOptions::default() }).unwrap().into_shared();
        let (hit, _) = loaded(&engine, n, &value);
        let mut keys = Cycle::new(&hit);
        c.bench_function("kv_put_buffered", |b| b.iter(|| engine.kv_put(black_box(keys.next()), black_box(&value), None).unwrap()));
        engine.shutdown().unwrap();
    }
}

/// The machine speed probe, as in bench/kv.mjs (there: JSON.parse of the
/// same JSON): not an engine measure, a way to see that the machine itself got
/// faster or slower between runs.
fn probe(c: &mut Criterion) {
    let json = r#"{"role":"assistant","step":42,"score":0.875,"done":false,"tags":["plan","tool"],"text":"The meeting moved to 3pm, room 4B."}"#;
    c.bench_function("probe_json_parse", |b| b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(json)).unwrap()));
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20).without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = kv, probe
}
criterion_main!(benches);
