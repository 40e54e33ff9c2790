//! Reads the original's block-spec pickles (docs/original.md §3.1: a dict from layer name to a
//! NumPy int array of shape `[C, 2]`, row `[bh, bw]`).
//!
//! A small pickle machine for protocols 2–5 that builds NumPy arrays itself. The only globals
//! it accepts are NumPy's array and dtype reconstructors (`numpy.core…` as NumPy 1.x writes
//! them, `numpy._core…` as 2.x does) and `_codecs.encode` (how protocol 2 stores bytes); any
//! other global is refused where it appears. Nothing is ever imported or executed.
//!
//! Robustness: every length is checked against the bytes left, memo indices are bounded by
//! the input size, nesting is limited to [`MAX_DEPTH`] and copies made by memo lookups to a
//! budget proportional to the input, so no input makes the reader panic, recurse deeply or
//! allocate much more than its own size.

use std::collections::BTreeMap;

use ksnn_formats::spec::Block;
use thiserror::Error;

/// Why a pickle was refused.
#[derive(Debug, Error, PartialEq)]
pub enum PickleError {
    /// The pickle itself is broken, hostile or uses something this reader does not support.
    #[error("byte {offset} ({opcode}): {problem}")]
    At {
        /// Byte offset of the opcode in the file.
        offset: usize,
        /// The opcode's name (`BINUNICODE`, …).
        opcode: &'static str,
        /// What is wrong there.
        problem: String,
    },
    /// The pickle decodes, but one layer's value is not a `[C, 2]` array of block sizes.
    #[error("layer `{layer}`: {problem}")]
    Layer {
        /// The layer name the pickle keys.
        layer: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// The pickle decodes, but not to a dict of layer name → array.
    #[error("not a block spec: {0}")]
    Shape(String),
}

/// Deepest nesting of tuples, lists and dicts accepted (a spec needs about 4).
pub const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(&'static str),
    /// A NumPy array: dims, dtype string (`<i4`, `>i8`, …), Fortran order, raw bytes.
    Array {
        dims: Vec<usize>,
        dtype: String,
        fortran: bool,
        data: Vec<u8>,
    },
    Dtype(String),
    Mark,
}

const RECONSTRUCT: [&str; 2] = [
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
];
const FROMBUFFER: [&str; 2] = [
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
];
const NDARRAY: &str = "numpy.ndarray";
const DTYPE: &str = "numpy.dtype";
const ENCODE: &str = "_codecs.encode";

fn allowed(name: &str) -> Option<&'static str> {
    RECONSTRUCT
        .iter()
        .chain(&FROMBUFFER)
        .chain(&[NDARRAY, DTYPE, ENCODE])
        .find(|&&a| a == name)
        .copied()
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        0x80 => "PROTO",
        0x95 => "FRAME",
        b'.' => "STOP",
        b'}' => "EMPTY_DICT",
        b']' => "EMPTY_LIST",
        b')' => "EMPTY_TUPLE",
        b'(' => "MARK",
        b'N' => "NONE",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'M' => "BININT2",
        0x8a => "LONG1",
        b'G' => "BINFLOAT",
        b'X' => "BINUNICODE",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        b'U' => "SHORT_BINSTRING",
        b'C' => "SHORT_BINBYTES",
        b'B' => "BINBYTES",
        0x8e => "BINBYTES8",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        0x94 => "MEMOIZE",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        b'h' => "BINGET",
        b'j' => "LONG_BINGET",
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b't' => "TUPLE",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        b'R' => "REDUCE",
        0x81 => "NEWOBJ",
        b'b' => "BUILD",
        b's' => "SETITEM",
        b'u' => "SETITEMS",
        b'a' => "APPEND",
        b'e' => "APPENDS",
        _ => "unknown opcode",
    }
}

/// Values on the stack and in the memo carry their nesting depth.
type Item = (Value, usize);

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset and name of the opcode being run, for errors.
    op_at: usize,
    op_name: &'static str,
    stack: Vec<Item>,
    memo: BTreeMap<u64, Item>,
    /// Values and bytes that memo copies may still make.
    budget: std::cell::Cell<usize>,
}

/// How many values and bytes a copy of `v` makes (recursion bounded by [`MAX_DEPTH`]).
fn weight(v: &Value) -> usize {
    1 + match v {
        Value::Str(s) | Value::Dtype(s) => s.len(),
        Value::Bytes(b) | Value::Array { data: b, .. } => b.len(),
        Value::Tuple(x) | Value::List(x) => x.iter().map(weight).sum(),
        Value::Dict(x) => x.iter().map(|(k, v)| weight(k) + weight(v)).sum(),
        _ => 0,
    }
}

impl<'a> Machine<'a> {
    fn err(&self, problem: impl Into<String>) -> PickleError {
        PickleError::At {
            offset: self.op_at,
            opcode: self.op_name,
            problem: problem.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let left = self.bytes.len() - self.pos;
        if n > left {
            return Err(self.err(format!(
                "truncated: {n} bytes expected, {left} left (file is {} bytes)",
                self.bytes.len()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A little-endian unsigned integer of `n` ≤ 8 bytes.
    fn u(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    /// A length prefix of `n` bytes, checked against the bytes left.
    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.u(n)?;
        let left = self.bytes.len() - self.pos;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= left)
            .ok_or_else(|| self.err(format!("truncated: length {v} but {left} bytes left")))
    }

    /// A copy of `item`, paid from the copy budget.
    fn charge(&self, item: &Item) -> Result<Item, PickleError> {
        let w = weight(&item.0);
        if w > self.budget.get() {
            return Err(self.err("memo copies exceed the size budget"));
        }
        self.budget.set(self.budget.get() - w);
        Ok(item.clone())
    }

    fn push(&mut self, v: Value) {
        self.stack.push((v, 0));
    }

    fn pop(&mut self) -> Result<Item, PickleError> {
        match self.stack.pop() {
            Some((Value::Mark, _)) => Err(self.err("unexpected MARK on the stack")),
            Some(item) => Ok(item),
            None => Err(self.err("stack underflow")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Item>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|(v, _)| matches!(v, Value::Mark))
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Pushes a container holding `items`, one level deeper than its deepest item.
    fn nest(&mut self, items: Vec<Item>, make: fn(Vec<Value>) -> Value) -> Result<(), PickleError> {
        let depth = 1 + items.iter().map(|i| i.1).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested more than {MAX_DEPTH} deep")));
        }
        self.stack
            .push((make(items.into_iter().map(|i| i.0).collect()), depth));
        Ok(())
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| self.err("invalid UTF-8"))?;
        Ok(Value::Str(s.to_string()))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("truncated: unterminated line"))?;
        self.pos += n + 1;
        Ok(String::from_utf8_lossy(&rest[..n]).into_owned())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        let full = format!("{module}.{name}");
        let g = allowed(&full).ok_or_else(|| {
            self.err(format!(
                "refusing global `{full}`: a block-spec pickle may only name NumPy's array \
                 and dtype reconstructors"
            ))
        })?;
        self.push(Value::Global(g));
        Ok(())
    }

    fn dims(&self, shape: &Value) -> Result<Vec<usize>, PickleError> {
        let Value::Tuple(shape) = shape else {
            return Err(self.err("array shape is not a tuple"));
        };
        shape
            .iter()
            .map(|d| match d {
                Value::Int(v) => usize::try_from(*v).map_err(|_| self.err("negative dimension")),
                _ => Err(self.err("array dimension is not an integer")),
            })
            .collect()
    }

    fn reduce(&self, f: Value, args: Value) -> Result<Value, PickleError> {
        let (Value::Global(name), Value::Tuple(args)) = (f, args) else {
            return Err(self.err("call of something that is not an allowed global"));
        };
        match (name, args.as_slice()) {
            // `_reconstruct(ndarray, (0,), b'b')`: an empty array that BUILD fills in.
            (n, [Value::Global(NDARRAY), ..]) if RECONSTRUCT.contains(&n) => Ok(Value::Array {
                dims: Vec::new(),
                dtype: String::new(),
                fortran: false,
                data: Vec::new(),
            }),
            // Protocol 5: `_frombuffer(buffer, dtype, shape, order)`.
            (
                n,
                [
                    Value::Bytes(data),
                    Value::Dtype(dtype),
                    shape,
                    Value::Str(order),
                ],
            ) if FROMBUFFER.contains(&n) => Ok(Value::Array {
                dims: self.dims(shape)?,
                dtype: dtype.clone(),
                fortran: order == "F",
                data: data.clone(),
            }),
            // `dtype('i4', False, True)`; BUILD adds the byte order.
            (DTYPE, [Value::Str(s), ..]) => Ok(Value::Dtype(s.clone())),
            // Protocol 2 writes bytes as `_codecs.encode(latin-1 text, 'latin1')`.
            (ENCODE, [Value::Str(s), Value::Str(enc)]) if enc == "latin1" || enc == "latin-1" => s
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| self.err("non-latin-1 bytes")))
                .collect::<Result<_, _>>()
                .map(Value::Bytes),
            (n, _) => Err(self.err(format!("unexpected arguments for `{n}`"))),
        }
    }

    fn build(&self, target: Value, state: Value) -> Result<Value, PickleError> {
        match (target, state) {
            // dtype state: `(3, '<', None, None, None, -1, -1, 0)`.
            (Value::Dtype(t), Value::Tuple(s)) => {
                let order = match s.get(1) {
                    Some(Value::Str(e)) if e == ">" => ">",
                    Some(Value::Str(e)) if e == "|" => "|",
                    _ => "<",
                };
                Ok(Value::Dtype(format!("{order}{t}")))
            }
            // ndarray state: `(version, shape, dtype, is_fortran, raw bytes)`.
            (Value::Array { .. }, Value::Tuple(s)) => match s.as_slice() {
                [
                    _,
                    shape,
                    Value::Dtype(dtype),
                    Value::Bool(fortran),
                    Value::Bytes(data),
                ] => Ok(Value::Array {
                    dims: self.dims(shape)?,
                    dtype: dtype.clone(),
                    fortran: *fortran,
                    data: data.clone(),
                }),
                [_, _, _, _, Value::List(_)] => Err(self.err("object arrays are not block specs")),
                _ => Err(self.err("unexpected ndarray state")),
            },
            _ => Err(self.err("BUILD on something that is not an array or dtype")),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            self.op_name = "end of input";
            let op = self.take(1)?[0];
            self.op_name = opcode_name(op);
            match op {
                0x80 => {
                    let v = self.u(1)?;
                    if !(2..=5).contains(&v) {
                        return Err(self.err(format!("protocol {v} (ksnn reads 2 to 5)")));
                    }
                }
                0x95 => {
                    self.u(8)?;
                }
                0x98 => {} // READONLY_BUFFER: the in-band bytes below are read either way.
                0x97 => return Err(self.err("out-of-band buffers are not supported")),
                b'.' => {
                    let (v, _) = self.pop()?;
                    return Ok(v);
                }
                b'}' => self.push(Value::Dict(Vec::new())),
                b']' => self.push(Value::List(Vec::new())),
                b')' => self.push(Value::Tuple(Vec::new())),
                b'(' => self.push(Value::Mark),
                b'N' => self.push(Value::None),
                0x88 => self.push(Value::Bool(true)),
                0x89 => self.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u(4)? as u32 as i32;
                    self.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u(1)?;
                    self.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.u(2)?;
                    self.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.len(1)?;
                    if n > 8 {
                        return Err(self.err("integer wider than 64 bits"));
                    }
                    let raw = self.u(n)?;
                    // Two's complement over n bytes.
                    let shift = 64 - 8 * n as u32;
                    let v = if n == 0 {
                        0
                    } else {
                        ((raw << shift) as i64) >> shift
                    };
                    self.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.push(Value::Float(v));
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        b'X' => 4,
                        0x8c => 1,
                        _ => 8,
                    };
                    let n = self.len(width)?;
                    let v = self.text(n)?;
                    self.push(v);
                }
                b'U' => {
                    let n = self.len(1)?;
                    let b = self.take(n)?;
                    self.push(Value::Str(b.iter().map(|&c| char::from(c)).collect()));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.len(width)?;
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(b));
                }
                0x94 | b'q' | b'r' => {
                    let i = match op {
                        0x94 => self.memo.len() as u64,
                        b'q' => self.u(1)?,
                        _ => self.u(4)?,
                    };
                    let top = match self.stack.last() {
                        Some((Value::Mark, _)) | None => {
                            return Err(self.err("nothing to memoize"));
                        }
                        Some(top) => top,
                    };
                    let top = self.charge(top)?;
                    self.memo.insert(i, top);
                }
                b'h' | b'j' => {
                    let i = self.u(if op == b'h' { 1 } else { 4 })?;
                    let item = self
                        .memo
                        .get(&i)
                        .ok_or_else(|| self.err(format!("memo entry {i} was never set")))?;
                    let item = self.charge(item)?;
                    self.stack.push(item);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(&module, &name)?;
                }
                0x93 => {
                    let (name, _) = self.pop()?;
                    let (module, _) = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (module, name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    self.global(&m, &n)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.nest(items, Value::Tuple)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.nest(items, Value::Tuple)?;
                }
                b'R' | 0x81 => {
                    let (args, _) = self.pop()?;
                    let (f, _) = self.pop()?;
                    let v = self.reduce(f, args)?;
                    self.push(v);
                }
                b'b' => {
                    let (state, _) = self.pop()?;
                    let (target, _) = self.pop()?;
                    let v = self.build(target, state)?;
                    self.push(v);
                }
                b's' | b'u' | b'a' | b'e' => {
                    let items = match op {
                        b's' => {
                            let v = self.pop()?;
                            let k = self.pop()?;
                            vec![k, v]
                        }
                        b'a' => vec![self.pop()?],
                        _ => self.pop_mark()?,
                    };
                    let child = items.iter().map(|i| i.1).max().unwrap_or(0);
                    if child + 1 > MAX_DEPTH {
                        return Err(self.err(format!("nested more than {MAX_DEPTH} deep")));
                    }
                    let dict = matches!(op, b's' | b'u');
                    if dict && items.len() % 2 != 0 {
                        return Err(self.err("odd number of dict items"));
                    }
                    let mut values = items.into_iter().map(|i| i.0);
                    match self.stack.last_mut() {
                        Some((Value::Dict(d), depth)) if dict => {
                            *depth = (*depth).max(child + 1);
                            while let (Some(k), Some(v)) = (values.next(), values.next()) {
                                d.push((k, v));
                            }
                        }
                        Some((Value::List(l), depth)) if !dict => {
                            *depth = (*depth).max(child + 1);
                            l.extend(values);
                        }
                        _ => {
                            let want = if dict { "dict" } else { "list" };
                            return Err(self.err(format!("no {want} to add items to")));
                        }
                    }
                }
                other => return Err(self.err(format!("opcode 0x{other:02x} is not supported"))),
            }
        }
    }
}

/// The `[C, 2]` rows of an integer array or of a list of pairs.
fn rows(layer: &str, v: &Value) -> Result<Vec<Block>, PickleError> {
    let bad = |problem: String| PickleError::Layer {
        layer: layer.into(),
        problem,
    };
    let side =
        |x: i64| u16::try_from(x).map_err(|_| bad(format!("block side {x} is outside 0..=65535")));
    match v {
        Value::Array {
            dims,
            dtype,
            fortran,
            data,
        } => {
            let (size, signed) = match dtype.trim_start_matches(['<', '>', '=', '|']) {
                "i1" => (1, true),
                "u1" => (1, false),
                "i2" => (2, true),
                "u2" => (2, false),
                "i4" => (4, true),
                "u4" => (4, false),
                "i8" => (8, true),
                "u8" => (8, false),
                t => return Err(bad(format!("array of type `{t}`; expected integers"))),
            };
            let &[c, 2] = dims.as_slice() else {
                return Err(bad(format!("array of shape {dims:?}; expected [C, 2]")));
            };
            if c.checked_mul(2 * size) != Some(data.len()) {
                return Err(bad(format!(
                    "{} data bytes for shape [{c}, 2] of {dtype}",
                    data.len()
                )));
            }
            let big = dtype.starts_with('>');
            let at = |k: usize| -> i64 {
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(&data[k * size..(k + 1) * size]);
                if big {
                    b[..size].reverse();
                }
                let raw = u64::from_le_bytes(b);
                let shift = 64 - 8 * size as u32;
                if signed {
                    ((raw << shift) as i64) >> shift
                } else {
                    // u8 values above i64::MAX become negative and are refused as such.
                    raw as i64
                }
            };
            (0..c)
                .map(|i| {
                    let (a, b) = if *fortran {
                        (at(i), at(c + i))
                    } else {
                        (at(2 * i), at(2 * i + 1))
                    };
                    Ok(Block(side(a)?, side(b)?))
                })
                .collect()
        }
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .enumerate()
            .map(|(i, r)| match r {
                Value::List(p) | Value::Tuple(p) => match p.as_slice() {
                    [Value::Int(a), Value::Int(b)] => Ok(Block(side(*a)?, side(*b)?)),
                    _ => Err(bad(format!("row {i} is not two integers"))),
                },
                _ => Err(bad(format!("row {i} is not a pair"))),
            })
            .collect(),
        _ => Err(bad("not an integer array or a list of pairs".into())),
    }
}

/// Layer name → per-channel blocks, from the bytes of a block-spec pickle.
///
/// Checks only the format (a dict of `[C, 2]` integer arrays with sides in `0..=u16::MAX`);
/// whether the codes are valid for a program's layers is checked when the spec is applied.
pub fn read_block_spec(bytes: &[u8]) -> Result<BTreeMap<String, Vec<Block>>, PickleError> {
    let top = Machine {
        bytes,
        pos: 0,
        op_at: 0,
        op_name: "start",
        stack: Vec::new(),
        memo: BTreeMap::new(),
        budget: bytes.len().saturating_mul(4).saturating_add(1 << 20).into(),
    }
    .run()?;
    let Value::Dict(items) = top else {
        return Err(PickleError::Shape("the pickle holds no dict".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in &items {
        let Value::Str(name) = k else {
            return Err(PickleError::Shape("a key that is not a string".into()));
        };
        out.insert(name.clone(), rows(name, v)?);
    }
    Ok(out)
}
