#!/usr/bin/env bash
# `make install` into a scratch DESTDIR: every file where it belongs, and the
# installed binary answers through a command link. Then `make uninstall`
# leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make -s install DESTDIR="$dest" PREFIX=/usr >/dev/null
p="$dest/usr"
fail() { echo "install-check: $*" >&2; exit 1; }
[ -x "$p/bin/vmtools" ] || fail "no bin/vmtools"
for c in vmup vmcreate vmdown vmps vminfo vmmon vmcp vmfork vmmv vmrm vmmerge vmfix vmrndmac vmimage vmsnap; do
    [ "$(readlink "$p/bin/$c")" = vmtools ] || fail "bin/$c is not a link to vmtools"
    [ -f "$p/share/man/man1/$c.1" ] || fail "no man page $c.1"
    [ -L "$p/share/bash-completion/completions/$c" ] || fail "no bash completion link for $c"
done
for f in share/man/man1/vmtools.1 share/man/man5/vm.settings.5 share/man/man5/vmtools.conf.5 share/man/man7/vmtools.7 \
         share/vmtools/vmtools.conf share/bash-completion/completions/vmtools share/fish/vendor_completions.d/vmtools.fish \
         share/zsh/site-functions/_vmtools; do
    [ -f "$p/$f" ] || fail "no $f"
done
for t in etc/templates/*.tpl; do [ -f "$p/share/vmtools/templates/${t##*/}" ] || fail "template ${t##*/} not installed"; done
for i in etc/images/*.image; do [ -f "$p/share/vmtools/images/${i##*/}" ] || fail "catalog entry ${i##*/} not installed"; done
out=$("$p/bin/vmps" -h) || fail "vmps -h failed"
case "$out" in *"Usage: vmps"*) ;; *) fail "vmps -h printed: $out" ;; esac
# The installed templates are found: PREFIX comes from the binary's location.
"$p/bin/vmtools" --list templates | grep -qx modern || fail "the installed templates are not found"
make -s uninstall DESTDIR="$dest" PREFIX=/usr >/dev/null
left=$(find "$dest" -type f -o -type l)
[ -z "$left" ] || fail "left after uninstall: $left"
echo "install-check: ok"
