"""Publishing the site's files into a directory: never another's files, nothing left behind by a crash."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cryptocast.publish import output
from cryptocast.publish.output import PublishError

from conftest import REPO, snapshot

SITE = {"index.html": b"<p>new</p>", "forecast.png": b"png", ".nojekyll": b""}


def names(directory) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_a_new_or_empty_directory_gets_the_site_and_a_manifest(tmp_path):
    for out in (tmp_path / "new" / "docs", tmp_path / "empty"):
        if out.name == "empty":
            out.mkdir()
        output.publish(out, SITE)
        assert names(out) == set(SITE) | {output.MANIFEST, output.LOCK}
        assert output.read_manifest(out) == set(SITE)


def test_a_directory_of_someone_elses_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "forecast.png").write_bytes(b"my own chart")
    (out / "notes.txt").write_text("keep me")
    before = snapshot(out)
    with pytest.raises(PublishError, match=f"{out} is not empty and was not written by plots.py"):
        output.publish(out, SITE)
    assert snapshot(out) == before and names(out) == {"forecast.png", "notes.txt"}


def test_only_files_plots_wrote_are_ever_removed(tmp_path):
    out = tmp_path / "docs"
    output.publish(out, SITE | {"hindcast_h3.png": b"old chart"})
    (out / "hindcast_h7.png").write_bytes(b"a file of the user's that looks like a chart")
    output.publish(out, SITE)
    assert not (out / "hindcast_h3.png").exists()  # ours, no longer drawn
    assert (out / "hindcast_h7.png").read_bytes() == b"a file of the user's that looks like a chart"
    assert output.read_manifest(out) == set(SITE)


def test_the_output_of_the_version_before_manifests_is_recognised(tmp_path):
    out = tmp_path / "docs"
    out.mkdir()
    for name in ("index.html", "forecast.json", ".nojekyll", "forecast.png", "hindcast_h5.png", "trend.png"):
        (out / name).write_bytes(b"old")
    output.publish(out, SITE)
    assert names(out) == set(SITE) | {output.MANIFEST, output.LOCK}


CRASH = """
import os, signal, sys
from pathlib import Path
from cryptocast.publish import output

def killed(self, target):
    os.kill(os.getpid(), signal.SIGKILL)

Path.replace = killed
output.publish(Path(sys.argv[1]), {"index.html": b"<p>new</p>", "forecast.png": b"png"})
"""


def test_a_killed_run_leaves_the_site_and_the_next_run_removes_its_staging_folder(tmp_path):
    out = tmp_path / "docs"
    output.publish(out, SITE)
    before = snapshot(out)
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(out)], cwd=REPO, capture_output=True, timeout=60)
    assert crashed.returncode == -9
    staging = [p for p in out.iterdir() if p.name.startswith(".build-")]
    assert len(staging) == 1  # what a SIGKILL leaves behind
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".build-")} == before
    output.publish(out, SITE)
    assert not [p for p in out.iterdir() if p.name.startswith(".build-")]
