#!/usr/bin/env bash
# Mutation testing of kst's security-critical modules with cargo-mutants (docs/testing.md,
# "Mutation testing"). One file at a time, one job at a time, at low priority, with only the
# tests that concern the file, so a run does not take over a small machine. NOT part of
# .ci/run: the full run takes hours.
#
#   scripts/mutants.sh                 every module below, in this order
#   scripts/mutants.sh pathsafe tree   only the named module(s)
#
# Needs `cargo install cargo-mutants --locked`; settings in .cargo/mutants.toml. Results per
# module in target/mutants/<module>/mutants.out/ (outcomes.json, caught.txt, missed.txt,
# timeout.txt, unviable.txt). Exit status: non-zero if any module has a missed mutant.
set -euo pipefail
cd "$(dirname "$0")/.."
# A target folder of its own. Sharing the ordinary one is faster (the dependencies are built
# already) but unsafe: the workspace crate's artifacts are named the same for the copied tree
# cargo-mutants builds, so the next ordinary `cargo test` may find the last *mutant's* library
# "fresh" and test it. The first run here builds the dependencies once (several minutes).
export CARGO_TARGET_DIR="$PWD/target/mutants-build"

# name, file, mutant-name regex (- for the whole file), test targets (lib: unit tests only,
# which is fast; all: unit tests and the integration binary), test timeout in seconds, and
# test-name filters (substrings; a test runs if its name contains one of them).
modules() {
  cat <<'LIST'
pathsafe      src/pathsafe.rs    -               lib  120  pathsafe:: config::
mcp-store     src/mcp/store.rs   -               lib  120  mcp::
mcp-ownership src/mcp/plan.rs    known_target|target_of|rel_of|check_confined|written_by_us  all  600  mcp:: mcp_sync::
lock-paths    src/plan.rs        is_manageable   all  600  plan:: sync_local:: mcp_sync::dry_run mcp_sync::locked
lock-parse    src/lock.rs        Lock::parse|Lock::read  lib  120  lock::
fsx           src/fsx.rs         -               all  600  fsx:: crash:: hostile:: sync_local:: mcp_sync::new_settings mcp_sync::symlinked
tree          src/tree.rs        -               all  600  tree:: hostile:: sync_local::
credentials   src/credentials.rs -               all  600  credentials sync_git:: remote_config::
remote        src/remote.rs      -               all  600  remote
LIST
}

status=0
while read -r name file re targets timeout filters; do
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  mkdir -p "target/mutants/$name"
  # The tests pass on this tree (run them first): no baseline run, explicit timeouts.
  args=(--file "$file" -j 1 --baseline skip --timeout "$timeout" --output "target/mutants/$name")
  [ "$re" = - ] || args+=(--re "$re")
  # Only the test targets named, for the build as well as the run.
  args+=(-C --lib)
  [ "$targets" = lib ] || args+=(-C --test=tests)
  echo "== $name: cargo mutants ${args[*]} -- -- $filters"
  start=$(date +%s)
  # shellcheck disable=SC2086 # the filters are words on purpose
  nice -n 10 cargo mutants "${args[@]}" -- -- $filters || status=1
  echo "== $name: $(( $(date +%s) - start )) s"
done < <(modules)
exit $status
