#!/usr/bin/env bash
# Installs what the tests need when it is missing (SIPp from Debian's `sip-tester`, headless
# Chromium and chromedriver for the console tests, node and npm to bundle JsSIP for the
# WebRTC phone tests), then runs formatting and lint checks and every test: unit,
# virtual-time simulations, and end-to-end over loopback with real SIPp peers and a real
# browser.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# JsSIP bundled for the browser: built when missing or older than the lock file.
jssip_build=false
[ tests/jssip/dist/jssip.js -nt tests/jssip/package-lock.json ] || jssip_build=true
if $jssip_build && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]} (apt-get)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
if $jssip_build; then
  echo "== building JsSIP for the browser tests (npm)"
  (cd tests/jssip && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets
