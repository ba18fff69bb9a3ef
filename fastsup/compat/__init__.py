"""Drop-in replacements for the trainers researchers already use.

``fastsup.compat`` is the paper notebook's API (``Config``, ``Model``,
``optimize`` and its schedules; see ``fastsup.compat.notebook``), so a
notebook switches by changing one import::

    from fastsup.compat import Config, Model, optimize, constant_lr, linear_lr, cosine_decay_lr

``fastsup.compat.arena`` is ARENA's toy-model exercise API.
"""

from .notebook import Config, Model, constant_lr, cosine_decay_lr, linear_lr, optimize

__all__ = ["Config", "Model", "constant_lr", "linear_lr", "cosine_decay_lr", "optimize"]
