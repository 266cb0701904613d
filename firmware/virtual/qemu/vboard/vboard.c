// Virtual-board support compiled into the qemu firmware images (m0, m3, rv32).
//
// A real board keeps its filesystem in flash and notices Ctrl-C while Python
// runs; the qemu port does neither. This module gives it both, without
// touching MicroPython's own sources:
//   - a RAM disk outside the GC heap, so it survives soft resets (the heap is
//     wiped on every soft reset, which mpremote triggers on each connect);
//   - an input poll hooked into the VM loop that turns Ctrl-C into
//     KeyboardInterrupt and queues every other byte for stdin;
//   - a port-init hook that runs the frozen _vboot.py after every mp_init().

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/objarray.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/runtime/pyexec.h"

#ifndef VBOARD_RAMDISK_BYTES
#define VBOARD_RAMDISK_BYTES (64 * 1024)
#endif

#define VBOARD_RX_BUF_BYTES (512)

// Provided by the port's uart.c; reached through the linker's --wrap.
int __real_uart_rx_chr(void);

#ifdef VBOARD_RAMDISK_ADDR
// Memory the machine has beyond what the firmware's linker script knows (the
// m0 board): the disk stands for a real board's flash, and the MicroPython
// heap keeps the size it would have on the real chip.
#define vboard_ramdisk_mem ((uint8_t *)(VBOARD_RAMDISK_ADDR))
#else
static uint8_t vboard_ramdisk_mem[VBOARD_RAMDISK_BYTES] __attribute__((aligned(8)));
#endif

// Bytes read from the UART while Python was running, waiting for stdin.
static uint8_t vboard_rx_buf[VBOARD_RX_BUF_BYTES];
static uint16_t vboard_rx_head;
static uint16_t vboard_rx_tail;

// Drains the UART. Called from the VM hook every few branches, so a loop in
// Python sees Ctrl-C as a real board's UART interrupt would deliver it.
void vboard_poll_input(void) {
    for (;;) {
        uint16_t next = (vboard_rx_head + 1) % VBOARD_RX_BUF_BYTES;
        if (next == vboard_rx_tail) {
            // Queue full: leave the rest in the UART, qemu holds it back.
            return;
        }
        int c = __real_uart_rx_chr();
        if (c < 0) {
            return;
        }
        if (c == mp_interrupt_char) {
            mp_sched_keyboard_interrupt();
            continue;
        }
        vboard_rx_buf[vboard_rx_head] = (uint8_t)c;
        vboard_rx_head = next;
    }
}

// Every stdin read of the port goes through here first (-Wl,--wrap).
int __wrap_uart_rx_chr(void) {
    if (vboard_rx_tail != vboard_rx_head) {
        int c = vboard_rx_buf[vboard_rx_tail];
        vboard_rx_tail = (vboard_rx_tail + 1) % VBOARD_RX_BUF_BYTES;
        return c;
    }
    int c = __real_uart_rx_chr();
    if (c >= 0 && c == mp_interrupt_char) {
        // Python code blocked in a stdin read runs no VM branches, so the
        // poll above never sees this Ctrl-C: raise KeyboardInterrupt here, as
        // a real port's UART interrupt would. (Outside running code
        // mp_interrupt_char is -1 and the REPL gets the byte.)
        mp_sched_keyboard_interrupt();
        mp_handle_pending(true);
    }
    return c;
}

// littlefs stamps files with the time; the qemu port has no clock.
__attribute__((weak)) uint64_t mp_hal_time_ns(void) {
    return 0;
}

void vboard_port_init(void) {
    pyexec_frozen_module("_vboot.py", false);
}

// vboard.ramdisk(): the RAM disk's memory, for the block device in _vboot.py.
static mp_obj_t vboard_ramdisk(void) {
    // Writable view: the block device writes through it.
    return mp_obj_new_memoryview(MP_OBJ_ARRAY_TYPECODE_FLAG_RW | 'B', VBOARD_RAMDISK_BYTES, vboard_ramdisk_mem);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vboard_ramdisk_obj, vboard_ramdisk);

static const mp_rom_map_elem_t vboard_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_vboard) },
    { MP_ROM_QSTR(MP_QSTR_ramdisk), MP_ROM_PTR(&vboard_ramdisk_obj) },
};
static MP_DEFINE_CONST_DICT(vboard_module_globals, vboard_module_globals_table);

const mp_obj_module_t vboard_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vboard_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_vboard, vboard_module);
