//! Conflict rules of the primitives, at the engine level: JSON documents
//! conflict by path, event appends to one run always conflict, state cells
//! conflict per cell.

use std::sync::Arc;

use in_mem_engine::{Durability, Engine, EngineTx, Error, OpenOptions, RunId};

fn setup() -> (Arc<Engine>, RunId) {
    let engine = Engine::open(None, OpenOptions { durability: Durability::Memory, ..OpenOptions::default() }).unwrap().into_shared();
    let run = engine.run_begin(None, None, vec![], None).unwrap().id;
    (engine, run)
}

/// MessagePack of a small JSON value.
fn mp(json: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    rmp_serde::to_vec(&v).unwrap()
}

fn doc(engine: &Arc<Engine>, run: &RunId, path: &str) -> Option<serde_json::Value> {
    let mut tx = EngineTx::begin(engine).unwrap();
    tx.json_get(run, "d", path).unwrap().map(|b| rmp_serde::from_slice(&b).unwrap())
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, Error>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

#[test]
fn disjoint_json_paths_both_commit_and_both_changes_stay() {
    let (engine, run) = setup();
    let mut init = EngineTx::begin(&engine).unwrap();
    init.json_set(&run, "d", "$", &mp(r#"{"a":{"x":0},"b":{"y":0}}"#)).unwrap();
    init.commit(true).unwrap();

    let mut t1 = EngineTx::begin(&engine).unwrap();
    let mut t2 = EngineTx::begin(&engine).unwrap();
    t1.json_set(&run, "d", "$.a.x", &mp("1")).unwrap();
    t2.json_set(&run, "d", "$.b.y", &mp("2")).unwrap();
    t2.json_merge(&run, "d", "$.c", &mp(r#"{"z":3}"#)).unwrap();
    t1.commit(true).unwrap();
    t2.commit(true).unwrap();
    assert_eq!(doc(&engine, &run, "$").unwrap(), serde_json::json!({"a":{"x":1},"b":{"y":2},"c":{"z":3}}));
}

#[test]
fn overlapping_json_paths_conflict_in_both_directions() {
    let (engine, run) = setup();
    for (first, second) in [("$.a", "$.a.b"), ("$.a.b", "$.a"), ("$.a", "$.a"), ("$", "$.q")] {
        let mut t1 = EngineTx::begin(&engine).unwrap();
        let mut t2 = EngineTx::begin(&engine).unwrap();
        t1.json_set(&run, "d", first, &mp("{}")).unwrap();
        t2.json_set(&run, "d", second, &mp("{}")).unwrap();
        t1.commit(true).unwrap();
        assert!(is_conflict(t2.commit(true)), "{first} then {second}");
    }
}

#[test]
fn a_read_path_conflicts_only_with_writes_that_overlap_it() {
    let (engine, run) = setup();
    let mut init = EngineTx::begin(&engine).unwrap();
    init.json_set(&run, "d", "$", &mp(r#"{"x":1,"y":1}"#)).unwrap();
    init.commit(true).unwrap();

    let mut reader = EngineTx::begin(&engine).unwrap();
    assert_eq!(reader.json_get(&run, "d", "$.x").unwrap(), Some(mp("1")));
    reader.json_set(&run, "d", "$.z", &mp("1")).unwrap();
    let mut w = EngineTx::begin(&engine).unwrap();
    w.json_set(&run, "d", "$.y", &mp("2")).unwrap();
    w.commit(true).unwrap();
    reader.commit(true).unwrap();

    let mut reader = EngineTx::begin(&engine).unwrap();
    reader.json_get(&run, "d", "$.x").unwrap();
    reader.json_set(&run, "d", "$.z", &mp("2")).unwrap();
    let mut w = EngineTx::begin(&engine).unwrap();
    w.json_set(&run, "d", "$.x", &mp("2")).unwrap();
    w.commit(true).unwrap();
    assert!(is_conflict(reader.commit(true)));
}

#[test]
fn a_read_only_document_transaction_never_conflicts() {
    let (engine, run) = setup();
    let mut reader = EngineTx::begin(&engine).unwrap();
    reader.json_get(&run, "d", "$").unwrap();
    let mut w = EngineTx::begin(&engine).unwrap();
    w.json_set(&run, "d", "$", &mp("1")).unwrap();
    w.commit(true).unwrap();
    assert_eq!(reader.commit(true).unwrap(), None);
}

#[test]
fn deleting_the_run_conflicts_with_any_document_write() {
    let (engine, run) = setup();
    let mut init = EngineTx::begin(&engine).unwrap();
    init.json_set(&run, "d", "$.a", &mp("1")).unwrap();
    init.commit(true).unwrap();
    let mut t = EngineTx::begin(&engine).unwrap();
    t.json_set(&run, "d", "$.b", &mp("1")).unwrap();
    assert!(engine.run_delete(&run).unwrap());
    assert!(t.commit(true).is_err());
}

#[test]
fn two_appends_to_one_run_never_both_commit() {
    let (engine, run) = setup();
    let mut t1 = EngineTx::begin(&engine).unwrap();
    let mut t2 = EngineTx::begin(&engine).unwrap();
    assert_eq!(t1.events_append(&run, "a", &mp("1")).unwrap().sequence, 0);
    assert_eq!(t2.events_append(&run, "b", &mp("2")).unwrap().sequence, 0);
    t1.commit(true).unwrap();
    assert!(is_conflict(t2.commit(true)));
    let mut t3 = EngineTx::begin(&engine).unwrap();
    let e = t3.events_append(&run, "b", &mp("2")).unwrap();
    assert_eq!(e.sequence, 1);
    t3.commit(true).unwrap();
    let mut r = EngineTx::begin(&engine).unwrap();
    let v = r.events_verify(&run).unwrap();
    assert!(v.valid && v.length == 2, "{v:?}");
}

#[test]
fn cas_on_one_cell_conflicts_and_other_cells_do_not() {
    let (engine, run) = setup();
    let mut t1 = EngineTx::begin(&engine).unwrap();
    let mut t2 = EngineTx::begin(&engine).unwrap();
    let mut t3 = EngineTx::begin(&engine).unwrap();
    assert_eq!(t1.state_cas(&run, "c", 0, &mp("1")).unwrap(), (true, 1));
    assert_eq!(t2.state_cas(&run, "c", 0, &mp("2")).unwrap(), (true, 1));
    assert_eq!(t3.state_cas(&run, "other", 0, &mp("3")).unwrap(), (true, 1));
    t1.commit(true).unwrap();
    assert!(is_conflict(t2.commit(true)));
    t3.commit(true).unwrap();
}
