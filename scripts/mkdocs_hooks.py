"""MkDocs hook: docs/cli.md's marker becomes the CLI reference generated from the parser, so
the reference can never drift from the flags."""

from __future__ import annotations

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown, page, config, files):  # noqa: ARG001 (MkDocs' hook signature)
    if MARKER not in markdown:
        return markdown
    from gwas_glmm.cli.reference import cli_markdown

    return markdown.replace(MARKER, cli_markdown())
