"""``inv validate``: every object the deploy would apply, checked without a cluster.

- :mod:`.schemas`: core kinds strictly against Kubernetes 1.33 (the schemas shipped by
  PyPI ``kubernetes-validate``), custom kinds against CRD JSON schemas found in
  ``$STACK_CRD_SCHEMAS``, ``.cache/crd-schemas/`` or ``../shared/schemas/crds/``.
- :mod:`.apiserver`: what the API server refuses beyond the schema (selectors that miss
  their template, port ranges and names, HPA targets).
- :mod:`.objects`: object names, no plaintext Secrets, duplicates, namespaces that
  exist, pinned chart releases.
- :mod:`.policy`: our workloads' claims (pinned images, requests and limits, probes,
  PodSecurity "restricted"), each failure naming its rule.
- :mod:`.run`: renders every component, adds ``helm lint``, the components' own
  ``checks()`` hooks, the Secret templates and the GitOps layout, and reports.
- :mod:`.layout`: the GitOps layout holds together as Flux reads it.
- :mod:`.crds`: fills the schema cache from CRDs (``python -m tasks.stack.validate.crds``).

When the pinned charts are pulled, :mod:`tasks.stack.upstream` renders them with our
values first; their objects are validated too, and their CRDs' schemas come before the
directories above.
"""

from tasks.stack.validate.run import Report, validate_context, validate_documents

__all__ = ["Report", "validate_context", "validate_documents"]
