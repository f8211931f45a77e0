"""mechinterp_course: the helper package of an open course on how transformers work inside.

    import mechinterp_course as mc
    model = mc.load_model()                       # the bundled course model, offline
    logits, cache = model.run_with_cache("The capital of Texas is")
    cache["resid_post", 3]                        # also cache["blocks.3.hook_resid_post"]

Importing this package touches no network and loads no model.
"""

from .hooked import ActivationCache, Config, HookedModel, HookPoint
from .models import (ModelNotAvailable, available_offline, is_online, load_model, load_optional,
                     pick_device)

__version__ = "0.1.0"
__all__ = ["ActivationCache", "Config", "HookPoint", "HookedModel", "ModelNotAvailable",
           "available_offline", "is_online", "load_model", "load_optional", "pick_device",
           "__version__"]
