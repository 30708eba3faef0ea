"""The checkpoint state of ``MultiTaskOptimWrapper``: the optimizer's,
plus the weighting's and the aggregator's (learned weights with their own
optimizer, loss histories, random generators) under ``'mtl'``, so that a
resumed run continues exactly."""


class MultiTaskWrapperState:
    """Mixin of ``MultiTaskOptimWrapper`` (before ``OptimWrapper`` in its
    bases): its ``weighting``, ``aggregator``, ``skipped_steps``,
    ``_updates``, ``layout`` and ``_pending_state`` (what a checkpoint
    loaded before the model was bound leaves for ``bind``)."""

    def state_dict(self) -> dict:
        """The optimizer's state plus the weighting's and the aggregator's
        under ``'mtl'``."""
        state = super().state_dict()
        state['mtl'] = dict(
            weighting=self.weighting.state_dict() if self.weighting else {},
            aggregator=self.aggregator.state_dict()
            if self.aggregator is not None else {},
            skipped_steps=self.skipped_steps,
            updates=self._updates)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load :meth:`state_dict`'s output (the weighting's part once the
        model is bound)."""
        state_dict = dict(state_dict)
        mtl = state_dict.pop('mtl', None)
        super().load_state_dict(state_dict)
        if mtl is None:
            return
        if self.layout is None:
            self._pending_state = mtl
        else:
            self._load_mtl_state(mtl)

    def _load_mtl_state(self, mtl: dict) -> None:
        if self.weighting is not None and mtl.get('weighting'):
            self.weighting.load_state_dict(mtl['weighting'])
        if self.aggregator is not None and mtl.get('aggregator'):
            self.aggregator.load_state_dict(mtl['aggregator'])
        self.skipped_steps = int(mtl.get('skipped_steps', 0))
        self._updates = int(mtl.get('updates', 0))
