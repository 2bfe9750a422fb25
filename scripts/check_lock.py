"""Check that the installed Python packages are exactly requirements.lock, and the lock still meets pyproject.

Run with the project's .venv interpreter (scripts/dev test runs it first):
    python scripts/check_lock.py            # exit 1 with one line per difference
    python scripts/check_lock.py --extras   # print installed names the lock does not have (setup.sh)

Differences reported: an installed version other than the locked one, a locked package missing, an installed
package the lock does not have, and a pyproject requirement the lock does not meet (range or absence).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
# Installed by the venv or setup.sh itself, never in the lock.
NOT_LOCKED = frozenset({canonicalize_name("pip"), canonicalize_name("fleetwatch")})


@dataclass(frozen=True, slots=True, kw_only=True)
class Pin:
    """One `name==version [; marker]` entry of the lock."""

    name: NormalizedName
    version: Version
    marker: Marker | None

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """The pins of a uv/pip-tools lock: continuation lines (hashes, comments) are skipped."""
    pins = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in " #\t-":
            continue
        requirement = Requirement(line.rstrip("\\ ").strip())
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise SystemExit(f"lock check: {path.name}: not an exact pin: {line.strip()}")
        pins.append(
            Pin(
                name=canonicalize_name(requirement.name),
                version=Version(specs[0].version),
                marker=requirement.marker,
            )
        )
    return pins


def installed_versions() -> dict[NormalizedName, Version]:
    return {
        canonicalize_name(dist.metadata["Name"]): Version(dist.version) for dist in metadata.distributions()
    }


def pyproject_requirements(path: Path) -> list[Requirement]:
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    lines: list[str] = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines.extend(extra)
    return [Requirement(line) for line in lines]


def differences(
    pins: list[Pin], installed: dict[NormalizedName, Version], wanted: list[Requirement]
) -> list[str]:
    problems = []
    names = [pin.name for pin in pins]
    problems += [f"pinned more than once in the lock: {n}" for n in sorted(set(names)) if names.count(n) > 1]
    applying = {pin.name: pin.version for pin in pins if pin.applies()}
    for name, version in sorted(applying.items()):
        have = installed.get(name)
        if have is None:
            problems.append(f"missing: {name}=={version} is locked but not installed")
        elif have != version:
            problems.append(f"version differs: {name} {have} installed, {version} locked")
    every_pin = {pin.name: pin.version for pin in pins}
    for name, have in sorted(installed.items()):
        if name not in every_pin and name not in NOT_LOCKED:
            problems.append(f"extra: {name}=={have} is installed but not in the lock")
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": "dev"}):
            continue
        name = canonicalize_name(requirement.name)
        locked = every_pin.get(name)
        if locked is None:
            problems.append(f"pyproject wants {requirement} but the lock has no {name}")
        elif not requirement.specifier.contains(locked, prereleases=True):
            problems.append(f"pyproject wants {requirement} but the lock pins {name}=={locked}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--extras", action="store_true", help="print installed names the lock does not have")
    args = parser.parse_args()
    pins = read_lock(LOCK)
    installed = installed_versions()
    if args.extras:
        locked = {pin.name for pin in pins}
        for name in sorted(set(installed) - locked - NOT_LOCKED):
            print(name)
        return 0
    problems = differences(pins, installed, pyproject_requirements(PYPROJECT))
    if problems:
        for problem in problems:
            print(f"lock check: {problem}", file=sys.stderr)
        print(
            f"lock check: FAILED ({len(problems)} differences); `rm .venv/.fleetwatch-installed; "
            "bash scripts/setup.sh` re-installs the lock, `scripts/dev lock` re-resolves it",
            file=sys.stderr,
        )
        return 1
    applying = sum(pin.applies() for pin in pins)
    print(f"lock check: {applying} distributions match {LOCK.name}; the lock meets pyproject's ranges")
    return 0


if __name__ == "__main__":
    sys.exit(main())
