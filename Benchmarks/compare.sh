#!/usr/bin/env bash
# Side by side: the working tree against BASE_REV, both release builds with
# the Swift standard library linked statically (as `make build`). BASE_REV
# is built in a scratch git worktree, removed on exit. Measured: vminfo
# (depth-10 chain, and -t of a 50-VM tree), vmps with 5 running VMs, a real
# vmfork into the scratch directory, vmup -nv (the QEMU command line).
# Each pair runs in six hyperfine rounds of 10 runs, alternating which side
# goes first (load that comes and goes hits both), and the pooled
# medians are compared. Wall time on a shared or virtual machine swings by
# more than 5 % from run to run, so where valgrind is installed the verdict
# comes from the instructions each side executes (callgrind, user space,
# the same on every run): exit 1 when one needs more than 5 % more
# (new/base above 1.05), unless --no-check. Without valgrind the medians
# decide. COMPARE_BASE_BINARY=path uses a vmtools
# already built from BASE_REV instead of building it again.
# Usage: bash Benchmarks/compare.sh [--no-check] BASE_REV
set -euo pipefail
BENCH_ARGS=("$@")
base_rev=
for a in "$@"; do [ "$a" = "--no-check" ] || base_rev=$a; done
[ -n "$base_rev" ] || { echo "usage: $0 [--no-check] BASE_REV" >&2; exit 2; }
. "$(dirname "$0")/lib.sh"
base_commit=$(git -C "$(dirname "$0")" rev-parse --verify "$base_rev^{commit}") || { echo "compare.sh: no such revision: $base_rev" >&2; exit 2; }
bench_init compare.sh
scratch=$(cd "$scratch" && pwd -P)
command -v qemu-system-x86_64 >/dev/null || { echo "compare.sh: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    git -C "$repo" worktree remove --force "$scratch/base-src" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT

base_exe=${COMPARE_BASE_BINARY:-}
if [ -z "$base_exe" ]; then
    echo "==> building $base_rev (${base_commit:0:12}) in a scratch worktree"
    git -C "$repo" worktree add -q --detach "$scratch/base-src" "$base_commit"
    (cd "$scratch/base-src" && swift build -c release --product vmtools --static-swift-stdlib >/dev/null)
    base_exe=$scratch/base-src/.build/release/vmtools
fi
for side in base new; do
    mkdir -p "$scratch/$side"
    if [ $side = base ]; then exe=$base_exe; else exe=$repo/.build/release/vmtools; fi
    cp "$exe" "$scratch/$side/vmtools"
    for c in vminfo vmps vmfork vmup; do ln -s vmtools "$scratch/$side/$c"; done
done

echo "==> fixtures"
# A depth-10 chain and a 50-VM tree (1 + 7 + 42), as run.sh.
dir=$scratch/chain/vm0
mkdir -p "$dir"
printf 'vm_name=vm0\nvm_ram_size=1G\nvm_cpu_count=2\nvm_display_type=none\nvm_networking_iface1_enable=yes\nvm_networking_iface1_mac=%s\n' "'52:54:00:00:00:00'" >"$dir/vm.settings"
for i in $(seq 1 10); do
    mkdir -p "$dir/vm$i"
    printf 'parent %s\nvm_name=vm%s\nvm_ram_size=%sG\n' "$dir" "$i" $((i % 4 + 1)) >"$dir/vm$i/vm.settings"
    printf '%s\n' "$dir/vm$i" >"$dir/childs.lst"
    dir=$dir/vm$i
done
chain=$dir
root=$scratch/tree/root
mkdir -p "$root"
printf 'vm_name=root\n' >"$root/vm.settings"
for i in $(seq 1 7); do
    mkdir -p "$root/c$i"
    printf 'parent %s\nvm_name=c%s\n' "$root" "$i" >"$root/c$i/vm.settings"
    printf '%s\n' "$root/c$i" >>"$root/childs.lst"
    for j in $(seq 1 6); do
        mkdir -p "$root/c$i/c${i}g$j"
        printf 'parent %s\nvm_name=c%sg%s\n' "$root/c$i" "$i" "$j" >"$root/c$i/c${i}g$j/vm.settings"
        printf '%s\n' "$root/c$i/c${i}g$j" >>"$root/c$i/childs.lst"
    done
done
# A VM with a 1 GiB qcow2 disk holding 64 MiB, one per side, to fork and to
# start with -n.
for side in base new; do
    home=$scratch/$side-vm
    mkdir -p "$home"
    qemu-img create -q -f qcow2 "$home/hdd.qcow2" 1G
    qemu-io -c "write -P 0xab 0 64M" "$home/hdd.qcow2" >/dev/null
    printf 'vm_name=src\nvm_display_type=none\nvm_storage_hdd1_enable=yes\nvm_storage_hdd1_backend=%s\nvm_networking_iface1_enable=yes\nvm_networking_iface1_mac=%s\n' \
        "$home/hdd.qcow2" "'52:54:00:00:00:01'" >"$home/vm.settings"
done
# Five running VMs for vmps: light QEMUs (-S -machine none), killed on exit.
bench_light_vms 5 "$scratch/run"

echo "==> sanity checks (both sides)"
for side in base new; do
    b=$scratch/$side
    "$b/vminfo" "$chain" | grep -q "vm_display_type=none" || { echo "compare.sh: $side vminfo does not follow the chain" >&2; exit 1; }
    [ "$("$b/vminfo" -t "$root/c4/c4g3" | grep -cE '(root|c[0-9](g[0-9])?) ')" -eq 50 ] || { echo "compare.sh: $side vminfo -t does not show 50 VMs" >&2; exit 1; }
    [ "$("$b/vmps" -j | grep -cF "\"home\": \"$scratch/run/vm")" -eq 5 ] || { echo "compare.sh: $side vmps does not show the 5 VMs" >&2; exit 1; }
    "$b/vmfork" -q "$scratch/$side-vm" "$scratch/$side-fork" 2>/dev/null && [ -f "$scratch/$side-fork/vm.settings" ] || { echo "compare.sh: $side vmfork failed" >&2; exit 1; }
    rm -rf "$scratch/$side-fork" "$scratch/$side-vm/childs.lst"
    "$b/vmup" -nv "$scratch/$side-vm" 2>&1 | grep -qF "file=$scratch/$side-vm/hdd.qcow2" || { echo "compare.sh: $side vmup -nv does not show the disk" >&2; exit 1; }
done

# bench NAME PREPARE COMMAND: $rounds rounds, alternating order, in which
# @ stands for the side (base or new); the JSON exports are pooled below.
rounds=6
bench() {
    local name=$1 prepare=$2 cmd=$3
    local round first second
    echo "    $name"
    for round in $(seq 1 $rounds); do
        if [ $((round % 2)) = 1 ]; then first=base second=new; else first=new second=base; fi
        hyperfine -N --warmup 3 --runs 10 ${prepare:+--prepare "$prepare"} --export-json "$scratch/$name.$round.json" \
            -n "$first" "${cmd//@/$first}" -n "$second" "${cmd//@/$second}" >/dev/null
    done
}
echo "==> hyperfine ($rounds rounds of 10 runs per side and command)"
bench vminfo "" "$scratch/@/vminfo $chain"
bench vminfo-t "" "$scratch/@/vminfo -t $root/c4/c4g3"
bench vmps "" "$scratch/@/vmps"
# Before vmfork: a VM with children would need -s or -r to start.
bench vmup-n "" "$scratch/@/vmup -nv $scratch/@-vm"
bench vmfork "sh -c 'rm -rf $scratch/base-fork $scratch/new-fork $scratch/base-vm/childs.lst $scratch/new-vm/childs.lst && sync'" \
    "$scratch/@/vmfork -q $scratch/@-vm $scratch/@-fork"
# Instructions executed (valgrind callgrind, user space): deterministic.
instructions=0
if command -v valgrind >/dev/null; then
    instructions=1
    echo "==> instructions (valgrind callgrind)"
    count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'; }
    for side in base new; do
        b=$scratch/$side
        {
            echo "vminfo $(count "$b/vminfo" "$chain")"
            echo "vminfo-t $(count "$b/vminfo" -t "$root/c4/c4g3")"
            echo "vmps $(count "$b/vmps")"
            # The vmfork bench leaves the fork of whichever side ran last:
            # with it, vmup -nv would stop early at "has children".
            rm -rf "$scratch/$side-fork" "$scratch/$side-vm/childs.lst"
            echo "vmup-n $(count "$b/vmup" -nv "$scratch/$side-vm")"
            echo "vmfork $(count "$b/vmfork" -q "$scratch/$side-vm" "$scratch/$side-fork")"
        } >"$scratch/$side.instructions"
    done
fi
python3 - "$scratch" "$check" "$rounds" "$instructions" <<'PY'
import json, statistics, sys
scratch, check, rounds, by_instructions = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4] == "1"
failed = False
if by_instructions:
    counts = {side: dict(l.split() for l in open(f"{scratch}/{side}.instructions")) for side in ("base", "new")}
    print(f"\n{'command':10} {'base instr':>12} {'new instr':>12} {'new/base':>9}")
    for name in ["vminfo", "vminfo-t", "vmps", "vmup-n", "vmfork"]:
        base, new = (int(counts[s][name].replace(",", "")) for s in ("base", "new"))
        ratio = new / base
        failed |= ratio > 1.05
        print(f"{name:10} {base:12,} {new:12,} {ratio:9.3f} {'PASS' if ratio <= 1.05 else 'FAIL'}")
print(f"\n{'command':10} {'base ms':>9} {'new ms':>9} {'new/base':>9}")
for name in ["vminfo", "vminfo-t", "vmps", "vmup-n", "vmfork"]:
    times = {"base": [], "new": []}
    for rnd in range(1, rounds + 1):
        for r in json.load(open(f"{scratch}/{name}.{rnd}.json"))["results"]:
            times[r["command"]] += r["times"]
    base, new = (statistics.median(times[s]) * 1000 for s in ("base", "new"))
    ratio = new / base
    verdict = "" if by_instructions else ("PASS" if ratio <= 1.05 else "FAIL")
    if not by_instructions:
        failed |= ratio > 1.05
    print(f"{name:10} {base:9.2f} {new:9.2f} {ratio:9.3f} {verdict}")
print("\nRESULT:", "FAIL (a ratio above 1.05)" if failed else "PASS (every ratio at most 1.05)")
sys.exit(1 if failed and check else 0)
PY
