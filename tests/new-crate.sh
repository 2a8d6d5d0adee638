#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/new-crate.sh: a new user's path, on the host. `schedkit new` makes a crate in
# target/new-crate/NAME (inside the checkout, so the VM sees it); with no edit, its
# `cargo test` passes, `cargo build --release` gives target/release/NAME, and
# `NAME sim` runs the new policy. The VM part (the stress mix under the generated
# scheduler) is test_new_crate_survives_stress in tests/vm/scheduler.sh, given
# NEW_POLICY_BIN=<this script's binary>.
#
# NEW_CRATE_TARGET_DIR, if set, is used as the crate's CARGO_TARGET_DIR (CI shares
# the checkout's, so the schedkit crates are not built twice).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
name=${NEW_CRATE_NAME:-mypol}
dir=$root/target/new-crate/$name
schedkit=${SCHEDKIT:-$root/target/release/schedkit}
failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failed=1; fi
}

rm -rf "$dir"
mkdir -p "$(dirname "$dir")"
check "schedkit new creates the crate" "$schedkit" new "$dir"
check "a path that is not empty is refused" bash -c "! '$schedkit' new '$dir' 2>/dev/null"
out=$("$schedkit" new "$dir" 2>&1)
check "... in one sentence" [ "$(wc -l <<<"$out")" = 1 ]
for f in Cargo.toml README.md src/main.rs src/policy.rs tests/sim.rs scenarios/small.toml; do
    check "it has $f" [ -s "$dir/$f" ]
done

cd "$dir" || exit 1
if [ -n "${NEW_CRATE_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR=$NEW_CRATE_TARGET_DIR
fi
bin=${CARGO_TARGET_DIR:-$dir/target}/release/$name
check "cargo test passes in the new crate" cargo test -q
check "cargo build --release builds it" cargo build --release -q
check "target/release/$name exists" [ -x "$bin" ]
out=$("$bin" policies)
check "$name policies lists it first" grep -q "^$name " <<<"$(head -n 1 <<<"$out")"
check "... with its options" grep -q -- "--wake-burst N" <<<"$out"
out=$("$bin" sim scenarios/small.toml --policy "$name" 2>&1); rc=$?
echo "$out" | sed 's/^/    | /' | head -n 12
check "$name sim runs (exit $rc)" [ $rc -eq 0 ]
check "... and reports the policy's decisions" grep -q "policy decisions [1-9]" <<<"$out"
out=$("$bin" sim scenarios/small.toml --policy "$name" --slice-us 0 2>&1); rc=$?
check "a bad option value is refused (exit $rc)" [ $rc -ne 0 ]
check "... in one sentence naming the option" grep -q -- "--slice-us" <<<"$out"
check "... on one line" [ "$(wc -l <<<"$out")" = 1 ]
out=$("$bin" compare scenarios/small.toml --policies "eevdf,$name" --duration 1 2>&1); rc=$?
check "$name compare against eevdf runs (exit $rc)" [ $rc -eq 0 ]

echo "$bin" >"$root/target/new-crate/bin-path"
[ $failed -eq 0 ] && echo "new crate: all checks passed"
exit $failed
