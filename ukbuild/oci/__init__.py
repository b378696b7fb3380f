"""The OCI format library: deterministic layers, manifests, layouts, archives and a push client."""
