# Servers: no display and no graphics card. The guest's serial console is
# the console: it is kept in serial.log in the VM home, and is on the
# terminal with vmup -i (a Linux guest needs console=ttyS0 on its kernel
# command line).
# Combine with another template: template modern headless
vm_display_type='none'
vm_display_device='none'
vm_serial_log='yes'
