"""Trials bundled into Slurm jobs: one study run through the Slurm profile once per bundle
size k (`--groups train=trials --group-components trials=k`), on a running Slurm cluster
(tests/slurm/start.sh). Random search: bundling is for strategies without rounds.

For each k: the Slurm jobs submitted per rule, the wall time, each trial's overhead beyond
its fit (its `benchmark:` seconds minus `fit_seconds`), and whether every trial's metrics
equal those of the first k. Writes results.json and prints a Markdown table.

    tests/slurm/start.sh
    python benchmarks/slurm_bundling.py --trials 24 --k 1 4 8 --cores 2
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: \S*?(?:rule|group)_(\w+?)/")


def study(trials: int, data_path: str) -> dict:
    config = yaml.safe_load((ROOT / "tests" / "tiny_config.yaml").read_text())
    config["study"] = "bundling"
    config["data"] = {**config["data"], "path": data_path}
    for name, settings in config["strategies"].items():
        settings["enabled"] = name == "random"
    config["strategies"]["random"].update(trials=trials, seed=1)
    config["final"] = {"enabled": False}
    return config


def run(workdir: Path, k: int, cores: int, jobs: int) -> dict:
    cmd = [
        shutil.which("snakemake"),
        "-s",
        str(ROOT / "Snakefile"),
        "--configfile",
        "config.yaml",
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--jobs",
        str(jobs),
        "--cores",
        str(cores),
        "--groups",
        "train=trials",
        "--group-components",
        f"trials={k}",
        "--default-resources",
        "slurm_partition=debug",
        "slurm_account=root",
        "runtime=15",
        "mem_mb=1000",
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--latency-wait",
        "5",
        "--slurm-keep-successful-logs",
    ]
    started = time.perf_counter()
    result = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"k={k}: snakemake failed, see {workdir / 'snakemake.log'}")
    submitted = pd.Series([rule for _, rule in SUBMITTED.findall(result.stdout + result.stderr)]).value_counts()
    out = workdir / "results" / "bundling"
    trials = pd.read_csv(out / "trials.csv")
    overhead = []
    for tid, fit in zip(trials["trial_id"], trials["fit_seconds"]):
        bench = pd.read_csv(out / "benchmarks" / "trials" / f"{tid}.tsv", sep="\t")
        overhead.append(float(bench["s"].iloc[0]) - float(fit))
    return {
        "k": k,
        "wall_seconds": round(seconds, 1),
        "submitted": submitted.to_dict(),
        "trials": len(trials),
        "completed": int((trials["status"] == "completed").sum()),
        "overhead_mean": round(sum(overhead) / len(overhead), 2),
        "overhead_max": round(max(overhead), 2),
        "metrics": trials.set_index("trial_id")[["objective_value", "objective_epoch"]]
        .sort_index()
        .to_dict(orient="index"),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=24)
    p.add_argument("--k", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--cores", type=int, default=2, help="cores a bundle may ask for (--cores)")
    p.add_argument("--jobs", type=int, default=100, help="Slurm jobs at once (--jobs)")
    p.add_argument("--data", default=str((ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()))
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    out = Path(args.out or ROOT / "benchmarks" / "results" / time.strftime("bundling-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for k in args.k:
        workdir = Path(tempfile.mkdtemp(prefix=f"bundling-k{k}-", dir=out))
        (workdir / "config.yaml").write_text(yaml.safe_dump(study(args.trials, args.data)))
        results.append(run(workdir, k, args.cores, args.jobs))
        print(json.dumps({key: v for key, v in results[-1].items() if key != "metrics"}), flush=True)
    same = all(r["metrics"] == results[0]["metrics"] for r in results)
    (out / "results.json").write_text(
        json.dumps({"args": vars(args), "identical_metrics": same, "runs": results}, indent=2)
    )
    print("\n| k | train Slurm jobs | other Slurm jobs | wall (s) | overhead per trial, mean / max (s) |")
    print("|---|---|---|---|---|")
    for r in results:
        train = sum(n for rule, n in r["submitted"].items() if "train" in rule)
        other = sum(r["submitted"].values()) - train
        print(f"| {r['k']} | {train} | {other} | {r['wall_seconds']} | {r['overhead_mean']} / {r['overhead_max']} |")
    print(f"\nevery trial's metrics identical across k: {same}")


if __name__ == "__main__":
    main()
