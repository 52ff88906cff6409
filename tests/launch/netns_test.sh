#!/usr/bin/env bash
# Ranks on two "hosts" of one machine (network namespaces joined by a veth
# pair, netns_cluster.sh) over TCP, Open MPI and UCX:
#
#   netns_test.sh WORK TRANSPORT_MPI_TEST [BACKENDS [LOCKSTEP]]   (BACKENDS: "mpi ucx")
#
# Runs the multi-rank transport test (allreduce bits equal to the canonical
# tree computed on one rank, streams, groups) with one rank per host, for
# the mpi backend over Open MPI's TCP BTL (ob1), and the ucx backend on TCP
# (UCX_TLS=self,tcp, UCX_NET_DEVICES=lsnet0; MPI only bootstraps it). (The
# mpi backend refuses Open MPI's UCX PML: its MPI_TAG_UB is 2^23-1.) Runs in private PID and mount namespaces, so
# every daemon and namespace ends with the script. Needs root. Bounded: 150 s.
set -euo pipefail
work=$1
transport_test=$(realpath "$2")
backends=${3:-mpi ucx}
lockstep=${4:+$(realpath "$4")}
here=$(cd "$(dirname "$0")" && pwd)
fail() { echo "netns_test: FAIL: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || fail "needs root (network namespaces)"

if [[ "${LOCKSTEP_NETNS_TEST_INSIDE:-}" != 1 ]]; then
  rm -rf "$work"
  mkdir -p "$work"
  export LOCKSTEP_NETNS_TEST_INSIDE=1
  exec timeout -k 5 "${LOCKSTEP_NETNS_TEST_TIMEOUT:-150}" \
    unshare --pid --fork --mount-proc --mount bash "$0" "$(realpath "$work")" "$transport_test" "$backends" "$lockstep"
fi

# shellcheck source=netns_cluster.sh
source "$here/netns_cluster.sh"
netns_cluster_up "$work"
netns_hostfile 2

# Bytes node0 has sent over the veth (the proof that ranks talked over it).
tx_bytes() { ip netns exec "$NETNS_NS0" cat /sys/class/net/lsnet0/statistics/tx_bytes; }

# The ranks are on two hosts.
hosts=$(netns_mpirun -np 2 --map-by node hostname | sort | tr '\n' ' ')
[[ "$hosts" == "node0 node1 " ]] || fail "ranks ran on '$hosts', expected node0 and node1"
# docs/multi-node.md: --map-by ppr:TP:node keeps a tp group (consecutive
# ranks) on one host.
placement=$(netns_mpirun -np 4 --map-by ppr:2:node sh -c 'echo "$OMPI_COMM_WORLD_RANK@$(hostname)"' |
  sort | tr '\n' ' ')
[[ "$placement" == "0@node0 1@node0 2@node1 3@node1 " ]] || fail "--map-by ppr:2:node placed '$placement'"

run_case() {
  local name=$1; shift
  local start=$SECONDS
  local tx_before
  tx_before=$(tx_bytes)
  if ! netns_mpirun -np 2 --map-by node "$@" > "$work/$name.log" 2>&1; then
    cat "$work/$name.log"
    fail "$name"
  fi
  grep -q "PASSED" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: no PASSED line"; }
  # The transport test all-reduces 16 MiB: at least that much crossed the veth.
  local sent=$(( $(tx_bytes) - tx_before ))
  (( sent > 16 * 1024 * 1024 )) || fail "$name: only $sent bytes crossed lsnet0"
  echo "netns_test: $name ok ($((SECONDS - start)) s, $((sent / 1024 / 1024)) MiB over lsnet0)"
}

filter=--gtest_filter=-*SilentPeer*
for backend in $backends; do
  case $backend in
    mpi) run_case transport-mpi-ob1-tcp "${NETNS_OMPI_TCP[@]}" "$transport_test" --transport=mpi "$filter" ;;
    ucx) run_case transport-ucx-tcp "${NETNS_OMPI_TCP[@]}" "${NETNS_UCX_TCP[@]}" \
           "$transport_test" --transport=ucx "$filter" ;;
    *) fail "unknown backend '$backend'" ;;
  esac
done

if [[ -n "$lockstep" ]]; then
  # The one-rank reference, run directly (no namespaces needed).
  "$lockstep" synth --preset tiny --dtype bf16 --seed 3 --output "$work/model.h5" 2> /dev/null
  for i in 0 1 2 3 4 5; do
    printf '{"id": "r%d", "prompt_tokens": [1, %d, %d, 7], "max_tokens": %d, "temperature": %s, "seed": %d}\n' \
      "$i" $((10 + i)) $((200 + 3 * i)) $((6 + 2 * i)) "$([[ $((i % 2)) == 0 ]] && echo 0 || echo 0.9)" "$i"
  done > "$work/requests.jsonl"
  job=(run --model "$work/model.h5" --input "$work/requests.jsonl" --hash-logits --no-timings --no-progress)
  "$lockstep" "${job[@]}" --output "$work/one-rank.jsonl" 2> "$work/one-rank.log" ||
    { cat "$work/one-rank.log"; fail "one-rank lockstep run"; }
  sort "$work/one-rank.jsonl" > "$work/one-rank.sorted"
  [[ $(wc -l < "$work/one-rank.sorted") -eq 6 ]] || fail "one-rank run wrote $(wc -l < "$work/one-rank.sorted") results"

  run_job() {
    local name=$1 np=$2 map=$3 tp=$4 pp=$5 backend=$6
    local flags=("${NETNS_OMPI_TCP[@]}")
    [[ $backend == ucx ]] && flags+=("${NETNS_UCX_TCP[@]}")
    local start=$SECONDS tx_before
    tx_before=$(tx_bytes)
    if ! netns_mpirun -np "$np" --map-by "$map" "${flags[@]}" "$lockstep" "${job[@]}" \
        --output "$work/$name.jsonl" --tp "$tp" --pp "$pp" --transport "$backend" > "$work/$name.log" 2>&1; then
      cat "$work/$name.log"
      fail "$name"
    fi
    sort "$work/$name.jsonl" > "$work/$name.sorted"
    cmp -s "$work/one-rank.sorted" "$work/$name.sorted" ||
      { diff "$work/one-rank.sorted" "$work/$name.sorted" | head -5; fail "$name: results differ from the one-rank run"; }
    local sent=$(( $(tx_bytes) - tx_before ))
    (( sent > 0 )) || fail "$name: nothing crossed lsnet0"
    echo "netns_test: $name bit-identical to 1 rank ($((SECONDS - start)) s, $((sent / 1024)) KiB over lsnet0)"
  }
  for backend in $backends; do
    run_job "run-$backend-tp2-two-hosts" 2 node 2 1 "$backend"
    run_job "run-$backend-tp2xpp2-tp-group-per-host" 4 ppr:2:node 2 2 "$backend"
  done
fi
echo "netns_test: ok"
