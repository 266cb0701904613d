// The MicroPython glue of the kernels: the same functions and signatures as
// firmware/mpml/_pure.py, kernel(p, *buffers). All checks are in mpml_run
// (dispatch.c); this file only turns Python objects into pointers and
// lengths, and errors into ValueError. One source, two builds:
//  - a dynamic native module (natmod.mk, py/dynruntime.mk defines
//    MICROPY_ENABLE_DYNRUNTIME), installed as /lib/mpml/_native.mpy;
//  - compiled into a firmware as the builtin module _mpml_native by
//    modkernels_builtin.c, which includes this file (micropython.mk /
//    micropython.cmake, USER_C_MODULES). Its qstrs live there: mpy_ld.py
//    collects every MP_QSTR_ of this file, whatever the #if, so they would
//    otherwise change the .mpy.
// mpml.model imports mpml._native first, then _mpml_native.
#if MICROPY_ENABLE_DYNRUNTIME
#include "py/dynruntime.h"
#else
#include "py/runtime.h"
#endif
#include "mpml_kernels.h"

// p: array('i') (used in place) or a list/tuple of ints (copied to the stack).
static const int32_t *get_params(mp_obj_t o, int32_t *tmp, size_t *np) {
    mp_buffer_info_t bi;
    if (mp_get_buffer(o, &bi, MP_BUFFER_READ) && bi.typecode == 'i') {
        *np = bi.len / 4;
        if (((uintptr_t)bi.buf & 3) == 0) {
            return bi.buf;
        }
        // An unaligned array (a memoryview slice): copy what kernels read.
        size_t n = *np < MPML_MAX_PARAMS ? *np : MPML_MAX_PARAMS;
        const uint8_t *b = bi.buf;
        for (size_t k = 0; k < n; k++, b += 4) {
            tmp[k] = (int32_t)(b[0] | (b[1] << 8) | (b[2] << 16) | ((uint32_t)b[3] << 24));
        }
        *np = n;
        return tmp;
    }
    size_t n;
    mp_obj_t *items;
    mp_obj_get_array(o, &n, &items);
    if (n > MPML_MAX_PARAMS) {
        n = MPML_MAX_PARAMS;
    }
    for (size_t k = 0; k < n; k++) {
        tmp[k] = mp_obj_get_int(items[k]);
    }
    *np = n;
    return tmp;
}

static mp_obj_t run(int code, size_t n_args, const mp_obj_t *args) {
    int32_t tmp[MPML_MAX_PARAMS];
    size_t np;
    const int32_t *p = get_params(args[0], tmp, &np);
    void *bufs[MPML_MAX_SLOTS];
    size_t lens[MPML_MAX_SLOTS];
    size_t ns = n_args - 1;
    for (size_t k = 0; k < ns; k++) {
        mp_buffer_info_t bi;
        mp_get_buffer_raise(args[1 + k], &bi, k == ns - 1 ? MP_BUFFER_WRITE : MP_BUFFER_READ);
        bufs[k] = bi.buf;
        lens[k] = bi.len;
    }
    mpml_err_t err = mpml_run(code, p, np, bufs, lens);
    if (err) {
        #if MICROPY_ENABLE_DYNRUNTIME
        mp_raise_ValueError((mp_rom_error_text_t)err);
        #else
        // A firmware may compress its ROM messages (MICROPY_ROM_TEXT_COMPRESSION):
        // then a plain C string is no mp_rom_error_text_t; "%s" is one.
        mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s"), err);
        #endif
    }
    return mp_const_none;
}

#define KERNEL(name, code, n_slots) \
    static mp_obj_t k_##name(size_t n_args, const mp_obj_t *args) { \
        return run(code, n_args, args); \
    } \
    static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(name##_obj, 1 + n_slots, 1 + n_slots, k_##name);

KERNEL(fully_connected, MPML_FULLY_CONNECTED, 6)
KERNEL(conv_2d, MPML_CONV_2D, 6)
KERNEL(depthwise_conv_2d, MPML_DEPTHWISE_CONV_2D, 6)
KERNEL(average_pool_2d, MPML_AVERAGE_POOL_2D, 2)
KERNEL(max_pool_2d, MPML_MAX_POOL_2D, 2)
KERNEL(add, MPML_ADD, 3)
KERNEL(reshape, MPML_RESHAPE, 2)
KERNEL(softmax, MPML_SOFTMAX, 4)
KERNEL(logistic, MPML_LOGISTIC, 3)
KERNEL(tanh, MPML_TANH, 3)
KERNEL(requantize, MPML_REQUANTIZE, 2)
KERNEL(tree_ensemble, MPML_TREE_ENSEMBLE, 5)

#if MICROPY_ENABLE_DYNRUNTIME

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_fully_connected, MP_OBJ_FROM_PTR(&fully_connected_obj));
    mp_store_global(MP_QSTR_conv_2d, MP_OBJ_FROM_PTR(&conv_2d_obj));
    mp_store_global(MP_QSTR_depthwise_conv_2d, MP_OBJ_FROM_PTR(&depthwise_conv_2d_obj));
    mp_store_global(MP_QSTR_average_pool_2d, MP_OBJ_FROM_PTR(&average_pool_2d_obj));
    mp_store_global(MP_QSTR_max_pool_2d, MP_OBJ_FROM_PTR(&max_pool_2d_obj));
    mp_store_global(MP_QSTR_add, MP_OBJ_FROM_PTR(&add_obj));
    mp_store_global(MP_QSTR_reshape, MP_OBJ_FROM_PTR(&reshape_obj));
    mp_store_global(MP_QSTR_softmax, MP_OBJ_FROM_PTR(&softmax_obj));
    mp_store_global(MP_QSTR_logistic, MP_OBJ_FROM_PTR(&logistic_obj));
    mp_store_global(MP_QSTR_tanh, MP_OBJ_FROM_PTR(&tanh_obj));
    mp_store_global(MP_QSTR_requantize, MP_OBJ_FROM_PTR(&requantize_obj));
    mp_store_global(MP_QSTR_tree_ensemble, MP_OBJ_FROM_PTR(&tree_ensemble_obj));
    MP_DYNRUNTIME_INIT_EXIT
}

#endif
