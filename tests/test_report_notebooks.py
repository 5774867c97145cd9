"""`report.html` and the notebooks, on real runs: the report is written, self-contained and rendered by a
real headless Chromium with every plot decoded; a half-built pipeline still gets a report that says what
is missing; both notebooks run clean in a real kernel and plot something."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, sample_inputs, write_config

from pipeline.report import SECTIONS, write_report

CHROMIUM = "/usr/bin/chromium"
NOTEBOOKS = ["inspect_shards.ipynb", "dedup_clusters.ipynb"]


def chromium(page: Path, profile: Path, *args: str) -> str:
    """Runs headless Chromium on a local file with no network features and returns its stdout."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed; the browser checks of report.html need it")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
           "--virtual-time-budget=5000", *args, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture(scope="module")
def weighted_report(weighted_run) -> tuple[Path, float]:
    """The report of the full default pipeline, written to its default place; with the seconds it took."""
    out = weighted_run.parent / "out"
    start = time.perf_counter()
    path = write_report(str(out))
    return Path(path), time.perf_counter() - start


def test_report_is_written_and_self_contained(weighted_report, weighted_run):
    path, seconds = weighted_report
    assert path == weighted_run.parent / "out" / "report.html"
    assert path.is_file()
    page = path.read_text(encoding="utf-8")
    assert seconds < 30, f"report took {seconds:.1f}s on the sample"
    # nothing loaded from anywhere: no remote src/href, no external script or stylesheet
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<link" not in page.lower() and not re.search(r"<script[^>]+src", page, re.I)
    for title, _ in SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    assert "Skipped:" not in page  # the full pipeline has data for every section
    images = re.findall(r"<img [^>]*src=\"([^\"]+)\"", page)
    assert len(images) >= 5 and all(src.startswith("data:image/png;base64,") for src in images)
    # the funnel lists every stage, and document text is escaped (no raw markup from the corpus)
    for folder in ("00_ingest", "10_safety", "11_weights", "12_export"):
        assert f"<td>{folder}</td>" in page
    assert "<h3>highest weights</h3>" in page and "<h3>lowest weights</h3>" in page
    assert page.lower().count("<script") == 1  # only the image counter: corpus text never reaches the page unescaped


def test_report_renders_in_chromium(weighted_report, tmp_path):
    path, _ = weighted_report
    dom = chromium(path, tmp_path / "profile-dom", "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    loaded = re.search(r'data-images-loaded="(\d+)"', body.group(1))
    total = re.search(r'data-images-total="(\d+)"', body.group(1))
    assert loaded and total, f"the load script did not run: {body.group(0)}"
    assert int(loaded.group(1)) == int(total.group(1)) >= 5
    assert int(total.group(1)) == path.read_text(encoding="utf-8").count("<img ")

    import matplotlib.image as mpimg

    shot = tmp_path / "report.png"
    chromium(path, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2000")
    pixels = mpimg.imread(str(shot))[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels.reshape(-1, 3) * 255).round().astype(np.uint8), axis=0)
    assert len(colours) > 100, f"screenshot has only {len(colours)} distinct colours: blank page?"
    assert (pixels.min(axis=2) < 0.9).mean() > 0.03, "screenshot is almost all white"


def test_report_on_minimal_run_says_what_is_missing(ray_local, tmp_path):
    from pipeline.runner import Runner
    from winnow.config import load_config

    config = write_config(tmp_path, sample_inputs())  # normalize + min_length only
    Runner(load_config(config), progress=False).run_all()
    out = tmp_path / "out"
    path = Path(write_report(str(out), str(tmp_path / "minimal.html")))
    assert path == tmp_path / "minimal.html" and path.is_file()
    assert not (out / "report.html").exists()
    page = path.read_text(encoding="utf-8")
    for title, _ in SECTIONS:
        assert f"<h2>{title}</h2>" in page, title
    skipped = re.findall(r'<p class="skip">Skipped: ([^<]*)</p>', page)
    assert any("no quality or safety score columns" in s for s in skipped), skipped
    assert sum("no weight column" in s for s in skipped) == 2, skipped  # the weights and the top/bottom documents
    # the too-short rejects of this sample are tweets and wiki pages: no URL, so no domain to count
    assert any(re.fullmatch(r"none of the [\d,]+ rejected documents has a URL\.", s) for s in skipped), skipped
    assert len(skipped) == 4, skipped  # the funnel and the mix have their data
    assert "only the shares before weighting" in page
    assert "<td>02_min_length</td>" in page and "too-short" in page
    assert page.count("<img ") == 2  # funnel and mix


def test_report_on_folder_without_stages(tmp_path):
    path = Path(write_report(str(tmp_path / "empty")))
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "empty" / "report.html"
    assert page.count('<p class="skip">Skipped:') == len(SECTIONS)
    assert "no stage folders" in page and "<img " not in page


def test_notebooks_are_saved_clean():
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3", name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} was saved with outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_clean(name, weighted_run, monkeypatch):
    import nbclient
    import nbformat

    monkeypatch.setenv("WINNOW_OUT", str(weighted_run.parent / "out"))  # the kernel inherits it
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [f"{o.ename}: {o.evalue}" for o in outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 1, f"{name} drew no plot"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert str(weighted_run.parent / "out") in text, "the notebook did not read WINNOW_OUT"
    assert "Traceback" not in text
