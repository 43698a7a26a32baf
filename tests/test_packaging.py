"""The project's own promises: two commands, CI calling them, conda and pip in sync, README accurate."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def requirement_name_and_spec(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement)
    return match.group(1).lower().replace("_", "-"), match.group(2).replace(" ", "")


def conda_dependencies() -> dict[str, str]:
    entries = {}
    section = None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^\w", line):
            section = line.split(":")[0]
        # a conda package, or a package its pip installs in the environment
        match = re.match(r"^  - ([A-Za-z0-9_.\-]+)(.*)$", line) or re.match(
            r"^      - ([A-Za-z][A-Za-z0-9_.\-]*)(.*)$", line
        )
        if section == "dependencies" and match:
            entries[match.group(1).lower()] = match.group(2).strip()
    return entries


def test_environment_yml_has_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    conda = conda_dependencies()
    expected = {}
    for requirement in requirements:
        name, spec = requirement_name_and_spec(requirement)
        expected[CONDA_NAMES.get(name, name)] = spec
    extra = set(conda) - set(expected) - {"python", "pip"}
    assert not extra, f"environment.yml lists packages pyproject.toml does not: {sorted(extra)}"
    for name, spec in expected.items():
        assert name in conda, f"environment.yml is missing {name}{spec}"
        assert conda[name] == spec, f"{name}: pyproject.toml says {spec!r}, environment.yml says {conda[name]!r}"
    assert conda["python"] == project["requires-python"]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", ci, re.M)
    assert "make lab" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^lab:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_readme_lists_every_notebook_and_only_those():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"\(notebooks/(\d\d_\w+\.ipynb)\)", readme))
    present = {p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert listed == present


def test_generated_data_is_ignored_by_git():
    ignore = (ROOT / ".gitignore").read_text()
    assert "data/*" in ignore and "!data/README.md" in ignore
