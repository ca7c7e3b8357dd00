# Current guests with virtio drivers (Linux, the BSDs, Windows with the
# virtio-win drivers): a q35 machine, virtio disks and network card, a USB
# tablet on an xHCI controller.
vm_qemu_params='-machine q35 -device qemu-xhci -device usb-tablet'
vm_storage_hdd_interface='virtio'
vm_networking_default_device='virtio-net-pci'
# UEFI is asked for per VM, not here (a template applies at every start,
# and a disk installed with BIOS would stop booting): vmcreate -o
# vm_firmware=uefi, or 'uefi-secure' with vm_tpm='2.0' for Windows 11.
# vmcreate sets uefi itself for an image only UEFI can boot.
#vm_firmware='uefi'
