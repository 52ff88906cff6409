#!/bin/sh
# `lockstep calibrate` writes a host chip spec that `lockstep plan --chip host`
# then uses.
#   calibrate_cli_test.sh /path/to/lockstep /scratch/dir [mpiexec flags...]
# With mpiexec flags (the mpi variant), the calibration runs on 2 ranks and
# must also measure the intra-node link.
set -u
lockstep="$1"
dir="$2"
shift 2
mkdir -p "$dir"
spec="$dir/host.json"
rm -f "$spec"
fail() { echo "FAIL: $*"; exit 1; }

if [ $# -gt 0 ]; then
  "$@" -n 2 "$lockstep" calibrate --quick --output "$spec" > "$dir/out.txt" 2>&1 ||
    { cat "$dir/out.txt"; fail "mpiexec -n 2 lockstep calibrate"; }
  grep -q 'intra-node link by mpi ping-pong of ranks 0 and 1' "$spec" ||
    { cat "$spec"; fail "the link was not measured"; }
else
  "$lockstep" calibrate --quick --output "$spec" > "$dir/out.txt" 2>&1 ||
    { cat "$dir/out.txt"; fail "lockstep calibrate"; }
  grep -q 'links not measured' "$spec" || { cat "$spec"; fail "the spec should say the links are defaults"; }
  "$lockstep" calibrate --transport local > "$dir/bad.txt" 2>&1
  [ $? -eq 2 ] || fail "--transport local must be refused as a bad command line (exit 2)"
  grep -q 'no link to measure' "$dir/bad.txt" || fail "no message for --transport local"
fi
grep -q 'measured by lockstep calibrate' "$spec" || { cat "$spec"; fail "no source in the spec"; }
grep -q '"f32"' "$spec" || fail "no FMA peak in the spec"
# The matmul rates of a float and a quantized weight type (--quick: bf16 and q8_0).
grep -q "matmul q8_0 1 thread  GFLOP/s by tokens, 1:" "$dir/out.txt" ||
  { cat "$dir/out.txt"; fail "no q8_0 matmul rates printed"; }
python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["chip"]["matmul_flops"]; assert set(t) == {"bf16", "q8_0"}, t' "$spec" ||
  { cat "$spec"; fail "the spec lacks the bf16 or q8_0 matmul rates"; }
# And the bf16 compute's (--compute bf16), for each thread count.
grep -q "matmul bf16, --compute bf16, 1 thread  GFLOP/s by tokens, 1:" "$dir/out.txt" ||
  { cat "$dir/out.txt"; fail "no bf16-compute matmul rates printed"; }
grep -q '"bf16_compute_matmul_flops"' "$spec" || { cat "$spec"; fail "no bf16_compute_matmul_flops"; }
# The attention rates of a prefill and of a decode step.
grep -q "attention, decode  .* GFLOP/s, 1 thread" "$dir/out.txt" ||
  { cat "$dir/out.txt"; fail "no decode attention rate printed"; }
grep -q '"decode_attention_flops"' "$spec" || { cat "$spec"; fail "no decode_attention_flops"; }
grep -q "\"cores\": $(nproc)" "$spec" || { cat "$spec"; fail "no core count in the spec"; }
if [ "$(nproc)" -ge 2 ]; then
  grep -q '"memory_bandwidth_by_threads"' "$spec" || { cat "$spec"; fail "no 1-thread bandwidth"; }
  # What ranks sharing the host cost each other: one factor per token count.
  grep -q '"matmul_concurrency"' "$spec" || { cat "$spec"; fail "no matmul_concurrency"; }
  grep -q "threads at once  rate of each / alone by tokens, 1:" "$dir/out.txt" ||
    { cat "$dir/out.txt"; fail "the concurrency factors are not printed"; }
  # And the quantized type's own (--quick: q8_0).
  grep -q "matmul q8_0 $(nproc) threads at once  rate of each / alone by tokens, 1:" "$dir/out.txt" ||
    { cat "$dir/out.txt"; fail "the q8_0 concurrency factors are not printed"; }
  grep -q '"matmul_concurrency_by_type"' "$spec" || { cat "$spec"; fail "no matmul_concurrency_by_type"; }
fi

# A launcher that binds rank 0 to one CPU (mpirun binds each of 2 ranks to a
# core by default) must not turn the host's figures into one core's: the
# probes lift the binding, and oneTBB gets its workers.
if [ $# -eq 0 ] && [ "$(nproc)" -ge 2 ] && command -v taskset > /dev/null; then
  taskset -c 0 "$lockstep" calibrate --quick --no-kernels --output "$dir/bound.json" \
    > "$dir/bound.txt" 2>&1 || { cat "$dir/bound.txt"; fail "calibrate bound to CPU 0"; }
  grep -q "bound this rank to 1 CPU; probing the host with its $(nproc) CPUs" "$dir/bound.txt" ||
    { cat "$dir/bound.txt"; fail "the binding to CPU 0 was not lifted"; }
  if grep -q 'TBB Warning' "$dir/bound.txt"; then cat "$dir/bound.txt"; fail "oneTBB got no workers"; fi
  grep -q "\"cores\": $(nproc)" "$dir/bound.json" || { cat "$dir/bound.json"; fail "bound core count"; }
fi

# plan --chip host reads it (no 'not calibrated' warning) and splits the host among 2 ranks.
LOCKSTEP_HOST_SPEC="$spec" "$lockstep" plan --preset tiny --chip host --chips 2 --tp 2 --pp 1 \
  --prompt-length 16 --generate 8 > "$dir/plan.txt" 2>&1 || { cat "$dir/plan.txt"; fail "plan"; }
if grep -q 'not calibrated' "$dir/plan.txt"; then cat "$dir/plan.txt"; fail "plan ignored the spec"; fi
grep -q 'its share of the node' "$dir/plan.txt" || { cat "$dir/plan.txt"; fail "plan report"; }
echo "ok"
