#!/usr/bin/env bash
# Startup/latency benchmark of the release `vmtools` binary (see README.md).
#
#   bash Benchmarks/run.sh             build, benchmark, check the targets
#   bash Benchmarks/run.sh --no-check  same, but never fail on a missed target
#
# Not part of the test suite. Needs: swift, hyperfine, python3; optional: /usr/bin/time.
set -euo pipefail

CHECK=1
if [[ "${1:-}" == "--no-check" ]]; then
    CHECK=0
    shift
fi
if [[ $# -gt 0 ]]; then
    echo "usage: $0 [--no-check]" >&2
    exit 2
fi

TARGET_MS=15          # each vmtools command's median must stay below this
WARMUP=5
MIN_RUNS=30

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO="$(cd "$SCRIPT_DIR/.." && pwd -P)"

# ---------------------------------------------------------------- requirements
if ! command -v hyperfine >/dev/null 2>&1; then
    echo "error: hyperfine is not installed; install it with: apt-get install hyperfine" >&2
    exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "error: python3 is needed to read hyperfine's JSON export" >&2
    exit 1
fi

# ---------------------------------------------------------------------- build
echo "==> swift build -c release --product vmtools --static-swift-stdlib  (in $REPO)"
(cd "$REPO" && swift build -c release --product vmtools --static-swift-stdlib)
BIN="$REPO/.build/release/vmtools"
if [[ ! -x "$BIN" ]]; then
    echo "error: $BIN was not produced by the build" >&2
    exit 1
fi

# -------------------------------------------------------------------- scratch
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/vmtools-bench.XXXXXXXXXX")"
trap 'rm -rf -- "$SCRATCH"' EXIT
SCRATCH="$(cd "$SCRATCH" && pwd -P)"   # canonical: childs.lst / parent hold real paths

mkdir -p "$SCRATCH/bin" "$SCRATCH/home" "$SCRATCH/xdg" "$SCRATCH/etc" "$SCRATCH/share" \
         "$SCRATCH/chain" "$SCRATCH/tree" "$SCRATCH/results"
# The binary dispatches on argv[0].
ln -s "$BIN" "$SCRATCH/bin/vminfo"
ln -s "$BIN" "$SCRATCH/bin/vmrndmac"
VMINFO="$SCRATCH/bin/vminfo"
VMRNDMAC="$SCRATCH/bin/vmrndmac"

# Every benchmarked command runs with this environment (empty config roots:
# neither /etc/vmtools nor the user's own configuration is ever read).
export HOME="$SCRATCH/home"
export XDG_CONFIG_HOME="$SCRATCH/xdg"
export VMTOOLS_SYSCONFDIR="$SCRATCH/etc"
export VMTOOLS_DATADIR="$SCRATCH/share"
export LC_ALL=C

# ------------------------------------------------- fixture 1: depth-10 chain
# vm0 (root) / vm1 / vm2 / ... / vm10, each home inside its parent's home.
make_chain() {
    local dir="$SCRATCH/chain/vm0"
    mkdir -p "$dir"
    cat >"$dir/vm.settings" <<EOF
vm_name=vm0
vm_ram_size=1G
vm_cpu_count=2
vm_display_type=none
vm_networking_iface1_enable=yes
vm_networking_iface1_mac='52:54:00:00:00:00'
vm_qemu_params='-enable-kvm -usbdevice tablet'
vm_storage_hdd1_enable=no
EOF
    local i parent
    for i in $(seq 1 10); do
        parent="$dir"
        dir="$parent/vm$i"
        mkdir -p "$dir"
        {
            echo "parent $parent"
            echo "vm_name=vm$i"
            printf "vm_networking_iface1_mac='52:54:00:00:00:%02x'\n" "$i"
            echo "vm_ram_size=$((i % 4 + 1))G"
        } >"$dir/vm.settings"
        printf '%s\n' "$dir" >"$parent/childs.lst"
    done
    CHAIN_DEEPEST="$dir"
}

# --------------------------------------------- fixture 2: 50-VM tree (1+7+42)
# root / cI / cIgJ  (I = 1..7, J = 1..6), each home inside its parent's home.
make_tree() {
    local root="$SCRATCH/tree/root"
    mkdir -p "$root"
    cat >"$root/vm.settings" <<EOF
vm_name=root
vm_ram_size=1G
vm_networking_iface1_enable=yes
vm_networking_iface1_mac='52:54:00:01:00:00'
EOF
    local i j child grandchild
    for i in $(seq 1 7); do
        child="$root/c$i"
        mkdir -p "$child"
        {
            echo "parent $root"
            echo "vm_name=c$i"
            printf "vm_networking_iface1_mac='52:54:00:01:%02x:00'\n" "$i"
        } >"$child/vm.settings"
        printf '%s\n' "$child" >>"$root/childs.lst.unsorted"
        for j in $(seq 1 6); do
            grandchild="$child/c${i}g$j"
            mkdir -p "$grandchild"
            {
                echo "parent $child"
                echo "vm_name=c${i}g$j"
                printf "vm_networking_iface1_mac='52:54:00:01:%02x:%02x'\n" "$i" "$j"
            } >"$grandchild/vm.settings"
            printf '%s\n' "$grandchild" >>"$child/childs.lst.unsorted"
        done
    done
    local f
    for f in "$root/childs.lst.unsorted" "$root"/c*/childs.lst.unsorted; do
        LC_ALL=C sort "$f" >"${f%.unsorted}"
        rm -f -- "$f"
    done
    TREE_VM="$root/c4/c4g3"
}

make_chain
make_tree
tree_count="$(find "$SCRATCH/tree" -name vm.settings | wc -l)"
if [[ "$tree_count" -ne 50 ]]; then
    echo "error: the tree fixture has $tree_count VMs, expected 50" >&2
    exit 1
fi

# ------------------------------------------------------------ sanity checks
# Each command must succeed (hyperfine would abort anyway) and do real work.
echo "==> sanity checks"
out="$("$VMINFO" "$CHAIN_DEEPEST")" || { echo "error: vminfo on the chain failed" >&2; exit 1; }
# vm_display_type=none is set in vm0 only: seeing it proves the 10 parents were followed.
for want in "Name: vm10" "vm_display_type=none" "vm_networking_iface1_mac='52:54:00:00:00:0a'"; do
    grep -qF -- "$want" <<<"$out" || { echo "error: vminfo chain output lacks '$want':" >&2; echo "$out" >&2; exit 1; }
done
echo "    vminfo <chain depth 10>: $(wc -l <<<"$out") lines of output"
out="$("$VMINFO" -t "$TREE_VM")" || { echo "error: vminfo -t on the tree failed" >&2; exit 1; }
nodes="$(grep -cE '(^|[ ─│├└|`+-])(root|c[0-9]|c[0-9]g[0-9])( |$)' <<<"$out" || true)"
[[ "$nodes" -eq 50 ]] || { echo "error: vminfo -t shows $nodes of 50 VMs:" >&2; echo "$out" >&2; exit 1; }
echo "    vminfo -t <50-VM tree>: $nodes VMs in the tree"
out="$("$VMRNDMAC")" || { echo "error: vmrndmac failed" >&2; exit 1; }
[[ "$out" =~ ^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$ ]] || { echo "error: vmrndmac printed '$out'" >&2; exit 1; }
echo "    vmrndmac: $out"

# ----------------------------------------------------------------- hyperfine
SHELL_OPT=(-N)
if ! hyperfine --help 2>&1 | grep -qE -- '(^|[[:space:]])-N([,[:space:]]|$)'; then
    if hyperfine --help 2>&1 | grep -q -- 'none'; then
        SHELL_OPT=(--shell=none)
    else
        echo "note: this hyperfine ($(hyperfine --version)) cannot run without a shell;" \
             "falling back to the default shell (times include a shell start-up, the /bin/true" \
             "baseline includes it too)" >&2
        SHELL_OPT=()
    fi
fi
q() { printf '%q' "$1"; }   # quoting is harmless with -N (hyperfine splits like a shell)

JSON="$SCRATCH/results/hyperfine.json"
echo "==> hyperfine --warmup $WARMUP --min-runs $MIN_RUNS ${SHELL_OPT[*]}"
hyperfine --warmup "$WARMUP" --min-runs "$MIN_RUNS" "${SHELL_OPT[@]}" \
    --export-json "$JSON" \
    -n 'baseline /bin/true'         "/bin/true" \
    -n 'vminfo chain depth 10'      "$(q "$VMINFO") $(q "$CHAIN_DEEPEST")" \
    -n 'vminfo -t 50-VM tree'       "$(q "$VMINFO") -t $(q "$TREE_VM")" \
    -n 'vmrndmac'                   "$(q "$VMRNDMAC")"

# ------------------------------------------------------------ peak memory
declare -A RSS_KB=()
if [[ -x /usr/bin/time ]]; then
    rss() {   # name, command...
        local name="$1"; shift
        local f="$SCRATCH/results/rss.txt"
        /usr/bin/time -o "$f" -f %M "$@" >/dev/null
        RSS_KB["$name"]="$(tail -n 1 "$f")"
    }
    rss 'vminfo chain depth 10' "$VMINFO" "$CHAIN_DEEPEST"
    rss 'vminfo -t 50-VM tree'  "$VMINFO" -t "$TREE_VM"
    rss 'vmrndmac'              "$VMRNDMAC"
else
    echo "note: /usr/bin/time is missing (apt-get install time); peak memory is not measured" >&2
fi
RSS_FILE="$SCRATCH/results/rss.tsv"
: >"$RSS_FILE"
for k in "${!RSS_KB[@]}"; do printf '%s\t%s\n' "$k" "${RSS_KB[$k]}" >>"$RSS_FILE"; done

# ------------------------------------------------------------------ report
set +e
python3 - "$JSON" "$RSS_FILE" "$TARGET_MS" "$CHECK" <<'PY'
import json, sys

path, rss_path, target, check = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4] == "1"
results = json.load(open(path))["results"]
rss = {}
for line in open(rss_path):
    name, _, kb = line.rstrip("\n").partition("\t")
    rss[name] = kb

base = next(r for r in results if r["command"].startswith("baseline"))
base_median = base["median"]

def ms(s):
    return f"{s * 1000:.2f}"

header = ["command", "median ms", "mean ms", "stddev ms", "x /bin/true", "max RSS KB", f"target <{target:g} ms"]
rows, failed = [], False
for r in results:
    is_base = r is base
    ok = r["median"] * 1000 < target
    verdict = "-" if is_base else ("PASS" if ok else "FAIL")
    failed |= (not is_base and not ok)
    rows.append([r["command"], ms(r["median"]), ms(r["mean"]), ms(r["stddev"] or 0.0),
                 f"{r['median'] / base_median:.1f}", rss.get(r["command"], "-"), verdict])

widths = [max(len(x) for x in col) for col in zip(header, *rows)]
def fmt(row):
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
print()
print(fmt(header))
print("  ".join("-" * w for w in widths))
for row in rows:
    print(fmt(row))
print()
if failed:
    print(f"RESULT: FAIL (a median is not below {target:g} ms)" + ("" if check else "; ignored (--no-check)"))
    sys.exit(1 if check else 0)
print(f"RESULT: PASS (every median below {target:g} ms)")
PY
status=$?
set -e
exit "$status"
