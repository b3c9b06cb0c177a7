"""tools/venv.sh, which `make` uses to pick an interpreter, against stand-in pythons and a stand-in uv."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

VENV_SH = REPO / "tools" / "venv.sh"

FAKE_PYTHON = """#!/bin/bash
# A stand-in interpreter: answers the version probe, the venv probe, and records `-m venv DIR`.
case "$*" in
  *sys.version_info*) echo "{version}";;
  *ensurepip*) exit {venv_missing};;
  "-m venv "*) echo "$0 $*" >> "$CALLS"; /bin/mkdir -p "$3";;
  *) exit 2;;
esac
"""
FAKE_UV = """#!/bin/bash
echo "uv $*" >> "$CALLS"
"""


@pytest.fixture
def venv_sh(tmp_path):
    bin_dir = tmp_path / "bin"
    calls = tmp_path / "calls"

    def make(interpreters: dict[str, str], uv: bool = False, no_venv: tuple[str, ...] = (), **env: str):
        """A PATH holding exactly these interpreters ({name: version}) and, if asked, uv."""
        shutil.rmtree(bin_dir, ignore_errors=True)
        bin_dir.mkdir()
        for name, version in interpreters.items():
            path = bin_dir / name
            path.write_text(FAKE_PYTHON.format(version=version, venv_missing=int(name in no_venv)))
            path.chmod(0o755)
        if uv:
            (bin_dir / "uv").write_text(FAKE_UV)
            (bin_dir / "uv").chmod(0o755)
        calls.write_text("")
        result = subprocess.run(["/bin/bash", str(VENV_SH), str(tmp_path / "venv")], capture_output=True, text=True,
                                env={"PATH": str(bin_dir), "CALLS": str(calls), **env}, timeout=30)
        return result, calls.read_text().splitlines(), bin_dir

    return make


def test_python3_is_used_when_it_is_supported(venv_sh):
    result, calls, bin_dir = venv_sh({"python3": "3.12", "python3.11": "3.11"})
    assert result.returncode == 0, result.stderr
    assert calls == [f"{bin_dir}/python3 -m venv {bin_dir.parent}/venv"]
    assert "Python 3.12" in result.stdout


def test_a_versioned_interpreter_is_found_when_python3_is_too_old_or_too_new(venv_sh):
    result, calls, bin_dir = venv_sh({"python3": "3.10", "python3.13": "3.13", "python3.12": "3.12"})
    assert result.returncode == 0 and calls == [f"{bin_dir}/python3.13 -m venv {bin_dir.parent}/venv"]
    result, calls, bin_dir = venv_sh({"python3": "3.14", "python3.11": "3.11"})
    assert result.returncode == 0 and calls == [f"{bin_dir}/python3.11 -m venv {bin_dir.parent}/venv"]


def test_uv_provides_a_python_when_none_is_suitable(venv_sh):
    result, calls, _ = venv_sh({"python3": "3.10"}, uv=True)
    assert result.returncode == 0, result.stderr
    assert calls == [f'uv venv --quiet --seed --clear --python >=3.11,<3.14 {Path(result.args[-1])}']


def test_no_suitable_python_says_what_to_install(venv_sh):
    result, calls, _ = venv_sh({"python3": "3.10", "python3.12": "3.12"}, no_venv=("python3.12",))
    assert result.returncode == 1 and calls == []
    message = result.stderr
    assert message.startswith("error: make: cryptocast needs Python 3.11, 3.12, 3.13 with venv; found: python3 is "
                              "Python 3.10; python3.12 is Python 3.12 without the venv module (install "
                              "python3.12-venv).")
    assert "sudo apt-get install python3.12 python3.12-venv" in message and "brew install python@3.13" in message
    assert "make PYTHON=" in message
    result, _, _ = venv_sh({})
    assert result.returncode == 1 and "no python3 on PATH" in result.stderr


def test_python_names_the_interpreter_and_is_checked(venv_sh, tmp_path):
    result, calls, bin_dir = venv_sh({"python3": "3.12", "python3.11": "3.11"}, PYTHON="python3.11")
    assert result.returncode == 0 and calls == [f"{bin_dir}/python3.11 -m venv {bin_dir.parent}/venv"]
    result, calls, _ = venv_sh({"python3.10": "3.10"}, PYTHON="python3.10")
    assert result.returncode == 1 and calls == []
    assert result.stderr == "error: make: PYTHON=python3.10 is Python 3.10; cryptocast supports 3.11, 3.12, 3.13\n"
    result, _, _ = venv_sh({}, PYTHON="nothing-here")
    assert result.returncode == 1 and "does not run" in result.stderr


def test_the_supported_versions_match_pyproject():
    text = VENV_SH.read_text()
    assert 'SUPPORTED="3.11 3.12 3.13"' in text and '--python ">=3.11,<3.14"' in text
    assert 'requires-python = ">=3.11,<3.14"' in (REPO / "pyproject.toml").read_text()
