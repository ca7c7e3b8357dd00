#!/usr/bin/env bash
# The two commands of the README, on a Debian 12 machine with the Swift
# toolchain:
#
#   bash Tests/setup.sh demo   installs QEMU and what the demo guest is built
#                              from, builds vmtools and the guest, boots it
#   bash Tests/setup.sh test   installs what the tests need and runs them all
#                              (what CI runs: .ci/run calls this)
#
# Packages are installed with apt-get, through sudo when not root, and only
# when one is missing: a second run asks for no password.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-}
case "$what" in
demo | test) ;;
*)
    echo "usage: bash Tests/setup.sh demo|test" >&2
    exit 2
    ;;
esac

# qemu-system-x86 qemu-utils: the engine. kmod cpio xorriso isolinux
# syslinux-common: Tests/Guest/build-guest.sh builds the guest from Debian's
# kernel and busybox packages.
packages=(qemu-system-x86 qemu-utils kmod cpio xorriso isolinux syslinux-common)
if [ "$what" = test ]; then
    # hyperfine: Benchmarks/; bash-completion fish zsh: the completion tests
    # run the real shells; mandoc: the man pages are linted; make: the install
    # check; iproute2 (ss), util-linux (mount), bsdutils (script): tests look
    # at listening sockets, read-only mounts and terminals. mmdebstrap
    # e2fsprogs: Tests/Guest/build-cloud-guest.sh builds the Debian cloud
    # guest; openssh-client: the tests log in to it; curl: the network
    # namespace tests fetch a guest's page from another namespace; openssl:
    # the SPICE test encrypts its password under the server's key; passt:
    # the passt network model boots through it.
    packages+=(hyperfine bash-completion fish zsh mandoc make iproute2 util-linux bsdutils curl mmdebstrap e2fsprogs openssh-client openssl passt)
    # ovmf swtpm swtpm-tools: UEFI firmware and the emulated TPM 2.0; mtools
    # fdisk binutils: build-guest.sh makes the UEFI test disk (an ESP with an
    # unsigned EFI binary).
    packages+=(ovmf swtpm swtpm-tools mtools fdisk binutils)
    packages+=(dpkg-dev lintian apt) # make deb (dpkg-shlibdeps, strip); DebianPackageTests: lintian, apt-get install
    # python3 (python3-minimal ships /usr/bin/python3): HostileGuestAgentTests runs a
    # fake guest agent and QMP monitor as processes of their own; python3-yaml:
    # CloudInitInputTests reads the seed back; ExportFuzzTests parses exports with expat.
    packages+=(python3 python3-minimal python3-yaml)
    # gpg gpg-agent gpgconf gpgv: the image tests sign checksum files with a
    # throw-away key (gpg, its agent, gpgconf stops it) and vmtools checks them
    # with gpgv; the test image server is
    # Tests/Support/image-server.py (python3, https with a certificate
    # openssl makes), downloads go through curl.
    packages+=(gpg gpg-agent gpgconf gpgv)
    packages+=(libvirt-clients libvirt-daemon libvirt-daemon-system) # LibvirtExportTests: virsh's test driver; LibvirtBootTests: libvirtd, virtlogd (libvirt-daemon)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup.sh: not root and no sudo: install ${missing[*]} as root" >&2; exit 1; }
        sudo=(sudo)
    fi
    echo "setup.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v swift >/dev/null; then
    [ -x /opt/swift/usr/bin/swift ] || { echo "setup.sh: no swift on PATH nor in /opt/swift/usr/bin" >&2; exit 1; }
    export PATH="/opt/swift/usr/bin:$PATH"
fi

bash Tests/Guest/build-guest.sh .build/guest
if [ "$what" = test ]; then
    # ~1 minute once per machine: cached outside the clone, keyed by the
    # script. mmdebstrap and mke2fs -d need root for a tree owned by root.
    if [ "$(id -u)" -eq 0 ]; then
        bash Tests/Guest/build-cloud-guest.sh .build/cloud-guest
    elif [ ! -e .build/cloud-guest/root.qcow2 ] || ! cmp -s .build/cloud-guest/stamp <(sha256sum < Tests/Guest/build-cloud-guest.sh | cut -c1-16); then
        sudo env XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}" bash Tests/Guest/build-cloud-guest.sh .build/cloud-guest
    fi
fi
swift build

if [ "$what" = demo ]; then
    # Headless and in the foreground: the guest's console is this terminal.
    echo "setup.sh: booting the demo guest; it prints VMTOOLS-GUEST: READY. Stop it with Ctrl-A X." >&2
    exec .build/debug/vmtools vmup -i -y -o vm_display_type=none -o vm_ram_size=128M .build/guest/guest.iso
fi

lint=$(mandoc -T lint -W warning Docs/*.[157] 2>&1 || true)
if [ -n "$lint" ]; then
    printf '%s\n' "$lint" >&2
    echo "setup.sh: mandoc -T lint: the man pages have errors or warnings" >&2
    exit 1
fi
swift test --skip DebianPackageTests
bash .ci/install-check.sh
# The package's tests install it into this machine's /usr: alone, once the
# others are done, on the package built from this checkout.
make deb
swift test --filter DebianPackageTests
