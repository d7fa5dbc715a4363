//! JSON document paths: `$`, `$.a.b`, `$.a[0]`, `$["odd key"]`.
//!
//! A path is a list of segments from the root. Two paths *overlap* when one
//! is a prefix of the other (the root overlaps everything): that is the unit
//! of conflict between transactions writing one document.

use in_mem_core::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

pub type Path = Vec<Segment>;

/// Whether writing or reading `a` and `b` can touch the same data.
pub fn overlaps(a: &[Segment], b: &[Segment]) -> bool {
    a.iter().zip(b.iter()).all(|(x, y)| x == y)
}

fn err(path: &str, at: usize, what: &str) -> Error {
    Error::invalid_argument(format!("invalid JSON path {path:?} at position {at}: {what}"))
}

/// Parses a path; errors name the position of the first bad character.
pub fn parse(path: &str) -> Result<Path> {
    let b = path.as_bytes();
    if b.first() != Some(&b'$') {
        return Err(err(path, 0, "a path starts with '$'"));
    }
    let mut i = 1;
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'$' || b[j] >= 0x80) {
                    j += 1;
                }
                if j == start {
                    return Err(err(path, start, "expected a name after '.'; use [\"...\"] for other keys"));
                }
                out.push(Segment::Key(path[start..j].to_string()));
                i = j;
            }
            b'[' => {
                let start = i + 1;
                match b.get(start) {
                    Some(b'"') | Some(b'\'') => {
                        let (key, end) = quoted(path, start)?;
                        if b.get(end) != Some(&b']') {
                            return Err(err(path, end, "expected ']' after the quoted key"));
                        }
                        out.push(Segment::Key(key));
                        i = end + 1;
                    }
                    Some(c) if c.is_ascii_digit() => {
                        let mut j = start;
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        if b.get(j) != Some(&b']') {
                            return Err(err(path, j, "expected ']' after the index"));
                        }
                        let n: usize = path[start..j].parse().map_err(|_| err(path, start, "index out of range"))?;
                        out.push(Segment::Index(n));
                        i = j + 1;
                    }
                    _ => return Err(err(path, start, "expected an index or a quoted key after '['")),
                }
            }
            _ => return Err(err(path, i, "expected '.' or '['")),
        }
        if out.len() > in_mem_core::limits::MAX_DEPTH {
            return Err(Error::limit(format!("JSON path {path:?} is deeper than {} levels", in_mem_core::limits::MAX_DEPTH)));
        }
    }
    Ok(out)
}

/// A quoted key starting at `start` (the quote); returns it and the index
/// after the closing quote.
fn quoted(path: &str, start: usize) -> Result<(String, usize)> {
    let b = path.as_bytes();
    let quote = b[start];
    let mut out = String::new();
    let mut chars = path[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        let at = start + 1 + off;
        match c {
            c if c as u32 == quote as u32 => return Ok((out, at + 1)),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 'u')) => {
                    let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, c)| c)).collect();
                    let code = u32::from_str_radix(&hex, 16).ok().filter(|_| hex.len() == 4).and_then(char::from_u32);
                    out.push(code.ok_or_else(|| err(path, at, "\\u needs four hex digits of a valid character"))?);
                }
                _ => return Err(err(path, at, "unknown escape")),
            },
            c => out.push(c),
        }
    }
    Err(err(path, path.len(), "unterminated quoted key"))
}

/// The path back in its canonical text form, for error details.
pub fn display(path: &[Segment]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Segment::Key(k) if !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') && !k.as_bytes()[0].is_ascii_digit() => {
                s.push('.');
                s.push_str(k);
            }
            Segment::Key(k) => {
                s.push('[');
                s.push_str(&serde_json::to_string(k).unwrap());
                s.push(']');
            }
            Segment::Index(i) => {
                s.push_str(&format!("[{i}]"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(parse("$").unwrap(), vec![]);
        assert_eq!(parse("$.a.b").unwrap(), vec![Segment::Key("a".into()), Segment::Key("b".into())]);
        assert_eq!(parse("$.a[0]").unwrap(), vec![Segment::Key("a".into()), Segment::Index(0)]);
        assert_eq!(
            parse(r#"$["odd key"]['x\'y']["\u0041"]"#).unwrap(),
            vec![Segment::Key("odd key".into()), Segment::Key("x'y".into()), Segment::Key("A".into())]
        );
    }

    #[test]
    fn errors_name_the_position() {
        for (p, at) in [("a", 0), ("$.", 2), ("$.a..b", 4), ("$[x]", 2), ("$[1", 3), ("$[\"a", 4), ("$.a b", 3)] {
            let e = parse(p).unwrap_err().to_string();
            assert!(e.contains(&format!("position {at}")), "{p}: {e}");
        }
    }

    #[test]
    fn overlap_is_prefix() {
        let a = parse("$.a").unwrap();
        assert!(overlaps(&a, &parse("$.a.b").unwrap()));
        assert!(overlaps(&parse("$").unwrap(), &a));
        assert!(!overlaps(&a, &parse("$.b").unwrap()));
        assert!(!overlaps(&parse("$.a[0]").unwrap(), &parse("$.a[1]").unwrap()));
    }

    #[test]
    fn display_round_trips() {
        for p in ["$", "$.a.b[3]", r#"$["odd key"].x"#] {
            assert_eq!(display(&parse(p).unwrap()), p);
        }
    }
}
