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
#include "mpml_features.h"

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

// mpml.featurize's kernels (mpml_features.h): fx_raw(p, x, f), fx_stats(p, x, f),
// fx_bands(p, x, tab, work, f), fx_quant(p, f, slots, sidx, out). Buffers
// only (p an array('i')), each aligned to its element size: an unaligned
// halfword or word load faults on a Cortex-M0.
static void *fx_buf(mp_obj_t o, int log2size, size_t *n, mp_uint_t flags) {
    mp_buffer_info_t bi;
    mp_get_buffer_raise(o, &bi, flags);
    if (((uintptr_t)bi.buf & ((1u << log2size) - 1)) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("features: a buffer is not aligned to its element size"));
    }
    *n = bi.len >> log2size;  // a shift: no divide on Cortex-M0
    return bi.buf;
}

static mp_obj_t fx_done(mpml_err_t err) {
    if (err) {
        mp_raise_ValueError((mp_rom_error_text_t)err);
    }
    return mp_const_none;
}

static mp_obj_t fx_raw(mp_obj_t p_in, mp_obj_t x_in, mp_obj_t f_in) {
    size_t np, nx, nf;
    const int32_t *p = fx_buf(p_in, 2, &np, MP_BUFFER_READ);
    const int16_t *x = fx_buf(x_in, 1, &nx, MP_BUFFER_READ);
    int32_t *f = fx_buf(f_in, 2, &nf, MP_BUFFER_WRITE);
    return fx_done(mpml_fx_raw(p, np, x, nx, f, nf));
}
static MP_DEFINE_CONST_FUN_OBJ_3(fx_raw_obj, fx_raw);

static mp_obj_t fx_stats(mp_obj_t p_in, mp_obj_t x_in, mp_obj_t f_in) {
    size_t np, nx, nf;
    const int32_t *p = fx_buf(p_in, 2, &np, MP_BUFFER_READ);
    const int16_t *x = fx_buf(x_in, 1, &nx, MP_BUFFER_READ);
    int32_t *f = fx_buf(f_in, 2, &nf, MP_BUFFER_WRITE);
    return fx_done(mpml_fx_stats(p, np, x, nx, f, nf));
}
static MP_DEFINE_CONST_FUN_OBJ_3(fx_stats_obj, fx_stats);

static mp_obj_t fx_bands(size_t n_args, const mp_obj_t *args) {
    size_t np, nx, nt, nw, nf;
    const int32_t *p = fx_buf(args[0], 2, &np, MP_BUFFER_READ);
    const int16_t *x = fx_buf(args[1], 1, &nx, MP_BUFFER_READ);
    const uint16_t *tab = fx_buf(args[2], 1, &nt, MP_BUFFER_READ);
    int32_t *work = fx_buf(args[3], 2, &nw, MP_BUFFER_WRITE);
    int32_t *f = fx_buf(args[4], 2, &nf, MP_BUFFER_WRITE);
    return fx_done(mpml_fx_bands(p, np, x, nx, tab, nt, work, nw, f, nf));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fx_bands_obj, 5, 5, fx_bands);

static mp_obj_t fx_quant(size_t n_args, const mp_obj_t *args) {
    size_t np, nf, ns, ni, no;
    const int32_t *p = fx_buf(args[0], 2, &np, MP_BUFFER_READ);
    const int32_t *f = fx_buf(args[1], 2, &nf, MP_BUFFER_READ);
    const int32_t *slots = fx_buf(args[2], 2, &ns, MP_BUFFER_READ);
    const uint16_t *sidx = fx_buf(args[3], 1, &ni, MP_BUFFER_READ);
    int8_t *out = fx_buf(args[4], 0, &no, MP_BUFFER_WRITE);
    return fx_done(mpml_fx_quant(p, np, f, nf, slots, ns, sidx, ni, out, no));
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(fx_quant_obj, 5, 5, fx_quant);

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
    mp_store_global(MP_QSTR_fx_raw, MP_OBJ_FROM_PTR(&fx_raw_obj));
    mp_store_global(MP_QSTR_fx_stats, MP_OBJ_FROM_PTR(&fx_stats_obj));
    mp_store_global(MP_QSTR_fx_bands, MP_OBJ_FROM_PTR(&fx_bands_obj));
    mp_store_global(MP_QSTR_fx_quant, MP_OBJ_FROM_PTR(&fx_quant_obj));
    MP_DYNRUNTIME_INIT_EXIT
}

#endif
