#!/bin/sh
# Saves a screenshot of the window for the README: 4 renderers on four pages under Xvfb, one
# killed with SIGKILL (--no-restart keeps its sad tab up) and one stopped with SIGSTOP (its
# "Page unresponsive" bar), everything done through sbx-ctl as a script would.
# Usage: ui/screenshot.sh BUILD_DIR OUTPUT.png   (`make screenshot` runs it)
set -eu
build=$1
out=$2
if [ -z "${SBX_IN_XVFB:-}" ]; then
  exec env SBX_IN_XVFB=1 xvfb-run -a -s "-screen 0 1600x1000x24" "$0" "$@"
fi
sock=$(mktemp -u /tmp/sbx-screenshot-XXXXXX)
ctl() { "$build/bin/sbx-ctl" --control "$sock" "$@"; }
# Polls `sbx-ctl list` until it shows at least $2 renderers in state $1; gives up after 20 s.
wait_state() {
  i=0
  while [ "$(ctl list 2>/dev/null | grep -o "\"state\":\"$1\"" | wc -l)" -lt "$2" ]; do
    i=$((i + 1))
    if [ "$i" -gt 200 ]; then
      echo "screenshot: no $2 renderer(s) $1 after 20 s" >&2
      kill "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
}

"$build/bin/sbx" --renderers 1 --page sbx://plasma --spawn sbx://clock \
  --spawn 'sbx://text/Hello%20from%20sbx' --spawn about:blank --no-restart --hang-timeout 1000 \
  --control "$sock" --screenshot "$out" --screenshot-after-ms 60000 &
pid=$!
wait_state running 4
ctl kill 2 KILL >/dev/null
ctl kill 3 STOP >/dev/null
wait_state exited 1
wait_state unresponsive 1
# Some history for the charts, then the picture.
sleep 10
kill -USR1 "$pid"
wait "$pid"
