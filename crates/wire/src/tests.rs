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

mod listener {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;

    use super::*;
    use crate::Counters;
    use crate::listener::{Config, Listener, Sink};

    #[derive(Debug)]
    enum Event {
        Frames(u64, Vec<Vec<u8>>),
        Closed(u64),
        Idle(u64),
    }

    struct Events(Sender<Event>);

    impl Sink for Events {
        fn frames(&self, conn: u64, bodies: Vec<u8>, ends: Vec<u32>) {
            let mut start = 0;
            let split = ends
                .iter()
                .map(|&e| {
                    let b = bodies[start..e as usize].to_vec();
                    start = e as usize;
                    b
                })
                .collect();
            let _ = self.0.send(Event::Frames(conn, split));
        }
        fn closed(&self, conn: u64) {
            let _ = self.0.send(Event::Closed(conn));
        }
        fn idle(&self, conn: u64) {
            let _ = self.0.send(Event::Idle(conn));
        }
        fn drained(&self, _conn: u64) {}
    }

    fn config() -> Config {
        Config {
            max_connections: 2,
            max_frame_bytes: 1024,
            handshake: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(5),
            idle: Duration::from_secs(60),
            token: Some(Sha256::digest(b"secret").into()),
            hot_writes: true,
        }
    }

    use sha2::{Digest, Sha256};

    fn start(e: &Arc<Engine>, config: Config) -> (Listener, Receiver<Event>, std::path::PathBuf, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        let path = dir.0.join("s");
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let (tx, rx) = channel();
        let l = Listener::start(Some(unix), None, Arc::downgrade(e), config, Box::new(Events(tx)), Counters::none()).unwrap();
        (l, rx, path, dir)
    }

    mod tempdir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                let p = std::env::temp_dir().join(format!("in-mem-wire-{}-{}", std::process::id(), rand()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        fn rand() -> u64 {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    fn read_frame(s: &mut UnixStream) -> Option<V> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        s.read_exact(&mut body).ok()?;
        Some(rmpv::decode::read_value(&mut &body[..]).unwrap())
    }

    fn connect(path: &std::path::Path, token: &str) -> UnixStream {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&framed(&body(V::Map(vec![(V::from("inMem"), V::from(1)), (V::from("token"), V::from(token))])))).unwrap();
        s
    }

    #[test]
    fn answers_hot_requests_and_hands_on_the_rest_in_order() {
        let e = engine();
        let r = run(&e);
        let (listener, events, path, _dir) = start(&e, config());
        let mut s = connect(&path, "secret");
        assert_eq!(read_frame(&mut s).unwrap()["inMem"], V::from(1));
        // A hot put is answered by the listener alone.
        s.write_all(&framed(&request(1, "kv.put", vec![V::from(r.as_str()), V::from("a"), V::from("x")]))).unwrap();
        assert_eq!(read_frame(&mut s).unwrap()[0], V::from(1));
        // A request it does not answer, then a hot one: the hot one waits
        // for the dispatcher, so it cannot take effect before the first.
        let mut both = framed(&request(2, "kv.list", vec![V::from(r.as_str())]));
        both.extend(framed(&request(3, "kv.put", vec![V::from(r.as_str()), V::from("b"), V::from("y")])));
        s.write_all(&both).unwrap();
        let Event::Frames(conn, frames) = events.recv_timeout(Duration::from_secs(10)).unwrap() else { panic!("expected frames") };
        assert_eq!(frames.len(), 2, "both handed on, in order");
        assert_eq!(rmpv::decode::read_value(&mut &frames[1][..]).unwrap()[1], V::from("kv.put"));
        // Until the dispatcher has handled them, a later hot request is handed on too.
        s.write_all(&framed(&request(4, "kv.get", vec![V::from(r.as_str()), V::from("a")]))).unwrap();
        let Event::Frames(_, later) = events.recv_timeout(Duration::from_secs(10)).unwrap() else { panic!("expected frames") };
        assert_eq!(later.len(), 1);
        listener.handled(conn);
        listener.handled(conn);
        // The dispatcher answers through the listener.
        let mut answer = Vec::new();
        crate::listener::error_frame(&mut answer, "X", "Y", "z", &[]);
        assert!(!listener.send(conn, &answer));
        assert_eq!(read_frame(&mut s).unwrap()[2]["message"], V::from("z"));
        // Handled: hot requests are answered here again. `handled` reaches the
        // I/O thread as a command, taken between two passes over the sockets;
        // a request that thread reads in the pass that handed the frames
        // above on (it reads until the socket is empty) is handed on too,
        // in order. So a request is answered here once the commands have
        // landed: until then each one comes through `events` (answered by
        // this "dispatcher", and handled), and the next is sent.
        let mut id = 5;
        loop {
            s.write_all(&framed(&request(id, "kv.get", vec![V::from(r.as_str()), V::from("a")]))).unwrap();
            // Whichever comes first: the request handed on, or an answer
            // (its first byte taken here, the rest by `read_frame`).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            s.set_nonblocking(true).unwrap();
            let mut first = [0u8; 1];
            let handed = loop {
                assert!(std::time::Instant::now() < deadline, "request {id}: neither answered nor handed on");
                if let Ok(e) = events.try_recv() {
                    break Some(e);
                }
                if s.read(&mut first).is_ok_and(|n| n == 1) {
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            s.set_nonblocking(false).unwrap();
            let Some(e) = handed else {
                let mut rest = [0u8; 3];
                s.read_exact(&mut rest).unwrap();
                let mut body = vec![0u8; u32::from_le_bytes([first[0], rest[0], rest[1], rest[2]]) as usize];
                s.read_exact(&mut body).unwrap();
                assert_eq!(rmpv::decode::read_value(&mut &body[..]).unwrap()[2], V::from("x"), "answered here");
                break;
            };
            let Event::Frames(c, f) = e else { panic!("expected frames") };
            assert_eq!((c, f.len()), (conn, 1), "one request handed on");
            assert!(id < 100, "hot requests are still handed on after 95 tries");
            listener.handled(conn);
            assert!(!listener.send(conn, &answer));
            assert_eq!(read_frame(&mut s).unwrap()[2]["message"], V::from("z"));
            id += 1;
        }
        drop(s);
        assert!(matches!(events.recv_timeout(Duration::from_secs(10)).unwrap(), Event::Closed(c) if c == conn));
    }

    #[test]
    fn refuses_a_wrong_token_an_oversized_frame_and_one_connection_too_many() {
        let e = engine();
        let (_listener, _events, path, _dir) = start(&e, config());
        let mut wrong = connect(&path, "secreT");
        assert_eq!(read_frame(&mut wrong).unwrap()[2]["code"], V::from("CONNECTION"));
        assert!(read_frame(&mut wrong).is_none(), "closed after the refusal");
        let mut big = connect(&path, "secret");
        read_frame(&mut big).unwrap();
        big.write_all(&2000u32.to_le_bytes()).unwrap();
        assert_eq!(read_frame(&mut big).unwrap()[2]["code"], V::from("LIMIT_EXCEEDED"));
        assert!(read_frame(&mut big).is_none());
        let mut a = connect(&path, "secret");
        let mut b = connect(&path, "secret");
        read_frame(&mut a).unwrap();
        read_frame(&mut b).unwrap();
        let mut c = connect(&path, "secret");
        let refusal = read_frame(&mut c).unwrap();
        assert_eq!(refusal[2]["code"], V::from("LIMIT_EXCEEDED"), "{refusal:?}");
        assert_eq!(refusal[2]["details"]["limit"], V::from(2));
    }

    #[test]
    fn a_client_that_does_not_read_is_not_answered_past_the_high_water_mark() {
        let e = engine();
        let r = run(&e);
        let mut c = config();
        c.max_frame_bytes = 4 << 20;
        let (listener, _events, path, _dir) = start(&e, c);
        let mut s = connect(&path, "secret");
        read_frame(&mut s).unwrap();
        let big = V::Binary(vec![7; 1 << 20]);
        s.write_all(&framed(&request(1, "kv.put", vec![V::from(r.as_str()), V::from("big"), big.clone()]))).unwrap();
        read_frame(&mut s).unwrap();
        // 64 gets of 1 MiB in one write, and nothing read for a while.
        let mut gets = Vec::new();
        for id in 2..66 {
            gets.extend(framed(&request(id, "kv.get", vec![V::from(r.as_str()), V::from("big")])));
        }
        s.write_all(&gets).unwrap();
        let conn = crate::listener::FIRST_CONN as u64;
        let mut most = 0;
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(5));
            most = most.max(listener.queued(conn).unwrap());
        }
        assert!(most > 0, "answers queued");
        assert!(most <= crate::HIGH_WATER + (1 << 20) + 64, "{most} bytes queued for a client that does not read");
        // Once it reads, every answer comes, in order.
        for id in 2..66u64 {
            let a = read_frame(&mut s).unwrap();
            assert_eq!(a[0], V::from(id));
            assert_eq!(a[2], big);
        }
    }

    #[test]
    fn an_unfinished_handshake_is_dropped_and_a_silent_connection_reported_idle() {
        let e = engine();
        let mut c = config();
        c.handshake = Duration::from_millis(100);
        c.idle = Duration::from_millis(100);
        let (_listener, events, path, _dir) = start(&e, c);
        let mut silent = UnixStream::connect(&path).unwrap();
        silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(read_frame(&mut silent).is_none(), "closed for no handshake");
        let mut idle = connect(&path, "secret");
        read_frame(&mut idle).unwrap();
        // (The connection that never shook hands was reported closed first.)
        loop {
            match events.recv_timeout(Duration::from_secs(10)).unwrap() {
                Event::Closed(_) => continue,
                Event::Idle(conn) => {
                    assert!(conn > 0);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
