"""Building the DAG must stay cheap: every job (and, on a cluster, every node) parses the workflow."""

import subprocess
import sys

from conftest import ROOT


def test_the_modules_the_snakefile_imports_do_not_import_tensorflow():
    code = (
        "import sys; import snaketune.study.config, snaketune.study.plan, snaketune.search.space, "
        "snaketune.core.identity, "
        "snaketune.search.strategies; "
        "heavy = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_files_import_only_the_dag_side_package():
    text = "\n".join(p.read_text() for p in [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))])
    for heavy in (
        "tensorflow",
        "keras",
        "snaketune.trial.train",
        "snaketune.search.kt_space",
        "snaketune.report.plots",
    ):
        assert f"import {heavy}" not in text and f"from {heavy}" not in text
