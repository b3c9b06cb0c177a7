"""What only the local registry promises: its layout, files, crash safety and lock.

The behaviour every registry shares (numbering, promotion, summary) is in test_registry_contract.py.
"""

from __future__ import annotations

import ast
import json
import logging
import os
from pathlib import Path

import pytest
from filelock import FileLock

import cryptocast.registry.local as registry_module
from cryptocast.errors import StoreError
from cryptocast.registry import LocalModelRegistry, ModelVersion

from modelfiles import files, make_artifacts

METADATA = {"features": ["close", "volume", "fng"], "training_window": {"start": "2020-01-01", "end": "2024-02-29"}}


@pytest.fixture
def registry(tmp_path: Path) -> LocalModelRegistry:
    return LocalModelRegistry(tmp_path / "home")


def register(registry: LocalModelRegistry, tmp_path: Path, rel_mae: float, name: str = "sol") -> ModelVersion:
    artifacts = make_artifacts(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
    return registry.register(name, artifacts, {"rel_mae_mean": rel_mae}, f"rel_mae {rel_mae}", METADATA)


def promote(registry: LocalModelRegistry, tmp_path: Path, rel_mae: float) -> tuple[ModelVersion, bool]:
    artifacts = make_artifacts(tmp_path / f"run-{len(list(tmp_path.iterdir()))}")
    return registry.register_and_promote("sol", artifacts, {"rel_mae_mean": rel_mae}, "run", METADATA)


def test_a_version_is_laid_out_as_documented(registry, tmp_path):
    """The round trip itself is in the contract suite; here, where the files land and how they read."""
    artifacts = make_artifacts(tmp_path / "run", seed=7)

    mv = registry.register("sol", artifacts, {"rel_mae_mean": 0.0812}, "first LSTM", METADATA)

    assert mv.path == tmp_path / "home" / "model_registry" / "sol" / "v1" / "artifacts"
    assert files(mv.path) == files(artifacts)
    record = (mv.path.parent / "version.json").read_text()
    assert record == json.dumps(json.loads(record), indent=2, sort_keys=True) + "\n"


def test_numbering_continues_after_the_newest_not_the_count(registry, tmp_path):
    for rel_mae in (0.3, 0.2):
        register(registry, tmp_path, rel_mae)
    sol_dir = tmp_path / "home" / "model_registry" / "sol"
    os.rename(sol_dir / "v1", sol_dir / "v7")  # e.g. older versions pruned by hand

    assert register(registry, tmp_path, 0.1).version == 8


def test_worse_version_is_registered_but_not_promoted(registry, tmp_path, caplog):
    promote(registry, tmp_path, 0.18)
    production_file = tmp_path / "home" / "model_registry" / "sol" / "production.json"
    before = production_file.read_bytes()

    with caplog.at_level(logging.INFO, logger="cryptocast.registry"):
        mv, promoted = promote(registry, tmp_path, 0.25)

    assert not promoted and mv.version == 2
    assert registry.production("sol").version == 1
    assert production_file.read_bytes() == before
    assert [v.version for v in registry.versions("sol")] == [1, 2]
    line = next(r.message for r in caplog.records if "not promoted" in r.message)
    assert "0.25" in line and "0.18" in line and "v1" in line


@pytest.mark.parametrize("content", ["{not json", '["a list"]', '{"created": "x", "description": "d"}'])
def test_corrupt_version_json_names_the_file(registry, tmp_path, content):
    mv = register(registry, tmp_path, 0.2)
    version_file = mv.path.parent / "version.json"
    version_file.write_text(content)

    for call in (lambda: registry.get("sol", 1), lambda: registry.versions("sol"), registry.summary):
        with pytest.raises(StoreError) as info:
            call()
        assert str(version_file) in str(info.value)
        assert "\n" not in str(info.value)


def test_corrupt_production_json_names_the_file(registry, tmp_path):
    promote(registry, tmp_path, 0.2)
    production_file = tmp_path / "home" / "model_registry" / "sol" / "production.json"
    production_file.write_text('{"version": "one"}')

    with pytest.raises(StoreError, match=str(production_file)):
        registry.production("sol")


def test_crash_before_rename_leaves_no_version(registry, tmp_path, monkeypatch):
    register(registry, tmp_path, 0.2)
    before = registry.versions("sol")
    sol_dir = tmp_path / "home" / "model_registry" / "sol"

    def crash(src, dst):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "rename", crash)
    with pytest.raises(StoreError, match="simulated crash"):
        register(registry, tmp_path, 0.1)
    monkeypatch.undo()

    assert registry.versions("sol") == before
    assert not (sol_dir / "v2").exists()
    assert sorted(p.name for p in sol_dir.iterdir()) == ["v1"]
    assert register(registry, tmp_path, 0.1).version == 2


def test_leftovers_of_a_killed_run_are_ignored_then_swept(registry, tmp_path):
    register(registry, tmp_path, 0.2)
    sol_dir = tmp_path / "home" / "model_registry" / "sol"
    half = sol_dir / ".v2-killed"
    (half / "artifacts").mkdir(parents=True)
    (half / "artifacts" / "model.keras").write_bytes(b"half")
    pointer_tmp = sol_dir / ".production.json.4242.0a1b2c3d.tmp"  # atomic.py's temp file of a killed promotion
    pointer_tmp.write_bytes(b'{"version"')

    assert [v.version for v in registry.versions("sol")] == [1]
    assert registry.summary("sol")["sol"]["versions"][0]["version"] == 1

    assert register(registry, tmp_path, 0.1).version == 2
    assert not half.exists()
    assert not pointer_tmp.exists()
    assert files(registry.get("sol", 2).path)["model.keras"] != b"half"


def test_a_held_lock_blocks_registration(registry, tmp_path, monkeypatch):
    monkeypatch.setattr(registry_module, "LOCK_TIMEOUT_S", 0.1)
    (tmp_path / "home").mkdir()
    artifacts = make_artifacts(tmp_path / "run")
    with FileLock(tmp_path / "home" / ".registry.lock"):
        with pytest.raises(StoreError, match="locked by another run"):
            registry.register("sol", artifacts, {"rel_mae_mean": 0.1}, "run", METADATA)
    assert registry.versions("sol") == []
    assert registry.register("sol", artifacts, {"rel_mae_mean": 0.1}, "run", METADATA).version == 1


def _imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names} | {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


REGISTRY_PACKAGE = Path(registry_module.__file__).parent


@pytest.mark.parametrize("module", sorted(p.name for p in REGISTRY_PACKAGE.glob("*.py")))
def test_the_registry_imports_no_pickling_module(module):
    roots = {name.split(".")[0] for name in _imports(REGISTRY_PACKAGE / module)}
    assert not roots & {"pickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}


@pytest.mark.parametrize("backend", ["local.py", "hopsworks.py"])
def test_registry_backends_depend_on_the_interface_and_not_on_each_other(backend):
    imported = {name for name in _imports(REGISTRY_PACKAGE / backend) if name.startswith("cryptocast.registry")}
    assert imported == {"cryptocast.registry.base"}
    assert not {n for n in _imports(REGISTRY_PACKAGE / "base.py") if n.startswith("cryptocast.registry")}
