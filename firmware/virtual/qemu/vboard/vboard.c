// Virtual-board support compiled into the qemu firmware images (m0, m3, rv32).
//
// A real board keeps its filesystem in flash and notices Ctrl-C while Python
// runs; the qemu port does neither. This module gives it both, without
// touching MicroPython's own sources:
//   - a RAM disk outside the GC heap, so it survives soft resets (the heap is
//     wiped on every soft reset, which mpremote triggers on each connect),
//     and its block device (vboard_ramdisk.c);
//   - an input poll hooked into the VM loop that turns Ctrl-C into
//     KeyboardInterrupt and queues every other byte for stdin;
//   - a port-init hook that runs the frozen _vboot.py after every mp_init();
//   - a `time` module (the port has MICROPY_PY_TIME=0) on a hardware timer of
//     each machine, and vboard.Timer with machine.Timer's interface.
//
// The port sets up no interrupts (its vector table has only the core's
// exceptions), so timers are polled: from the VM hook every 64 branches, from
// the blocking stdin read and from sleeps. A due timer's callback goes through
// mp_sched_schedule, as rp2's and esp32's soft timers deliver theirs; a long C
// call (a kernel, a file write) delays it, as it would a soft timer there.

#include "py/runtime.h"
#include "py/mphal.h"
#include "py/smallint.h"
#include "shared/runtime/interrupt_char.h"
#include "shared/runtime/pyexec.h"

#define VBOARD_RX_BUF_BYTES (512)

// Provided by the port's uart.c; reached through the linker's --wrap.
int __real_uart_rx_chr(void);

// Bytes read from the UART while Python was running, waiting for stdin.
static uint8_t vboard_rx_buf[VBOARD_RX_BUF_BYTES];
static uint16_t vboard_rx_head;
static uint16_t vboard_rx_tail;

static void vboard_timers_poll(void);
static uint8_t vboard_timers_active;

// Drains the UART. Called from the VM hook every few branches, so a loop in
// Python sees Ctrl-C as a real board's UART interrupt would deliver it.
void vboard_poll_input(void) {
    if (vboard_timers_active) {
        vboard_timers_poll();
    }
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
    if (vboard_timers_active) {
        // A program waiting for input still gets its timer callbacks, as
        // real ports run them from the event hook of their stdin loop.
        vboard_timers_poll();
        mp_handle_pending(true);
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

// -- clock ------------------------------------------------------------------------------------
// A free-running microsecond counter of each machine, extended to 64 bits in
// software (it only has to be read more often than it wraps: 71 minutes on
// the 32-bit counters), and a faster counter for ticks_cpu. qemu derives them
// from its virtual clock, which follows the host's real time.

#define REG32(addr) (*(volatile uint32_t *)(addr))

#if defined(QEMU_SOC_NRF51)
// nRF51 TIMER0 at 16 MHz / 2^4 = 1 MHz and TIMER1 at 16 MHz, both 32-bit;
// a counter is read by triggering its CAPTURE[0] task and reading CC[0].
#define NRF_TIMER0 (0x40008000)
#define NRF_TIMER1 (0x40009000)
#define NRF_TASKS_START (0x000)
#define NRF_TASKS_CAPTURE0 (0x040)
#define NRF_BITMODE (0x508)
#define NRF_PRESCALER (0x510)
#define NRF_CC0 (0x540)
#define VBOARD_CPU_HZ (16000000)

static void clock_start(void) {
    REG32(NRF_TIMER0 + NRF_BITMODE) = 3; // 32 bit
    REG32(NRF_TIMER0 + NRF_PRESCALER) = 4;
    REG32(NRF_TIMER0 + NRF_TASKS_START) = 1;
    REG32(NRF_TIMER1 + NRF_BITMODE) = 3;
    REG32(NRF_TIMER1 + NRF_PRESCALER) = 0;
    REG32(NRF_TIMER1 + NRF_TASKS_START) = 1;
}

static inline uint32_t clock_us32(void) {
    REG32(NRF_TIMER0 + NRF_TASKS_CAPTURE0) = 1;
    return REG32(NRF_TIMER0 + NRF_CC0);
}

static inline uint32_t clock_cpu32(void) {
    REG32(NRF_TIMER1 + NRF_TASKS_CAPTURE0) = 1;
    return REG32(NRF_TIMER1 + NRF_CC0);
}

#elif defined(QEMU_SOC_MPS2)
// MPS2 AN385: the FPGA's COUNTER counts 25 MHz cycles divided by PRESCALE+1
// (1 MHz with 24); CMSDK APB TIMER0 counts the 25 MHz clock down.
#define FPGAIO_COUNTER (0x40028018)
#define FPGAIO_PRESCALE (0x4002801c)
#define CMSDK_TIMER0 (0x40000000)
#define VBOARD_CPU_HZ (25000000)

static void clock_start(void) {
    REG32(FPGAIO_PRESCALE) = 24;
    REG32(CMSDK_TIMER0 + 0x8) = 0xffffffff; // RELOAD
    REG32(CMSDK_TIMER0 + 0x4) = 0xffffffff; // VALUE
    REG32(CMSDK_TIMER0 + 0x0) = 1; // CTRL: enable
}

static inline uint32_t clock_us32(void) {
    return REG32(FPGAIO_COUNTER);
}

static inline uint32_t clock_cpu32(void) {
    return ~REG32(CMSDK_TIMER0 + 0x4);
}

#elif defined(QEMU_SOC_VIRT)
// RISC-V virt: the CLINT's 64-bit mtime at 10 MHz.
#define CLINT_MTIME_LO (0x0200bff8)
#define CLINT_MTIME_HI (0x0200bffc)
#define VBOARD_CPU_HZ (10000000)

static void clock_start(void) {
}

static inline uint64_t clock_mtime(void) {
    uint32_t hi, lo;
    do {
        hi = REG32(CLINT_MTIME_HI);
        lo = REG32(CLINT_MTIME_LO);
    } while (hi != REG32(CLINT_MTIME_HI));
    return ((uint64_t)hi << 32) | lo;
}

static inline uint32_t clock_us32(void) {
    return (uint32_t)(clock_mtime() / 10);
}

static inline uint32_t clock_cpu32(void) {
    return REG32(CLINT_MTIME_LO);
}

#else
#error "vboard: no clock for this qemu machine (QEMU_SOC_NRF51, QEMU_SOC_MPS2 or QEMU_SOC_VIRT)"
#endif

static bool clock_started;
static uint32_t clock_last;
static uint64_t clock_total;

// Microseconds since the first boot (the count goes on across soft resets, as
// a real board's ticks do).
static uint64_t vboard_us64(void) {
    uint32_t now = clock_us32();
    clock_total += (uint32_t)(now - clock_last);
    clock_last = now;
    return clock_total;
}

mp_uint_t mp_hal_ticks_us(void) {
    return (mp_uint_t)vboard_us64();
}

mp_uint_t mp_hal_ticks_ms(void) {
    return (mp_uint_t)(vboard_us64() / 1000);
}

mp_uint_t mp_hal_ticks_cpu(void) {
    return clock_cpu32();
}

// Busy waits that keep the board alive: input polled (Ctrl-C), timers
// delivered; sleep_ms also runs the scheduled callbacks, as
// MICROPY_EVENT_POLL_HOOK does on real ports.
static void vboard_wait_until(uint64_t end, bool handle_events) {
    while (vboard_us64() < end) {
        vboard_poll_input();
        if (handle_events) {
            mp_handle_pending(true);
        }
    }
}

void mp_hal_delay_us(mp_uint_t us) {
    vboard_wait_until(vboard_us64() + us, false);
}

void mp_hal_delay_ms(mp_uint_t ms) {
    vboard_wait_until(vboard_us64() + (uint64_t)ms * 1000, true);
}

// -- time module --------------------------------------------------------------------------------

#define TICKS_PERIOD (MICROPY_PY_TIME_TICKS_PERIOD)
#define TICKS_MASK (TICKS_PERIOD - 1)

static mp_obj_t vtime_ticks_ms(void) {
    return MP_OBJ_NEW_SMALL_INT(mp_hal_ticks_ms() & TICKS_MASK);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vtime_ticks_ms_obj, vtime_ticks_ms);

static mp_obj_t vtime_ticks_us(void) {
    return MP_OBJ_NEW_SMALL_INT(mp_hal_ticks_us() & TICKS_MASK);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vtime_ticks_us_obj, vtime_ticks_us);

static mp_obj_t vtime_ticks_cpu(void) {
    return MP_OBJ_NEW_SMALL_INT(mp_hal_ticks_cpu() & TICKS_MASK);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vtime_ticks_cpu_obj, vtime_ticks_cpu);

// Same contract as MicroPython's own time.ticks_diff/ticks_add: the result is
// the signed difference in the ticks' modular range.
static mp_obj_t vtime_ticks_diff(mp_obj_t end_in, mp_obj_t start_in) {
    mp_uint_t d = (mp_uint_t)mp_obj_get_int_truncated(end_in) - (mp_uint_t)mp_obj_get_int_truncated(start_in);
    d = (d + TICKS_PERIOD / 2) & TICKS_MASK;
    return MP_OBJ_NEW_SMALL_INT((mp_int_t)d - TICKS_PERIOD / 2);
}
static MP_DEFINE_CONST_FUN_OBJ_2(vtime_ticks_diff_obj, vtime_ticks_diff);

static mp_obj_t vtime_ticks_add(mp_obj_t ticks_in, mp_obj_t delta_in) {
    mp_int_t delta = mp_obj_get_int(delta_in);
    if (delta <= -(mp_int_t)(TICKS_PERIOD / 2) || delta >= (mp_int_t)(TICKS_PERIOD / 2)) {
        mp_raise_msg(&mp_type_OverflowError, MP_ERROR_TEXT("ticks interval overflow"));
    }
    mp_uint_t t = (mp_uint_t)mp_obj_get_int_truncated(ticks_in) + (mp_uint_t)delta;
    return MP_OBJ_NEW_SMALL_INT(t & TICKS_MASK);
}
static MP_DEFINE_CONST_FUN_OBJ_2(vtime_ticks_add_obj, vtime_ticks_add);

static mp_obj_t vtime_sleep_ms(mp_obj_t ms_in) {
    mp_int_t ms = mp_obj_get_int(ms_in);
    if (ms > 0) {
        mp_hal_delay_ms(ms);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(vtime_sleep_ms_obj, vtime_sleep_ms);

static mp_obj_t vtime_sleep_us(mp_obj_t us_in) {
    mp_int_t us = mp_obj_get_int(us_in);
    if (us > 0) {
        mp_hal_delay_us(us);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(vtime_sleep_us_obj, vtime_sleep_us);

static mp_obj_t vtime_sleep(mp_obj_t s_in) {
    #if MICROPY_PY_BUILTINS_FLOAT
    mp_float_t s = mp_obj_get_float(s_in);
    if (s > 0) {
        vboard_wait_until(vboard_us64() + (uint64_t)(s * MICROPY_FLOAT_CONST(1e6)), true);
    }
    #else
    mp_hal_delay_ms(1000 * mp_obj_get_int(s_in));
    #endif
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(vtime_sleep_obj, vtime_sleep);

// Seconds since the first boot: the board has no real-time clock.
static mp_obj_t vtime_time(void) {
    return mp_obj_new_int_from_ull(vboard_us64() / 1000000);
}
static MP_DEFINE_CONST_FUN_OBJ_0(vtime_time_obj, vtime_time);

static const mp_rom_map_elem_t vtime_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_time) },
    { MP_ROM_QSTR(MP_QSTR_sleep), MP_ROM_PTR(&vtime_sleep_obj) },
    { MP_ROM_QSTR(MP_QSTR_sleep_ms), MP_ROM_PTR(&vtime_sleep_ms_obj) },
    { MP_ROM_QSTR(MP_QSTR_sleep_us), MP_ROM_PTR(&vtime_sleep_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_ticks_ms), MP_ROM_PTR(&vtime_ticks_ms_obj) },
    { MP_ROM_QSTR(MP_QSTR_ticks_us), MP_ROM_PTR(&vtime_ticks_us_obj) },
    { MP_ROM_QSTR(MP_QSTR_ticks_cpu), MP_ROM_PTR(&vtime_ticks_cpu_obj) },
    { MP_ROM_QSTR(MP_QSTR_ticks_add), MP_ROM_PTR(&vtime_ticks_add_obj) },
    { MP_ROM_QSTR(MP_QSTR_ticks_diff), MP_ROM_PTR(&vtime_ticks_diff_obj) },
    { MP_ROM_QSTR(MP_QSTR_time), MP_ROM_PTR(&vtime_time_obj) },
};
static MP_DEFINE_CONST_DICT(vtime_module_globals, vtime_module_globals_table);

const mp_obj_module_t vboard_time_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vtime_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_time, vboard_time_module);

// -- vboard.Timer -------------------------------------------------------------------------------
// machine.Timer's interface: Timer(id=-1, *, mode=PERIODIC, freq=None,
// period=None, tick_hz=1000, callback=None), init(...), deinit(). Periods are
// kept in nanoseconds so a rate like 3 kHz does not drift. Like a hardware
// timer's single pending flag, a periodic timer that fell behind fires once
// and resumes its phase; it does not queue every missed period.

enum { TIMER_MODE_ONE_SHOT = 0, TIMER_MODE_PERIODIC = 1 };

typedef struct _vboard_timer_obj_t {
    mp_obj_base_t base;
    struct _vboard_timer_obj_t *next;
    mp_obj_t callback;
    uint64_t period_ns;
    uint64_t due_ns;
    uint8_t mode;
    bool active;
} vboard_timer_obj_t;

MP_REGISTER_ROOT_POINTER(struct _vboard_timer_obj_t *vboard_timer_head);

const mp_obj_type_t vboard_timer_type;

static void vboard_timer_unlink(vboard_timer_obj_t *self) {
    vboard_timer_obj_t **p = &MP_STATE_PORT(vboard_timer_head);
    while (*p != NULL) {
        if (*p == self) {
            *p = self->next;
            break;
        }
        p = &(*p)->next;
    }
    self->next = NULL;
    self->active = false;
    vboard_timers_active = MP_STATE_PORT(vboard_timer_head) != NULL;
}

static void vboard_timers_poll(void) {
    uint64_t now = vboard_us64() * 1000;
    vboard_timer_obj_t *t = MP_STATE_PORT(vboard_timer_head);
    while (t != NULL) {
        vboard_timer_obj_t *next = t->next;
        if (t->active && now >= t->due_ns) {
            if (t->callback == mp_const_none || mp_sched_schedule(t->callback, MP_OBJ_FROM_PTR(t))) {
                if (t->mode == TIMER_MODE_PERIODIC) {
                    t->due_ns += t->period_ns;
                    if (t->due_ns <= now) {
                        t->due_ns += ((now - t->due_ns) / t->period_ns + 1) * t->period_ns;
                    }
                } else {
                    vboard_timer_unlink(t);
                }
            }
            // A full scheduler queue leaves the timer due: it is tried again
            // on the next poll.
        }
        t = next;
    }
}

static mp_obj_t vboard_timer_init_helper(vboard_timer_obj_t *self, size_t n_args, const mp_obj_t *pos_args, mp_map_t *kw_args) {
    enum { ARG_mode, ARG_callback, ARG_period, ARG_tick_hz, ARG_freq };
    static const mp_arg_t allowed_args[] = {
        { MP_QSTR_mode, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = TIMER_MODE_PERIODIC} },
        { MP_QSTR_callback, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
        { MP_QSTR_period, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = -1} },
        { MP_QSTR_tick_hz, MP_ARG_KW_ONLY | MP_ARG_INT, {.u_int = 1000} },
        { MP_QSTR_freq, MP_ARG_KW_ONLY | MP_ARG_OBJ, {.u_rom_obj = MP_ROM_NONE} },
    };
    mp_arg_val_t args[MP_ARRAY_SIZE(allowed_args)];
    mp_arg_parse_all(n_args, pos_args, kw_args, MP_ARRAY_SIZE(allowed_args), allowed_args, args);

    mp_int_t mode = args[ARG_mode].u_int;
    if (mode != TIMER_MODE_ONE_SHOT && mode != TIMER_MODE_PERIODIC) {
        mp_raise_ValueError(MP_ERROR_TEXT("mode must be Timer.ONE_SHOT or Timer.PERIODIC"));
    }
    uint64_t period_ns;
    mp_obj_t freq = args[ARG_freq].u_obj;
    if (freq != mp_const_none) {
        #if MICROPY_PY_BUILTINS_FLOAT
        if (mp_obj_is_float(freq)) {
            mp_float_t f = mp_obj_get_float(freq);
            if (!(f > 0)) {
                mp_raise_ValueError(MP_ERROR_TEXT("freq must be positive"));
            }
            period_ns = (uint64_t)(MICROPY_FLOAT_CONST(1e9) / f);
        } else
        #endif
        {
            mp_int_t f = mp_obj_get_int(freq);
            if (f <= 0) {
                mp_raise_ValueError(MP_ERROR_TEXT("freq must be positive"));
            }
            period_ns = 1000000000ULL / (uint64_t)f;
        }
    } else if (args[ARG_period].u_int >= 0) {
        if (args[ARG_tick_hz].u_int <= 0) {
            mp_raise_ValueError(MP_ERROR_TEXT("tick_hz must be positive"));
        }
        period_ns = (uint64_t)args[ARG_period].u_int * 1000000000ULL / (uint64_t)args[ARG_tick_hz].u_int;
    } else {
        mp_raise_TypeError(MP_ERROR_TEXT("give freq= or period="));
    }
    if (period_ns < 1000) {
        period_ns = 1000; // the clock counts microseconds
    }

    if (self->active) {
        vboard_timer_unlink(self);
    }
    self->mode = mode;
    self->callback = args[ARG_callback].u_obj;
    self->period_ns = period_ns;
    self->due_ns = vboard_us64() * 1000 + period_ns;
    self->active = true;
    self->next = MP_STATE_PORT(vboard_timer_head);
    MP_STATE_PORT(vboard_timer_head) = self;
    vboard_timers_active = 1;
    return mp_const_none;
}

static mp_obj_t vboard_timer_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 1, true);
    if (n_args > 0 && mp_obj_get_int(args[0]) != -1) {
        mp_raise_ValueError(MP_ERROR_TEXT("vboard.Timer has only the virtual timer -1"));
    }
    vboard_timer_obj_t *self = mp_obj_malloc(vboard_timer_obj_t, &vboard_timer_type);
    self->next = NULL;
    self->callback = mp_const_none;
    self->active = false;
    if (n_kw > 0) {
        mp_map_t kw_args;
        mp_map_init_fixed_table(&kw_args, n_kw, args + n_args);
        vboard_timer_init_helper(self, 0, args + n_args, &kw_args);
    }
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t vboard_timer_init(size_t n_args, const mp_obj_t *args, mp_map_t *kw_args) {
    return vboard_timer_init_helper(MP_OBJ_TO_PTR(args[0]), n_args - 1, args + 1, kw_args);
}
static MP_DEFINE_CONST_FUN_OBJ_KW(vboard_timer_init_obj, 1, vboard_timer_init);

static mp_obj_t vboard_timer_deinit(mp_obj_t self_in) {
    vboard_timer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    if (self->active) {
        vboard_timer_unlink(self);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(vboard_timer_deinit_obj, vboard_timer_deinit);

static void vboard_timer_print(const mp_print_t *print, mp_obj_t self_in, mp_print_kind_t kind) {
    vboard_timer_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mp_printf(print, "Timer(mode=%q, period_us=%u, active=%d)",
        self->mode == TIMER_MODE_PERIODIC ? MP_QSTR_PERIODIC : MP_QSTR_ONE_SHOT,
        (unsigned)(self->period_ns / 1000), self->active);
}

static const mp_rom_map_elem_t vboard_timer_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_init), MP_ROM_PTR(&vboard_timer_init_obj) },
    { MP_ROM_QSTR(MP_QSTR_deinit), MP_ROM_PTR(&vboard_timer_deinit_obj) },
    { MP_ROM_QSTR(MP_QSTR_ONE_SHOT), MP_ROM_INT(TIMER_MODE_ONE_SHOT) },
    { MP_ROM_QSTR(MP_QSTR_PERIODIC), MP_ROM_INT(TIMER_MODE_PERIODIC) },
};
static MP_DEFINE_CONST_DICT(vboard_timer_locals_dict, vboard_timer_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    vboard_timer_type,
    MP_QSTR_Timer,
    MP_TYPE_FLAG_NONE,
    make_new, vboard_timer_make_new,
    print, vboard_timer_print,
    locals_dict, &vboard_timer_locals_dict
    );

void vboard_port_init(void) {
    if (!clock_started) {
        clock_start();
        clock_last = clock_us32();
        clock_started = true;
    }
    // The heap, and every Timer in it, is new after a (soft) reset: timers
    // stop there, as machine.Timer's do on real ports.
    MP_STATE_PORT(vboard_timer_head) = NULL;
    vboard_timers_active = 0;
    pyexec_frozen_module("_vboot.py", false);
}

extern const mp_obj_type_t vboard_ramdisk_type;

static const mp_rom_map_elem_t vboard_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_vboard) },
    { MP_ROM_QSTR(MP_QSTR_RAMDisk), MP_ROM_PTR(&vboard_ramdisk_type) },
    { MP_ROM_QSTR(MP_QSTR_Timer), MP_ROM_PTR(&vboard_timer_type) },
    { MP_ROM_QSTR(MP_QSTR_CPU_HZ), MP_ROM_INT(VBOARD_CPU_HZ) },
};
static MP_DEFINE_CONST_DICT(vboard_module_globals, vboard_module_globals_table);

const mp_obj_module_t vboard_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&vboard_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_vboard, vboard_module);
