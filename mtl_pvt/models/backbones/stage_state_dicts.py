"""The state-dict half of :class:`~.shared_backbone.SharedBackbone`: its
copies' keys to and from those of the plain library backbone."""
from typing import Dict, Optional, Tuple

import torch

from .sharing_tree import key_tasks

StateDict = Dict[str, torch.Tensor]
COPIES = 'stages'  # state-dict prefix of the stage copies


class StageStateDicts:
    """Mixin of ``SharedBackbone``: a copy of stage ``i`` is keyed
    ``stages.{i}.{copy}.{part}.{rest}`` (``...{copy}.{rest}`` for a stage
    of one unnamed part), the plain backbone ``{part path}.{rest}``.
    Uses the backbone's ``_parts``, ``_copy_parts``, ``stages``,
    ``stage_groups`` and ``task_stages``."""

    def _plain_key(self, stage: int, rest: str) -> Optional[str]:
        """The plain backbone's key of ``rest`` (a key inside a copy of
        ``stage``), or None if it is of no part."""
        parts = self._parts[stage]
        if len(parts) == 1 and parts[0][0] is None:
            return f'{parts[0][1]}.{rest}'
        name, _, inner = rest.partition('.')
        paths = dict(parts)
        return f'{paths[name]}.{inner}' if name in paths else None

    def _stage_of_plain_key(
            self, key: str) -> Optional[Tuple[int, Optional[str], str]]:
        """``(stage, part name or None, key inside the part)`` of a plain
        key, or None for a key of no stage."""
        for i, parts in enumerate(self._parts):
            for name, path in parts:
                if key.startswith(path + '.'):
                    return i, name, key[len(path) + 1:]
        return None

    def stage_state(self,
                    plain_state: StateDict,
                    stage: int,
                    key: Optional[str] = None) -> StateDict:
        """The tensors of ``stage`` in a plain state dict (no prefix), keyed
        as inside a copy of it (the copy ``key`` if given: only the parts
        it holds)."""
        held = None if key is None else set(
            name for name, _ in self._copy_parts(
                stage, key_tasks(key, self.stage_groups[stage])))
        out = {}
        for plain_key, value in plain_state.items():
            found = self._stage_of_plain_key(plain_key)
            if found is None or found[0] != stage:
                continue
            _, name, inner = found
            if held is not None and name not in held:
                continue
            out[inner if name is None else f'{name}.{inner}'] = value
        return out

    def plain_to_shared(self,
                        state_dict: StateDict,
                        prefix: str = '') -> StateDict:
        """Map a plain backbone's state dict to this module's layout.

        Each stage's keys go to every copy of that stage that holds their
        part (``{prefix}stages.{i}.{copy}.*``); other keys are kept as they
        are.
        """
        stage_keys = {}
        result = {}
        for key, value in state_dict.items():
            found = self._stage_of_plain_key(key[len(prefix):]) \
                if key.startswith(prefix) else None
            if found is None:
                result[key] = value
            else:
                stage_keys[key] = found
        for i, copies in enumerate(self.stages):
            for copy_key in copies:
                held = set(name for name, _ in self._copy_parts(
                    i, key_tasks(copy_key, self.stage_groups[i])))
                for key, (stage, name, inner) in stage_keys.items():
                    if stage == i and name in held:
                        rest = inner if name is None else f'{name}.{inner}'
                        result[f'{prefix}{self.copy_name(i, copy_key)}.'
                               f'{rest}'] = state_dict[key]
        return result

    def shared_to_plain(self,
                        state_dict: StateDict,
                        task: str,
                        prefix: str = '') -> StateDict:
        """Extract ``task``'s path as a plain backbone's state dict.

        The keys of the copies on ``task``'s path become the plain
        backbone's (``layers.{i}.*`` for PVT v2); other copies are dropped
        and other keys kept. The inverse of :meth:`plain_to_shared` for one
        task.
        """
        path = {i: key for i, (key, _) in enumerate(self.task_stages(task))}
        result = {}
        for key, value in state_dict.items():
            parsed = self.parse_copy_key(key[len(prefix):]) \
                if key.startswith(prefix) else None
            if parsed is None:
                result[key] = value
                continue
            stage, copy_key, rest = parsed
            if path[stage] == copy_key:
                plain = self._plain_key(stage, rest)
                # a part that the task alone would not have (a norm of a
                # stage only other tasks of the copy read)
                name = None if len(self._parts[stage]) == 1 and \
                    self._parts[stage][0][0] is None else \
                    rest.partition('.')[0]
                if plain is not None and self.part_is_used(
                        stage, name, [task]):
                    result[prefix + plain] = value
        return result

    def branch_to_plain(self, stage: int, rest: str) -> Optional[str]:
        """The plain key of ``rest``, a key inside any copy of ``stage``
        (of this or another sharing tree), or None."""
        return self._plain_key(stage, rest)

    @classmethod
    def parse_copy_key(cls, key: str) -> Optional[Tuple[int, str, str]]:
        """``(stage, copy key, rest)`` of a key of this layout
        (``stages.{i}.{copy}.{rest}``), else None."""
        parts = key.split('.', 3)
        if len(parts) < 4 or parts[0] != COPIES or not parts[1].isdigit():
            return None
        return int(parts[1]), parts[2], parts[3]
