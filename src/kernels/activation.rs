//! Pointwise activation functions of a cortical area, forward and backward.
//!
//! ```text
//! LeakyReLU:  f(u) = u (u > 0), α·u otherwise      f'(u) = 1 or α
//! tanh:       f(u) = tanh u                       f' = 1 − f²
//! sigmoid:    f(u) = 1 / (1 + e^−u)               f' = f·(1 − f)
//! identity:   f(u) = u                            f' = 1
//! ```
//!
//! Backward is written in terms of the *output* f(u), which the area keeps anyway; for
//! LeakyReLU with α > 0, f(u) > 0 exactly when u > 0 (PyTorch's branch at u = 0 is α too).
//!
//! PAD equivalent: `F.leaky_relu(·, 0.2)`, `torch.tanh`, `torch.sigmoid`.

use super::pointwise::{map_in_place, zip_in_place};
use super::{real, Real};

/// The transfer function of an area's neurons.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// Linear (no nonlinearity): the latent head.
    Identity,
    /// LeakyReLU with the given negative slope (PAD: 0.2).
    LeakyRelu(f64),
    /// Hyperbolic tangent: the generator's last area, images in [-1, 1].
    Tanh,
    /// Logistic sigmoid: the discriminator neurons.
    Sigmoid,
}

impl Activation {
    /// Applies the function in place: `u ← f(u)`.
    #[inline]
    pub fn forward_in_place<T: Real>(&self, u: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::LeakyRelu(slope) => {
                let slope = real::<T>(slope);
                // A select rather than a branch, so the loop vectorises.
                map_in_place(u, move |v| if v <= T::zero() { v * slope } else { v })
            }
            Activation::Tanh => map_in_place(u, |v| v.tanh_vectorisable()),
            Activation::Sigmoid => map_in_place(u, sigmoid),
        }
    }

    /// `u ← f(u + bias)` on one slice, on the calling thread: a layer's epilogue, run on each
    /// block of its output while the block is still in cache.
    pub fn apply_after_bias<T: Real>(&self, u: &mut [T], bias: T) {
        match *self {
            Activation::Identity => u.iter_mut().for_each(|v| *v += bias),
            Activation::LeakyRelu(slope) => {
                let slope = real::<T>(slope);
                u.iter_mut().for_each(|v| {
                    let x = *v + bias;
                    *v = if x <= T::zero() { x * slope } else { x }
                })
            }
            Activation::Tanh => u
                .iter_mut()
                .for_each(|v| *v = (*v + bias).tanh_vectorisable()),
            Activation::Sigmoid => u.iter_mut().for_each(|v| *v = sigmoid(*v + bias)),
        }
    }

    /// Turns the gradient w.r.t. the output into the gradient w.r.t. the input, in place:
    /// `g ← g · f'(u)`, with `output = f(u)`.
    pub fn backward_in_place<T: Real>(&self, output: &[T], grad: &mut [T]) {
        assert_eq!(output.len(), grad.len(), "activation backward: size");
        match *self {
            Activation::Identity => {}
            Activation::LeakyRelu(slope) => {
                let slope = real::<T>(slope);
                zip_in_place(
                    grad,
                    output,
                    move |g, y| if y <= T::zero() { g * slope } else { g },
                )
            }
            Activation::Tanh => zip_in_place(grad, output, |g, y| g * (T::one() - y * y)),
            Activation::Sigmoid => zip_in_place(grad, output, |g, y| g * (y * (T::one() - y))),
        }
    }
}

/// `tanh` in f32 without branches or calls, within 1.4 ulp of the exact value (libm's `tanhf`
/// is within 1.4 too, measured over the same points):
///
/// ```text
/// |x| < 0.625:  tanh x = x + x·t·R(t),  t = x²,  R a degree-5 least-squares fit
/// otherwise:    tanh |x| = 1 − 2 / (e^{2|x|} + 1),  e^y = 2^n · e^r,  y = n·ln 2 + r,
///               e^r = 1 + r + r²·S(r),  S a degree-5 fit on |r| ≤ ln 2 / 2
/// ```
///
/// `|x|` is clamped at 10, where tanh rounds to 1 in f32; the sign is copied back, NaN stays NaN.
pub fn tanh_f32(x: f32) -> f32 {
    const SMALL: f32 = 0.625;
    const R: [f32; 6] = [
        -0.333_333_3,
        0.133_332_26,
        -0.053_949_4,
        0.021_715_57,
        -0.008_215_02,
        0.002_178_07,
    ];
    const S: [f32; 6] = [
        0.5,
        0.166_666_66,
        0.041_666_33,
        0.008_333_432,
        0.001_394_217,
        0.000_198_182_2,
    ];
    // ln 2 in two parts, so n·LN2_HI is exact for the n that occur (n ≤ 29).
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // A compare rather than `min`, which would turn NaN into 10.
    let a = if x.abs() > 10.0 { 10.0 } else { x.abs() };
    let t = a * a;
    let small = a + a * t * R.iter().rev().fold(0.0, |acc, &c| acc * t + c);
    let y = 2.0 * a;
    let n = (y * std::f32::consts::LOG2_E + 0.5).floor();
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let exp_r = 1.0 + r + r * r * S.iter().rev().fold(0.0, |acc, &c| acc * r + c);
    // 2^n from its exponent bits n + 127 (0 ≤ n ≤ 29), read off the low mantissa bits of
    // n + 127 + 2²³ rather than by a float-to-int cast, which does not vectorise.
    let biased_exponent = (n + (127.0 + 8_388_608.0)).to_bits() & 0xff;
    let two_to_n = f32::from_bits(biased_exponent << 23);
    let large = 1.0 - 2.0 / (exp_r * two_to_n + 1.0);
    (if a < SMALL { small } else { large }).copysign(x)
}

/// Numerically stable logistic function.
pub fn sigmoid<T: Real>(u: T) -> T {
    if u >= T::zero() {
        T::one() / (T::one() + (-u).exp())
    } else {
        let e = u.exp();
        e / (T::one() + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance from the exact value in units of the last place of the f32 result.
    fn ulps(got: f32, exact: f64) -> f64 {
        let scale = (exact.abs() as f32).max(f32::MIN_POSITIVE);
        let ulp = (f32::from_bits(scale.to_bits() + 1) - scale) as f64;
        (got as f64 - exact).abs() / ulp
    }

    #[test]
    fn tanh_f32_is_within_two_ulps_everywhere() {
        let dense = (-1_200_000..=1_200_000).map(|i| i as f32 * 1e-5);
        let tiny = (0..2000).map(|i| 10f32.powf(-30.0 + i as f32 * 0.015));
        let mut worst = (0.0, 0.0f32);
        for x in dense.chain(tiny.clone()).chain(tiny.map(|v| -v)) {
            let e = ulps(tanh_f32(x), (x as f64).tanh());
            if e > worst.0 {
                worst = (e, x);
            }
        }
        assert!(worst.0 <= 2.0, "{} ulps at {}", worst.0, worst.1);
        for (x, want) in [(0.0f32, 0.0f32), (-0.0, -0.0), (30.0, 1.0), (-1e30, -1.0)] {
            assert_eq!(tanh_f32(x).to_bits(), want.to_bits(), "tanh({x})");
        }
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn leaky_relu_uses_slope_at_and_below_zero() {
        let mut u = vec![-2.0f64, 0.0, 3.0];
        Activation::LeakyRelu(0.2).forward_in_place(&mut u);
        assert_eq!(u, vec![-0.4, 0.0, 3.0]);
        let mut g = vec![1.0f64; 3];
        Activation::LeakyRelu(0.2).backward_in_place(&u, &mut g);
        assert_eq!(g, vec![0.2, 0.2, 1.0]);
    }

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(-1000.0f32), 0.0);
        assert_eq!(sigmoid(1000.0f32), 1.0);
        assert!((sigmoid(0.0f64) - 0.5).abs() < 1e-15);
    }
}
