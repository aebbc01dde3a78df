//! Plain stochastic gradient descent: `p ← p − lr·g`.
//!
//! PAD equivalent: `torch.optim.SGD(lr=0.2)` of the linear-separability probe (no momentum,
//! no weight decay).

use super::Optimiser;
use crate::cortex::Parameter;

/// Plain SGD with a fixed learning rate.
#[derive(Clone, Copy, Debug)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
}

impl Optimiser for Sgd {
    fn step(&mut self, params: &mut [&mut Parameter]) {
        for p in params.iter_mut() {
            let Some(grad) = p.grad.as_ref() else {
                continue;
            };
            let lr = self.lr;
            p.value.zip_mut_with(grad, |v, &g| *v -= lr * g);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{arr1, ArrayD};

    #[test]
    fn steps_against_the_gradient_and_skips_missing_ones() {
        let mut a = Parameter::new("a", arr1(&[1.0f32, 2.0]).into_dyn());
        a.grad = Some(arr1(&[0.5f32, -1.0]).into_dyn());
        let mut b = Parameter::new("b", ArrayD::from_elem(vec![1], 3.0f32));
        Sgd { lr: 0.2 }.step(&mut [&mut a, &mut b]);
        assert_eq!(a.value, arr1(&[0.9f32, 2.2]).into_dyn());
        assert_eq!(b.value[[0]], 3.0);
    }
}
