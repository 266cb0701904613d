// vboard.RAMDisk: the block device of a qemu board's filesystem.
//
// In C, as a real board's flash driver is (rp2.Flash, esp32.Partition): a
// block device written in Python costs a method call and a slice copy for
// each of littlefs's small reads and writes, which made writing a 22 KB file
// take ~50 ms of an emulated Cortex-M0 where a real Pico spends its time in
// the flash itself. It speaks the extended block protocol (offsets; erase is
// a no-op as RAM needs none). Blocks outside the disk give -EIO, never a
// write past its end.

#include <string.h>

#include "py/runtime.h"
#include "py/mperrno.h"
#include "extmod/vfs.h"

#ifndef VBOARD_RAMDISK_BYTES
#define VBOARD_RAMDISK_BYTES (64 * 1024)
#endif

#ifdef VBOARD_RAMDISK_ADDR
// Memory the machine has beyond what the firmware's linker script knows (the
// m0 board): the disk stands for a real board's flash, and the MicroPython
// heap keeps the size it would have on the real chip.
#define vboard_ramdisk_mem ((uint8_t *)(VBOARD_RAMDISK_ADDR))
#else
// Outside the GC heap, so the disk survives soft resets.
static uint8_t vboard_ramdisk_mem[VBOARD_RAMDISK_BYTES] __attribute__((aligned(8)));
#endif

typedef struct _vboard_ramdisk_obj_t {
    mp_obj_base_t base;
    uint32_t block_size;
} vboard_ramdisk_obj_t;

// RAMDisk(block_size=512)
static mp_obj_t vboard_ramdisk_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 0, 1, false);
    mp_int_t block_size = n_args ? mp_obj_get_int(args[0]) : 512;
    if (block_size < 128 || block_size > VBOARD_RAMDISK_BYTES || (block_size & (block_size - 1))) {
        mp_raise_ValueError(MP_ERROR_TEXT("block_size"));
    }
    vboard_ramdisk_obj_t *self = mp_obj_malloc(vboard_ramdisk_obj_t, type);
    self->block_size = block_size;
    return MP_OBJ_FROM_PTR(self);
}

// The disk's bytes for (block, offset, len), or NULL when any of them lies outside it.
static uint8_t *vboard_ramdisk_span(vboard_ramdisk_obj_t *self, mp_obj_t block_in, mp_obj_t offset_in, size_t len) {
    mp_int_t block = mp_obj_get_int(block_in);
    mp_int_t offset = offset_in == MP_OBJ_NULL ? 0 : mp_obj_get_int(offset_in);
    if (block < 0 || offset < 0 || (uint64_t)block * self->block_size + offset + len > VBOARD_RAMDISK_BYTES) {
        return NULL;
    }
    return vboard_ramdisk_mem + block * self->block_size + offset;
}

static mp_obj_t vboard_ramdisk_readblocks(size_t n_args, const mp_obj_t *args) {
    vboard_ramdisk_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_WRITE);
    uint8_t *src = vboard_ramdisk_span(self, args[1], n_args == 4 ? args[3] : MP_OBJ_NULL, buf.len);
    if (src == NULL) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
    }
    memcpy(buf.buf, src, buf.len);
    return MP_OBJ_NEW_SMALL_INT(0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(vboard_ramdisk_readblocks_obj, 3, 4, vboard_ramdisk_readblocks);

static mp_obj_t vboard_ramdisk_writeblocks(size_t n_args, const mp_obj_t *args) {
    vboard_ramdisk_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t buf;
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    uint8_t *dest = vboard_ramdisk_span(self, args[1], n_args == 4 ? args[3] : MP_OBJ_NULL, buf.len);
    if (dest == NULL) {
        return MP_OBJ_NEW_SMALL_INT(-MP_EIO);
    }
    memcpy(dest, buf.buf, buf.len);
    return MP_OBJ_NEW_SMALL_INT(0);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(vboard_ramdisk_writeblocks_obj, 3, 4, vboard_ramdisk_writeblocks);

static mp_obj_t vboard_ramdisk_ioctl(mp_obj_t self_in, mp_obj_t op_in, mp_obj_t arg_in) {
    vboard_ramdisk_obj_t *self = MP_OBJ_TO_PTR(self_in);
    switch (mp_obj_get_int(op_in)) {
        case MP_BLOCKDEV_IOCTL_BLOCK_COUNT:
            return MP_OBJ_NEW_SMALL_INT(VBOARD_RAMDISK_BYTES / self->block_size);
        case MP_BLOCKDEV_IOCTL_BLOCK_SIZE:
            return MP_OBJ_NEW_SMALL_INT(self->block_size);
        case MP_BLOCKDEV_IOCTL_INIT:
        case MP_BLOCKDEV_IOCTL_DEINIT:
        case MP_BLOCKDEV_IOCTL_SYNC:
        case MP_BLOCKDEV_IOCTL_BLOCK_ERASE:
            return MP_OBJ_NEW_SMALL_INT(0);
        default:
            return mp_const_none;
    }
}
static MP_DEFINE_CONST_FUN_OBJ_3(vboard_ramdisk_ioctl_obj, vboard_ramdisk_ioctl);

static const mp_rom_map_elem_t vboard_ramdisk_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_readblocks), MP_ROM_PTR(&vboard_ramdisk_readblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_writeblocks), MP_ROM_PTR(&vboard_ramdisk_writeblocks_obj) },
    { MP_ROM_QSTR(MP_QSTR_ioctl), MP_ROM_PTR(&vboard_ramdisk_ioctl_obj) },
};
static MP_DEFINE_CONST_DICT(vboard_ramdisk_locals_dict, vboard_ramdisk_locals_dict_table);

MP_DEFINE_CONST_OBJ_TYPE(
    vboard_ramdisk_type,
    MP_QSTR_RAMDisk,
    MP_TYPE_FLAG_NONE,
    make_new, vboard_ramdisk_make_new,
    locals_dict, &vboard_ramdisk_locals_dict
    );
