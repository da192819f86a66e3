#!/bin/sh
# The sanitizer check (`make check-sanitizers`, docs/reliability.md): builds
# rtrain with AddressSanitizer + UndefinedBehaviorSanitizer and the test-only
# fault hooks in a separate build directory (a VPATH build:
# configure --enable-sanitizers --enable-fault-injection), then runs the
# test suite there. Not part of `make check`: everything runs 2-3x slower.
#
#   tests/sanitizers.sh [BUILD_DIR] [make check arguments, e.g. TESTS='...']
#
# BUILD_DIR (default ${TMPDIR:-/tmp}/rtrain-sanitizers; new, empty or made by
# this script before) gets src/, a clean
# copy of this source tree (the files git tracks or would add: uncommitted
# changes included; a source tree configured in place cannot host a VPATH
# build), and build/, the build. The first report stops the test that
# raised it (halt_on_error); the reports are in build/**/*.log. Exit code:
# make check's.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${TMPDIR:-/tmp}/rtrain-sanitizers}
[ $# -eq 0 ] || shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
case "$out/" in "$here"/*) echo "tests/sanitizers.sh: BUILD_DIR must lie outside the source tree" >&2; exit 2 ;; esac
# BUILD_DIR/src and BUILD_DIR/build are replaced: only in a directory that is
# empty or was made by this script before (its marker file).
if [ -n "$(ls -A "$out")" ] && [ ! -e "$out/.rtrain-sanitizers" ]; then
    echo "tests/sanitizers.sh: $out is not empty and was not made by this script:" \
         "give a new or empty BUILD_DIR" >&2
    exit 2
fi
touch "$out/.rtrain-sanitizers"

# The source: a copy without the in-place build's outputs.
rm -rf "$out/src"
mkdir -p "$out/src"
if git -C "$here" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$here" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        tar --null -T - -cf -) | tar -xf - -C "$out/src"
    # The commit for rtrain --version, as a release tarball carries it.
    "$here/scripts/source-commit.sh" "$here" >"$out/src/.commit"
elif [ ! -e "$here/config.status" ]; then
    cp -R "$here/." "$out/src"
else
    echo "tests/sanitizers.sh: $here is configured in place and not a git checkout:" \
         "run 'make distclean' there first" >&2
    exit 2
fi
cd "$out/src"
[ -x configure ] || autoreconf -fi

rm -rf "$out/build"
mkdir -p "$out/build"
cd "$out/build"
# Without CUDA: nvcc's code is not instrumented, and the CUDA runtime does
# not start under AddressSanitizer's default memory layout.
"$out/src/configure" --enable-sanitizers --enable-fault-injection --without-cuda
make -j"${SANITIZER_JOBS:-2}"
"$out/build/src/cli/rtrain" --version
make -j"${SANITIZER_JOBS:-2}" check "$@"
