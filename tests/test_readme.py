"""CI must prove the README: .ci/run runs exactly the README's test command."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands():
    text = (ROOT / "README.md").read_text()
    blocks = text.split("```")
    return [blocks[1].strip(), blocks[3].strip()]


def test_ci_runs_the_readme_test_command():
    _, test_cmd = _commands()
    assert "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_readme_main_job_installs_what_it_needs():
    main_cmd, test_cmd = _commands()
    for cmd in (main_cmd, test_cmd):
        assert cmd.startswith("pip install") and "torch==2.13.0" in cmd
