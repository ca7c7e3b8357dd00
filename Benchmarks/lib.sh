# Shared by the benchmark scripts (sourced, not run).
# bench_init NAME [PARENT]: needs hyperfine, builds the release binary
# (statically linked stdlib, as `make install` does), makes $scratch (in
# PARENT, default $TMPDIR) with empty etc/, share/ and home/ so that no real
# configuration is read, exports that environment, and removes $scratch on
# exit. Sets $repo and $check (0 with --no-check in the script's arguments).
bench_init() {
    local name=$1 parent=${2:-}
    repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
    check=1
    for a in "${BENCH_ARGS[@]}"; do [ "$a" = "--no-check" ] && check=0; done
    command -v hyperfine >/dev/null || { echo "$name: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
    (cd "$repo" && swift build -c release --product vmtools --static-swift-stdlib >/dev/null)
    if [ -n "$parent" ]; then mkdir -p "$parent"; scratch=$(mktemp -d "$parent/$name.XXXXXX"); else scratch=$(mktemp -d); fi
    trap 'rm -rf "$scratch"' EXIT
    mkdir -p "$scratch/etc" "$scratch/share" "$scratch/home"
    export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/home/.config" VMTOOLS_SYSCONFDIR="$scratch/etc" VMTOOLS_DATADIR="$scratch/share"
}
