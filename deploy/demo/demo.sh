#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions are called through trap and wait_for
# llmesh local demo: a whole mesh on 127.0.0.1.
#
#   fake provider      one process answering as OpenAI, Anthropic, OpenRouter and Gemini
#   wnam-sjc-1         egress, loc US, colo SJC, hint wnam
#   wnam-lax-1         egress, loc US, colo LAX, hint wnam
#   hk-1               ingress, loc HK: rule HK,CN -> wnam; its own provider URLs
#                      point at a closed port, so a 200 proves the tunnel carried it
#   us-1               ingress, loc US: calls the fake provider directly
#
# Usage:
#   deploy/demo/demo.sh            start the mesh, print what to try, wait for Ctrl-C
#   deploy/demo/demo.sh --check    start the mesh, run the requests, print PASS/FAIL, stop
#
# Environment:
#   DEMO_PORT_BASE   first port of the block of 43 the demo uses (default 18400)
#   BIN              directory holding ingress, egress, fakeprovider (default: <repo>/bin)
#   DEMO_KEEP_LOGS   1 keeps the log directory after a clean exit
#
# `make demo` builds the binaries first. Needs bash and curl.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEMO=$ROOT/deploy/demo
BIN=${BIN:-$ROOT/bin}

MODE=run
case "${1:-}" in
"") ;;
--check) MODE=check ;;
-h | --help)
	sed -n '3,/^set /p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

for b in ingress egress fakeprovider; do
	if [[ ! -x $BIN/$b ]]; then
		echo "demo: $BIN/$b not found; run 'make build' (or 'make demo')" >&2
		exit 1
	fi
done
command -v curl >/dev/null || {
	echo "demo: curl is required" >&2
	exit 1
}

# Ports. The YAML files in deploy/demo read them with ${VAR} expansion.
base=${DEMO_PORT_BASE:-18400}
if ! [[ $base =~ ^[0-9]+$ ]] || ((base < 1024 || base > 65535 - 42)); then
	echo "demo: DEMO_PORT_BASE must be a number from 1024 to $((65535 - 42))" >&2
	exit 2
fi
export DEMO_PROVIDER_PORT=$((base + 0))
export DEMO_HK_HTTP=$((base + 10)) DEMO_HK_GOSSIP=$((base + 11))
export DEMO_US_HTTP=$((base + 20)) DEMO_US_GOSSIP=$((base + 21))
export DEMO_SJC_HTTP=$((base + 30)) DEMO_SJC_TUNNEL=$((base + 31)) DEMO_SJC_GOSSIP=$((base + 32))
export DEMO_LAX_HTTP=$((base + 40)) DEMO_LAX_TUNNEL=$((base + 41)) DEMO_LAX_GOSSIP=$((base + 42))

# A fresh shared tunnel token per run; every config reads ${LLMESH_TUNNEL_TOKEN}.
LLMESH_TUNNEL_TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
export LLMESH_TUNNEL_TOKEN

PROVIDER=http://127.0.0.1:$DEMO_PROVIDER_PORT
HK=http://127.0.0.1:$DEMO_HK_HTTP
US=http://127.0.0.1:$DEMO_US_HTTP
SJC=http://127.0.0.1:$DEMO_SJC_HTTP
LAX=http://127.0.0.1:$DEMO_LAX_HTTP

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/llmesh-demo.XXXXXX")

# --- processes ----------------------------------------------------------------

names=() # process names, in start order
pids=()  # their pids
stopped=0
failed_exit=0

start() { # start NAME COMMAND...
	local name=$1
	shift
	"$@" >"$LOGS/$name.log" 2>&1 &
	names+=("$name")
	pids+=("$!")
}

pid_of() {
	local i
	for i in "${!names[@]}"; do
		[[ ${names[$i]} == "$1" ]] && echo "${pids[$i]}"
	done
}

# stop sends SIGTERM to every process (ingress nodes first, so nothing new
# reaches the egress nodes), waits for each to drain and exit, and records
# whether every one exited 0. Stragglers get SIGKILL after 20 s.
stop() {
	((stopped)) && return
	stopped=1
	local i pid rc deadline
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[$i]}" 2>/dev/null
	done
	deadline=$((SECONDS + 20))
	for i in "${!pids[@]}"; do
		pid=${pids[$i]}
		while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "demo: ${names[$i]} did not stop in time; killing it" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		rc=$?
		if ((rc != 0)); then
			echo "demo: ${names[$i]} exited with status $rc (log: $LOGS/${names[$i]}.log)" >&2
			failed_exit=1
		fi
	done
}

cleanup() {
	stop
	if [[ ${DEMO_KEEP_LOGS:-0} == 1 || $failed_exit == 1 || ${keep_logs:-0} == 1 ]]; then
		echo "demo: logs kept in $LOGS" >&2
	else
		rm -rf "$LOGS"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# die prints a message and the tail of every log, then exits (cleanup runs).
die() {
	echo "demo: $*" >&2
	local n
	for n in "${names[@]}"; do
		echo "--- last lines of $n.log ---" >&2
		tail -n 15 "$LOGS/$n.log" >&2
	done
	keep_logs=1
	exit 1
}

# wait_for DESCRIPTION SECONDS COMMAND... polls COMMAND every 0.2 s until it
# succeeds, failing early when a demo process has exited.
wait_for() {
	local what=$1 limit=$2 i
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@" >/dev/null 2>&1; do
		for i in "${!pids[@]}"; do
			kill -0 "${pids[$i]}" 2>/dev/null || die "${names[$i]} exited while waiting for $what"
		done
		((SECONDS < deadline)) || die "timed out after ${limit}s waiting for $what"
		sleep 0.2
	done
}

healthy() { curl -fsS --max-time 2 "$1/health"; }

# sees_egress URL N: the node at URL sees at least N alive wnam egress nodes.
sees_egress() {
	local n
	n=$("$BIN/ingress" members -addr "$1" | awk '$2 == "egress" && $5 == "wnam" && $6 == "alive"' | wc -l)
	((n >= $2))
}

# tunnel_ready: a request through hk-1 comes back through an egress.
tunnel_ready() {
	curl -sS --max-time 5 -o /dev/null -D - "$HK/openai/v1/models" -H 'Authorization: Bearer sk-demo' |
		tr -d '\r' | grep -qi '^x-mesh-route: egress$'
}

echo "llmesh demo: logs in $LOGS"
start fakeprovider "$BIN/fakeprovider" -listen "127.0.0.1:$DEMO_PROVIDER_PORT"
start wnam-sjc-1 "$BIN/egress" -config "$DEMO/egress-sjc.yaml"
start wnam-lax-1 "$BIN/egress" -config "$DEMO/egress-lax.yaml"
start hk-1 "$BIN/ingress" -config "$DEMO/ingress-hk.yaml"
start us-1 "$BIN/ingress" -config "$DEMO/ingress-us.yaml"

wait_for "the fake provider" 15 curl -sS --max-time 2 -o /dev/null "$PROVIDER/v1/models"
for url in "$SJC" "$LAX" "$HK" "$US"; do
	wait_for "$url/health" 30 healthy "$url"
done
wait_for "hk-1 to see both wnam egress nodes" 30 sees_egress "$HK" 2
wait_for "us-1 to see both wnam egress nodes" 30 sees_egress "$US" 2
wait_for "a first request through the tunnel" 15 tunnel_ready

echo
echo "Membership as hk-1 sees it ($BIN/ingress members -addr $HK):"
echo
"$BIN/ingress" members -addr "$HK"
echo

# --- check mode ---------------------------------------------------------------

if [[ $MODE == check ]]; then
	pass=0
	fail=0
	tmp=$LOGS/check
	mkdir -p "$tmp"

	header() { tr -d '\r' <"$tmp/h" | grep -i "^$1:" | tail -n 1 | cut -d: -f2- | sed 's/^ *//'; }

	# expect NAME STATUS ROUTE BODY_PATTERN CURL_ARGS...: ROUTE "-" means no
	# X-Mesh-Route header is expected; BODY_PATTERN is a fixed string.
	expect() {
		local name=$1 want_status=$2 want_route=$3 want_body=$4
		shift 4
		local status route problems=()
		status=$(curl -sS --max-time 30 -D "$tmp/h" -o "$tmp/b" -w '%{http_code}' "$@" 2>"$tmp/err") ||
			problems+=("curl: $(cat "$tmp/err")")
		route=$(header X-Mesh-Route)
		[[ $status == "$want_status" ]] || problems+=("status $status, want $want_status")
		if [[ $want_route == - ]]; then
			[[ -z $route ]] || problems+=("X-Mesh-Route: $route, want none")
		else
			[[ $route == "$want_route" ]] || problems+=("X-Mesh-Route: '${route}', want $want_route")
		fi
		if [[ $want_route == egress ]]; then
			[[ $(header X-Mesh-Hint) == wnam ]] || problems+=("X-Mesh-Hint: '$(header X-Mesh-Hint)', want wnam")
			[[ $(header X-Mesh-Egress) == wnam-* ]] || problems+=("X-Mesh-Egress: '$(header X-Mesh-Egress)', want a wnam node")
		fi
		grep -qF -- "$want_body" "$tmp/b" || problems+=("body lacks '$want_body': $(head -c 300 "$tmp/b")")
		local detail="$status"
		[[ -n $route ]] && detail+=", X-Mesh-Route: $route"
		[[ -n $(header X-Mesh-Egress) ]] && detail+=" via $(header X-Mesh-Egress)"
		[[ -n $(header X-Mesh-Error) ]] && detail+=", X-Mesh-Error: $(header X-Mesh-Error)"
		if ((${#problems[@]} == 0)); then
			printf 'PASS  %-52s %s\n' "$name" "$detail"
			pass=$((pass + 1))
		else
			printf 'FAIL  %-52s %s\n' "$name" "$(
				IFS=';'
				echo "${problems[*]}"
			)"
			fail=$((fail + 1))
		fi
	}

	# expect_header NAME HEADER VALUE: checks the last response's headers.
	expect_header() {
		local got
		got=$(header "$2")
		if [[ $got == "$3" ]]; then
			printf 'PASS  %-52s %s: %s\n' "$1" "$2" "$got"
			pass=$((pass + 1))
		else
			printf "FAIL  %-52s %s: '%s', want '%s'\n" "$1" "$2" "$got" "$3"
			fail=$((fail + 1))
		fi
	}

	chat='{"model":"fake-gpt","messages":[{"role":"user","content":"Hello"}]}'
	chat_stream='{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"Hello"}]}'
	messages='{"model":"fake-claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}'
	gemini='{"contents":[{"parts":[{"text":"Hello"}]}]}'
	openai_h=(-H 'Authorization: Bearer sk-demo' -H 'Content-Type: application/json')
	anthropic_h=(-H 'x-api-key: sk-ant-demo' -H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json')
	gemini_h=(-H 'x-goog-api-key: demo' -H 'Content-Type: application/json')

	for side in HK US; do
		if [[ $side == HK ]]; then url=$HK route=egress who=hk-1; else url=$US route=direct who=us-1; fi
		expect "$who openai chat completion" 200 $route '"content":"chunk 0 chunk 1 chunk 2 "' \
			"${openai_h[@]}" "$url/openai/v1/chat/completions" -d "$chat"
		expect "$who openai chat completion, streaming" 200 $route 'data: [DONE]' \
			-N "${openai_h[@]}" "$url/openai/v1/chat/completions" -d "$chat_stream"
		expect_header "$who   SSE is not buffered by proxies" X-Accel-Buffering no
		expect "$who anthropic messages, streaming" 200 $route 'event: message_stop' \
			-N "${anthropic_h[@]}" "$url/anthropic/v1/messages" -d "$messages"
		expect "$who openrouter chat completion" 200 $route '"content":"chunk 0 chunk 1 chunk 2 "' \
			"${openai_h[@]}" "$url/openrouter/v1/chat/completions" -d "$chat"
		expect "$who gemini streamGenerateContent?alt=sse" 200 $route '"finishReason":"STOP"' \
			-N "${gemini_h[@]}" "$url/gemini/v1beta/models/fake-gemini:streamGenerateContent?alt=sse" -d "$gemini"
	done

	expect "us-1 with X-Mesh-Hint: wnam goes through an egress" 200 egress '"content":"chunk 0 chunk 1 chunk 2 "' \
		-H 'X-Mesh-Hint: wnam' "${openai_h[@]}" "$US/openai/v1/chat/completions" -d "$chat"
	expect "hk-1 unknown provider is a 404" 404 - '"code":"unknown_provider"' "$HK/nope/v1/models"
	expect_header "hk-1   mesh errors are marked" X-Mesh-Error unknown_provider
	expect "hk-1 dot segment is a 400" 400 - '"code":"bad_path"' --path-as-is "$HK/openai/v1/../v1/models"
	expect "hk-1 anthropic error shape" 400 - '"type":"error"' --path-as-is "$HK/anthropic/v1//messages"
	expect "egress serves no provider routes (404)" 404 - '"code":"not_found"' "$SJC/openai/v1/models"
	expect "hk-1 /health" 200 - '"status": "ok"' "$HK/health"
	expect "hk-1 /metrics" 200 - 'llmesh_requests_total{code="200",provider="openai",route="egress"}' "$HK/metrics"
	expect "wnam-sjc-1 /members" 200 - '"name": "hk-1"' "$SJC/members"

	stop
	if ((failed_exit == 0)); then
		printf 'PASS  %-52s %s\n' "SIGTERM: every process drained and exited 0" ""
		pass=$((pass + 1))
	else
		printf 'FAIL  %-52s %s\n' "SIGTERM: every process drained and exited 0" "see above"
		fail=$((fail + 1))
	fi
	echo
	if ((fail > 0)); then
		keep_logs=1
		echo "FAIL: $fail of $((pass + fail)) checks failed"
		exit 1
	fi
	echo "PASS: all $pass checks passed"
	exit 0
fi

# --- interactive mode ---------------------------------------------------------

cat <<EOF
The mesh is up:
  hk-1 (ingress, loc HK, routes HK,CN -> wnam)   $HK
  us-1 (ingress, loc US, direct)                 $US
  wnam-sjc-1 (egress, admin only)                $SJC
  wnam-lax-1 (egress, admin only)                $LAX
  fake provider                                  $PROVIDER

Through hk-1, every request leaves through a wnam egress: the answer carries
X-Mesh-Route: egress, X-Mesh-Egress and X-Mesh-Hint. Through us-1 it is
X-Mesh-Route: direct. Replace $HK by $US to compare.

# OpenAI chat completion
curl -i $HK/openai/v1/chat/completions \\
  -H 'Authorization: Bearer sk-demo' -H 'Content-Type: application/json' \\
  -d '{"model":"fake-gpt","messages":[{"role":"user","content":"Hello"}]}'

# OpenAI chat completion, streaming (SSE)
curl -i -N $HK/openai/v1/chat/completions \\
  -H 'Authorization: Bearer sk-demo' -H 'Content-Type: application/json' \\
  -H 'X-Fake-Chunks: 10' -H 'X-Fake-Delay: 300ms' \\
  -d '{"model":"fake-gpt","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

# Anthropic messages, streaming
curl -i -N $HK/anthropic/v1/messages \\
  -H 'x-api-key: sk-ant-demo' -H 'anthropic-version: 2023-06-01' -H 'Content-Type: application/json' \\
  -d '{"model":"fake-claude","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hello"}]}'

# OpenRouter (base URL .../api on the provider side)
curl -i $HK/openrouter/v1/chat/completions \\
  -H 'Authorization: Bearer sk-or-demo' -H 'Content-Type: application/json' \\
  -d '{"model":"fake-gpt","messages":[{"role":"user","content":"Hello"}]}'

# Gemini streamGenerateContent as SSE
curl -i -N "$HK/gemini/v1beta/models/fake-gemini:streamGenerateContent?alt=sse" \\
  -H 'x-goog-api-key: demo' -H 'Content-Type: application/json' \\
  -d '{"contents":[{"parts":[{"text":"Hello"}]}]}'

# us-1 allows a client hint: this request leaves through wnam too
curl -i $US/openai/v1/chat/completions -H 'X-Mesh-Hint: wnam' \\
  -H 'Authorization: Bearer sk-demo' -H 'Content-Type: application/json' \\
  -d '{"model":"fake-gpt","messages":[{"role":"user","content":"Hello"}]}'

# Membership, health and metrics (any node)
$BIN/ingress members -addr $HK
curl $SJC/health
curl -s $HK/metrics | grep ^llmesh_

# OpenAI SDKs: point the base URL at the ingress
#   Python:  client = OpenAI(base_url="$HK/openai/v1", api_key="sk-demo")
#   JS/TS:   const client = new OpenAI({ baseURL: "$HK/openai/v1", apiKey: "sk-demo" });
#   Go:      client := openai.NewClient(option.WithBaseURL("$HK/openai/v1/"), option.WithAPIKey("sk-demo"))
# Anthropic SDKs: base URL $HK/anthropic

Try stopping one egress (kill -TERM $(pid_of wnam-sjc-1)): hk-1 keeps answering through wnam-lax-1.
Logs: $LOGS
Press Ctrl-C to stop the mesh (SIGTERM: every node drains, then exits).
EOF

# Wait until Ctrl-C, or until a process exits on its own.
while ((${#pids[@]} > 0)); do
	wait -n
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			echo "demo: ${names[$i]} exited (log: $LOGS/${names[$i]}.log)" >&2
			keep_logs=1
			unset 'pids[i]' 'names[i]'
			pids=("${pids[@]}") names=("${names[@]}")
			break
		fi
	done
done
echo "demo: every process has exited" >&2
exit 1
