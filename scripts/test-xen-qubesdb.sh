#!/usr/bin/env bash
# The image with --qubesdb under nested Xen against dom0's QubesDB stand-in (scripts/xen/README.md, mode
# qubesdb): the keys on the console, /qubes-ip as the public address, the tunnel up with it, a firewall update
# written at run time logged and acknowledged. ~30-40 s. Same settings as scripts/test-xen.sh.
exec env XEN_MODE=qubesdb "$(dirname "$0")/test-xen.sh" "$@"
