#!/bin/sh
# Container entrypoint for the worker images: start from an empty Prometheus multiprocess
# directory (files from an earlier run would be summed into this one's counters), then
# become gunicorn, so that it is PID 1 and receives SIGTERM itself.
set -eu

: "${PROMETHEUS_MULTIPROC_DIR:=/tmp/prometheus-multiproc}"
export PROMETHEUS_MULTIPROC_DIR

case "$PROMETHEUS_MULTIPROC_DIR" in
  "" | "/") echo "entrypoint: refusing to wipe PROMETHEUS_MULTIPROC_DIR='$PROMETHEUS_MULTIPROC_DIR'" >&2
            exit 2 ;;
esac
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
# Empty it but keep the directory itself: it is often a mounted emptyDir.
find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete

exec elastic-tts-worker serve "$@"
