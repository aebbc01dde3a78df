//! PAD's three brain states, Wake, NREM and REM, and what each does to the cortex.
//!
//! ```text
//! Wake:  (z, d) = E(x);  x̂ = G(z + ε·n)
//!        L = W·MSE(x̂, x) + KL(z) + [disc]·BCE(d, 1);  store z
//! NREM:  x' = G(z_r) (a replayed memory);  z' = E(mask ⊙ x')
//!        L = N·MSE(z', z_r)
//! REM:   x'' = G(z_mix);  d'' = E_d(x'')
//!        L = R·BCE(d'', 0);  E descends L, G ascends it (conductor's sign −1)
//! ```
//!
//! Which pathways learn, the discriminator's target and the feedback pathway's plasticity
//! sign are read from the [`Conductor`](super::Conductor) (defaults: each state's
//! [`BrainState::neuromodulation`]); loss weights and replay recipes are the state's settings.
//! Each state clears gradients first; a parameter that takes no part in it is then stepped with
//! a zero gradient or skipped, as [`Brain::unused_parameters`] says.
//!
//! PAD equivalent: the Wake, NREM and REM blocks of the reference's training loop
//! (`train_PAD`), with `loss.backward()` and `optimizerE/G.step()` per phase.

use super::{Brain, BrainState, Losses, MemoryMix, Neuromodulation};
use crate::cortex::{Activity, Modulation, Parameter, Reality};
use crate::data::occlusion;
use crate::kernels::loss;
use crate::plasticity::{Optimiser, PathwayOptimiser, UnusedParameters};
use ndarray::{Array1, Array2, ArrayD, ArrayView2, Zip};

/// Wake: perceive, reconstruct, store.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wake {
    /// W: weight of the reconstruction loss.
    pub reconstruction_weight: f64,
    /// Weight of the KL term on the latent batch statistics.
    pub kl_weight: f64,
    /// Whether the discriminator learns to call sensory activity external (the reference's
    /// `[R > 0]` gate).
    pub discriminator: bool,
    /// ε: standard deviation of Gaussian noise added to z before G reconstructs it.
    pub latent_noise: f32,
}

impl Default for Wake {
    /// PAD's wake phase.
    fn default() -> Self {
        Wake {
            reconstruction_weight: 1.0,
            kl_weight: 1.0,
            discriminator: true,
            latent_noise: 0.0,
        }
    }
}

/// NREM: perturbed dreaming.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Nrem {
    /// N: weight of the latent reconstruction loss.
    pub weight: f64,
    /// What is replayed.
    pub recall: MemoryMix,
    /// Whether dreams are occluded.
    pub occlusion: bool,
}

impl Default for Nrem {
    /// PAD's NREM phase.
    fn default() -> Self {
        Nrem {
            weight: 1.0,
            recall: MemoryMix::CURRENT,
            occlusion: true,
        }
    }
}

/// REM: adversarial dreaming.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rem {
    /// R: weight of the discriminator loss on dreams.
    pub weight: f64,
    /// What is dreamt.
    pub dream: MemoryMix,
}

impl Default for Rem {
    /// PAD's REM phase.
    fn default() -> Self {
        Rem {
            weight: 1.0,
            dream: MemoryMix::PAD_REM,
        }
    }
}

impl BrainState for Wake {
    fn name(&self) -> &str {
        "wake"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["reconstruction", "kl", "external", "total"]
    }

    /// Both pathways plastic, sign +1, the discriminator told "external".
    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation {
            feedforward_plastic: true,
            feedback_plastic: true,
            feedback_sign: 1.0,
            discriminator: Some(Reality::External),
        }
    }

    fn stores_memories(&self) -> bool {
        true
    }

    fn run(&self, brain: &mut Brain, x: &Activity, modulation: &Neuromodulation) -> Losses {
        let eps = self.latent_noise;
        let noise = (eps != 0.0).then(|| brain.standard_normal(x.batch()));
        let noise = noise.as_ref().map(|n| (eps, n.view()));
        brain.wake_as(self, x, noise, modulation).losses
    }
}

impl BrainState for Nrem {
    fn name(&self) -> &str {
        "nrem"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["latent_reconstruction"]
    }

    /// The feedforward pathway plastic, the feedback pathway frozen, no discriminator.
    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation::FEEDFORWARD_ONLY
    }

    fn run(&self, brain: &mut Brain, x: &Activity, modulation: &Neuromodulation) -> Losses {
        let z = brain.recall(&self.recall);
        // Dreams have the input's side.
        let mask = self
            .occlusion
            .then(|| occlusion::nrem_mask(x.height(), &mut brain.rng));
        let mask = mask.as_ref().map(|m| m.view());
        brain
            .nrem_as(self.weight, z.view(), mask, modulation)
            .losses
    }
}

impl BrainState for Rem {
    fn name(&self) -> &str {
        "rem"
    }

    fn loss_terms(&self) -> Vec<&'static str> {
        vec!["internal"]
    }

    /// Both pathways plastic, the feedback pathway's sign −1 (it ascends the loss the
    /// feedforward pathway descends), the discriminator told "internal".
    fn neuromodulation(&self) -> Neuromodulation {
        Neuromodulation {
            feedforward_plastic: true,
            feedback_plastic: true,
            feedback_sign: -1.0,
            discriminator: Some(Reality::Internal),
        }
    }

    /// REM's loss is the discriminator's: it needs a target.
    fn check_neuromodulation(&self, modulation: &Neuromodulation) -> Result<(), String> {
        match modulation.discriminator {
            Some(_) => Ok(()),
            None => Err(
                "REM trains the discriminator neurons on dreams: set discriminator = \"internal\" (or \"external\")"
                    .into(),
            ),
        }
    }

    fn run(&self, brain: &mut Brain, _x: &Activity, modulation: &Neuromodulation) -> Losses {
        let z = brain.recall(&self.dream);
        brain.rem_as(self.weight, z.view(), modulation).losses
    }
}

/// What a Wake step saw and produced.
#[derive(Clone, Debug)]
pub struct WakeOutcome {
    /// Latents `[N, nz]` (stored in the hippocampus).
    pub z: Array2<f32>,
    /// Discriminator outputs `[N]`.
    pub d: Array1<f32>,
    /// Reconstructions G(z + ε·n), `[C, N, H, W]`.
    pub reconstruction: Activity,
    /// `reconstruction`, `kl`, `external` (BCE(d, 1), 0 when gated off), `total`.
    pub losses: Losses,
}

/// What an NREM step saw and produced.
#[derive(Clone, Debug)]
pub struct NremOutcome {
    /// The dream G(z_r).
    pub dream: Activity,
    /// The occluded dream the feedforward pathway saw.
    pub occluded: Activity,
    /// Its latent E(occluded) `[N, nz]`.
    pub z_dream: Array2<f32>,
    /// `latent_reconstruction` (unweighted MSE).
    pub losses: Losses,
}

/// What a REM step saw and produced.
#[derive(Clone, Debug)]
pub struct RemOutcome {
    /// The dream G(z_mix).
    pub dream: Activity,
    /// Discriminator outputs on the dream `[N]`.
    pub d: Array1<f32>,
    /// `internal` (unweighted BCE(d, target)).
    pub losses: Losses,
}

fn scaled<T: std::ops::MulAssign<f32>>(mut grad: Vec<T>, factor: f64) -> Vec<T> {
    if factor != 1.0 {
        grad.iter_mut().for_each(|g| *g *= factor as f32);
    }
    grad
}

impl Brain {
    /// Wake on a batch `x` (`[C, N, H, W]` in [-1, 1]). `latent_noise` is the standard-normal
    /// sample `n` (`[N, nz]`) scaled by `eps` before G, if `eps != 0`.
    /// The neuromodulation comes from the conductor's `wake` entry.
    pub fn wake(
        &mut self,
        reconstruction_weight: f64,
        kl_weight: f64,
        discriminator: bool,
        x: &Activity,
        latent_noise: Option<(f32, ArrayView2<f32>)>,
    ) -> WakeOutcome {
        let state = Wake {
            reconstruction_weight,
            kl_weight,
            discriminator,
            latent_noise: latent_noise.map_or(0.0, |(eps, _)| eps),
        };
        let nm = self.conductor.for_state(&state);
        self.wake_as(&state, x, latent_noise, &nm)
    }

    /// Wake with the settings `state` under `nm`.
    fn wake_as(
        &mut self,
        state: &Wake,
        x: &Activity,
        latent_noise: Option<(f32, ArrayView2<f32>)>,
        nm: &Neuromodulation,
    ) -> WakeOutcome {
        let (reconstruction_weight, kl_weight) = (state.reconstruction_weight, state.kl_weight);
        self.begin_state(nm);
        let percept = self.cortex.feedforward.forward(x);
        let mut g_input = percept.z.clone();
        if let Some((eps, noise)) = latent_noise {
            Zip::from(&mut g_input)
                .and(&noise)
                .for_each(|a, &n| *a += eps * n);
        }
        let reconstruction = self.cortex.feedback.forward(g_input.view()).clone();
        let (mse, d_rec) = loss::mse(reconstruction.as_slice(), x.as_slice());
        let d_rec = scaled(d_rec, reconstruction_weight);
        let grad_rec = Activity::from_vec(x.channels(), x.batch(), x.height(), x.width(), d_rec);
        let dz_rec = self
            .cortex
            .feedback
            .backward(grad_rec, nm.feedforward_plastic);
        let (kl, mut dz) = loss::kl_latent(percept.z.view());
        dz.mapv_inplace(|g| g * kl_weight as f32);
        if let Some(dz_rec) = dz_rec {
            dz += &dz_rec;
        }
        let target = nm.discriminator.filter(|_| state.discriminator);
        let (external, dd) = match target {
            Some(reality) => {
                let (l, g) = loss::bce(percept.d.as_slice().expect("contiguous"), reality.target());
                (l, Some(Array1::from(g)))
            }
            None => (0.0, None),
        };
        if nm.feedforward_plastic {
            self.cortex
                .feedforward
                .backward(Some(dz.view()), dd.as_ref().map(|g| g.view()), false);
        }
        self.apply_plasticity(nm);
        let total = external + kl_weight * kl + reconstruction_weight * mse;
        self.hippocampus.store(percept.z.clone());
        WakeOutcome {
            z: percept.z,
            d: percept.d,
            reconstruction,
            losses: vec![
                ("reconstruction", mse),
                ("kl", kl),
                ("external", external),
                ("total", total),
            ],
        }
    }

    /// NREM on the replayed latents `z_replay` (`[N, nz]`), occluding the dream with
    /// `mask` (`[H, W]`, one mask for the whole batch) if given.
    pub fn nrem(
        &mut self,
        weight: f64,
        z_replay: ArrayView2<f32>,
        mask: Option<ArrayView2<f32>>,
    ) -> NremOutcome {
        let nm = self.conductor.for_state(&Nrem::default());
        self.nrem_as(weight, z_replay, mask, &nm)
    }

    fn nrem_as(
        &mut self,
        weight: f64,
        z_replay: ArrayView2<f32>,
        mask: Option<ArrayView2<f32>>,
        nm: &Neuromodulation,
    ) -> NremOutcome {
        self.begin_state(nm);
        let dream = self.cortex.feedback.forward(z_replay).clone();
        let mut occluded = dream.clone();
        if let Some(mask) = mask {
            occluded.mask_pixels(mask);
        }
        let z_dream = self.cortex.feedforward.encode(&occluded);
        let z_target = z_replay.as_standard_layout();
        let (mse, dz) = loss::mse(
            z_dream.as_slice().expect("contiguous"),
            z_target.as_slice().expect("contiguous"),
        );
        let dz = Array2::from_shape_vec(z_dream.raw_dim(), scaled(dz, weight)).expect("same shape");
        if nm.feedforward_plastic || nm.feedback_plastic {
            let dx = self
                .cortex
                .feedforward
                .backward(Some(dz.view()), None, nm.feedback_plastic);
            if let Some(mut dx) = dx {
                if let Some(mask) = mask {
                    dx.mask_pixels(mask);
                }
                self.cortex.feedback.backward(dx, false);
            }
        }
        self.apply_plasticity(nm);
        NremOutcome {
            dream,
            occluded,
            z_dream,
            losses: vec![("latent_reconstruction", mse)],
        }
    }

    /// REM on the dream latents `z_mix` (`[N, nz]`).
    pub fn rem(&mut self, weight: f64, z_mix: ArrayView2<f32>) -> RemOutcome {
        let nm = self.conductor.for_state(&Rem::default());
        self.rem_as(weight, z_mix, &nm)
    }

    fn rem_as(&mut self, weight: f64, z_mix: ArrayView2<f32>, nm: &Neuromodulation) -> RemOutcome {
        self.begin_state(nm);
        let dream = self.cortex.feedback.forward(z_mix).clone();
        let d = self.cortex.feedforward.discriminate(&dream);
        let reality = nm
            .discriminator
            .expect("REM trains the discriminator; the conductor gates it off");
        let (internal, dd) = loss::bce(d.as_slice().expect("contiguous"), reality.target());
        let dd = Array1::from(scaled(dd, weight));
        if nm.feedforward_plastic || nm.feedback_plastic {
            let dx = self
                .cortex
                .feedforward
                .backward(None, Some(dd.view()), nm.feedback_plastic);
            if let Some(dx) = dx {
                self.cortex.feedback.backward(dx, false);
            }
        }
        self.apply_plasticity(nm);
        RemOutcome {
            dream,
            d,
            losses: vec![("internal", internal)],
        }
    }

    /// Starts a state: forgets every gradient and shows the pathways' rules `nm`'s modulation.
    pub fn begin_state(&mut self, nm: &Neuromodulation) {
        self.cortex.clear_grads();
        let feedforward = Modulation {
            plastic: nm.feedforward_plastic,
            sign: 1.0,
        };
        let feedback = Modulation {
            plastic: nm.feedback_plastic,
            sign: nm.feedback_sign,
        };
        self.cortex.modulate(feedforward, feedback);
    }

    /// Applies the conductor's settings to the gradients just computed (frozen pathways lose
    /// theirs, the feedback sign multiplies G's), then steps both optimisers. In a plastic
    /// pathway, a tensor without gradient that has been stepped before gets a zero gradient
    /// or is skipped, as [`Brain::unused_parameters`] says; other tensors without gradient
    /// are skipped.
    pub fn apply_plasticity(&mut self, nm: &Neuromodulation) {
        let zero_fill = self.unused_parameters == UnusedParameters::ZeroGradient;
        let mut feedforward = self.cortex.feedforward.parameters_mut();
        ready_gradients(
            &mut feedforward,
            nm.feedforward_plastic,
            1.0,
            &self.feedforward_optimiser,
            zero_fill,
        );
        let mut feedback = self.cortex.feedback.parameters_mut();
        ready_gradients(
            &mut feedback,
            nm.feedback_plastic,
            nm.feedback_sign,
            &self.feedback_optimiser,
            zero_fill,
        );
        self.feedback_optimiser.step(&mut feedback);
        self.feedforward_optimiser.step(&mut feedforward);
    }
}

/// One pathway's gradients as its optimiser should see them: none if the pathway is frozen;
/// else multiplied by the conductor's `sign`, and, with `zero_fill`, zeros for a tensor
/// without gradient that `optimiser` has stepped before.
fn ready_gradients(
    params: &mut [&mut Parameter],
    plastic: bool,
    sign: f32,
    optimiser: &PathwayOptimiser,
    zero_fill: bool,
) {
    for p in params.iter_mut() {
        if !plastic {
            p.clear_grad();
        } else if p.grad.is_some() {
            p.scale_grad(sign);
        } else if zero_fill && optimiser.has_stepped(&p.name) {
            p.grad = Some(ArrayD::zeros(p.value.raw_dim()));
        }
    }
}
