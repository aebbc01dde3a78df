//! The paper's linear-separability probe: a linear layer from latent features to classes,
//! trained by plain mini-batch SGD on softmax cross-entropy, while the encoder stays fixed.
//!
//! ```text
//! logits  a = W z + b                         W: [classes, dim], b: [classes]
//! loss    L = mean_i [logsumexp(a_i) − a_i,c_i]          over one mini-batch
//! step    W ← W − lr · (1/B) Σ_i (softmax(a_i) − onehot(c_i)) z_iᵀ
//!         b ← b − lr · (1/B) Σ_i (softmax(a_i) − onehot(c_i))
//! init    W, b ~ U(−1/√dim, 1/√dim)           (nn.Linear's default)
//! ```
//!
//! PAD equivalent: the reference's linear evaluation, `classifier = nn.Linear(nz, 10)` trained
//! with `optim.SGD(classifier.parameters(), lr=0.2)` and `nn.CrossEntropyLoss()` for 20 epochs
//! over a `DataLoader(features, batch_size=64, shuffle=True)` (the last, partial batch kept),
//! then `accuracy = (classifier(z_test).argmax(1) == y_test).float().mean()`.
//!
//! Determinism: the initial synapses come from the stream `(seed, "probe/init")` and the order
//! of epoch `e` from `(seed, "probe/epoch/e")`; the products run through [`matmul`], which
//! sums every element in the same order whatever the thread count. Same seed, same bits.

use crate::cortex::Parameter;
use crate::kernels::gemm::{matmul, Op};
use crate::kernels::loss::softmax_cross_entropy;
use crate::plasticity::{Optimiser, Sgd, SgdConfig};
use crate::rng;
use ndarray::{Array1, Array2, ArrayView2, Axis, Ix1, Ix2};
use ndarray_rand::rand::seq::SliceRandom;
use ndarray_rand::rand_distr::{Distribution, Uniform};
use serde::{Deserialize, Serialize};

/// A linear read-out `logits = x Wᵀ + b` of feature vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearClassifier {
    /// Synapses from each feature to each class unit, `[classes, dim]`.
    pub weight: Array2<f32>,
    /// One bias per class unit, `[classes]`.
    pub bias: Array1<f32>,
}

impl LinearClassifier {
    /// PyTorch's default `nn.Linear(dim, classes)` initialisation, drawn from the stream
    /// `(seed, "probe/init")`: every weight (row-major) and then every bias from
    /// `U(−1/√dim, 1/√dim)`. This is the starting point of [`train_sgd_probe`].
    pub fn pytorch_default(classes: usize, dim: usize, seed: u64) -> Self {
        assert!(
            classes >= 1 && dim >= 1,
            "a probe needs classes and features"
        );
        // kaiming_uniform_(a = √5) on the weight gives the bound √(6 / ((1 + 5)·fan_in)),
        // which is the bias's 1/√fan_in too.
        let bound = 1.0 / (dim as f32).sqrt();
        let uniform = Uniform::new(-bound, bound).expect("non-empty range");
        let mut stream = rng::stream(seed, "probe/init");
        let weight = Array2::from_shape_simple_fn((classes, dim), || uniform.sample(&mut stream));
        let bias = Array1::from_shape_simple_fn(classes, || uniform.sample(&mut stream));
        LinearClassifier { weight, bias }
    }

    /// Number of classes (output units).
    pub fn classes(&self) -> usize {
        self.weight.nrows()
    }

    /// Number of input features.
    pub fn dim(&self) -> usize {
        self.weight.ncols()
    }

    /// `x Wᵀ + b` for feature rows `x` (`[n, dim]`), `[n, classes]`.
    pub fn logits(&self, x: ArrayView2<f32>) -> Array2<f32> {
        linear_forward(x, &self.weight, &self.bias)
    }

    /// The class with the largest logit for each row (the first one on ties, like
    /// `torch.argmax`).
    pub fn predict(&self, x: ArrayView2<f32>) -> Vec<u8> {
        argmax_rows(self.logits(x).view())
    }

    /// Fraction of rows of `x` whose predicted class is the label, in [0, 1] (NaN for no
    /// rows).
    pub fn accuracy(&self, x: ArrayView2<f32>, labels: &[u8]) -> f64 {
        assert_eq!(x.nrows(), labels.len(), "accuracy: one label per row");
        fraction_correct(&self.predict(x), labels)
    }
}

/// Hyperparameters of the SGD probe; the defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// SGD learning rate (paper: 0.2).
    pub lr: f32,
    /// Mini-batch size (paper: 64); the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// Drop the last, partial batch of each epoch, as the reference's data loader does
    /// (`drop_last=True`); off by default.
    pub drop_last: bool,
    /// Passes over the training features (paper: 20).
    pub epochs: usize,
    /// Seed of the initial synapses and of the epoch orders.
    pub seed: u64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            lr: 0.2,
            batch_size: 64,
            drop_last: false,
            epochs: 20,
            seed: 0,
        }
    }
}

/// Trains the paper's linear probe on features `x` (`[n, dim]`) with class `labels`
/// (`< classes`): [`LinearClassifier::pytorch_default`], then `epochs` shuffled passes of
/// mini-batch SGD on the mean softmax cross-entropy of each batch.
pub fn train_sgd_probe(
    x: ArrayView2<f32>,
    labels: &[u8],
    classes: usize,
    config: &ProbeConfig,
) -> LinearClassifier {
    let (n, dim) = x.dim();
    assert_eq!(n, labels.len(), "train_sgd_probe: one label per row");
    assert!(config.batch_size >= 1, "train_sgd_probe: batch_size is 0");
    assert!(
        (1..=256).contains(&classes),
        "train_sgd_probe: {classes} classes do not fit u8 labels"
    );
    if let Some(&bad) = labels.iter().find(|&&c| c as usize >= classes) {
        panic!("train_sgd_probe: label {bad} outside 0..{classes}");
    }
    let init = LinearClassifier::pytorch_default(classes, dim, config.seed);
    let mut weight = Parameter::new("probe.weight", init.weight.into_dyn());
    let mut bias = Parameter::new("probe.bias", init.bias.into_dyn());
    let mut sgd = Sgd::new(SgdConfig::plain(f64::from(config.lr)));
    let x = x.as_standard_layout();
    let labels: Vec<usize> = labels.iter().map(|&c| c as usize).collect();
    for epoch in 0..config.epochs {
        let batches = epoch_batches(n, config.batch_size, config.seed, epoch);
        let full = |b: &Vec<usize>| !config.drop_last || b.len() == config.batch_size;
        for batch in batches.into_iter().filter(full) {
            let batch_x = x.select(Axis(0), &batch);
            let batch_labels: Vec<usize> = batch.iter().map(|&i| labels[i]).collect();
            let (w, b) = (as_matrix(&weight), as_vector(&bias));
            let logits = linear_forward(batch_x.view(), &w, &b);
            let (_, grad_logits) = softmax_cross_entropy(logits.view(), &batch_labels);
            // ∂L/∂W = (∂L/∂a)ᵀ z, ∂L/∂b = Σ_rows ∂L/∂a (the 1/B is already in ∂L/∂a).
            let mut grad_weight = Array2::<f32>::zeros((classes, dim));
            matmul(
                classes,
                dim,
                batch.len(),
                contiguous(&grad_logits),
                Op::Transposed,
                contiguous(&batch_x),
                Op::Plain,
                0.0,
                grad_weight.as_slice_mut().expect("fresh array"),
            );
            weight.grad = Some(grad_weight.into_dyn());
            bias.grad = Some(grad_logits.sum_axis(Axis(0)).into_dyn());
            sgd.step(&mut [&mut weight, &mut bias]);
        }
    }
    LinearClassifier {
        weight: as_matrix(&weight),
        bias: as_vector(&bias),
    }
}

/// The mini-batches of one epoch: a permutation of `0..n` from the stream
/// `(seed, "probe/epoch/<epoch>")`, cut into batches of `batch_size`, the last one possibly
/// shorter (a DataLoader without `drop_last`).
fn epoch_batches(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng::stream(seed, &format!("probe/epoch/{epoch}")));
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

fn as_matrix(p: &Parameter) -> Array2<f32> {
    p.value
        .clone()
        .into_dimensionality::<Ix2>()
        .expect("probe weight is a matrix")
}

fn as_vector(p: &Parameter) -> Array1<f32> {
    p.value
        .clone()
        .into_dimensionality::<Ix1>()
        .expect("probe bias is a vector")
}

fn contiguous(a: &Array2<f32>) -> &[f32] {
    a.as_slice().expect("standard-layout array")
}

/// `x Wᵀ + b` by one GEMM.
fn linear_forward(x: ArrayView2<f32>, weight: &Array2<f32>, bias: &Array1<f32>) -> Array2<f32> {
    let (n, dim) = x.dim();
    let classes = weight.nrows();
    assert_eq!(
        dim,
        weight.ncols(),
        "classifier expects {} features, got {dim}",
        weight.ncols()
    );
    let x = x.as_standard_layout();
    let weight = weight.as_standard_layout();
    let mut logits = Array2::<f32>::zeros((n, classes));
    matmul(
        n,
        classes,
        dim,
        x.as_slice().expect("standard layout"),
        Op::Plain,
        weight.as_slice().expect("standard layout"),
        Op::Transposed,
        0.0,
        logits.as_slice_mut().expect("fresh array"),
    );
    logits += bias;
    logits
}

/// Index of the largest entry of each row; the first one on ties; NaN entries never win.
pub(crate) fn argmax_rows<T: num_traits::Float>(scores: ArrayView2<T>) -> Vec<u8> {
    scores
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                if v > row[best] || (row[best].is_nan() && !v.is_nan()) {
                    best = c;
                }
            }
            best as u8
        })
        .collect()
}

pub(crate) fn fraction_correct(predicted: &[u8], labels: &[u8]) -> f64 {
    let correct = predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
    correct as f64 / labels.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn init_lies_within_the_pytorch_bound_and_depends_on_the_seed() {
        let a = LinearClassifier::pytorch_default(10, 256, 1);
        let bound = 1.0 / 16.0;
        assert!(a.weight.iter().chain(&a.bias).all(|v| v.abs() <= bound));
        // Uniform, not degenerate: the spread uses most of the interval.
        let max = a.weight.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max > 0.9 * bound);
        assert_ne!(a, LinearClassifier::pytorch_default(10, 256, 2));
        assert_eq!(a, LinearClassifier::pytorch_default(10, 256, 1));
    }

    #[test]
    fn epochs_keep_the_last_partial_batch_and_cover_every_sample_once() {
        let batches = epoch_batches(5, 2, 7, 0);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let mut all: Vec<usize> = batches.concat();
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn each_epoch_has_its_own_order() {
        assert_ne!(epoch_batches(50, 64, 7, 0), epoch_batches(50, 64, 7, 1));
        assert_eq!(epoch_batches(50, 64, 7, 3), epoch_batches(50, 64, 7, 3));
    }

    #[test]
    fn logits_are_x_w_transposed_plus_b() {
        let probe = LinearClassifier {
            weight: array![[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]],
            bias: array![0.5, 0.0, -1.0],
        };
        let x = array![[1.0f32, 2.0], [-1.0, 0.0]];
        assert_eq!(
            probe.logits(x.view()),
            array![[1.5, 4.0, 2.0], [-0.5, 0.0, -2.0]]
        );
        assert_eq!(probe.predict(x.view()), [1, 1]);
        assert_eq!(probe.accuracy(x.view(), &[1, 0]), 0.5);
        // A transposed (non-contiguous) view gives the same answer.
        let xt = x.t().to_owned();
        assert_eq!(probe.logits(xt.t()), probe.logits(x.view()));
    }

    #[test]
    fn argmax_takes_the_first_of_ties_and_skips_nan() {
        let s = array![[1.0f32, 3.0, 3.0], [f32::NAN, 0.0, -1.0]];
        assert_eq!(argmax_rows(s.view()), [1, 1]);
    }

    #[test]
    fn drop_last_skips_the_partial_batch() {
        // Four samples and batches of 64: the only batch is partial, so with drop_last no step
        // is taken; without it one is.
        let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as f32 / 10.0);
        let labels = [0, 1, 0, 1];
        let config = |drop_last| ProbeConfig {
            epochs: 2,
            seed: 5,
            drop_last,
            ..ProbeConfig::default()
        };
        let initial = LinearClassifier::pytorch_default(2, 3, 5);
        assert_eq!(
            train_sgd_probe(x.view(), &labels, 2, &config(true)),
            initial
        );
        assert_ne!(
            train_sgd_probe(x.view(), &labels, 2, &config(false)),
            initial
        );
    }

    #[test]
    fn zero_epochs_return_the_initial_synapses() {
        let x = Array2::<f32>::ones((4, 3));
        let config = ProbeConfig {
            epochs: 0,
            seed: 5,
            ..ProbeConfig::default()
        };
        let probe = train_sgd_probe(x.view(), &[0, 1, 0, 1], 2, &config);
        assert_eq!(probe, LinearClassifier::pytorch_default(2, 3, 5));
    }

    #[test]
    fn config_defaults_are_the_papers_and_unknown_fields_are_rejected() {
        let c: ProbeConfig = toml::from_str("seed = 3").unwrap();
        assert_eq!((c.lr, c.batch_size, c.epochs, c.seed), (0.2, 64, 20, 3));
        assert!(toml::from_str::<ProbeConfig>("learning_rate = 0.1").is_err());
    }

    #[test]
    #[should_panic(expected = "label 3 outside 0..3")]
    fn labels_out_of_range_are_refused() {
        let x = Array2::<f32>::zeros((2, 2));
        train_sgd_probe(x.view(), &[0, 3], 3, &ProbeConfig::default());
    }
}
