//! A built-in labelled image set, drawn procedurally from a seed: ten classes of shapes,
//! 3 × S × S for an architecture of input side S (32 for PAD), for runs and tests on machines
//! without any downloaded data.
//!
//! PAD equivalent: none (PAD trains on CIFAR-10, SVHN, MNIST, Fashion-MNIST). It stands in for
//! them where only the plumbing matters, and is hard enough that a linear probe's accuracy on
//! learned features says something.
//!
//! Each image shows one shape, whose kind is the label:
//!
//! | label | class                | drawn as                                                  |
//! |-------|----------------------|-----------------------------------------------------------|
//! | 0     | `disc`               | filled circle                                             |
//! | 1     | `square`             | filled square, rotated up to ±20°                         |
//! | 2     | `ring`               | circle outline                                            |
//! | 3     | `cross`              | plus sign, rotated up to ±20°                             |
//! | 4     | `horizontal_stripes` | square patch of horizontal stripes                        |
//! | 5     | `vertical_stripes`   | square patch of vertical stripes                          |
//! | 6     | `diagonal_stripes`   | square patch of stripes at ±45°                           |
//! | 7     | `triangle`           | filled upward triangle, rotated up to ±20°                |
//! | 8     | `checkerboard`       | square patch of a checkerboard                            |
//! | 9     | `blob`               | soft-edged sum of three Gaussian bumps                    |
//!
//! Position (centre within the middle 14 × 14 pixels), size (radius 5–10 px), the grey levels of
//! shape (0.7–1) and background (0–0.3) with a tint of up to ±0.1 per channel, a linear
//! background gradient, stripe period, phase and checker size are random; pixel noise
//! (σ = 0.05) is added last. The shape is always brighter than its background: colour is a
//! small nuisance, and position and size are the large ones. Shapes are
//! anti-aliased: coverage is `clamp(0.5 − d, 0, 1)` for the signed distance `d` (pixels) of a
//! pixel centre to the outline.
//!
//! Lengths are given at S = 32; at another side every length (position, radius, stripe period,
//! checker size, ring width) is scaled by S/32, so an image at side S shows the same scene as at
//! 32, drawn with S/32 times as many pixels per unit. The random draws are the same at every
//! side (one noise draw per pixel comes last), and at S = 32 the images are the bytes the set
//! had before other sides existed. The anti-aliasing ramp and the noise stay one pixel wide and
//! per pixel.
//!
//! What it shows (the defaults: 5,000 training and 1,000 test images, seed 0, padsim's default
//! PAD network): the untrained encoder's latents already separate the classes somewhat (converged
//! linear probe 45.4% on the test set, chance 10%), since random convolutions respond to shapes;
//! two epochs of full PAD (156 cycles, about a minute on 2 cores) raise that to 57.8%, while
//! without REM it falls to 41.4%: the paper's Fig 4 contrast, in a minute instead of hours.
//! An earlier version drew shape and background in unrelated random colours; there colour
//! swamped shape (the same probes: 13% untrained, 14% after three epochs).
//!
//! Determinism: image `i` of a split is drawn from its own ChaCha8 stream, keyed by the seed,
//! with stream number `split_tag · 2^48 + i`, so the images do not depend on how many threads
//! draw them or in what order. Labels cycle `0, 1, …, 9, 0, …`, so every prefix of a split is
//! balanced to within one image per class.

use super::{check_side, DataError, Dataset, Split, IMAGE_SIDE, NUM_CLASSES};
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::StandardNormal;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Class names, indexed by label.
pub const CLASS_NAMES: [&str; NUM_CLASSES] = [
    "disc",
    "square",
    "ring",
    "cross",
    "horizontal_stripes",
    "vertical_stripes",
    "diagonal_stripes",
    "triangle",
    "checkerboard",
    "blob",
];

/// Size and seed of the synthetic set.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyntheticConfig {
    /// Seed of every image's random stream.
    pub seed: u64,
    /// Number of training images.
    pub train_size: usize,
    /// Number of test images.
    pub test_size: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            train_size: 5000,
            test_size: 1000,
        }
    }
}

/// Which split an image belongs to; part of its stream number, so train and test never share
/// an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitTag {
    Train = 1,
    Test = 2,
}

const NOISE_SD: f64 = 0.05;
const TINT: f64 = 0.1;

/// Generates both splits at PAD's 32 × 32.
pub fn generate(config: &SyntheticConfig) -> Split {
    Split {
        train: generate_split(config.seed, SplitTag::Train, config.train_size),
        test: generate_split(config.seed, SplitTag::Test, config.test_size),
    }
}

/// Generates both splits at `side × side`; a side outside 1 to [`super::MAX_IMAGE_SIDE`] is an
/// error.
pub fn generate_sized(config: &SyntheticConfig, side: usize) -> Result<Split, DataError> {
    Ok(Split {
        train: generate_split_sized(config.seed, SplitTag::Train, config.train_size, side)?,
        test: generate_split_sized(config.seed, SplitTag::Test, config.test_size, side)?,
    })
}

/// Generates `count` images of one split at PAD's 32 × 32.
pub fn generate_split(seed: u64, split: SplitTag, count: usize) -> Dataset {
    generate_split_sized(seed, split, count, IMAGE_SIDE)
        .expect("32 is a valid side and generated images and labels have consistent sizes")
}

/// Generates `count` images of one split at `side × side`; a side outside 1 to
/// [`super::MAX_IMAGE_SIDE`] is an error.
pub fn generate_split_sized(
    seed: u64,
    split: SplitTag,
    count: usize,
    side: usize,
) -> Result<Dataset, DataError> {
    check_side(side)?;
    let image_len = 3 * side * side;
    let mut images = vec![0u8; count * image_len];
    images
        .par_chunks_mut(image_len)
        .enumerate()
        .for_each(|(index, dst)| render(seed, split, index, side, dst));
    let labels = (0..count).map(label_of).collect();
    let name = match split {
        SplitTag::Train => "synthetic/train",
        SplitTag::Test => "synthetic/test",
    };
    Dataset::new(
        name,
        3,
        side,
        side,
        images,
        labels,
        CLASS_NAMES.iter().map(|s| s.to_string()).collect(),
    )
}

/// The label of image `index`: classes in turn.
pub fn label_of(index: usize) -> u8 {
    (index % NUM_CLASSES) as u8
}

/// The random stream of one image.
fn image_rng(seed: u64, split: SplitTag, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((split as u64) << 48) | (index as u64 & ((1 << 48) - 1)));
    rng
}

/// Draws image `index` of `split` into `dst` (CHW bytes, 3 × side × side).
fn render(seed: u64, split: SplitTag, index: usize, side: usize, dst: &mut [u8]) {
    let mut rng = image_rng(seed, split, index);
    let shape = Shape::draw(label_of(index), scale_of(side), &mut rng);

    let (foreground, background) = shape_and_background_colours(&mut rng);
    // Background brightness changes linearly across the image by up to ±0.15.
    let gradient_angle = rng.random::<f64>() * 2.0 * PI;
    let gradient_strength = rng.random::<f64>() * 0.3 / side as f64;
    let (gx, gy) = (gradient_angle.cos(), gradient_angle.sin());

    let half = side as f64 / 2.0;
    let plane = side * side;
    for row in 0..side {
        for col in 0..side {
            // Pixel centre relative to the shape's centre, y pointing down.
            let x = col as f64 + 0.5;
            let y = row as f64 + 0.5;
            let alpha = shape.coverage(x - shape.cx, y - shape.cy);
            let shade = gradient_strength * ((x - half) * gx + (y - half) * gy);
            for ch in 0..3 {
                let back = background[ch] + shade;
                let noise: f64 = rng.sample::<f64, _>(StandardNormal) * NOISE_SD;
                let value = back * (1.0 - alpha) + foreground[ch] * alpha + noise;
                dst[ch * plane + row * side + col] = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}

/// A shape colour and a background colour: a bright grey level (0.7–1) and a dark one (0–0.3),
/// each channel tinted by up to ±[`TINT`]. The shape is always the brighter, so contrast, not
/// colour, carries it.
fn shape_and_background_colours(rng: &mut impl Rng) -> ([f64; 3], [f64; 3]) {
    let background = rng.random_range(0.0..0.3);
    let shape = rng.random_range(0.7..1.0);
    let mut tinted =
        |grey: f64| -> [f64; 3] { std::array::from_fn(|_| grey + rng.random_range(-TINT..TINT)) };
    let background = tinted(background);
    (tinted(shape), background)
}

/// Lengths at `side` per length at 32: `side / 32` (exactly 1 at 32).
fn scale_of(side: usize) -> f64 {
    side as f64 / IMAGE_SIDE as f64
}

/// One drawn shape: its class and random parameters, in pixels.
struct Shape {
    class: u8,
    /// Lengths per length at side 32 ([`scale_of`]).
    scale: f64,
    cx: f64,
    cy: f64,
    radius: f64,
    /// Rotation (radians) for the classes that may rotate; stripe orientation sign for class 6.
    angle: f64,
    /// Stripe period or checker cell size.
    period: f64,
    /// Stripe phase, radians.
    phase: f64,
    /// Blob bumps: offset from the centre and width.
    bumps: [(f64, f64, f64); 3],
}

impl Shape {
    /// Draws a shape of `class` with lengths `scale` times those at side 32. The draws do not
    /// depend on `scale`, and at `scale = 1` the parameters are exactly those of side 32.
    fn draw(class: u8, scale: f64, rng: &mut impl Rng) -> Self {
        let k = scale;
        let cx = rng.random_range(9.0 * k..23.0 * k);
        let cy = rng.random_range(9.0 * k..23.0 * k);
        let radius = rng.random_range(5.0 * k..10.0 * k);
        let angle = match class {
            1 | 3 | 7 => rng.random_range(-0.35..0.35),
            6 => {
                if rng.random::<bool>() {
                    1.0
                } else {
                    -1.0
                }
            }
            _ => 0.0,
        };
        let period = match class {
            8 => rng.random_range(3.0 * k..5.5 * k),
            _ => rng.random_range(4.0 * k..7.0 * k),
        };
        let phase = rng.random::<f64>() * 2.0 * PI;
        let mut bumps = [(0.0, 0.0, 1.0); 3];
        for bump in &mut bumps {
            *bump = (
                rng.random_range(-0.5..0.5) * radius,
                rng.random_range(-0.5..0.5) * radius,
                rng.random_range(0.3..0.5) * radius,
            );
        }
        Self {
            class,
            scale,
            cx,
            cy,
            radius,
            angle,
            period,
            phase,
            bumps,
        }
    }

    /// How much of the pixel at offset (dx, dy) from the centre the shape covers, in [0, 1].
    fn coverage(&self, dx: f64, dy: f64) -> f64 {
        let r = self.radius;
        let edge = |signed_distance: f64| (0.5 - signed_distance).clamp(0.0, 1.0);
        let (cos, sin) = (self.angle.cos(), self.angle.sin());
        // Coordinates in the shape's own rotated frame.
        let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
        let patch = || edge(dx.abs().max(dy.abs()) - r);
        let stripes = |coordinate: f64| {
            let wave = (2.0 * PI * coordinate / self.period + self.phase).sin();
            (wave * 2.0 + 0.5).clamp(0.0, 1.0)
        };
        match self.class {
            0 => edge(dx.hypot(dy) - r),
            1 => edge(u.abs().max(v.abs()) - 0.85 * r),
            2 => edge((dx.hypot(dy) - r).abs() - (0.22 * r).max(1.2 * self.scale)),
            3 => {
                let half_width = 0.28 * r;
                let horizontal = (u.abs() - r).max(v.abs() - half_width);
                let vertical = (v.abs() - r).max(u.abs() - half_width);
                edge(horizontal.min(vertical))
            }
            4 => patch() * stripes(dy),
            5 => patch() * stripes(dx),
            6 => patch() * stripes((dx + self.angle * dy) * FRAC_1_SQRT_2),
            7 => edge(triangle_distance(u, -v, r)),
            8 => {
                let cell = |t: f64| (t / self.period).floor() as i64;
                let dark = (cell(dx) + cell(dy)).rem_euclid(2) == 0;
                if dark {
                    patch()
                } else {
                    0.0
                }
            }
            _ => {
                let density: f64 = self
                    .bumps
                    .iter()
                    .map(|&(ox, oy, width)| {
                        let d2 = (dx - ox).powi(2) + (dy - oy).powi(2);
                        (-d2 / (2.0 * width * width)).exp()
                    })
                    .sum();
                density.clamp(0.0, 1.0)
            }
        }
    }
}

/// Signed distance from (x, y), y pointing up, to an equilateral triangle centred on the
/// origin with circumradius-like size `r`, pointing up (negative inside).
fn triangle_distance(x: f64, y: f64, r: f64) -> f64 {
    let k = 3f64.sqrt();
    let mut px = x.abs() - r;
    let mut py = y + r / k;
    if px + k * py > 0.0 {
        (px, py) = ((px - k * py) / 2.0, (-k * px - py) / 2.0);
    }
    px -= px.clamp(-2.0 * r, 0.0);
    -(px.hypot(py)) * py.signum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_images_other_seed_other_images() {
        let config = SyntheticConfig {
            seed: 3,
            train_size: 40,
            test_size: 10,
        };
        let a = generate(&config);
        let b = generate(&config);
        assert_eq!(a, b);
        let c = generate(&SyntheticConfig { seed: 4, ..config });
        assert_ne!(a.train.images(), c.train.images());
        assert_eq!(a.train.labels(), c.train.labels());
    }

    #[test]
    fn images_do_not_depend_on_the_thread_count_or_the_split_size() {
        let config = SyntheticConfig {
            seed: 11,
            train_size: 64,
            test_size: 8,
        };
        let parallel = generate(&config);
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| generate(&config));
        assert_eq!(parallel, one_thread);
        // Image i is the same whatever else is generated alongside it.
        let small = generate_split(11, SplitTag::Train, 5);
        assert_eq!(small.images(), &parallel.train.images()[..5 * 3 * 32 * 32]);
    }

    #[test]
    fn train_and_test_differ_and_classes_are_balanced() {
        let split = generate(&SyntheticConfig {
            seed: 0,
            train_size: 30,
            test_size: 30,
        });
        assert_ne!(split.train.images(), split.test.images());
        assert_eq!(split.train.class_counts(), vec![3; 10]);
        assert_eq!(split.train.class_names()[9], "blob");
    }

    #[test]
    fn shapes_are_visible() {
        // The shape must change a fair number of pixels against the background: render
        // without noise by comparing coverage directly. At other sides the same draws cover
        // about (side/32)² times as many pixels.
        for side in [32, 28, 64] {
            let area = (side * side) as f64 / 1024.0;
            let mut rng = image_rng(0, SplitTag::Train, 0);
            for class in 0..NUM_CLASSES as u8 {
                for _ in 0..20 {
                    let shape = Shape::draw(class, scale_of(side), &mut rng);
                    let covered = (0..side * side)
                        .filter(|i| {
                            let (x, y) = ((i % side) as f64 + 0.5, (i / side) as f64 + 0.5);
                            shape.coverage(x - shape.cx, y - shape.cy) > 0.5
                        })
                        .count() as f64;
                    assert!(
                        (10.0 * area..700.0 * area).contains(&covered),
                        "side {side}, class {class}: {covered} covered pixels"
                    );
                }
            }
        }
    }

    #[test]
    fn other_sides_draw_the_same_scenes_with_more_or_fewer_pixels() {
        let config = SyntheticConfig {
            seed: 5,
            train_size: 30,
            test_size: 10,
        };
        let at_32 = generate(&config);
        assert_eq!(generate_sized(&config, 32).unwrap(), at_32);
        for side in [64, 28] {
            let split = generate_sized(&config, side).unwrap();
            for set in [&split.train, &split.test] {
                assert_eq!((set.channels(), set.height(), set.width()), (3, side, side));
                assert_eq!(set.image_len(), 3 * side * side);
                assert_eq!(set.classes(), 10);
            }
            assert_eq!(split.train.class_counts(), vec![3; 10]);
            assert_eq!(split.train.labels(), at_32.train.labels());
            for i in 0..split.train.len() {
                // A bright shape on a dark background: the brightest pixel is the shape's, the
                // darkest the background's.
                let image = split.train.image(i);
                let (min, max) = (image.iter().min().unwrap(), image.iter().max().unwrap());
                assert!(
                    *min < 110 && *max > 150,
                    "side {side}, image {i}: {min}..={max}"
                );
            }
            // Brought back to 32 x 32, an image is its 32 x 32 twin up to pixel noise and
            // edge sampling (mean absolute difference of a few grey levels).
            let back = split.train.clone().resized(32).unwrap();
            let difference: f64 = back
                .images()
                .iter()
                .zip(at_32.train.images())
                .map(|(&a, &b)| f64::from(a.abs_diff(b)))
                .sum::<f64>()
                / back.images().len() as f64;
            assert!(
                difference < 20.0,
                "side {side}: mean difference {difference}"
            );
            // The same comparison against other images (one class on) is far worse.
            let shifted = back.images()[3072..]
                .iter()
                .zip(at_32.train.images())
                .map(|(&a, &b)| f64::from(a.abs_diff(b)))
                .sum::<f64>()
                / (back.images().len() - 3072) as f64;
            assert!(
                shifted > difference + 5.0,
                "side {side}: {shifted} vs {difference}"
            );
        }
    }

    #[test]
    fn sides_outside_the_range_are_errors() {
        let config = SyntheticConfig::default();
        assert!(generate_sized(&config, 0).is_err());
        assert!(
            generate_split_sized(0, SplitTag::Train, 3, super::super::MAX_IMAGE_SIDE + 1).is_err()
        );
        let tiny = generate_sized(
            &SyntheticConfig {
                seed: 1,
                train_size: 10,
                test_size: 1,
            },
            1,
        )
        .unwrap();
        assert_eq!(tiny.train.image_len(), 3);
    }

    #[test]
    fn the_shape_is_brighter_than_its_background_in_every_channel() {
        let mut rng = image_rng(3, SplitTag::Test, 0);
        for _ in 0..1000 {
            let (shape, background) = shape_and_background_colours(&mut rng);
            for ch in 0..3 {
                assert!(
                    shape[ch] - background[ch] > 0.2,
                    "{shape:?} on {background:?}"
                );
                assert!((0.0..=1.1).contains(&shape[ch]) && (-0.1..=0.4).contains(&background[ch]));
            }
        }
    }

    /// FNV-1a, 64 bits: a fixed fingerprint of generated bytes.
    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    #[test]
    fn pinned_32x32_output() {
        let split = generate(&SyntheticConfig {
            seed: 0,
            train_size: 20,
            test_size: 10,
        });
        let train = fnv1a(split.train.images());
        let test = fnv1a(split.test.images());
        let head: Vec<u8> = split.train.images()[..8].to_vec();
        let mid: Vec<u8> = split.test.images()[5000..5008].to_vec();
        // Computed from the generator as it was before images could be drawn at other sides:
        // side 32 must keep giving these bytes.
        assert_eq!(train, 0x5e39_011e_9818_ed75, "train images changed");
        assert_eq!(test, 0xbe5b_c78e_b2c4_1580, "test images changed");
        assert_eq!(head, [0, 2, 11, 0, 0, 0, 9, 0]);
        assert_eq!(mid, [55, 56, 77, 89, 53, 31, 66, 52]);
    }

    #[test]
    fn triangle_distance_signs() {
        assert!(triangle_distance(0.0, 0.0, 5.0) < 0.0);
        assert!(triangle_distance(0.0, 20.0, 5.0) > 0.0);
        assert!(triangle_distance(20.0, 0.0, 5.0) > 0.0);
    }
}
