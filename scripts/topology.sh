#!/usr/bin/env bash
# The main job's live part (run by scripts/run.sh as root after the release build):
#
#   h1 (198.51.100.2/24, 2001:db8:1::2/64) veth0 -- r-h1 [r: dataplane run] r-h2 -- veth0 h2 (203.0.113.2/24, 2001:db8:2::2/64)
#
# Makes three network namespaces with names of its own (dprun-PID-h1, -r, -h2), the
# same topology as dataplane/tests/e2e.rs, starts `dataplane run` in r on AF_XDP (or on
# AF_PACKET when AF_XDP does not start, saying so), and shows from h1, with the
# kernel's own tools: ping to h2 over IPv4 and IPv6, tracepath to h2 (the router is the
# first hop), and iperf3 TCP throughput from h1 to h2. Then the host stack: curl on h1
# downloads a file from dp-httpd, an application on the router's own TCP through the
# shared-memory sockets, and dp-get (another such application) downloads it from Linux's
# python3 -m http.server on h2; both compare SHA-256. Then it stops the router with
# SIGTERM (it prints its per-port counters) and, for reference, measures the same
# transfer with r's own kernel forwarding (kernel addresses in r once dataplane has
# stopped). It removes everything it made, also on failure or Ctrl-C. No address is
# configured outside the namespaces.
#
# Usage: scripts/topology.sh [--driver afxdp|afpacket|tap] [--seconds N] [--binary PATH]
set -Eeuo pipefail
cd "$(dirname "$0")/.."

driver=afxdp
seconds=3
binary=target/release/dataplane
while [ $# -gt 0 ]; do
    case "$1" in
        --driver) driver=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --binary) binary=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "topology: unknown argument: $1" >&2; exit 2 ;;
    esac
done
case "$seconds" in ''|*[!0-9]*|0) echo "topology: --seconds takes a whole number of seconds, not $seconds" >&2; exit 2 ;; esac
case "$driver" in afxdp|afpacket|tap) ;; *) echo "topology: --driver afxdp|afpacket|tap, not $driver" >&2; exit 2 ;; esac
dpctl="$(dirname "$binary")/dpctl"
if [ "$(id -u)" -ne 0 ]; then
    echo "topology: needs root (network namespaces, AF_XDP)" >&2
    exit 1
fi
for tool in ip ethtool ping tracepath iperf3 curl python3 sha256sum; do
    command -v "$tool" >/dev/null || { echo "topology: $tool not found (scripts/deps.sh installs it)" >&2; exit 1; }
done
[ -x "$binary" ] || { echo "topology: $binary not built (cargo build --release -p dataplane)" >&2; exit 1; }

prefix="dprun-$$"
H1="$prefix-h1" R="$prefix-r" H2="$prefix-h2"
work=$(mktemp -d "/tmp/$prefix.XXXXXX")
router_pid=""
iperf_pid=""
app_pids=()

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$iperf_pid" ]; then kill "$iperf_pid" 2>/dev/null || true; wait "$iperf_pid" 2>/dev/null || true; fi
    for p in "${app_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    if [ -n "$router_pid" ] && kill -0 "$router_pid" 2>/dev/null; then
        kill -TERM "$router_pid" 2>/dev/null || true
        wait "$router_pid" 2>/dev/null || true
        echo "topology: router stopped; its counters:" >&2
        cat "$work/router.err" "$work/router.out" >&2 || true
    fi
    for ns in "$H1" "$R" "$H2"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
# The failing command, and the line of the top-level call it belongs to.
trap 'echo "topology: failed (status $?) at line $([ -n "${FUNCNAME[*]:-}" ] && echo "${BASH_LINENO[-2]}" || echo "$LINENO"): $BASH_COMMAND" >&2' ERR
trap 'echo "topology: interrupted" >&2; exit 130' INT
trap 'echo "topology: terminated" >&2; exit 143' TERM

step() { printf '\n== %s\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# The namespaces and the veths: r-h1/r-h2 in r (with TAP, v-h1/v-h2 in bridges b-h1/b-h2
# that the TAP devices join), veth0 in each host. r has no kernel address at all (IPv6
# address generation off, forwarding off): what crosses, crosses through dataplane.
make_topology() {
    local h port v4 v6 gw4 gw6 br
    for ns in "$H1" "$R" "$H2"; do
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    for side in 1 2; do
        if [ "$side" = 1 ]; then
            h=$H1 port=r-h1 v4=198.51.100.2/24 v6=2001:db8:1::2/64 gw4=198.51.100.1 gw6=2001:db8:1::1
        else
            h=$H2 port=r-h2 v4=203.0.113.2/24 v6=2001:db8:2::2/64 gw4=203.0.113.1 gw6=2001:db8:2::1
        fi
        [ "$driver" = tap ] && port=${port/r-/v-}
        ip -n "$R" link add "$port" type veth peer name veth0 netns "$h"
        if [ "$driver" = tap ]; then
            br=${port/v-/b-}
            ip -n "$R" link add "$br" type bridge
            ip -n "$R" link set "$br" addrgenmode none
            ip -n "$R" link set "$port" master "$br"
            ip -n "$R" link set "$br" up
        fi
        ip -n "$R" link set "$port" addrgenmode none
        ip -n "$R" link set "$port" up
        ip -n "$h" addr add "$v4" dev veth0
        ip -n "$h" addr add "$v6" dev veth0 nodad
        ip -n "$h" link set veth0 up
        ip -n "$h" route add default via "$gw4"
        ip -n "$h" -6 route add default via "$gw6"
        # The veths would hand the router frames with partial checksums (TX offload).
        in_ns "$h" ethtool -K veth0 tx off >/dev/null
        in_ns "$R" ethtool -K "$port" tx off >/dev/null
    done
}

# The router's configuration (as configs/router.toml, on this topology's ports).
write_config() {
    local drv=$1 steering=""
    [ "$drv" = afxdp ] && steering='steering = "all"'
    cat >"$work/router-$drv.toml" <<EOF
# Generated by scripts/topology.sh for namespace $R.
name = "router"
forwarding = true
# Its own, not the default /run/dataplane.sock: another router may be listening there.
control-socket = "$work/control.sock"

[[ports]]
name = "r-h1"
driver = "$drv"
$steering
ipv4 = ["198.51.100.1/24"]
ipv6 = ["2001:db8:1::1/64"]

[[ports]]
name = "r-h2"
driver = "$drv"
$steering
ipv4 = ["203.0.113.1/24"]
ipv6 = ["2001:db8:2::1/64"]

[[routes]]
prefix = "10.0.0.0/8"
unreachable = true

[workers]
cores = [0]
idle = "poll-then-sleep"
empty-polls = 100

# Applications (dp-httpd, dp-get) attach here for the router's own TCP/UDP.
[sockets]
path = "$work/apps.sock"
EOF
    echo "$work/router-$drv.toml"
}

# Starts dataplane run on driver $1; returns 1 if it exits within its first second.
start_router() {
    local drv=$1 config
    config=$(write_config "$drv")
    # Not through in_ns: a function in the background would be a subshell, and our
    # SIGTERM would stop that subshell instead of the router. In a session of its own
    # (setsid execs, same pid): a terminal's Ctrl-C reaches the whole foreground process
    # group, and the router, which ends at once on a second signal, would then get our
    # SIGTERM as its second and print no counters.
    setsid ip netns exec "$R" "$binary" run --config "$config" >"$work/router.out" 2>"$work/router.err" &
    router_pid=$!
    if [ "$drv" = tap ]; then
        for tap in r-h1 r-h2; do
            for _ in $(seq 100); do ip -n "$R" link show dev "$tap" >/dev/null 2>&1 && break; sleep 0.05; done
            ip -n "$R" link set "$tap" addrgenmode none
            ip -n "$R" link set "$tap" master "${tap/r-/b-}"
            ip -n "$R" link set "$tap" up
        done
    fi
    # Ready when its control socket answers (drivers open, workers running); a router
    # that exits first failed to start.
    local ready=""
    for _ in $(seq 600); do
        if ! kill -0 "$router_pid" 2>/dev/null; then
            break
        fi
        if [ -S "$work/control.sock" ] && { [ ! -x "$dpctl" ] ||
            "$dpctl" --socket "$work/control.sock" show ports >/dev/null 2>&1; }; then
            ready=1
            break
        fi
        sleep 0.05
    done
    if [ -z "$ready" ] || ! kill -0 "$router_pid" 2>/dev/null; then
        kill -TERM "$router_pid" 2>/dev/null || true
        wait "$router_pid" || true
        router_pid=""
        return 1
    fi
    echo "dataplane run (pid $router_pid) on $drv in namespace $R, config $config"
}

step "topology: $H1 -- $R (dataplane) -- $H2"
make_topology
ip -n "$R" -br link show | sed 's/^/  r: /'

step "router: $binary run, driver $driver"
if ! start_router "$driver"; then
    echo "dataplane run on $driver did not start: $(cat "$work/router.err")"
    if [ "$driver" = afxdp ]; then
        echo "falling back to AF_PACKET"
        driver=afpacket
        start_router afpacket || { echo "dataplane run on afpacket did not start either: $(cat "$work/router.err")" >&2; exit 1; }
    else
        exit 1
    fi
fi

step "ping from h1 to h2 over IPv4 (TTL 63: one router on the way)"
in_ns "$H1" ping -c 3 -i 0.2 -W 2 203.0.113.2

step "ping from h1 to h2 over IPv6 (hop limit 63)"
in_ns "$H1" ping -6 -c 3 -i 0.2 -W 2 2001:db8:2::2

step "tracepath from h1 to h2: the router (198.51.100.1) is hop 1"
in_ns "$H1" tracepath -n -m 5 203.0.113.2

step "tracepath from h1 to h2 over IPv6: the router (2001:db8:1::1) is hop 1"
in_ns "$H1" tracepath -6 -n -m 5 2001:db8:2::2

# iperf3 TCP from h1 to h2 for $seconds s; prints the sender's and receiver's totals and
# sets $gbits to the receiver's rate.
throughput() {
    ip netns exec "$H2" iperf3 -s -1 -B 203.0.113.2 >/dev/null 2>&1 &
    iperf_pid=$!
    for _ in $(seq 100); do
        in_ns "$H2" ss -Hltn 'sport = :5201' | grep -q . && break
        sleep 0.05
    done
    in_ns "$H1" iperf3 -c 203.0.113.2 -t "$seconds" -f g >"$work/iperf.txt"
    wait "$iperf_pid" || true
    iperf_pid=""
    grep -E 'sender|receiver' "$work/iperf.txt"
    gbits=$(awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i+1) == "Gbits/sec") r = $i } END { print r }' "$work/iperf.txt")
}

step "throughput: iperf3 TCP from h1 to h2 for $seconds s"
throughput
ours=$gbits
echo "throughput h1 -> h2 through dataplane ($driver): $ours Gbit/s"

# The host stack: applications on the router's own TCP, through shared memory.
bindir=$(dirname "$binary")
if [ -x "$bindir/dp-httpd" ] && [ -x "$bindir/dp-get" ]; then
    step "host stack: curl on h1 downloads 50 MB from dp-httpd (an application on dataplane's TCP at 198.51.100.1:8080)"
    mkdir -p "$work/www" "$work/srv"
    head -c $((50 << 20)) /dev/urandom >"$work/www/file.bin"
    cp "$work/www/file.bin" "$work/srv/file.bin"
    want=$(sha256sum <"$work/www/file.bin" | cut -d' ' -f1)
    "$bindir/dp-httpd" --attach "$work/apps.sock" 198.51.100.1:8080 "$work/www" >"$work/httpd.out" &
    app_pids+=($!)
    for _ in $(seq 100); do grep -q ready "$work/httpd.out" 2>/dev/null && break; sleep 0.05; done
    in_ns "$H1" curl -sS --max-time 60 -o "$work/curl.bin" -w 'curl: HTTP %{http_code}, %{size_download} bytes in %{time_total} s\n' http://198.51.100.1:8080/file.bin
    got=$(sha256sum <"$work/curl.bin" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "topology: curl's download differs (sha256 $got, want $want)" >&2; exit 1; }
    echo "sha256 matches: $got"

    step "host stack: dp-get (an application on dataplane's TCP) downloads 50 MB from python3 -m http.server on h2"
    ip netns exec "$H2" python3 -m http.server --bind 203.0.113.2 --directory "$work/srv" 8000 >/dev/null 2>&1 &
    app_pids+=($!)
    for _ in $(seq 200); do in_ns "$H2" ss -Hltn 'sport = :8000' | grep -q . && break; sleep 0.05; done
    "$bindir/dp-get" --attach "$work/apps.sock" -o "$work/get.bin" http://203.0.113.2:8000/file.bin 2>"$work/get.err" || { cat "$work/get.err" >&2; exit 1; }
    read -r code bytes secs rate <"$work/get.err"
    echo "dp-get: HTTP $code, $bytes bytes in $secs s ($rate Gbit/s)"
    got=$(sha256sum <"$work/get.bin" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "topology: dp-get's download differs (sha256 $got, want $want)" >&2; exit 1; }
    echo "sha256 matches: $got"
    for p in "${app_pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    app_pids=()
fi

if [ -x "$dpctl" ]; then
    step "dpctl: the running router's routes, neighbors and counters"
    "$dpctl" --socket "$work/control.sock" show routes
    "$dpctl" --socket "$work/control.sock" show neighbors
    "$dpctl" --socket "$work/control.sock" show stats
fi

step "router: SIGTERM; its counters"
kill -TERM "$router_pid"
status=0
wait "$router_pid" || status=$?
router_pid=""
cat "$work/router.err" "$work/router.out"
if [ "$status" -ne 0 ]; then
    echo "topology: dataplane run exited with status $status" >&2
    exit 1
fi

# The reference beside our figure: the same hosts and veths (TX checksum offload off, so
# no GSO: one packet per MTU, as through dataplane), with the kernel of r forwarding.
step "reference: Linux's own forwarding in r (kernel addresses in r now that dataplane has stopped)"
if [ "$driver" = tap ]; then
    up1=b-h1 up2=b-h2
else
    up1=r-h1 up2=r-h2
fi
ip -n "$R" addr add 198.51.100.1/24 dev "$up1"
ip -n "$R" addr add 203.0.113.1/24 dev "$up2"
in_ns "$R" sysctl -q -w net.ipv4.ip_forward=1
# The hosts still know dataplane's MAC for their gateway (with TAP, the TAP device's).
ip -n "$H1" neigh flush dev veth0
ip -n "$H2" neigh flush dev veth0
in_ns "$H1" ping -c 1 -W 2 203.0.113.2 >/dev/null
throughput
echo "throughput h1 -> h2: dataplane ($driver) $ours Gbit/s; Linux forwarding $gbits Gbit/s"
