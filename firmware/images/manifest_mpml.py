# The mpml device package, frozen: included by every image manifest here.
# The files are firmware/package.json's (what `mpml install` installs), so an
# image holds the same modules as an installed board. Frozen modules run from
# flash, and `import mpml` needs nothing on the filesystem. With MicroPython's
# default sys.path ('', '.frozen', '/lib') the frozen package wins over an
# installed /lib/mpml (docs/firmware.md). makemanifest runs this file with
# its own folder as the current directory.
import json

with open("../package.json") as _f:
    _files = [src for src, _dest in json.load(_f)["urls"] if src.startswith("mpml/") and src.endswith(".py")]
package("mpml", files=[f[len("mpml/"):] for f in _files], base_path="..")
