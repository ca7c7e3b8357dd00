#!/usr/bin/env bash
# The cost of a cloud-init seed (vm.settings(5), CLOUD-INIT): `vmup` of a VM
# with cloud-init on against the same VM with it off. QEMU is named by a path
# that does not exist, so each start plans, builds cidata.iso (with cloud-init
# on), finds no QEMU, removes the new seed and fails: every run builds the
# seed afresh. The difference of the medians is the seed's cost (goal < 50 ms);
# genisoimage and xorriso alone on the same three files are shown for
# reference (vmtools prefers genisoimage: xorriso sleeps 100 ms on exit).
# Usage: bash Benchmarks/seed.sh [--no-check]
set -euo pipefail
BENCH_ARGS=("$@")
. "$(dirname "$0")/lib.sh"
bench_init seed.sh
command -v xorriso >/dev/null && command -v genisoimage >/dev/null || { echo "seed.sh: needs xorriso and genisoimage (apt-get install xorriso genisoimage)" >&2; exit 1; }
ln -s "$repo/.build/release/vmtools" "$scratch/vmup"
printf 'cfg_qemu_cmdprefix=/nonexistent/qemu-system-\nvm_display_type=none\n' > "$scratch/etc/vmtools.conf"
mkdir -p "$scratch/home/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$scratch/home/.ssh/id_ed25519"
printf '#cloud-config\nruncmd:\n  - touch /marker\n' > "$scratch/user-data.yaml"
for vm in on off; do
    mkdir -p "$scratch/$vm"
    printf 'vm_cloudinit_enable=%s\nvm_cloudinit_userdata=%s\nvm_networking_iface1_enable=yes\nvm_networking_iface1_mac=%s\n' \
        "$([ $vm = on ] && echo yes || echo no)" "$scratch/user-data.yaml" "'52:54:00:00:00:01'" > "$scratch/$vm/vm.settings"
done
# Check the fixture: the seed is built, then removed by the failed start.
"$scratch/vmup" -n "$scratch/on" 2>&1 | grep -q "would write $scratch/on/cidata.iso" || { echo "seed.sh: vmup -n plans no seed" >&2; exit 1; }
if "$scratch/vmup" -q "$scratch/on" 2>/dev/null; then echo "seed.sh: vmup started a QEMU that does not exist" >&2; exit 1; fi
[ ! -e "$scratch/on/cidata.iso" ] || { echo "seed.sh: the failed start left its new seed" >&2; exit 1; }
mkdir -p "$scratch/files"
(cd "$scratch/files" && printf 'instance-id: iid-1\n' > meta-data && cp "$scratch/user-data.yaml" user-data && printf 'version: 2\n' > network-config)
hyperfine -N -i --warmup 3 --runs 30 --export-json "$scratch/seed.json" \
    -n "vmup, cloud-init on" "$scratch/vmup -q $scratch/on" \
    -n "vmup, cloud-init off" "$scratch/vmup -q $scratch/off" \
    -n "genisoimage alone" "genisoimage -J -R -quiet -V cidata -o $scratch/x.iso $scratch/files" \
    -n "xorriso alone" "xorriso -as mkisofs -J -R -quiet -V cidata -o $scratch/x.iso $scratch/files"
python3 - "$scratch/seed.json" "$check" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
cost = r["vmup, cloud-init on"] - r["vmup, cloud-init off"]
ok = cost < 50
print(f"seed: {cost:.1f} ms (vmup on {r['vmup, cloud-init on']:.1f} ms, off {r['vmup, cloud-init off']:.1f} ms, "
      f"genisoimage alone {r['genisoimage alone']:.1f} ms, xorriso alone {r['xorriso alone']:.1f} ms); goal < 50 ms: {'met' if ok else 'MISSED'}")
sys.exit(0 if ok or sys.argv[2] == "0" else 1)
PY
