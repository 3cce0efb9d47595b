"""Keeping README.md's generated parts (lifecycle diagram, demo accounts) in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def block(name: str, text: str) -> str:
    return f"<!-- {name}:start -->\n{text}\n<!-- {name}:end -->"


def read_block(name: str, readme: str) -> str | None:
    m = re.search(rf"<!-- {name}:start -->\n(.*?)\n?<!-- {name}:end -->", readme, re.S)
    return m.group(1) if m else None


def diagram_block() -> str:
    from workflow.lifecycle import mermaid

    return f"```mermaid\n{mermaid()}\n```"


def accounts_block() -> str:
    from webapp.demo import DEMO_ACCOUNTS

    rows = ["| role | e-mail | password |", "|---|---|---|"]
    rows += [f"| {role} | `{email}` | `{password}` |" for role, email, password, _name in DEMO_ACCOUNTS]
    return "\n".join(rows)


def render(readme: str) -> str:
    for name, text in (("lifecycle-diagram", diagram_block()), ("demo-accounts", accounts_block())):
        readme = re.sub(rf"<!-- {name}:start -->.*?<!-- {name}:end -->", lambda _m, n=name, t=text: block(n, t),
                        readme, flags=re.S)
    return readme


if __name__ == "__main__":  # python -m webapp.readme  rewrites the generated blocks
    README.write_text(render(README.read_text(encoding="utf-8")), encoding="utf-8")
    print("README.md updated")
