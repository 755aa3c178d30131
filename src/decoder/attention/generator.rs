//! The attention decoder at generation time: one step for a few hypotheses over weights packed
//! once, and the blank grid's shortcut.

use super::*;

/// The attention decoder ready to generate. An image's context is [its grid a (R x C), the regions'
/// projection p (R x A)]; a hypothesis's state is [h (H), c (H), the last step's attention (R)].
/// Every step's products read weights packed once (`PanelWeights`), the LSTM's three input matrices
/// side by side so that [word, context, h] enters in one product.
pub struct AttentionGenerator {
    pub(super) config: AttentionConfig,
    pub(super) params: Vec<f32>,
    /// [A, H]
    pub(super) query: PanelWeights,
    /// [C, H]
    pub(super) gate: PanelWeights,
    /// [4H, E + C + H]
    pub(super) gates: PanelWeights,
    /// [4H, E + H]: the word and recurrent columns alone, for a blank image (see `image`); packed
    /// when first needed (self-critical training repacks at every step and never needs it).
    blank_gates: OnceLock<PanelWeights>,
    /// [V, H]
    pub(super) out: PanelWeights,
    /// b_ih + b_hh
    pub(super) lstm_b: Vec<f32>,
}

/// Row `o`, column `i` of the LSTM's input weights over [word, context, h].
fn lstm_input_weight(w: &Parts<&[f32]>, config: &AttentionConfig, o: usize, i: usize) -> f32 {
    let (c, _, e, h, _) = config.dims();
    match i {
        i if i < e => w.w_word[o * e + i],
        i if i < e + c => w.w_ctx[o * c + i - e],
        i => w.w_hh[o * h + i - e - c],
    }
}

impl AttentionGenerator {
    pub fn new(config: &AttentionConfig, params: &[f32]) -> Self {
        let w = parts(params, config);
        let v = config.vocab;
        let (c, _, e, h, a) = config.dims();
        let gate_input = |o: usize, i: usize| lstm_input_weight(&w, config, o, i);
        AttentionGenerator {
            config: *config,
            params: params.to_vec(),
            query: PanelWeights::new(a, h, |o, i| w.dec_w[o * h + i]),
            gate: PanelWeights::new(c, h, |o, i| w.beta_w[o * h + i]),
            gates: PanelWeights::new(4 * h, e + c + h, gate_input),
            blank_gates: OnceLock::new(),
            out: PanelWeights::new(v, h, |o, i| w.out_w[o * h + i]),
            lstm_b: w
                .lstm_b_ih
                .iter()
                .zip(w.lstm_b_hh)
                .map(|(a, b)| a + b)
                .collect(),
        }
    }
}

impl AttentionGenerator {
    /// The grid and its regions' projections [R, A], as every step reads them.
    pub(super) fn prepared(&self, grid: &[f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (r, c, a) = (config.regions, config.feature_dim, config.attention_dim);
        let mut image = grid[..r * c].to_vec();
        image.resize(r * c + r * a, 0.0);
        let (grid, p) = image.split_at_mut(r * c);
        linear_forward(p, grid, w.enc_w, w.enc_b, r, c, a, 1);
        image
    }

    /// Each row's LSTM input [word, gated context, h], its attention weights left in its state; the
    /// rows of `images` (each image prepared, with its number of rows) in order.
    fn lstm_inputs(
        &self,
        images: &[(&[f32], usize)],
        tokens: &[u32],
        states: &mut [f32],
    ) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (c, r, e, h, a) = config.dims();
        let (rows, size) = (tokens.len(), self.state_size());
        let h_prev: Vec<f32> = states
            .chunks_exact(size)
            .flat_map(|state| state[..h].iter().copied())
            .collect();
        let mut q = vec![0.0f32; rows * a];
        matmul_panels(&mut q, &h_prev, &self.query, w.dec_b, rows);
        let mut beta = vec![0.0f32; rows * c];
        matmul_panels(&mut beta, &h_prev, &self.gate, w.beta_b, rows);
        let din = e + c + h;
        let (mut x, mut s, mut z) = (
            vec![0.0f32; rows * din],
            vec![0.0f32; r * a],
            vec![0.0f32; c],
        );
        let row_images = images
            .iter()
            .flat_map(|&(image, rows)| std::iter::repeat_n(image.split_at(r * c), rows));
        with_avx2!(for (row, (((x, state), &token), (grid, p))) in x
            .chunks_exact_mut(din)
            .zip(states.chunks_exact_mut(size))
            .zip(tokens)
            .zip(row_images)
            .enumerate()
        {
            let alpha = &mut state[2 * h..];
            attention_forward(&mut s, alpha, p, &q[row * a..][..a], w.full_w);
            context_forward(&mut z, alpha, grid);
            let (word, rest) = x.split_at_mut(e);
            let (context, hidden) = rest.split_at_mut(c);
            word.copy_from_slice(&w.emb[token as usize * e..][..e]);
            gate_forward(context, &mut beta[row * c..][..c], &z);
            hidden.copy_from_slice(&state[..h]);
        });
        x
    }

    /// The LSTM step from its inputs `x` (through `gates_w`), each row's h and c left in its state,
    /// and the next word's log-probabilities [rows, V].
    fn lstm_and_words(
        &self,
        x: &[f32],
        gates_w: &PanelWeights,
        states: &mut [f32],
        log_probs: &mut Vec<f32>,
    ) {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (v, h) = (config.vocab, config.hidden);
        let size = self.state_size();
        let rows = states.len() / size;
        let mut gates = vec![0.0f32; rows * 4 * h];
        matmul_panels(&mut gates, x, gates_w, &self.lstm_b, rows);
        let c_prev: Vec<f32> = states
            .chunks_exact(size)
            .flat_map(|state| state[h..2 * h].iter().copied())
            .collect();
        let (mut c_new, mut h_new) = (vec![0.0f32; rows * h], vec![0.0f32; rows * h]);
        lstm_cell(&mut gates, Some(&c_prev), &mut c_new, &mut h_new, rows, h);
        for ((state, h_row), c_row) in states
            .chunks_exact_mut(size)
            .zip(h_new.chunks_exact(h))
            .zip(c_new.chunks_exact(h))
        {
            state[..h].copy_from_slice(h_row);
            state[h..2 * h].copy_from_slice(c_row);
        }
        log_probs.clear();
        log_probs.resize(rows * v, 0.0);
        matmul_panels(log_probs, &h_new, &self.out, w.out_b, rows);
        for row in log_probs.chunks_exact_mut(v) {
            log_softmax(row);
        }
    }

    /// The LSTM's weights for `blank_lstm_inputs`, packed on first use.
    fn blank_gates(&self) -> &PanelWeights {
        self.blank_gates.get_or_init(|| {
            let (w, config) = (parts(&self.params, &self.config), &self.config);
            let (c, _, e, h, _) = config.dims();
            PanelWeights::new(4 * h, e + h, |o, i| {
                lstm_input_weight(&w, config, o, if i < e { i } else { i + c })
            })
        })
    }

    /// `lstm_inputs` for a blank image: [word, h], the context being zero; the attention weights
    /// are uniform, as the attention over identical regions gives.
    fn blank_lstm_inputs(&self, tokens: &[u32], states: &mut [f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (e, h, r) = (config.embed_dim, config.hidden, config.regions);
        let size = self.state_size();
        let mut x = vec![0.0f32; tokens.len() * (e + h)];
        for ((x, state), &token) in x
            .chunks_exact_mut(e + h)
            .zip(states.chunks_exact_mut(size))
            .zip(tokens)
        {
            let (word, hidden) = x.split_at_mut(e);
            word.copy_from_slice(&w.emb[token as usize * e..][..e]);
            hidden.copy_from_slice(&state[..h]);
            state[2 * h..].fill(1.0 / r as f32);
        }
        x
    }
}

impl Generator for AttentionGenerator {
    fn state_size(&self) -> usize {
        2 * self.config.hidden + self.config.regions
    }

    /// A blank grid (the photo gain's baseline: `generate::photo_gain`) is prepared as nothing. Its
    /// context is zero whatever the attention, so its steps skip the attention and the LSTM's
    /// context columns (half of the weights a step reads) and give the same numbers.
    fn image(&self, grid: &[f32]) -> Vec<f32> {
        let (r, c) = (self.config.regions, self.config.feature_dim);
        if grid[..r * c].iter().all(|&v| v == 0.0) {
            return Vec::new();
        }
        self.prepared(grid)
    }

    fn initial_state(&self, image: &[f32]) -> Vec<f32> {
        let (w, config) = (parts(&self.params, &self.config), &self.config);
        let (r, c, h) = (config.regions, config.feature_dim, config.hidden);
        let mut mean = vec![0.0f32; c];
        // (Nothing for a blank image: the mean is zero.)
        for region in image.chunks_exact(c).take(r) {
            mean.iter_mut().zip(region).for_each(|(m, &x)| *m += x);
        }
        mean.iter_mut().for_each(|m| *m /= r as f32);
        let mut state = vec![0.0f32; self.state_size()];
        linear_forward(&mut state[..h], &mean, w.init_h_w, w.init_h_b, 1, c, h, 1);
        linear_forward(
            &mut state[h..2 * h],
            &mean,
            w.init_c_w,
            w.init_c_b,
            1,
            c,
            h,
            1,
        );
        state
    }

    fn step(&self, image: &[f32], tokens: &[u32], states: &mut [f32], log_probs: &mut Vec<f32>) {
        if image.is_empty() {
            let x = self.blank_lstm_inputs(tokens, states);
            self.lstm_and_words(&x, self.blank_gates(), states, log_probs);
        } else {
            self.step_many(&[(image, tokens.len())], tokens, states, log_probs);
        }
    }

    /// Every layer's product over all rows of all images at once: the weights are read once per
    /// step for the whole batch. Each row's numbers are those of `step` (`matmul_panels` sums every
    /// output in the same order however many rows it is given).
    fn step_many(
        &self,
        images: &[(&[f32], usize)],
        tokens: &[u32],
        states: &mut [f32],
        log_probs: &mut Vec<f32>,
    ) {
        if images.iter().any(|(image, _)| image.is_empty()) {
            return step_each(self, images, tokens, states, log_probs);
        }
        let x = self.lstm_inputs(images, tokens, states);
        self.lstm_and_words(&x, &self.gates, states, log_probs);
    }

    fn attention<'a>(&self, state: &'a [f32]) -> Option<&'a [f32]> {
        Some(&state[2 * self.config.hidden..])
    }
}
