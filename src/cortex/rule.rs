//! The plasticity-rule seam: what an area's rule decides at each backward pass.
//!
//! ```text
//! arriving:  e_k = rule.arriving_error(δ from above, e_out)       default: δ from above
//! delta:     δ_k = e_k ⊙ f'(a_k)
//! update:    ΔW_k, Δb_k = rule.weight_change(local signals)        default: δ_k ⋆ a_in, Σ δ_k
//! down:      δ_{k−1} = F_kᵀ ⊛ δ_k,  F_k = rule.feedback(W_k)       default: F = W
//! ```
//!
//! A rule sees only what is local to its area ([`LocalSignals`]): its synapses `W`, the
//! presynaptic activity, the area's output and transfer function, the error that arrived, its
//! δ, and the brain state's [`Modulation`] of the pathway (plastic or not, sign). Besides, a
//! rule may ask for the pathway's *output error* `e_out` ([`PlasticityRule::wants_output_error`]):
//! the δ of the pathway's output areas, one row per image, which direct feedback alignment
//! broadcasts to every area. Optimisers then turn the (signed) update into synaptic change.
//!
//! PAD equivalent: autograd's `loss.backward()` through one `nn.Conv2d` / `nn.ConvTranspose2d`
//! ([`ExactBackprop`], the default, keeps it bit for bit).

use super::{Activity, Connectivity};
use crate::kernels::conv::{
    self, ConvGeometry, ConvScratch, KeptInput, PatchGrid, SynapticGradients, Update,
};
use crate::kernels::Activation;
use ndarray::{Array2, ArrayD, ArrayViewD, CowArray, IxDyn};

/// How a brain state modulates a pathway's plasticity (set by the conductor for each state).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Modulation {
    /// Whether the pathway's synapses change in this state.
    pub plastic: bool,
    /// Multiplies the pathway's synaptic change (−1: the feedback pathway in REM).
    pub sign: f32,
}

impl Default for Modulation {
    fn default() -> Self {
        Modulation {
            plastic: true,
            sign: 1.0,
        }
    }
}

/// What is local to an area during its backward pass, for its rule's weight change.
pub struct LocalSignals<'a> {
    /// The area's full name (`E.conv2`).
    pub area: &'a str,
    /// Convolution or transposed convolution.
    pub connectivity: Connectivity,
    /// Channels, kernel, stride, padding.
    pub geometry: ConvGeometry,
    /// The transfer function `f` (its derivative is read from `output`).
    pub activation: Activation,
    /// The area's synaptic weights `W` (the layout of [`LocalSignals::correlate`]'s result).
    pub weight: &'a ArrayD<f32>,
    /// The area's activity `a = f(u)` of the forward pass, `[C_out, N, H, W]`.
    pub output: &'a Activity,
    /// The error that arrived at the area's activity (`∂L/∂a` under backprop).
    pub arriving: &'a Activity,
    /// `δ = arriving ⊙ f'(u)`.
    pub delta: &'a Activity,
    /// The brain state's modulation of this pathway.
    pub modulation: Modulation,
    pub(crate) input_term: &'a KeptInput<f32>,
    pub(crate) grid: PatchGrid,
}

impl LocalSignals<'_> {
    /// `post ⋆ a_in`: the correlation of a postsynaptic signal (shaped like the output) with
    /// the presynaptic activity, in the weight's layout. With `post = δ` it is the error-driven
    /// gradient; with `post = a` it is the Hebbian term `a_out ⋆ a_in`. Returns the weight
    /// part and the per-channel sums of `post` (the bias part).
    pub fn correlate(&self, post: &Activity) -> (ArrayD<f32>, Vec<f32>) {
        let g = self.geometry;
        let shape = match self.connectivity {
            Connectivity::Conv => [g.out_channels, g.in_channels, g.kernel, g.kernel],
            Connectivity::ConvTranspose => [g.in_channels, g.out_channels, g.kernel, g.kernel],
        };
        let mut weight = ArrayD::zeros(IxDyn(&shape));
        let mut bias = vec![0.0; g.out_channels];
        let grads = SynapticGradients {
            weight: weight.as_slice_mut().expect("fresh array"),
            weight_update: Update::Overwrite,
            bias: &mut bias,
            bias_update: Update::Overwrite,
        };
        let mut scratch = ConvScratch::new();
        let dy = post.as_slice();
        let x = self.input_term;
        // No input gradient is asked for, so the feedback synapses are not read.
        match self.connectivity {
            Connectivity::Conv => {
                conv::conv2d_backward(dy, x, &self.grid, &g, &[], grads, &mut scratch, None)
            }
            Connectivity::ConvTranspose => conv::conv_transpose2d_backward(
                dy,
                x.values(),
                &self.grid,
                &g,
                &[],
                grads,
                &mut scratch,
                None,
            ),
        }
        (weight, bias)
    }
}

/// What a backward pass carries besides the error from above.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorContext<'a> {
    /// The pathway's output error `e_out`, `[N, E]` (one row per image), when some area's rule
    /// asked for it and the area is not itself an output area.
    pub output_error: Option<&'a Array2<f32>>,
}

/// The synaptic change of one area, as the rule leaves it (before the conductor's sign).
pub struct SynapticChange<'a> {
    /// ∂/∂W, in the weight's layout; on entry the error-driven `δ ⋆ a_in` (added to what
    /// earlier passes of the phase accumulated).
    pub weight: &'a mut ArrayD<f32>,
    /// ∂/∂b; on entry `Σ δ` (accumulated likewise).
    pub bias: &'a mut ArrayD<f32>,
}

/// A plasticity rule: how an area's error arrives, how its synapses change, and how its error
/// travels to the area below.
pub trait PlasticityRule: Send + Sync + std::fmt::Debug {
    /// A short name for records and logs (`exact_backprop`, ...).
    fn name(&self) -> &str;

    /// The feedback synapses through which the error reaches the area's input, shaped like
    /// (and in the layout of) the area's forward weights `weight`.
    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn>;

    /// A boxed copy, so areas holding a rule can be cloned.
    fn boxed_clone(&self) -> Box<dyn PlasticityRule>;

    /// Whether the rule needs the pathway's output error (then
    /// [`PlasticityRule::arriving_error`] receives it in `context`). Default: no.
    fn wants_output_error(&self) -> bool {
        false
    }

    /// Whether the area needs the error of the area above sent down to it. Default: yes; a
    /// rule that builds its error from `e_out` alone says no, and the area above skips that
    /// product.
    fn needs_error_from_above(&self) -> bool {
        true
    }

    /// The error arriving at the area's activity, shaped `[C_out, N, H, W]` like `output`,
    /// from the error sent down by the area above (absent when that area does not send one)
    /// and the pathway's output error. Default: the error from above.
    fn arriving_error(
        &mut self,
        from_above: Option<Activity>,
        output: &Activity,
        context: &ErrorContext,
    ) -> Activity {
        let _ = (output, context);
        from_above.expect("the area above sends its error to an area whose rule needs it")
    }

    /// Whether [`PlasticityRule::weight_change`] changes the update. Default: no, and the
    /// area spares the copy of its arriving error that the local signals show.
    fn changes_update(&self) -> bool {
        false
    }

    /// Changes the area's synaptic update from what is local to it (called only when
    /// [`PlasticityRule::changes_update`]). On entry `change` holds the error-driven gradient;
    /// the default leaves it (gradient descent on the loss, as under backprop).
    fn weight_change(&mut self, local: &LocalSignals, change: SynapticChange) {
        let _ = (local, change);
    }

    /// What the rule keeps besides the area's synapses (feedback alignment's fixed `B`), which
    /// a checkpoint must save for a resumed run to continue bit for bit. `None` (the default):
    /// the rule derives everything from `W`.
    fn state(&self) -> Option<&ArrayD<f32>> {
        None
    }

    /// Puts back what [`PlasticityRule::state`] returned when a checkpoint was taken. Rules
    /// without state refuse.
    fn restore(&mut self, state: ArrayD<f32>) -> Result<(), String> {
        let _ = state;
        Err(format!(
            "the {} rule keeps no state to restore",
            self.name()
        ))
    }
}

impl Clone for Box<dyn PlasticityRule> {
    fn clone(&self) -> Self {
        self.boxed_clone()
    }
}

/// Exact backpropagation: the error returns through the very synapses it came forward on
/// (`F = W`, `δ_in = Wᵀ δ_out`). PAD equivalent: autograd's `loss.backward()`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExactBackprop;

impl PlasticityRule for ExactBackprop {
    fn name(&self) -> &str {
        "exact_backprop"
    }

    fn feedback<'a>(&'a self, weight: ArrayViewD<'a, f32>) -> CowArray<'a, f32, IxDyn> {
        CowArray::from(weight)
    }

    fn boxed_clone(&self) -> Box<dyn PlasticityRule> {
        Box::new(*self)
    }
}
