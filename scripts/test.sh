#!/usr/bin/env bash
# The test command (make test): installs what the tests need, starts one
# moto_server on a free 127.0.0.1 port for the whole run, runs every check
# and test, and stops moto again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pip() { # tool, pip requirement
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "test: $1 not found; installing $2 with pip" >&2
	python3 -m pip install --quiet "$2"
}
need_pip moto_server 'moto[server]'
need_pip cfn-lint 'cfn-lint'
need_pip aws 'awscli' # the local stack's Management API is tested with the AWS CLI

# Browser tests: Debian's Chromium and playwright-core from npm (Playwright's
# own browser download does not work offline, and is never used).
if [ -z "${PUSHGATE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test: chromium not found; installing Debian's chromium" >&2
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		echo "test: chromium not found; install it (apt-get install chromium) or set PUSHGATE_CHROMIUM" >&2
	fi
fi
if [ -z "${PUSHGATE_CHROMIUM:-}" ] && command -v chromium >/dev/null 2>&1; then
	export PUSHGATE_CHROMIUM="$(command -v chromium)"
fi
if [ ! -d internal/testkit/browsertest/node_modules/playwright-core ] ||
	[ internal/testkit/browsertest/package-lock.json -nt internal/testkit/browsertest/node_modules/.package-lock.json ]; then
	npm ci --prefix internal/testkit/browsertest --no-audit --no-fund --loglevel=error
fi

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
