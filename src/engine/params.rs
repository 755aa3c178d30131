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

/// A parameter tensor's shape: (rows, columns), no columns for a vector.
pub type Shape = (usize, Option<usize>);

/// Element counts of tensors of these shapes: a layout without names, shapes or allocation (a
/// training step splits its buffers with it).
pub fn sizes<const N: usize>(shapes: [Shape; N]) -> [usize; N] {
    shapes.map(|(rows, cols)| rows * cols.unwrap_or(1))
}

/// A decoder's parameters, named and shaped once; their sizes and layout follow from that.
pub trait Parameters<const N: usize> {
    /// Names in storage order.
    const NAMES: [&'static str; N];
    /// Shapes in storage order: (rows, columns), no columns for a vector.
    fn shapes(&self) -> [Shape; N];

    fn sizes(&self) -> [usize; N] {
        sizes(self.shapes())
    }

    fn layout(&self) -> Layout {
        Layout::from_shapes(&Self::NAMES, &self.shapes())
    }
}

impl Layout {
    /// Tensors named `names` with `shapes`, in that order.
    pub fn from_shapes(names: &[&str], shapes: &[Shape]) -> Self {
        let mut layout = Layout::default();
        for (name, &(rows, cols)) in names.iter().zip(shapes) {
            let shape: Vec<usize> = std::iter::once(rows).chain(cols).collect();
            layout.add(name, &shape);
        }
        layout
    }

    /// Adds a tensor after the others. Sizes past `usize` saturate, so that a caller can refuse an
    /// impossible layout (a config from elsewhere) by its total instead of overflowing.
    pub fn add(&mut self, name: &str, shape: &[usize]) {
        let len = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX);
        self.slots.push(Slot {
            name: name.to_owned(),
            shape: shape.to_vec(),
            offset: self.total,
            len,
        });
        self.total = self.total.saturating_add(len);
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
