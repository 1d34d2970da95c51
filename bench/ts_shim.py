"""TroubleShooter 1.0.18 in its own directory (.bench/troubleshooter), and the two stand-ins it needs under mindspore 2.10.

TroubleShooter's declared dependencies pull numpy 2, which breaks mindspore 2.10, so it is installed with
``--no-deps`` into a target directory that only its contenders put on PYTHONPATH, with the few packages it
imports (prettytable < 3.8 as it pins, wcwidth, pysnooper, pandas built for numpy 1.x and what pandas needs);
pyyaml, tqdm and matplotlib come from .venv. mindspore 2.10 removed two names it imports at start-up
(``mindspore.common._stub_tensor.StubTensor``, ``mindspore.common.api._MindsporeFunctionExecutor``, used only
by its API dump): ``install_stand_ins`` puts inert ones in place before ``import troubleshooter``.
"""

from __future__ import annotations

import subprocess
import sys
import types

from bench.procs import TS_DIR

PACKAGES = ("troubleshooter==1.0.18", "prettytable==3.7.0", "wcwidth", "pysnooper", "pandas==2.2.3",
            "python-dateutil", "pytz", "tzdata", "six")
INSTALL = f"{sys.executable} -m pip install --no-deps --target {TS_DIR} " + " ".join(f"'{p}'" for p in PACKAGES)


def installed() -> bool:
    return (TS_DIR / "troubleshooter" / "__init__.py").is_file() and (TS_DIR / "pandas").is_dir()


def ensure_installed() -> str | None:
    """None when TroubleShooter is (or now is) installed in TS_DIR; else one line saying how to install it."""
    if installed():
        return None
    print(f"installing TroubleShooter 1.0.18 into {TS_DIR} (its own directory, --no-deps) ...", flush=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(TS_DIR),
                           *PACKAGES], capture_output=True, text=True, timeout=900)
    if proc.returncode == 0 and installed():
        return None
    return f"TroubleShooter not installed ({proc.stderr.strip().splitlines()[-1:] or ['pip failed']}); run: {INSTALL}"


def install_stand_ins() -> None:
    """The two names mindspore 2.10 removed, as inert stand-ins (only TroubleShooter's API dump would use them)."""
    import mindspore.common as common
    import mindspore.common.api as api

    if not hasattr(api, "_MindsporeFunctionExecutor"):
        class _MindsporeFunctionExecutor:  # noqa: N801 - the removed name
            def __init__(self, *args, **kwargs):
                pass

        api._MindsporeFunctionExecutor = _MindsporeFunctionExecutor
    try:
        import mindspore.common._stub_tensor  # noqa: F401
    except ImportError:
        stub = types.ModuleType("mindspore.common._stub_tensor")

        class StubTensor:
            pass

        stub.StubTensor = StubTensor
        sys.modules["mindspore.common._stub_tensor"] = stub
        common._stub_tensor = stub


def import_troubleshooter():
    install_stand_ins()
    import troubleshooter

    return troubleshooter
