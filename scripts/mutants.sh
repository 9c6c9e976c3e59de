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
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

# name  file  mutant-name regex (- for the whole file)  test-name filters (substrings)
modules() {
  cat <<'LIST'
pathsafe      src/pathsafe.rs   -  pathsafe:: hostile:: config::tests sync_local::
mcp-store     src/mcp/store.rs  -  mcp:: mcp_sync:: crash::
mcp-ownership src/mcp/plan.rs   known_target|target_of|rel_of|check_confined|was_written_by_us  mcp:: mcp_sync::
lock-paths    src/plan.rs       is_manageable  plan:: hostile:: sync_local:: crash::
lock-parse    src/lock.rs       Lock::parse|Lock::read  lock:: sync_local:: parsers::
fsx           src/fsx.rs        -  fsx:: crash:: hostile:: sync_local::
tree          src/tree.rs       -  tree:: hostile:: sync_local:: sync_git::
credentials   src/credentials.rs  -  credentials sync_git:: remote_config:: ssh::
remote        src/remote.rs     -  remote remote_config::
LIST
}

status=0
while read -r name file re filters; do
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then
    continue
  fi
  mkdir -p "target/mutants/$name"
  args=(--file "$file" -j 1 --output "target/mutants/$name")
  [ "$re" = - ] || args+=(--re "$re")
  # shellcheck disable=SC2086 # the filters are words on purpose
  echo "== $name: cargo mutants ${args[*]} -- -- $filters"
  start=$(date +%s)
  nice -n 10 cargo mutants "${args[@]}" -- -- $filters || status=1
  echo "== $name: $(( $(date +%s) - start )) s"
done < <(modules)
exit $status
