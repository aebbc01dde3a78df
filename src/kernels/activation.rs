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

use super::{real, Real};
use rayon::prelude::*;

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

/// Below this many elements a pointwise pass stays on one thread.
const PARALLEL_MIN_LEN: usize = 1 << 14;

/// Applies `f` to every element, in parallel chunks for long slices; `f` is inlined per
/// activation (a boxed closure here cost a dynamic call per element: 3% of a cycle).
fn for_each<T: Real>(a: &mut [T], f: impl Fn(&mut T) + Sync + Send) {
    if a.len() < PARALLEL_MIN_LEN {
        a.iter_mut().for_each(f);
    } else {
        a.par_chunks_mut(PARALLEL_MIN_LEN)
            .for_each(|chunk| chunk.iter_mut().for_each(&f));
    }
}

fn for_each_pair<T: Real>(a: &mut [T], b: &[T], f: impl Fn(&mut T, T) + Sync + Send) {
    if a.len() < PARALLEL_MIN_LEN {
        a.iter_mut().zip(b).for_each(|(x, &y)| f(x, y));
    } else {
        a.par_chunks_mut(PARALLEL_MIN_LEN)
            .zip(b.par_chunks(PARALLEL_MIN_LEN))
            .for_each(|(xa, xb)| xa.iter_mut().zip(xb).for_each(|(x, &y)| f(x, y)));
    }
}

impl Activation {
    /// Applies the function in place: `u ← f(u)`.
    pub fn forward_in_place<T: Real>(&self, u: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::LeakyRelu(slope) => {
                let slope = real::<T>(slope);
                // A select rather than a branch, so the loop vectorises.
                for_each(u, |v| *v = if *v <= T::zero() { *v * slope } else { *v })
            }
            Activation::Tanh => for_each(u, |v| *v = v.tanh()),
            Activation::Sigmoid => for_each(u, |v| *v = sigmoid(*v)),
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
                for_each_pair(grad, output, |g, y| {
                    *g = if y <= T::zero() { *g * slope } else { *g }
                })
            }
            Activation::Tanh => for_each_pair(grad, output, |g, y| *g *= T::one() - y * y),
            Activation::Sigmoid => for_each_pair(grad, output, |g, y| *g *= y * (T::one() - y)),
        }
    }
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
