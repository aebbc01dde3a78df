#!/usr/bin/env python3
"""Look at padsim run files from Python: loss curves, the evaluation table, dream images, and
a sweep's probe accuracies by condition.

Optional: needs h5py, numpy and matplotlib (`pip install h5py numpy matplotlib`), none of which
padsim needs. Nothing in padsim or its tests runs this script; it only reads run files, laid out
as in docs/model.md#run-file.

    python3 examples/analysis.py runs/synthetic_full_pad_seed0            # one run (folder or run.h5)
    python3 examples/analysis.py runs/sweeps/cifar10_10_epochs --out plots # every run below a folder
    python3 examples/analysis.py RUN_OR_SWEEP [...] [--out DIR] [--epoch N] [--images K]

For a run it prints the root attributes and the `/eval` table (one row per evaluation), and writes
`<out>/<run>_losses.png` (one panel per brain state, `/losses/<state>/<term>` per epoch) and
`<out>/<run>_dreams.png` (rows `input`, `wake_reconstruction`, `nrem_dream`, `rem_dream` of
`/images/epoch_NNNN`; the last recorded epoch unless `--epoch N`, 1-based as in padsim's PNG names).
For a folder holding several runs (a sweep, `runs/sweeps/<name>/<run>/run.h5`) it prints each
run's latest evaluation and writes `<out>/<folder>_probes.png`: test accuracy of the SGD probe and
of the converged probe against epochs trained, one colour per condition (seeds as thin lines,
their mean thick). Runs whose settings differ beyond data set and condition (plasticity rules,
optimiser) are told apart in the legend.

Runs that are still training can be read: the script sets HDF5_USE_FILE_LOCKING=FALSE before
h5py loads, as padsim's README advises. A run file that cannot be opened is reported and skipped.
"""

import argparse
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RUN_FILE = "run.h5"
IMAGE_ROWS = ["input", "wake_reconstruction", "nrem_dream", "rem_dream"]
EVAL_COLUMNS = [
    # (header, dataset, scale)
    ("SGD test %", "eval/linear/test_accuracy", 100.0),
    ("SGD train %", "eval/linear/train_accuracy", 100.0),
    ("conv. test %", "eval/converged/test_accuracy", 100.0),
    ("conv. train %", "eval/converged/train_accuracy", 100.0),
    ("intra/inter", "eval/geometry/intra_inter_ratio", 1.0),
    ("occl./inter", "eval/geometry/clean_occluded_ratio", 1.0),
]


def text(value):
    """An attribute as text (h5py returns str, bytes or numpy scalars)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


def read_run(path):
    """Everything the plots need from one run file, read at once so the file is held briefly."""
    with h5py.File(path, "r") as f:
        run = {
            "path": Path(path),
            "name": Path(path).parent.name,
            "attrs": {k: text(v) for k, v in f.attrs.items() if k != "config"},
            "losses": {},
            "eval": {},
            "images": {},
        }
        if "losses" in f:
            for state, group in f["losses"].items():
                run["losses"][state] = {term: ds[()] for term, ds in group.items()}
        for _, name, _ in EVAL_COLUMNS:
            if name in f:
                run["eval"][name] = f[name][()]
        for name in ["eval/epoch", "eval/occlusion/levels", "eval/occlusion/test_accuracy"]:
            if name in f:
                run["eval"][name] = f[name][()]
        if "images" in f:
            run["image_epochs"] = sorted(f["images"].keys())
        else:
            run["image_epochs"] = []
    return run


def read_images(path, group):
    """`{name: u8 [n, C, H, W]}` of `/images/<group>`."""
    with h5py.File(path, "r") as f:
        return {name: ds[()] for name, ds in f["images"][group].items()}


def print_attributes(run):
    a = run["attrs"]
    keys = ["dataset", "condition", "seed", "plasticity", "optimiser", "padsim_version", "created"]
    print(f"{run['path']}")
    for k in keys:
        if k in a:
            print(f"  {k:<15} {a[k]}")


def print_eval_table(run):
    ev = run["eval"]
    if "eval/epoch" not in ev:
        print("  no evaluations recorded (train with --eval-every K, or run padsim eval)")
        return
    epochs = ev["eval/epoch"]
    cols = [(h, ev.get(n), s) for h, n, s in EVAL_COLUMNS]
    print("  " + f"{'epoch':>5}" + "".join(f"{h:>15}" for h, _, _ in cols))
    for i, epoch in enumerate(epochs):
        if epoch < 0:  # a row never written reads as -1
            continue
        cells = []
        for _, values, scale in cols:
            v = values[i] * scale if values is not None and i < len(values) else float("nan")
            cells.append(f"{v:>15.1f}" if scale != 1.0 else f"{v:>15.3f}")
        print("  " + f"{epoch:>5}" + "".join(cells))
    if "eval/occlusion/test_accuracy" in ev and "eval/occlusion/levels" in ev:
        levels = np.ravel(ev["eval/occlusion/levels"])
        last = ev["eval/occlusion/test_accuracy"][-1]
        curve = " ".join(f"{100 * v:.1f}" for v in last)
        print(f"  occlusion (SGD probe, %, p = {levels[0]:g}..{levels[-1]:g}), "
              f"epoch {epochs[-1]}: {curve}")


def plot_losses(run, out):
    states = list(run["losses"])
    if not states:
        print("  no losses recorded")
        return None
    fig, axes = plt.subplots(1, len(states), figsize=(4.2 * len(states), 3.4), squeeze=False)
    for ax, state in zip(axes[0], states):
        for term, values in run["losses"][state].items():
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, marker="o", markersize=3, label=term)
        ax.set_title(f"/losses/{state}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    a = run["attrs"]
    fig.suptitle(f"{run['name']} ({a.get('dataset', '?')}, {a.get('condition', '?')})")
    fig.tight_layout()
    path = out / f"{run['name']}_losses.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tile(images, columns):
    """u8 [n, C, H, W] -> one [H', W', C] (or [H', W']) image, `columns` tiles per row."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    pad = 2
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, k = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        canvas[y:y + h, x:x + w] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if c == 1 else canvas


def plot_dreams(run, out, epoch, count):
    groups = run["image_epochs"]
    if not groups:
        print("  no images recorded (record.images_every = 0)")
        return None
    if epoch is None:
        group = groups[-1]
    else:
        group = f"epoch_{epoch - 1:04d}"  # 1-based epoch -> 0-based group name
        if group not in groups:
            print(f"  no images for epoch {epoch}; recorded: "
                  f"{', '.join(str(int(g[6:]) + 1) for g in groups)}")
            return None
    images = read_images(run["path"], group)
    names = [n for n in IMAGE_ROWS if n in images] + [n for n in images if n not in IMAGE_ROWS]
    fig, axes = plt.subplots(len(names), 1, figsize=(1.1 * count, 1.35 * len(names)),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        shown = images[name][:count]
        grid = tile(shown, len(shown))
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=255,
                  interpolation="nearest")
        note = " (under one NREM occlusion mask, which may blank most of it)" \
            if name == "nrem_dream" else ""
        ax.set_title(name + note, fontsize=9, loc="left")
        ax.axis("off")
    fig.suptitle(f"{run['name']}, after epoch {int(group[6:]) + 1}")
    fig.tight_layout()
    path = out / f"{run['name']}_dreams.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def analyse_run(path, out, epoch, count):
    try:
        run = read_run(path)
    except OSError as e:
        print(f"{path}: cannot open ({e}); skipped", file=sys.stderr)
        return
    print_attributes(run)
    print_eval_table(run)
    for written in [plot_losses(run, out), plot_dreams(run, out, epoch, count)]:
        if written:
            print(f"  wrote {written}")


def group_key(run):
    a = run["attrs"]
    return (a.get("dataset", "?"), a.get("condition", "?"), a.get("plasticity", ""),
            a.get("optimiser", ""))


def analyse_sweep(folder, files, out):
    runs = []
    for path in files:
        try:
            runs.append(read_run(path))
        except OSError as e:
            print(f"{path}: cannot open ({e}); skipped", file=sys.stderr)
    runs = [r for r in runs if "eval/epoch" in r["eval"]]
    if not runs:
        print(f"{folder}: no evaluated runs")
        return
    groups = {}
    for run in runs:
        groups.setdefault(group_key(run), []).append(run)
    # Name groups by data set and condition, adding the settings (`key=value` words of the
    # plasticity and optimiser attributes) that not every group shares.
    words = [set(" ".join(k[2:]).split()) for k in groups]
    common = set.intersection(*words)

    def label(key):
        extra = " ".join(w for w in " ".join(key[2:]).split() if w not in common)
        return f"{key[0]} {key[1]}" + (f" [{extra}]" if extra else "")

    print(f"{folder}: {len(runs)} evaluated runs in {len(groups)} groups")
    print(f"  {'run':<50} {'epoch':>5} {'SGD test %':>11} {'conv. test %':>13}")
    for run in sorted(runs, key=lambda r: r["path"]):
        ev = run["eval"]
        sgd = ev.get("eval/linear/test_accuracy", [float("nan")])[-1]
        conv = ev.get("eval/converged/test_accuracy", [float("nan")])[-1]
        name = str(run["path"].parent.relative_to(folder))
        print(f"  {name:<50} {ev['eval/epoch'][-1]:>5} {100 * sgd:>11.1f} {100 * conv:>13.1f}")

    probes = [("SGD probe (paper)", "eval/linear/test_accuracy"),
              ("converged probe", "eval/converged/test_accuracy")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, name) in zip(axes, probes):
        for i, (key, members) in enumerate(sorted(groups.items())):
            colour = colours[i % len(colours)]
            series = {}
            for run in members:
                epochs, acc = run["eval"]["eval/epoch"], run["eval"].get(name)
                if acc is None:
                    continue
                keep = epochs >= 0
                if len(members) > 1:
                    ax.plot(epochs[keep], 100 * acc[keep], color=colour, alpha=0.35, lw=0.8)
                for e, v in zip(epochs[keep], acc[keep]):
                    series.setdefault(int(e), []).append(v)
            xs = sorted(series)
            mean = [100 * np.nanmean(series[e]) for e in xs]
            n = max(len(m) for m in series.values()) if series else 0
            ax.plot(xs, mean, color=colour, lw=2, marker="o", markersize=4,
                    label=f"{label(key)} (n = {n})")
        ax.set_title(f"{title}: test accuracy")
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("%")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8)
    fig.suptitle(f"{folder.name}")
    fig.tight_layout(rect=(0, 0.06 + 0.04 * ((len(labels) - 1) // 3), 1, 1))
    path = out / f"{folder.name}_probes.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"  wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", type=Path, help="run.h5, a run folder, or a folder of runs")
    ap.add_argument("--out", type=Path, default=Path("."), help="where PNGs go (default: .)")
    ap.add_argument("--epoch", type=int, default=None,
                    help="dream images after this epoch (1-based; default: the last recorded)")
    ap.add_argument("--images", type=int, default=8, help="images per row of the dream grid")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.paths:
        if path.is_file():
            analyse_run(path, args.out, args.epoch, args.images)
        elif (path / RUN_FILE).is_file():
            analyse_run(path / RUN_FILE, args.out, args.epoch, args.images)
        elif path.is_dir():
            files = sorted(path.rglob(RUN_FILE))
            if not files:
                print(f"{path}: no {RUN_FILE} below it", file=sys.stderr)
            elif len(files) == 1:
                analyse_run(files[0], args.out, args.epoch, args.images)
            else:
                analyse_sweep(path, files, args.out)
        else:
            print(f"{path}: not found", file=sys.stderr)
        print()


if __name__ == "__main__":
    main()
