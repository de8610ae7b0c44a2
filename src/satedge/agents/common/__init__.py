"""The shared toolbox of the learning agents (torch; never imported by ``satedge.agents`` itself).

Import the module you need; this package imports nothing so that ``import satedge.agents`` stays
torch-free and cheap.

- :mod:`~satedge.agents.common.networks`: ``mlp``, ``soft_update``, ``hard_update``.
- :mod:`~satedge.agents.common.distributions`: masked categorical, tanh-Gaussian, their hybrid.
- :mod:`~satedge.agents.common.buffers`: replay and rollout storage, typed batches, GAE.
- :mod:`~satedge.agents.common.checkpoint`: atomic, weights-only checkpoints with metadata.
- :mod:`~satedge.agents.common.seeding`: the one seeding entry point of a run (``make_seeds``).
- :mod:`~satedge.agents.common.logger`: metrics as JSON lines and TensorBoard scalars.
- :mod:`~satedge.agents.common.sac_losses`, :mod:`~satedge.agents.common.mpo`: loss functions.
"""
