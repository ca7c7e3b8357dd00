#!/usr/bin/env bash
# vmfork is constant-time: forking a VM with a 1 GiB disk and one with a
# 50 GiB (sparse) disk must take the same time (goal: within 1.2x of each
# other, both under 30 ms). A fork syncs its undo journal, settings and the
# parent's child list, so the previous run's deletions are synced in
# --prepare: they must not be charged to the next fork.
# Usage: bash Benchmarks/fork.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init fork.sh
ln -s "$repo/.build/release/vmtools" "$scratch/vmfork"
for size in 1G 50G; do
    mkdir -p "$scratch/vm$size"
    qemu-img create -q -f qcow2 "$scratch/vm$size/hdd.qcow2" "$size"
    # Some data in it, so the image is not trivially empty.
    qemu-io -c "write -P 0xab 0 64M" "$scratch/vm$size/hdd.qcow2" >/dev/null
    printf 'vm_name=vm%s\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=%s\nvm_networking_iface1_enable=yes\nvm_networking_iface1_mac=%s\n' \
        "$size" "$scratch/vm$size/hdd.qcow2" "'52:54:00:00:00:01'" > "$scratch/vm$size/vm.settings"
done
hyperfine -N --warmup 3 --runs 30 --export-json "$scratch/fork.json" \
    --prepare "sh -c 'rm -rf $scratch/fork1G $scratch/fork50G $scratch/vm1G/childs.lst $scratch/vm50G/childs.lst && sync'" \
    -n "vmfork 1 GiB" "$scratch/vmfork -q $scratch/vm1G $scratch/fork1G" \
    -n "vmfork 50 GiB" "$scratch/vmfork -q $scratch/vm50G $scratch/fork50G"
python3 - "$scratch/fork.json" "$check" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
small, big = r["vmfork 1 GiB"], r["vmfork 50 GiB"]
ratio = max(small, big) / min(small, big)
ok = ratio <= 1.2 and small < 30 and big < 30
print(f"\nvmfork 1 GiB {small:.2f} ms, 50 GiB {big:.2f} ms, ratio {ratio:.3f} (goal <= 1.2, both < 30 ms): {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok or sys.argv[2] == "0" else 1)
PY
