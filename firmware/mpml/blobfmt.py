# The .mpml blob format, defined once.
#
# The host writer and reader and the device loader all use these layouts.
# Plain Python for CPython and MicroPython alike. docs/blob-format.md explains
# every field; all integers are little-endian.

MAGIC = b"MPML"
VERSION = 1  # bumped on any incompatible change; loaders refuse other versions

# Every constant tensor starts at a file offset, and every activation at an
# arena offset, that is a multiple of ALIGN, so int32 data is read in place.
ALIGN = 8

HEADER = "<4sHHII16sHHHHIIIIIIIIHHI"
HEADER_SIZE = 80
(H_MAGIC, H_VERSION, H_HEADER_SIZE, H_FILE_SIZE, H_ARENA_SIZE, H_HASH,
 H_N_TENSORS, H_N_OPS, H_N_INPUTS, H_N_OUTPUTS,
 H_TENSORS, H_OPS, H_OPS_SIZE, H_IO, H_STRINGS, H_STRINGS_SIZE,
 H_FEATURES, H_FEATURES_SIZE, H_NAME, H_MODEL_VERSION, H_FLAGS) = range(21)
HASH_SIZE = 16  # leading bytes of SHA-256 over [header_size, file_size - 4)
CRC_SIZE = 4  # CRC-32 (zlib's) of everything before it, at the very end

TENSOR = "<BBBB4HIIifHH"
TENSOR_SIZE = 32
(T_DTYPE, T_STORAGE, T_NDIM, T_FLAGS, T_SHAPE0, T_SHAPE1, T_SHAPE2, T_SHAPE3,
 T_OFFSET, T_NBYTES, T_ZERO_POINT, T_SCALE, T_NAME, T_RESERVED) = range(14)
MAX_NDIM = 4

# Tensor dtypes: code -> (name, bytes per element)
INT8 = 1
UINT8 = 2
INT16 = 3
UINT16 = 4
INT32 = 5
FLOAT32 = 6
DTYPES = {
    INT8: ("int8", 1), UINT8: ("uint8", 1), INT16: ("int16", 2),
    UINT16: ("uint16", 2), INT32: ("int32", 4), FLOAT32: ("float32", 4),
}

# Where a tensor lives.
ARENA = 0  # an activation: T_OFFSET is its offset in the arena
CONST = 1  # weights and tables: T_OFFSET is its offset in the blob

# Tensor flags (describe the stored layout; informational for readers).
TF_OFFSET_BINARY = 1  # bytes are w + 128 (ops.WEIGHT_OFFSET)
TF_BLOCKED = 2  # output channels interleaved in blocks of ops.OUT_BLOCK
TF_BIAS_FOLDED = 4  # bias + in_offset * sum(weights), see docs/ops.md

OP_HEAD = "<BBBB"  # opcode, n_inputs, n_outputs, n_params
OP_HEAD_SIZE = 4
# then uint16 tensor indices (inputs, outputs), zero padding to a multiple
# of 4 bytes, then int32 params.

IO = "<HHHH"  # tensor index, name, labels, flags
IO_SIZE = 8
IO_FLOAT = 1  # predict() converts this edge from/to float (QUANTIZE/DEQUANTIZE)

NO_STRING = 0xFFFF
# A string is a uint16 byte length then UTF-8 bytes; a string ref is its
# offset in the strings section. Labels are one string joined with "\n".


def op_record_size(n_tensors, n_params):
    """Bytes taken by one op record."""
    return OP_HEAD_SIZE + ((2 * n_tensors + 3) & ~3) + 4 * n_params


def align(n):
    """n rounded up to a multiple of ALIGN."""
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def string(buf, strings_offset, strings_size, ref):
    """The string at `ref` in the strings section ('' for NO_STRING)."""
    if ref == NO_STRING:
        return ""
    if ref + 2 > strings_size:
        raise ValueError("string ref %d outside the strings section" % ref)
    n = buf[strings_offset + ref] | (buf[strings_offset + ref + 1] << 8)
    if ref + 2 + n > strings_size:
        raise ValueError("string at %d runs past the strings section" % ref)
    start = strings_offset + ref + 2
    return str(bytes(buf[start:start + n]), "utf-8")


def parse(buf, crc32=None):
    """Validate a whole blob and return (header, tensors, ops, io).

    header: the HEADER fields; tensors: TENSOR field tuples; ops: (opcode,
    tensor indices, params) with params an array('i'); io: IO field tuples,
    inputs first. `crc32` is zlib's/binascii's crc32 function, or None to skip
    the CRC. Every offset, size, count and index is checked here, before any
    kernel can see the blob; anything wrong raises ValueError naming it.
    """
    import struct
    from array import array
    from mpml import ops

    n = len(buf)
    if n < HEADER_SIZE + CRC_SIZE:
        raise ValueError("blob too short: %d bytes" % n)
    h = struct.unpack_from(HEADER, buf, 0)
    if h[H_MAGIC] != MAGIC:
        raise ValueError("not an mpml blob (magic %r)" % (bytes(h[H_MAGIC]),))
    if h[H_VERSION] != VERSION:
        raise ValueError("blob format version %d; this runtime reads version %d" % (h[H_VERSION], VERSION))
    if h[H_HEADER_SIZE] != HEADER_SIZE:
        raise ValueError("header size %d, expected %d" % (h[H_HEADER_SIZE], HEADER_SIZE))
    if h[H_FILE_SIZE] != n:
        raise ValueError("blob is %d bytes but its header says %d (truncated or padded)" % (n, h[H_FILE_SIZE]))
    end = n - CRC_SIZE
    if crc32 is not None:
        stored = struct.unpack_from("<I", buf, end)[0]
        actual = crc32(memoryview(buf)[:end]) & 0xFFFFFFFF
        if actual != stored:
            raise ValueError("CRC mismatch (stored %08x, computed %08x): the blob is corrupt" % (stored, actual))

    def within(off, size, what):
        if off < HEADER_SIZE or size < 0 or off + size > end:
            raise ValueError("%s (offset %d, %d bytes) lies outside the blob" % (what, off, size))

    n_tensors = h[H_N_TENSORS]
    within(h[H_TENSORS], n_tensors * TENSOR_SIZE, "tensor table")
    within(h[H_OPS], h[H_OPS_SIZE], "op records")
    n_io = h[H_N_INPUTS] + h[H_N_OUTPUTS]
    within(h[H_IO], n_io * IO_SIZE, "input/output table")
    within(h[H_STRINGS], h[H_STRINGS_SIZE], "strings")
    if h[H_FEATURES]:
        within(h[H_FEATURES], h[H_FEATURES_SIZE], "feature spec")
    arena = h[H_ARENA_SIZE]

    tensors = []
    arena_end = 0
    for t in range(n_tensors):
        f = struct.unpack_from(TENSOR, buf, h[H_TENSORS] + t * TENSOR_SIZE)
        what = "tensor %d" % t
        dt = DTYPES.get(f[T_DTYPE])
        if dt is None:
            raise ValueError("%s: unknown dtype %d" % (what, f[T_DTYPE]))
        if f[T_NDIM] > MAX_NDIM:
            raise ValueError("%s: %d dims" % (what, f[T_NDIM]))
        count = 1
        for d in f[T_SHAPE0:T_SHAPE0 + MAX_NDIM]:
            if d == 0:
                raise ValueError("%s: zero dimension" % what)
            count *= d
        if f[T_NBYTES] != count * dt[1]:
            raise ValueError("%s: %d bytes for its shape, header says %d" % (what, count * dt[1], f[T_NBYTES]))
        if f[T_OFFSET] % ALIGN:
            raise ValueError("%s: offset %d not aligned to %d" % (what, f[T_OFFSET], ALIGN))
        if f[T_STORAGE] == CONST:
            within(f[T_OFFSET], f[T_NBYTES], what)
        elif f[T_STORAGE] == ARENA:
            if f[T_OFFSET] + f[T_NBYTES] > arena:
                raise ValueError("%s lies outside the %d-byte arena" % (what, arena))
            if f[T_OFFSET] + f[T_NBYTES] > arena_end:
                arena_end = f[T_OFFSET] + f[T_NBYTES]
        else:
            raise ValueError("%s: unknown storage %d" % (what, f[T_STORAGE]))
        tensors.append(f)
    if arena > align(arena_end):
        # the board allocates the arena: refuse a size no tensor needs
        raise ValueError("arena of %d bytes, but its tensors need %d" % (arena, align(arena_end)))

    op_list = []
    pos = h[H_OPS]
    stop = pos + h[H_OPS_SIZE]
    for k in range(h[H_N_OPS]):
        if pos + OP_HEAD_SIZE > stop:
            raise ValueError("op %d: past the end of the op records" % k)
        code, n_in, n_out, n_par = struct.unpack_from(OP_HEAD, buf, pos)
        spec = ops.OPS.get(code)
        if spec is None:
            raise ValueError("op %d: unknown opcode %d (newer blob than this runtime?)" % (k, code))
        what = "op %d (%s)" % (k, spec[0])
        if n_in != len(spec[1]) or n_out != len(spec[2]) or n_par != len(spec[3]):
            raise ValueError("%s: %d inputs, %d outputs, %d params; expected %d, %d, %d" % (
                what, n_in, n_out, n_par, len(spec[1]), len(spec[2]), len(spec[3])))
        size = op_record_size(n_in + n_out, n_par)
        if pos + size > stop:
            raise ValueError("%s: record runs past the op records" % what)
        refs = struct.unpack_from("<%dH" % (n_in + n_out), buf, pos + OP_HEAD_SIZE)
        params = array("i", struct.unpack_from("<%di" % n_par, buf, pos + size - 4 * n_par))
        try:
            sizes = ops.slot_sizes(code, params)
        except ValueError as e:
            raise ValueError("%s: %s" % (what, e))
        slots = spec[1] + spec[2]
        for j in range(n_in + n_out):
            t = refs[j]
            if t >= n_tensors:
                raise ValueError("%s: %s is tensor %d of %d" % (what, slots[j], t, n_tensors))
            if tensors[t][T_NBYTES] != sizes[j]:
                raise ValueError("%s: %s tensor %d has %d bytes, its params need %d" % (
                    what, slots[j], t, tensors[t][T_NBYTES], sizes[j]))
            if j >= n_in and tensors[t][T_STORAGE] != ARENA:
                raise ValueError("%s: writes constant tensor %d" % (what, t))
        op_list.append((code, refs, params))
        pos += size

    io = []
    for j in range(n_io):
        f = struct.unpack_from(IO, buf, h[H_IO] + j * IO_SIZE)
        if f[0] >= n_tensors or tensors[f[0]][T_STORAGE] != ARENA:
            raise ValueError("model %s %d is not an activation tensor" % (
                "input" if j < h[H_N_INPUTS] else "output", j))
        io.append(f)
    return h, tensors, op_list, io
