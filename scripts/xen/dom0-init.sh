#!/bin/sh
# /init of the lab's Linux PV dom0 (built into build/xen/dom0.cpio by scripts/xen/dom0.sh). Brings up what
# `xl create` needs (xenfs, the Xen device drivers, xenstored, xenconsoled with guest console logs), then runs
# /test/run.sh (scripts/xen/dom0-test.sh, from the per-run cpio that scripts/xen/lab.sh appends) and reboots,
# which ends QEMU (-no-reboot). Everything printed here reaches the host on Xen's serial console (hvc0).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/lib/xen-4.17/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /run/netns
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
echo "XENLAB dom0 init $(cut -d' ' -f1 /proc/uptime)s after kernel start"

for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-netback xen-blkback bridge veth tun loop; do
    modprobe "$m" || echo "XENLAB modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen
mkdir -p /var/log/xen/console /var/run/xen /var/lib/xen /var/lock
# The C xenstored, in the foreground of a background job (its own forking leaves nothing to wait for).
xenstored --no-fork --pid-file=/var/run/xenstored.pid >/var/log/xen/xenstored.log 2>&1 &
for _ in $(seq 50); do xenstore-read / >/dev/null 2>&1 && break; sleep 0.1; done
# Dom0's own xenstore entries (name Domain-0, domid); xl list works without them but libxl warns.
xen-init-dom0 >/var/log/xen/init-dom0.log 2>&1 || echo "XENLAB xen-init-dom0 failed: $(cat /var/log/xen/init-dom0.log)"
# Guest consoles go to /var/log/xen/console/guest-<name>.log (no terminal needed).
xenconsoled --log=guest --log-dir=/var/log/xen/console --timestamp=none --pid-file=/var/run/xenconsoled.pid
echo "XENLAB xen ready $(cut -d' ' -f1 /proc/uptime)s after kernel start"
xl list

if [ -x /test/run.sh ]; then
    /test/run.sh
else
    echo "XENLAB no /test/run.sh: nothing to run"
fi
echo "XENLAB dom0 end"
sync
# Xen halts the machine (never powers it off) when dom0 powers off; a reboot makes QEMU (-no-reboot) exit.
reboot -f
sleep 5
echo b > /proc/sysrq-trigger
