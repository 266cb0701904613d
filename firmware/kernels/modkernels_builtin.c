// The kernels compiled into a firmware (USER_C_MODULES: micropython.mk,
// micropython.cmake) as the builtin module _mpml_native: modkernels.c's
// functions, in a module table that lives in flash. mpml.model finds it
// when no mpml/_native.mpy sits beside the package, so a firmware with
// mpml frozen needs nothing installed.
#include "modkernels.c"


static const mp_rom_map_elem_t mpml_native_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__mpml_native) },
    { MP_ROM_QSTR(MP_QSTR_fully_connected), MP_ROM_PTR(&fully_connected_obj) },
    { MP_ROM_QSTR(MP_QSTR_conv_2d), MP_ROM_PTR(&conv_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_depthwise_conv_2d), MP_ROM_PTR(&depthwise_conv_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_average_pool_2d), MP_ROM_PTR(&average_pool_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_max_pool_2d), MP_ROM_PTR(&max_pool_2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_add), MP_ROM_PTR(&add_obj) },
    { MP_ROM_QSTR(MP_QSTR_reshape), MP_ROM_PTR(&reshape_obj) },
    { MP_ROM_QSTR(MP_QSTR_softmax), MP_ROM_PTR(&softmax_obj) },
    { MP_ROM_QSTR(MP_QSTR_logistic), MP_ROM_PTR(&logistic_obj) },
    { MP_ROM_QSTR(MP_QSTR_tanh), MP_ROM_PTR(&tanh_obj) },
    { MP_ROM_QSTR(MP_QSTR_requantize), MP_ROM_PTR(&requantize_obj) },
    { MP_ROM_QSTR(MP_QSTR_tree_ensemble), MP_ROM_PTR(&tree_ensemble_obj) },
    { MP_ROM_QSTR(MP_QSTR_fx_raw), MP_ROM_PTR(&fx_raw_obj) },
    { MP_ROM_QSTR(MP_QSTR_fx_stats), MP_ROM_PTR(&fx_stats_obj) },
    { MP_ROM_QSTR(MP_QSTR_fx_bands), MP_ROM_PTR(&fx_bands_obj) },
    { MP_ROM_QSTR(MP_QSTR_fx_quant), MP_ROM_PTR(&fx_quant_obj) },
};
static MP_DEFINE_CONST_DICT(mpml_native_globals, mpml_native_globals_table);

const mp_obj_module_t mpml_native_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&mpml_native_globals,
};

MP_REGISTER_MODULE(MP_QSTR__mpml_native, mpml_native_module);
