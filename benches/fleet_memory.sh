#!/usr/bin/env bash
# Peak memory of `sim7k run` alone on a fleet of big publishes: 64 emulated SIM7000s, each its
# own `sim7k emulate` process (pty), dialling one mosquitto; the runner's peak RSS (GNU time)
# for a 1 MiB and a 16-byte payload. The in-process `--emulate --emulate-count` figure (which
# also counts the emulators and the embedded broker) is in docs/performance.md.
# Needs: a release build (target/release/sim7k), mosquitto, GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-64}
BIN=${BIN:-target/release/sim7k}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmessage_size_limit 0\n' "$port" > "$dir/m.conf"
mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
"$mosq" -c "$dir/m.conf" > "$dir/mosq.log" 2>&1 &
sleep 0.5
: > "$dir/ports"
for i in $(seq 1 "$N"); do
  imei=$(printf '86995103%07d' "$i")
  "$BIN" emulate --link "$dir/modem$i" --profile zero --imei "$imei" --redirect "127.0.0.1:$port" > /dev/null 2>&1 &
  echo "$dir/modem$i" >> "$dir/ports"
done
for i in $(seq 1 "$N"); do
  for _ in $(seq 1 100); do [ -e "$dir/modem$i" ] && break; sleep 0.05; done
done
for size in 0 1048576; do
  /usr/bin/time -f "payload_size=$size devices=$N peak_rss_kb=%M wall_s=%e" \
    "$BIN" run recipes/mqtt-publish.yaml --ports-file "$dir/ports" --set payload_size=$size \
    --quiet --json > "$dir/out.json" 2> "$dir/err.txt" || true
  tail -1 "$dir/err.txt"
  python3 -c "import json,sys; d=json.load(open('$dir/out.json')); print('  passed', d.get('passed'), 'of', d.get('devices'))"
done
