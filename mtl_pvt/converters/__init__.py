from .mtl2stl import export_config, export_state_dict, mtl_to_stl, save_exports
from .stl2mtl import load_checkpoint_file, official_to_plain, stl_to_mtl

__all__ = [
    'export_config', 'export_state_dict', 'load_checkpoint_file', 'mtl_to_stl',
    'official_to_plain', 'save_exports', 'stl_to_mtl'
]
