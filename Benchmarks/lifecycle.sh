#!/usr/bin/env bash
# Lifecycle benchmarks on the real test guest (issue 3):
#   vmup wall time vs launching the identical QEMU argv directly (goal ≤ 1.05),
#   vmps with 5 VMs running (goal < 15 ms),
#   vmdown's stop latency once QEMU is told to go (goal ≤ 100 ms).
# Usage: bash Benchmarks/lifecycle.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init lifecycle.sh
bash "$repo/Tests/Guest/build-guest.sh" "$repo/.build/guest"
iso="$repo/.build/guest/guest.iso"

started_pids=()
cleanup() {
    for p in "${started_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for f in "$scratch"/*/qemu.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p "$scratch/bin"
for c in vmup vmps vmdown; do ln -s "$repo/.build/release/vmtools" "$scratch/bin/$c"; done
printf 'vm_display_type=none\nvm_ram_size=128M\nvm_cpu_count=1\nvm_networking_iface1_enable=no\n' > "$scratch/etc/vmtools.conf"
mkvm() {
    mkdir -p "$scratch/$1"
    printf 'vm_name=%s\nvm_boot_order=d\nvm_storage_cdrom1_enable=yes\nvm_storage_cdrom1_backend=%s\n' "$1" "$iso" > "$scratch/$1/vm.settings"
}

# 1. vmup vs the same QEMU argv run directly (both daemonise; stopped after each run).
mkvm up
argv=$("$scratch/bin/vmup" -n -v "$scratch/up" 2>/dev/null | tail -1)
printf 'argv_line=%q\n' "$argv" > "$scratch/argv.sh"
cat > "$scratch/direct.sh" <<SH
#!/bin/bash
. "$scratch/argv.sh"
cd "$scratch/up" && eval exec "\$argv_line"
SH
chmod +x "$scratch/direct.sh"
stop_up='[ -f '"$scratch"'/up/qemu.pid ] && kill -9 $(cat '"$scratch"'/up/qemu.pid) 2>/dev/null; rm -f '"$scratch"'/up/qemu.pid '"$scratch"'/up/*.sock; true'
hyperfine --warmup 2 --runs 15 --export-json "$scratch/up.json" --prepare "$stop_up" \
    -n "qemu directly" "$scratch/direct.sh" \
    -n "vmup" "$scratch/bin/vmup -q -q $scratch/up"

# 2. vmps with five VMs running.
for k in 1 2 3 4 5; do mkvm "ps$k"; "$scratch/bin/vmup" -q -q "$scratch/ps$k" 2>/dev/null; done
# Measure once the guests have booted and sit idle, as VMs usually do.
for k in 1 2 3 4 5; do
    for _ in $(seq 1 1200); do grep -q READY "$scratch/ps$k/serial.log" 2>/dev/null && break; sleep 0.1; done
done
hyperfine -N --warmup 5 --min-runs 30 --export-json "$scratch/ps.json" -n "vmps (5 VMs)" "$scratch/bin/vmps"
for k in 1 2 3 4 5; do "$scratch/bin/vmdown" -q -q -k "$scratch/ps$k" || true; done

# 3. vmdown's own latency: from the signal to "QEMU is gone" (it polls the
#    pid-file lock every 20 ms instead of sleeping whole seconds).
mkvm down
hyperfine --runs 10 --export-json "$scratch/down.json" \
    --prepare "$scratch/bin/vmup -q -q $scratch/down" \
    -n "vmdown -k" "$scratch/bin/vmdown -q -q -k $scratch/down"

python3 - "$scratch" "$check" <<'PY'
import json, sys
scratch, check = sys.argv[1], sys.argv[2] == "1"
def med(f, name):
    for r in json.load(open(f"{scratch}/{f}"))["results"]:
        if r["command"] == name: return r["median"] * 1000
direct, up = med("up.json", "qemu directly"), med("up.json", "vmup")
ps, down = med("ps.json", "vmps (5 VMs)"), med("down.json", "vmdown -k")
rows = [("qemu directly (baseline)", direct, "-", True),
        ("vmup", up, f"{up/direct:.3f} x qemu", up / direct <= 1.05),
        ("vmps, 5 VMs", ps, "< 15 ms", ps < 15),
        ("vmdown -k (stop latency)", down, "<= 100 ms", down <= 100)]
print(f"\n{'command':28} {'median ms':>10}  {'target':>16}  result")
for name, ms, target, ok in rows:
    print(f"{name:28} {ms:10.2f}  {target:>16}  {'PASS' if ok else 'FAIL'}")
failed = [r for r in rows if not r[3]]
print("RESULT:", "PASS" if not failed else "FAIL")
sys.exit(1 if failed and check else 0)
PY
