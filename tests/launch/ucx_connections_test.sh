#!/usr/bin/env bash
# UCX connections on demand at job level (issue 12 item 2, docs/transport.md
# "Connections"): a `lockstep run` of a 16-layer model on 4 ranks (tp 2 x
# pp 2) and 16 ranks (tp 2 x pp 8), each over --transport mpi and --transport
# ucx, must give the one-rank bits, and with ucx a rank other than the leader
# must receive the worker addresses of its own peers only: the job's start-up
# messages are the same over both backends, so per rank the difference of
# the start-up bytes (--summary) is what the ucx backend received of worker
# addresses. The leader sends every rank its part of the plan, so it connects
# to all p - 1 and its difference is p - 1 addresses: one address is that
# over p - 1 (all ranks of one host have addresses of one length). A rank
# other than the leader must have received at most log2(p) + 5 addresses: the
# peers of its whole job (the start-up trees, log2(p) + 1; its tp group; the
# stages before and after it; stage 0 and the last stage) -- an address can
# arrive before this rank connects, when the peer connects first -- and have
# at most log2(p) + 3 peers at start-up, the same over both backends. Before
# connections on demand every rank received all p - 1 addresses (15 at 16
# ranks, against a bound of 9).
#
#   ucx_connections_test.sh LOCKSTEP MPIEXEC [MPIEXEC FLAGS...]
set -uo pipefail

lockstep="$1"
shift
mpiexec=("$@")
work=$(mktemp -d "${TMPDIR:-/tmp}/lockstep_ucxconn_XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
export UCX_TLS=${UCX_TLS:-self,sm}

cat >cfg.json <<'EOF'
{"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 16,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
 "max_position_embeddings": 128}
EOF
"$lockstep" synth --config cfg.json --dtype bf16 --seed 5 --output m.h5 >/dev/null || exit 1
for ((i = 0; i < 8; ++i)); do
  len=$((3 + (i * 5) % 17)) prompt=""
  for ((j = 0; j < len; ++j)); do prompt+="$(((i * 131 + j * 17 + 7) % 256)),"; done
  printf '{"id": "r%d", "prompt_tokens": [%s], "max_tokens": 4, "temperature": %s, "seed": %d}\n' \
    "$i" "${prompt%,}" "$( ((i % 2)) && echo 0.8 || echo 0)" "$i"
done >requests.jsonl

common=(run --model m.h5 --input requests.jsonl --hash-logits --no-progress --no-timings
        --comm-timeout 120)
"$lockstep" "${common[@]}" --output one.jsonl 2>one.log || { cat one.log; exit 1; }

for shape in 2x2 2x8; do
  tp=${shape%x*} pp=${shape#*x} np=$((${shape%x*} * ${shape#*x}))
  for transport in mpi ucx; do
    if ! timeout --kill-after=5 600 "${mpiexec[@]}" -n "$np" "$lockstep" "${common[@]}" \
        --tp "$tp" --pp "$pp" --transport "$transport" --output "out-$np-$transport.jsonl" \
        --summary "sum-$np-$transport.json" 2>"log-$np-$transport.txt"; then
      tail -n 20 "log-$np-$transport.txt"
      echo "FAIL: $np ranks over $transport"
      exit 1
    fi
  done
done

python3 - <<'EOF'
import json, math, sys

def results(path):
    return {r["id"]: (r["tokens"], r["logits_sha256"]) for r in map(json.loads, open(path))}

def ranks(path):
    return {r["rank"]: r for r in json.load(open(path))["ranks"]}

one = results("one.jsonl")
failures = []
for np_ in (4, 16):
    for transport in ("mpi", "ucx"):
        if results(f"out-{np_}-{transport}.jsonl") != one:
            failures.append(f"{np_} ranks over {transport}: results differ from one rank")
    mpi, ucx = ranks(f"sum-{np_}-mpi.json"), ranks(f"sum-{np_}-ucx.json")
    assert sorted(mpi) == sorted(ucx) == list(range(np_)), "every rank must be in the summary"
    addr = {r: ucx[r]["startup_bytes_received"] - mpi[r]["startup_bytes_received"] for r in ucx}
    if addr[0] <= 0 or addr[0] % (np_ - 1):
        failures.append(f"{np_} ranks: the leader received {addr[0]} address bytes, "
                        f"not {np_ - 1} addresses of one length")
        continue
    length = addr[0] // (np_ - 1)
    bound = int(math.log2(np_)) + 5
    peer_bound = int(math.log2(np_)) + 3
    worst = max(addr[r] for r in addr if r != 0)
    print(f"{np_} ranks: address {length} bytes; worker addresses received by a rank other than "
          f"the leader: at most {worst // length} ({worst} bytes); peers "
          f"{sorted(set(ucx[r]['startup_peers'] for r in ucx if r != 0))}")
    for r in range(1, np_):
        if addr[r] > bound * length:
            failures.append(f"{np_} ranks: rank {r} received {addr[r]} bytes of worker addresses "
                            f"({addr[r] / length:.1f} addresses), more than log2(p) + 5 = {bound}")
        if (ucx[r]["startup_peers"] > peer_bound
                or ucx[r]["startup_peers"] != mpi[r]["startup_peers"]):
            failures.append(f"{np_} ranks: rank {r} has {ucx[r]['startup_peers']} peers over ucx, "
                            f"{mpi[r]['startup_peers']} over mpi (bound {peer_bound})")
for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
EOF
