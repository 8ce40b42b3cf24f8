"""No module of the package imports, even inside a function, a module that imports it back:
each concept has one owner below the modules that use it."""

import subprocess
import sys

from conftest import ROOT

TOOL = ROOT.parent / "shared" / "tools" / "import_cycles.py"


def test_the_package_has_no_import_cycle():
    found = subprocess.run([sys.executable, str(TOOL), str(ROOT / "snaketune")], capture_output=True, text=True)
    assert found.returncode == 0, found.stdout + found.stderr
    assert " 0 cycles" in found.stdout
