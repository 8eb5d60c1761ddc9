"""``inv doctor``: local preflight checks, each a plain function returning findings.

:mod:`~tasks.doctor.run` runs them in order; :mod:`~tasks.doctor.findings` shows them.
Nothing here changes anything: no file is written, no known_hosts entry recorded.
"""
