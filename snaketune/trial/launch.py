"""Where a training job's work runs: through the fork server (a warm process that imported
TensorFlow once), or, with GPUs, in the job's own process on devices of its own."""

from __future__ import annotations

from snaketune.core import forkserver
from snaketune.trial.devices import GROWTH_ENV, DeviceSlot, placed_by_scheduler, shared_device_oom


def run_training(target: str, resources, **kwargs):
    """`target`(**kwargs), a training job's work: through the fork server without GPUs; with
    GPUs in the job's own process, on a slot of its own on a local machine (under a scheduler,
    on the devices the scheduler gave it), because TensorFlow picks its devices when it starts
    and the server's TensorFlow started before this job's devices were chosen."""
    gpu = int(resources.get("gpu", 0) or 0)
    if not gpu:
        return forkserver.call(target, **kwargs)
    if placed_by_scheduler():
        return forkserver.run_here(target, **kwargs)  # the scheduler placed the job on its devices
    share = int(resources.get("trials_per_gpu", 1) or 1)

    def waiting(count):
        print(f"device: all {count} GPU slots are taken; waiting for one", flush=True)

    with DeviceSlot(gpu, share, on_wait=waiting) as slot:
        print(
            f"device: GPU {','.join(slot.devices)} (CUDA_VISIBLE_DEVICES), place {slot.share + 1} of "
            f"{share} on it" + (f", memory allocated as needed ({GROWTH_ENV})" if share > 1 else ""),
            flush=True,
        )
        try:
            return forkserver.run_here(target, **kwargs)
        except BaseException as error:
            if shared_device_oom(error):
                print(
                    f"device: out of GPU memory on a device shared by up to {share} jobs, which may be "
                    f"another job's doing: the job fails, for Snakemake to retry it. A model that does not "
                    f"fit the GPU alone fails every retry: then set resources.trials_per_gpu: 1",
                    flush=True,
                )
            raise
