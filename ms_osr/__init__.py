"""ms_osr: MindSpore image restoration that generalises across degradations."""
from .cpu_isa import apply_cpu_isa_cap

# Must run before anything imports mindspore (oneDNN reads the variable once).
apply_cpu_isa_cap()

__version__ = "0.1.0"


def create_model(name: str, ckpt=None, **kwargs):
    """Build a registered model by name and load its weights (see :func:`ms_osr.build.create_model`)."""
    from .build import create_model as _create

    return _create(name, ckpt=ckpt, **kwargs)


def list_models() -> list:
    from .registry import list_models as _list

    return _list()
