"""Layer: the base of the engine's modules, an nn.Module whose call goes straight to forward.

torch's Module.__call__ walks its hook machinery on every call (global and per-module forward,
backward and pre hooks, the tracing state, the dispatch through _call_impl): about a
microsecond each, and a decode step of a 30-layer model makes some 340 module calls, so it was
~0.3 ms of a ~9 ms CPU step. The engine registers no hooks; where someone does (a debugging
forward hook, a profiler's global one), the call takes torch's full path, so no hook is ever
skipped.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _torch_module

# The registries torch's __call__ consults (module-level dicts; absent ones count as empty).
_GLOBAL_HOOKS = tuple(
    getattr(_torch_module, name)
    for name in (
        "_global_forward_hooks",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
    )
    if isinstance(getattr(_torch_module, name, None), dict)
)


class Layer(nn.Module):
    def __call__(self, *args, **kwargs):
        if (
            self._forward_hooks
            or self._forward_pre_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
            or any(_GLOBAL_HOOKS)
        ):
            return nn.Module.__call__(self, *args, **kwargs)
        return self.forward(*args, **kwargs)
