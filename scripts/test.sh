#!/usr/bin/env bash
# The test command (make test): installs what the tests need
# (scripts/tools.sh), starts one moto_server on a free 127.0.0.1 port for
# the whole run, runs every check and test, and stops moto again.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/tools.sh
# The project's tools first, whatever else is on PATH.
export PATH="$PWD/.venv/bin:$PATH"
if [ -z "${PUSHGATE_CHROMIUM:-}" ] && command -v chromium >/dev/null 2>&1; then
	export PUSHGATE_CHROMIUM="$(command -v chromium)"
fi
# SAM CLI: no usage reports, no update checks (the tests run offline).
export SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_FEATURES=0

echo "== gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" $unformatted >&2
	exit 1
fi
go vet ./...

# Port 0: moto binds a free port itself and names it in its banner, so no
# other process can take the port between choosing and binding it.
log=$(mktemp)
moto_server -H 127.0.0.1 -p 0 >"$log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; rm -f "$log"' EXIT
port=
for _ in $(seq 1 150); do
	port=$(grep -oE 'Running on http://127\.0\.0\.1:[0-9]+' "$log" | head -1 | sed 's/.*://' || true)
	if [ -n "$port" ] && curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then break; fi
	if ! kill -0 $moto_pid 2>/dev/null; then cat "$log" >&2; echo "moto_server died" >&2; exit 1; fi
	port=
	sleep 0.2
done
if [ -z "$port" ]; then cat "$log" >&2; echo "moto_server did not start" >&2; exit 1; fi
export PUSHGATE_MOTO_ENDPOINT="http://127.0.0.1:$port"
echo "== moto_server on $PUSHGATE_MOTO_ENDPOINT"

echo "== go test"
go test -count=1 -timeout 20m "$@" ./...
