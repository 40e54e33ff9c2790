//! Reads the original's block-spec pickles (seed-spec §3.1: a dict from layer name to a
//! NumPy int array of shape `[C, 2]`). A small pickle machine that understands protocols 2–5
//! and builds NumPy arrays itself; the only globals it accepts are NumPy's array and dtype
//! reconstructors and `_codecs.encode` (protocol 2's bytes). Nothing is ever executed.

use std::collections::BTreeMap;

use ksnn_formats::spec::Block;
use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum PickleError {
    #[error("byte {offset}: {problem}")]
    At { offset: usize, problem: String },
    #[error("layer `{layer}`: {problem}")]
    Layer { layer: String, problem: String },
    #[error("not a block spec: {0}")]
    Shape(String),
}

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
    Global(String),
    /// A NumPy array: dims, element type (`i4`, `<i8`, …) and raw bytes, Fortran order flag.
    Array {
        dims: Vec<usize>,
        dtype: String,
        fortran: bool,
        data: Vec<u8>,
    },
    Dtype(String),
    Mark,
}

const ALLOWED: &[&str] = &[
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "_codecs.encode",
];

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: Vec<Value>,
}

impl<'a> Machine<'a> {
    fn err(&self, problem: impl Into<String>) -> PickleError {
        PickleError::At {
            offset: self.pos,
            problem: problem.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(e) => {
                let s = &self.bytes[self.pos..e];
                self.pos = e;
                Ok(s)
            }
            None => Err(self.err(format!("truncated: {n} more bytes expected"))),
        }
    }

    fn u(&mut self, n: usize) -> Result<u64, PickleError> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x)))
    }

    fn len(&mut self, n: usize) -> Result<usize, PickleError> {
        let v = self.u(n)?;
        let left = self.bytes.len() - self.pos;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= left)
            .ok_or_else(|| self.err(format!("length {v} runs past the end")))
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or_else(|| self.err("stack underflow"))
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| self.err("no mark"))?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.bytes[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("unterminated line"))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        Ok(Value::Str(
            std::str::from_utf8(b)
                .map_err(|_| self.err("invalid UTF-8"))?
                .to_string(),
        ))
    }

    fn global(&self, name: String) -> Result<Value, PickleError> {
        if ALLOWED.contains(&name.as_str()) {
            Ok(Value::Global(name))
        } else {
            Err(self.err(format!(
                "refusing global `{name}`: only NumPy arrays are read from block-spec pickles"
            )))
        }
    }

    fn dims(&self, shape: &[Value]) -> Result<Vec<usize>, PickleError> {
        shape
            .iter()
            .map(|d| match d {
                Value::Int(v) if *v >= 0 => Ok(*v as usize),
                _ => Err(self.err("bad array dimension")),
            })
            .collect()
    }

    fn reduce(&self, f: Value, args: Value) -> Result<Value, PickleError> {
        let (Value::Global(name), Value::Tuple(args)) = (&f, &args) else {
            return Err(self.err("REDUCE of something that is not an allowed global"));
        };
        match name.as_str() {
            "numpy.core.multiarray._reconstruct" | "numpy._core.multiarray._reconstruct" => {
                Ok(Value::Array {
                    dims: Vec::new(),
                    dtype: String::new(),
                    fortran: false,
                    data: Vec::new(),
                })
            }
            // Protocol 5: `_frombuffer(buffer, dtype, shape, order)`.
            "numpy.core.numeric._frombuffer" | "numpy._core.numeric._frombuffer" => {
                match args.as_slice() {
                    [
                        Value::Bytes(data),
                        Value::Dtype(dtype),
                        Value::Tuple(shape),
                        Value::Str(order),
                    ] => {
                        let dims = self.dims(shape)?;
                        Ok(Value::Array {
                            dims,
                            dtype: dtype.clone(),
                            fortran: order == "F",
                            data: data.clone(),
                        })
                    }
                    _ => Err(self.err("unexpected _frombuffer arguments")),
                }
            }
            "numpy.dtype" => match args.first() {
                Some(Value::Str(s)) => Ok(Value::Dtype(s.clone())),
                _ => Err(self.err("numpy.dtype without a type string")),
            },
            "_codecs.encode" => match args.as_slice() {
                [Value::Str(s), ..] => {
                    Ok(Value::Bytes(s.chars().map(|c| c as u32 as u8).collect()))
                }
                _ => Err(self.err("_codecs.encode without a string")),
            },
            _ => Err(self.err(format!("cannot call `{name}`"))),
        }
    }

    fn build(&self, target: Value, state: Value) -> Result<Value, PickleError> {
        match (target, state) {
            (Value::Dtype(t), Value::Tuple(s)) => {
                let endian = match s.get(1) {
                    Some(Value::Str(e)) if e == ">" => ">",
                    _ => "<",
                };
                Ok(Value::Dtype(format!("{endian}{t}")))
            }
            (Value::Array { .. }, Value::Tuple(s)) => {
                let [_, Value::Tuple(shape), Value::Dtype(dtype), fortran, data] = s.as_slice()
                else {
                    return Err(self.err("unexpected ndarray state"));
                };
                let dims = self.dims(shape)?;
                let data = match data {
                    Value::Bytes(b) => b.clone(),
                    _ => return Err(self.err("array data is not raw bytes")),
                };
                Ok(Value::Array {
                    dims,
                    dtype: dtype.clone(),
                    fortran: *fortran == Value::Bool(true),
                    data,
                })
            }
            _ => Err(self.err("BUILD on an unexpected object")),
        }
    }

    fn run(mut self) -> Result<Value, PickleError> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    let v = self.u(1)?;
                    if !(2..=5).contains(&v) {
                        return Err(self.err(format!("pickle protocol {v} (ksnn reads 2 to 5)")));
                    }
                }
                0x95 => {
                    self.u(8)?;
                }
                0x98 => {} // READONLY_BUFFER: the bytes below are read either way
                0x97 => return Err(self.err("out-of-band buffers are not supported")),
                b'.' => return self.pop(),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'J' => {
                    let v = self.u(4)? as u32 as i32;
                    self.stack.push(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.u(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.len(1)?;
                    if n > 8 {
                        return Err(self.err("integer too large"));
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &x) in b.iter().enumerate() {
                        v |= i64::from(x) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.stack.push(Value::Int(v));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                    self.stack.push(Value::Float(v));
                }
                b'X' => {
                    let n = self.len(4)?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                0x8c => {
                    let n = self.len(1)?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                0x8d => {
                    let n = self.len(8)?;
                    let v = self.text(n)?;
                    self.stack.push(v);
                }
                b'U' => {
                    let n = self.len(1)?;
                    let b = self.take(n)?;
                    self.stack
                        .push(Value::Str(b.iter().map(|&c| c as char).collect()));
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let width = match op {
                        b'C' => 1,
                        b'B' => 4,
                        _ => 8,
                    };
                    let n = self.len(width)?;
                    let b = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(b));
                }
                0x94 => {
                    let top = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("MEMOIZE on an empty stack"))?;
                    self.memo.push(top);
                }
                b'q' | b'r' => {
                    let i = self.u(if op == b'q' { 1 } else { 4 })? as usize;
                    let top = self
                        .stack
                        .last()
                        .cloned()
                        .ok_or_else(|| self.err("PUT on an empty stack"))?;
                    if i >= self.memo.len() {
                        self.memo.resize(i + 1, Value::None);
                    }
                    self.memo[i] = top;
                }
                b'h' | b'j' => {
                    let i = self.u(if op == b'h' { 1 } else { 4 })? as usize;
                    let v = self
                        .memo
                        .get(i)
                        .cloned()
                        .ok_or_else(|| self.err(format!("memo {i} unset")))?;
                    self.stack.push(v);
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let g = self.global(format!("{module}.{name}"))?;
                    self.stack.push(g);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(m), Value::Str(n)) = (module, name) else {
                        return Err(self.err("STACK_GLOBAL needs two strings"));
                    };
                    let g = self.global(format!("{m}.{n}"))?;
                    self.stack.push(g);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err(self.err("stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let f = self.pop()?;
                    let v = self.reduce(f, args)?;
                    self.stack.push(v);
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.pop()?;
                    let v = self.build(target, state)?;
                    self.stack.push(v);
                }
                b's' | b'u' => {
                    let pairs = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    if pairs.len() % 2 != 0 {
                        return Err(self.err("odd number of dict items"));
                    }
                    let Some(Value::Dict(d)) = self.stack.last_mut() else {
                        return Err(PickleError::At {
                            offset: self.pos,
                            problem: "SETITEM(S) without a dict".into(),
                        });
                    };
                    let mut it = pairs.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        d.push((k, v));
                    }
                }
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    let Some(Value::List(l)) = self.stack.last_mut() else {
                        return Err(PickleError::At {
                            offset: self.pos,
                            problem: "APPEND(S) without a list".into(),
                        });
                    };
                    l.extend(items);
                }
                other => return Err(self.err(format!("unsupported pickle opcode 0x{other:02x}"))),
            }
        }
    }
}

/// `[C, 2]` rows of an array or nested list.
fn rows(layer: &str, v: &Value) -> Result<Vec<Block>, PickleError> {
    let bad = |problem: String| PickleError::Layer {
        layer: layer.into(),
        problem,
    };
    let code = |x: i64| u16::try_from(x).map_err(|_| bad(format!("block side {x} out of range")));
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
            if data.len() != c * 2 * size {
                return Err(bad(format!("{} data bytes for shape [{c}, 2]", data.len())));
            }
            let big = dtype.starts_with('>');
            let at = |k: usize| {
                let b = &data[k * size..(k + 1) * size];
                let mut raw: u64 = 0;
                for i in 0..size {
                    let byte = if big { b[i] } else { b[size - 1 - i] };
                    raw = (raw << 8) | u64::from(byte);
                }
                if signed && size < 8 && raw >> (8 * size - 1) & 1 == 1 {
                    raw as i64 - (1i64 << (8 * size))
                } else {
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
                    Ok(Block(code(a)?, code(b)?))
                })
                .collect()
        }
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .map(|r| match r {
                Value::List(p) | Value::Tuple(p) => match p.as_slice() {
                    [Value::Int(a), Value::Int(b)] => Ok(Block(code(*a)?, code(*b)?)),
                    _ => Err(bad("a row that is not two integers".into())),
                },
                _ => Err(bad("a row that is not a pair".into())),
            })
            .collect(),
        _ => Err(bad("not an array or a list of pairs".into())),
    }
}

/// Layer name → per-channel blocks.
pub fn read_block_spec(bytes: &[u8]) -> Result<BTreeMap<String, Vec<Block>>, PickleError> {
    let top = Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: Vec::new(),
    }
    .run()?;
    let Value::Dict(items) = top else {
        return Err(PickleError::Shape("the pickle holds no dict".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in &items {
        let Value::Str(name) = k else {
            return Err(PickleError::Shape("a key that is not a layer name".into()));
        };
        out.insert(name.clone(), rows(name, v)?);
    }
    Ok(out)
}
