# Passed beside firmware/kernels/micropython.cmake in USER_C_MODULES by
# tools/setup/build_image.py: once the port has defined its frozen-content
# target, run frozen_align.py after it when the port freezes for armv6m
# (RP2040), so frozen viper code gets the word alignment its constant loads
# assume (frozen_align.py says why).
function(mpml_frozen_align)
    if(TARGET BUILD_FROZEN_CONTENT AND MICROPY_CROSS_FLAGS MATCHES "armv6m")
        add_custom_command(TARGET BUILD_FROZEN_CONTENT POST_BUILD
            COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_FUNCTION_LIST_DIR}/frozen_align.py
                    ${CMAKE_BINARY_DIR}/frozen_content.c
            VERBATIM)
    endif()
endfunction()
cmake_language(DEFER CALL mpml_frozen_align)
