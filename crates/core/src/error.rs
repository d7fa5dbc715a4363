//! The one error type of in-mem. Each variant has a stable string code that
//! the TypeScript layer maps to an error class, and a details object.

use std::fmt;

use serde_json::{Value as Json, json};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    NotFound {
        message: String,
        details: Json,
    },
    AlreadyExists {
        message: String,
        details: Json,
    },
    /// Retryable: another transaction committed first.
    Conflict {
        message: String,
        details: Json,
    },
    InvalidArgument {
        message: String,
    },
    Limit {
        message: String,
    },
    RunClosed {
        run: String,
        status: String,
    },
    InvalidTransition {
        message: String,
        details: Json,
    },
    /// Every guarded alternative of a machine transition was false.
    GuardFailed {
        message: String,
        details: Json,
    },
    /// A machine definition with another body already has this version.
    MachineVersionExists {
        message: String,
        details: Json,
    },
    /// A watcher fell behind the bounded change buffer.
    Lagged {
        message: String,
        last_delivered: u64,
    },
    Corruption {
        file: String,
        offset: u64,
        reason: String,
    },
    Locked {
        path: String,
        pid: Option<u32>,
    },
    Closed,
    Io {
        message: String,
    },
    Internal {
        message: String,
    },
}

impl Error {
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::InvalidArgument { message: message.into() }
    }
    pub fn limit(message: impl Into<String>) -> Self {
        Error::Limit { message: message.into() }
    }
    pub fn not_found(message: impl Into<String>, details: Json) -> Self {
        Error::NotFound { message: message.into(), details }
    }
    pub fn already_exists(message: impl Into<String>, details: Json) -> Self {
        Error::AlreadyExists { message: message.into(), details }
    }
    pub fn invalid_transition(message: impl Into<String>, details: Json) -> Self {
        Error::InvalidTransition { message: message.into(), details }
    }
    pub fn conflict(message: impl Into<String>, details: Json) -> Self {
        Error::Conflict { message: message.into(), details }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into() }
    }
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Self {
        Error::Io { message: format!("{context}: {err}") }
    }

    /// The stable code surfaced to JavaScript as `error.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NOT_FOUND",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::Conflict { .. } => "CONFLICT",
            Error::InvalidArgument { .. } => "INVALID_ARGUMENT",
            Error::Limit { .. } => "LIMIT_EXCEEDED",
            Error::RunClosed { .. } => "RUN_CLOSED",
            Error::InvalidTransition { .. } => "INVALID_TRANSITION",
            Error::GuardFailed { .. } => "GUARD_FAILED",
            Error::MachineVersionExists { .. } => "MACHINE_VERSION_EXISTS",
            Error::Lagged { .. } => "LAGGED",
            Error::Corruption { .. } => "CORRUPTION",
            Error::Locked { .. } => "LOCKED",
            Error::Closed => "CLOSED",
            Error::Io { .. } => "IO",
            Error::Internal { .. } => "INTERNAL",
        }
    }

    pub fn details(&self) -> Json {
        match self {
            Error::NotFound { details, .. }
            | Error::AlreadyExists { details, .. }
            | Error::Conflict { details, .. }
            | Error::InvalidTransition { details, .. }
            | Error::GuardFailed { details, .. }
            | Error::MachineVersionExists { details, .. } => details.clone(),
            Error::RunClosed { run, status } => json!({ "run": run, "status": status }),
            Error::Lagged { last_delivered, .. } => json!({ "lastVersion": last_delivered }),
            Error::Corruption { file, offset, reason } => {
                json!({ "file": file, "offset": offset, "reason": reason })
            }
            Error::Locked { path, pid } => json!({ "path": path, "pid": pid }),
            _ => json!({}),
        }
    }

    /// `{"code": ..., "message": ..., "details": ...}`: the form that crosses
    /// the JS boundary.
    pub fn to_json(&self) -> String {
        json!({ "code": self.code(), "message": self.to_string(), "details": self.details() }).to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound { message, .. }
            | Error::AlreadyExists { message, .. }
            | Error::Conflict { message, .. }
            | Error::InvalidArgument { message }
            | Error::Limit { message }
            | Error::InvalidTransition { message, .. }
            | Error::GuardFailed { message, .. }
            | Error::MachineVersionExists { message, .. }
            | Error::Lagged { message, .. }
            | Error::Io { message }
            | Error::Internal { message } => f.write_str(message),
            Error::RunClosed { run, status } => {
                write!(f, "run {run} is {status}; only an active run accepts writes")
            }
            Error::Corruption { file, offset, reason } => {
                write!(f, "corruption in {file} at offset {offset}: {reason}")
            }
            Error::Locked { path, pid: Some(pid) } => {
                write!(f, "{path} is locked by another process (pid {pid})")
            }
            Error::Locked { path, pid: None } => write!(f, "{path} is locked by another process"),
            Error::Closed => f.write_str("the database is closed"),
        }
    }
}

impl std::error::Error for Error {}
