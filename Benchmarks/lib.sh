# Shared by the benchmark scripts (sourced, not run).
# bench_init NAME [PARENT]: needs hyperfine, builds the release binary
# (statically linked stdlib, as `make install` does), makes $scratch (in
# PARENT, default $TMPDIR) with empty etc/, share/ and home/ so that no real
# configuration is read, exports that environment, and removes $scratch on
# exit. Sets $repo and $check (0 with --no-check in the script's arguments).
bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$scratch"
}

bench_init() {
    local name=$1 parent=${2:-}
    repo=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
    check=1
    for a in "${BENCH_ARGS[@]}"; do [ "$a" = "--no-check" ] && check=0; done
    command -v hyperfine >/dev/null || { echo "$name: hyperfine is missing (apt-get install hyperfine)" >&2; exit 1; }
    (cd "$repo" && swift build -c release --product vmtools --static-swift-stdlib >/dev/null)
    if [ -n "$parent" ]; then mkdir -p "$parent"; scratch=$(mktemp -d "$parent/$name.XXXXXX"); else scratch=$(mktemp -d); fi
    # Processes a script starts in the background go into pids: stopped by
    # pid at exit, with the scratch directory.
    pids=()
    trap bench_cleanup EXIT
    mkdir -p "$scratch/etc" "$scratch/share" "$scratch/home"
    export HOME="$scratch/home" XDG_CONFIG_HOME="$scratch/home/.config" VMTOOLS_SYSCONFDIR="$scratch/etc" VMTOOLS_DATADIR="$scratch/share"
}

# bench_light_vms N DIR: N paused QEMUs without a machine (-S -machine none,
# ~20 MB each), VM homes DIR/vm1 … DIR/vmN with the pid file in the home as
# vmup starts QEMU; their pids are appended to the caller's $pids, which it
# kills on exit.
bench_light_vms() {
    local n=$1 dir=$2 i home
    for i in $(seq 1 "$n"); do
        home=$dir/vm$i
        mkdir -p "$home"
        printf 'vm_name=vm%s\n' "$i" >"$home/vm.settings"
        (cd "$home" && qemu-system-x86_64 -name "vm$i" -S -machine none -nodefaults -display none -daemonize -pidfile "$home/qemu.pid")
        pids+=("$(cat "$home/qemu.pid")")
    done
}
