//! The limits of SPEC §10. Every check that enforces one of these names it in
//! its error message.

/// Longest user key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest encoded value, in bytes (16 MiB).
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Deepest nesting of arrays and objects inside a value.
pub const MAX_DEPTH: usize = 128;
/// Longest run name, in characters.
pub const MAX_RUN_NAME_CHARS: usize = 256;
/// Longest event type, in characters.
pub const MAX_EVENT_TYPE_CHARS: usize = 256;
/// Most tags on one run.
pub const MAX_TAGS: usize = 64;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 256;
