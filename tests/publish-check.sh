#!/usr/bin/env bash
# The published files, checked the way a user gets them: ./publish.sh builds
# dist/sharpvisor (native AOT) and dist/sharpvisor-jit (single file, JIT);
# each is copied alone into an empty folder and runs guests/build/hello.elf
# from there, with a bare environment (no DOTNET_* variables, HOME in that
# folder), and must print what the native build of the same C
# (guests/build/hello.linux) prints, byte for byte, and exit 0.
#
# A script rather than an xunit test: publishing takes a minute or two and
# writes dist/, which the test run should not do behind the developer's back.
# test.sh runs it before the tests and counts its checks in its closing line.
# Prints one line per check, then "publish-check: N passed, N failed";
# exits 1 if any check failed. Needs ./guests/build.sh to have run.
# tests/publish-check.sh --no-publish checks dist/ as it is.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
passed=0
failed=0
ok() { echo "publish-check: ok: $1"; passed=$((passed + 1)); }
fail() { echo "publish-check: FAILED: $1" >&2; failed=$((failed + 1)); }
finish() { echo "publish-check: $passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }

elf=$root/guests/build/hello.elf
native=$root/guests/build/hello.linux
if [[ ! -x $native || ! -f $elf ]]; then
  fail "$elf or $native is missing: run ./guests/build.sh"
  finish
fi

log=$(mktemp)
if [[ ${1:-} == --no-publish ]]; then
  # Check what dist/ already holds (after a ./publish.sh of your own).
  ok "dist/ as it is: $(cd dist && ls | tr '\n' ' ')"
elif ./publish.sh >"$log" 2>&1; then
  ok "./publish.sh built $(cd dist && ls | tr '\n' ' ')"
else
  tail -n 30 "$log" >&2
  fail "./publish.sh failed (last lines above)"
  rm -f "$log"
  finish
fi
rm -f "$log"

expected=$(mktemp)
"$native" >"$expected"

# check NAME FILE [ARGS...]: FILE alone in an empty folder runs hello.elf with ARGS.
check() {
  local name=$1 file=$2; shift 2
  local dir; dir=$(mktemp -d)
  cp "$root/dist/$file" "$dir/"
  local status=0
  (cd "$dir" && env -i PATH=/usr/bin:/bin HOME="$dir" "./$file" run "$@" "$elf" >"$dir/stdout" 2>"$dir/stderr") || status=$?
  if [[ $status -ne 0 ]]; then
    fail "$name: exit $status: $(head -c 300 "$dir/stderr")"
  elif ! cmp -s "$expected" "$dir/stdout"; then
    fail "$name: output differs from hello.linux's: $(diff "$expected" "$dir/stdout" | head -5 | tr '\n' ' ')"
  else
    ok "$name: alone in an empty folder, same output as hello.linux"
  fi
  rm -rf "$dir"
}

check "sharpvisor (native AOT, default engine: x64)" sharpvisor
check "sharpvisor --engine threaded" sharpvisor --engine threaded
check "sharpvisor-jit (default engine: il)" sharpvisor-jit
check "sharpvisor-jit --engine il" sharpvisor-jit --engine il
check "sharpvisor-jit --engine x64" sharpvisor-jit --engine x64
check "sharpvisor-jit --engine threaded" sharpvisor-jit --engine threaded

# The AOT file has no dynamic code: --engine il is a usage error (64), not a crash.
status=0
"$root/dist/sharpvisor" run --engine il "$elf" >/dev/null 2>&1 || status=$?
if [[ $status -eq 64 ]]; then ok "sharpvisor --engine il: usage error 64"; else fail "sharpvisor --engine il: exit $status, expected 64"; fi

# exec: targets with the file alone: $SHARPVISOR must name the file itself,
# and its `listen` must answer all 1000 ping-pong rounds as one shared child.
check_exec() {
  local name=$1 file=$2
  local dir; dir=$(mktemp -d)
  cp "$root/dist/$file" "$dir/"
  local listen='exec:$SHARPVISOR listen --answer notify-0x10=irq-5'
  local status=0
  (cd "$dir" && env -i PATH=/usr/bin:/bin HOME="$dir" "./$file" run "$root/guests/build/pingpong.elf" --stats \
      --notify "0x10=$listen" --irq "5=$listen" >"$dir/stdout" 2>"$dir/stderr") || status=$?
  local lines; lines=$(grep -cE '^[0-9]+\.[0-9]{6} notify-0x10 1$' "$dir/stdout")
  if [[ $status -ne 0 ]]; then
    fail "$name exec:\$SHARPVISOR listen: exit $status: $(head -c 300 "$dir/stderr")"
  elif ! grep -qx 'pongs 1000' "$dir/stdout" || [[ $lines -ne 1000 ]] || [[ $(cat "$dir/stderr") != "notify 0x10 delivered 1000" ]]; then
    fail "$name exec:\$SHARPVISOR listen: pongs, listen lines ($lines) or stats wrong: $(head -c 300 "$dir/stderr")"
  else
    ok "$name: a shared exec:\$SHARPVISOR listen child answered 1000 rounds"
  fi
  rm -rf "$dir"
}
check_exec "sharpvisor (native AOT)" sharpvisor
check_exec "sharpvisor-jit" sharpvisor-jit

rm -f "$expected"
finish
