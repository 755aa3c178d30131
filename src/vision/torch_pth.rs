//! Reads PyTorch checkpoints (`torch.save` of a state dict) without Python: both the zip format
//! (`archive/data.pkl` + `archive/data/<key>`) and the legacy format (magic, protocol and system-info
//! pickles, the state-dict pickle, the storage keys, then each storage as `i64 numel` + raw bytes).
//! The pickle is run by a small stack machine that knows only what state dicts use. Tensors may be
//! views with any strides and storage offset (the EfficientNet-Lite0 file has 50 such): they are
//! gathered element by element into contiguous row-major f32.
//!
//! A checkpoint may come from anywhere, so every size in it is checked before it costs anything:
//! the pickle makes at most `MAX_VALUES` values in all, the memo's copies counted (a few hundred
//! bytes that keep doubling a memoised tuple would otherwise grow without bound), a tensor's view must lie
//! inside its storage with no arithmetic overflow, all tensors together may hold no more elements
//! than the file has bytes, and a zip member no more bytes than the archive.

use crate::tensor_file::Tensor;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;

const LEGACY_MAGIC: u128 = 0x1950a86a20f9469cfc6c;

/// How many values one pickle may make, by its opcodes and by copies out of its memo: the
/// EfficientNet-Lite checkpoints make between 2^14 and 2^16 (measured by lowering this bound), and
/// 2^18 values take about 25 MB and 40 ms to build.
const MAX_VALUES: usize = 1 << 18;

#[derive(Clone, Debug)]
enum Value {
    None,
    Int(i128),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    Storage {
        key: String,
        dtype: DType,
    },
    Tensor(TensorRef),
    /// Anything a state dict does not need (module metadata, unknown objects).
    Opaque,
    Mark,
}

impl Value {
    /// How many values this one is made of (itself included), counted up to `limit`.
    fn count(&self, limit: usize) -> usize {
        let children: Box<dyn Iterator<Item = &Value>> = match self {
            Value::Tuple(items) | Value::List(items) => Box::new(items.iter()),
            Value::Dict(pairs) => Box::new(pairs.iter().flat_map(|(k, v)| [k, v])),
            _ => return 1,
        };
        let mut total = 1;
        for child in children {
            if total > limit {
                break;
            }
            total += child.count(limit - total);
        }
        total
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    Other,
}

impl DType {
    fn from_storage(name: &str) -> DType {
        match name.rsplit(' ').next().unwrap_or("") {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            _ => DType::Other,
        }
    }

    fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::F16 | DType::BF16 => 2,
            DType::Other => 1,
        }
    }
}

#[derive(Clone, Debug)]
struct TensorRef {
    key: String,
    dtype: DType,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// Values the pickle may still make (`MAX_VALUES` at the start).
    values_left: usize,
}

/// A copy of `value`, its count of values taken from `values_left`.
fn charged_copy(value: &Value, values_left: &mut usize) -> Result<Value> {
    let count = value.count(*values_left);
    if count > *values_left {
        bail!("the pickle makes more than {MAX_VALUES} values: not a state dict");
    }
    *values_left -= count;
    Ok(value.clone())
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Machine {
            bytes,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            values_left: MAX_VALUES,
        }
    }

    /// A copy of the top of the stack into the memo under `key`.
    fn memoise(&mut self, key: u32) -> Result<()> {
        let top = self.stack.last().context("pickle stack underflow")?;
        let value = charged_copy(top, &mut self.values_left)?;
        self.memo.insert(key, value);
        Ok(())
    }

    /// A copy of the memo's value under `key` onto the stack.
    fn recall(&mut self, key: u32) -> Result<()> {
        let value = self
            .memo
            .get(&key)
            .context("pickle refers to an unknown memo entry")?;
        let value = charged_copy(value, &mut self.values_left)?;
        self.stack.push(value);
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.context("pickle ends in the middle of an instruction")?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into()?))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .context("unterminated GLOBAL")?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    fn pop(&mut self) -> Result<Value> {
        self.stack.pop().context("pickle stack underflow")
    }
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| matches!(v, Value::Mark))
            .context("pickle MARK missing")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }
    fn top(&mut self) -> Result<&mut Value> {
        self.stack.last_mut().context("pickle stack underflow")
    }

    /// Runs one pickle to its STOP and returns the value it built.
    fn run(&mut self) -> Result<Value> {
        loop {
            // An opcode makes at most one value of its own.
            self.values_left = self.values_left.checked_sub(1).with_context(|| {
                format!("the pickle makes more than {MAX_VALUES} values: not a state dict")
            })?;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'N' => self.stack.push(Value::None),
                0x88 | 0x89 => self.stack.push(Value::Opaque), // booleans: requires_grad
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'M' => {
                    let v = self.u16()?;
                    self.stack.push(Value::Int(v.into()))
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.stack.push(Value::Int(v.into()))
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 16 {
                        bail!("integer of {n} bytes in pickle");
                    }
                    let mut buf = [0u8; 16];
                    buf[..n].copy_from_slice(bytes);
                    if n > 0 && bytes[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff);
                    }
                    self.stack.push(Value::Int(i128::from_le_bytes(buf)));
                }
                b'G' => {
                    self.take(8)?; // a float: no state-dict field needs one
                    self.stack.push(Value::Opaque)
                }
                b'X' | b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                0x8c | b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let s = String::from_utf8_lossy(self.take(n)?).into_owned();
                    self.stack.push(Value::Str(s))
                }
                b'q' => {
                    let key = self.u8()?.into();
                    self.memoise(key)?
                }
                b'r' => {
                    let key = self.u32()?;
                    self.memoise(key)?
                }
                0x94 => self.memoise(self.memo.len() as u32)?,
                b'h' => {
                    let key = self.u8()?.into();
                    self.recall(key)?
                }
                b'j' => {
                    let key = self.u32()?;
                    self.recall(key)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(format!("{module} {name}")))
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => {
                            self.stack.push(Value::Global(format!("{m} {n}")))
                        }
                        _ => bail!("STACK_GLOBAL without names"),
                    }
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items))
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let at = self
                        .stack
                        .len()
                        .checked_sub(n)
                        .context("pickle stack underflow")?;
                    let items = self.stack.split_off(at);
                    self.stack.push(Value::Tuple(items))
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.stack.push(persistent_load(pid)?)
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(reduce(callable, args)?)
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    if let Value::Dict(items) = self.top()? {
                        items.push((key, value));
                    }
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if let Value::Dict(dict) = self.top()? {
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            dict.push((k, v));
                        }
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    if let Value::List(list) = self.top()? {
                        list.push(value);
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    if let Value::List(list) = self.top()? {
                        list.extend(items);
                    }
                }
                b'b' => {
                    self.pop()?; // BUILD state: module metadata, not needed
                }
                other => bail!(
                    "unsupported pickle opcode 0x{other:02x} at byte {}",
                    self.pos - 1
                ),
            }
        }
    }
}

fn persistent_load(pid: Value) -> Result<Value> {
    let Value::Tuple(items) = pid else {
        bail!("persistent id is not a tuple")
    };
    match &items[..] {
        [Value::Str(kind), Value::Global(storage), Value::Str(key), ..] if kind == "storage" => {
            Ok(Value::Storage {
                key: key.clone(),
                dtype: DType::from_storage(storage),
            })
        }
        [Value::Str(kind), ..] => bail!("unsupported persistent id of kind {kind:.40}"),
        _ => bail!("unsupported persistent id"),
    }
}

fn usizes(value: &Value) -> Result<Vec<usize>> {
    match value {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => usize::try_from(*i)
                    .context("tensor size or stride is not a non-negative integer"),
                _ => bail!("tensor size or stride is not an integer"),
            })
            .collect(),
        _ => bail!("tensor size or stride is not a tuple"),
    }
}

fn reduce(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(name) = callable else {
        return Ok(Value::Opaque);
    };
    let Value::Tuple(args) = args else {
        return Ok(Value::Opaque);
    };
    Ok(match name.as_str() {
        "collections OrderedDict" => Value::Dict(Vec::new()),
        "torch._utils _rebuild_tensor_v2" | "torch._utils _rebuild_tensor" => match &args[..] {
            [Value::Storage { key, dtype }, Value::Int(offset), size, stride, ..] => {
                Value::Tensor(TensorRef {
                    key: key.clone(),
                    dtype: *dtype,
                    offset: usize::try_from(*offset).context("negative storage offset")?,
                    shape: usizes(size)?,
                    stride: usizes(stride)?,
                })
            }
            _ => bail!("unexpected arguments to {name}"),
        },
        "torch._utils _rebuild_parameter" => args.into_iter().next().unwrap_or(Value::Opaque),
        _ => Value::Opaque,
    })
}

fn element(bytes: &[u8], dtype: DType, index: usize) -> f32 {
    let at = index * dtype.size();
    let b = &bytes[at..at + dtype.size()];
    match dtype {
        DType::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        DType::F64 => f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
        DType::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::BF16 => half::bf16::from_le_bytes([b[0], b[1]]).to_f32(),
        DType::I64 => i64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32,
        DType::Other => 0.0,
    }
}

/// The number of elements of a view of `shape`, or None past `usize`.
fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Gathers a strided view of a storage into a contiguous row-major tensor. The caller has checked
/// that its element count fits the budget; here its last element must lie inside the storage.
fn materialise(name: &str, t: &TensorRef, storage: &[u8]) -> Result<Tensor> {
    if t.dtype == DType::Other {
        bail!("tensor {name}: unsupported storage type");
    }
    if t.shape.len() != t.stride.len() {
        bail!(
            "tensor {name} has {} sizes but {} strides",
            t.shape.len(),
            t.stride.len()
        );
    }
    let numel = element_count(&t.shape).context("tensor size overflows")?;
    if numel > 0 {
        // The offset of the last element, and the byte just past it.
        let end = t
            .shape
            .iter()
            .zip(&t.stride)
            .try_fold(t.offset, |at, (&d, &s)| {
                at.checked_add((d - 1).checked_mul(s)?)
            })
            .and_then(|last| last.checked_add(1)?.checked_mul(t.dtype.size()));
        if end.is_none_or(|end| end > storage.len()) {
            bail!("tensor {name} reaches past the end of its storage");
        }
    }
    let mut data = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset
            + index
                .iter()
                .zip(&t.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        data.push(element(storage, t.dtype, at));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Tensor {
        shape: t.shape.clone(),
        data,
    })
}

/// That the tensors together hold no more elements than the file has bytes: a checkpoint stores
/// every element in at least two, so only views that repeat their storage (zero strides, many
/// names for one storage) could ask for more, and such a file could ask for any amount of memory.
fn check_element_budget(tensors: &[(String, TensorRef)], file_len: usize) -> Result<()> {
    let mut total = 0usize;
    for (name, t) in tensors {
        let numel = element_count(&t.shape)
            .with_context(|| format!("tensor {name}: its size {:?} overflows", t.shape))?;
        total = total.saturating_add(numel);
        if total > file_len {
            bail!(
                "the tensors up to {name} hold {total} elements, more than the file's {file_len} bytes could store: not a state dict"
            );
        }
    }
    Ok(())
}

fn state_dict(value: Value) -> Result<Vec<(String, TensorRef)>> {
    let Value::Dict(items) = value else {
        bail!("the checkpoint is not a state dict")
    };
    let mut tensors = Vec::new();
    for (key, value) in items {
        match (key, value) {
            (Value::Str(name), Value::Tensor(t)) => tensors.push((name, t)),
            // A checkpoint that wraps its weights: {"state_dict": {...}} or {"model": {...}}.
            (Value::Str(_), inner @ Value::Dict(_)) if tensors.is_empty() => {
                if let Ok(inner) = state_dict(inner) {
                    if !inner.is_empty() {
                        return Ok(inner);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(tensors)
}

/// Every tensor of a `.pth` state dict, by name.
pub fn load(bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    if bytes.starts_with(b"PK") {
        load_zip(bytes)
    } else {
        load_legacy(bytes)
    }
}

fn load_legacy(bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let mut machine = Machine::new(bytes);
    match machine.run()? {
        Value::Int(magic) if magic as u128 == LEGACY_MAGIC => {}
        _ => bail!("not a PyTorch checkpoint (neither a zip archive nor the legacy magic number)"),
    }
    machine.run()?; // protocol version
    machine.run()?; // system info
    machine.memo.clear();
    let tensors = state_dict(machine.run()?)?;
    check_element_budget(&tensors, bytes.len())?;
    machine.memo.clear();
    let Value::List(keys) = machine.run()? else {
        bail!("storage key list missing")
    };
    let mut storages: HashMap<String, &[u8]> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else {
            bail!("storage key is not a string")
        };
        let numel = u64::from_le_bytes(machine.take(8)?.try_into()?) as usize;
        let dtype = tensors
            .iter()
            .find(|(_, t)| t.key == key)
            .map_or(DType::F32, |(_, t)| t.dtype);
        let data = numel
            .checked_mul(dtype.size())
            .and_then(|len| machine.take(len).ok())
            .context("storage data is truncated")?;
        storages.insert(key, data);
    }
    tensors
        .into_iter()
        .map(|(name, t)| {
            let storage = storages
                .get(&t.key)
                .with_context(|| format!("tensor {name}: storage missing"))?;
            let tensor = materialise(&name, &t, storage)?;
            Ok((name, tensor))
        })
        .collect()
}

fn load_zip(bytes: &[u8]) -> Result<HashMap<String, Tensor>> {
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(bytes)).context("not a readable zip archive")?;
    let names: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let pickle_name = names
        .iter()
        .find(|n| n.ends_with("data.pkl"))
        .context("no data.pkl in the archive")?
        .clone();
    let prefix = pickle_name.trim_end_matches("data.pkl").to_owned();
    // A member is stored, not compressed, by torch.save: it cannot hold more than the archive.
    let limit = bytes.len() as u64;
    let read = |archive: &mut zip::ZipArchive<_>, name: &str| {
        crate::fsio::read_zip_member(archive, name, limit)
    };
    let pickle = read(&mut archive, &pickle_name)?;
    let mut machine = Machine::new(&pickle);
    let tensors = state_dict(machine.run()?)?;
    check_element_budget(&tensors, bytes.len())?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let mut out = HashMap::new();
    for (name, t) in tensors {
        if !storages.contains_key(&t.key) {
            let data = read(&mut archive, &format!("{prefix}data/{}", t.key))?;
            storages.insert(t.key.clone(), data);
        }
        let tensor = materialise(&name, &t, &storages[&t.key])?;
        out.insert(name, tensor);
    }
    Ok(out)
}
