//! Cutting a byte stream into frames: a 4-byte little-endian length, then
//! that many bytes of body (docs/protocol.md "Frames").

use std::ops::Range;

/// A frame whose length prefix is over the limit. The stream cannot be
/// resynchronised after it: the connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// The length the prefix announced.
    pub length: u32,
    /// The limit it is over.
    pub limit: u32,
}

/// The bytes a connection has received and not yet cut into frames.
#[derive(Debug)]
pub struct Frames {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    start: usize,
    max: u32,
}

impl Frames {
    /// A reader that refuses frames longer than `max_frame_bytes`.
    pub fn new(max_frame_bytes: u32) -> Frames {
        Frames { buf: Vec::new(), start: 0, max: max_frame_bytes }
    }

    /// Adds received bytes. The bodies returned by [`Frames::next_frame`] before
    /// this call are no longer valid ranges afterwards.
    pub fn extend(&mut self, chunk: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame's body, as a range of [`Frames::bytes`]; `None`
    /// when the bytes received do not finish one.
    pub fn next_frame(&mut self) -> Result<Option<Range<usize>>, TooLarge> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if length > self.max {
            return Err(TooLarge { length, limit: self.max });
        }
        let end = 4 + length as usize;
        if rest.len() < end {
            return Ok(None);
        }
        let body = self.start + 4..self.start + end;
        self.start += end;
        Ok(Some(body))
    }

    /// The buffer the ranges of [`Frames::next_frame`] index.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Bytes received that do not yet make a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn cuts_frames_across_chunks_in_any_split() {
        let bodies: Vec<Vec<u8>> = vec![b"a".to_vec(), vec![], b"hello world".to_vec(), vec![7; 300]];
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framed(b)).collect();
        for step in 1..stream.len() {
            let mut f = Frames::new(1024);
            let mut got = Vec::new();
            for chunk in stream.chunks(step) {
                f.extend(chunk);
                while let Some(r) = f.next_frame().unwrap() {
                    got.push(f.bytes()[r].to_vec());
                }
            }
            assert_eq!(got, bodies, "chunks of {step}");
            assert_eq!(f.pending(), 0);
        }
    }

    #[test]
    fn an_unfinished_frame_is_pending_and_an_oversized_one_is_refused() {
        let mut f = Frames::new(10);
        f.extend(&framed(b"12345")[..6]);
        assert_eq!(f.next_frame(), Ok(None));
        assert_eq!(f.pending(), 6);
        let mut g = Frames::new(10);
        g.extend(&11u32.to_le_bytes());
        assert_eq!(g.next_frame(), Err(TooLarge { length: 11, limit: 10 }));
        let mut h = Frames::new(10);
        h.extend(&framed(b"0123456789"));
        assert_eq!(h.next_frame().unwrap().map(|r| r.len()), Some(10));
    }
}
