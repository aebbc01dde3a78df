#!/usr/bin/env python3
"""PyTorch CPU baseline for padsim's whole-cycle throughput (compare with `padsim bench`).

Mirrors ../../shared/golden/generate.py (the PyTorch reference padsim is tested against) at
full size: nf=64, nz=256, 3x32x32 images, LeakyReLU 0.2, N(0, 0.02) conv weights, two Adam
optimisers (lr 2e-4, betas (0.5, 0.999), eps 1e-8, foreach=False, the CPU default) and one full
PAD cycle with W = N = R = 1, eps = 0:

  Wake  zero E,G grads; (z, d) = E(x); loss = BCE(d, 1) + KL(z) + MSE(G(z), x), z not detached;
        backward; step E and G.
  NREM  zero E grads; no_grad: x' = G(z) * mask; z2 = E(x'); loss = MSE(z2, z); backward;
        step E only (G's stale wake grads are left in place, as in generate.py).
  REM   zero E,G grads; zmix = 0.25 z + 0.25 z_prev + 0.5 n (first cycle: 0.5 z + 0.5 n);
        d_r = E(GradReverse(G(zmix))); loss = BCE(d_r, 0); backward; step E and G.

Inputs are random (x ~ U(-1, 1), n ~ N(0, I), one occlusion mask per cycle, tile t ~ U{1..8}
pixels, p ~ U(0, 1) as in docs/model.md#occlusion), drawn before timing from a small pool, so
only the model and the optimisers are timed. Plain eager PyTorch ops, no torch.compile.

Run (from /work/main):
    /tmp/torchenv/bin/python benches/pytorch_cycle.py --threads 2 --batch 64
    /tmp/torchenv/bin/python benches/pytorch_cycle.py --threads 2 --encoder-forward   # E only, B=1000
    /tmp/torchenv/bin/python benches/pytorch_cycle.py --flops                          # conv FLOPs/cycle
    /tmp/torchenv/bin/python benches/pytorch_cycle.py --threads 2 --batch 64 --bf16    # autocast bf16

`--bf16` runs each cycle (or E forward) under `torch.autocast("cpu", dtype=torch.bfloat16)` in
channels-last layout: convolutions and linear layers in bfloat16 through oneDNN (AMX or AVX-512
BF16 where the CPU has them), weights, Adam state and losses in f32.

Output: one `repeat=i cycles_per_s=... images_per_s=...` line per repeat, then
`median_cycles_per_s=...` (or `median_images_per_s=...` with --encoder-forward).
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

NF, NZ, LEAK, INIT_STD = 64, 256, 0.2, 0.02
LR, BETAS, ADAM_EPS = 2e-4, (0.5, 0.999), 1e-8
POOL = 4  # distinct pre-drawn input batches, used in turn


class Encoder(nn.Module):
    """Feedforward pathway: conv1..conv3 trunk, then the latent (z) and discriminator (d) heads."""

    def __init__(self, nf=NF, nz=NZ):
        super().__init__()
        self.conv1 = nn.Conv2d(3, nf, 4, 2, 1)
        self.conv2 = nn.Conv2d(nf, 2 * nf, 4, 2, 1)
        self.conv3 = nn.Conv2d(2 * nf, 4 * nf, 4, 2, 1)
        self.latent = nn.Conv2d(4 * nf, nz, 4, 2, 0)
        self.dis = nn.Conv2d(4 * nf, 1, 4, 2, 0)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(x), LEAK)
        h = F.leaky_relu(self.conv2(h), LEAK)
        h = F.leaky_relu(self.conv3(h), LEAK)
        return self.latent(h).flatten(1), torch.sigmoid(self.dis(h)).flatten()


class Generator(nn.Module):
    """Feedback pathway: z as a 1x1 map, four transposed convolutions up to 3x32x32."""

    def __init__(self, nf=NF, nz=NZ):
        super().__init__()
        self.tconv1 = nn.ConvTranspose2d(nz, 4 * nf, 4, 1, 0)
        self.tconv2 = nn.ConvTranspose2d(4 * nf, 2 * nf, 4, 2, 1)
        self.tconv3 = nn.ConvTranspose2d(2 * nf, nf, 4, 2, 1)
        self.tconv4 = nn.ConvTranspose2d(nf, 3, 4, 2, 1)

    def forward(self, z):
        h = F.leaky_relu(self.tconv1(z.view(z.shape[0], -1, 1, 1)), LEAK)
        h = F.leaky_relu(self.tconv2(h), LEAK)
        h = F.leaky_relu(self.tconv3(h), LEAK)
        return torch.tanh(self.tconv4(h))


class GradientReversal(torch.autograd.Function):
    """Identity forward, gradient * -1 backward: G ascends the REM loss that E descends."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


def kl_loss(z):
    """mean_j ((s_j^2 + m_j^2)/2 - log s_j - 1/2), batch mean m and unbiased batch std s."""
    m, s = z.mean(0), z.std(0)
    return ((s.pow(2) + m.pow(2)) / 2 - torch.log(s) - 0.5).mean()


def build(nf=NF, nz=NZ, seed=0, channels_last=False):
    """E and G initialised as generate.py does (seed, N(0, 0.02) weights), plus their Adams."""
    torch.manual_seed(seed)
    enc = Encoder(nf, nz)
    for m in enc.children():
        nn.init.normal_(m.weight, 0.0, INIT_STD)
    gen = Generator(nf, nz)
    for m in gen.children():
        nn.init.normal_(m.weight, 0.0, INIT_STD)
    if channels_last:
        enc, gen = enc.to(memory_format=torch.channels_last), gen.to(memory_format=torch.channels_last)
    adam = lambda mod: torch.optim.Adam(mod.parameters(), lr=LR, betas=BETAS, eps=ADAM_EPS,
                                        weight_decay=0.0, amsgrad=False, foreach=False)
    return enc, gen, adam(enc), adam(gen)


def occlusion_mask(size=32):
    """docs/model.md#occlusion: t x t pixel tiles (t ~ U{1..8}), each zeroed w.p. p ~ U(0, 1)."""
    t, p = int(torch.randint(1, 9, ()).item()), torch.rand(()).item()
    n = -(-size // t)
    keep = (torch.rand(n, n) >= p).float()
    return keep.repeat_interleave(t, 0).repeat_interleave(t, 1)[:size, :size].contiguous()


def pad_cycle(enc, gen, opt_e, opt_g, x, mask, noise, z_prev):
    """One Wake -> NREM -> REM cycle exactly as generate.py's run_cycles; returns the wake z."""
    # Wake: all of E and G plastic; the reconstruction gradient reaches E through z.
    opt_e.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    z, d = enc(x)
    x_rec = gen(z)  # same op order as generate.py's wake_phase
    loss = F.binary_cross_entropy(d, torch.ones_like(d)) + kl_loss(z) + F.mse_loss(x_rec, x)
    loss.backward()
    opt_e.step()
    opt_g.step()
    z = z.detach()  # the hippocampal memory
    # NREM: G frozen (no graph); occluded replay; E.dis gets no grad and is not stepped.
    opt_e.zero_grad(set_to_none=True)
    with torch.no_grad():
        x_occ = gen(z) * mask
    z2, _ = enc(x_occ)
    F.mse_loss(z2, z).backward()
    opt_e.step()
    # REM: mixed memories + noise; E.latent gets no grad; G's gradient is reversed.
    opt_e.zero_grad(set_to_none=True)
    opt_g.zero_grad(set_to_none=True)
    zmix = 0.5 * z + 0.5 * noise if z_prev is None else 0.25 * z + 0.25 * z_prev + 0.5 * noise
    _, d_r = enc(GradientReversal.apply(gen(zmix)))
    F.binary_cross_entropy(d_r, torch.zeros_like(d_r)).backward()
    opt_e.step()
    opt_g.step()
    return z


def make_inputs(batch, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return [(torch.rand(batch, 3, 32, 32).mul_(2).sub_(1).contiguous(memory_format=fmt),
             occlusion_mask(), torch.randn(batch, NZ)) for _ in range(POOL)]


def run_cycles(state, inputs, n):
    enc, gen, opt_e, opt_g, z_prev = state
    for i in range(n):
        z_prev = pad_cycle(enc, gen, opt_e, opt_g, *inputs[i % len(inputs)], z_prev)
    state[4] = z_prev


def count_flops(batch, channels_last):
    """Convolution FLOPs of one (non-first) cycle, 2 per multiply-add, two independent ways.

    (a) per layer: a forward hook counts the forward MACs of every conv and hangs a hook on its
        output; that fires only if a gradient really reaches the output, and then adds the
        weight-gradient MACs (if the weight is plastic) and input-gradient MACs (if the input
        needs one) -- each equal to the forward MACs for these stride/padding shapes.
    (b) torch.utils.flop_counter.FlopCounterMode, which counts the aten convolution and
        convolution_backward calls autograd actually makes (with their output masks).
    """
    from torch.utils.flop_counter import FlopCounterMode

    enc, gen, opt_e, opt_g = build(channels_last=channels_last)
    inputs = make_inputs(batch, channels_last)
    z_prev = pad_cycle(enc, gen, opt_e, opt_g, *inputs[0], None)  # first cycle: no z_prev mix
    table = {}  # layer -> [fwd, wgrad, igrad] MACs

    def fwd_hook(name):
        def hook(mod, args, out):
            inp = args[0]
            if isinstance(mod, nn.ConvTranspose2d):  # every input pixel scatters a k x k x out_ch patch
                macs = inp.numel() * mod.out_channels * mod.kernel_size[0] * mod.kernel_size[1]
            else:  # every output pixel gathers a k x k x in_ch patch
                macs = out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
            row = table.setdefault(name, [0, 0, 0])
            row[0] += macs
            if out.requires_grad:
                def on_grad(_):
                    row[1] += macs if mod.weight.requires_grad else 0
                    row[2] += macs if inp.requires_grad else 0
                out.register_hook(on_grad)
        return hook

    handles = [m.register_forward_hook(fwd_hook(f"{p}.{n}"))
               for p, mod in (("E", enc), ("G", gen)) for n, m in mod.named_children()]
    with FlopCounterMode(display=False) as fc:
        pad_cycle(enc, gen, opt_e, opt_g, *inputs[1], z_prev)
    for h in handles:
        h.remove()
    print(f"# conv MACs per cycle, batch {batch} (wake + nrem + rem summed per layer)")
    print(f"{'layer':<10}{'forward':>14}{'weight_grad':>14}{'input_grad':>14}")
    for name, (f, w, i) in table.items():
        print(f"{name:<10}{f:>14,}{w:>14,}{i:>14,}")
    total = 2 * sum(sum(r) for r in table.values())
    print(f"flops_per_cycle_hooks={total}  ({total / 1e9:.3f} GFLOP)")
    print(f"flops_per_cycle_flopcounter={fc.get_total_flops()}  ({fc.get_total_flops() / 1e9:.3f} GFLOP)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=None, help="default 64 (1000 with --encoder-forward)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cycles", type=int, default=20, help="cycles (or E forwards) per repeat")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--channels-last", action="store_true", help="NHWC weights and inputs")
    ap.add_argument("--encoder-forward", action="store_true", help="time E forward only, no_grad")
    ap.add_argument("--flops", action="store_true", help="count conv FLOPs of one cycle and exit")
    ap.add_argument("--bf16", action="store_true",
                    help="CPU autocast to bfloat16 (implies --channels-last)")
    args = ap.parse_args()
    args.channels_last = args.channels_last or args.bf16
    batch = args.batch or (1000 if args.encoder_forward else 64)
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__} threads={torch.get_num_threads()} batch={batch} "
          f"channels_last={args.channels_last} bf16={args.bf16} "
          f"mode={'encoder-forward' if args.encoder_forward else 'cycle'}")
    if args.flops:
        return count_flops(batch, args.channels_last)

    enc, gen, opt_e, opt_g = build(channels_last=args.channels_last)
    if args.encoder_forward:
        x = make_inputs(batch, args.channels_last)[0][0]

        def step(n):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                for _ in range(n):
                    enc(x)
    else:
        inputs = make_inputs(batch, args.channels_last)
        state = [enc, gen, opt_e, opt_g, None]  # z_prev = None: the first cycle mixes 0.5 z + 0.5 n

        def step(n):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                run_cycles(state, inputs, n)

    step(args.warmup)
    rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        step(args.cycles)
        rate = args.cycles / (time.perf_counter() - t0)
        rates.append(rate)
        unit = "forwards" if args.encoder_forward else "cycles"
        print(f"repeat={r + 1} {unit}_per_s={rate:.4f} images_per_s={rate * batch:.2f}")
    med = statistics.median(rates)
    if args.encoder_forward:
        print(f"median_images_per_s={med * batch:.2f}")
    else:
        print(f"median_cycles_per_s={med:.4f}")


if __name__ == "__main__":
    main()
