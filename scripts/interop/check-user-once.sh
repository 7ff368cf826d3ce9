#!/bin/sh
# auth-user-pass-verify via-file helper: accepts alice / secret123 exactly once (it leaves a marker next to
# the credentials file), so any later authentication must use the server's auth-token.
marker="$(dirname "$1")/../oxv-check-user-once.done"
[ -e "$marker" ] && exit 1
[ "$(sed -n 1p "$1")" = alice ] && [ "$(sed -n 2p "$1")" = secret123 ] && touch "$marker"
