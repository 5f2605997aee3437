#!/usr/bin/env bash
# The static checks .ci/run makes on the C sources: the layout is the one
# .clang-format gives, and cppcheck (Debian's) finds nothing in the checks
# listed here. Exits non-zero on the first kind of failure it finds.
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t sources < <(git ls-files '*.c' '*.h')

echo "== clang-format"
clang-format --dry-run -Werror "${sources[@]}"

# warning, performance and portability: the checks that find bugs in this
# code without a flood of style opinions; the generated protobuf code and
# system headers are not ours to check.
echo "== cppcheck"
includes=()
for d in common/*/ services/*/; do includes+=(-I "$d"); done
cppcheck --quiet --error-exitcode=1 --std=c11 --inline-suppr \
  --enable=warning,performance,portability --suppress=missingIncludeSystem \
  -D__GNUC__ -j "$(nproc)" "${includes[@]}" common services tests/unit tests/fuzz
echo "lint: clean"
