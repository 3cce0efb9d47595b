"""README.md shows what the code does: the lifecycle diagram and the demo accounts are generated from
the code; regenerate with `python -m webapp.readme` when they change."""

from webapp import readme


def test_readme_diagram_is_the_lifecycle_table():
    text = readme.README.read_text(encoding="utf-8")
    assert readme.read_block("lifecycle-diagram", text) == readme.diagram_block(), (
        "README.md's state diagram differs from workflow/lifecycle.py; run: python -m webapp.readme"
    )


def test_readme_lists_the_demo_accounts():
    text = readme.README.read_text(encoding="utf-8")
    assert readme.read_block("demo-accounts", text) == readme.accounts_block(), (
        "README.md's demo accounts differ from webapp/demo.py; run: python -m webapp.readme"
    )


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    text = readme.README.read_text(encoding="utf-8")
    assert "`make run`" in text and "`make test`" in text
    ci = (readme.README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
