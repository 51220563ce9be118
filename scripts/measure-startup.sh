#!/usr/bin/env bash
# Measures the terminal bot's start-up: time until it has printed its banner
# and answered one command from a pipe (then exits on EOF), and its peak RSS
# while idle for a few seconds. Uses /usr/bin/time -v (Debian package "time").
set -euo pipefail
bin=${1:-bin/bot}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export SITREP_DB=$dir/sitrep.db SITREP_LISTEN=127.0.0.1:0

runs=20
start=$(date +%s%N)
for _ in $(seq $runs); do echo help | "$bin" >/dev/null; done
end=$(date +%s%N)
echo "start, answer one command, exit: $(( (end - start) / runs / 1000000 )) ms per run (mean of $runs)"

/usr/bin/time -v "$bin" < <(sleep 3) >/dev/null 2>"$dir/time.txt" &
sleep 2
pid=$(pgrep -n -f "^$bin\$" || true)
[ -n "$pid" ] && grep -E 'VmRSS|RssAnon|RssFile' "/proc/$pid/status" | sed 's/^/idle after 2 s: /'
wait
grep -E 'Maximum resident set size|Elapsed' "$dir/time.txt"
