"""The pinned upstream charts rendered with our values (``inv validate``, when pulled).

- :mod:`.archive`: a chart archive's values, subcharts and CRDs, read in memory.
- :mod:`.keys`: every key of our values files is a value of the chart.
- :mod:`.template`: ``helm template`` with our values on stdin; the charts' CRD schemas.
- :mod:`.checks`: the spec's numbers on the rendered objects; pinned images.
- :mod:`.run`: all of it for every release the inventory enables.
"""

from tasks.stack.upstream.run import Rendered, Upstream, releases, run

__all__ = ["Rendered", "Upstream", "releases", "run"]
