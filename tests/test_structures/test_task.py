"""Task names that can prefix modules, losses and metrics."""
import pytest

from mtl_pvt.structures import check_task_name


@pytest.mark.parametrize('name', ['cls', 'imnet', 'depth_est', 'COCO-2017'])
def test_good_names(name):
    check_task_name(name, 'model.tasks')


@pytest.mark.parametrize('name,message', [
    ('c.l.s', r"model.tasks: task name 'c.l.s' contains '.': .* e.g. 'c_l_s'"),
    ('a/b', r"task name 'a/b' contains '/': metric names are split"),
    ('mtl', "task name 'mtl' is reserved"),
    ('', "a task name must be a non-empty string, not ''"),
    (' ', 'a task name must be a non-empty string'),
    (3, 'a task name must be a non-empty string, not 3'),
    ('keys', "task name 'keys' is an attribute of the task models' "
     'ModuleDict'),
    ('training', "task name 'training' is an attribute"),
])
def test_bad_names(name, message):
    with pytest.raises(ValueError, match=message):
        check_task_name(name, 'model.tasks')
