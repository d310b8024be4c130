"""The README opens with the two commands, and CI runs the same test command."""

from geo311.config import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text()
SETUP = (PROJECT_ROOT / "setup.sh").read_text()
CI = (PROJECT_ROOT / ".ci" / "run").read_text()


def test_readme_opens_with_demo_and_test_commands():
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["bash setup.sh demo", "bash setup.sh test"]


def test_ci_runs_the_readme_test_command_with_both_backends_required():
    assert "bash setup.sh test" in CI
    assert "python -m pytest --require-all-backends" in SETUP
    assert "python -m pytest --require-all-backends" in README
    assert "apt-get update" in SETUP
    for package in ("libsqlite3-mod-spatialite", "postgresql-15-postgis-3", "chromium"):
        assert package in SETUP


def test_demo_command_is_the_cli_demo():
    assert "exec geo311 demo" in SETUP
