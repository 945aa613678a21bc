"""A weight-sharing supernet of a family's space: the module (`network`), its file (`file`),
and `netdsl supernet` (`command`)."""
from .file import FORMAT, check_saved, load_supernet, saved_form, weights_for
from .network import Supernet

__all__ = ["FORMAT", "Supernet", "check_saved", "load_supernet", "saved_form", "weights_for"]
