//! Splitting a report, fed in chunks of any size, into records: lines, and the elements of a JSON
//! array. Memory stays bounded: a record longer than the limit is skipped and reported, not
//! buffered.

use farol_model::Position;

/// The longest record kept by default; anything longer is rejected with its length.
pub const DEFAULT_MAX_RECORD: usize = 1 << 20;

/// A record found by a framer.
#[derive(Debug)]
pub enum Frame<'a> {
    Record {
        bytes: &'a [u8],
        position: Position,
    },
    /// A record longer than the limit: its position, full length and first bytes.
    TooLong {
        position: Position,
        head: &'a [u8],
    },
}

/// How much of an oversized record is kept for the reject.
const HEAD: usize = farol_model::Reject::MAX_RAW;

#[derive(Debug)]
struct Oversized {
    position: Position,
    head: Vec<u8>,
    /// The last byte seen was `\r` (dropped if a `\n` follows, as for any line).
    ends_cr: bool,
}

impl Oversized {
    fn new(position: Position, first: &[u8]) -> Oversized {
        Oversized { position, head: first[..first.len().min(HEAD)].to_vec(), ends_cr: first.last() == Some(&b'\r') }
    }

    fn grow(&mut self, more: &[u8]) {
        if let Some(&last) = more.last() {
            self.ends_cr = last == b'\r';
        }
        self.position.len += more.len() as u64;
        let room = HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&more[..more.len().min(room)]);
    }

    fn emit(&self, f: &mut impl FnMut(Frame<'_>)) {
        f(Frame::TooLong { position: self.position, head: &self.head });
    }
}

/// Splits input into lines (without `\n` or `\r\n`), numbering them from 1. A UTF-8 byte order
/// mark at the start is dropped.
#[derive(Debug)]
pub struct Lines {
    buf: Vec<u8>,
    /// Offset of the first byte in `buf` (or of the oversized line).
    start: u64,
    /// Offset of the next byte pushed.
    offset: u64,
    line: u64,
    max: usize,
    oversized: Option<Oversized>,
}

impl Lines {
    pub fn new(max: usize) -> Lines {
        Lines { buf: Vec::new(), start: 0, offset: 0, line: 1, max, oversized: None }
    }

    pub fn push(&mut self, chunk: &[u8], f: &mut impl FnMut(Frame<'_>)) {
        let mut from = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            self.end_line(&chunk[from..nl], f);
            self.offset += (nl + 1 - from) as u64;
            self.start = self.offset;
            self.line += 1;
            from = nl + 1;
        }
        let rest = &chunk[from..];
        self.offset += rest.len() as u64;
        if let Some(big) = &mut self.oversized {
            big.grow(rest);
        } else if self.buf.len() + rest.len() > self.max {
            let mut big = Oversized::new(self.position(0), &self.buf);
            big.position.len = self.buf.len() as u64;
            big.grow(rest);
            self.buf = Vec::new();
            self.oversized = Some(big);
        } else {
            self.buf.extend_from_slice(rest);
        }
    }

    /// The input ended: emits a last line that had no newline.
    pub fn finish(&mut self, f: &mut impl FnMut(Frame<'_>)) {
        if !self.buf.is_empty() || self.oversized.is_some() {
            self.end_line(&[], f);
        }
    }

    fn position(&self, len: usize) -> Position {
        Position { offset: self.start, len: len as u64, line: Some(self.line) }
    }

    fn end_line(&mut self, tail: &[u8], f: &mut impl FnMut(Frame<'_>)) {
        if let Some(mut big) = self.oversized.take() {
            big.grow(tail);
            big.position.len -= u64::from(big.ends_cr);
            big.emit(f);
            return;
        }
        let line: &[u8] = if self.buf.is_empty() {
            tail
        } else {
            self.buf.extend_from_slice(tail);
            &self.buf
        };
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let mut position = self.position(line.len());
        let line = match line.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) if self.start == 0 => {
                position = Position { offset: 3, len: rest.len() as u64, ..position };
                rest
            }
            _ => line,
        };
        if line.len() > self.max {
            Oversized::new(position, line).emit(f);
        } else {
            f(Frame::Record { bytes: line, position });
        }
        self.buf.clear();
    }
}

/// Splits a top-level JSON array into its elements without parsing them. Whatever follows the
/// closing bracket is ignored but for whitespace; a document that is not an array is reported
/// once by [`JsonArray::error`].
#[derive(Debug)]
pub struct JsonArray {
    state: ArrayState,
    depth: usize,
    in_string: bool,
    escape: bool,
    buf: Vec<u8>,
    start: Position,
    offset: u64,
    line: u64,
    max: usize,
    oversized: Option<Oversized>,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayState {
    Before,
    Between,
    InElement,
    After,
}

impl JsonArray {
    pub fn new(max: usize) -> JsonArray {
        JsonArray {
            state: ArrayState::Before,
            depth: 0,
            in_string: false,
            escape: false,
            buf: Vec::new(),
            start: Position::default(),
            offset: 0,
            line: 1,
            max,
            oversized: None,
            error: None,
        }
    }

    /// A problem with the document as a whole (not an array, unterminated), if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    pub fn push(&mut self, chunk: &[u8], f: &mut impl FnMut(Frame<'_>)) {
        let mut elem_from = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let at = self.offset + i as u64;
            match self.state {
                ArrayState::Before => match b {
                    b'[' => self.state = ArrayState::Between,
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    0xEF | 0xBB | 0xBF if at < 3 => {}
                    _ => {
                        self.fail(format!("expected a JSON array at byte {at}, found {:?}", char::from(b)));
                        return;
                    }
                },
                ArrayState::Between => match b {
                    b' ' | b'\t' | b'\r' | b'\n' | b',' => {}
                    b']' => self.state = ArrayState::After,
                    _ => {
                        self.state = ArrayState::InElement;
                        self.start = Position { offset: at, len: 0, line: Some(self.line) };
                        elem_from = i;
                        self.depth = 0;
                        if self.scan(b) {
                            self.end_element(&chunk[elem_from..=i], f);
                        }
                    }
                },
                ArrayState::InElement => {
                    // Scalars end at the next separator, which is not part of them.
                    if self.depth == 0 && !self.in_string && matches!(b, b',' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        self.end_element(&chunk[elem_from..i], f);
                        self.state = if b == b']' { ArrayState::After } else { ArrayState::Between };
                    } else if self.scan(b) {
                        self.end_element(&chunk[elem_from..=i], f);
                    }
                }
                ArrayState::After => {
                    if !b.is_ascii_whitespace() && self.error.is_none() {
                        self.error = Some(format!("unexpected data after the end of the array at byte {at}"));
                    }
                }
            }
            if b == b'\n' {
                self.line += 1;
            }
        }
        if self.state == ArrayState::InElement {
            self.carry(&chunk[elem_from..]);
        }
        self.offset += chunk.len() as u64;
    }

    pub fn finish(&mut self, f: &mut impl FnMut(Frame<'_>)) {
        match self.state {
            ArrayState::InElement => {
                let (at, complete) = (self.start.offset, self.depth == 0 && !self.in_string);
                self.end_element(&[], f);
                self.fail(if complete {
                    "the JSON array is cut short: no closing bracket".to_owned()
                } else {
                    format!("the JSON array is cut short: the element at byte {at} is not terminated")
                });
            }
            ArrayState::Between => self.fail("the JSON array is cut short: no closing bracket".to_owned()),
            ArrayState::Before => self.fail("expected a JSON array, found no data".to_owned()),
            ArrayState::After => {}
        }
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            self.error = Some(message);
        }
        self.state = ArrayState::After;
    }

    /// Tracks strings and nesting; true when `b` closes the element.
    fn scan(&mut self, b: u8) -> bool {
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if b == b'\\' {
                self.escape = true;
            } else if b == b'"' {
                self.in_string = false;
                return self.depth == 0;
            }
            return false;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            _ => {}
        }
        false
    }

    /// Keeps the unfinished part of an element for the next chunk, or only its head when too long.
    fn carry(&mut self, part: &[u8]) {
        if let Some(big) = &mut self.oversized {
            big.grow(part);
        } else if self.buf.len() + part.len() > self.max {
            let mut big = Oversized::new(self.start, &self.buf);
            big.position.len = self.buf.len() as u64;
            big.grow(part);
            self.buf = Vec::new();
            self.oversized = Some(big);
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    fn end_element(&mut self, tail: &[u8], f: &mut impl FnMut(Frame<'_>)) {
        self.state = ArrayState::Between;
        self.in_string = false;
        self.escape = false;
        self.depth = 0;
        if let Some(mut big) = self.oversized.take() {
            big.grow(tail);
            big.emit(f);
            return;
        }
        let bytes: &[u8] = if self.buf.is_empty() {
            tail
        } else {
            self.buf.extend_from_slice(tail);
            &self.buf
        };
        let position = Position { len: bytes.len() as u64, ..self.start };
        if bytes.len() > self.max {
            Oversized::new(position, bytes).emit(f);
        } else {
            f(Frame::Record { bytes, position });
        }
        self.buf.clear();
    }
}

/// Splits a JSON document into the values found at a given depth inside arrays, without
/// parsing them: depth 2 of `{"k": [{...}, {...}]}` is each object in the arrays (ThreatFox's
/// export, a STIX bundle's `objects`). The key under which the enclosing array sits is given
/// with each value (cut to 256 bytes).
#[derive(Debug)]
pub struct JsonNested {
    depth: usize,
    /// Container kinds from the root: `true` for arrays.
    stack: Vec<bool>,
    in_string: bool,
    escape: bool,
    /// Inside a value being collected (its depth is `depth`), and whether it is a scalar (which
    /// ends at the next separator rather than at its own closing bracket).
    collecting: bool,
    scalar: bool,
    buf: Vec<u8>,
    start: Position,
    offset: u64,
    line: u64,
    max: usize,
    oversized: Option<Oversized>,
    /// The last object key read at depth 1, and whether a string being read at depth 1 is a key.
    key: Vec<u8>,
    reading_key: bool,
    expect_key: bool,
    started: bool,
    error: Option<String>,
}

impl JsonNested {
    pub fn new(depth: usize, max: usize) -> JsonNested {
        JsonNested {
            depth,
            stack: Vec::new(),
            in_string: false,
            escape: false,
            collecting: false,
            scalar: false,
            buf: Vec::new(),
            start: Position::default(),
            offset: 0,
            line: 1,
            max,
            oversized: None,
            key: Vec::new(),
            reading_key: false,
            expect_key: false,
            started: false,
            error: None,
        }
    }

    /// A problem with the document as a whole (unbalanced, empty), if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The key of the array that holds the values being emitted.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn push(&mut self, chunk: &[u8], f: &mut impl FnMut(Frame<'_>, &[u8])) {
        let mut from = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let at = self.offset + i as u64;
            if self.error.is_some() {
                break;
            }
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if self.reading_key && self.key.len() < 256 {
                    self.key.push(b);
                }
                if !self.in_string {
                    self.reading_key = false;
                }
            } else {
                match b {
                    b'"' => {
                        if !self.collecting && self.stack.len() == self.depth && self.stack.last() == Some(&true) {
                            // A string value in a target array: collect it as a record.
                            self.begin(at, i, &mut from, true);
                        }
                        self.in_string = true;
                        if self.stack.len() == 1 && !self.stack[0] && self.expect_key {
                            self.reading_key = true;
                            self.key.clear();
                        }
                    }
                    b'{' | b'[' => {
                        if !self.collecting && self.stack.len() == self.depth && self.stack.last() == Some(&true) {
                            self.begin(at, i, &mut from, false);
                        }
                        self.stack.push(b == b'[');
                        self.started = true;
                        self.expect_key = b == b'{';
                    }
                    b'}' | b']' => {
                        if self.collecting && self.scalar && self.stack.len() == self.depth {
                            self.end(&chunk[from..i], f);
                        }
                        if self.stack.pop() != Some(b == b']') {
                            self.error = Some(format!("unbalanced JSON at byte {at}"));
                            break;
                        }
                        if self.collecting && self.stack.len() == self.depth {
                            self.end(&chunk[from..=i], f);
                        }
                    }
                    b':' => self.expect_key = false,
                    b',' => {
                        self.expect_key = self.stack.last() == Some(&false);
                        if self.collecting && self.scalar && self.stack.len() == self.depth {
                            self.end(&chunk[from..i], f);
                        }
                    }
                    b' ' | b'\t' | b'\r' | b'\n' => {}
                    _ => {
                        if !self.started {
                            self.error = Some(format!("expected a JSON object or array at byte {at}"));
                            break;
                        }
                        if !self.collecting && self.stack.len() == self.depth && self.stack.last() == Some(&true) {
                            self.begin(at, i, &mut from, true);
                        }
                    }
                }
            }
            if b == b'\n' {
                self.line += 1;
            }
        }
        if self.collecting {
            self.carry(&chunk[from..]);
        }
        self.offset += chunk.len() as u64;
    }

    pub fn finish(&mut self, f: &mut impl FnMut(Frame<'_>, &[u8])) {
        if self.collecting {
            let at = self.start.offset;
            self.end(&[], f);
            self.error.get_or_insert_with(|| {
                format!("the JSON document is cut short: the value at byte {at} is not terminated")
            });
        } else if !self.stack.is_empty() {
            self.error.get_or_insert_with(|| "the JSON document is cut short".to_owned());
        } else if !self.started {
            self.error.get_or_insert_with(|| "the report is empty: expected JSON".to_owned());
        }
    }

    fn begin(&mut self, at: u64, i: usize, from: &mut usize, scalar: bool) {
        self.collecting = true;
        self.scalar = scalar;
        self.start = Position { offset: at, len: 0, line: Some(self.line) };
        *from = i;
    }

    fn carry(&mut self, part: &[u8]) {
        if let Some(big) = &mut self.oversized {
            big.grow(part);
        } else if self.buf.len() + part.len() > self.max {
            let mut big = Oversized::new(self.start, &self.buf);
            big.position.len = self.buf.len() as u64;
            big.grow(part);
            self.buf = Vec::new();
            self.oversized = Some(big);
        } else {
            self.buf.extend_from_slice(part);
        }
    }

    fn end(&mut self, tail: &[u8], f: &mut impl FnMut(Frame<'_>, &[u8])) {
        self.collecting = false;
        if let Some(mut big) = self.oversized.take() {
            big.grow(tail);
            f(Frame::TooLong { position: big.position, head: &big.head }, &self.key);
            return;
        }
        let bytes: &[u8] = if self.buf.is_empty() {
            tail
        } else {
            self.buf.extend_from_slice(tail);
            &self.buf
        };
        let bytes = bytes.trim_ascii_end();
        let position = Position { len: bytes.len() as u64, ..self.start };
        if bytes.len() > self.max {
            f(Frame::TooLong { position, head: &bytes[..bytes.len().min(HEAD)] }, &self.key);
        } else {
            f(Frame::Record { bytes, position }, &self.key);
        }
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Clone)]
    enum Got {
        Rec(String, u64, u64, Option<u64>),
        Long(u64, u64),
    }

    fn collect(frames: &mut Vec<Got>) -> impl FnMut(Frame<'_>) + '_ {
        |frame| match frame {
            Frame::Record { bytes, position } => frames.push(Got::Rec(
                String::from_utf8_lossy(bytes).into_owned(),
                position.offset,
                position.len,
                position.line,
            )),
            Frame::TooLong { position, .. } => frames.push(Got::Long(position.offset, position.len)),
        }
    }

    fn lines(input: &[u8], chunk: usize, max: usize) -> Vec<Got> {
        let mut out = Vec::new();
        let mut l = Lines::new(max);
        for c in input.chunks(chunk.max(1)) {
            l.push(c, &mut collect(&mut out));
        }
        l.finish(&mut collect(&mut out));
        out
    }

    fn array(input: &[u8], chunk: usize, max: usize) -> (Vec<Got>, Option<String>) {
        let mut out = Vec::new();
        let mut a = JsonArray::new(max);
        for c in input.chunks(chunk.max(1)) {
            a.push(c, &mut collect(&mut out));
        }
        a.finish(&mut collect(&mut out));
        (out, a.error().map(str::to_owned))
    }

    fn rec(s: &str, offset: u64, line: u64) -> Got {
        Got::Rec(s.to_owned(), offset, s.len() as u64, Some(line))
    }

    #[test]
    fn lines_have_positions() {
        let input = b"\xEF\xBB\xBFa,b\r\n\nccc\nlast";
        let expected = vec![rec("a,b", 3, 1), rec("", 8, 2), rec("ccc", 9, 3), rec("last", 13, 4)];
        for chunk in 1..input.len() + 1 {
            assert_eq!(lines(input, chunk, 100), expected, "chunk {chunk}");
        }
        assert_eq!(lines(b"", 1, 10), vec![]);
        assert_eq!(lines(b"x\n", 1, 10), vec![rec("x", 0, 1)]);
    }

    #[test]
    fn a_long_line_is_reported_not_buffered() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend(b"\nok2");
        for chunk in [1, 7, 64, 5000] {
            let got = lines(&input, chunk, 100);
            assert_eq!(got, vec![rec("ok", 0, 1), Got::Long(3, 1000), rec("ok2", 1004, 3)], "chunk {chunk}");
        }
    }

    #[test]
    fn array_elements_have_positions() {
        let input = br#" [ {"a": "x]}"}, {"b": [1, {"c": "\""}]},
  3, "s" , null ]  "#;
        let (got, err) = array(input, 1000, 1000);
        assert_eq!(err, None);
        assert_eq!(
            got,
            vec![
                Got::Rec(r#"{"a": "x]}"}"#.into(), 3, 12, Some(1)),
                Got::Rec(r#"{"b": [1, {"c": "\""}]}"#.into(), 17, 23, Some(1)),
                Got::Rec("3".into(), 44, 1, Some(2)),
                Got::Rec(r#""s""#.into(), 47, 3, Some(2)),
                Got::Rec("null".into(), 53, 4, Some(2)),
            ]
        );
        for chunk in 1..input.len() {
            assert_eq!(array(input, chunk, 1000), (got.clone(), None), "chunk {chunk}");
        }
    }

    #[test]
    fn broken_arrays_are_reported() {
        assert_eq!(array(b"", 4, 100).1.as_deref(), Some("expected a JSON array, found no data"));
        assert_eq!(array(b"{\"a\":1}", 4, 100).1.as_deref(), Some("expected a JSON array at byte 0, found '{'"));
        let (got, err) = array(br#"[{"a":1},{"b":"#, 3, 100);
        assert_eq!(got.len(), 2);
        assert_eq!(err.as_deref(), Some("the JSON array is cut short: the element at byte 9 is not terminated"));
        assert_eq!(array(b"[1,2", 3, 100).0.len(), 2);
        assert_eq!(array(b"[1] x", 3, 100).1.as_deref(), Some("unexpected data after the end of the array at byte 4"));
        let big = format!("[\"{}\", 1]", "x".repeat(500));
        assert_eq!(array(big.as_bytes(), 7, 100).0, vec![Got::Long(1, 502), Got::Rec("1".into(), 505, 1, Some(1))]);
    }

    fn nested(input: &[u8], depth: usize, chunk: usize) -> (Vec<(String, String)>, Option<String>) {
        let mut out = Vec::new();
        let mut n = JsonNested::new(depth, 1000);
        let mut f = |frame: Frame<'_>, key: &[u8]| {
            if let Frame::Record { bytes, .. } = frame {
                out.push((String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(bytes).into_owned()));
            }
        };
        for c in input.chunks(chunk) {
            n.push(c, &mut f);
        }
        n.finish(&mut f);
        (out, n.error().map(str::to_owned))
    }

    #[test]
    fn nested_values_with_their_keys() {
        let input = br#"{"1": [{"a": "]}"}], "2" : [ {"b": [1, 2]}, 7 ], "query_status": "ok"}"#;
        let expected = vec![
            ("1".to_owned(), r#"{"a": "]}"}"#.to_owned()),
            ("2".to_owned(), r#"{"b": [1, 2]}"#.to_owned()),
            ("2".to_owned(), "7".to_owned()),
        ];
        for chunk in 1..input.len() {
            assert_eq!(nested(input, 2, chunk), (expected.clone(), None), "chunk {chunk}");
        }
        let bundle = br#"{"type": "bundle", "objects": [{"type": "indicator"}, {"type": "sighting"}]}"#;
        assert_eq!(nested(bundle, 2, 5).0.len(), 2);
        assert_eq!(nested(b"{\"a\": [1,", 2, 3).1.as_deref(), Some("the JSON document is cut short"));
        assert_eq!(
            nested(b"{\"a\": [{\"b\": 1", 2, 3).1.as_deref(),
            Some("the JSON document is cut short: the value at byte 7 is not terminated")
        );
        assert_eq!(nested(b"{]", 2, 3).1.as_deref(), Some("unbalanced JSON at byte 1"));
        assert_eq!(nested(b"  ", 2, 3).1.as_deref(), Some("the report is empty: expected JSON"));
        assert_eq!(nested(b"x", 2, 3).1.as_deref(), Some("expected a JSON object or array at byte 0"));
    }

    proptest! {
        #[test]
        fn chunking_never_changes_nested_values(input in "[\\[\\]{}\",:a\\\\ \n1]{0,120}", chunk in 1usize..20) {
            prop_assert_eq!(nested(input.as_bytes(), 2, chunk), nested(input.as_bytes(), 2, input.len() + 1));
        }

        #[test]
        fn chunking_never_changes_lines(input in proptest::collection::vec(any::<u8>(), 0..400), chunk in 1usize..50, max in 1usize..64) {
            prop_assert_eq!(lines(&input, chunk, max), lines(&input, input.len() + 1, max));
        }

        #[test]
        fn chunking_never_changes_array_elements(input in "[\\[\\]{}\",a\\\\ \n1]{0,200}", chunk in 1usize..50) {
            prop_assert_eq!(array(input.as_bytes(), chunk, 64), array(input.as_bytes(), input.len() + 1, 64));
        }
    }
}
