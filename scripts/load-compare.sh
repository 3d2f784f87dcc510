#!/usr/bin/env bash
# Compares Caddy with and without Vigil under load, as DESIGN.md asks: the
# same proxied request, interleaved rounds, equal GOGC, CPU time per request
# of the Caddy process (utime+stime from /proc, so the load generator and the
# upstream do not count).
#
#   scripts/load-compare.sh [rounds] [seconds-per-run] [path]
#
# Needs wrk (Debian package wrk). Prints one line per run and the medians.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-3}
secs=${2:-5}
path=${3:-/products/42}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy

# the upstream: a second Caddy answering a small static body
cat >"$work/upstream" <<CADDY
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:18091 {
	respond "ok" 200
}
CADDY
"$work/caddy" run --config "$work/upstream" --adapter caddyfile >/dev/null 2>&1 &

gateway() { # $1 = with | without
	local vigil=""
	if [ "$1" = with ]; then
		vigil='vigil {
		login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 5 within 10m for 10m
		block_ip 30 within 10m for 10m
		stuffing 10 within 10m
	}'
	fi
	cat >"$work/gw-$1" <<CADDY
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:18090 {
	$vigil
	reverse_proxy 127.0.0.1:18091
}
CADDY
}
gateway with
gateway without

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # $1 = with | without; prints µs of gateway CPU per request
	GOGC=100 "$work/caddy" run --config "$work/gw-$1" --adapter caddyfile >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18090$path && break; sleep 0.05; done
	wrk -t1 -c16 -d1s "http://127.0.0.1:18090$path" >/dev/null # warm up
	local before after out reqs
	before=$(cpu_ticks $pid)
	out=$(wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:18090$path")
	after=$(cpu_ticks $pid)
	kill $pid; wait $pid 2>/dev/null || true
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" -v mode="$1" \
		'BEGIN { us = t / hz * 1e6 / n; printf "%-8s %8d requests  %6.1f µs CPU/request\n", mode, n, us > "/dev/stderr"; print us }'
}

with=() without=()
for r in $(seq 1 "$rounds"); do
	without+=("$(run without)")
	with+=("$(run with)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mw=$(median "${with[@]}") mo=$(median "${without[@]}")
awk -v w="$mw" -v o="$mo" 'BEGIN { printf "median: without %.1f µs, with Vigil %.1f µs CPU/request: Vigil adds %.1f µs (%.0f%%)\n", o, w, w - o, (w - o) / o * 100 }'
