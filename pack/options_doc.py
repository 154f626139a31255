"""The README's option table, generated from the option specs (`python -m pack.options_doc`)."""

from __future__ import annotations

from pack.options import OPTIONS, OptionSpec


def _default(spec: OptionSpec) -> str:
    if spec.secret:
        return "(none)"
    if spec.boolean_flag:
        return "on" if spec.default else "off"
    return f"`{spec.default}`" if spec.default not in ("", None) else "(none)"


def markdown_table() -> str:
    """One row per option: flag, env var, default, meaning."""
    rows = ["| option | env var | default | meaning |", "| --- | --- | --- | --- |"]
    for spec in OPTIONS:
        flag = f"`{spec.flag}` / `--no-{spec.flag[2:]}`" if spec.boolean_flag else f"`{spec.flag}`"
        rows.append(f"| {flag} | `{spec.env_var}` | {_default(spec)} | {spec.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
