//! Finite-difference gradient checks, in f64, of every kernel, activation and loss, over PAD's
//! shapes (k4 s2 p1, k4 s2 p0, k4 s1 p0), 1 and 3 channels, odd batch sizes, and a few others.
//!
//! Each check builds a scalar `L = <r, f(θ)>` with a fixed random `r`, computes ∂L/∂θ with the
//! kernel's backward and compares it with `(L(θ + h) − L(θ − h)) / 2h` for every element.

use ndarray::{Array2, ArrayView2};
use padsim::cortex::{Architecture, AreaKind, AreaSpec, Connectivity};
use padsim::kernels::conv::{
    self, ConvGeometry, ConvScratch, KeptInput, PatchGrid, SynapticGradients, Update,
};
use padsim::kernels::loss;
use padsim::kernels::Activation;

/// Deterministic uniform(-1, 1) numbers.
fn sample(len: usize, seed: u64) -> Vec<f64> {
    let mut s = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Kernels tested on their pre-activation outputs.
const IDENTITY: Activation = Activation::Identity;

/// Synaptic gradients that the kernels add to, as PyTorch's `.grad`.
fn accumulate<'a>(weight: &'a mut [f64], bias: &'a mut [f64]) -> SynapticGradients<'a, f64> {
    SynapticGradients {
        weight,
        weight_update: Update::Accumulate,
        bias,
        bias_update: Update::Accumulate,
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Central differences of `loss` at `theta`, compared elementwise with `analytic`.
fn check(what: &str, theta: &[f64], analytic: &[f64], loss: impl Fn(&[f64]) -> f64) {
    assert_eq!(theta.len(), analytic.len(), "{what}: gradient size");
    let h = 1e-6;
    let mut probe = theta.to_vec();
    for i in 0..theta.len() {
        probe[i] = theta[i] + h;
        let up = loss(&probe);
        probe[i] = theta[i] - h;
        let down = loss(&probe);
        probe[i] = theta[i];
        let numeric = (up - down) / (2.0 * h);
        let tol = 1e-6 * (1.0 + numeric.abs().max(analytic[i].abs()));
        assert!(
            (numeric - analytic[i]).abs() <= tol,
            "{what}: element {i}: analytic {} vs numeric {numeric}",
            analytic[i]
        );
    }
}

/// (in, out, kernel, stride, padding, side, batch)
const SHAPES: [(usize, usize, usize, usize, usize, usize, usize); 8] = [
    (3, 4, 4, 2, 1, 8, 3), // PAD V1-like, colour
    (1, 4, 4, 2, 1, 8, 1), // PAD V1-like, grey, batch 1
    (4, 6, 4, 2, 1, 4, 5), // deeper, 4 -> 2
    (6, 5, 4, 2, 0, 4, 3), // PAD heads: 4x4 -> 1x1
    (5, 3, 4, 1, 0, 4, 3), // stride 1, no padding
    (2, 3, 3, 1, 1, 5, 3), // odd kernel, same padding
    (2, 2, 3, 2, 1, 7, 1), // odd map side
    (3, 2, 5, 3, 2, 9, 2), // large kernel and stride
];

/// Convolution forward into fresh buffers: `(y, col, grid)`.
fn conv_forward(
    x: &[f64],
    n: usize,
    side: usize,
    g: &ConvGeometry,
    w: &[f64],
    b: &[f64],
) -> (Vec<f64>, KeptInput<f64>, PatchGrid) {
    let (mut col, mut y) = (KeptInput::default(), Vec::new());
    let grid = conv::conv2d_forward(x, n, side, side, g, w, b, IDENTITY, &mut col, &mut y);
    (y, col, grid)
}

/// Convolution backward of `r` into fresh buffers: `(dw, db, dx)`.
fn conv_backward(
    r: &[f64],
    col: &KeptInput<f64>,
    grid: &PatchGrid,
    g: &ConvGeometry,
    w: &[f64],
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut dw, mut db, mut dx) = (vec![0.0; w.len()], vec![0.0; g.out_channels], Vec::new());
    conv::conv2d_backward(
        r,
        col,
        grid,
        g,
        w,
        accumulate(&mut dw, &mut db),
        &mut ConvScratch::new(),
        Some(&mut dx),
    );
    (dw, db, dx)
}

/// Transposed-convolution forward into fresh buffers: `(y, grid)`.
fn tconv_forward(
    x: &[f64],
    n: usize,
    side: usize,
    g: &ConvGeometry,
    w: &[f64],
    b: &[f64],
) -> (Vec<f64>, PatchGrid) {
    let (mut scratch, mut y) = (ConvScratch::new(), Vec::new());
    let grid =
        conv::conv_transpose2d_forward(x, n, side, side, g, w, b, IDENTITY, &mut scratch, &mut y);
    (y, grid)
}

/// Checks dx, dW and db of a convolution of `g` on `n` maps of `side` against finite
/// differences.
fn check_conv(g: ConvGeometry, side: usize, n: usize, seed: u64) {
    let x = sample(g.in_channels * n * side * side, seed);
    let w = sample(g.weight_len(), seed + 1);
    let b = sample(g.out_channels, seed + 2);
    let (y, col, grid) = conv_forward(&x, n, side, &g, &w, &b);
    let r = sample(y.len(), seed + 3);
    let (dw, db, dx) = conv_backward(&r, &col, &grid, &g, &w);
    let l = |x: &[f64], w: &[f64], b: &[f64]| dot(&r, &conv_forward(x, n, side, &g, w, b).0);
    check(&format!("conv {g:?} dx"), &x, &dx, |x| l(x, &w, &b));
    check(&format!("conv {g:?} dw"), &w, &dw, |w| l(&x, w, &b));
    check(&format!("conv {g:?} db"), &b, &db, |b| l(&x, &w, b));
}

/// [`check_conv`] for a transposed convolution.
fn check_tconv(g: ConvGeometry, side: usize, n: usize, seed: u64) {
    let x = sample(g.in_channels * n * side * side, seed);
    let w = sample(g.weight_len(), seed + 1);
    let b = sample(g.out_channels, seed + 2);
    let (y, grid) = tconv_forward(&x, n, side, &g, &w, &b);
    let r = sample(y.len(), seed + 3);
    let mut dw = vec![0.0; w.len()];
    let mut db = vec![0.0; b.len()];
    let (mut scratch, mut dx) = (ConvScratch::new(), Vec::new());
    conv::conv_transpose2d_backward(
        &r,
        &x,
        &grid,
        &g,
        &w,
        accumulate(&mut dw, &mut db),
        &mut scratch,
        Some(&mut dx),
    );
    let l = |x: &[f64], w: &[f64], b: &[f64]| dot(&r, &tconv_forward(x, n, side, &g, w, b).0);
    check(&format!("tconv {g:?} dx"), &x, &dx, |x| l(x, &w, &b));
    check(&format!("tconv {g:?} dw"), &w, &dw, |w| l(&x, w, &b));
    check(&format!("tconv {g:?} db"), &b, &db, |b| l(&x, &w, b));
}

fn geometry((ci, co, k, s, p): (usize, usize, usize, usize, usize)) -> ConvGeometry {
    ConvGeometry {
        in_channels: ci,
        out_channels: co,
        kernel: k,
        stride: s,
        padding: p,
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for (case, &(ci, co, k, s, p, side, n)) in SHAPES.iter().enumerate() {
        check_conv(geometry((ci, co, k, s, p)), side, n, case as u64 * 10);
    }
}

#[test]
fn conv_transpose2d_gradients_match_finite_differences() {
    // (in, out, k, s, p, input side, batch): PAD's generator shapes and others.
    let shapes = [
        (5, 4, 4, 1, 0, 1, 3), // tconv1: 1x1 -> 4x4
        (4, 3, 4, 2, 1, 4, 3), // tconv2..4: doubling
        (3, 1, 4, 2, 1, 3, 1), // to one channel, batch 1
        (2, 3, 4, 2, 0, 2, 5), // no padding
        (3, 2, 3, 1, 1, 4, 2), // odd kernel
        (2, 2, 3, 2, 1, 3, 3), // odd kernel, stride 2
    ];
    for (case, &(ci, co, k, s, p, side, n)) in shapes.iter().enumerate() {
        check_tconv(geometry((ci, co, k, s, p)), side, n, 100 + case as u64 * 10);
    }
}

#[test]
fn dense_areas_are_fully_connected_and_match_finite_differences() {
    // A small network with dense areas: 2×5×5 images → dense 6 → dense 4 (latent) / 1; the
    // feedback pathway starts dense into 3 maps of 3×3, then a transposed convolution.
    let arch = Architecture {
        image_channels: 2,
        image_side: 5,
        feedforward: vec![AreaSpec::dense("fc1", 6)],
        latent: AreaSpec::dense("latent", 4),
        discriminator: AreaSpec::dense("dis", 1),
        feedback: vec![
            AreaSpec::dense("fc1", 3).side(3),
            AreaSpec::conv_transpose("out", 2, 3, 2, 1),
        ],
    };
    let n = 3;
    for (case, area) in arch.layout().unwrap().iter().enumerate() {
        let (g, side, seed) = (area.geometry, area.input.side, 200 + case as u64 * 10);
        match (area.spec.kind, area.connectivity) {
            (AreaKind::Dense, Connectivity::Conv) => {
                // y[o, i] = Σ_j W[o, j] x_i[j] + b[o], x_i the image's C·S·S inputs flattened
                // channel-major: nn.Linear on torch.flatten(x, 1).
                let x = sample(g.in_channels * n * side * side, seed);
                let w = sample(g.weight_len(), seed + 1);
                let b = sample(g.out_channels, seed + 2);
                let (y, _, _) = conv_forward(&x, n, side, &g, &w, &b);
                let inputs = g.in_channels * side * side;
                for o in 0..g.out_channels {
                    for i in 0..n {
                        let linear: f64 = (0..inputs)
                            .map(|j| {
                                let (c, pixel) = (j / (side * side), j % (side * side));
                                let xj = x[(c * n + i) * side * side + pixel];
                                w[o * inputs + j] * xj
                            })
                            .sum::<f64>()
                            + b[o];
                        assert!((y[o * n + i] - linear).abs() < 1e-12, "{}", area.full_name);
                    }
                }
                check_conv(g, side, n, seed);
            }
            (AreaKind::Dense, Connectivity::ConvTranspose) => check_tconv(g, side, n, seed),
            (AreaKind::ConvTranspose, _) => check_tconv(g, side, n, seed),
            (kind, _) => panic!("{}: unexpected {kind}", area.full_name),
        }
    }
}

#[test]
fn weight_gradients_accumulate_across_calls() {
    // PyTorch accumulates .grad; so do the kernels (dW += ...), without touching dx.
    let g = ConvGeometry {
        in_channels: 2,
        out_channels: 3,
        kernel: 4,
        stride: 2,
        padding: 1,
    };
    let x = sample(2 * 2 * 8 * 8, 7);
    let w = sample(g.weight_len(), 8);
    let b = sample(3, 9);
    let (y, col, grid) = conv_forward(&x, 2, 8, &g, &w, &b);
    let r = sample(y.len(), 10);
    let mut scratch = ConvScratch::new();
    let mut backward = |dw: &mut [f64], db: &mut [f64]| {
        conv::conv2d_backward(
            &r,
            &col,
            &grid,
            &g,
            &w,
            accumulate(dw, db),
            &mut scratch,
            None,
        )
    };
    let (mut dw1, mut db1) = (vec![0.0; w.len()], vec![0.0; 3]);
    backward(&mut dw1, &mut db1);
    let (mut dw2, mut db2) = (dw1.clone(), db1.clone());
    backward(&mut dw2, &mut db2);
    for (once, twice) in dw1.iter().chain(&db1).zip(dw2.iter().chain(&db2)) {
        assert!((2.0 * once - twice).abs() < 1e-12);
    }
}

#[test]
fn reused_buffers_give_the_results_of_fresh_ones() {
    // Areas keep their buffers from pass to pass, across batch sizes; nothing stale may leak.
    let g = ConvGeometry {
        in_channels: 3,
        out_channels: 4,
        kernel: 4,
        stride: 2,
        padding: 1,
    };
    let (w, b) = (sample(g.weight_len(), 20), sample(4, 21));
    let (mut col, mut y, mut dx) = (KeptInput::default(), Vec::new(), Vec::new());
    let mut scratch = ConvScratch::new();
    for (pass, n) in [3usize, 1, 5, 2].into_iter().enumerate() {
        let x = sample(3 * n * 8 * 8, 30 + pass as u64);
        let grid = conv::conv2d_forward(&x, n, 8, 8, &g, &w, &b, IDENTITY, &mut col, &mut y);
        let (fresh_y, fresh_col, _) = conv_forward(&x, n, 8, &g, &w, &b);
        assert_eq!(
            (&y, col.values()),
            (&fresh_y, fresh_col.values()),
            "conv forward, batch {n}"
        );
        let r = sample(y.len(), 40 + pass as u64);
        let (mut dw, mut db) = (vec![0.0; w.len()], vec![0.0; 4]);
        conv::conv2d_backward(
            &r,
            &col,
            &grid,
            &g,
            &w,
            accumulate(&mut dw, &mut db),
            &mut scratch,
            Some(&mut dx),
        );
        let (fresh_dw, fresh_db, fresh_dx) = conv_backward(&r, &fresh_col, &grid, &g, &w);
        assert_eq!(
            (dx.as_slice(), dw, db),
            (fresh_dx.as_slice(), fresh_dw, fresh_db),
            "conv backward, batch {n}"
        );
        let z = sample(3 * n * 4 * 4, 50 + pass as u64);
        let tg = ConvGeometry {
            in_channels: 3,
            out_channels: 2,
            ..g
        };
        let tw = sample(tg.weight_len(), 22);
        conv::conv_transpose2d_forward(
            &z,
            n,
            4,
            4,
            &tg,
            &tw,
            &b[..2],
            IDENTITY,
            &mut scratch,
            &mut y,
        );
        assert_eq!(
            y,
            tconv_forward(&z, n, 4, &tg, &tw, &b[..2]).0,
            "tconv, batch {n}"
        );
    }
}

#[test]
fn activation_gradients_match_finite_differences() {
    // Keep LeakyReLU's inputs away from its kink, where the derivative is not defined.
    let u: Vec<f64> = sample(200, 1)
        .into_iter()
        .map(|v| if v.abs() < 1e-3 { 0.5 } else { 3.0 * v })
        .collect();
    let r = sample(u.len(), 2);
    for act in [
        Activation::Identity,
        Activation::LeakyRelu(0.2),
        Activation::Tanh,
        Activation::Sigmoid,
    ] {
        let mut y = u.clone();
        act.forward_in_place(&mut y);
        let mut grad = r.clone();
        act.backward_in_place(&y, &mut grad);
        check(&format!("{act:?}"), &u, &grad, |u| {
            let mut y = u.to_vec();
            act.forward_in_place(&mut y);
            dot(&r, &y)
        });
    }
}

#[test]
fn loss_gradients_match_finite_differences() {
    let pred = sample(30, 3);
    let target = sample(30, 4);
    let (_, g) = loss::mse(&pred, &target);
    check("mse", &pred, &g, |p| loss::mse(p, &target).0);

    let d: Vec<f64> = sample(7, 5).into_iter().map(|v| 0.5 + 0.45 * v).collect();
    for target in [0.0, 1.0] {
        let (_, g) = loss::bce(&d, target);
        check(&format!("bce target {target}"), &d, &g, |d| {
            loss::bce(d, target).0
        });
    }

    // KL on a batch with PAD's small-std regime and a unit-scale one; odd batch sizes.
    for (batch, scale) in [(5usize, 1.0), (3, 0.05), (64, 1.0)] {
        let z: Vec<f64> = sample(batch * 4, 6 + batch as u64)
            .into_iter()
            .map(|v| scale * v + 0.1)
            .collect();
        let view = |z: &[f64]| Array2::from_shape_vec((batch, 4), z.to_vec()).unwrap();
        let (_, g) = loss::kl_latent(view(&z).view());
        check(
            &format!("kl batch {batch} scale {scale}"),
            &z,
            g.as_slice().unwrap(),
            |z| loss::kl_latent(view(z).view()).0,
        );
    }

    // InfoNCE of contrastive dreaming: 5 items, two views each, at two temperatures.
    let h = sample(10 * 6, 12);
    let view = |a: &[f64]| Array2::from_shape_vec((10, 6), a.to_vec()).unwrap();
    for tau in [0.1, 0.5] {
        let (_, g) = loss::info_nce(view(&h).view(), tau);
        check(
            &format!("info_nce tau {tau}"),
            &h,
            g.as_slice().unwrap(),
            |a| loss::info_nce(view(a).view(), tau).0,
        );
    }

    let logits = sample(5 * 10, 8);
    let labels = [3, 0, 9, 9, 4];
    let view = |a: &[f64]| Array2::from_shape_vec((5, 10), a.to_vec()).unwrap();
    let (_, g) = loss::softmax_cross_entropy(view(&logits).view(), &labels);
    check("cross-entropy", &logits, g.as_slice().unwrap(), |a| {
        loss::softmax_cross_entropy(view(a).view(), &labels).0
    });
}

#[test]
fn kl_gradient_accepts_strided_views() {
    // The latent head hands KL a transposed view of its [nz, N] maps.
    let z = Array2::from_shape_vec((4, 6), sample(24, 11)).unwrap();
    let (l1, g1) = loss::kl_latent(z.t());
    let (l2, g2) = loss::kl_latent::<f64>(ArrayView2::from(&z.t().as_standard_layout()));
    assert_eq!(l1, l2);
    assert_eq!(g1, g2);
}
