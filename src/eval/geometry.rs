//! Latent organisation: how close latents of one class lie compared with latents of different
//! classes, and how far occlusion moves a latent compared with that.
//!
//! ```text
//! intra            = mean ‖z_i − z_j‖₂ over random pairs i ≠ j with c_i = c_j
//!                    (intra_pairs_per_class pairs in every class with two or more images)
//! inter            = mean ‖z_i − z_j‖₂ over random pairs with c_i ≠ c_j
//! intra_inter_ratio = intra / inter                       (< 1: classes form clusters)
//! clean_occluded   = mean ‖z_i − z̃_i‖₂ over random images i, z̃_i the latent of occluded image i
//! clean_occluded_ratio = clean_occluded / inter          (< 1: occlusion moves a latent less
//!                                                          than changing its class does)
//! ```
//!
//! PAD equivalent: the paper's latent-organisation analysis (intra-class over inter-class
//! distance of the encoder's latents, and clean-vs-occluded distance, `p = 0.3`, tile 4, over
//! inter-class distance). Pairs are sampled rather than enumerated: all 50 000² pairs of a
//! training set would cost minutes for a number that a few thousand pairs estimate to a
//! fraction of a percent.
//!
//! Determinism: every index is drawn from the streams `(seed, "geometry/intra")`,
//! `(seed, "geometry/inter")` and `(seed, "geometry/occluded")`, sequentially; distances are
//! summed in f64 in the order drawn.

use crate::rng;
use ndarray::{ArrayView1, ArrayView2};
use ndarray_rand::rand::Rng;
use serde::{Deserialize, Serialize};

/// How many random pairs [`latent_geometry`] averages over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeometryConfig {
    /// Same-class pairs drawn in every class.
    pub intra_pairs_per_class: usize,
    /// Cross-class pairs drawn.
    pub inter_pairs: usize,
    /// Images whose clean and occluded latents are compared.
    pub occluded_pairs: usize,
    /// Seed of the pair draws.
    pub seed: u64,
}

impl Default for GeometryConfig {
    fn default() -> Self {
        GeometryConfig {
            intra_pairs_per_class: 1000,
            inter_pairs: 10_000,
            occluded_pairs: 10_000,
            seed: 0,
        }
    }
}

/// Mean distances between latents (Euclidean) and their ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Geometry {
    /// Mean distance within classes (NaN if no class has two images).
    pub intra: f64,
    /// Mean distance across classes (NaN if there is only one class).
    pub inter: f64,
    /// `intra / inter`.
    pub intra_inter_ratio: f64,
    /// Mean distance between an image's clean and occluded latents, if occluded latents were
    /// given.
    pub clean_occluded: Option<f64>,
    /// `clean_occluded / inter`, if occluded latents were given.
    pub clean_occluded_ratio: Option<f64>,
}

/// Latent geometry of `clean` latents (`[n, dim]`) with class `labels`, and, if given, of
/// `occluded` latents (same shape; row `i` is the latent of the occluded version of image `i`).
pub fn latent_geometry(
    clean: ArrayView2<f32>,
    labels: &[u8],
    occluded: Option<ArrayView2<f32>>,
    config: &GeometryConfig,
) -> Geometry {
    let n = clean.nrows();
    assert_eq!(n, labels.len(), "latent_geometry: one label per row");
    let distance = |i: usize, j: usize| euclidean(clean.row(i), clean.row(j));

    let intra_pairs = intra_class_pairs(
        labels,
        config.intra_pairs_per_class,
        &mut rng::stream(config.seed, "geometry/intra"),
    );
    let inter_pairs = inter_class_pairs(
        labels,
        config.inter_pairs,
        &mut rng::stream(config.seed, "geometry/inter"),
    );
    let intra = mean(intra_pairs.iter().map(|&(i, j)| distance(i, j)));
    let inter = mean(inter_pairs.iter().map(|&(i, j)| distance(i, j)));

    let clean_occluded = occluded.map(|occluded| {
        assert_eq!(
            occluded.dim(),
            clean.dim(),
            "latent_geometry: occluded latents must match the clean ones row for row"
        );
        let mut stream = rng::stream(config.seed, "geometry/occluded");
        let images: Vec<usize> = if n == 0 {
            Vec::new()
        } else {
            (0..config.occluded_pairs)
                .map(|_| stream.random_range(0..n))
                .collect()
        };
        mean(
            images
                .iter()
                .map(|&i| euclidean(clean.row(i), occluded.row(i))),
        )
    });
    Geometry {
        intra,
        inter,
        intra_inter_ratio: intra / inter,
        clean_occluded,
        clean_occluded_ratio: clean_occluded.map(|d| d / inter),
    }
}

/// `pairs_per_class` ordered pairs `(i, j)`, `i ≠ j`, uniform among the pairs of each class
/// that has at least two images, classes in ascending label order.
fn intra_class_pairs(
    labels: &[u8],
    pairs_per_class: usize,
    stream: &mut impl Rng,
) -> Vec<(usize, usize)> {
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &c) in labels.iter().enumerate() {
        members[c as usize].push(i);
    }
    let mut pairs = Vec::new();
    for class in members.iter().filter(|m| m.len() >= 2) {
        for _ in 0..pairs_per_class {
            let a = stream.random_range(0..class.len());
            // Uniform over the other members: draw from one fewer and skip `a`, so an image is
            // never paired with itself and no draw is rejected.
            let mut b = stream.random_range(0..class.len() - 1);
            if b >= a {
                b += 1;
            }
            pairs.push((class[a], class[b]));
        }
    }
    pairs
}

/// `count` ordered pairs `(i, j)` with different labels, uniform among all such pairs (by
/// rejection); none if all images share one label.
fn inter_class_pairs(labels: &[u8], count: usize, stream: &mut impl Rng) -> Vec<(usize, usize)> {
    let n = labels.len();
    let two_classes = labels.iter().any(|&c| c != labels[0]);
    if n < 2 || !two_classes {
        return Vec::new();
    }
    let mut pairs = Vec::with_capacity(count);
    while pairs.len() < count {
        let (i, j) = (stream.random_range(0..n), stream.random_range(0..n));
        if labels[i] != labels[j] {
            pairs.push((i, j));
        }
    }
    pairs
}

fn euclidean(a: ArrayView1<f32>, b: ArrayView1<f32>) -> f64 {
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Mean of the values, NaN for none.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn intra_pairs_are_distinct_images_of_one_class_and_cover_every_class() {
        let labels = [0u8, 1, 0, 2, 1, 1, 0, 7];
        let pairs = intra_class_pairs(&labels, 200, &mut rng::stream(1, "t"));
        // Class 7 has one image: no pairs; classes 0, 1, 2: 0 and 1 only (2 has one image).
        assert_eq!(pairs.len(), 400);
        for &(i, j) in &pairs {
            assert_ne!(i, j);
            assert_eq!(labels[i], labels[j]);
        }
        // Every ordered pair of class 0's three members turns up.
        let class0: std::collections::BTreeSet<_> =
            pairs.iter().filter(|(i, _)| labels[*i] == 0).collect();
        assert_eq!(class0.len(), 6);
    }

    #[test]
    fn inter_pairs_cross_classes_and_are_empty_for_one_class() {
        let labels = [0u8, 1, 0, 2, 1];
        let pairs = inter_class_pairs(&labels, 500, &mut rng::stream(1, "t"));
        assert_eq!(pairs.len(), 500);
        assert!(pairs.iter().all(|&(i, j)| labels[i] != labels[j]));
        assert!(inter_class_pairs(&[3, 3, 3], 10, &mut rng::stream(1, "t")).is_empty());
    }

    #[test]
    fn two_points_per_class_give_exact_distances() {
        // Class 0: two points 1 apart; class 1: two points 3 apart, 10 away from class 0.
        let z = array![[0.0f32, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 3.0]];
        let g = latent_geometry(z.view(), &[0, 0, 1, 1], None, &GeometryConfig::default());
        assert_eq!(g.intra, 2.0);
        assert!(g.inter > 8.0 && g.inter < 11.0);
        assert_eq!(g.clean_occluded, None);
    }

    #[test]
    fn one_class_has_no_inter_distance() {
        let z = array![[0.0f32], [1.0]];
        let g = latent_geometry(z.view(), &[4, 4], None, &GeometryConfig::default());
        assert_eq!(g.intra, 1.0);
        assert!(g.inter.is_nan() && g.intra_inter_ratio.is_nan());
    }
}
