"""Tables and FID curves for docs/results.md from the evaluate.py JSON of every checkpoint.

    python benchmarks/plot_results.py runs/mixing-0.9 runs/mixing-0.0 runs/leaky-relu \
        --plot docs/images/fid-per-epoch.png
"""
import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_run(run_dir):
    """{epoch: evaluation} from <run>/checkpoints/ckpt-NNNN.eval.json."""
    found = {}
    for path in Path(run_dir, "checkpoints").glob("ckpt-*.eval.json"):
        epoch = int(re.search(r"ckpt-(\d+)", path.name).group(1))
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
    args = p.parse_args()
    runs = {Path(r).name: read_run(r) for r in args.runs}
    print(table(runs))
    if args.plot:
        plot(runs, args.plot)
        print(f"\nWrote {args.plot}")


if __name__ == "__main__":
    main()
