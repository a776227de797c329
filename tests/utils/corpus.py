"""The shared corpus of real HTML e-mails, read in place (never copied into the project)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CORPUS_EMAILS = PROJECT_ROOT.parent / "shared" / "corpus" / "emails"


def corpus_files() -> list[Path]:
    """Every ``*.html`` of the corpus, sorted, so test ids are stable."""
    return sorted(CORPUS_EMAILS.rglob("*.html"))
