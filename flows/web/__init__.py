"""The instructors' workbench (``proofcheck web``): find, read and decide, with the machine verdict first.

A server-rendered Starlette application with Jinja2 templates and no JavaScript, over the verdict index
(``flows/index.py``, SQLite or Postgres) and the reports stored in the bucket. ``app`` wires the routes;
``pages`` finds (lists, search, a proof across packages, versions, diffs); ``decide`` records decisions
(``flows/decisions.py``) whose states ``carry`` computes across verdicts; ``export`` writes the machine
verdict and the decisions side by side; ``auth``, ``signin`` and ``oidc`` say who may see and do what.
The engine (``validators``) never imports it.
"""
