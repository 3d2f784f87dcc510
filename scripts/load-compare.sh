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
#         mixed  (not in the default) open-loop, fixed rates, with
#                cmd/vigil-loadgen: 2,000 other/s and 200 login/s at once
#                (MIXED_OTHER, MIXED_LOGIN to change them), 64 connections;
#                latency from each request's due time, so stalls count
#   -s  memory or redis (default memory); redis uses the Redis on
#       127.0.0.1:6379 (REDIS_ADDR to change it) under a fresh key prefix,
#       deleted at the end
#
# Needs wrk (Debian package wrk), curl and openssl; mixed needs jq, not wrk.
# Prints one line per run and, per kind, the medians: requests/s with and
# without Vigil, CPU µs per request, p50 and p99 latency; for mixed, the
# gateway's CPU per second of load and per request, the CPU added per login
# and the p50 and p99 added per kind.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 secs=5 kinds=other,jwt,login store=memory
while getopts "r:d:k:s:" o; do
	case $o in
	r) rounds=$OPTARG ;;
	d) secs=$OPTARG ;;
	k) kinds=$OPTARG ;;
	s) store=$OPTARG ;;
	*) sed -n 8,27p "$0" >&2; exit 2 ;;
	esac
done
tools="curl openssl" mixed=false
for kind in ${kinds//,/ }; do
	case $kind in
	mixed) mixed=true; tools="$tools jq" ;;
	*) tools="$tools wrk" ;;
	esac
done
for tool in $tools; do
	command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install $tool)" >&2; exit 1; }
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
if $mixed; then go build -o "$work/vigil-loadgen" ./cmd/vigil-loadgen; fi

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

mixed_other=${MIXED_OTHER:-2000} mixed_login=${MIXED_LOGIN:-200}
loadgen() { # $1 = duration; prints vigil-loadgen's JSON
	"$work/vigil-loadgen" -url http://127.0.0.1:18090 -duration "$1" -conns 64 -users 10000 \
		-rate "other=$mixed_other,login=$mixed_login"
}

# run_mixed $1 = with | without; prints "cpu_ms cpu_ms_per_s cpu_us_per_request
# logins_sent other_p50 other_p99 login_p50 login_p99" (ms)
run_mixed() {
	GOGC=100 "$work/caddy" run --config "$work/gw-$1" --adapter caddyfile >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18090/ && break; sleep 0.05; done
	loadgen 1s >/dev/null # warm up
	local before after out
	before=$(cpu_ticks $pid)
	out=$(loadgen "${secs}s")
	after=$(cpu_ticks $pid)
	kill $pid; wait $pid 2>/dev/null || true
	local elapsed sent dropped errors statuses lag logins op50 op99 lp50 lp99
	read -r elapsed sent dropped errors statuses lag logins op50 op99 lp50 lp99 < <(echo "$out" | jq -r '[
		.elapsed_s, .total.sent, .total.dropped, .total.errors, ([.total.status[]] | add // 0), .total.start_lag_ms.p99,
		.kinds.login.sent, .kinds.other.latency_ms.p50, .kinds.other.latency_ms.p99,
		.kinds.login.latency_ms.p50, .kinds.login.latency_ms.p99] | @tsv')
	awk -v t=$((after - before)) -v hz="$hz" -v el="$elapsed" -v n="$sent" -v mode="$1" \
		-v dr="$dropped" -v er="$errors" -v st="$statuses" -v lag="$lag" -v logins="$logins" \
		-v op50="$op50" -v op99="$op99" -v lp50="$lp50" -v lp99="$lp99" \
		'BEGIN { ms = t / hz * 1000; us = ms * 1000 / n
		printf "mixed  %-8s CPU %6.1f ms/s (%5.1f µs/request)  other p50 %.3f p99 %.3f ms  login p50 %.3f p99 %.3f ms  (%d sent, %d dropped, %d errors, %d not 2xx/3xx; sent late by p99 %.1f ms)\n", mode, ms / el, us, op50, op99, lp50, lp99, n, dr, er, st, lag > "/dev/stderr"
		printf "%f %f %f %d %f %f %f %f\n", ms, ms / el, us, logins, op50, op99, lp50, lp99 }'
	# dropped requests or a generator starved of CPU: the machine did not
	# hold the rates, and the figures of this run are not comparable
	if [ "$dropped" != 0 ] || [ "$errors" != 0 ] || awk -v l="$lag" 'BEGIN { exit !(l > 5) }'; then
		echo "$1" >>"$work/overloaded"
	fi
}

mixed_rounds() {
	echo "mixed: $mixed_other other/s + $mixed_login login/s, open-loop, 64 connections; CPU of the gateway process; latency from each request's due time" >&2
	: >"$work/with"; : >"$work/without"; : >"$work/overloaded"
	for _ in $(seq 1 "$rounds"); do
		run_mixed without >>"$work/without"
		run_mixed with >>"$work/with"
	done
	awk -v cw="$(col 1 "$work/with")" -v co="$(col 1 "$work/without")" \
		-v sw="$(col 2 "$work/with")" -v so="$(col 2 "$work/without")" \
		-v uw="$(col 3 "$work/with")" -v uo="$(col 3 "$work/without")" \
		-v logins="$(col 4 "$work/with")" -v others="$mixed_other" -v secs="$secs" \
		-v opw="$(col 5 "$work/with")" -v opo="$(col 5 "$work/without")" \
		-v oqw="$(col 6 "$work/with")" -v oqo="$(col 6 "$work/without")" \
		-v lpw="$(col 7 "$work/with")" -v lpo="$(col 7 "$work/without")" \
		-v lqw="$(col 8 "$work/with")" -v lqo="$(col 8 "$work/without")" \
		'BEGIN {
		printf "mixed  medians: gateway CPU %.1f vs %.1f ms per second of load (with vs without Vigil); %.1f vs %.1f µs/request (%+.1f)\n", sw, so, uw, uo, uw - uo
		printf "mixed  medians: CPU added per login %.1f µs = (CPU with %.0f ms - CPU without %.0f ms) / %d logins sent; this also holds Vigil'"'"'s cost on the ~%d other requests\n", (cw - co) * 1000 / logins, cw, co, logins, others * secs
		printf "mixed  medians: p99 added: other %+.3f ms (%.3f vs %.3f), login %+.3f ms (%.3f vs %.3f); p50 added: other %+.3f ms (%.3f vs %.3f), login %+.3f ms (%.3f vs %.3f)\n", oqw - oqo, oqw, oqo, lqw - lqo, lqw, lqo, opw - opo, opw, opo, lpw - lpo, lpw, lpo }'
	if [ -s "$work/overloaded" ]; then
		echo "mixed  warning: $(wc -l <"$work/overloaded") of $((2 * rounds)) runs dropped requests, failed some or sent them more than 5 ms late (p99): the machine did not hold the rates (is something else using the CPUs?), so these figures measure queueing, not Vigil"
	fi
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
col() { awk -v c="$1" '{print $c}' "$2" | median; }

echo "store: $store; $rounds rounds of ${secs}s per kind, 16 connections, interleaved" >&2
for kind in ${kinds//,/ }; do
	if [ "$kind" = mixed ]; then
		mixed_rounds
		continue
	fi
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
