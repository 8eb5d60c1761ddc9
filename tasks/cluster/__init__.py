"""The cluster layers' building blocks: access to the API, kubectl and helm facts and
commands, and the generic steps (objects applied server-side, Helm releases)."""
