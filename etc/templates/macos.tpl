# macOS guests: the original vmtools template, fixed (its settings were
# misnamed and never took effect). A Core 2 CPU model, 4 GiB, a q35 machine
# with USB keyboard and tablet, and the macos buildcmd module, which passes
# the Apple SMC key: set vm_macos_osk once, in /etc/vmtools/vmtools.conf.
# This is the minimal, historical setup: current macOS releases also need
# OpenCore or OVMF firmware and a newer CPU model.
vm_cpu_type='core2duo'
vm_ram_size='4G'
vm_qemu_params='-machine q35 -usb -device usb-kbd -device usb-tablet'
vm_modules_buildcmd='macos'
