"""``inv upgrade``: the versions the repository pins against what the cluster runs.

:mod:`.facts` reads what runs, :mod:`.plan` turns pins and facts into moves (refusing
downgrades), :mod:`.notes` says what to read for each, :mod:`.show` prints the plan and
:mod:`.apply` applies it one layer at a time with a health gate and a rollback.
"""
