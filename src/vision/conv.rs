//! Inference kernels over NHWC feature maps (one image at a time): convolution as GEMM (1x1 directly,
//! others through im2col), depthwise convolution as a direct loop over channels, max pooling.
//! Batch norm is folded into the convolution weights at load time.

use crate::engine::simd::multiply_add;
use crate::engine::{matmul, Transpose};
use crate::tensor_file::Tensor;
use crate::with_avx2;
use rayon::prelude::*;

thread_local! {
    /// Activation buffers returned by finished layers, reused by the next ones: a fresh zeroed
    /// allocation per layer costs more than the small layers themselves.
    static BUFFERS: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A buffer of `len` values whose contents are unspecified (old activations or zeros): every user
/// writes all of it before reading.
fn take_buffer(len: usize) -> Vec<f32> {
    let mut buffer = BUFFERS.with(|pool| {
        let mut pool = pool.borrow_mut();
        match pool.iter().position(|b| b.capacity() >= len) {
            Some(i) => pool.swap_remove(i),
            None => pool.pop().unwrap_or_default(),
        }
    });
    if buffer.len() >= len {
        buffer.truncate(len);
    } else {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Hands a finished activation buffer back for reuse by later layers on this thread.
pub fn recycle(buffer: Vec<f32>) {
    BUFFERS.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < 8 {
            pool.push(buffer);
        }
    });
}

/// A feature map of one image, `data[(y * w + x) * c + channel]`.
#[derive(Clone, Debug)]
pub struct FeatureMap {
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub data: Vec<f32>,
}

#[derive(Clone, Copy, Debug)]
pub enum Padding {
    /// TensorFlow "SAME": output = ceil(input / stride), the extra padding goes after (bottom/right).
    Same,
    /// The same number of zeros on every side (PyTorch `padding=p`).
    Symmetric(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Linear,
    Relu,
    Relu6,
}

impl Activation {
    #[inline(always)]
    fn apply(self, values: &mut [f32]) {
        match self {
            Activation::Linear => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        }
    }
}

/// Output size and the padding before the first input pixel, along one axis.
fn output_and_pad(input: usize, kernel: usize, stride: usize, padding: Padding) -> (usize, usize) {
    match padding {
        Padding::Same => {
            let out = input.div_ceil(stride);
            let total = ((out - 1) * stride + kernel).saturating_sub(input);
            (out, total / 2)
        }
        Padding::Symmetric(p) => ((input + 2 * p - kernel) / stride + 1, p),
    }
}

/// Adds the bias to every pixel's channels and applies the activation; `threads` > 1 splits the
/// pixels over the rayon pool.
fn bias_activation(data: &mut [f32], bias: &[f32], activation: Activation, threads: usize) {
    const PIXELS_PER_TASK: usize = 256;
    let pixels = |chunk: &mut [f32]| {
        with_avx2!(for pixel in chunk.chunks_exact_mut(bias.len()) {
            pixel.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            activation.apply(pixel);
        })
    };
    if threads > 1 {
        data.par_chunks_mut(PIXELS_PER_TASK * bias.len())
            .for_each(pixels);
    } else {
        pixels(data);
    }
}

/// Batch-norm scale and shift: y = x * scale + shift, scale = gamma / sqrt(var + eps),
/// shift = beta - mean * scale.
pub fn batch_norm_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

/// y[p, co] = act(sum_{ky,kx,ci} x[p + (ky,kx), ci] * weight[ky,kx,ci,co] + bias[co]).
pub struct Conv2d {
    k: usize,
    stride: usize,
    cin: usize,
    cout: usize,
    padding: Padding,
    /// [k, k, cin, cout]: the im2col row layout, so the product is cols @ weight.
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv2d {
    /// From a PyTorch weight [cout, cin, k, k], with a per-output-channel affine (folded batch norm
    /// or a plain bias) applied after it.
    pub fn from_torch(
        weight: &Tensor,
        scale: Option<&[f32]>,
        shift: &[f32],
        stride: usize,
        padding: Padding,
    ) -> Self {
        let [cout, cin, k, _] = weight.shape[..] else {
            panic!("conv weight must be 4-D")
        };
        let mut folded = vec![0.0; k * k * cin * cout];
        for co in 0..cout {
            let s = scale.map_or(1.0, |s| s[co]);
            for ci in 0..cin {
                for ky in 0..k {
                    for kx in 0..k {
                        folded[((ky * k + kx) * cin + ci) * cout + co] =
                            weight.data[((co * cin + ci) * k + ky) * k + kx] * s;
                    }
                }
            }
        }
        Conv2d {
            k,
            stride,
            cin,
            cout,
            padding,
            weight: folded,
            bias: shift.to_vec(),
        }
    }

    /// `threads` > 1 lets the matrix product use the rayon pool (for one image at a time).
    pub fn forward(&self, x: &FeatureMap, activation: Activation, threads: usize) -> FeatureMap {
        debug_assert_eq!(x.c, self.cin);
        let (oh, pad_top) = output_and_pad(x.h, self.k, self.stride, self.padding);
        let (ow, pad_left) = output_and_pad(x.w, self.k, self.stride, self.padding);
        let mut out = take_buffer(oh * ow * self.cout);
        let depth = self.k * self.k * self.cin;
        if self.cin <= DIRECT_MAX_CIN {
            let row = |(oy, out_row): (usize, &mut [f32])| {
                with_avx2!(self.direct_row(x, oy, out_row, (pad_top, pad_left), activation))
            };
            if threads > 1 {
                out.par_chunks_mut(ow * self.cout).enumerate().for_each(row);
            } else {
                out.chunks_mut(ow * self.cout).enumerate().for_each(row);
            }
            return FeatureMap {
                h: oh,
                w: ow,
                c: self.cout,
                data: out,
            };
        }
        if self.k == 1 && self.stride == 1 {
            self.product(&x.data, depth, &mut out, activation, threads);
        } else {
            let mut cols = take_buffer(oh * ow * depth);
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &mut cols[(oy * ow + ox) * depth..][..depth];
                    for ky in 0..self.k {
                        let iy = (oy * self.stride + ky) as isize - pad_top as isize;
                        for kx in 0..self.k {
                            let ix = (ox * self.stride + kx) as isize - pad_left as isize;
                            let tap = &mut row[(ky * self.k + kx) * self.cin..][..self.cin];
                            if iy < 0 || iy >= x.h as isize || ix < 0 || ix >= x.w as isize {
                                tap.fill(0.0); // padding
                            } else {
                                tap.copy_from_slice(
                                    &x.data[(iy as usize * x.w + ix as usize) * x.c..][..x.c],
                                );
                            }
                        }
                    }
                }
            }
            self.product(&cols, depth, &mut out, activation, threads);
            recycle(cols);
        }
        FeatureMap {
            h: oh,
            w: ow,
            c: self.cout,
            data: out,
        }
    }
}

/// y[p, c] = act(sum_{ky,kx} x[p + (ky,kx), c] * weight[ky,kx,c] + bias[c]): one filter per channel.
impl Conv2d {
    /// out = act(input @ weight + bias) over pixel rows of `depth` inputs. A tall product (the early,
    /// large feature maps) is split into one band of rows per thread, each a single-threaded GEMM
    /// with its bias added while the band is in cache: with so few channels, the gemm crate's own
    /// split measured half the speed. Short products use the crate's split.
    fn product(
        &self,
        input: &[f32],
        depth: usize,
        out: &mut [f32],
        activation: Activation,
        threads: usize,
    ) {
        const MIN_BAND_ROWS: usize = 256;
        let pixels = out.len() / self.cout;
        let band = |(input, out): (&[f32], &mut [f32]), threads: usize| {
            let rows = out.len() / self.cout;
            let (n, k) = (self.cout, depth);
            matmul(
                rows,
                n,
                k,
                1.0,
                input,
                Transpose::No,
                &self.weight,
                Transpose::No,
                0.0,
                out,
                threads,
            );
            bias_activation(out, &self.bias, activation, threads);
        };
        if threads > 1 && pixels >= MIN_BAND_ROWS * threads {
            let rows = pixels.div_ceil(threads);
            input
                .par_chunks(rows * depth)
                .zip(out.par_chunks_mut(rows * self.cout))
                .for_each(|pair| band(pair, 1));
        } else {
            band((input, out), threads);
        }
    }
}

/// Calls `$call` with `const $n` and `$first` set for each block of `$channels` channels whose sums
/// stay in registers over all taps: a lone pixel (`$p` = 1) takes 32 channels at a time (four
/// independent chains of additions per tap), a group of pixels 16; then 8, then one.
macro_rules! channel_blocks {
    ($p:ident, $channels:expr, |$n:ident, $first:ident| $call:expr) => {{
        let mut $first = 0;
        while $p == 1 && $first + 32 <= $channels {
            const $n: usize = 32;
            $call;
            $first += $n;
        }
        while $first + 16 <= $channels {
            const $n: usize = 16;
            $call;
            $first += $n;
        }
        while $first + 8 <= $channels {
            const $n: usize = 8;
            $call;
            $first += $n;
        }
        while $first < $channels {
            const $n: usize = 1;
            $call;
            $first += $n;
        }
    }};
}

/// Output pixels that the direct and depthwise convolutions take together away from the borders.
const INNER_PIXELS: usize = 4;

/// Input channels up to which a convolution runs directly rather than as im2col + GEMM: the first
/// layer of a network (RGB), where the GEMM's depth (k x k x 3) is too short to pay for packing.
const DIRECT_MAX_CIN: usize = 4;

impl Conv2d {
    /// One output row of the direct convolution, pixels alone or in groups (`each_group`), output
    /// channels in register blocks; each sum taken over the in-bounds taps in im2col order with
    /// fused multiply-adds, whatever the grouping.
    #[inline(always)]
    fn direct_row(
        &self,
        x: &FeatureMap,
        oy: usize,
        out_row: &mut [f32],
        (pad_top, pad_left): (usize, usize),
        activation: Activation,
    ) {
        let geometry = (self.k, self.stride, pad_top, pad_left);
        each_group(
            x,
            oy,
            out_row,
            self.cout,
            geometry,
            #[inline(always)]
            |taps, out| self.direct_pixels::<INNER_PIXELS>(x, taps, out, activation),
            #[inline(always)]
            |taps, out| self.direct_pixels::<1>(x, taps, out, activation),
        );
    }

    #[inline(always)]
    fn direct_pixels<const P: usize>(
        &self,
        x: &FeatureMap,
        taps: &Taps,
        out: &mut [f32],
        activation: Activation,
    ) {
        channel_blocks!(P, self.cout, |N, first| {
            self.direct_channels::<P, N>(x, taps, first, out)
        });
        for out_pixel in out.chunks_exact_mut(self.cout) {
            out_pixel
                .iter_mut()
                .zip(&self.bias)
                .for_each(|(v, b)| *v += b);
            activation.apply(out_pixel);
        }
    }

    /// Output channels `first..first + N` of `P` pixels: each in-bounds tap's input times its
    /// weights added in im2col order (row, column, input channel) with fused multiply-adds.
    #[inline(always)]
    fn direct_channels<const P: usize, const N: usize>(
        &self,
        x: &FeatureMap,
        taps: &Taps,
        first: usize,
        out: &mut [f32],
    ) {
        let mut acc = [[0.0f32; N]; P];
        for ky in taps.rows.clone() {
            let iy = (taps.origin.0 + ky as isize) as usize;
            let input_row = &x.data[iy * x.w * self.cin..][..x.w * self.cin];
            for kx in taps.cols.clone() {
                let ix = (taps.origin.1 + kx as isize) as usize;
                for ci in 0..self.cin {
                    let tap = (ky * self.k + kx) * self.cin + ci;
                    let w = &self.weight[tap * self.cout + first..][..N];
                    for (p, sums) in acc.iter_mut().enumerate() {
                        let value = input_row[(ix + p * self.stride) * self.cin + ci];
                        for lane in 0..N {
                            sums[lane] = multiply_add(value, w[lane], sums[lane]);
                        }
                    }
                }
            }
        }
        for (p, sums) in acc.iter().enumerate() {
            out[p * self.cout + first..][..N].copy_from_slice(sums);
        }
    }
}

pub struct DepthwiseConv2d {
    k: usize,
    stride: usize,
    c: usize,
    padding: Padding,
    /// [k, k, c]
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl DepthwiseConv2d {
    /// From a PyTorch weight [c, 1, k, k] and a per-channel affine applied after it.
    pub fn from_torch(
        weight: &Tensor,
        scale: &[f32],
        shift: &[f32],
        stride: usize,
        padding: Padding,
    ) -> Self {
        let [c, _, k, _] = weight.shape[..] else {
            panic!("depthwise weight must be 4-D")
        };
        let mut folded = vec![0.0; k * k * c];
        for ch in 0..c {
            for kk in 0..k * k {
                folded[kk * c + ch] = weight.data[ch * k * k + kk] * scale[ch];
            }
        }
        DepthwiseConv2d {
            k,
            stride,
            c,
            padding,
            weight: folded,
            bias: shift.to_vec(),
        }
    }

    /// `threads` > 1 splits the output rows over the rayon pool (for one image at a time).
    pub fn forward(&self, x: &FeatureMap, activation: Activation, threads: usize) -> FeatureMap {
        let c = self.c;
        let (oh, pad_top) = output_and_pad(x.h, self.k, self.stride, self.padding);
        let (ow, pad_left) = output_and_pad(x.w, self.k, self.stride, self.padding);
        let mut out = take_buffer(oh * ow * c);
        let row = |(oy, out_row): (usize, &mut [f32])| {
            with_avx2!(self.row(x, oy, out_row, (pad_top, pad_left), activation))
        };
        if threads > 1 {
            out.par_chunks_mut(ow * c).enumerate().for_each(row);
        } else {
            out.chunks_mut(ow * c).enumerate().for_each(row);
        }
        FeatureMap {
            h: oh,
            w: ow,
            c,
            data: out,
        }
    }

    /// One output row, pixels alone or in groups (`each_group`). Every pixel's sum adds the same
    /// products in the same order either way (and as one channel at a time), so the result does
    /// not depend on the grouping.
    #[inline(always)]
    fn row(
        &self,
        x: &FeatureMap,
        oy: usize,
        out_row: &mut [f32],
        (pad_top, pad_left): (usize, usize),
        activation: Activation,
    ) {
        let geometry = (self.k, self.stride, pad_top, pad_left);
        each_group(
            x,
            oy,
            out_row,
            self.c,
            geometry,
            #[inline(always)]
            |taps, out| self.pixels::<INNER_PIXELS>(x, taps, out, activation),
            #[inline(always)]
            |taps, out| self.pixels::<1>(x, taps, out, activation),
        );
    }

    /// `P` neighbouring output pixels with the same taps (the first's given), channels in blocks
    /// (`channel_blocks!`).
    #[inline(always)]
    fn pixels<const P: usize>(
        &self,
        x: &FeatureMap,
        taps: &Taps,
        out: &mut [f32],
        activation: Activation,
    ) {
        channel_blocks!(P, self.c, |N, first| {
            self.channels::<P, N>(x, taps, first, out, activation)
        });
    }

    /// Channels `first..first + N` of `P` pixels: bias, then each in-bounds tap's product added
    /// in row-major tap order, then the activation.
    #[inline(always)]
    fn channels<const P: usize, const N: usize>(
        &self,
        x: &FeatureMap,
        taps: &Taps,
        first: usize,
        out: &mut [f32],
        activation: Activation,
    ) {
        let c = self.c;
        let (rows, cols) = (taps.rows.clone(), taps.cols.clone());
        let mut acc = [[0.0f32; N]; P];
        for sums in acc.iter_mut() {
            sums.copy_from_slice(&self.bias[first..][..N]);
        }
        if rows.is_empty() || cols.is_empty() {
            return self.store(acc, first, out, activation);
        }
        // Offset of channel `first` of tap (ky, kx) of the first pixel; pixel p is `p * stride`
        // columns on. The loops below read only offsets up to the last pixel's last tap.
        let offset = |ky: usize, kx: usize| {
            let iy = (taps.origin.0 + ky as isize) as usize;
            let ix = (taps.origin.1 + kx as isize) as usize;
            (iy * x.w + ix) * c + first
        };
        let pixel_step = self.stride * c;
        let last = offset(rows.end - 1, cols.end - 1) + (P - 1) * pixel_step + N;
        assert!(last <= x.data.len(), "depthwise taps outside the input");
        let weight = &self.weight[..self.k * self.k * c];
        let input = x.data.as_ptr();
        for ky in rows {
            for kx in cols.clone() {
                let w = &weight[(ky * self.k + kx) * c + first..][..N];
                let tap = offset(ky, kx);
                for (p, sums) in acc.iter_mut().enumerate() {
                    // SAFETY: tap + p * pixel_step + N <= last, checked above.
                    let src = unsafe { &*input.add(tap + p * pixel_step).cast::<[f32; N]>() };
                    for lane in 0..N {
                        sums[lane] += src[lane] * w[lane];
                    }
                }
            }
        }
        self.store(acc, first, out, activation);
    }

    #[inline(always)]
    fn store<const P: usize, const N: usize>(
        &self,
        mut acc: [[f32; N]; P],
        first: usize,
        out: &mut [f32],
        activation: Activation,
    ) {
        for (p, sums) in acc.iter_mut().enumerate() {
            activation.apply(sums);
            out[p * self.c + first..][..N].copy_from_slice(sums);
        }
    }
}

/// The kernel taps of one output pixel that land inside the input (the rest is padding).
struct Taps {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    /// Input coordinates of tap (0, 0), possibly negative.
    origin: (isize, isize),
}

/// Walks output row `oy` (`channels` values a pixel) left to right, with the taps of the first
/// pixel given that land inside the input; `geometry` is (kernel, stride, top padding, left
/// padding). Where the next `INNER_PIXELS` pixels have all their taps inside the input's columns,
/// `group` gets them together (their output slice that long), so that each tap's weights are read
/// once for all of them; a pixel at the left or right border goes to `single` alone.
#[inline(always)]
fn each_group(
    x: &FeatureMap,
    oy: usize,
    out_row: &mut [f32],
    channels: usize,
    (kernel, stride, pad_top, pad_left): (usize, usize, usize, usize),
    mut group: impl FnMut(&Taps, &mut [f32]),
    mut single: impl FnMut(&Taps, &mut [f32]),
) {
    let origin_y = (oy * stride) as isize - pad_top as isize;
    let rows = tap_range(origin_y, kernel, x.h);
    let width = out_row.len() / channels;
    let mut ox = 0;
    while ox < width {
        let origin_x = (ox * stride) as isize - pad_left as isize;
        let taps = Taps {
            rows: rows.clone(),
            cols: tap_range(origin_x, kernel, x.w),
            origin: (origin_y, origin_x),
        };
        let group_end = origin_x + ((INNER_PIXELS - 1) * stride + kernel) as isize;
        let inside = taps.cols.len() == kernel && group_end <= x.w as isize;
        if inside && ox + INNER_PIXELS <= width {
            group(
                &taps,
                &mut out_row[ox * channels..][..INNER_PIXELS * channels],
            );
            ox += INNER_PIXELS;
        } else {
            single(&taps, &mut out_row[ox * channels..][..channels]);
            ox += 1;
        }
    }
}

/// Taps `0..kernel` from input position `origin` that fall inside `0..size`.
fn tap_range(origin: isize, kernel: usize, size: usize) -> std::ops::Range<usize> {
    let first = (-origin).max(0) as usize;
    let end = (size as isize - origin).clamp(0, kernel as isize) as usize;
    first.min(end)..end
}

/// 2x2 max pooling with stride 2 (odd trailing rows/columns dropped, as PyTorch does).
pub fn max_pool_2x2(x: &FeatureMap) -> FeatureMap {
    let (oh, ow, c) = (x.h / 2, x.w / 2, x.c);
    let mut out = vec![f32::NEG_INFINITY; oh * ow * c];
    for oy in 0..oh {
        for ox in 0..ow {
            let dst = &mut out[(oy * ow + ox) * c..][..c];
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let src = &x.data[((2 * oy + dy) * x.w + 2 * ox + dx) * c..][..c];
                dst.iter_mut().zip(src).for_each(|(d, s)| *d = d.max(*s));
            }
        }
    }
    FeatureMap {
        h: oh,
        w: ow,
        c,
        data: out,
    }
}

/// Mean over all pixels, per channel.
pub fn global_average(x: &FeatureMap) -> Vec<f32> {
    let mut sum = vec![0.0f64; x.c];
    for pixel in x.data.chunks_exact(x.c) {
        sum.iter_mut()
            .zip(pixel)
            .for_each(|(s, v)| *s += f64::from(*v));
    }
    let n = (x.h * x.w) as f64;
    sum.into_iter().map(|s| (s / n) as f32).collect()
}

/// y = act(W x + b) for a PyTorch Linear weight W [out, in].
pub fn linear(
    x: &[f32],
    weight: &Tensor,
    bias: &[f32],
    activation: Activation,
    threads: usize,
) -> Vec<f32> {
    let [out_dim, in_dim] = weight.shape[..] else {
        panic!("linear weight must be 2-D")
    };
    let mut y = bias.to_vec();
    matmul(
        1,
        out_dim,
        in_dim,
        1.0,
        x,
        Transpose::No,
        &weight.data,
        Transpose::Yes,
        1.0,
        &mut y,
        threads,
    );
    activation.apply(&mut y);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_is_asymmetric_like_tensorflow() {
        assert_eq!(output_and_pad(224, 3, 2, Padding::Same), (112, 0));
        assert_eq!(output_and_pad(112, 3, 1, Padding::Same), (112, 1));
        assert_eq!(output_and_pad(28, 5, 2, Padding::Same), (14, 1));
        assert_eq!(output_and_pad(224, 3, 1, Padding::Symmetric(1)), (224, 1));
    }

    /// A direct convolution, for checking im2col + GEMM and the depthwise loop.
    fn direct(
        x: &FeatureMap,
        w: &Tensor,
        stride: usize,
        padding: Padding,
        depthwise: bool,
    ) -> Vec<f32> {
        let [cout, cin_w, k, _] = w.shape[..] else {
            unreachable!()
        };
        let (oh, pt) = output_and_pad(x.h, k, stride, padding);
        let (ow, pl) = output_and_pad(x.w, k, stride, padding);
        let mut out = vec![0.0; oh * ow * cout];
        for oy in 0..oh {
            for ox in 0..ow {
                for co in 0..cout {
                    let mut acc = 0.0;
                    for ci in 0..cin_w {
                        let xc = if depthwise { co } else { ci };
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * stride + ky) as isize - pt as isize;
                                let ix = (ox * stride + kx) as isize - pl as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < x.h && (ix as usize) < x.w
                                {
                                    acc += x.data[(iy as usize * x.w + ix as usize) * x.c + xc]
                                        * w.data[((co * cin_w + ci) * k + ky) * k + kx];
                                }
                            }
                        }
                    }
                    out[(oy * ow + ox) * cout + co] = acc;
                }
            }
        }
        out
    }

    /// The depthwise convolution groups pixels away from the borders and blocks channels by 32, 16,
    /// 8 and one; every output must still be the one-pixel, one-channel sum bit for bit (the same
    /// products added in the same order), whatever the map's size, stride and channel count.
    #[test]
    fn depthwise_groups_give_the_one_pixel_sums_bit_for_bit() {
        for (h, w, c) in [(13, 11, 48), (9, 12, 20), (7, 7, 64)] {
            let x = FeatureMap {
                h,
                w,
                c,
                data: values(h * w * c, 0.9),
            };
            for (k, stride) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
                let dw = Tensor {
                    shape: vec![c, 1, k, k],
                    data: values(c * k * k, 3.3),
                };
                let got = DepthwiseConv2d::from_torch(
                    &dw,
                    &vec![1.0; c],
                    &vec![0.0; c],
                    stride,
                    Padding::Same,
                )
                .forward(&x, Activation::Linear, 1);
                let want = direct(&x, &dw, stride, Padding::Same, true);
                let differ = got
                    .data
                    .iter()
                    .zip(&want)
                    .filter(|(a, b)| a.to_bits() != b.to_bits())
                    .count();
                assert_eq!(differ, 0, "{h}x{w}x{c} k{k} s{stride}");
            }
        }
    }

    /// The direct convolution (the RGB stem) groups pixels too: each output must be the sum of one
    /// pixel's in-bounds taps in im2col order with fused multiply-adds, then the bias, bit for bit.
    #[test]
    fn direct_convolution_groups_give_the_one_pixel_sums_bit_for_bit() {
        let (h, w, cin) = (15, 13, 3);
        let x = FeatureMap {
            h,
            w,
            c: cin,
            data: values(h * w * cin, 0.4),
        };
        for (cout, k, stride) in [(40, 3, 2), (20, 3, 1), (32, 5, 2)] {
            let weight = Tensor {
                shape: vec![cout, cin, k, k],
                data: values(cout * cin * k * k, 1.7),
            };
            let bias = values(cout, 5.0);
            let conv = Conv2d::from_torch(&weight, None, &bias, stride, Padding::Same);
            let got = conv.forward(&x, Activation::Linear, 1);
            let (oh, pad_top) = output_and_pad(h, k, stride, Padding::Same);
            let (ow, pad_left) = output_and_pad(w, k, stride, Padding::Same);
            for (pixel, out) in got.data.chunks_exact(cout).enumerate() {
                let (oy, ox) = (pixel / ow, pixel % ow);
                for (co, &value) in out.iter().enumerate() {
                    let mut sum = 0.0f32;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * stride + ky) as isize - pad_top as isize;
                            let ix = (ox * stride + kx) as isize - pad_left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for ci in 0..cin {
                                let input = x.data[(iy as usize * w + ix as usize) * cin + ci];
                                let wt = weight.data[((co * cin + ci) * k + ky) * k + kx];
                                sum = multiply_add(input, wt, sum);
                            }
                        }
                    }
                    assert_eq!(
                        value.to_bits(),
                        (sum + bias[co]).to_bits(),
                        "k{k} s{stride} pixel {pixel} channel {co}"
                    );
                }
            }
            assert_eq!(got.data.len(), oh * ow * cout);
        }
    }

    fn values(n: usize, seed: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 + seed) * 0.7).sin()).collect()
    }

    #[test]
    fn convolutions_match_a_direct_loop() {
        let x = FeatureMap {
            h: 9,
            w: 7,
            c: 4,
            data: values(9 * 7 * 4, 0.3),
        };
        for (k, stride, padding) in [
            (3, 2, Padding::Same),
            (5, 1, Padding::Same),
            (3, 1, Padding::Symmetric(1)),
            (1, 1, Padding::Same),
        ] {
            let w = Tensor {
                shape: vec![6, 4, k, k],
                data: values(6 * 4 * k * k, 1.1),
            };
            let got = Conv2d::from_torch(&w, None, &[0.0; 6], stride, padding).forward(
                &x,
                Activation::Linear,
                1,
            );
            let want = direct(&x, &w, stride, padding, false);
            assert!(
                got.data
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| (a - b).abs() < 1e-4),
                "k{k} s{stride}"
            );

            let dw = Tensor {
                shape: vec![4, 1, k, k],
                data: values(4 * k * k, 2.2),
            };
            let got = DepthwiseConv2d::from_torch(&dw, &[1.0; 4], &[0.0; 4], stride, padding)
                .forward(&x, Activation::Linear, 1);
            let want = direct(&x, &dw, stride, padding, true);
            assert!(
                got.data
                    .iter()
                    .zip(&want)
                    .all(|(a, b)| (a - b).abs() < 1e-4),
                "dw k{k} s{stride}"
            );
        }
    }
}
