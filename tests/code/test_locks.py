"""The lock files, checked offline against pyproject.toml: fresh, complete, hashed, consistent, lean.

`make lock` (tools/lock.py) writes a digest of what the locks were made from on each lock's first line;
recomputing it here tells, with no network, whether pyproject.toml changed since. Each rule is a
function returning the problems it finds, run on the real files (none) and on a broken variant (found).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import REPO
from lockfiles import Pin, parse

sys.path.insert(0, str(REPO / "tools"))
import lock  # noqa: E402

PYPROJECT = REPO / "pyproject.toml"
LOCK_FILES = {name: REPO / name for name in lock.LOCKS}
DEV_LOCK = "requirements/dev.txt"
HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "scikit-learn", "scipy", "statsforecast", "hopsworks", "torch"}


def pins_of(name: str) -> list[Pin]:
    return parse(LOCK_FILES[name].read_text())


# ---------------------------------------------------------------------------------------------------
# Fresh: made from the pyproject.toml that is here


def stale(locks: dict[str, str], pyproject: Path) -> list[str]:
    expected = lock.DIGEST_PREFIX + lock.declared_digest(pyproject)
    return [name for name, text in locks.items() if text.split("\n", 1)[0] != expected]


def real_locks() -> dict[str, str]:
    return {name: path.read_text() for name, path in LOCK_FILES.items()}


def real_locks_and_pip() -> dict[str, str]:
    return {**real_locks(), lock.PIP_LOCK: (REPO / lock.PIP_LOCK).read_text()}


def test_every_lock_is_fresh_against_pyproject():
    assert set(LOCK_FILES) == {"requirements.txt", "requirements/daily.txt", "requirements/train.txt",
                               "requirements/hopsworks.txt", DEV_LOCK}
    assert stale(real_locks_and_pip(), PYPROJECT) == [], "pyproject.toml changed: run `make lock`, commit the locks"


def test_pip_itself_is_locked_and_installed_first_into_every_venv():
    (pin,) = parse((REPO / lock.PIP_LOCK).read_text())
    assert f"{pin.name}=={pin.version}" == lock.PIP_PIN and pin.hashes
    for path in (REPO / "Makefile", REPO / ".github" / "actions" / "python" / "action.yml"):
        installed = re.findall(r"--require-hashes -r (\S+)", path.read_text())
        assert installed[0] == lock.PIP_LOCK and len(installed) > 1, path.name
    bench = (REPO / "bench" / "envs.py").read_text()
    assert bench.index('"pip.txt"') < bench.index("str(REPO / lock)")


EDITS = {  # one change each to pyproject.toml that must make every lock stale
    "a pin moved": ('"pandas==2.3.3"', '"pandas==2.3.2"'),
    "a dependency added": ('"jinja2==3.1.6",', '"jinja2==3.1.6",\n    "rich==14.0.0",'),
    "a training dependency added": ('"keras==3.15.1",', '"keras==3.15.1",\n    "xgboost==3.0.0",'),
    "a dev tool removed": ('    "ruff==0.17.6",\n', ""),
    "the supported Pythons": ('requires-python = ">=3.11,<3.14"', 'requires-python = ">=3.11,<3.15"'),
    "a new group": ("[project.optional-dependencies]\n", '[project.optional-dependencies]\ndocs = ["mkdocs==1.6.1"]\n'),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_changed_pyproject_makes_every_lock_stale(edit, tmp_path):
    old, new = EDITS[edit]
    text = PYPROJECT.read_text()
    assert old in text
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace(old, new, 1))
    tomllib.loads(changed.read_text())
    assert stale(real_locks_and_pip(), changed) == [*LOCK_FILES, lock.PIP_LOCK]


def test_comments_and_tool_settings_do_not_make_locks_stale(tmp_path):
    changed = tmp_path / "pyproject.toml"
    changed.write_text(PYPROJECT.read_text().replace("line-length = 120", "line-length = 100") + "\n# a note\n")
    assert stale(real_locks_and_pip(), changed) == []


# ---------------------------------------------------------------------------------------------------
# Complete: every declared requirement is pinned, at a version it allows


def declared(groups: tuple[str, ...], pyproject: Path = PYPROJECT) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    lines = project["dependencies"] + [r for g in groups for r in project["optional-dependencies"][g]]
    return [Requirement(line) for line in lines]


def unpinned(requirements: list[Requirement], pins: list[Pin]) -> list[str]:
    versions: dict[str, set[str]] = {}
    for pin in pins:
        versions.setdefault(pin.name, set()).add(pin.version)
    problems = []
    for req in requirements:
        found = versions.get(canonicalize_name(req.name), set())
        if not any(req.specifier.contains(v, prereleases=True) for v in found):
            problems.append(f"{req.name}{req.specifier}: locked {sorted(found) or 'nowhere'}")
    return problems


@pytest.mark.parametrize("name", sorted(lock.LOCKS))
def test_every_declared_requirement_is_pinned_in_its_lock(name):
    assert unpinned(declared(lock.LOCKS[name]), pins_of(name)) == []


def test_the_pin_rule_sees_a_missing_or_wrong_pin():
    pins = [p for p in pins_of("requirements/daily.txt") if p.name != "seaborn"]
    pins = [Pin(p.name, "0.0.1", p.marker, p.hashes) if p.name == "pandas" else p for p in pins]
    assert unpinned(declared(()), pins) == ["pandas==2.3.3: locked ['0.0.1']", "seaborn==0.13.2: locked nowhere"]


# ---------------------------------------------------------------------------------------------------
# Hashed, and installed with hashes required


def unhashed(pins: list[Pin]) -> list[str]:
    return [f"{p.name}=={p.version}" for p in pins if not p.hashes]


@pytest.mark.parametrize("name", sorted(lock.LOCKS))
def test_every_locked_package_has_hashes(name):
    pins = pins_of(name)
    assert len(pins) > 20
    assert unhashed(pins) == []


def test_the_hash_rule_sees_a_package_without_hashes():
    text = LOCK_FILES["requirements/daily.txt"].read_text()
    broken = re.sub(r"(seaborn==0\.13\.2) \\\n(    --hash=\S+( \\)?\n)+", r"\1\n", text)
    assert broken != text
    assert unhashed(parse(broken)) == ["seaborn==0.13.2"]


PIP_INSTALL = re.compile(r"pip install\b[^\n]*")


def installs_without_hashes(text: str) -> list[str]:
    """Every `pip install` of a requirements file must demand hashes; the project itself is --no-deps."""
    problems = []
    for command in PIP_INSTALL.findall(text.replace("\\\n", " ")):
        if re.search(r"(?:^|\s)-r\s", command) and "--require-hashes" not in command:
            problems.append(command)
        elif not re.search(r"(?:^|\s)-r\s", command) and "--no-deps" not in command:
            problems.append(command)
    return problems


INSTALLERS = [REPO / "Makefile", REPO / ".ci" / "run", *sorted((REPO / ".github").rglob("*.yml"))]


@pytest.mark.parametrize("path", INSTALLERS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_install_requires_hashes(path):
    assert installs_without_hashes(path.read_text()) == []


def test_the_install_rule_sees_an_unhashed_install():
    assert installs_without_hashes("pip install -r requirements.txt\npip install --require-hashes -r x.txt\n"
                                   "pip install pytest\npip install --no-deps -e .") == [
        "pip install -r requirements.txt", "pip install pytest"]
    assert "--require-hashes" in (REPO / "Makefile").read_text()


# ---------------------------------------------------------------------------------------------------
# Consistent and lean: one version of a package everywhere; nothing heavy on the daily path


def disagreements(sub: list[Pin], full: list[Pin]) -> list[str]:
    """Versions a sub-lock pins that the dev lock does not (markers may differ: a package can be needed
    under other conditions in a smaller environment)."""
    known = {(p.name, p.version) for p in full}
    return [f"{p.name}=={p.version}" for p in sub if (p.name, p.version) not in known]


@pytest.mark.parametrize("name", sorted(set(lock.LOCKS) - {DEV_LOCK}))
def test_every_lock_agrees_with_the_dev_lock(name):
    assert disagreements(pins_of(name), pins_of(DEV_LOCK)) == []


def test_the_agreement_rule_sees_another_version():
    daily = pins_of("requirements/daily.txt")
    moved = [Pin(p.name, "9.9.9", p.marker, p.hashes) if p.name == "numpy" else p for p in daily]
    assert disagreements(moved, pins_of(DEV_LOCK)) == ["numpy==9.9.9"]


def names(lock_name: str) -> set[str]:
    return {p.name for p in pins_of(lock_name)}


def test_the_daily_lock_has_no_tensorflow_and_nothing_else_heavy():
    assert names("requirements/daily.txt") & HEAVY == set()
    assert names("requirements/hopsworks.txt") & HEAVY == {"hopsworks"}
    assert names("requirements/train.txt") & HEAVY == HEAVY - {"hopsworks", "torch"}
    assert names("requirements.txt") & HEAVY == HEAVY - {"torch"}
    assert names("requirements/daily.txt") < names("requirements/train.txt") < names("requirements.txt")
    assert names("requirements.txt") < names(DEV_LOCK)


def test_the_locks_resolve_for_every_supported_python():
    """requires-python, the lock tool's wheel check and the locks' markers name the same versions."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert project["requires-python"] == f">={lock.SUPPORTED_PYTHONS[0]},<3.{int(lock.SUPPORTED_PYTHONS[-1][2:]) + 1}"
    assert "--universal" in lock.UV_ARGS and "--generate-hashes" in lock.UV_ARGS
    assert lock.INDEX == "https://pypi.org/simple"
