#!/usr/bin/env bash
# Factory-line benchmark (not a test): the provisioning recipe on 1 and on N emulated modems
# in one `sim7k run`, measuring wall time, CPU time (user + system) and peak RSS with GNU time.
#
#   benches/fleet.sh                 # N=64, profiles zero and nbiot, 3 repetitions each
#   N=32 REPS=5 PROFILES=zero benches/fleet.sh
#
# The emulated modems and the embedded MQTT broker run inside the measured process, so CPU
# time and memory include them: an upper bound on what sim7k itself needs per device.
# Prints a Markdown table (medians over REPS runs) for docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-64}"
REPS="${REPS:-3}"
PROFILES="${PROFILES:-zero nbiot}"
RECIPE="${RECIPE:-recipes/provision-sim7000.yaml}"

if ! [ -x /usr/bin/time ]; then
  echo "GNU time is needed: apt-get install time" >&2
  exit 2
fi

cargo build --release --quiet
BIN="$PWD/target/release/sim7k"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# Run one measurement; prints "wall user sys maxrss_kb".
measure() {
  local out="$WORK/time.txt"
  rm -f "$WORK/r.jsonl"
  local code=0
  /usr/bin/time -v -o "$out" "$BIN" run "$RECIPE" --quiet "$@" >/dev/null 2>"$WORK/stderr" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "run failed (exit $code): $*" >&2
    cat "$WORK/stderr" >&2
    exit 1
  fi
  awk -F': ' '
    /Elapsed \(wall clock\)/ {
      n = split($2, p, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + p[i]
      wall = s
    }
    /User time/ { user = $2 }
    /System time/ { sys = $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.2f %.2f %.2f %d\n", wall, user, sys, rss }
  ' "$out"
}

# Median of REPS measurements, field by field.
median_of() {
  local rows=()
  for _ in $(seq "$REPS"); do
    rows+=("$(measure "$@")")
  done
  printf '%s\n' "${rows[@]}" | awk -v reps="$REPS" '
    { for (f = 1; f <= 4; f++) v[f, NR] = $f }
    END {
      for (f = 1; f <= 4; f++) {
        for (i = 1; i <= NR; i++) a[i] = v[f, i]
        for (i = 1; i <= NR; i++) for (j = i + 1; j <= NR; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        printf "%s%s", a[int((NR + 1) / 2)], (f < 4 ? " " : "\n")
      }
    }'
}

echo "sim7k fleet benchmark: $RECIPE, N=$N, $REPS runs each (medians), $(nproc) CPUs, $(uname -sr)"
echo
echo "| profile | modems | wall s | CPU s (user+sys) | peak RSS MiB | wall ×1 | CPU ×1 | RSS ×1 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for profile in $PROFILES; do
  read -r w1 u1 s1 r1 < <(median_of --emulate --emulator-profile "$profile" --emulate-count 1 --report "$WORK/r.jsonl")
  read -r wn un sn rn < <(median_of --emulate --emulator-profile "$profile" --emulate-count "$N" --report "$WORK/r.jsonl")
  awk -v p="$profile" -v n="$N" -v w1="$w1" -v u1="$u1" -v s1="$s1" -v r1="$r1" \
      -v wn="$wn" -v un="$un" -v sn="$sn" -v rn="$rn" 'BEGIN {
    c1 = u1 + s1; cn = un + sn
    printf "| %s | 1 | %.2f | %.2f | %.1f | 1.00 | 1.00 | 1.00 |\n", p, w1, c1, r1 / 1024
    printf "| %s | %d | %.2f | %.2f | %.1f | %.2f | %.2f | %.2f |\n", p, n, wn, cn, rn / 1024,
      wn / w1, (c1 > 0 ? cn / c1 : 0), rn / r1
  }'
done
