# Current guests with virtio drivers (Linux, the BSDs, Windows with the
# virtio-win drivers): a q35 machine, virtio disks and network card, a USB
# tablet on an xHCI controller.
vm_qemu_params='-machine q35 -device qemu-xhci -device usb-tablet'
vm_storage_hdd_interface='virtio'
vm_networking_default_device='virtio-net-pci'
