"""Registration of mtl_pvt and the OpenMMLab libraries it builds on."""
import datetime
import importlib
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import mtl_pvt and the library of every task kind (mmpretrain, mmdet,
    mmseg: :func:`mtl_pvt.tasks.libraries`) so their modules register.

    Configs of mtl_pvt name modules of the libraries with a scope prefix
    (``mmdet.RetinaNet``); the prefixed lookup needs the library's modules
    imported, which this does once for all of them.

    Args:
        init_default_scope (bool): Whether to make ``mtl_pvt`` the default
            scope. Defaults to True.
    """
    from mtl_pvt.tasks import libraries
    for library in libraries():
        importlib.import_module(f'{library}.models')

    import mtl_pvt.datasets  # noqa: F401
    import mtl_pvt.engine  # noqa: F401
    import mtl_pvt.evaluation  # noqa: F401
    import mtl_pvt.models  # noqa: F401
    from mtl_pvt.engine import allow_mmengine_checkpoint_globals

    # Resuming a Runner checkpoint needs its globals allow-listed for
    # torch.load's weights-only default (torch >= 2.6).
    allow_mmengine_checkpoint_globals()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or not DefaultScope.check_instance_created('mtl_pvt'):
        DefaultScope.get_instance('mtl_pvt', scope_name='mtl_pvt')
    elif current.scope_name != 'mtl_pvt':
        warnings.warn(f'The current default scope "{current.scope_name}" is '
                      'not "mtl_pvt"; register_all_modules switches it to '
                      '"mtl_pvt". Pass init_default_scope=False to keep it.')
        DefaultScope.get_instance(
            f'mtl_pvt-{datetime.datetime.now()}', scope_name='mtl_pvt')
