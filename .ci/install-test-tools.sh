#!/usr/bin/env bash
# Installs the Debian packages some tests use and skip without: chromium
# (the status page, e2e/status_test.go) and prometheus, for promtool (the
# scrape config and alert rules, e2e/prometheus_test.go). Does nothing for a
# tool that is there; needs root and apt-get. A failed install only makes
# those tests skip, so it never fails CI.
set -uo pipefail
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing ${missing[*]} and not root with apt-get: the tests that use them will skip"
  exit 0
fi
echo "installing ${missing[*]} for the tests that use them"
export DEBIAN_FRONTEND=noninteractive
log=/tmp/llmesh-test-tools-install.log
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "install failed (log: $log): the tests that use ${missing[*]} will skip"
fi
exit 0
