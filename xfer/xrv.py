"""Import torchxrayvision without letting it silence every warning in the process."""
from __future__ import annotations

import warnings


def import_xrv():
    """Return the torchxrayvision module; its import-time `filterwarnings("ignore")` is undone."""
    with warnings.catch_warnings():
        import torchxrayvision

    return torchxrayvision
