"""File formats and safe writing: safetensors and atomic writes (other formats belong here too).

Submodules are imported on their own (``from shenjing.io.safetensors import load_file``); this
package only re-exports the everyday names. Every reader raises its format's error from
`shenjing.io.errors` (all ValueErrors naming the file) and checks declared sizes against
`shenjing.io.limits` before allocating.
"""

from shenjing.io.atomic import atomic_write, remove_stale_temps
from shenjing.io.errors import FileFormatError, SafetensorsError
from shenjing.io.safetensors import load_file, read_metadata, save_file

__all__ = [
    "FileFormatError",
    "SafetensorsError",
    "atomic_write",
    "load_file",
    "read_metadata",
    "remove_stale_temps",
    "save_file",
]
