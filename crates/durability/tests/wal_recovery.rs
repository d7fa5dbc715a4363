//! The WAL against a model: whatever was acknowledged durable is recovered in
//! order, a torn tail is truncated and reported, and damage before the tail
//! is a CorruptionError that leaves the files untouched.

use std::fs;
use std::path::Path;
use std::time::Duration;

use in_mem_core::Error;
use in_mem_durability::{DirLock, Mode, Wal, WalOptions, recover, segment_file_name};
use proptest::prelude::*;

fn strict(segment_bytes: u64) -> WalOptions {
    WalOptions { mode: Mode::Strict, segment_bytes, flush_interval: Duration::from_millis(10), max_pending_writes: 1000 }
}

fn write_log(dir: &Path, payloads: &[Vec<u8>], segment_bytes: u64) {
    let wal = Wal::open(dir, [9; 16], strict(segment_bytes), None, 1, 0, Vec::new()).unwrap();
    for (i, p) in payloads.iter().enumerate() {
        wal.append(i as u64 + 1, p).unwrap();
        wal.sync_to(i as u64 + 1).unwrap();
    }
    wal.close().unwrap();
}

fn read_log(dir: &Path) -> (Vec<(u64, Vec<u8>)>, in_mem_durability::RecoveryReport) {
    let mut got = vec![];
    let report = recover(dir, 0, |v, p| {
        got.push((v, p.to_vec()));
        Ok(())
    })
    .unwrap();
    (got, report)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn recovery_returns_every_synced_record_in_order(
        // Small records go through the segment's map, records of 8 KB and more through pwrite.
        payloads in prop::collection::vec(prop_oneof![4 => prop::collection::vec(any::<u8>(), 0..200), 1 => prop::collection::vec(any::<u8>(), 8000..20_000)], 0..60),
        seg in prop_oneof![100u64..2000, 30_000u64..100_000],
    ) {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), &payloads, seg);
        let (got, report) = read_log(dir.path());
        prop_assert!(report.torn_tail.is_none());
        let expected: Vec<(u64, Vec<u8>)> = payloads.iter().enumerate().map(|(i, p)| (i as u64 + 1, p.clone())).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_cut_anywhere_in_a_large_last_record_is_a_torn_tail(cut in 1usize..20_000) {
        let dir = tempfile::tempdir().unwrap();
        let mut payloads: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 30]).collect();
        payloads.push(vec![7; 9000]);
        payloads.push((0..20_000u32).map(|i| i as u8).collect());
        write_log(dir.path(), &payloads, 1 << 20);
        let path = dir.path().join(segment_file_name(1));
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - cut as u64).unwrap();
        let (got, report) = read_log(dir.path());
        prop_assert_eq!(got.len(), 4);
        prop_assert_eq!(&got[3].1, &payloads[3]);
        prop_assert!(report.torn_tail.is_some());
    }

    #[test]
    fn a_cut_anywhere_in_the_last_record_is_a_torn_tail(cut in 1usize..40) {
        let dir = tempfile::tempdir().unwrap();
        let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 30]).collect();
        write_log(dir.path(), &payloads, 1 << 20);
        let path = dir.path().join(segment_file_name(1));
        let len = fs::metadata(&path).unwrap().len();
        fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - cut as u64).unwrap();
        let (got, report) = read_log(dir.path());
        prop_assert_eq!(got.len(), 4);
        let torn = report.torn_tail.unwrap();
        prop_assert_eq!(torn.dropped_bytes, 46 - cut as u64);
        // Truncated: a second recovery finds a clean log.
        let (again, report) = read_log(dir.path());
        prop_assert_eq!(again.len(), 4);
        prop_assert!(report.torn_tail.is_none());
    }
}

#[test]
fn a_flipped_bit_before_the_tail_is_corruption_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 30]).collect();
    write_log(dir.path(), &payloads, 1 << 20);
    let path = dir.path().join(segment_file_name(1));
    let mut bytes = fs::read(&path).unwrap();
    let offset = 48 + 46 + 20;
    bytes[offset] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    let err = recover(dir.path(), 0, |_, _| Ok(())).unwrap_err();
    match err {
        Error::Corruption { file, offset, .. } => {
            assert!(file.ends_with(&segment_file_name(1)));
            assert_eq!(offset, 48 + 46);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes, "recovery must not change a corrupt log");
}

#[test]
fn a_damaged_length_before_the_tail_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 30]).collect();
    write_log(dir.path(), &payloads, 1 << 20);
    let path = dir.path().join(segment_file_name(1));
    let mut bytes = fs::read(&path).unwrap();
    // The second record's length now runs past the end of the file, which
    // alone looks like a torn tail; the valid records after it say otherwise.
    bytes[48 + 46 + 2] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    match recover(dir.path(), 0, |_, _| Ok(())) {
        Err(Error::Corruption { offset, .. }) => assert_eq!(offset, 48 + 46),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(fs::read(&path).unwrap(), bytes, "recovery must not change a corrupt log");
}

#[test]
fn a_missing_segment_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let payloads: Vec<Vec<u8>> = (0..30u8).map(|i| vec![i; 30]).collect();
    write_log(dir.path(), &payloads, 200);
    fs::remove_file(dir.path().join(segment_file_name(2))).unwrap();
    assert!(matches!(recover(dir.path(), 0, |_, _| Ok(())), Err(Error::Corruption { .. })));
}

#[test]
fn group_commit_shares_fsyncs_between_threads() {
    let dir = tempfile::tempdir().unwrap();
    let wal = std::sync::Arc::new(Wal::open(dir.path(), [1; 16], strict(1 << 30), None, 1, 0, Vec::new()).unwrap());
    let lock = std::sync::Arc::new(parking_lot::Mutex::new(0u64));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let wal = wal.clone();
            let lock = lock.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let v = {
                        let mut last = lock.lock();
                        *last += 1;
                        wal.append(*last, b"x").unwrap();
                        *last
                    };
                    wal.sync_to(v).unwrap();
                    assert!(wal.durable_version() >= v);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.durable_version, 400);
    assert!(stats.fsyncs <= 400);
    drop(wal);
    let (got, _) = read_log(dir.path());
    assert_eq!(got.len(), 400);
}

/// Another process's hold is a `LockedError` naming its pid (the JS lock
/// suite checks that with a child process); this process's own hold is
/// never reported as another process's.
#[test]
fn a_second_lock_in_the_same_process_never_names_this_process_as_another() {
    let dir = tempfile::tempdir().unwrap();
    let _held = DirLock::acquire(dir.path()).unwrap();
    match DirLock::acquire(dir.path()) {
        Err(e @ Error::InvalidArgument { .. }) => assert!(e.to_string().contains("already open in this process"), "{e}"),
        other => panic!("expected InvalidArgument, got {:?}", other.err()),
    }
}

/// The strict syncer: a request is answered by one report after its fsync;
/// requests made while it is held share the next fsync; a request past the
/// newest record is answered at the newest record, not fsynced forever.
#[test]
fn the_syncer_reports_each_requested_version_after_its_fsync() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    // A flush interval far beyond the test: the syncer's own round for
    // records nobody asked for (after a quiet interval) never runs here.
    let options = WalOptions { flush_interval: Duration::from_secs(600), ..strict(1 << 30) };
    let wal = std::sync::Arc::new(Wal::open(dir.path(), [1; 16], options, None, 1, 0, Vec::new()).unwrap());
    let (tx, rx) = mpsc::channel::<(u64, u64)>();
    let w = wal.clone();
    let tx = std::sync::Mutex::new(tx);
    // Each report carries the durable version and the fsync count at that moment.
    let id = wal.subscribe(std::sync::Arc::new(move |r| {
        let v = r.expect("no fsync fails here");
        tx.lock().unwrap().send((v, w.stats().fsyncs)).unwrap();
    }));
    let wait = |at_least: u64| loop {
        let (v, fsyncs) = rx.recv_timeout(Duration::from_secs(10)).expect("a report");
        if v >= at_least {
            return (v, fsyncs);
        }
    };

    wal.append(1, b"one").unwrap();
    assert!(!wal.request_sync(1), "nothing is fsynced yet");
    let (v, fsyncs) = wait(1);
    assert_eq!(v, 1);
    assert!(fsyncs >= 1 && wal.durable_version() >= 1);
    assert!(wal.request_sync(1), "already durable: answered at once");

    wal.hold_syncer(true);
    let before = wal.stats().fsyncs;
    for v in 2..=20 {
        wal.append(v, b"more").unwrap();
        assert!(!wal.request_sync(v));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wal.durable_version(), 1, "held: no fsync started");
    assert!(rx.try_recv().is_err(), "held: nothing reported");
    wal.hold_syncer(false);
    let (v, fsyncs) = wait(20);
    assert_eq!(v, 20);
    assert_eq!(fsyncs - before, 1, "one fsync covers every request made while held");

    // A version past the newest record is clamped to it.
    wal.append(21, b"last").unwrap();
    assert!(!wal.request_sync(1000));
    assert_eq!(wait(21).0, 21);
    std::thread::sleep(Duration::from_millis(50));
    let fsyncs = wal.stats().fsyncs;
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(wal.stats().fsyncs, fsyncs, "the syncer is idle, not fsyncing for a version that does not exist");

    wal.unsubscribe(id);
    wal.close().unwrap();
}

/// Segments a checkpoint made obsolete are recycled: one is kept as the
/// spare, the next rotation writes over it in place, and a process that dies
/// with stale records after its last record loses nothing and reports no
/// torn tail; a clean close cuts the stale bytes.
#[test]
fn a_recycled_segment_is_reused_and_its_stale_tail_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let seg_bytes = 4096;
    let payload = |v: u64| format!("record {v} {}", "x".repeat(200)).into_bytes();
    let wal = Wal::open(dir.path(), [4; 16], strict(seg_bytes), None, 1, 0, Vec::new()).unwrap();
    // About 17 records a segment: 100 records make 6 segments.
    for v in 1..=100 {
        wal.append(v, &payload(v)).unwrap();
        wal.sync_to(v).unwrap();
    }
    let segments = |d: &Path| {
        let mut n: Vec<String> = fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    };
    let before = segments(dir.path());
    assert!(before.len() >= 5, "{before:?}");
    // A checkpoint at 60 makes the first segments obsolete: one is kept.
    let removed = wal.remove_segments_upto(60).unwrap();
    assert!(removed >= 2);
    let spare = dir.path().join("spare.recycle");
    assert!(spare.exists(), "no spare kept: {:?}", segments(dir.path()));
    let spare_len = fs::metadata(&spare).unwrap().len();
    assert!(spare_len > 2048, "the spare is a whole segment");
    // The next rotation takes the spare: the newest segment is recycled,
    // with stale records after the ones written since.
    let newest_before = before.last().unwrap().clone();
    let mut v = 100;
    while !segments(dir.path()).iter().any(|n| n > &newest_before && n.ends_with(".wal")) {
        v += 1;
        wal.append(v, &payload(v)).unwrap();
        wal.sync_to(v).unwrap();
    }
    assert!(!spare.exists(), "the rotation took the spare");
    v += 1;
    wal.append(v, &payload(v)).unwrap();
    wal.sync_to(v).unwrap();
    let newest = dir.path().join(segments(dir.path()).into_iter().rfind(|n| n.ends_with(".wal")).unwrap());
    let header = in_mem_durability::format::SegmentHeader::decode(&fs::read(&newest).unwrap()).unwrap();
    assert!(header.recycled && header.format == 2);
    assert_eq!(fs::metadata(&newest).unwrap().len(), spare_len, "written in place: the file keeps its length");
    // The process dies: nothing is sealed, the stale records stay.
    std::mem::forget(wal);
    let mut got = vec![];
    let report = recover(dir.path(), 60, |version, p| {
        got.push((version, p.to_vec()));
        Ok(())
    })
    .unwrap();
    assert!(report.torn_tail.is_none(), "stale records reported as a torn tail: {:?}", report.torn_tail);
    assert_eq!(report.last_version, v);
    let expected: Vec<(u64, Vec<u8>)> = (61..=v).map(|i| (i, payload(i))).collect();
    assert_eq!(got, expected);
    // Recovery cut the stale bytes; a second recovery agrees.
    assert!(fs::metadata(&newest).unwrap().len() < spare_len);
    let (again, report) = {
        let mut again = vec![];
        let r = recover(dir.path(), 60, |version, p| {
            again.push((version, p.to_vec()));
            Ok(())
        })
        .unwrap();
        (again, r)
    };
    assert_eq!(again, expected);
    assert!(report.torn_tail.is_none());
}

/// Recovers a copy of the WAL directory `dir` (the original stays open).
fn read_copy(dir: &Path) -> Vec<(u64, Vec<u8>)> {
    let copy = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
    }
    read_log(copy.path()).0
}

fn payload_of(v: u64) -> Vec<u8> {
    (0..(v * 37 % 300)).map(|i| (v as u8).wrapping_add(i as u8)).collect()
}

/// Strict mode gathers records in memory and the sync leader writes them
/// before its fsync. With small segments rotating while other threads lead
/// syncs, every record a sync covered is in the files when the sync returns
/// (a copy of the directory recovers it), and after the close every record
/// is recovered, in order.
#[test]
fn gathered_records_are_in_the_file_when_their_sync_returns_across_rotations() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let wal = std::sync::Arc::new(Wal::open(dir.path(), [2; 16], strict(4096), None, 1, 0, Vec::new()).unwrap());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let leaders: Vec<_> = (0..2)
        .map(|_| {
            let (wal, stop) = (wal.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    wal.flush().unwrap();
                }
            })
        })
        .collect();
    const N: u64 = 3000;
    for v in 1..=N {
        wal.append(v, &payload_of(v)).unwrap();
        if v % 7 == 0 || v % 1000 == 0 {
            wal.sync_to(v).unwrap();
            assert!(wal.durable_version() >= v);
        }
        if v % 1000 == 0 {
            let got = read_copy(dir.path());
            assert!(got.len() as u64 >= v, "synced to {v}, a copy recovers {}", got.len());
            for (i, (version, bytes)) in got.iter().enumerate() {
                assert_eq!(*version, i as u64 + 1);
                assert_eq!(bytes, &payload_of(*version));
            }
        }
    }
    stop.store(true, Ordering::Release);
    for t in leaders {
        t.join().unwrap();
    }
    assert!(wal.stats().segments > 1, "the segments rotated");
    wal.close().unwrap();
    drop(wal);
    let (got, report) = read_log(dir.path());
    assert!(report.torn_tail.is_none());
    let expected: Vec<(u64, Vec<u8>)> = (1..=N).map(|v| (v, payload_of(v))).collect();
    assert_eq!(got, expected);
}

/// A strict record nobody waits for (the engine's own commits do not) is
/// gathered, not in the file; the syncer makes it durable after a quiet
/// `flush_interval`, without a request.
#[test]
fn gathered_records_nobody_asked_for_become_durable_after_a_quiet_interval() {
    use std::sync::mpsc;
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), [3; 16], strict(1 << 20), None, 1, 0, Vec::new()).unwrap();
    let (tx, rx) = mpsc::channel::<u64>();
    let tx = std::sync::Mutex::new(tx);
    wal.subscribe(std::sync::Arc::new(move |r| {
        let _ = tx.lock().unwrap().send(r.expect("no fsync fails here"));
    }));
    for v in 1..=5 {
        wal.append(v, &payload_of(v)).unwrap();
    }
    loop {
        if rx.recv_timeout(Duration::from_secs(10)).expect("a report without a request") >= 5 {
            break;
        }
    }
    assert_eq!(wal.durable_version(), 5);
    assert_eq!(read_copy(dir.path()).len(), 5);
    wal.close().unwrap();
}

/// Appends racing close(): every append that returned Ok is in the files
/// after the close, in order (a review found an append that checked
/// `closed` before taking the segment lock going into the gathered records
/// of a segment close() had just sealed: acknowledged as written, never
/// written). Strict and buffered.
#[test]
fn an_append_racing_close_is_refused_or_on_disk() {
    use std::sync::atomic::{AtomicU64, Ordering};
    for (i, mode) in [Mode::Strict, Mode::Buffered].into_iter().cycle().take(16).enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions { mode, segment_bytes: 1 << 20, flush_interval: Duration::from_millis(10), max_pending_writes: 1000 };
        let wal = std::sync::Arc::new(Wal::open(dir.path(), [6; 16], options, None, 1, 0, Vec::new()).unwrap());
        let appended = std::sync::Arc::new(AtomicU64::new(0));
        let started = std::sync::Arc::new(std::sync::Barrier::new(2));
        let writer = {
            let (wal, appended, started) = (wal.clone(), appended.clone(), started.clone());
            std::thread::spawn(move || {
                started.wait();
                for v in 1.. {
                    if wal.append(v, &payload_of(v)).is_err() {
                        return;
                    }
                    appended.store(v, Ordering::Release);
                }
            })
        };
        started.wait();
        while appended.load(Ordering::Acquire) < 200 + 50 * i as u64 {
            std::thread::yield_now();
        }
        wal.close().unwrap();
        writer.join().unwrap();
        let last = appended.load(Ordering::Acquire);
        drop(wal);
        let (got, _) = read_log(dir.path());
        assert_eq!(got.len() as u64, last, "{mode:?}: {last} appends returned Ok, {} are on disk", got.len());
        for (k, (v, bytes)) in got.iter().enumerate() {
            assert_eq!((*v, bytes), (k as u64 + 1, &payload_of(k as u64 + 1)));
        }
    }
}
