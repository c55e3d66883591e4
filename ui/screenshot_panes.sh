#!/bin/sh
# Saves the README's pictures of two panes on Qt's offscreen platform (no display needed): the
# IPC view of renderer 1 and the task manager with its process tree, each over three renderers;
# for the second, renderer 2 is stopped with `sbx-ctl kill 2 STOP` (its state reads T).
# Usage: ui/screenshot_panes.sh BUILD_DIR DOCS_DIR
set -eu
build=$1
docs=$2
sock=$(mktemp -u /tmp/sbx-screenshot-XXXXXX)
shot() {
  QT_QPA_PLATFORM=offscreen "$build/bin/sbx" --renderers 1 --page sbx://plasma \
    --spawn sbx://clock --spawn 'sbx://text/Hello%20from%20sbx' --size "$2" --control "$sock" \
    --screenshot "$docs/$1.png" --screenshot-of "$3" --screenshot-after-ms 4000
}
shot ipc-view 1500x950 ipc
# The picture is taken 4 s in; the stop comes well before, once the renderers run.
(sleep 2; "$build/bin/sbx-ctl" --control "$sock" kill 2 STOP >/dev/null) &
shot process-view 1500x1150 task-manager
wait
