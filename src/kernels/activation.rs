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
    pub fn forward_in_place<T: Real>(&self, u: &mut [T]) {
        match *self {
            Activation::Identity => {}
            Activation::LeakyRelu(slope) => {
                let slope = real::<T>(slope);
                // A select rather than a branch, so the loop vectorises.
                map_in_place(u, move |v| if v <= T::zero() { v * slope } else { v })
            }
            Activation::Tanh => map_in_place(u, |v| v.tanh()),
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
            Activation::Tanh => u.iter_mut().for_each(|v| *v = (*v + bias).tanh()),
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
