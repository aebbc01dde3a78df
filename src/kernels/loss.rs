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
//! InfoNCE(h) = symmetric, over two views a = h[..N], b = h[N..] (rows of h, u = h/‖h‖):
//!              S_ij = u_a,i · u_b,j / τ
//!              L = (1/2N) Σ_i [logsumexp_j S_ij − S_ii] + (1/2N) Σ_j [logsumexp_i S_ij − S_jj]
//!              ∂L/∂S = (P_row + P_col − 2I)/2N   (row- and column-wise softmax of S)
//!              ∂L/∂u_a = (∂L/∂S) u_b / τ,  ∂L/∂u_b = (∂L/∂S)ᵀ u_a / τ
//!              ∂L/∂h = (∂L/∂u − u (u·∂L/∂u)) / ‖h‖
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

/// Symmetric InfoNCE (CLIP-style NT-Xent) between two views: rows `0..N` of `h` (`[2N, d]`) are
/// the first view of N items, rows `N..2N` the second, in the same order; each row's positive
/// is its partner, the other N − 1 rows of the other view are its negatives. Cosine
/// similarities at temperature `tau`. Returns `(loss, ∂loss/∂h)`.
pub fn info_nce<T: Real>(h: ArrayView2<T>, tau: f64) -> (f64, Array2<T>) {
    let (rows, d) = h.dim();
    assert!(
        rows >= 2 && rows % 2 == 0,
        "info_nce: two views of at least one item, got {rows} rows"
    );
    let n = rows / 2;
    let norms: Vec<f64> = h
        .axis_iter(Axis(0))
        .map(|r| {
            r.iter()
                .map(|&v| to64(v).powi(2))
                .sum::<f64>()
                .sqrt()
                .max(1e-12)
        })
        .collect();
    let u = Array2::from_shape_fn((rows, d), |(i, j)| to64(h[[i, j]]) / norms[i]);
    let (ua, ub) = (u.slice(ndarray::s![..n, ..]), u.slice(ndarray::s![n.., ..]));
    let s = ua.dot(&ub.t()) / tau;
    let softmax = |m: ArrayView2<f64>| {
        let mut p = m.to_owned();
        let mut lse = Vec::with_capacity(m.nrows());
        for mut row in p.axis_iter_mut(Axis(0)) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            row.mapv_inplace(|v| (v - max).exp());
            let total: f64 = row.sum();
            row.mapv_inplace(|v| v / total);
            lse.push(total.ln() + max);
        }
        (p, lse)
    };
    let (p_row, lse_row) = softmax(s.view());
    let (p_col, lse_col) = softmax(s.t());
    let diagonal: f64 = (0..n).map(|i| s[[i, i]]).sum();
    let loss = (lse_row.iter().sum::<f64>() + lse_col.iter().sum::<f64>() - 2.0 * diagonal)
        / (2 * n) as f64;
    let mut ds = (&p_row + &p_col.t()) / (2 * n) as f64;
    for i in 0..n {
        ds[[i, i]] -= 1.0 / n as f64;
    }
    let du_a = ds.dot(&ub) / tau;
    let du_b = ds.t().dot(&ua) / tau;
    let du = ndarray::concatenate(Axis(0), &[du_a.view(), du_b.view()]).expect("same widths");
    let mut grad = Array2::<T>::zeros((rows, d));
    for i in 0..rows {
        let along: f64 = (0..d).map(|j| u[[i, j]] * du[[i, j]]).sum();
        for j in 0..d {
            grad[[i, j]] = from64((du[[i, j]] - u[[i, j]] * along) / norms[i]);
        }
    }
    (loss, grad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn info_nce_is_log_n_for_orthogonal_views_and_small_when_views_agree() {
        // Views orthogonal to everything: every similarity is 0, so the loss is ln N.
        let h = array![
            [1.0f64, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 1.0]
        ];
        let (loss, _) = info_nce(h.view(), 0.5);
        assert!((loss - 2f64.ln()).abs() < 1e-12, "{loss}");
        // Identical, orthogonal pairs at a low temperature: almost no loss.
        let h = array![[1.0f64, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.5]];
        let (loss, grad) = info_nce(h.view(), 0.05);
        assert!(loss < 1e-8, "{loss}");
        assert!(grad.iter().all(|g| g.abs() < 1e-6));
    }

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
