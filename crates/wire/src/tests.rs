use std::sync::Arc;

use in_mem_engine::{Durability, Engine, OpenOptions, RunAction};
use rmpv::Value as V;

use super::*;

fn engine() -> Arc<Engine> {
    Engine::open(None, OpenOptions { durability: Durability::Memory, ..Default::default() }).unwrap().into_shared()
}

fn run(e: &Engine) -> String {
    e.run_begin(None, None, vec![], None).unwrap().id.to_string()
}

fn body(v: V) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &v).unwrap();
    out
}

fn request(id: u64, op: &str, args: Vec<V>) -> Vec<u8> {
    body(V::Array(vec![V::from(id), V::from(op), V::Array(args), V::from(0)]))
}

/// Serves one request; its answer `[id, status, payload]` decoded, or `None` when left to JavaScript.
fn ask(e: &Engine, req: &[u8]) -> Option<V> {
    let mut out = Vec::new();
    let (id, _) = serve(e, req, &mut out, true)?;
    let len = u32::from_le_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, out.len() - 4, "one frame, its length prefix right");
    let answer = rmpv::decode::read_value(&mut &out[4..]).unwrap();
    assert_eq!(answer[0], V::from(id));
    assert_eq!(answer[1], V::from(0));
    Some(answer[2].clone())
}

#[test]
fn kv_requests_are_answered_against_the_engine() {
    let e = engine();
    let r = run(&e);
    let value = V::Map(vec![(V::from("role"), V::from("user")), (V::from("n"), V::from(3))]);
    let put = ask(&e, &request(1, "kv.put", vec![V::from(r.as_str()), V::from("k"), value.clone()])).expect("put served");
    assert!(put.as_u64().unwrap() > 0, "a commit version");
    assert_eq!(ask(&e, &request(2, "kv.get", vec![V::from(r.as_str()), V::from("k")])), Some(value.clone()));
    // The stored bytes are the request's value bytes: the embedded read gets them too.
    let key = [&in_mem_engine::RunId::parse(&r).unwrap().as_bytes()[..], &[0x10], b"k"].concat();
    let stored = e.kv_get_with(&key, |_, _, p| p.to_vec()).unwrap().unwrap();
    assert_eq!(stored, body(value));
    assert_eq!(ask(&e, &request(3, "kv.exists", vec![V::from(r.as_str()), V::from("k")])), Some(V::Boolean(true)));
    assert_eq!(ask(&e, &request(4, "kv.delete", vec![V::from(r.as_str()), V::from("k")])), Some(V::Boolean(true)));
    assert_eq!(ask(&e, &request(5, "kv.delete", vec![V::from(r.as_str()), V::from("k")])), Some(V::Boolean(false)));
    assert_eq!(ask(&e, &request(6, "kv.exists", vec![V::from(r.as_str()), V::from("k")])), Some(V::Boolean(false)));
    // An absent key answers msgpackr's `undefined` (fixext 1, type 0).
    assert_eq!(ask(&e, &request(7, "kv.get", vec![V::from(r.as_str()), V::from("k")])), Some(V::Ext(0, vec![0])));
}

#[test]
fn everything_else_is_left_to_javascript_and_writes_nothing() {
    let e = engine();
    let r = run(&e);
    let rv = || V::from(r.as_str());
    let before = e.stats().version;
    let left: Vec<(&str, Vec<u8>)> = vec![
        ("another operation", request(1, "kv.list", vec![rv()])),
        ("options", body(V::Array(vec![V::from(1), V::from("kv.put"), V::Array(vec![rv(), V::from("k"), V::from(1), V::Map(vec![])]), V::from(0)]))),
        ("a run scope", body(V::Array(vec![V::from(1), V::from("kv.get"), V::Array(vec![V::from("k")]), V::Array(vec![V::from(1), rv()])]))),
        ("a typed array", request(1, "kv.put", vec![rv(), V::from("k"), V::Ext(0x74, vec![1, 2])])),
        ("undefined", request(1, "kv.put", vec![rv(), V::from("k"), V::Ext(0, vec![0])])),
        ("a bigint out of range", request(1, "kv.put", vec![rv(), V::from("k"), V::from(u64::MAX)])),
        ("a bad run id", request(1, "kv.get", vec![V::from("not-a-run"), V::from("k")])),
        ("the nil run id", request(1, "kv.get", vec![V::from("00000000-0000-0000-0000-000000000000"), V::from("k")])),
        ("an empty key", request(1, "kv.put", vec![rv(), V::from(""), V::from(1)])),
        ("a key with NUL", request(1, "kv.put", vec![rv(), V::from("a\0b"), V::from(1)])),
        ("a long key", request(1, "kv.put", vec![rv(), V::from("x".repeat(1025)), V::from(1)])),
        ("a number key", request(1, "kv.put", vec![rv(), V::from(5), V::from(1)])),
        ("id 0", request(0, "kv.get", vec![rv(), V::from("k")])),
        ("a missing argument", request(1, "kv.put", vec![rv(), V::from("k")])),
        ("an unknown run", request(1, "kv.put", vec![V::from("0190a3f8-0000-7000-8000-000000000001"), V::from("k"), V::from(1)])),
    ];
    for (what, req) in &left {
        let mut out = Vec::new();
        assert_eq!(serve(&e, req, &mut out, true), None, "{what}");
        assert!(out.is_empty(), "{what}: no answer written");
    }
    let mut trailing = request(1, "kv.get", vec![rv(), V::from("k")]);
    trailing.push(0xc0);
    assert_eq!(serve(&e, &trailing, &mut Vec::new(), true), None, "trailing bytes");
    let req = request(1, "kv.get", vec![rv(), V::from("k")]);
    for n in 0..req.len() {
        assert_eq!(serve(&e, &req[..n], &mut Vec::new(), true), None, "cut at {n}");
    }
    // A run that is no longer active: the engine refuses, so JavaScript reports it.
    e.run_update(&in_mem_engine::RunId::parse(&r).unwrap(), RunAction::Complete, None).unwrap();
    assert_eq!(serve(&e, &request(1, "kv.put", vec![rv(), V::from("k"), V::from(1)]), &mut Vec::new(), true), None, "a completed run");
    assert_eq!(e.stats().version, before + 1, "only the completion committed");
    // Reads of it are still served.
    assert_eq!(ask(&e, &request(2, "kv.get", vec![rv(), V::from("k")])), Some(V::Ext(0, vec![0])));
}

#[test]
fn run_ids_parse_in_either_case() {
    let mut out = Vec::new();
    assert!(run_bytes("0190A3F8-0000-7000-8000-00000000000a", &mut out).is_some());
    assert_eq!(out, [0x01, 0x90, 0xa3, 0xf8, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x0a]);
    for bad in [
        "0190a3f8-0000-7000-8000-00000000000",
        "0190a3f8x0000-7000-8000-000000000001",
        "0190a3f8-0000-7000-8000-00000000000g",
        "+190a3f8-0000-7000-8000-000000000001",
    ] {
        assert!(run_bytes(bad, &mut Vec::new()).is_none(), "{bad}");
    }
}
