"""Every command example of README.md and docs/*.md that invokes the project's command lines works
as written on a fresh checkout after the README's set-up.

The examples are read from those files, not copied here, so a new or changed example is run without
editing this file; a Markdown file elsewhere in the checkout that holds one is read too or named in
NOT_READ with the reason (`test_every_document_with_examples_is_read`). An example is
- a fenced code block (untagged or shell) in which a line invokes `dagster`, `dg`, `mlplatform` or
  `make`, anywhere in the line (`cd x && uv run mlplatform report` too): its lines, in order (a
  `curl` after a server queries it);
- an inline code span that invokes one of them with arguments (`dagster job backfill -w ...`); a
  span naming only a command (`dagster dev`, `mlplatform report`) is a mention, not an example.
Each runs on a fresh state (`test_readme_example_works_as_written`), unless NOT_RUN_HERE lists it
with the reason; one that cannot run as written (not from .venv/bin, a placeholder, a line of a
kind this test does not know) fails `test_every_readme_example_runs_as_written_or_says_why_not`.

A fresh state: a folder holding the checkout's tracked files (linked), the installed `.venv`, and
`.mlplatform/dagster_home` made by the Makefile's own set-up target; data and MLflow under the
test's temporary folder; the commands run there with bash, so `$PWD` is that folder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.request
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import dagster as dg
import pytest

from mlplatform_tests.conftest import platform_environment
from mlplatform_tests.servers import (
    free_port,
    require_executable,
    start_process,
    stop_process_group,
    wait_until,
)

PROJECT = Path(__file__).resolve().parents[1]
README = PROJECT / "README.md"
DOCS = PROJECT / "docs"
# Markdown files with command examples that are not run here, by path, and why.
NOT_READ = {
    # Docker's examples (deploy-pipeline.sh, docker compose exec, the backups) need a Docker engine,
    # which the build machine does not have: test_deployment.py runs deploy-pipeline.sh through a
    # stand-in `docker` and the production instance and MLflow server for real.
    "docker/README.md": "needs a Docker engine, covered by test_deployment.py",
    # Helm on a Kubernetes cluster: test_deployment.py checks the values against the compose stack.
    "docker/k8s/README.md": "needs a Kubernetes cluster, covered by test_deployment.py",
}
CLIS = ("dagster", "dg", "mlplatform", "make")
# What the Dagster CLI prints for a preview or beta feature the platform relies on: filtered once
# where the definitions load, so no command prints it.
NOTICES = ("PreviewWarning", "BetaWarning")

# Examples not run here, by their exact text (a changed example is no longer skipped), and why.
NOT_RUN_HERE = {
    # A server that runs until stopped, on a user's dataset folder: test_ui.py starts what `make
    # dev` starts; test_dataset_folder.py takes a dataset folder named by MLPLATFORM_DATASET to a
    # champion.
    "MLPLATFORM_DATASET=/path/to/my_data make dev": "long-running server, covered elsewhere",
    # The same server with an incident injected (<incident> is a placeholder): test_gates.py and
    # test_pipeline.py run each incident through the gates.
    "MLPLATFORM_GENERATOR_INCIDENT=<incident> make dev": "long-running server, covered elsewhere",
    # Asks for confirmation before queueing runs for the daemon: test_cli.py runs it with
    # --noprompt and checks the runs it queues; test_daemon.py and test_backfill.py run them.
    "MLFLOW_DISABLE_TELEMETRY=true DAGSTER_HOME=$PWD/.mlplatform/dagster_home .venv/bin/dagster "
    "job backfill -w workspace.yaml -j training_pipeline --from 2026-03-01 --to 2026-03-07": (
        "interactive, covered elsewhere"
    ),
    # What test_ui.py starts (named to say so): a server, run and browsed there.
    "dagster dev -w workspace.yaml": "long-running server, covered elsewhere",
}


# Long-running commands: started in the background on a free port (replacing the port the
# example names, wherever its block names it, or added), waited for until they are ready (given
# their address), queried by the lines after them in their block, then stopped with their children.
def metrics_served(address: str) -> bool:
    return answers(f"{address}/metrics")


def code_location_loaded(address: str) -> bool:
    """The UI answers and has loaded the project's definitions without error."""
    query = (
        "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
        "locationOrLoadError { __typename } } } } }"
    )
    request = urllib.request.Request(
        f"{address}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            entries = json.loads(response.read())["data"]["workspaceOrError"]["locationEntries"]
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return bool(entries) and all(
        entry["loadStatus"] == "LOADED"
        and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation"
        for entry in entries
    )


SERVERS = {
    "mlplatform exporter": metrics_served,
    "dg dev": code_location_loaded,
}

# Files a user brings: the examples that read them find them in the checkout's folder.
USER_FILES = ("sample.csv",)


@dataclass(frozen=True)
class Example:
    line: int  # of its document, where it starts
    commands: tuple[str, ...]
    inline: bool = False
    document: str = "README.md"  # relative to the checkout

    @property
    def id(self) -> str:
        words = [w for w in shlex.split(self.commands[0]) if "=" not in w.split("/")[0]]
        return "-".join([Path(self.document).stem, *(Path(w).name for w in words[:3])])


# A command line that starts with one of them (after variables set for it): what is run.
INVOCATION = re.compile(
    r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(?:\.venv/bin/)?(?P<cli>" + "|".join(CLIS) + r")(?:\s|$)"
)
# One of them invoked anywhere in a line (`cd x && mlplatform report`, `uv run dagster dev`): the
# line is an example, to be run or refused, never passed over.
INVOKED = re.compile(r"(?:^|[\s;&|(=])(?:\S*/)?(?:" + "|".join(CLIS) + r")\s+[a-z][\w-]*(?:\s|$)")


def logical_lines(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The block's commands: continued lines joined, comments and blank lines dropped."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in block:
        start, sofar = pending if pending else (number, "")
        text = sofar + text.strip()
        if text.endswith("\\"):
            pending = (start, text[:-1].rstrip() + " ")
            continue
        pending = None
        command = re.sub(r"(^|\s)#.*$", "", text).strip()
        if command:
            joined.append((start, command))
    return joined


def readme_examples(text: str, document: str = "README.md") -> list[Example]:
    """A document's examples of the project's command lines, in order."""
    examples: list[Example] = []
    fence: str | None = None
    block: list[tuple[int, str]] = []
    prose: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            if fence is None:
                fence, block = line[3:].strip(), []
                continue
            if fence in ("", "sh", "bash", "shell", "console"):
                commands = logical_lines(block)
                if any(INVOKED.search(command) for _, command in commands):
                    examples.append(
                        Example(commands[0][0], tuple(c for _, c in commands), document=document)
                    )
            fence = None
        elif fence is not None:
            block.append((number, line))
        else:
            prose.append((number, line))
    # Inline spans may run over a line break, not over a paragraph or a table row.
    paragraphs: list[list[tuple[int, str]]] = [[]]
    after_a_row = False
    for number, line in prose:
        a_row = line.lstrip().startswith("|")
        if not line.strip() or a_row or after_a_row:
            paragraphs.append([])
        paragraphs[-1].append((number, line))
        after_a_row = a_row
    for paragraph in paragraphs:
        joined = "\n".join(line for _, line in paragraph)
        for found in re.finditer(r"`([^`]+)`", joined):
            span = re.sub(r"\s*\n\s*", " ", found.group(1)).strip()
            if INVOKED.search(span) and not is_a_mention(span):
                line = paragraph[joined.count("\n", 0, found.start())][0]
                examples.append(Example(line, (span,), inline=True, document=document))
    return sorted(examples, key=lambda example: example.line)


def is_a_mention(span: str) -> bool:
    """`dagster dev`, `mlplatform report`: a command named, without anything to run it with."""
    return all(re.fullmatch(r"[a-z][a-z-]*", word) for word in span.split())


def documents() -> list[Path]:
    """The files whose examples run here: README.md and every Markdown file in docs/."""
    return [README, *sorted(DOCS.glob("*.md"))]


def every_example() -> list[Example]:
    return [
        example
        for path in documents()
        for example in readme_examples(path.read_text(), str(path.relative_to(PROJECT)))
    ]


def example_params() -> list:
    return [
        pytest.param(example, id=example.id)
        for example in every_example()
        if " && ".join(example.commands) not in NOT_RUN_HERE
    ]


# The fresh checkout -----------------------------------------------------------------------------


def fresh_checkout(root: Path) -> Path:
    """A folder like a fresh clone after the set-up: the tracked files (linked), the installed
    environment, and what the Makefile's set-up target makes (run as the Makefile has it)."""
    checkout = root / "checkout"
    checkout.mkdir()
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in sorted({path.split("/")[0] for path in tracked} | {".venv", ".tools", ".git"}):
        (checkout / name).symlink_to(PROJECT / name)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    setup = subprocess.run(
        ["make", "--no-print-directory", f"{checkout}/.mlplatform/dagster_home/dagster.yaml"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (checkout / ".mlplatform" / "dagster_home" / "dagster.yaml").is_file()
    return checkout


def write_user_files(checkout: Path) -> None:
    """The sample a user drafts a dataset from: a benchmark dataset with an id and dates."""
    from mlplatform_tests.benchmarks.quality import DATASETS, load_frame

    frame, _ = load_frame(next(d for d in DATASETS if d.item == "credit_data"))
    frame.to_csv(checkout / "sample.csv", index=False)


def example_environment(root: Path) -> dict[str, str]:
    """The test session's environment (its short retries and small model search), with data
    and MLflow in the temporary folder and no DAGSTER_HOME but the one an example sets."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(platform_environment(root))
    return env


def server_of(command: str) -> str | None:
    words = [w for w in shlex.split(command) if "=" not in w.split("/")[0]]
    named = f"{Path(words[0]).name} {words[1]}" if len(words) > 1 else ""
    return named if named in SERVERS else None


def with_free_port(commands: tuple[str, ...]) -> tuple[str, ...]:
    """A server's port, named or Dagster's default, replaced by a free one in the whole block."""
    port = str(free_port())
    first = next(c for c in commands if server_of(c))
    named = re.search(r"--port[ =](\d+)", first)
    if named is None:
        return tuple(f"{c} --port {port}" if c == first else c for c in commands)
    return tuple(re.sub(rf"\b{named.group(1)}\b", port, c) for c in commands)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def run_line(command: str, checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def check_printed(command: str, printed: str) -> None:
    for notice in NOTICES:
        assert notice not in printed, f"{command} printed a {notice}:\n{printed[-3000:]}"


# What an example leaves behind, beyond its exit status -------------------------------------------


def every_asset_materialized(command: str, checkout: Path, printed: str) -> None:
    """`asset materialize --select '*' --partition D`: every asset of the graph written for D,
    every quality gate passed on the default data but the calibration warning, which names the
    bins a sigmoid misses on a one-day window (docs/model-selection.md, calibration)."""
    failed = set(re.findall(r"Asset check '(\w+)' on '(\w+)' did not pass", printed))
    assert failed <= {("calibrated", "trained_model")}, printed[-3000:]
    partition = re.search(r"--partition[ =](\S+)", command).group(1)
    with dg.DagsterInstance.from_config(str(checkout / ".mlplatform" / "dagster_home")) as instance:
        written = {
            key.to_user_string()
            for key in instance.get_asset_keys()
            if partition in instance.get_materialized_partitions(key)
        }
    assert written == {
        "raw_transactions", "validated_transactions", "quarantined_transactions", "features",
        "trained_model", "registered_model_version", "batch_scores", "shadow_scores", "outcomes",
        "quarantined_outcomes", "model_performance",
    }  # fmt: skip


def folder_written(command: str, checkout: Path, printed: str) -> None:
    out = checkout / shlex.split(command)[-1]
    assert out.is_dir() and any(out.iterdir()), f"{command}: nothing written to {out}"


AFTERWARDS = {
    "dagster asset materialize": every_asset_materialized,
    "mlplatform diagram": folder_written,
    "mlplatform evidence": folder_written,
}


def afterwards(command: str, checkout: Path, printed: str) -> None:
    words = [w for w in shlex.split(command) if "=" not in w.split("/")[0]]
    for prefix, check in AFTERWARDS.items():
        if " ".join([Path(words[0]).name, *words[1:]]).startswith(prefix):
            check(command, checkout, printed)


# The tests ---------------------------------------------------------------------------------------


def not_runnable(examples: list[Example]) -> list[str]:
    """What keeps an example from running as written on a fresh checkout (those in NOT_RUN_HERE
    aside), and the entries of NOT_RUN_HERE that no longer match an example."""
    found = {" && ".join(example.commands) for example in examples}
    problems = [
        f"NOT_RUN_HERE names `{gone}`, no longer in a document read here"
        for gone in NOT_RUN_HERE
        if gone not in found
    ]
    for example in examples:
        if " && ".join(example.commands) in NOT_RUN_HERE:
            continue
        for command in example.commands:
            where = f"{example.document} line {example.line}: `{command}`"
            if INVOCATION.match(command) is None:
                # A query of the server its block started, run while that server runs.
                if not any(server_of(c) for c in example.commands):
                    problems.append(f"{where}: not a command this test knows how to run")
            elif not re.search(r"(?:^|\s)\.venv/bin/\w", command):
                problems.append(
                    f"{where} does not run on a fresh checkout: the project's tools are in "
                    ".venv/bin (or list it in NOT_RUN_HERE, saying why)"
                )
            elif re.search(r"[<>\[\]]|/path/to/", command):
                problems.append(f"{where} holds a placeholder or an optional part")
    return problems


def test_every_readme_example_runs_as_written_or_says_why_not() -> None:
    examples = every_example()
    assert not_runnable(examples) == []
    assert len(example_params()) >= 8


def test_every_document_with_examples_is_read() -> None:
    """Moving an example to another Markdown file never takes it out of this test: every file of
    the checkout that holds one is read here, or NOT_READ says why not."""
    read = {str(path.relative_to(PROJECT)) for path in documents()}
    assert len(read) > 1, "docs/ holds no Markdown file"
    on_disk = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert set(NOT_READ) <= set(on_disk), "NOT_READ names a file that is not there"
    unread = [
        path
        for path in on_disk
        if path not in read
        and path not in NOT_READ
        and (PROJECT / path).is_file()
        and readme_examples((PROJECT / path).read_text(), path)
    ]
    assert unread == [], f"command examples no test runs, in {unread}"


def test_an_example_that_cannot_run_as_written_is_named() -> None:
    text = """
Draft it: `mlplatform dataset init sample.csv my_data`.

```
DAGSTER_HOME=$PWD/h .venv/bin/mlplatform report [--days 7]
.venv/bin/mlplatform evidence out
ls out
```

```
cd docker && uv run mlplatform report
```
"""
    assert not_runnable(readme_examples(text)) == [
        *(f"NOT_RUN_HERE names `{g}`, no longer in a document read here" for g in NOT_RUN_HERE),
        "README.md line 2: `mlplatform dataset init sample.csv my_data` does not run on a fresh "
        "checkout: the project's tools are in .venv/bin (or list it in NOT_RUN_HERE, saying why)",
        "README.md line 5: `DAGSTER_HOME=$PWD/h .venv/bin/mlplatform report [--days 7]` holds a "
        "placeholder or an optional part",
        "README.md line 5: `ls out`: not a command this test knows how to run",
        "README.md line 11: `cd docker && uv run mlplatform report`: not a command this test "
        "knows how to run",
    ]


def test_mentions_and_examples_are_told_apart() -> None:
    text = """
`dagster dev` starts it; `mlplatform report` prints; `DAGSTER_HOME=$PWD/h .venv/bin/dg dev` too.

```
.venv/bin/mlplatform exporter --port 9464
curl -s http://127.0.0.1:9464/metrics
```

```
my_data/
  contract.yaml
```

```yaml
run: .venv/bin/dagster dev
```
"""
    examples = readme_examples(text)
    assert [(e.line, e.commands, e.inline) for e in examples] == [
        (2, ("DAGSTER_HOME=$PWD/h .venv/bin/dg dev",), True),
        (5, (".venv/bin/mlplatform exporter --port 9464",
             "curl -s http://127.0.0.1:9464/metrics"), False),
    ]  # fmt: skip
    exporter, query = with_free_port(examples[1].commands)
    assert exporter.split()[-1] == query.split(":")[-1].split("/")[0] != "9464"
    assert re.search(r"--port \d+$", with_free_port(examples[0].commands)[0])


@pytest.mark.slow
@pytest.mark.parametrize("example", example_params())
def test_readme_example_works_as_written(example: Example, tmp_path: Path) -> None:
    checkout = fresh_checkout(tmp_path)
    env = example_environment(tmp_path)
    commands = example.commands
    if any(name in command for command in commands for name in USER_FILES):
        write_user_files(checkout)
    if any(" diagram " in f"{c} " or " evidence " in f"{c} " for c in commands):
        require_executable("dot", "graphviz")
    if any(server_of(command) for command in commands):
        commands = with_free_port(commands)
    servers = []
    try:
        for command in commands:
            server = server_of(command)
            if server:
                log = tmp_path / f"{server.replace(' ', '_')}.log"
                process = start_process(["bash", "-c", command], log, env, checkout)
                servers.append((process, log))
                port = re.search(r"--port[ =](\d+)", command).group(1)
                ready = partial(SERVERS[server], f"http://127.0.0.1:{port}")
                wait_until(ready, 180, f"{command} ready", process, log)
                continue
            result = run_line(command, checkout, env)
            printed = result.stdout + result.stderr
            assert result.returncode == 0, (
                f"{example.document} line {example.line}: {command}\n{printed[-4000:]}"
            )
            check_printed(command, printed)
            if servers and INVOCATION.match(command) is None:
                assert result.stdout.strip(), f"{command}: the server's answer is empty"
            afterwards(command, checkout, printed)
    finally:
        for process, _ in servers:
            stop_process_group(process, timeout=10)
    for _, log in servers:
        check_printed(" ".join(commands), log.read_text(errors="replace"))
