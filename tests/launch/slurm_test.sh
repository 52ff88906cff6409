#!/usr/bin/env bash
# A real Slurm cluster of one node, started by this script, runs a two-rank
# lockstep job through sbatch and srun --mpi=pmix.
#
#   slurm_test.sh LOCKSTEP WORK_DIR JOB_SCRIPT [EXAMPLES_DIR]
#
# Everything runs inside fresh PID, network, UTS and mount namespaces
# (unshare): the node is called "lsnode1" at 10.77.0.1, an address that
# exists only in its namespace, so the test needs no DNS, takes no port of the host and cannot
# collide with a second copy of itself; when the script ends, the kernel ends
# every daemon with it (munged, slurmctld, slurmd and their steps). Needs
# root (CI runs as root) and Debian's slurm-wlm and munge
# (launch/install-deps.sh). Bounded: 150 s in all.
#
# JOB_SCRIPT gets LOCKSTEP and WORK in its environment and must print "job
# ok" last. With EXAMPLES_DIR (launch/slurm/), the example scripts run as a
# user would submit them, on a tiny synthetic model: `sbatch --ntasks=2
# lockstep-1node.sbatch MODEL REQUESTS RESULTS 2` (tp 2 under srun
# --mpi=pmix) and `sbatch --nodes=1 --ntasks-per-node=2
# lockstep-multinode.sbatch ...` (its one-node case, mpi transport); their
# results must equal a one-rank run's (tokens and logits hashes).
set -euo pipefail
lockstep=$(realpath "$1")
work=$2
here=$(cd "$(dirname "$0")" && pwd)
job=$(realpath "$3")
examples=${4:+$(realpath "$4")}
fail() { echo "slurm_test: FAIL: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "needs root (munged as user munge, slurmd as root, namespaces)"
for tool in munged slurmctld slurmd sbatch srun unshare; do
  command -v "$tool" > /dev/null || fail "$tool not found: run launch/install-deps.sh (slurm-wlm, munge)"
done

rm -rf "$work"
mkdir -p "$work"
work=$(realpath "$work")

if [[ "${LOCKSTEP_SLURM_TEST_INSIDE:-}" != 1 ]]; then
  export LOCKSTEP_SLURM_TEST_INSIDE=1
  # PID 1 of the new PID namespace is this script again; all daemons die with it.
  exec timeout -k 5 ${LOCKSTEP_SLURM_TEST_TIMEOUT:-150} unshare --pid --fork --mount-proc --net --uts --mount \
    bash "$0" "$lockstep" "$work" "$job" "$examples"
fi

# ---- inside the namespaces -------------------------------------------------
# The node: hostname lsnode1, address 10.77.0.1 on a veth of its own (glibc's
# getaddrinfo ignores a namespace with loopback only, AI_ADDRCONFIG), and an
# /etc/hosts of its own (bind-mounted in this mount namespace only).
node=lsnode1
address=10.77.0.1
hostname "$node"
ip link set lo up
ip link add ls-node0 type veth peer name ls-node1
ip addr add "$address/24" dev ls-node0
ip link set ls-node1 up
ip link set ls-node0 up
printf '127.0.0.1 localhost\n%s %s\n' "$address" "$node" > "$work/hosts"
mount --bind "$work/hosts" /etc/hosts
cpus=$(nproc)
[[ $cpus -ge 2 ]] || fail "needs 2 cores for a 2-task job, this process has $cpus"

dump_logs() {
  echo "---- squeue / sinfo"
  squeue -o '%i %j %T %r %M' 2>&1 || true
  sinfo -N -o '%N %T %E %c' 2>&1 || true
  for log in "$work"/munge/log/munged.log "$work"/slurm/slurmctld.log "$work"/slurm/slurmd.log; do
    [[ -f "$log" ]] && { echo "---- $log (last 30 lines)"; tail -n 30 "$log"; }
  done
}
trap 'rc=$?; [[ $rc -ne 0 ]] && dump_logs; exit $rc' EXIT

# munge: its own key, socket, pid, log and seed under $work, run as user munge.
# munged refuses a socket folder it shares with the key: separate folders,
# the key's 0700, the socket's 0755.
mkdir -p "$work"/munge/{etc,run,log,lib}
dd if=/dev/urandom of="$work/munge/etc/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$work/munge"
chmod 0700 "$work/munge/etc" "$work/munge/lib" "$work/munge/log"
chmod 0755 "$work/munge/run"
chmod 0400 "$work/munge/etc/munge.key"
chmod 0755 "$work" "$work/munge"
socket="$work/munge/run/munge.socket.2"
runuser -u munge -- munged --key-file="$work/munge/etc/munge.key" --socket="$socket" \
  --pid-file="$work/munge/run/munged.pid" --log-file="$work/munge/log/munged.log" \
  --seed-file="$work/munge/lib/munged.seed"

# Slurm: one node, no cgroups, no accounting, state and spool under $work.
mkdir -p "$work/slurm/state" "$work/slurm/spool"
conf="$work/slurm/slurm.conf"
cat > "$conf" <<CONF
ClusterName=lockstep-ci
SlurmctldHost=$node($address)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$work/slurm/state
SlurmdSpoolDir=$work/slurm/spool
SlurmctldPidFile=$work/slurm/slurmctld.pid
SlurmdPidFile=$work/slurm/slurmd.pid
SlurmctldLogFile=$work/slurm/slurmctld.log
SlurmdLogFile=$work/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$node NodeAddr=$address CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=UNLIMITED State=UP
CONF
export SLURM_CONF="$conf"
slurmctld -f "$conf" -i
slurmd -f "$conf" -N "$node"

# Wait until the node is idle (up to 30 s).
for _ in $(seq 60); do
  state=$(sinfo -h -N -o '%T' 2> /dev/null || true)
  [[ "$state" == idle ]] && break
  sleep 0.5
done
[[ "$state" == idle ]] || fail "node not idle after 30 s (state '$state')"
echo "slurm_test: cluster up ($(sinfo -h -N -o '%N %T %c CPUs'))"

# The job, through sbatch; --wait returns the job's exit code.
export LOCKSTEP="$lockstep" WORK="$work"
cd "$work"
rc=0
timeout 90 sbatch --wait --export=ALL -o "$work/job.out" -e "$work/job.err" "$job" || rc=$?
echo "---- job stdout"; cat "$work/job.out" || true
echo "---- job stderr"; cat "$work/job.err" || true
[[ $rc -eq 0 ]] || fail "sbatch --wait: exit $rc"
[[ "$(tail -n 1 "$work/job.out")" == "job ok" ]] || fail "the job did not print 'job ok' last"

if [[ -n "$examples" ]]; then
  "$lockstep" synth --preset tiny --dtype bf16 --seed 5 --output "$work/model.h5" 2> /dev/null
  for i in 0 1 2 3; do
    printf '{"id": "s%d", "prompt_tokens": [1, %d, 42], "max_tokens": %d, "temperature": %s, "seed": 9}\n' \
      "$i" $((30 + i)) $((5 + 3 * i)) "$([[ $i == 1 ]] && echo 0.7 || echo 0)"
  done > "$work/requests.jsonl"
  "$lockstep" run --model "$work/model.h5" --input "$work/requests.jsonl" --output "$work/one-rank.jsonl" \
    --hash-logits --no-progress 2> "$work/one-rank.log" || { cat "$work/one-rank.log"; fail "one-rank run"; }
  # Same tokens and logits hashes; timings differ run to run.
  strip() { /usr/bin/python3 -c 'import json,sys
for line in sorted(open(sys.argv[1])):
    r = json.loads(line); print(r["id"], r["tokens"], r["logits_sha256"], r["finish_reason"])' "$1"; }
  # The examples as a user submits them (the job finds lockstep through LOCKSTEP).
  run_example() {
    local name=$1; shift
    local rc=0
    timeout "${LOCKSTEP_SLURM_EXAMPLE_TIMEOUT:-90}" sbatch --wait --export=ALL -o "$work/$name.out" \
      -e "$work/$name.out" "$@" "$work/model.h5" "$work/requests.jsonl" "$work/$name.jsonl" || rc=$?
    echo "---- $name job output"; cat "$work/$name.out" || true
    [[ $rc -eq 0 ]] || fail "$name job: exit $rc"
    diff <(strip "$work/one-rank.jsonl") <(strip "$work/$name.jsonl") ||
      fail "$name: the results differ from the one-rank run"
    echo "slurm_test: $name bit-identical to one rank"
  }
  run_example lockstep-1node-tp2 --ntasks=2 "$examples/lockstep-1node.sbatch"
  LOCKSTEP_TRANSPORT=mpi run_example lockstep-multinode-1x2 --nodes=1 --ntasks-per-node=2 \
    "$examples/lockstep-multinode.sbatch"
fi
echo "slurm_test: ok"
