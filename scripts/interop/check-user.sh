#!/bin/sh
# auth-user-pass-verify via-file helper for the interop test: accepts alice / secret123 only.
[ "$(sed -n 1p "$1")" = alice ] && [ "$(sed -n 2p "$1")" = secret123 ]
