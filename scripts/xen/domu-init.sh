#!/bin/sh
# /init of the lab's Linux PVH domU (build/xen/domu.cpio): proves the dom0 wiring (bridges, netback,
# blkback, xl's vif/disk config) with a guest whose drivers are known good, and is the client domU of later
# tests. Configured by the kernel command line (xl `extra`):
#   oxv.net=DEV:ADDR/LEN[,DEV:ADDR/LEN...]   addresses (eth0 is the first vif)
#   oxv.ping=IP[,IP...]                      targets that must answer
#   oxv.disk=DEV                             a block device whose first 512 bytes are printed (config disk)
#   oxv.gw=IP, oxv.forward=1                 default route, IPv4 forwarding (a stand-in router)
#   oxv.stay=1                               keep running (no poweroff) after the checks
#   oxv.watch=IP                             with oxv.stay=1: then ping IP once a second, one line each:
#                                            `DOMU tick SECONDS ok|fail IP` (SECONDS: the domU's uptime)
# Prints `DOMU ok|FAIL <what>` per check and `DOMU done` on its console (hvc0: xenconsoled's guest log),
# then powers off.
export PATH=/sbin:/usr/sbin:/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
modprobe xen-netfront
modprobe xen-blkfront
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^oxv\.$1=//p" | tail -1; }
ok() { echo "DOMU ok $*"; }
bad() { echo "DOMU FAIL $*"; }
# Devices appear asynchronously once xenbus has connected them.
for _ in $(seq 50); do [ -e /sys/class/net/eth0 ] && break; sleep 0.1; done
ip link set lo up
for spec in $(arg net | tr ',' ' '); do
    dev=${spec%%:*} addr=${spec#*:}
    for _ in $(seq 50); do [ -e "/sys/class/net/$dev" ] && break; sleep 0.1; done
    if ip addr add "$addr" dev "$dev" && ip link set "$dev" up; then
        ok "net $dev $addr mac $(cat "/sys/class/net/$dev/address")"
    else
        bad "net $dev $addr"
    fi
done
# oxv.gw=IP oxv.forward=1: a plain IPv4 router (lab.sh --standin: the router test's checks against Linux).
[ -n "$(arg gw)" ] && ip route add default via "$(arg gw)" && ok "default route via $(arg gw)"
[ "$(arg forward)" = 1 ] && echo 1 > /proc/sys/net/ipv4/ip_forward && ok "forwarding on"
for ip in $(arg ping | tr ',' ' '); do
    if ping -c 2 -W 3 "$ip" >/tmp/ping 2>&1; then ok "ping $ip"; else bad "ping $ip: $(tail -2 /tmp/ping | tr '\n' ' ')"; fi
done
disk=$(arg disk)
if [ -n "$disk" ]; then
    for _ in $(seq 50); do [ -b "/dev/$disk" ] && break; sleep 0.1; done
    if [ -b "/dev/$disk" ]; then
        ok "disk $disk $(cat "/sys/class/block/$disk/size") sectors, ro=$(cat "/sys/class/block/$disk/ro"), first line: $(head -n 1 "/dev/$disk" | head -c 64)"
    else
        bad "disk $disk: no block device"
    fi
fi
echo "DOMU done"
if [ "$(arg stay)" = 1 ]; then
    # Stay up until dom0 says `xl shutdown`: Linux then runs /sbin/poweroff, and busybox's poweroff signals
    # init (us, pid 1) with SIGUSR2 (SIGTERM for reboot).
    trap 'echo "DOMU poweroff"; poweroff -f' USR2 TERM
    watch=$(arg watch)
    while :; do
        if [ -n "$watch" ]; then
            if ping -c 1 -W 1 "$watch" >/dev/null 2>&1; then r=ok; else r=fail; fi
            echo "DOMU tick $(cut -d' ' -f1 /proc/uptime) $r $watch"
        fi
        sleep 1
    done
fi
poweroff -f
