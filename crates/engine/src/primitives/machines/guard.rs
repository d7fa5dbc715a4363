//! The guard language of state machines: a tokenizer, a recursive-descent
//! parser producing an [`Expr`], and an evaluator over the instance context
//! and the event payload.
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! guard      := or END
//! or         := and ( "||" and )*
//! and        := comparison ( "&&" comparison )*
//! comparison := unary ( ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) unary )?
//! unary      := "!" unary | primary
//! primary    := literal | path | "(" or ")"
//! path       := ( "ctx" | "payload" ) ( "." name | "[" index "]" | "[" string "]" )*
//! literal    := string | number | "true" | "false" | "null"
//! ```
//!
//! Strings take single or double quotes and the escapes `\" \' \\ \/ \n \t
//! \r \b \f \uXXXX` (a surrogate pair for characters beyond the BMP). Numbers
//! are decimal: `-12`, `3.5`, `1e-3`. Comparisons do not chain (`a < b < c`
//! is an error). Errors carry the 0-based *character* position of the
//! offending input; anything left after a complete expression is an error
//! at its position.
//!
//! Semantics (the evaluator never fails):
//! - A path that leads nowhere (a missing key, an index past the end, a step
//!   into a scalar) is `null`; `payload` is `null` when the event has none.
//! - `==` is structural equality. Numbers compare by value whatever their
//!   encoding (`1 == 1.0`); object key order does not matter. Values of
//!   different types are never equal, and `!=` is the negation of `==`.
//! - `< <= > >=` order two numbers, or two strings (by code point). Any other
//!   pair — mismatched types, null, booleans, arrays, objects, NaN — makes
//!   the comparison false.
//! - `&&`, `||`, `!` and the guard's result treat only the boolean `true` as
//!   true; every other value, `null` and `1` and `"yes"` included, is false.

use std::cmp::Ordering;
use std::fmt;

use rmpv::Value;

/// Deepest nesting of parentheses and `!`, so that parsing and evaluation
/// cannot exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// A parse error: where and what.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardError {
    /// 0-based character position in the guard text.
    pub position: usize,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Ctx,
    Payload,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Key(String),
    Index(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The syntax tree of a guard.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `null`, a boolean, a number (integer or float) or a string.
    Literal(Value),
    Path(Root, Vec<Step>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
}

/// A parsed guard, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct Guard {
    expr: Expr,
}

impl Guard {
    pub fn parse(source: &str) -> Result<Guard, GuardError> {
        let tokens = tokenize(source)?;
        let mut p = Parser { tokens, at: 0, depth: 0 };
        let expr = p.or()?;
        let next = p.peek();
        if next.tok != Tok::End {
            return Err(GuardError { position: next.pos, message: format!("unexpected {} after a complete expression", next.tok.describe()) });
        }
        Ok(Guard { expr })
    }

    /// Whether the guard passes for this context and payload.
    pub fn eval(&self, ctx: &Value, payload: &Value) -> bool {
        is_true(&eval(&self.expr, ctx, payload))
    }

    /// A canonical text of the guard: every binary operation parenthesized,
    /// single spaces, strings double-quoted. Two guards with the same tree
    /// have the same canonical text, and it parses back to that tree.
    pub fn canonical(&self) -> String {
        self.expr.to_string()
    }
}

// ----- tokenizer -------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Dot,
    Not,
    And,
    Or,
    Cmp(CmpOp),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("name '{s}'"),
            Tok::Str(s) => format!("string {}", quote(s)),
            Tok::Num(n) => format!("number {}", literal(n)),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Dot => "'.'".into(),
            Tok::Not => "'!'".into(),
            Tok::And => "'&&'".into(),
            Tok::Or => "'||'".into(),
            Tok::Cmp(op) => format!("'{}'", op.symbol()),
            Tok::End => "end of input".into(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// Character position of the token's first character.
    pos: usize,
}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, GuardError> {
    Err(GuardError { position, message: message.into() })
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn tokenize(source: &str) -> Result<Vec<Token>, GuardError> {
    let s: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        let start = i;
        let two = |next: char| s.get(i + 1) == Some(&next);
        let tok = match c {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '.' => Tok::Dot,
            '=' if two('=') => Tok::Cmp(CmpOp::Eq),
            '=' => return err(i, "unexpected '='; comparison is '=='"),
            '!' if two('=') => Tok::Cmp(CmpOp::Ne),
            '!' => Tok::Not,
            '<' if two('=') => Tok::Cmp(CmpOp::Le),
            '<' => Tok::Cmp(CmpOp::Lt),
            '>' if two('=') => Tok::Cmp(CmpOp::Ge),
            '>' => Tok::Cmp(CmpOp::Gt),
            '&' if two('&') => Tok::And,
            '&' => return err(i, "unexpected '&'; logical and is '&&'"),
            '|' if two('|') => Tok::Or,
            '|' => return err(i, "unexpected '|'; logical or is '||'"),
            '"' | '\'' => {
                let (text, end) = string(&s, i)?;
                out.push(Token { tok: Tok::Str(text), pos: start });
                i = end;
                continue;
            }
            c if c.is_ascii_digit() || (c == '-' && s.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let (n, end) = number(&s, i)?;
                out.push(Token { tok: Tok::Num(n), pos: start });
                i = end;
                continue;
            }
            c if is_ident_start(c) => {
                let mut j = i;
                while j < s.len() && is_ident_char(s[j]) {
                    j += 1;
                }
                out.push(Token { tok: Tok::Ident(s[i..j].iter().collect()), pos: start });
                i = j;
                continue;
            }
            c => return err(i, format!("unexpected character {c:?}")),
        };
        i += if matches!(tok, Tok::Cmp(CmpOp::Eq | CmpOp::Ne | CmpOp::Le | CmpOp::Ge) | Tok::And | Tok::Or) { 2 } else { 1 };
        out.push(Token { tok, pos: start });
    }
    out.push(Token { tok: Tok::End, pos: s.len() });
    Ok(out)
}

/// A quoted string starting at `start` (the quote). Returns the decoded text
/// and the position after the closing quote.
fn string(s: &[char], start: usize) -> Result<(String, usize), GuardError> {
    let quote = s[start];
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = s.get(i) else {
            return err(start, format!("unterminated string: no closing {quote} for the quote at position {start}"));
        };
        match c {
            c if c == quote => return Ok((out, i + 1)),
            '\\' => {
                let escape_at = i;
                let e = s.get(i + 1).copied();
                i += 2;
                match e {
                    Some('"') => out.push('"'),
                    Some('\'') => out.push('\''),
                    Some('\\') => out.push('\\'),
                    Some('/') => out.push('/'),
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('u') => {
                        let high = hex4(s, i, escape_at)?;
                        i += 4;
                        let code = if (0xD800..0xDC00).contains(&high) {
                            // A high surrogate must be followed by \u and a low one.
                            if s.get(i) != Some(&'\\') || s.get(i + 1) != Some(&'u') {
                                return err(escape_at, "\\u escape of a high surrogate must be followed by a \\u escape of a low surrogate");
                            }
                            let low = hex4(s, i + 2, i)?;
                            if !(0xDC00..0xE000).contains(&low) {
                                return err(i, "\\u escape after a high surrogate must be a low surrogate (DC00-DFFF)");
                            }
                            i += 6;
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            high
                        };
                        match char::from_u32(code) {
                            Some(ch) => out.push(ch),
                            None => return err(escape_at, "\\u escape of a lone low surrogate is not a character"),
                        }
                    }
                    Some(other) => return err(escape_at, format!("unknown escape '\\{other}'")),
                    None => return err(escape_at, format!("unterminated string: no closing {quote} for the quote at position {start}")),
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

fn hex4(s: &[char], at: usize, escape_at: usize) -> Result<u32, GuardError> {
    let digits: String = s.get(at..at + 4).map(|d| d.iter().collect()).unwrap_or_default();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return err(escape_at, "\\u escape needs four hex digits");
    }
    Ok(u32::from_str_radix(&digits, 16).expect("four hex digits"))
}

/// A number starting at `start`: `-? digits ( . digits )? ( [eE] [+-]? digits )?`.
fn number(s: &[char], start: usize) -> Result<(Value, usize), GuardError> {
    let mut i = start;
    if s[i] == '-' {
        i += 1;
    }
    let digits = |mut j: usize| {
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        j
    };
    i = digits(i);
    let mut float = false;
    if s.get(i) == Some(&'.') {
        let after = digits(i + 1);
        if after == i + 1 {
            return err(i + 1, "expected a digit after the decimal point");
        }
        i = after;
        float = true;
    }
    if matches!(s.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some('+' | '-')) {
            j += 1;
        }
        let after = digits(j);
        if after == j {
            return err(j, "expected a digit in the exponent");
        }
        i = after;
        float = true;
    }
    if s.get(i).is_some_and(|&c| is_ident_char(c)) {
        return err(i, format!("unexpected character {:?} in a number", s[i]));
    }
    let text: String = s[start..i].iter().collect();
    if !float {
        if let Ok(n) = text.parse::<i64>() {
            return Ok((Value::from(n), i));
        }
        if let Ok(n) = text.parse::<u64>() {
            return Ok((Value::from(n), i));
        }
    }
    let f: f64 = text.parse().map_err(|_| GuardError { position: start, message: format!("malformed number {text}") })?;
    if !f.is_finite() {
        return err(start, format!("number {text} is out of range"));
    }
    Ok((Value::F64(f), i))
}

// ----- parser ----------------------------------------------------------------

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at]
    }

    fn next(&mut self) -> Token {
        let t = self.tokens[self.at].clone();
        if t.tok != Tok::End {
            self.at += 1;
        }
        t
    }

    fn nest(&mut self, pos: usize) -> Result<(), GuardError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return err(pos, format!("the guard nests deeper than {MAX_NESTING} levels of parentheses and '!'"));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, GuardError> {
        let mut left = self.and()?;
        while self.peek().tok == Tok::Or {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, GuardError> {
        let mut left = self.comparison()?;
        while self.peek().tok == Tok::And {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, GuardError> {
        let left = self.unary()?;
        let Tok::Cmp(op) = self.peek().tok else { return Ok(left) };
        self.next();
        let right = self.unary()?;
        let next = self.peek();
        if let Tok::Cmp(again) = next.tok {
            return err(next.pos, format!("comparisons do not chain: parenthesize, or join two comparisons with '&&' before '{}'", again.symbol()));
        }
        Ok(Expr::Compare(op, Box::new(left), Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, GuardError> {
        if self.peek().tok == Tok::Not {
            let pos = self.next().pos;
            self.nest(pos)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, GuardError> {
        let t = self.next();
        match t.tok {
            Tok::Num(n) => Ok(Expr::Literal(n)),
            Tok::Str(s) => Ok(Expr::Literal(Value::from(s))),
            Tok::LParen => {
                self.nest(t.pos)?;
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.next();
                if close.tok != Tok::RParen {
                    return err(close.pos, format!("expected ')' to close the '(' at position {}, found {}", t.pos, close.tok.describe()));
                }
                Ok(inner)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Ok(Expr::Literal(Value::Boolean(true))),
                "false" => Ok(Expr::Literal(Value::Boolean(false))),
                "null" => Ok(Expr::Literal(Value::Nil)),
                "ctx" => self.path(Root::Ctx),
                "payload" => self.path(Root::Payload),
                other => err(t.pos, format!("unknown name '{other}': a guard reads ctx.<path> or payload.<path>, or uses true, false, null")),
            },
            other => err(t.pos, format!("expected a value, a path or '(', found {}", other.describe())),
        }
    }

    fn path(&mut self, root: Root) -> Result<Expr, GuardError> {
        let mut steps = Vec::new();
        loop {
            match self.peek().tok {
                Tok::Dot => {
                    self.next();
                    let t = self.next();
                    match t.tok {
                        Tok::Ident(name) => steps.push(Step::Key(name)),
                        other => {
                            return err(
                                t.pos,
                                format!("expected a name after '.', found {}; use [n] for an index or [\"...\"] for other keys", other.describe()),
                            );
                        }
                    }
                }
                Tok::LBracket => {
                    let open = self.next().pos;
                    let t = self.next();
                    match t.tok {
                        Tok::Str(key) => steps.push(Step::Key(key)),
                        Tok::Num(Value::Integer(n)) if n.as_u64().is_some() => steps.push(Step::Index(n.as_u64().unwrap())),
                        other => {
                            return err(t.pos, format!("expected an index (a non-negative integer) or a quoted key after '[', found {}", other.describe()));
                        }
                    }
                    let close = self.next();
                    if close.tok != Tok::RBracket {
                        return err(close.pos, format!("expected ']' to close the '[' at position {open}, found {}", close.tok.describe()));
                    }
                }
                _ => return Ok(Expr::Path(root, steps)),
            }
        }
    }
}

// ----- evaluation ------------------------------------------------------------

static NULL: Value = Value::Nil;

/// What an expression evaluates to: a value it points into, or a new one.
enum Val<'a> {
    Ref(&'a Value),
    Bool(bool),
}

impl Val<'_> {
    fn value(&self) -> &Value {
        match self {
            Val::Ref(v) => v,
            Val::Bool(true) => &Value::Boolean(true),
            Val::Bool(false) => &Value::Boolean(false),
        }
    }
}

fn is_true(v: &Val<'_>) -> bool {
    matches!(v.value(), Value::Boolean(true))
}

fn eval<'a>(e: &'a Expr, ctx: &'a Value, payload: &'a Value) -> Val<'a> {
    match e {
        Expr::Literal(v) => Val::Ref(v),
        Expr::Path(root, steps) => Val::Ref(resolve(if *root == Root::Ctx { ctx } else { payload }, steps)),
        Expr::Not(inner) => Val::Bool(!is_true(&eval(inner, ctx, payload))),
        Expr::And(a, b) => Val::Bool(is_true(&eval(a, ctx, payload)) && is_true(&eval(b, ctx, payload))),
        Expr::Or(a, b) => Val::Bool(is_true(&eval(a, ctx, payload)) || is_true(&eval(b, ctx, payload))),
        Expr::Compare(op, a, b) => {
            let (a, b) = (eval(a, ctx, payload), eval(b, ctx, payload));
            let (a, b) = (a.value(), b.value());
            Val::Bool(match op {
                CmpOp::Eq => equal(a, b),
                CmpOp::Ne => !equal(a, b),
                CmpOp::Lt => order(a, b) == Some(Ordering::Less),
                CmpOp::Le => matches!(order(a, b), Some(Ordering::Less | Ordering::Equal)),
                CmpOp::Gt => order(a, b) == Some(Ordering::Greater),
                CmpOp::Ge => matches!(order(a, b), Some(Ordering::Greater | Ordering::Equal)),
            })
        }
    }
}

/// Follows `steps` from `root`; `null` where the path leads nowhere.
pub fn resolve<'a>(root: &'a Value, steps: &[Step]) -> &'a Value {
    let mut cur = root;
    for step in steps {
        cur = match (step, cur) {
            (Step::Key(k), Value::Map(m)) => match m.iter().find(|(key, _)| key.as_str() == Some(k)) {
                Some((_, v)) => v,
                None => return &NULL,
            },
            (Step::Index(i), Value::Array(a)) => match usize::try_from(*i).ok().and_then(|i| a.get(i)) {
                Some(v) => v,
                None => return &NULL,
            },
            _ => return &NULL,
        };
    }
    cur
}

#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Integer(n) => n.as_i64().map(|i| Num::Int(i as i128)).or_else(|| n.as_u64().map(|u| Num::Int(u as i128))),
        Value::F32(f) => Some(Num::Float(*f as f64)),
        Value::F64(f) => Some(Num::Float(*f)),
        // A bigint in a context or payload (see `json::BIGINT_EXT`).
        other => crate::primitives::json::bigint(other).map(|i| Num::Int(i as i128)),
    }
}

/// Exact numeric order of an integer and a float.
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f.fract() == 0.0 && f.abs() < 1.0e38 {
        return Some(i.cmp(&(f as i128)));
    }
    // f is infinite, huge, or not integral (so |f| < 2^53): rounding i to the
    // nearest f64 keeps the order and cannot make the two equal.
    (i as f64).partial_cmp(&f)
}

fn num_cmp(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Structural equality (see the module comment).
pub fn equal(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return num_cmp(x, y) == Some(Ordering::Equal);
    }
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Boolean(x), Value::Boolean(y)) => x == y,
        (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
        (Value::Binary(x), Value::Binary(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q)),
        (Value::Map(x), Value::Map(y)) => {
            let in_order = || x.iter().zip(y).all(|((k, v), (k2, v2))| equal(k, k2) && equal(v, v2));
            let within =
                |p: &[(Value, Value)], q: &[(Value, Value)]| p.iter().all(|(k, v)| q.iter().find(|(k2, _)| equal(k, k2)).is_some_and(|(_, v2)| equal(v, v2)));
            x.len() == y.len() && (in_order() || (within(x, y) && within(y, x)))
        }
        (Value::Ext(t, x), Value::Ext(u, y)) => t == u && x == y,
        _ => false,
    }
}

/// The order of two numbers or two strings; `None` for anything else.
pub fn order(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return num_cmp(x, y);
    }
    match (a, b) {
        // UTF-8 byte order is code point order.
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        _ => None,
    }
}

// ----- canonical text --------------------------------------------------------

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

fn literal(v: &Value) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Boolean(b) => b.to_string(),
        Value::Integer(n) => n.to_string(),
        other if crate::primitives::json::bigint(other).is_some() => crate::primitives::json::bigint(other).unwrap().to_string(),
        // Debug prints the shortest text that reads back as the same f64.
        Value::F64(f) => format!("{f:?}"),
        Value::String(s) => quote(s.as_str().unwrap_or_default()),
        other => other.to_string(),
    }
}

fn is_name(k: &str) -> bool {
    k.chars().next().is_some_and(is_ident_start) && k.chars().all(is_ident_char)
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Literal(v) => f.write_str(&literal(v)),
            Expr::Path(root, steps) => {
                f.write_str(if *root == Root::Ctx { "ctx" } else { "payload" })?;
                for step in steps {
                    match step {
                        Step::Key(k) if is_name(k) => write!(f, ".{k}")?,
                        Step::Key(k) => write!(f, "[{}]", quote(k))?,
                        Step::Index(i) => write!(f, "[{i}]")?,
                    }
                }
                Ok(())
            }
            Expr::Not(inner) => write!(f, "!{inner}"),
            Expr::And(a, b) => write!(f, "({a} && {b})"),
            Expr::Or(a, b) => write!(f, "({a} || {b})"),
            Expr::Compare(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(json: &str) -> Value {
        let j: serde_json::Value = serde_json::from_str(json).unwrap();
        crate::primitives::json::decode(&rmp_serde::to_vec(&j).unwrap()).unwrap()
    }

    fn parse(s: &str) -> Expr {
        Guard::parse(s).unwrap_or_else(|e| panic!("{s}: {e:?}")).expr
    }

    fn fails_at(s: &str) -> (usize, String) {
        let e = Guard::parse(s).expect_err(s);
        (e.position, e.message)
    }

    fn check(guard: &str, ctx: &str, payload: &str) -> bool {
        Guard::parse(guard).unwrap_or_else(|e| panic!("{guard}: {e:?}")).eval(&v(ctx), &v(payload))
    }

    fn path(root: Root, steps: &[Step]) -> Box<Expr> {
        Box::new(Expr::Path(root, steps.to_vec()))
    }

    #[test]
    fn parses_paths_with_names_indexes_and_quoted_keys() {
        assert_eq!(parse("ctx"), Expr::Path(Root::Ctx, vec![]));
        assert_eq!(
            parse(r#"payload.items[2]["odd key"].$x_1"#),
            Expr::Path(Root::Payload, vec![Step::Key("items".into()), Step::Index(2), Step::Key("odd key".into()), Step::Key("$x_1".into())])
        );
        // Keywords are ordinary names after a dot.
        assert_eq!(parse("ctx.null.true"), Expr::Path(Root::Ctx, vec![Step::Key("null".into()), Step::Key("true".into())]));
    }

    #[test]
    fn parses_literals() {
        assert_eq!(parse("null"), Expr::Literal(Value::Nil));
        assert_eq!(parse("true"), Expr::Literal(Value::Boolean(true)));
        assert_eq!(parse("-42"), Expr::Literal(Value::from(-42)));
        assert_eq!(parse("18446744073709551615"), Expr::Literal(Value::from(u64::MAX)));
        assert_eq!(parse("1e3"), Expr::Literal(Value::F64(1000.0)));
        assert_eq!(parse("2.5E-1"), Expr::Literal(Value::F64(0.25)));
        assert_eq!(parse("'single'"), Expr::Literal(Value::from("single")));
    }

    #[test]
    fn decodes_every_escape() {
        assert_eq!(parse(r#""a\"b\\c\nd\te\/f\rg\bh\fi""#), Expr::Literal(Value::from("a\"b\\c\nd\te/f\rg\u{8}h\u{c}i")));
        assert_eq!(parse(r#"'it\'s'"#), Expr::Literal(Value::from("it's")));
        assert_eq!(parse(r#""\u00e9\u4E2D""#), Expr::Literal(Value::from("é中")));
        assert_eq!(parse(r#""\ud83d\ude00""#), Expr::Literal(Value::from("😀")));
        assert_eq!(parse("\"raw ü 😀\""), Expr::Literal(Value::from("raw ü 😀")));
    }

    #[test]
    fn precedence_is_not_then_comparison_then_and_then_or() {
        let a = || Box::new(Expr::Compare(CmpOp::Eq, path(Root::Ctx, &[Step::Key("a".into())]), Box::new(Expr::Literal(Value::from(1)))));
        let b = || path(Root::Ctx, &[Step::Key("b".into())]);
        let c = || Box::new(Expr::Not(path(Root::Payload, &[Step::Key("c".into())])));
        assert_eq!(parse("ctx.a == 1 || ctx.b && !payload.c"), Expr::Or(a(), Box::new(Expr::And(b(), c()))));
        assert_eq!(parse("(ctx.a == 1 || ctx.b) && !payload.c"), Expr::And(Box::new(Expr::Or(a(), b())), c()));
        // && and || associate to the left.
        assert_eq!(parse("ctx.b && ctx.b && ctx.b"), Expr::And(Box::new(Expr::And(b(), b())), b()));
    }

    #[test]
    fn errors_name_the_position() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "found end of input"),
            ("ctx.a ==", 8, "found end of input"),
            ("ctx.a = 1", 6, "'=='"),
            ("ctx.a & 1", 6, "'&&'"),
            ("ctx.a | 1", 6, "'||'"),
            ("ctx.a == 1 )", 11, "unexpected ')' after a complete expression"),
            ("ctx.a == 1 ctx.b", 11, "unexpected name 'ctx'"),
            ("(ctx.a == 1", 11, "expected ')' to close the '(' at position 0"),
            ("ctx.", 4, "expected a name after '.'"),
            ("ctx.0", 4, "expected a name after '.'"),
            ("ctx[-1]", 4, "expected an index"),
            ("ctx[1.5]", 4, "expected an index"),
            ("ctx[1", 5, "expected ']'"),
            ("state == 1", 0, "unknown name 'state'"),
            ("ctx.a == 'abc", 9, "unterminated string"),
            (r#"ctx.a == "a\qb""#, 11, "unknown escape '\\q'"),
            (r#"ctx.a == "\u12""#, 10, "four hex digits"),
            (r#""\ud83d""#, 1, "low surrogate"),
            (r#""\ude00""#, 1, "lone low surrogate"),
            ("1.", 2, "digit after the decimal point"),
            ("1e+", 3, "digit in the exponent"),
            ("12abc", 2, "in a number"),
            ("1e999", 0, "out of range"),
            ("ctx.a < 1 < 2", 10, "comparisons do not chain"),
            ("ctx.a # 1", 6, "unexpected character '#'"),
            ("ü == #", 0, "unexpected character 'ü'"),
            ("'ü' == #", 7, "unexpected character '#'"),
        ];
        for (src, at, what) in cases {
            let (pos, msg) = fails_at(src);
            assert_eq!(pos, *at, "{src}: {msg}");
            assert!(msg.contains(what), "{src}: {msg}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}true{}", "(".repeat(MAX_NESTING + 1), ")".repeat(MAX_NESTING + 1));
        let (pos, msg) = fails_at(&deep);
        assert_eq!(pos, MAX_NESTING);
        assert!(msg.contains("nests deeper"), "{msg}");
        let ok = format!("{}true{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(Guard::parse(&ok).is_ok());
        assert!(Guard::parse(&"!".repeat(MAX_NESTING + 1)).is_err());
    }

    #[test]
    fn paths_read_the_context_and_the_payload() {
        assert!(check("ctx.user.name == 'ada'", r#"{"user":{"name":"ada"}}"#, "null"));
        assert!(check("payload.items[1] == 20", "{}", r#"{"items":[10,20]}"#));
        assert!(check(r#"ctx["odd key"] == true"#, r#"{"odd key":true}"#, "null"));
        assert!(check("ctx.a == payload.a", r#"{"a":[1,{"b":2}]}"#, r#"{"a":[1,{"b":2}]}"#));
    }

    #[test]
    fn missing_paths_are_null() {
        assert!(check("ctx.nope == null", "{}", "null"));
        assert!(check("ctx.a.b.c == null", r#"{"a":1}"#, "null"));
        assert!(check("ctx.list[5] == null", r#"{"list":[1]}"#, "null"));
        assert!(check("ctx.list.x == null", r#"{"list":[1]}"#, "null"));
        assert!(check("payload.x == null", "{}", "null"));
        assert!(check("payload == null", "{}", "null"));
        assert!(!check("ctx.nope != null", "{}", "null"));
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(check("ctx.n == 1.0", r#"{"n":1}"#, "null"));
        assert!(check("ctx.n < 1.5 && ctx.n >= 1 && ctx.n <= 1 && ctx.n > 0.5", r#"{"n":1}"#, "null"));
        assert!(check("ctx.big > 9007199254740992", r#"{"big":9007199254740993}"#, "null"));
        assert!(check("ctx.big == 18446744073709551615", r#"{"big":18446744073709551615}"#, "null"));
        assert!(check("ctx.neg < -1e300", r#"{"neg":-1e301}"#, "null"));
        assert!(check("-3 < 2", "{}", "null"));
    }

    #[test]
    fn strings_order_by_code_point() {
        assert!(check("ctx.s < 'b'", r#"{"s":"abc"}"#, "null"));
        assert!(check("'Z' < 'a'", "{}", "null"));
        assert!(check("'é' > 'z'", "{}", "null"));
        assert!(check("ctx.s >= 'abc' && ctx.s <= 'abc'", r#"{"s":"abc"}"#, "null"));
    }

    #[test]
    fn mismatched_types_are_unequal_and_unordered() {
        for (a, b) in [("1", "'1'"), ("true", "1"), ("null", "0"), ("null", "false"), ("ctx.arr", "ctx.obj"), ("'a'", "null")] {
            assert!(!check(&format!("{a} == {b}"), r#"{"arr":[],"obj":{}}"#, "null"), "{a} == {b}");
            assert!(check(&format!("{a} != {b}"), r#"{"arr":[],"obj":{}}"#, "null"), "{a} != {b}");
            for op in ["<", "<=", ">", ">="] {
                assert!(!check(&format!("{a} {op} {b}"), r#"{"arr":[],"obj":{}}"#, "null"), "{a} {op} {b}");
                assert!(!check(&format!("{b} {op} {a}"), r#"{"arr":[],"obj":{}}"#, "null"), "{b} {op} {a}");
            }
        }
        // Booleans, nulls, arrays and objects are equal to themselves but not ordered.
        assert!(check("true == true && null == null", "{}", "null"));
        assert!(!check("true >= true", "{}", "null"));
        assert!(!check("null <= null", "{}", "null"));
    }

    #[test]
    fn object_equality_ignores_key_order() {
        assert!(check("ctx.a == payload.b", r#"{"a":{"x":1,"y":[true]}}"#, r#"{"b":{"y":[true],"x":1.0}}"#));
        assert!(!check("ctx.a == payload.b", r#"{"a":{"x":1}}"#, r#"{"b":{"x":1,"y":2}}"#));
    }

    #[test]
    fn only_true_is_true() {
        assert!(check("ctx.ok", r#"{"ok":true}"#, "null"));
        for falsy in ["1", "\"yes\"", "{}", "[]", "null", "false"] {
            let ctx = format!(r#"{{"ok":{falsy}}}"#);
            assert!(!check("ctx.ok", &ctx, "null"), "{falsy}");
            assert!(check("!ctx.ok", &ctx, "null"), "{falsy}");
            assert!(!check("ctx.ok && true", &ctx, "null"), "{falsy}");
            assert!(check("ctx.ok || true", &ctx, "null"), "{falsy}");
        }
        assert!(!check("ctx.missing", "{}", "null"));
    }

    #[test]
    fn logic_follows_truth_tables() {
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(check(&format!("{a} && {b}"), "{}", "null"), a && b);
            assert_eq!(check(&format!("{a} || {b}"), "{}", "null"), a || b);
            assert_eq!(check(&format!("!{a} || !!{b}"), "{}", "null"), !a || b);
        }
    }

    #[test]
    fn canonical_text_ignores_layout() {
        let a = Guard::parse("ctx.a>1&&payload.b=='x'").unwrap();
        let b = Guard::parse(" ( ctx . a > 1 )\n&& payload[\"b\"] == \"x\" ").unwrap();
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), r#"((ctx.a > 1) && (payload.b == "x"))"#);
        assert_ne!(a.canonical(), Guard::parse("ctx.a>=1&&payload.b=='x'").unwrap().canonical());
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::F64),
            "[a-c]{0,3}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(("[a-c]{1,2}", inner), 0..4).prop_map(|kv| Value::Map(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())),
            ]
        })
    }

    fn arb_literal() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Nil),
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::F64),
            "\\PC{0,6}".prop_map(Value::from),
            "[\\x00-\\x1f\"'\\\\]{0,4}".prop_map(Value::from),
        ]
    }

    fn arb_expr() -> impl Strategy<Value = Expr> {
        let step = prop_oneof!["[a-zA-Z_$][a-zA-Z0-9_$]{0,4}".prop_map(Step::Key), "\\PC{0,4}".prop_map(Step::Key), (0u64..1000).prop_map(Step::Index),];
        let leaf = prop_oneof![
            arb_literal().prop_map(Expr::Literal),
            (prop_oneof![Just(Root::Ctx), Just(Root::Payload)], prop::collection::vec(step, 0..4)).prop_map(|(r, s)| Expr::Path(r, s)),
        ];
        leaf.prop_recursive(6, 48, 2, |inner| {
            let op = prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne), Just(CmpOp::Lt), Just(CmpOp::Le), Just(CmpOp::Gt), Just(CmpOp::Ge)];
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                (op, inner.clone(), inner).prop_map(|(op, a, b)| Expr::Compare(op, Box::new(a), Box::new(b))),
            ]
        })
    }

    proptest! {
        #[test]
        fn canonical_text_parses_back_to_the_same_tree(e in arb_expr()) {
            let text = e.to_string();
            let parsed = Guard::parse(&text).map_err(|err| TestCaseError::fail(format!("{text}: {err:?}")))?;
            prop_assert_eq!(parsed.expr, e);
        }

        #[test]
        fn any_input_parses_or_fails_within_it(s in "\\PC{0,40}") {
            if let Err(e) = Guard::parse(&s) {
                prop_assert!(e.position <= s.chars().count(), "{:?} at {} of {:?}", e.message, e.position, s);
            }
        }

        #[test]
        fn guard_like_input_parses_or_fails_within_it(s in "[ctxpaylod.\\[\\]0-9'\"\\\\u=!<>&|() -]{0,40}") {
            if let Err(e) = Guard::parse(&s) {
                prop_assert!(e.position <= s.chars().count(), "{:?} at {} of {:?}", e.message, e.position, s);
            }
        }

        #[test]
        fn evaluation_is_total_and_consistent(e in arb_expr(), ctx in arb_value(), payload in arb_value()) {
            let g = Guard { expr: e.clone() };
            let r = g.eval(&ctx, &payload);
            prop_assert_eq!(Guard { expr: Expr::Not(Box::new(e)) }.eval(&ctx, &payload), !r);
        }

        #[test]
        fn equality_is_reflexive_and_symmetric(a in arb_value(), b in arb_value()) {
            let nan_free = |v: &Value| !format!("{v:?}").contains("NaN");
            if nan_free(&a) {
                prop_assert!(equal(&a, &a));
            }
            prop_assert_eq!(equal(&a, &b), equal(&b, &a));
            prop_assert_eq!(order(&a, &b), order(&b, &a).map(Ordering::reverse));
        }
    }
}
