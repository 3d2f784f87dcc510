#!/usr/bin/env bash
# Compares Caddy with and without Vigil under load, as DESIGN.md asks: the
# same proxied requests, interleaved rounds, equal GOGC, the CPU time per
# request of the Caddy process (utime+stime from /proc, so the load
# generator and the upstream do not count), throughput and latency.
#
#   scripts/load-compare.sh [-r rounds] [-d seconds] [-k kinds] [-s store]
#
#   -r  rounds per kind (default 3); -d  seconds per run (default 5)
#   -k  comma-separated traffic kinds (default other,jwt,login):
#         other  GET /products/42, no session
#         jwt    GET /account with a valid HS256 session token (verified,
#                then served from the verification cache)
#         login  POST /login with a wrong password for one of 10,000 users
#   -s  memory or redis (default memory); redis uses the Redis on
#       127.0.0.1:6379 (REDIS_ADDR to change it) under a fresh key prefix,
#       deleted at the end
#
# Needs wrk (Debian package wrk), curl and openssl. Prints one line per run
# and, per kind, the medians: requests/s with and without Vigil, CPU µs per
# request, p50 and p99 latency.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 secs=5 kinds=other,jwt,login store=memory
while getopts "r:d:k:s:" o; do
	case $o in
	r) rounds=$OPTARG ;;
	d) secs=$OPTARG ;;
	k) kinds=$OPTARG ;;
	s) store=$OPTARG ;;
	*) sed -n 8,20p "$0" >&2; exit 2 ;;
	esac
done
for tool in wrk curl openssl; do
	command -v $tool >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
redis_addr=${REDIS_ADDR:-127.0.0.1:6379}
prefix="vigil-load-$$-$RANDOM:"

work=$(mktemp -d)
cleanup() {
	# shellcheck disable=SC2046 # one pid per word
	kill $(jobs -p) 2>/dev/null || true
	if [ "$store" = redis ] && command -v redis-cli >/dev/null; then
		redis-cli -h "${redis_addr%:*}" -p "${redis_addr#*:}" --scan --pattern "${prefix}*" |
			xargs -r redis-cli -h "${redis_addr%:*}" -p "${redis_addr#*:}" del >/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/caddy" ./cmd/caddy

# the upstream: a second Caddy answering a small body on every route
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

# an HS256 token for alice, valid for a day
secret=load-compare-secret-0123456789abcdef
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
head=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
body=$(printf '{"sub":"alice","roles":["user"],"iat":%d,"exp":%d}' "$now" $((now + 86400)) | b64)
sig=$(printf '%s.%s' "$head" "$body" | openssl dgst -sha256 -hmac "$secret" -binary | b64)
token="$head.$body.$sig"

cat >"$work/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
	return wrk.format(nil, "/login", nil, "username=user" .. math.random(1, 10000) .. "&password=wrong")
end
LUA

gateway() { # $1 = with | without
	local vigil="" global=""
	if [ "$1" = with ]; then
		[ "$store" = redis ] && global="vigil {
		store redis {
			addrs $redis_addr
			prefix $prefix
		}
	}"
		# thresholds high enough that the load is never refused: the
		# run measures counting, not the answer to an attack
		vigil="vigil {
		login POST /login {
			user form:username
			success redirect_not /login
		}
		lockout 1000000 within 1m for 1m
		block_ip 1000000000 within 1m for 1m
		session jwt {
			key hs256 $secret
		}
	}"
	fi
	cat >"$work/gw-$1" <<CADDY
{
	admin off
	auto_https off
	persist_config off
	$global
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

wrk_args() { # $1 = kind; sets args
	case $1 in
	other) args=("http://127.0.0.1:18090/products/42") ;;
	jwt) args=(-H "Authorization: Bearer $token" "http://127.0.0.1:18090/account") ;;
	login) args=(-s "$work/login.lua" "http://127.0.0.1:18090/login") ;;
	*) echo "unknown kind $1" >&2; exit 2 ;;
	esac
}

# to_ms turns wrk's latency (950.00us, 1.20ms, 2.10s) into milliseconds
to_ms() { awk '{ v = $1 + 0; if ($1 ~ /us$/) v /= 1000; else if ($1 ~ /ms$/) v *= 1; else if ($1 ~ /s$/) v *= 1000; printf "%.3f", v }'; }

run() { # $1 = with | without, $2 = kind; prints "cpu_us rps p50_ms p99_ms"
	GOGC=100 "$work/caddy" run --config "$work/gw-$1" --adapter caddyfile >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18090/ && break; sleep 0.05; done
	local args
	wrk_args "$2"
	wrk -t1 -c16 -d1s "${args[@]}" >/dev/null # warm up
	local before after out
	before=$(cpu_ticks $pid)
	out=$(wrk -t1 -c16 -d"${secs}s" --latency "${args[@]}")
	after=$(cpu_ticks $pid)
	kill $pid; wait $pid 2>/dev/null || true
	local reqs rps p50 p99
	reqs=$(echo "$out" | awk '/requests in/ {print $1}')
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_ms)
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_ms)
	awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" -v mode="$1" -v kind="$2" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
		'BEGIN { us = t / hz * 1e6 / n; printf "%-6s %-8s %9.0f req/s  %6.1f µs CPU/request  p50 %.3f ms  p99 %.3f ms\n", kind, mode, rps, us, p50, p99 > "/dev/stderr"; printf "%f %f %f %f\n", us, rps, p50, p99 }'
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }

echo "store: $store; $rounds rounds of ${secs}s per kind, 16 connections, interleaved" >&2
for kind in ${kinds//,/ }; do
	: >"$work/with" ; : >"$work/without"
	for _ in $(seq 1 "$rounds"); do
		run without "$kind" >>"$work/without"
		run with "$kind" >>"$work/with"
	done
	awk -v kind="$kind" \
		-v cw="$(col 1 "$work/with")" -v co="$(col 1 "$work/without")" \
		-v rw="$(col 2 "$work/with")" -v ro="$(col 2 "$work/without")" \
		-v pw="$(col 3 "$work/with")" -v po="$(col 3 "$work/without")" \
		-v qw="$(col 4 "$work/with")" -v qo="$(col 4 "$work/without")" \
		'BEGIN { printf "%-6s medians: throughput %.0f%% of bare Caddy (%.0f vs %.0f req/s); CPU %.1f vs %.1f µs/request (+%.1f); p50 %.3f vs %.3f ms; p99 %.3f vs %.3f ms\n", kind, rw / ro * 100, rw, ro, cw, co, cw - co, pw, po, qw, qo }'
done
