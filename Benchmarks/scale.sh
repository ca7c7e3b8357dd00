#!/usr/bin/env bash
# Scale: a tree of 1,000 VMs (settings only; root, 9 children, 90
# grandchildren, 900 great-grandchildren, each home inside its parent's,
# childs.lst right) and 100 running VMs. Goals: `vmfix -rAn` of the tree
# under 300 ms (one walk serves every check), `vminfo -t` of it under
# 30 ms, `vmps` with 100 VMs running under 16 ms. The running VMs are light
# QEMUs (`-S -machine none`, about 20 MB each), killed by pid on exit.
# Usage: bash Benchmarks/scale.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init scale.sh
scratch=$(cd "$scratch" && pwd -P)   # canonical: childs.lst and parent hold real paths
command -v qemu-system-x86_64 >/dev/null || { echo "scale.sh: qemu-system-x86_64 is missing (apt-get install qemu-system-x86)" >&2; exit 1; }
mkdir -p "$scratch/bin"
for c in vmfix vminfo vmps; do ln -s "$repo/.build/release/vmtools" "$scratch/bin/$c"; done
bin=$scratch/bin

echo "==> a tree of 1,000 VMs"
root=$scratch/tree/root
mkdir -p "$root"
printf 'vm_name=root\n' >"$root/vm.settings"
for c in $(seq 1 9); do
    child=$root/c$c
    mkdir -p "$child"
    printf 'parent %s\nvm_name=c%s\n' "$root" "$c" >"$child/vm.settings"
    printf '%s\n' "$child" >>"$root/childs.lst"
    for g in $(seq 0 9); do
        gc=$child/g$g
        mkdir -p "$gc"
        printf 'parent %s\nvm_name=c%sg%s\n' "$child" "$c" "$g" >"$gc/vm.settings"
        printf '%s\n' "$gc" >>"$child/childs.lst"
        for k in $(seq 0 9); do
            mkdir -p "$gc/k$k"
            printf 'parent %s\nvm_name=c%sg%sk%s\n' "$gc" "$c" "$g" "$k" >"$gc/k$k/vm.settings"
            printf '%s\n' "$gc/k$k" >>"$gc/childs.lst"
        done
    done
done
n=$(find "$scratch/tree" -name vm.settings | wc -l)
[ "$n" -eq 1000 ] || { echo "scale.sh: the tree has $n VMs, expected 1000" >&2; exit 1; }
deep=$root/c5/g3/k2

echo "==> 100 running VMs"
bench_light_vms 100 "$scratch/run"

echo "==> sanity checks"
# Nothing to repair in a sound tree: exit 0 and silence.
out=$("$bin/vmfix" -rAn "$scratch/tree" 2>&1) || { echo "scale.sh: vmfix -rAn of the sound tree failed: $out" >&2; exit 1; }
[ -z "$out" ] || { echo "scale.sh: vmfix -rAn of the sound tree reported: $out" >&2; exit 1; }
# A leftover pid file at the bottom must be found (the walk reaches every VM).
touch "$root/c9/g9/k9/qemu.pid"
set +e; out=$("$bin/vmfix" -rAn "$scratch/tree" 2>&1); st=$?; set -e
rm -f "$root/c9/g9/k9/qemu.pid"
[ "$st" -eq 3 ] && grep -qF "$root/c9/g9/k9/qemu.pid" <<<"$out" || { echo "scale.sh: vmfix -rAn missed a leftover pid file (exit $st): $out" >&2; exit 1; }
shown=$("$bin/vminfo" -t "$deep" | grep -cE '(root|c[0-9](g[0-9](k[0-9])?)?) ' || true)
[ "$shown" -eq 1000 ] || { echo "scale.sh: vminfo -t shows $shown of 1000 VMs" >&2; exit 1; }
running=$("$bin/vmps" -j | grep -cF "\"home\": \"$scratch/run/vm" || true)
[ "$running" -eq 100 ] || { echo "scale.sh: vmps shows $running of our 100 VMs" >&2; exit 1; }
echo "    vmfix finds a defect at the bottom, vminfo -t shows 1000 VMs, vmps 100 of ours"

hyperfine -N --warmup 3 --min-runs 20 --export-json "$scratch/scale.json" \
    -n "vmfix -rAn 1,000 VMs" "$bin/vmfix -rAn $scratch/tree" \
    -n "vminfo -t 1,000 VMs" "$bin/vminfo -t $deep" \
    -n "vmps 100 running" "$bin/vmps"
python3 - "$scratch/scale.json" "$check" <<'PY'
import json, sys
goals = {"vmfix -rAn 1,000 VMs": 300, "vminfo -t 1,000 VMs": 30, "vmps 100 running": 16}
failed = False
print()
for r in json.load(open(sys.argv[1]))["results"]:
    ms, goal = r["median"] * 1000, goals[r["command"]]
    ok = ms < goal
    failed |= not ok
    print(f"{r['command']:24} median {ms:8.2f} ms  (goal < {goal} ms): {'PASS' if ok else 'FAIL'}")
sys.exit(1 if failed and sys.argv[2] == "1" else 0)
PY
