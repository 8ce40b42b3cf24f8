"""Benchmark snaketune against Keras Tuner's one-process search on the same fixed trials.

    pip install -r benchmarks/requirements.txt      # tensorboard, which Keras Tuner's Tuner imports
    python benchmarks/run.py --epochs 3 5 --configs 12 --dry-run-sizes 100 1000 10000

For each number of epochs, the same grid of configurations of the built-in MLP (learning rate x
batch size, everything else at the default study's defaults) is trained

  (a) in one process by `keras_tuner.GridSearch(...).search(...)`, the seed notebook's way
      (benchmarks/kt_search.py), and
  (b) by the workflow, `snakemake --cores N` in a fresh working directory,

on the same prepared arrays (the `data` rule runs first, outside both timings), and both wall
times and their ratio are printed. From the workflow's `benchmark:` files and the trials'
metrics it reports each trial job's overhead beyond its fit (job wall seconds minus fit
seconds) and data-loading seconds; and it times `snakemake -n` on studies of 100, 1,000 and
10,000 grid trials. Everything lands in `<out>/results.json` (and CSVs per trial) and a table
on stdout. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import reference, slurm_client  # noqa: E402

DEFAULT_MNIST = (ROOT / ".." / "shared" / "data" / "mnist.npz").resolve()
STUDY = "bench"
BATCH_SIZES = [32, 64, 128, 256]
# Targets on the 2-core reference machine (docs/benchmarks.md); reported, never asserted.
TARGETS = {
    "ratio_5_epochs": 0.7,  # workflow wall / Keras Tuner wall, 5-epoch set
    "overhead_seconds": 6.0,  # trial job wall minus its fit
    "load_seconds": 0.3,  # data loading per trial
    "dry_run_10000_seconds": 30.0,  # snakemake -n, 10,000 trials
}


# -- the study ------------------------------------------------------------------------------
def _round(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def learning_rates(n: int, low: float = 1e-4, high: float = 1e-2) -> list[float]:
    """n distinct learning rates, log-spaced from high down to low (one: 1e-3)."""
    if n == 1:
        return [1e-3]
    values = [high * (low / high) ** (i / (n - 1)) for i in range(n)]
    rounded = [_round(v) for v in values]
    return rounded if len(set(rounded)) == n else values


def default_grid(n: int) -> dict:
    """A grid of exactly n configurations: learning rate x batch size.

    12 gives learning_rate [0.01, 0.001, 0.0001] x batch_size [32, 64, 128, 256], the shape of
    the default study's grid. Other counts keep as many batch sizes (4, else 2, else 1) as divide n.
    """
    if n < 1:
        raise ValueError("--configs must be at least 1")
    sizes = 4 if n % 4 == 0 else 2 if n % 2 == 0 else 1
    batch_sizes = {4: BATCH_SIZES, 2: [64, 128], 1: [128]}[sizes]
    return {"learning_rate": learning_rates(n // sizes), "batch_size": batch_sizes}


def parse_grid(items: list[str]) -> dict:
    """`name=v1,v2,...` items (values read as YAML) into a grid."""
    grid = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--grid: expected name=v1,v2,..., got {item!r}")
        grid[name.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def grid_size(grid: dict) -> int:
    return math.prod(len(v) for v in grid.values())


def default_space() -> dict:
    """The default study's search space (config/config.yaml), which declares every
    hyperparameter of the MLP: the declared space is the discovered one."""
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["space"]


def study_config(
    *,
    data_path,
    epochs: int,
    grid: dict,
    patience=None,
    subset=None,
    validation_split: float = 0.2,
    seed: int = 0,
    space: dict | None = None,
    study: str = STUDY,
) -> dict:
    """A complete study (for `--configfile`, which replaces the default study): the grid only,
    random, Bayesian and the final model off, one TensorFlow thread per trial job."""
    return {
        "study": study,
        "data": {
            "path": str(data_path) if data_path else None,
            "validation_split": validation_split,
            "subset": subset,
            "seed": 0,
        },
        "model": {"type": "mlp"},
        "training": {"epochs": epochs, "patience": patience, "seed": seed, "objective": "val_accuracy"},
        "space": copy.deepcopy(space if space is not None else default_space()),
        "strategies": {
            "grid": {"enabled": True, "values": grid},
            "random": {"enabled": False, "trials": 1, "seed": 0},
            "bayesian": {"enabled": False, "trials": 1, "batch": 1, "seed": 0},
        },
        "final": {"enabled": False},
        "resources": {"trial_threads": 1},
    }


def grid_configurations(config: dict, space_json: Path | None = None) -> list[dict]:
    """The complete configurations snaketune's grid strategy proposes, in its order: from
    the declared space, or from the `space` checkpoint's space.json when given."""
    from snaketune.search.space import Space
    from snaketune.search.strategies import make
    from snaketune.study.config import load_study

    study = load_study(copy.deepcopy(config), ROOT / "config" / "schema.yaml")
    space = Space.from_json(space_json.read_text()) if space_json else study.declared_space
    return [p.values for p in make("grid", study.config["strategies"]["grid"]).propose(space, [], None)]


def objective_of(config: dict) -> dict:
    from snaketune.search.objective import objective_from

    objective = objective_from(config["training"]["objective"])
    return {"name": objective.name, "direction": objective.direction}


def write_config(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# -- running things -------------------------------------------------------------------------
def child_env(forkserver: bool = True) -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not forkserver:
        env["SNAKETUNE_FORKSERVER"] = "0"
    return env


def timed(
    cmd: list[str], cwd: Path, log: Path, timeout: float | None = None, forkserver: bool = True, env: dict | None = None
) -> float:
    """Run `cmd` in `cwd` with its output in `log`; return its wall seconds, or raise with
    the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        started = time.perf_counter()
        result = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env if env is not None else child_env(forkserver),
            timeout=timeout,
        )
        seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = log.read_text()[-4000:]
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({result.returncode}) in {cwd}; log {log}:\n{tail}")
    return seconds


def snakemake_exe() -> str:
    return shutil.which("snakemake") or "snakemake"


def snakemake_cmd(*args) -> list[str]:
    return [snakemake_exe(), "-s", str(ROOT / "Snakefile"), "--configfile", "config.yaml", *map(str, args)]


def data_dir(workdir: Path, config: dict) -> Path:
    """Where the workflow in `workdir` lays out the study's data (a folder named by its key)."""
    from snaketune.study.config import load_study
    from snaketune.study.plan import Plan

    return workdir / Plan(load_study(config, ROOT / "config" / "schema.yaml")).data_dir


def prepare(workdir: Path, config: dict, cores: int, logs: Path, with_space: bool = False) -> dict:
    """Write the study's config and run its `data` rule (and the `space` checkpoint), untimed
    as far as the comparison goes: both sides then train on these arrays."""
    write_config(workdir, config)
    seconds = {"data_seconds": timed(snakemake_cmd("--cores", cores, "data"), workdir, logs / "data.log")}
    if with_space:
        seconds["space_seconds"] = timed(snakemake_cmd("--cores", cores, "space"), workdir, logs / "space.log")
    return seconds


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def summary(values) -> dict | None:
    values = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


# -- (a) Keras Tuner in one process ---------------------------------------------------------
def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def run_keras_tuner(
    workdir: Path, data_dir: Path, configurations: list[dict], config: dict, logs: Path, steps_per_execution: int = 1
) -> dict:
    """`tuner.search()` over the configurations in a child process; its wall time covers
    Python's start and TensorFlow's import, as a notebook's does."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "data_dir": str(data_dir),
        "configurations": configurations,
        "epochs": config["training"]["epochs"],
        "patience": config["training"]["patience"],
        "seed": config["training"]["seed"],
        "objective": objective_of(config),
        "directory": str(workdir / "tuner"),
        "steps_per_execution": steps_per_execution,
    }
    spec_path, result_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    load = load_average()
    seconds = timed(
        [sys.executable, str(ROOT / "benchmarks" / "kt_search.py"), str(spec_path), str(result_path)],
        workdir,
        logs / f"keras_tuner_spe{steps_per_execution}.log",
    )
    result = json.loads(result_path.read_text())
    fits = [t["fit_seconds"] for t in result["trials"]]
    trials = [t["trial_seconds"] for t in result["trials"]]
    result.update(
        wall_seconds=seconds,
        load_average_at_start=load,
        trials_run=len(result["trials"]),
        fit_seconds_total=sum(f or 0.0 for f in fits),
        fit_seconds=summary(fits),
        # what a trial costs Keras Tuner beyond model.fit: building, checkpointing, bookkeeping
        overhead_seconds=summary([t - f for t, f in zip(trials, fits) if t is not None and f is not None]),
    )
    return result


# -- (b) the workflow -----------------------------------------------------------------------
def read_tsv_row(path: Path) -> dict:
    import pandas as pd

    return pd.read_csv(path, sep="\t").iloc[0].to_dict()


def workflow_trials(workdir: Path, study: str = STUDY) -> list[dict]:
    """One row per trial job: its benchmark record (`s`, `max_rss`), its metrics
    (fit_seconds, load_seconds, epochs_run, objective_value, status) and the sum of its
    history's per-epoch seconds."""
    import pandas as pd

    out = workdir / "results" / study
    rows = []
    for metrics_path in sorted((out / "trials").glob("*/metrics.csv")):
        tid = metrics_path.parent.name
        metrics = pd.read_csv(metrics_path).iloc[0].to_dict()
        bench = read_tsv_row(out / "benchmarks" / "trials" / f"{tid}.tsv")
        history = pd.read_csv(metrics_path.parent / "history.csv")
        row = {
            "trial_id": tid,
            "status": metrics.get("status"),
            "learning_rate": metrics.get("learning_rate"),
            "batch_size": metrics.get("batch_size"),
            "epochs_run": int(metrics.get("epochs_run", 0)),
            "objective_value": float(metrics.get("objective_value", math.nan)),
            "job_seconds": float(bench["s"]),
            # the training process's own peak (a job's benchmark file cannot see a process
            # forked by the fork server); the job's, for trials recorded before it
            "max_rss_mb": float(metrics["peak_rss_mb"])
            if metrics.get("peak_rss_mb")
            else (float(bench["max_rss"]) if "max_rss" in bench else None),
            "fit_seconds": float(metrics["fit_seconds"]),
            "history_seconds": float(history["seconds"].sum()) if len(history) else 0.0,
            "load_seconds": float(metrics.get("load_seconds", math.nan)),
            "finished_at": (out / "benchmarks" / "trials" / f"{tid}.tsv").stat().st_mtime,
        }
        row["overhead_seconds"] = row["job_seconds"] - row["fit_seconds"]
        rows.append(row)
    return rows


def run_workflow(
    workdir: Path, config: dict, cores: int, logs: Path, forkserver: bool = True, slurm: str = "as-is"
) -> dict:
    """`snakemake --cores N` on a study whose data is prepared: the space discovery, every
    trial, the strategy table, the aggregation and the plots. Without the fork server, each
    job imports TensorFlow itself, as under a batch scheduler. `slurm`: the machine with or
    without Slurm's client (benchmarks/slurm_client.py)."""
    study = config["study"]
    env, folder = slurm_client.environment(slurm, child_env(forkserver))
    # a fork server of its own, started cold as on a first run (not one an earlier run left idle)
    runtime = Path(tempfile.mkdtemp(prefix="snaketune-bench-runtime-"))
    env["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        client = slurm_client.describe(env)
        load = load_average()
        started_at = time.time()
        name = f"workflow_c{cores}" + ("" if forkserver else "_cold") + ("" if slurm == "as-is" else f"_{slurm}")
        seconds = timed(snakemake_cmd("--cores", cores), workdir, logs / f"{name}.log", env=env)
    finally:
        for each in (folder, runtime):  # the server sees its socket gone and exits
            if each:
                shutil.rmtree(each, ignore_errors=True)
    trials = workflow_trials(workdir, study)
    out = workdir / "results" / study
    space_bench = next((out / "benchmarks" / "space").glob("*.tsv"), out / "benchmarks" / "space.tsv")
    job_total = sum(t["job_seconds"] for t in trials)
    return {
        "cores": cores,
        "forkserver": forkserver,
        "slurm": slurm,
        "slurm_client": client,
        "wall_seconds": seconds,
        # from the command's start: its first trial job's start (its benchmark record's end
        # less its wall seconds), and what runs after the last trial ends
        "first_trial_started_seconds": (min(t["finished_at"] - t["job_seconds"] for t in trials) - started_at)
        if trials
        else None,
        "after_last_trial_seconds": (started_at + seconds - max(t["finished_at"] for t in trials)) if trials else None,
        "load_average_at_start": load,
        "trials_run": len(trials),
        "failed_trials": sum(t["status"] != "completed" for t in trials),
        "last_trial_finished_seconds": (max(t["finished_at"] for t in trials) - started_at) if trials else None,
        "space_job_seconds": float(read_tsv_row(space_bench)["s"]) if space_bench.exists() else None,
        "trial_job_seconds_total": job_total,
        "fit_seconds_total": sum(t["fit_seconds"] for t in trials),
        # startup, DAG, space discovery, aggregation, plots and idle cores, per the wall time
        "outside_trial_jobs_seconds": seconds - job_total / cores,
        "overhead_seconds": summary(t["overhead_seconds"] for t in trials),
        "load_seconds": summary(t["load_seconds"] for t in trials),
        "fit_seconds": summary(t["fit_seconds"] for t in trials),
        "job_seconds": summary(t["job_seconds"] for t in trials),
        "max_rss_mb": summary(t["max_rss_mb"] for t in trials),
        "best_score": max((t["objective_value"] for t in trials if not math.isnan(t["objective_value"])), default=None),
        "trials": trials,
    }


IMPORT_PROBE = (
    "import time; t = time.perf_counter(); import snakemake.script, pandas, keras, tensorflow, "
    "keras_tuner; print(time.perf_counter() - t)"
)


def import_probe(repeats: int = 3) -> dict | None:
    """What a trial process spends importing (Snakemake's script preamble, pandas, Keras,
    TensorFlow, Keras Tuner) before it trains: the bulk of a trial job's overhead."""
    if repeats < 1:
        return None
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, env=child_env(), check=True
        ).stdout
        runs.append(
            {"process_seconds": time.perf_counter() - started, "import_seconds": float(out.strip().splitlines()[-1])}
        )
    return {
        "repeats": repeats,
        "load_average_at_start": load_average(),
        "process_seconds": summary(r["process_seconds"] for r in runs),
        "import_seconds": summary(r["import_seconds"] for r in runs),
    }


# -- (c) dry runs ---------------------------------------------------------------------------
def planned_jobs(output: str) -> dict:
    import re

    table = output.split("Job stats:")[1].split("\n\n")[0] if "Job stats:" in output else ""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def dry_run(n: int, workdir: Path, data_path, cores: int, logs: Path, repeats: int = 3) -> dict:
    """Time `snakemake -n` on a study of n grid trials (n learning rates), after its `data`
    and `space` jobs ran: a dry run cannot see past the `space` checkpoint before.

    Each of `repeats` rounds also times the reference workflows of n jobs (benchmarks/
    reference.py), one right after the other, so that the study and Snakemake's own cost per
    job are measured at the same speed of this shared machine. Seconds are the rounds' median.
    """
    grid = {"learning_rate": learning_rates(n, 1.1e-4, 0.09)}
    config = study_config(data_path=data_path, epochs=1, grid=grid, subset=300, validation_split=0.25)
    logs = logs / f"dry_run_{n}"
    prepare(workdir, config, cores, logs, with_space=True)
    commands = {"study": (snakemake_cmd("-n"), workdir)}
    for kind, ref in reference.REFERENCES.items():
        ref_dir = workdir.parent / f"{workdir.name}_{kind}"
        reference.write(kind, ref_dir, n)
        for target in ref.prepare:
            timed([snakemake_exe(), "--cores", "1", target], ref_dir, logs / f"{kind}_prepare.log")
        commands[kind] = ([snakemake_exe(), "-n"], ref_dir)
    load = load_average()
    times = {name: [] for name in commands}
    for r in range(repeats):
        for name, (cmd, cwd) in commands.items():
            times[name].append(timed(cmd, cwd, logs / f"dry_run_{name}_{r}.log"))
    # the same without printing each job (whose resources Snakemake evaluates to print them)
    quiet = timed(snakemake_cmd("-n", "--quiet"), workdir, logs / "dry_run_quiet.log")
    planned = {name: planned_jobs((logs / f"dry_run_{name}_0.log").read_text()) for name in commands}
    return {
        "trials": n,
        "seconds": statistics.median(times["study"]),
        "quiet_seconds": quiet,
        "load_average_at_start": load,
        "planned_jobs": planned["study"],
        "runs": times,
        "references": {
            kind: {"seconds": statistics.median(times[kind]), "jobs": planned[kind].get(ref.job_rule, 0)}
            for kind, ref in reference.REFERENCES.items()
        },
    }


def profile_dry_run(workdir: Path, logs: Path, top: int = 40) -> dict:
    """`snakemake -n` under cProfile: the functions with the most cumulative and own time."""
    import pstats

    stats_path = logs / "dry_run.prof"
    timed(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(stats_path),
            "-m",
            "snakemake",
            "-s",
            str(ROOT / "Snakefile"),
            "--configfile",
            "config.yaml",
            "-n",
        ],
        workdir,
        logs / "dry_run_profiled.log",
    )
    report = {}
    for key in ("cumulative", "tottime"):
        text = logs / f"dry_run_profile_{key}.txt"
        with open(text, "w") as fh:
            pstats.Stats(str(stats_path), stream=fh).sort_stats(key).print_stats(top)
        report[key] = str(text)
    return report


# -- the whole benchmark --------------------------------------------------------------------
def machine() -> dict:
    def version(name):
        try:
            from importlib.metadata import version as v

            return v(name)
        except Exception:
            return None

    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        memory_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "packages": {
            n: version(n)
            for n in ("tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "snakemake", "tensorboard", "numpy")
        },
        "load_average": load_average(),
    }


def benchmark(
    *,
    epochs: list[int],
    grid: dict,
    cores: list[int],
    out: Path,
    data_path=DEFAULT_MNIST,
    subset=None,
    patience=None,
    dry_run_sizes=(100, 1000, 10000),
    keras_tuner: bool = True,
    kt_steps_per_execution: list[int] = (1,),
    workdir: Path | None = None,
    profile_dry_run_over: float | None = TARGETS["dry_run_10000_seconds"],
    import_probe_repeats: int = 3,
    cold_too: bool = False,
    dry_run_repeats: int = 3,
    slurm_modes=("as-is",),
    log=print,
) -> dict:
    """Run everything; write `<out>/results.json` and per-trial CSVs; return the results."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    logs = out / "logs"
    if keras_tuner and not tensorboard_available():
        raise RuntimeError(
            "Keras Tuner's Tuner classes import tensorboard, which tensorflow-cpu does "
            "not install: pip install -r benchmarks/requirements.txt "
            "(or pass --no-keras-tuner)"
        )
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="snaketune-bench-")) if own_workdir else workdir
    results = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "epochs": epochs,
            "grid": grid,
            "configurations": grid_size(grid),
            "cores": cores,
            "data_path": str(data_path) if data_path else None,
            "subset": subset,
            "patience": patience,
            "dry_run_sizes": list(dry_run_sizes),
            "dry_run_repeats": dry_run_repeats,
            "slurm_modes": list(slurm_modes),
            "kt_steps_per_execution": list(kt_steps_per_execution) if keras_tuner else [],
        },
        "targets": TARGETS,
        "sets": [],
        "dry_runs": [],
        "workdir": str(workdir),
    }
    try:
        if import_probe_repeats and epochs:
            log(f"[imports] a trial process's imports, {import_probe_repeats} times")
            results["import_probe"] = import_probe(import_probe_repeats)
        for n_epochs in epochs:
            config = study_config(data_path=data_path, epochs=n_epochs, grid=grid, patience=patience, subset=subset)
            configurations = grid_configurations(config)
            entry = {"epochs": n_epochs, "configurations": configurations, "workflow": [], "keras_tuner": []}
            results["sets"].append(entry)
            set_logs = logs / f"epochs_{n_epochs}"
            first_dir = None
            for n_cores, slurm in [(c, m) for c in cores for m in slurm_modes]:
                name = f"workflow_c{n_cores}" + ("" if slurm == "as-is" else f"_{slurm}")
                wf_dir = workdir / f"e{n_epochs}" / name
                log(f"[epochs {n_epochs}] preparing data for the workflow ({n_cores} cores) in {wf_dir}")
                setup = prepare(wf_dir, config, n_cores, set_logs / name)
                first_dir = first_dir or wf_dir
                if keras_tuner and wf_dir == first_dir:
                    # Keras Tuner first, on the arrays the workflow's data rule just prepared
                    for spe in kt_steps_per_execution:
                        log(
                            f"[epochs {n_epochs}] Keras Tuner, {len(configurations)} trials, one process "
                            f"(steps_per_execution={spe})"
                        )
                        kt = run_keras_tuner(
                            workdir / f"e{n_epochs}" / f"keras_tuner_spe{spe}",
                            data_dir(wf_dir, config),
                            configurations,
                            config,
                            set_logs,
                            steps_per_execution=spe,
                        )
                        entry["keras_tuner"].append(kt)
                        log(f"[epochs {n_epochs}] Keras Tuner: {kt['wall_seconds']:.1f} s")
                log(
                    f"[epochs {n_epochs}] workflow, {len(configurations)} trials, --cores {n_cores}, "
                    f"Slurm's client {slurm}"
                )
                wf = run_workflow(wf_dir, config, n_cores, set_logs, slurm=slurm)
                wf.update(setup)
                space_json = wf_dir / "results" / config["study"] / "space.json"
                wf["same_configurations"] = sorted(map(json.dumps, grid_configurations(config, space_json))) == sorted(
                    map(json.dumps, configurations)
                )
                entry["workflow"].append(wf)
                log(
                    f"[epochs {n_epochs}] workflow ({n_cores} cores, Slurm's client {slurm}): "
                    f"{wf['wall_seconds']:.1f} s, first trial started at {_f(wf['first_trial_started_seconds'])} s"
                )
                pd.DataFrame(wf["trials"]).to_csv(
                    out / f"{name.replace('workflow', f'workflow_trials_e{n_epochs}')}.csv", index=False
                )
                if cold_too and slurm == slurm_modes[0]:
                    cold_dir = workdir / f"e{n_epochs}" / f"workflow_c{n_cores}_cold"
                    setup = prepare(cold_dir, config, n_cores, set_logs / f"workflow_c{n_cores}_cold")
                    log(f"[epochs {n_epochs}] workflow without the fork server, --cores {n_cores}")
                    wf = run_workflow(cold_dir, config, n_cores, set_logs, forkserver=False)
                    wf.update(setup)
                    entry["workflow"].append(wf)
                    log(f"[epochs {n_epochs}] workflow ({n_cores} cores, no fork server): {wf['wall_seconds']:.1f} s")
                    pd.DataFrame(wf["trials"]).to_csv(
                        out / f"workflow_trials_e{n_epochs}_c{n_cores}_cold.csv", index=False
                    )
            for kt in entry["keras_tuner"]:
                rows = [{**t.pop("values"), **t} for t in [dict(x) for x in kt["trials"]]]
                pd.DataFrame(rows).to_csv(
                    out / f"keras_tuner_trials_e{n_epochs}_spe{kt['steps_per_execution']}.csv", index=False
                )
            entry["ratios"] = [
                {
                    "cores": wf["cores"],
                    "forkserver": wf["forkserver"],
                    "slurm": wf.get("slurm", "as-is"),
                    "kt_steps_per_execution": kt["steps_per_execution"],
                    "workflow_over_keras_tuner": wf["wall_seconds"] / kt["wall_seconds"],
                }
                for wf in entry["workflow"]
                for kt in entry["keras_tuner"]
            ]
        for n in dry_run_sizes:
            log(f"[dry run] {n} trials")
            result = dry_run(n, workdir / f"dry_run_{n}", data_path, cores[0], logs, dry_run_repeats)
            if profile_dry_run_over is not None and result["seconds"] > profile_dry_run_over:
                log(f"[dry run] {n} trials took {result['seconds']:.1f} s; profiling it")
                result["profile"] = profile_dry_run(workdir / f"dry_run_{n}", logs / f"dry_run_{n}")
            results["dry_runs"].append(result)
            refs = ", ".join(f"{kind} {ref['seconds']:.1f} s" for kind, ref in result["references"].items())
            log(
                f"[dry run] {n} trials: {result['seconds']:.1f} s (median of {dry_run_repeats}); "
                f"reference workflows: {refs}"
            )
    finally:
        results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
        (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    (out / "report.txt").write_text(report(results))
    return results


# -- the table ------------------------------------------------------------------------------
def _f(value, digits=1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _check(ok) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def report(results: dict) -> str:
    m = results["machine"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, Python {m['python']}, "
        f"load average {m['load_average']} at start"
    ]
    if results["sets"]:
        lines += [
            f"grid: {results['settings']['grid']} ({results['settings']['configurations']} configurations), "
            f"subset {results['settings']['subset']}, patience {results['settings']['patience']}",
            "",
        ]
        lines += _training_tables(results)
    if results["dry_runs"]:
        lines.append("")
        lines.append(
            f"{'dry run trials':>14} {'snakemake -n s':>14} {'-n --quiet s':>12} {'train jobs':>10} "
            f"{'minimal s':>9} {'shaped s':>8} {'/ minimal':>9} {'/ shaped':>8}  target"
        )
        for d in results["dry_runs"]:
            target = _check(d["seconds"] <= TARGETS["dry_run_10000_seconds"]) if d["trials"] == 10000 else ""
            minimal, shaped = (d["references"][k]["seconds"] for k in ("minimal", "shaped"))
            lines.append(
                f"{d['trials']:>14} {_f(d['seconds']):>14} {_f(d.get('quiet_seconds')):>12} "
                f"{d['planned_jobs'].get('train', 0):>10} {_f(minimal):>9} {_f(shaped):>8} "
                f"{_f(d['seconds'] / minimal, 2):>9} {_f(d['seconds'] / shaped, 2):>8}  {target}"
            )
            for key, path in (d.get("profile") or {}).items():
                lines.append(f"{'':>14} profile by {key} time: {path}")
    noisy = [x for x in _load_averages(results) if x is not None and x > 0.5]
    if noisy:
        lines.append("")
        lines.append(
            f"warning: the load average was up to {max(noisy)} when a timing started; "
            "other work on the machine skews these figures"
        )
    return "\n".join(lines)


def _cores(wf: dict) -> str:
    """The cores, marked * where the fork server was off (every job imports TensorFlow)."""
    return f"{wf['cores']}{'' if wf.get('forkserver', True) else '*'}"


def _training_tables(results: dict) -> list[str]:
    lines = []
    lines.append(
        f"{'epochs':>6} {'cores':>5} {'slurm client':>12} {'KT spe':>6} {'KT wall s':>10} "
        f"{'workflow s':>10} {'ratio':>6} {'1st trial s':>11} {'after s':>7}  target"
    )
    for entry in results["sets"]:
        kts = entry["keras_tuner"] or [None]
        for wf in entry["workflow"]:
            for kt in kts:
                ratio = wf["wall_seconds"] / kt["wall_seconds"] if kt else None
                target = (
                    _check(ratio <= TARGETS["ratio_5_epochs"]) if ratio is not None and entry["epochs"] == 5 else ""
                )
                lines.append(
                    f"{entry['epochs']:>6} {_cores(wf):>5} {wf.get('slurm', 'as-is'):>12} "
                    f"{(kt['steps_per_execution'] if kt else '-'):>6} "
                    f"{_f(kt['wall_seconds'] if kt else None):>10} {_f(wf['wall_seconds']):>10} "
                    f"{_f(ratio, 2):>6} {_f(wf.get('first_trial_started_seconds')):>11} "
                    f"{_f(wf.get('after_last_trial_seconds')):>7}  {target}"
                )
    lines.append(
        "1st trial s: from the workflow's start to its first trial job's start; after s: from the "
        "last trial's end to the workflow's end"
    )
    clients = {
        wf["slurm"]: wf["slurm_client"] for e in results["sets"] for wf in e["workflow"] if wf.get("slurm_client")
    }
    for mode, client in clients.items():
        lines.append(
            f"slurm client {mode}: "
            + (
                f"scontrol show config {client['scontrol_show_config_seconds']} s, controller "
                f"{'answered' if client['controller_answered'] else 'did not answer'}"
                if client["client"]
                else "not on PATH"
            )
            + f"; Slurm executor plugin {'installed' if client['plugin_installed'] else 'not installed'}"
        )
    lines.append("")
    if any(not wf.get("forkserver", True) for e in results["sets"] for wf in e["workflow"]):
        lines.append(
            "cores marked * ran without the fork server (SNAKETUNE_FORKSERVER=0): every job imports TensorFlow"
        )
    lines.append("")
    lines.append("workflow, per trial job (s):  overhead = job wall (benchmark `s`) - fit_seconds")
    lines.append(
        f"{'epochs':>6} {'cores':>5} {'slurm client':>12} {'fit mean':>9} {'ovh mean':>9} {'ovh med':>8} "
        f"{'ovh max':>8} "
        f"{'load mean':>9} {'load max':>9} {'rss max MB':>10} {'outside s':>9}  targets"
    )
    for entry in results["sets"]:
        for wf in entry["workflow"]:
            ovh, load, fit, rss = (
                wf["overhead_seconds"] or {},
                wf["load_seconds"] or {},
                wf["fit_seconds"] or {},
                wf["max_rss_mb"] or {},
            )
            checks = []
            if ovh:
                checks.append(f"overhead {_check(ovh['max'] <= TARGETS['overhead_seconds'])}")
            if load:
                checks.append(f"load {_check(load['max'] <= TARGETS['load_seconds'])}")
            lines.append(
                f"{entry['epochs']:>6} {_cores(wf):>5} {wf.get('slurm', 'as-is'):>12} {_f(fit.get('mean')):>9} "
                f"{_f(ovh.get('mean')):>9} {_f(ovh.get('median')):>8} {_f(ovh.get('max')):>8} "
                f"{_f(load.get('mean'), 4):>9} {_f(load.get('max'), 4):>9} {_f(rss.get('max'), 0):>10} "
                f"{_f(wf['outside_trial_jobs_seconds']):>9}  {', '.join(checks)}"
            )
    probe = results.get("import_probe")
    if probe:
        lines.append(
            f"a fresh Python importing what a trial job imports: {_f(probe['import_seconds']['median'])} s "
            f"(process {_f(probe['process_seconds']['median'])} s, median of {probe['repeats']})"
        )
    kt_rows = [(e, kt) for e in results["sets"] for kt in e["keras_tuner"]]
    if kt_rows:
        lines.append("")
        lines.append("Keras Tuner, one process (s):")
        lines.append(
            f"{'epochs':>6} {'spe':>4} {'wall':>8} {'import':>7} {'search':>8} {'fit mean':>9} "
            f"{'ovh mean':>9} {'best':>7}"
        )
        for entry, kt in kt_rows:
            lines.append(
                f"{entry['epochs']:>6} {kt['steps_per_execution']:>4} {_f(kt['wall_seconds']):>8} "
                f"{_f(kt['import_seconds']):>7} {_f(kt['search_seconds']):>8} "
                f"{_f((kt['fit_seconds'] or {}).get('mean')):>9} "
                f"{_f((kt['overhead_seconds'] or {}).get('mean')):>9} {_f(kt['best_score'], 4):>7}"
            )
    return lines


def _load_averages(results):
    for entry in results["sets"]:
        for run in entry["workflow"] + entry["keras_tuner"]:
            yield run.get("load_average_at_start")
    for d in results["dry_runs"]:
        yield d.get("load_average_at_start")
    yield (results.get("import_probe") or {}).get("load_average_at_start")


# -- command line ---------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, nargs="+", default=[3, 5], help="epochs per trial, one set each")
    p.add_argument(
        "--configs", type=int, default=12, help="number of configurations: learning rate x batch size (12: 3 x 4)"
    )
    p.add_argument("--grid", nargs="+", metavar="NAME=V1,V2", help="an explicit grid instead of --configs")
    p.add_argument(
        "--cores",
        type=int,
        nargs="+",
        default=[os.cpu_count()],
        help="--cores for the workflow; several values run it once each (default: all)",
    )
    p.add_argument("--subset", type=int, help="train on this many MNIST images only (data.subset)")
    p.add_argument("--patience", type=int, help="early-stopping patience on both sides (default: none)")
    p.add_argument(
        "--data",
        default=str(DEFAULT_MNIST),
        help="the mnist.npz (default ../shared/data/mnist.npz); 'fetch' lets the workflow fetch MNIST",
    )
    p.add_argument(
        "--dry-run-sizes",
        type=int,
        nargs="*",
        default=[100, 1000, 10000],
        help="time `snakemake -n` on studies of these many trials",
    )
    p.add_argument(
        "--dry-run-repeats",
        type=int,
        default=3,
        help="time each dry run (and the reference workflows beside it) this many times",
    )
    p.add_argument("--only-dry-runs", action="store_true", help="skip the training comparison")
    p.add_argument(
        "--cold-too",
        action="store_true",
        help="also run each workflow set with the fork server off (SNAKETUNE_FORKSERVER=0)",
    )
    p.add_argument("--no-keras-tuner", action="store_true", help="skip the Keras Tuner side")
    p.add_argument(
        "--kt-steps-per-execution",
        type=int,
        nargs="+",
        default=[1],
        help="Keras Tuner runs with these steps_per_execution (1: Keras' default; 32: what snaketune's trials use)",
    )
    p.add_argument(
        "--import-probe-repeats",
        type=int,
        default=3,
        help="time a fresh process's imports (a trial job's fixed cost) this many times; 0: skip",
    )
    p.add_argument("--out", type=Path, help="results folder (default benchmarks/results/<timestamp>)")
    p.add_argument("--workdir", type=Path, help="keep the studies' working folders here (default: a temporary one)")
    p.add_argument(
        "--slurm-client",
        nargs="+",
        choices=slurm_client.MODES,
        default=["as-is"],
        help="run each workflow set with Slurm's client as the machine has it, installed with no "
        "controller answering, or absent from PATH (see benchmarks/slurm_client.py)",
    )
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    grid = parse_grid(args.grid) if args.grid else default_grid(args.configs)
    out = args.out or ROOT / "benchmarks" / "results" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = None if args.data == "fetch" else Path(args.data).resolve()
    results = benchmark(
        epochs=[] if args.only_dry_runs else args.epochs,
        grid=grid,
        cores=args.cores,
        out=out,
        data_path=data,
        subset=args.subset,
        patience=args.patience,
        dry_run_sizes=args.dry_run_sizes,
        keras_tuner=not args.no_keras_tuner and not args.only_dry_runs,
        kt_steps_per_execution=args.kt_steps_per_execution,
        workdir=args.workdir,
        import_probe_repeats=args.import_probe_repeats,
        cold_too=args.cold_too,
        dry_run_repeats=args.dry_run_repeats,
        slurm_modes=args.slurm_client,
    )
    print()
    print(report(results))
    print(f"\nresults: {out / 'results.json'}")
    return results


if __name__ == "__main__":
    main()
