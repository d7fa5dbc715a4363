//! Writes the seed corpus in `seeds/<target>/`: valid encodings made with the
//! crates' own encoders, and texts taken from the docs and tests. Run it to
//! regenerate them (they are committed):
//!
//! `cargo test --manifest-path fuzz/Cargo.toml --test seeds -- --ignored`

use std::fs;
use std::path::PathBuf;

use in_mem_durability::checkpoint::CheckpointWriter;
use in_mem_durability::format::{SegmentHeader, encode_record};
use in_mem_durability::manifest::{self, Manifest};

/// A checkpoint entry: key, version, value (none for a tombstone).
type Entry = (Vec<u8>, u64, Option<Vec<u8>>);

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// Deterministic filler bytes.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A commit payload as the engine writes it (docs/format.md): one put.
fn commit_payload(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut p = vec![1u8];
    p.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    p.extend_from_slice(&1u32.to_le_bytes());
    p.push(1);
    p.extend_from_slice(&(key.len() as u32).to_le_bytes());
    p.extend_from_slice(key);
    p.extend_from_slice(&(value.len() as u32).to_le_bytes());
    p.extend_from_slice(value);
    p
}

#[test]
#[ignore]
fn write_seeds() {
    // (a) records and headers
    for (i, n) in [0usize, 1, 16, 100, 700].into_iter().enumerate() {
        let mut r = Vec::new();
        encode_record(&mut r, i as u64 + 1, &bytes(i as u64, n));
        write("wal_record", &format!("record-{n}"), &r);
    }
    let mut r = Vec::new();
    encode_record(&mut r, 7, &commit_payload(b"key", b"value"));
    write("wal_record", "commit", &r);
    let mut two = r.clone();
    encode_record(&mut two, 8, &commit_payload(b"k2", b""));
    write("wal_record", "two-records", &two);
    write("wal_record", "record-cut", &r[..r.len() - 3]);
    let mut huge = r.clone();
    huge[0..4].copy_from_slice(&0x4000_0001u32.to_le_bytes());
    write("wal_record", "huge-length", &huge);
    write("wal_record", "segment-header", &SegmentHeader::new(3, [9; 16], false).encode());
    for i in 0..4u64 {
        write("wal_record_damage", &format!("random-{i}"), &bytes(100 + i, 64 << i));
        write("checkpoint_damage", &format!("random-{i}"), &bytes(200 + i, 128 << i));
        write("history_file", &format!("random-{i}"), &bytes(700 + i, 256 << i));
    }
    // (b) recovery: arbitrary-driven, so byte strings of several lengths.
    for (i, n) in [16usize, 64, 200, 600, 1500].into_iter().enumerate() {
        write("recovery", &format!("random-{n}"), &bytes(300 + i as u64, n));
    }
    // A recycled newest segment with stale records after its own: the
    // first filler that reads as such a case.
    let stale = (0..100_000u64)
        .map(|i| bytes(10_000 + i, 400))
        .find(|b| {
            in_mem_fuzz::recovery_case(b).is_some_and(|c| c.contains("recycled: true") && c.contains("Stale { payloads: [[") && !c.contains("newest: []"))
        })
        .expect("a stale case among the fillers");
    write("recovery", "recycled-stale", &stale);
    // (c) checkpoints as written
    let dir = tempfile::tempdir().unwrap();
    let shapes: [(&str, u64, Vec<Entry>); 3] = [
        ("empty", 5, vec![]),
        ("three", 9, vec![(b"a".to_vec(), 1, Some(b"one".to_vec())), (b"a".to_vec(), 4, None), (b"b".to_vec(), 9, Some(bytes(1, 300)))]),
        (
            "many",
            1000,
            (0..200u64).map(|i| (format!("key{i:05}").into_bytes(), i, if i % 7 == 0 { None } else { Some(bytes(i, (i % 50) as usize)) })).collect(),
        ),
    ];
    for (name, version, entries) in shapes {
        let mut w = CheckpointWriter::create(dir.path(), version, [3; 16]).unwrap();
        for (k, v, val) in &entries {
            w.add(k, *v, false, val.as_deref()).unwrap();
        }
        let info = w.finish().unwrap();
        write("checkpoint", name, &fs::read(info.path).unwrap());
    }
    // Commit payloads for wal_payload: a put, a delete, two ops.
    let run_key = |tag: u8, user: &[u8]| [&[0x11u8; 16][..], &[tag], user].concat();
    write("wal_payload", "put", &commit_payload(&run_key(0x10, b"k"), &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa1, b'v']));
    let mut del = vec![1u8];
    del.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    del.extend_from_slice(&2u32.to_le_bytes());
    for (op, key) in [(2u8, run_key(0x10, b"gone")), (2, run_key(0x14, b"\x01trace-id-16byte"))] {
        del.push(op);
        del.extend_from_slice(&(key.len() as u32).to_le_bytes());
        del.extend_from_slice(&key);
    }
    write("wal_payload", "deletes", &del);
    write(
        "wal_payload",
        "run-record",
        &commit_payload(
            &[&[0u8; 16][..], &[0x01], &[0x11; 16]].concat(),
            &[1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    );
    for i in 0..4u64 {
        write("checkpoint_load", &format!("random-{i}"), &bytes(600 + i, 96 << i));
        let mut shaped = vec![0xFF];
        shaped.extend(bytes(700 + i, 96 << i));
        write("wal_payload", &format!("shaped-{i}"), &shaped);
    }
    // (d) manifests
    for (name, cps) in [("none", vec![]), ("one", vec![42u64]), ("two", vec![9000, 4500]), ("big", vec![u64::MAX, 1])] {
        write("manifest", name, manifest::encode(&Manifest { checkpoints: cps, history: vec![], cold: vec![], cold_files: vec![] }).as_bytes());
    }
    let cold = vec![
        manifest::ColdLine { file: 1, run: [0x01; 16], since: 40, warm_from: 0, bytes: 5120 },
        manifest::ColdLine { file: 2, run: [0xfe; 16], since: 41, warm_from: 90, bytes: 7 },
    ];
    write(
        "manifest",
        "cold",
        manifest::encode(&Manifest { checkpoints: vec![90, 41], history: vec![40], cold, cold_files: vec![(1, 5120), (2, 9)] }).as_bytes(),
    );
    // (e) guards: the text, a NUL, then bytes for the context and payload.
    let guards = [
        "true",
        "ctx.total < 100",
        "ctx.n != \"3\"",
        "ctx.n < \"5\" || ctx.n >= \"5\" || ctx.n == \"3\"",
        "!(payload.ok == true) && ctx.items[0].price >= 1.5e2",
        "ctx['odd key'] == 'x\\u00e9\\n' || payload.a.b[2] == null",
        "((((ctx.a))))",
        "ctx.a == -12 && payload.x <= 3.25",
    ];
    for (i, g) in guards.iter().enumerate() {
        let mut b = g.as_bytes().to_vec();
        b.push(0);
        b.extend(bytes(400 + i as u64, 48));
        write("guard", &format!("guard-{i}"), &b);
    }
    // (f) JSON paths: the path, a NUL, then bytes for the value.
    let paths = ["$", "$.a", "$.a.b", "$.a[0]", "$[\"odd key\"]", "$['x'].y[2]", "$.é.b_c$", "$.a[10].b"];
    for (i, p) in paths.iter().enumerate() {
        let mut b = p.as_bytes().to_vec();
        b.push(0);
        b.extend(bytes(500 + i as u64, 32));
        write("json_path", &format!("path-{i}"), &b);
    }
}
