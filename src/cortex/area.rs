//! A cortical area: synapses from the area below, a transfer function, and the activity it
//! last produced.
//!
//! ```text
//! forward:   a_out = f(W ⊛ a_in + b)        (⊛: convolution or transposed convolution)
//! backward:  e = the arriving error (∂L/∂a_out under backprop; the rule may build its own)
//!            δ = e · f'(·)
//!            ∂L/∂W += δ ⋆ a_in,  ∂L/∂b += Σ δ   (then the rule may change the update)
//!            ∂L/∂a_in = Fᵀ ⊛ δ                    (F chosen by the rule)
//! ```
//!
//! See [`super::rule`] for what a [`PlasticityRule`] decides at each step.
//!
//! PAD equivalent: one `nn.Conv2d` / `nn.ConvTranspose2d` plus its nonlinearity in the
//! reference's encoder or generator, initialised as there: weights N(0, 0.02), biases PyTorch's
//! default U(±1/√fan_in).

use super::rule::{ErrorContext, LocalSignals, Modulation, SynapticChange};
use super::{Activity, ExactBackprop, Parameter, PlasticityRule};
use crate::kernels::conv::{
    self, ConvGeometry, ConvScratch, KeptInput, PatchGrid, SynapticGradients,
};
use crate::kernels::Activation;
use ndarray::{ArrayD, IxDyn};
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::{Distribution, Uniform};
use std::cell::Cell;

/// How an area's synapses connect it to the area below.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Connectivity {
    /// Convolution (feedforward: maps shrink).
    Conv,
    /// Transposed convolution (feedback: maps grow).
    ConvTranspose,
}

impl Connectivity {
    /// The fan-in PyTorch's default bias initialisation uses: `in·k²` for a convolution,
    /// `out·k²` for a transposed one (PyTorch takes a ConvTranspose2d's from
    /// `weight.shape[1]·k·k`).
    pub fn fan_in(self, geometry: &ConvGeometry) -> usize {
        let k2 = geometry.kernel * geometry.kernel;
        match self {
            Connectivity::Conv => geometry.in_channels * k2,
            Connectivity::ConvTranspose => geometry.out_channels * k2,
        }
    }
}

/// What the backward pass needs from the last forward pass.
#[derive(Clone, Debug)]
struct Trace {
    /// Patch grid of the convolution (over the input for Conv, over the output for
    /// ConvTranspose).
    grid: PatchGrid,
    /// Conv: the input's patch matrix; ConvTranspose: the input itself (channel-major).
    input_term: KeptInput<f32>,
    /// The activity produced.
    output: Activity,
    /// δ of the last backward pass, kept when asked for (the pathway's output error).
    delta: Option<Activity>,
}

/// One cortical area.
#[derive(Clone, Debug)]
pub struct CorticalArea {
    /// Module name in the reference code (`conv1`, `latent`, `tconv4`, ...).
    pub name: String,
    /// The module name with its pathway's prefix (`E.conv1`, `G.tconv4`, ...): how
    /// configurations and checkpoints refer to the area, and the stem of its parameters' names.
    pub full_name: String,
    /// The cortical region this area stands for (`V1`, `IT`, ...).
    pub region: String,
    /// Convolution or transposed convolution.
    pub connectivity: Connectivity,
    /// Channels, kernel, stride, padding.
    pub geometry: ConvGeometry,
    /// Transfer function.
    pub activation: Activation,
    /// Synaptic weights: conv `[out, in, k, k]`, conv-transpose `[in, out, k, k]`.
    pub weight: Parameter,
    /// Biases `[out]`.
    pub bias: Parameter,
    /// How errors arrive, change the synapses and travel back through this area.
    pub rule: Box<dyn PlasticityRule>,
    /// The current brain state's modulation of the area's pathway (shown to the rule).
    pub modulation: Modulation,
    trace: Option<Trace>,
}

thread_local! {
    /// Patch matrices that live only during one pass of one area. One buffer per thread,
    /// shared by every area (the largest pass sets its size) and kept between passes, so
    /// training neither allocates it again nor keeps one per area.
    static SCRATCH: Cell<ConvScratch<f32>> = const { Cell::new(ConvScratch::new()) };
}

/// Runs `pass` with this thread's scratch buffer. (A pass started inside another on the same
/// thread, as rayon may do, finds the buffer taken and uses a fresh one.)
fn with_scratch<R>(pass: impl FnOnce(&mut ConvScratch<f32>) -> R) -> R {
    let mut scratch = SCRATCH.take();
    let result = pass(&mut scratch);
    SCRATCH.set(scratch);
    result
}

/// Frees the scratch buffer (and the bfloat16 packing buffers) of every thread of the current
/// rayon pool (and of the calling thread): for long stretches without training, such as an evaluation.
pub fn release_scratch() {
    let release = || {
        SCRATCH.take();
        crate::kernels::gemm::release_packing();
    };
    release();
    rayon::broadcast(|_| release());
}

/// Standard deviation of PAD's weight initialisation.
pub const INIT_STD: f64 = 0.02;

impl CorticalArea {
    /// A new area with PAD's initialisation drawn from `rng`. `prefix` names the pathway
    /// (`E` or `G`) in parameter names; the bias bound follows PyTorch's fan-in of the
    /// connectivity (conv: `in·k²`; transposed conv: `out·k²`).
    pub fn new(
        prefix: &str,
        name: &str,
        region: &str,
        connectivity: Connectivity,
        geometry: ConvGeometry,
        activation: Activation,
        rng: &mut impl Rng,
    ) -> Self {
        let fan_in = connectivity.fan_in(&geometry);
        Self::with_fan_in(
            prefix,
            name,
            region,
            connectivity,
            geometry,
            activation,
            fan_in,
            rng,
        )
    }

    /// [`CorticalArea::new`] with the bias bound `1/√fan_in` given (a dense area's is
    /// `nn.Linear`'s: its inputs per unit). Weights N(0, [`INIT_STD`]) first, then biases.
    #[allow(clippy::too_many_arguments)]
    pub fn with_fan_in(
        prefix: &str,
        name: &str,
        region: &str,
        connectivity: Connectivity,
        geometry: ConvGeometry,
        activation: Activation,
        fan_in: usize,
        rng: &mut impl Rng,
    ) -> Self {
        let k = geometry.kernel;
        let shape = match connectivity {
            Connectivity::Conv => [geometry.out_channels, geometry.in_channels, k, k],
            Connectivity::ConvTranspose => [geometry.in_channels, geometry.out_channels, k, k],
        };
        let weight = crate::rng::normal_array(&shape, INIT_STD, rng);
        let bound = 1.0 / (fan_in as f32).sqrt();
        let uniform = Uniform::new(-bound, bound).expect("non-empty range");
        let bias =
            ArrayD::from_shape_simple_fn(IxDyn(&[geometry.out_channels]), || uniform.sample(rng));
        let full_name = format!("{prefix}.{name}");
        CorticalArea {
            name: name.to_string(),
            region: region.to_string(),
            connectivity,
            geometry,
            activation,
            weight: Parameter::new(format!("{full_name}.weight"), weight),
            bias: Parameter::new(format!("{full_name}.bias"), bias),
            full_name,
            rule: Box::new(ExactBackprop),
            modulation: Modulation::default(),
            trace: None,
        }
    }

    /// Computes and keeps the area's activity for `input`; returns it.
    pub fn forward(&mut self, input: &Activity) -> &Activity {
        let g = &self.geometry;
        assert_eq!(
            input.channels(),
            g.in_channels,
            "area {} ({}) expects {} input channels, got {}",
            self.name,
            self.region,
            g.in_channels,
            input.channels()
        );
        let (n, h, w) = (input.batch(), input.height(), input.width());
        let weight = self.weight.value.as_slice().expect("standard layout");
        let bias = self.bias.value.as_slice().expect("standard layout");
        // The last pass's buffers are overwritten rather than allocated and zeroed again.
        let (mut input_term, mut out) = self
            .trace
            .take()
            .map(|t| (t.input_term, t.output.into_vec()))
            .unwrap_or_default();
        let x = input.as_slice();
        let grid = match self.connectivity {
            Connectivity::Conv => {
                let f = self.activation;
                conv::conv2d_forward(x, n, h, w, g, weight, bias, f, &mut input_term, &mut out)
            }
            Connectivity::ConvTranspose => {
                input_term.copy_values(x);
                with_scratch(|scratch| {
                    let f = self.activation;
                    conv::conv_transpose2d_forward(
                        x, n, h, w, g, weight, bias, f, scratch, &mut out,
                    )
                })
            }
        };
        let (oh, ow) = match self.connectivity {
            Connectivity::Conv => (grid.out_height, grid.out_width),
            Connectivity::ConvTranspose => (grid.height, grid.width),
        };
        let output = Activity::from_vec(g.out_channels, n, oh, ow, out);
        &self
            .trace
            .insert(Trace {
                grid,
                input_term,
                output,
                delta: None,
            })
            .output
    }

    /// The activity of the last forward pass. Panics if there was none.
    pub fn output(&self) -> &Activity {
        &self
            .trace
            .as_ref()
            .expect("forward before reading an area's output")
            .output
    }

    /// Sends the error `grad_output` (∂L/∂activity) back through the area: accumulates the
    /// synaptic gradients and, if `want_input_grad`, returns ∂L/∂input routed by the
    /// plasticity rule. (Exact backprop; see [`CorticalArea::backward_with`] for rules that
    /// build their own error.)
    pub fn backward(&mut self, grad_output: Activity, want_input_grad: bool) -> Option<Activity> {
        self.backward_with(
            Some(grad_output),
            want_input_grad,
            &ErrorContext::default(),
            false,
        )
    }

    /// The backward pass as the rule decides it: the arriving error from `from_above` (absent
    /// if the area above sent none) and `context`, δ = error ⊙ f', the synaptic update (the
    /// rule may change it), and, if `want_input_grad`, the error sent to the area below.
    /// `keep_delta` keeps δ for [`CorticalArea::delta`].
    pub fn backward_with(
        &mut self,
        from_above: Option<Activity>,
        want_input_grad: bool,
        context: &ErrorContext,
        keep_delta: bool,
    ) -> Option<Activity> {
        let trace = self.trace.as_mut().expect("forward before backward");
        trace.delta = None;
        let arriving = self.rule.arriving_error(from_above, &trace.output, context);
        assert_eq!(
            arriving.maps().dim(),
            trace.output.maps().dim(),
            "area {}: error and activity shapes differ",
            self.name
        );
        // The local signals keep the arriving error only for rules that change the update.
        let mut delta = arriving;
        let arriving = self.rule.changes_update().then(|| delta.clone());
        self.activation
            .backward_in_place(trace.output.as_slice(), delta.as_mut_slice());
        let (mut dweight, weight_update) = self.weight.take_grad();
        let (mut dbias, bias_update) = self.bias.take_grad();
        let feedback = self.rule.feedback(self.weight.value.view());
        let feedback = feedback
            .as_slice()
            .expect("feedback synapses in standard layout");
        let g = self.geometry;
        let grid = trace.grid;
        let dy = delta.as_slice();
        let grads = SynapticGradients {
            weight: dweight.as_slice_mut().expect("standard layout"),
            weight_update,
            bias: dbias.as_slice_mut().expect("standard layout"),
            bias_update,
        };
        let mut dx = Vec::new();
        let wanted = want_input_grad.then_some(&mut dx);
        let x = &trace.input_term;
        let (h, w) = with_scratch(|scratch| match self.connectivity {
            Connectivity::Conv => {
                conv::conv2d_backward(dy, x, &grid, &g, feedback, grads, scratch, wanted);
                (grid.height, grid.width)
            }
            Connectivity::ConvTranspose => {
                let x = x.values();
                conv::conv_transpose2d_backward(dy, x, &grid, &g, feedback, grads, scratch, wanted);
                (grid.out_height, grid.out_width)
            }
        });
        if let Some(arriving) = &arriving {
            let local = LocalSignals {
                area: &self.full_name,
                connectivity: self.connectivity,
                geometry: g,
                activation: self.activation,
                weight: &self.weight.value,
                output: &trace.output,
                arriving,
                delta: &delta,
                modulation: self.modulation,
                input_term: &trace.input_term,
                grid,
            };
            let change = SynapticChange {
                weight: &mut dweight,
                bias: &mut dbias,
            };
            self.rule.weight_change(&local, change);
        }
        self.weight.grad = Some(dweight);
        self.bias.grad = Some(dbias);
        if keep_delta {
            trace.delta = Some(delta);
        }
        want_input_grad.then(|| Activity::from_vec(g.in_channels, grid.batch, h, w, dx))
    }

    /// δ of the last backward pass, if it was kept (`keep_delta`).
    pub fn delta(&self) -> Option<&Activity> {
        self.trace.as_ref().and_then(|t| t.delta.as_ref())
    }

    /// Both parameter tensors, weight first.
    pub fn parameters_mut(&mut self) -> [&mut Parameter; 2] {
        [&mut self.weight, &mut self.bias]
    }

    /// Both parameter tensors, weight first.
    pub fn parameters(&self) -> [&Parameter; 2] {
        [&self.weight, &self.bias]
    }

    /// Drops the kept activity and the spare gradient memory (frees memory between phases).
    pub fn forget(&mut self) {
        self.trace = None;
        self.weight.release_spare_memory();
        self.bias.release_spare_memory();
    }
}
