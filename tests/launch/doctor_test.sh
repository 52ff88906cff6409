#!/usr/bin/env bash
# `lockstep doctor` on this machine: doctor_test.sh LOCKSTEP WORK_DIR
# Checks the report against what the machine has (/proc/cpuinfo, PATH), and
# that a missing or mismatched launcher, an unmet --require and a bad
# --require give the documented exit codes and error lines.
set -euo pipefail
lockstep=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "doctor_test: FAIL: $*" >&2; exit 1; }
py=/usr/bin/python3

# Everything required is here (CI installs Open MPI and parallel HDF5).
"$lockstep" doctor > "$work/out" 2> "$work/err" || { cat "$work/out" "$work/err"; fail "doctor exited $?"; }
cat "$work/out"
for item in mpi hdf5 ucx cpu cores slurm env; do
  grep -qE "^  .{7} $item " "$work/out" || fail "no '$item' line"
done
grep -q "doctor: all required present (mpi, hdf5)" "$work/out" || fail "no summary line"
[[ ! -s "$work/err" ]] || fail "stderr not empty: $(cat "$work/err")"

# --json agrees with the machine.
LOCKSTEP_LOG=warn "$lockstep" doctor --json > "$work/json"
expect_avx512=false; grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo && expect_avx512=true
expect_avx2=false; grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && expect_avx2=true
"$py" - "$work/json" "$expect_avx2" "$expect_avx512" "$(nproc)" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
want_avx2, want_avx512, nproc = sys.argv[2] == "true", sys.argv[3] == "true", int(sys.argv[4])
items = report["items"]
assert report["version"].startswith("lockstep "), report["version"]
assert "Open MPI" in items["mpi"]["details"]["library"], items["mpi"]
assert items["mpi"]["present"], items["mpi"]
assert items["hdf5"]["details"]["parallel"] is True, items["hdf5"]
supported = items["cpu"]["details"]["supported"]
assert ("avx2" in supported) == want_avx2, (supported, want_avx2)
assert ("avx512" in supported) == want_avx512, (supported, want_avx512)
assert "scalar" in supported
assert items["cores"]["details"]["affinity"] == nproc, (items["cores"], nproc)
tls = {t["transport"] for t in items["ucx"]["details"]["transports"]}
assert "self" in tls and "tcp" in tls, tls
assert "LOCKSTEP_LOG=warn" in report["environment"], report["environment"]
assert report["missing"] == [], report["missing"]
PY

# No launcher on PATH: missing, exit 1, one error line that says what to do.
mkdir -p "$work/empty"
set +e
PATH="$work/empty" "$lockstep" doctor > "$work/out" 2> "$work/err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "no launcher: exit $rc, expected 1"
grep -q "^lockstep: error: doctor: missing mpi: .*no mpiexec, mpirun or srun on PATH" "$work/err" ||
  fail "no launcher: stderr was: $(cat "$work/err")"
grep -qE "^  absent  mpi " "$work/out" || fail "no launcher: mpi not shown absent"
grep -qE "^  absent  slurm +srun not on PATH" "$work/out" || fail "no srun: slurm not shown absent"

# Another MPI's launcher (MPICH's hydra) and no srun on PATH: a mismatch,
# and nothing else can launch.
mkdir -p "$work/hydra"
printf '#!/bin/sh\necho "HYDRA build details:"\necho "    Version: 4.0.2"\n' > "$work/hydra/mpiexec"
chmod +x "$work/hydra/mpiexec"
ln -s "$(command -v timeout)" "$work/hydra/timeout"
set +e
PATH="$work/hydra" "$lockstep" doctor > "$work/out" 2> "$work/err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "mismatched mpiexec: exit $rc, expected 1"
grep -q "^lockstep: error: doctor: missing mpi: .*launcher $work/hydra/mpiexec is not Open MPI ('HYDRA build details:')" "$work/err" ||
  fail "mismatch: stderr was: $(cat "$work/err")"

# --require.
"$lockstep" doctor --require ucx:tcp,cores:1 > /dev/null || fail "--require ucx:tcp,cores:1 failed"
set +e
"$lockstep" doctor --require cores:100000,ucx:no_such_tl > /dev/null 2> "$work/err"; rc=$?
set -e
[[ $rc -eq 1 ]] || fail "unmet --require: exit $rc"
grep -q "missing cores:100000: only $(nproc) cores" "$work/err" || fail "cores: $(cat "$work/err")"
grep -q "missing ucx:no_such_tl: UCX has no 'no_such_tl' transport" "$work/err" || fail "ucx tl: $(cat "$work/err")"
[[ $(wc -l < "$work/err") -eq 2 ]] || fail "expected 2 error lines: $(cat "$work/err")"
set +e
"$lockstep" doctor --require avx512 > /dev/null 2>&1; rc=$?
"$lockstep" doctor --require warp-drive > /dev/null 2> "$work/err"; rc_bad=$?
set -e
if $expect_avx512; then [[ $rc -eq 0 ]] || fail "avx512 CPU: --require avx512 exit $rc"
else [[ $rc -eq 1 ]] || fail "no avx512: --require avx512 exit $rc"; fi
[[ $rc_bad -eq 2 ]] || fail "--require warp-drive: exit $rc_bad, expected 2"
grep -q "unknown requirement 'warp-drive'" "$work/err" || fail "bad --require: $(cat "$work/err")"
rm -rf "$work"
echo "doctor_test: ok"
