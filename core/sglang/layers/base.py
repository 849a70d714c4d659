"""Layer: the base of the engine's modules, an nn.Module whose call is its forward.

torch's Module.__call__ walks its hook machinery on every call (global and per-module forward,
backward and pre hooks, the tracing state, the dispatch through _call_impl): about a
microsecond each, and a decode step of a 30-layer model makes some 340 module calls, so it was
~0.3 ms of a ~9 ms CPU step; even a Python __call__ that only checked for hooks cost ~6% of the
step in place (between GEMMs the interpreter's own data is out of cache). So a Layer class's
`__call__` is its `forward` itself: calling a layer adds no frame.

Hooks: registering a forward / backward (pre-)hook on a Layer moves that one instance to a
subclass that calls through nn.Module.__call__, so its hooks run as usual. Global module hooks
(torch.nn.modules.module.register_module_forward_hook and friends) are not run for Layers; the
engine registers none. A `forward` assigned on an instance is not what a call runs (the class's
is): patch the class, or wrap the caller.
"""

from __future__ import annotations

from torch import nn


class Layer(nn.Module):
    _calls_through_torch = False  # True on the hook-running twins made by _with_hooks

    # A submodule is also kept in the instance dict, so `self.child` in a forward is a plain
    # attribute read, not nn.Module.__getattr__'s walk (~300 a decode step of a 30-layer
    # model). nn.Module still owns it (_modules: state_dict, named_modules, ...); the copy
    # follows every assignment and deletion made through the attribute.
    def __setattr__(self, name, value) -> None:
        super().__setattr__(name, value)
        if name in self.__dict__.get("_modules", ()):
            if isinstance(value, nn.Module):
                self.__dict__[name] = value
            else:
                self.__dict__.pop(name, None)

    def __delattr__(self, name) -> None:
        super().__delattr__(name)
        self.__dict__.pop(name, None)

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("_calls_through_torch", False):
            cls.__call__ = cls.forward

    def _run_hooks(self) -> None:
        cls = type(self)
        if not cls._calls_through_torch:
            self.__class__ = _with_hooks(cls)

    def register_forward_pre_hook(self, *args, **kwargs):
        self._run_hooks()
        return super().register_forward_pre_hook(*args, **kwargs)

    def register_forward_hook(self, *args, **kwargs):
        self._run_hooks()
        return super().register_forward_hook(*args, **kwargs)

    def register_full_backward_pre_hook(self, *args, **kwargs):
        self._run_hooks()
        return super().register_full_backward_pre_hook(*args, **kwargs)

    def register_full_backward_hook(self, *args, **kwargs):
        self._run_hooks()
        return super().register_full_backward_hook(*args, **kwargs)

    def register_backward_hook(self, *args, **kwargs):
        self._run_hooks()
        return super().register_backward_hook(*args, **kwargs)


_TWINS: dict[type, type] = {}


def _with_hooks(cls: type) -> type:
    """cls with torch's __call__ back (made once per class)."""
    twin = _TWINS.get(cls)
    if twin is None:
        twin = type(
            cls.__name__,
            (cls,),
            {
                "_calls_through_torch": True,
                "__call__": nn.Module.__call__,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
            },
        )
        _TWINS[cls] = twin
    return twin
