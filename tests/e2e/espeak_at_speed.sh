#!/bin/bash
# espeak-ng behind a simulated accelerator: one synthesis at a time per replica (flock on
# E2E_REPLICA_LOCK), each taking characters / E2E_CHARS_PER_SECOND seconds in all: the real
# espeak-ng runs inside the lock, then the script sleeps what is left of that time. A
# replica then serves its pool's declared throughput whatever espeak-ng itself costs on
# the shared cores (run after the sleep, as before, it added 0.1-0.5 s to each request and
# the replicas served 25-28 chars/s against 40 declared), without burning the CPU a real
# model would.
set -euo pipefail
text=$(cat)
if [[ -z "${E2E_CHARS_PER_SECOND:-}" || -z "${E2E_REPLICA_LOCK:-}" ]]; then
  printf '%s' "$text" | espeak-ng "$@"
  exit
fi
exec 9>"$E2E_REPLICA_LOCK"
flock 9
now() { local t=${EPOCHREALTIME/[.,]/}; echo $(( 10#$t )); }  # microseconds
start=$(now)
printf '%s' "$text" | espeak-ng "$@"
left=$(( ${#text} * 1000000 / E2E_CHARS_PER_SECOND - ($(now) - start) ))
if (( left > 0 )); then
  printf -v seconds '%d.%06d' $(( left / 1000000 )) $(( left % 1000000 ))
  sleep "$seconds"
fi
