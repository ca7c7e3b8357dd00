#!/usr/bin/env bash
# Start to SSH-ready on the Debian 12 cloud guest (issue 12), a few rounds of:
#   (a) QEMU started by hand: direct kernel boot, the root disk in snapshot
#       mode, a NoCloud seed made by hand with xorriso, a forward to port 22
#       on 127.0.0.1 whose port the kernel picks, read back with QMP;
#   (b) vmup -w of a VM made from the same image by vmcreate with the key.
# Ready = `ssh … true` logs in with the seeded key. Goal: (b)/(a) ≤ 1.05 on the
# medians. Boots under TCG take a minute or two each: a run takes ~20 min.
# Usage: bash Benchmarks/cloud.sh [--no-check] [--rounds N]
set -euo pipefail
BENCH_ARGS=("$@")
rounds=3
for ((i = 0; i < $#; i++)); do
    [ "${BENCH_ARGS[$i]}" = --rounds ] && rounds=${BENCH_ARGS[$((i + 1))]:?--rounds needs a number}
done
# The guest's cache is the user's, not bench_init's scratch HOME.
cache_home=${XDG_CACHE_HOME:-$HOME/.cache}
. "$(dirname "$0")/lib.sh"
bench_init cloud.sh
for tool in qemu-system-x86_64 xorriso ssh ssh-keygen python3; do
    command -v "$tool" >/dev/null || { echo "cloud.sh: $tool is missing (bash Tests/setup.sh test installs it)" >&2; exit 1; }
done
XDG_CACHE_HOME=$cache_home bash "$repo/Tests/Guest/build-cloud-guest.sh" "$repo/.build/cloud-guest"
guest=$(readlink -f "$repo/.build/cloud-guest")

started_pids=()
cleanup() {
    for p in "${started_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for f in "$scratch"/*/qemu.pid "$scratch"/*/hand.pid; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p "$scratch/bin"
for c in vmcreate vmup vmdown vminfo; do ln -s "$repo/.build/release/vmtools" "$scratch/bin/$c"; done
ssh-keygen -q -t ed25519 -N "" -C vmtools-bench -f "$scratch/id_ed25519"
# Same machine for both: 2 vCPUs (-cpu max, as vmup picks under TCG), 1 GiB,
# virtio disk and NIC, no display, no USB tablet.
mem=1024
smp=2

now() { date +%s.%N; }

# ssh_ready PORT USER KNOWN_HOSTS: polls (one attempt a second, each bounded)
# until a login works; 300 s at most.
ssh_ready() {
    local port=$1 user=$2 kh=$3 deadline=$(($(date +%s) + 300))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        timeout 15 ssh -i "$scratch/id_ed25519" -p "$port" -o BatchMode=yes -o ConnectTimeout=5 -o IdentitiesOnly=yes \
            -o StrictHostKeyChecking=no -o UserKnownHostsFile="$kh" -o LogLevel=ERROR "$user@127.0.0.1" true 2>/dev/null && return 0
        sleep 1
    done
    echo "cloud.sh: no SSH login on 127.0.0.1:$port within 300 s" >&2
    return 1
}

# qmp_forward SOCKET: the host port of the forward to guest port 22, from
# QMP human-monitor-command `info usernet`.
qmp_forward() {
    python3 - "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()
for cmd in ({"execute": "qmp_capabilities"},
            {"execute": "human-monitor-command", "arguments": {"command-line": "info usernet"}}):
    f.write(json.dumps(cmd) + "\n"); f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r: break
for line in r.get("return", "").splitlines():
    x = line.split()
    if "HOST_FORWARD" in line and len(x) >= 7 and x[5] == "22": print(x[3]); break
PY
}

# (a) by hand. The seed is made once, as a user would; the instance-id
# changes per round so cloud-init runs in full each time, as for a new VM.
hand_round() {
    local d=$scratch/hand$1 mac=52:54:00:be:0c:01 port
    mkdir -p "$d/seed"
    printf 'instance-id: hand-%s\nlocal-hostname: hand\n' "$1" > "$d/seed/meta-data"
    printf '#cloud-config\nusers:\n  - name: bench\n    ssh_authorized_keys: ["%s"]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    lock_passwd: true\n' \
        "$(cat "$scratch/id_ed25519.pub")" > "$d/seed/user-data"
    printf 'version: 2\nethernets:\n  nic0:\n    match:\n      macaddress: "%s"\n    set-name: eth0\n    dhcp4: true\n' "$mac" > "$d/seed/network-config"
    xorriso -as mkisofs -quiet -o "$d/seed.iso" -V cidata -J -R "$d/seed" 2>/dev/null
    local t0 t1
    t0=$(now)
    (cd "$d" && qemu-system-x86_64 -accel tcg -cpu max -smp "$smp" -m "$mem" -display none -nodefaults -daemonize \
        -pidfile hand.pid -qmp unix:qmp.sock,server=on,wait=off -serial file:serial.log \
        -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" -append "$(cat "$guest/cmdline")" \
        -drive "file=$guest/root.qcow2,format=qcow2,if=virtio,snapshot=on" \
        -drive "file=seed.iso,format=raw,if=virtio,read-only=on" \
        -nic "user,model=virtio-net-pci,mac=$mac,hostfwd=tcp:127.0.0.1:0-:22")
    port=$(qmp_forward "$d/qmp.sock")
    [ -n "$port" ] || { echo "cloud.sh: no forward to port 22 in info usernet" >&2; exit 1; }
    ssh_ready "$port" bench "$d/known_hosts"
    t1=$(now)
    kill -9 "$(cat "$d/hand.pid")"
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }'
}

# (b) vmup -w.
vmup_round() {
    local d=$scratch/vm$1 t0 t1 port
    "$scratch/bin/vmcreate" -n -y -q -q \
        -o vm_display_type=none -o vm_ram_size=${mem}M -o vm_cpu_count=$smp -o vm_qemu_accel=tcg \
        -o vm_storage_hdd_interface=virtio -o vm_networking_default_device=virtio-net-pci \
        -o vm_storage_rwmode=snap -o vm_qemu_params=-no-user-config \
        -o vm_boot_kernel="$guest/vmlinuz" -o vm_boot_initrd="$guest/initrd.img" -o vm_boot_append="$(cat "$guest/cmdline")" \
        -o vm_cloudinit_user=bench -o vm_cloudinit_sshkey="$scratch/id_ed25519.pub" \
        -c "$guest/root.qcow2" "$d"
    t0=$(now)
    "$scratch/bin/vmup" -q -q -w "$d"
    # -w returned: SSH answers. The login itself is timed as in (a), through
    # the port vmup read back (ssh.config holds it).
    port=$(awk '$1 == "Port" { print $2; exit }' "$d/ssh.config")
    ssh_ready "$port" bench "$d/bench_known_hosts"
    t1=$(now)
    kill -9 "$(cat "$d/qemu.pid")" 2>/dev/null || true
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }'
}

hand=() up=()
for r in $(seq 1 "$rounds"); do
    # Alternated, so a change in the machine's load hits both alike.
    hand+=("$(hand_round "$r")")
    echo "cloud.sh: round $r: by hand ${hand[-1]} s" >&2
    up+=("$(vmup_round "$r")")
    echo "cloud.sh: round $r: vmup -w ${up[-1]} s" >&2
done

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
mh=$(median "${hand[@]}")
printf '\n%-28s %s\n' "start to SSH-ready" "median of $rounds (s)"
printf '%-28s %.1f   (%s)\n' "QEMU by hand + hand seed" "$mh" "${hand[*]}"
mu=$(median "${up[@]}")
ratio=$(awk -v a="$mh" -v b="$mu" 'BEGIN { printf "%.3f", b / a }')
printf '%-28s %.1f   (%s)\n' "vmup -w" "$mu" "${up[*]}"
printf '%-28s %s (goal ≤ 1.05)\n' "ratio" "$ratio"
printf '%-28s %s s\n' "cloud guest build" "$(cat "$guest/build-seconds")"
if [ "$check" = 1 ] && awk -v r="$ratio" 'BEGIN { exit !(r > 1.05) }'; then
    echo "cloud.sh: vmup -w is more than 5 % slower than QEMU by hand" >&2
    exit 1
fi
