#!/usr/bin/env bash
# vmcp copies disks sparsely (FICLONE, else copy_file_range over the data
# extents): copying a VM must cost no more than `cp --sparse=always` of its
# disk alone (goal: vmcp median <= 1.1x cp's, measured in the same run).
# vmcp syncs the copy before it registers the new VM (a power cut must not
# leave a VM whose disk is half written), so the baseline is cp followed by
# a sync of the copied file: the same work. Plain cp is shown for reference.
# The disk: a 4 GiB raw image holding 512 MiB of data in 8 extents.
# Usage: bash Benchmarks/copy.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
# The scratch directory sits in the build directory: same filesystem as the
# repository (often bigger than /tmp, which may be a small tmpfs).
bench_init copy.sh "$(cd "$(dirname "$0")/.." && pwd)/.build"
mkdir -p "$scratch/vm"
ln -s "$repo/.build/release/vmtools" "$scratch/vmcp"
disk="$scratch/vm/disk.img"
truncate -s 4G "$disk"
for i in 0 1 2 3 4 5 6 7; do
    head -c 64M /dev/urandom | dd of="$disk" bs=1M seek=$((i * 512)) conv=notrunc status=none
done
printf 'vm_name=vm\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=%s\n' "$disk" > "$scratch/vm/vm.settings"
# Check once that the copy is right and sparse before timing it.
"$scratch/vmcp" -q "$scratch/vm" "$scratch/check"
cmp "$disk" "$scratch/check/disk.img"
used=$(du -k "$scratch/check/disk.img" | cut -f1)
[ "$used" -lt $((600 * 1024)) ] || { echo "copy.sh: the copy is not sparse ($used KiB used)" >&2; exit 1; }
rm -rf "$scratch/check"
sync
hyperfine -N --warmup 2 --runs 10 --export-json "$scratch/copy.json" \
    --prepare "rm -rf $scratch/copy $scratch/cp.img" \
    -n "cp --sparse=always + sync" "sh -c 'cp --sparse=always \"\$0\" \"\$1\" && sync \"\$1\"' $disk $scratch/cp.img" \
    -n "cp --sparse=always" "cp --sparse=always $disk $scratch/cp.img" \
    -n "vmcp" "$scratch/vmcp -q $scratch/vm $scratch/copy"
python3 - "$scratch/copy.json" "$check" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
cp, plain, vmcp = r["cp --sparse=always + sync"], r["cp --sparse=always"], r["vmcp"]
ratio = vmcp / cp
ok = ratio <= 1.1
print(f"\ncp --sparse=always + sync {cp:.1f} ms, vmcp {vmcp:.1f} ms: ratio {ratio:.3f} (goal <= 1.1): {'PASS' if ok else 'FAIL'}")
print(f"(plain cp --sparse=always, not synced: {plain:.1f} ms; vmcp / plain cp = {vmcp / plain:.3f})")
sys.exit(0 if ok or sys.argv[2] == "0" else 1)
PY
