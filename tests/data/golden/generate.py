#!/usr/bin/env python3
"""Golden test vectors for the PAD model (perturbed and adversarial dreaming, Deperrois et al. 2022).

Two sets are written next to this script:

  pad_cycle_small/   nf=8, nz=16, B=4: init weights, fixed inputs, and for two full
                     Wake -> NREM -> REM cycles every loss term, activation, gradient
                     (before the step), parameter (after the step) and Adam moment.
  pad_forward_full/  nf=64, nz=256, B=2: init weights, one input, and the forward
                     outputs z = E(x).latent, d = E(x).dis, G(z) at full size.

Every array is one float32, C-order .npy file; manifest.json in each set lists them all
with shape and meaning, plus losses, conventions and hyperparameters.

Usage (CPU only, single thread, a few seconds):
    python generate.py           # (re)generate both sets, then run the self-checks
    python generate.py --check   # only run the self-checks against the files on disk
    python generate.py --zero-grad [--check]
                                 # the small set again with zero_grad(set_to_none=False), as the
                                 # reference ran under PyTorch 1.x: pad_cycle_small_zero_grad/

With --zero-grad a parameter that has had a gradient keeps one: before each phase its
optimiser fills it with zeros instead of setting it to None, so NREM's E.dis and REM's
E.latent take an Adam step with a zero gradient (moments decay, the parameter moves by its
momentum, its step count advances). Parameters that never had a gradient stay None.

The self-checks reload the files, rebuild the model from the saved init weights and
(1) recompute cycle-1 Wake gradients and demand bit equality, (2) replay both cycles and
demand bit equality for every saved array, check that gradient-less parameters are not
stepped and that the REM reversal is an exact sign flip, (3) replay Adam in float64 NumPy
from the saved gradients with the documented formula and per-parameter step counts,
(4) recompute the losses in NumPy from the saved activations, (5) re-run every phase in
float64 from its golden float32 starting state (PyTorch's own float32 noise, which sets
the per-tensor tolerances in the manifest), (6) both cycles in float64 from init (how
far float32 drifts when errors carry across phases) and (7) show that the tolerance rule
accepts another float32 code path (PyTorch's native convolutions) yet rejects deliberate
defects (wrong LeakyReLU slope, biased std in KL, flipped kernels, no gradient reversal,
a per-optimiser Adam step counter).
"""

import argparse
import json
import platform
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
SMALL_DIR = HERE / "pad_cycle_small"
FULL_DIR = HERE / "pad_forward_full"
# zero_grad(set_to_none=...) before each phase; --zero-grad sets False (and SMALL_DIR to
# pad_cycle_small_zero_grad).
SET_TO_NONE = True

# ---------------------------------------------------------------- hyperparameters
SMALL = {"nf": 8, "nz": 16, "batch": 4, "torch_seed": 0, "numpy_seed": 1}
FULL = {"nf": 64, "nz": 256, "batch": 2, "torch_seed": 0, "numpy_seed": 2}
IMAGE_SHAPE = (3, 32, 32)
LEAK = 0.2
INIT_STD = 0.02
LR = 2e-4
BETAS = (0.5, 0.999)
ADAM_EPS = 1e-8
# cycle -> (tile t, drop probability p) of the NREM occlusion mask
MASK_PARAMS = {1: (4, 0.4), 2: (3, 0.25)}
E_LAYERS = ("conv1", "conv2", "conv3", "latent", "dis")
G_LAYERS = ("tconv1", "tconv2", "tconv3", "tconv4")


def configure_torch():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


# ---------------------------------------------------------------- model
class Encoder(nn.Module):
    """Feedforward pathway: trunk conv1..conv3, then two 4x4 heads on conv3's output."""

    def __init__(self, nf, nz, leak=LEAK):
        super().__init__()
        self.leak = leak
        self.conv1 = nn.Conv2d(3, nf, 4, 2, 1)
        self.conv2 = nn.Conv2d(nf, 2 * nf, 4, 2, 1)
        self.conv3 = nn.Conv2d(2 * nf, 4 * nf, 4, 2, 1)
        self.latent = nn.Conv2d(4 * nf, nz, 4, 2, 0)
        self.dis = nn.Conv2d(4 * nf, 1, 4, 2, 0)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), self.leak)
        h = F.leaky_relu(self.conv2(h), self.leak)
        h = F.leaky_relu(self.conv3(h), self.leak)
        z = self.latent(h).flatten(1)
        d = torch.sigmoid(self.dis(h)).flatten()
        return z, d


class Generator(nn.Module):
    """Feedback pathway: z as a 1x1 map, four transposed convolutions up to 32x32."""

    def __init__(self, nf, nz, leak=LEAK):
        super().__init__()
        self.leak = leak
        self.tconv1 = nn.ConvTranspose2d(nz, 4 * nf, 4, 1, 0)
        self.tconv2 = nn.ConvTranspose2d(4 * nf, 2 * nf, 4, 2, 1)
        self.tconv3 = nn.ConvTranspose2d(2 * nf, nf, 4, 2, 1)
        self.tconv4 = nn.ConvTranspose2d(nf, 3, 4, 2, 1)

    def forward(self, z):
        h = z.view(z.shape[0], -1, 1, 1)
        h = F.leaky_relu(self.tconv1(h), self.leak)
        h = F.leaky_relu(self.tconv2(h), self.leak)
        h = F.leaky_relu(self.tconv3(h), self.leak)
        return torch.tanh(self.tconv4(h))


class GradientReversal(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by -1 backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def build_models(nf, nz, seed):
    """seed; build E; N(0, 0.02) on E's conv weights; build G; N(0, 0.02) on G's weights."""
    torch.manual_seed(seed)
    enc = Encoder(nf, nz)
    for name in E_LAYERS:
        nn.init.normal_(getattr(enc, name).weight, 0.0, INIT_STD)
    gen = Generator(nf, nz)
    for name in G_LAYERS:
        nn.init.normal_(getattr(gen, name).weight, 0.0, INIT_STD)
    return enc, gen


def named_params(enc, gen):
    return ([(f"E.{n}", p) for n, p in enc.named_parameters()],
            [(f"G.{n}", p) for n, p in gen.named_parameters()])


def load_params(enc, gen, arrays, prefix):
    e_items, g_items = named_params(enc, gen)
    with torch.no_grad():
        for name, p in e_items + g_items:
            src = torch.from_numpy(np.array(arrays[f"{prefix}/{name}"]))
            assert src.shape == p.shape, (name, src.shape, p.shape)
            p.copy_(src)


# ---------------------------------------------------------------- losses
def kl_loss(z):
    """mean_j ((s_j^2 + m_j^2)/2 - log s_j - 1/2), m = batch mean, s = unbiased batch std."""
    m = z.mean(0)
    s = z.std(0)
    return ((s.pow(2) + m.pow(2)) / 2 - torch.log(s) - 0.5).mean()


def make_adam(module):
    return torch.optim.Adam(module.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS,
                            weight_decay=0.0, amsgrad=False, foreach=False)


# ---------------------------------------------------------------- inputs
def occlusion_mask(rs, size, tile, prob):
    """A tile x tile grid of blocks (edges floor(k*size/tile)); each block zeroed w.p. prob."""
    edges = [(k * size) // tile for k in range(tile + 1)]
    drop = rs.random_sample((tile, tile)) < prob
    mask = np.ones((size, size), dtype=np.float32)
    for i in range(tile):
        for j in range(tile):
            if drop[i, j]:
                mask[edges[i]:edges[i + 1], edges[j]:edges[j + 1]] = 0.0
    return mask


def make_small_inputs():
    rs = np.random.RandomState(SMALL["numpy_seed"])
    arrays = {}
    for c in (1, 2):
        tile, prob = MASK_PARAMS[c]
        arrays[f"inputs/cycle{c}.x"] = rs.uniform(
            -1.0, 1.0, size=(SMALL["batch"],) + IMAGE_SHAPE).astype(np.float32)
        arrays[f"inputs/cycle{c}.mask"] = occlusion_mask(rs, IMAGE_SHAPE[1], tile, prob)
        arrays[f"inputs/cycle{c}.noise"] = rs.standard_normal(
            size=(SMALL["batch"], SMALL["nz"])).astype(np.float32)
    return arrays


# ---------------------------------------------------------------- recording
class Recorder:
    def __init__(self):
        self.arrays = {}
        self.meanings = {}
        self.losses = {}
        self.absent_grads = {}
        self.adam_steps = {}

    def put(self, key, value, meaning):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy().copy()
        assert key not in self.arrays, key
        self.arrays[key] = np.ascontiguousarray(value)
        self.meanings[key] = meaning

    def grads(self, phase, items, loss_name):
        absent = []
        for name, p in items:
            if p.grad is None:
                absent.append(name)
            else:
                self.put(f"{phase}/grad/{name}", p.grad,
                         f"gradient of {loss_name} w.r.t. {name}, as accumulated by backward, "
                         "before the optimiser step (this is what Adam consumes)")
        self.absent_grads[phase] = absent

    def after(self, phase, items, opts):
        steps = {}
        for name, p in items:
            self.put(f"{phase}/after/{name}", p, f"{name} after the {phase} optimiser step(s)")
            state = next((o.state[p] for o in opts if p in o.state), None)
            if state:
                steps[name] = int(state["step"])
                self.put(f"{phase}/adam/exp_avg/{name}", state["exp_avg"],
                         f"Adam first moment m of {name} after {phase}")
                self.put(f"{phase}/adam/exp_avg_sq/{name}", state["exp_avg_sq"],
                         f"Adam second moment v of {name} after {phase}")
        self.adam_steps[phase] = steps


PHASES = ("wake", "nrem", "rem")


def wake_phase(enc, gen, x, kl=kl_loss):
    """(z, d) = E(x); loss = (BCE(d, 1) + KL(z)) + MSE(G(z), x); backward. z is not detached."""
    z, d = enc(x)
    x_rec = gen(z)
    l_bce = F.binary_cross_entropy(d, torch.ones_like(d))
    l_kl = kl(z)
    l_mse = F.mse_loss(x_rec, x)
    loss = l_bce + l_kl + l_mse
    loss.backward()
    return ({"z": z, "d": d, "x_rec": x_rec},
            {"bce_d_vs_ones": l_bce, "kl": l_kl, "mse_reconstruction": l_mse, "total": loss})


def nrem_phase(enc, gen, z_mem, mask):
    """xg = G(z) without plasticity; z2 = E(xg * mask); loss = MSE(z2, z); backward (E only)."""
    with torch.no_grad():
        xg = gen(z_mem)
        x_occ = xg * mask
    z2, _ = enc(x_occ)
    loss = F.mse_loss(z2, z_mem)
    loss.backward()
    return {"xg": xg, "x_occ": x_occ, "z2": z2}, {"mse_latent": loss}


def rem_phase(enc, gen, z_mem, z_prev, noise, reverse=True):
    """zmix from memories + noise; d_r = E(GradReverse(G(zmix))); loss = BCE(d_r, 0); backward."""
    if z_prev is None:
        zmix = 0.5 * z_mem + 0.5 * noise
    else:
        zmix = 0.25 * z_mem + 0.25 * z_prev + 0.5 * noise
    xr = GradientReversal.apply(gen(zmix)) if reverse else gen(zmix)
    _, d_r = enc(xr)
    loss = F.binary_cross_entropy(d_r, torch.zeros_like(d_r))
    loss.backward()
    return {"zmix": zmix, "xr": xr, "d_r": d_r}, {"bce_d_vs_zeros": loss}


ACTIVATION_MEANING = {
    "z": "wake latent z = flatten(E.latent(trunk(x))), [B, nz]; the stored memory",
    "d": "wake discriminator output d = sigmoid(flatten(E.dis(trunk(x)))), [B]",
    "x_rec": "wake reconstruction G(z) with the pre-step weights, [B, 3, 32, 32]",
    "xg": "NREM dream G(z_wake) with G's post-wake weights, [B, 3, 32, 32]",
    "x_occ": "occluded dream xg * mask (mask broadcast over B and channels), [B, 3, 32, 32]",
    "z2": "latent of the occluded dream, E(x_occ) with E's post-wake weights, [B, nz]",
    "zmix": "REM latent {mix}, [B, nz]",
    "xr": "REM dream G(zmix) with G's post-wake weights (forward of the reversal layer), [B, 3, 32, 32]",
    "d_r": "discriminator output on the REM dream, E's post-NREM weights, [B]",
}
LOSS_NAME = {"wake": "loss_wake", "nrem": "loss_nrem",
             "rem": "loss_rem (G's gradients already sign-reversed by the reversal layer)"}


def phase_start(c, phase):
    """Where a phase's starting state lives in the golden set: (E params, G params, E adam, G adam)."""
    if phase == "wake":
        if c == 1:
            return "init", "init", None, None
        prev = f"cycle{c - 1}/rem"
        return f"{prev}/after", f"{prev}/after", f"{prev}/adam", f"{prev}/adam"
    if phase == "nrem":
        w = f"cycle{c}/wake"
        return f"{w}/after", f"{w}/after", f"{w}/adam", f"{w}/adam"
    n, w = f"cycle{c}/nrem", f"cycle{c}/wake"
    return f"{n}/after", f"{w}/after", f"{n}/adam", f"{w}/adam"


def run_phase(enc, gen, inputs, c, phase, z_mem, z_prev, kl=kl_loss, reverse=True):
    x, mask, noise = (inputs[f"cycle{c}.{k}"] for k in ("x", "mask", "noise"))
    if phase == "wake":
        return wake_phase(enc, gen, x, kl)
    if phase == "nrem":
        return nrem_phase(enc, gen, z_mem, mask)
    return rem_phase(enc, gen, z_mem, z_prev, noise, reverse)


def run_cycles(enc, gen, inputs, rec):
    """Two Wake/NREM/REM cycles (W = N = R = 1, eps = 0), recording everything into rec."""
    opt_e, opt_g = make_adam(enc), make_adam(gen)
    opts = (opt_e, opt_g)
    e_items, g_items = named_params(enc, gen)
    z_mem = z_prev = None
    for c in (1, 2):
        for phase in PHASES:
            ph = f"cycle{c}/{phase}"
            plastic = (opt_e,) if phase == "nrem" else opts
            items = e_items if phase == "nrem" else e_items + g_items
            for opt in plastic:
                opt.zero_grad(set_to_none=SET_TO_NONE)
            acts, losses = run_phase(enc, gen, inputs, c, phase, z_mem, z_prev)
            mix = ("0.5*z_wake + 0.5*noise" if c == 1 else
                   "(0.25*z_wake + 0.25*z_prev) + 0.5*noise, z_wake = cycle2/wake/z, z_prev = cycle1/wake/z")
            for key, value in acts.items():
                rec.put(f"{ph}/{key}", value, ACTIVATION_MEANING[key].format(mix=mix))
            rec.grads(ph, items, LOSS_NAME[phase])
            for opt in plastic:
                opt.step()
            rec.after(ph, items, opts)
            rec.losses[ph] = {k: v.item() for k, v in losses.items()}
            if phase == "wake":
                z_prev, z_mem = z_mem, acts["z"].detach()


def carry_zero_grads(arrays, ph, items):
    """Under zero_grad(set_to_none=False), a parameter enters the phase with a zero gradient
    exactly when the golden set records a gradient for it in the phase (it had one before,
    or gets one now; 0 + g is g bit for bit). Isolated re-runs start from fresh modules, so
    they put those zeros back. Nothing to do with set_to_none=True."""
    if SET_TO_NONE:
        return
    for name, p in items:
        if f"{ph}/grad/{name}" in arrays:
            p.grad = torch.zeros_like(p)


def adam_step_np(p, m, v, t, g):
    """One documented Adam step in float64 NumPy; returns (p, m, v, t)."""
    b1, b2 = BETAS
    t += 1
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    p = p - (LR / bc1) * m / (np.sqrt(v) / np.sqrt(bc2) + ADAM_EPS)
    return p, m, v, t


NOISE_FACTOR = 10.0
ATOL_FLOOR = 1e-5
RTOL = 1e-4
LOSS_RTOL_FLOOR = 1e-5


def isolated_phase_analysis(arrays, adam_steps, losses, hp):
    """Each phase re-run in float64 from the golden float32 state it starts from.

    The difference to the golden float32 values is PyTorch's own float32 rounding error
    for that phase (no error carried over from earlier phases), i.e. the noise floor that
    any float32 reimplementation shares. It gives each compared tensor a tolerance.
    """
    enc, gen = Encoder(hp["nf"], hp["nz"]).double(), Generator(hp["nf"], hp["nz"]).double()
    e_items, g_items = named_params(enc, gen)
    inputs = {k.split("/")[1]: torch.from_numpy(v).double()
              for k, v in arrays.items() if k.startswith("inputs/")}
    out = {}
    for c in (1, 2):
        for phase in PHASES:
            ph = f"cycle{c}/{phase}"
            e_pre, g_pre, e_adam, g_adam = phase_start(c, phase)
            with torch.no_grad():
                for (items, pre) in ((e_items, e_pre), (g_items, g_pre)):
                    for name, p in items:
                        p.copy_(torch.from_numpy(arrays[f"{pre}/{name}"]))
                        p.grad = None
            carry_zero_grads(arrays, ph, e_items + g_items)
            z_mem = torch.from_numpy(arrays[f"cycle{c}/wake/z"]).double()
            z_prev = torch.from_numpy(arrays["cycle1/wake/z"]).double() if c == 2 else None
            acts, ls = run_phase(enc, gen, inputs, c, phase, z_mem, z_prev)
            report = {"starts_from": {"E": e_pre, "G": g_pre, "adam_E": e_adam, "adam_G": g_adam},
                      "losses": {}, "activations": {}, "grad": {}}
            for k, v in ls.items():
                golden = losses[ph][k]
                rel_noise = abs(golden - v.item()) / abs(v.item())
                report["losses"][k] = {"value": golden, "f32_rel_noise": rel_noise,
                                       "rtol": max(NOISE_FACTOR * rel_noise, LOSS_RTOL_FLOOR)}
            tensors = [(f"{k}", v.detach().numpy(), arrays[f"{ph}/{k}"]) for k, v in acts.items()]
            tensors += [(f"grad/{n}", p.grad.numpy(), arrays[f"{ph}/grad/{n}"])
                        for n, p in e_items + g_items if p.grad is not None and f"{ph}/grad/{n}" in arrays]
            for key, ref64, gold in tensors:
                scale = float(np.abs(gold).max())
                noise = float(np.abs(gold.astype(np.float64) - ref64).max())
                atol = max(NOISE_FACTOR * noise, ATOL_FLOOR * scale)
                entry = {"max_abs": scale, "f32_noise": noise, "atol": atol,
                         "noise_dominated": noise > 0.1 * scale}
                if key.startswith("grad/"):
                    report["grad"][key[5:]] = entry
                else:
                    report["activations"][key] = entry
            # Adam from the golden state with these (float64) gradients: how far own-gradient
            # parameters land from the golden ones (sign flips of noise-level gradients show here).
            worst, over, n_el = 0.0, 0, 0
            for name, p in (e_items if phase == "nrem" else e_items + g_items):
                if p.grad is None:
                    continue
                adam_pre = e_adam if name.startswith("E.") else g_adam
                if adam_pre is None:
                    m = v = np.zeros(p.shape)
                    t = 0
                else:
                    m = arrays[f"{adam_pre}/exp_avg/{name}"].astype(np.float64)
                    v = arrays[f"{adam_pre}/exp_avg_sq/{name}"].astype(np.float64)
                    t = adam_steps[adam_pre.rsplit("/", 1)[0]][name]
                pre = e_pre if name.startswith("E.") else g_pre
                p_new, _, _, _ = adam_step_np(arrays[f"{pre}/{name}"].astype(np.float64), m, v, t,
                                              p.grad.numpy())
                diff = np.abs(p_new - arrays[f"{ph}/after/{name}"])
                worst = max(worst, float(diff.max()))
                over += int((diff > 1e-6).sum())
                n_el += diff.size
            report["after_with_f64_grads"] = {"max_abs_diff": worst, "n_over_1e-6": over, "n": n_el}
            out[ph] = report
    return out


def end_to_end_drift(arrays, losses, hp):
    """float64 replay of both cycles from init vs the float32 golden values."""
    enc, gen = Encoder(hp["nf"], hp["nz"]), Generator(hp["nf"], hp["nz"])
    load_params(enc, gen, arrays, "init")
    enc.double()
    gen.double()
    inputs = {k.split("/")[1]: torch.from_numpy(v).double()
              for k, v in arrays.items() if k.startswith("inputs/")}
    rec = Recorder()
    run_cycles(enc, gen, inputs, rec)
    groups = {}
    for k, ref64 in rec.arrays.items():
        parts = k.split("/")
        kind = parts[2] if len(parts) > 3 else "activation"
        g = groups.setdefault(f"{parts[0]}/{parts[1]}/{kind}", {"max_abs": 0.0, "max_rel_to_tensor_max": 0.0,
                                                                 "n_fail_rtol1e-4_atol1e-5": 0, "n": 0})
        diff = np.abs(arrays[k].astype(np.float64) - ref64)
        g["max_abs"] = max(g["max_abs"], float(diff.max()))
        g["max_rel_to_tensor_max"] = max(g["max_rel_to_tensor_max"],
                                         float(diff.max() / max(np.abs(ref64).max(), 1e-30)))
        g["n_fail_rtol1e-4_atol1e-5"] += int((diff > 1e-5 + 1e-4 * np.abs(ref64)).sum())
        g["n"] += diff.size
    loss_rel = {ph: {t: abs(losses[ph][t] - v) / abs(v) for t, v in terms.items()}
                for ph, terms in rec.losses.items()}
    return {"losses_rel_diff": loss_rel, "by_phase_and_kind": groups}


# ---------------------------------------------------------------- manifest text
def weight_layout():
    return {
        "conv_weight": "PyTorch Conv2d: [out_ch, in_ch, kh, kw]",
        "conv_transpose_weight": "PyTorch ConvTranspose2d: [in_ch, out_ch, kh, kw]",
        "bias": "[out_ch]",
        "activations": "NCHW, [B, C, H, W]; latents [B, nz]; discriminator outputs [B]",
        "mask": "[H, W] = [32, 32], multiplies every image and every channel",
        "file_format": "numpy .npy (numpy.save), dtype float32 little-endian ('<f4'), C-order",
    }


def architecture(nf, nz):
    return {
        "E.conv1": f"Conv2d 3->{nf} k4 s2 p1 + LeakyReLU(0.2): 32x32 -> 16x16",
        "E.conv2": f"Conv2d {nf}->{2 * nf} k4 s2 p1 + LeakyReLU(0.2): 16 -> 8",
        "E.conv3": f"Conv2d {2 * nf}->{4 * nf} k4 s2 p1 + LeakyReLU(0.2): 8 -> 4",
        "E.latent": f"Conv2d {4 * nf}->{nz} k4 s2 p0 on conv3's output: 4 -> 1, flattened -> z [B, {nz}], "
                    "no nonlinearity",
        "E.dis": f"Conv2d {4 * nf}->1 k4 s2 p0 on conv3's output: 4 -> 1, flattened, sigmoid -> d [B]",
        "G.tconv1": f"ConvTranspose2d {nz}->{4 * nf} k4 s1 p0 + LeakyReLU(0.2) on z viewed [B, {nz}, 1, 1]: "
                    "1 -> 4",
        "G.tconv2": f"ConvTranspose2d {4 * nf}->{2 * nf} k4 s2 p1 + LeakyReLU(0.2): 4 -> 8",
        "G.tconv3": f"ConvTranspose2d {2 * nf}->{nf} k4 s2 p1 + LeakyReLU(0.2): 8 -> 16",
        "G.tconv4": f"ConvTranspose2d {nf}->3 k4 s2 p1 + tanh: 16 -> 32",
        "bias": "every conv / conv-transpose has a bias",
    }


def init_text(seed):
    return (f"torch.manual_seed({seed}); E = Encoder() (layers constructed in order conv1, conv2, conv3, "
            "latent, dis with PyTorch's default init); then each E weight re-drawn N(0, 0.02) in that order "
            "(nn.init.normal_); then G = Generator() (tconv1..tconv4, default init); then each G weight "
            "re-drawn N(0, 0.02) in that order. Biases keep PyTorch's default U(-1/sqrt(fan_in), +1/sqrt(fan_in)) "
            "(for ConvTranspose2d PyTorch computes fan_in from weight.shape[1]*kh*kw = out_ch*16). A "
            "reimplementation should LOAD init/*.npy rather than try to reproduce PyTorch's RNG.")


ADAM_TEXT = {
    "lr": LR, "betas": list(BETAS), "eps": ADAM_EPS, "weight_decay": 0.0, "amsgrad": False,
    "implementation": "torch.optim.Adam(foreach=False), i.e. _single_tensor_adam; one optimiser over all "
                      "E parameters (optE), one over all G parameters (optG); both persist across phases "
                      "and cycles (never reset)",
    "update_per_parameter": [
        "t = t + 1   (t is PER PARAMETER TENSOR, not per optimiser: a tensor without grad is skipped)",
        "m = m + (1 - beta1) * (g - m)        (torch lerp_, == beta1*m + (1-beta1)*g)",
        "v = beta2 * v + (1 - beta2) * g * g",
        "bc1 = 1 - beta1**t ; bc2 = 1 - beta2**t     (Python doubles)",
        "denom = sqrt(v) / sqrt(bc2) + eps",
        "p = p - (lr / bc1) * m / denom",
    ],
    "skipping": "zero_grad(set_to_none=True) before every phase; a parameter whose .grad is None after "
                "backward is not touched by step(): p, m, v and t all stay as they were",
    "first_step_note": "at t = 1, m/sqrt(v) = g/|g| so the update is lr * sign(g) (unless |g| ~ eps); "
                       "later updates are also O(lr) and only weakly depend on |g|, so parameter "
                       "comparisons are insensitive and gradient comparisons are the sensitive check",
}


def skipping_text():
    if SET_TO_NONE:
        return ADAM_TEXT["skipping"]
    return ("zero_grad(set_to_none=False) before every phase (PyTorch 1.x's zero_grad()): a parameter "
            "that has had a gradient gets a zero-filled one, so step() updates it with g = 0 (m and v "
            "decay, p moves by its momentum, t advances); one that never had a gradient stays None and "
            "is not stepped")


def procedure_text():
    return {
        "weights": "W = N = R = 1, eps (wake latent noise) = 0",
        "losses": {
            "BCE": "torch.nn.functional.binary_cross_entropy, reduction mean over B: "
                   "-mean(y*max(log d, -100) + (1-y)*max(log(1-d), -100)); backward: "
                   "dL/dd = (d - y) / max(d*(1-d), 1e-12) / B",
            "MSE": "torch.nn.functional.mse_loss, mean over all elements",
            "KL": "m = z.mean(0); s = z.std(0) (unbiased, divides by B-1); "
                  "mean over j of ((s_j**2 + m_j**2)/2 - log(s_j) - 0.5)",
        },
        "wake": "zero grads of E and G; (z, d) = E(x); x_rec = G(z) (z NOT detached: the reconstruction "
                "gradient reaches E through z); loss_wake = (BCE(d, 1) + KL(z)) + MSE(x_rec, x); backward; "
                "record grads; step optE and optG",
        "nrem": "zero grads of E; under no_grad: xg = G(z_wake.detach()) with G's post-wake weights, "
                "x_occ = xg * mask; (z2, _) = E(x_occ) with E's post-wake weights; "
                "loss_nrem = MSE(z2, z_wake.detach()); backward; step optE only",
        "rem": "zero grads of E and G; zmix = 0.5*z_wake + 0.5*noise (cycle 1), "
               "(0.25*z_wake + 0.25*z_prev) + 0.5*noise (cycle 2, z_prev = cycle 1's wake z), all "
               "detached; xr = GradReverse(G(zmix)) (identity forward, gradient * -1 backward); "
               "(_, d_r) = E(xr) with E's post-NREM weights; loss_rem = BCE(d_r, 0); backward; "
               "step optE and optG (G descends the reversed gradient, i.e. ascends loss_rem)",
        "order": "cycle1 wake, nrem, rem, then cycle2 wake, nrem, rem; each phase starts from the previous "
                 "phase's 'after' parameters and Adam state",
    }


def file_entry(key, arr, meaning):
    return {"path": f"{key}.npy", "shape": list(arr.shape), "dtype": "float32", "meaning": meaning}


def write_set(out_dir, arrays, meanings, manifest):
    if out_dir.exists():
        shutil.rmtree(out_dir)
    total = 0
    files = []
    for key in arrays:
        arr = np.ascontiguousarray(arrays[key], dtype=np.float32)
        path = out_dir / f"{key}.npy"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, arr)
        total += path.stat().st_size
        files.append(file_entry(key, arr, meanings[key]))
    manifest["files"] = files
    manifest["file_count"] = len(files)
    manifest["total_npy_bytes"] = total
    with open(out_dir / "manifest.json", "w") as fh:
        json.dump(manifest, fh, indent=1)
        fh.write("\n")
    return total


def versions():
    return {"torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "torch_num_threads": 1, "deterministic_algorithms": True, "device": "cpu"}


# ---------------------------------------------------------------- generation
def generate_small():
    nf, nz, batch = SMALL["nf"], SMALL["nz"], SMALL["batch"]
    enc, gen = build_models(nf, nz, SMALL["torch_seed"])
    rec = Recorder()
    e_items, g_items = named_params(enc, gen)
    for name, p in e_items + g_items:
        rec.put(f"init/{name}", p, f"initial {name} (seed {SMALL['torch_seed']}, see 'init')")
    inputs_np = make_small_inputs()
    meaning = {
        "x": "input images, U(-1, 1), [B, 3, 32, 32]",
        "mask": "NREM occlusion mask, 0/1, [32, 32] (tile {t}, p {p}: a {t}x{t} grid of blocks with edges "
                "floor(k*32/{t}); each block zeroed where RandomState.random_sample(({t},{t})) < {p}, "
                "row-major)",
        "noise": "REM noise n ~ N(0, 1), [B, nz]",
    }
    for key, arr in inputs_np.items():
        c, kind = key.split("/")[1].split(".")
        t, p = MASK_PARAMS[int(c[-1])]
        rec.put(key, arr, f"{c}: " + meaning[kind].format(t=t, p=p))
    inputs = {k.split("/")[1]: torch.from_numpy(v) for k, v in inputs_np.items()}
    run_cycles(enc, gen, inputs, rec)

    manifest = {
        "name": SMALL_DIR.name,
        "what": "Two full PAD cycles (Wake, NREM, REM) at small width, recorded with PyTorch autograd "
                "on CPU in float32. Every grad/* array is taken before its phase's optimiser step, "
                "every after/* and adam/* array right after it.",
        "generator": "../generate.py",
        "versions": versions(),
        "hyperparameters": {
            "nf": nf, "nz": nz, "batch": batch, "image_shape": list(IMAGE_SHAPE),
            "leaky_relu_slope": LEAK, "init_std": INIT_STD, "torch_seed": SMALL["torch_seed"],
            "numpy_seed": SMALL["numpy_seed"], "loss_weights": {"W": 1, "N": 1, "R": 1},
            "wake_latent_noise_eps": 0.0,
            "occlusion": {f"cycle{c}": {"tile": t, "p": p} for c, (t, p) in MASK_PARAMS.items()},
            "adam": {**ADAM_TEXT, "skipping": skipping_text()},
            "zero_grad_set_to_none": SET_TO_NONE,
        },
        "architecture": architecture(nf, nz),
        "init": init_text(SMALL["torch_seed"]),
        "inputs": "np.random.RandomState(1), drawn in this order before any training: cycle1 x "
                  "(uniform(-1, 1)), cycle1 mask (random_sample((t, t)) < p), cycle1 noise (standard_normal), "
                  "then the same three for cycle2; cast to float32",
        "procedure": procedure_text(),
        "weight_layout": weight_layout(),
        "parameter_order": [n for n, _ in e_items + g_items],
        "losses": rec.losses,
        "absent_grads": {
            "meaning": "parameters whose .grad is None after the phase's backward: no grad file, and "
                       "Adam does not step them (their 'after' value equals the previous one)"
                       + ("" if SET_TO_NONE else "; with set_to_none=False a gradient-less parameter "
                          "that had a gradient before has an all-zero grad file instead and is stepped"),
            **rec.absent_grads,
        },
        "adam_steps_after_phase": rec.adam_steps,
        "naming": {
            "init/<param>": "initial parameters",
            "inputs/cycle<c>.<x|mask|noise>": "fixed inputs",
            "cycle<c>/<phase>/<activation>": "forward values of the phase",
            "cycle<c>/<phase>/grad/<param>": "gradient before the step (absent when None)",
            "cycle<c>/<phase>/after/<param>": "parameter after the step (NREM: E only)",
            "cycle<c>/<phase>/adam/exp_avg|exp_avg_sq/<param>": "Adam moments after the step "
                                                                 "(NREM: E only); step counts in "
                                                                 "adam_steps_after_phase",
        },
    }
    hp = manifest["hyperparameters"]
    golden32 = {k: v.astype(np.float32) for k, v in rec.arrays.items()}
    manifest["phase_start_state"] = {
        "meaning": "to test one phase in isolation, load these golden arrays as the starting state "
                   "(E params, G params, E Adam moments, G Adam moments; null = fresh Adam state), plus "
                   "z_wake = cycle<c>/wake/z and z_prev = cycle1/wake/z for NREM/REM; Adam step counts of "
                   "the starting state are in adam_steps_after_phase[<previous phase>]",
        **{f"cycle{c}/{ph}": dict(zip(("E", "G", "adam_E", "adam_G"), phase_start(c, ph)))
           for c in (1, 2) for ph in PHASES},
    }
    manifest["tolerances"] = {
        "rule": f"for a phase run in isolation from its golden starting state: every compared tensor T "
                f"(activations, grads) passes iff |rust - golden| <= atol_T + {RTOL} * |golden| "
                f"elementwise, with atol_T = max({NOISE_FACTOR} * f32_noise_T, {ATOL_FLOOR} * max|golden_T|); "
                f"every loss passes iff |rust - golden| <= rtol * |golden| with rtol = "
                f"max({NOISE_FACTOR} * f32_rel_noise, {LOSS_RTOL_FLOOR}); atol/rtol are listed below",
        "f32_noise": "max |golden_f32 - same phase recomputed in float64 from the same golden float32 "
                     "starting state|: PyTorch's own float32 rounding error in that phase",
        "noise_dominated": "true where f32_noise > 0.1 * max|golden|: the float32 value is mostly rounding "
                           "noise (cancellation), so only its order of magnitude can be checked",
        "after_with_f64_grads": "Adam applied from the golden starting state with the float64 gradients: "
                                "how far parameters move from the golden ones when gradients carry a "
                                "different rounding (sign flips of noise-level gradient elements make "
                                "differences up to ~2*lr); compare after/* params tightly only when Adam is "
                                "fed the golden grads",
        "end_to_end": "both cycles replayed in float64 from init: error carried across phases (a flipped "
                      "Adam sign moves a weight by ~2*lr = 4e-4 and every later phase sees it)",
        "phases": isolated_phase_analysis(golden32, rec.adam_steps, rec.losses, hp),
        "end_to_end_f64_drift": end_to_end_drift(golden32, rec.losses, hp),
    }
    total = write_set(SMALL_DIR, rec.arrays, rec.meanings, manifest)
    return rec, total


def generate_full():
    nf, nz, batch = FULL["nf"], FULL["nz"], FULL["batch"]
    enc, gen = build_models(nf, nz, FULL["torch_seed"])
    arrays, meanings = {}, {}
    e_items, g_items = named_params(enc, gen)
    for name, p in e_items + g_items:
        arrays[f"init/{name}"] = p.detach().numpy().copy()
        meanings[f"init/{name}"] = f"initial {name} (seed {FULL['torch_seed']}, see 'init')"
    rs = np.random.RandomState(FULL["numpy_seed"])
    x = rs.uniform(-1.0, 1.0, size=(batch,) + IMAGE_SHAPE).astype(np.float32)
    with torch.no_grad():
        z, d = enc(torch.from_numpy(x))
        x_rec = gen(z)
    arrays["inputs/x"] = x
    meanings["inputs/x"] = f"input images, RandomState({FULL['numpy_seed']}).uniform(-1, 1), [B, 3, 32, 32]"
    arrays["outputs/z"] = z.numpy().copy()
    meanings["outputs/z"] = f"E's latent head on x, [B, {nz}]"
    arrays["outputs/d"] = d.numpy().copy()
    meanings["outputs/d"] = "E's discriminator output sigmoid(dis(...)) on x, [B]"
    arrays["outputs/x_rec"] = x_rec.numpy().copy()
    meanings["outputs/x_rec"] = "G(z), [B, 3, 32, 32]"
    manifest = {
        "name": "pad_forward_full",
        "what": "Full-size PAD forward pass (no training) at init, float32, CPU: checks shapes, the "
                "weight layouts and the forward arithmetic at the real width.",
        "generator": "../generate.py",
        "versions": versions(),
        "hyperparameters": {"nf": nf, "nz": nz, "batch": batch, "image_shape": list(IMAGE_SHAPE),
                            "leaky_relu_slope": LEAK, "init_std": INIT_STD,
                            "torch_seed": FULL["torch_seed"], "numpy_seed": FULL["numpy_seed"]},
        "architecture": architecture(nf, nz),
        "init": init_text(FULL["torch_seed"]),
        "weight_layout": weight_layout(),
        "parameter_order": [n for n, _ in e_items + g_items],
    }
    enc.double()
    gen.double()
    with torch.no_grad():
        z64, d64 = enc(torch.from_numpy(x).double())
        x64 = gen(z64)
    noise = {}
    for key, ref in (("outputs/z", z64), ("outputs/d", d64), ("outputs/x_rec", x64)):
        gold = arrays[key].astype(np.float64)
        noise[key] = {"max_abs": float(np.abs(gold).max()),
                      "f32_noise": float(np.abs(gold - ref.numpy()).max())}
    manifest["tolerances"] = {
        "f32_noise": "max |golden_f32 - the same forward in float64|, i.e. PyTorch's float32 rounding",
        "suggested": f"|rust - golden| <= {ATOL_FLOOR} + {RTOL} * |golden| elementwise (>100x the measured "
                     "noise below; a misread kernel layout moves G(z) by ~1e-3)",
        "outputs": noise,
    }
    total = write_set(FULL_DIR, arrays, meanings, manifest)
    return total


# ---------------------------------------------------------------- self-checks
def load_set(out_dir):
    with open(out_dir / "manifest.json") as fh:
        manifest = json.load(fh)
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {str(p.relative_to(out_dir)) for p in out_dir.rglob("*.npy")}
    assert listed == on_disk, f"manifest/disk mismatch: {sorted(listed ^ on_disk)[:10]}"
    arrays = {}
    for f in manifest["files"]:
        arr = np.load(out_dir / f["path"])
        assert arr.dtype == np.dtype("<f4") and list(arr.shape) == f["shape"], f["path"]
        assert arr.flags["C_CONTIGUOUS"] and np.isfinite(arr).all(), f["path"]
        arrays[f["path"][:-4]] = arr
    return manifest, arrays


def check_wake_grads_bitwise(arrays, manifest):
    hp = manifest["hyperparameters"]
    enc, gen = Encoder(hp["nf"], hp["nz"]), Generator(hp["nf"], hp["nz"])
    load_params(enc, gen, arrays, "init")
    x = torch.from_numpy(arrays["inputs/cycle1.x"])
    z, d = enc(x)
    loss = (F.binary_cross_entropy(d, torch.ones_like(d)) + kl_loss(z)) + F.mse_loss(gen(z), x)
    loss.backward()
    e_items, g_items = named_params(enc, gen)
    for name, p in e_items + g_items:
        saved = arrays[f"cycle1/wake/grad/{name}"]
        got = p.grad.numpy()
        assert got.tobytes() == saved.tobytes(), f"cycle1 wake grad {name} differs"
    assert np.float32(loss.item()) == np.float32(manifest["losses"]["cycle1/wake"]["total"])
    return len(e_items + g_items)


def replay(arrays, manifest, dtype):
    hp = manifest["hyperparameters"]
    enc, gen = Encoder(hp["nf"], hp["nz"]), Generator(hp["nf"], hp["nz"])
    load_params(enc, gen, arrays, "init")
    enc.to(dtype)
    gen.to(dtype)
    inputs = {k.split("/")[1]: torch.from_numpy(v).to(dtype)
              for k, v in arrays.items() if k.startswith("inputs/")}
    rec = Recorder()
    run_cycles(enc, gen, inputs, rec)
    return rec


def check_replay_bitwise(arrays, manifest):
    rec = replay(arrays, manifest, torch.float32)
    trained = {k: v for k, v in arrays.items() if k.startswith("cycle")}
    assert set(rec.arrays) == set(trained), sorted(set(rec.arrays) ^ set(trained))[:10]
    for k, v in trained.items():
        assert rec.arrays[k].tobytes() == v.tobytes(), f"replay differs at {k}"
    assert rec.losses == manifest["losses"], "replayed losses differ"
    return len(trained)


def check_skips_and_reversal(arrays, manifest):
    """Absent gradient => parameter bit-unchanged; REM G grads are exactly the negated plain grads."""
    n_same = 0
    for c in (1, 2):
        for phase in PHASES:
            ph = f"cycle{c}/{phase}"
            e_pre, g_pre, _, _ = phase_start(c, phase)
            for name in manifest["absent_grads"][ph]:
                pre = e_pre if name.startswith("E.") else g_pre
                assert arrays[f"{ph}/after/{name}"].tobytes() == arrays[f"{pre}/{name}"].tobytes(), (ph, name)
                n_same += 1
    hp = manifest["hyperparameters"]
    enc, gen = Encoder(hp["nf"], hp["nz"]), Generator(hp["nf"], hp["nz"])
    e_items, g_items = named_params(enc, gen)
    with torch.no_grad():
        for name, p in e_items:
            p.copy_(torch.from_numpy(arrays[f"cycle1/nrem/after/{name}"]))
        for name, p in g_items:
            p.copy_(torch.from_numpy(arrays[f"cycle1/wake/after/{name}"]))
    zmix = torch.from_numpy(arrays["cycle1/rem/zmix"])
    _, d_r = enc(gen(zmix))  # no reversal layer
    F.binary_cross_entropy(d_r, torch.zeros_like(d_r)).backward()
    for name, p in g_items:
        assert (-p.grad).numpy().tobytes() == arrays[f"cycle1/rem/grad/{name}"].tobytes(), name
    for name, p in e_items:
        if p.grad is not None:
            assert p.grad.numpy().tobytes() == arrays[f"cycle1/rem/grad/{name}"].tobytes(), name
    return n_same


def check_zero_grad_steps(arrays, manifest):
    """set_to_none=False: each all-zero gradient (NREM's E.dis, REM's E.latent) still moved its
    parameter (by its momentum) and advanced its step count."""
    moved = 0
    for c in (1, 2):
        for phase in PHASES:
            ph = f"cycle{c}/{phase}"
            e_pre, g_pre, e_adam, _ = phase_start(c, phase)
            for name in manifest["parameter_order"]:
                g = arrays.get(f"{ph}/grad/{name}")
                if g is None or np.any(g != 0):
                    continue
                pre = e_pre if name.startswith("E.") else g_pre
                assert arrays[f"{ph}/after/{name}"].tobytes() != arrays[f"{pre}/{name}"].tobytes(), (ph, name)
                before = manifest["adam_steps_after_phase"][e_adam.rsplit("/", 1)[0]][name]
                assert manifest["adam_steps_after_phase"][ph][name] == before + 1, (ph, name)
                moved += 1
    assert moved >= 8, moved  # E.dis.{weight,bias} in NREM and E.latent.* in REM, both cycles
    return moved


def adam_replay_np(arrays, names, per_optimiser_counter=False):
    """Adam over both cycles from init in float64, fed the golden gradients.

    Yields (phase, p, m, v, t) after each phase. per_optimiser_counter=True is a deliberate
    defect: one step counter per optimiser instead of one per parameter tensor.
    """
    p = {n: arrays[f"init/{n}"].astype(np.float64) for n in names}
    m = {n: np.zeros_like(p[n]) for n in names}
    v = {n: np.zeros_like(p[n]) for n in names}
    t = {n: 0 for n in names}
    t_opt = {"E": 0, "G": 0}
    for c in (1, 2):
        for phase in PHASES:
            ph = f"cycle{c}/{phase}"
            for side in ("E",) if phase == "nrem" else ("E", "G"):
                t_opt[side] += 1
            for n in names:
                g = arrays.get(f"{ph}/grad/{n}")
                if g is not None:
                    t_before = t_opt[n[0]] - 1 if per_optimiser_counter else t[n]
                    p[n], m[n], v[n], t[n] = adam_step_np(p[n], m[n], v[n], t_before, g.astype(np.float64))
            yield ph, p, m, v, t


def check_adam_numpy(arrays, manifest):
    """Replay Adam from the saved gradients with the documented formula, in float64."""
    worst = {"param": 0.0, "exp_avg_rel_to_max": 0.0, "exp_avg_sq_rel": 0.0}
    for ph, p, m, v, t in adam_replay_np(arrays, manifest["parameter_order"]):
        for n, steps in manifest["adam_steps_after_phase"][ph].items():
            assert steps == t[n], (ph, n, steps, t[n])
            worst["param"] = max(worst["param"], np.abs(p[n] - arrays[f"{ph}/after/{n}"]).max())
            sm = arrays[f"{ph}/adam/exp_avg/{n}"]
            worst["exp_avg_rel_to_max"] = max(worst["exp_avg_rel_to_max"],
                                              np.abs(m[n] - sm).max() / np.abs(sm).max())
            sv = arrays[f"{ph}/adam/exp_avg_sq/{n}"].astype(np.float64)
            worst["exp_avg_sq_rel"] = max(worst["exp_avg_sq_rel"],
                                          (np.abs(v[n] - sv) / np.maximum(sv, 1e-30)).max())
    assert worst["param"] < 1e-7 and worst["exp_avg_rel_to_max"] < 1e-5 and worst["exp_avg_sq_rel"] < 1e-5, worst
    return worst


def check_losses_numpy(arrays, manifest):
    def bce(d, y):
        d = d.astype(np.float64)
        return -np.mean(y * np.maximum(np.log(d), -100) + (1 - y) * np.maximum(np.log1p(-d), -100))

    def kl(z):
        z = z.astype(np.float64)
        m, s = z.mean(0), z.std(0, ddof=1)
        return np.mean((s ** 2 + m ** 2) / 2 - np.log(s) - 0.5)

    def mse(a, b):
        return np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)

    worst = 0.0
    for c in (1, 2):
        L = manifest["losses"]
        pairs = [
            (L[f"cycle{c}/wake"]["bce_d_vs_ones"], bce(arrays[f"cycle{c}/wake/d"], 1.0)),
            (L[f"cycle{c}/wake"]["kl"], kl(arrays[f"cycle{c}/wake/z"])),
            (L[f"cycle{c}/wake"]["mse_reconstruction"],
             mse(arrays[f"cycle{c}/wake/x_rec"], arrays[f"inputs/cycle{c}.x"])),
            (L[f"cycle{c}/nrem"]["mse_latent"], mse(arrays[f"cycle{c}/nrem/z2"], arrays[f"cycle{c}/wake/z"])),
            (L[f"cycle{c}/rem"]["bce_d_vs_zeros"], bce(arrays[f"cycle{c}/rem/d_r"], 0.0)),
        ]
        for saved, recomputed in pairs:
            worst = max(worst, abs(saved - recomputed) / abs(recomputed))
        # derived-value consistency: occlusion, memory mix
        mask = arrays[f"inputs/cycle{c}.mask"]
        assert np.array_equal(arrays[f"cycle{c}/nrem/x_occ"], arrays[f"cycle{c}/nrem/xg"] * mask)
    assert worst < 1e-5, worst
    return worst


def grad_scale_report(arrays):
    rows = {}
    for k, a in arrays.items():
        if "/grad/" in k:
            ph = k.split("/grad/")[0]
            r = rows.setdefault(ph, [np.inf, 0.0, 0, 0])
            mag = np.abs(a)
            r[0] = min(r[0], mag[mag > 0].min() if (mag > 0).any() else np.inf)
            r[1] = max(r[1], mag.max())
            r[2] += int((mag < 1e-6).sum())
            r[3] += a.size
    return rows


def run_isolated_f32(arrays, hp, c, phase, leak=LEAK, kl=kl_loss, reverse=True, flipped=()):
    """One phase in float32 from its golden start, optionally with a deliberate defect.

    flipped: parameters whose kernels the defective implementation reads spatially flipped
    (its stored layout is misread); its reported gradient is then the flipped true gradient.
    """
    enc, gen = Encoder(hp["nf"], hp["nz"], leak), Generator(hp["nf"], hp["nz"], leak)
    e_items, g_items = named_params(enc, gen)
    e_pre, g_pre, _, _ = phase_start(c, phase)
    with torch.no_grad():
        for items, pre in ((e_items, e_pre), (g_items, g_pre)):
            for name, p in items:
                w = torch.from_numpy(arrays[f"{pre}/{name}"])
                p.copy_(w.flip(2, 3) if name in flipped else w)
    carry_zero_grads(arrays, f"cycle{c}/{phase}", e_items + g_items)
    inputs = {k.split("/")[1]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("inputs/")}
    z_mem = torch.from_numpy(arrays[f"cycle{c}/wake/z"])
    z_prev = torch.from_numpy(arrays["cycle1/wake/z"]) if c == 2 else None
    acts, losses = run_phase(enc, gen, inputs, c, phase, z_mem, z_prev, kl, reverse)
    grads = {n: (p.grad.flip(2, 3) if n in flipped else p.grad).numpy()
             for n, p in e_items + g_items if p.grad is not None and (phase != "nrem" or n.startswith("E."))}
    return ({k: v.detach().numpy() for k, v in acts.items()}, grads,
            {k: v.item() for k, v in losses.items()})


def tolerance_failures(manifest, arrays, ph, acts, grads, losses):
    """Losses and tensors of a phase that break the manifest's tolerance rule."""
    tol = manifest["tolerances"]["phases"][ph]
    bad = [f"loss:{k}" for k, entry in tol["losses"].items()
           if abs(losses[k] - entry["value"]) > entry["rtol"] * abs(entry["value"])]
    for kind, got in (("activations", acts), ("grad", grads)):
        for name, entry in tol[kind].items():
            gold = arrays[f"{ph}/{'grad/' if kind == 'grad' else ''}{name}"].astype(np.float64)
            if name not in got:
                bad.append(f"{kind}:{name} missing")
                continue
            diff = np.abs(got[name].astype(np.float64) - gold)
            if (diff > entry["atol"] + RTOL * np.abs(gold)).any():
                bad.append(f"{kind}:{name}")
    return bad


def check_tolerances_discriminate(arrays, manifest):
    """The tolerance rule must accept another float32 implementation and reject typical bugs."""
    hp = manifest["hyperparameters"]
    phases = [(c, ph) for c in (1, 2) for ph in PHASES]
    # another float32 implementation: PyTorch's native conv path instead of oneDNN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # oneDNN TF32 notice, irrelevant on CPU
        with torch.backends.mkldnn.flags(enabled=False):
            alt = {(c, ph): run_isolated_f32(arrays, hp, c, ph) for c, ph in phases}
    n_diff = sum(int(not np.array_equal(g, arrays[f"cycle{c}/{ph}/grad/{n}"]))
                 for (c, ph), (_, grads, _) in alt.items() for n, g in grads.items())
    for (c, ph), (acts, grads, losses) in alt.items():
        bad = tolerance_failures(manifest, arrays, f"cycle{c}/{ph}", acts, grads, losses)
        assert not bad, (c, ph, bad)
    mutants = {
        "LeakyReLU slope 0.01": ("wake", dict(leak=0.01)),
        "KL with biased std": ("wake", dict(kl=lambda z: ((z.var(0, unbiased=False) + z.mean(0) ** 2) / 2
                                                         - 0.5 * torch.log(z.var(0, unbiased=False))
                                                         - 0.5).mean())),
        "E.conv2 kernel read flipped": ("wake", dict(flipped=("E.conv2.weight",))),
        "G.tconv1 kernel read flipped": ("wake", dict(flipped=("G.tconv1.weight",))),
        "G.tconv4 kernel read flipped": ("rem", dict(flipped=("G.tconv4.weight",))),
        "E.latent kernel read flipped (NREM)": ("nrem", dict(flipped=("E.latent.weight",))),
        "REM without gradient reversal": ("rem", dict(reverse=False)),
    }
    caught = {}
    for label, (phase, kwargs) in mutants.items():
        bad = []
        for c in (1, 2):
            acts, grads, losses = run_isolated_f32(arrays, hp, c, phase, **kwargs)
            bad += [f"c{c}:{b}" for b in
                    tolerance_failures(manifest, arrays, f"cycle{c}/{phase}", acts, grads, losses)]
        assert bad, f"mutant not caught: {label}"
        caught[label] = bad
    # Adam with one step counter per optimiser instead of per parameter tensor
    worst = 0.0
    for ph, p, _, _, _ in adam_replay_np(arrays, manifest["parameter_order"], per_optimiser_counter=True):
        for n in manifest["adam_steps_after_phase"][ph]:
            worst = max(worst, float(np.abs(p[n] - arrays[f"{ph}/after/{n}"]).max()))
    if SET_TO_NONE:
        assert worst > 1e-6, worst
        caught["Adam step counter per optimiser"] = [f"after-params off by up to {worst:.1e}"]
    else:
        # With zero-filled gradients every tensor of an optimiser steps whenever it does, so
        # per-tensor and per-optimiser counters agree: the first set tells them apart.
        assert worst < 1e-7, worst
    return n_diff, caught


def check_full(out_dir):
    manifest, arrays = load_set(out_dir)
    hp = manifest["hyperparameters"]
    enc, gen = Encoder(hp["nf"], hp["nz"]), Generator(hp["nf"], hp["nz"])
    load_params(enc, gen, arrays, "init")
    x = torch.from_numpy(arrays["inputs/x"])
    with torch.no_grad():
        z, d = enc(x)
        x_rec = gen(z)
    for key, got in (("outputs/z", z), ("outputs/d", d), ("outputs/x_rec", x_rec)):
        assert got.numpy().tobytes() == arrays[key].tobytes(), key
    enc.double()
    gen.double()
    with torch.no_grad():
        z64, d64 = enc(x.double())
        x64 = gen(z64)
    drift = {}
    for key, ref in (("outputs/z", z64), ("outputs/d", d64), ("outputs/x_rec", x64)):
        ref = ref.numpy()
        diff = np.abs(arrays[key].astype(np.float64) - ref)
        drift[key] = {"max_abs": float(diff.max()), "max_abs_ref": float(np.abs(ref).max()),
                      "fail_rtol1e-4_atol1e-5": int((diff > 1e-5 + 1e-4 * np.abs(ref)).sum())}
    return manifest, drift


def self_check():
    print(f"== self-check {SMALL_DIR.name}")
    manifest, arrays = load_set(SMALL_DIR)
    print(f"  loaded {len(arrays)} arrays, manifest matches disk")
    n = check_wake_grads_bitwise(arrays, manifest)
    print(f"  [1] cycle1 wake grads recomputed from init/*.npy: {n}/{n} parameters bit-identical")
    n = check_replay_bitwise(arrays, manifest)
    print(f"  [2] full 2-cycle replay from files: {n} arrays and all losses bit-identical")
    n = check_skips_and_reversal(arrays, manifest)
    print(f"  [2b] {n} parameters without gradient are bit-unchanged by their phase; cycle1 REM without "
          "the reversal layer gives exactly the negated G grads and the same E grads")
    if not SET_TO_NONE:
        n = check_zero_grad_steps(arrays, manifest)
        print(f"  [2c] set_to_none=False: {n} all-zero gradients each moved their parameter by its "
              "momentum and advanced its Adam step count")
    worst = check_adam_numpy(arrays, manifest)
    print(f"  [3] NumPy float64 Adam from saved grads (documented formula, per-tensor t): "
          f"max|dp|={worst['param']:.2e} max|dm|/max|m|={worst['exp_avg_rel_to_max']:.2e} "
          f"max rel dv={worst['exp_avg_sq_rel']:.2e}")
    worst = check_losses_numpy(arrays, manifest)
    print(f"  [4] losses recomputed in NumPy float64 from saved activations: max rel diff {worst:.2e}")
    tol = manifest["tolerances"]
    again = isolated_phase_analysis(arrays, manifest["adam_steps_after_phase"], manifest["losses"],
                                    manifest["hyperparameters"])
    assert json.loads(json.dumps(again)) == tol["phases"], "isolated-phase analysis not reproducible"
    print("  [5] each phase re-run in float64 from its golden float32 start (f32 noise floor; "
          "reproduces manifest 'tolerances'):")
    print(f"      {'phase':<13}{'loss rel noise':>15}{'worst grad noise/max':>22}  noise-dominated grads"
          f"{'':>14}{'after(f64 grads) max|d|, n>1e-6':>32}")
    for ph, r in tol["phases"].items():
        lrel = max(x["f32_rel_noise"] for x in r["losses"].values())
        gw = max(x["f32_noise"] / x["max_abs"] if x["max_abs"] else 0.0 for x in r["grad"].values())
        nd = [n for n, x in r["grad"].items() if x["noise_dominated"]]
        aw = r["after_with_f64_grads"]
        print(f"      {ph:<13}{lrel:>15.2e}{gw:>22.2e}  {', '.join(nd) or '-':<35}"
              f"{aw['max_abs_diff']:>12.2e} {aw['n_over_1e-6']:>6d}/{aw['n']}")
    e2e = tol["end_to_end_f64_drift"]
    print("  [6] both cycles replayed in float64 from init (error carried across phases): loss rel diff")
    for ph, terms in e2e["losses_rel_diff"].items():
        print(f"      {ph:<13}" + "  ".join(f"{t}={v:.1e}" for t, v in terms.items()))
    n_diff, caught = check_tolerances_discriminate(arrays, manifest)
    print(f"  [7] tolerance rule accepts PyTorch's native (non-oneDNN) conv path in float32 "
          f"({n_diff} grad tensors differ bitwise from golden, all within tolerance) and rejects:")
    for label, bad in caught.items():
        print(f"      {label:<38} -> {len(bad)} failing: {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    print("  gradient magnitudes per phase (min nonzero |g|, max |g|, #|g|<1e-6 / n):")
    for ph, (lo, hi, small, n) in sorted(grad_scale_report(arrays).items()):
        print(f"      {ph:<14} {lo:.2e} {hi:.2e} {small}/{n}")
    if not SET_TO_NONE:
        print("self-check passed")
        return
    print("== self-check pad_forward_full")
    _, drift = check_full(FULL_DIR)
    print("  forward recomputed from files: z, d, x_rec bit-identical")
    for key, d in drift.items():
        print(f"  float64 vs float32 {key}: max_abs {d['max_abs']:.2e} (max |ref| {d['max_abs_ref']:.2e}), "
              f"fail(rtol 1e-4, atol 1e-5) {d['fail_rtol1e-4_atol1e-5']}")
    print("self-check passed")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only run the self-checks")
    parser.add_argument("--zero-grad", action="store_true",
                        help="the small set with zero_grad(set_to_none=False), into pad_cycle_small_zero_grad/")
    args = parser.parse_args()
    if args.zero_grad:
        global SET_TO_NONE, SMALL_DIR
        SET_TO_NONE = False
        SMALL_DIR = HERE / "pad_cycle_small_zero_grad"
    configure_torch()
    if not args.check:
        rec, total_small = generate_small()
        total_full = 0 if args.zero_grad else generate_full()
        print(f"wrote {SMALL_DIR.name}: {len(rec.arrays)} files, {total_small / 1e6:.2f} MB")
        if not args.zero_grad:
            print(f"wrote {FULL_DIR.name}: {total_full / 1e6:.2f} MB")
        for ph, terms in rec.losses.items():
            print(f"  {ph:<12} " + "  ".join(f"{k}={v:.9g}" for k, v in terms.items()))
        for ph, absent in rec.absent_grads.items():
            print(f"  {ph:<12} no grad: {', '.join(absent) if absent else '-'}")
    self_check()
    return 0


if __name__ == "__main__":
    sys.exit(main())
