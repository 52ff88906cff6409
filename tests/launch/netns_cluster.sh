# Two "hosts" on one machine for multi-node tests (sourced, bash).
#
# netns_cluster_up WORK   creates network namespaces for node0 (10.78.0.1) and
#   node1 (10.78.0.2) joined by a veth pair named lsnet0 on both sides, a
#   private /etc/hosts naming them, an Open MPI hostfile and an rsh agent
#   that "logs in" to a node by entering its namespace with its own hostname
#   (no sshd). Nothing is added to the root network namespace; the caller
#   must already be in a private mount namespace (unshare --mount), which
#   also keeps /run/netns and /etc/hosts changes private.
# netns_mpirun ARGS...    runs mpirun on node0 (it must run inside one of the
#   namespaces: daemons in a namespace cannot reach an mpirun outside) with
#   the hostfile, the rsh agent and per-node session folders.
#
# How this maps to real clusters: docs/multi-node.md.
netns_cluster_up() {
  NETNS_WORK=$1
  local suffix
  suffix=$(basename "$(mktemp -u XXXXXX)")
  NETNS_NS0="ls-$suffix-0"
  NETNS_NS1="ls-$suffix-1"
  NETNS_IF=lsnet0
  NETNS_CIDR=10.78.0.0/24
  mkdir -p /run/netns "$NETNS_WORK/ompi"
  mount -t tmpfs tmpfs /run/netns
  ip netns add "$NETNS_NS0"
  ip netns add "$NETNS_NS1"
  ip link add "$NETNS_IF" netns "$NETNS_NS0" type veth peer name "$NETNS_IF" netns "$NETNS_NS1"
  ip -n "$NETNS_NS0" addr add 10.78.0.1/24 dev "$NETNS_IF"
  ip -n "$NETNS_NS1" addr add 10.78.0.2/24 dev "$NETNS_IF"
  local ns
  for ns in "$NETNS_NS0" "$NETNS_NS1"; do
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$NETNS_IF" up
  done
  # UCX ignores a device that is not yet running: wait for both ends.
  local i
  for i in $(seq 100); do
    if [[ $(ip netns exec "$NETNS_NS0" cat /sys/class/net/$NETNS_IF/operstate) == up &&
          $(ip netns exec "$NETNS_NS1" cat /sys/class/net/$NETNS_IF/operstate) == up ]]; then
      break
    fi
    sleep 0.1
  done
  [[ $(ip netns exec "$NETNS_NS1" cat /sys/class/net/$NETNS_IF/operstate) == up ]] ||
    { echo "netns_cluster: $NETNS_IF not up after 10 s" >&2; return 1; }

  printf '127.0.0.1 localhost\n10.78.0.1 node0\n10.78.0.2 node1\n' > "$NETNS_WORK/hosts"
  mount --bind "$NETNS_WORK/hosts" /etc/hosts

  # The rsh agent: Open MPI calls it as `AGENT HOST COMMAND...`, the command
  # being a shell command line (as ssh would run it remotely).
  cat > "$NETNS_WORK/rsh-agent" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in
  node0) ns=$NETNS_NS0 ;;
  node1) ns=$NETNS_NS1 ;;
  *) echo "rsh-agent: unknown host '\$host'" >&2; exit 1 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$host; \$*"
AGENT
  chmod +x "$NETNS_WORK/rsh-agent"
  NETNS_HOSTFILE="$NETNS_WORK/hostfile"
}

# netns_hostfile SLOTS: both nodes with SLOTS slots each.
netns_hostfile() {
  printf 'node0 slots=%s\nnode1 slots=%s\n' "$1" "$1" > "$NETNS_HOSTFILE"
}

# Open MPI over TCP between the namespaces (ob1 + tcp BTL, and its runtime's
# out-of-band channel on the same network).
NETNS_OMPI_TCP=(--mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include 10.78.0.0/24)
# lockstep's ucx backend over TCP on the veth (MPI, over TCP, bootstraps it).
NETNS_UCX_TCP=(-x UCX_TLS=self,tcp -x UCX_NET_DEVICES=lsnet0)

netns_mpirun() {
  ip netns exec "$NETNS_NS0" unshare --uts sh -c 'hostname node0; exec "$@"' sh \
    mpirun --allow-run-as-root --oversubscribe --bind-to none --hostfile "$NETNS_HOSTFILE" \
    --mca plm_rsh_agent "$NETNS_WORK/rsh-agent" --mca oob_tcp_if_include 10.78.0.0/24 \
    --mca orte_tmpdir_base "$NETNS_WORK/ompi" "$@"
}
