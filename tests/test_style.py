"""Rules of style that ruff does not check (ruff's own run: .ci/run)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "snaketune"

# Signatures that keep their positional parameters, and why.
POSITIONAL_ALLOWED = {
    # Keras Tuner's HyperParameters.Int/Float, which users' build_model(hp) calls positionally
    ("models/builtin_space.py", "Int"),
    ("models/builtin_space.py", "Float"),
    # the built-in models' files are their trials' identity (core/identity.py); called by keyword
    ("models/cnn.py", "build_model"),
    ("models/mlp.py", "build_model"),
}


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield str(path.relative_to(PACKAGE)), node


def test_functions_of_more_than_four_parameters_take_them_by_keyword():
    crowded = []
    for file, function in _functions():
        positional = [a.arg for a in function.args.posonlyargs + function.args.args if a.arg not in ("self", "cls")]
        if len(positional) > 4 and (file, function.name) not in POSITIONAL_ALLOWED:
            crowded.append(f"{file}:{function.lineno} {function.name}({', '.join(positional)})")
    assert not crowded, "put a * before all but the first few parameters:\n" + "\n".join(crowded)


def test_long_public_functions_say_what_they_do():
    """A public function of more than 12 lines has a docstring: its name cannot say it all."""
    silent = [
        f"{file}:{function.lineno} {function.name}"
        for file, function in _functions()
        if not function.name.startswith("_")
        and function.end_lineno - function.lineno > 12
        and ast.get_docstring(function) is None
    ]
    assert not silent, "no docstring:\n" + "\n".join(silent)
