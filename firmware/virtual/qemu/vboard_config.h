// Force-included (-include) into every C file of a qemu virtual-board build.
// Only adds hooks that the qemu port leaves undefined; see vboard/vboard.c.
#ifndef MPML_VBOARD_CONFIG_H
#define MPML_VBOARD_CONFIG_H

#ifndef __ASSEMBLER__
void vboard_port_init(void);
void vboard_poll_input(void);
#endif

// Mount the RAM disk after every (soft) reset.
#define MICROPY_PORT_INIT_FUNC vboard_port_init()

// Poll the UART for Ctrl-C every 64 branches/returns, as stm32 polls its hooks.
#define MICROPY_VM_HOOK_INIT static unsigned int vboard_hook_divisor = 64;
#define MICROPY_VM_HOOK_POLL if (--vboard_hook_divisor == 0) { \
        vboard_hook_divisor = 64; \
        vboard_poll_input(); \
}
#define MICROPY_VM_HOOK_LOOP MICROPY_VM_HOOK_POLL
#define MICROPY_VM_HOOK_RETURN MICROPY_VM_HOOK_POLL

#endif
