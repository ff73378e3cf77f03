#!/usr/bin/env bash
# The workspace's rustc wrapper (.cargo/config.toml): optimised builds (opt-level 3, the
# release profile) take the profile-guided optimisation profile beside this script,
# sas-router.profdata, trained by loadtest/pgo.sh on the router's own load (README,
# "Profile-guided optimisation"). Left out, the build otherwise unchanged: for any other
# opt-level (debug, tests), when the compiler's LLVM is not the one that wrote the profile
# (another toolchain; nightly for the fuzzers), for instrumented, sanitizer and coverage
# builds, and with SAS_PGO=off. Bash, not sh: dash drops from the environment it passes on the
# variables whose names are not identifiers, such as cargo's CARGO_BIN_EXE_sas-router.
case "$*" in
  *opt-level=3*) ;;
  *) exec "$@" ;;
esac
case "$*" in
  *sanitizer* | *profile-generate* | *profile-use* | *instrument-coverage*) exec "$@" ;;
esac
[ "${SAS_PGO:-on}" != off ] || exec "$@"
dir=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
[ -f "$dir/sas-router.profdata" ] && [ -f "$dir/llvm-version" ] || exec "$@"
llvm=$("$1" -vV 2>/dev/null | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[ -n "$llvm" ] && [ "$llvm" = "$(cat "$dir/llvm-version")" ] || exec "$@"
exec "$@" "-Cprofile-use=$dir/sas-router.profdata"
