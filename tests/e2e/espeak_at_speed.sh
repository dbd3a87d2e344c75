#!/bin/bash
# espeak-ng behind a simulated accelerator: one synthesis at a time per replica (flock on
# E2E_REPLICA_LOCK), each held for characters / E2E_CHARS_PER_SECOND seconds, then the
# real espeak-ng. This gives every pool of the e2e loop a real, bounded capacity that
# matches its declared throughput, without burning the CPU a real model would.
set -euo pipefail
text=$(cat)
if [[ -n "${E2E_CHARS_PER_SECOND:-}" && -n "${E2E_REPLICA_LOCK:-}" ]]; then
  ms=$(( ${#text} * 1000 / E2E_CHARS_PER_SECOND ))
  printf -v seconds '%d.%03d' $(( ms / 1000 )) $(( ms % 1000 ))
  flock "$E2E_REPLICA_LOCK" sleep "$seconds"
fi
printf '%s' "$text" | exec espeak-ng "$@"
