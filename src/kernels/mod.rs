//! Pure numerical kernels: GEMM, convolution and transposed convolution (forward and
//! backward), activations, losses and transposes.
//!
//! Everything here is a function of slices or ndarray views; nothing holds state. Kernels are
//! generic over [`Real`] (`f32` for the model, `f64` for finite-difference gradient checks).
//!
//! **Layout.** Feature maps are stored channel-major, `[C, N, H, W]` ("CNHW"), not PyTorch's
//! `[N, C, H, W]`: with the batch folded next to the pixels, a convolution over the whole batch
//! is one GEMM `W[C_out, C_in·k·k] × col[C_in·k·k, N·H_out·W_out]` whose result is already the
//! next layer's input, with no permute in between. Weights keep PyTorch's layouts (conv
//! `[C_out, C_in, k, k]`, conv-transpose `[C_in, C_out, k, k]`).

pub mod activation;
pub mod bf16;
pub(crate) mod channels_last;
pub mod conv;
pub mod gemm;
pub mod loss;
pub mod pointwise;
pub mod transpose;
pub(crate) mod wide;
pub(crate) mod winograd;

pub use activation::Activation;
pub use conv::{ConvGeometry, PatchGrid};

/// The floating-point types the kernels run in.
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::MulAssign
    + std::fmt::Debug
    + Default
    + Send
    + Sync
    + 'static
{
    /// `tanh`, in a form a loop over a slice vectorises: f32 goes through
    /// [`activation::tanh_f32`] (libm's `tanhf` is a call per element; with its `expm1f`,
    /// 1.3% of a cycle), f64 (gradient checks) keeps libm's.
    fn tanh_vectorisable(self) -> Self {
        self.tanh()
    }
}

impl Real for f32 {
    fn tanh_vectorisable(self) -> f32 {
        activation::tanh_f32(self)
    }
}
impl Real for f64 {}

/// Converts an `f64` constant into `T` (always exact enough for the constants used here).
#[inline]
pub(crate) fn real<T: Real>(x: f64) -> T {
    T::from_f64(x).expect("finite constant")
}
