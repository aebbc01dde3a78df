//! Principal component analysis of latents down to the plane of largest variance, for plots.
//!
//! ```text
//! μ  = mean_i z_i                      C = (1/(n−1)) Σ_i (z_i − μ)(z_i − μ)ᵀ    [dim, dim]
//! C  = V Λ Vᵀ, λ₁ ≥ λ₂ ≥ …             components v₁, v₂ (signs fixed: the largest-|·|
//!                                       loading of each is positive)
//! projection  p_i = [v₁ᵀ(z_i − μ), v₂ᵀ(z_i − μ)]
//! explained_variance_ratio_k = λ_k / Σ_j λ_j = λ_k / trace C
//! ```
//!
//! PAD equivalent: the reference's `sklearn.decomposition.PCA(n_components=2).fit_transform(z)`
//! for the latent-space figures; [`Pca2::project`] is `pca.transform(z_occluded)`. The sign
//! convention differs from scikit-learn's (which follows the SVD's U), so plots may come out
//! mirrored relative to the paper's; the distances in the plane are the same.
//!
//! Method: the covariance by one GEMM in f64, then nalgebra's symmetric eigendecomposition of
//! the `dim × dim` matrix: O(n·dim² + dim³), well under a second for 50 000 × 256 latents and
//! fine up to a few thousand dimensions.

use crate::kernels::gemm::{matmul, Op};
use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayView2, Axis};

/// The plane of largest variance of a set of latents.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca2 {
    /// The fitted latents in the plane, `[n, 2]`.
    pub projection: Array2<f64>,
    /// The two principal directions (unit rows), `[2, dim]`.
    pub components: Array2<f64>,
    /// The latents' mean, `[dim]`.
    pub mean: Array1<f64>,
    /// Fraction of the total variance along each component.
    pub explained_variance_ratio: [f64; 2],
}

impl Pca2 {
    /// Places other latents (e.g. of occluded images) in the same plane: `(z − μ) Vᵀ`.
    pub fn project(&self, other: ArrayView2<f32>) -> Array2<f64> {
        assert_eq!(
            other.ncols(),
            self.mean.len(),
            "PCA was fitted on {} features, got {}",
            self.mean.len(),
            other.ncols()
        );
        project_centred(&centre(other, &self.mean), other.nrows(), &self.components)
    }
}

/// The top-2 PCA of latents `x` (`[n, dim]`, `n ≥ 2`, `dim ≥ 2`).
pub fn pca_2d(x: ArrayView2<f32>) -> Pca2 {
    let (n, dim) = x.dim();
    assert!(n >= 2, "PCA needs at least two latents, got {n}");
    assert!(dim >= 2, "a 2-D PCA needs at least two features, got {dim}");
    let mean = x
        .mapv(f64::from)
        .mean_axis(Axis(0))
        .expect("at least one row");
    let centred = centre(x, &mean);
    let mut covariance = vec![0.0; dim * dim];
    matmul(
        dim,
        dim,
        n,
        &centred,
        Op::Transposed,
        &centred,
        Op::Plain,
        0.0,
        &mut covariance,
    );
    let scale = 1.0 / (n - 1) as f64;
    covariance.iter_mut().for_each(|c| *c *= scale);
    let eigen = SymmetricEigen::new(DMatrix::from_row_slice(dim, dim, &covariance));

    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let mut components = Array2::<f64>::zeros((2, dim));
    for (k, &which) in order[..2].iter().enumerate() {
        let vector = eigen.eigenvectors.column(which);
        // An eigenvector's sign is arbitrary; fix it so the same latents always give the same
        // picture.
        let largest = (0..dim)
            .max_by(|&a, &b| vector[a].abs().total_cmp(&vector[b].abs()).then(b.cmp(&a)))
            .expect("dim ≥ 2");
        let sign = if vector[largest] < 0.0 { -1.0 } else { 1.0 };
        for j in 0..dim {
            components[[k, j]] = sign * vector[j];
        }
    }
    // Total variance from the trace: exact, and immune to tiny negative eigenvalues of a
    // rank-deficient covariance.
    let total: f64 = (0..dim).map(|j| covariance[j * dim + j]).sum();
    let ratio = |k: usize| {
        if total > 0.0 {
            eigen.eigenvalues[order[k]].max(0.0) / total
        } else {
            0.0
        }
    };
    Pca2 {
        projection: project_centred(&centred, n, &components),
        explained_variance_ratio: [ratio(0), ratio(1)],
        components,
        mean,
    }
}

/// `x − μ` row-major in f64.
fn centre(x: ArrayView2<f32>, mean: &Array1<f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.rows() {
        out.extend(row.iter().zip(mean).map(|(&v, m)| v as f64 - m));
    }
    out
}

/// Centred rows (`[n, dim]` flattened) times `componentsᵀ`: `[n, 2]`.
fn project_centred(centred: &[f64], n: usize, components: &Array2<f64>) -> Array2<f64> {
    let dim = components.ncols();
    let mut projection = Array2::<f64>::zeros((n, 2));
    matmul(
        n,
        2,
        dim,
        centred,
        Op::Plain,
        components.as_slice().expect("standard layout"),
        Op::Transposed,
        0.0,
        projection.as_slice_mut().expect("fresh array"),
    );
    projection
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn axis_aligned_spread_gives_axis_components_with_positive_signs() {
        // Variance 4 along feature 2, 1 along feature 0, none along feature 1.
        let x = array![
            [1.0f32, 7.0, 0.0],
            [-1.0, 7.0, 0.0],
            [0.0, 7.0, 2.0],
            [0.0, 7.0, -2.0]
        ];
        let pca = pca_2d(x.view());
        assert_eq!(pca.mean, array![0.0, 7.0, 0.0]);
        let want = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]];
        assert!((&pca.components - &want).iter().all(|d| d.abs() < 1e-12));
        assert!((pca.explained_variance_ratio[0] - 0.8).abs() < 1e-12);
        assert!((pca.explained_variance_ratio[1] - 0.2).abs() < 1e-12);
        assert!((pca.projection[[2, 0]] - 2.0).abs() < 1e-12);
        assert!((pca.projection[[0, 1]] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn constant_latents_explain_nothing() {
        let x = Array2::<f32>::from_elem((3, 4), 2.5);
        let pca = pca_2d(x.view());
        assert_eq!(pca.explained_variance_ratio, [0.0, 0.0]);
        assert!(pca.projection.iter().all(|&p| p == 0.0));
    }

    #[test]
    fn projecting_the_fitted_latents_reproduces_the_projection() {
        let x = array![
            [1.0f32, 2.0, 0.5],
            [3.0, -1.0, 0.0],
            [0.0, 0.0, 1.0],
            [2.0, 2.0, 2.0]
        ];
        let pca = pca_2d(x.view());
        let again = pca.project(x.view());
        assert!((&again - &pca.projection).iter().all(|d| d.abs() < 1e-12));
    }
}
