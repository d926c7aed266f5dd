"""The README's samples of `entrosel measure`, from real runs.

    python scripts/readme_samples.py [--work DIR] [--check]

runs every ``$ entrosel measure ...`` line of README.md's code blocks on the real ShareGPT
data (made first by the commands in ``SETUP``, in ``--work``, kept there for the next run)
and writes what it printed, stdout then stderr, under the command in the README. ``--check``
writes nothing: it lists the samples that differ and exits 1. tests/test_readme_samples.py
runs the check. measure prints no timings, so its samples repeat exactly.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# the files the samples read, made as the README's tour makes them
SETUP = [
    ("data/pool.jsonl", "entrosel data sharegpt --split exchanges -o data/pool.jsonl"),
    ("data/zip.jsonl", "entrosel select zip data/pool.jsonl -o data/zip.jsonl --budget 1000"),
    ("data/conversations.jsonl", "entrosel data sharegpt -o data/conversations.jsonl"),
]


def _run(command: str, cwd: Path) -> tuple[int, str]:
    argv = shlex.split(command)
    assert argv[0] == "entrosel", command
    done = subprocess.run([sys.executable, "-m", "entrosel", *argv[1:]], cwd=cwd,
                          capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def setup(work: Path) -> None:
    (work / "data").mkdir(parents=True, exist_ok=True)
    for made, command in SETUP:
        if not (work / made).exists():
            code, out = _run(command, work)
            if code != 0:
                raise SystemExit(f"readme_samples: {command} failed:\n{out}")


def samples(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, command)`` of each measure sample in a fenced block: its output is
    ``text[start:end]``, the lines after the command up to the next ``$`` line or the fence."""
    found: list[tuple[int, int, str]] = []
    fenced, pos, current = False, 0, None
    for line in text.splitlines(keepends=True):
        starts, pos = pos, pos + len(line)
        if line.startswith("```"):
            fenced = not fenced
        ends_output = line.startswith("```") or line.startswith("$ ")
        if current is not None and ends_output:
            found.append((current[0], starts, current[1]))
            current = None
        if fenced and line.startswith("$ entrosel measure"):
            current = (pos, line[2:].strip())
    return found


def render(text: str, work: Path) -> tuple[str, list[str]]:
    """The README with every measure sample as it runs now, and the commands that changed."""
    out, changed, last = [], [], 0
    for start, end, command in samples(text):
        _, printed = _run(command, work)
        out += [text[last:start], printed]
        if printed != text[start:end]:
            changed.append(command)
        last = end
    out.append(text[last:])
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, help="folder for the data (default: a new temporary one)")
    p.add_argument("--check", action="store_true", help="only say which samples differ")
    a = p.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="entrosel-readme-"))
    setup(work)
    text = README.read_text()
    new, changed = render(text, work)
    for command in changed:
        print(f"readme_samples: the README's output of `{command}` differs from a run", file=sys.stderr)
    if a.check:
        return 1 if changed else 0
    if changed:
        README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
