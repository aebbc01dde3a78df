//! Direct feedback alignment: each area below the heads receives `B_k · e_out`, the pathway's
//! output error through its own fixed random matrix, checked against a computation by hand;
//! and a brain learning by it on the built-in data lowers its losses.
//!
//! Tiny widths (nf 4, nz 8) keep the hand computation small.

use ndarray::{Array1, Array2, Array4, ArrayD, ArrayViewD, CowArray, Ix2, IxDyn};
use ndarray_rand::rand::Rng;
use padsim::brain::schedule::Condition;
use padsim::brain::Brain;
use padsim::cortex::{Activity, Architecture, CorticalArea};
use padsim::data::synthetic::{generate_split, SplitTag};
use padsim::plasticity::{AdamConfig, ErrorContext, PlasticityConfig, PlasticityRule, RuleKind};

fn brain_with_dfa(seed: u64) -> Brain {
    let arch = Architecture::pad(4, 8);
    let mut brain = Brain::new(
        &arch,
        Condition::FullPad.schedule(),
        AdamConfig::default(),
        seed,
    );
    let plasticity = PlasticityConfig {
        feedforward: RuleKind::DirectFeedbackAlignment,
        ..PlasticityConfig::default()
    };
    plasticity.install(&mut brain.cortex, seed).unwrap();
    brain
}

fn images(seed: u64, n: usize) -> Activity {
    let set = generate_split(seed, SplitTag::Train, n);
    Activity::from_nchw(set.batch_f32(&(0..n).collect::<Vec<_>>()).view())
}

fn leaky_derivative(a: f32) -> f64 {
    if a > 0.0 {
        1.0
    } else {
        0.2
    }
}

/// `δ_k = (B_k · e_out) ⊙ f'(a_k)` by hand, `[C, N, H, W]`, in f64.
fn dfa_delta(area: &CorticalArea, e_out: &Array2<f64>) -> Array4<f64> {
    let out = area.output().maps();
    let (c, n, h, w) = out.dim();
    let b = area
        .rule
        .state()
        .expect("B is drawn at the first backward pass")
        .view()
        .into_dimensionality::<Ix2>()
        .unwrap();
    assert_eq!(b.dim(), (c * h * w, e_out.ncols()), "{}", area.full_name);
    Array4::from_shape_fn((c, n, h, w), |(ch, i, y, x)| {
        let unit = (ch * h + y) * w + x; // PyTorch's [C, H, W] order
        let e: f64 = (0..e_out.ncols())
            .map(|j| f64::from(b[[unit, j]]) * e_out[[i, j]])
            .sum();
        e * leaky_derivative(out[[ch, i, y, x]])
    })
}

/// ∂L/∂W of a 4×4, stride-2, padding-1 convolution by hand: `Σ δ[o,n,y,x] · in[i,n,2y+ky−1,2x+kx−1]`.
fn conv_weight_gradient(delta: &Array4<f64>, input: &Activity) -> ArrayD<f64> {
    let (co, n, ho, wo) = delta.dim();
    let x = input.maps();
    let (ci, _, hi, wi) = x.dim();
    let mut g = ArrayD::zeros(vec![co, ci, 4, 4]);
    for o in 0..co {
        for i in 0..ci {
            for ky in 0..4 {
                for kx in 0..4 {
                    let mut sum = 0.0;
                    for b in 0..n {
                        for y in 0..ho {
                            for xx in 0..wo {
                                let (sy, sx) = (2 * y + ky, 2 * xx + kx);
                                if sy == 0 || sx == 0 || sy > hi || sx > wi {
                                    continue;
                                }
                                let v = f64::from(x[[i, b, sy - 1, sx - 1]]);
                                sum += delta[[o, b, y, xx]] * v;
                            }
                        }
                    }
                    g[[o, i, ky, kx]] = sum;
                }
            }
        }
    }
    g
}

fn assert_close(what: &str, actual: &ArrayD<f32>, expected: &ArrayD<f64>) {
    assert_eq!(actual.shape(), expected.shape(), "{what}");
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: the expected gradient is zero");
    for (a, e) in actual.iter().zip(expected) {
        assert!(
            (f64::from(*a) - e).abs() <= 1e-5 * scale,
            "{what}: {a} against {e} (scale {scale})"
        );
    }
}

#[test]
fn each_area_below_the_heads_receives_its_own_b_times_the_output_error() {
    let mut brain = brain_with_dfa(3);
    let x = images(5, 3);
    let percept = brain.cortex.feedforward.forward(&x);
    let mut rng = padsim::rng::stream(9, "errors");
    let grad_z = Array2::from_shape_fn(percept.z.raw_dim(), |_| rng.random::<f32>() - 0.5);
    let grad_d = Array1::from_shape_fn(percept.d.raw_dim(), |_| rng.random::<f32>() - 0.5);
    brain
        .cortex
        .feedforward
        .backward(Some(grad_z.view()), Some(grad_d.view()), false);

    // e_out = [δ_z, δ_d]: the latent head is linear (δ_z = ∂L/∂z), the discriminator a
    // sigmoid (δ_d = ∂L/∂d · d(1 − d)).
    let nz = grad_z.ncols();
    let e_out = Array2::from_shape_fn((x.batch(), nz + 1), |(i, j)| {
        if j < nz {
            f64::from(grad_z[[i, j]])
        } else {
            let d = f64::from(percept.d[i]);
            f64::from(grad_d[i]) * d * (1.0 - d)
        }
    });

    let trunk = &brain.cortex.feedforward.trunk.areas;
    for (k, area) in trunk.iter().enumerate() {
        let delta = dfa_delta(area, &e_out);
        let input = if k == 0 { &x } else { trunk[k - 1].output() };
        let weight = area.weight.grad.as_ref().expect("a gradient");
        assert_close(
            &format!("{}.weight", area.full_name),
            weight,
            &conv_weight_gradient(&delta, input),
        );
        let bias = delta.sum_axis(ndarray::Axis(3)).sum_axis(ndarray::Axis(2));
        let bias = bias.sum_axis(ndarray::Axis(1)).into_dyn();
        assert_close(
            &format!("{}.bias", area.full_name),
            area.bias.grad.as_ref().unwrap(),
            &bias,
        );
    }
    // Each area has its own B.
    let b = |k: usize| trunk[k].rule.state().unwrap().clone();
    assert_ne!(b(1).shape(), b(2).shape());
    assert_ne!(b(0).shape(), b(1).shape());
}

#[test]
fn a_head_without_error_contributes_zeros_to_the_output_error() {
    // NREM's loss reads only z: the discriminator head's column of e_out is zero, so V4's
    // gradient is B·[δ_z, 0] even after an earlier phase left a discriminator trace.
    let mut brain = brain_with_dfa(4);
    let x = images(6, 4);
    brain.cortex.feedforward.forward(&x);
    let z = brain.cortex.feedforward.encode(&x);
    let grad_z = z.mapv(|v| 0.1 * v);
    brain
        .cortex
        .feedforward
        .backward(Some(grad_z.view()), None, false);
    let mut e_out = Array2::zeros((x.batch(), z.ncols() + 1));
    e_out
        .slice_mut(ndarray::s![.., ..z.ncols()])
        .assign(&grad_z.mapv(f64::from));
    let v4 = &brain.cortex.feedforward.trunk.areas[2];
    let delta = dfa_delta(v4, &e_out);
    let v2 = brain.cortex.feedforward.trunk.areas[1].output();
    assert_close(
        "E.conv3.weight",
        v4.weight.grad.as_ref().unwrap(),
        &conv_weight_gradient(&delta, v2),
    );
    assert!(brain
        .cortex
        .feedforward
        .discriminator
        .area
        .weight
        .grad
        .is_none());
}

/// A rule under which no error arrives: the area's synapses do not learn.
#[derive(Clone, Debug)]
struct Silent;

impl PlasticityRule for Silent {
    fn name(&self) -> &str {
        "silent"
    }
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight)
    }
    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(Silent)
    }
    fn needs_error_from_above(&self) -> bool {
        false
    }
    fn arriving_error(
        &mut self,
        _: Option<Activity>,
        output: &Activity,
        _: &ErrorContext,
    ) -> Activity {
        Activity::zeros(
            output.channels(),
            output.batch(),
            output.height(),
            output.width(),
        )
    }
}

/// The mean of the wake phase's `total` loss over `batches`, once per pass.
fn wake_totals(brain: &mut Brain, batches: &[Activity], passes: usize) -> Vec<f64> {
    (0..passes)
        .map(|_| {
            let sum: f64 = batches
                .iter()
                .map(|x| {
                    let losses = brain.cycle(x);
                    let (_, wake) = losses.iter().find(|(s, _)| s == "wake").unwrap();
                    wake.iter().find(|(t, _)| *t == "total").unwrap().1
                })
                .sum();
            sum / batches.len() as f64
        })
        .collect()
}

#[test]
fn a_brain_learning_by_direct_feedback_alignment_lowers_its_losses() {
    // Against the control that matters: the same brain whose trunk (V1, V2, V4) receives no
    // error at all (the heads and G still learn), so the difference is the trunk's learning
    // by DFA.
    let set = generate_split(0, SplitTag::Train, 256);
    let batches: Vec<Activity> = (0..8)
        .map(|b| {
            let idx: Vec<usize> = (32 * b..32 * (b + 1)).collect();
            Activity::from_nchw(set.batch_f32(&idx).view())
        })
        .collect();
    let mut dfa = brain_with_dfa(0);
    let mut silent = dfa.clone();
    for area in &mut silent.cortex.feedforward.trunk.areas {
        area.rule = Box::new(Silent);
    }
    let learning = wake_totals(&mut dfa, &batches, 8);
    let control = wake_totals(&mut silent, &batches, 8);
    eprintln!("wake loss by pass, DFA: {learning:.4?}\ntrunk without error: {control:.4?}");
    let (first, last) = (learning[0], learning[learning.len() - 1]);
    assert!(last < 0.9 * first, "DFA: {first} -> {last}");
    let control_last = control[control.len() - 1];
    assert!(
        last < 0.95 * control_last,
        "DFA {last} against a silent trunk {control_last}"
    );
    // B stayed fixed while W learnt.
    let b = dfa.cortex.feedforward.trunk.areas[1].rule.state().unwrap();
    let mut again = brain_with_dfa(0);
    again.cycle(&batches[0]);
    assert_eq!(
        b,
        again.cortex.feedforward.trunk.areas[1]
            .rule
            .state()
            .unwrap()
    );
}
