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
