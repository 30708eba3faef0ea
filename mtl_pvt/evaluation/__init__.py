from .delta_m import delta_m, parse_delta_m, relative_changes

__all__ = ['delta_m', 'parse_delta_m', 'relative_changes']
