# Run by ./Makefile inside the build folder of one arch (make -C <out> -f natmod.mk):
# MicroPython's dynruntime.mk writes $(MOD).mpy into the current folder, so
# the sources are found through VPATH and nothing is written to the tree.
MOD = _native
SRC = modkernels.c dispatch.c mac.c fully_connected.c conv.c depthwise_conv.c \
      pool.c add.c lut.c softmax.c requantize.c tree.c requant.c \
      features.c feature_bands.c
VPATH = $(SRCDIR)
BUILD = obj
# No runtime is linked: no memset from loops, no switch-table helpers
# (__gnu_thumb1_case_*), and the C avoids long multiply and division on armv6m.
CFLAGS_EXTRA += -I$(SRCDIR) -O2 -fno-tree-loop-distribute-patterns -fno-jump-tables
include $(MPY_DIR)/py/dynruntime.mk
