"""The docs name only things that exist: every repository path and every markdown link
and anchor in README.md, docs/ and the package READMEs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from helpers import REPO

DOCS = sorted(
    [
        REPO / "README.md",
        *(REPO / "docs").glob("*.md"),
        *REPO.glob("packages/*/README.md"),
        *REPO.glob("apps/*/README.md"),
    ]
)
# a path into the repository, as the docs write them: `packages/hlt-data/README.md`
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:packages|tests|docs|apps|configs|scripts|benchmarks|examples)/[\w./-]*[\w/])"
)
LINK = re.compile(r"\]\(([^)\s]+)\)")
# what `hlt new model my_net` (docs/packages.md's example) would create
MADE_BY_EXAMPLES = re.compile(r"^packages/hlt-my-")


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    text = markdown.read_text()
    headings = re.findall(r"^#+\s+(.*)$", text, flags=re.M)
    return {github_anchor(h) for h in headings} | set(re.findall(r'<a (?:name|id)="([^"]+)"', text))


def names(doc: Path) -> str:
    return str(doc.relative_to(REPO))


@pytest.mark.parametrize("doc", DOCS, ids=names)
def test_every_repository_path_a_doc_names_exists(doc):
    named = {m.group(1) for m in REPO_PATH.finditer(doc.read_text())}
    missing = sorted(p for p in named if not MADE_BY_EXAMPLES.match(p) and not (REPO / p).exists())
    assert missing == [], f"{names(doc)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=names)
def test_every_markdown_link_and_anchor_a_doc_names_exists(doc):
    broken = []
    for link in LINK.findall(doc.read_text()):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = link.partition("#")
        target = (doc.parent / file).resolve() if file else doc
        found = target.exists() and (
            not anchor or target.suffix != ".md" or anchor in anchors(target)
        )
        if not found:
            broken.append(link)
    assert broken == [], f"{names(doc)} links to what does not exist: {broken}"


def test_the_anchor_rule_matches_githubs():
    assert github_anchor("Synthetic tasks against the published figures") == (
        "synthetic-tasks-against-the-published-figures"
    )
    assert github_anchor("Run a sweep on many machines") == "run-a-sweep-on-many-machines"
    assert github_anchor("Hydra 1.4 (`hydra14`)") == "hydra-14-hydra14"


def test_every_nox_session_is_listed_with_a_whole_sentence():
    """`nox -l` shows the first line of each session's docstring."""
    tree = ast.parse((REPO / "noxfile.py").read_text())
    sessions = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
        and any("session" in ast.unparse(d) for d in node.decorator_list)
    ]
    assert len(sessions) >= 8
    cut = [
        s.name for s in sessions if not (ast.get_docstring(s) or "").splitlines()[0].endswith(".")
    ]
    assert cut == [], f"nox -l would cut these sessions' descriptions mid-sentence: {cut}"
