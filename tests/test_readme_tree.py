"""The README's "What is where" matches the tree (issue 9): every top-level folder git tracks is described there,
and every folder described there exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_what_is_where_names_every_tracked_folder_and_only_those() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What is where", 1)[1].split("\n## ", 1)[0]
    block = section.split("```", 2)[1]
    described = set(re.findall(r"^([a-z_]+)/", block, flags=re.M))
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    tracked = {line.split("/", 1)[0] for line in files.splitlines() if "/" in line and not line.startswith(".")}
    assert tracked - described == set(), "folders missing from README's What is where"
    assert described - tracked == set(), "README's What is where describes folders that do not exist"
