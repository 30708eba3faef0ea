from .list_global_average_pooling import ListGlobalAveragePooling

__all__ = ['ListGlobalAveragePooling']
