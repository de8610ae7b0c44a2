"""Figure specs (``fig3.yaml`` ... ``fig8.yaml``) and preset budgets (``presets.yaml``): package
data read by :mod:`satedge.experiments.spec`."""
