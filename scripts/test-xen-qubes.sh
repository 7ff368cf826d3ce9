#!/usr/bin/env bash
# The image as a Qubes-style net VM under nested Xen (scripts/xen/README.md, mode qubes), in `make test`:
#   --qubesdb against dom0's QubesDB stand-in (Debian's libxenvchan, vchan port 111): the initial dump, the
#   public address from /qubes-ip and /qubes-gateway, the tunnel up with it;
#   a Linux client domU whose vif has `backend=` the image becomes a client port (netback, grant copy), pings
#   its gateway and the host behind the server through the tunnel, and goes on pinging once a second;
#   dom0 commits new /qubes-firewall rules at run time (drop ICMP): the image applies them to the live port,
#   acknowledges them to dom0 (RESP_OK), and the running client's pings are dropped from then on (counted);
#   the client's `xl shutdown` removes its port, and the image stays up; `xl shutdown` of the image.
# 50-65 s (a second lab boot, said so, when a dom0 program dies in the nested lab: see scripts/test-xen.sh).
# Same settings as scripts/test-xen.sh. XEN_MODE=qubesdb scripts/test-xen.sh runs the QubesDB part alone.
exec env XEN_MODE=qubes "$(dirname "$0")/test-xen.sh" "$@"
