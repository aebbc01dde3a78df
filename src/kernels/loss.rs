//! Loss functions of the three brain states and of the linear probe, each returning its value
//! and its gradient with respect to the prediction.
//!
//! ```text
//! MSE(x̂, x)  = mean (x̂ − x)²                          ∂/∂x̂ = 2(x̂ − x)/n
//! BCE(d, y)  = −mean [y·max(ln d, −100) + (1−y)·max(ln(1−d), −100)]
//!                                                      ∂/∂d = (d − y) / max(d(1−d), 1e−12) / B
//! KL(z)      = mean_j [(s_j² + m_j²)/2 − ln s_j − 1/2]  m, s: batch mean and unbiased std
//!              ∂/∂z_ij = [m_j/B + (1 − 1/s_j²)(z_ij − m_j)/(B − 1)] / nz
//! CE(a, c)   = mean_i [logsumexp(a_i) − a_i,c_i]        ∂/∂a = (softmax(a) − onehot(c))/B
//! ```
//!
//! PAD equivalent: `F.mse_loss`, `F.binary_cross_entropy` (PyTorch's clamps included), the
//! reference's `KL_loss` on the latent batch statistics, and `nn.CrossEntropyLoss` of the probe.
//! Sums are accumulated in f64: at init the latent batch std is ~1e-4, so the KL gradient is a
//! difference of terms of order 1/s², where f32 accumulation would lose the answer.

use super::Real;
use ndarray::{Array2, ArrayView2, Axis};

fn to64<T: Real>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

fn from64<T: Real>(v: f64) -> T {
    T::from_f64(v).unwrap_or_else(T::nan)
}

/// Mean squared error over all elements; returns `(loss, ∂loss/∂prediction)`.
pub fn mse<T: Real>(prediction: &[T], target: &[T]) -> (f64, Vec<T>) {
    assert_eq!(prediction.len(), target.len(), "mse: sizes differ");
    let n = prediction.len().max(1) as f64;
    let mut sum = 0.0;
    let grad = prediction
        .iter()
        .zip(target)
        .map(|(&p, &t)| {
            let diff = to64(p) - to64(t);
            sum += diff * diff;
            from64(2.0 * diff / n)
        })
        .collect();
    (sum / n, grad)
}

/// Binary cross-entropy of probabilities `d` against one constant target `y` (0 = internal,
/// 1 = external), with PyTorch's clamps; returns `(loss, ∂loss/∂d)`.
pub fn bce<T: Real>(d: &[T], target: f64) -> (f64, Vec<T>) {
    let b = d.len().max(1) as f64;
    let mut sum = 0.0;
    let grad = d
        .iter()
        .map(|&di| {
            let di = to64(di);
            let log_d = di.ln().max(-100.0);
            let log_1md = (1.0 - di).ln().max(-100.0);
            sum -= target * log_d + (1.0 - target) * log_1md;
            from64((di - target) / (di * (1.0 - di)).max(1e-12) / b)
        })
        .collect();
    (sum / b, grad)
}

/// PAD's KL term on a batch of latents `z` (`[B, nz]`, any strides); returns
/// `(loss, ∂loss/∂z)` with the gradient shaped like `z`. Needs `B ≥ 2`.
pub fn kl_latent<T: Real>(z: ArrayView2<T>) -> (f64, Array2<T>) {
    let (b, nz) = z.dim();
    assert!(
        b >= 2,
        "KL needs at least two latents per batch for an unbiased std"
    );
    let bf = b as f64;
    let mut loss = 0.0;
    let mut grad = Array2::<T>::zeros((b, nz));
    for (j, column) in z.axis_iter(Axis(1)).enumerate() {
        let mean = column.iter().map(|&v| to64(v)).sum::<f64>() / bf;
        let var = column
            .iter()
            .map(|&v| (to64(v) - mean).powi(2))
            .sum::<f64>()
            / (bf - 1.0);
        let std = var.sqrt();
        loss += (var + mean * mean) / 2.0 - std.ln() - 0.5;
        let shrink = 1.0 - 1.0 / var;
        for (i, &v) in column.iter().enumerate() {
            grad[[i, j]] = from64((mean / bf + shrink * (to64(v) - mean) / (bf - 1.0)) / nz as f64);
        }
    }
    (loss / nz as f64, grad)
}

/// Softmax cross-entropy of `logits` (`[B, K]`) against class indices; returns
/// `(mean loss, ∂loss/∂logits)`.
pub fn softmax_cross_entropy<T: Real>(logits: ArrayView2<T>, labels: &[usize]) -> (f64, Array2<T>) {
    let (b, k) = logits.dim();
    assert_eq!(labels.len(), b, "cross-entropy: one label per row");
    let bf = b.max(1) as f64;
    let mut loss = 0.0;
    let mut grad = Array2::<T>::zeros((b, k));
    for (i, row) in logits.axis_iter(Axis(0)).enumerate() {
        assert!(
            labels[i] < k,
            "cross-entropy: label {} outside 0..{k}",
            labels[i]
        );
        let max = row
            .iter()
            .map(|&v| to64(v))
            .fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = row.iter().map(|&v| (to64(v) - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        loss += total.ln() + max - to64(row[labels[i]]);
        for (c, e) in exps.iter().enumerate() {
            let onehot = if c == labels[i] { 1.0 } else { 0.0 };
            grad[[i, c]] = from64((e / total - onehot) / bf);
        }
    }
    (loss / bf, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bce_clamps_log_at_minus_100_like_pytorch() {
        let (loss, grad) = bce(&[0.0f64, 1.0], 1.0);
        assert_eq!(loss, 50.0);
        assert!(grad[0].is_finite() && grad[0] < 0.0);
    }

    #[test]
    fn kl_of_standard_batch_statistics_is_zero() {
        // Mean 0 and unbiased std 1 in both columns: every term vanishes.
        let z = array![[1.0f64, -1.0], [-1.0, 1.0]];
        let z = &z / 2f64.sqrt();
        let (loss, grad) = kl_latent(z.view());
        assert!(loss.abs() < 1e-15, "{loss}");
        assert!(grad.iter().all(|g| g.abs() < 1e-15));
    }

    #[test]
    fn kl_uses_unbiased_std() {
        // Column [0, 2]: mean 1, unbiased var 2 (biased would be 1).
        let z = array![[0.0f64], [2.0]];
        let (loss, _) = kl_latent(z.view());
        let want = (2.0 + 1.0) / 2.0 - 2f64.sqrt().ln() - 0.5;
        assert!((loss - want).abs() < 1e-15);
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_k() {
        let (loss, grad) = softmax_cross_entropy(Array2::<f64>::zeros((2, 4)).view(), &[0, 3]);
        assert!((loss - 4f64.ln()).abs() < 1e-15);
        assert!((grad[[0, 0]] - (0.25 - 1.0) / 2.0).abs() < 1e-15);
    }
}
