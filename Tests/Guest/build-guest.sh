#!/usr/bin/env bash
# Builds the tiny test guest from Debian packages, offline from the host's
# point of view (nothing is installed on the host): Debian's cloud kernel and
# busybox-static, an initramfs with Tests/Guest/init, and isolinux.
#
#   guest.iso    hybrid ISO: boots as a CD-ROM and as a hard disk
#   guest.qcow2  the same image as a qcow2 disk
#   guest.ova    OVF 1.0 descriptor + streamOptimized VMDK, as a tar
#   vmlinuz, initrd.gz
#                the kernel and initramfs alone, for direct kernel boot
#                (-kernel/-initrd; under UEFI firmware too)
#   guest-uefi.qcow2
#                a GPT disk (34 MiB) with one partition, an EFI system
#                partition (FAT, sectors 2048-67583), holding
#                EFI/BOOT/BOOTX64.EFI: a unified kernel image (systemd's
#                stub + the kernel, initramfs and command line), NOT signed;
#                no BIOS boot code. UEFI boots it; Secure Boot refuses it.
#
# Usage: build-guest.sh OUTDIR. Rebuilds only when this script or init change.
# Needs: apt-get (with package lists), dpkg-deb, kmod, cpio, gzip, xorriso,
# isolinux, syslinux-common, qemu-utils, binutils (objcopy), mtools, fdisk (sfdisk).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build-guest.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)

stamp=$(cat "$here/build-guest.sh" "$here/init" | sha256sum | cut -c1-16)
# Parallel tests may all ask for the guest: one builds, the others wait.
exec 9>"$out/.lock"
flock 9
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/guest.ova" ] && [ -f "$out/guest-uefi.qcow2" ]; then
    exit 0
fi

for tool in apt-get dpkg-deb depmod modprobe cpio gzip xorriso qemu-img objcopy mformat mmd mcopy sfdisk; do
    command -v "$tool" >/dev/null || [ -x "/sbin/$tool" ] || [ -x "/usr/sbin/$tool" ] || {
        echo "build-guest.sh: $tool is missing (apt-get install kmod cpio xorriso isolinux syslinux-common qemu-utils binutils mtools fdisk)" >&2
        exit 1
    }
done
for f in /usr/lib/ISOLINUX/isolinux.bin /usr/lib/ISOLINUX/isohdpfx.bin /usr/lib/syslinux/modules/bios/ldlinux.c32; do
    [ -f "$f" ] || { echo "build-guest.sh: $f is missing (apt-get install isolinux syslinux-common)" >&2; exit 1; }
done
PATH="$PATH:/sbin:/usr/sbin"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The metapackage names the current kernel package.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-guest.sh: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
apt-get download -q "$kpkg" busybox-static systemd-boot-efi 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2 || true
dpkg-deb -x "$kpkg"_*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox
dpkg-deb -x systemd-boot-efi_*.deb sdboot
kver=$(ls kernel/lib/modules)

# The initramfs: busybox, init, and the drivers the tests need, in load order.
mkdir -p root/bin root/proc root/sys root/dev root/tmp root/lib/modules
cp busybox/bin/busybox root/bin/busybox
cp "$here/init" root/init
chmod 755 root/init root/bin/busybox
depmod -b kernel "$kver"
for m in scsi_common scsi_mod libata ata_piix sd_mod cdrom sr_mod virtio_ring virtio virtio_pci_modern_dev \
         virtio_pci_legacy_dev virtio_pci virtio_blk virtio_scsi button evdev qemu_fw_cfg virtio_net efivarfs; do
    modprobe -d kernel -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
    cp "$ko" root/lib/modules/
    basename "$ko" >> root/lib/modules/load.order
done
(cd root && find . | cpio -o -H newc --quiet | gzip -9) > initrd.gz

# Hybrid ISO: isolinux for CD boot, isohdpfx.bin MBR for disk boot.
mkdir -p iso/isolinux iso/boot
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cp "kernel/boot/vmlinuz-$kver" iso/boot/vmlinuz
cp initrd.gz iso/boot/initrd.gz
cat > iso/isolinux/isolinux.cfg <<'CFG'
SERIAL 0 115200
DEFAULT guest
PROMPT 0
LABEL guest
  KERNEL /boot/vmlinuz
  INITRD /boot/initrd.gz
  APPEND console=ttyS0,115200 loglevel=3 panic=-1
CFG
xorriso -as mkisofs -quiet -o guest.iso -V VMTOOLS_GUEST -J -R \
    -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
    -c isolinux/boot.cat -b isolinux/isolinux.bin -no-emul-boot -boot-load-size 4 -boot-info-table \
    iso

qemu-img convert -f raw -O qcow2 guest.iso guest.qcow2
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized guest.iso guest-disk1.vmdk
vmdk_size=$(stat -c %s guest-disk1.vmdk)
capacity=$(stat -c %s guest.iso)
cat > guest.ovf <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
          xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
          xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:id="file1" ovf:href="guest-disk1.vmdk" ovf:size="$vmdk_size"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="$capacity"
          ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="vmtools-guest">
    <Info>vmtools test guest</Info>
    <Name>vmtools-guest</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <Item><rasd:ElementName>128 MB of memory</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>128</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
OVF
tar -cf guest.ova guest.ovf guest-disk1.vmdk

cp "kernel/boot/vmlinuz-$kver" vmlinuz

# The UEFI disk: an unsigned unified kernel image as the removable-media
# boot loader of an ESP. The stub's sections end below 0x20000; the kernel
# (~14 MiB) goes at 32 MiB, the initramfs at 48 MiB.
printf 'console=ttyS0 panic=-1 loglevel=3' > cmdline.txt
printf 'NAME=vmtools-guest\nID=vmtools-guest\n' > os-release
objcopy \
    --add-section .osrel=os-release --change-section-vma .osrel=0x20000 \
    --add-section .cmdline=cmdline.txt --change-section-vma .cmdline=0x30000 \
    --add-section .linux=vmlinuz --change-section-vma .linux=0x2000000 \
    --add-section .initrd=initrd.gz --change-section-vma .initrd=0x3000000 \
    sdboot/usr/lib/systemd/boot/efi/linuxx64.efi.stub uki.efi
truncate -s 32M esp.img
mformat -i esp.img -T 65536 -h 64 -s 32 -v ESP ::
mmd -i esp.img ::/EFI ::/EFI/BOOT
mcopy -i esp.img uki.efi ::/EFI/BOOT/BOOTX64.EFI
truncate -s 34M uefi.img
printf 'label: gpt\nstart=2048, size=65536, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system partition"\n' | sfdisk -q uefi.img
dd if=esp.img of=uefi.img bs=1M seek=1 conv=notrunc status=none
qemu-img convert -f raw -O qcow2 uefi.img guest-uefi.qcow2

mv guest.iso guest.qcow2 guest.ova vmlinuz initrd.gz guest-uefi.qcow2 "$out/"
echo "$kver" > "$out/kernel-version"
echo "$stamp" > "$out/stamp"
