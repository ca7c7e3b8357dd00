#!/usr/bin/env bash
# A VM from a cached catalog image (vmcreate(1), IMAGES BY NAME):
# `vmcreate -n -y -C NAME DIR` with the entry's image already in the cache,
# so it only makes the home, a thin qcow2 overlay on the cached image
# (qemu-img create -b) and vm.settings, and lists the VM as the image's
# user. Goal: median < 50 ms, whatever the image's size (a 4 GiB image
# holding 256 MiB here). For reference, `qemu-img create -b` of the same
# overlay alone, and `vmcreate -n -y -c FILE` of a plain file (no overlay).
# The cache is written as a verified pull leaves it (ALG-HEX.qcow2, 0444,
# beside ALG-HEX.record), so nothing is downloaded.
# Usage: bash Benchmarks/catalog.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init catalog.sh
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "catalog.sh: needs qemu-img and qemu-io (apt-get install qemu-utils)" >&2; exit 1; }
for c in vmcreate vminfo; do ln -s "$repo/.build/release/vmtools" "$scratch/$c"; done
export XDG_CACHE_HOME="$scratch/cache"
cache=$XDG_CACHE_HOME/vmtools/images
mkdir -p "$cache/.partial" "$scratch/share/images"
qemu-img create -q -f qcow2 "$scratch/base.qcow2" 4G
qemu-io -c "write -P 0xab 0 256M" "$scratch/base.qcow2" >/dev/null
hex=$(sha256sum "$scratch/base.qcow2" | cut -d' ' -f1)
url=https://images.example/bench/bench-cloud-amd64.qcow2
cp "$scratch/base.qcow2" "$cache/sha256-$hex.qcow2"
chmod 0444 "$cache/sha256-$hex.qcow2"
printf "image_name='bench-cloud'\nimage_url='%s'\nimage_digest='sha256:%s'\nimage_date='%s'\nimage_size='%s'\n" \
    "$url" "$hex" "$(date +%s)" "$(stat -c %s "$scratch/base.qcow2")" >"$cache/sha256-$hex.record"
chmod 0444 "$cache/sha256-$hex.record"
printf "image_kind=cloud\nimage_url_x86_64='%s'\nimage_digest_x86_64=sha256:%s\nvm_ram_size=1G\n" "$url" "$hex" >"$scratch/share/images/bench-cloud.image"
printf 'vm_display_type=none\n' >"$scratch/etc/vmtools.conf"
# A cloud entry turns cloud-init on, whose seed needs a key (key discovery's).
mkdir -p "$scratch/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$scratch/home/.ssh/id_ed25519"

# Check the fixture: an overlay on the cached file, recorded, nothing else read.
"$scratch/vmcreate" -q -n -y -C bench-cloud "$scratch/vm"
grep -qF "vm_image_digest='sha256:$hex'" "$scratch/vm/vm.settings" || { echo "catalog.sh: vmcreate did not record the image" >&2; exit 1; }
qemu-img info -U "$scratch/vm/bench-cloud.qcow2" | grep -qF "backing file: $cache/sha256-$hex.qcow2" || { echo "catalog.sh: the disk is no overlay on the cached image" >&2; exit 1; }
rm -rf "$scratch/vm"

hyperfine -N --warmup 3 --runs 30 --export-json "$scratch/catalog.json" \
    --prepare "rm -rf $scratch/vm $scratch/plain $scratch/o.qcow2" \
    -n "vmcreate -C NAME (cached)" "$scratch/vmcreate -q -n -y -C bench-cloud $scratch/vm" \
    -n "vmcreate -c FILE" "$scratch/vmcreate -q -n -y -c $scratch/base.qcow2 $scratch/plain" \
    -n "qemu-img create -b alone" "qemu-img create -q -f qcow2 -b $cache/sha256-$hex.qcow2 -F qcow2 $scratch/o.qcow2"
python3 - "$scratch/catalog.json" "$check" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
t = r["vmcreate -C NAME (cached)"]
ok = t < 50
print(f"vmcreate -C NAME from the cache: {t:.1f} ms (vmcreate -c FILE {r['vmcreate -c FILE']:.1f} ms, "
      f"qemu-img create -b alone {r['qemu-img create -b alone']:.1f} ms); goal < 50 ms: {'met' if ok else 'MISSED'}")
sys.exit(0 if ok or sys.argv[2] == "0" else 1)
PY
