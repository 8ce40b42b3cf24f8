"""A user's build_model(hp) or HyperModel, discovered and tried before any job (in a process
forked from the fork server, else in a child process; once per version of its file and the
study), and the search space the `space` job writes for it: what it asks for, that it returns
a compiled model whose output and loss fit the targets, that it reports the objective and that
it saves and loads again as trials do. Errors name the user's file and function or class."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from snaketune.core import forkserver, user_code
from snaketune.core.atomic import atomic_path
from snaketune.core.errors import ConfigError
from snaketune.core.identity import file_sha256, package_file
from snaketune.models import resolve, user_model


def _named(spec: str, message: str, key: str = "build_model") -> str:
    """Name the user's model in a message from discovery, which knows only the function."""
    if message.startswith("config: "):
        return message
    if message.startswith("build_model "):  # "build_model raised ...", "build_model must return ..."
        return f"config: model.{key}: '{spec}' {message[len('build_model ') :]}"
    if message.startswith("build_model: "):
        message = message[len("build_model: ") :]
    return f"config: model.{key}: '{spec}': {message}"


def discover_space(model_spec: dict, declared: dict, data_dir=None):
    """The model's search space, as the `space` job writes it (imports TensorFlow). A
    HyperModel's fit is tried too, on a few samples of the prepared data in `data_dir`, for the
    hyperparameters it declares there (batch size, a preprocessing switch).

    Errors of a user's model name the file and function or class.
    """
    from snaketune.data.prepared import load

    samples = None
    if model_spec.get("hypermodel") and data_dir:
        arrays, _ = load(data_dir)
        samples = {split: tuple(_head(v, 32) for v in arrays[split]) for split in ("train", "val")}
    return _discover(model_spec, declared, samples)


def _head(value, rows):
    return {k: v[:rows] for k, v in value.items()} if isinstance(value, dict) else value[:rows]


def _discover(model_spec: dict, declared: dict, samples: dict | None, targets: dict | None = None):
    """`targets`: the summary of the targets, where known, that a model built by its HyperModel's
    own fit is checked against should that fit fail."""
    from snaketune.search.kt_space import discover
    from snaketune.search.space import Space

    hypermodel = resolve(model_spec)
    probe = _fit_probe(hypermodel, samples, targets) if samples else None
    try:
        return discover(hypermodel.build, Space.from_config(declared), fit_probe=probe)
    except ConfigError as error:
        named = user_model(model_spec)
        if not named:
            raise
        raise ConfigError(_named(named[1], str(error), named[0])) from None


def _fit_probe(hypermodel, samples: dict, targets: dict | None = None):
    """Call the HyperModel's fit(hp, model, ...) as a trial would, for one epoch on `samples`."""

    def probe(hp, model):
        """One epoch of `model` on the sample, as a trial would fit it."""
        from snaketune.trial.train import fit

        settings = {"objective": {"name": "loss", "direction": "min"}, "epochs": 1, "patience": None}
        try:
            fit(hypermodel, hp, model, settings, values={}, data=samples, early_stopping=False)
        except Exception:
            # A model that its own fit builds (on images it crops first, say) shows its
            # outputs only now: one that does not fit the targets says why the fit failed
            # more clearly than TensorFlow does.
            shapes = _output_shapes(model) if targets else None
            if shapes is not None:
                _check_output(model, targets, shapes)
            raise

    return probe


# Building, discovering and trying a model takes seconds; longer than this is left to the jobs.
CHECK_TIMEOUT_S = 600
# The targets of the MNIST that the data job fetches, which the check stands in for by random
# images of its shape.
MNIST_TARGETS = {"task": "classification", "num_classes": 10, "outputs": 10}


def check_user_model(
    model_spec: dict,
    declared: dict,
    *,
    data: dict,
    summary: dict | None,
    objective: dict,
    cache_dir,
    threads: int = 1,
) -> dict | None:
    """A user's build_model(hp) or HyperModel, discovered and tried before any job runs, in a
    process forked from the fork server (else in a child process; see _run_check): its search
    space, that it returns a compiled model whose output fits the targets, and that it reports
    the objective, from one epoch on a few samples of the data.

    The `space` job would discover it too, but Snakemake removes a job's existing outputs
    before it runs, so a model that fails there would take the study's space with it. This
    imports TensorFlow (seconds), so it runs once per content of the model's file, the declared
    space, the data, the objective and snaketune's code: a success is remembered in
    `cache_dir`. Returns {"space": [...], "reported": [...]}, or None where it could not be
    checked here (no TensorFlow in this environment, or slower than CHECK_TIMEOUT_S).
    `threads`: those of the study's trial jobs (see _as_a_trial_job).
    """
    key_name, spec = user_model(model_spec)
    request = {"model": model_spec, "declared": declared, "data": data, "summary": summary, "objective": objective}
    code = [
        file_sha256(package_file(name))
        for name in (
            "search/kt_space.py",
            "search/space.py",
            "trial/train.py",
            "data/sources.py",
            "data/task.py",
            "models/__init__.py",
            "trial/model_check.py",
        )
    ]
    key = hashlib.sha256(
        json.dumps(
            {"request": request, "file": file_sha256(spec.rsplit(":", 1)[0]), "code": code}, sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"{key}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"snaketune: checking model.{key_name} '{spec}' (once per version of the file and the study)", file=sys.stderr
    )
    fd, result_path = tempfile.mkstemp(prefix=f".{key}.", suffix=".json", dir=cache.parent)
    os.close(fd)
    try:
        ran = _run_check(request, result_path, threads)
        if ran is None:
            print(
                f"snaketune: model.{key_name} '{spec}' took over {CHECK_TIMEOUT_S} s to check; "
                "the space job and the trials will find any error",
                file=sys.stderr,
            )
            return None
        status, output = ran
        text = Path(result_path).read_text()
        result = json.loads(text) if text else {}
    finally:
        os.unlink(result_path)
    if "error" in result:
        raise ConfigError(result["error"])
    if "unavailable" in result:
        return None
    if status != "exit status 0" or "space" not in result:
        tail = "\n".join(output.strip().splitlines()[-5:])
        raise ConfigError(f"config: model.{key_name}: '{spec}': checking it failed ({status}):\n{tail}")
    from snaketune.core.atomic import write_json

    outcome = {"space": result["space"], "reported": result["reported"]}
    write_json(cache, outcome)
    return outcome


# The packages the check imports that take seconds: where one is missing, no fork server can
# start (it preloads them), and the check says in a child process that it cannot run here.
HEAVY = ("tensorflow", "keras", "keras_tuner")


def _run_check(request: dict, result_path: str, threads: int) -> tuple[str, str] | None:
    """Run the check: ("exit status N" or how its process ended, its output), with its result
    in `result_path`; None past CHECK_TIMEOUT_S.

    Through the fork server, which has TensorFlow imported, as a trial job of `threads` threads
    asks it (so that the study's jobs then find that server warm): the check costs a fork, not
    an import of TensorFlow. Where no server can be reached or started, or TensorFlow is not
    installed, in a fresh child process."""
    if not all(importlib.util.find_spec(name) for name in HEAVY):
        return _in_a_new_process(request, result_path)
    fd, log = tempfile.mkstemp(prefix=".check.", suffix=".log", dir=Path(result_path).parent)
    os.close(fd)
    try:
        try:
            with _as_a_trial_job(threads):
                ran = forkserver.call(
                    "snaketune.trial.model_check:_check_forked",
                    request=request,
                    result_path=result_path,
                    log=log,
                    caller=os.getpid(),
                    timeout=CHECK_TIMEOUT_S,
                )
        except forkserver.JobProcessDied as error:  # killed: past the deadline, or for its memory
            text = Path(result_path).read_text()
            if text and "timeout" in json.loads(text):
                return None
            return str(error), Path(log).read_text(errors="replace")
        if ran is None:
            return None
        status, output = ran
        return status, output or Path(log).read_text(errors="replace")
    finally:
        os.unlink(log)


# What Snakemake sets for a job of N threads (its shell.py), trial jobs included, and the check,
# run from Snakemake's own process, would lack: OMP_*, OPENBLAS_* and MKL_* are part of the
# fork server's identity (read as TensorFlow and NumPy are imported), so without them the check
# would start a server of its own, which no job uses and which idles for minutes before it ends.
JOB_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@contextlib.contextmanager
def _as_a_trial_job(threads: int):
    """This process's environment as Snakemake gives a trial job of `threads` threads, while
    the check asks the fork server (whose forked process takes that environment too)."""
    saved = {name: os.environ.get(name) for name in JOB_THREAD_ENV}
    os.environ.update({name: str(threads) for name in JOB_THREAD_ENV})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _in_a_new_process(request: dict, result_path: str) -> tuple[str, str] | None:
    """The check in a fresh `python -c`, which imports TensorFlow itself."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "from snaketune.trial.model_check import _check_main; _check_main()", result_path],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
            env=user_code.child_env(),
        )
    except subprocess.TimeoutExpired:
        return None
    return f"exit status {proc.returncode}", proc.stderr or proc.stdout


def _check_forked(*, request: dict, result_path: str, log: str, caller: int, timeout: float) -> tuple[str, str]:
    """The check in a process forked from the fork server: its output to `log` (as a child
    process's is captured), ended with the result {"timeout": ...} past `timeout` seconds. Where
    the fork server ran it in the caller's own process (no server could be reached), in a
    fresh child process instead: the caller is Snakemake, which must neither import
    TensorFlow nor die with a user's model."""
    if os.getpid() == caller:
        return _in_a_new_process(request, result_path)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)

    def time_out():
        from snaketune.core.atomic import write_text

        write_text(result_path, json.dumps({"timeout": timeout}))
        os._exit(124)

    deadline = threading.Timer(timeout, time_out)
    deadline.daemon = True
    deadline.start()
    try:
        code = _check(request, result_path)
    except BaseException:  # noqa: BLE001 - as a child process's traceback and exit status 1
        traceback.print_exc()
        code = 1
    finally:
        deadline.cancel()
    sys.stdout.flush()
    sys.stderr.flush()
    return f"exit status {code}", ""


def _check_main() -> None:
    """The child process of `check_user_model`: argv is the result file, stdin the request."""
    code = _check(json.loads(sys.stdin.read()), sys.argv[1])
    if code:
        sys.exit(code)


def _check(request: dict, result_path: str) -> int:
    """The check itself, its result written to `result_path`: 0, or 2 for an error of the
    user's model (written as {"error": ...})."""
    from snaketune.core.atomic import write_text

    def result(**outcome):
        write_text(result_path, json.dumps(outcome))

    try:
        import snaketune.search.kt_space  # noqa: F401  (TensorFlow and Keras Tuner)
    except ImportError as error:
        result(unavailable=f"{type(error).__name__}: {error}")
        return 0
    from snaketune.core.errors import DataError
    from snaketune.data.prepared import sample

    model_spec = request["model"]
    key, spec = user_model(model_spec)
    try:
        try:
            samples = sample(request["data"], request["summary"])
        except DataError as error:
            raise ConfigError(f"config: {error}") from None
        space = _discover(
            model_spec,
            request["declared"],
            samples if key == "hypermodel" else None,
            request["summary"] or MNIST_TARGETS,
        )
        reported = _try(model_spec, space, samples=samples, summary=request["summary"], objective=request["objective"])
    except ConfigError as error:
        result(error=_named(spec, str(error), key))
        return 2
    result(space=json.loads(space.to_json()), reported=reported)
    return 0


def _try(model_spec: dict, space, *, samples: dict, summary: dict | None, objective: dict) -> list[str]:
    """Build the model at the space's defaults and fit it for one epoch on `samples`; return the
    metrics it reports. Fails with what a user must change: an uncompiled model, an output that
    does not fit the targets, an objective it does not report, an error while fitting, a model
    that cannot be saved and loaded again as the trials do."""
    import keras

    from snaketune.search.kt_space import to_keras_tuner
    from snaketune.search.objective import not_reported, objective_from
    from snaketune.trial.train import build, fit, reported, score

    key, spec = user_model(model_spec)
    hypermodel = resolve(model_spec)
    hp = to_keras_tuner(space)
    try:
        model = build(hypermodel, hp)
    except Exception as error:
        raise ConfigError(f"build_model raised {type(error).__name__}: {error}") from error
    if getattr(model, "optimizer", None) is None:
        raise ConfigError(
            "build_model returns a model that is not compiled: call model.compile(optimizer=..., "
            "loss=..., metrics=[...]) before returning it"
        )
    targets = summary or MNIST_TARGETS
    # A model that takes its input shape from the data (a Sequential without Input, a
    # subclassed Model, every model of Keras Tuner's guide) has no outputs until it is built.
    # A build_model's is fit on the data as it is, so a call on two samples builds it as its
    # first fit would; a HyperModel's fit may change the data first (crop images to a tuned
    # size, say), so its model is checked once its own fit has built it.
    shapes = _output_shapes(model)
    if shapes is None and key == "build_model":
        shapes = _call_on(model, samples["train"][0])
    if shapes is not None:
        _check_output(model, targets, shapes)
    check_loss(model, targets)
    settings = {"objective": objective, "epochs": 1, "patience": None}
    try:
        try:
            history, _, returned = fit(hypermodel, hp, model, settings, values={}, data=samples, early_stopping=False)
            score(returned, history, objective_from(objective))
        except Exception:
            # The fit may have built the model before failing: an output that does not fit
            # the targets says why more clearly than TensorFlow does.
            built = _output_shapes(model) if shapes is None else None
            if built is not None:
                _check_output(model, targets, built)
            raise
    except ConfigError:
        raise
    except ValueError as error:
        if "is not among the metrics the model reports" in str(error):
            raise ConfigError(not_reported(objective["name"], reported(history))) from None
        raise ConfigError(
            f"fitting the model on {len(keras.tree.flatten(samples['train'][1])[0])} samples of the "
            f"data failed: {type(error).__name__}: {str(error)[:400]}"
        ) from None
    except Exception as error:
        raise ConfigError(
            f"fitting the model on a few samples of the data failed: {type(error).__name__}: "
            f"{str(error).splitlines()[0][:400] if str(error) else ''}"
        ) from None
    if shapes is None:
        shapes = _output_shapes(model)
        if shapes is not None:
            _check_output(model, targets, shapes)
    _check_reloads(model, model_spec)
    names = reported(history)
    if not names and isinstance(returned, dict):  # a fit that dropped the callbacks
        names = sorted(returned)
    return names


def _output_shapes(model) -> list[tuple] | None:
    """The shapes of the model's outputs, or None while they are not known. A Sequential has
    outputs once built; a subclassed Model never has any, but Keras keeps the input shape it
    was built on, from which its outputs follow."""
    import keras

    outputs = getattr(model, "outputs", None)  # a Sequential not built yet raises AttributeError
    if outputs:
        return [tuple(output.shape) for output in outputs]
    if not model.built:
        return None
    shapes = (model.get_build_config() or {}).get("input_shape")
    if shapes is None:
        return None
    try:
        inputs = keras.tree.map_shape_structure(lambda shape: keras.KerasTensor(shape), shapes)
        spec = model.compute_output_spec(inputs)
    except Exception:
        # Only a clearer message is lost: the fit on the samples has run, and failed or not.
        return None
    return [tuple(output.shape) for output in keras.tree.flatten(spec)]


def _call_on(model, x) -> list[tuple]:
    """The shapes of the model's outputs on two samples of `x`, which builds a model that
    takes its input shape from the data."""
    import keras

    try:
        outputs = model(_head(x, 2), training=False)
    except Exception as error:
        shapes = keras.tree.map_structure(lambda a: tuple(a.shape[1:]), x)
        raise ConfigError(
            f"build_model's model cannot be called on the data's samples (shape {shapes}): "
            f"{type(error).__name__}: {str(error).strip().splitlines()[0][:400] if str(error) else ''}"
        ) from None
    return [tuple(output.shape) for output in keras.tree.flatten(outputs)]


# What a layer of the user's own needs to be saved and loaded again, as the trials do.
SAVING_HINT = (
    "a layer (or other Keras object) of your own needs a get_config() that returns the arguments of its "
    "__init__ (and a from_config() where they are not plain values: see "
    "https://keras.io/guides/serialization_and_saving/), and must be defined at the top level of the file "
    "or registered with @keras.saving.register_keras_serializable()"
)


def _check_reloads(model, model_spec: dict) -> None:
    """Save the fitted model and load it again as the trials do: each trial saves its model,
    Hyperband's next round resumes from it, and the final model is saved for use. A layer of
    the user's own that Keras cannot rebuild would otherwise fail those jobs, not this check."""
    from snaketune.trial.train import load_model

    def first_line(error):
        # Keras wraps the error that names the class in one about the model that holds it,
        # and its messages span lines, end in an example class or the whole config: the
        # first sentences of the innermost one say what to change.
        while error.__cause__ or error.__context__:
            error = error.__cause__ or error.__context__
        text = " ".join(str(error).split()).split(" Example:")[0].split(" Full object config:")[0]
        return f"{type(error).__name__}: {text[:400]}"

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.keras"
        try:
            with atomic_path(path) as tmp:  # as a trial saves it
                model.save(tmp)
        except Exception as error:
            raise ConfigError(
                f"the model trains, but saving it (each trial saves its model) raised "
                f"{first_line(error)}; {SAVING_HINT}"
            ) from None
        try:
            load_model(path, model_spec)
        except Exception as error:
            raise ConfigError(
                f"the model trains and is saved, but does not load again (Hyperband resumes a trial "
                f"from its saved model): keras.models.load_model raised {first_line(error)}; "
                f"{SAVING_HINT}"
            ) from None


def _check_output(model, summary: dict, shapes: list[tuple]) -> None:
    """The model's one output (its shape in `shapes`) against the targets' task, before
    TensorFlow says it less clearly."""
    import numpy as np

    task = summary.get("task")
    if task is None or len(shapes) != 1:
        return
    units = shapes[0][-1]
    # The last layer of a Sequential or functional model gives the output; a subclassed
    # Model's layers are in the order its attributes were set, which says nothing of that.
    last = model.layers[-1] if getattr(model, "outputs", None) and model.layers else None
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if task == "classification" and units < summary["num_classes"]:
        raise ConfigError(
            f"build_model's model outputs {units} values per sample, but the targets have "
            f"{summary['num_classes']} classes (labels 0..{summary['num_classes'] - 1}): end it with "
            f"Dense({summary['num_classes']}, activation='softmax')"
        )
    if task == "binary" and units not in (1, 2):
        raise ConfigError(
            f"build_model's model outputs {units} values per sample, but the targets are binary (0/1): "
            "end it with Dense(1, activation='sigmoid')"
        )
    values = int(np.prod(shapes[0][1:]))
    if task in ("multilabel", "regression") and values != summary["outputs"]:
        raise ConfigError(
            f"build_model's model outputs {values} values per sample, but the targets have "
            f"{summary['outputs']} per sample ({task})"
        )
    if task == "regression" and activation == "softmax":
        raise ConfigError(
            "build_model's model ends in a softmax, but the targets are real numbers (regression): "
            "end it with a linear Dense layer"
        )


def _loss_name(loss) -> str:
    """A compiled loss's name as Keras spells it: 'categorical_crossentropy' for the string, the
    class CategoricalCrossentropy() or the function keras.losses.categorical_crossentropy."""
    import re

    if isinstance(loss, str):
        return loss
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() if name[:1].isupper() else name


def check_loss(model, summary: dict | None) -> None:
    """A classification's loss against the form of its targets: a sparse loss wants labels
    0..k-1, a categorical one one-hot rows; mixed up, Keras stops inside the first fit with a
    message about ranks, or (a sparse loss on labels it reads as rows) trains on nonsense."""
    if not summary or summary.get("task") != "classification":
        return
    name = _loss_name(getattr(model, "loss", None) or "")
    classes = summary["num_classes"]
    if summary.get("one_hot") and name.startswith("sparse_categorical"):
        raise ConfigError(
            f"build_model's model is compiled with loss {name}, which takes class labels 0..{classes - 1}, "
            f"but the targets are one-hot rows of shape (n, {classes}): compile with "
            f"loss='{name.removeprefix('sparse_')}', or give the labels (np.argmax(y, axis=1))"
        )
    if not summary.get("one_hot") and name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        raise ConfigError(
            f"build_model's model is compiled with loss {name}, which takes one-hot rows of "
            f"{classes} columns, but the targets are class labels 0..{classes - 1} of shape (n,): "
            f"compile with loss='sparse_{name}', or give one-hot rows "
            f"(keras.utils.to_categorical(y, {classes}))"
        )
