#!/usr/bin/env bash
# Benchmarks pipedrive-gateway against the hand-written reference relay
# (bench/refrelay) and a no-op HTTP server (bench/noop), all on one NATS
# server, with interleaved rounds; prints a Markdown summary. See
# bench/README.md for what each number means.
#
# Usage: bash bench/run.sh
# Settings (environment):
#   ROUNDS=5          rounds; each round runs every scenario against every system
#   DURATION=10s      length of each run
#   CONCURRENCY="16 64"  closed-loop scenarios
#   RATE=2000         open-loop scenario (req/s); empty to skip
#   WARMUP=3s         one unmeasured closed-loop run per system before round 1
#   VERIFY=all        all | last | none: rounds whose stream contents are checked
#   NATS_BENCH=1      also run `nats bench js pub sync` if a nats CLI is found or installable
#   NATS_STORE=       JetStream store directory (default: a new dir in the temp dir)
#   KEEP=0            1 keeps the temp dir (binaries, logs, results) for inspection
#   TRACING=0         1 exports the gateway's traces over OTLP/HTTP to a local sink (a second
#                     no-op server), so every request records and ships two spans
set -euo pipefail

ROUNDS="${ROUNDS:-5}"
DURATION="${DURATION:-10s}"
CONCURRENCY="${CONCURRENCY:-16 64}"
RATE="${RATE-2000}"
WARMUP="${WARMUP:-3s}"
VERIFY="${VERIFY:-all}"
NATS_BENCH="${NATS_BENCH:-1}"
KEEP="${KEEP:-0}"
TRACING="${TRACING:-0}"
USER_NAME=pipedrive
PASSWORD="bench-$RANDOM$RANDOM"
COMPANY=9912345

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pdgw-bench.XXXXXX")"
bin="$tmp/bin"
mkdir -p "$bin"
pids=()
samplers=()

cleanup() {
	local code=$?
	trap - EXIT INT TERM
	for pid in "${samplers[@]}"; do kill "$pid" 2>/dev/null || true; done
	# Reverse start order: the HTTP servers first, NATS last.
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ "$KEEP" == 1 ]]; then
		echo "kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

cd "$root"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
log "building into $tmp (load average $load_start)"
bash scripts/build.sh "$bin/pipedrive-gateway"
go build -o "$bin/refrelay" ./bench/refrelay
go build -o "$bin/noop" ./bench/noop
go build -o "$bin/benchutil" ./bench/benchutil
go build -o "$bin/loadgen" ./cmd/loadgen
go build -o "$bin/nats-server" github.com/nats-io/nats-server/v2

nats_cli=""
if [[ "$NATS_BENCH" == 1 ]]; then
	if command -v nats >/dev/null; then
		nats_cli="$(command -v nats)"
	elif GOBIN="$tmp/bin" timeout 180 go install github.com/nats-io/natscli/nats@v0.5.0 >/dev/null 2>&1; then
		nats_cli="$tmp/bin/nats"
	else
		log "no nats CLI and go install failed: skipping nats bench"
	fi
fi

mapfile -t port < <("$bin/benchutil" ports 7)
nats_port=${port[0]} nats_mon=${port[1]} gw_port=${port[2]} ops_port=${port[3]} ref_port=${port[4]} noop_port=${port[5]}
sink_port=${port[6]}
nats_url="nats://127.0.0.1:$nats_port"

log "starting nats-server on $nats_url"
"$bin/nats-server" -a 127.0.0.1 -p "$nats_port" -m "$nats_mon" -js -sd "${NATS_STORE:-$tmp/nats-store}" >"$tmp/nats.log" 2>&1 &
pids+=($!)
"$bin/benchutil" wait "http://127.0.0.1:$nats_mon/healthz?js-enabled-only=true" 30s

if command -v openssl >/dev/null; then
	state_key="$(openssl rand -base64 32)"
else
	state_key="$(head -c 32 /dev/urandom | base64)"
fi
otel=()
if [[ "$TRACING" == 1 ]]; then
	log "tracing on: the gateway exports spans to a sink on 127.0.0.1:$sink_port"
	"$bin/noop" -addr "127.0.0.1:$sink_port" >"$tmp/sink.log" 2>&1 &
	pids+=($!)
	"$bin/benchutil" wait "http://127.0.0.1:$sink_port/" 30s
	otel=(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$sink_port" OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)
fi
log "starting gateway on 127.0.0.1:$gw_port"
env -i PATH="$PATH" HOME="$tmp" NATS_URL="$nats_url" STATE_KEY="$state_key" "${otel[@]}" \
	WEBHOOK_USER="$USER_NAME" WEBHOOK_PASSWORD="$PASSWORD" \
	HTTP_ADDR="127.0.0.1:$gw_port" OPS_ADDR="127.0.0.1:$ops_port" DATA_DIR="$tmp/gwdata" \
	LOG_LEVEL=warn "$bin/pipedrive-gateway" >"$tmp/gateway.log" 2>&1 &
gw_pid=$!
pids+=($gw_pid)
"$bin/benchutil" wait "http://127.0.0.1:$ops_port/readyz" 30s

log "starting refrelay on 127.0.0.1:$ref_port and noop on 127.0.0.1:$noop_port"
"$bin/refrelay" -addr "127.0.0.1:$ref_port" -nats "$nats_url" -user "$USER_NAME" -password "$PASSWORD" >"$tmp/refrelay.log" 2>&1 &
ref_pid=$!
pids+=($ref_pid)
"$bin/noop" -addr "127.0.0.1:$noop_port" >"$tmp/noop.log" 2>&1 &
pids+=($!)
"$bin/benchutil" wait "http://127.0.0.1:$ref_port/healthz" 30s
"$bin/benchutil" wait "http://127.0.0.1:$noop_port/" 30s

declare -A url=(
	[gateway]="http://127.0.0.1:$gw_port"
	[refrelay]="http://127.0.0.1:$ref_port"
	[noop]="http://127.0.0.1:$noop_port"
)
declare -A stream=([gateway]=PIPEDRIVE [refrelay]=REF)
systems=(gateway refrelay noop)
scenarios=()
for c in $CONCURRENCY; do scenarios+=("c$c"); done
[[ -n "$RATE" ]] && scenarios+=("r$RATE")
results="$tmp/results.jsonl"
: >"$results"
rss_samples="$tmp/rss.txt"
: >"$rss_samples"

# sample_rss PID NAME: appends "NAME VmRSS_kB" every 100 ms until killed.
sample_rss() {
	while :; do
		awk -v n="$2" '/^VmRSS:/ {print n, $2}' "/proc/$1/status" 2>/dev/null >>"$rss_samples" || return 0
		sleep 0.1
	done
}

# load SYSTEM SCENARIO ROUND [extra loadgen flags…]
load() {
	local sys=$1 scen=$2 round=$3
	shift 3
	local mode=()
	case "$scen" in
	c*) mode=(-concurrency "${scen#c}") ;;
	r*) mode=(-rate "${scen#r}" -max-outstanding 1024) ;;
	esac
	local verify=()
	if [[ -n "${stream[$sys]:-}" ]] && { [[ "$VERIFY" == all ]] || { [[ "$VERIFY" == last ]] && [[ "$round" == "$ROUNDS" ]]; }; }; then
		# Purging first keeps both stores equally small from run to run.
		verify=(-verify-nats "$nats_url" -verify-stream "${stream[$sys]}" -purge)
	fi
	local out rc=0
	out="$("$bin/loadgen" -url "${url[$sys]}" -company "$COMPANY" -user "$USER_NAME" -password "$PASSWORD" \
		-duration "$DURATION" "${mode[@]}" "${verify[@]}" -label "$sys|$scen|$round" -json "$@" 2>&1)" || rc=$?
	echo "$out" | grep -v '^{' | sed 's/^/    /' >&2
	echo "$out" | grep '^{' >>"$results" || true
	if [[ $rc -ne 0 ]]; then
		log "loadgen failed for $sys $scen round $round (exit $rc)"
	fi
}

if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
	log "warm-up ($WARMUP per system)"
	for sys in "${systems[@]}"; do
		"$bin/loadgen" -url "${url[$sys]}" -company "$COMPANY" -user "$USER_NAME" -password "$PASSWORD" \
			-duration "$WARMUP" -concurrency 32 >/dev/null
	done
fi

for round in $(seq "$ROUNDS"); do
	# Rotate the order each round so no system always runs first.
	order=()
	for i in 0 1 2; do order+=("${systems[$(((i + round - 1) % 3))]}"); done
	for scen in "${scenarios[@]}"; do
		for sys in "${order[@]}"; do
			log "round $round/$ROUNDS $scen $sys"
			if [[ "$scen" == r* && "$sys" != noop ]]; then
				# Only the system under load: an idle process's RSS says little.
				if [[ "$sys" == gateway ]]; then
					sample_rss "$gw_pid" gateway_rss_peak_open_loop &
				else
					sample_rss "$ref_pid" refrelay_rss_peak_open_loop &
				fi
				samplers=($!)
				load "$sys" "$scen" "$round"
				kill "${samplers[@]}" 2>/dev/null || true
				wait "${samplers[@]}" 2>/dev/null || true
				samplers=()
			else
				load "$sys" "$scen" "$round"
			fi
		done
	done
done

nats_bench_out=""
if [[ -n "$nats_cli" ]]; then
	# Same server, file storage, dedupe ids, message size = the mean webhook
	# body; this is the ceiling for a synchronous JetStream publisher.
	size="$("$bin/benchutil" meanbody "$results")"
	for c in $CONCURRENCY; do
		log "nats bench js pub sync, $c clients, ${size}B"
		line="$(timeout 120 "$nats_cli" -s "$nats_url" bench js pub sync bench.x --clients "$c" --msgs $((c * 1500)) \
			--size "$size" --create --storage file --dedup --dedupwindow 10m --stream NBENCH --purge --no-progress 2>&1 |
			grep -Ei 'stats:' | tail -1 || true)"
		nats_bench_out+="| nats bench js pub sync, $c clients, ${size} B | ${line:-failed} |"$'\n'
	done
fi

# Peaks: the highest sampled VmRSS during the open-loop runs, and the
# kernel's high-water mark (VmHWM) over the whole benchmark.
rss_file="$tmp/rss-summary.txt"
{
	for n in gateway_rss_peak_open_loop refrelay_rss_peak_open_loop; do
		awk -v n="$n" '$1 == n && $2 > m {m = $2} END {if (m) print n, m}' "$rss_samples"
	done
	awk '/^VmHWM:/ {print "gateway_vmhwm_whole_run", $2}' "/proc/$gw_pid/status"
	awk '/^VmHWM:/ {print "refrelay_vmhwm_whole_run", $2}' "/proc/$ref_pid/status"
} >"$rss_file"

echo
echo "## pipedrive-gateway benchmark"
echo
echo "machine: $(nproc) CPUs, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(go version | cut -d' ' -f3-)"
echo "gateway: $(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo unknown), tracing export $([[ "$TRACING" == 1 ]] && echo on || echo off); load average (1/5/15 min) at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs: $ROUNDS interleaved rounds × $DURATION per scenario and system; mean body $("$bin/benchutil" meanbody "$results") B; one nats-server (file store) for all"
echo
"$bin/benchutil" summary "$results" "$rss_file"
if [[ -n "$nats_bench_out" ]]; then
	echo
	echo "| NATS ceiling | result |"
	echo "|---|---|"
	printf '%s' "$nats_bench_out"
fi
# The gateway logs at warn: anything but the expected PUBLIC_URL notice is
# worth a look (publish failures, NATS disconnects).
warnings="$(grep -iE '"level":"(WARN|ERROR)"|level=(WARN|ERROR)' "$tmp/gateway.log" | grep -v 'PUBLIC_URL is not set' || true)"
if [[ -n "$warnings" ]]; then
	echo
	echo "gateway warnings/errors: $(echo "$warnings" | wc -l) lines; first: $(echo "$warnings" | head -1)"
fi
