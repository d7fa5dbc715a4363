//! State machines (after rstmdb): definitions, instances, and transitions
//! applied with guards, merge patches, idempotency keys and an audit event.
//!
//! Layout (documented in `docs/format.md`):
//!
//! ```text
//! definition   SYSTEM | Machine | name | 0x00 | version u32 BE          → MessagePack map (Definition)
//! instance     run | Machine | 0x01 | instance id                       → MessagePack map (instance record)
//! idempotency  run | Machine | 0x00 | instance id | 0x00 | key           → MessagePack map (first result)
//! ```
//!
//! Invariants:
//! - A definition is immutable per (name, version): it is written once and
//!   never rewritten, so reading it never causes a conflict. Defining it
//!   again with the same body (compared in canonical form, see
//!   [`Definition::canonical`]) writes nothing.
//! - An instance's revision is 1 at `create` and rises by 1 with every
//!   applied transition; its (machine, version) is fixed at `create`.
//! - An applied transition writes the instance, appends `machine.transition`
//!   to the run's EventLog and, with an idempotency key, stores the result,
//!   all in the caller's transaction: all of it commits or none.
//! - An idempotency key names one request on one instance for the life of
//!   the run: repeating it returns the stored first result and writes
//!   nothing; using it for a different request is an `InvalidArgumentError`.

use in_mem_core::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use in_mem_core::{Error, InternalKey, Result, RunId, TypeTag, now_ms};
use rmpv::Value;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;

pub mod guard;

use self::guard::Guard;
use crate::access::EngineTx;
use crate::primitives::json;

/// Longest machine, state or event name, in characters.
pub const MAX_NAME_CHARS: usize = 256;
/// Longest guard, in characters.
pub const MAX_GUARD_CHARS: usize = 4096;

/// The event type of the audit entry every applied transition appends.
pub const TRANSITION_EVENT: &str = "machine.transition";

const IDEMPOTENCY: u8 = 0x00;
const INSTANCE: u8 = 0x01;

/// A machine definition, as defined and as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    pub version: u32,
    pub states: Vec<String>,
    pub initial: String,
    pub transitions: Vec<TransitionDef>,
}

/// One transition of a definition. `from` is always a list once decoded
/// (a single state may be given as a string).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransitionDef {
    #[serde(deserialize_with = "one_or_many")]
    pub from: Vec<String>,
    pub event: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d).map_err(|_| serde::de::Error::custom("'from' must be a state name or a list of state names"))? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// A machine instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub id: String,
    pub machine: String,
    pub version: u32,
    pub state: String,
    /// Always an object.
    pub context: Value,
    pub revision: u64,
    pub created_at: u64,
    pub updated_at: u64,
}

/// What `apply` returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub from: String,
    pub to: String,
    pub context: Value,
    pub revision: u64,
    /// False when an idempotency key repeated an earlier apply: this is its
    /// stored result, and nothing changed.
    pub applied: bool,
}

#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    pub machine: String,
    /// The newest version when `None`.
    pub version: Option<u32>,
    /// MessagePack of an object; `{}` when `None`.
    pub context: Option<Vec<u8>>,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ApplyOptions {
    /// MessagePack of an object (or nil, meaning none).
    pub payload: Option<Vec<u8>>,
    pub expected_state: Option<String>,
    pub expected_revision: Option<u64>,
    pub idempotency_key: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct InstanceListOptions {
    pub machine: Option<String>,
    pub state: Option<String>,
}

// ----- keys ------------------------------------------------------------------

fn definition_prefix(name: &str) -> Vec<u8> {
    let mut user = Vec::with_capacity(name.len() + 1);
    user.extend_from_slice(name.as_bytes());
    user.push(0);
    InternalKey::build(&RunId::SYSTEM, TypeTag::Machine, &user)
}

fn definition_key(name: &str, version: u32) -> Vec<u8> {
    let mut k = definition_prefix(name);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

fn instance_key(run: &RunId, id: &str) -> Vec<u8> {
    let mut user = Vec::with_capacity(1 + id.len());
    user.push(INSTANCE);
    user.extend_from_slice(id.as_bytes());
    InternalKey::build(run, TypeTag::Machine, &user)
}

fn idempotency_key(run: &RunId, id: &str, key: &str) -> Vec<u8> {
    let mut user = Vec::with_capacity(2 + id.len() + key.len());
    user.push(IDEMPOTENCY);
    user.extend_from_slice(id.as_bytes());
    user.push(0);
    user.extend_from_slice(key.as_bytes());
    InternalKey::build(run, TypeTag::Machine, &user)
}

// ----- validation ------------------------------------------------------------

/// A name: 1–256 characters, no NUL.
fn check_name(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid_argument(format!("{what} must not be empty")));
    }
    let n = s.chars().count();
    if n > MAX_NAME_CHARS {
        return Err(Error::limit(format!("{what} is {n} characters; the limit is {MAX_NAME_CHARS}")));
    }
    if s.contains('\0') {
        return Err(Error::invalid_argument(format!("{what} {s:?} must not contain NUL")));
    }
    Ok(())
}

/// An instance id or idempotency key: 1–1024 bytes, no NUL.
fn check_id(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid_argument(format!("{what} must not be empty")));
    }
    if s.len() > MAX_KEY_BYTES {
        return Err(Error::limit(format!("{what} is {} bytes; the limit is {MAX_KEY_BYTES} bytes", s.len())));
    }
    if s.contains('\0') {
        return Err(Error::invalid_argument(format!("{what} {s:?} must not contain NUL")));
    }
    Ok(())
}

/// Decodes MessagePack that must hold an object; `None` for nil.
fn decode_object(what: &str, bytes: &[u8]) -> Result<Option<Value>> {
    match json::decode(bytes)? {
        Value::Nil => Ok(None),
        v @ Value::Map(_) => Ok(Some(v)),
        _ => Err(Error::invalid_argument(format!("{what} must be an object"))),
    }
}

impl Definition {
    /// Decodes a definition from MessagePack (a map with `name`, `version`,
    /// `states`, `initial` and `transitions`). It is not yet validated.
    pub fn decode(bytes: &[u8]) -> Result<Definition> {
        rmp_serde::from_slice(bytes).map_err(|e| Error::invalid_argument(format!("invalid machine definition: {e}")))
    }

    fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a definition always encodes")
    }

    fn label(&self) -> String {
        format!("machine {:?} version {}", self.name, self.version)
    }

    /// The body that identifies a definition: `from` as a list and guards in
    /// canonical text, so `from: 'a'` equals `from: ['a']` and a guard's
    /// spacing, quotes and redundant parentheses do not matter. Everything
    /// else, order included, is part of the body. Call on a valid definition.
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = self.clone();
        for t in &mut c.transitions {
            t.guard = t.guard.as_deref().map(|g| Guard::parse(g).map(|g| g.canonical()).unwrap_or_else(|_| g.to_string()));
        }
        c.encode()
    }

    /// Checks everything `define` promises: names, states, every `from` and
    /// `to`, guards (parsed), and no transition hidden behind an unguarded
    /// one for the same state and event.
    pub fn validate(&self) -> Result<()> {
        check_name("a machine name", &self.name)?;
        let label = self.label();
        if self.version == 0 {
            return Err(Error::invalid_argument(format!("{label}: version must be a positive integer")));
        }
        if self.states.is_empty() {
            return Err(Error::invalid_argument(format!("{label}: states must not be empty")));
        }
        for (i, s) in self.states.iter().enumerate() {
            check_name(&format!("{label}: state {i}"), s)?;
            if self.states[..i].contains(s) {
                return Err(Error::invalid_argument(format!("{label}: state {s:?} is listed twice")));
            }
        }
        let is_state = |s: &str| self.states.iter().any(|x| x == s);
        if !is_state(&self.initial) {
            return Err(Error::invalid_argument(format!("{label}: initial state {:?} is not one of the states", self.initial)));
        }
        for (i, t) in self.transitions.iter().enumerate() {
            let at = format!("{label}, transition {i}");
            check_name(&format!("{at}: the event"), &t.event)?;
            if t.from.is_empty() {
                return Err(Error::invalid_argument(format!("{at} ({:?}): 'from' must name at least one state", t.event)));
            }
            for (j, f) in t.from.iter().enumerate() {
                if !is_state(f) {
                    return Err(Error::invalid_argument(format!("{at} ({:?}): 'from' state {f:?} is not one of the states", t.event)));
                }
                if t.from[..j].contains(f) {
                    return Err(Error::invalid_argument(format!("{at} ({:?}): 'from' lists state {f:?} twice", t.event)));
                }
            }
            if !is_state(&t.to) {
                return Err(Error::invalid_argument(format!("{at} ({:?}): 'to' state {:?} is not one of the states", t.event, t.to)));
            }
            if let Some(g) = &t.guard {
                let n = g.chars().count();
                if n > MAX_GUARD_CHARS {
                    return Err(Error::limit(format!("{at} ({:?}): the guard is {n} characters; the limit is {MAX_GUARD_CHARS}", t.event)));
                }
                Guard::parse(g)
                    .map_err(|e| Error::invalid_argument(format!("{at} ({:?}): invalid guard {g:?} at position {}: {}", t.event, e.position, e.message)))?;
            }
            for earlier in self.transitions[..i].iter().enumerate().filter(|(_, e)| e.event == t.event && e.guard.is_none()) {
                if let Some(s) = t.from.iter().find(|s| earlier.1.from.contains(s)) {
                    return Err(Error::invalid_argument(format!(
                        "{at} ({:?}) can never be taken from state {s:?}: transition {} has no guard for the same state and event",
                        t.event, earlier.0
                    )));
                }
            }
        }
        let size = self.encode().len();
        if size > MAX_VALUE_BYTES {
            return Err(Error::limit(format!("{label} is {size} bytes encoded; the limit is {MAX_VALUE_BYTES} bytes (16 MiB)")));
        }
        Ok(())
    }

    /// The events that have a transition out of `state`, in definition order.
    fn events_from(&self, state: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for t in self.transitions.iter().filter(|t| t.from.iter().any(|f| f == state)) {
            if !out.contains(&t.event.as_str()) {
                out.push(&t.event);
            }
        }
        out
    }
}

// ----- stored records --------------------------------------------------------

fn field<'a>(m: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    m.iter().find(|(k, _)| k.as_str() == Some(name)).map(|(_, v)| v)
}

fn malformed(what: &str) -> Error {
    Error::internal(format!("{what}: malformed stored record"))
}

fn str_field(m: &[(Value, Value)], name: &str, what: &str) -> Result<String> {
    field(m, name).and_then(Value::as_str).map(str::to_string).ok_or_else(|| malformed(what))
}

fn u64_field(m: &[(Value, Value)], name: &str, what: &str) -> Result<u64> {
    field(m, name).and_then(Value::as_u64).ok_or_else(|| malformed(what))
}

fn map_of(v: Value, what: &str) -> Result<Vec<(Value, Value)>> {
    match v {
        Value::Map(m) => Ok(m),
        _ => Err(malformed(what)),
    }
}

fn entry(k: &str, v: impl Into<Value>) -> (Value, Value) {
    (Value::from(k), v.into())
}

impl Instance {
    /// The context as MessagePack.
    pub fn context_bytes(&self) -> Vec<u8> {
        json::encode(&self.context)
    }

    fn record(&self) -> Value {
        Value::Map(vec![
            entry("machine", self.machine.as_str()),
            entry("version", self.version),
            entry("state", self.state.as_str()),
            entry("context", self.context.clone()),
            entry("revision", self.revision),
            entry("createdAt", self.created_at),
            entry("updatedAt", self.updated_at),
        ])
    }

    fn from_record(id: &str, record: Value) -> Result<Instance> {
        let what = format!("machine instance {id:?}");
        let m = map_of(record, &what)?;
        Ok(Instance {
            id: id.to_string(),
            machine: str_field(&m, "machine", &what)?,
            version: u32::try_from(u64_field(&m, "version", &what)?).map_err(|_| malformed(&what))?,
            state: str_field(&m, "state", &what)?,
            context: field(&m, "context").cloned().ok_or_else(|| malformed(&what))?,
            revision: u64_field(&m, "revision", &what)?,
            created_at: u64_field(&m, "createdAt", &what)?,
            updated_at: u64_field(&m, "updatedAt", &what)?,
        })
    }

    fn decode(id: &str, bytes: &[u8]) -> Result<Instance> {
        Self::from_record(id, json::decode(bytes).map_err(|_| malformed(&format!("machine instance {id:?}")))?)
    }

    fn encode(&self) -> Result<Vec<u8>> {
        json::finish(&self.record())
    }
}

impl Applied {
    /// The context after the transition, as MessagePack.
    pub fn context_bytes(&self) -> Vec<u8> {
        json::encode(&self.context)
    }

    fn record(&self) -> Value {
        Value::Map(vec![
            entry("from", self.from.as_str()),
            entry("to", self.to.as_str()),
            entry("context", self.context.clone()),
            entry("revision", self.revision),
        ])
    }

    fn from_record(record: Value, what: &str) -> Result<Applied> {
        let m = map_of(record, what)?;
        Ok(Applied {
            from: str_field(&m, "from", what)?,
            to: str_field(&m, "to", what)?,
            context: field(&m, "context").cloned().ok_or_else(|| malformed(what))?,
            revision: u64_field(&m, "revision", what)?,
            applied: false,
        })
    }
}

/// A stored idempotency record: which request used the key, and its result.
enum FirstResult {
    Create(Instance),
    Apply { event: String, result: Applied },
}

/// A fingerprint of a whole request (every argument but the key), so that a
/// key reused for a request that differs in any of them is refused.
fn request_hash(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

impl FirstResult {
    /// The stored record, with the fingerprint of the request that made it.
    fn encode(&self, request: &str) -> Result<Vec<u8>> {
        json::finish(&match self {
            FirstResult::Create(i) => Value::Map(vec![entry("op", "create"), entry("request", request), entry("result", i.record())]),
            FirstResult::Apply { event, result } => {
                Value::Map(vec![entry("op", "apply"), entry("event", event.as_str()), entry("request", request), entry("result", result.record())])
            }
        })
    }

    /// The stored record and its request fingerprint (absent in records
    /// written before fingerprints were kept).
    fn decode_with_request(id: &str, key: &str, bytes: &[u8]) -> Result<(FirstResult, Option<String>)> {
        let what = format!("idempotency key {key:?} of machine instance {id:?}");
        let m = map_of(json::decode(bytes).map_err(|_| malformed(&what))?, &what)?;
        let request = field(&m, "request").and_then(Value::as_str).map(str::to_string);
        Ok((Self::decode(id, key, bytes)?, request))
    }

    fn decode(id: &str, key: &str, bytes: &[u8]) -> Result<FirstResult> {
        let what = format!("idempotency key {key:?} of machine instance {id:?}");
        let mut m = map_of(json::decode(bytes).map_err(|_| malformed(&what))?, &what)?;
        let op = str_field(&m, "op", &what)?;
        let at = m.iter().position(|(k, _)| k.as_str() == Some("result")).ok_or_else(|| malformed(&what))?;
        let result = m.swap_remove(at).1;
        match op.as_str() {
            "create" => Ok(FirstResult::Create(Instance::from_record(id, result)?)),
            "apply" => Ok(FirstResult::Apply { event: str_field(&m, "event", &what)?, result: Applied::from_record(result, &what)? }),
            _ => Err(malformed(&what)),
        }
    }
}

fn reused_key(key: &str, id: &str, first: &str, now: &str) -> Error {
    Error::invalid_argument(format!(
        "idempotency key {key:?} of machine instance {id:?} was first used to {first}; it cannot be reused to {now} (use a new key for a new request)"
    ))
}

// ----- operations ------------------------------------------------------------

impl EngineTx {
    /// Defines a machine version. `Ok(true)` when it was written, `Ok(false)`
    /// when the same body was already defined.
    pub fn machines_define(&mut self, def: &Definition) -> Result<bool> {
        def.validate()?;
        let key = definition_key(&def.name, def.version);
        if let Some((_, stored)) = self.read(&key) {
            let existing = Definition::decode(&stored).map_err(|_| malformed(&def.label()))?;
            if existing.canonical() == def.canonical() {
                return Ok(false);
            }
            return Err(Error::MachineVersionExists {
                message: format!("{} is already defined with a different body; definitions are immutable, so define a new version", def.label()),
                details: json!({ "machine": def.name, "version": def.version }),
            });
        }
        self.write(&key, Some(def.encode().into()))?;
        Ok(true)
    }

    /// One version of a definition, or the newest when `version` is `None`.
    pub fn machines_definition(&mut self, name: &str, version: Option<u32>) -> Result<Option<Definition>> {
        check_name("a machine name", name)?;
        let stored = match version {
            Some(v) => self.read(&definition_key(name, v)).map(|(_, bytes)| bytes),
            None => {
                let mut newest = None;
                self.scan_prefix(&definition_prefix(name), true, &mut |_, _, bytes| {
                    newest = Some(bytes.clone());
                    false
                });
                newest
            }
        };
        stored.map(|bytes| Definition::decode(&bytes).map_err(|_| malformed(&format!("machine {name:?}")))).transpose()
    }

    /// Every definition, by name then version; only `name`'s when given.
    pub fn machines_definitions(&mut self, name: Option<&str>) -> Result<Vec<Definition>> {
        let prefix = match name {
            Some(n) => {
                check_name("a machine name", n)?;
                definition_prefix(n)
            }
            None => InternalKey::prefix(&RunId::SYSTEM, TypeTag::Machine),
        };
        let mut out = Vec::new();
        let mut failed = None;
        self.scan_prefix(&prefix, false, &mut |_, _, bytes| match Definition::decode(bytes) {
            Ok(d) => {
                out.push(d);
                true
            }
            Err(_) => {
                failed = Some(malformed("a machine definition"));
                false
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Creates an instance in the definition's initial state, revision 1.
    pub fn machines_create(&mut self, run: &RunId, id: &str, opts: &CreateOptions) -> Result<Instance> {
        check_id("an instance id", id)?;
        check_name("a machine name", &opts.machine)?;
        if opts.version == Some(0) {
            return Err(Error::invalid_argument("version must be a positive integer"));
        }
        let context = match &opts.context {
            Some(bytes) => decode_object("the context", bytes)?.unwrap_or(Value::Map(Vec::new())),
            None => Value::Map(Vec::new()),
        };
        let version_text = opts.version.map(|v| v.to_string()).unwrap_or_default();
        let request = request_hash(&[b"create", opts.machine.as_bytes(), version_text.as_bytes(), opts.context.as_deref().unwrap_or(b"")]);
        let idem = match &opts.idempotency_key {
            Some(k) => {
                check_id("an idempotency key", k)?;
                let ikey = idempotency_key(run, id, k);
                if let Some((_, bytes)) = self.read(&ikey) {
                    return match FirstResult::decode_with_request(id, k, &bytes)? {
                        (FirstResult::Create(first), stored) if first.machine == opts.machine && stored.as_ref().is_none_or(|r| *r == request) => Ok(first),
                        (FirstResult::Create(first), _) if first.machine == opts.machine => {
                            Err(reused_key(k, id, "create it with other arguments", "create it with a different version or context"))
                        }
                        (FirstResult::Create(first), _) => Err(reused_key(
                            k,
                            id,
                            &format!("create it from machine {:?}", first.machine),
                            &format!("create it from machine {:?}", opts.machine),
                        )),
                        (FirstResult::Apply { event, .. }, _) => Err(reused_key(k, id, &format!("apply event {event:?}"), "create it")),
                    };
                }
                Some(ikey)
            }
            None => None,
        };
        let key = instance_key(run, id);
        if self.read(&key).is_some() {
            return Err(Error::already_exists(
                format!("machine instance {id:?} already exists in run {run}"),
                json!({ "run": run.to_string(), "instance": id }),
            ));
        }
        let Some(def) = self.machines_definition(&opts.machine, opts.version)? else {
            let message = match opts.version {
                Some(v) => format!("machine {:?} has no version {v}", opts.machine),
                None => format!("machine {:?} is not defined", opts.machine),
            };
            return Err(Error::not_found(message, json!({ "machine": opts.machine, "version": opts.version })));
        };
        let now = now_ms();
        let instance = Instance {
            id: id.to_string(),
            machine: def.name,
            version: def.version,
            state: def.initial,
            context,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        self.write(&key, Some(instance.encode()?.into()))?;
        if let Some(ikey) = idem {
            self.write(&ikey, Some(FirstResult::Create(instance.clone()).encode(&request)?.into()))?;
        }
        Ok(instance)
    }

    /// Applies `event` to an instance (see the module comment and SPEC §5).
    pub fn machines_apply(&mut self, run: &RunId, id: &str, event: &str, opts: &ApplyOptions) -> Result<Applied> {
        check_id("an instance id", id)?;
        check_name("an event", event)?;
        let payload = match &opts.payload {
            Some(bytes) => decode_object("the payload", bytes)?,
            None => None,
        };
        let revision_text = opts.expected_revision.map(|v| v.to_string()).unwrap_or_default();
        let request = request_hash(&[
            b"apply",
            event.as_bytes(),
            opts.payload.as_deref().unwrap_or(b""),
            opts.expected_state.as_deref().map_or(b"\0none".as_slice(), str::as_bytes),
            revision_text.as_bytes(),
        ]);
        let idem = match &opts.idempotency_key {
            Some(k) => {
                check_id("an idempotency key", k)?;
                let ikey = idempotency_key(run, id, k);
                if let Some((_, bytes)) = self.read(&ikey) {
                    return match FirstResult::decode_with_request(id, k, &bytes)? {
                        (FirstResult::Apply { event: first, result }, stored) if first == event && stored.as_ref().is_none_or(|r| *r == request) => Ok(result),
                        (FirstResult::Apply { event: first, .. }, _) if first == event => Err(reused_key(
                            k,
                            id,
                            &format!("apply event {first:?} with other arguments"),
                            "apply it with a different payload, expectedState or expectedRevision",
                        )),
                        (FirstResult::Apply { event: first, .. }, _) => {
                            Err(reused_key(k, id, &format!("apply event {first:?}"), &format!("apply event {event:?}")))
                        }
                        (FirstResult::Create(_), _) => Err(reused_key(k, id, "create it", &format!("apply event {event:?}"))),
                    };
                }
                Some(ikey)
            }
            None => None,
        };
        let key = instance_key(run, id);
        let Some((_, bytes)) = self.read(&key) else {
            return Err(Error::not_found(format!("machine instance {id:?} does not exist in run {run}"), json!({ "run": run.to_string(), "instance": id })));
        };
        let mut instance = Instance::decode(id, &bytes)?;
        if let Some(expected) = &opts.expected_state
            && *expected != instance.state
        {
            return Err(Error::conflict(
                format!("machine instance {id:?} is in state {:?}, not the expected {expected:?}", instance.state),
                json!({ "instance": id, "expectedState": expected, "state": instance.state, "revision": instance.revision }),
            ));
        }
        if let Some(expected) = opts.expected_revision
            && expected != instance.revision
        {
            return Err(Error::conflict(
                format!("machine instance {id:?} is at revision {}, not the expected {expected}", instance.revision),
                json!({ "instance": id, "expectedRevision": expected, "revision": instance.revision, "state": instance.state }),
            ));
        }
        let def = self
            .machines_definition(&instance.machine, Some(instance.version))?
            .ok_or_else(|| malformed(&format!("machine instance {id:?}: its definition {:?} version {}", instance.machine, instance.version)))?;
        let details = || json!({ "machine": def.name, "version": def.version, "instance": id, "state": instance.state, "event": event });
        let candidates: Vec<&TransitionDef> = def.transitions.iter().filter(|t| t.event == event && t.from.contains(&instance.state)).collect();
        if candidates.is_empty() {
            let allowed = def.events_from(&instance.state);
            let listed = if allowed.is_empty() { format!("none: {:?} has no outgoing transitions", instance.state) } else { allowed.join(", ") };
            let mut d = details();
            d["allowed"] = json!(allowed);
            return Err(Error::invalid_transition(
                format!("{} has no transition on event {event:?} from state {:?} (instance {id:?}); allowed events: {listed}", def.label(), instance.state),
                d,
            ));
        }
        let null = Value::Nil;
        let mut chosen = None;
        for t in &candidates {
            let passes = match &t.guard {
                None => true,
                Some(g) => Guard::parse(g)
                    .map_err(|e| malformed(&format!("{}: guard {g:?} ({})", def.label(), e.message)))?
                    .eval(&instance.context, payload.as_ref().unwrap_or(&null)),
            };
            if passes {
                chosen = Some(*t);
                break;
            }
        }
        let Some(t) = chosen else {
            let guards: Vec<&str> = candidates.iter().filter_map(|t| t.guard.as_deref()).collect();
            let mut d = details();
            d["guards"] = json!(guards);
            return Err(Error::GuardFailed {
                message: format!(
                    "every guard of {} on event {event:?} from state {:?} was false (instance {id:?}); guards tried in order: {}",
                    def.label(),
                    instance.state,
                    guards.join(" | ")
                ),
                details: d,
            });
        };
        let from = std::mem::replace(&mut instance.state, t.to.clone());
        if let Some(p) = &payload {
            json::merge_patch(&mut instance.context, p.clone());
        }
        instance.revision += 1;
        instance.updated_at = now_ms();
        self.write(&key, Some(instance.encode()?.into()))?;
        let mut audit = vec![
            entry("machine", def.name.as_str()),
            entry("version", def.version),
            entry("instance", id),
            entry("event", event),
            entry("from", from.as_str()),
            entry("to", t.to.as_str()),
            entry("revision", instance.revision),
        ];
        if let Some(p) = payload {
            audit.push(entry("payload", p));
        }
        self.events_append(run, TRANSITION_EVENT, &json::finish(&Value::Map(audit))?)?;
        let result = Applied { from, to: t.to.clone(), context: instance.context, revision: instance.revision, applied: true };
        if let Some(ikey) = idem {
            let first = FirstResult::Apply { event: event.to_string(), result: Applied { applied: false, ..result.clone() } };
            self.write(&ikey, Some(first.encode(&request)?.into()))?;
        }
        Ok(result)
    }

    pub fn machines_get(&mut self, run: &RunId, id: &str) -> Result<Option<Instance>> {
        check_id("an instance id", id)?;
        self.read(&instance_key(run, id)).map(|(_, bytes)| Instance::decode(id, &bytes)).transpose()
    }

    /// The run's instances in id order, filtered by machine and state.
    pub fn machines_list(&mut self, run: &RunId, opts: &InstanceListOptions) -> Result<Vec<Instance>> {
        let prefix = InternalKey::build(run, TypeTag::Machine, &[INSTANCE]);
        let mut out = Vec::new();
        let mut failed = None;
        self.scan_prefix(&prefix, false, &mut |k, _, bytes| {
            let id = String::from_utf8_lossy(&k[prefix.len()..]);
            match Instance::decode(&id, bytes) {
                Ok(i) => {
                    if opts.machine.as_ref().is_none_or(|m| *m == i.machine) && opts.state.as_ref().is_none_or(|s| *s == i.state) {
                        out.push(i);
                    }
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::primitives::events::RangeOptions;

    use crate::testing::{self, TestDb};

    fn mp(json: &str) -> Vec<u8> {
        let j: serde_json::Value = serde_json::from_str(json).unwrap();
        rmp_serde::to_vec(&j).unwrap()
    }

    fn v(json: &str) -> Value {
        json::decode(&mp(json)).unwrap()
    }

    /// Equal up to object key order (serde_json sorts the keys of `v`).
    fn assert_same(a: &Value, b: &Value) {
        assert!(crate::primitives::machines::guard::equal(a, b), "{a} != {b}");
    }

    fn def(json: &str) -> Definition {
        Definition::decode(&mp(json)).unwrap()
    }

    const ORDER: &str = r#"{
        "name": "order", "version": 1,
        "states": ["draft", "review", "approved", "rejected", "done"],
        "initial": "draft",
        "transitions": [
            {"from": "draft", "event": "submit", "to": "review"},
            {"from": "review", "event": "approve", "to": "approved", "guard": "payload.amount < 100"},
            {"from": "review", "event": "approve", "to": "done", "guard": "ctx.vip == true"},
            {"from": ["review", "draft"], "event": "reject", "to": "rejected"},
            {"from": "approved", "event": "ship", "to": "done"}
        ]
    }"#;

    struct Fixture {
        engine: TestDb,
        run: RunId,
    }

    impl Fixture {
        fn new() -> Fixture {
            let engine = testing::memory();
            let run = engine.run_begin(Some("machines".into()), None, vec![], None).unwrap().id;
            let f = Fixture { engine, run };
            assert!(f.tx(|tx| tx.machines_define(&def(ORDER))).unwrap());
            f
        }

        /// Runs `op` in a transaction of its own and commits it if it succeeds.
        fn tx<T>(&self, op: impl FnOnce(&mut EngineTx) -> Result<T>) -> Result<T> {
            let mut tx = EngineTx::begin(&self.engine)?;
            let out = op(&mut tx)?;
            tx.commit(true)?;
            Ok(out)
        }

        fn create(&self, id: &str, context: Option<&str>) -> Result<Instance> {
            let opts = CreateOptions { machine: "order".into(), context: context.map(mp), ..Default::default() };
            self.tx(|tx| tx.machines_create(&self.run, id, &opts))
        }

        fn apply(&self, id: &str, event: &str, opts: ApplyOptions) -> Result<Applied> {
            self.tx(|tx| tx.machines_apply(&self.run, id, event, &opts))
        }

        fn get(&self, id: &str) -> Instance {
            self.tx(|tx| tx.machines_get(&self.run, id)).unwrap().unwrap()
        }

        fn transitions(&self) -> Vec<Value> {
            let events = self.tx(|tx| tx.events_range(&self.run, &RangeOptions::default())).unwrap();
            events.iter().filter(|e| e.event_type == TRANSITION_EVENT).map(|e| json::decode(e.payload()).unwrap()).collect()
        }
    }

    fn payload(json: &str) -> ApplyOptions {
        ApplyOptions { payload: Some(mp(json)), ..Default::default() }
    }

    fn invalid(json: &str) -> String {
        match def(json).validate() {
            Err(Error::InvalidArgument { message }) => message,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn definitions_are_validated() {
        let base = |states: &str, initial: &str, transitions: &str| {
            format!(r#"{{"name":"m","version":1,"states":{states},"initial":{initial},"transitions":{transitions}}}"#)
        };
        let cases = [
            (r#"{"name":"","version":1,"states":["a"],"initial":"a","transitions":[]}"#.to_string(), "machine name must not be empty"),
            (r#"{"name":"m","version":0,"states":["a"],"initial":"a","transitions":[]}"#.to_string(), "version must be a positive integer"),
            (base("[]", r#""a""#, "[]"), "states must not be empty"),
            (base(r#"["a","a"]"#, r#""a""#, "[]"), r#"state "a" is listed twice"#),
            (base(r#"["a",""]"#, r#""a""#, "[]"), "state 1 must not be empty"),
            (base(r#"["a"]"#, r#""b""#, "[]"), r#"initial state "b" is not one of the states"#),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":"x","event":"e","to":"a"}]"#), r#"transition 0 ("e"): 'from' state "x" is not one of the states"#),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":[],"event":"e","to":"a"}]"#), "'from' must name at least one state"),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":["a","a"],"event":"e","to":"a"}]"#), r#"'from' lists state "a" twice"#),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":"a","event":"e","to":"y"}]"#), r#"'to' state "y" is not one of the states"#),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":"a","event":"","to":"a"}]"#), "the event must not be empty"),
            (base(r#"["a"]"#, r#""a""#, r#"[{"from":"a","event":"e","to":"a","guard":"ctx.x = 1"}]"#), r#"invalid guard "ctx.x = 1" at position 6"#),
            (
                base(r#"["a"]"#, r#""a""#, r#"[{"from":"a","event":"e","to":"a","guard":"ctx.x == 1 )"}]"#),
                "at position 11: unexpected ')' after a complete expression",
            ),
            (
                base(r#"["a","b"]"#, r#""a""#, r#"[{"from":["b","a"],"event":"e","to":"a"},{"from":"a","event":"e","to":"b","guard":"true"}]"#),
                r#"transition 1 ("e") can never be taken from state "a": transition 0 has no guard"#,
            ),
        ];
        for (json, what) in cases {
            let msg = invalid(&json);
            assert!(msg.contains(what), "{json}: {msg}");
        }
        assert!(matches!(
            def(&base(r#"["a"]"#, r#""a""#, &format!(r#"[{{"from":"a","event":"{}","to":"a"}}]"#, "e".repeat(257)))).validate(),
            Err(Error::Limit { .. })
        ));
        assert!(Definition::decode(&mp(r#"{"name":"m","version":1,"states":["a"],"initial":"a","transitions":[],"extra":1}"#)).is_err());
        assert!(Definition::decode(&mp(r#"{"name":"m","version":-1,"states":["a"],"initial":"a","transitions":[]}"#)).is_err());
        let e =
            Definition::decode(&mp(r#"{"name":"m","version":1,"states":["a"],"initial":"a","transitions":[{"from":1,"event":"e","to":"a"}]}"#)).unwrap_err();
        assert!(e.to_string().contains("'from' must be a state name or a list of state names"), "{e}");
        def(ORDER).validate().unwrap();
    }

    #[test]
    fn a_definition_is_immutable_per_name_and_version() {
        let f = Fixture::new();
        assert!(!f.tx(|tx| tx.machines_define(&def(ORDER))).unwrap());
        // `from: "draft"` is `from: ["draft"]`, and guard layout does not matter.
        let same = ORDER.replace(r#""from": "draft""#, r#""from": ["draft"]"#).replace("payload.amount < 100", "(payload['amount']<100)");
        assert!(!f.tx(|tx| tx.machines_define(&def(&same))).unwrap());
        let other = ORDER.replace("payload.amount < 100", "payload.amount <= 100");
        match f.tx(|tx| tx.machines_define(&def(&other))) {
            Err(Error::MachineVersionExists { message, details }) => {
                assert!(message.contains(r#"machine "order" version 1"#), "{message}");
                assert_eq!(details, json!({"machine": "order", "version": 1}));
            }
            other => panic!("{other:?}"),
        }
        assert!(f.tx(|tx| tx.machines_define(&def(&other.replace(r#""version": 1"#, r#""version": 2"#)))).unwrap());
        let stored = f.tx(|tx| tx.machines_definition("order", Some(1))).unwrap().unwrap();
        assert_eq!(stored, def(ORDER));
        assert_eq!(f.tx(|tx| tx.machines_definition("order", None)).unwrap().unwrap().version, 2);
        assert_eq!(f.tx(|tx| tx.machines_definition("order", Some(3))).unwrap(), None);
        assert_eq!(f.tx(|tx| tx.machines_definition("nope", None)).unwrap(), None);
    }

    #[test]
    fn definitions_list_by_name_then_version() {
        let f = Fixture::new();
        for (name, version) in [("b", 2), ("a", 1), ("b", 10), ("b", 1)] {
            let d = format!(r#"{{"name":"{name}","version":{version},"states":["s"],"initial":"s","transitions":[]}}"#);
            f.tx(|tx| tx.machines_define(&def(&d))).unwrap();
        }
        let all: Vec<(String, u32)> = f.tx(|tx| tx.machines_definitions(None)).unwrap().into_iter().map(|d| (d.name, d.version)).collect();
        let want = [("a", 1), ("b", 1), ("b", 2), ("b", 10), ("order", 1)];
        assert_eq!(all, want.iter().map(|(n, v)| (n.to_string(), *v)).collect::<Vec<_>>());
        let b: Vec<u32> = f.tx(|tx| tx.machines_definitions(Some("b"))).unwrap().into_iter().map(|d| d.version).collect();
        assert_eq!(b, [1, 2, 10]);
        assert_eq!(f.tx(|tx| tx.machines_definition("b", None)).unwrap().unwrap().version, 10);
    }

    #[test]
    fn create_starts_in_the_initial_state_at_revision_1() {
        let f = Fixture::new();
        let i = f.create("o-1", Some(r#"{"amount": 50}"#)).unwrap();
        assert_eq!((i.machine.as_str(), i.version, i.state.as_str(), i.revision), ("order", 1, "draft", 1));
        assert_eq!(i.context, v(r#"{"amount": 50}"#));
        assert_eq!(f.get("o-1"), i);
        assert_eq!(f.create("o-2", None).unwrap().context, v("{}"));
        assert!(matches!(f.create("o-1", None), Err(Error::AlreadyExists { .. })));
        assert!(matches!(f.create("o-3", Some("[1]")), Err(Error::InvalidArgument { .. })));
        let missing = CreateOptions { machine: "nope".into(), ..Default::default() };
        assert!(matches!(f.tx(|tx| tx.machines_create(&f.run, "x", &missing)), Err(Error::NotFound { .. })));
        let missing = CreateOptions { machine: "order".into(), version: Some(9), ..Default::default() };
        assert!(matches!(f.tx(|tx| tx.machines_create(&f.run, "x", &missing)), Err(Error::NotFound { .. })));
        assert!(matches!(f.create("", None), Err(Error::InvalidArgument { .. })));
        assert!(matches!(f.create("a\0b", None), Err(Error::InvalidArgument { .. })));
    }

    #[test]
    fn apply_moves_the_state_merges_the_payload_and_logs_the_transition() {
        let f = Fixture::new();
        f.create("o-1", Some(r#"{"amount": 50, "notes": {"a": 1, "b": 2}}"#)).unwrap();
        let r = f.apply("o-1", "submit", payload(r#"{"notes": {"a": null, "c": 3}, "by": "ada"}"#)).unwrap();
        assert_eq!((r.from.as_str(), r.to.as_str(), r.revision, r.applied), ("draft", "review", 2, true));
        assert_same(&r.context, &v(r#"{"amount": 50, "notes": {"b": 2, "c": 3}, "by": "ada"}"#));
        let i = f.get("o-1");
        assert_eq!((i.state.as_str(), i.revision, &i.context), ("review", 2, &r.context));
        let log = f.transitions();
        assert_eq!(log.len(), 1);
        assert_same(
            &log[0],
            &v(r#"{"machine":"order","version":1,"instance":"o-1","event":"submit","from":"draft","to":"review","revision":2,
                 "payload":{"notes":{"a":null,"c":3},"by":"ada"}}"#),
        );
        f.apply("o-1", "reject", ApplyOptions::default()).unwrap();
        assert_same(
            &f.transitions()[1],
            &v(r#"{"machine":"order","version":1,"instance":"o-1","event":"reject","from":"review","to":"rejected","revision":3}"#),
        );
    }

    #[test]
    fn an_unknown_event_lists_the_allowed_ones() {
        let f = Fixture::new();
        f.create("o-1", None).unwrap();
        match f.apply("o-1", "ship", ApplyOptions::default()) {
            Err(Error::InvalidTransition { message, details }) => {
                assert!(message.contains(r#"no transition on event "ship" from state "draft""#), "{message}");
                assert!(message.contains("allowed events: submit, reject"), "{message}");
                assert_eq!(details["allowed"], json!(["submit", "reject"]));
                assert_eq!(details["state"], json!("draft"));
                assert_eq!(details["event"], json!("ship"));
                assert_eq!(details["instance"], json!("o-1"));
            }
            other => panic!("{other:?}"),
        }
        f.apply("o-1", "reject", ApplyOptions::default()).unwrap();
        match f.apply("o-1", "submit", ApplyOptions::default()) {
            Err(Error::InvalidTransition { message, details }) => {
                assert!(message.contains(r#"none: "rejected" has no outgoing transitions"#), "{message}");
                assert_eq!(details["allowed"], json!([]));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(f.get("o-1").revision, 2, "a refused event changes nothing");
        assert!(matches!(f.apply("nope", "submit", ApplyOptions::default()), Err(Error::NotFound { .. })));
    }

    #[test]
    fn guarded_alternatives_are_tried_in_order() {
        let f = Fixture::new();
        for (id, ctx, amount, to) in [("a", "{}", 10, "approved"), ("b", r#"{"vip": true}"#, 10, "approved"), ("c", r#"{"vip": true}"#, 500, "done")] {
            f.create(id, Some(ctx)).unwrap();
            f.apply(id, "submit", ApplyOptions::default()).unwrap();
            let r = f.apply(id, "approve", payload(&format!(r#"{{"amount": {amount}}}"#))).unwrap();
            assert_eq!(r.to, to, "{id}");
        }
        f.create("d", None).unwrap();
        f.apply("d", "submit", ApplyOptions::default()).unwrap();
        match f.apply("d", "approve", payload(r#"{"amount": 500}"#)) {
            Err(Error::GuardFailed { message, details }) => {
                assert!(message.contains("payload.amount < 100 | ctx.vip == true"), "{message}");
                assert_eq!(details["guards"], json!(["payload.amount < 100", "ctx.vip == true"]));
                assert_eq!(details["state"], json!("review"));
            }
            other => panic!("{other:?}"),
        }
        // Without a payload, payload.amount is null, and null < 100 is false.
        assert!(matches!(f.apply("d", "approve", ApplyOptions::default()), Err(Error::GuardFailed { .. })));
        assert_eq!(f.get("d").state, "review");
    }

    #[test]
    fn expected_state_and_revision_mismatches_are_conflicts() {
        let f = Fixture::new();
        f.create("o-1", None).unwrap();
        let opts = ApplyOptions { expected_state: Some("review".into()), ..Default::default() };
        match f.apply("o-1", "submit", opts) {
            Err(Error::Conflict { details, .. }) => assert_eq!(details, json!({"instance": "o-1", "expectedState": "review", "state": "draft", "revision": 1})),
            other => panic!("{other:?}"),
        }
        let opts = ApplyOptions { expected_revision: Some(2), ..Default::default() };
        match f.apply("o-1", "submit", opts) {
            Err(Error::Conflict { details, .. }) => assert_eq!(details, json!({"instance": "o-1", "expectedRevision": 2, "revision": 1, "state": "draft"})),
            other => panic!("{other:?}"),
        }
        let opts = ApplyOptions { expected_state: Some("draft".into()), expected_revision: Some(1), ..Default::default() };
        assert_eq!(f.apply("o-1", "submit", opts).unwrap().revision, 2);
    }

    #[test]
    fn an_idempotency_key_returns_the_first_result_and_changes_nothing() {
        let f = Fixture::new();
        f.create("o-1", None).unwrap();
        let keyed = |p: &str| ApplyOptions { idempotency_key: Some("k1".into()), ..payload(p) };
        let first = f.apply("o-1", "submit", keyed(r#"{"n": 1}"#)).unwrap();
        assert!(first.applied);
        let again = f.apply("o-1", "submit", keyed(r#"{"n": 1}"#)).unwrap();
        assert_eq!(again, Applied { applied: false, ..first.clone() });
        // The same event with another payload is another request.
        let e = f.apply("o-1", "submit", keyed(r#"{"n": 2}"#)).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { message } if message.contains("with other arguments")), "{e:?}");
        assert_eq!(f.get("o-1").revision, 2);
        assert_eq!(f.get("o-1").context, v(r#"{"n": 1}"#));
        assert_eq!(f.transitions().len(), 1);
        // Later transitions do not change the stored answer.
        f.apply("o-1", "reject", ApplyOptions::default()).unwrap();
        assert_eq!(f.apply("o-1", "submit", keyed(r#"{"n": 1}"#)).unwrap(), again);
        // A key names one request.
        let e = f.apply("o-1", "reject", keyed("{}")).unwrap_err();
        assert!(matches!(&e, Error::InvalidArgument { message } if message.contains(r#"first used to apply event "submit""#)), "{e:?}");
        let e =
            f.tx(|tx| tx.machines_create(&f.run, "o-1", &CreateOptions { machine: "order".into(), idempotency_key: Some("k1".into()), ..Default::default() }));
        assert!(matches!(&e, Err(Error::InvalidArgument { message }) if message.contains("first used to apply")), "{e:?}");
        // Keys are per instance.
        f.create("o-2", None).unwrap();
        assert!(f.apply("o-2", "submit", keyed("{}")).unwrap().applied);
    }

    #[test]
    fn an_idempotent_create_returns_the_first_instance() {
        let f = Fixture::new();
        let opts = |ctx: &str| CreateOptions { machine: "order".into(), context: Some(mp(ctx)), idempotency_key: Some("c".into()), ..Default::default() };
        let first = f.tx(|tx| tx.machines_create(&f.run, "o-1", &opts(r#"{"a": 1}"#))).unwrap();
        f.apply("o-1", "submit", ApplyOptions::default()).unwrap();
        let again = f.tx(|tx| tx.machines_create(&f.run, "o-1", &opts(r#"{"a": 1}"#))).unwrap();
        assert_eq!(again, first);
        // Another context is another request.
        let e = f.tx(|tx| tx.machines_create(&f.run, "o-1", &opts(r#"{"a": 2}"#)));
        assert!(matches!(&e, Err(Error::InvalidArgument { message }) if message.contains("with other arguments")), "{e:?}");
        assert_eq!(f.get("o-1").state, "review");
        let other = CreateOptions { idempotency_key: Some("other".into()), ..opts("{}") };
        assert!(matches!(f.tx(|tx| tx.machines_create(&f.run, "o-1", &other)), Err(Error::AlreadyExists { .. })));
        let e = f.tx(|tx| tx.machines_apply(&f.run, "o-1", "reject", &ApplyOptions { idempotency_key: Some("c".into()), ..Default::default() }));
        assert!(matches!(&e, Err(Error::InvalidArgument { message }) if message.contains("first used to create it")), "{e:?}");
    }

    #[test]
    fn an_aborted_transaction_leaves_no_transition_behind() {
        let f = Fixture::new();
        f.create("o-1", None).unwrap();
        let mut tx = EngineTx::begin(&f.engine).unwrap();
        let opts = ApplyOptions { idempotency_key: Some("k".into()), ..Default::default() };
        tx.machines_apply(&f.run, "o-1", "submit", &opts).unwrap();
        assert_eq!(tx.machines_get(&f.run, "o-1").unwrap().unwrap().state, "review", "a transaction reads its own writes");
        drop(tx);
        assert_eq!(f.get("o-1").state, "draft");
        assert!(f.transitions().is_empty());
        assert!(f.apply("o-1", "submit", opts).unwrap().applied, "the key was not kept either");
    }

    #[test]
    fn list_filters_by_machine_and_state() {
        let f = Fixture::new();
        f.tx(|tx| tx.machines_define(&def(r#"{"name":"other","version":1,"states":["draft"],"initial":"draft","transitions":[]}"#))).unwrap();
        f.create("b", None).unwrap();
        f.create("a", None).unwrap();
        f.apply("a", "submit", ApplyOptions::default()).unwrap();
        f.tx(|tx| tx.machines_create(&f.run, "c", &CreateOptions { machine: "other".into(), ..Default::default() })).unwrap();
        let ids = |opts: InstanceListOptions| f.tx(|tx| tx.machines_list(&f.run, &opts)).unwrap().into_iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(ids(InstanceListOptions::default()), ["a", "b", "c"]);
        assert_eq!(ids(InstanceListOptions { machine: Some("order".into()), ..Default::default() }), ["a", "b"]);
        assert_eq!(ids(InstanceListOptions { state: Some("draft".into()), ..Default::default() }), ["b", "c"]);
        assert_eq!(ids(InstanceListOptions { machine: Some("order".into()), state: Some("draft".into()) }), ["b"]);
    }

    #[test]
    fn instances_belong_to_their_run() {
        let f = Fixture::new();
        f.create("o-1", None).unwrap();
        let other = f.engine.run_begin(None, None, vec![], None).unwrap().id;
        assert_eq!(f.tx(|tx| tx.machines_get(&other, "o-1")).unwrap(), None);
        let opts = CreateOptions { machine: "order".into(), ..Default::default() };
        f.tx(|tx| tx.machines_create(&other, "o-1", &opts)).unwrap();
        f.engine.run_update(&other, crate::RunAction::Complete, None).unwrap();
        assert!(matches!(f.tx(|tx| tx.machines_apply(&other, "o-1", "submit", &ApplyOptions::default())), Err(Error::RunClosed { .. })));
    }
}
