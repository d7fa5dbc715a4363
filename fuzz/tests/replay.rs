//! The fuzz properties on stable Rust, without cargo-fuzz: every seed in
//! `seeds/<target>/`, then random and mutated inputs (a fixed number per
//! target, `IN_MEM_FUZZ_ITERATIONS` to change it, seeded so a failure can be
//! replayed with `IN_MEM_FUZZ_SEED`).
//!
//! `cargo test --manifest-path fuzz/Cargo.toml`

use std::fs;
use std::path::PathBuf;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("wal_record", in_mem_fuzz::wal_record),
    ("wal_record_damage", in_mem_fuzz::wal_record_damage),
    ("recovery", in_mem_fuzz::recovery),
    ("checkpoint", in_mem_fuzz::checkpoint),
    ("checkpoint_damage", in_mem_fuzz::checkpoint_damage),
    ("manifest", in_mem_fuzz::manifest),
    ("guard", in_mem_fuzz::guard),
    ("json_path", in_mem_fuzz::json_path),
    ("wal_payload", in_mem_fuzz::wal_payload),
    ("checkpoint_load", in_mem_fuzz::checkpoint_load),
    ("wire", in_mem_fuzz::wire),
    ("history_file", in_mem_fuzz::history_file),
];

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    let mut out: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

/// xorshift64*: enough randomness for a smoke run, and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-style mutation of `input`.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    match rng.below(6) {
        0 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] ^= 1 << rng.below(8);
        }
        1 if !input.is_empty() => {
            let i = rng.below(input.len());
            input[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(input.len() + 1);
            input.insert(i, rng.next() as u8);
        }
        3 if !input.is_empty() => {
            let i = rng.below(input.len());
            let n = rng.below(input.len() - i) + 1;
            input.drain(i..i + n);
        }
        4 if input.len() >= 4 => {
            let i = rng.below(input.len() - 3);
            let v = [0u32, 1, 0xFF, 0xFFFF, 0x4000_0000, 0x4000_0001, u32::MAX][rng.below(7)];
            input[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        _ => {
            let n = rng.below(32);
            input.extend((0..n).map(|_| rng.next() as u8));
        }
    }
}

#[test]
fn seeds_and_random_inputs_hold_every_property() {
    let iterations: usize = std::env::var("IN_MEM_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let seed: u64 = std::env::var("IN_MEM_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x1234_5678_9abc_def1);
    for (name, target) in TARGETS {
        let corpus = seeds(name);
        assert!(!corpus.is_empty(), "no seeds for {name}");
        for (path, bytes) in &corpus {
            println!("{name}: seed {}", path.display());
            target(bytes);
        }
        let mut rng = Rng(seed ^ name.len() as u64);
        for i in 0..iterations {
            let mut input = if i % 2 == 0 { corpus[rng.below(corpus.len())].1.clone() } else { (0..rng.below(512)).map(|_| rng.next() as u8).collect() };
            for _ in 0..1 + rng.below(4) {
                mutate(&mut rng, &mut input);
            }
            let result = std::panic::catch_unwind(|| target(&input));
            if result.is_err() {
                let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("replay-failure-{name}"));
                fs::write(&out, &input).unwrap();
                panic!("{name}: input {i} failed; written to {}", out.display());
            }
        }
    }
}
