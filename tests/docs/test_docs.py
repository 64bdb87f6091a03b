"""The docs stay true to the code: relative links and #anchors resolve, the README stays a short guide, every
`python -m svc_core <command>` exists in the CLI (and every command is in docs/cli.md's table), every `app.py --option`
exists in app.py's parser (and every one of its options is in docs/web.md's options section)."""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from svc_core.cli import RUNNERS
from svc_core.ui.settings import REPO_ROOT, build_parser

README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
README_MAX_LINES = 200  # the README is a short guide; everything else goes to docs/
WEB_OPTIONS_HEADING = "Options of app.py"  # docs/web.md's section listing every option

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
CLI_COMMAND = re.compile(r"-m svc_core ([a-z][a-z0-9-]*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def doc_files() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def _prose(text: str) -> str:
    """The text without fenced code blocks (links in code are not links); line numbers are kept."""
    out, in_fence = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            out.append("")
            continue
        out.append("" if in_fence else line)
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup and punctuation dropped, lower case, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*~]|<[^>]+>", "", text).strip().lower()
    kept = "".join(ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in "LNM" or ch == "_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a markdown file (repeated headings get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    for line in _prose(path.read_text(encoding="utf-8")).splitlines():
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            if count:
                seen.setdefault(f"{base}-{count}", 1)
    return set(seen)


def links(path: Path) -> list[tuple[int, str]]:
    found = []
    for number, line in enumerate(_prose(path.read_text(encoding="utf-8")).splitlines(), 1):
        found += [(number, m.group(1)) for m in LINK.finditer(line)]
    return found


def broken_links(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """'file:line: target (why)' for each relative link or anchor that does not resolve (file named from root)."""
    problems = []
    for number, target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(root)}:{number}: {target}"
        if not dest.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where} (no heading with that anchor in {dest.name})")
    return problems


def test_docs_exist():
    names = {p.name for p in DOCS.glob("*.md")}
    assert {"README.md", "cli.md", "web.md", "api.md", "onnx-and-precision.md", "training.md", "starter-voices.md",
            "compatibility.md", "public-link.md", "benchmarks.md", "testing.md"} <= names


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_and_anchors_resolve(path):
    assert links(path), f"{path.name} links nowhere"  # every page links into the others (and proves the regex)
    assert broken_links(path) == []


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; move details to docs/ (limit {README_MAX_LINES})"


def test_docs_index_lists_every_page():
    listed = {target.partition("#")[0] for _, target in links(DOCS / "README.md")}
    missing = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in listed]
    assert not missing, f"docs/README.md does not link {missing}"


def cli_commands_mentioned() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in doc_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for command in CLI_COMMAND.findall(line):
                found.setdefault(command, []).append(f"{path.relative_to(REPO_ROOT)}:{number}")
    return found


def test_every_cli_command_mentioned_exists():
    mentioned = cli_commands_mentioned()
    assert "infer" in mentioned  # the pattern finds what is there
    unknown = {command: where for command, where in mentioned.items() if command not in RUNNERS}
    assert not unknown, f"commands not in svc_core/cli.py RUNNERS: {unknown}"


def app_options() -> set[str]:
    return {s for action in build_parser()._actions for s in action.option_strings if s.startswith("--")}


def app_options_mentioned() -> dict[str, list[str]]:
    """--options on lines that start app.py (or `make demo ARGS=...`), and in docs/web.md's options section."""
    found: dict[str, list[str]] = {}

    def add(option: str, where: str) -> None:
        found.setdefault(option, []).append(where)

    for path in doc_files():
        section = ""
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            heading = HEADING.match(line)
            if heading:
                section = heading.group(2)
            where = f"{path.relative_to(REPO_ROOT)}:{number}"
            for start in [m.end() for m in re.finditer(r"app\.py|make demo", line)][:1]:
                for option in OPTION.findall(line[start:]):
                    add(option, where)
            if path.name == "web.md" and section == WEB_OPTIONS_HEADING:
                for option in OPTION.findall(line):
                    add(option, where)
    return found


def test_every_app_option_mentioned_exists():
    mentioned = app_options_mentioned()
    assert "--auth" in mentioned  # the pattern finds what is there
    unknown = {option: where for option, where in mentioned.items() if option not in app_options() | {"--help"}}
    assert not unknown, f"options app.py does not have (svc_core/ui/settings.py build_parser): {unknown}"


def test_every_app_option_is_documented():
    hidden = {s for action in build_parser()._actions if action.help == "==SUPPRESS==" for s in action.option_strings}
    web = (DOCS / "web.md").read_text(encoding="utf-8")
    assert f"## {WEB_OPTIONS_HEADING}" in web
    documented = {o for o, where in app_options_mentioned().items() if any(w.startswith("docs/web.md") for w in where)}
    missing = sorted(app_options() - hidden - documented - {"--help"})
    assert not missing, f"app.py options missing from docs/web.md's '{WEB_OPTIONS_HEADING}' section: {missing}"


@pytest.mark.parametrize("heading, anchor", [
    ("Vocoder precision (opt-in)", "vocoder-precision-opt-in"),
    ("Quality (../shared/eval, 24 quick pairs and all 120)", "quality-sharedeval-24-quick-pairs-and-all-120"),
    ("Convert: `infer`", "convert-infer"),
    ("Python API and `svc_core.Svc`", "python-api-and-svc_coresvc"),
])
def test_slug_matches_github(heading, anchor):
    assert slug(heading) == anchor


def test_checker_finds_breakage(tmp_path):
    """A broken file link and a broken anchor are both reported (the checker can fail)."""
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A section\n", encoding="utf-8")
    page.write_text("# Page\n\n[ok](other.md#a-section) [gone](missing.md) [bad](other.md#nope) [self](#page)\n"
                    "```\n[in code](not-checked.md)\n```\n", encoding="utf-8")
    problems = [p.split(": ", 1)[1] for p in broken_links(page, root=tmp_path)]
    assert problems == ["missing.md (no such file)", "other.md#nope (no heading with that anchor in other.md)"]


def test_every_cli_command_is_in_the_cli_page():
    table = (DOCS / "cli.md").read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows, "docs/cli.md has no command table"
    named = {name for row in rows for name in re.findall(r"`([a-z][a-z0-9-]*)`", row.split("|")[1])}
    missing = sorted(set(RUNNERS) - named)
    assert not missing, f"commands missing from docs/cli.md's table: {missing}"
