#!/usr/bin/env bash
# Builds a Debian 12 cloud guest from Debian's packages only (nothing from
# outside the package archive), for the tests and Benchmarks/cloud.sh:
#
#   root.qcow2   ext4 root file system on the whole disk (no partition table),
#                3 GiB virtual; cloud-init, sshd, DHCP by ifupdown
#   vmlinuz      the guest's kernel and initramfs, for direct kernel boot:
#   initrd.img     -kernel vmlinuz -initrd initrd.img
#                  -append 'root=/dev/vda console=ttyS0'
#   cmdline      that command line
#   vmlinuz-generic, initrd-generic.img
#                Debian's generic kernel (linux-image-amd64) of the same
#                image, for tests that need what the cloud kernel leaves out
#                (9p: CONFIG_NET_9P is not set in linux-image-cloud-amd64)
#   build-seconds  how long the build took here
#
# The root disk is virtio (/dev/vda); cloud-init reads only a NoCloud seed
# (a volume labelled cidata) and configures DHCP on the first NIC when the
# seed has no network-config. No host keys, no machine-id, no password: each
# instance gets its own from cloud-init and systemd.
#
# Usage: build-cloud-guest.sh DEST. The image is cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/vmtools-tests/cloud-guest-KEY, KEY a hash of
# this script (which holds the package list), so fresh clones on one machine
# share it; DEST becomes a symbolic link to it. Rebuilt only when KEY changes.
# Needs root (the tree's files must belong to root for mke2fs -d), mmdebstrap,
# e2fsprogs, qemu-utils, and network access to the Debian archive.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:?usage: build-cloud-guest.sh DEST}

# The issue's list plus e2fsprogs: --variant=apt leaves it out (it is not
# Essential in bookworm), and cloud-init's resizefs and the boot's fsck need it.
packages=linux-image-cloud-amd64,linux-image-amd64,systemd-sysv,udev,cloud-init,openssh-server,ifupdown,isc-dhcp-client,netbase,iproute2,sudo,locales,python3-cffi-backend,qemu-guest-agent,e2fsprogs
cmdline="root=/dev/vda console=ttyS0"

key=$(sha256sum < "$here/build-cloud-guest.sh" | cut -c1-16)
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/vmtools-tests
cache=$cache_root/cloud-guest-$key
mkdir -p "$cache_root" "$(dirname "$dest")"

[ -L "$dest" ] || [ ! -e "$dest" ] || { echo "build-cloud-guest.sh: $dest exists and is not a link to the cache: remove it" >&2; exit 1; }
link() {
    # Atomic: a test reading DEST sees the old link or the new one.
    ln -sfn "$cache" "$dest.tmp.$$"
    mv -Tf "$dest.tmp.$$" "$dest"
}

# Parallel callers: one builds, the others wait and reuse.
exec 9>"$cache_root/cloud-guest.lock"
flock 9
if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$key" ]; then
    touch "$cache/stamp"
    link
    exit 0
fi
# Builds of other versions of this script (other branches, older clones) go
# when unused for two weeks: each is ~500 MB.
find "$cache_root" -mindepth 2 -maxdepth 2 -path '*/cloud-guest-*/stamp' -mtime +14 -printf '%h\0' | xargs -0r rm -rf

[ "$(id -u)" -eq 0 ] || { echo "build-cloud-guest.sh: needs root (mmdebstrap to a directory, files owned by root for mke2fs -d)" >&2; exit 1; }
PATH="$PATH:/sbin:/usr/sbin"
for tool in mmdebstrap mke2fs qemu-img; do
    command -v "$tool" >/dev/null || {
        echo "build-cloud-guest.sh: $tool is missing (apt-get install mmdebstrap e2fsprogs qemu-utils)" >&2
        exit 1
    }
done

start=$(date +%s)
work=$(mktemp -d "$cache_root/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

echo "build-cloud-guest.sh: building the Debian 12 cloud guest in $cache (about 2 minutes)" >&2
mmdebstrap --quiet --variant=apt --include="$packages" bookworm "$root" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" </dev/null

# Identity comes per instance: cloud-init makes the host keys and the
# hostname, systemd the machine-id on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo localhost > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# Without an fstab line systemd leaves the root file system read-only.
echo "/dev/vda / ext4 errors=remount-ro 0 1" > "$root/etc/fstab"
# Only NoCloud: no probing of cloud metadata services, which under TCG costs
# minutes of timeouts.
printf 'datasource_list: [ NoCloud, None ]\n' > "$root/etc/cloud/cloud.cfg.d/90-vmtools-nocloud.cfg"
# cloud-init sets en_US.UTF-8; generated here, it is not regenerated at each
# first boot (tens of seconds under TCG).
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null
echo LANG=en_US.UTF-8 > "$root/etc/default/locale"
chroot "$root" apt-get clean

mkdir -p "$work/out"
# Both kernels have the same version: pick each by its flavour.
cloud=$(cd "$root/boot" && ls vmlinuz-*-cloud-amd64 | sed 's/^vmlinuz-//')
generic=$(cd "$root/boot" && ls vmlinuz-*-amd64 | grep -v -- -cloud-amd64 | sed 's/^vmlinuz-//')
cp "$root/boot/vmlinuz-$cloud" "$work/out/vmlinuz"
cp "$root/boot/initrd.img-$cloud" "$work/out/initrd.img"
cp "$root/boot/vmlinuz-$generic" "$work/out/vmlinuz-generic"
cp "$root/boot/initrd.img-$generic" "$work/out/initrd-generic.img"
chmod 644 "$work/out"/vmlinuz* "$work/out"/initrd*
mke2fs -F -q -t ext4 -L root -d "$root" "$work/root.img" 3G >/dev/null
qemu-img convert -f raw -O qcow2 "$work/root.img" "$work/out/root.qcow2"
echo "$cmdline" > "$work/out/cmdline"
echo $(($(date +%s) - start)) > "$work/out/build-seconds"
echo "$key" > "$work/out/stamp"

rm -rf "$cache"
mv "$work/out" "$cache"
link
echo "build-cloud-guest.sh: built in $(cat "$cache/build-seconds") s" >&2
