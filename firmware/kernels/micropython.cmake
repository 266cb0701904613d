# mpml's C kernels compiled into a MicroPython firmware (CMake ports: rp2,
# esp32): pass USER_C_MODULES=<this folder>/micropython.cmake. The same
# sources as the native module (natmod.mk) and micropython.mk, with
# modkernels_builtin.c (which includes modkernels.c and registers the builtin
# module _mpml_native) in place of modkernels.c; tests/test_images.py checks
# the three lists agree.
add_library(usermod_mpml_kernels INTERFACE)

set(MPML_KERNELS_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/modkernels_builtin.c
    ${CMAKE_CURRENT_LIST_DIR}/dispatch.c
    ${CMAKE_CURRENT_LIST_DIR}/mac.c
    ${CMAKE_CURRENT_LIST_DIR}/fully_connected.c
    ${CMAKE_CURRENT_LIST_DIR}/conv.c
    ${CMAKE_CURRENT_LIST_DIR}/depthwise_conv.c
    ${CMAKE_CURRENT_LIST_DIR}/pool.c
    ${CMAKE_CURRENT_LIST_DIR}/add.c
    ${CMAKE_CURRENT_LIST_DIR}/lut.c
    ${CMAKE_CURRENT_LIST_DIR}/softmax.c
    ${CMAKE_CURRENT_LIST_DIR}/requantize.c
    ${CMAKE_CURRENT_LIST_DIR}/tree.c
    ${CMAKE_CURRENT_LIST_DIR}/requant.c
    ${CMAKE_CURRENT_LIST_DIR}/features.c
    ${CMAKE_CURRENT_LIST_DIR}/feature_bands.c
)

target_sources(usermod_mpml_kernels INTERFACE ${MPML_KERNELS_SOURCES})
target_include_directories(usermod_mpml_kernels INTERFACE ${CMAKE_CURRENT_LIST_DIR})

# Ports build for size (rp2: MinSizeRel); the kernels are the hot loop,
# built -O2 as the native module is (the results are the same either way).
# Included from the port's CMakeLists.txt, so this reaches its firmware target.
set_source_files_properties(${MPML_KERNELS_SOURCES} PROPERTIES COMPILE_OPTIONS "-O2")

target_link_libraries(usermod INTERFACE usermod_mpml_kernels)
