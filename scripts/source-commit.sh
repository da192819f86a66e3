#!/bin/sh
# source-commit.sh SRCDIR: prints the commit the source tree SRCDIR was
# taken from, for rtrain --version: git's (12 hex digits, with "-modified"
# when the tree differs from it) in a git checkout; else the first line of
# SRCDIR/.commit, which a release tarball carries (make dist writes it);
# else "unknown". Only [0-9A-Za-z._-] are kept: the result goes into C.
srcdir=${1:?usage: source-commit.sh SRCDIR}
c=
if [ -e "$srcdir/.git" ] && c=$(git -C "$srcdir" rev-parse --short=12 HEAD 2>/dev/null); then
    git -C "$srcdir" diff --quiet HEAD -- 2>/dev/null || c="$c-modified"
elif [ -r "$srcdir/.commit" ]; then
    c=$(sed -n '1{s/[^0-9A-Za-z._-]//g;p;}' "$srcdir/.commit")
fi
echo "${c:-unknown}"
