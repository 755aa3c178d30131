//! Caption decoders: language models conditioned on an image, and the batches they train on.

pub mod attention;
pub mod merge;

use crate::engine::Real;
use crate::nn::lstm::{balanced_ranges, Packing};
use std::ops::Range;

/// Captions of a batch that one thread runs through the whole recurrence: its captions, its positions
/// and how they are packed.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub captions: Range<usize>,
    pub positions: Range<usize>,
    pub packing: Packing,
}

/// A batch of captions in packed order (longest first): one image input per caption (a feature vector
/// or a grid), the input tokens (caption without its last token) and targets (caption without its
/// first). The captions are cut into groups of about the same number of positions; each group's
/// positions are contiguous and time-major, so that a group's recurrence can run on its own thread.
#[derive(Clone, Debug, Default)]
pub struct Batch<T> {
    pub features: Vec<T>,
    pub groups: Vec<Group>,
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    /// Packed row of each position's caption (index into `features` rows).
    pub caption: Vec<usize>,
    /// `order[k]` is the caller's index of packed caption k.
    pub order: Vec<usize>,
    /// Input positions of each packed caption (its token count - 1).
    lengths: Vec<usize>,
}

impl<T: Real> Batch<T> {
    /// Caption k of `count` is `caption(k)` = (its image input, its token ids with startseq/endseq);
    /// at most `groups` groups. Reuses the batch's buffers, so refilling a batch of the same size
    /// allocates little.
    pub fn fill<'a>(
        &mut self,
        count: usize,
        groups: usize,
        caption: impl Fn(usize) -> (&'a [T], &'a [u32]),
    ) where
        T: 'a,
    {
        self.order.clear();
        self.order.extend(0..count);
        self.order
            .sort_by_key(|&k| std::cmp::Reverse(caption(k).1.len()));
        self.lengths.clear();
        self.lengths.extend(
            self.order
                .iter()
                .map(|&k| caption(k).1.len().saturating_sub(1)),
        );
        self.features.clear();
        for &k in &self.order {
            self.features.extend_from_slice(caption(k).0);
        }
        self.inputs.clear();
        self.targets.clear();
        self.caption.clear();
        self.groups.clear();
        for captions in balanced_ranges(&self.lengths, groups) {
            let packing = Packing::from_sorted_lengths(&self.lengths[captions.clone()]);
            let first = self.inputs.len();
            for (t, &active) in packing.active.iter().enumerate() {
                for row in captions.start..captions.start + active {
                    let tokens = caption(self.order[row]).1;
                    self.inputs.push(tokens[t]);
                    self.targets.push(tokens[t + 1]);
                    self.caption.push(row);
                }
            }
            let positions = first..self.inputs.len();
            self.groups.push(Group {
                captions,
                positions,
                packing,
            });
        }
    }

    pub fn captions(&self) -> usize {
        self.order.len()
    }

    pub fn positions(&self) -> usize {
        self.inputs.len()
    }

    /// The packing of a batch filled as one group.
    pub fn packing(&self) -> &Packing {
        assert_eq!(self.groups.len(), 1, "a batch of one group");
        &self.groups[0].packing
    }
}
