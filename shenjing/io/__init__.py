"""File formats and safe writing: safetensors and atomic writes (other formats belong here too).

Submodules are imported on their own (``from shenjing.io.safetensors import load_file``); this
package only re-exports the everyday names.
"""

from shenjing.io.atomic import atomic_write
from shenjing.io.safetensors import load_file, read_metadata, save_file

__all__ = ["atomic_write", "load_file", "read_metadata", "save_file"]
