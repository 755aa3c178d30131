//! Named tensors in one flat buffer. Parameters, gradients and Adam moments share one layout, so
//! zeroing, the optimiser update and saving are single loops over contiguous memory.

#[derive(Clone, Debug, PartialEq)]
pub struct Slot {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Layout {
    pub slots: Vec<Slot>,
    pub total: usize,
}

impl Layout {
    pub fn add(&mut self, name: &str, shape: &[usize]) {
        let len = shape.iter().product();
        self.slots.push(Slot {
            name: name.to_owned(),
            shape: shape.to_vec(),
            offset: self.total,
            len,
        });
        self.total += len;
    }

    /// The range of `name` in a flat buffer with this layout.
    pub fn range(&self, name: &str) -> std::ops::Range<usize> {
        let slot = self
            .slots
            .iter()
            .find(|s| s.name == name)
            .expect("parameter names are fixed by the model");
        slot.offset..slot.offset + slot.len
    }
}

/// Consecutive pieces of `buffer` with the given sizes (a layout's tensors, in order).
pub fn split<'a, T>(
    buffer: &'a [T],
    sizes: impl IntoIterator<Item = usize> + 'a,
) -> impl Iterator<Item = &'a [T]> {
    let mut rest = buffer;
    sizes.into_iter().map(move |len| {
        let (head, tail) = rest.split_at(len);
        rest = tail;
        head
    })
}

/// `split` for a mutable buffer.
pub fn split_mut<'a, T>(
    buffer: &'a mut [T],
    sizes: impl IntoIterator<Item = usize> + 'a,
) -> impl Iterator<Item = &'a mut [T]> {
    let mut rest = buffer;
    sizes.into_iter().map(move |len| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        head
    })
}

/// Grows a scratch buffer to at least `len` values (zeros); never shrinks it.
pub fn grow<T: Clone + Default>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}
