//! Tiled occlusion masks: the perturbation of NREM sleep and of the occlusion-robustness test,
//! for square images of any side S (32 for PAD).
//!
//! PAD equivalent: `utils.Occlude(drop_rate=p, tile_size=t)`. NREM uses
//! `Occlude(drop_rate=random.random(), tile_size=random.randint(1, 8))(x', d=1)`: one mask for
//! the whole batch; the robustness evaluation applies `Occlude(p, 4)` in the data set's
//! transform: a fresh mask per image. Both at S = 32; at other sides the tile sizes scale with
//! S (see below), so a tile covers the same share of the image.
//!
//! A mask is an `[S, S]` array of ones and zeros. The image is cut into
//! `ceil(S/t) × ceil(S/t)` tiles of `t × t` pixels, starting at the top-left corner (when `t`
//! does not divide S the last row and column of tiles are narrower), and each tile is zeroed
//! with probability `p`: one uniform draw `u ∈ [0, 1)` per tile in row-major tile order, zeroed
//! when `u < p`, as PAD does with `np.random.rand() < drop_rate`. So `p = 0` keeps everything
//! and `p = 1` blanks everything. Applying a mask multiplies every channel of an image by it;
//! in the [-1, 1] pixel scale a zeroed pixel becomes mid-grey, as in PAD.
//!
//! Tile sizes at side S: NREM draws `t ~ U{1..=max(1, S/4)}` ([`nrem_tile_sizes`]: 1..=8 at
//! 32, so NREM at 32 draws exactly as before); the evaluation's tile, configured for 32 × 32
//! images, becomes `max(1, round(t·S/32))` ([`eval_tile`]: 4 stays 4 at 32, becomes 8 at 64).

use ndarray::{Array2, Array3, ArrayBase, Axis, Data, DataMut, Ix2, Ix3, Ix4, Zip};
use ndarray_rand::rand::Rng;
use std::ops::RangeInclusive;

/// Tile sizes NREM draws from at PAD's 32 × 32, `U{1..=8}` (PAD: `random.randint(1, 8)`);
/// [`nrem_tile_sizes`] gives them for any side.
pub const NREM_TILE_SIZES: RangeInclusive<usize> = 1..=8;

/// Tile size of the occlusion-robustness evaluation at PAD's 32 × 32; [`eval_tile`] scales it
/// to other sides.
pub const EVAL_TILE: usize = 4;

/// The tile sizes NREM draws from for `side × side` images: `1..=max(1, side/4)` (1..=8 at 32,
/// PAD's `random.randint(1, 8)`).
pub fn nrem_tile_sizes(side: usize) -> RangeInclusive<usize> {
    1..=(side / 4).max(1)
}

/// A tile side chosen for 32 × 32 images (`tile_at_32`, e.g. the evaluation's 4) scaled to
/// `side × side` images: `max(1, round(tile_at_32 · side / 32))`, halves rounded up (4 at 32
/// stays 4; at 28, 3.5 becomes 4; at 64, 8; at 16, 2).
pub fn eval_tile(side: usize, tile_at_32: usize) -> usize {
    (tile_at_32.saturating_mul(side).saturating_add(16) / 32).max(1)
}

/// One `[side, side]` mask of `tile × tile` tiles, each zeroed with probability `p`.
///
/// Draws exactly `ceil(side/tile)²` uniforms from `rng`, whatever `p` is, so the stream
/// position after a mask does not depend on `p`.
///
/// # Panics
/// If `tile == 0` or `p` is not in [0, 1].
pub fn tile_mask(side: usize, tile: usize, p: f64, rng: &mut impl Rng) -> Array2<f32> {
    assert!(tile >= 1, "occlusion tile size must be at least 1 pixel");
    assert!(
        (0.0..=1.0).contains(&p),
        "occlusion probability {p} is not in [0, 1]"
    );
    let tiles_per_side = side.div_ceil(tile);
    let mut mask = Array2::<f32>::ones((side, side));
    for tile_row in 0..tiles_per_side {
        for tile_col in 0..tiles_per_side {
            if rng.random::<f64>() < p {
                let rows = tile_row * tile..((tile_row + 1) * tile).min(side);
                let cols = tile_col * tile..((tile_col + 1) * tile).min(side);
                mask.slice_mut(ndarray::s![rows, cols]).fill(0.0);
            }
        }
    }
    mask
}

/// The random parameters of one NREM occlusion.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NremOcclusion {
    /// Probability that a tile is zeroed, `p ~ U(0, 1)`.
    pub drop_rate: f64,
    /// Tile side in pixels, `t ~ U{1..=max(1, side/4)}` (`U{1..=8}` at 32).
    pub tile: usize,
    /// Side of the images the mask is for.
    pub side: usize,
}

impl NremOcclusion {
    /// Draws `p` and then `t` for `side × side` images, in that order (PAD: `random.random()`,
    /// `random.randint(1, 8)` at 32).
    pub fn draw(side: usize, rng: &mut impl Rng) -> Self {
        let drop_rate = rng.random::<f64>();
        let tile = rng.random_range(nrem_tile_sizes(side));
        Self {
            drop_rate,
            tile,
            side,
        }
    }

    /// The `[side, side]` mask for these parameters, drawn from `rng`.
    pub fn mask(&self, rng: &mut impl Rng) -> Array2<f32> {
        tile_mask(self.side, self.tile, self.drop_rate, rng)
    }
}

/// NREM's mask for `side × side` images: draws `p ~ U(0, 1)` and `t ~ U{1..=max(1, side/4)}`,
/// then one mask to apply to every image and channel of the batch.
pub fn nrem_mask(side: usize, rng: &mut impl Rng) -> Array2<f32> {
    NremOcclusion::draw(side, rng).mask(rng)
}

/// `n` independent masks, `[n, side, side]`, drawn one after another from `rng` (the
/// occlusion-robustness evaluation: `tile` = [`eval_tile`]`(side, `[`EVAL_TILE`]`)` or the
/// configured tile scaled likewise).
///
/// # Panics
/// If `tile == 0` or `p` is not in [0, 1].
pub fn per_image_masks(
    n: usize,
    side: usize,
    tile: usize,
    p: f64,
    rng: &mut impl Rng,
) -> Array3<f32> {
    let mut masks = Array3::<f32>::zeros((n, side, side));
    for mut slot in masks.axis_iter_mut(Axis(0)) {
        slot.assign(&tile_mask(side, tile, p, rng));
    }
    masks
}

/// Multiplies every image and channel of an NCHW batch by one `[H, W]` mask. (Only the last
/// two axes matter, so a CNHW batch works the same.)
///
/// # Panics
/// If the batch's last two axes differ from the mask's shape.
pub fn apply_mask<S, M>(batch: &mut ArrayBase<S, Ix4>, mask: &ArrayBase<M, Ix2>)
where
    S: DataMut<Elem = f32>,
    M: Data<Elem = f32>,
{
    assert_eq!(
        &batch.shape()[2..],
        mask.shape(),
        "mask shape must match the images' height and width"
    );
    for mut image in batch.outer_iter_mut() {
        for mut plane in image.outer_iter_mut() {
            plane *= mask;
        }
    }
}

/// Multiplies image `i` of an NCHW batch (all its channels) by `masks[i]`.
///
/// # Panics
/// If `masks` is not `[N, H, W]` for a batch `[N, C, H, W]`.
pub fn apply_per_image_masks<S, M>(batch: &mut ArrayBase<S, Ix4>, masks: &ArrayBase<M, Ix3>)
where
    S: DataMut<Elem = f32>,
    M: Data<Elem = f32>,
{
    let (n, _, h, w) = batch.dim();
    assert_eq!(
        masks.dim(),
        (n, h, w),
        "per-image masks must be [N, H, W] for an [N, C, H, W] batch"
    );
    Zip::from(batch.outer_iter_mut())
        .and(masks.outer_iter())
        .for_each(|mut image, mask| {
            for mut plane in image.outer_iter_mut() {
                plane *= &mask;
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn p_zero_keeps_everything_and_p_one_blanks_everything() {
        let mut rng = rng();
        for tile in 1..=9 {
            assert!(tile_mask(32, tile, 0.0, &mut rng).iter().all(|&v| v == 1.0));
            assert!(tile_mask(32, tile, 1.0, &mut rng).iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn every_tile_is_constant_and_tiles_start_at_the_corner() {
        let mut rng = rng();
        for tile in [1, 3, 4, 5, 7, 8, 32, 40] {
            for _ in 0..20 {
                let mask = tile_mask(32, tile, 0.5, &mut rng);
                for r in 0..32 {
                    for c in 0..32 {
                        let corner = mask[[r / tile * tile, c / tile * tile]];
                        assert_eq!(mask[[r, c]], corner, "tile {tile}, pixel ({r}, {c})");
                    }
                }
            }
        }
    }

    #[test]
    fn one_uniform_per_tile_so_the_stream_does_not_depend_on_p() {
        let (mut a, mut b) = (rng(), rng());
        tile_mask(32, 3, 0.0, &mut a); // 11 x 11 = 121 tiles
        tile_mask(32, 3, 1.0, &mut b);
        assert_eq!(a.random::<u64>(), b.random::<u64>());
    }

    #[test]
    fn fraction_of_zeroed_tiles_approaches_p() {
        let mut rng = rng();
        for p in [0.1, 0.3, 0.5, 0.9] {
            // tile 1: 1024 tiles per mask; 200 masks give ~200k Bernoulli draws (sd < 0.0012).
            let zeros: f64 = (0..200)
                .map(|_| {
                    tile_mask(32, 1, p, &mut rng)
                        .iter()
                        .filter(|&&v| v == 0.0)
                        .count() as f64
                })
                .sum();
            let fraction = zeros / (200.0 * 1024.0);
            assert!((fraction - p).abs() < 0.01, "p = {p}: fraction {fraction}");
        }
    }

    #[test]
    fn nrem_draws_cover_the_parameter_ranges() {
        let mut rng = rng();
        let draws: Vec<NremOcclusion> = (0..2000)
            .map(|_| NremOcclusion::draw(32, &mut rng))
            .collect();
        for t in NREM_TILE_SIZES {
            assert!(draws.iter().any(|d| d.tile == t), "tile {t} never drawn");
        }
        assert!(draws.iter().all(|d| (0.0..1.0).contains(&d.drop_rate)));
        let mean_p = draws.iter().map(|d| d.drop_rate).sum::<f64>() / draws.len() as f64;
        assert!((mean_p - 0.5).abs() < 0.03, "mean p {mean_p}");
        let mask = nrem_mask(32, &mut rng);
        assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0));
    }

    #[test]
    fn masks_at_other_sides_have_their_shape_tiles_and_fraction() {
        let mut rng = rng();
        for side in [28, 64, 5] {
            for tile in [1, 3, 4, 8, 64] {
                let mask = tile_mask(side, tile, 0.5, &mut rng);
                assert_eq!(mask.dim(), (side, side));
                for r in 0..side {
                    for c in 0..side {
                        let corner = mask[[r / tile * tile, c / tile * tile]];
                        assert_eq!(mask[[r, c]], corner, "side {side}, tile {tile}, ({r}, {c})");
                    }
                }
            }
            // ceil(side / tile)² uniforms per mask, whatever p.
            let (mut a, mut b) = (rng.clone(), rng.clone());
            tile_mask(side, 3, 0.0, &mut a);
            for _ in 0..side.div_ceil(3).pow(2) {
                b.random::<f64>();
            }
            assert_eq!(a.random::<u64>(), b.random::<u64>(), "side {side}");
        }
        for (side, p) in [(28, 0.3), (64, 0.7)] {
            // tile 1: side² tiles per mask, 100 masks.
            let zeros: usize = (0..100)
                .map(|_| {
                    let mask = tile_mask(side, 1, p, &mut rng);
                    mask.iter().filter(|&&v| v == 0.0).count()
                })
                .sum();
            let fraction = zeros as f64 / (100 * side * side) as f64;
            assert!(
                (fraction - p).abs() < 0.01,
                "side {side}: fraction {fraction}"
            );
        }
        assert!(tile_mask(64, 8, 0.0, &mut rng).iter().all(|&v| v == 1.0));
        assert!(tile_mask(28, 4, 1.0, &mut rng).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn nrem_tile_sizes_scale_with_the_side() {
        assert_eq!(nrem_tile_sizes(32), NREM_TILE_SIZES);
        assert_eq!(nrem_tile_sizes(64), 1..=16);
        assert_eq!(nrem_tile_sizes(28), 1..=7);
        assert_eq!(nrem_tile_sizes(3), 1..=1);
        assert_eq!(nrem_tile_sizes(0), 1..=1);
        for side in [28, 64] {
            let mut rng = rng();
            let draws: Vec<NremOcclusion> = (0..3000)
                .map(|_| NremOcclusion::draw(side, &mut rng))
                .collect();
            for t in nrem_tile_sizes(side) {
                assert!(
                    draws.iter().any(|d| d.tile == t),
                    "side {side}: tile {t} never drawn"
                );
            }
            assert!(draws
                .iter()
                .all(|d| nrem_tile_sizes(side).contains(&d.tile)));
            assert!(draws.iter().all(|d| d.side == side));
            let mask = nrem_mask(side, &mut rng);
            assert_eq!(mask.dim(), (side, side));
            assert!(mask.iter().all(|&v| v == 0.0 || v == 1.0));
        }
    }

    #[test]
    fn nrem_draws_at_32_are_pads_randint_1_8() {
        // p first, then t from 1..=8: the stream PAD's NREM draws (and the golden tests pin).
        let (mut a, mut b) = (rng(), rng());
        for _ in 0..200 {
            let drawn = NremOcclusion::draw(32, &mut a);
            let p = b.random::<f64>();
            let t = b.random_range(1..=8usize);
            assert_eq!((drawn.drop_rate, drawn.tile, drawn.side), (p, t, 32));
        }
    }

    #[test]
    fn eval_tile_scales_the_tile_chosen_at_32() {
        assert_eq!(eval_tile(32, EVAL_TILE), 4);
        assert_eq!(eval_tile(64, EVAL_TILE), 8);
        assert_eq!(eval_tile(28, EVAL_TILE), 4); // 3.5 rounds up
        assert_eq!(eval_tile(16, EVAL_TILE), 2);
        assert_eq!(eval_tile(24, EVAL_TILE), 3);
        assert_eq!(eval_tile(4, EVAL_TILE), 1); // 0.5 rounds up
        assert_eq!(eval_tile(3, EVAL_TILE), 1); // 0.375: at least 1
        assert_eq!(eval_tile(1, 1), 1);
        assert_eq!(eval_tile(96, 5), 15);
        for tile in 1..=40 {
            assert_eq!(eval_tile(32, tile), tile);
        }
        assert_eq!(eval_tile(usize::MAX, 4), usize::MAX / 32); // saturates, no overflow
    }

    #[test]
    fn batch_mask_hits_every_image_and_channel_alike() {
        let mut rng = rng();
        let mask = tile_mask(32, 4, 0.5, &mut rng);
        let mut batch = Array4::<f32>::from_elem((3, 2, 32, 32), 0.75);
        apply_mask(&mut batch, &mask);
        for image in batch.outer_iter() {
            for plane in image.outer_iter() {
                assert_eq!(plane, mask.mapv(|m| 0.75 * m));
            }
        }
    }

    #[test]
    fn per_image_masks_differ_and_apply_to_their_own_image() {
        let mut rng = rng();
        let masks = per_image_masks(4, 32, EVAL_TILE, 0.5, &mut rng);
        assert_eq!(masks.dim(), (4, 32, 32));
        assert_ne!(masks.index_axis(Axis(0), 0), masks.index_axis(Axis(0), 1));
        let mut batch = Array4::<f32>::from_elem((4, 3, 32, 32), -0.5);
        apply_per_image_masks(&mut batch, &masks);
        for (i, image) in batch.outer_iter().enumerate() {
            let expected = masks.index_axis(Axis(0), i).mapv(|m| -0.5 * m);
            for plane in image.outer_iter() {
                assert_eq!(plane, expected);
            }
        }
    }

    #[test]
    fn per_image_masks_at_other_sides_fit_grey_and_colour_batches() {
        let mut rng = rng();
        for (side, channels) in [(28, 1), (64, 3)] {
            let tile = eval_tile(side, EVAL_TILE);
            let masks = per_image_masks(3, side, tile, 0.5, &mut rng);
            assert_eq!(masks.dim(), (3, side, side));
            let mut batch = Array4::<f32>::from_elem((3, channels, side, side), 0.25);
            apply_per_image_masks(&mut batch, &masks);
            for (i, image) in batch.outer_iter().enumerate() {
                let expected = masks.index_axis(Axis(0), i).mapv(|m| 0.25 * m);
                for plane in image.outer_iter() {
                    assert_eq!(plane, expected);
                }
            }
        }
    }
}
