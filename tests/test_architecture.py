"""The structure the code must keep: pipeline/ knows no stage, and no modules import each other in a loop.

Each rule is also run on a deliberately broken copy of the tree, so the test shows it can fail.
"""

from __future__ import annotations

import shutil

from conftest import REPO
from import_graph import PACKAGES, cycles, forbidden_imports, import_graph


def test_pipeline_imports_no_stage_classifier_or_application():
    graph = import_graph(REPO)
    assert len([m for m in graph if m.startswith("pipeline.")]) >= 15  # the graph really was read
    assert forbidden_imports(graph) == []


def test_no_import_cycles():
    assert cycles(import_graph(REPO)) == []


def _copy_tree(tmp_path):
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "models"))
    return tmp_path


def test_rules_fail_on_a_broken_copy(tmp_path):
    root = _copy_tree(tmp_path)
    runner = root / "pipeline" / "runner.py"
    # the runner reaching for a concrete stage, inside a function as the old code did to dodge loops
    runner.write_text(
        runner.read_text() + "\n\ndef _dedup():\n    from stages.dedup import ExactDedup\n\n    return ExactDedup\n"
    )
    graph = import_graph(root)
    assert "pipeline.runner imports stages.dedup" in forbidden_imports(graph)
    # a loop: the layout module importing the runner, which imports the layout
    layout = root / "pipeline" / "layout.py"
    layout.write_text(
        layout.read_text() + "\n\ndef _runner():\n    from pipeline import runner\n\n    return runner\n"
    )
    loops = cycles(import_graph(root))
    assert any({"pipeline.layout", "pipeline.runner"} <= set(c) for c in loops), loops


def test_stage_registry_is_handed_in_not_imported():
    """The config loader takes the registry as an argument; the application passes `stages.registry`."""
    graph = import_graph(REPO)
    assert "stages.registry" not in graph["pipeline.config"]
    assert "stages.registry" in graph["winnow.cli"]
