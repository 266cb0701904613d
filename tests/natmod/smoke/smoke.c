// A minimal dynamic native module: proves a board loads natmods for its arch.
#include "py/dynruntime.h"

static mp_obj_t smoke_mac(mp_obj_t a_in, mp_obj_t b_in) {
    // int8 multiply-accumulate over two byte strings, the shape of our kernels.
    mp_buffer_info_t a, b;
    mp_get_buffer_raise(a_in, &a, MP_BUFFER_READ);
    mp_get_buffer_raise(b_in, &b, MP_BUFFER_READ);
    size_t n = a.len < b.len ? a.len : b.len;
    const int8_t *pa = a.buf, *pb = b.buf;
    int32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += (int32_t)pa[i] * (int32_t)pb[i];
    }
    return mp_obj_new_int(acc);
}
static MP_DEFINE_CONST_FUN_OBJ_2(smoke_mac_obj, smoke_mac);

mp_obj_t mpy_init(mp_obj_fun_bc_t *self, size_t n_args, size_t n_kw, mp_obj_t *args) {
    MP_DYNRUNTIME_INIT_ENTRY
    mp_store_global(MP_QSTR_mac, MP_OBJ_FROM_PTR(&smoke_mac_obj));
    MP_DYNRUNTIME_INIT_EXIT
}
