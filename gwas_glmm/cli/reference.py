"""The CLI reference as Markdown, generated from the parser (docs/cli.md is built from it)."""

from __future__ import annotations

import argparse

from .parser import get_parser


def _flags(action: argparse.Action) -> str:
    names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.dest}`"
    if action.nargs == 0:
        return names
    metavar = action.metavar or (action.dest.upper() if action.option_strings else "")
    if action.choices and not action.metavar:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    if action.nargs in ("+", "*"):
        metavar += " ..."
    return f"{names} {metavar}".strip()


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _help(action: argparse.Action) -> str:
    text = _escape(action.help or "")
    default = action.default
    if action.required:
        text += " (required)"
    elif default not in (None, False, argparse.SUPPRESS) and "default" not in text and action.nargs != 0:
        text += f" (default: `{default}`)"
    return text


def _table(actions) -> list[str]:
    rows = [a for a in actions if a.help != argparse.SUPPRESS and not isinstance(a, argparse._HelpAction)]
    if not rows:
        return []
    return ["| option | meaning |", "|---|---|"] + [f"| {_flags(a)} | {_help(a)} |" for a in rows]


def cli_markdown(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or get_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| [`{name}`](#{name}) | {helps.get(name, '')} |" for name in sub.choices]
    for name, p in sub.choices.items():
        lines += ["", f"## {name}", "", _escape(p.description or helps.get(name, "")), "", "```text",
                  p.format_usage().strip(), "```", ""]
        for group in p._action_groups:
            table = _table(group._group_actions)
            if not table:
                continue
            title = group.title if group.title not in ("options", "optional arguments") else "options"
            lines += [f"**{title}**", "", *table, ""]
    return "\n".join(lines).rstrip() + "\n"
