//! Contrastive dreaming: invariance learnt from two differently perturbed replays of each
//! memory, pulled together in latent space while replays of the other memories are pushed
//! apart.
//!
//! ```text
//! z_r = replay (default: the newest memory alone)       x' = G(z_r)       (G not plastic)
//! views:  a_i = T_a,i(x'_i),  b_i = T_b,i(x'_i)         T = occlusion ∘ shift ∘ flip
//!         flip: mirror left–right with probability ½; shift: by (dy, dx) ~ U{−s..s}², zeros
//!         shifted in; occlusion: one NREM mask (p ~ U(0,1), tile ~ U{1..8}) per view
//! h = E_latent([a; b])                                  (one pass of 2N images)
//! L = C · InfoNCE_τ(h)   (symmetric; cosine similarity; see `kernels::loss::info_nce`)
//!   = C/(2N) Σ_i [−log softmax_j(S_ij) − log softmax_j(S_ji)],  S_ij = cos(h_a,i, h_b,j)/τ
//! ```
//!
//! The state proposed in the paper's discussion and in the authors' later perspective
//! (Deperrois et al. 2022; "learning invariance from dreams"), as a replacement of NREM's
//! latent reconstruction: NREM teaches E to map an occluded dream back onto the code it came
//! from; contrastive dreaming teaches it that two perturbed versions of one dream belong
//! together and differ from the others of the batch. Its conductor entry defaults to NREM's
//! (E plastic, G frozen, no discriminator); with G made plastic, its error returns through the
//! perturbations' adjoints.
//!
//! PAD equivalent: none; the reference's NREM block with the loss replaced (condition
//! `contrastive_nrem`).

use super::{Brain, BrainState, Losses, MemoryMix, Neuromodulation};
use crate::cortex::Activity;
use crate::data::occlusion;
use crate::kernels::loss;
use ndarray::{s, Array2, Array4, ArrayView4, Axis};
use ndarray_rand::rand::Rng;

/// How each view of a dream is perturbed.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Perturbation {
    /// Occlude each view with its own NREM mask.
    pub occlusion: bool,
    /// Largest shift in pixels, each axis (0: none).
    pub max_shift: usize,
    /// Mirror each image left–right with probability ½.
    pub flip: bool,
}

impl Default for Perturbation {
    fn default() -> Self {
        Perturbation {
            occlusion: true,
            max_shift: 4,
            flip: true,
        }
    }
}

/// Contrastive dreaming.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Contrastive {
    /// C: weight of the InfoNCE loss.
    pub weight: f64,
    /// τ: temperature of the cosine similarities.
    pub temperature: f64,
    /// What is replayed.
    pub recall: MemoryMix,
    /// How the two views are made.
    pub perturbation: Perturbation,
}

impl Default for Contrastive {
    fn default() -> Self {
        Contrastive {
            weight: 1.0,
            temperature: 0.1,
            recall: MemoryMix::CURRENT,
            perturbation: Perturbation::default(),
        }
    }
}

/// One view's perturbation of every image: flip, then shift, then mask.
#[derive(Clone, Debug)]
pub struct ViewTransform {
    /// Per image: mirrored left–right.
    pub flips: Vec<bool>,
    /// Per image: (rows, columns) moved down and right.
    pub shifts: Vec<(isize, isize)>,
    /// The occlusion mask `[H, W]`, if any.
    pub mask: Option<Array2<f32>>,
}

impl ViewTransform {
    /// Draws a view's perturbation of `n` images of `side × side` pixels from `rng`.
    pub fn draw(p: &Perturbation, n: usize, side: usize, rng: &mut impl Rng) -> Self {
        let flips = (0..n).map(|_| p.flip && rng.random_bool(0.5)).collect();
        let s = p.max_shift as i64;
        let shifts = (0..n)
            .map(|_| {
                if s == 0 {
                    (0, 0)
                } else {
                    (
                        rng.random_range(-s..=s) as isize,
                        rng.random_range(-s..=s) as isize,
                    )
                }
            })
            .collect();
        let mask = p.occlusion.then(|| occlusion::nrem_mask(side, rng));
        ViewTransform {
            flips,
            shifts,
            mask,
        }
    }

    /// The perturbed images (`adjoint = false`) or, for an error on them, the error on the
    /// originals (`adjoint = true`: mask, shift back, flip back). `maps` is `[C, N, H, W]`.
    pub fn apply(&self, maps: ArrayView4<f32>, adjoint: bool) -> Array4<f32> {
        let (c, n, h, w) = maps.dim();
        let mut out = Array4::zeros((c, n, h, w));
        let mask = |y: usize, x: usize| self.mask.as_ref().map_or(1.0, |m| m[[y, x]]);
        for i in 0..n {
            let (dy, dx) = self.shifts[i];
            let flip = |x: usize| if self.flips[i] { w - 1 - x } else { x };
            for y in 0..h {
                for x in 0..w {
                    // Output pixel (y, x) shows source pixel (y − dy, flip(x − dx)).
                    let (sy, sx) = (y as isize - dy, x as isize - dx);
                    if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize {
                        continue;
                    }
                    let (sy, sx) = (sy as usize, flip(sx as usize));
                    let m = mask(y, x);
                    for ch in 0..c {
                        if adjoint {
                            out[[ch, i, sy, sx]] += m * maps[[ch, i, y, x]];
                        } else {
                            out[[ch, i, y, x]] = m * maps[[ch, i, sy, sx]];
                        }
                    }
                }
            }
        }
        out
    }
}

impl BrainState for Contrastive {
    fn name(&self) -> &str {
        "contrastive"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["info_nce", "positive_cosine"]
    }

    /// As NREM: the feedforward pathway plastic, the feedback pathway frozen.
    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation::FEEDFORWARD_ONLY
    }

    fn run(&self, brain: &mut Brain, x: &Activity, nm: &Neuromodulation) -> Losses {
        let z = brain.recall(&self.recall);
        let n = z.nrows();
        // Dreams have the input's side.
        let side = x.height();
        let views = [
            ViewTransform::draw(&self.perturbation, n, side, &mut brain.rng),
            ViewTransform::draw(&self.perturbation, n, side, &mut brain.rng),
        ];
        brain.begin_state(nm);
        let dream = brain.cortex.feedback.forward(z.view()).clone();
        let a = views[0].apply(dream.maps(), false);
        let b = views[1].apply(dream.maps(), false);
        let both = ndarray::concatenate(Axis(1), &[a.view(), b.view()]).expect("same maps");
        let h = brain
            .cortex
            .feedforward
            .encode(&Activity::from_channel_major(both));
        let (info_nce, mut dh) = loss::info_nce(h.view(), self.temperature);
        dh.mapv_inplace(|g| g * self.weight as f32);
        if nm.feedforward_plastic || nm.feedback_plastic {
            let dx = brain
                .cortex
                .feedforward
                .backward(Some(dh.view()), None, nm.feedback_plastic);
            if let Some(dx) = dx {
                let maps = dx.maps();
                let mut grad = views[0].apply(maps.slice(s![.., ..n, .., ..]), true);
                grad += &views[1].apply(maps.slice(s![.., n.., .., ..]), true);
                brain
                    .cortex
                    .feedback
                    .backward(Activity::from_channel_major(grad), false);
            }
        }
        brain.apply_plasticity(nm);
        vec![
            ("info_nce", info_nce),
            ("positive_cosine", positive_cosine(&h)),
        ]
    }
}

/// Mean cosine similarity of each item's two views (rows `i` and `N + i` of `h`).
fn positive_cosine(h: &Array2<f32>) -> f64 {
    let n = h.nrows() / 2;
    let cos = |i: usize| {
        let (a, b) = (h.row(i), h.row(n + i));
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        let norm = |r: ndarray::ArrayView1<f32>| {
            r.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()
        };
        dot / (norm(a) * norm(b)).max(1e-12)
    };
    (0..n).map(cos).sum::<f64>() / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transform(flips: Vec<bool>, shifts: Vec<(isize, isize)>) -> ViewTransform {
        let mut mask = Array2::ones((4, 4));
        mask[[0, 1]] = 0.0;
        ViewTransform {
            flips,
            shifts,
            mask: Some(mask),
        }
    }

    #[test]
    fn a_shift_moves_pixels_and_a_flip_mirrors_them() {
        let x = Array4::from_shape_fn((1, 1, 4, 4), |(_, _, y, x)| (10 * y + x) as f32);
        let t = ViewTransform {
            flips: vec![false],
            shifts: vec![(1, 0)],
            mask: None,
        };
        let y = t.apply(x.view(), false);
        assert_eq!(y[[0, 0, 0, 2]], 0.0, "zeros shifted in");
        assert_eq!(y[[0, 0, 1, 2]], x[[0, 0, 0, 2]]);
        let t = ViewTransform {
            flips: vec![true],
            shifts: vec![(0, 0)],
            mask: None,
        };
        assert_eq!(t.apply(x.view(), false)[[0, 0, 2, 0]], x[[0, 0, 2, 3]]);
    }

    #[test]
    fn the_adjoint_is_the_transpose_of_the_perturbation() {
        // <T x, g> = <x, Tᵀ g> for random x, g and every combination of flip and shift.
        let t = transform(vec![true, false, true], vec![(1, -2), (0, 0), (-3, 1)]);
        let mut rng = crate::rng::stream(0, "adjoint");
        let x = Array4::from_shape_fn((2, 3, 4, 4), |_| rng.random::<f32>() - 0.5);
        let g = Array4::from_shape_fn((2, 3, 4, 4), |_| rng.random::<f32>() - 0.5);
        let lhs: f64 = (&t.apply(x.view(), false) * &g)
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        let rhs: f64 = (&x * &t.apply(g.view(), true))
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        assert!((lhs - rhs).abs() < 1e-5, "{lhs} vs {rhs}");
    }
}
