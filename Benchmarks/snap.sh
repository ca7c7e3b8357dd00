#!/usr/bin/env bash
# Named snapshots (vmsnap(1)):
#   1. vmsnap of a stopped VM with three qcow2 disks against the three
#      `qemu-img snapshot -c` a person would run (goal ≤ 1.1×);
#   2. a live snapshot and a live revert of a running 256 MiB guest against
#      the same QMP jobs sent by hand (Benchmarks/snap-qmp.py, timed from
#      its connection to the job's end, python's start left out; goal ≤ 1.1×);
#   3. vmsnap -l of a VM whose three disks hold 50 snapshots (goal < 20 ms).
# Usage: bash Benchmarks/snap.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init snap.sh
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null || { echo "snap.sh: needs qemu-img and qemu-io (apt-get install qemu-utils)" >&2; exit 1; }
bash "$repo/Tests/Guest/build-guest.sh" "$repo/.build/guest"
mkdir -p "$scratch/bin"
for c in vmsnap vmup vmdown; do ln -s "$repo/.build/release/vmtools" "$scratch/bin/$c"; done
printf 'vm_display_type=none\nvm_cpu_count=1\nvm_networking_iface1_enable=no\n' >"$scratch/etc/vmtools.conf"
qmp=$repo/Benchmarks/snap-qmp.py

# 1. A stopped VM, three disks of 64 MiB data each.
st=$scratch/stopped
mkdir -p "$st"
printf 'vm_name=stopped\n' >"$st/vm.settings"
for k in 1 2 3; do
    qemu-img create -q -f qcow2 "$st/hdd$k.qcow2" 4G
    qemu-io -c "write -P 0x$k$k 0 64M" "$st/hdd$k.qcow2" >/dev/null
    printf 'vm_storage_hdd%s_enable=yes\nvm_storage_hdd%s_backend=%s\n' "$k" "$k" "$st/hdd$k.qcow2" >>"$st/vm.settings"
done
unsnap="for k in 1 2 3; do qemu-img snapshot -d s $st/hdd\$k.qcow2 2>/dev/null; done; rm -rf $st/snapshots; true"
"$scratch/bin/vmsnap" -q "$st" s
for k in 1 2 3; do qemu-img snapshot -l "$st/hdd$k.qcow2" | grep -q ' s ' || { echo "snap.sh: vmsnap left hdd$k without the snapshot" >&2; exit 1; }; done
bash -c "$unsnap"
hyperfine --shell=bash --warmup 3 --runs 30 --export-json "$scratch/stopped.json" --prepare "$unsnap" \
    -n "vmsnap (3 disks)" "$scratch/bin/vmsnap -q $st s" \
    -n "qemu-img snapshot -c x3" "qemu-img snapshot -c s $st/hdd1.qcow2 && qemu-img snapshot -c s $st/hdd2.qcow2 && qemu-img snapshot -c s $st/hdd3.qcow2"

# 3. 50 snapshots on each of the three disks.
for n in $(seq 1 50); do for k in 1 2 3; do qemu-img snapshot -c "s$n" "$st/hdd$k.qcow2"; done; done
[ "$("$scratch/bin/vmsnap" -l "$st" | grep -c '^s[0-9]')" = 50 ] || { echo "snap.sh: vmsnap -l does not list 50 snapshots" >&2; exit 1; }
hyperfine -N --warmup 5 --runs 50 --export-json "$scratch/list.json" -n "vmsnap -l (50)" "$scratch/bin/vmsnap -l $st"

# 2. A running 256 MiB guest booted from a qcow2 disk.
lv=$scratch/live
mkdir -p "$lv"
cp "$repo/.build/guest/guest.qcow2" "$lv/hdd.qcow2"
printf 'vm_name=live\nvm_ram_size=256M\nvm_boot_order=c\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=%s\n' "$lv/hdd.qcow2" >"$lv/vm.settings"
"$scratch/bin/vmup" -q -q "$lv"
pids+=("$(cat "$lv/qemu.pid")")
for _ in $(seq 1 1200); do grep -q READY "$lv/serial.log" 2>/dev/null && break; sleep 0.1; done
node=$(python3 "$qmp" "$lv/qmp.sock" node - "$lv/hdd.qcow2")
undo_live="python3 $qmp $lv/qmp.sock delete s '$node' || true"
# Alternating, 16 rounds of a save and a revert by each side, so the guest's and the host's ups and downs
# hit both sides. By hand is the time snap-qmp.py measures itself, from
# connecting to the job's end, without python's start (a person at a QMP
# prompt pays none); vmsnap's is its whole run, start-up included.
ms() { local a b; a=$(date +%s%N); "$@" >/dev/null 2>&1; b=$(date +%s%N); echo $(( (b - a) / 1000 )); }
ours_save() { bash -c "$undo_live" >/dev/null 2>&1; ms "$scratch/bin/vmsnap" -q "$lv" s >>"$scratch/ours-save.us"; }
hand_save() { bash -c "$undo_live" >/dev/null 2>&1; SNAP_QMP_TIMES=$scratch/save.times python3 "$qmp" "$lv/qmp.sock" save s "$node"; }
ours_load() { ms "$scratch/bin/vmsnap" -q -r "$lv" s >>"$scratch/ours-load.us"; }
hand_load() { SNAP_QMP_TIMES=$scratch/load.times python3 "$qmp" "$lv/qmp.sock" load s "$node"; }
for round in $(seq 1 16); do
    # Who goes first swaps every round: a job right after a save may find
    # QEMU still writing back.
    if [ $((round % 2)) = 0 ]; then ours_save; hand_save; ours_load; hand_load
    else hand_save; ours_save; hand_load; ours_load; fi
done
"$scratch/bin/vmdown" -q -q -k "$lv" || true

python3 - "$scratch" "$check" <<'PY'
import json, sys
d, check = sys.argv[1], sys.argv[2]
def med(f):
    return {x["command"]: x["median"] * 1000 for x in json.load(open(f"{d}/{f}.json"))["results"]}
s, l = med("stopped"), med("list")
def median(f, scale=1.0):
    t = sorted(float(x) * scale for x in open(f"{d}/{f}"))
    return t[len(t) // 2]
hs, hl = median("save.times"), median("load.times")
os_, ol = median("ours-save.us", 0.001), median("ours-load.us", 0.001)
r1 = s["vmsnap (3 disks)"] / s["qemu-img snapshot -c x3"]
ours = os_ + ol
hand = hs + hl
r2 = ours / hand
t3 = l["vmsnap -l (50)"]
ok = [r1 <= 1.1, r2 <= 1.1, t3 < 20]
mark = lambda b: "PASS" if b else "FAIL"
print(f"stopped, 3 disks: vmsnap {s['vmsnap (3 disks)']:.1f} ms / qemu-img snapshot -c x3 {s['qemu-img snapshot -c x3']:.1f} ms = {r1:.3f} (goal <= 1.1) {mark(ok[0])}")
print(f"live, 256 MiB, medians of 16 alternating rounds: save {os_:.0f} / {hs:.0f} ms, revert {ol:.0f} / {hl:.0f} ms by hand "
      f"(python's start left out); together {r2:.3f} (goal <= 1.1) {mark(ok[1])}")
print(f"vmsnap -l, 50 snapshots on 3 disks: {t3:.1f} ms (goal < 20 ms) {mark(ok[2])}")
sys.exit(0 if all(ok) or check == "0" else 1)
PY
