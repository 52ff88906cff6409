#!/usr/bin/env bash
# Runs a job in which a rank fails mid-allreduce and checks that the job ends
# with a non-zero exit, within BOUND seconds, and that its output matches
# every PATTERN (extended regular expressions).
#
#   fault_test.sh BOUND NP "PATTERN;PATTERN..." MPIEXEC [MPIEXEC FLAGS...] -- PROGRAM [ARGS...]
set -u
bound=$1 np=$2 patterns=$3
shift 3
mpiexec=()
while [[ $# -gt 0 && "$1" != "--" ]]; do mpiexec+=("$1"); shift; done
shift  # --
start_ms=$(($(date +%s%N) / 1000000))
out=$(timeout --kill-after=5 $((bound * 3)) "${mpiexec[@]}" -n "$np" "$@" 2>&1)
rc=$?
elapsed_ms=$(($(date +%s%N) / 1000000 - start_ms))
echo "$out" | tail -n 30
echo "fault_test: exit code $rc after ${elapsed_ms} ms (bound ${bound} s)"
fail=0
if [[ $rc -eq 0 ]]; then echo "fault_test: FAIL: the job exited 0"; fail=1; fi
if [[ $rc -eq 124 ]]; then echo "fault_test: FAIL: the job hung (ended by timeout)"; fail=1; fi
if (( elapsed_ms > bound * 1000 )); then
  echo "fault_test: FAIL: took longer than ${bound} s"; fail=1
fi
IFS=';' read -ra list <<< "$patterns"
for p in "${list[@]}"; do
  if ! grep -Eq -- "$p" <<< "$out"; then echo "fault_test: FAIL: no line matches /$p/"; fail=1; fi
done
[[ $fail -eq 0 ]] && echo "fault_test: PASS"
exit $fail
