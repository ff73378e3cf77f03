#!/usr/bin/env bash
# Prometheus and Grafana beside a router, for a developer (docs/monitoring.md, "On a
# developer's machine"). Uses the shipped files unchanged but for addresses: Prometheus
# scrapes the router with monitoring/prometheus/prometheus.yml and its rules, Grafana is
# provisioned with the datasource and the dashboard of monitoring/grafana/. Data goes to a
# directory of its own (default ./data/monitoring), never to the system services'.
#
#   monitoring/run.sh [--router 127.0.0.1:8080] [--prometheus-port 9090]
#                     [--grafana-port 3000] [--dir data/monitoring] [--no-grafana]
#
# Needs `prometheus` (Debian: apt-get install prometheus) and, unless --no-grafana, Grafana:
# `grafana-server` or `grafana` from apt.grafana.com (package `grafana`), or else `docker`
# (image grafana/grafana-oss). Ctrl-C stops both.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

router=127.0.0.1:8080
prometheus_port=9090
grafana_port=3000
dir="$repo/data/monitoring"
grafana=true
while [ $# -gt 0 ]; do
  case "$1" in
    --router) router="$2"; shift 2 ;;
    --prometheus-port) prometheus_port="$2"; shift 2 ;;
    --grafana-port) grafana_port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --no-grafana) grafana=false; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (--help)" >&2; exit 2 ;;
  esac
done

fail() { echo "run.sh: $*" >&2; exit 1; }

command -v prometheus >/dev/null 2>&1 ||
  fail "prometheus not found: install Debian's package (sudo apt-get install prometheus; its system service is not needed: sudo systemctl disable --now prometheus)"
grafana_bin=""
if $grafana; then
  for candidate in grafana-server grafana; do
    if command -v "$candidate" >/dev/null 2>&1; then grafana_bin="$candidate"; break; fi
  done
  if [ -z "$grafana_bin" ] && ! command -v docker >/dev/null 2>&1; then
    fail "Grafana not found: it is not in Debian; install the package grafana from apt.grafana.com (https://grafana.com/docs/grafana/latest/setup-grafana/installation/debian/), or Docker for the image grafana/grafana-oss; or run with --no-grafana"
  fi
fi

mkdir -p "$dir/prometheus-data" "$dir/grafana/provisioning/datasources" \
  "$dir/grafana/provisioning/dashboards" "$dir/grafana/data"

# Prometheus: the shipped configuration aimed at --router, the shipped rules beside it.
sed "s/127\.0\.0\.1:8080/$router/" "$repo/monitoring/prometheus/prometheus.yml" >"$dir/prometheus.yml"
cp "$repo/monitoring/prometheus/sas-router.rules.yml" "$dir/"
if command -v promtool >/dev/null 2>&1; then
  promtool check config "$dir/prometheus.yml" >/dev/null || fail "promtool rejects $dir/prometheus.yml"
fi

# Grafana: the shipped provisioning with this Prometheus's port and the repo's dashboard.
sed "s#http://127.0.0.1:9090#http://127.0.0.1:$prometheus_port#" \
  "$repo/monitoring/grafana/provisioning/datasources/sas-router.yml" \
  >"$dir/grafana/provisioning/datasources/sas-router.yml"
sed "s#/var/lib/grafana/dashboards/sas-router#$repo/monitoring/grafana/dashboards#" \
  "$repo/monitoring/grafana/provisioning/dashboards/sas-router.yml" \
  >"$dir/grafana/provisioning/dashboards/sas-router.yml"

pids=()
container=""
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  [ -n "$container" ] && docker rm -f "$container" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/prometheus-data" \
  --web.listen-address="127.0.0.1:$prometheus_port" >"$dir/prometheus.log" 2>&1 &
pids+=($!)
echo "Prometheus  http://127.0.0.1:$prometheus_port  (scrapes http://$router/metrics; log $dir/prometheus.log)"

if $grafana; then
  if [ -n "$grafana_bin" ]; then
    homepath=/usr/share/grafana
    [ -d "$homepath" ] || fail "Grafana's files are not in $homepath (package grafana from apt.grafana.com)"
    # grafana-server (older packages) takes the flags directly; `grafana` needs `server`.
    sub=()
    [ "$grafana_bin" = grafana ] && sub=(server)
    GF_PATHS_PROVISIONING="$dir/grafana/provisioning" GF_PATHS_DATA="$dir/grafana/data" \
      GF_PATHS_LOGS="$dir/grafana" GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$grafana_port" \
      "$grafana_bin" "${sub[@]}" --homepath "$homepath" >"$dir/grafana.log" 2>&1 &
    pids+=($!)
  else
    container="sas-router-grafana-$$"
    docker run -d --rm --name "$container" --network host \
      -e GF_SERVER_HTTP_PORT="$grafana_port" \
      -v "$dir/grafana/provisioning:/etc/grafana/provisioning:ro" \
      -v "$repo/monitoring/grafana/dashboards:$repo/monitoring/grafana/dashboards:ro" \
      grafana/grafana-oss >/dev/null || fail "docker could not start grafana/grafana-oss"
  fi
  echo "Grafana     http://127.0.0.1:$grafana_port  (admin/admin at first; folder sas-router, dashboard \"sas-router — plateau\")"
fi
echo "Ctrl-C stops them."
wait -n "${pids[@]}" || fail "Prometheus or Grafana stopped: see $dir/*.log"
