"""Tables and FID curves for docs/results.md from the evaluate.py JSON of every checkpoint.

    python benchmarks/plot_results.py runs/mixing-0.9 runs/mixing-0.0 runs/leaky-relu \
        --plot docs/images/fid-per-epoch.png
    python benchmarks/plot_results.py runs/i7/* --levers   # one row per run, its last epoch
"""
import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(run_dir, raw=False):
    """{epoch: evaluation} from <run>/checkpoints/ckpt-NNNN.eval.json (raw: of G itself,
    ckpt-NNNN.raw.eval.json, where the run also has G's moving average)."""
    found = {}
    pattern = r"ckpt-(\d+)\.raw\.eval\.json" if raw else r"ckpt-(\d+)\.eval\.json"
    for path in Path(run_dir, "checkpoints").glob("ckpt-*.eval.json"):
        match = re.fullmatch(pattern, path.name)
        if not match:
            continue
        epoch = int(match.group(1))
        found[epoch] = json.loads(path.read_text())
    return dict(sorted(found.items()))


def table(runs):
    lines = ["| run | epoch | FID | FID 2 latents | ratio | KL from uniform | class shares min-max "
             "| confidence | mix = coarse | mix = fine |", "|" + "---|" * 10]
    for name, evals in runs.items():
        for epoch, e in evals.items():
            shares = e["class_shares"]
            m = e["mixing"]
            lines.append(
                f"| {name} | {epoch} | {e['fid']:.1f} | {e['fid_mixed']:.1f} | "
                f"{e['fid_mixed'] / e['fid']:.2f} | {e['kl_from_uniform']:.3f} | "
                f"{100 * min(shares):.1f}%-{100 * max(shares):.1f}% | "
                f"{e['mean_confidence']:.3f} | {100 * m['follows_coarse']:.0f}% | "
                f"{100 * m['follows_fine']:.0f}% |")
    return "\n".join(lines)


def lever_table(run_dirs):
    """One row per run at its last evaluated epoch: the issue-7 targets side by side."""
    lines = ["| run | epoch | FID (G avg) | FID (G) | FID 2 latents | ratio | class shares "
             "min-max | mix = coarse / fine, by crossover |", "|" + "---|" * 8]
    for run_dir in run_dirs:
        evals, raws = read_run(run_dir), read_run(run_dir, raw=True)
        if not evals:
            continue
        epoch, e = list(evals.items())[-1]
        raw = f"{raws[epoch]['fid']:.1f}" if epoch in raws else "-"
        shares = e["class_shares"]
        mixes = "  ".join(f"{m['crossover']}: {100 * m['follows_coarse']:.0f}/"
                          f"{100 * m['follows_fine']:.0f}%"
                          for m in e.get("mixing_by_crossover", [e["mixing"]]))
        lines.append(f"| {Path(run_dir).name} | {epoch} | {e['fid']:.1f} | {raw} | "
                     f"{e['fid_mixed']:.1f} | {e['fid_mixed'] / e['fid']:.2f} | "
                     f"{100 * min(shares):.1f}%-{100 * max(shares):.1f}% | {mixes} |")
    return "\n".join(lines)


def plot(runs, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for name, evals in runs.items():
        epochs = list(evals)
        axes[0].plot(epochs, [e["fid"] for e in evals.values()], marker="o", label=name)
        axes[1].plot(epochs, [e["fid_mixed"] for e in evals.values()], marker="o", label=name)
    floor = next(iter(next(iter(runs.values())).values()))["fid_real_floor"]
    for ax, title in zip(axes, ("1 latent (no mixing)", "2 latents, random crossover")):
        ax.axhline(floor, color="grey", linestyle=":", label=f"real floor {floor:.2f}")
        ax.set(xlabel="epoch", title=f"FID, {title}")
        ax.set_xticks(epochs)
    axes[0].set_ylabel("FID vs MNIST test (classifier features)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders (their names label the curves)")
    p.add_argument("--plot", help="where to save the FID curves")
    p.add_argument("--levers", action="store_true",
                   help="one row per run (its last evaluated epoch) instead of every epoch")
    args = p.parse_args()
    if args.levers:
        print(lever_table([r for r in args.runs if Path(r).is_dir()]))
        return
    runs = {Path(r).name: read_run(r) for r in args.runs}
    print(table(runs))
    if args.plot:
        plot(runs, args.plot)
        print(f"\nWrote {args.plot}")


if __name__ == "__main__":
    main()
