//! Synapses: a named tensor of weights (or biases) and the gradient plasticity computed for it.
//!
//! PAD equivalent: an `nn.Parameter` and its `.grad`. `grad == None` means the parameter took no
//! part in the last phase (PyTorch's `zero_grad(set_to_none=True)`), and optimisers skip it:
//! its value, moments and step count stay as they are.

use crate::kernels::conv::Update;
use crate::kernels::pointwise::map_in_place;
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
    /// The memory of the last cleared gradient, reused by the next one: a cycle clears and
    /// rebuilds every gradient three times, and fresh allocations of this size cost page faults.
    recycled: Option<ArrayD<f32>>,
}

impl Parameter {
    /// A parameter without gradient.
    pub fn new(name: impl Into<String>, value: ArrayD<f32>) -> Self {
        Parameter {
            name: name.into(),
            value,
            grad: None,
            recycled: None,
        }
    }

    /// Forgets the gradient (set-to-none semantics).
    pub fn clear_grad(&mut self) {
        if let Some(grad) = self.grad.take() {
            self.recycled = Some(grad);
        }
    }

    /// Frees the memory kept for the next gradient (the gradient itself, if any, stays).
    pub fn release_spare_memory(&mut self) {
        self.recycled = None;
    }

    /// Takes the gradient out for a backward pass to update, with how: the current gradient
    /// to [`Update::Accumulate`] into, or, if the parameter has none, a buffer of stale
    /// values (the last cleared gradient's memory) to [`Update::Overwrite`] entirely. Give it
    /// back by setting `grad`.
    pub fn take_grad(&mut self) -> (ArrayD<f32>, Update) {
        if let Some(grad) = self.grad.take() {
            return (grad, Update::Accumulate);
        }
        let buffer = match self.recycled.take() {
            Some(buffer) if buffer.raw_dim() == self.value.raw_dim() => buffer,
            _ => ArrayD::zeros(self.value.raw_dim()),
        };
        (buffer, Update::Overwrite)
    }

    /// The gradient buffer to accumulate into, zeros if the parameter has no gradient yet.
    pub fn grad_mut(&mut self) -> &mut ArrayD<f32> {
        let (mut grad, update) = self.take_grad();
        if update == Update::Overwrite {
            map_in_place(grad.as_slice_mut().expect("standard layout"), |_| 0.0);
        }
        self.grad.insert(grad)
    }

    /// Multiplies the gradient (if any) by `factor`: the conductor's plasticity sign.
    pub fn scale_grad(&mut self, factor: f32) {
        if factor == 1.0 {
            return; // exact either way; spares a pass over the gradient every Wake
        }
        if let Some(g) = self.grad.as_mut() {
            match g.as_slice_mut() {
                Some(values) => map_in_place(values, move |v| v * factor),
                None => g.mapv_inplace(|v| v * factor),
            }
        }
    }
}
