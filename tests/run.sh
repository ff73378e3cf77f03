#!/usr/bin/env bash
# Installs what the tests need when it is missing (SIPp from Debian's `sip-tester`, baresip
# as a desk phone, headless Chromium and chromedriver for the console tests, node and npm to
# bundle JsSIP and SIP.js for the WebRTC phone tests, PostgreSQL for the shared store, Kamailio for the failover tests,
# promtool from `prometheus` for the monitoring files, rtpengine for the media generator's
# smoke test, clang, llvm and libbpf-dev for the kernel relay prototype's BPF object), then
# runs formatting and lint checks and every test: unit, virtual-time simulations, and end-to-end over loopback with real
# SIPp peers, baresip and a real browser.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v baresip >/dev/null 2>&1 || missing+=(baresip-core)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
# PostgreSQL for the shared-store tests (each starts its own cluster: initdb + pg_ctl).
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
# Kamailio in front of two routers for the failover tests (deploy/kamailio/kamailio.cfg).
[ -x /usr/sbin/kamailio ] || missing+=(kamailio)
# promtool (Debian's `prometheus` package) checks monitoring/ against a real scrape
# (tests/it/monitoring.rs). The package also enables a Prometheus service on :9090, which
# the tests do not use: `systemctl disable --now prometheus` if it is not wanted.
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# rtpengine (userspace, started by the test itself) for the media load generator's smoke test
# (tests/it/mediagen.rs, a few seconds) and loadtest/media_sidebyside.sh. Where systemd runs,
# the package also starts its own service (ng on 127.0.0.1:2223): the tests do not use it.
command -v rtpengine >/dev/null 2>&1 || missing+=(rtpengine-daemon)
# clang and libbpf's headers rebuild the kernel media relay's BPF object to check that the
# checked-in one is what its source compiles to (src/media/kernel, docs/kernel-relay.md).
command -v clang >/dev/null 2>&1 || missing+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
command -v llvm-strip >/dev/null 2>&1 || missing+=(llvm)
# JsSIP and SIP.js bundled for the browser: built when either is missing or older than the
# lock file.
jssip_build=false
for bundle in jssip.js sipjs.js; do
  [ "tests/jssip/dist/$bundle" -nt tests/jssip/package-lock.json ] || jssip_build=true
done
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
  echo "== building JsSIP and SIP.js for the browser tests (npm)"
  (cd tests/jssip && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
# The integration tests are one binary (tests/it) whose tests mostly wait on SIPp, browsers
# and timers: 4 threads on 2 cores took the suite from 260 s to 113 s; 8 was faster still
# but failed audio-timing and browser tests when the machine was loaded.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}"
# The media generator's smoke test runs the example's binary: `--all-targets` builds
# examples only in test mode.
cargo build --workspace --examples
cargo test --workspace --all-targets

# The kernel relay's object must match its C source (src/media/kernel). The prototype loader
# that measured it is its own cargo workspace (loadtest/kernel_relay), sharing that object.
echo "== kernel relay (src/media/kernel, loadtest/kernel_relay)"
src/media/kernel/build-bpf.sh --check
cargo test --release --manifest-path loadtest/kernel_relay/Cargo.toml
# Its end-to-end tests load the program: root or CAP_BPF + CAP_NET_ADMIN, BTF, TCX (kernel
# >= 6.6). Where the machine has them they must pass; where not, they cannot run: said loudly.
lacks=$(python3 - <<'PY'
import os, platform
caps = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")), 16)
lacks = []
if not (caps >> 39 & 1 or caps >> 21 & 1):
    lacks.append("CAP_BPF")
if not caps >> 12 & 1:
    lacks.append("CAP_NET_ADMIN")
if not os.path.exists("/sys/kernel/btf/vmlinux"):
    lacks.append("BTF (/sys/kernel/btf/vmlinux)")
major, minor = (int(x) for x in platform.release().split(".")[:2])
if (major, minor) < (6, 6):
    lacks.append(f"TCX (kernel {platform.release()} < 6.6)")
print(", ".join(lacks))
PY
)
if [ -z "$lacks" ]; then
  cargo test --test it e2e_kernel_relay -- --ignored
else
  echo "!! ================================================================================"
  echo "!! KERNEL RELAY END-TO-END TESTS NOT RUN: this machine lacks $lacks."
  echo "!! The program's build check and layout tests ran; the router falls back to userspace."
  echo "!! ================================================================================"
fi

# A short libFuzzer run of the fuzz targets (fuzz/run.sh: SAS_FUZZ_SECONDS per target, 10 by
# default; 0 skips it). It needs the nightly toolchain; without it the corpus was still
# replayed on stable above (fuzz_corpus::), but no new input is tried, and that is said.
fuzz_seconds="${SAS_FUZZ_SECONDS:-10}"
if [ "$fuzz_seconds" = 0 ]; then
  echo "!! FUZZ RUN SKIPPED: SAS_FUZZ_SECONDS=0 (only the corpus replay ran)."
elif cargo +nightly --version >/dev/null 2>&1; then
  fuzz/run.sh "$fuzz_seconds"
else
  echo "!! ================================================================================"
  echo "!! FUZZ RUN SKIPPED: no nightly Rust toolchain (rustup toolchain install nightly)."
  echo "!! Only the corpus replay ran (cargo test --test it fuzz_corpus::); no new inputs tried."
  echo "!! ================================================================================"
fi
