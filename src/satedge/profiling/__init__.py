"""Measure real vision-language-model inference and turn it into MLLM zoo entries.

``satedge profile`` times a LLaVA / LLaVA-NeXT model with HuggingFace ``transformers`` on
synthetic MMMU-like prompts and writes a zoo row (the columns of ``satedge/sim/data/mllm_zoo.csv``)
plus a JSON sidecar with the provenance; ``satedge zoo fit`` refits a hardware row of the roofline
cost model from such entries. See ``docs/profiling.md``.

Modules:
    shapes   named architecture shapes (published configuration numbers) and model loading
    inputs   seeded synthetic prompts: random text token ids plus generated images
    measure  timing of prefill and decode, peak memory, statistics over repeats
    entry    the zoo row and its JSON sidecar: writing and reading
    runner   one profile from model name to written entry (what the CLI calls)
    fit      least-squares fit of a hardware row's roofline parameters (numpy and scipy only)

This package is optional (``pip install 'satedge[profile]'``): ``shapes``, ``inputs``, ``measure``
and ``runner`` import torch and transformers; ``fit`` and ``entry`` do not. ``satedge.sim`` and
``satedge.envs`` never import it.
"""
