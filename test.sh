#!/usr/bin/env bash
# Builds everything (Release, warnings are errors) and runs every test.
# Installs what the tests need first; safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

# NuGet restores happen inside dotnet build. The C guests need a gcc that
# builds and links 32-bit code against libgcc: install gcc-multilib only when
# that fails (CI starts from a fresh machine; a developer's usually has it).
# Compiling alone is not a test: gcc -m32 -c works without multilib, and only
# the link finds libgcc missing.
if ! echo 'void _start(void) {}' | gcc -m32 -ffreestanding -nostdlib -static -x c - -o /dev/null -lgcc 2>/dev/null; then
  echo "test.sh: gcc -m32 cannot link against libgcc; installing gcc-multilib"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq gcc gcc-multilib >/dev/null
fi
# The second oracle for the instructions this machine's KVM cannot run:
# Unicorn, as a shared library only (the tests bind to it at run time and
# skip without it; its headers are not needed).
if ! ldconfig -p | grep -q 'libunicorn\.so\.2 '; then
  echo "test.sh: libunicorn.so.2 is missing; installing libunicorn2"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq libunicorn2 >/dev/null
fi
./guests/build.sh

dotnet build aot.sln -c Release -nologo -clp:ErrorsOnly

rm -rf TestResults
mkdir -p TestResults
status=0
# The engines' instruction tests compare against one reference CPU per run
# (tests/Oracle/Reference.cs): KVM where it runs guests, else Unicorn. The
# run writes its choice to the file named by SHARPVISOR_ORACLE_RECORD; this
# script prints what the tests chose rather than guessing it.
oracle_line() {
  if [[ -s $1 ]]; then cat "$1"; else echo "not chosen (no oracle test ran)"; fi
}
SHARPVISOR_ORACLE_RECORD="$PWD/TestResults/oracle.txt" \
dotnet test tests/Sharpvisor.Tests.csproj -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFileName=results.trx" \
  --results-directory TestResults --blame-hang-timeout 5min || status=$?
echo "oracle: $(oracle_line TestResults/oracle.txt)"

# The reference tests again with Unicorn as the reference and KVM hidden, as
# on a machine without /dev/kvm, so that CI checks both oracles (and
# Unicorn's known errors, tests/Oracle/OracleGaps.cs) wherever it runs. Only
# the tests that compare against the reference (trait Oracle=Reference):
# about half a minute. Their counts join the closing line.
SHARPVISOR_ORACLE=unicorn SHARPVISOR_ORACLE_RECORD="$PWD/TestResults/oracle-unicorn.txt" \
dotnet test tests/Sharpvisor.Tests.csproj -c Release --no-build -nologo \
  --filter "Oracle=Reference" --logger "trx;LogFileName=unicorn.trx" \
  --results-directory TestResults --blame-hang-timeout 5min || status=$?
unicorn_oracle=$(oracle_line TestResults/oracle-unicorn.txt)
echo "oracle (second pass, SHARPVISOR_ORACLE=unicorn): $unicorn_oracle"

# The published files (README, "Two commands"): ./publish.sh builds both, and
# each runs the hello guest alone in an empty folder. After the tests (a
# publish rebuilds the projects with other properties; the tests run on the
# build above), before the closing line, which stays last. Its checks count
# in that line, so a CI that reads only the line still sees a failure.
pc_log=$(mktemp)
pc_status=0
./tests/publish-check.sh 2>&1 | tee "$pc_log" || pc_status=$?
pc_passed=0; pc_failed=0
if counts=$(sed -n 's/^publish-check: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$pc_log" | tail -n 1) && [[ -n $counts ]]; then
  read -r pc_passed pc_failed <<<"$counts"
fi
[[ $pc_status -eq 0 || $pc_failed -gt 0 ]] || pc_failed=1
rm -f "$pc_log"
[[ $pc_failed -eq 0 ]] || status=1

# One closing line any CI can read: "tests: N passed, N failed, N skipped".
# The second pass counts in it; a second pass that did not run on Unicorn
# (its record says otherwise, or it left no results) is one failure.
counts() {
  local counters
  counters=$(grep -o '<Counters [^>]*>' "$1")
  for k in total executed passed failed; do sed -n "s/.* $k=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; done
}
trx=TestResults/results.trx
if [[ -f $trx ]]; then
  read -r -d '' total executed passed failed < <(counts "$trx") || true
  [[ $total -gt 0 && $failed -eq 0 ]] || status=1
  u_total=0; u_executed=0; u_passed=0; u_failed=0
  if [[ -f TestResults/unicorn.trx && $unicorn_oracle == unicorn* ]]; then
    read -r -d '' u_total u_executed u_passed u_failed < <(counts TestResults/unicorn.trx) || true
    [[ $u_total -gt 0 && $u_failed -eq 0 ]] || status=1
  else
    echo "test.sh: the second pass did not run the reference tests on Unicorn (oracle: $unicorn_oracle)"
    u_failed=1; status=1
  fi
  echo "tests: $((passed + u_passed + pc_passed)) passed, $((failed + u_failed + pc_failed)) failed, $((total - executed + u_total - u_executed)) skipped"
else
  echo "tests: no results (the test run did not start; publish-check: $pc_passed passed, $pc_failed failed)"
  status=1
fi
exit $status
