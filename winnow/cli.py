"""The `winnow` command line: the application that hands the registry of stages to the machinery.

`python -m winnow ...` is the same program, for `ray job submit` where no console script is installed.
Commands import what they run when they run (Ray, torch and the models take seconds to import), so
`winnow --help` and config errors come back at once.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from pipeline.config import load_config
from pipeline.layout import final_folder
from pipeline.storage import Storage
from pipeline.yaml_lines import ConfigError
from stages.registry import STAGES

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="winnow: clean, deduplicate and weight pretraining corpora on Ray.",
)
# Tables are wide; outside a terminal (CI logs, pipes) rich would squeeze them to 80 columns.
console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
out = Console(width=None if sys.stdout.isatty() else 160)


def _load(config: Path, input_path: str | None = None, output: str | None = None):
    try:
        return load_config(config, STAGES, input_override=input_path, output_override=output)
    except ConfigError as err:
        console.print(f"[red]config error[/red]\n{err}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _run_guarded(fn):
    from pipeline.runner import PipelineError

    try:
        return fn()
    except (PipelineError, ConfigError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def run(
    config: Path = typer.Argument(..., help="Pipeline YAML, e.g. configs/default.yaml."),
    input: str | None = typer.Option(
        None, "--input", "-i", help="Replace the config's inputs with this file, folder or glob (source = its name)."
    ),
    output: str | None = typer.Option(
        None, "--output", "-o", help="Write here instead of the config's output folder."
    ),
    workers: int | None = typer.Option(
        None, "--workers", "-w", min=1, help="Most shards processed at once per stage."
    ),
    num_cpus: int | None = typer.Option(
        None, "--num-cpus", min=1, help="CPUs for the embedded local Ray (ignored on a cluster)."
    ),
    report: bool = typer.Option(
        True, "--report/--no-report", help="Write the HTML report (report.html in the output folder) at the end."
    ),
):
    """Run the whole pipeline: ingest, then every configured stage. Finished shards are skipped, so rerunning resumes."""
    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import Runner
    from pipeline.stats import print_funnel

    cfg = _load(config, input, output)
    started = time.perf_counter()
    ensure_ray(cfg.pipeline.ray, num_cpus=num_cpus)
    runner = Runner(cfg, workers=workers, console=console)
    _run_guarded(runner.run_all)
    print_funnel(cfg.pipeline.output, out)
    out.print(f"done in {time.perf_counter() - started:.1f}s; output: [bold]{runner.storage.root}[/bold]")
    _print_products(runner.storage.root, write_html=report)


def _print_products(output_dir: str, write_html: bool) -> None:
    """Says where the things a user opens next are: final shards, dataset card, report."""
    storage = Storage(output_dir)
    final = final_folder(storage)
    card = storage.path(final, "README.md") if final else None
    if card and storage.exists(card):
        shards = storage.list_files(storage.path(final), prefix="shard-", suffix=".parquet")
        out.print(
            f"final shards: [bold]{storage.path(final)}[/bold] ({len(shards)} file(s)); dataset card: {card} and dataset.json"
        )
    if write_html:
        from pipeline.report import write_report

        out.print(f"report: [bold]{write_report(output_dir)}[/bold]")


@app.command("report")
def report_cmd(
    output_dir: str = typer.Argument(..., help="A winnow output folder."),
    path: Path | None = typer.Option(
        None, "--out", "-o", help="Where to write the HTML (default: report.html in the output folder)."
    ),
):
    """Write a static HTML report with plots: funnel, scores per language, weights, mix before/after, domains dropped."""
    from pipeline.report import write_report
    from pipeline.stats import collect_funnel

    if not collect_funnel(output_dir):
        console.print(f"[red]{output_dir}: no stage folders found; is this a winnow output folder?[/red]")
        raise typer.Exit(1)
    out.print(f"report: [bold]{write_report(output_dir, str(path) if path else None)}[/bold]")


@app.command()
def stage(
    name: str = typer.Argument(
        ..., help="Stage name (`normalize`) or folder (`01_normalize`); `ingest` for the first."
    ),
    config: Path = typer.Option(..., "--config", "-c", help="The pipeline YAML the output was made with."),
    output: str | None = typer.Option(None, "--output", "-o", help="Output folder, if not the config's."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Most shards processed at once."),
):
    """Run one stage again from the previous stage's output. Shards whose input and config are unchanged are skipped;
    later stages whose input changed are marked stale."""
    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import Runner

    cfg = _load(config, None, output)
    ensure_ray(cfg.pipeline.ray)
    runner = Runner(cfg, workers=workers, console=console)
    report, stale = _run_guarded(lambda: runner.run_one(name))
    out.print(f"{report.folder}: {report.ran} shard(s) processed, {report.skipped} already up to date")
    for folder, count in stale:
        out.print(
            f"[yellow]{folder} is now stale[/yellow] ({count} shard(s) out of date); rerun it with `winnow stage {folder}` or `winnow run`"
        )


@app.command()
def stats(
    output_dir: str = typer.Argument(..., help="A winnow output folder."),
    stage_name: str | None = typer.Option(
        None,
        "--stage",
        "-s",
        help="Also show one stage's drops per language and its signal histograms (name or folder).",
    ),
):
    """Print the funnel (docs and bytes in/out per stage), drops by reason, and the corpus per source and
    language (in, out, share of tokens before/after weighting, targets); with --stage, per-language detail."""
    from pipeline.stats import drops_table, print_funnel, print_groups, print_stage_detail, removed_table

    funnel = print_funnel(output_dir, out)
    if not funnel:
        raise typer.Exit(1)
    out.print(drops_table(funnel))
    removed = removed_table(funnel)
    if removed is not None:
        out.print(removed)
    print_groups(output_dir, out)
    if stage_name:
        matches = [f.folder for f in funnel if stage_name in (f.folder, f.folder[3:])]
        if not matches:
            console.print(
                f"[red]no stage '{stage_name}' in {output_dir}[/red] (stages: {', '.join(f.folder for f in funnel)})"
            )
            raise typer.Exit(1)
        print_stage_detail(output_dir, matches[0], out)


eval_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Measure a stage on labelled data with the pipeline's own code."
)
app.add_typer(eval_app, name="eval")


@eval_app.command("dedup")
def eval_dedup(
    input: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="Parquet with `id`, `text`, optionally `lang` and a truth column `true_dup`.",
    ),
    method: str = typer.Option(..., "--method", "-m", help="exact, minhash, simhash or semantic."),
    predictions: Path = typer.Option(
        ..., "--predictions", "-p", help="Where to write one row per input id: id, dup_cluster, dup_cluster_size."
    ),
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML of the stage's settings (or a pipeline YAML: its `<method>_dedup` stage)."
    ),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Most tasks at once."),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=1, help="CPUs for the embedded local Ray."),
    rows_per_shard: int = typer.Option(10_000, "--rows-per-shard", min=1, help="Documents per shard."),
    work_dir: Path | None = typer.Option(
        None, "--work-dir", help="Keep the pipeline output here (default: a temporary folder, removed)."
    ),
    backend: str | None = typer.Option(
        None, "--backend", help="minhash only: numpy or torch signatures (overrides the config's `backend`)."
    ),
):
    """Run the `<method>_dedup` stage (keep mode) on a Parquet file, write each row's cluster, and print
    duplicate-class precision, recall and F1 when the file has `true_dup`."""
    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import PipelineError
    from winnow.eval_dedup import load_settings, run_eval

    try:
        settings = load_settings(method, config)
        if backend is not None:
            if method != "minhash":
                raise ValueError("--backend applies to --method minhash only")
            settings = {**settings, "backend": backend}
        ensure_ray(None, num_cpus=num_cpus)
        started = time.perf_counter()
        pred, scores, report = run_eval(
            str(input),
            method,
            str(predictions),
            settings,
            work_dir=str(work_dir) if work_dir else None,
            workers=workers,
            rows_per_shard=rows_per_shard,
            console=console,
        )
    except (ValueError, PipelineError, ConfigError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2 if isinstance(err, ValueError) else 1) from None
    seconds = time.perf_counter() - started
    clustered = int(sum(1 for s in pred.column("dup_cluster_size").to_pylist() if s >= 2))
    out.print(
        f"{method}: {pred.num_rows:,} rows, {report.get('clusters', 0):,} clusters of 2+ holding {clustered:,} rows; "
        f"{seconds:.1f}s; predictions: {predictions}"
    )
    if report.get("seconds"):
        out.print("phases: " + ", ".join(f"{k} {v:.2f}s" for k, v in report["seconds"].items()))
    if scores is not None:
        out.print(
            f"duplicate class: precision {scores.precision:.4f}  recall {scores.recall:.4f}  F1 {scores.f1:.4f}  "
            f"(support {scores.support:,}, predicted {scores.predicted:,}); macro-F1 {scores.macro_f1:.4f}"
        )


@eval_app.command("extraction")
def eval_extraction_cmd(
    input: str = typer.Argument(..., help="WARC/WET or HTML pages: a file, a folder or a glob."),
    truth: Path = typer.Option(
        ..., "--truth", "-t", help="JSON lines (.jsonl or .jsonl.gz), one page each: `url`, `main_content`."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Write the scores, missing pages and per-page rows here."
    ),
    extractor: str | None = typer.Option(
        None, "--extractor", "-e", help="Extractor name as in the ingest setting (default: ingest's default)."
    ),
):
    """Run the ingest readers on web pages and print precision, recall and F1 of the extracted main text
    against the truth (bag of tokens, micro and macro); pages ingest rejected count as recall 0."""
    from winnow.eval_extraction import evaluate_with_progress, print_extraction_eval

    try:
        result = evaluate_with_progress(input, str(truth), extractor, console)
    except (ValueError, OSError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None
    print_extraction_eval(result, out)
    if json_out is not None:
        import orjson

        json_out.write_bytes(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2))
        out.print(f"scores: {json_out}", highlight=False)


def _positive(values: str | None) -> list[str] | None:
    return [v.strip() for v in values.split(",") if v.strip()] if values else None


train_app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Train the models behind the quality and safety stages."
)
app.add_typer(train_app, name="train")


@train_app.command("classifier")
def train_classifier_cmd(
    kind: str = typer.Option(..., "--kind", "-k", help="fasttext, bert or lexicon."),
    task: str = typer.Option(..., "--task", "-t", help="quality or safety (what a score near 1 means)."),
    data: list[Path] = typer.Option(
        ...,
        "--data",
        "-d",
        exists=True,
        dir_okay=False,
        help="Labelled file(s): fastText .txt, Parquet, CSV, JSONL (repeat for several).",
    ),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Directory to save the model and its card in."),
    lang: str | None = typer.Option(
        None, "--lang", help="zh segments with jieba (fastText, lexicon mining); empty: any language."
    ),
    eval_data: Path | None = typer.Option(
        None,
        "--eval-data",
        exists=True,
        dir_okay=False,
        help="Held-out file scored after training (default: --holdout of --data).",
    ),
    holdout: float = typer.Option(
        0.1, "--holdout", min=0.0, max=0.9, help="Share of --data held out for the card's scores."
    ),
    text_col: str | None = typer.Option(None, "--text-col", help="Text column (default: text/TEXT/tweet/content)."),
    label_col: str | None = typer.Option(None, "--label-col", help="Label column (default: label/class)."),
    positive: str | None = typer.Option(
        None, "--positive", help="Comma-separated label values that count as positive (default: labels are 0/1)."
    ),
    quantize: bool = typer.Option(
        False, "--quantize", help="fastText: save a quantised .ftz (a few MB instead of hundreds)."
    ),
    encoder: str | None = typer.Option(
        None, "--encoder", help="bert: a local Hugging Face encoder directory (default: the all-MiniLM-L6-v2 package)."
    ),
    finetune: bool = typer.Option(False, "--finetune", help="bert: fine-tune the encoder too (slow on a CPU)."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="fasttext/bert fine-tuning epochs."),
    max_length: int = typer.Option(128, "--max-length", min=8, help="bert: tokens per text."),
    device: str = typer.Option("auto", "--device", help="bert: auto, cpu or cuda."),
    seed: int = typer.Option(0, "--seed"),
):
    """Train a classifier, score it on held-out data, and save it with a card of those scores."""
    from classifiers.train import train_classifier

    options: dict = {}
    if kind == "fasttext":
        options = {"quantize": quantize, **({"epoch": epochs} if epochs else {}), "seed": seed}
    elif kind == "bert":
        options = {
            "finetune": finetune,
            "max_length": max_length,
            "device": device,
            "seed": seed,
            **({"epochs": epochs} if epochs else {}),
        }
        if encoder:
            options["encoder"] = str(Path(encoder).resolve()) if Path(encoder).is_dir() else encoder
    elif kind == "lexicon" and lang == "en":
        from classifiers.lexicon import better_profanity_terms

        options = {"base": better_profanity_terms()}
    try:
        train_classifier(
            kind,
            task,
            lang,
            [str(p) for p in data],
            out_dir,
            eval_data=str(eval_data) if eval_data else None,
            holdout=holdout,
            seed=seed,
            text_col=text_col,
            label_col=label_col,
            positive=_positive(positive),
            options=options,
            log=lambda m: out.print(m, highlight=False),
        )
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None


@eval_app.command("classifier")
def eval_classifier_cmd(
    model: str = typer.Option(
        ...,
        "--model",
        "-m",
        help="Model directory or shipped name (quality-zh, quality-en, safety-zh, safety-en, ...).",
    ),
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="Parquet or CSV with `id`, `text`, optional `label` 0/1.",
    ),
    predictions: Path = typer.Option(..., "--predictions", "-p", help="Parquet to write: id, score."),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Decision threshold (default: the model card's)."
    ),
    text_col: str | None = typer.Option(None, "--text-col"),
    label_col: str | None = typer.Option(None, "--label-col"),
    positive: str | None = typer.Option(
        None, "--positive", help="Label values that count as positive, comma-separated."
    ),
    device: str = typer.Option("auto", "--device", help="bert: auto, cpu or cuda."),
):
    """Score a file with one model; print precision, recall, F1 and AUC when it has labels."""
    from winnow.eval_classifiers import eval_classifier

    try:
        started = time.perf_counter()
        result = eval_classifier(
            model,
            str(input),
            str(predictions),
            threshold=threshold,
            device=device,
            text_col=text_col,
            label_col=label_col,
            positive=_positive(positive),
        )
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None
    seconds = time.perf_counter() - started
    out.print(
        f"{model}: {result.predictions.num_rows:,} rows scored in {seconds:.1f}s; predictions: {predictions}",
        highlight=False,
    )
    if result.overall is not None:
        out.print(result.overall.line(), highlight=False)


@eval_app.command("safety")
def eval_safety_cmd(
    config: Path = typer.Option(
        ...,
        "--config",
        "-c",
        exists=True,
        dir_okay=False,
        help="Pipeline YAML with a `safety` stage (or a YAML of its settings).",
    ),
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        help="Parquet or CSV with `id`, `text`, optional `label` 0/1 and `lang`.",
    ),
    predictions: Path = typer.Option(
        ..., "--predictions", "-p", help="Parquet to write: id, score, unsafe (and each member's score)."
    ),
    lang: str | None = typer.Option(
        None, "--lang", help="Language of every row (when the file has no `lang` column)."
    ),
    text_col: str | None = typer.Option(None, "--text-col"),
    label_col: str | None = typer.Option(None, "--label-col"),
    positive: str | None = typer.Option(
        None, "--positive", help="Label values that count as positive, comma-separated."
    ),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=1, help="CPUs for the embedded local Ray."),
):
    """Run the configured safety ensemble (ingest + safety stage on Ray, keep mode) on a labelled file;
    print precision, recall, F1 and AUC of each member and of the ensemble."""
    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import PipelineError
    from winnow.eval_classifiers import eval_safety

    try:
        ensure_ray(None, num_cpus=num_cpus)
        started = time.perf_counter()
        result = eval_safety(
            str(config),
            str(input),
            str(predictions),
            lang=lang,
            text_col=text_col,
            label_col=label_col,
            positive=_positive(positive),
            workers=workers,
            console=console,
        )
    except (ValueError, FileNotFoundError, RuntimeError, PipelineError, ConfigError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2 if isinstance(err, ValueError) else 1) from None
    seconds = time.perf_counter() - started
    unsafe = int(np.asarray(result.predictions.column("unsafe").to_numpy(zero_copy_only=False)).sum())
    out.print(
        f"safety: {result.predictions.num_rows:,} rows, {unsafe:,} unsafe, {seconds:.1f}s; predictions: {predictions}",
        highlight=False,
    )
    for name, scores in result.members.items():
        out.print(f"  member {name:<10} {scores.line()}", highlight=False)
    if result.overall is not None:
        out.print(f"  ensemble   {result.overall.line()}", highlight=False)


@app.command()
def pretrain(
    config: Path = typer.Argument(..., help="Pretraining YAML, e.g. configs/pretrain_tiny.yaml."),
    data: list[str] | None = typer.Option(
        None, "--data", "-d", help="Training shards (folders or files), instead of the config's."
    ),
    output: str | None = typer.Option(None, "--output", "-o", help="Run folder, instead of the config's."),
    tokens: int | None = typer.Option(None, "--tokens", min=1, help="Token budget, instead of the config's."),
    workers: int | None = typer.Option(None, "--workers", "-w", min=1, help="Data-parallel workers (Ray Train)."),
):
    """Train the configured LLaMA-style model on shards sampled by weight; resumes from the run folder's last
    checkpoint; prints held-out loss and bits per byte per source and language."""
    from stages.pretrain.config import load_pretrain_config
    from stages.pretrain.train import run_pretrain

    try:
        cfg = load_pretrain_config(
            config, data=data or None, output=output, train__tokens=tokens, train__workers=workers
        )
        result = run_pretrain(cfg, log=lambda m: console.print(m, highlight=False))
    except (ConfigError, FileNotFoundError, ValueError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None
    if "eval" in result:
        out.print(
            _eval_table(
                result["eval"],
                f"held-out loss after {result['last']['tokens']:,} tokens ({result['params']:,} parameters)",
            )
        )
    out.print(
        f"run folder: [bold]{cfg.output}[/bold] (tokenizer.json, heldout.json, checkpoints/, metrics.jsonl, eval.json)"
    )


def _eval_table(results: dict, title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("held-out group", "docs", "tokens", "loss", "bits/byte"):
        table.add_column(col, justify="left" if col == "held-out group" else "right")
    for group, r in results.items():
        table.add_row(group, f"{r['docs']:,}", f"{r['tokens']:,}", f"{r['loss']:.4f}", f"{r['bpb']:.4f}")
    return table


@app.command()
def ablate(
    raw: list[str] = typer.Option(..., "--raw", help="One side: Parquet shards, e.g. a run's 00_ingest folder."),
    clean: list[str] = typer.Option(..., "--clean", help="The other side: Parquet shards, e.g. a run's export."),
    evals: list[str] = typer.Option(
        [],
        "--eval",
        help="NAME=PATH, repeatable: an evaluation domain (JSONL, JSONL.gz or Parquet with `text`), kept out of "
        "both sides by the decontaminate stage. Without any: held-out documents of --clean, with a warning.",
    ),
    seeds: int | None = typer.Option(
        None, "--seeds", min=1, help="Runs per side (default: the config's ablate.seeds)."
    ),
    tokens: int | None = typer.Option(
        None, "--tokens", min=1, help="Training tokens of every run (default: the config's train.tokens)."
    ),
    config: Path = typer.Option(
        Path("configs/pretrain_ablate_cpu.yaml"),
        "--config",
        "-c",
        help="Model, training and ablate settings (its data and output are replaced).",
    ),
    output: str = typer.Option("out/ablation", "--output", "-o", help="Folder for the runs and ablation.md/json."),
    raw_label: str = typer.Option("raw", "--raw-label", help="What to call the --raw side in the table."),
    clean_label: str = typer.Option("clean", "--clean-label", help="What to call the --clean side in the table."),
    num_cpus: int | None = typer.Option(None, "--num-cpus", min=1, help="CPUs for the embedded local Ray."),
    also: list[str] = typer.Option(
        [],
        "--also",
        help="NAME=DIR, repeatable: another side compared with --clean like --raw (e.g. a leave-one-out run's "
        "export). One tokenizer from all sides; --clean is trained once for every comparison; each is written "
        "to OUTPUT/also/NAME/.",
    ),
):
    """Train the same model K times on each side (same tokens, schedule and tokenizer, learnt from both), after
    decontaminating both against the eval domains; print each domain's loss, mean ± std over seeds, and
    whether the difference beats the spread."""
    from rich.table import Table

    from pipeline.ray_setup import ensure_ray
    from pipeline.runner import PipelineError
    from stages.pretrain.ablate import ablate as run_ablation
    from stages.pretrain.ablate_data import parse_also, parse_evals
    from stages.pretrain.config import load_pretrain_config

    try:
        base = load_pretrain_config(config, data=clean, output=output, train__tokens=tokens, ablate__seeds=seeds)
        domains = parse_evals(evals)
        more = parse_also(also, taken=(raw_label, clean_label))
        ensure_ray(None, num_cpus=num_cpus)
        summary = run_ablation(
            base,
            raw,
            clean,
            domains,
            output,
            labels={"raw": raw_label, "clean": clean_label},
            also=more,
            log=lambda m: console.print(m, highlight=False, markup=False),
        )
    except (ConfigError, FileNotFoundError, ValueError, PipelineError) as err:
        console.print(f"[red]error:[/red] {err}", highlight=False)
        raise typer.Exit(2) from None
    table = Table(
        title=f"held-out loss per domain, mean ± std over {summary['seeds']} seed(s), "
        f"after {summary['train_tokens']:,} tokens ({summary['params']:,} parameters); delta = {clean_label} - {raw_label}",
        title_justify="left",
    )
    for col in ("domain", "docs", f"{raw_label} loss", f"{clean_label} loss", "delta", "beyond spread"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for r in [*summary["domains"], summary["mean"]]:
        colour = "green" if r["delta_loss"] < 0 else "red"
        table.add_row(
            r["name"],
            f"{r['docs']:,}",
            f"{r['raw_loss']:.3f} ± {r['raw_std']:.3f}",
            f"{r['clean_loss']:.3f} ± {r['clean_std']:.3f}",
            f"[{colour}]{r['delta_loss']:+.3f}[/{colour}]",
            r["verdict"] if r["beyond_spread"] else "no",
        )
    out.print(table)
    out.print(f"written: {output}/ablation.md, {output}/ablation.json")
    for name in more:
        m = json.loads((Path(output) / "also" / name / "ablation.json").read_text())["mean"]
        verdict = m["verdict"] if m["beyond_spread"] else "within spread"
        out.print(
            f"{name}: mean {m['raw_loss']:.3f}, {clean_label} {m['clean_loss']:.3f}, delta {m['delta_loss']:+.3f} "
            f"({verdict}); written: {output}/also/{name}/ablation.md",
            highlight=False,
        )


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
