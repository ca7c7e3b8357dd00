# Servers: no display and no graphics card. The guest's serial console is
# the console: it goes to serial.log in the VM home, or to the terminal with
# vmup -i (a Linux guest needs console=ttyS0 on its kernel command line).
# Combine with another template: template modern headless
vm_display_type='none'
vm_display_device='none'
