"""Local data paths of a config, checked before anything is built."""
import os.path as osp


def is_local_path(path) -> bool:
    """Whether ``path`` is a non-empty local path (not s3://, http:// ...)."""
    return isinstance(path, str) and bool(path) and '://' not in path


def require_path(path: str, key: str) -> None:
    """Raise FileNotFoundError naming ``key`` if local ``path`` is missing.

    Args:
        path (str): The resolved path.
        key (str): The config key it comes from.
    """
    if is_local_path(path) and not osp.exists(path):
        raise FileNotFoundError(f'{key}: {path} does not exist')


def join_data_root(data_root, path: str) -> str:
    """Join like ``BaseDataset``: relative paths are under ``data_root``."""
    if data_root and not osp.isabs(path) and '://' not in path:
        return osp.join(data_root, path)
    return path


def check_dataset_paths(dataset: dict, key: str) -> None:
    """Check ``data_root``, ``ann_file`` and ``data_prefix`` of a dataset."""
    data_root = dataset.get('data_root')
    backend = (dataset.get('backend_args') or {}).get('backend', 'local')
    if backend != 'local' or '://' in str(data_root):
        return  # remote data is not checked
    require_path(data_root, f'{key}.data_root')
    ann_file = dataset.get('ann_file')
    if is_local_path(ann_file):
        require_path(join_data_root(data_root, ann_file), f'{key}.ann_file')
    prefix = dataset.get('data_prefix')
    prefixes = prefix.items() if isinstance(prefix, dict) else [(None, prefix)]
    for name, path in prefixes:
        if is_local_path(path):
            suffix = f'.{name}' if name else ''
            require_path(
                join_data_root(data_root, path), f'{key}.data_prefix{suffix}')
