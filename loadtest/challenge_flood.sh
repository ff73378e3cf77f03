#!/bin/sh
# 100,000 unauthenticated REGISTERs (each a different name and Call-ID) against the real
# binary on loopback; prints the router's resident memory before and after. The figure is in
# README.md (Security). SAS_FLOOD_COUNT changes the count.
set -e
cd "$(dirname "$0")/.."
cargo test --test it e2e_guard::challenge_flood_holds_no_memory -- --ignored --nocapture
