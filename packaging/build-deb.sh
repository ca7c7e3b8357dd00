#!/usr/bin/env bash
# `make deb`: vmtools_<version>-1_<arch>.deb from the release binary that
# `make build` made, with dpkg-deb alone (no debhelper, no debian/ tree: the
# package is a binary package of this checkout, not a Debian source package).
#
#   bash packaging/build-deb.sh [OUTDIR]     (default: the checkout)
#
# Files land where Debian's policy puts them (FHS, /usr prefix); vmtools
# finds /usr/share/vmtools and /etc/vmtools from the binary's place
# (vmtools(1) FILES). Reproducible: every date is SOURCE_DATE_EPOCH, else
# the last commit's. DEBFULLNAME and DEBEMAIL name the maintainer.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.}
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || { echo "build-deb: no $tool: install dpkg-dev (apt-get install dpkg-dev)" >&2; exit 1; }
done

version=$(sed -n 's/.*static let version = "\([^"]*\)".*/\1/p' Sources/VMToolsCore/Support/Release.swift)
[ -n "$version" ] || { echo "build-deb: no version in Sources/VMToolsCore/Support/Release.swift" >&2; exit 1; }
debversion="$version-1"
arch=$(dpkg --print-architecture)
binary=.build/release/vmtools
[ -x "$binary" ] || { echo "build-deb: no $binary: run make build first" >&2; exit 1; }
maintainer="${DEBFULLNAME:-vmtools maintainers} <${DEBEMAIL:-maintainers@users.noreply.h-seed-42878b0d.example}>"
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
commands=(vmup vmcreate vmdown vmps vminfo vmmon vmcp vmfork vmmv vmrm vmmerge vmfix vmrndmac vmimage vmsnap)

root=.build/deb/root
rm -rf "$root"
umask 022
install -d "$root/DEBIAN" "$root/usr/bin" "$root/etc/vmtools" "$root/usr/share/vmtools/templates" "$root/usr/share/vmtools/images" \
    "$root/usr/share/man/man1" "$root/usr/share/man/man5" "$root/usr/share/man/man7" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/fish/vendor_completions.d" \
    "$root/usr/share/zsh/vendor-completions" "$root/usr/share/doc/vmtools"

# Stripped as Debian's policy asks (lintian: unstripped-binary-or-object);
# Swift's metadata sections are allocated and stay.
install -m 755 "$binary" "$root/usr/bin/vmtools"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/vmtools"
for c in "${commands[@]}"; do ln -s vmtools "$root/usr/bin/$c"; done

install -m 644 etc/vmtools.conf "$root/usr/share/vmtools/vmtools.conf"
install -m 644 etc/templates/*.tpl "$root/usr/share/vmtools/templates/"
# The image catalog (vmtools(7), IMAGE CATALOG); /etc/vmtools/images overrides it.
install -m 644 etc/images/*.image "$root/usr/share/vmtools/images/"
# The system layer as shipped changes nothing: every default, commented out,
# so the administrator uncomments what to change (vmtools.conf(5)).
{
    echo "# /etc/vmtools/vmtools.conf - system-wide settings of vmtools (vmtools.conf(5))."
    echo "#"
    echo "# As shipped, every line is a comment and vmtools uses its defaults, those of"
    echo "# /usr/share/vmtools/vmtools.conf (do not edit that one: upgrades replace it)."
    echo "# Uncomment and change what this host needs; users override it in"
    echo "# ~/.config/vmtools/vmtools.conf unless cfg_include_userhome='no' here."
    echo "# Templates of this host go in /etc/vmtools/templates/NAME.tpl, image catalog"
    echo "# entries in /etc/vmtools/images/NAME.image (vmtools(7), IMAGE CATALOG)."
    echo
    sed -n '/^### /,$p' etc/vmtools.conf | sed -e 's/^\([a-z][a-z0-9_]*=\)/#\1/'
} > "$root/etc/vmtools/vmtools.conf"
chmod 644 "$root/etc/vmtools/vmtools.conf"
if grep -q '^[^#[:space:]]' "$root/etc/vmtools/vmtools.conf"; then
    echo "build-deb: the shipped /etc/vmtools/vmtools.conf would set something" >&2
    exit 1
fi
echo /etc/vmtools/vmtools.conf > "$root/DEBIAN/conffiles"

for section in 1 5 7; do
    for page in Docs/*."$section"; do
        gzip -9n < "$page" > "$root/usr/share/man/man$section/${page##*/}.gz"
    done
done

install -m 644 completions/vmtools.bash "$root/usr/share/bash-completion/completions/vmtools"
install -m 644 completions/vmtools.fish "$root/usr/share/fish/vendor_completions.d/vmtools.fish"
for c in "${commands[@]}"; do
    ln -s vmtools "$root/usr/share/bash-completion/completions/$c"
    ln -s vmtools.fish "$root/usr/share/fish/vendor_completions.d/$c.fish"
done
# Debian's zsh reads vendor-completions, not site-functions (make install's).
install -m 644 completions/_vmtools "$root/usr/share/zsh/vendor-completions/_vmtools"

doc="$root/usr/share/doc/vmtools"
gzip -9n < CHANGELOG.md > "$doc/changelog.gz"
{
    echo "vmtools ($debversion) unstable; urgency=medium"
    echo
    echo "  * vmtools $version, packaged by make deb (see changelog.gz)."
    echo
    echo " -- $maintainer  $(date -u -R -d "@$epoch")"
} | gzip -9n > "$doc/changelog.Debian.gz"
# The checkout has no LICENSE file yet: the copyright file says so rather
# than guess a licence (see packaging/copyright).
install -m 644 packaging/copyright "$doc/copyright"
# Built from a checkout, not uploaded to Debian: there is no ITP bug to close.
install -d "$root/usr/share/lintian/overrides"
echo "vmtools: initial-upload-closes-no-bugs" > "$root/usr/share/lintian/overrides/vmtools"
chmod 644 "$root/usr/share/lintian/overrides/vmtools"

# Depends: the libraries the binary links (dpkg-shlibdeps reads its NEEDED
# entries and the shlibs/symbols files of the packages that provide them;
# it wants a debian/control, so it runs in a scratch one), plus the QEMU
# packages every start needs. The optional helpers are Recommends/Suggests;
# the keyrings are those the shipped catalog entries check signatures with;
# curl downloads catalog images and gpgv checks their signed checksum files
# (vmimage(1), DOWNLOADS): only pulls need them, so Recommends.
work=.build/deb/shlibdeps
rm -rf "$work"
mkdir -p "$work/debian"
printf 'Source: vmtools\n\nPackage: vmtools\nArchitecture: any\n' > "$work/debian/control"
shlibs=$(cd "$work" && dpkg-shlibdeps -O "$OLDPWD/$root/usr/bin/vmtools" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no library dependencies" >&2; exit 1; }

find "$root" -exec touch -h -d "@$epoch" {} +
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<EOF
Package: vmtools
Version: $debversion
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $shlibs, qemu-system-x86, qemu-utils
Recommends: ovmf, swtpm, xorriso, curl, gpgv
Suggests: passt, qemu-system-gui, debian-keyring, distribution-gpg-keys, ubuntu-keyring
Section: admin
Priority: optional
Description: QEMU virtual machine manager without a daemon
 vmtools manages QEMU virtual machines as plain directories: each VM home
 holds a vm.settings file and its disks. Thirteen commands create (vmcreate),
 start (vmup), list (vmps), describe (vminfo), monitor (vmmon) and stop
 (vmdown) VMs, and copy, fork, move, merge, repair and remove them (vmcp,
 vmfork, vmmv, vmmerge, vmfix, vmrm), with copy-on-write disk trees.
 .
 A catalog of distributions' cloud images and installer ISOs (vmimage)
 downloads and verifies each image once, into a cache all VMs share.
 .
 Settings come from templates, /etc/vmtools and the user's configuration;
 VMs run as the invoking user, with user-mode, bridged, tap or passt
 networking, shares, USB devices, UEFI firmware and an emulated TPM.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
touch -d "@$epoch" "$root/DEBIAN" "$root/DEBIAN"/*

deb="$out/vmtools_${debversion}_${arch}.deb"
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
