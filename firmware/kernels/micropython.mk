# mpml's C kernels compiled into a MicroPython firmware (make-based ports:
# qemu, unix, stm32, ...): USER_C_MODULES names the folder that holds this
# folder. The same sources as the native module (natmod.mk) and
# micropython.cmake, with modkernels_builtin.c (which includes modkernels.c
# and registers the builtin module _mpml_native) in place of modkernels.c;
# tests/test_images.py checks the three lists agree.
MPML_KERNELS_DIR := $(USERMOD_DIR)

# The glue has the qstrs; the kernels have none, so they skip the qstr scan.
SRC_USERMOD_C += $(MPML_KERNELS_DIR)/modkernels_builtin.c
SRC_USERMOD_LIB_C += $(addprefix $(MPML_KERNELS_DIR)/, \
	dispatch.c mac.c fully_connected.c conv.c depthwise_conv.c \
	pool.c add.c lut.c softmax.c requantize.c tree.c requant.c \
	features.c feature_bands.c)
CFLAGS_USERMOD += -I$(MPML_KERNELS_DIR)

# Ports build for size (-Os); the kernels are the hot loop, built -O2 as
# the native module is (the results are the same either way).
$(BUILD)/$(patsubst $(USER_C_MODULES)/%,%,$(MPML_KERNELS_DIR))/%.o: CFLAGS += -O2
