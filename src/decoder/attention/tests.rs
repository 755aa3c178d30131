//! Gradients against finite differences, generation against training, groups against threads.

use super::*;
use crate::nn::gradcheck::{check, random};

const CONFIG: AttentionConfig = AttentionConfig {
    vocab: 7,
    feature_dim: 3,
    regions: 4,
    embed_dim: 3,
    hidden: 3,
    attention_dim: 2,
    dropout: 0.5,
    alpha_c: 1.0,
};

/// 18 captions of 2 to 6 tokens over 6 images (each image's grid repeated for its captions).
fn batch(groups: usize) -> Batch<f64> {
    let (r, c) = (CONFIG.regions, CONFIG.feature_dim);
    let grids: Vec<Vec<f64>> = (0..6)
        .map(|i| {
            random(r * c, 40 + i)
                .iter()
                .map(|v| v.abs() * 2.0)
                .collect()
        })
        .collect();
    let captions: Vec<Vec<u32>> = (0..18)
        .map(|k| {
            (0..2 + k % 5)
                .map(|t| 1 + ((k * 3 + t * 5) % 6) as u32)
                .collect()
        })
        .collect();
    let mut batch = Batch::default();
    batch.fill(captions.len(), groups, |k| {
        (grids[k % 6].as_slice(), captions[k].as_slice())
    });
    batch
}

fn run(params: &[f64], batch: &Batch<f64>) -> (f64, Vec<f64>) {
    let mut grads = vec![0.0; params.len()];
    let mut ws = Workspace::default();
    let loss = forward_backward(params, &mut grads, &CONFIG, batch, &mut ws, None, 2);
    (loss, grads)
}

#[test]
fn gradients_match_finite_differences() {
    let params: Vec<f64> = CONFIG
        .init(&mut Rng::new(5))
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let batch = batch(2);
    assert_eq!(batch.groups.len(), 2);
    let (_, grads) = run(&params, &batch);
    let layout = CONFIG.layout();
    for slot in &layout.slots {
        let range = slot.offset..slot.offset + slot.len;
        check(
            &slot.name,
            &grads[range.clone()],
            &params[range.clone()],
            |v| {
                let mut probe = params.clone();
                probe[range.clone()].copy_from_slice(v);
                run(&probe, &batch).0
            },
        );
    }
}

#[test]
fn policy_gradient_matches_finite_differences() {
    // Self-critical training's step: every position weighted by its caption's advantage (of
    // either sign), no doubly stochastic term, dropout off.
    let config = crate::decoder::DecoderConfig::Attention(CONFIG).without_regulariser();
    let crate::decoder::DecoderConfig::Attention(config) = config else {
        unreachable!()
    };
    let params: Vec<f64> = config
        .init(&mut Rng::new(9))
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let mut batch = batch(2);
    batch.weigh_captions(|k| (k as f64 - 8.5) / 40.0);
    let mut grads = vec![0.0; params.len()];
    let mut ws = Workspace::default();
    let value = forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 2);
    let policy_loss = |v: &[f64]| loss(v, &config, &batch, &mut Workspace::default(), 2);
    assert!((value - policy_loss(&params)).abs() < 1e-12);
    check("all parameters", &grads, &params, policy_loss);
    // No advantage, no gradient.
    batch.weigh_captions(|_| 0.0);
    let mut grads = vec![0.0; params.len()];
    forward_backward(&params, &mut grads, &config, &batch, &mut ws, None, 2);
    assert!(grads.iter().all(|&g| g == 0.0));
}

#[test]
fn generation_steps_give_the_training_forward_pass_log_probabilities() {
    let params = CONFIG.init(&mut Rng::new(7));
    let reference = batch(1);
    let (r, c, v) = (CONFIG.regions, CONFIG.feature_dim, CONFIG.vocab);
    // The first (longest) packed caption, through the training forward pass in f32.
    let grid: Vec<f32> = reference.features[..r * c]
        .iter()
        .map(|&x| x as f32)
        .collect();
    let caption: Vec<u32> = (0..reference.packing().offset.len())
        .map(|t| reference.inputs[reference.packing().offset[t]])
        .collect();
    let mut one = Batch::<f32>::default();
    let tokens: Vec<u32> = caption.iter().copied().chain([3]).collect();
    one.fill(1, 1, |_| (grid.as_slice(), tokens.as_slice()));
    let mut ws = Workspace::default();
    forward(&params, &CONFIG, &one, &mut ws, None, 1);
    let generator = AttentionGenerator::new(&CONFIG, &params);
    let image = generator.image(&grid);
    let mut state = generator.initial_state(&image);
    let mut log_probs = Vec::new();
    for (t, &token) in caption.iter().enumerate() {
        generator.step(&image, &[token], &mut state, &mut log_probs);
        let mut want = ws.logits[t * v..][..v].to_vec();
        log_softmax(&mut want);
        for (got, want) in log_probs.iter().zip(&want) {
            assert!((got - want).abs() < 1e-4, "step {t}: {got} vs {want}");
        }
        let alpha = generator.attention(&state).unwrap();
        for (got, want) in alpha.iter().zip(&ws.alpha[t * r..][..r]) {
            assert!(
                (got - want).abs() < 1e-5,
                "step {t}: attention {got} vs {want}"
            );
        }
    }
}

#[test]
fn a_blank_image_skips_the_attention_with_the_same_numbers() {
    let params = CONFIG.init(&mut Rng::new(8));
    let generator = AttentionGenerator::new(&CONFIG, &params);
    let blank_grid = vec![0.0f32; CONFIG.regions * CONFIG.feature_dim];
    let blank = generator.image(&blank_grid);
    assert!(blank.is_empty(), "a blank grid is prepared as nothing");
    let full = generator.prepared(&blank_grid);
    let h = CONFIG.hidden;
    // Two hypotheses, each with its own words.
    let mut blank_states = [
        generator.initial_state(&blank),
        generator.initial_state(&blank),
    ]
    .concat();
    let mut full_states = [
        generator.initial_state(&full),
        generator.initial_state(&full),
    ]
    .concat();
    assert_eq!(blank_states, full_states);
    let (mut blank_log_probs, mut full_log_probs) = (Vec::new(), Vec::new());
    for tokens in [[1, 2], [4, 4], [6, 3], [2, 5]] {
        generator.step(&blank, &tokens, &mut blank_states, &mut blank_log_probs);
        generator.step(&full, &tokens, &mut full_states, &mut full_log_probs);
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&blank_log_probs), bits(&full_log_probs));
        for (blank, full) in blank_states
            .chunks_exact(generator.state_size())
            .zip(full_states.chunks_exact(generator.state_size()))
        {
            assert_eq!(bits(&blank[..2 * h]), bits(&full[..2 * h]));
            for (got, want) in blank[2 * h..].iter().zip(&full[2 * h..]) {
                assert!((got - want).abs() < 1e-6, "attention {got} vs {want}");
            }
        }
    }
}

#[test]
fn groups_run_on_their_own_threads_with_the_same_result() {
    let params: Vec<f64> = CONFIG
        .init(&mut Rng::new(6))
        .iter()
        .map(|&v| f64::from(v))
        .collect();
    let (one, three) = (batch(1), batch(3));
    assert_eq!((one.groups.len(), three.groups.len()), (1, 3));
    let ((loss_one, grads_one), (loss_three, grads_three)) =
        (run(&params, &one), run(&params, &three));
    assert!((loss_one - loss_three).abs() < 1e-12);
    for (a, b) in grads_one.iter().zip(&grads_three) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}
