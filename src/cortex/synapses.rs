//! Synapses: a named tensor of weights (or biases) and the gradient plasticity computed for it.
//!
//! PAD equivalent: an `nn.Parameter` and its `.grad`. `grad == None` means the parameter took no
//! part in the last phase (PyTorch's `zero_grad(set_to_none=True)`), and optimisers skip it:
//! its value, moments and step count stay as they are.

use ndarray::ArrayD;

/// One parameter tensor with its optional gradient.
#[derive(Clone, Debug)]
pub struct Parameter {
    /// Full name, in the reference's naming (`E.conv1.weight`, `G.tconv4.bias`, ...).
    pub name: String,
    /// Current value.
    pub value: ArrayD<f32>,
    /// Gradient accumulated since the last [`Parameter::clear_grad`], if any.
    pub grad: Option<ArrayD<f32>>,
}

impl Parameter {
    /// A parameter without gradient.
    pub fn new(name: impl Into<String>, value: ArrayD<f32>) -> Self {
        Parameter {
            name: name.into(),
            value,
            grad: None,
        }
    }

    /// Forgets the gradient (set-to-none semantics).
    pub fn clear_grad(&mut self) {
        self.grad = None;
    }

    /// The gradient buffer, created as zeros if this is the parameter's first gradient.
    pub fn grad_mut(&mut self) -> &mut ArrayD<f32> {
        let shape = self.value.raw_dim();
        self.grad.get_or_insert_with(|| ArrayD::zeros(shape))
    }

    /// Multiplies the gradient (if any) by `factor`: the conductor's plasticity sign.
    pub fn scale_grad(&mut self, factor: f32) {
        if let Some(g) = self.grad.as_mut() {
            g.mapv_inplace(|v| v * factor);
        }
    }
}
