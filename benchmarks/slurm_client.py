"""The machine as a local run meets it, with or without Slurm's client: environments for the
harness's workflow runs.

Snakemake imports every installed executor plugin when it starts; the Slurm plugin asks
`scontrol show config` on import, which waits where Slurm's client is installed and no
controller answers. The harness times a local study under each of

  as-is        the machine as it is;
  unreachable  Slurm's client on PATH, its config naming a controller that does not answer
               (a port nothing listens on), as on a workstation with the client installed;
  absent       no Slurm command on PATH, as on a machine without the client.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MODES = ("as-is", "unreachable", "absent")
# What the Slurm client packages put on PATH (slurm-client, slurm-wlm, slurmctld, slurmd).
COMMANDS = (
    "sacct",
    "sacctmgr",
    "salloc",
    "sattach",
    "sbatch",
    "sbcast",
    "scancel",
    "scontrol",
    "scrontab",
    "sdiag",
    "sh5util",
    "sinfo",
    "sprio",
    "squeue",
    "sreport",
    "srun",
    "sshare",
    "sstat",
    "strigger",
    "sview",
    "slurmctld",
    "slurmd",
    "slurmdbd",
    "slurmstepd",
)


def plugin_installed() -> bool:
    return importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unreachable_conf(folder: Path) -> Path:
    conf = folder / "slurm.conf"
    conf.write_text(
        "ClusterName=unreachable\n"
        f"SlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={_closed_port()}\n"
        "AuthType=auth/none\n"
        "NodeName=localhost NodeAddr=127.0.0.1 CPUs=1 State=UNKNOWN\n"
        "PartitionName=none Nodes=localhost Default=YES State=UP\n"
    )
    return conf


def _path_without_slurm(path: str, folder: Path) -> str:
    """PATH with every folder that holds a Slurm command replaced by a copy of links to its
    other entries."""
    entries = []
    for i, entry in enumerate(path.split(os.pathsep)):
        if not entry or not any(os.path.exists(os.path.join(entry, c)) for c in COMMANDS):
            entries.append(entry)
            continue
        shadow = folder / f"path{i}"
        shadow.mkdir()
        for name in os.listdir(entry):
            if name not in COMMANDS:
                (shadow / name).symlink_to(os.path.join(entry, name))
        entries.append(str(shadow))
    return os.pathsep.join(entries)


def environment(mode: str, base: dict) -> tuple[dict, Path | None]:
    """(environment, folder to remove afterwards) for `mode`."""
    if mode == "as-is":
        return dict(base), None
    folder = Path(tempfile.mkdtemp(prefix=f"snaketune-slurm-{mode}-"))
    env = dict(base)
    if mode == "unreachable":
        if not shutil.which("scontrol", path=base.get("PATH")):
            shutil.rmtree(folder)
            raise RuntimeError("--slurm-client unreachable needs Slurm's client (scontrol) on PATH")
        env["SLURM_CONF"] = str(_unreachable_conf(folder))
    elif mode == "absent":
        env["PATH"] = _path_without_slurm(base.get("PATH", ""), folder)
        env.pop("SLURM_CONF", None)
    else:
        shutil.rmtree(folder)
        raise ValueError(f"slurm client mode {mode!r}: expected one of {', '.join(MODES)}")
    return env, folder


def describe(env: dict) -> dict:
    """What `snakemake` meets in `env`: the client's presence and how long `scontrol show
    config` takes (the plugin's question), and whether the plugin is installed."""
    scontrol = shutil.which("scontrol", path=env.get("PATH"))
    seconds, answered = None, None
    if scontrol:
        started = time.perf_counter()
        try:
            answered = (
                subprocess.run([scontrol, "show", "config"], env=env, capture_output=True, timeout=30).returncode == 0
            )
        except subprocess.TimeoutExpired:
            answered = False
        seconds = round(time.perf_counter() - started, 2)
    return {
        "client": bool(scontrol),
        "scontrol_show_config_seconds": seconds,
        "controller_answered": answered,
        "plugin_installed": plugin_installed(),
    }
