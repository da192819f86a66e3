# Test hosts on one machine: network + UTS namespaces joined by a bridge.
#
# Sourced by tests/multinode/*.test and tests/slurm/*_2node.test. Each test
# makes its own private cluster:
#
#   bridge rtbrID  10.77.ID.1/24 (the machine's side; nothing is routed)
#     veth rtID-vK  <-> eth0 inside netns rtID-hK, address 10.77.ID.(10+K)
#
# where ID is a number from 20 to 219 claimed for this test (a directory
# under /run/rtrain-netns acts as the claim, so tests running side by side
# get different bridges and subnets). A test host is "born" as one process,
# its init: `ip netns exec rtID-hK unshare --uts sleep`, which sets the
# hostname hK in a new UTS namespace and sleeps. Everything the host runs
# is started by entering that init's network and UTS namespaces with
# nsenter, so gethostname(), the addresses a process sees, and what a link
# cut cuts are the host's own. The file system, /dev/shm and the process
# table stay shared, as on a cluster with a shared file system (which is
# what rtrain's checkpoints assume).
#
# Open MPI reaches the hosts through an rsh agent (mn_agent, written into
# the state directory) that maps a host address to its init and runs the
# remote command there; mpirun itself runs on host 1, with the TCP BTL and
# the out-of-band channel restricted to the cluster's subnet.
#
# Only addresses inside namespaces this file creates are used, never an
# interface of the machine's own. mn_down (also run on EXIT) kills every
# process of every test host, deletes the namespaces and the bridge, and
# releases the claim, whether the test passed or not.
#
# Functions:
#   mn_require              exit 77 (skip) unless root and namespaces work
#   mn_up N                 make hosts 1..N; sets MN_STATE, MN_HOSTFILE
#   mn_addr K               host K's address
#   mn_exec K CMD...        run CMD on host K (in the foreground)
#   mn_mpirun SLOTS ARGS... mpirun on host 1 across every host, SLOTS ranks each
#   mn_mpirun_words FILE    that mpirun command for hostfile FILE (MPIRUN=...)
#   mn_host_pids K          the processes of host K (its init excluded)
#   mn_kill_host K          SIGKILL every process of host K (init excluded)
#   mn_link K up|down       set host K's link up or down (a cable pulled)
#   mn_down                 tear everything down

MN_RUN_DIR=/run/rtrain-netns

mn_skip() { echo "SKIP: $*"; exit 77; }

mn_require() {
    [ "$(id -u)" -eq 0 ] || mn_skip "multi-host tests need root (network namespaces)"
    for prog in ip nsenter unshare; do
        command -v "$prog" >/dev/null 2>&1 || mn_skip "$prog not found (install iproute2 util-linux)"
    done
    probe=rtprobe$$
    ip netns add "$probe" 2>/dev/null || mn_skip "this kernel or container does not allow network namespaces"
    ok=0
    ip netns exec "$probe" unshare --uts true 2>/dev/null && ok=1
    ip netns del "$probe" 2>/dev/null || true
    [ "$ok" -eq 1 ] || mn_skip "this kernel or container does not allow UTS namespaces"
}

# Claims a free cluster number by creating its directory (atomic).
mn_claim() {
    mkdir -p "$MN_RUN_DIR"
    id=20
    while [ "$id" -le 219 ]; do
        if mkdir "$MN_RUN_DIR/$id" 2>/dev/null; then
            # A claim whose owner died (kill -9) is taken over when its
            # bridge is gone as well.
            MN_ID=$id
            return 0
        fi
        if [ -r "$MN_RUN_DIR/$id/owner" ] && ! kill -0 "$(cat "$MN_RUN_DIR/$id/owner")" 2>/dev/null; then
            if ! ip link show "rtbr$id" >/dev/null 2>&1; then
                rm -rf "$MN_RUN_DIR/$id" && mkdir "$MN_RUN_DIR/$id" 2>/dev/null && { MN_ID=$id; return 0; }
            fi
        fi
        id=$((id + 1))
    done
    echo "FAIL: no free test cluster number under $MN_RUN_DIR" >&2
    exit 1
}

mn_up() {
    MN_HOSTS=$1
    mn_claim
    MN_STATE=$MN_RUN_DIR/$MN_ID
    echo $$ >"$MN_STATE/owner"
    # tests/e2e/lib.sh's own EXIT trap removes $TMP: keep doing that.
    trap 'mn_down; [ -z "${TMP:-}" ] || rm -rf "$TMP"' EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
    MN_NET=10.77.$MN_ID
    ip link add "rtbr$MN_ID" type bridge || { echo "FAIL: cannot create bridge rtbr$MN_ID" >&2; exit 1; }
    ip addr add "$MN_NET.1/24" dev "rtbr$MN_ID"
    ip link set "rtbr$MN_ID" up
    : >"$MN_STATE/hosts"
    k=1
    while [ "$k" -le "$MN_HOSTS" ]; do
        ns=rt$MN_ID-h$k
        ip netns add "$ns"
        ip link add "rt$MN_ID-v$k" type veth peer name eth0 netns "$ns"
        ip link set "rt$MN_ID-v$k" master "rtbr$MN_ID" up
        ip -n "$ns" addr add "$(mn_addr "$k")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
        # The init: its pid is the host's handle (ip netns exec and unshare
        # both exec, so $! is the sleeping process itself).
        ip netns exec "$ns" unshare --uts sh -c "hostname h$k && exec sleep 2147483647" \
            </dev/null >/dev/null 2>&1 &
        echo $! >"$MN_STATE/init$k"
        echo "$(mn_addr "$k") slots=@SLOTS@" >>"$MN_STATE/hosts"
        k=$((k + 1))
    done
    # Wait until every host answers with its own hostname.
    k=1
    while [ "$k" -le "$MN_HOSTS" ]; do
        tries=0
        until [ "$(mn_exec "$k" hostname 2>/dev/null)" = "h$k" ]; do
            tries=$((tries + 1))
            [ "$tries" -lt 50 ] || { echo "FAIL: test host h$k did not come up" >&2; exit 1; }
            sleep 0.1
        done
        k=$((k + 1))
    done
    mn_write_agent
    MN_HOSTFILE=$MN_STATE/hostfile
}

mn_addr() { echo "$MN_NET.$((10 + $1))"; }

mn_init_pid() { cat "$MN_STATE/init$1"; }

mn_exec() {
    k=$1; shift
    nsenter -t "$(mn_init_pid "$k")" --uts --net "$@"
}

# The rsh agent Open MPI calls as `agent HOST COMMAND...`: HOST is an
# address from the hostfile (or the host name hK).
mn_write_agent() {
    cat >"$MN_STATE/agent" <<EOF
#!/bin/sh
host=\$1; shift
case \$host in
    $MN_NET.*) k=\$((\${host##*.} - 10)) ;;
    h[0-9]*) k=\${host#h} ;;
    *) echo "test-host agent: unknown host \$host" >&2; exit 255 ;;
esac
[ -r "$MN_STATE/init\$k" ] || { echo "test-host agent: no host \$host" >&2; exit 255; }
exec nsenter -t "\$(cat "$MN_STATE/init\$k")" --uts --net sh -c "\$*"
EOF
    chmod 0755 "$MN_STATE/agent"
}

# mn_mpirun SLOTS ARGS...: mpirun started on host 1 with SLOTS ranks per
# host on every host (use -np to run fewer); ARGS go to mpirun.
mn_mpirun() {
    slots=$1; shift
    sed "s/@SLOTS@/$slots/" "$MN_STATE/hosts" >"$MN_HOSTFILE"
    mn_exec 1 $(mn_mpirun_words "$MN_HOSTFILE") --bind-to none "$@"
}

# mn_mpirun_words HOSTFILE: the mpirun command (one line, words split at
# blanks) that starts ranks on the test hosts HOSTFILE lists, for a
# launcher that adds its own -np and binding (MPIRUN of tools/rtrain-run,
# run on host 1). mpirun reads HOSTFILE each time it starts, so a test
# can drop a host from it between a launcher's attempts.
mn_mpirun_words() {
    echo "${MPIRUN:-mpirun} --hostfile $1 --mca plm_rsh_agent $MN_STATE/agent" \
        "--mca btl tcp,self --mca btl_tcp_if_include $MN_NET.0/24" \
        "--mca oob_tcp_if_include $MN_NET.0/24"
}

# The processes of host K: every process in its UTS namespace but the init.
mn_host_pids() {
    init=$(mn_init_pid "$1")
    want=$(readlink "/proc/$init/ns/uts") || return 0
    for d in /proc/[0-9]*; do
        p=${d#/proc/}
        [ "$p" = "$init" ] && continue
        [ "$(readlink "$d/ns/uts" 2>/dev/null)" = "$want" ] && echo "$p"
    done
    return 0
}

mn_kill_host() {
    # Twice: a process may fork while the first sweep runs.
    for sweep in 1 2; do
        pids=$(mn_host_pids "$1")
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        sleep 0.2
    done
    return 0
}

mn_link() { ip link set "rt$MN_ID-v$1" "$2"; }

mn_down() {
    [ -n "${MN_STATE:-}" ] || return 0
    k=1
    while [ "$k" -le "${MN_HOSTS:-0}" ]; do
        if [ -r "$MN_STATE/init$k" ]; then
            mn_kill_host "$k"
            kill -KILL "$(mn_init_pid "$k")" 2>/dev/null
        fi
        ip netns del "rt$MN_ID-h$k" 2>/dev/null
        ip link del "rt$MN_ID-v$k" 2>/dev/null
        k=$((k + 1))
    done
    ip link del "rtbr$MN_ID" 2>/dev/null
    rm -rf "$MN_STATE"
    MN_STATE=
    return 0
}
