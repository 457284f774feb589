"""The package as a user gets it: a wheel that installs and imports in a
fresh virtual environment, and an import that fails loudly without the core."""
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.packaging
def test_wheel_installs_and_imports_in_a_fresh_venv(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("pynet-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, cwd=tmp_path)
    out = subprocess.run(
        [str(py), "-c", "import pynet, pynet._core as c; from pynet.skbuff import SKB; "
         "s = SKB(64); s.reserve(8); s.put_data(b'ok'); print(c.__file__, s.tobytes())"],
        check=True, cwd=tmp_path, capture_output=True, text=True).stdout
    assert str(env_dir) in out and "b'ok'" in out


def test_import_without_the_compiled_core_fails_loudly(tmp_path):
    pkg = tmp_path / "pynet"
    shutil.copytree(ROOT / "pynet", pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))  # -S: no site, so no installed pynet either
    proc = subprocess.run([sys.executable, "-S", "-c", "import pynet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "compiled core" in proc.stderr and "pip install" in proc.stderr
