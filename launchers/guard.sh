#!/usr/bin/env bash
# Process guard used by launchers/process.ts: runs "$@" in its own session and kills that
# whole session when the parent goes away. The parent holds the write end of our stdin;
# when it closes — a clean stop, a crash, or SIGKILL of the parent — `read` sees EOF and we
# terminate the child (SIGTERM, then SIGKILL after LP_GUARD_GRACE seconds).
set -u
grace="${LP_GUARD_GRACE:-10}"
setsid "$@" </dev/null &
child=$!
# Ends the child's session: SIGTERM, then SIGKILL after the grace period.
terminate() {
  kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
  for _ in $(seq 1 $((grace * 10))); do
    kill -0 "$child" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$child" 2>/dev/null || kill -KILL "$child" 2>/dev/null
}
# A terminal's Ctrl-C reaches our whole process group; the parent decides when we stop (by
# closing our stdin), so the guard itself ignores the terminal's signals. A SIGTERM meant for the
# guard (e.g. `timeout` signals its whole process group) ends the child the same way first: the
# child runs in its own session, so dying without it would leave it running, re-parented to init.
trap '' INT QUIT HUP
trap 'terminate; [ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null; exit 143' TERM
exec 3<&0
(
  trap - TERM
  while IFS= read -r _ <&3; do :; done
  terminate
) 3<&3 &
watcher=$!
exec 3<&-
wait "$child"
status=$?
kill "$watcher" 2>/dev/null
# Make sure nothing the child left in its session survives it.
kill -KILL -- "-$child" 2>/dev/null
exit "$status"
