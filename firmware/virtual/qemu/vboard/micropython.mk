# Virtual-board support module for the qemu port (see vboard.c).
VBOARD_MOD_DIR := $(USERMOD_DIR)

SRC_USERMOD_C += $(VBOARD_MOD_DIR)/vboard.c $(VBOARD_MOD_DIR)/vboard_ramdisk.c

# Route the port's UART reads through the Ctrl-C aware queue in vboard.c.
LDFLAGS += -Wl,--wrap=uart_rx_chr
