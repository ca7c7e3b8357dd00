#!/usr/bin/env bash
# A verified pull against plain downloads (issue 24): a 1 GiB image served by
# the tests' HTTP server (Tests/Support/image-server.py) on 127.0.0.1,
#   (a) vmimage NAME: a catalog entry with a pinned sha512 digest, pointed at
#       the local server by cfg_images_mirror; downloads, hashes while it
#       downloads, verifies and stores it in an empty cache;
#   (b) curl -o of the same file, then sha512sum of it (download, then check);
#   (c) curl -o alone.
# Goals on the medians: (a)/(b) ≤ 1.0 (hashing overlaps the download) and
# (a)/(c) ≤ 1.05. Needs hyperfine, curl, python3 and ~3 GiB in $TMPDIR.
# --rate MB/S has the server send at about that rate, like a network link
# (the default, unthrottled loopback, shares this machine's cores between the
# server, curl, the hasher and the pull).
# Usage: bash Benchmarks/pull.sh [--no-check] [--size MIB] [--rate MB/S]
set -euo pipefail
BENCH_ARGS=("$@")
mib=1024
rate=()
for ((i = 0; i < $#; i++)); do
    [ "${BENCH_ARGS[$i]}" = --size ] && mib=${BENCH_ARGS[$((i + 1))]:?--size needs a number of MiB}
    [ "${BENCH_ARGS[$i]}" = --rate ] && rate=(--throttle "$(( ${BENCH_ARGS[$((i + 1))]:?--rate needs MB/s} * 1000000 ))")
done
. "$(dirname "$0")/lib.sh"
bench_init pull.sh
for tool in curl python3 sha512sum; do
    command -v "$tool" >/dev/null || { echo "pull.sh: $tool is missing (bash Tests/setup.sh test installs it)" >&2; exit 1; }
done

mkdir -p "$scratch/www" "$scratch/state" "$scratch/bin" "$scratch/etc/images"
ln -s "$repo/.build/release/vmtools" "$scratch/bin/vmimage"
head -c "$((mib << 20))" /dev/urandom >"$scratch/www/bench.qcow2"
digest=$(sha512sum "$scratch/www/bench.qcow2" | cut -d' ' -f1)
python3 "$repo/Tests/Support/image-server.py" "${rate[@]}" "$scratch/www" "$scratch/state" >"$scratch/server.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do [ -s "$scratch/state/port" ] && break; sleep 0.1; done
port=$(cat "$scratch/state/port")
url=http://127.0.0.1:$port/bench.qcow2
cat >"$scratch/etc/images/bench.image" <<IMAGE
image_kind='cloud'
image_url_x86_64='https://images.bench.invalid/bench.qcow2'
image_digest_x86_64='sha512:$digest'
IMAGE
printf "cfg_images_mirror='https://images.bench.invalid/=http://127.0.0.1:%s/'\n" "$port" >"$scratch/etc/vmtools.conf"
export XDG_CACHE_HOME="$scratch/cache"

# The pull must really download and verify before anything is timed.
"$scratch/bin/vmimage" bench >/dev/null 2>"$scratch/pull.err" || { cat "$scratch/pull.err" >&2; exit 1; }
cached="$scratch/cache/vmtools/images/sha512-$digest.qcow2"
[ "$(stat -c %s "$cached")" -eq "$((mib << 20))" ] || { echo "pull.sh: the cached image has the wrong size" >&2; exit 1; }

hyperfine --warmup 1 --runs 5 --export-json "$scratch/pull.json" \
    --prepare "rm -rf '$scratch/cache' '$scratch/out'" \
    -n "vmimage (pull + verify)" "'$scratch/bin/vmimage' bench >/dev/null 2>&1" \
    -n "curl -o + sha512sum" "curl -sS -o '$scratch/out' '$url' && sha512sum '$scratch/out' >/dev/null" \
    -n "curl -o" "curl -sS -o '$scratch/out' '$url'"

python3 - "$scratch/pull.json" "$check" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
pull = r["vmimage (pull + verify)"]["median"]
ok = True
for name, goal in (("curl -o + sha512sum", 1.0), ("curl -o", 1.05)):
    ratio = pull / r[name]["median"]
    verdict = "PASS" if ratio <= goal else "FAIL"
    ok &= ratio <= goal
    print("pull / %-20s %.3f (goal <= %.2f) %s" % (name, ratio, goal, verdict))
sys.exit(0 if ok or sys.argv[2] == "0" else 1)
PY
