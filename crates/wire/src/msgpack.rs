//! The little MessagePack the Rust side reads: a request's head, its string
//! arguments, and the check that a value is one the value codec
//! (`src/codec.ts`) could have written, so that its bytes can be stored as
//! they arrived.

/// Deepest nesting of arrays and maps in a stored value (the codec's `MAX_DEPTH`).
pub const MAX_DEPTH: usize = 128;

/// A cursor over MessagePack bytes. Every read returns `None` on bytes it
/// does not accept (malformed, cut short, or a kind it does not take), and
/// the caller then leaves the request to the JavaScript side.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    /// Where the cursor is.
    pub fn position(&self) -> usize {
        self.at
    }

    /// Moves the cursor back to `at` (a position it was at).
    pub fn seek(&mut self, at: usize) {
        self.at = at.min(self.bytes.len());
    }

    /// Whether every byte was read.
    pub fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }

    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }

    fn be(&mut self, n: usize) -> Option<u64> {
        Some(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }

    /// An array's length.
    pub fn array(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x90..=0x9f => Some((m & 0x0f) as usize),
            0xdc => Some(self.be(2)? as usize),
            0xdd => Some(self.be(4)? as usize),
            _ => None,
        }
    }

    /// A map's length.
    pub fn map(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0x80..=0x8f => Some((m & 0x0f) as usize),
            0xde => Some(self.be(2)? as usize),
            0xdf => Some(self.be(4)? as usize),
            _ => None,
        }
    }

    /// Skips one value of any kind (extensions included), checking only
    /// that it is whole; nested at most [`MAX_DEPTH`] deep.
    pub fn skip(&mut self) -> Option<()> {
        self.skip_at(0)
    }

    fn skip_at(&mut self, depth: usize) -> Option<()> {
        let m = self.byte()?;
        let n = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0xcc | 0xd0 | 0xd4 => 1 + (m == 0xd4) as usize,
            0xcd | 0xd1 => 2,
            0xd5 => 3,
            0xce | 0xd2 | 0xca => 4,
            0xd6 => 5,
            0xcf | 0xd3 | 0xcb => 8,
            0xd7 => 9,
            0xd8 => 17,
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 | 0xc4 => self.be(1)? as usize,
            0xda | 0xc5 => self.be(2)? as usize,
            0xdb | 0xc6 => self.be(4)? as usize,
            0xc7 => self.be(1)? as usize + 1,
            0xc8 => self.be(2)? as usize + 1,
            0xc9 => self.be(4)? as usize + 1,
            0x90..=0x9f | 0xdc | 0xdd | 0x80..=0x8f | 0xde | 0xdf => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at -= 1;
                let items = if m <= 0x8f || m >= 0xde { self.map()? * 2 } else { self.array()? };
                for _ in 0..items {
                    self.skip_at(depth + 1)?;
                }
                return Some(());
            }
            _ => return None,
        };
        self.take(n).map(|_| ())
    }

    /// A non-negative integer.
    pub fn uint(&mut self) -> Option<u64> {
        match self.byte()? {
            m @ 0x00..=0x7f => Some(m as u64),
            0xcc => self.be(1),
            0xcd => self.be(2),
            0xce => self.be(4),
            0xcf => self.be(8),
            _ => None,
        }
    }

    /// A string, which must be UTF-8.
    pub fn str(&mut self) -> Option<&'a str> {
        let len = self.str_len()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn str_len(&mut self) -> Option<usize> {
        match self.byte()? {
            m @ 0xa0..=0xbf => Some((m & 0x1f) as usize),
            0xd9 => Some(self.be(1)? as usize),
            0xda => Some(self.be(2)? as usize),
            0xdb => Some(self.be(4)? as usize),
            _ => None,
        }
    }

    /// One value the codec could have written, returned as its bytes: nil,
    /// booleans, integers (64-bit unsigned ones up to `i64::MAX`, as the
    /// codec takes bigints), floats, UTF-8 strings, binary, arrays, and maps
    /// with string keys other than `__proto__`, nested at most
    /// [`MAX_DEPTH`] deep. No extension types: the wire encodes typed arrays
    /// and `undefined` as extensions, which the JavaScript side converts.
    pub fn storable(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        self.value(0)?;
        Some(&self.bytes[start..self.at])
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        let m = self.byte()?;
        let skip = match m {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 | 0xca => 4,
            0xd3 | 0xcb => 8,
            0xcf => return (self.be(8)? <= i64::MAX as u64).then_some(()),
            0xa0..=0xbf | 0xd9..=0xdb => {
                self.at -= 1;
                return self.str().map(|_| ());
            }
            0xc4 => self.be(1)? as usize,
            0xc5 => self.be(2)? as usize,
            0xc6 => self.be(4)? as usize,
            0x90..=0x9f | 0xdc | 0xdd => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                self.at -= 1;
                for _ in 0..self.array()? {
                    self.value(depth + 1)?;
                }
                return Some(());
            }
            0x80..=0x8f | 0xde | 0xdf => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let n = match m {
                    0xde => self.be(2)? as usize,
                    0xdf => self.be(4)? as usize,
                    _ => (m & 0x0f) as usize,
                };
                for _ in 0..n {
                    if self.str()? == "__proto__" {
                        return None;
                    }
                    self.value(depth + 1)?;
                }
                return Some(());
            }
            // 0xc1 (never used) and the extension types.
            _ => return None,
        };
        self.take(skip).map(|_| ())
    }
}

/// Appends a JavaScript number holding the non-negative integer `n` as
/// msgpackr writes one: the smallest unsigned form up to 2^32 - 1, a
/// float64 above (a 64-bit integer would arrive as a `bigint`).
pub fn write_number(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0x7f => out.push(n as u8),
        0x80..=0xff => out.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0xcb);
            out.extend_from_slice(&(n as f64).to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: &rmpv::Value) -> Vec<u8> {
        let mut out = Vec::new();
        rmpv::encode::write_value(&mut out, v).unwrap();
        out
    }

    #[test]
    fn storable_takes_what_the_codec_writes_and_nothing_else() {
        use rmpv::Value as V;
        let ok = [
            V::Nil,
            V::Boolean(true),
            V::from(-5),
            V::from(300u32),
            V::from(i64::MAX as u64),
            V::F64(1.5),
            V::from("hé"),
            V::Binary(vec![1, 2, 3]),
            V::Array(vec![V::from(1), V::Map(vec![(V::from("a"), V::Nil)])]),
        ];
        for v in &ok {
            let bytes = enc(v);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.storable(), Some(&bytes[..]), "{v:?}");
            assert!(r.at_end());
        }
        let refused = [V::from(u64::MAX), V::Ext(0, vec![0]), V::Map(vec![(V::from(1), V::Nil)]), V::Map(vec![(V::from("__proto__"), V::Nil)])];
        for v in &refused {
            let bytes = enc(v);
            assert_eq!(Reader::new(&bytes).storable(), None, "{v:?}");
        }
        // A string that is not UTF-8 (here a lone surrogate's bytes).
        assert_eq!(Reader::new(&[0xa3, 0xed, 0xa0, 0x80]).storable(), None);
        // Nesting: 128 levels of arrays around a value are the limit.
        let mut deep = V::Nil;
        for _ in 0..MAX_DEPTH {
            deep = V::Array(vec![deep]);
        }
        assert!(Reader::new(&enc(&deep)).storable().is_some());
        let deeper = V::Array(vec![deep]);
        assert_eq!(Reader::new(&enc(&deeper)).storable(), None);
        // Cut short anywhere: refused.
        let bytes = enc(&ok[8]);
        for n in 0..bytes.len() {
            assert_eq!(Reader::new(&bytes[..n]).storable(), None);
        }
    }

    #[test]
    fn numbers_are_written_as_msgpackr_writes_them() {
        for (n, hex) in [(5u64, "05"), (200, "cc c8"), (70_000, "ce 00 01 11 70"), (1 << 33, "cb 42 00 00 00 00 00 00 00")] {
            let mut out = Vec::new();
            write_number(&mut out, n);
            let want: Vec<u8> = hex.split(' ').map(|b| u8::from_str_radix(b, 16).unwrap()).collect();
            assert_eq!(out, want, "{n}");
        }
    }
}
