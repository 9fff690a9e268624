"""lxrun as an OCI runtime: runc's command line (cli.py) over OCI containers (container.py) that are
prepared sandboxes of the one composer, their bundles' config.json mapped onto its plan (config.py)."""
