"""Registry: a name -> module (function or class) table that config strings select from."""


class Registry(dict):
    """A dict from names to modules, filled with ``register``.

    Either call it directly::

        BACKBONES.register("R-50-FPN", build_resnet_fpn_backbone)

    or use it as a decorator::

        @BACKBONES.register("R-50-FPN")
        def build_resnet_fpn_backbone(cfg): ...

    Registering a name twice is an error, so two modules can never silently shadow each other;
    looking up an unknown name lists the names that exist.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

    def register(self, module_name, module=None):
        if module is not None:
            self._add(module_name, module)
            return module

        def register_decorated(decorated):
            self._add(module_name, decorated)
            return decorated

        return register_decorated

    def _add(self, module_name, module):
        if module_name in self:
            raise KeyError(f"registry already has an entry named {module_name!r} ({self[module_name]!r})")
        self[module_name] = module

    def __missing__(self, module_name):
        raise KeyError(f"no entry named {module_name!r} in the registry; known names: {sorted(map(str, self))}")
