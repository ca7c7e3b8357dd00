# Old guests (DOS, Windows 9x/2000/XP, old Linux and BSD): an i440FX PC with
# its BIOS, IDE disks, an e1000 network card and a standard VGA card, all of
# which they have drivers for.
vm_qemu_params='-machine pc -usbdevice tablet'
vm_storage_hdd_interface='ide'
vm_networking_default_device='e1000'
vm_display_device='std'
