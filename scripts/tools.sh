#!/usr/bin/env bash
# Installs the tools the tests need into the project, whatever the machine
# has already, and links them into .venv/bin (put it first on PATH):
#
#   .venv/test   moto_server, cfn-lint, aws   (tools/python/test.txt)
#   .venv/sam    sam                          (tools/python/sam.txt)
#
# Each is a virtual environment of its own, at the exact versions its
# requirements file pins (SAM CLI pins boto3 exactly and brings its own
# cfn-lint, so it stays apart). An environment is rebuilt when its file
# changes. Stock Debian and Ubuntu Python refuse `pip install` outside a
# virtual environment (PEP 668); a venv is what they ask for.
#
# Also: Debian's chromium when no Chromium is found (as root only), and
# playwright-core from internal/testkit/browsertest/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "tools: $*" >&2; }

venv() { # name: .venv/<name> from tools/python/<name>.txt
	local name=$1 dir=.venv/$1 req=tools/python/$1.txt
	local want
	want=$(sha256sum "$req" | cut -d' ' -f1)
	if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	say "installing $req into $dir"
	rm -rf "$dir"
	if ! python3 -m venv "$dir" 2>/dev/null; then
		# Debian and Ubuntu ship venv apart from python3.
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
			say "python3 cannot make a virtual environment; installing Debian's python3-venv"
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
			rm -rf "$dir"
			python3 -m venv "$dir"
		else
			say "python3 cannot make a virtual environment: install python3-venv (apt-get install python3-venv)"
			exit 1
		fi
	fi
	"$dir/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
	echo "$want" >"$dir/.requirements"
}

venv test
venv sam
mkdir -p .venv/bin
for tool in test/bin/moto_server test/bin/cfn-lint test/bin/aws sam/bin/sam; do
	ln -sfn "../$tool" ".venv/bin/$(basename "$tool")"
done

# Browser tests: Debian's Chromium and playwright-core from npm (Playwright's
# own browser download does not work offline, and is never used).
if [ -z "${PUSHGATE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "chromium not found; installing Debian's chromium"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
	else
		say "chromium not found; install it (apt-get install chromium) or set PUSHGATE_CHROMIUM"
	fi
fi
if [ ! -d internal/testkit/browsertest/node_modules/playwright-core ] ||
	[ ! -d internal/testkit/browsertest/node_modules/jose ] ||
	[ internal/testkit/browsertest/package-lock.json -nt internal/testkit/browsertest/node_modules/.package-lock.json ]; then
	npm ci --prefix internal/testkit/browsertest --no-audit --no-fund --loglevel=error
fi
